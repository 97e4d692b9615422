"""Red team: the membrane (ipycap/engine/membrane.py and its C fast path, ipycap/engine/_speedups.c).

ESCAPES.md row "proxy internals" and issue 3's list, plus the leaks known in zope.security
8.4's C proxy.  Each payload tries to put the canary token, held privately by a protected
object (``vault._token``) or its class (``Vault._master_key``), into the name ``stolen``.
Each test runs the payload as plain Python over the raw objects, where it reaches the token
(so it is a real attack), and as capsule code over proxies, where it must not.
"""

from __future__ import annotations

import operator

import pytest

from ipycap import Capsule, Registry
from ipycap.engine.membrane import Proxy


class Vault:
    """A realistic protected object: public API, private state, a class-level secret."""

    _master_key = None  # set per test to the canary token

    def __init__(self, token):
        self._token = token
        self._entries = [Entry(token), Entry("public")]
        self.name = "vault"
        self.public_note = "hello"

    def check(self, guess):
        return guess == self._token

    def is_in(self, container):
        return self in container

    def sorted_entries(self, key):
        return [e.label for e in sorted(self._entries, key=key)]

    def call(self, callback):
        return callback(self)

    def total(self, amount):
        return len(self._token) + amount

    def get_note(self):
        return self.public_note

    def compare(self, other, op):
        return _OPS[op](self._token, other)

    def pick(self, i):
        return self._entries[i].label

    def __len__(self):
        return 2

    def __eq__(self, other):
        return NotImplemented

    def __add__(self, other):
        return NotImplemented

    __hash__ = object.__hash__


_OPS = {
    "<": operator.lt,
    ">": operator.gt,
    "<=": operator.le,
    ">=": operator.ge,
    "!=": operator.ne,
    "==": operator.eq,
}
#: The capsule method Python reflects each trusted comparison to.
_REFLECTED = {"<": "__gt__", ">": "__lt__", "<=": "__ge__", ">=": "__le__", "!=": "__ne__"}


class Entry:
    def __init__(self, secret):
        self._secret = secret
        self.label = "entry"


@pytest.fixture
def token(canary):
    _, token = canary
    Vault._master_key = token
    yield token
    Vault._master_key = None


def plain(payload: str, **names) -> dict:
    """The payload as plain Python over the raw objects."""
    ns = dict(names)
    exec(payload, ns)
    return ns


def capsule(payload: str, grants=(), **names) -> tuple[dict, BaseException | None]:
    """The payload as capsule code over proxies; returns its namespace and error."""
    c = Capsule(protected=names, grants=list(grants))
    try:
        c.run(payload)
    except BaseException as e:  # noqa: BLE001 - the payload's error is part of the outcome
        return c.namespace, e
    finally:
        c.end()
    return c.namespace, None


def assert_attack(payload: str, token: str, grants=(), plain_grants_ok=True, **extra):
    """The payload reaches the token as plain Python and not as capsule code."""
    raw = plain(payload, vault=Vault(token), **extra)
    assert raw.get("stolen") == token, "not a real attack: plain Python missed the canary"
    ns, err = capsule(payload, grants, vault=Vault(token), **extra)
    stolen = ns.get("stolen")
    assert stolen != token, f"ESCAPE: the capsule reached the canary ({payload!r})"
    if isinstance(stolen, (list, tuple)):
        assert token not in stolen
    assert token not in repr(err)
    for value in ns.values():
        if type(value) is str:
            assert token not in value
    return err


# -- escapes found by this red team (fixed; kept as regressions) -------------------------------
def test_abc_subclasshook_receives_the_raw_class(token):
    # Found here (fixed in membrane._private_attr): ABCMeta.__instancecheck__ reads
    # instance.__class__ in C, which the proxy answered with the raw class; the capsule's
    # __subclasshook__ then read class-level private state.  Source: zope.security leak
    # family (__class__ of a proxy), pyjail "isinstance hooks".
    assert_attack(
        "import collections.abc\ngot = []\n"
        "class A(collections.abc.Hashable):\n"
        "    @classmethod\n"
        "    def __subclasshook__(cls, C):\n"
        "        got.append(C)\n"
        "        return NotImplemented\n"
        "try:\n    isinstance(vault, A)\nexcept TypeError:\n    pass\n"
        "stolen = [c._master_key for c in got if hasattr(c, '_master_key')][0]\n",
        token,
    )


