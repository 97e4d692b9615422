"""Helpers of the boundary regression tests that run cells in a fresh IPython shell process."""

from __future__ import annotations

import json
import os
import subprocess
import sys

# One driver of fresh shell processes for the suite: tests/test_limits.py's (it also checks
# that the trusted cell run after them still works).
from tests.test_limits import run_shell  # noqa: E402,F401


def run_script(tmp_path, script, *args, timeout=120):
    """Run a Python script in a fresh process; returns the JSON its last stdout line holds."""
    proc = subprocess.run(
        [sys.executable, "-c", script, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def token() -> str:
    return "CANARY" + os.urandom(6).hex()
