"""What OS confinement (ipycap.confine.apply) costs at process start.

    python bench/bench_confine.py [--runs N]

Each run starts a fresh interpreter that imports ipycap's policy and confine modules and builds
a CapsulePolicy ("plain"), and the same plus ``confine.apply(policy)`` ("confined").  Reported:
median wall time of the whole process for both, their ratio, and the median time of the
``apply()`` call alone measured inside the child.  Two ceilings are measured: the kernel's
default (its working directory) and ``/`` with the default denied paths, which makes apply()
walk toward every denied folder.  ``confine_overhead()`` is reusable (e.g. by a kernel-start
benchmark).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

CHILD = """
import json, sys, time
from ipycap.engine.policy import CapsulePolicy
from ipycap import confine
policy = CapsulePolicy(**json.loads(sys.argv[1]))
t = time.perf_counter()
if sys.argv[2] == "confined":
    report = confine.apply(policy)
    assert report.active
print(json.dumps({"apply_s": time.perf_counter() - t}))
"""


def _run(mode: str, policy: dict, cwd: str) -> tuple[float, float]:
    t = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(policy), mode],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    wall = time.perf_counter() - t
    return wall, json.loads(out.strip().splitlines()[-1])["apply_s"]


def confine_overhead(runs: int = 10, policy: dict | None = None) -> dict:
    """Median process wall time plain vs confined (seconds), their ratio, median apply() time.

    ``policy`` is CapsulePolicy keyword arguments; by default the kernel's ceiling: its
    working directory (a fresh temporary directory here) readable and writable.
    """
    with tempfile.TemporaryDirectory() as cwd:
        policy = policy or {"readable_paths": [cwd], "writable_paths": [cwd]}
        _run("plain", policy, cwd), _run("confined", policy, cwd)  # warm the page cache
        plain, confined, apply_s = [], [], []
        for _ in range(runs):  # interleaved, so drift affects both alike
            plain.append(_run("plain", policy, cwd)[0])
            wall, a = _run("confined", policy, cwd)
            confined.append(wall)
            apply_s.append(a)
    p, c = statistics.median(plain), statistics.median(confined)
    return {
        "runs": runs,
        "plain_s": p,
        "confined_s": c,
        "ratio": c / p,
        "apply_s": statistics.median(apply_s),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    from ipycap import confine

    print(confine.status().summary())
    cases = {
        "ceiling = working directory": None,
        "ceiling = / (walks around denied paths)": {"readable_paths": ["/"]},
    }
    for name, policy in cases.items():
        r = confine_overhead(args.runs, policy)
        print(
            f"{name}: plain start {r['plain_s'] * 1000:.1f} ms, confined start "
            f"{r['confined_s'] * 1000:.1f} ms (x{r['ratio']:.2f}), apply() alone "
            f"{r['apply_s'] * 1000:.1f} ms  [medians of {r['runs']}]"
        )


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    main()
