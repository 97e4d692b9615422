"""Lesson 04: writing a policy.

``CapsulePolicy`` traits, a configuration file, the ceiling versus per-cell grants, denied
imports and paths, write-then-import, sealing in the capsule kernel, and the audit log.
"""

from build_notebooks import code, md

NAME = "04-writing-a-policy"
KERNEL = "python3"

CELLS = [
    md(
        """
        # 04 · Writing a policy

        Grants answer "what may *this cell* do?". The **policy** answers "what may *any*
        capsule in this process ever be granted?". It is the ceiling, set by whoever runs the
        kernel (a teacher, an admin, you in your own notebook), and no notebook can ask for
        more than it allows.

        The policy is `CapsulePolicy`, a traitlets `Configurable` (the same configuration
        system as IPython and Jupyter). You can set it three ways:

        * `%config CapsulePolicy.NAME = VALUE` from an ordinary cell (in your own IPython
          session: you are the admin there), logged as a policy event;
        * `c.CapsulePolicy.NAME = VALUE` in `ipython_config.py` or
          `ipython_kernel_config.py`;
        * `--CapsulePolicy.NAME=VALUE` on a kernel's command line (a kernelspec's `argv`).

        This lesson goes through each part of a policy, then shows how the capsule kernel
        **seals** it, and how the **audit log** records what happened.
        """
    ),
    code("%load_ext ipycap"),
    md(
        """
        A scratch project, as in lesson 01: `data/` (fine to read), `private/` (not), `out/`
        (where results may be written).
        """
    ),
    code(
        """
        import os
        import tempfile

        project = tempfile.mkdtemp(prefix="ipycap-policy-")
        os.chdir(project)
        for folder in ("data", "private", "out"):
            os.makedirs(folder)
        with open("data/readings.csv", "w") as f:
            f.write("day,value\\nmon,3\\ntue,5\\n")
        with open("private/token.txt", "w") as f:
            f.write("CANARY-TOKEN-policy-lesson")
        sorted(os.listdir("."))
        """
    ),
    md(
        """
        ## The traits

        `%config CapsulePolicy` lists every trait with its help text and current value. The
        help is part of the product: each refusal message names the trait that would change
        the outcome, and this is where you read what it means.
        """
    ),
    code("%config CapsulePolicy", id="config-help"),
    md(
        """
        `%capsule policy` shows the same values as a table:
        """
    ),
    code("%capsule policy", id="policy-view"),
    md(
        """
        ## Paths: the ceiling and the grant

        Out of the box the extension's ceiling is `readable_paths = ['/']`: any path *may* be
        granted, and each cell asks for what it needs. Some paths can never be granted
        whatever the ceiling says: `denied_paths` (credential folders such as `~/.ssh`,
        `~/.aws`, `~/.gnupg`), plus Jupyter's and IPython's own configuration and runtime
        folders, which hold the kernel's connection files and their signing keys.
        """
    ),
    code(
        """
        %%capsule --allow-read ~/.ssh
        open("~/.ssh/id_ed25519").read()
        """,
        "raises-exception",
        "check",
        id="denied-path",
    ),
    code(
        """
        %%capsule --allow-read ~/.local/share/jupyter/runtime
        "connection files"
        """,
        "raises-exception",
        "check",
        id="denied-runtime",
    ),
    md(
        """
        Now lower the ceiling to `data/` only. After this, no cell can be granted anything
        else to read, and the refusal names the trait to change:
        """
    ),
    code(
        """
        %config CapsulePolicy.readable_paths = [os.path.join(project, "data")]
        """
    ),
    code(
        """
        %%capsule --allow-read private
        open("private/token.txt").read()
        """,
        "raises-exception",
        "check",
        id="ceiling-cell",
    ),
    md(
        """
        A session-wide grant meets the same ceiling (the refusal is raised by `%capsule`
        itself, so IPython also prints where in ipycap it was raised):
        """
    ),
    code("%capsule grant read private", "raises-exception", "check", id="ceiling-session"),
    md("Within the ceiling, grants work as before:"),
    code(
        """
        %%capsule --allow-read data
        rows = open("data/readings.csv").read().splitlines()[1:]
        sum(int(r.split(",")[1]) for r in rows)
        """,
        "check",
        id="within-ceiling",
    ),
    md(
        """
        ## Imports: three tiers

        * `default_imports` are granted to every capsule (each import is still logged);
        * `denied_imports` can never be granted: modules that carry ambient authority
          (`os`, `subprocess`, `socket`, `ctypes`, `importlib`, `pickle`, ...);
        * everything else is **grantable**, one cell at a time with `--allow-import`.
        """
    ),
    code(
        """
        %%capsule --allow-import csv
        import csv
        next(csv.reader(["a,b,c"]))
        """,
        "check",
        id="grantable-import",
    ),
    code(
        """
        %%capsule --allow-import subprocess
        import subprocess
        """,
        "raises-exception",
        "check",
        id="denied-import",
    ),
    md(
        """
        A policy can deny more. Here `csv` joins the denied list (keeping the defaults), and
        the same grant that just worked is refused:
        """
    ),
    code(
        """
        from ipycap.engine.policy import DENIED_IMPORTS

        %config CapsulePolicy.denied_imports = DENIED_IMPORTS + ["csv"]
        """
    ),
    code(
        """
        %%capsule --allow-import csv
        import csv
        """,
        "raises-exception",
        "check",
        id="denied-csv",
    ),
    md(
        """
        ## Writes, and write-then-import

        Writing is granted separately from reading (a write grant does not let a cell read
        the file back). One write is never grantable: the working directory. It is on
        `sys.path` (that is how `import mymodule` finds files next to the notebook), so a
        capsule that could write `json.py` there would have its code run, later, by *your*
        next `import json`, with your full authority. The refusal says so and suggests a
        subdirectory:
        """
    ),
    code(
        """
        %%capsule --allow-write .
        open("helpers.py", "w").write("import os  # runs at the next import")
        """,
        "raises-exception",
        "check",
        id="write-then-import",
    ),
    code(
        """
        %%capsule --allow-write out
        with open("out/total.txt", "w") as f:
            f.write("8")
        "written"
        """,
        "check",
        id="write-out",
    ),
    code('open("out/total.txt").read()', "check", id="written"),
    md(
        """
        ## A configuration file

        `%config` is handy in your own session. For a shared machine, the policy belongs in a
        file that the notebook cannot touch. This cell writes an `ipython_config.py` into a
        fresh profile folder (a temporary one, so nothing of yours changes) and starts a
        separate IPython with it. The extension loads from the file, the ceiling is `data/`,
        nothing is writable, and a grant of `/etc` is refused:
        """
    ),
    code(
        '''
        import subprocess
        import sys
        import textwrap

        profile = tempfile.mkdtemp(prefix="ipycap-profile-")
        POLICY = textwrap.dedent(f"""
            c.CapsulePolicy.readable_paths = [{os.path.join(project, "data")!r}]
            c.CapsulePolicy.writable_paths = []
            c.CapsulePolicy.allow_input = False
        """)
        with open(os.path.join(profile, "ipython_config.py"), "w") as f:
            f.write('c.InteractiveShellApp.extensions = ["ipycap"]\\n' + POLICY)
        print(open(os.path.join(profile, "ipython_config.py")).read())

        session = """
        readable = %config CapsulePolicy.readable_paths
        writable = %config CapsulePolicy.writable_paths
        print("readable_paths =", readable, "| writable_paths =", writable)
        %capsule grant read /etc
        """
        result = subprocess.run(
            [sys.executable, "-m", "IPython", f"--profile-dir={profile}", "--no-banner",
             "--colors=NoColor", "--InteractiveShell.xmode=Minimal", "-c", session],
            capture_output=True, text=True, timeout=60,
        )
        print(result.stdout.strip())
        ''',
        "check",
        id="config-file",
    ),
    md(
        """
        For a kernel, the same lines go into `ipython_kernel_config.py`, or into the
        kernelspec: `python -m ipycap.kernel install --config FILE` or
        `--CapsulePolicy.readable_paths="['/data']"` put them in the kernel's `argv`, so the
        person who installs the kernel sets the policy, not the notebook's author.
        """
    ),
    md(
        """
        ## Sealing: the capsule kernel freezes its policy

        In this notebook a trusted cell can still run `%config` and raise the ceiling: the
        extension trusts *you*. The capsule kernel (lesson 06) is for notebooks you did not
        write, so it builds its policy once, at start, and freezes it. Every cell is a
        capsule, and a capsule cannot run `%config`.

        The next cells install a capsule kernelspec with the policy file above into a
        temporary prefix, start that kernel, and send it two cells.
        """
    ),
    code(
        """
        import json

        from jupyter_client.kernelspec import KernelSpecManager
        from jupyter_client.manager import KernelManager

        kernel_config = os.path.join(profile, "ipython_kernel_config.py")
        with open(kernel_config, "w") as f:
            f.write(POLICY)
        prefix = os.path.join(profile, "prefix")
        subprocess.run(
            [sys.executable, "-m", "ipycap.kernel", "install", "--prefix", prefix,
             "--name", "capsule-sealed", f"--config={kernel_config}"],
            check=True, capture_output=True,
        )
        kernels = os.path.join(prefix, "share", "jupyter", "kernels")
        spec = json.load(open(os.path.join(kernels, "capsule-sealed", "kernel.json")))
        print("kernel argv:", spec["argv"][1:])

        km = KernelManager(kernel_name="capsule-sealed",
                           kernel_spec_manager=KernelSpecManager(kernel_dirs=[kernels]))
        km.start_kernel(cwd=project, stderr=subprocess.DEVNULL)  # no kernel log lines here
        kc = km.client()
        kc.start_channels()
        kc.wait_for_ready(timeout=60)


        def run_in_kernel(source):
            \"\"\"Send one cell to the capsule kernel and print what a notebook would show.\"\"\"
            def show(msg):
                content = msg["content"]
                if msg["msg_type"] == "stream":
                    print(content["text"], end="")
                elif msg["msg_type"] in ("execute_result", "display_data"):
                    print(content["data"]["text/plain"])
                elif msg["msg_type"] == "error":
                    print(f"{content['ename']}: {content['evalue']}")
            kc.execute_interactive(source, output_hook=show, timeout=60, allow_stdin=False)
        """
    ),
    code(
        """run_in_kernel("%config CapsulePolicy.readable_paths = ['/']")""",
        "check",
        id="sealed-config",
    ),
    md(
        """
        The gate refuses the `%` line before anything runs. The policy the kernel started
        with is still in force: a capsule there can be granted `data/` (from the
        configuration, or by asking the human, lesson 06) and never more. Even trusted code
        inside the kernel process cannot change it: the kernel's `FrozenPolicy` refuses every
        assignment after start, naming the configuration file as the place to change it.
        """
    ),
    code(
        """
        run_in_kernel("%capsule request read /etc")
        kc.stop_channels()
        km.shutdown_kernel(now=True)
        """,
        "check",
        id="sealed-request",
    ),
    md(
        """
        ## The audit log

        Every grant, use, refusal, expiry, revocation and policy change is an event in the
        registry (`%capsule log` shows the recent ones). Set `audit_log` to also append them
        to a file as JSON lines, one object per event, which you can keep, grep or feed to a
        log system. (Deno's `DENO_AUDIT_PERMISSIONS` was the model.)
        """
    ),
    code(
        """
        audit = os.path.join(project, "audit.jsonl")
        %config CapsulePolicy.audit_log = audit
        """
    ),
    code(
        """
        %%capsule --allow-read data
        import statistics
        statistics.mean(int(r.split(",")[1]) for r in open("data/readings.csv").read().splitlines()[1:])
        """
    ),
    code(
        """
        %%capsule
        open("private/token.txt").read()
        """,
        "raises-exception",
    ),
    code(
        """
        with open(audit) as f:
            events = [json.loads(line) for line in f]
        for e in events:
            print(json.dumps({k: v for k, v in e.items() if k in ("event", "kind", "target", "granted_by", "what", "layer")}))
        """,
        "check",
        id="audit-log",
    ),
    md(
        """
        Each line is one JSON object (the cell above prints a few fields of each; the file
        also has a timestamp, the capability id, scope, use count and state). Read from the
        top: the policy change that switched the log on, the cell's read grant, the default
        import of `statistics` and its use, the read and its use, the grant expiring when
        the cell ended, and the refused read of the token with the layer that refused it.

        ## What you learned

        * `CapsulePolicy` is the ceiling; cell flags and `%capsule grant` ask for less.
        * `readable_paths` / `writable_paths` bound path grants; `denied_paths` and
          Jupyter's own folders are never grantable; the working directory is never
          writable (write-then-import).
        * Imports come in three tiers: default, grantable, denied.
        * Put the policy in a configuration file; the capsule kernel seals it at start.
        * `audit_log` keeps every event as JSON lines.

        Next: [05 · The escape gallery](05-escape-gallery.ipynb).
        """
    ),
    md("Finally, an ordinary cell removes the lesson's scratch folder again."),
    code(
        """
        import shutil

        os.chdir(os.path.expanduser("~"))
        shutil.rmtree(project, ignore_errors=True)
        shutil.rmtree(profile, ignore_errors=True)
        """,
        id="cleanup",
    ),
]
