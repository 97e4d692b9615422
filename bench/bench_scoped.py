"""What capsule-scoped answers cost trusted code.

Some engine objects answer trusted code and capsule code differently, and decide which by
looking at the stack: a shared table in place on a library class hands its container entries
out read-only when the asker is a capsule (``tables._capsule_writes``: the nearest frame of a
loaded module's own code decides, frames of generated code are walked past), the process
streams refuse their attributes while capsule code is anywhere on the stack (a walk of the
whole stack).  Capsule classes' comparison methods, called by trusted code (``sorted``,
``in``), receive trusted operands as proxies (hooks._Operands).  And numpy asks every object
it converts for ``__array_interface__``, which a capsule class answers through its
array-protocol guard (arrayguard.ArrayProtocol).

Each comparison times the trusted operation at a stack depth of 5 and 50 frames (of this
module, or of code generated into fresh globals, which the table's check walks past) against
the same operation on plain objects at the same depth.  No targets: these show how the cost
grows, the numbers to watch when the checks change.

    .venv/bin/python bench/run.py --only scoped
"""

from __future__ import annotations

import io
import itertools

from common import Settings, Table, compare

from ipycap import Capsule
from ipycap.engine import arrayguard, streams, tables

DEPTHS = (5, 50)


def _module_frames(depth, fn):
    """``fn(n)`` called under ``depth`` frames of this module (a loaded module's code)."""

    def down(k, n):
        if k == 0:
            return fn(n)
        return down(k - 1, n)

    return lambda n: down(depth, n)


_GENERATED = """
def down(k, n, table, key):
    if k == 0:
        for _ in range(n):
            table[key]
        return None
    return down(k - 1, n, table, key)
"""


def _generated_reads(depth, table, key):
    """``table[key]`` read ``n`` times by code exec'd into fresh globals (as a library's
    generated code runs), under ``depth`` frames of it: the shared table's check walks past
    every one of them to this module's frame below."""
    ns: dict = {"__name__": "__generated__"}
    exec(compile(_GENERATED, "<generated>", "exec"), ns)
    down = ns["down"]
    return lambda n: down(depth, n, table, key)


def _reads(table, key):
    def run(n):
        for _ in itertools.repeat(None, n):
            table[key]

    return run


def bench_shared_table(settings: Settings) -> Table:
    entry = {"lines.linewidth": 1.0}  # a container entry: the case that checks the stack
    plain = {"style": entry}
    shared = tables.SharedTable(dict(plain), "bench table")
    variants = {}
    for depth in DEPTHS:
        variants[f"dict[key], depth {depth}"] = _module_frames(depth, _reads(plain, "style"))
        variants[f"shared table, depth {depth}"] = _module_frames(depth, _reads(shared, "style"))
        variants[f"shared table, depth {depth} generated"] = _generated_reads(
            depth, shared, "style"
        )
    table = compare(
        "scoped: trusted read of a shared table entry (SharedTable[key])",
        variants,
        settings,
        baseline="dict[key], depth 5",
        unit="read",
    )
    table.notes.append(
        "module frames: the nearest frame decides at once; generated frames are walked past"
    )
    return table


def _attr_reads(obj, name):
    def run(n):
        for _ in itertools.repeat(None, n):
            getattr(obj, name)

    return run


def bench_process_stream(settings: Settings) -> Table:
    below = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    stream = streams.ProcessStream(below)
    variants = {}
    for depth in DEPTHS:
        variants[f"raw stream .encoding, depth {depth}"] = _module_frames(
            depth, _attr_reads(below, "encoding")
        )
        variants[f"process stream .encoding, depth {depth}"] = _module_frames(
            depth, _attr_reads(stream, "encoding")
        )
    return compare(
        "scoped: trusted read of a process-stream attribute (sys.stdout.encoding)",
        variants,
        settings,
        baseline="raw stream .encoding, depth 5",
        unit="read",
    )


_CLASS = """
class Item:
    __slots__ = ("v",)

    def __init__(self, v):
        self.v = v

    def __lt__(self, other):
        return self.v < other.v

    def __eq__(self, other):
        return isinstance(other, Item) and self.v == other.v

    __hash__ = None
"""


def _items(capsule: bool):
    if capsule:
        c = Capsule(label="bench")
        c.run(_CLASS + "items = [Item((i * 7919) % 1000) for i in range(1000)]")
        return c.namespace["items"]
    ns: dict = {"__name__": "__bench__"}
    exec(compile(_CLASS, "<plain>", "exec", dont_inherit=True), ns)
    return [ns["Item"]((i * 7919) % 1000) for i in range(1000)]


def bench_comparisons(settings: Settings) -> list[Table]:
    plain, caps = _items(False), _items(True)
    assert [x.v for x in sorted(plain)] == [x.v for x in sorted(caps)]

    def sorting(items):
        def run(n):
            for _ in itertools.repeat(None, n):
                sorted(items)

        return run

    def searching(items):
        probe = object()  # a trusted operand: each capsule __eq__ receives it as a proxy

        def run(n):
            for _ in itertools.repeat(None, n):
                probe in items  # noqa: B015 - the comparisons are the work

        return run

    sort_table = compare(
        "scoped: sorted() of 1000 capsule objects by trusted code",
        {
            "plain objects, depth 5": _module_frames(5, sorting(plain)),
            "capsule objects, depth 5": _module_frames(5, sorting(caps)),
            "capsule objects, depth 50": _module_frames(50, sorting(caps)),
        },
        settings,
        unit="sort",
    )
    search_table = compare(
        "scoped: trusted object `in` 1000 capsule objects (__eq__ with a trusted operand)",
        {
            "plain objects, depth 5": _module_frames(5, searching(plain)),
            "capsule objects, depth 5": _module_frames(5, searching(caps)),
            "capsule objects, depth 50": _module_frames(50, searching(caps)),
        },
        settings,
        unit="search",
    )
    search_table.notes.append("each comparison wraps the trusted operand in a proxy (I2)")
    return [sort_table, search_table]


def bench_array_question(settings: Settings) -> Table:
    arrayguard.install()
    c = Capsule(label="bench")
    c.run("class Point:\n    pass\np = Point()")
    caps = c.namespace["p"]

    class Point:
        pass

    plain = Point()

    def asking(obj):
        def run(n):
            for _ in itertools.repeat(None, n):
                getattr(obj, "__array_interface__", None)

        return run

    return compare(
        "scoped: numpy's question (getattr(obj, '__array_interface__', None))",
        {
            "plain object, depth 5": _module_frames(5, asking(plain)),
            "capsule object, depth 5": _module_frames(5, asking(caps)),
            "capsule object, depth 50": _module_frames(50, asking(caps)),
        },
        settings,
        unit="ask",
    )


def run(settings: Settings) -> list[Table]:
    return [
        bench_shared_table(settings),
        bench_process_stream(settings),
        *bench_comparisons(settings),
        bench_array_question(settings),
    ]


if __name__ == "__main__":
    import sys

    quick = "--quick" in sys.argv
    for t in run(Settings.quick() if quick else Settings()):
        print(t.render())
