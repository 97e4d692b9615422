"""Red team on the modules every capsule imports without a grant (``default_imports``).

Their public functions and classes reach a capsule raw, so their own code runs with full
authority on its behalf.  Each payload below was an escape: a complete cell that reaches its
canary (a protected ``Vault``'s private token, or trusted data handed to a capsule hook) as
plain Python — shown in a fresh interpreter, since the fixes change process-wide state (frozen
classes, a read-only dispatch table) — and does not through ipycap.

Three shapes:
- *namespace by name*: typing and enum evaluate or copy names in ``sys.modules[name]``'s
  globals for a name the capsule picks, which gave the raw ``sys`` (then frames, then the
  ``Capsule`` holding the vault), or let the capsule rewrite ``ipycap.engine.rules``;
- *the real class behind a stand-in*: ``string.Formatter.__mro__`` led to the unguarded one;
- *hooks in shared tables*: ``copy.dispatch_table``, ``pprint``'s ``_dispatch``,
  ``reprlib.aRepr`` and IPython's display classes are called by trusted code later, with
  trusted objects.
"""

from __future__ import annotations

import contextlib
import copy
import io
import pprint
import reprlib
import subprocess
import sys
import textwrap
import types

import pytest

from ipycap import Capsule

TOKEN = "TOKEN-default-modules-7f3a"

#: Walks frames with the raw getattr of the real builtins (``B``) from the raw ``sys``
#: (``rawsys``): in a capsule the ``Capsule`` object running the cell holds the vault in
#: ``protected``; in plain Python the vault is a global.
HUNT = """
def hunt(rawsys, ga):
    f = rawsys._getframe(0)
    while f is not None:
        for ns in (ga(f, 'f_locals'), ga(f, 'f_globals')):
            for v in list(ns.values()):
                try:
                    cands = [v, ga(v, 'protected', None)]
                    if type(cands[1]) is dict:
                        cands.append(cands[1].get('vault'))
                    for c in cands:
                        tok = ga(c, '_token', None)
                        if type(tok) is str:
                            return tok
                except Exception:
                    pass
        f = ga(f, 'f_back')
"""


class Vault:
    """The protected object: its token is private state."""

    def __init__(self, token: str):
        self._token = token
        self.name = "vault"


class Session:
    def __init__(self, key):
        self.key = key


class KernelStream(io.StringIO):
    """Stands in for ipykernel's OutStream: sys.stdout holds the session and its key."""

    def __init__(self, key):
        super().__init__()
        self.session = Session(key)


PLAIN_PRELUDE = f"""
import io
TOKEN = {TOKEN!r}
class Vault:
    def __init__(self, token):
        self._token = token
        self.name = 'vault'
class Session:
    def __init__(self, key):
        self.key = key
class KernelStream(io.StringIO):
    def __init__(self, key):
        super().__init__()
        self.session = Session(key)
vault = Vault(TOKEN)
"""

#: Trusted code that runs after the cell (a later copy, pformat, reprlib.repr, HTML(...)).
LATER = {
    "deepcopy": "copy.deepcopy({'cfg': vault})",
    "pformat": "pprint.pformat({'vault': vault, 'pad': 'x' * 100})",
    "reprlib": "reprlib.repr(vault)",
    "html": "from IPython.display import HTML\nHTML('<b>' + vault._token + '</b>')",
}