def test_singledispatch_dispatches_on_the_raw_class(token):
    # Found here (same fix): functools.singledispatch reads args[0].__class__ and hands it
    # to issubclass() with a capsule metaclass's __subclasscheck__.
    assert_attack(
        "import functools\ngot = []\n"
        "class M(type):\n"
        "    def __subclasscheck__(cls, C):\n"
        "        got.append(C)\n"
        "        return False\n"
        "class A(metaclass=M):\n    pass\n"
        "@functools.singledispatch\ndef f(x):\n    return 0\n"
        "@f.register(A)\ndef _(x):\n    return 1\n"
        "f(vault)\n"
        "stolen = [c._master_key for c in got if hasattr(c, '_master_key')][0]\n",
        token,
    )


def test_trusted_comparison_hands_a_private_value_to_capsule_eq(token):
    # Found here (fixed in membrane.ReverseProxy): 'guess == self._token' in trusted code
    # reflected to the capsule's __eq__ with the raw token.  Source: issue 3 ("a capsule
    # object's __eq__ called when a trusted method compares it with private data").
    assert_attack(
        "class Guess:\n"
        "    def __eq__(self, other):\n"
        "        global stolen\n"
        "        stolen = other\n"
        "        return False\n"
        "    __hash__ = object.__hash__\n"
        "vault.check(Guess())\n",
        token,
    )


@pytest.mark.parametrize("op", sorted(_REFLECTED))
def test_trusted_ordering_hands_a_private_value_to_capsule_methods(token, op):
    # Found here (same fix): every rich comparison, not only ==.
    assert_attack(
        "class Guess:\n"
        f"    def {_REFLECTED[op]}(self, other):\n"
        "        global stolen\n"
        "        stolen = other\n"
        "        return False\n"
        "    __hash__ = object.__hash__\n"
        "try:\n"
        f"    vault.compare(Guess(), {op!r})\n"
        "except TypeError:\n    pass\n",
        token,
    )


def test_underscore_operator_attrgetter_reads_past_the_guard(token):
    # Found here (fixed in modules.MODULE_OVERRIDES): _operator is a default import and its
    # attrgetter is the C one, so attrgetter('__globals__') reached sys.modules['__main__'].
    # Source: ESCAPES.md operator.attrgetter; RestrictedPython advisories on attrgetter.
    import sys
    import types

    main = types.ModuleType("__rt_main__")
    main.vault = Vault(token)
    sys.modules["__rt_main__"] = main
    try:
        assert_attack(
            "import _operator, pprint\n"
            "g = _operator.attrgetter('__globals__')(pprint.pprint)\n"
            "stolen = g['_sys'].modules['__rt_main__'].vault._token\n",
            token,
        )
        assert_attack(
            "from _operator import methodcaller\nimport pprint\n"
            "g = methodcaller('__getattribute__', '__globals__')(pprint.pprint)\n"
            "stolen = g['_sys'].modules['__rt_main__'].vault._token\n",
            token,
        )
    finally:
        del sys.modules["__rt_main__"]


@pytest.mark.parametrize(
    "payload",
    [
        "import functools, pprint\nclass Box:\n    pass\nb = Box()\n"
        "functools.update_wrapper(b, pprint.pprint, assigned=('__globals__',), updated=())\n"
        "g = vars(b)['__globals__']\n",
        "import functools, pprint\nclass Box:\n    pass\n"
        "w = functools.wraps(pprint.pprint, assigned=('__globals__',), updated=())(Box())\n"
        "g = vars(w)['__globals__']\n",
        "import functools, pprint\nclass Box:\n    pass\nb = Box()\n"
        "functools.update_wrapper(b, pprint.pprint, assigned=(), updated=('__globals__',))\n",
    ],
    ids=["update_wrapper", "wraps", "update_wrapper_updated"],
)
def test_functools_update_wrapper_copies_named_attributes_past_the_guard(token, payload):
    # Found here (fixed in guard.update_wrapper/wraps): update_wrapper reads the attributes
    # its caller names in trusted Python, e.g. a library function's __globals__.
    import sys
    import types

    main = types.ModuleType("__rt_main__")
    main.vault = Vault(token)
    sys.modules["__rt_main__"] = main
    tail = "stolen = g['_sys'].modules['__rt_main__'].vault._token\n"
    try:
        if "updated=('__globals__'" in payload:
            # Plain Python: updating a box's __dict__-like attribute with the globals.
            body = (
                payload.replace("class Box:\n    pass\n", "class Box:\n    __globals__ = {}\n")
                + "g = b.__globals__\n"
            )
            assert plain(body + tail)["stolen"] == token
            ns, _ = capsule(body + tail)
            assert ns.get("stolen") != token
        else:
            assert_attack(payload + tail, token)
    finally:
        del sys.modules["__rt_main__"]


