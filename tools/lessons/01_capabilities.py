"""Lesson 01: ambient authority vs capabilities; a first capsule, a refusal, a grant, the registry."""

from build_notebooks import code, md

NAME = "01-capabilities"
KERNEL = "python3"

CELLS = [
    md(
        """
        # 01 · Capabilities instead of ambient authority

        Every cell you run in an ordinary notebook can do anything *you* can do: read your
        SSH keys, delete your files, open a network connection, start a process. Nobody handed
        the cell that power; it is simply there, for all code, all the time. This is called
        **ambient authority**.

        The **capability** discipline turns this around: code can only use what it was
        explicitly given. A reference to an object *is* the permission to use it, and a
        permission is always something you can point at, list, and take back.

        `ipycap` brings that discipline to notebooks. A cell marked `%%capsule` runs with:

        * the modules it may import (a safe default set, plus what you grant),
        * the files it may read or write (nothing, unless you grant it),
        * your variables, seen only through **read-only proxies** that hide their private state.

        In this lesson you will run a first capsule, watch it be refused, grant it what it
        needs, and read the **registry**, the list of every capability in your session.
        """
    ),
    code("%load_ext ipycap"),
    md(
        """
        ## A small project folder

        First an ordinary (trusted) cell builds a scratch project in a temporary folder: a
        `data/` folder with a measurements file, and a `private/` folder with a secret token,
        standing in for anything you would not want a pasted snippet to read. The notebook then
        works inside that folder, so relative paths like `data/` mean the scratch copy.
        """
    ),
    code(
        """
        import os
        import tempfile

        project = tempfile.mkdtemp(prefix="ipycap-lesson-")
        os.chdir(project)
        os.makedirs("data")
        os.makedirs("private")
        with open("data/measurements.csv", "w") as f:
            f.write("day,temperature\\nmon,11.5\\ntue,13.0\\nwed,12.25\\n")
        with open("private/token.txt", "w") as f:
            f.write("CANARY-TOKEN-not-for-capsules")
        sorted(os.listdir("."))
        """
    ),
    md(
        """
        ## Ambient authority, seen from a normal cell

        This is a normal cell. Nothing granted it access to `private/token.txt`, yet it reads
        it without asking, and so would any code you paste from a forum or a chatbot.
        """
    ),
    code('open("private/token.txt").read()', "check", id="ambient"),
    md(
        """
        ## A first capsule

        Add `%%capsule` as the first line and the cell runs as a capsule. Plain computation
        works as before, and so do the modules in the default set (`math`, `statistics`,
        `json`, `re`, `collections`, ...). The last expression is shown as the cell's result,
        just like an ordinary cell.
        """
    ),
    code(
        """
        %%capsule
        import math
        import statistics

        temperatures = [11.5, 13.0, 12.25]
        round(statistics.mean(temperatures), 2), math.floor(max(temperatures))
        """,
        "check",
        id="first-capsule",
    ),
    md(
        """
        ## A refusal

        Now the same snippet tries to import `os`. Inside a capsule that import is refused,
        and the error says three things: **what** was refused, **which layer** refused it, and
        **how to grant it**, or, as here, that it can never be granted, because `os` carries
        ambient authority (it can open any file and start any process).
        """
    ),
    code(
        """
        %%capsule
        import os
        os.listdir(".")
        """,
        "raises-exception",
        "check",
        id="refuse-os",
    ),
    md(
        """
        Files work the same way. The capsule tries to read the measurements. Run
        interactively, ipycap first asks you, at the moment of access: `ipycap-approval:
        Allow read access to data/measurements.csv (grant: read data/)? [y]es / [n]o /
        [a]lways this session`. Answer `n` here; the refusal then tells you the exact flag
        that would allow it:
        """
    ),
    code(
        """
        %%capsule
        open("data/measurements.csv").read()
        """,
        "raises-exception",
        "check",
        id="refuse-read",
    ),
    md(
        """
        ## A grant

        Grant the cell read access to `data/` with a flag. The grant is **cell-scoped**: it
        exists while this cell runs, and ends with it.
        """
    ),
    code(
        """
        %%capsule --allow-read data
        rows = open("data/measurements.csv").read().splitlines()
        header, *days = rows
        len(days), header
        """,
        "check",
        id="grant-read",
    ),
    md(
        """
        The grant covers `data/` and nothing else: the same cell still cannot read the token
        next door (even by walking up with `..`, because paths are resolved before they are
        checked).
        """
    ),
    code(
        """
        %%capsule --allow-read data
        open("data/../private/token.txt").read()
        """,
        "raises-exception",
        "check",
        id="refuse-dotdot",
    ),
    md(
        """
        ## Your objects, through proxies

        Capsules see your variables, but only through **proxies**. A proxy lets the capsule
        call public methods and read public attributes, while private state (names starting
        with `_`) stays hidden and nothing can be modified. Here is an object with a private
        PIN:
        """
    ),
    code(
        """
        class Account:
            def __init__(self, owner, pin):
                self.owner = owner
                self._pin = pin

            def greeting(self):
                return f"Hello, {self.owner}!"

        acct = Account("Ada", pin=1234)
        """
    ),
    code(
        """
        %%capsule
        acct.greeting(), acct.owner
        """,
        "check",
        id="proxy-public",
    ),
    code(
        """
        %%capsule
        acct._pin
        """,
        "raises-exception",
        "check",
        id="proxy-private",
    ),
    code(
        """
        %%capsule
        acct.owner = "Mallory"
        """,
        "raises-exception",
        "check",
        id="proxy-readonly",
    ),
    md(
        """
        ## Getting results out: `--export`

        A capsule runs in its own namespace. To hand a result back, name it with `--export`;
        it is copied into your namespace only if the cell succeeds (a failed cell binds no
        name).
        """
    ),
    code(
        """
        %%capsule --allow-read data --export mean_temperature
        import statistics

        values = [float(line.split(",")[1]) for line in open("data/measurements.csv").read().splitlines()[1:]]
        mean_temperature = round(statistics.mean(values), 3)
        """
    ),
    code("mean_temperature", "check", id="export"),
    md(
        """
        ## The registry

        Every capability lives in the **registry**: the imports each capsule used (default ones
        are logged too), each file grant, each of your variables a capsule read (one `object`
        capability per name), with who granted it, its scope, how often it was used, and
        whether it is still active. Recent refusals are listed as well. `%capsule list` shows
        it (`%capsule` alone does the same).
        """
    ),
    code("%capsule list", "check", id="registry"),
    md(
        """
        ## Revocation

        A capability can be taken back. Revoking the `object` capability of `acct` disables
        every proxy of it at once, including any a capsule may have stored somewhere. This is
        E's *caretaker* pattern: the holder of a revocable reference cannot keep using it after
        the grantor changes their mind.
        """
    ),
    code("%capsule revoke acct", "check", id="revoke"),
    code(
        """
        %%capsule
        acct.greeting()
        """,
        "raises-exception",
        "check",
        id="revoked",
    ),
    md(
        """
        ## Output is filtered too

        Jupyter runs the HTML and JavaScript that a cell displays, as if you had written it.
        Capsule output is filtered: by default only plain text, images and *sanitised* HTML
        leave a capsule (tables and text formatting; no script, style, forms or frames), so a
        snippet cannot paint a fake login form or run script in your browser. Here the bold
        text arrives and the script is gone.
        """
    ),
    code(
        """
        %%capsule
        from IPython.display import HTML, display

        display(HTML("<b>bold?</b><script>document.title = 'owned'</script>"))
        """,
        "check",
        id="output-filter",
    ),
    md(
        """
        ## What you learned

        * Ordinary cells have **ambient authority**; capsules have only their **grants**.
        * A refusal names what was refused, the layer that refused it, and how to grant it.
        * Grants are explicit (`--allow-read`, `--allow-import`, `--allow-write`), scoped
          to a cell unless you make them session-wide (`%capsule grant`), and listed in the
          registry.
        * Your objects enter capsules as proxies; revoking a name kills its proxies.

        Next: [02 · Proxies vs rexec](02-proxies-vs-rexec.ipynb), the design argument behind
        these proxies.
        """
    ),
    md("Finally, an ordinary cell removes the lesson's scratch folder again."),
    code(
        """
        import shutil

        os.chdir(os.path.expanduser("~"))
        shutil.rmtree(project, ignore_errors=True)
        """,
        id="cleanup",
    ),
]
