"""Lesson 02: the 2003 python-dev argument (proxies vs rexec) made runnable.

The same introspection probes run on objects a capsule created itself and on protected
objects from the user namespace, in proxy mode and in rexec mode, side by side; the lesson
ends on why the proxy approach keeps ordinary code working.
"""

from build_notebooks import code, md

NAME = "02-proxies-vs-rexec"
KERNEL = "python3"

CELLS = [
    md(
        """
        # 02 · Proxies vs rexec: the 2003 argument, runnable

        Python once shipped a sandbox. `rexec` ran code in *restricted execution mode*: when a
        frame's `__builtins__` was not the real builtins, the interpreter closed off a handful
        of introspection attributes (a function's `func_globals`, a class's `__dict__`, a
        method's `im_self`, ...), and `Bastion` wrapped objects so that attributes starting
        with `_` could not be read. New-style classes (Python 2.2) opened new ways out, and in
        January 2003 both modules were made to raise `RuntimeError` on use ("This code is not
        secure in Python 2.2 and 2.3", Guido van Rossum's checkin; *What's New in Python 2.3*
        says new-style classes "provide new ways to break out of the restricted execution
        environment").

        Two months later, in the python-dev thread **"Capabilities"** (March 2003), Jeremy
        Hylton argued that the *proxy approach* (Zope 3's security proxies, by Jim Fulton)
        "eliminates the need for rexec": instead of switching introspection off for **all**
        code, wrap the **protected** objects in proxies, and let untrusted code introspect
        what it creates itself as freely as any Python code does. Guido van Rossum replied in
        "Re: Capabilities" that the introspection restrictions were "clearly not enough" on
        their own, and that the part which *is* essential is control of `__builtins__` (and so
        of `__import__`).

        ipycap implements both sides of that argument, so you can compare them:

        * `%%capsule` (proxy mode, the default): own objects are introspectable; protected
          objects are proxies that hide private state.
        * `%%capsule --mode rexec`: underscore introspection is denied on **every** object,
          the way restricted execution did it.

        Both modes share the parts Guido called essential (capsule builtins with a guarded
        `__import__`) and the parts the 2003 design lacked (a guard for shared intrinsics,
        an audit-hook tripwire).
        """
    ),
    code("%load_ext ipycap"),
    md(
        """
        ## A protected object

        An ordinary (trusted) cell defines an account with a private PIN, a method that uses
        introspection on `self`, and a plain function. Capsules will see `acct` and `helper`
        only through proxies.
        """
    ),
    code(
        """
        class Account:
            def __init__(self, owner, pin):
                self.owner = owner
                self._pin = pin

            def kind(self):
                return type(self).__name__


        def helper(x):
            return x + 1


        acct = Account("Ada", pin=1234)
        """
    ),
    md(
        """
        ## Ordinary code, written by the capsule

        Here is the kind of code people write every day: a small class that keeps a private
        cache and prints itself using `type(self).__name__` and `vars(self)`. In proxy mode
        the capsule created `Reading`, so it is an **own** object and every probe works.
        """
    ),
    code(
        """
        %%capsule
        class Reading:
            def __init__(self, place, celsius):
                self.place = place
                self.celsius = celsius
                self._cache = {}

            def __repr__(self):
                fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if k[0] != "_")
                return f"{type(self).__name__}({fields})"


        Reading("Oslo", 4.5)
        """,
        "check",
        id="own-proxy",
    ),
    md(
        """
        The very same cell in rexec mode fails on its third line: `self._cache = {}` is an
        underscore attribute, and rexec mode denies those on every object, including the
        capsule's own. The refusal comes from the **guard**, the layer that decides which
        attributes capsule code may get.
        """
    ),
    code(
        """
        %%capsule --mode rexec
        class Reading:
            def __init__(self, place, celsius):
                self.place = place
                self.celsius = celsius
                self._cache = {}

            def __repr__(self):
                fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if k[0] != "_")
                return f"{type(self).__name__}({fields})"


        Reading("Oslo", 4.5)
        """,
        "raises-exception",
        "check",
        id="own-rexec",
    ),
    md(
        """
        ## Protected objects: hidden in both modes

        The user's `acct` is protected. Its public side works in both modes (the method runs
        as trusted code, so `type(self).__name__` inside it is fine), while its private PIN is
        hidden. In proxy mode the **membrane** (the proxy) refuses, and says that this cannot
        be granted:
        """
    ),
    code(
        """
        %%capsule
        print(acct.owner, acct.kind())
        acct._pin
        """,
        "raises-exception",
        "check",
        id="protected-proxy",
    ),
    md("In rexec mode the guard refuses first, by name, before the proxy is even asked:"),
    code(
        """
        %%capsule --mode rexec
        print(acct.owner, acct.kind())
        acct._pin
        """,
        "raises-exception",
        "check",
        id="protected-rexec",
    ),
    md(
        """
        ## Every probe, side by side

        Now the whole comparison at once. The trusted cell below uses ipycap's engine
        directly: `Capsule(protected=..., mode=...)` is what `%%capsule` builds for each cell,
        and `capsule.run(source)` runs capsule code and returns its last value. Each capsule
        first defines its own `Note` class, an instance `note` and a function `shout`; then
        every probe runs twice, on the own object and on the protected one, in each mode.
        ✔ is a value; ✖ names the layer that refused.
        """
    ),
    code(
        '''
        import html

        from IPython.display import HTML

        from ipycap import CapabilityError, Capsule

        OWN = """
        class Note:
            _draft = True                  # private state (a class attribute)
            def __init__(self, text):
                self.text = text
            def kind(self):
                return type(self).__name__ # introspection inside a method
        note = Note("hello")
        def shout(s):
            return s.upper()
        """

        PROBES = [  # (probe, on the capsule's own objects, on protected objects)
            ("type(x)", "type(note)", "type(acct)"),
            ("x.__class__", "note.__class__", "acct.__class__"),
            ("vars(x)", "vars(note)", "vars(acct)"),
            ("x.__dict__", "note.__dict__", "acct.__dict__"),
            ("dir(x) (public names)", "[n for n in dir(note) if n[0] != '_']",
             "[n for n in dir(acct) if n[0] != '_']"),
            ("a private attribute", "note._draft", "acct._pin"),
            ("f.__name__", "shout.__name__", "helper.__name__"),
            ("type(self).__name__ in a method", "note.kind()", "acct.kind()"),
            ("f.__globals__", "shout.__globals__", "helper.__globals__"),
        ]


        def outcome(capsule, source):
            try:
                return "✔ " + repr(capsule.run(source))
            except CapabilityError as err:
                return f"✖ {err.layer}"
            except Exception as err:  # Python's own errors, not refusals
                return f"{type(err).__name__}: {err}"


        capsules = {}
        for mode in ("proxy", "rexec"):
            capsules[mode] = Capsule(protected={"acct": acct, "helper": helper}, mode=mode)
            capsules[mode].run(OWN)

        head = ["probe", "own · proxy mode", "own · rexec mode",
                "protected · proxy mode", "protected · rexec mode"]
        rows = []
        for label, own, protected in PROBES:
            cells = [label] + [
                outcome(capsules[mode], source)
                for source in (own, protected)
                for mode in ("proxy", "rexec")
            ]
            rows.append(cells)


        def table(head, rows):
            def tr(cells, tag):
                return "<tr>" + "".join(
                    f"<{tag} style='text-align:left'>{html.escape(c)}</{tag}>" for c in cells
                ) + "</tr>"
            return HTML("<table>" + tr(head, "th") + "".join(tr(r, "td") for r in rows) + "</table>")


        table(head, rows)
        ''',
        "check",
        id="side-by-side",
    ),
    md(
        """
        Read the table column by column:

        * **own · proxy mode** is ordinary Python. The capsule made `Note`, so `vars`,
          `__dict__`, `__class__`, private attributes and `type(self).__name__` all work. Only
          `__globals__` is refused, on every function, own or not: frames, code objects and
          globals are the interpreter's machinery (a capsule's globals hold its builtins,
          the very functions that enforce its grants), so they are never given out.
        * **own · rexec mode** is where rexec hurt: the capsule cannot look at what it made
          itself. `type(x)` still works (it is a call, not an attribute), but the method that
          says `type(self).__name__` fails, and so would every `__repr__`, pretty printer or
          serializer the capsule writes that looks at `vars(self)` or `type(self)`. (Standard
          library helpers such as `dataclasses` still work, because *their* code is trusted:
          one more rule a learner has to memorise.)
        * **protected · proxy mode** hides exactly the private state: `__dict__`, `_pin`,
          `__globals__`. `type()` and `__class__` give a proxy of the class, so `isinstance`
          keeps working, and `dir()` lists only the public names.
        * **protected · rexec mode** refuses the same things, plus harmless ones
          (`helper.__name__`).

        The protected columns show the same *secrets* kept; the own columns show the cost.
        """
    ),
    md(
        """
        ## Why proxies alone were not enough

        Guido's warning in "Re: Capabilities" still holds: hiding the protected objects is not
        enough when the language hands every piece of code shared objects that reach
        everything. The classic new-style-class escape starts from an empty tuple, climbs to
        `object`, and lists every class in the interpreter, including ones whose methods carry
        the globals of `os`. No proxy is involved, so no proxy can stop it. In ipycap the
        **guard** refuses `__subclasses__` on every object, in both modes:
        """
    ),
    code(
        """
        %%capsule
        ().__class__.__base__.__subclasses__()
        """,
        "raises-exception",
        "check",
        id="subclass-walk",
    ),
    md(
        """
        `ipycap.explain` (or `%capsule explain NAME`) runs a longer list of probes on one of
        your objects: raw in trusted code, through its proxy, and in rexec mode. Lesson 03
        explores it in depth; here it is on `acct`:
        """
    ),
    code("%capsule explain acct", "check", id="explain"),
    md(
        """
        ## Conclusion

        rexec drew the line around **names**: underscore attributes were off for everyone.
        That punished the capsule's own code (the `Reading` class could not even be
        constructed) and still leaked, because shared intrinsics reach authority through
        names rexec had not thought of.

        The proxy approach draws the line around **objects**: what you protect enters the
        capsule through a membrane that hides private state, forwards public behaviour, and
        can be revoked; what the capsule creates is its own. The guard then closes the shared
        intrinsics (`__subclasses__`, `__globals__`, frames, `print.__self__`, ...) for
        everyone, and the builtins control imports. Ordinary code keeps working, which is what
        keeps a restriction switched on.

        Next: [03 · The introspection explorer](03-introspection-explorer.ipynb).
        """
    ),
]
