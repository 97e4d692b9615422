"""Red team 6 (crossings), findings A, B, C and G, kept as named regression tests with
variants: the classes are fixed, not the payloads (tests/redteam/test_rt6_crossings.py has
the original payloads).

A -- library-generated source is screened by an allow-list, and dataclass field names must
     be plain identifiers.
B -- guard.asked_by_capsule takes a frame for a trusted asker only when its globals are a
     loaded module's namespace by identity; code generated for a capsule is the capsule's.
C -- a trusted ABC's state (_abc_impl, _abc_registry_clear, ...) never reaches a capsule.
G -- hook entries of capsule classes are checked when the ABC algorithm uses them.
"""

from __future__ import annotations

import _abc
import collections.abc
import dataclasses
import numbers
import secrets
import sys
import types

import pytest

from ipycap import Capsule
from ipycap.engine import guard, tripwire


def _restore_registry(abc_cls, saved_refs) -> None:
    _abc._reset_registry(abc_cls)
    _abc._reset_caches(abc_cls)
    for ref in saved_refs:
        cls = ref()
        if cls is not None:
            _abc._abc_register(abc_cls, cls)


@pytest.fixture
def integral_registry():
    """numbers.Integral's registry, restored after the test (a failure must not leak)."""
    saved = list(_abc._get_dump(numbers.Integral)[0])
    yield
    _restore_registry(numbers.Integral, saved)


def _changed() -> bool:
    return not isinstance(5, numbers.Integral) or isinstance(1.5, numbers.Integral)


# -- A: generated source and dataclass field names ---------------------------------------------
_FIELD_NAMES = {
    # an annotation key that is code (closes the generated signature)
    "annotation": """
class B:
    a: int = 0
    __annotations__["a,)\\n import sys\\n X=("] = int
""",
    # a dataclass base whose field table names a field with code
    "base-field": """
@dataclasses.dataclass
class Base:
    a: int = 0
Base.__dataclass_fields__["a"].name = "a=sys.modules"
class B(Base):
    pass
""",
    # a str subclass: its repr is pasted into the frozen __setattr__
    "str-subclass": """
class S(str):
    def __repr__(self):
        return "'x'); import sys; ('"
class B:
    __annotations__ = {S("a"): int}
""",
}


@pytest.mark.parametrize("variant", sorted(_FIELD_NAMES))
def test_dataclass_field_names_must_be_plain_identifiers(variant):
    source = "import dataclasses\n" + _FIELD_NAMES[variant]
    source += "dataclasses.dataclass(frozen=True)(B)\nout = 'made'\n"
    with pytest.raises(PermissionError, match="plain identifiers"):
        Capsule().run(source + "out\n")


def test_ordinary_dataclasses_still_work():
    out = Capsule().run(
        """
import dataclasses, typing
@dataclasses.dataclass(order=True)
class P:
    x: int
    y: list = dataclasses.field(default_factory=list)
    def __post_init__(self):
        self.y.append(self.x)
@dataclasses.dataclass(frozen=True)
class F:
    z: int = 0
Q = dataclasses.make_dataclass("Q", [("a", int), ("b", str, dataclasses.field(default=""))])
N = typing.NamedTuple("N", [("u", int)])
(P(1) < P(2), P(3).y, repr(Q(1, "z")), N(4).u, P(1) == P(1), hash(F(2)) == hash(F(2)))
"""
    )
    assert out == (True, [3], "Q(a=1, b='z')", 4, True, True)


@pytest.mark.parametrize(
    "source",
    [
        "import sys",
        "from os import path",
        "def f():\n global g\n g = 1",
        "def f():\n x = 1\n def h():\n  nonlocal x\n  x = 2",
        "match v:\n case object(__self__=cap):\n  pass",
        "match v:\n case {'k': x}:\n  pass",
        "class K:\n pass",
        "def f():\n yield 1",
        "x = __loader__",
        "x = __class__",
    ],
)
def test_generated_source_screen_is_an_allow_list(source):
    assert not tripwire._source_is_clean(source)


def test_generated_source_screen_passes_what_the_generators_write():
    captured = []
    real_exec = exec

    def spy(text, g=None, loc=None):
        captured.append(text)
        return real_exec(text, g, loc)

    dataclasses.exec = spy  # the module's own global lookup of exec
    try:

        @dataclasses.dataclass(frozen=True, order=True, unsafe_hash=True)
        class T:
            x: object = dataclasses.field(default_factory=list)
            y: int = 0

            def __post_init__(self):
                pass

    finally:
        del dataclasses.exec
    assert len(captured) >= 5
    for text in captured + ["lambda _cls, a, b: _tuple_new(_cls, (a, b))", "list[int]"]:
        assert tripwire._source_is_clean(text), text


def test_namedtuple_refuses_code_as_a_field_name():
    """namedtuple, the other generator capsules reach, validates its names itself."""
    with pytest.raises(ValueError):
        Capsule().run("import collections\ncollections.namedtuple('N', ['a, b): import sys'])")


# -- B: asked_by_capsule -------------------------------------------------------------------------
def _probe(globals_dict):
    code = compile("def probe():\n return asked(_getframe())\n", "<probe>", "exec")
    ns = dict(globals_dict) if globals_dict is not None else {}
    g = globals_dict if globals_dict is not None else ns
    g.setdefault("asked", guard.asked_by_capsule)
    g.setdefault("_getframe", sys._getframe)
    exec(code, g)
    return g["probe"]