# -- zope.security 8.4's known C-proxy leaks, and issue 3's list --------------------------------
@pytest.mark.parametrize(
    "payload",
    [
        "stolen = object.__getattribute__(vault, '_token')",
        "stolen = type(vault).__getattribute__(vault, '_token')",
        "stolen = super(type(vault), vault).__getattribute__('_token')",
        "P = (1).__class__.__class__(vault)\nstolen = super(P, vault).__getattribute__('_token')",
        "P = (1).__class__.__class__(vault)\nstolen = P.__mro__[1].__getattribute__(vault, '_token')",
        "stolen = vars(vault)['_token']",
        "stolen = vault.__dict__['_token']",
        "stolen = getattr(vault, '_token')",
    ],
    ids=[
        "object_getattribute",
        "type_getattribute",
        "super_of_type",
        "super_of_proxy_class",
        "proxybase_getattribute",
        "vars",
        "dunder_dict",
        "getattr",
    ],
)
def test_generic_accessors_on_the_proxy(token, payload):
    # Source: zope.security 8.4 leaks (object.__getattribute__ and super() on the proxy).
    assert_attack(payload, token)


@pytest.mark.parametrize(
    "payload",
    [
        # the proxy type's own descriptors and slots
        "P = (1).__class__.__class__(vault)\nd = P.__mro__[1].__dict__\nstolen = d",
        "P = (1).__class__.__class__(vault)\n"
        "stolen = [v for k, v in vars(P).items() if 'target' in k][0].__get__(vault)._token",
        # closures and globals of the proxy's own methods
        "P = (1).__class__.__class__(vault)\n"
        "stolen = P.__len__.__globals__['_get_target'](vault)._token",
        "stolen = vault.__len__.__func__.__globals__['_get_target'](vault)._token",
        "P = (1).__class__.__class__(vault)\n"
        "stolen = [c.cell_contents for c in P.__add__.__closure__][0]",
        "stolen = vault.check.__func__.__globals__['_get_target'](vault)._token",
        "stolen = vault.check.__self__._token",
        "m = vault.check\nstolen = (1).__class__.__class__(m).__dict__",
    ],
    ids=[
        "proxybase_dict",
        "slot_descriptor",
        "method_globals",
        "bound_method_func_globals",
        "method_closure",
        "method_proxy_func",
        "method_proxy_self",
        "method_proxy_type_dict",
    ],
)
def test_proxy_type_internals(token, payload):
    # Source: zope.security 8.4 leaks (the proxy type's __dict__ and slot descriptors) and
    # pyjail __globals__/__closure__ walking; on a plain object every step is ordinary.
    raw_payload = {
        "proxybase_dict": "stolen = vault.__dict__['_token']",
        "slot_descriptor": "stolen = vault.__dict__['_token']",
        "method_globals": "stolen = vault._token",
        "bound_method_func_globals": "stolen = vault.check.__self__._token",
        "method_closure": "stolen = vault._token",
        "method_proxy_func": "stolen = vault.check.__self__._token",
        "method_proxy_self": "stolen = vault.check.__self__._token",
        "method_proxy_type_dict": "stolen = vault.check.__self__.__dict__['_token']",
    }
    # Without a proxy there is no proxy type: the same goal is one plain step away.
    ns, err = capsule(payload, vault=Vault(token))
    stolen = ns.get("stolen")
    assert stolen != token
    assert not (isinstance(stolen, dict) and token in map(str, stolen.values()))
    assert token not in repr(err)
    for raw in set(raw_payload.values()):
        assert plain(raw, vault=Vault(token))["stolen"] == token


