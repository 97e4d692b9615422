"""Run every benchmark module of ``bench/`` in one process and print one report.

``make bench`` calls this.  A benchmark module is a ``bench_*.py`` file with
``run(settings) -> list[common.Table]``; a module that offers only ``main()`` is called as
is and prints its own section.  The report ends with every target and whether it was met.
Because the machine is shared, read the ratios (same run, interleaved, paired medians),
not the absolute times.

    .venv/bin/python bench/run.py              # the full run (about 2-3 minutes)
    .venv/bin/python bench/run.py --quick      # smoke run, seconds
    .venv/bin/python bench/run.py --only membrane --json out.json
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from common import CLOCKS, Settings, Table, use_clock  # noqa: E402

#: Modules run first, in this order; any other bench_*.py follows alphabetically.
ORDER = ("bench_engine", "bench_membrane", "bench_tripwire")


def modules(only: list[str]) -> list[str]:
    found = sorted(p.stem for p in HERE.glob("bench_*.py"))
    names = [m for m in ORDER if m in found] + [m for m in found if m not in ORDER]
    if only:
        names = [m for m in names if any(o in m for o in only)]
    return names


def header() -> str:
    import ipycap

    load = os.getloadavg() if hasattr(os, "getloadavg") else ("?",)
    return (
        f"# ipycap benchmarks  {time.strftime('%Y-%m-%d %H:%M')}\n"
        f"   Python {platform.python_version()} ({platform.python_implementation()}), "
        f"{platform.machine()}, {os.cpu_count()} CPUs, load {load[0]:.2f}, "
        f"ipycap {getattr(ipycap, '__version__', '?')}"
    )


def write_json(tables: list[Table], path: str) -> None:
    """The report's tables as JSON (``--json``): one object per table (Table.as_json)."""
    Path(path).write_text(json.dumps([t.as_json() for t in tables], indent=1), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few short rounds (smoke test)")
    parser.add_argument("--only", action="append", default=[], help="module name substring")
    parser.add_argument("--repeats", type=int, help="interleaved rounds per comparison")
    parser.add_argument(
        "--clock",
        choices=sorted(CLOCKS),
        default="thread",
        help="thread: this thread's CPU time (default, robust to load); perf: perf_counter_ns",
    )
    parser.add_argument(
        "--gateway",
        action="store_true",
        help="also start 16 kernels at once behind a Kernel Gateway (minutes; bench_gateway)",
    )
    parser.add_argument("--json", help="also write the tables as JSON to this path")
    parser.add_argument(
        "--strict", action="store_true", help="exit with status 1 if any target is missed"
    )
    args = parser.parse_args(argv)
    settings = Settings.quick() if args.quick else Settings()
    if args.repeats:
        settings.repeats = args.repeats
    settings.clock = args.clock
    settings.gateway = args.gateway
    use_clock(args.clock)
    print(header() + f", clock {args.clock}", flush=True)
    started = time.perf_counter()
    tables: list[Table] = []
    for name in modules(args.only):
        module = importlib.import_module(name)
        t0 = time.perf_counter()
        if hasattr(module, "run"):
            for table in module.run(settings):
                print("\n" + table.render(), flush=True)
                tables.append(table)
        elif hasattr(module, "main"):
            print(f"\n## {name} (its own report)", flush=True)
            argv_saved = sys.argv
            sys.argv = [str(HERE / f"{name}.py")]  # its own defaults, not our options
            try:
                module.main()
            except SystemExit as exit_:
                if exit_.code not in (None, 0):
                    print(f"   {name} exited with status {exit_.code}", flush=True)
            finally:
                sys.argv = argv_saved
        else:
            print(f"\n## {name}: no run(settings) or main(); not run", flush=True)
        print(f"   [{name}: {time.perf_counter() - t0:.1f} s]", flush=True)
    targets = [t for t in tables if t.target]
    print("\n# Targets")
    for t in targets:
        print(f"   {t.title}: {t.verdict}")
    missed = sum(v.count("MISSED") for v in (t.verdict for t in targets))
    print(f"   {missed} missed; total time {time.perf_counter() - started:.0f} s")
    if args.json:
        write_json(tables, args.json)
    return 1 if (args.strict and missed) else 0


if __name__ == "__main__":
    sys.exit(main())
