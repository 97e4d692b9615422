"""Engine benchmarks: capsule code vs plain ``exec`` vs RestrictedPython, and compile costs.

Why: the proxy approach only earns its place if capsule code runs at the speed of ordinary
Python (the gate rewrites only rare risky accesses) -- target >= 0.95x plain -- and if gating
a cell costs little more than compiling it (target <= 3x plain ``compile``), with unchanged
cells served from a cache.  RestrictedPython, which guards *every* attribute read, item
access and iteration, runs the same workloads for comparison.
"""

from __future__ import annotations

import builtins as py_builtins
import itertools
import operator

from common import Settings, Table, check, compare, fmt_ns
from workloads import CELL_50, CLASS_WORKLOADS, OPERATORS, RP_PORTS, WORKLOADS

from ipycap import Capsule
from ipycap.engine.codeexec import compile_gated

SPEED_TARGET = 0.95  # capsule speed relative to plain exec
COMPILE_TARGET = 3.0  # gate+compile time relative to plain compile


# -- the three ways to run the same source ----------------------------------------------------
def plain_work(source: str):
    ns: dict = {"__name__": "__bench__"}
    # dont_inherit: this module's ``from __future__ import annotations`` is not the cell's
    exec(compile(source, "<plain>", "exec", dont_inherit=True), ns)
    return ns["work"]


def capsule_work(source: str):
    capsule = Capsule(label="bench")
    capsule.run(source)
    return capsule.namespace["work"]


_INPLACE = {
    "+=": operator.iadd,
    "-=": operator.isub,
    "*=": operator.imul,
    "/=": operator.itruediv,
    "//=": operator.ifloordiv,
    "%=": operator.imod,
    "**=": operator.ipow,
    "<<=": operator.ilshift,
    ">>=": operator.irshift,
    "&=": operator.iand,
    "|=": operator.ior,
    "^=": operator.ixor,
}


def _inplacevar(op, x, y):
    """RestrictedPython's ``_inplacevar_`` hook (AccessControl's protected_inplacevar shape)."""
    return _INPLACE[op](x, y)


def restricted_globals() -> dict:
    """RestrictedPython's usual setup: safe builtins and the standard guards.

    ``full_write_guard`` only lets code assign attributes of objects that declare
    ``_guarded_writes``; a capsule-defined class cannot say so itself (RestrictedPython
    refuses names starting with '_'), so ``__build_class__`` marks classes the restricted
    code defines, as an application embedding RestrictedPython would.  ``super`` is added to
    the builtins (it is not among ``safe_builtins``), and an ``__import__`` admitting ``math``.
    """
    from RestrictedPython import safe_globals
    from RestrictedPython.Eval import default_guarded_getitem, default_guarded_getiter
    from RestrictedPython.Guards import (
        full_write_guard,
        guarded_iter_unpack_sequence,
        guarded_unpack_sequence,
        safer_getattr,
    )
    from RestrictedPython.Limits import limited_builtins
    from RestrictedPython.Utilities import utility_builtins

    builtins = dict(safe_globals["__builtins__"])
    builtins.update(limited_builtins)
    builtins.update(utility_builtins)
    for name in ("super", "sum", "min", "max", "enumerate", "dict", "list", "map", "sorted"):
        builtins.setdefault(name, getattr(py_builtins, name))
    build_class = builtins["__build_class__"]

    def marked_build_class(*args, **kwargs):
        cls = build_class(*args, **kwargs)
        cls._guarded_writes = True
        return cls

    builtins["__build_class__"] = marked_build_class

    def restricted_import(name, globals=None, locals=None, fromlist=(), level=0):
        if name not in ("math",):
            raise ImportError(f"import of {name!r} is not allowed")
        return __import__(name, globals, locals, fromlist, level)

    builtins["__import__"] = restricted_import
    return {
        "__builtins__": builtins,
        "__name__": "__restricted__",
        "__metaclass__": type,
        "_getattr_": safer_getattr,
        "_getitem_": default_guarded_getitem,
        "_getiter_": default_guarded_getiter,
        "_iter_unpack_sequence_": guarded_iter_unpack_sequence,
        "_unpack_sequence_": guarded_unpack_sequence,
        "_write_": full_write_guard,
        "_inplacevar_": _inplacevar,
        "_apply_": lambda f, *a, **kw: f(*a, **kw),
    }


def restricted_work(source: str):
    from RestrictedPython import compile_restricted

    code = compile_restricted(source, "<restricted>", "exec")
    ns = restricted_globals()
    exec(code, ns)
    return ns["work"]


def _repeat(fn):
    def run(n):
        for _ in itertools.repeat(None, n):
            fn()

    return run