@pytest.mark.parametrize(
    "payload",
    [
        "try:\n    vault.missing\nexcept AttributeError as e:\n    stolen = e.obj._token",
        "class S(str):\n    pass\n"
        "try:\n    getattr(vault, S('missing'))\nexcept AttributeError as e:\n"
        "    stolen = e.obj._token",
        "try:\n    vault.pick(5)\nexcept IndexError as e:\n"
        "    stolen = e.__traceback__.tb_next.tb_frame.f_locals['self']._token",
        "import sys\ntry:\n    vault.pick(5)\nexcept IndexError:\n"
        "    stolen = sys.exc_info()[2].tb_next.tb_frame.f_locals['self']._token",
        "try:\n    vault.sorted_entries(key=lambda e: 1 / 0)\nexcept ZeroDivisionError as e:\n"
        "    stolen = e.__traceback__.tb_next.tb_frame.f_locals['self']._token",
        "try:\n    vault.call(lambda v: v.nope)\nexcept AttributeError as e:\n"
        "    stolen = (e.__context__ or e).obj._token",
    ],
    ids=[
        "attributeerror_obj",
        "attributeerror_obj_slow_path",
        "traceback_locals",
        "sys_exc_info",
        "traceback_through_callback",
        "context_chain",
    ],
)
def test_exceptions_raised_through_the_proxy(token, payload):
    # Source: zope.security 8.4 leaks (exceptions carrying the raw object); RestrictedPython
    # CVE-2023-37271 (traceback frames); AccessControl CVE-2021-32807 (AttributeError.obj).
    assert_attack(payload, token)


@pytest.mark.parametrize(
    "payload",
    [
        "class P:\n    def __eq__(self, other):\n        global stolen\n"
        "        stolen = other._token\n        return False\n    __hash__ = object.__hash__\n"
        "vault == P()",
        "class P:\n    def __radd__(self, other):\n        global stolen\n"
        "        stolen = other._token\n        return 0\nvault + P()",
        "class P:\n    def __contains__(self, item):\n        global stolen\n"
        "        stolen = item._token\n        return False\nvault.is_in(P())",
        "class P:\n    def __eq__(self, other):\n        global stolen\n"
        "        stolen = other._token\n        return False\n    __hash__ = object.__hash__\n"
        "P() in [vault]",
        "got = []\ndef key(e):\n    got.append(e._secret)\n    return 0\n"
        "try:\n    vault.sorted_entries(key)\nexcept AttributeError:\n    pass\n"
        "stolen = got[0] if got else None",
        "stolen = vault.call(lambda v: v._token)",
        "stolen = sorted([vault], key=lambda v: v._token)[0]._token",
        "stolen = list(map(lambda v: v._token, [vault]))[0]",
        "stolen = list(filter(lambda v: v._token, [vault]))[0]._token",
        "stolen = max([vault], key=lambda v: v._token)._token",
        "class Probe:\n    def __index__(self):\n        global stolen\n"
        "        import sys\n        stolen = sys._getframe(1).f_locals['self']._token\n"
        "        return 0\nvault.pick(Probe())",
    ],
    ids=[
        "reflected_eq",
        "reflected_radd",
        "contains",
        "list_contains_eq",
        "sorted_key_callback",
        "stored_callback",
        "builtin_sorted_key",
        "map",
        "filter",
        "max_key",
        "index_frame_walk",
    ],
)
def test_callbacks_and_reflected_operators_get_proxies(token, payload):
    # Source: zope.security 8.4 leaks (rich comparison / reflected operators hand the raw
    # object to an attacker's method); issue 3 (callbacks called by trusted code).
    assert_attack(payload, token)


