"""The membrane, specified on realistic objects: a class instance with private state, a dict,
a list, a module-level function, a bound method and a class, seen by a capsule through
proxies.  Ordinary use works; private state and raw objects never cross; writes need a
grant; revocation kills every derived proxy at once; proxies are cached and made lazily."""

from __future__ import annotations

import pytest

from ipycap import (
    Capsule,
    CapsuleAttributeError,
    CapsuleRevokedError,
    CapsuleTypeError,
    export,
)
from ipycap.engine import capsule as capsule_module
from ipycap.engine.errors import CapabilityError
from ipycap.engine.membrane import Proxy, ReverseProxy, target_of, wrap


class Entry:
    """A private record inside an Account: capsule code must never hold the raw object."""

    def __init__(self, amount, memo):
        self.amount = amount
        self.memo = memo

    def __eq__(self, other):
        return NotImplemented

    __hash__ = object.__hash__


class Profile:
    def __init__(self, city):
        self.city = city


class Account:
    """A class instance with private state and public methods."""

    bank = "Example Bank"

    def __init__(self, owner, balance):
        self.owner = owner
        self.profile = Profile("Paris")
        self._balance = balance
        self._entries = [Entry(10, "salary"), Entry(3, "coffee"), Entry(7, "book")]
        self._callbacks = []

    def balance(self):
        return self._balance

    def deposit(self, amount):
        self._balance += amount
        return self._balance

    def withdraw(self, amount):
        if amount > self._balance:
            raise ValueError("insufficient funds", self._entries)
        self._balance -= amount
        return self._balance

    def statement(self):
        return {"owner": self.owner, "balance": self._balance}

    def sorted_memos(self, key):
        return [e.memo for e in sorted(self._entries, key=key)]

    def has_entry(self, candidate):
        return any(candidate == e for e in self._entries)

    def on_change(self, callback):
        self._callbacks.append(callback)

    def fire(self):
        for cb in self._callbacks:
            cb(self._entries[0])


class Vector:
    def __init__(self, x, y):
        self.x, self.y = x, y

    def __add__(self, other):
        if isinstance(other, Vector):
            return Vector(self.x + other.x, self.y + other.y)
        return Vector(self.x + other, self.y + other)

    __radd__ = __add__

    def __mul__(self, k):
        return Vector(self.x * k, self.y * k)

    def __rmul__(self, k):
        return Vector(self.x * k, self.y * k)

    def __neg__(self):
        return Vector(-self.x, -self.y)

    def __eq__(self, other):
        return isinstance(other, Vector) and (self.x, self.y) == (other.x, other.y)

    def __lt__(self, other):
        return (self.x, self.y) < (other.x, other.y)

    def __hash__(self):
        return hash((self.x, self.y))

    def __bool__(self):
        return bool(self.x or self.y)

    def __abs__(self):
        return (self.x**2 + self.y**2) ** 0.5

    def __repr__(self):
        return f"Vector({self.x}, {self.y})"

    def __str__(self):
        return f"<{self.x}, {self.y}>"

    def __format__(self, spec):
        return f"({format(self.x, spec)}, {format(self.y, spec)})"


class Resource:
    def __init__(self):
        self.events = []

    def __enter__(self):
        self.events.append("enter")
        return self

    def __exit__(self, *exc):
        self.events.append("exit")
        return False


SEEN = []


def helper(value):
    """A module-level function: records exactly what it received."""
    SEEN.append(value)
    return {"got": type(value).__name__}


def protected():
    acct = Account("ada", 100)
    return {
        "acct": acct,
        "data": {"a": 1, "b": [1, 2], "nested": {"k": "v"}},
        "items": [3, 1, 2],
        "helper": helper,
        "deposit": acct.deposit,
        "Account": Account,
        "Vector": Vector,
        "v": Vector(1, 2),
        "res": Resource(),
        "label": "plain string",
    }


@pytest.fixture
def ns():
    SEEN.clear()
    return protected()


@pytest.fixture
def capsule(ns):
    return Capsule(protected=ns, scope="session")


