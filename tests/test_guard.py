"""The guard, specified: one table decides every risky attribute.  Own objects may be
introspected; shared intrinsics and outside functions never hand out authority; names given
as lying ``str`` subclasses are normalised; format and operator helpers obey the same table;
rexec mode denies underscore introspection everywhere."""

from __future__ import annotations

import asyncio  # noqa: F401 - loads its classes so the dunder walk sees them
import builtins
import collections
import dataclasses  # noqa: F401
import decimal  # noqa: F401
import enum  # noqa: F401
import fractions  # noqa: F401
import functools  # noqa: F401
import json  # noqa: F401
import re  # noqa: F401
import sys
import types
import typing  # noqa: F401

import pytest

from ipycap import Capsule, CapsuleAttributeError
from ipycap.engine import rules
from ipycap.engine.errors import CapabilityError
from ipycap.engine.guard import decide, exact_name, is_own


def run(source, **kwargs):
    return Capsule(**kwargs).run(source)


# -- the table covers this Python ---------------------------------------------------------
def _all_classes():
    # Keyed by identity: classes capsules made earlier in the run are among the subclasses, and
    # hashing or comparing them would call their (capsule-defined) metaclass's __eq__.
    seen, todo = {}, [object]
    while todo:
        cls = todo.pop()
        if id(cls) in seen:
            continue
        seen[id(cls)] = cls
        try:
            todo.extend(type.__subclasses__(cls))
        except TypeError:
            pass
    return list(seen.values())


def _is_stdlib_or_ours(cls):
    try:  # type's own lookup: a capsule metaclass's __getattribute__ is never called
        module = type.__getattribute__(cls, "__module__") or ""
    except AttributeError:
        module = ""
    if not isinstance(module, str):  # e.g. a Cython class whose __module__ is a descriptor
        return False
    top = module.partition(".")[0].lstrip("_")
    return (
        module == "builtins"
        or top in sys.stdlib_module_names
        or "_" + top in sys.stdlib_module_names
        or module.partition(".")[0] in sys.stdlib_module_names
        or top == "ipycap"
    )


def _sample_objects():
    def func(a=1, *, b=2):
        return a

    def gen():
        yield 1

    async def coro():
        pass

    async def agen():
        yield 1

    c = coro()
    c.close()
    try:
        raise ValueError("x")
    except ValueError as e:
        exc = e
    objs = [
        builtins,
        sys,
        types,
        func,
        gen(),
        c,
        agen(),
        print,
        [].append,
        "".join,
        object().__str__,
        str.join,
        int.real,
        dict.__dict__["fromkeys"],
        type.__dict__["__dict__"],
        func.__code__,
        exc,
        exc.__traceback__,
        sys._getframe(),
        property(),
        classmethod(func),
        staticmethod(func),
        functools.partial(func),
        collections.OrderedDict(),
        types.SimpleNamespace(),
        memoryview(b""),
        super(int, 1),
    ]
    objs += [
        m
        for name, m in sorted(sys.modules.items())
        if name.partition(".")[0] in sys.stdlib_module_names
    ]
    return objs


def _dunders_of_this_python():
    names = set()
    for cls in _all_classes():
        if _is_stdlib_or_ours(cls):
            names.update(n for n in type.__dir__(cls) if rules.is_dunder(n))
            names.update(n for n in vars(cls) if isinstance(n, str) and rules.is_dunder(n))
    for obj in _sample_objects():
        try:
            names.update(n for n in dir(obj) if rules.is_dunder(n))
        except Exception:  # noqa: BLE001 - a broken __dir__ only shrinks the sample
            pass
    names.update(n for n in dir(builtins) if rules.is_dunder(n))
    return names


def test_every_dunder_name_of_this_python_is_classified():
    unclassified = sorted(n for n in _dunders_of_this_python() if rules.classify(n) is None)
    assert not unclassified, f"dunder names the guard's table does not classify: {unclassified}"


def test_frame_attributes_are_never_allowed():
    for name in rules.FRAME_ATTRS:
        assert name in rules.NEVER


