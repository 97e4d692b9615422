"""Lesson 05: the escape gallery.

Historical escapes from restricted Python (the rexec/Bastion era, RestrictedPython and
AccessControl advisories, zope.security proxy leaks, pyjail classics, the notebook surface),
each attempted in a capsule against a canary this notebook creates, each refused with the
layer that stopped it, and a sentence on why it worked elsewhere.
"""

from build_notebooks import code, md

NAME = "05-escape-gallery"
KERNEL = "python3"


def escape(
    ident: str, title: str, story: str, source: str, *, raises: bool = True, check: bool = True
) -> list:
    """One gallery entry: a heading with its story, then the attempt (cell id ``g-<ident>``)."""
    tags = (("raises-exception",) if raises else ()) + (("check",) if check else ())
    return [md(f"### {title}\n\n{story.strip()}"), code(source, *tags, id=f"g-{ident}")]


GALLERY = [
    md("## The rexec and Bastion era (Python 2.2, 2003)"),
    *escape(
        "subclasses",
        "1 · Subclass walking",
        """
        From any literal, `__class__` → `object` → `__subclasses__()` lists every class in the
        interpreter; `os._wrap_close` is one of them, and its methods carry the globals of
        `os`. New-style classes made `object` reachable from everything, which is why rexec
        was withdrawn. **Layer: guard** (`__subclasses__` is never given out).
        """,
        """
        %%capsule
        walk = ().__class__.__base__.__subclasses__()
        [c for c in walk if c.__name__ == "_wrap_close"][0].__init__.__globals__["popen"]("cat secret.txt").read()
        """,
    ),
    *escape(
        "print-self",
        "2 · `print.__self__` is the builtins module",
        """
        A builtin function's `__self__` is the module it lives in, so any builtin hands out
        the real `builtins`, with the real `open` and `__import__`, no matter how carefully a
        sandbox built its own builtins dict. **Layer: guard.**
        """,
        """
        %%capsule
        print.__self__.open("secret.txt").read()
        """,
    ),
    *escape(
        "bastion-self",
        "3 · Bastion's bound methods (`im_self`)",
        """
        `Bastion` hid attributes starting with `_`, but handed out bound methods, and a bound
        method's `im_self` (today `__self__`) is the unwrapped object. Here `vault.status` is
        a proxied method, and it reveals nothing behind it. **Layer: guard.**
        """,
        """
        %%capsule
        vault.status.__self__._token
        """,
    ),
    md("## RestrictedPython and AccessControl advisories"),
    *escape(
        "gi-frame",
        "4 · Generator frames (CVE-2023-37271)",
        """
        RestrictedPython refused attribute names starting with `_`; `gi_frame` has none. A
        generator's frame leads, through `f_back`, to the frame of whoever resumed it, and its
        `f_globals` are unrestricted. **Layer: guard** (frames are refused on every object,
        even the capsule's own generators).
        """,
        """
        %%capsule
        def probe():
            yield
        g = probe()
        g.gi_frame.f_back.f_globals["vault"]._token
        """,
    ),
    *escape(
        "traceback",
        "5 · Traceback frames",
        """
        The same escape through an exception: `__traceback__.tb_frame.f_back` reaches the
        caller's frame. Every frame, code and traceback attribute is in the guard's
        never-list. **Layer: guard.**
        """,
        """
        %%capsule
        try:
            1 / 0
        except ZeroDivisionError as err:
            err.__traceback__.tb_frame.f_back.f_globals["vault"]._token
        """,
    ),
    *escape(
        "format",
        "6 · `str.format` walks attributes in C (CVE-2023-41039)",
        """
        `'{0.__class__}'.format(x)` looks up attributes inside the C implementation of
        `str.format`, where no attribute check written in Python ever runs. RestrictedPython's
        guard on `getattr` never saw it. In a capsule `.format` is rewritten to a guarded
        formatter that applies the same rules as `getattr`. **Layer: guard.**
        """,
        """
        %%capsule
        "{0.__class__.__base__.__subclasses__}".format(())
        """,
    ),
    *escape(
        "format-map",
        "7 · `format_map` (CVE-2024-47532)",
        """
        The fix for the previous advisory covered `format`, and `format_map` was left open.
        Here the field name reaches for the vault's private token; the guarded formatter asks
        the proxy, and the proxy refuses. **Layer: membrane.**
        """,
        """
        %%capsule
        "{v._token}".format_map({"v": vault})
        """,
    ),
    *escape(
        "formatter",
        "8 · `string.Formatter` (AccessControl, CVE-2021-32807)",
        """
        Zope's AccessControl protected `str.format`, but the `string` module's `Formatter`
        class formats through the same attribute walk. Reaching a function's `__globals__`
        through it gives the defining module. **Layer: membrane** (`helper` is a proxy).
        """,
        """
        %%capsule
        import string
        string.Formatter().vformat("{0.__globals__}", [helper], {})
        """,
    ),
    *escape(
        "nfkc",
        "9 · NFKC look-alike names (RestrictedPython 7.2)",
        """
        Python normalises identifiers with NFKC, so `__𝘥𝘪𝘤𝘵__` (mathematical italic letters)
        *is* `__dict__` to the compiler; a check that compares the raw source text with
        `"__dict__"` misses it. ipycap's gate normalises names the way the parser does, so
        the attribute is judged as `__dict__`. **Layer: membrane.**
        """,
        """
        %%capsule
        vault.__𝘥𝘪𝘤𝘵__
        """,
    ),
    *escape(
        "str-subclass",
        "10 · A `str` subclass that lies (RestrictedPython 7.2)",
        """
        `getattr(x, name)` with a `str` subclass whose `startswith` says "no underscore here"
        defeats any check written as `name.startswith("_")`. The membrane decides on the exact
        string value, not on what the object claims. **Layer: membrane.**
        """,
        """
        %%capsule
        class Innocent(str):
            def startswith(self, *args):
                return False

        getattr(vault, Innocent("_token"))
        """,
    ),
    *escape(
        "except-star",
        "11 · `except*` type confusion (CVE-2025-22153)",
        """
        A CPython bug in `except*` (gh-128049) let restricted code confuse types and escape
        RestrictedPython. New syntax is refused until someone has reviewed it; `except*` has
        been reviewed and stays refused. **Layer: gate.**
        """,
        """
        %%capsule
        try:
            raise ExceptionGroup("g", [ValueError(1)])
        except* ValueError as group:
            group
        """,
    ),
    md("## zope.security proxy leaks"),
    *escape(
        "object-getattribute",
        "12 · `object.__getattribute__(proxy, ...)`",
        """
        Guido van Rossum's warning in the 2003 "Capabilities" thread: a proxy is an object,
        so `object.__getattribute__(p, 'x')` reads the proxy's own slots, bypassing its
        `__getattr__`. Generic accessors are in the guard's never-list. **Layer: guard.**
        """,
        """
        %%capsule
        object.__getattribute__(vault, "_token")
        """,
    ),
    *escape(
        "exception-obj",
        "13 · The object inside an exception",
        """
        A failed lookup's `AttributeError` carries `.obj`, the object it failed on; a proxy
        that raises with the raw object inside leaks it. Exceptions cross the membrane
        scrubbed, so what comes back is still the proxy. **Layer: membrane.**
        """,
        """
        %%capsule
        try:
            vault.no_such_attribute
        except AttributeError as err:
            caught = err.obj
        caught._token
        """,
    ),
    *escape(
        "reflected-eq",
        "14 · Rich comparison hands over the operand",
        """
        `proxy == spy` makes Python call `spy.__eq__(other)`, and a proxy that unwraps itself
        to compare passes the raw object to the attacker. The membrane forwards operators
        without ever unwrapping, so the spy only ever sees the proxy. **Layer: membrane.**
        """,
        """
        %%capsule
        seen = []

        class Spy:
            def __eq__(self, other):
                seen.append(other)
                return False

        vault == Spy()
        seen[0]._token
        """,
    ),
    *escape(
        "type-dict",
        "15 · The class dictionary",
        """
        `type(p).__dict__` on a proxy that forwards `type()` gives the class's raw functions,
        and from them `__globals__`. Through the membrane, `type(vault)` is a proxy of the
        class, and its `__dict__` is hidden. **Layer: membrane.**
        """,
        """
        %%capsule
        type(vault).__dict__["status"].__globals__
        """,
    ),
    md("## Pyjail classics"),
    *escape(
        "globals-builtins",
        "16 · `f.__globals__['__builtins__']`",
        """
        Any function defined outside the sandbox carries its module's globals, and with them
        the real builtins. The most common pyjail escape of all. **Layer: membrane.**
        """,
        """
        %%capsule
        helper.__globals__["__builtins__"]["open"]("secret.txt").read()
        """,
    ),
    *escape(
        "decorator-exec",
        "17 · `@exec` as a decorator",
        """
        Jails that forbid calls (no parentheses) still allow decorators, which are calls:
        the lambda turns the class into a string and `@exec` runs it. A capsule's `exec` is
        its own: the source goes through the gate, and the import through the capsule's
        builtins. **Layer: builtins.**
        """,
        """
        %%capsule
        @exec
        @lambda _: "import os"
        class Payload:
            pass
        """,
    ),
    *escape(
        "metaclass-getitem",
        "18 · A metaclass with `__getitem__ = exec`",
        """
        Another call without parentheses: subscripting a class calls its metaclass's
        `__getitem__`, here the builtin `exec`. In a capsule `exec` is a capsule function, so
        Python binds it as a method and it refuses the class it is handed (spelled
        `staticmethod(exec)`, the string would reach the gate and the import would be refused
        as in 17). **Layer: builtins.**
        """,
        """
        %%capsule
        class Meta(type):
            __getitem__ = exec

        class Payload(metaclass=Meta):
            pass

        Payload["import os"]
        """,
    ),
    *escape(
        "codecs",
        "19 · Codecs: imports and hidden payloads",
        """
        Codecs import modules by name on first use (`'x'.encode('idna')` imports
        `encodings.idna`), without calling `__import__`, so jails that hook `__import__` miss
        them; and `unicode_escape` hides a payload from jails that filter source text. Here the
        codec's import is a harmless standard-library module (the tripwire checks it and lets
        it through), and the decoded payload still has to pass the gate and the builtins.
        **Layer: builtins.**
        """,
        """
        %%capsule
        print("bücher".encode("idna"))
        exec(b"\\\\x69mport os".decode("unicode_escape"))
        """,
    ),
    *escape(
        "help",
        "20 · `help()` opens a pager",
        """
        `help()` pipes its text through a pager (`less`), and the pager lets the reader run
        shell commands with `!`. **Layer: builtins** (`help` is a refusing stub; use `obj?`).
        """,
        """
        %%capsule
        help(vault)
        """,
    ),
    *escape(
        "breakpoint",
        "21 · `breakpoint()` starts a debugger",
        """
        `pdb` evaluates whatever you type, with the frame's real globals, and can walk up to
        the caller's frame. **Layer: builtins.**
        """,
        """
        %%capsule
        breakpoint()
        """,
    ),
    *escape(
        "dunder-del",
        "22 · `__del__` runs later (part 1: plant it)",
        """
        A finalizer runs whenever the object is collected, possibly long after the sandboxed
        cell ended and the sandbox was "switched off". This capsule succeeds: it only defines
        a class and hands an instance out with `--export`.
        """,
        """
        %%capsule --export parcel
        class Parcel:
            def __del__(self):
                print(open("secret.txt").read())

        parcel = Parcel()
        """,
        raises=False,
        check=False,
    ),
    *escape(
        "dunder-del-later",
        "22 · `__del__` runs later (part 2: trigger it from a trusted cell)",
        """
        An ordinary cell drops the object and collects garbage, and the finalizer runs *now*,
        inside trusted code. It is still capsule code: it runs with the capsule's builtins,
        whose `open` refuses. Python never propagates an exception from `__del__`; it reports
        it as "Exception ignored" through `sys.unraisablehook`, which is why this cell does not
        fail. (The cell installs a one-line hook for the duration, so the report fits on one
        line.) **Layer: builtins** (and if the finalizer reached a library's `open`, the
        tripwire would refuse it, because capsule code is on the stack).
        """,
        """
        import gc
        import sys


        def one_line(unraisable):
            err = unraisable.exc_value
            print(f"Exception ignored in {unraisable.object.__qualname__}: {type(err).__name__}: {err}")


        sys.unraisablehook = one_line
        del parcel
        gc.collect()
        sys.unraisablehook = sys.__unraisablehook__
        """,
        raises=False,
    ),
    *escape(
        "symlink",
        "23 · A symlink inside a granted folder",
        """
        `data/shortcut.txt` is a symlink to the secret. A sandbox that checks the path as
        written lets it through; ipycap resolves every path before checking it, so the grant
        of `data/` does not cover what the link points to. **Layer: builtins.**
        """,
        """
        %%capsule --allow-read data
        open("data/shortcut.txt").read()
        """,
    ),
    *escape(
        "proc-root",
        "24 · `/proc/self/root`",
        """
        On Linux, `/proc/self/root/...` is another spelling of `/...`, a classic way past
        prefix checks. Resolved, it is just the real path, and no grant covers it.
        **Layer: builtins.**
        """,
        """
        %%capsule
        open("/proc/self/root" + "/etc/hostname").read()
        """,
    ),
    *escape(
        "library-open",
        "25 · A library opens the file for you",
        """
        The capsule's `open` is guarded, but a granted library calls the *real* `open` from
        its own module. The audit hook sees the `open` event, sees capsule code on the stack,
        and applies the capsule's grants. **Layer: tripwire.**
        """,
        """
        %%capsule --allow-import zipfile
        import zipfile
        zipfile.ZipFile("secret.txt")
        """,
    ),
    *escape(
        "loader",
        "26 · `module.__loader__`",
        """
        Every module carries its loader, and `BuiltinImporter.load_module('os')` or a file
        loader imports without `__import__`. Module views give out public names only.
        **Layer: builtins** (the module view).
        """,
        """
        %%capsule
        import math
        math.__loader__.load_module("os")
        """,
    ),
    *escape(
        "builtins-name",
        "27 · Naming `__builtins__`",
        """
        Many jails hand the sandbox a restricted `__builtins__` and forget that code can name
        it, index it, or replace it. Reserved names are refused before anything runs.
        **Layer: gate.**
        """,
        """
        %%capsule
        __builtins__["open"]("secret.txt").read()
        """,
    ),
    md(
        """
        ## The notebook surface

        Jupyter treats everything a cell runs, and everything it displays, as trusted. These
        doors exist only in notebooks.
        """
    ),
    *escape(
        "shell",
        "28 · `!cat`",
        """
        In IPython `!cmd` runs a shell command; the line is rewritten to
        `get_ipython().system(...)` before Python sees it. The gate refuses `!` and `%` lines
        in a capsule. **Layer: gate.**
        """,
        """
        %%capsule
        !cat secret.txt
        """,
    ),
    *escape(
        "get-ipython",
        "29 · `get_ipython()`",
        """
        The shell object can run any code, any magic, any shell command. It is simply not in
        a capsule's builtins, so the refusal surfaces as Python's own `NameError` rather than
        an ipycap message. **Layer: capsule builtins** (the name does not exist there).
        """,
        """
        %%capsule
        get_ipython().system("cat secret.txt")
        """,
    ),
    *escape(
        "sys-modules",
        "30 · `sys.modules`",
        """
        `sys.modules['os']` is `os`, already imported by someone else, no import needed.
        A capsule's `sys` is a capsule-safe view (`stdout`, `stderr`, `version_info`, ...),
        which has no `modules` attribute at all, so this too is Python's own error.
        **Layer: capsule builtins** (the `sys` view).
        """,
        """
        %%capsule
        import sys
        sys.modules["os"].popen("cat secret.txt").read()
        """,
    ),
    *escape(
        "input",
        "31 · `input()` phishing",
        """
        A prompt that says "Session expired, re-enter your password:" looks exactly like one
        from Jupyter. `input()` is refused unless the policy or a grant allows it.
        **Layer: builtins.**
        """,
        """
        %%capsule
        input("Session expired. Password: ")
        """,
    ),
    *escape(
        "javascript",
        "32 · `display(Javascript(...))`",
        """
        The frontend runs JavaScript output as if the notebook's owner had written it: it can
        read other cells, call the kernel, or change the page. Capsule output passes the
        **output filter**, which publishes only the MIME types in
        `CapsulePolicy.output_mime_types` and never JavaScript. This one is not an exception:
        the cell keeps running and the script is simply not published (only a plain-text
        placeholder reaches the page), and the registry records a refusal by the `display`
        layer. **Layer: display** (the output filter).
        """,
        """
        %%capsule
        from IPython.display import Javascript, display
        display(Javascript("document.title = 'owned'"))
        """,
        raises=False,
    ),
]

