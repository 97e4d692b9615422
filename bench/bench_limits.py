"""What --max-memory costs: the allocator hook of ipycap/engine/_memlimit.c.

Targets (issue 16): <= 5% on an allocation-heavy capsule workload while a budget is armed (and
on numpy array work, whose data the numpy memory handler counts), and
<= 1% on trusted code between capsule cells (after a limited cell ran: the hook is taken out
when the cell ends, so this measures what it leaves behind).

The hook is per process, so each variant runs in its own fresh interpreter; variants are
interleaved round by round and the figure is the median of per-round ratios (thread CPU time,
so the other jobs of a shared machine matter less).  The workload allocates small objects
(pymalloc), blocks over 512 bytes (the raw domain, where the hook does its counting) and
grows lists (realloc).

    .venv/bin/python bench/bench_limits.py [--quick]
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import textwrap

WORK = """
def work(k):
    for _ in range(k):
        rows = [{"n": i, "s": str(i) * 3, "b": bytes(600 + (i * 37) % 3000)} for i in range(300)]
        text = "".join(r["s"] for r in rows)
        rows.append(text)
        del rows, text
"""

#: numpy's array data: counted by ipycap's numpy memory handler while a budget is armed.
NUMPY_WORK = """
import numpy as np
def work(k):
    for _ in range(k):
        for n in (10, 1000, 100000):
            a = np.ones(n) * 2.0
            b = (a + 1.0).sum()
        del a, b
"""

CHILD = textwrap.dedent(
    """
    import json, sys, time
    variant, k, samples = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    WORK = sys.stdin.read()
    from ipycap.engine.capsule import Capsule
    from ipycap.engine.limits import Limits
    times = []
    if variant.startswith(("capsule", "numpy")):
        c = Capsule(grants=[("import", "numpy")] if variant.startswith("numpy") else [])
        c.limits = Limits(max_memory=(1 << 30) if variant.endswith("budget armed") else 0)
        c.run(WORK)
        c.run(
            "import time\\nd = []\\nwork(%d)\\n"
            "for _ in range(%d):\\n    t = time.thread_time_ns()\\n    work(%d)\\n"
            "    d.append(time.thread_time_ns() - t)" % (k, samples, k)
        )
        times = list(c.namespace["d"])
    else:
        if variant == "trusted, after a limited cell":
            c = Capsule()
            c.limits = Limits(max_memory=1 << 30)
            c.run("x = 1")  # one limited cell: the hook went in and out again
        ns = {}
        exec(WORK, ns)
        ns["work"](k)
        for _ in range(samples):
            t = time.thread_time_ns()
            ns["work"](k)
            times.append(time.thread_time_ns() - t)
    times.sort()
    print(json.dumps(times[len(times) // 2] / k))
    """
)

COMPARISONS = (
    ("allocation-heavy capsule cell", "capsule, no budget", "capsule, budget armed", 5.0),
    (
        "numpy arrays (10 to 10^5 elements) in a capsule",
        "numpy, no budget",
        "numpy, budget armed",
        5.0,
    ),
    (
        "trusted code between capsule cells",
        "trusted, no hook",
        "trusted, after a limited cell",
        1.0,
    ),
)


def _child(variant: str, k: int, samples: int) -> float:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, variant, str(k), str(samples)],
        input=NUMPY_WORK if variant.startswith("numpy") else WORK,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(out)


def measure(rounds: int, k: int, samples: int) -> list[tuple]:
    rows = []
    for title, base, variant, target in COMPARISONS:
        ratios, base_ns, var_ns = [], [], []
        for _ in range(rounds):
            b = _child(base, k, samples)
            v = _child(variant, k, samples)
            base_ns.append(b)
            var_ns.append(v)
            ratios.append(v / b)
        rows.append(
            (
                title,
                base,
                variant,
                statistics.median(base_ns),
                statistics.median(var_ns),
                statistics.median(ratios),
                target,
            )
        )
    return rows


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    quick = "--quick" in argv
    rows = measure(rounds=3 if quick else 11, k=5 if quick else 20, samples=5 if quick else 15)
    print("\n## limits: cost of the --max-memory allocator hook (fresh interpreters)")
    for title, base, variant, b, v, ratio, target in rows:
        cost = (ratio - 1) * 100
        verdict = "met" if cost <= target else "MISSED"
        print(f"   {title}")
        print(f"      {base:30} {b / 1000:9.1f} us/unit")
        print(f"      {variant:30} {v / 1000:9.1f} us/unit  {ratio:6.3f}x (median of rounds)")
        print(f"      target: <= {target:g}% -> {cost:+.1f}% {verdict}")


if __name__ == "__main__":
    main()