# -- reading and calling -----------------------------------------------------------------------
@pytest.mark.parametrize(
    "expr, expected",
    [
        ("acct.owner", "ada"),
        ("acct.bank", "Example Bank"),
        ("acct.balance()", 100),
        ("acct.profile.city", "Paris"),
        ("data['a']", 1),
        ("data['b'][1]", 2),
        ("data['nested']['k']", "v"),
        ("data.get('a')", 1),
        ("sorted(data.keys())", ["a", "b", "nested"]),
        ("items[0]", 3),
        ("items[-1]", 2),
        ("list(items[:2])", [3, 1]),
        ("sorted(items)", [1, 2, 3]),
        ("items.index(2)", 2),
        ("items.count(1)", 1),
        ("len(items)", 3),
        ("len(data)", 3),
        ("[x * 2 for x in items]", [6, 2, 4]),
        ("2 in items", True),
        ("'a' in data", True),
        ("'z' in data", False),
        ("label.upper()", "PLAIN STRING"),
        ("helper(1)['got']", "int"),
        ("deposit(0)", 100),
        ("Account('bob', 5).balance()", 5),
        ("Account.bank", "Example Bank"),
        ("Account.__name__", "Account"),
        ("helper.__name__", "helper"),
        ("helper.__doc__.split(':')[0]", "A module-level function"),
        ("list(reversed(items))", [2, 1, 3]),
        ("max(items)", 3),
        ("dict(data)['a']", 1),
    ],
)
def test_public_reads_and_calls_work(capsule, expr, expected):
    assert capsule.run(expr) == expected


def test_results_are_wrapped_and_primitives_are_plain(capsule):
    assert type(capsule.run("acct.statement()")) is Proxy
    assert type(capsule.run("acct.profile")) is Proxy
    assert type(capsule.run("data['b']")) is Proxy
    assert type(capsule.run("acct.balance()")) is int
    assert type(capsule.run("acct.owner")) is str
    assert capsule.run("acct.statement()['owner']") == "ada"


def test_user_class_methods_stay_callable_and_change_trusted_state(capsule, ns):
    assert capsule.run("acct.deposit(5)") == 105
    assert ns["acct"].balance() == 105


# -- private state ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "expr",
    [
        "acct._balance",
        "acct._entries",
        "getattr(acct, '_balance')",
        "acct.__dict__",
        "vars(acct)",
        "acct.__class__.__dict__",
        "type(acct).__dict__",
        "acct.__reduce_ex__(2)",
        "acct.__getattribute__",
        "acct.deposit.__self__",
        "acct.deposit.__func__",
        "acct.deposit.__closure__",
        "acct.deposit.__globals__",
        "deposit.__self__",
        "deposit.__func__",
        "helper.__globals__",
        "helper.__code__",
        "helper.__closure__",
        "helper.__defaults__",
        "Account.__subclasses__()",
        "Account.__dict__",
        "Account.__init__.__globals__",
        "data.__class__.__subclasses__()",
        "items.__class__.__dict__",
        "'{0._balance}'.format(acct)",
        "'{0.__dict__}'.format(acct)",
    ],
)
def test_private_state_and_internals_are_hidden(capsule, expr):
    with pytest.raises((AttributeError, CapabilityError)):
        capsule.run(expr)


def test_dir_hides_private_names(capsule):
    names = capsule.run("dir(acct)")
    assert "deposit" in names and "owner" in names
    assert not any(n.startswith("_") for n in names)


def test_hasattr_of_private_name_is_false(capsule):
    assert capsule.run("hasattr(acct, '_balance')") is False
    assert capsule.run("hasattr(acct, 'owner')") is True


# -- writes ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "stmt",
    [
        "acct.owner = 'eve'",
        "del acct.owner",
        "setattr(acct, 'owner', 'eve')",
        "acct.profile.city = 'Rome'",
        "data['a'] = 2",
        "del data['a']",
        "data['b'].append(3)",
        "data.update({'a': 2})",
        "data.pop('a')",
        "data.clear()",
        "data.setdefault('z', 1)",
        "data.popitem()",
        "items.append(4)",
        "items.extend([4])",
        "items.insert(0, 4)",
        "items.sort()",
        "items.reverse()",
        "items.pop()",
        "items.remove(1)",
        "items.clear()",
        "items[0] = 9",
        "del items[0]",
        "items += [4]",
        "x = items\nx += [4]",
        "x = data\nx |= {'z': 1}",
        "items *= 2",
        "data |= {'z': 1}",
        "v += 1",
    ],
)
def test_writes_are_refused_on_read_only_proxies(capsule, ns, stmt):
    before = repr(protected()), repr(ns["data"]), repr(ns["items"])
    with pytest.raises((CapsuleTypeError, CapsuleAttributeError)) as info:
        capsule.run(stmt)
    assert "read-only" in str(info.value) or "private" in str(info.value)
    assert ns["acct"].owner == "ada" and ns["acct"].profile.city == "Paris"
    assert (repr(ns["data"]), repr(ns["items"])) == before[1:]


def test_read_only_refusal_names_the_grant(capsule):
    with pytest.raises(CapsuleTypeError) as info:
        capsule.run("items.append(4)")
    assert "--writable" in str(info.value)


