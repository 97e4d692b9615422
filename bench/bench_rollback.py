"""What the capsule kernel's failed-cell rollback (ipycap/engine/rollback.py) costs per cell.

Each kernel cell is journaled: before it, the names it can bind are recorded with their
values; after it, a success drops the record (values it displaced that are not flat are freed
on a capsule thread) and a failure puts the names back.  Measured in one process on a session
capsule (``Capsule.run`` under the policy's limits, as the kernel runs a cell), with the
*process* CPU clock (the cell runs on the capsule thread), variants interleaved round by round;
the figure is the median of per-round differences journaled minus plain, [p25-p75]:

- ``a = 1`` in a namespace of 10 and of 10,000 names (the cost must not grow with it: only
  the names the cell binds are recorded, the namespace is never copied);
- ``b = [1]`` rebinding a small list of numbers (flat: the displaced one is dropped at once)
  and ``f = lambda: 0`` rebinding a function (freeing it may run capsule code: one more
  hand-off to a capsule thread, run_after);
- ``a = 2; 1/0`` (the failure path: the rollback).

    .venv/bin/python bench/bench_rollback.py [--quick]
"""

from __future__ import annotations

import statistics
import sys
import time

from common import Row, Settings, Table, percentile

from ipycap.engine import rollback
from ipycap.engine.capsule import Capsule
from ipycap.engine.rollback import Journal


def _session(size: int):
    capsule = Capsule(scope="session", label="kernel")
    for i in range(size):
        capsule.namespace[f"name{i}"] = [i] if i % 2 else i
    return capsule, Journal(capsule.namespace, capsule.context)


def _cell(capsule, journal, source: str, journaled: bool):
    if journaled:
        journal.begin()
    try:
        capsule.run(source, filename="<capsule-bench>")
    except ZeroDivisionError:
        if journaled:
            journal.roll_back()
        return
    if journaled:
        journal.commit()


def _pair(title, capsule, journal, source, settings, inner):
    def timed(journaled):
        t0 = time.process_time_ns()
        for _ in range(inner):
            _cell(capsule, journal, source, journaled)
        return (time.process_time_ns() - t0) / inner

    timed(True), timed(False)  # warm up (compile cache, idle capsule threads)
    plain, diffs = [], []
    for r in range(settings.repeats):
        order = (True, False) if r % 2 else (False, True)
        got = {j: timed(j) for j in order}
        plain.append(got[False])
        diffs.append(got[True] - got[False])
    base = statistics.median(plain)
    row = Row(
        title,
        statistics.median(diffs),
        statistics.median(diffs) / base,
        percentile(diffs, 0.25) / base,
        percentile(diffs, 0.75) / base,
        note=f"plain cell {base / 1e3:.1f} us; diff [{percentile(diffs, 0.25) / 1e3:.1f}-"
        f"{percentile(diffs, 0.75) / 1e3:.1f}] us",
    )
    return row


def _journal_only(settings: Settings) -> Table:
    """The journal's own work for one cell (begin, record the cell's code, commit), without
    running the cell: what the kernel's main thread adds, thread CPU time."""
    rows = []
    for size, source in (
        (10, "a = 1"),
        (10_000, "a = 1"),
        (10, "a, b, c = 1, 2, 3\ndef f(): pass"),
    ):
        capsule, journal = _session(size)
        ns = capsule.namespace
        body, tail, _ = capsule.compile(source, "<capsule-bench>")
        exec(body, ns)  # the names exist: a rebinding, as a re-run cell

        def cycle(n, journal=journal, ns=ns, body=body, tail=tail):
            for _ in range(n):
                journal.begin()
                rollback.note_run(ns, body, tail)
                journal.commit()

        times = []
        for _ in range(settings.repeats):
            t0 = time.thread_time_ns()
            cycle(2000)
            times.append((time.thread_time_ns() - t0) / 2000)
        med = statistics.median(times)
        rows.append(
            Row(f"{source.splitlines()[0]!r}, {size:,} names", med, 0, 0, 0,
                note=f"[{percentile(times, 0.25) / 1e3:.2f}-{percentile(times, 0.75) / 1e3:.2f}] us")
        )  # fmt: skip
    table = Table(
        "failed-cell rollback: the journal's work per cell (begin + record + commit)",
        "cell",
        "-",
        rows=rows,
        inner=2000,
        repeats=settings.repeats,
    )
    table.notes.append("ratio columns unused: absolute per-cell time, main thread CPU")
    return table


def run(settings: Settings) -> list[Table]:
    inner = 20 if settings.repeats <= 5 else 60
    table = Table(
        "failed-cell rollback: added time per kernel cell (journaled - plain, process CPU)",
        "cell",
        "plain Capsule.run of the same cell",
        inner=inner,
        repeats=settings.repeats,
    )
    for size in (10, 10_000):
        capsule, journal = _session(size)
        table.rows.append(
            _pair(f"a = 1, {size:,} names", capsule, journal, "a = 1", settings, inner)
        )
    capsule, journal = _session(10)
    for title, source in (
        ("b = [1] (flat, displaced)", "b = [1]"),
        ("f = lambda: 0 (displaced)", "f = lambda: 0"),
    ):
        table.rows.append(_pair(title, capsule, journal, source, settings, inner))
    table.rows.append(
        _pair("a = 2; 1/0 (rollback)", capsule, journal, "a = 2\n1/0", settings, inner)
    )
    table.notes.append("median_ns is the added time; ratio = added / plain cell time")
    return [_journal_only(settings), table]


def main() -> int:
    settings = Settings.quick() if "--quick" in sys.argv else Settings()
    for table in run(settings):
        print(table.render())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
