"""Red team 6 (crossings): the engine's newest internal crossings, attacked fresh.

Each test FAILS today because capsule code reaches a canary the test made (a protected
object's private token, a secret file outside the grants) or changes trusted state the
engine promises to keep (I3).  Each first runs the same payload as plain Python, without
ipycap, to show it is a real attack and not an artefact of the test.

Finding A -- library-generated source screened by a deny-list of Name/Attribute nodes.
  dataclasses pastes field names into the source it compiles; for a capsule the tripwire's
  compile rule screens that source (tripwire._source_is_clean) for risky *names* and
  *attributes*.  ``import`` statements and ``match`` class patterns read modules and
  attributes with neither node, and the generated code runs with the real builtins and is
  not recognised as capsule code.

Finding B -- frames of library-generated code launder a capsule's request.
  guard.asked_by_capsule walks outward and stops at the first frame that is neither capsule
  code nor the standard library/ipycap *by module name*.  The ``__init__`` dataclasses
  generates for a capsule class runs in fresh globals named '__capsule__': it is such a
  frame, and it calls what the capsule chose (a ``default_factory``).  Every check that asks
  ``asked_by_capsule`` (ABCMeta.register, enum.global_enum, ForwardRef._evaluate, the
  dataclasses globals swap) then takes the capsule for trusted code.

Finding C -- a trusted ABC's registry is changed without register(): ``_abc_registry_clear``
  and an ``_abc_impl`` borrowed by the capsule's own ABC.
Finding D -- stdlib classes reached other than through a module view attribute (typing
  alias forwarding, function results, ``__origin__``) are never frozen.
Finding E -- process-wide defaults of default modules (decimal.DefaultContext, calendar).
Finding F -- xml.dom's implementation registry (a deputy deputies.py does not cut out).
Finding G -- a hook written onto a prepared capsule class by a trusted deputy (copy's slot
  state) stays raw: trusted isinstance() hands it raw trusted classes.
"""

from __future__ import annotations

import _abc
import numbers
import secrets

import pytest

from ipycap import Capsule
from ipycap.engine import capsule as capsule_module


class Vault:
    """A protected object: capsule code sees it through a proxy that hides ``_token``."""

    def __init__(self, token):
        self._token = token

    def public(self):
        return "public"


@pytest.fixture
def token():
    return secrets.token_hex(16)


@pytest.fixture
def secret(tmp_path, token):
    """A secret file outside every grant, holding the token."""
    path = tmp_path / "outside" / "secret.txt"
    path.parent.mkdir()
    path.write_text(token)
    return str(path)


@pytest.fixture
def granted(tmp_path):
    path = tmp_path / "granted"
    path.mkdir()
    return str(path)


def _plain(source: str, **names):
    """Run ``source`` as plain Python (no capsule) and return its namespace."""
    ns = dict(names)
    exec(compile(source, "<plain>", "exec"), ns)
    return ns