def test_writable_grant_allows_writes(ns):
    c = Capsule(protected=ns, writable=["items", "data", "acct"])
    c.run("items.append(4)\ndata['z'] = 26\nacct.owner = 'eve'\nitems += [5]")
    assert ns["items"] == [3, 1, 2, 4, 5] and ns["data"]["z"] == 26 and ns["acct"].owner == "eve"
    with pytest.raises(AttributeError):
        c.run("acct._balance = 0")
    assert ns["acct"].balance() == 100


def test_rebinding_a_protected_name_only_changes_the_capsule_namespace(capsule, ns):
    capsule.run("items = [0]")
    assert ns["items"] == [3, 1, 2] and capsule.namespace["items"] == [0]


# -- operators and protocols ----------------------------------------------------------------
@pytest.mark.parametrize(
    "expr, expected",
    [
        ("repr(v + v)", "<proxy of Vector(2, 4)>"),
        ("(v + 1).x", 2),
        ("(1 + v).y", 3),
        ("(v * 3).y", 6),
        ("(3 * v).x", 3),
        ("(-v).x", -1),
        ("round(abs(v) ** 2, 6)", 5.0),
        ("v == Vector(1, 2)", True),
        ("v != Vector(1, 2)", False),
        ("v < Vector(2, 0)", True),
        ("Vector(0, 0) < v", True),
        ("hash(v) == hash((1, 2))", True),
        ("bool(v)", True),
        ("bool(Vector(0, 0))", False),
        ("str(v)", "<1, 2>"),
        ("f'{v!s}'", "<1, 2>"),
        ("f'{v}'", "(1, 2)"),  # Vector defines __format__
        ("f'{v:>3}'", "(  1,   2)"),
        ("format(v, '03')", "(001, 002)"),
        ("'{}'.format(v)", "(1, 2)"),
        ("{v: 1}[Vector(1, 2)]", 1),
        ("items + [4]", [3, 1, 2, 4]),
        ("[0] + items", [0, 3, 1, 2]),
        ("items * 2 == [3, 1, 2, 3, 1, 2]", True),
        ("data == {'a': 1, 'b': [1, 2], 'nested': {'k': 'v'}}", True),
        ("items > [2]", True),
    ],
)
def test_operators_and_protocols_work(capsule, expr, expected):
    result = capsule.run(expr)
    if type(result) is Proxy:
        result = export(result)
    assert result == expected


def test_context_manager(capsule, ns):
    assert capsule.run("with res as r:\n    n = len(r.events)\nn") == 1
    assert ns["res"].events == ["enter", "exit"]


def test_iteration_yields_wrapped_values(capsule):
    assert capsule.run("[isinstance(x, list) for x in data.values()]") == [False, True, False]
    out = capsule.run("list(data.values())")
    assert type(out[1]) is Proxy


def test_repr_says_it_is_a_proxy_of_what(capsule):
    text = capsule.run("repr(acct)")
    assert text.startswith("<proxy of ") and "Account" in text
    assert capsule.run("repr(items)") == "<proxy of [3, 1, 2]>"


def test_isinstance_and_issubclass_work(capsule):
    assert capsule.run("isinstance(acct, Account)") is True
    assert capsule.run("isinstance(items, list)") is True
    assert capsule.run("isinstance(data, dict)") is True
    assert capsule.run("isinstance(v, Vector)") is True
    assert capsule.run("isinstance(acct, Vector)") is False
    assert capsule.run("isinstance(3, Account)") is False
    assert capsule.run("issubclass(Account, object)") is True
    assert capsule.run("issubclass(type(acct), Account)") is True
    assert capsule.run("class Mine: pass\nissubclass(Mine, Account)") is False


def test_type_of_a_proxy_is_a_proxied_class(capsule):
    assert type(capsule.run("type(acct)")) is Proxy
    assert capsule.run("type(acct).__name__") == "Account"
    with pytest.raises(CapsuleAttributeError):
        capsule.run("type(acct).__dict__")


@pytest.mark.parametrize(
    "src",
    [
        "class Evil(Account):\n    pass",
        "class Evil(type(acct)):\n    pass",
        "class Evil(Vector, object):\n    pass",
        "class Evil(metaclass=Account):\n    pass",
        "Evil = type('Evil', (Account,), {})",
    ],
)
def test_a_proxy_can_never_be_a_base_class(capsule, src):
    with pytest.raises(CapsuleTypeError) as info:
        capsule.run(src)
    assert "base class" in str(info.value)


