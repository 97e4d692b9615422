"""Red team 8 (crossings): trusted code calling a capsule class's argument-taking dunders
with trusted values (I2, I3; issue 11).

Before this pass only comparisons were call-scoped (hooks.py): trusted code that adds,
indexes, calls, formats, ``with``-s, deep-copies or subclasses a capsule object handed the
capsule's method its own objects raw, and so did comparisons a capsule class inherited,
made by a factory (a metaclass called directly, ``make_dataclass``, ``Enum(...)``) or
stored after the class was made (``K.__eq__ = f``: a plain attribute store the gate did
not route).

Each test's canary is a trusted object the test makes (a ``Vault`` holding a fresh token,
never anything real): the capsule's method records ``getattr(operand, '_token', None)``
(a proxy hides private names; the raw object gives the token) and keeps the operand (a
call-scoped proxy is revoked once the method returned).  Each first shows, as plain
Python, that the same class hands its method the raw token.
"""

from __future__ import annotations

import copy
import secrets
import textwrap

import pytest

from ipycap import Capsule
from ipycap.engine import classfreeze, hooks


class Vault:
    """A trusted object: capsule code may see it only through a proxy (no ``_token``)."""

    def __init__(self, token):
        self._token = token

    def public(self):
        return "public"


class VaultError(Exception):
    def __init__(self, token):
        super().__init__("vault")
        self._token = token


@pytest.fixture
def token():
    return secrets.token_hex(16)


RECORD = """
seen = []
keep = []
def record(*operands, **named):
    for o in list(operands) + list(named.values()):
        seen.append(getattr(o, '_token', None))
        keep.append(o)
    return 1
"""


def _capsule(body: str):
    capsule = Capsule(scope="session")
    capsule.run(textwrap.dedent(RECORD) + textwrap.dedent(body))
    return capsule


def _plain(body: str) -> dict:
    ns: dict = {}
    exec(compile(textwrap.dedent(RECORD) + textwrap.dedent(body), "<plain>", "exec"), ns)
    return ns


def _no_token(capsule, token):
    seen = capsule.run("seen")
    assert seen, "the capsule method was not called"
    assert token not in seen, seen
    for i in range(len(seen)):
        kept = capsule.run(f"keep[{i}]")
        if kept is None or type(kept) in (int, str, tuple):
            continue
        with pytest.raises(PermissionError):
            capsule.run(f"keep[{i}].public()")  # the operand's capability ended


# -- 1. every argument-taking dunder called by trusted code -----------------------------------
OPS = """
class K:
    def __add__(self, o): return record(o)
    def __radd__(self, o): return record(o)
    def __sub__(self, o): return record(o)
    def __rmatmul__(self, o): return record(o)
    def __iadd__(self, o): return record(o)
    def __ror__(self, o): return record(o)
    def __pow__(self, o, mod=None): return record(o)
    def __divmod__(self, o): return record(o)
    def __contains__(self, o): return bool(record(o))
    def __getitem__(self, k): return record(k)
    def __setitem__(self, k, v): record(k, v)
    def __delitem__(self, k): record(k)
    def __call__(self, *a, **kw): return record(*a, **kw)
    def __exit__(self, t, e, tb): record(e); return True
    def __enter__(self): return self
    def __format__(self, spec): record(spec); return 'k'
    def __round__(self, n=None): return record(n)
    def __setattr__(self, name, value): record(value)
    def __class_getitem__(cls, item): return record(item)
    def __init_subclass__(cls, **kw): record(**kw)
    def __deepcopy__(self, memo): record(*memo.values()); return self
k = K()
"""

