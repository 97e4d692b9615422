"""Timing helpers for ipycap's benchmarks: interleaved variants, medians, paired ratios.

The machine these run on is shared and noisy, so no number here is an absolute claim on its
own.  Samples are timed with this thread's CPU clock by default (``thread_time_ns``: time the
scheduler gives to other processes is not counted; ``perf_counter_ns`` wall time on request).  Every comparison times all its variants *in the same run*, interleaved round by round
in a shuffled order, each sample long enough (many inner loops) that ``perf_counter_ns``
resolution and scheduler hiccups stay small.  The headline figure of a variant is the median
of its per-round ratios to the baseline timed in the same round (a paired ratio, which
cancels slow drifts of the machine), with the 25th-75th percentile of those ratios beside it.
"""

from __future__ import annotations

import gc
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields

#: A variant runs ``n`` units of work when called as ``fn(n)``.
Work = Callable[[int], object]


@dataclass
class Settings:
    """How hard to measure: ``quick`` is for smoke runs, the default for the README."""

    repeats: int = 25
    sample_ms: float = 8.0
    seed: int = 1234
    #: ``thread`` (``thread_time_ns``: this thread's CPU time, the default -- blind to
    #: preemption by the other jobs of a shared machine) or ``perf`` (``perf_counter_ns``).
    clock: str = "thread"
    #: Run the opt-in benchmarks that take minutes (bench_gateway: 16 kernels at once).
    gateway: bool = False

    @classmethod
    def quick(cls) -> Settings:
        return cls(repeats=5, sample_ms=3.0)


@dataclass
class Row:
    """One variant's result: per-unit median time and its ratio to the baseline."""

    name: str
    median_ns: float
    ratio: float
    ratio_lo: float
    ratio_hi: float
    note: str = ""


@dataclass
class Table:
    """One comparison, printed as a block of the report."""

    title: str
    unit: str
    baseline: str
    rows: list[Row] = field(default_factory=list)
    target: str = ""
    verdict: str = ""
    notes: list[str] = field(default_factory=list)
    inner: int = 0
    repeats: int = 0
    #: How a row's ``median_ns`` is shown (a memory table shows bytes instead of time).
    fmt: Callable[[float], str] | None = None

    def as_json(self) -> dict:
        """The table as JSON-ready data: every field but ``fmt`` (a function), plus each
        row's median as the report shows it (``shown``: a memory table's bytes)."""
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "fmt"}
        data["rows"] = [asdict(r) for r in self.rows]
        show = self.fmt or fmt_ns
        for out, r in zip(data["rows"], self.rows, strict=True):
            out["shown"] = show(r.median_ns)
        data["notes"] = list(self.notes)
        return data

    def row(self, name: str) -> Row:
        return next(r for r in self.rows if r.name == name)

    def render(self) -> str:
        out = [f"## {self.title}"]
        out.append(
            f"   ({self.repeats} interleaved rounds x {self.inner} {self.unit}s per sample; "
            f"ratio = median of per-round ratios to '{self.baseline}', [p25-p75])"
        )
        width = max(len(r.name) for r in self.rows) + 2
        show = self.fmt or fmt_ns
        for r in self.rows:
            out.append(
                f"   {r.name:<{width}} {show(r.median_ns):>10}/{self.unit:<6} "
                f"{r.ratio:7.2f}x  [{r.ratio_lo:.2f}-{r.ratio_hi:.2f}]"
                + (f"  {r.note}" if r.note else "")
            )
        if self.target:
            out.append(f"   target: {self.target}  ->  {self.verdict}")
        out.extend(f"   note: {n}" for n in self.notes)
        return "\n".join(out)


def fmt_ns(ns: float) -> str:
    """A per-unit time with a unit a reader can take in at a glance."""
    if ns >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.2f} us"
    return f"{ns:.1f} ns"


CLOCKS = {"perf": time.perf_counter_ns, "thread": time.thread_time_ns}
_clock = time.thread_time_ns


def use_clock(name: str) -> None:
    """Select the clock every following sample is taken with."""
    global _clock
    _clock = CLOCKS[name]