PAYLOADS = {
    # typing.get_type_hints evaluates a class's string annotations in the globals of
    # sys.modules[cls.__module__]; dataclasses' globals hold the raw sys and builtins.
    "typing-get-type-hints-class-module": HUNT
    + """
import typing
class C:
    __module__ = 'dataclasses'
    x: 'sys'
    y: 'builtins'
h = typing.get_type_hints(C)
loot = hunt(h['x'], h['y'].getattr)
""",
    # ForwardRef(module=...) names the namespace directly.
    "typing-forwardref-module-argument": HUNT
    + """
import typing
rawsys = typing.ForwardRef('sys', module='dataclasses')._evaluate(None, None, frozenset())
B = typing.ForwardRef('builtins', module='dataclasses')._evaluate(None, None, frozenset())
loot = hunt(rawsys, B.getattr)
""",
    # A function's annotations resolve in the globals of what its __wrapped__ unwraps to.
    "typing-get-type-hints-wrapped-globals": HUNT
    + """
import typing, dataclasses
def f(x: 'sys', y: 'builtins'): pass
f.__wrapped__ = dataclasses.fields
h = typing.get_type_hints(f)
loot = hunt(h['x'], h['y'].getattr)
""",
    # eval() puts the evaluating frame's builtins (the real ones) into a globals dict that
    # lacks '__builtins__': the capsule's own dict came back holding the real __import__.
    "typing-eval-inserts-real-builtins": HUNT
    + """
import typing
d = {}
typing.ForwardRef('int')._evaluate(d, d, frozenset())
B = d['__builtins__']
rawsys = B['__import__']('sys')
loot = hunt(rawsys, B['getattr'])
""",
    # Enum._convert_ copies a named module's globals into members: the raw sys again.
    "enum-convert-reads-module-globals": HUNT
    + """
import enum
X = enum.Enum._convert_('X', 'dataclasses', lambda n: n in ('sys', 'builtins'))
loot = hunt(X.sys.value, X.builtins.value.getattr)
""",
    # enum.global_enum writes members into sys.modules[cls.__module__]: replacing
    # ipycap.engine.rules.classify turned the guard's table off.
    "enum-global-enum-rewrites-the-guard": HUNT
    + """
import enum, json
class E(enum.Enum):
    __module__ = 'ipycap.engine.rules'
    classify = 1
    def __call__(self, *args):
        return 'allow'
enum.global_enum(E)
B = getattr(json.dumps, '__globals__')['__builtins__']
loot = hunt(B['__import__']('sys'), B['getattr'])
""",
    # The capsule's string.Formatter subclassed the real one, which __mro__ handed out; its
    # get_field traverses attributes with the raw getattr.
    "string-formatter-real-class-via-mro": HUNT
    + """
import string, json
Real = [c for c in string.Formatter.__mro__ if c.__module__ == 'string'][0]
g = Real().get_field('0.__globals__', (json.dumps,), {})[0]
B = g['__builtins__']
loot = hunt(B['__import__']('sys'), B['getattr'])
""",
    # copy.dispatch_table is copyreg's: trusted deepcopy/pickle of a Vault calls the hook
    # with the raw object.  The key matches Vault by hash and __eq__.
    "copy-dispatch-table-hook": """
import copy
loot = []
class K:
    def __hash__(self):
        return hash(type(vault))
    def __eq__(self, other):
        return True
def hook(obj):
    loot.append(obj._token)
    return (str, ('copied',))
copy.dispatch_table[K()] = hook
""",
    # pprint's class-level dispatch table: trusted pformat of a long dict calls the hook
    # with the raw dict.
    "pprint-dispatch-hook": """
import pprint
loot = []
def hook(self, obj, stream, indent, allowance, context, level):
    loot.append(obj['vault']._token)
    stream.write('{}')
pprint.PrettyPrinter._dispatch[dict.__repr__] = hook
""",
    # reprlib.repr is a bound method of the one reprlib.aRepr trusted code uses; it
    # dispatches on 'repr_' + type name, to an instance attribute if there is one.
    "reprlib-arepr-hook": """
import reprlib
loot = []
def hook(obj, level):
    loot.append(obj._token)
    return 'vault'
setattr(reprlib.aRepr, 'repr_' + type(vault).__name__, hook)
""",
    # IPython.display's classes were not frozen (only standard-library classes were).
    "ipython-display-class-hook": """
from IPython.display import HTML
loot = []
def hook(self, data=None, *args, **kwargs):
    loot.append(data)
HTML.__init__ = hook
""",
    # pprint.PrettyPrinter() kept the raw sys.stdout: in a kernel its session and key.
    "pprint-stream-raw-stdout": """
import pprint
loot = pprint.PrettyPrinter()._stream.session.key
""",
}

WHEN = {
    "copy-dispatch-table-hook": "deepcopy",
    "pprint-dispatch-hook": "pformat",
    "reprlib-arepr-hook": "reprlib",
    "ipython-display-class-hook": "html",
}