TRUSTED_CALLS = {
    "add": lambda k, v: k + v,
    "radd": lambda k, v: v + k,
    "sub": lambda k, v: k - v,
    "rmatmul": lambda k, v: v @ k,
    "iadd": lambda k, v: k.__class__.__iadd__(k, v),
    "ror": lambda k, v: v | k,
    "pow": lambda k, v: pow(k, v),
    "divmod": lambda k, v: divmod(k, v),
    "contains": lambda k, v: v in k,
    "getitem": lambda k, v: k[v],
    "setitem_key_and_value": lambda k, v: k.__setitem__(v, v),
    "delitem": lambda k, v: k.__delitem__(v),
    "call": lambda k, v: k(v),
    "call_keyword": lambda k, v: k(x=v),
    "setattr": lambda k, v: setattr(k, "x", v),
    "class_getitem": lambda k, v: type(k)[v],
    "init_subclass_keywords": lambda k, v: type("T", (type(k),), {}, tag=v),
    "deepcopy_memo": lambda k, v: copy.deepcopy([v, k]),
}


@pytest.mark.parametrize("how", sorted(TRUSTED_CALLS))
def test_trusted_code_calling_a_capsule_dunder_hands_call_scoped_proxies(how, token):
    call = TRUSTED_CALLS[how]
    plain = _plain(OPS)
    call(plain["k"], Vault(token))
    assert token in plain["seen"]  # the attack is real: plain Python hands the raw object

    capsule = _capsule(OPS)
    call(capsule.run("k"), Vault(token))
    _no_token(capsule, token)


def test_a_trusted_with_statement_hands_the_exception_as_a_proxy(token):
    plain = _plain(OPS)
    with plain["k"]:
        raise VaultError(token)
    assert token in plain["seen"]

    capsule = _capsule(OPS)
    with capsule.run("k"):
        raise VaultError(token)
    _no_token(capsule, token)


def test_new_and_init_called_by_trusted_code_get_proxies(token):
    body = """
    class K:
        def __new__(cls, *a):
            record(*a)
            return super().__new__(cls)
        def __init__(self, *a):
            record(*a)
    """
    plain = _plain(body)
    plain["K"](Vault(token))
    assert plain["seen"].count(token) == 2
    capsule = _capsule(body)
    obj = capsule.run("K")(Vault(token))
    assert type(obj) is capsule.run("K")
    _no_token(capsule, token)


def test_a_capsule_descriptor_set_by_trusted_code_gets_a_proxy(token):
    body = """
    class D:
        def __set__(self, obj, value):
            record(value)
        def __get__(self, obj, owner=None):
            return 'd'
    class K:
        d = D()
    k = K()
    """
    plain = _plain(body)
    plain["k"].d = Vault(token)
    assert token in plain["seen"]
    capsule = _capsule(body)
    k = capsule.run("k")
    k.d = Vault(token)
    assert k.d == "d"
    _no_token(capsule, token)


def test_a_collections_userdict_subclass_called_back_by_trusted_update(token):
    """A trusted-inherited method (MutableMapping.update, standard-library Python) calls the
    capsule's override with what trusted code passed."""
    body = """
    import collections
    class U(collections.UserDict):
        def __setitem__(self, k, v):
            record(v)
    u = U()
    """
    plain = _plain(body)
    plain["u"].update(x=Vault(token))
    assert token in plain["seen"]
    capsule = _capsule(body)
    capsule.run("u").update(x=Vault(token))
    _no_token(capsule, token)


def test_dict_subclass_missing_called_by_a_trusted_lookup(token):
    body = """
    class D(dict):
        def __missing__(self, key):
            return record(key)
    d = D()
    """
    plain = _plain(body)
    plain["d"][Vault(token)]
    assert token in plain["seen"]
    capsule = _capsule(body)
    capsule.run("d")[Vault(token)]
    _no_token(capsule, token)


def test_int_subclass_reflected_operator_from_trusted_code(token):
    body = """
    class N(int):
        def __radd__(self, o):
            return record(o)
        def __eq__(self, o):
            return bool(record(o))
        __hash__ = int.__hash__
    n = N(3)
    """
    plain = _plain(body)
    Vault(token) + plain["n"] if False else plain["n"].__radd__(Vault(token))
    assert token in plain["seen"]
    capsule = _capsule(body)
    n = capsule.run("n")
    assert n + 1 == 4  # int's own __add__: nothing of the capsule's runs
    [Vault(token)].count(n)  # list.count compares with the capsule's __eq__
    _no_token(capsule, token)