def _plain_fresh(source: str) -> str:
    """Run ``source`` as plain Python in a fresh interpreter (no ipycap loaded); its stdout."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-I", "-c", source], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def _last(source: str) -> str:
    return source + "\nout\n"


# -- finding A: import / match in generated source pass the screener --------------------------
_IMPORT_MATCH_FIELD = '''
import dataclasses
body = """a,)
 if 1:
  import sys
  g = sys.modules['ipycap.engine.guard']
  found = []
  for e in list(g._CAPSULE_BUILTINS.values()):
   match e[1].expose:
    case object(__self__=cap):
     if 'vault' in cap.protected:
      found.append(cap.protected['vault']._token)
  raise LookupError(repr(found))
  X=("""
class B:
    a: int = 0
    __annotations__[body + '"' * 3] = int
try:
    dataclasses.dataclass(init=False, repr=False)(B)
    out = "no leak"
except LookupError as e:
    out = str(e)
'''


def test_dataclass_field_name_with_import_and_match_reaches_protected_token(token, granted):
    """A field name that closes ``__eq__`` and adds statements to ``__create_fn__``'s body:
    ``import sys`` (no Name ``__import__``, and sys is loaded so no 'import' event) and a
    ``match`` class pattern reading ``__self__`` (no Attribute node) pass the screen; the
    code runs at decoration time with capsule code on the stack, unrecognised, and reads
    the raw Capsule's protected Vault.

    Plain Python: the same source, exec'd with ordinary builtins while a capsule exists,
    raises the token too (dataclasses runs the injected statements)."""
    c = Capsule(protected={"vault": Vault(token)}, grants=[("read", granted)])
    assert token in _plain(_IMPORT_MATCH_FIELD)["out"]  # the attack is real

    c = Capsule(protected={"vault": Vault(token)}, grants=[("read", granted)])
    try:
        result = c.run(_last(_IMPORT_MATCH_FIELD))
    except (PermissionError, TypeError):
        result = None  # refused: what should happen
    assert token not in str(result), "generated source reached the protected object's token"


# -- finding B: generated __init__ frames launder asked_by_capsule ----------------------------
_REGISTER = """
import dataclasses, functools, numbers
try:
    numbers.Integral.register(float)
    direct = "allowed"
except TypeError:
    direct = "refused"
@dataclasses.dataclass
class T:
    x: object = dataclasses.field(
        default_factory=functools.partial(numbers.Integral.register, float))
try:
    T()
except TypeError:
    pass  # refused: what should happen
out = direct
"""


def _restore_registry(abc_cls, saved_refs) -> None:
    _abc._reset_registry(abc_cls)
    _abc._reset_caches(abc_cls)
    for ref in saved_refs:
        cls = ref()
        if cls is not None:
            _abc._abc_register(abc_cls, cls)


def test_abc_register_through_dataclass_default_factory_changes_trusted_isinstance():
    """ABCMeta.register refuses a capsule (hooks._register: asked_by_capsule); called by a
    dataclass ``__init__`` as the capsule's ``default_factory`` it is not refused, and the
    trusted ABC's registry is changed for the whole process (I3): trusted code's
    ``isinstance(1.5, numbers.Integral)`` is True after the cell.

    Plain Python: ``numbers.Integral.register(float)`` does the same."""
    saved = list(_abc._get_dump(numbers.Integral)[0])
    try:
        _plain(_REGISTER)
        assert isinstance(1.5, numbers.Integral)  # the attack is real
    finally:
        _restore_registry(numbers.Integral, saved)
    assert not isinstance(1.5, numbers.Integral)

    try:
        result = Capsule().run(_last(_REGISTER))
        assert result == "refused"  # the direct call is refused ...
        # ... and the laundered one must be too: trusted answers stay trusted.
        assert not isinstance(1.5, numbers.Integral), "a capsule registered float as Integral"
    finally:
        _restore_registry(numbers.Integral, saved)


_GLOBAL_ENUM = """
import dataclasses, functools, enum
class W(enum.Enum):
    __module__ = "ipycap.engine.capsule"
    wrap = 1
    def __call__(self, value, *rest, **kw):
        return value
@dataclasses.dataclass
class T:
    x: object = dataclasses.field(default_factory=functools.partial(enum.global_enum, W))
T()
out = "planted"
"""


def test_global_enum_through_dataclass_default_factory_replaces_engine_function(token):
    """enum.global_enum is refused when a capsule asks it to write into another module;
    as a dataclass ``default_factory`` it writes the capsule's callable enum member over
    ``ipycap.engine.capsule.wrap`` (I3: a trusted function replaced).  The next capsule's
    protected name is then "wrapped" by capsule code, which hands back the raw Vault, and
    ``vault._token`` is a plain attribute read.

    Plain Python: the same source writes ``wrap`` into the module."""
    real_wrap = capsule_module.wrap
    try:
        _plain(_GLOBAL_ENUM)
        assert capsule_module.wrap is not real_wrap  # the attack is real
    finally:
        capsule_module.wrap = real_wrap

    try:
        try:
            Capsule(protected={"vault": Vault(token)}).run(_last(_GLOBAL_ENUM))
        except PermissionError:
            pass  # refused: what should happen
        leaked = None
        try:
            leaked = Capsule(protected={"vault": Vault(token)}).run("vault._token")
        except AttributeError:
            pass
        assert capsule_module.wrap is real_wrap, "a capsule replaced a function of the engine"
        assert leaked != token
    finally:
        capsule_module.wrap = real_wrap


_TYPE_HINTS = """
import dataclasses, functools, typing
class C:
    __module__ = "ipycap.engine.guard"
    x: "_CAPSULE_BUILTINS"
@dataclasses.dataclass
class T:
    x: object = dataclasses.field(default_factory=functools.partial(typing.get_type_hints, C))
raw = T().x["x"]
ctx = list(raw.values())[-1][1]   # the newest capsule's context: this one's
ctx.grants.append(ctx.registry.grant("read", SECRET, scope="session", granted_by="cell"))
out = open(SECRET).read()
"""


def test_get_type_hints_through_dataclass_default_factory_hands_out_engine_contexts(
    token, secret, granted
):
    """ForwardRef._evaluate refuses to evaluate a capsule's annotation in a trusted module;
    called from a dataclass ``__init__`` (``default_factory=partial(get_type_hints, C)``)
    it evaluates ``'_CAPSULE_BUILTINS'`` in ipycap.engine.guard and the capsule gets the raw
    table of every capsule context (I2, I4).  It grants itself the secret file through the
    raw registry and reads it.

    Plain Python: the same source reads the secret (a capsule exists, so the table has one
    context to extend)."""
    Capsule(grants=[("read", granted)])
    assert _plain(_TYPE_HINTS, SECRET=secret)["out"] == token  # the attack is real

    c = Capsule(grants=[("read", granted)])
    c.namespace["SECRET"] = secret
    try:
        result = c.run(_last(_TYPE_HINTS))
    except (PermissionError, AttributeError, TypeError, ImportError):
        result = None  # refused: what should happen
    assert result != token, "the capsule granted itself a secret file and read it"


# -- finding C: a trusted ABC's state is reached by attribute, not through register() ---------
_ABC_STATE = {
    "clear": """
import numbers
numbers.Integral._abc_registry_clear()
out = "cleared"
""",
    "alias": """
import numbers
class Mine(numbers.Number):
    pass
Mine._abc_impl = numbers.Integral._abc_impl   # a plain attribute of the capsule's own class
Mine.register(float)                          # Mine is the capsule's: register allows it
out = "registered"
""",
}


@pytest.mark.parametrize("variant", sorted(_ABC_STATE))
def test_trusted_abc_registry_changed_through_its_state_object(variant):
    """hooks._register refuses a capsule's ``register`` with a trusted ABC, but the registry
    it protects is reachable otherwise: ABCMeta's ``_abc_registry_clear`` (not replaced)
    empties it, and ``_abc_impl`` (the raw ``_abc_data`` of the trusted ABC, a plain class
    attribute) can be made the state of the capsule's own ABC, whose ``register`` is
    allowed and writes the trusted registry (I3).  Trusted ``isinstance`` answers change
    for the whole process: ``int`` stops being ``numbers.Integral``, or ``float`` becomes
    one.

    Plain Python: the same source does the same."""
    saved = list(_abc._get_dump(numbers.Integral)[0])

    def changed() -> bool:
        return not isinstance(5, numbers.Integral) or isinstance(1.5, numbers.Integral)

    try:
        _plain(_ABC_STATE[variant])
        assert changed()  # the attack is real
    finally:
        _restore_registry(numbers.Integral, saved)
    assert not changed()

    try:
        try:
            Capsule().run(_last(_ABC_STATE[variant]))
        except (AttributeError, TypeError, PermissionError):
            pass  # refused: what should happen
        assert not changed(), "a capsule changed a trusted ABC's registry"
    finally:
        _restore_registry(numbers.Integral, saved)


# -- finding D: typing aliases write the trusted classes they stand for ------------------------
_ALIAS_WRITE_HEAD = """
import typing
seen = []
def hook(self, *args, **kwargs):
    seen.append(self)          # the trusted object trusted code called the method on
    return self
"""
#: Three ways a stdlib class reaches a capsule without the module view's freeze.
_CLASS_WRITES = {
    # typing forwards it from its own frame: setattr(alias.__origin__, name, value)
    "alias-setattr": "setattr(typing.ChainMap, 'new_child', hook)\n"
    "setattr(typing.Counter, 'most_common', hook)",
    # a function's result
    "function-result": "typing.get_origin(typing.ChainMap[int, int]).new_child = hook\n"
    "typing.get_origin(typing.Counter[int]).most_common = hook",
    # an attribute of a stdlib object
    "origin-attribute": "typing.ChainMap.__origin__.new_child = hook\n"
    "typing.Counter.__origin__.most_common = hook",
}


def _alias_write(variant: str) -> str:
    body = "\n".join(
        f"try:\n    {line}\nexcept (TypeError, AttributeError, PermissionError):\n    pass"
        for line in _CLASS_WRITES[variant].splitlines()
    )
    return _ALIAS_WRITE_HEAD + body + "\nout = 'planted'\n"


@pytest.mark.parametrize("variant", sorted(_CLASS_WRITES))
def test_stdlib_class_reached_without_freeze_gets_capsule_method(token, variant):
    """Standard-library classes are frozen when a module view hands one to a capsule
    (guard.share_class), and a class attribute store raises no audit event on 3.11.  But a
    stdlib class reaches capsule code other ways too: ``typing.ChainMap``/``typing.Counter``
    are aliases whose ``__setattr__`` forwards non-dunder names to ``collections.ChainMap``
    /``Counter`` from typing's own frame; ``typing.get_origin(...)`` returns the class; the
    alias's ``__origin__`` is the class.  None of them freezes it, and the capsule replaces
    their methods (I3).  Trusted
    code calling ``ChainMap(...).new_child()`` or ``Counter(...).most_common()`` later runs
    the capsule's function with the raw trusted object (I2); the next cell reads its data.

    Plain Python: the same source replaces the methods."""
    import collections

    saved = {cls: dict(vars(cls)) for cls in (collections.ChainMap, collections.Counter)}

    def restore():
        for cls, d in saved.items():
            for name in ("new_child", "most_common"):
                if name in d and vars(cls).get(name) is not d[name]:
                    type.__setattr__(cls, name, d[name])

    # The attack is real -- in a fresh interpreter: in this one an earlier capsule has
    # frozen these classes (classfreeze), and plain Python cannot write them either.
    assert (
        _plain_fresh(
            _alias_write(variant)
            + "import collections\ncollections.ChainMap({'secret': 1}).new_child()\n"
            "collections.Counter({'secret': 1}).most_common()\nprint(len(seen))\n"
        )
        == "2"
    )

    c = Capsule()
    try:
        c.run(_last(_alias_write(variant)))
        collections.ChainMap({token: "in a trusted ChainMap"}).new_child()
        collections.Counter({token: 1}).most_common()
        leaked = c.run("[sorted(dict(x)) for x in seen]")
    finally:
        restore()
    assert token not in str(leaked), "trusted objects reached a capsule method planted on a class"


# -- finding E: process-wide defaults of default modules are written by capsules --------------
_PROCESS_DEFAULTS = """
import decimal, calendar
decimal.DefaultContext.prec = 3          # the template of every new thread's context
decimal.DefaultContext.traps[decimal.Inexact] = True
calendar.setfirstweekday(calendar.SUNDAY)
out = "set"
"""


def test_capsule_sets_process_wide_decimal_template_and_calendar_state():
    """Capsule.run gives a capsule its own decimal *context* (I3: "decimal context ... is
    per capsule"), but ``decimal.DefaultContext`` -- the template every thread's first
    context is copied from -- is a module attribute the capsule writes; so is the process's
    calendar (``setfirstweekday``).  A trusted thread started after the cell computes
    ``Decimal(1) / 7`` with the capsule's precision and traps (here it raises Inexact), and
    trusted ``calendar.firstweekday()`` is the capsule's.

    Plain Python: the same source does the same."""
    import calendar
    import decimal
    import threading

    def trusted_division():
        out = {}

        def run():
            try:
                out["v"] = str(decimal.Decimal(1) / decimal.Decimal(7))
            except decimal.DecimalException as e:
                out["v"] = type(e).__name__

        t = threading.Thread(target=run)
        t.start()
        t.join()
        return out["v"]

    expected = trusted_division()
    first = calendar.firstweekday()
    saved_prec = decimal.DefaultContext.prec
    saved_traps = dict(decimal.DefaultContext.traps)

    def restore():
        decimal.DefaultContext.prec = saved_prec
        for sig, on in saved_traps.items():
            decimal.DefaultContext.traps[sig] = on
        calendar.setfirstweekday(first)

    try:
        _plain(_PROCESS_DEFAULTS)
        assert trusted_division() != expected  # the attack is real
    finally:
        restore()

    try:
        try:
            Capsule().run(_last(_PROCESS_DEFAULTS))
        except (AttributeError, TypeError, PermissionError):
            pass  # refused: what should happen
        assert trusted_division() == expected, "a capsule set trusted threads' decimal template"
        assert calendar.firstweekday() == first, "a capsule set the process's calendar"
    finally:
        restore()


_ARRAY_INTERFACE = """
import numpy as np, dataclasses, functools
def read(addr, n):
    ns = {"__array_interface__": {"data": (addr, True), "shape": (n,), "typestr": "|u1",
                                  "version": 3}}
    @dataclasses.dataclass
    class T:   # type() called by the generated __init__: the array guard is not applied
        x: object = dataclasses.field(default_factory=functools.partial(type, "R", (), ns))
    return bytes(np.asarray(T().x()))
def word(addr):
    return int.from_bytes(read(addr, 8), "little")
out = None
target = word(id(vault) + 16)            # the proxy's target: the raw Vault
values = word(target - 32) if target else 0   # CPython 3.11: its inline attribute values
first = word(values) if values > 0x10000 else 0
if first > 0x10000 and word(first + 8) == id(str):
    out = read(first + 48, word(first + 16)).decode()   # the str's characters
"""


def test_array_guard_skipped_for_class_made_from_generated_init_reads_token(token):
    """arrayguard._on_new_class guards a class only when ``asked_by_capsule``; a class the
    capsule's ``type`` makes as a dataclass ``default_factory`` is made with the generated
    ``__init__`` nearest, so it keeps a capsule ``__array_interface__`` and numpy reads
    memory at the capsule's address: the proxy's target pointer, then the raw Vault's
    ``_token`` (needs only a numpy grant; writing memory works the same way).

    Plain Python: the same source with the same proxy object reads the token."""
    c = Capsule(protected={"vault": Vault(token)}, grants=[("import", "numpy")])
    proxy = c.run("vault")
    assert _plain(_ARRAY_INTERFACE, vault=proxy)["out"] == token  # the attack is real

    c = Capsule(protected={"vault": Vault(token)}, grants=[("import", "numpy")])
    try:
        result = c.run(_last(_ARRAY_INTERFACE))
    except (TypeError, PermissionError, AttributeError):
        result = None  # refused: what should happen
    assert result != token, "numpy read the protected token at a capsule-chosen address"


# -- finding F: a grantable package's process-wide registry not cut out by deputies.py --------
_DOM_REGISTRY = """
import xml.dom
seen = []
class Doc:
    def __init__(self):
        self.documentElement = self
    def createTextNode(self, text):
        seen.append(text)            # what trusted code puts into "its" document
        return text
    def appendChild(self, node):
        return node
class Impl:
    def hasFeature(self, *args):
        return True
    def createDocument(self, *args):
        return Doc()
xml.dom.registerDOMImplementation("rt6-capsule", Impl)
out = "registered"
"""


def test_xml_dom_registry_makes_trusted_code_build_documents_with_capsule_objects(token):
    """deputies.py cuts ``xml.etree.ElementTree.register_namespace`` out of the granted
    ``xml`` package, but ``xml.dom.registerDOMImplementation`` writes another process-wide
    table: trusted ``xml.dom.getDOMImplementation()`` (no name) calls the capsule's factory
    first and builds its document with capsule objects (I3), handing them trusted data.

    Plain Python: the same source makes getDOMImplementation return the capsule's Impl."""
    import xml.dom
    import xml.dom.domreg as domreg

    def trusted_builds_document():
        doc = xml.dom.getDOMImplementation().createDocument(None, "root", None)
        doc.documentElement.appendChild(doc.createTextNode(token))

    try:
        ns = _plain(_DOM_REGISTRY)
        trusted_builds_document()
        assert ns["seen"] == [token]  # the attack is real
    finally:
        domreg.registered.pop("rt6-capsule", None)

    c = Capsule(grants=[("import", "xml")])
    try:
        try:
            c.run(_last(_DOM_REGISTRY))
        except (AttributeError, TypeError, PermissionError):
            pass  # refused: what should happen
        trusted_builds_document()
        seen = list(c.namespace.get("seen", []))
    finally:
        domreg.registered.pop("rt6-capsule", None)
    assert token not in str(seen), "trusted code built its document with capsule objects"


# -- finding G: a hook written by a trusted deputy is never guarded ----------------------------
_COPY_HOOK = """
import copy, collections.abc
seen = []
def hook(cls, other):
    seen.append(other)                # what trusted isinstance() asks about
    return NotImplemented
class C(collections.abc.Sized):       # prepared (its hooks guarded) when it is made
    def __len__(self):
        return 0
def the_class():
    return C
class Maker:
    def __reduce__(self):             # copy sets the "slot state" with setattr(C, ...)
        return (the_class, (), (None, {"__subclasshook__": classmethod(hook)}))
copy.copy(Maker())
out = "planted"
"""


def test_subclasshook_set_by_copy_slotstate_gets_raw_trusted_class(token):
    """Capsule ABC hooks are guarded when the class is made and on guarded writes
    (hooks.after_write), and prepared classes are remembered (_PREPARED/_READY/_WALKED).
    ``copy``'s reconstruction sets slot state with a plain ``setattr`` from copy's frame,
    on the capsule's own (already prepared) class: ``__subclasshook__`` becomes the raw
    capsule classmethod.  Trusted ``isinstance(Config(), Sized)`` later hands it the raw
    trusted class, whose private ``_api_key`` the capsule then reads (I2).  (The same hook
    assigned with ``C.__subclasshook__ = ...`` receives a proxy.)

    Plain Python: the same source receives the class."""
    import collections.abc

    def trusted_class():
        # a fresh class each time: the ABC's negative cache would answer for a known one
        return type("Config", (), {"_api_key": token})

    config = trusted_class()
    ns = _plain(_COPY_HOOK)
    isinstance(config(), collections.abc.Sized)
    assert config in ns["seen"]  # the attack is real

    c = Capsule()
    try:
        c.run(_last(_COPY_HOOK))
    except (TypeError, AttributeError, PermissionError):
        pass  # refused: what should happen
    isinstance(trusted_class()(), collections.abc.Sized)
    leaked = None
    if "seen" in c.namespace:
        leaked = c.run("[getattr(x, '_api_key', None) for x in seen]")
    assert token not in str(leaked), "a capsule hook received a raw trusted class"