# -- both directions -----------------------------------------------------------------------
def test_arguments_to_proxied_callables_are_unwrapped_proxies(capsule, ns):
    capsule.run("helper(items)")
    assert SEEN[-1] is ns["items"]  # our proxy went back to the very object it wraps


def test_capsule_values_leave_as_copies_or_reverse_proxies(capsule):
    capsule.run(
        "class Name(str):\n    pass\n"
        "class Mine:\n    pass\n"
        "mine = Mine()\nlst = [1, 'a', (2, 3)]\n"
        "helper(Name('x'))\nhelper(lst)\nhelper(mine)\nhelper({'k': [1]})\n"
    )
    name, lst, mine, mapping = SEEN[-4:]
    assert type(name) is str and name == "x"
    assert type(lst) is list and lst == [1, "a", (2, 3)]
    assert lst is not capsule.namespace["lst"]
    assert type(mine) is ReverseProxy
    assert type(mapping) is dict and mapping == {"k": [1]}


def test_key_callback_never_receives_raw_trusted_objects(capsule):
    memos = capsule.run(
        "got = []\ndef key(e):\n    got.append(e)\n    return e.amount\nacct.sorted_memos(key=key)"
    )
    assert memos == ["coffee", "book", "salary"]
    got = capsule.namespace["got"]
    assert len(got) == 3
    assert all(type(g) is Proxy for g in got), [type(g) for g in got]
    assert not any(isinstance(g, Entry) and type(g) is Entry for g in got)


def test_stored_callback_called_later_never_receives_raw_trusted_objects(capsule, ns):
    capsule.run("got = []\nacct.on_change(lambda e: got.append(e))")
    ns["acct"].fire()  # trusted code calls the capsule's callback after the cell
    got = capsule.namespace["got"]
    assert len(got) == 1 and type(got[0]) is Proxy
    assert target_of(got[0]) is ns["acct"]._entries[0]


def test_capsule_eq_called_by_trusted_comparison_gets_proxies(capsule):
    found = capsule.run(
        "seen = []\n"
        "class Probe:\n"
        "    def __eq__(self, other):\n"
        "        seen.append(other)\n"
        "        return False\n"
        "    __hash__ = object.__hash__\n"
        "acct.has_entry(Probe())"
    )
    assert found is False
    seen = capsule.namespace["seen"]
    assert len(seen) == 3 and all(type(s) is Proxy for s in seen), [type(s) for s in seen]


PROBE = """
seen = []
class Probe:
    def __radd__(self, other):
        seen.append(other)
        return 'radd'
    def __eq__(self, other):
        seen.append(other)
        return False
    __hash__ = object.__hash__
p = Probe()
"""


def test_reflected_comparison_never_passes_the_raw_target(capsule, ns):
    # 'p in entries' makes list.__contains__ call Entry.__eq__(p), which returns
    # NotImplemented, so Python reflects to p.__eq__(entry): p must get a proxy.
    ns["entries"] = list(ns["acct"]._entries)
    assert capsule.run(PROBE + "p in entries") is False
    seen = capsule.namespace["seen"]
    assert len(seen) == 3 and all(type(s) is Proxy for s in seen), [type(s) for s in seen]


def test_reflected_arithmetic_reaches_the_capsule_object_with_a_proxy(capsule, ns):
    # Profile has no __add__, so 'profile + p' must end in p.__radd__(proxy of profile),
    # as it would in plain Python.
    assert capsule.run(PROBE + "acct.profile + p") == "radd"
    seen = capsule.namespace["seen"]
    assert len(seen) == 1 and type(seen[0]) is Proxy


def test_exceptions_from_trusted_code_are_scrubbed(capsule):
    capsule.run(
        "try:\n    acct.withdraw(10**6)\nexcept ValueError as e:\n    err = e\nargs = err.args\n"
    )
    err = capsule.namespace["err"]
    assert type(err) is ValueError
    assert all(type(a) is str for a in capsule.namespace["args"])
    assert err.__context__ is None and err.__cause__ is None
    tb = err.__traceback__
    while tb is not None:
        assert "test_membrane" not in tb.tb_frame.f_code.co_filename
        tb = tb.tb_next


# -- revocation ------------------------------------------------------------------------------
def test_revoke_by_name_disables_every_derived_proxy(capsule):
    capsule.run("st = acct.statement()\nprof = acct.profile\nm = acct.balance\nalias = acct")
    assert capsule.run("prof.city") == "Paris"
    capsule.registry.revoke("acct")
    for expr in (
        "acct.owner",
        "st['owner']",
        "prof.city",
        "m()",
        "alias.deposit(1)",
        "len(st)",
        "str(prof)",
    ):
        with pytest.raises(CapsuleRevokedError) as info:
            capsule.run(expr)
        assert "revoked" in str(info.value)
    assert capsule.run("items[0]") == 3  # other names are unaffected


