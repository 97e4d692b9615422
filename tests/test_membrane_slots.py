"""The proxy's protocol slots (len, indexing, ``in``, iteration, comparisons, hash, bool,
calls, ``__class__``, builtin methods) as capsule code meets them: every one checks the
capability, exports its operands, wraps what it returns and scrubs what it raises -- the
decisions the membrane's Python methods made, now taken in ipycap/engine/_speedups.c."""

from __future__ import annotations

import gc
import weakref

import pytest

from ipycap import Capsule, CapsuleRevokedError, CapsuleTypeError
from ipycap.engine.membrane import SPEEDUPS, Proxy, capability_of, target_of, wrap
from ipycap.engine.registry import Registry

pytestmark = pytest.mark.skipif(not SPEEDUPS, reason="the C extension is not built")


class Secret:
    def __init__(self):
        self._token = "CANARY"


def _run(protected, source):
    capsule = Capsule(label="slots", protected=protected)
    return capsule, capsule.run(source)


def test_results_of_every_slot_are_proxied_and_values_cross_as_they_are():
    rows = [[1, 2], [3, 4]]
    table = {"a": [5], "b": 6}
    capsule, result = _run(
        {"rows": rows, "table": table},
        "r = (len(rows), rows[0], rows[1][0], 'a' in table, [x for x in rows], "
        "sum(rows[0]), table['a'], table.get('b'), list(table.items()), bool(rows), "
        "rows == [[1, 2], [3, 4]], rows[0] is rows[0])\nr",
    )
    n, first, three, has, seen, total, a, b, items, truth, equal, same = result
    assert (n, three, has, total, b, truth, equal, same) == (2, 3, True, 3, 6, True, True, True)
    assert type(first) is Proxy and target_of(first) is rows[0]
    assert [target_of(x) for x in seen] == [rows[0], rows[1]]
    assert type(a) is Proxy and target_of(a) is table["a"]
    assert items[0][0] == "a" and type(items[0][1]) is Proxy and items[1] == ("b", 6)


@pytest.mark.parametrize(
    "source",
    [
        "len(v)",
        "v[0]",
        "0 in v",
        "iter(v)",
        "next(it)",
        "hash(t)",
        "bool(v)",
        "v == [1]",
        "v < [1]",
        "f(1)",
        "v.copy",
        "v.__class__",
    ],
)
def test_every_slot_refuses_a_revoked_capability(source):
    capsule = Capsule(label="slots", protected={"v": [[1]], "t": (1, [2]), "f": abs})
    capsule.run("it = iter(v)")
    for name in ("v", "t", "f"):
        capability_of(capsule.run(name)).revoke()
    with pytest.raises(CapsuleRevokedError):
        capsule.run(source)


def test_revoking_reaches_iterators_and_results_made_in_c():
    capsule = Capsule(label="slots", protected={"rows": [[1], [2], [3]]})
    capsule.run("it = iter(rows)\nfirst = next(it)")
    capability_of(capsule.run("rows")).revoke()
    for source in ("next(it)", "first[0]", "len(first)"):
        with pytest.raises(CapsuleRevokedError):
            capsule.run(source)


def test_a_read_only_container_keeps_its_mutating_methods_refused():
    capsule = Capsule(label="slots", protected={"d": {"a": 1}, "l": [1]})
    for source in ("d.clear()", "d.update(b=2)", "l.append(2)", "l.sort()"):
        with pytest.raises(CapsuleTypeError, match="read-only"):
            capsule.run(source)
    assert capsule.run("d.get('a'), l.index(1), l.count(1)") == (1, 0, 1)


def test_private_names_stay_hidden_and_protocol_dunders_stay_reachable():
    capsule = Capsule(label="slots", protected={"s": Secret(), "l": [3, 1]})
    with pytest.raises(AttributeError):
        capsule.run("s._token")
    assert capsule.run("l.__len__(), l.__getitem__(0), l.__contains__(1)") == (2, 3, True)


def test_class_of_a_builtin_target_is_the_class_and_a_user_class_stays_proxied():
    capsule = Capsule(label="slots", protected={"l": [1], "s": Secret()})
    assert capsule.run("type(l) is list and l.__class__ is list and isinstance(l, list)")
    cls = capsule.run("type(s)")
    assert type(cls) is Proxy and target_of(cls) is Secret


def _capsule_frames_only(tb):
    while tb is not None:
        if not tb.tb_frame.f_code.co_filename.startswith("<capsule"):
            return False
        tb = tb.tb_next
    return True


def test_exceptions_from_slots_are_fresh_and_carry_no_trusted_object():
    secret = Secret()

    def gen():
        yield 1
        return secret  # StopIteration(secret) must not reach the capsule

    capsule = Capsule(label="slots", protected={"d": {"k": 1}, "l": [1], "g": gen()})
    err = capsule.run("try:\n    d['nope']\nexcept KeyError as e:\n    err = e\nerr")
    assert type(err) is KeyError and err.args == ("nope",) and err.__context__ is None
    assert _capsule_frames_only(err.__traceback__)
    err = capsule.run("try:\n    l[5]\nexcept IndexError as e:\n    err = e\nerr")
    assert type(err) is IndexError and _capsule_frames_only(err.__traceback__)
    assert capsule.run("list(g)") == [1]
    value = capsule.run(
        "it = iter(g)\ntry:\n    next(it)\nexcept StopIteration as e:\n    v = e.value\nv"
    )
    assert value is None


