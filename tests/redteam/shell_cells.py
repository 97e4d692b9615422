"""Helpers of the boundary regression tests that run cells in a fresh IPython shell process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

DRIVER = Path(__file__).resolve().parent.parent / "shell_driver.py"
ALIVE = {"source": "'alive:' + str(6 * 7)"}


def run_shell(tmp_path, *cells, timeout=120):
    """Run the cells (and a trusted one) in a fresh shell process; returns their records."""
    path = tmp_path / "cells.json"
    path.write_text(json.dumps([*cells, ALIVE]))
    proc = subprocess.run(
        [sys.executable, str(DRIVER), str(path)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=tmp_path,
    )
    lines = proc.stdout.splitlines()
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-3000:], lines[-3:])
    assert lines[-1] == "alive"
    return [json.loads(line) for line in lines[:-2]]


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