@pytest.mark.parametrize("name", ["numpy", "pytest", "__capsule__", None])
def test_frames_of_spoofed_module_globals_do_not_stop_the_walk(name):
    """A trusted function whose globals only *name* a module is walked past: the capsule
    further out is the asker."""
    probe = _probe({"__name__": name} if name else {})
    c = Capsule(protected={"probe": probe})  # called through its proxy
    assert c.run("probe()") is True


def test_a_loaded_modules_own_frame_asks_for_itself():
    """Code running in a loaded (non-stdlib) module's namespace is a trusted asker."""
    module = types.ModuleType("rt6a_trusted_module")
    sys.modules[module.__name__] = module
    try:
        probe = _probe(vars(module))
        c = Capsule(protected={"probe": probe})
        assert c.run("probe()") is False
        assert probe() is False  # no capsule on the stack at all
    finally:
        del sys.modules[module.__name__]


def test_abc_register_laundered_through_make_dataclass_is_refused(integral_registry):
    source = """
import dataclasses, functools, numbers
T = dataclasses.make_dataclass("T", [("x", object, dataclasses.field(
    default_factory=functools.partial(numbers.Integral.register, float)))])
try:
    T()
    out = "allowed"
except TypeError:
    out = "refused"
out
"""
    assert Capsule().run(source) == "refused"
    assert not _changed()


# -- C: a trusted ABC's state ---------------------------------------------------------------------
@pytest.mark.parametrize(
    "source",
    [
        "numbers.Integral._abc_caches_clear()",
        "numbers.Integral._dump_registry()",
        "getattr(numbers.Integral, '_abc_' + 'impl')",
        "type(numbers.Integral)._abc_registry_clear(numbers.Integral)",
        "class Mine(numbers.Number):\n    pass\ndel Mine._abc_impl\nMine.register(float)",
        "fractions.Fraction(1)._abc_impl",
    ],
)
def test_trusted_abc_state_is_refused(source, integral_registry):
    before = isinstance(fractions_one(), numbers.Rational)
    with pytest.raises((AttributeError, TypeError)):
        Capsule().run("import numbers, fractions\n" + source)
    assert not _changed()
    assert isinstance(fractions_one(), numbers.Rational) is before


def fractions_one():
    import fractions

    return fractions.Fraction(1)


def test_capsule_abcs_still_register():
    out = Capsule().run(
        "import numbers\nclass Mine(numbers.Number):\n    pass\nMine.register(int)\n"
        "(isinstance(1, Mine), issubclass(float, Mine))"
    )
    assert out == (True, False)


# -- G: hooks written by trusted deputies ------------------------------------------------------
_COPY_HOOKS = {
    "classmethod-copy": ("classmethod(hook)", "copy.copy"),
    "staticmethod-copy": ("staticmethod(lambda other: hook(None, other))", "copy.copy"),
}


@pytest.mark.parametrize("variant", sorted(_COPY_HOOKS))
def test_hook_set_by_a_deputy_is_guarded_when_used(variant):
    entry, copier = _COPY_HOOKS[variant]
    token = secrets.token_hex(8)
    source = f"""
import copy, collections.abc
seen = []
def hook(cls, other):
    seen.append(other)
    return NotImplemented
class C(collections.abc.Sized):
    def __len__(self):
        return 0
def the_class():
    return C
class Maker:
    def __reduce__(self):
        return (the_class, (), (None, {{"__subclasshook__": {entry}}}))
{copier}(Maker())
"""
    c = Capsule()
    c.run(source)
    isinstance(type("Config", (), {"_api_key": token})(), collections.abc.Sized)
    leaked = c.run("[getattr(x, '_api_key', None) for x in seen]")
    assert token not in str(leaked)
    assert c.run("len(seen)") >= 1  # the hook ran (guarded), it was not dropped


def test_metaclass_hook_set_by_a_deputy_is_guarded_when_the_walk_calls_it():
    """The ABC walk calls each subclass's metaclass ``__subclasscheck__``: set on the
    capsule's metaclass by copy's slot state (after the walk cached it), it is guarded
    at use time too."""
    token = secrets.token_hex(8)
    c = Capsule()
    c.run(
        """
import copy, collections.abc
seen = []
def check(cls, other):
    seen.append(other)
    return False
class M(type(collections.abc.Sized)):
    pass
class C(collections.abc.Sized, metaclass=M):
    def __len__(self):
        return 0
def the_meta():
    return M
class Maker:
    def __reduce__(self):
        return (the_meta, (), (None, {"__subclasscheck__": check}))
"""
    )
    isinstance(type("Warm", (), {})(), collections.abc.Sized)  # the walk is cached now
    c.run("copy.copy(Maker())")
    isinstance(type("Config", (), {"_api_key": token})(), collections.abc.Sized)
    leaked = c.run("[getattr(x, '_api_key', None) for x in seen]")
    assert token not in str(leaked)
    assert c.run("len(seen)") >= 1  # the hook ran (guarded)


def test_class_made_by_generated_init_called_from_trusted_code_is_guarded():
    """The C check of class creation (``_arrayguard``) knows code generated for a capsule
    too: trusted code instantiating a capsule dataclass, with no capsule frame on the
    stack, runs the capsule's ``default_factory`` (``type`` with an array interface) from
    the generated ``__init__``; the class it makes gets the array guard."""
    from ipycap.engine import arrayguard

    c = Capsule()
    c.run(
        """
import dataclasses, functools
ns = {"__array_interface__": {"data": (0, True), "shape": (1,), "typestr": "|u1",
                              "version": 3}}
@dataclasses.dataclass
class T:
    x: object = dataclasses.field(default_factory=functools.partial(type, "R", (), ns))
"""
    )
    made = c.namespace["T"]().x  # trusted code calls the generated __init__
    assert arrayguard.is_guarded(made)
