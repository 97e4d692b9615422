"""What the tripwire costs trusted code: the audit hook runs on every audit event of the
process, capsule or not, so trusted code that raises many events (opens, imports, compiles,
``id()``) pays for its stack walk.

Audit hooks cannot be removed, so each variant runs in its own fresh interpreter: one with
no hook (the baseline), one with the tripwire installed and trusted code at a shallow stack,
one at a deep stack (the hook walks every frame looking for capsule code).  Variants are
interleaved round by round, and the figure is the median of per-round ratios.

    .venv/bin/python bench/bench_tripwire.py [--quick]
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap

CHILD = textwrap.dedent(
    """
    import json, os, sys, time, importlib
    variant, depth, n, path, moddir = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
    if variant != "none":
        from ipycap.engine import tripwire
        tripwire.install()
    sys.path.insert(0, moddir)

    def opens(k):
        for _ in range(k):
            with open(path) as f:
                f.read()

    def compiles(k):
        for _ in range(k):
            compile("x = 1", "<bench>", "exec")

    def ids(k):
        o = object()
        for _ in range(k):
            id(o)

    def imports(k):
        names = [f"benchmod{i}" for i in range(k)]
        for name in names:
            importlib.import_module(name)
        for name in names:
            del sys.modules[name]

    def nested(d, fn, k):
        if d <= 0:
            return fn(k)
        return nested(d - 1, fn, k)

    out = {}
    for name, fn, k in (("open+read", opens, 4 * n), ("compile", compiles, 4 * n),
                        ("id()", ids, 40 * n), ("import (fresh module)", imports, 200)):
        t = time.perf_counter_ns()
        nested(depth, fn, k)
        out[name] = (time.perf_counter_ns() - t) / k
    print(json.dumps(out))
    """
)

VARIANTS = (
    ("no hook", "none", 0),
    ("tripwire, depth 5", "tripwire", 5),
    ("tripwire, depth 60", "tripwire", 60),
)


def _child(variant: str, depth: int, n: int, path: str, moddir: str) -> dict:
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    out = subprocess.run(
        [sys.executable, "-c", CHILD, variant, str(depth), str(n), path, moddir],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    ).stdout
    return json.loads(out)


def measure(rounds: int = 7, n: int = 500) -> dict:
    """Per-operation ratios (tripwire / no hook) for each workload, medians over rounds."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "data.txt")
        with open(path, "w") as f:
            f.write("x" * 1000)
        moddir = os.path.join(tmp, "mods")
        os.mkdir(moddir)
        for i in range(200):
            with open(os.path.join(moddir, f"benchmod{i}.py"), "w") as f:
                f.write(f"VALUE = {i}\n")
        ratios: dict = {}
        absolute: dict = {}
        for _ in range(rounds):
            results = {label: _child(v, d, n, path, moddir) for label, v, d in VARIANTS}
            base = results["no hook"]
            for label, res in results.items():
                for work, ns in res.items():
                    absolute.setdefault((label, work), []).append(ns)
                    ratios.setdefault((label, work), []).append(ns / base[work])
    return {
        key: (statistics.median(absolute[key]), statistics.median(vals))
        for key, vals in ratios.items()
    }


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    quick = "--quick" in argv
    table = measure(rounds=3 if quick else 7, n=200 if quick else 500)
    print("\n## tripwire: cost of the audit hook on trusted code (fresh interpreters)")
    print(f"{'workload':24} {'variant':22} {'per op':>10} {'vs no hook':>11}")
    for (label, work), (ns, ratio) in sorted(table.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        print(f"{work:24} {label:22} {ns / 1000:8.2f}us {ratio:10.2f}x")


if __name__ == "__main__":
    main()
