"""The long fuzzing profile (``make fuzz-long``): >= 100,000 generated attribute chains and
calls run in capsules; fails loudly on the first one that reaches a canary (the vault's token,
the secret file's contents or opening it, a raw frame/module/globals) in its value, a caught
or escaping exception, its printed output or warnings (tests/redteam/fuzzing.py).

    .venv/bin/python bench/fuzz_long.py [--examples N] [--seed S]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hypothesis import HealthCheck, given, settings  # noqa: E402

from tests.redteam.fuzzing import canaries, programs, reached, run_program  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)
    c = canaries()
    counts = {"runs": 0, "refused": 0, "errors": 0, "values": 0}

    @settings(
        max_examples=args.examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(programs)
    def prop(expr):
        out = run_program(expr, c)
        error = out.error or out.caught
        counts["runs"] += 1
        if error is None:
            counts["values"] += 1
        elif "refused by" in str(error):
            counts["refused"] += 1
        else:
            counts["errors"] += 1
        why = reached(out, c)
        assert why is None, f"ESCAPE: {expr!r}: {why}"

    if args.seed is not None:
        from hypothesis import seed

        prop = seed(args.seed)(prop)
    start = time.perf_counter()
    prop()
    took = time.perf_counter() - start
    print(
        f"fuzz-long: {counts['runs']} programs in {took:.0f}s "
        f"({counts['runs'] / max(took, 1e-9):.0f}/s), no canary reached "
        f"({counts['refused']} refused by a layer, {counts['errors']} ordinary errors, "
        f"{counts['values']} returned a value)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