def test_numpy_hands_a_capsule_array_ufunc_a_proxy_of_a_trusted_array(token):
    np = pytest.importorskip("numpy")

    class TokenArray(np.ndarray):
        pass

    trusted = np.arange(3).view(TokenArray)
    trusted._token = token
    body = """
    class A:
        def __array_ufunc__(self, ufunc, method, *inputs, **kw):
            record(*inputs)
            return 0
    a = A()
    """
    plain = _plain(body)
    np.add(trusted, plain["a"])
    assert token in plain["seen"]
    capsule = Capsule(scope="session", grants=[("import", "numpy")])
    capsule.run(textwrap.dedent(RECORD) + textwrap.dedent(body))
    np.add(trusted, capsule.run("a"))
    seen = capsule.run("seen")
    assert seen and token not in seen


# -- 2. inherited, and classes made by factories --------------------------------------------
FACTORIES = {
    "inherited": """
        class B:
            def __radd__(self, o): return record(o)
        class K(B): pass
        """,
    "inherited_comparison": """
        class B:
            def __eq__(self, o): return bool(record(o))
            __hash__ = object.__hash__
        class K(B): pass
        """,
    "in_a_function": """
        def make():
            class K:
                def __radd__(self, o): return record(o)
            return K
        K = make()
        """,
    "type_call": "K = type('K', (), {'__radd__': lambda self, o: record(o)})\n",
    "metaclass_called": """
        class M(type):
            pass
        K = M('K', (), {'__radd__': lambda self, o: record(o)})
        """,
    "metaclass_new_adds_it": """
        class M(type):
            def __new__(mcs, name, bases, ns):
                ns['__radd__'] = lambda self, o: record(o)
                return super().__new__(mcs, name, bases, ns)
        class K(metaclass=M):
            pass
        """,
    "make_dataclass_namespace": """
        import dataclasses
        K = dataclasses.make_dataclass('K', [('a', int, 0)],
                                       namespace={'__radd__': lambda self, o: record(o)})
        """,
    "enum_functional": """
        import enum
        K = enum.Enum('K', {'A': 1, '__radd__': lambda self, o: record(o)})
        """,
    # typing's NamedTupleMeta copies the body's functions onto the class namedtuple made,
    # after type.__new__ (a trusted deputy's setattr): looked at again when the statement ends
    "typing_namedtuple": """
        import typing
        class K(typing.NamedTuple):
            x: int = 0
            def __radd__(self, o): return record(o)
        """,
    "typing_namedtuple_comparison": """
        import typing
        class K(typing.NamedTuple):
            x: int = 0
            def __eq__(self, o): return bool(record(o))
            __hash__ = object.__hash__
        """,
    "namedtuple_subclass": """
        import collections
        class K(collections.namedtuple('P', 'x', defaults=[0])):
            def __radd__(self, o): return record(o)
        """,
}


def _instance(capsule_or_ns, name="K"):
    cls = capsule_or_ns.run(name) if isinstance(capsule_or_ns, Capsule) else capsule_or_ns[name]
    return cls.A if "A" in getattr(cls, "__members__", {}) else cls()


@pytest.mark.parametrize("how", sorted(FACTORIES))
def test_classes_made_every_way_are_hooked(how, token):
    body = FACTORIES[how]
    operate = (lambda k, v: v == k) if "comparison" in how else (lambda k, v: v + k)
    plain = _plain(body)
    operate(_instance(plain), Vault(token))
    assert token in plain["seen"]
    capsule = _capsule(body)
    operate(_instance(capsule), Vault(token))
    _no_token(capsule, token)


# -- 3. dunders stored after the class was made -----------------------------------------------
STORES = {
    "attribute_store": "K.__radd__ = f",
    "setattr": "setattr(K, '__radd__', f)",
    "comparison_store": "K.__eq__ = f",
    "staticmethod_store": "K.__radd__ = staticmethod(lambda o: record(o))",
    "decorator": "def deco(cls):\n    cls.__radd__ = f\n    return cls\nK = deco(K)",
    "delete_then_inherit": "class B:\n    __radd__ = f\nclass K(B):\n    __radd__ = None\ndel K.__radd__",
    # EnumType's own __setattr__ (a metaclass __setattr__) runs the store: re-guarded after
    "enum_class_metaclass_setattr": "import enum\nclass K(enum.Enum):\n    A = 1\nK.__radd__ = f",
}


