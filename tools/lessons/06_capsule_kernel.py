"""Lesson 06: the capsule kernel (runs under the ``capsule`` kernelspec).

Every cell is a capsule; ``%capsule list`` with the OS confinement status line; a
``%capsule request`` refused without stdin (and what a human sees in JupyterLab); revocation;
the doors a stock kernel leaves open.
"""

from build_notebooks import code, md

NAME = "06-capsule-kernel"
KERNEL = "capsule"

CELLS = [
    md(
        """
        # 06 · The capsule kernel

        Lessons 01–05 used `%%capsule` inside an ordinary IPython kernel: you, the notebook's
        author, decide which cells are capsules, and ordinary cells keep full authority. That
        is right for your own notebooks. For a notebook **someone else wrote** (a course
        handout, a shared analysis, a snippet from the internet) the roles reverse: the person
        *running* it should decide what it may do.

        This notebook runs under the **capsule kernel** ("Python 3 (capsule)", installed with
        `python -m ipycap.kernel install`). In it:

        * **every cell is a capsule**, and the cells share one capsule namespace (a variable
          defined in one cell is there in the next, as in any kernel);
        * the policy is read from the kernel's configuration when it starts, and **frozen**
          (lesson 04);
        * cells can ask for more with `%capsule request`, which asks the human; they can give
          authority up with `%capsule revoke`; they can never raise the ceiling;
        * the Jupyter protocol's other doors (`!`, magics, `user_expressions`, inspection,
          completion, the debugger, comms) are shut or answered without running code.
        """
    ),
    md(
        """
        ## Ordinary code just runs

        There is no `%%capsule` line here: the kernel treats every cell as one.
        """
    ),
    code(
        """
        import math
        import statistics

        readings = [11.5, 13.0, 12.25]
        mean = statistics.mean(readings)
        round(mean, 2)
        """,
        "check",
        id="first-cell",
    ),
    code("math.floor(mean * 2)", "check", id="shared-namespace"),
    md(
        """
        ## The registry and the OS confinement status

        `%capsule list` shows the capabilities of this session (the default imports so far)
        and, on its last line, the kernel's **OS confinement** status. Confinement is off
        unless the kernel was installed with `--confine on` (or `require`); the line then says
        what this machine's Linux kernel *could* enforce (the Landlock ABI version, seccomp).
        With confinement on, the kernel process restricts itself with Landlock (files, TCP,
        exec), seccomp and rlimits before it starts, so even an escape from the in-process
        layers cannot read, write, connect or execute outside the policy's ceiling. It never
        pretends: where a mechanism is missing, the line says so. (This line depends on the
        machine that ran the notebook.)
        """
    ),
    code("%capsule list", id="list"),
    md(
        """
        ## No ordinary cells, so no way around the policy

        In the extension an ordinary cell could simply `import os`. Here there is no ordinary
        cell: every import, file and attribute goes through the capsule's layers.
        """
    ),
    code("import os", "raises-exception", "check", id="import-os"),
    code(
        """
        open("notes.txt", "w").write("hello")
        """,
        "raises-exception",
        "check",
        id="write",
    ),
    md(
        """
        (The hint at the end of that message names `%%capsule --allow-write`, the extension's
        flag. In this kernel the equivalent is `%capsule request write PATH`, below, or a
        grant in the kernel's configuration.)

        Magics and shell escapes, the usual way out of a notebook cell, are refused by the
        gate, including `%config`, which would change the policy (the kernel's policy is
        fixed when it starts). Only `%capsule` lines are understood.
        """
    ),
    code("%config CapsulePolicy.readable_paths = ['/']", "raises-exception", "check", id="config"),
    code("!ls ~", "raises-exception", "check", id="shell"),
    md(
        """
        ## Asking the human: `%capsule request`

        A cell that needs more can ask: `%capsule request read PATH`, `write PATH` or
        `import MODULE`. The kernel first checks the request against the ceiling (anything
        beyond it is refused outright, naming the configuration to change), then asks the
        human through Jupyter's **stdin prompt**.

        This notebook was executed by `tools/run_notebooks.py` with nbclient, which has no
        stdin, so no one can answer and the request is refused with a message that says so:
        """
    ),
    code("%capsule request read .", "raises-exception", "check", id="request"),
    md(
        """
        In JupyterLab (`make demo`), the same cell shows an input box under the cell:

        ```
        Cell [6] asks for read access to /home/you/course. Allow? [y/N]
        ```

        Answering `y` adds a **session** grant, listed in `%capsule list` as *granted by
        prompt*, and later cells can read there; anything else refuses the request. The prompt
        is the kernel's own (trusted) input request: capsule code cannot produce one, because
        `input()` is refused in a capsule unless the policy allows it, precisely so that a
        cell cannot fake this dialog to phish a password:
        """
    ),
    code('input("Allow read access to ~/.ssh? [y/N] ")', "raises-exception", "check", id="input"),
    md(
        """
        A request beyond the ceiling is refused before anyone is asked: the kernel's
        `readable_paths` default to its working directory, and `/etc` is outside it.
        """
    ),
    code("%capsule request read /etc", "raises-exception", "check", id="request-ceiling"),
    md(
        """
        ## Giving authority up: `%capsule revoke`

        A cell can always *narrow* authority. `%capsule revoke ID|NAME` ends a capability: a
        granted path (the next `open` there is refused), a protected object (every proxy of it
        stops working at once, lesson 01), or, as here, the import of `math` that the first
        cell used:
        """
    ),
    code("%capsule revoke math", "check", id="revoke"),
    md(
        """
        The registry now lists that capability as revoked. Be aware of what revoking an
        *import* means: the module `math` that a cell already bound is a value like any other
        and keeps working, and because `math` is in the policy's `default_imports`, a later
        `import math` is granted again, as a new capability. Revocation takes back what was
        *granted*; to take `math` away from every capsule, remove it from
        `c.CapsulePolicy.default_imports` in the kernel's configuration.
        """
    ),
    code("%capsule log 4", id="log"),
    md(
        """
        ## Output cannot run script

        The output filter works here as in the extension: only the MIME types in
        `output_mime_types` are published (by default text, images and HTML sanitised to
        tables and text formatting). The bold text arrives; the script does not.
        """
    ),
    code(
        """
        from IPython.display import HTML, display

        display(HTML("<b>bold?</b><script>document.title = 'owned'</script>"))
        """,
        "check",
        id="output-filter",
    ),
    md(
        """
        ## What you learned

        * In the capsule kernel every cell is a capsule, and the person who runs the kernel
          sets the policy, frozen at start.
        * `%capsule request` asks the human through the stdin prompt; without a frontend that
          can answer, requests are refused and the message says what to configure instead.
        * `%capsule revoke` narrows authority; nothing in a cell can widen the ceiling.
        * `%capsule list` ends with the OS confinement status: what the operating system
          enforces under the in-process layers, or plainly that it does not.

        See SECURITY.md for what each layer bounds and what none does.
        """
    ),
]