def test_revoke_by_id(capsule):
    capsule.run("d = data['nested']")
    cap = capsule.registry.find("object", "data")[0]
    capsule.registry.revoke(cap.id)
    with pytest.raises(CapsuleRevokedError):
        capsule.run("d['k']")
    with pytest.raises(CapsuleRevokedError):
        capsule.run("data['a']")


def test_revoked_name_stays_revoked_for_a_new_capsule_on_the_same_registry(capsule, ns):
    capsule.run("acct.owner")
    capsule.registry.revoke("acct")
    again = Capsule(protected=ns, registry=capsule.registry)
    with pytest.raises(CapsuleRevokedError):
        again.run("acct.owner")


def test_revoked_error_is_a_permission_error_and_teaches(capsule):
    capsule.run("acct")
    capsule.registry.revoke("acct")
    with pytest.raises(PermissionError) as info:
        capsule.run("acct.owner")
    assert "revoked" in str(info.value) and "grant" in str(info.value)


# -- caching and laziness -------------------------------------------------------------------
def test_one_proxy_per_object_and_capability(capsule):
    assert capsule.run("acct.profile is acct.profile") is True
    assert capsule.run("data['b'] is data['b']") is True
    assert capsule.run("acct is acct") is True
    first = capsule.run("acct.profile")
    assert capsule.run("acct.profile") is first


def test_each_name_read_gets_one_object_capability(capsule):
    capsule.run("acct.owner\nacct.balance()\nitems[0]")
    caps = capsule.registry.find("object")
    assert sorted(c.target for c in caps) == ["acct", "items"]
    assert all(c.kind == "object" and c.scope == "session" for c in caps)
    assert capsule.registry.find("object", "acct")[0].uses >= 1


class CountingNamespace(dict):
    """A user namespace that counts how often it is enumerated or read."""

    def __init__(self, *args):
        super().__init__(*args)
        self.reads = []
        self.enumerations = 0

    def __getitem__(self, key):
        self.reads.append(key)
        return super().__getitem__(key)

    def keys(self):
        self.enumerations += 1
        return super().keys()

    def items(self):
        self.enumerations += 1
        return super().items()

    def values(self):
        self.enumerations += 1
        return super().values()

    def __iter__(self):
        self.enumerations += 1
        return super().__iter__()


def test_exposing_many_names_costs_nothing_until_read(monkeypatch):
    made = []
    real_wrap = capsule_module.wrap

    def counting_wrap(value, cap, writable=False, **kwargs):
        made.append(cap.target)
        return real_wrap(value, cap, writable, **kwargs)

    monkeypatch.setattr(capsule_module, "wrap", counting_wrap)
    big = CountingNamespace({f"name{i}": [i] for i in range(100_000)})
    c = Capsule(protected=big)
    assert made == [] and big.enumerations == 0 and big.reads == []
    assert c.run("name5[0] + name77[0]") == 82
    assert sorted(set(made)) == ["name5", "name77"]
    assert big.enumerations == 0
    assert sorted(set(big.reads)) == ["name5", "name77"]
    assert sorted(cap.target for cap in c.registry.find("object")) == ["name5", "name77"]


def test_hidden_names_are_not_visible(ns):
    c = Capsule(protected=ns, hidden=["acct"])
    with pytest.raises(NameError):
        c.run("acct")


def test_wrap_directly_caches_per_capability():
    from ipycap import Registry

    r = Registry()
    a, b = r.grant("object", "a"), r.grant("object", "b")
    obj = Profile("x")
    assert wrap(obj, a) is wrap(obj, a)
    assert wrap(obj, a) is not wrap(obj, b)
    assert wrap(5, a) == 5 and type(wrap(5, a)) is int
    assert target_of(wrap(obj, a)) is obj


# -- rexec mode ------------------------------------------------------------------------------
def test_rexec_mode_keeps_ordinary_use_of_proxies(ns):
    c = Capsule(protected=ns, mode="rexec")
    assert c.run("acct.balance() + len(items) + data['a']") == 104
    assert c.run("isinstance(acct, Account)") is True


@pytest.mark.parametrize(
    "expr",
    [
        "acct._balance",
        "acct.__class__",
        "type(acct).__name__",
        "helper.__name__",
        "Account.__doc__",
        "acct.__dict__",
    ],
)
def test_rexec_mode_denies_underscore_introspection_on_proxies(ns, expr):
    c = Capsule(protected=ns, mode="rexec")
    with pytest.raises((AttributeError, CapabilityError)):
        c.run(expr)