@pytest.mark.parametrize(
    "name",
    [
        "__globals__",
        "__builtins__",
        "__code__",
        "__subclasses__",
        "__getattribute__",
        "__setattr__",
        "__delattr__",
        "__get__",
        "__reduce__",
        "__reduce_ex__",
        "__traceback__",
        "__loader__",
        "__spec__",
    ],
)
def test_authority_names_are_classified_never(name):
    assert rules.classify(name) == "never"


@pytest.mark.parametrize("name", ["__dict__", "__closure__", "__defaults__", "__wrapped__"])
def test_introspection_names_are_own_only(name):
    assert rules.classify(name) == "own"


# -- own objects ---------------------------------------------------------------------------
OWN = """
class A:
    '''doc of A'''
    def __init__(self):
        self.x = 1
    def m(self):
        return self.x
def f(a, b=2):
    '''doc of f'''
    return a + b
a = A()
"""


@pytest.mark.parametrize(
    "expr, expected",
    [
        ("type(a).__name__", "A"),
        ("a.__class__.__name__", "A"),
        ("a.__dict__", {"x": 1}),
        ("vars(a)", {"x": 1}),
        ("[c.__name__ for c in A.__mro__]", ["A", "object"]),
        ("A.__doc__", "doc of A"),
        ("f.__name__", "f"),
        ("f.__doc__", "doc of f"),
        ("f.__defaults__", (2,)),
        ("f.__qualname__", "f"),
        ("a.m.__func__.__name__", "m"),
        ("a.m.__self__ is a", True),
        ("'m' in A.__dict__", True),
        ("getattr(a, '__dict__')", {"x": 1}),
        ("hasattr(a, '__dict__')", True),
    ],
)
def test_own_objects_can_be_introspected(expr, expected):
    assert run(OWN + expr) == expected


def test_wrapped_of_a_library_wrapper_around_an_own_function_is_allowed():
    assert (
        run("import functools\ndef f(x):\n    return x\nfunctools.singledispatch(f).__wrapped__(3)")
        == 3
    )


def test_mutable_defaults_of_outside_functions_never_reach_the_capsule():
    # copy.deepcopy(x, memo=None, _nil=[]): its default list is trusted state shared by the
    # whole process; a capsule must not be able to change it.
    import copy

    shared = copy.deepcopy.__defaults__[1]
    try:
        try:
            run("import copy\ncopy.deepcopy.__defaults__[1].append('capsule was here')")
        except CapabilityError:
            pass
        assert shared == []
    finally:
        shared.clear()


def test_own_closure_is_readable():
    src = "def outer():\n    v = 5\n    def inner():\n        return v\n    return inner\n"
    assert run(src + "outer().__closure__[0].cell_contents") == 5


def test_setattr_of_dunder_on_own_object_works():
    assert run(OWN + "setattr(a, '__doc__', 'new')\na.__doc__") == "new"


def test_is_own_distinguishes_capsule_objects():
    capsule = Capsule()
    capsule.run(OWN)
    ns = capsule.namespace
    assert is_own(ns["a"]) and is_own(ns["A"]) and is_own(ns["f"]) and is_own(ns["a"].m)
    assert not is_own(json.dumps) and not is_own(1) and not is_own(print) and not is_own(int)


