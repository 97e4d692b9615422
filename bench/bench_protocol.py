"""Proxy protocol benchmarks: what real cells do with a protected container, per operation.

Why: a cell that loops over a protected list or looks keys up in a protected dict pays the
proxy on every ``len()``, ``x[i]``, ``in``, iteration step, ``.get()``...; issue 13 measured
these at 14x-164x plain while wrapt's C proxy forwards them at 1.1x-1.9x.  Targets (issue 13,
capsule vs plain in the same run): protocol operations <= 2x (``len``, indexing, ``in``,
iteration and ``sum`` per element, a KeyError), an ``items()`` loop <= 2.5x, ``d.get`` <= 4x,
a method returning a container <= 5x, ``isinstance(proxy, T)`` <= 2x.

Every variant runs the *same* loop source inside a function, timeit-style (one operation per
iteration of ``for _ in itertools.repeat(None, n)``, loop included, as bench_membrane does):
plain exec with ``obj`` raw; capsule code with ``obj`` protected (ipycap's proxy);
plain exec with ``obj`` a ``wrapt.ObjectProxy``; plain exec with ``obj`` a zope.security
proxy (its default checkers for builtin containers, a ``Checker`` naming the public
attributes of the class).  Per-element operations (iteration, ``sum``, ``items()``) run over a
1,000-element container and are reported per element.

Memory: 10^6 rows (small lists) in a protected list, and capsule code building a list that
keeps every row: bytes per retained row proxy by tracemalloc (identity cache included),
and the time against the same comprehension in plain code (target <= 3x, <= 128 bytes).
"""

from __future__ import annotations

import gc
import tracemalloc
from itertools import repeat

from common import Row, Settings, Table, check, compare

from ipycap import Capsule

PROXIED = "capsule, proxied (ipycap)"
N_ELEMENTS = 1_000
N_ROWS = 1_000_000
BYTES_TARGET = 128
ROWS_TARGET = 3.0


class Store:
    """A protected object with a method that returns a fresh container."""

    def __init__(self):
        self.rows = [[i, i + 1] for i in range(10)]

    def tail(self):
        return self.rows[-3:]


def _list():
    return list(range(100))


def _dict():
    return {f"k{i}": i for i in range(100)}


def _big_list():
    return list(range(N_ELEMENTS))


def _big_dict():
    return {f"k{i}": i for i in range(N_ELEMENTS)}


def _missing():
    return {"k": 1}


#: (title, unit, loop body, object factory, zope attribute names, per, target)
OPERATIONS = [
    ("len(obj) of a list", "op", "x = len(obj)", _list, (), 1, 2.0),
    ("obj[i] of a list", "op", "x = obj[5]", _list, (), 1, 2.0),
    ("obj[k] of a dict", "op", "x = obj['k5']", _dict, (), 1, 2.0),
    ("k in obj (a dict)", "op", "x = 'k5' in obj", _dict, (), 1, 2.0),
    ("for x in obj (a list), per element", "elem", "for x in obj: pass", _big_list, (), 1, 2.0),
    ("sum(obj) (a list), per element", "elem", "x = sum(obj)", _big_list, (), 1, 2.0),
    (
        "for k, v in obj.items() (a dict), per element",
        "elem",
        "for k, v in obj.items(): pass",
        _big_dict,
        (),
        1,
        2.5,
    ),
    ("obj.get(k) of a dict", "op", "x = obj.get('k5')", _dict, (), 1, 4.0),
    (
        "KeyError from obj[k] of a dict",
        "op",
        "try: obj['nope']\nexcept KeyError: pass",
        _missing,
        (),
        1,
        2.0,
    ),
    ("method returning a list obj.tail()", "op", "x = obj.tail()", Store, ("tail", "rows"), 1, 5.0),
    ("isinstance(obj, list)", "op", "x = isinstance(obj, list)", _list, (), 1, 2.0),
]


def _loop(body: str) -> str:
    lines = body.split("\n")
    inner = "".join(f"        {line}\n" for line in lines)
    return "def work(it):\n    for _ in it:\n" + inner


def _timed(fn):
    return lambda n: fn(repeat(None, n))