@pytest.mark.parametrize("how", sorted(STORES))
def test_a_dunder_stored_later_is_hooked(how, token):
    body = "class K:\n    pass\ndef f(self, o):\n    return record(o)\n" + STORES[how]
    operate = (lambda k, v: v == k) if how == "comparison_store" else (lambda k, v: v + k)
    plain = _plain(body)
    operate(_instance(plain), Vault(token))
    assert token in plain["seen"]
    capsule = _capsule(body)
    cls = capsule.run("K")
    entry = vars(cls).get("__eq__" if how == "comparison_store" else "__radd__")
    if how != "delete_then_inherit":
        assert hooks.is_operand_hook(entry), entry
    operate(_instance(capsule), Vault(token))
    _no_token(capsule, token)


def test_capsule_code_itself_still_gets_its_operands_as_they_are():
    capsule = _capsule(
        OPS
        + "\nclass Own:\n    pass\no = Own()\nk + o\no in k\nk[o]\nk(o)\n"
        + "r = [x is o for x in keep]\n"
    )
    assert capsule.run("r") == [True, True, True, True]


# -- 4. stores a trusted deputy makes on a capsule class ---------------------------------------
DEPUTY_STORES = {
    "setattr": lambda cls, fn: setattr(cls, "__radd__", fn),
    "type_setattr": lambda cls, fn: type.__setattr__(cls, "__radd__", fn),
    "attribute_store": lambda cls, fn: exec("cls.__radd__ = fn", {"cls": cls, "fn": fn}),
    "classmethod_wrapped": lambda cls, fn: setattr(cls, "__radd__", staticmethod(fn)),
}


@pytest.mark.parametrize("how", sorted(DEPUTY_STORES))
@pytest.mark.parametrize("kind", ["plain", "enum", "metaclass"])
def test_a_trusted_deputy_storing_a_capsule_function_as_a_dunder_is_hooked(how, kind, token):
    """A library helper acting for the capsule (typing's NamedTupleMeta, a decorator) stores
    the capsule's function on the capsule's class with its own setattr: no guarded write
    sees it, so type's setattro (and every metaclass's copy of it) re-guards the entry."""
    head = {
        "plain": "class K:\n    pass\n",
        "enum": "import enum\nclass K(enum.Enum):\n    A = 1\n",
        "metaclass": "class M(type):\n    pass\nclass K(metaclass=M):\n    pass\n",
    }[kind]
    arity = "o" if how == "classmethod_wrapped" else "self, o"
    body = head + f"def f({arity}):\n    return record(o)\n"
    capsule = _capsule(body)
    cls = capsule.run("K")
    DEPUTY_STORES[how](cls, capsule.run("f"))
    assert hooks.is_operand_hook(vars(cls)["__radd__"]) or type(vars(cls)["__radd__"]) in (
        hooks._OperandHook,
        hooks._OperandDataHook,
    )
    Vault(token) + _instance(capsule)
    _no_token(capsule, token)


def test_type_setattr_stays_type_setattr_for_trusted_classes():
    class Plain:
        pass

    type.__setattr__(Plain, "__add__", lambda self, o: ("added", o))
    setattr(Plain, "__radd__", lambda self, o: ("radded", o))
    assert Plain() + 1 == ("added", 1) and 1 + Plain() == ("radded", 1)
    type.__delattr__(Plain, "__add__")
    assert "__add__" not in vars(Plain)
    with pytest.raises(TypeError):
        object.__setattr__(Plain, "x", 1)  # CPython's own check still holds