# -- the benchmarks ---------------------------------------------------------------------------
def bench_workloads(settings: Settings) -> list[Table]:
    tables = []
    for title, source in WORKLOADS.items():
        plain = plain_work(source)
        caps = capsule_work(source)
        rp = restricted_work(RP_PORTS.get(title, source))
        expected = plain()
        for name, fn in (("capsule", caps), ("RestrictedPython", rp)):
            got = fn()
            if got != expected:
                raise AssertionError(f"{title}: {name} work() gave {got!r}, plain {expected!r}")
        table = compare(
            f"engine: {title}",
            {
                "plain exec": _repeat(plain),
                "capsule": _repeat(caps),
                "RestrictedPython": _repeat(rp),
            },
            settings,
            unit="call",
        )
        if title in RP_PORTS:
            table.notes.append(
                "RestrictedPython runs a port (no '_' attributes: super().setup_*())"
            )
        check(
            table,
            "capsule",
            at_most=1 / SPEED_TARGET,
            target=f"capsule speed >= {SPEED_TARGET}x plain (time ratio <= {1 / SPEED_TARGET:.3f})",
        )
        tables.append(table)
    return tables


def bench_class_workloads(settings: Settings) -> list[Table]:
    """Cells that create classes (dataclasses, namedtuple, Enum): capsule vs plain.  Each
    capsule-made class carries the array-protocol guard, a fixed cost per class; no target
    (class creation is rare next to the code that uses the classes)."""
    tables = []
    for title, source in CLASS_WORKLOADS.items():
        plain = plain_work(source)
        caps = capsule_work(source)
        if caps() != plain():
            raise AssertionError(f"{title}: capsule work() differs from plain")
        table = compare(
            f"engine: {title}",
            {"plain exec": _repeat(plain), "capsule": _repeat(caps)},
            settings,
            unit="call",
        )
        tables.append(table)
    return tables


def bench_operators(settings: Settings) -> list[Table]:
    """Operators, ``in`` and indexing of own classes: the cost of the operand hooks
    (hooks.py; no RestrictedPython column, it refuses every dunder name)."""
    plain = plain_work(OPERATORS)
    caps = capsule_work(OPERATORS)
    if caps() != plain():
        raise AssertionError("operators: capsule work() differs from plain")
    table = compare(
        "engine: operators of own classes",
        {"plain exec": _repeat(plain), "capsule": _repeat(caps)},
        settings,
        unit="call",
    )
    table.notes.append(
        "every argument-taking dunder of a capsule class is an operand hook (hooks.py): "
        "a C nearest-frame check per call"
    )
    return [table]


def bench_compile(settings: Settings) -> list[Table]:
    """Gate+compile of a fresh 50-line cell vs plain ``compile`` (cache bypassed)."""
    counter = itertools.count()
    capsule = Capsule(label="bench")

    def fresh() -> str:
        # Changed at both ends, so neither the body nor the last expression (which
        # Capsule.compile compiles separately) can come from the cache.
        n = next(counter)
        return f"# cell {n}\n{CELL_50}# {n}\n"

    def plain(n):
        for _ in range(n):
            compile(fresh(), "<cell>", "exec", dont_inherit=True)

    def gated(n):
        for _ in range(n):
            compile_gated(fresh(), "<cell>", "exec", False)

    def capsule_compile(n):
        for _ in range(n):
            capsule.compile(fresh())

    def strings_only(n):
        for _ in range(n):
            fresh()

    table = compare(
        "engine: gate+compile of a fresh 50-line cell",
        {
            "plain compile()": plain,
            "compile_gated()": gated,
            "Capsule.compile()": capsule_compile,
        },
        settings,
        unit="cell",
        overhead=strings_only,
    )
    check(
        table,
        "compile_gated()",
        at_most=COMPILE_TARGET,
        target=f"<= {COMPILE_TARGET}x plain compile",
    )
    check(
        table,
        "Capsule.compile()",
        at_most=COMPILE_TARGET,
        target=f"<= {COMPILE_TARGET}x plain compile",
    )
    return [table]


def bench_rerun(settings: Settings) -> list[Table]:
    """``Capsule.run`` of an unchanged cell (cache hit) vs its first run (cache miss)."""
    counter = itertools.count()
    capsule = Capsule(label="bench")
    same = CELL_50 + "# unchanged\n"
    capsule.run(same)
    plain_code = compile(same, "<cell>", "exec")

    def first(n):
        for _ in range(n):
            n = next(counter)
            capsule.run(f"# cell {n}\n{CELL_50}# {n}\n")

    def again(n):
        for _ in range(n):
            capsule.run(same)

    def plain_exec(n):
        for _ in range(n):
            exec(plain_code, {"__name__": "__cell__"})

    table = compare(
        "engine: Capsule.run of a 50-line cell, first run vs unchanged re-run",
        {
            "first run (cache miss)": first,
            "re-run (cache hit)": again,
            "plain exec (precompiled)": plain_exec,
        },
        settings,
        unit="run",
    )
    hit = table.row("re-run (cache hit)")
    miss = table.row("first run (cache miss)")
    table.notes.append(
        f"cache hit saves {fmt_ns(miss.median_ns - hit.median_ns)} per run "
        f"({hit.ratio:.2f}x the cost of a first run)"
    )
    return [table]


def run(settings: Settings) -> list[Table]:
    return (
        bench_workloads(settings)
        + bench_class_workloads(settings)
        + bench_operators(settings)
        + bench_compile(settings)
        + bench_rerun(settings)
    )
