"""What a session costs per cell, and whether it slows down as it ages.

Tables (all in one in-process IPython shell with the extension loaded).  Samples are timed with
the *process* CPU clock (``process_time_ns``): a capsule cell runs on its own thread, which the
thread clock would not see, and under the shared machine's load wall time mostly measures the
other jobs (``--clock perf`` uses ``perf_counter_ns`` instead, i.e. wall time, which also
counts the hand-off to the capsule thread):

- *cell overhead*: ``run_cell('%%capsule\\nx = 1')`` vs ``run_cell('x = 1')``, interleaved;
  the panel's snapshot (``RegistryChannel.finish_metadata``, as a kernel's execute_reply
  builds it) is taken after every cell of both variants, and the policy's limits (timeout,
  memory, output) are on.  Reported as the difference in ms (median of per-round differences,
  [p25-p75]).  Target: <= 0.3 ms.
- *library-generated code*: ``Capsule.run`` of a cell that defines dataclasses / NamedTuples /
  Enums (and an ordinary cell, for scale) vs ``exec`` of the same compiled cell in a fresh
  dict, both re-run (compiled once).  Target: <= 1.3x.
- *aging*: the per-cell cost of ``%%capsule --allow-read DIR`` cells (minus a plain cell timed in
  the same rounds) at the start of a session and after 3,000 such cells.  Target: within 10%.

The 16-kernel gateway measurement is :mod:`bench_gateway` (opt-in: it takes minutes).
"""

from __future__ import annotations

import statistics
import tempfile
import time

from common import Row, Settings, Table, check, percentile

DATACLASS_CELL = """
from dataclasses import dataclass, field

@dataclass
class Point:
    x: int
    y: int = 0

@dataclass(frozen=True, order=True)
class Item:
    name: str
    price: float = 0.0
    tags: list = field(default_factory=list)

@dataclass
class Order:
    id: int
    items: list = field(default_factory=list)
    note: str = ""

p = Point(1, 2)
i = Item("pen", 1.5)
o = Order(1, [i])
"""

NAMEDTUPLE_ENUM_CELL = """
from collections import namedtuple
from typing import NamedTuple
from enum import Enum, IntEnum

Pair = namedtuple("Pair", "left right")

class Row(NamedTuple):
    key: str
    value: int = 0

class Color(Enum):
    RED = 1
    GREEN = 2
    BLUE = 3

class Level(IntEnum):
    LOW = 1
    HIGH = 2

r = Row("a", 1)
c = Color.RED
p = Pair(1, 2)
"""

ORDINARY_CELL = """
def fib(n):
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a

class Acc:
    def __init__(self):
        self.total = 0
    def add(self, v):
        self.total += v

acc = Acc()
for k in range(3000):
    acc.add(fib(k % 30))
data = sorted({k % 17: [k] * 3 for k in range(200)}.items())
"""


def _shell():
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    shell.history_manager.enabled = False
    return shell


class _FakeKernel:
    """Stands in for ipykernel: the panel attaches to its ``finish_metadata``."""

    def finish_metadata(self, parent, metadata, reply_content):
        return metadata


def _extension(shell, **policy):
    from ipycap.ipython import magics

    shell.kernel = _FakeKernel()
    ext = magics.load(shell)
    for name, value in policy.items():
        setattr(ext.policy, name, value)
    return ext


def _paired(rounds: int, variants: dict, seed: int = 1234):
    """Per-round wall times (s) of every variant, interleaved in a shuffled order."""
    import random

    import common

    clock = time.perf_counter_ns if common._clock is time.perf_counter_ns else time.process_time_ns
    rng = random.Random(seed)
    out = {k: [] for k in variants}
    order = list(variants)
    for _ in range(rounds):
        rng.shuffle(order)
        for name in order:
            fn, n = variants[name]
            t0 = clock()
            fn(n)
            out[name].append((clock() - t0) / n)
    return out


def _cells(shell, source: str, reply):
    def work(n):
        for _ in range(n):
            shell.run_cell(source, store_history=False, silent=False)
            reply()

    return work


def cell_overhead(settings: Settings) -> Table:
    shell = _shell()
    ext = _extension(shell)
    channel = ext.registry_channel
    parent = {"metadata": {}}

    def reply():
        channel.finish_metadata(parent, {})

    shell.register_magic_function(lambda line, cell: None, "cell", "ipycap_bench_noop")
    variants = {
        "plain cell": (_cells(shell, "x = 1", reply), 40),
        "%%capsule cell": (_cells(shell, "%%capsule\nx = 1", reply), 40),
        "no-op cell magic": (_cells(shell, "%%ipycap_bench_noop\nx = 1", reply), 40),
    }
    for fn, _ in variants.values():
        fn(20)
    times = _paired(settings.repeats, variants)
    noop = [
        (v - x) / 1e6 for v, x in zip(times["no-op cell magic"], times["plain cell"], strict=True)
    ]
    table = _diff_table(
        "session: trivial %%capsule cell over a plain cell (limits + panel snapshot on)",
        times,
        "plain cell",
        "%%capsule cell",
        40,
        settings,
    )
    table.notes.append(
        f"IPython's own cost of a cell magic (a no-op %%magic) over a plain cell: "
        f"{statistics.median(noop):.3f} ms [{percentile(noop, 0.25):.3f}-"
        f"{percentile(noop, 0.75):.3f}]"
    )
    extra = statistics.median(times["%%capsule cell"]) - statistics.median(times["plain cell"])
    ok = extra <= 0.3e6
    table.target = "<= 0.30 ms over a plain cell"
    table.verdict = f"+{extra / 1e6:.3f} ms: {'MET' if ok else 'MISSED'}"
    magics_unload(shell)
    return table