def _plain(name: str) -> str:
    """The payload as plain Python in a fresh interpreter; returns what it printed."""
    later = LATER.get(WHEN.get(name, ""), "")
    code = (
        PLAIN_PRELUDE
        + "import sys, copy, pprint, reprlib, types\n"
        # a stand-in for ipycap.engine.rules: importing ipycap would install the fixes
        + "sys.modules['ipycap.engine.rules'] = types.ModuleType('ipycap.engine.rules')\n"
        + "sys.stdout = KernelStream(TOKEN)\n"
        + PAYLOADS[name]
        + "\n"
        + later
        + "\nsys.stdout = sys.__stdout__\nprint(repr(loot))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    return proc.stdout + proc.stderr


def _capsule(name: str):
    """The payload in a capsule, then the trusted code that runs later; returns the loot."""
    vault = Vault(TOKEN)
    capsule = Capsule(protected={"vault": vault}, label="default-modules")
    error = None
    with contextlib.redirect_stdout(KernelStream(TOKEN)):
        try:
            capsule.run(PAYLOADS[name])
        except Exception as e:  # noqa: BLE001 - a refusal is the fix; the canary decides
            error = e
    later = LATER.get(WHEN.get(name, ""))
    if later:
        try:
            exec(later, {"vault": vault, "copy": copy, "pprint": pprint, "reprlib": reprlib})
        except Exception:  # noqa: BLE001 - trusted code failing is not the canary
            pass
    return capsule.namespace.get("loot"), error


@pytest.mark.parametrize("name", sorted(PAYLOADS))
def test_plain_python_reaches_the_canary(name):
    assert TOKEN in _plain(name), f"{name} is not a real attack in plain Python"


@pytest.mark.parametrize("name", sorted(PAYLOADS))
def test_capsule_does_not_reach_the_canary(name):
    loot, error = _capsule(name)
    assert TOKEN not in repr(loot), f"{name} escaped: {loot!r}"
    if name not in WHEN:  # the direct escapes stop while the cell runs
        assert error is not None, f"{name} ran to the end"


def test_refusals_teach():
    """The namespace refusals say what was refused and that it cannot be granted."""
    _, error = _capsule("typing-get-type-hints-class-module")
    assert "annotation 'sys'" in str(error) and "cannot be granted" in str(error)
    _, error = _capsule("enum-convert-reads-module-globals")
    assert "'dataclasses'" in str(error)


def test_ipycap_shared_classes_are_frozen():
    """ipycap's stand-ins are shared by every capsule: none can swap a guarded method."""
    for target in ("string.Formatter", "type(sys.stdout)", "type(help)", "type('x'.format)"):
        src = f"import string, sys\nsetattr({target}, 'get_field', lambda *a: None)"
        with pytest.raises(TypeError):
            Capsule().run(src)


def test_the_guarded_modules_still_work_in_a_capsule(capsys):
    """What the fixes must not break: annotations, enums, pprint, reprlib, copy."""
    src = textwrap.dedent(
        """
        import typing, enum, pprint, reprlib, copy, dataclasses
        class C:
            x: 'int'
            y: 'typing.List[str]'
        hints = typing.get_type_hints(C, globalns={'typing': typing})
        def f(a: 'int') -> 'str': pass
        fh = typing.get_type_hints(f)
        Color = enum.Enum('Color', 'RED GREEN')
        class Num(enum.IntEnum):
            ONE = 1
        @dataclasses.dataclass
        class P:
            a: int = 1
        pprint.pprint({'k': list(range(40))})
        out = (hints['x'], fh['return'], Color.RED.name, Num.ONE + 1, P().a,
               reprlib.repr('x' * 100), len(copy.dispatch_table) > 0,
               copy.deepcopy([1, {2: 3}]))
        out
        """
    )
    result = Capsule().run(src)
    assert result[:5] == (int, str, "RED", 2, 1)
    assert result[5].startswith("'xxxx") and "..." in result[5]
    assert result[6] is True and result[7] == [1, {2: 3}]
    assert "'k': [0," in capsys.readouterr().out


def test_trusted_code_keeps_the_standard_behaviour():
    """Outside capsules the wrappers are the original functions."""
    import enum
    import typing

    class T:
        x: "Vault"  # noqa: UP037 - a string annotation is what is tested

    assert typing.get_type_hints(T, globals()) == {"x": Vault}
    assert pprint.pformat({"a": 1}) == "{'a': 1}"
    scratch = types.ModuleType("ipycap_scratch_enum")
    sys.modules[scratch.__name__] = scratch
    try:
        enum.global_enum(enum.Enum("G", "A", module=scratch.__name__))
        assert scratch.A.name == "A"
    finally:
        del sys.modules[scratch.__name__]
    assert reprlib.repr([1, 2]) == "[1, 2]"
