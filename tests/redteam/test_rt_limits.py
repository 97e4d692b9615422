"""Red team 4 (rt-limits): the newest machinery -- resource limits, the approval prompt, the
registry and its views, the terminal sanitiser.

Each test FAILS today: the capsule reaches its canary.  Every scenario that needs the
extension runs an IPython InteractiveShell in its own process (tests/shell_driver.py), so a
hang or crash is a failed test, not a dead run.  ``PLAIN_*`` strings at the end of each
section are the same payloads as plain Python, showing what the canary means outside ipycap.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ipycap import Capsule
from ipycap.engine import limits
from ipycap.engine.registry import Registry

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


def token() -> str:
    return "CANARY" + os.urandom(6).hex()


# -- 1. capsule code that runs after its cell runs with no limits ------------------------------
# Class: capsule code the host runs after run_limited returned -- finalizers (__del__, a
# generator's finally) run by ``release_namespace``'s gc.collect() on the ipycap-release
# thread, or by any later collection on the main thread -- runs outside the capsule thread:
# no --timeout, no --max-memory (only the capsule thread is refused), no --max-output and no
# terminal sanitiser (sys.stdout is no longer wrapped).  The tripwire still applies.

FINALIZER = """\
class D:
    def __del__(self):
{body}
a = D(); b = D(); a.o = b; b.o = a
"""


def finalizer(body: str) -> str:
    return FINALIZER.format(body="\n".join("        " + line for line in body.splitlines()))


def test_finalizer_after_the_cell_runs_past_its_timeout(tmp_path):
    src = "%%capsule --timeout 1\nimport time\n" + finalizer(
        "t = time.monotonic()\nwhile time.monotonic() - t < 3:\n    pass"
    )
    start = time.monotonic()
    run_shell(tmp_path, {"source": src})
    elapsed = time.monotonic() - start
    # Canary: capsule code ran 2 x 3 s after a 1 s limit (a `while True` hangs the session).
    assert elapsed < 1 + limits.STOP_GRACE + 3, f"capsule code ran {elapsed:.1f}s"


def test_finalizer_after_the_cell_allocates_past_max_memory(tmp_path):
    tok = token()
    src = "%%capsule --max-memory 20M\n" + finalizer(
        f"blob = bytearray(64 * 1024 * 1024)\nprint('{tok}', len(blob))"
    )
    (rec,) = run_shell(tmp_path, {"source": src})
    # Canary: 64M allocated (and kept while it printed) by a cell limited to 20M.
    assert tok not in rec["stdout"], rec["stdout"]


def test_finalizer_after_the_cell_writes_raw_terminal_escapes(tmp_path):
    tok = token()
    src = "%%capsule\n" + finalizer(
        f"print('\\x1b]52;c;{tok}\\x07\\x1b]0;{tok}\\x07\\x1b[2J')"
    )
    (rec,) = run_shell(tmp_path, {"source": src})
    # Canary: an OSC 52 clipboard write, a title and a screen clear reach the terminal
    # (inside the cell the same print is sanitised: see test_limits).
    assert "\x1b]52" not in rec["stdout"] and tok not in rec["stdout"], repr(rec["stdout"])


# Plain Python: the same print is an OSC 52 clipboard write in any xterm-compatible terminal.
PLAIN_FINALIZER = "print('\\x1b]52;c;' + 'CANARY' + '\\x07')"


# -- 2. capsule text that the host prints is not sanitised -------------------------------------
# Class: strings chosen by capsule code that trusted code prints itself, after the cell, on
# the main thread (outside the capsule thread's stream wrapper): the exception message in the
# traceback IPython prints, registry event targets in `%capsule log` (and the kernel's command
# output).  Escapes reach the terminal; newlines forge table rows.


def test_exception_message_reaches_the_terminal_with_its_escapes(tmp_path):
    tok = token()
    src = f"%%capsule\nraise ValueError('x' + chr(27) + ']52;c;{tok}' + chr(7) + chr(27) + '[2J')"
    (rec,) = run_shell(tmp_path, {"source": src})
    shown = rec["stdout"] + rec["stderr"]
    assert rec["error"] == "ValueError"
    # Canary: the clipboard write reaches the terminal raw in the traceback IPython prints.
    assert "\x1b]52;c;" + tok not in shown, repr(shown[-300:])


def test_registry_log_prints_a_capsule_chosen_target_raw(tmp_path):
    tok = token()
    fake_row = f"\n01:00:00  grant   cap-99  read  /{tok}  (forged row)"
    path = "/nonexistent-" + tok + chr(27) + "]0;" + tok + chr(7) + fake_row
    src = f"%%capsule\ntry:\n    open({path!r})\nexcept PermissionError:\n    pass"
    _, log = run_shell(tmp_path, {"source": src}, {"source": "%capsule log 5"})
    shown = log["stdout"] + (log["result"] or "")
    # Canary: the view shows an escape sequence and a forged 'grant' row the capsule wrote.
    assert "\x1b]0;" not in shown and f"cap-99  read  /{tok}" not in shown, shown
