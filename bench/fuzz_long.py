"""The long fuzzing profile (``make fuzz-long``): >= 100,000 generated attribute chains and
calls run in capsules; fails loudly on the first one that hands trusted code a canary.

    .venv/bin/python bench/fuzz_long.py [--examples N] [--seed S]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hypothesis import HealthCheck, given, settings  # noqa: E402

from tests.redteam.fuzzing import forbidden, programs, run_program  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)
    token = "CANARY-" + os.urandom(6).hex()
    counts = {"runs": 0, "refused": 0, "errors": 0, "values": 0}

    @settings(
        max_examples=args.examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(programs)
    def prop(expr):
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            value, error, vault = run_program(expr, token, "")
        counts["runs"] += 1
        if error is None:
            counts["values"] += 1
        elif "refused by" in str(error):
            counts["refused"] += 1
        else:
            counts["errors"] += 1
        why = forbidden(value, token, vault)
        assert why is None, f"ESCAPE: {expr!r} returned {why}"

    if args.seed is not None:
        from hypothesis import seed

        prop = seed(args.seed)(prop)
    start = time.perf_counter()
    prop()
    took = time.perf_counter() - start
    print(
        f"fuzz-long: {counts['runs']} programs in {took:.0f}s, no canary reached "
        f"({counts['refused']} refused by a layer, {counts['errors']} ordinary errors, "
        f"{counts['values']} returned a value)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