def test_a_key_error_with_a_trusted_key_object_goes_through_scrub():
    key = Secret()

    class Lookup(dict):
        def __missing__(self, k):
            raise KeyError(key)

    capsule = Capsule(label="slots", protected={"d": Lookup()})
    err = capsule.run("try:\n    d['x']\nexcept KeyError as e:\n    err = e\nerr")
    assert all(type(a) is str for a in err.args)  # a message, never the trusted key


def test_comparison_with_a_capsule_object_gives_the_capsule_only_proxies():
    seen = []
    capsule = Capsule(label="slots", protected={"l": [1], "seen": seen})
    result = capsule.run(
        "class Other:\n"
        "    def __eq__(self, other):\n"
        "        return type(other).__name__\n"
        "l == Other()"
    )
    assert result == "list"  # Other.__eq__ ran with the proxy, whose class is list
    assert capsule.run(
        "class O2:\n    def __eq__(self, other):\n        return other\n"
        "r = l == O2()\ntype(r) is type(l) and r == [1]"
    )


def test_one_proxy_per_object_per_capability_while_it_lives():
    rows = [[i] for i in range(100)]
    capsule = Capsule(label="slots", protected={"rows": rows})
    capsule.run("a = [r for r in rows]\nb = [rows[i] for i in range(100)]")
    a, b = capsule.namespace["a"], capsule.namespace["b"]
    assert all(x is y for x, y in zip(a, b, strict=True))
    ref = weakref.ref(a[0])
    capsule.run("del a, b")
    del a, b
    gc.collect()
    assert ref() is None  # the cache holds no proxy alive
    again = capsule.run("rows[0]")
    assert target_of(again) is rows[0]


def test_the_cache_drops_proxies_the_gc_collects_in_a_cycle():
    cap = Registry().grant("object", "cycle")

    def cycle():
        target = []
        p = wrap(target, cap)
        target.append(p)  # target -> proxy -> target, nothing else holds either
        return weakref.ref(p)

    refs = [cycle() for _ in range(100)]
    gc.collect()
    assert all(r() is None for r in refs)
    survivors = [[i] for i in range(100)]
    fresh = [wrap(t, cap) for t in survivors]
    assert all(
        target_of(p) is t and wrap(t, cap) is p for p, t in zip(fresh, survivors, strict=True)
    )


def test_many_proxies_come_and_go_without_confusing_the_cache():
    cap = Registry().grant("object", "churn")
    objs = [[i] for i in range(5000)]
    for _ in range(3):
        proxies = [wrap(o, cap) for o in objs]
        assert all(target_of(p) is o for p, o in zip(proxies, objs, strict=True))
        assert all(wrap(o, cap) is p for p, o in zip(proxies[::7], objs[::7], strict=True))
        del proxies[::2]
        assert all(wrap(o, cap) is p for p, o in zip(proxies, objs[1::2], strict=True))
        del proxies
    writable = wrap(objs[0], cap, True)
    assert writable is not wrap(objs[0], cap) and writable is wrap(objs[0], cap, True)


def test_a_cached_builtin_method_still_checks_revocation_and_read_only_at_every_use():
    # d.get / l.index of an exact builtin container are kept per proxy in C (one bound
    # method and its proxy, not a fresh pair per call): each read and each call decides again.
    capsule = Capsule(label="slots", protected={"d": {"a": 1}, "l": [1, 2]})
    capsule.run("get = d.get\nindex = l.index")
    assert capsule.run("d.get('a'), d.get('a'), l.index(2), get('a'), index(1)") == (1, 1, 1, 1, 0)
    with pytest.raises(CapsuleTypeError, match="read-only"):
        capsule.run("l.append(3)")  # another name of the same proxy: not the cached one
    assert capsule.run("type(d.get).__name__, l.index.__name__") == (
        "builtin_function_or_method",
        "index",
    )
    capability_of(capsule.run("d")).revoke()
    for source in ("d.get('a')", "get('a')"):
        with pytest.raises(CapsuleRevokedError):
            capsule.run(source)
    assert capsule.run("l.index(2)") == 1  # another capability


def test_a_cached_builtin_method_keeps_no_target_alive():
    cap = Registry().grant("object", "methods")

    def use(target):
        p = wrap(target, cap)
        p.isdisjoint(())  # a cached method of the set's proxy
        return weakref.ref(target)

    gone = use({1, 2})
    assert gone() is None  # freed with its proxy, without a collection

    def cycle():
        target = set()
        holder = [target]
        p = wrap(holder, cap)
        holder.append(p)  # holder -> proxy -> holder
        p.count(1)  # a cached method (it holds holder) beside the cycle
        return weakref.ref(target)

    refs = [cycle() for _ in range(20)]
    gc.collect()
    assert all(r() is None for r in refs)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("isinstance(l, list)", True),
        ("isinstance(l, (int, list))", True),
        ("isinstance(l, dict)", False),
        ("isinstance(l, (int, (dict, list)))", True),
        ("isinstance(l, collections.abc.Sequence)", True),
        ("isinstance(s, Secret)", True),
        ("isinstance(s, object)", True),
        ("isinstance(s, int)", False),
    ],
)
def test_isinstance_of_a_proxy_answers_from_its_target_in_c_and_python_alike(source, expected):
    capsule = Capsule(label="slots", protected={"l": [1], "s": Secret(), "Secret": Secret})
    assert capsule.run("import collections.abc\n" + source) is expected