# -- 5. shared enum classes with their own __setattr__ ----------------------------------------
def test_no_loaded_stdlib_enum_class_goes_past_the_member_guard():
    """deputies guards enum members through enum.Enum.__setattr__; a shared enum class with
    its own is wrapped by classfreeze before it is frozen (none in 3.11's stdlib: the scan
    keeps it so)."""
    import enum
    import sys

    stdlib = set(sys.stdlib_module_names)
    bypass = []
    todo = [enum.Enum]
    while todo:
        cls = todo.pop()
        todo.extend(type.__subclasses__(cls))
        if str(cls.__module__).partition(".")[0] not in stdlib or cls is enum.Enum:
            continue
        for kind in ("__setattr__", "__delattr__"):
            own = vars(cls).get(kind)
            if own is not None and own not in classfreeze._ENUM_GUARDS:
                bypass.append((cls, kind))
    assert bypass == []


@pytest.mark.parametrize("kind", ["__setattr__", "__delattr__"])
def test_a_shared_enum_with_its_own_setattr_is_sealed_before_it_is_frozen(kind, token):
    import enum

    class Shared(enum.Enum):
        A = 1

        def __setattr__(self, name, value):
            object.__setattr__(self, name, value)

        def __delattr__(self, name):
            object.__delattr__(self, name)

    Shared.A.extra = token  # trusted code writes it as before
    classfreeze.seal_enum_setattr(Shared)
    classfreeze.seal_enum_setattr(Shared)  # idempotent
    assert vars(Shared)[kind] in classfreeze._ENUM_GUARDS
    Shared.A.extra = "trusted again"
    del Shared.A.extra
    Shared.A.value2 = 1

    def write():  # what a capsule's write reaches: capsule code is on the stack
        if kind == "__setattr__":
            Shared.A.extra = "capsule"
        else:
            del Shared.A.value2

    capsule = Capsule(protected={"write": write})
    with pytest.raises(TypeError, match="shared with trusted code"):
        capsule.run("write()")
    assert getattr(Shared.A, "extra", None) is None and Shared.A.value2 == 1


# -- 6. __init__ through the class's slot ------------------------------------------------------
INITS = {
    "own": "class K:\n    def __init__(self, *a):\n        record(*a)\n",
    "inherited": "class B:\n    def __init__(self, *a):\n        record(*a)\nclass K(B):\n    pass\n",
    "super_chain": (
        "class B:\n    def __init__(self, *a):\n        record(*a)\n"
        "class K(B):\n    def __init__(self, *a):\n        super().__init__(*a)\n"
    ),
    "stored_later": "class K:\n    pass\ndef f(self, *a):\n    record(*a)\nK.__init__ = f\n",
    "stored_on_base_later": (
        "class B:\n    pass\nclass K(B):\n    pass\ndef f(self, *a):\n    record(*a)\n"
        "B.__init__ = f\n"
    ),
    "deleted_revealing_base": (
        "class B:\n    def __init__(self, *a):\n        record(*a)\n"
        "class K(B):\n    def __init__(self, *a):\n        pass\ndel K.__init__\n"
    ),
    "keyword": "class K:\n    def __init__(self, **kw):\n        record(**kw)\n",
}


@pytest.mark.parametrize("how", sorted(INITS))
def test_trusted_instantiation_of_a_capsule_class_hands_init_proxies(how, token):
    call = (lambda K, v: K(x=v)) if how == "keyword" else (lambda K, v: K(v))
    plain = _plain(INITS[how])
    call(plain["K"], Vault(token))
    assert token in plain["seen"]
    capsule = _capsule(INITS[how])
    K = capsule.run("K")
    obj = call(K, Vault(token))
    assert type(obj) is K
    _no_token(capsule, token)
    if how == "keyword":
        K(x=1)
        assert capsule.run("keep[-1]") == 1
    else:
        K(1, "two")  # plain operands: as they are
        assert capsule.run("keep[-2:]") == [1, "two"]


def test_a_trusted_deputy_storing_a_capsule_init_is_guarded(token):
    capsule = _capsule("class K:\n    pass\ndef f(self, *a):\n    record(*a)\n")
    K = capsule.run("K")
    setattr(K, "__init__", capsule.run("f"))  # a library helper's store, for the capsule
    K(Vault(token))
    _no_token(capsule, token)
