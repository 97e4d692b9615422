"""Library benchmarks: real numpy and pandas inside a capsule vs plain ``exec``.

Why: a granted library's own code runs natively (only the capsule's own bytecode is gated,
and the tripwire's audit hook walks the stack only for audited events), so vector math and a
groupby should run at plain speed -- target >= 0.95x.  Loops over a *proxied* DataFrame (the
user's object, seen through the membrane) pay one proxy hop per access -- target <= 2x.
(The loops add ``float(x)``: ``t += x`` with ``x`` a value derived from the read-only ``df``
is refused today, the membrane's part of issue 12.)
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
from common import Settings, Table, check, compare

from ipycap import Capsule

SPEED_TARGET = 0.95
LOOP_TARGET = 2.0

VECTOR = """
import numpy as np
a = np.linspace(0.0, 1.0, 10**6)
b = np.linspace(1.0, 2.0, 10**6)
def work():
    return float(np.sqrt(a * a + b * b).sum())
"""

GROUPBY = """
import numpy as np
import pandas as pd
rng = np.random.default_rng(0)
frame = pd.DataFrame({"k": rng.integers(0, 100, 10**5), "v": rng.random(10**5)})
def work():
    return float(frame.groupby("k").v.mean().sum())
"""

LOOPS = {
    "iat": "def work():\n    t = 0\n    for i in range(200):\n        t += float(df.iat[i, 0])\n    return t",
    "column iteration": "def work():\n    t = 0\n    for x in df['a']:\n        t += float(x)\n    return t",
    "itertuples": "def work():\n    t = 0\n    for row in df.itertuples():\n        t += float(row.a)\n    return t",
}


def _plain(source: str, ns: dict | None = None):
    ns = {"__name__": "__bench__", **(ns or {})}
    exec(compile(source, "<plain>", "exec"), ns)
    return ns["work"]


def _capsule(source: str, protected: dict | None = None):
    capsule = Capsule(
        grants=[("import", "numpy"), ("import", "pandas")], label="bench", protected=protected
    )
    capsule.run(source)
    return capsule.namespace["work"]


def _repeat(fn):
    def run(n):
        for _ in itertools.repeat(None, n):
            fn()

    return run


def bench_native(settings: Settings) -> list[Table]:
    tables = []
    for title, source in (
        ("numpy vector math, 10^6 elements", VECTOR),
        ("pandas groupby, 10^5 rows", GROUPBY),
    ):
        plain, caps = _plain(source), _capsule(source)
        if plain() != caps():
            raise AssertionError(f"{title}: capsule {caps()!r} != plain {plain()!r}")
        table = compare(
            f"libraries: {title}",
            {"plain exec": _repeat(plain), "capsule": _repeat(caps)},
            settings,
            unit="call",
        )
        check(
            table,
            "capsule",
            at_most=1 / SPEED_TARGET,
            target=f"capsule speed >= {SPEED_TARGET}x plain (time ratio <= {1 / SPEED_TARGET:.3f})",
        )
        tables.append(table)
    return tables


def bench_proxied_loops(settings: Settings) -> list[Table]:
    df = pd.DataFrame({"a": np.arange(200), "b": np.arange(200.0)})
    tables = []
    for title, source in LOOPS.items():
        plain, caps = _plain(source, {"df": df}), _capsule(source, {"df": df})
        if plain() != caps():
            raise AssertionError(f"{title}: capsule {caps()!r} != plain {plain()!r}")
        table = compare(
            f"libraries: loop over a proxied DataFrame ({title}, 200 rows)",
            {"plain exec": _repeat(plain), "capsule": _repeat(caps)},
            settings,
            unit="call",
        )
        check(table, "capsule", at_most=LOOP_TARGET, target=f"capsule <= {LOOP_TARGET}x plain")
        tables.append(table)
    return tables


def run(settings: Settings) -> list[Table]:
    return bench_native(settings) + bench_proxied_loops(settings)