# -- outside objects -------------------------------------------------------------------------
@pytest.mark.parametrize(
    "expr",
    [
        "().__class__.__base__.__subclasses__()",
        "object.__subclasses__()",
        "type.__subclasses__(object)",
        "print.__self__",
        "len.__self__",
        "(1).__reduce_ex__(2)",
        "(1).__reduce__()",
        "int.__dict__",
        "vars(int)",
        "object.__getattribute__",
        "object.__setattr__",
        "str.__getattribute__",
        "json.dumps.__globals__",
        "json.dumps.__code__",
        "functools.singledispatch(lambda x: x).__closure__",
        "difflib.ndiff.__defaults__",
        "json.dumps.__builtins__",
        "functools.singledispatch(len).__wrapped__",
        "re.compile.__globals__",
        "getattr(json.dumps, '__globals__')",
        "getattr(1, '__reduce_ex__')",
        "vars(json.JSONEncoder)",
        "json.JSONEncoder.__dict__",
        "json.JSONEncoder.__init__.__globals__",
        "json.JSONEncoder.encode.__code__",
        "int.__dict__['__add__'].__get__",
        "type.__dict__",
        "collections.OrderedDict.__reduce__",
        "functools.partial(print).__reduce__()",
    ],
)
def test_outside_objects_refuse_introspection(expr):
    with pytest.raises(CapabilityError) as info:
        run("import json, re, collections, functools, difflib\n" + expr)
    assert isinstance(info.value, (AttributeError, PermissionError))


@pytest.mark.parametrize(
    "expr",
    [
        "f.__globals__",
        "f.__code__",
        "f.__builtins__",
        "g.gi_frame",
        "g.gi_code",
        "err.__traceback__",
        "a.__getattribute__",
        "a.__reduce_ex__(2)",
        "A.__subclasses__()",
        "a.__setattr__",
    ],
)
def test_frames_code_and_globals_are_refused_even_on_own_objects(expr):
    src = (
        OWN
        + "def gen():\n    yield 1\ng = gen()\ntry:\n    1/0\nexcept Exception as e:\n    err = e\n"
    )
    with pytest.raises(CapsuleAttributeError):
        run(src + expr)


def test_refusal_message_names_layer_and_that_it_cannot_be_granted():
    with pytest.raises(CapsuleAttributeError) as info:
        run("object.__subclasses__")
    msg = str(info.value)
    assert "__subclasses__" in msg and "guard" in msg and "cannot be granted" in msg
    assert isinstance(info.value, CapabilityError)


def test_refused_getattr_with_default_returns_the_default():
    assert run("getattr(print, '__self__', 'no')") == "no"
    assert run("hasattr(print, '__self__')") is False


def test_class_attribute_is_allowed_everywhere():
    assert run("(1).__class__") is int
    assert run("type(1).__name__") == "int"
    assert run("int.__mro__") == (int, object)


def test_refusals_are_recorded_in_the_registry():
    capsule = Capsule()
    with pytest.raises(CapsuleAttributeError):
        capsule.run("object.__subclasses__")
    assert any("__subclasses__" in e["what"] for e in capsule.registry.refusals())


def test_decide_directly():
    assert decide(1, "__class__") is int
    assert decide(len, "__name__") == "len"
    with pytest.raises(CapsuleAttributeError):
        decide(print, "__self__")
    with pytest.raises(CapsuleAttributeError):
        decide(json.dumps, "__globals__")


# -- str subclasses cannot lie --------------------------------------------------------------
LIARS = """
class Liar(str):
    def __eq__(self, other):
        return False
    def __ne__(self, other):
        return True
    def __hash__(self):
        return hash('harmless_name')
    def __getitem__(self, key):
        return 'ab'
    def __str__(self):
        return 'harmless_name'
    def startswith(self, *a):
        return False
    def endswith(self, *a):
        return False
import json
"""


@pytest.mark.parametrize(
    "expr",
    [
        "getattr(json.dumps, Liar('__globals__'))",
        "getattr(print, Liar('__self__'))",
        "getattr(object, Liar('__subclasses__'))",
        "getattr(1, Liar('__reduce_ex__'))",
        "setattr(json, Liar('__spec__'), 1)",
        "import operator\noperator.attrgetter(Liar('__globals__'))(json.dumps)",
        "import operator\noperator.methodcaller(Liar('__subclasses__'))(object)",
    ],
)
def test_str_subclass_names_are_normalised(expr):
    with pytest.raises((CapsuleAttributeError, TypeError)) as info:
        run(LIARS + expr)
    assert "globals" not in repr(getattr(info.value, "obj", ""))