@pytest.mark.parametrize(
    "payload, grants",
    [
        ("import copy\nstolen = copy.copy(vault)._token", ()),
        ("import copy\nstolen = copy.deepcopy(vault)._token", ()),
        ("stolen = vault.__reduce_ex__(2)[2]['_token']", ()),
        ("stolen = vault.__reduce__()[2]['_token']", ()),
        ("import copyreg\nstolen = copyreg._reduce_ex(vault, 1)[2]['_token']", ()),
        ("import weakref\nstolen = weakref.ref(vault)()._token", ()),
        ("import weakref\nstolen = weakref.proxy(vault)._token", ()),
        ("import gc\nstolen = [r for r in gc.get_referents(vault) if type(r) is str][0]", ()),
        ("import pickle\nstolen = pickle.loads(pickle.dumps(vault))._token", ()),
    ],
    ids=[
        "copy",
        "deepcopy",
        "reduce_ex",
        "reduce",
        "copyreg",
        "weakref_ref",
        "weakref_proxy",
        "gc_referents",
        "pickle_roundtrip",
    ],
)
def test_copy_pickle_weakref_gc(token, payload, grants):
    # Source: zope.security 8.4 leaks (copy/pickle via __reduce_ex__, gc referents).
    raw = plain(payload, vault=Vault(token))
    assert raw["stolen"] == token
    ns, err = capsule(payload, grants, vault=Vault(token))
    assert ns.get("stolen") != token
    assert token not in repr(err)


@pytest.mark.parametrize(
    "payload",
    [
        "import operator\nstolen = operator.attrgetter('_token')(vault)",
        "import operator\nstolen = operator.methodcaller('__getattribute__', '_token')(vault)",
        "import functools\nstolen = functools.partial(getattr, vault)('_token')",
        "import functools\nstolen = functools.reduce(getattr, ['_token'], vault)",
        "stolen = '{0._token}'.format(vault)",
        "stolen = '{v._token}'.format_map({'v': vault})",
        "stolen = str.format('{0.__class__._master_key}', vault)",
        "import string\nstolen = string.Formatter().format('{0._token}', vault)",
        "stolen = f'{vault._token}'",
        "stolen = format(vault.__class__._master_key)",
        "stolen = type(vault)._master_key",
    ],
    ids=[
        "attrgetter",
        "methodcaller",
        "partial_getattr",
        "reduce_getattr",
        "str_format",
        "format_map",
        "unbound_format_class",
        "string_formatter",
        "fstring",
        "class_attribute",
        "type_class_attribute",
    ],
)
def test_accessor_builtins_on_proxies(token, payload):
    # Source: RestrictedPython CVE-2023-41039/CVE-2024-47532 (format oracles);
    # ESCAPES.md operator.attrgetter.
    assert_attack(payload, token)


@pytest.mark.parametrize(
    "payload",
    [
        "class S(str):\n    def __eq__(self, o):\n        return True\n"
        "    __hash__ = str.__hash__\n"
        "    def startswith(self, p):\n        return False\n"
        "    def __getitem__(self, i):\n        return 'x'\n"
        "stolen = getattr(vault, S('_token'))",
        "stolen = getattr(vault, ''.join(map(chr, [95, 116, 111, 107, 101, 110])))",
        "stolen = vault._\U0001d635oken",
        "stolen = getattr(vault, '_token' + '\\x00'[:0])",
    ],
    ids=["str_subclass_name", "built_name", "nfkc_identifier", "spliced_name"],
)
def test_name_spoofing_on_the_c_fast_path(token, payload):
    # Source: RestrictedPython 7.2 (str subclasses lying in startswith/__eq__), NFKC
    # identifiers; aimed at _speedups.c's exact-str check.
    assert_attack(payload, token)


def test_class_assignment_to_a_proxied_class(token):
    # Source: pyjail collections (__class__ assignment to borrow another class's state).
    assert_attack(
        "class Mine:\n    pass\nm = Mine()\n"
        "try:\n    m.__class__ = type(vault)\nexcept TypeError:\n    pass\n"
        "stolen = m._master_key\n",
        token,
    )


def test_capsule_metaclass_instancecheck_gets_a_proxy(token):
    # Source: zope.security users' isinstance complaints turned around: a capsule
    # __instancecheck__/__subclasscheck__ is handed whatever isinstance() got.
    assert_attack(
        "class M(type):\n"
        "    def __instancecheck__(cls, inst):\n"
        "        global stolen\n        stolen = inst._token\n        return False\n"
        "    def __subclasscheck__(cls, sub):\n"
        "        global stolen2\n        stolen2 = sub._master_key\n        return False\n"
        "class C(metaclass=M):\n    pass\n"
        "isinstance(vault, C)\n",
        token,
    )