def _plain(source: str, obj):
    ns = {"__name__": "__bench__", "obj": obj}
    exec(compile(source, "<plain>", "exec"), ns)
    return _timed(ns["work"])


def _capsule(source: str, obj):
    capsule = Capsule(label="bench", protected={"obj": obj})
    capsule.run(source + "# proxied\n")
    return _timed(capsule.namespace["work"])


def _zope(obj, names):
    from zope.security.checker import Checker, CheckerPublic, ProxyFactory

    if names:
        return ProxyFactory(obj, Checker({n: CheckerPublic for n in names}))
    return ProxyFactory(obj)


def _wrapt(obj):
    import wrapt

    return wrapt.ObjectProxy(obj)


def bench_operations(settings: Settings) -> list[Table]:
    tables = []
    for title, unit, body, make, names, _, target in OPERATIONS:
        source = _loop(body)
        table = compare(
            f"proxy protocol: {title} (timeit-style)",
            {
                "plain": _plain(source, make()),
                PROXIED: _capsule(source, make()),
                "wrapt.ObjectProxy": _plain(source, _wrapt(make())),
                "zope.security proxy": _plain(source, _zope(make(), names)),
            },
            settings,
            unit=unit,
            # a per-element operation passes over N_ELEMENTS elements per unit of work
            per=N_ELEMENTS if unit == "elem" else 1,
        )
        check(table, PROXIED, at_most=target, target=f"<= {target}x plain")
        tables.append(table)
    return tables


ROWS_SOURCE = "def build(data):\n    return [r for r in data]\n"


def _rows_once(build, data):
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    kept = build(data)
    grown = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    del kept
    return grown


def _rows_capsule(data):
    capsule = Capsule(label="bench", protected={"data": data})
    capsule.run(ROWS_SOURCE + "view = data  # proxied\n")
    # the proxy capsule code sees (made once, as in a cell)
    return capsule.namespace["build"], capsule.namespace["view"]


def bench_rows(settings: Settings) -> list[Table]:
    """10^6 rows kept by a comprehension over a protected list: time and bytes per row."""
    data = [[i, i + 1] for i in range(N_ROWS)]
    plain_ns = {}
    exec(compile(ROWS_SOURCE, "<plain>", "exec"), plain_ns)
    # Memory first, with a capability of its own: its identity cache starts empty, so the
    # table it grows to hold 10^6 proxies is counted.
    plain_bytes = _rows_once(plain_ns["build"], data)
    proxy_bytes = _rows_once(*_rows_capsule(data))
    per_row = (proxy_bytes - plain_bytes) / N_ROWS
    mem = Table(
        "proxy protocol: memory per retained row proxy (tracemalloc, identity cache included)",
        "row",
        "plain",
        inner=N_ROWS,
        repeats=1,
        fmt=lambda b: f"{b:.0f} B",
    )
    mem.rows.append(Row("plain (list of 10^6 references)", plain_bytes / N_ROWS, 1.0, 1.0, 1.0))
    mem.rows.append(Row(PROXIED, proxy_bytes / N_ROWS, proxy_bytes / max(plain_bytes, 1), 0, 0, ""))
    mem.notes.append(f"bytes per retained row proxy beyond plain: {per_row:.0f} B")
    mem.target = f"<= {BYTES_TARGET} B per retained proxy"
    mem.verdict = f"{per_row:.0f} B: {'MET' if per_row <= BYTES_TARGET else 'MISSED'}"
    proxied, view = _rows_capsule(data)
    rounds = max(3, settings.repeats // 5)
    table = compare(
        f"proxy protocol: 10^6 rows kept by [r for r in data] over a protected list "
        f"({rounds} rounds; the result is freed inside the sample)",
        {
            "plain": lambda n: [plain_ns["build"](data) for _ in range(n)],
            PROXIED: lambda n: [proxied(view) for _ in range(n)],
        },
        Settings(repeats=rounds, sample_ms=settings.sample_ms, seed=settings.seed),
        unit="build",
        inner=1,
    )
    check(table, PROXIED, at_most=ROWS_TARGET, target=f"<= {ROWS_TARGET}x plain time")
    return [table, mem]


def run(settings: Settings) -> list[Table]:
    return bench_operations(settings) + bench_rows(settings)