def test_lying_name_is_still_refused_by_hasattr():
    assert run(LIARS + "hasattr(json.dumps, Liar('__globals__'))") is False


def test_exact_name():
    class S(str):
        def __eq__(self, other):
            return True

    assert type(exact_name(S("__x__"))) is str and exact_name(S("__x__")) == "__x__"
    with pytest.raises(TypeError):
        exact_name(5)


# -- format and friends ---------------------------------------------------------------------
@pytest.mark.parametrize(
    "expr",
    [
        "'{0.__globals__}'.format(json.dumps)",
        "'{0.__class__.__base__.__subclasses__}'.format(1)",
        "'{0.__init__.__globals__}'.format(json.JSONEncoder())",
        "'{a.__globals__}'.format_map({'a': json.dumps})",
        "str.format('{0.__globals__}', json.dumps)",
        "fmt = '{0.__globals__}'.format\nfmt(json.dumps)",
        "getattr('{0.__globals__}', 'format')(json.dumps)",
        "import string\nstring.Formatter().format('{0.__globals__}', json.dumps)",
        "import string\nstring.Formatter().vformat('{0.__globals__}', (json.dumps,), {})",
        "import operator\noperator.attrgetter('__globals__')(json.dumps)",
        "import operator\noperator.attrgetter('encoder.__globals__')(json)",
        "import operator\noperator.methodcaller('__subclasses__')(object)",
        "import operator\noperator.methodcaller('__reduce_ex__', 2)(1)",
        "class S(str): pass\nS('{0.__globals__}').format(json.dumps)",
    ],
)
def test_format_and_operator_helpers_obey_the_guard(expr):
    with pytest.raises(CapsuleAttributeError):
        run("import json\n" + expr)


@pytest.mark.parametrize(
    "expr, expected",
    [
        ("'{0}'.format(1)", "1"),
        ("'{0.real}-{0.imag}'.format(3)", "3-0"),
        ("'{0[a]}'.format({'a': 1})", "1"),
        ("'{x:>5}'.format(x='ab')", "   ab"),
        ("'{0.__class__.__name__}'.format(1)", "int"),
        ("'{a}'.format_map({'a': 2})", "2"),
        ("import string\nstring.Formatter().format('{0.real}', 4)", "4"),
        ("import operator\noperator.attrgetter('real')(5)", 5),
        ("import operator\noperator.attrgetter('a.b')(N)", 7),
        ("import operator\noperator.methodcaller('upper')('x')", "X"),
        ("format(3.14159, '.2f')", "3.14"),
    ],
)
def test_format_and_operator_helpers_still_work(expr, expected):
    src = "class M:\n    b = 7\nclass N:\n    a = M\n"
    assert run(src + expr) == expected


# -- rexec mode ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "expr",
    [
        "type(a).__name__",
        "a.__dict__",
        "vars(a)",
        "A.__mro__",
        "f.__name__",
        "a._private",
        "getattr(a, '_private')",
        "'{0._private}'.format(a)",
    ],
)
def test_rexec_denies_underscore_introspection_on_own_objects(expr):
    src = OWN + "a._private = 3\n"
    assert run(src + "a._private") == 3  # proxy mode: own objects are open
    with pytest.raises(CapsuleAttributeError) as info:
        run(src.replace("a._private = 3", "setattr(a, 'y', 3)") + expr, mode="rexec")
    assert "rexec" in str(info.value)


def test_rexec_refusal_teaches_proxy_mode():
    with pytest.raises(CapsuleAttributeError) as info:
        run(OWN + "a.__dict__", mode="rexec")
    assert "--mode proxy" in str(info.value)


def test_rexec_still_runs_ordinary_code():
    src = OWN + "b = A()\n[a.m() + b.x, len([1, 2]), str(3), f(1)]"
    assert run(src, mode="rexec") == [2, 2, "3", 3]


def test_rexec_refuses_setting_underscore_attributes():
    with pytest.raises(CapsuleAttributeError):
        run(OWN + "setattr(a, '_p', 1)", mode="rexec")