CELLS = [
    md(
        """
        # 05 · The escape gallery

        Every in-process Python sandbox so far has been escaped, usually more than once. This
        gallery replays the published techniques, grouped by era, against ipycap. Each entry
        says where the technique comes from and why it worked there, then attempts it in a
        capsule. Every attempt aims at a **canary** this notebook creates: a secret file in a
        temporary folder and a private token on an object, never at anything real.

        Read the refusals: each names the **layer** that stopped it.

        | layer | what it does |
        |---|---|
        | gate | parses the cell; refuses `!`/`%` lines, reserved names, unreviewed syntax |
        | guard | decides every risky attribute (dunders, frames, `format`) on every object |
        | membrane | the proxies around your objects: private state hidden, writes refused |
        | builtins | the capsule's own builtins: `open`, `__import__`, `exec`, module views |
        | tripwire | a PEP 578 audit hook: what libraries do while capsule code is on the stack |
        | policy | the ceiling: what can never be granted |

        Passing this gallery is a regression suite, not a proof: in-process isolation in
        CPython has a long record of breaks, which is why the capsule kernel can add OS
        confinement underneath (lesson 06, SECURITY.md).
        """
    ),
    code("%load_ext ipycap"),
    md(
        """
        ## The canaries

        A temporary folder with `secret.txt`, a `data/` folder holding a symlink to it, an
        object with a private token, and an ordinary function.
        """
    ),
    code(
        """
        import os
        import tempfile

        lab = tempfile.mkdtemp(prefix="ipycap-gallery-")
        os.chdir(lab)
        os.makedirs("data")
        with open("secret.txt", "w") as f:
            f.write("CANARY-SECRET-gallery")
        os.symlink(os.path.join(lab, "secret.txt"), os.path.join("data", "shortcut.txt"))


        class Vault:
            def __init__(self):
                self._token = "CANARY-TOKEN-vault"

            def status(self):
                return "locked"


        def helper(x):
            return x


        vault = Vault()
        """
    ),
    *GALLERY,
    md(
        """
        ## What the registry saw

        Refusals are also events in the registry (and in the audit log, if one is set).
        Counting this session's refusal events by layer (the two plain Python errors are not
        refusal events, since nothing was refused: the names simply do not exist):
        """
    ),
    code(
        """
        from collections import Counter

        from ipycap.ipython.magics import extension_for

        registry = extension_for(get_ipython()).registry
        refusals = Counter(e["layer"] for e in registry.events if e["event"] == "refuse")
        dict(sorted(refusals.items()))
        """,
        id="tally",
    ),
    md("And the canaries are untouched:"),
    code(
        """
        open("secret.txt").read(), vault._token
        """,
        "check",
        id="canaries",
    ),
    md(
        """
        ## Why so many layers?

        Look at which layer stopped what. The membrane alone (the 2003 proxy idea) stops the
        escapes that go *through your objects*: 7, 8, 9, 10, 13, 14, 15, 16. The rest never
        touch a proxy: they start from a literal, a builtin, a generator, a string method, a
        codec, a library or the notebook itself. Those need the guard (shared intrinsics),
        the builtins (imports, files, `exec`), the gate (syntax and notebook escapes) and the
        tripwire (what libraries do on the capsule's behalf). Each layer is small, and each
        escape ever found becomes a named regression test in `tests/redteam/`.

        Next: [06 · The capsule kernel](06-capsule-kernel.ipynb), where every cell is a
        capsule and the kernel can confine itself with the operating system's help.
        """
    ),
    md("Finally, an ordinary cell removes the lesson's scratch folder again."),
    code(
        """
        import shutil

        os.chdir(os.path.expanduser("~"))
        shutil.rmtree(lab, ignore_errors=True)
        """,
        id="cleanup",
    ),
]