def magics_unload(shell) -> None:
    from ipycap.ipython import magics

    magics.unload(shell)


def _diff_table(title, times, base, name, inner, settings) -> Table:
    table = Table(title, "cell", base, inner=inner, repeats=settings.repeats)
    b = times[base]
    for label in (base, name):
        vals = times[label]
        ratios = [v / x for v, x in zip(vals, b, strict=True)]
        table.rows.append(
            Row(
                label,
                statistics.median(vals),
                statistics.median(ratios),
                percentile(ratios, 0.25),
                percentile(ratios, 0.75),
            )
        )
    diffs = [(v - x) / 1e6 for v, x in zip(times[name], b, strict=True)]
    table.notes.append(
        f"{name} - {base}: {statistics.median(diffs):.3f} ms per cell "
        f"[{percentile(diffs, 0.25):.3f}-{percentile(diffs, 0.75):.3f}]"
    )
    return table


def generated_code(settings: Settings) -> list[Table]:
    from ipycap.engine.capsule import Capsule
    from ipycap.engine.policy import CapsulePolicy

    policy = CapsulePolicy()
    tables = []
    for title, src, at_most in (
        ("dataclasses", DATACLASS_CELL, 1.3),
        ("NamedTuple + namedtuple + Enum", NAMEDTUPLE_ENUM_CELL, 1.3),
        ("ordinary code (control, with Capsule.run's per-cell setup)", ORDINARY_CELL, None),
    ):
        capsule = Capsule(policy, scope="session")
        code = compile(src, "<plain>", "exec")

        def plain(n, code=code):
            for _ in range(n):
                exec(code, {"__name__": "__main__"})

        def caps(n, capsule=capsule, src=src):
            for _ in range(n):
                capsule.run(src, namespace={})

        variants = {"plain exec": (plain, 20), "Capsule.run": (caps, 20)}
        for fn, _ in variants.values():
            fn(3)
        times = _paired(settings.repeats, variants)
        table = _diff_table(
            f"session: a cell defining {title}", times, "plain exec", "Capsule.run", 20, settings
        )
        if at_most is not None:
            check(table, "Capsule.run", at_most=at_most, target=f"<= {at_most}x plain")
        else:
            table.notes.append(
                "informative: the >= 0.95x target for ordinary code is bench_engine's (code "
                "run in a capsule vs plain, without the per-cell setup)"
            )
        tables.append(table)
    return tables


def aging(settings: Settings, cells: int = 3000) -> Table:
    shell = _shell()
    ext = _extension(shell)
    channel = ext.registry_channel
    parent = {"metadata": {}}
    tmp = tempfile.mkdtemp(prefix="ipycap-bench-aging-")
    ext.policy.readable_paths = [tmp]
    source = f"%%capsule --allow-read {tmp}\nx = 1"

    def reply():
        channel.finish_metadata(parent, {})

    variants = {
        "plain cell": (_cells(shell, "x = 1", reply), 20),
        "--allow-read cell": (_cells(shell, source, reply), 20),
    }
    for fn, _ in variants.values():
        fn(10)
    rounds = max(5, settings.repeats)
    early = _paired(rounds, variants)
    done = (20 + 10) + rounds * 20
    _cells(shell, source, reply)(max(0, cells - done))
    late = _paired(rounds, variants, seed=99)
    size = len(ext.registry.capabilities)
    magics_unload(shell)

    def extra(times):
        return [a - b for a, b in zip(times["--allow-read cell"], times["plain cell"], strict=True)]

    e, lt = extra(early), extra(late)
    table = Table(
        f"session: aging, --allow-read cell cost at the start and after {cells:,} cells",
        "cell",
        "start",
        inner=20,
        repeats=rounds,
    )
    med_e, med_l = statistics.median(e), statistics.median(lt)
    table.rows.append(
        Row("start", med_e, 1.0, percentile(e, 0.25) / med_e, percentile(e, 0.75) / med_e)
    )
    table.rows.append(
        Row(
            f"after {cells:,}",
            med_l,
            med_l / med_e,
            percentile(lt, 0.25) / med_e,
            percentile(lt, 0.75) / med_e,
        )
    )
    ratio_e = statistics.median(early["--allow-read cell"]) / statistics.median(early["plain cell"])
    ratio_l = statistics.median(late["--allow-read cell"]) / statistics.median(late["plain cell"])
    table.notes.append(
        f"times are the cell's cost over a plain cell; vs a plain cell: {ratio_e:.2f}x at the "
        f"start, {ratio_l:.2f}x after; the registry held {size} capabilities"
    )
    check(table, f"after {cells:,}", at_most=1.10, target="within 10% of the start")
    return table


def run(settings: Settings) -> list[Table]:
    tables = [cell_overhead(settings)]
    tables += generated_code(settings)
    tables.append(aging(settings, cells=300 if settings.repeats < 10 else 3000))
    return tables


if __name__ == "__main__":
    import sys

    s = Settings.quick() if "--quick" in sys.argv else Settings()
    for t in run(s):
        print("\n" + t.render())
