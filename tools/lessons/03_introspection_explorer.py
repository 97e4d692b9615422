"""Lesson 03: the introspection explorer (``ipycap.explain`` / ``%capsule explain``).

Seven kinds of object (an instance with private state, a function, a bound method, a class, a
module, a dict, a generator) seen raw, through their proxy and in rexec mode; each thing a
proxy hides is tied to the escape it would enable.
"""

from build_notebooks import code, md

NAME = "03-introspection-explorer"
KERNEL = "python3"

CELLS = [
    md(
        """
        # 03 · The introspection explorer

        Python lets any code look inside any object: `type(x)`, `x.__dict__`, `vars(x)`,
        `dir(x)`, a method's `__self__`, a function's `__globals__`. That openness is what
        makes Python pleasant, and it is also how nearly every Python sandbox was escaped.

        `ipycap.explain(obj)` runs the same list of introspection probes on one object three
        ways and shows the results side by side:

        | column | who runs the probe |
        |---|---|
        | **raw object (trusted)** | an ordinary cell, with full authority |
        | **proxy (capsule)** | a capsule in the default proxy mode, seeing `obj` through its proxy |
        | **rexec mode (capsule)** | a capsule in `--mode rexec` (underscore introspection off) |

        A ✖ marks an ipycap refusal and names the layer that refused (`membrane`: the proxy;
        `guard`: the attribute rule for every object; `builtins`: the capsule's builtins and
        module views). Python's own errors (`TypeError: unhashable type`) are shown unmarked.
        The explorer never changes what it explains: `setattr` is described, not run, and an
        iterator is never advanced. `%capsule explain NAME` does the same for a name in your
        namespace.

        For every thing the proxy hides, this lesson names the escape it would enable.
        """
    ),
    code(
        """
        %load_ext ipycap
        import ipycap
        """
    ),
    md(
        """
        ## The specimens

        One ordinary cell creates one object of each kind. Nothing here is secret in a real
        sense; `_pin` and the dict's `_token` stand in for anything private.
        """
    ),
    code(
        """
        import random


        class Account:
            _rate = 0.02  # private class state

            def __init__(self, owner, pin):
                self.owner = owner
                self._pin = pin  # private instance state

            def greeting(self):
                return f"Hello, {self.owner}!"


        def add_interest(balance, rate=0.02):
            return round(balance * (1 + rate), 2)


        def countdown(n):
            while n:
                yield n
                n -= 1


        acct = Account("Ada", pin=1234)
        greet = acct.greeting
        settings = {"theme": "dark", "_token": "CANARY-settings"}
        ticker = countdown(3)
        """
    ),
    md(
        """
        ## 1. An instance with private state
        """
    ),
    code('ipycap.explain(acct, name="acct")', "check", id="instance"),
    md(
        """
        What the proxy keeps working: `type(acct)` and `acct.__class__` (a proxy of the
        class, so `isinstance(acct, type(acct))` is still `True`), `dir` (public names only),
        `repr`, `hash`, `==`. What it hides, and why:

        * **`vars(acct)` / `acct.__dict__`**: the instance dictionary holds every private
          field. Handing it out would reveal `_pin`, and a live dict would let the capsule
          rewrite the object behind the proxy's back. This is the first thing `Bastion`
          was written to stop.
        * **`acct._pin`**: private state by convention. The proxy enforces the convention.
        * **`acct.greeting.__self__`**: a bound method's `__self__` is the *raw* object. One
          attribute and the membrane is gone: this is how "I wrapped the object, but not its
          methods" proxies leak.
        * **`acct.greeting.__func__` / `__globals__`**: the function behind the method, and
          through it the globals of the module it was defined in (your notebook), which hold
          `__builtins__` and therefore `__import__`. The pyjail classic
          `f.__globals__['__builtins__']['__import__']('os')` starts here.
        * **`setattr(acct, ...)`**: read-only means trusted code can rely on its objects not
          changing under it. A capsule that could set `acct.owner` could change what your own
          later cells do. (`--writable acct` grants it per cell.)

        In rexec mode the same secrets are refused by the **guard** instead, because every
        underscore name is off, including harmless ones like `__class__`.
        """
    ),
    md(
        """
        ## 2. A function

        `%capsule explain NAME` is the same explorer as a line magic:
        """
    ),
    code("%capsule explain add_interest", "check", id="function"),
    md(
        """
        A function proxy can be *called* (that is the point of passing it to a capsule) but
        not opened. `dir()` through the proxy is empty: functions have no public attributes.

        * **`__globals__`**: as above, the defining module's namespace, `__builtins__`
          included. Every "any outside function is a way out" escape uses it.
        * **`__dict__`**: function attributes (decorators store state there).
        * Not in the table but refused for the same reason: `__code__` (swap a function's
          code, or read its constants), `__closure__` (the cells a closure captured: often the
          very object a wrapper was meant to protect), `__defaults__` / `__kwdefaults__`
          (mutable defaults shared with trusted callers).
        """
    ),
    md(
        """
        ## 3. A bound method
        """
    ),
    code('ipycap.explain(greet, name="greet")', id="method"),
    md(
        """
        Here the method itself is the protected object. `greet.__self__` would return the raw
        `acct` with its `_pin`, and `greet.__func__` the raw function: both are refused by the
        membrane. Calling `greet()` works, and returns a plain string.
        """
    ),
    md(
        """
        ## 4. A class
        """
    ),
    code('ipycap.explain(Account, name="Account")', "check", id="class"),
    md(
        """
        * **`Account.__dict__`**: the class namespace holds the raw functions (and so their
          `__globals__`) and private class state such as `_rate`.
        * **`Account._rate`**: private class state, hidden like private instance state.
        * **`Account.__subclasses__()`**: the list of every class derived from this one. On
          `object` it is the list of every class in the interpreter, and walking it finds a
          class whose methods carry `os` in their globals: the escape that killed rexec once
          new-style classes made `object` reachable from any literal (lesson 05 runs it).
        * **`setattr(Account, ...)`**: a class attribute write is a monkeypatch. It changes
          the behaviour of every instance, in trusted code too.

        Note what still works: a capsule can call `Account("Bob", 0)` to make a new account
        (through the proxy, so the new object is protected as well).
        """
    ),
    md(
        """
        ## 5. A module

        Modules a capsule imports, and modules in your namespace, are seen as **module views**
        made by the capsule's builtins: the public functions and constants, nothing else.
        The `raw` column of this table contains the module's file path, which differs from
        machine to machine, so this cell's stored output is not compared by the tests.
        """
    ),
    code('ipycap.explain(random, name="random")', id="module"),
    md(
        """
        * **`random.__dict__` and private names**: `random` keeps `import os as _os` at module
          level. A capsule that could read `random._os` would hold `os`, denied import or not.
          Many standard modules keep such private imports (`_os`, `_sys`, `_warnings`), which
          is why a module view gives out public names only:
        """
    ),
    code(
        """
        %%capsule
        import random
        random._os
        """,
        "raises-exception",
        "check",
        id="module-private",
    ),
    md(
        """
        * **a method's `__self__`**: `random.choice` is a bound method of a hidden
          `random.Random` instance; its `__self__` and `__func__.__globals__` lead to the same
          module globals, so the guard refuses them.
        """
    ),
    md(
        """
        ## 6. A dict
        """
    ),
    code('ipycap.explain(settings, name="settings")', "check", id="dict"),
    md(
        """
        A dict is different: its *contents* are its public interface. The proxy does not hide
        the `_token` key (keys are data, not attributes), and iterating gives every key. What
        it refuses is change: item assignment, `update`, `pop`, `clear` (and every other
        mutating method of the builtin containers) are refused by the membrane.
        """
    ),
    code(
        """
        %%capsule
        print(settings["theme"], len(settings))
        settings["theme"] = "light"
        """,
        "raises-exception",
        "check",
        id="dict-write",
    ),
    md(
        """
        If a capsule must not see a dict at all, do not give it the dict: `--hide settings`
        removes the name from the capsule's view (it is then simply undefined).
        """
    ),
    code(
        """
        %%capsule --hide settings
        settings
        """,
        "raises-exception",
        "check",
        id="dict-hidden",
    ),
    md(
        """
        ## 7. A generator

        Generators (and coroutines, and async generators) carry their **frame**: `gi_frame`,
        and from it `f_back` (the frame that resumed them, i.e. the caller), `f_globals` and
        `f_builtins`. That was RestrictedPython's CVE-2023-37271: its policy checked attribute
        *names* for a leading underscore, `gi_frame` has none, and the caller's frame held the
        unrestricted globals. This table's raw column shows the frame with a file path, so it
        is not compared either.
        """
    ),
    code('ipycap.explain(ticker, name="ticker")', id="generator"),
    md(
        """
        Look at the **rexec** column of `ticker.gi_frame`: it is refused by the membrane, not
        by rexec's underscore rule, which would have let it through exactly as it let
        RestrictedPython's through. And frames are refused even on a generator the capsule
        wrote itself, where everything else is open: no capsule object ever yields a frame.
        """
    ),
    code(
        """
        %%capsule
        def countdown(n):
            while n:
                yield n
                n -= 1

        mine = countdown(3)
        print(next(mine), type(mine).__name__)
        mine.gi_frame.f_back.f_globals
        """,
        "raises-exception",
        "check",
        id="own-generator",
    ),
    md(
        """
        ## What a proxy hides, and the escape each one closes

        | hidden | the escape it would enable | layer |
        |---|---|---|
        | `__dict__`, `vars()`, `_private` | read private state; rewrite an object behind its proxy | membrane |
        | `method.__self__`, `__func__` | the raw object, past the membrane in one step | membrane / guard |
        | `f.__globals__`, `__builtins__` | the defining module, its builtins, `__import__('os')` | membrane / guard |
        | `__code__`, `__closure__`, `__defaults__` | replace or read a function's code and captured objects | membrane / guard |
        | `cls.__subclasses__()` | every class in the interpreter, including ones holding `os` | membrane / guard |
        | `cls.__dict__`, `setattr(cls, …)` | raw functions; monkeypatching trusted classes | membrane |
        | `module._private`, `module.__dict__` | modules' private imports (`random._os`) | builtins (module view) |
        | item assignment, `update`, `pop`, ... | changing trusted data under trusted code | membrane |
        | `gi_frame`, `cr_frame`, `tb_frame`, `f_back` | the caller's frame and its globals (CVE-2023-37271) | guard (even on own objects) |

        What a proxy does **not** hide: public attributes and methods, `type()` (as a proxy of
        the class), `isinstance`, `len`, iteration, operators, `repr`, `hash`, `==`. Ordinary
        code needs those, and none of them hands out authority.

        Try it on your own objects: `%capsule explain NAME`.

        Next: [04 · Writing a policy](04-writing-a-policy.ipynb).
        """
    ),
]