def test_proxy_cannot_be_a_base_class(token):
    # Source: issue 3 ("a proxy can never be used as a base class"); zope.security.
    assert_attack(
        "try:\n"
        "    class Sub(type(vault)):\n        pass\n"
        "    stolen = Sub._master_key\n"
        "except TypeError:\n"
        "    P = (1).__class__.__class__(vault)\n"
        "    try:\n"
        "        class Sub2(P.__mro__[1]):\n            pass\n"
        "        stolen = Sub2.__new__(Sub2)._token\n"
        "    except TypeError:\n        pass\n",
        token,
    )


def test_recursion_limit_exhaustion_inside_the_membrane(token):
    # Source: pysandbox post-mortem (errors raised inside the sandbox's own hooks): a
    # RecursionError raised while the membrane scrubs an exception must not carry the raw
    # exception (with .obj = target) in its context.
    assert_attack(
        "class S(str):\n    pass\nname = S('missing')\nfound = []\n"
        "def deep(n, k):\n"
        "    if n < k:\n        return deep(n + 1, k)\n"
        "    try:\n        getattr(vault, name)\n"
        "    except BaseException as e:\n        return e\n"
        "for k in range(0, 5000, 3):\n"
        "    try:\n        e = deep(0, k)\n    except RecursionError:\n        break\n"
        "    while e is not None:\n"
        "        o = getattr(e, 'obj', None)\n"
        "        try:\n            found.append(o._token)\n"
        "        except Exception:\n            pass\n"
        "        e = e.__context__\n"
        "stolen = found[0] if found else None\n",
        token,
    )


def test_deep_nesting_leaving_the_capsule(token):
    # Source: export() recursion: a deeply nested capsule value passed to a trusted
    # method must be refused cleanly, never leave half-copied with raw internals.
    ns, err = capsule(
        "x = []\nfor _ in range(200):\n    x = [x]\n"
        "class Grab:\n    def __call__(self, v):\n        global stolen\n"
        "        stolen = v._token\n"
        "x.append(Grab())\nvault.call(x)\n",
        vault=Vault(token),
    )
    assert ns.get("stolen") != token
    assert err is not None and token not in repr(err)


def test_revoked_proxy_and_its_bound_methods_stop_at_once(token):
    # Source: E's caretaker pattern: a stored bound method outliving the revocation.
    registry = Registry()
    vault = Vault(token)
    vault.public_note = token  # public while granted; unreachable once revoked
    c = Capsule(registry=registry, protected={"vault": vault}, scope="session")
    c.run("get = vault.get_note\nget2 = vault.check\nkeep = vault\n")
    assert c.run("get()") == token  # granted: public data is readable
    registry.revoke("vault")
    for payload in ("stolen = get()", "stolen = keep.public_note", "stolen = keep.get_note()"):
        try:
            c.run(payload)
        except Exception as e:  # noqa: BLE001
            assert "revoked" in str(e)
        assert c.namespace.get("stolen") != token
    assert plain("stolen = vault.get_note()", vault=vault)["stolen"] == token


def test_reverse_proxy_coming_home_is_the_capsules_own_object(token):
    # Source: issue 3 (both directions): a capsule object handed back by trusted code must
    # arrive as the capsule's own object, never as a ReverseProxy whose slot is reachable.
    ns, err = capsule(
        "class Mine:\n    pass\nmine = Mine()\n"
        "back = vault.call(lambda v: mine) if False else None\n"
        "def cb(v):\n    return mine\n"
        "back = vault.call(cb)\n"
        "same = back is mine\n"
        "try:\n    stolen = back.__ipycap_target__\nexcept AttributeError:\n    pass\n",
        vault=Vault(token),
    )
    assert err is None, err
    assert ns["same"] is True
    assert ns.get("stolen") != token


def test_proxies_are_what_the_capsule_sees(token):
    """Sanity for this file: the payloads above really act on proxies, not raw objects."""
    ns, err = capsule("v = vault\nn = vault.name\n", vault=Vault(token))
    assert err is None and type(ns["v"]) is Proxy and ns["n"] == "vault"