def _sample(fn: Work, n: int) -> int:
    """One timed sample of ``fn(n)`` with the cyclic GC paused, as ``timeit`` does."""
    clock = _clock
    enabled = gc.isenabled()
    gc.disable()
    try:
        t0 = clock()
        fn(n)
        return clock() - t0
    finally:
        if enabled:
            gc.enable()


def calibrate(fn: Work, sample_ms: float) -> int:
    """The number of units that makes one sample of ``fn`` last about ``sample_ms``."""
    n = 1
    target = sample_ms * 1e6
    while True:
        dt = _sample(fn, n)
        if dt >= target / 4 or n >= 1 << 30:
            return max(1, int(n * target / max(dt, 1)))
        n *= 4 if dt < target / 40 else 2


def percentile(values: list[float], q: float) -> float:
    """Linear-interpolated percentile (``q`` in 0..1)."""
    s = sorted(values)
    k = (len(s) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def compare(
    title: str,
    variants: dict[str, Work],
    settings: Settings,
    *,
    baseline: str | None = None,
    unit: str = "op",
    inner: int | None = None,
    overhead: Work | None = None,
    per: int = 1,
) -> Table:
    """Time every variant interleaved; ratios are paired with the baseline round by round.

    ``inner`` fixes the units per sample (else it is calibrated so the fastest variant's
    samples last about ``settings.sample_ms``, the slowest's at most eight times that).  ``overhead`` is an empty loop of
    the same shape, timed in the same rounds and subtracted from every variant, so a ratio
    compares the cost of the operation itself rather than operation plus loop.  ``per`` is
    how many operations one unit of work performs (times are reported per operation).
    """
    names = list(variants)
    baseline = baseline or names[0]
    for fn in variants.values():
        fn(1)  # warm up: first-call costs (caches, lazy imports) are not what is measured
    if inner is None:
        # Long enough for the fastest variant, but the slowest never above 8x sample_ms.
        sizes = [calibrate(fn, settings.sample_ms) for fn in variants.values()]
        inner = min(max(sizes), 8 * min(sizes))
    timed = dict(variants)
    if overhead is not None:
        timed["<loop>"] = overhead
    rng = random.Random(settings.seed)
    per_unit: dict[str, list[float]] = {name: [] for name in timed}
    order = list(timed)
    for _ in range(settings.repeats):
        rng.shuffle(order)
        for name in order:
            per_unit[name].append(_sample(timed[name], inner) / (inner * per))
    if overhead is not None:
        loop = per_unit.pop("<loop>")
        per_unit = {
            k: [max(v - e, 0.01) for v, e in zip(vs, loop, strict=True)]
            for k, vs in per_unit.items()
        }
    table = Table(title, unit, baseline, inner=inner * per, repeats=settings.repeats)
    base = per_unit[baseline]
    for name in names:
        ratios = [v / b for v, b in zip(per_unit[name], base, strict=True)]
        table.rows.append(
            Row(
                name,
                statistics.median(per_unit[name]),
                statistics.median(ratios),
                percentile(ratios, 0.25),
                percentile(ratios, 0.75),
            )
        )
    if overhead is not None:
        table.notes.append(f"loop overhead ({fmt_ns(statistics.median(loop))}/{unit}) subtracted")
    return table


def check(
    table: Table,
    name: str,
    *,
    at_most: float | None = None,
    at_least: float | None = None,
    target: str,
) -> Table:
    """Record a target on ``table`` and whether the median ratio of ``name`` meets it."""
    r = table.row(name).ratio
    ok = (at_most is None or r <= at_most) and (at_least is None or r >= at_least)
    table.target = (table.target + "; " if table.target else "") + target
    verdict = f"{name} {r:.2f}x: {'MET' if ok else 'MISSED'}"
    table.verdict = (table.verdict + "; " if table.verdict else "") + verdict
    return table


def speed(table: Table, name: str) -> float:
    """Relative speed (baseline time / variant time) of ``name``: 1.0 means as fast."""
    return 1.0 / table.row(name).ratio
