"""Limits of capsule cells in the extension: --timeout, --max-memory, --max-output, deep C
recursion (the crasher file) and terminal control sequences.  Every scenario runs an IPython
InteractiveShell in its own process (tests/shell_driver.py), so a crash is a failed test, not
a dead test run; the last line of each run is a trusted cell answering after the capsule."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ipycap.engine.errors import PolicyError
from ipycap.engine.limits import Limits, format_size, parse_size
from ipycap.engine.terminal import sanitize
from tests.crashers.py311 import CRASHERS

DRIVER = Path(__file__).with_name("shell_driver.py")
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
    records = [json.loads(line) for line in lines[:-1]]
    assert records[-1]["error"] is None and records[-1]["result"] == "'alive:42'", records[-1]
    return records[:-1]


def cell(source, **kw):
    return {"source": source, **kw}


# -- units -------------------------------------------------------------------------------------
def test_sizes_parse_in_powers_of_1024_and_print_back():
    assert parse_size("300M") == 300 << 20
    assert parse_size("2G") == 2 << 30
    assert parse_size("64k") == 64 << 10
    assert parse_size("1.5K") == 1536
    assert parse_size("512") == 512
    assert format_size(300 << 20) == "300M"
    with pytest.raises(ValueError, match="not a size"):
        parse_size("lots")


def test_a_cell_may_ask_for_less_than_the_policy_never_more():
    ceiling = Limits(timeout=10, max_memory=1 << 30, max_output=1 << 20)
    assert ceiling.narrowed(timeout="2", max_memory="300M") == Limits(2, 300 << 20, 1 << 20)
    with pytest.raises(PolicyError, match=r"--timeout 20 is above .* 10s") as info:
        ceiling.narrowed(timeout="20")
    assert "c.CapsulePolicy.timeout" in info.value.how
    with pytest.raises(PolicyError, match="--max-memory 0 is above"):
        ceiling.narrowed(max_memory="0")  # 'no limit' is more than any limit
    assert Limits().narrowed(timeout="5").timeout == 5  # no ceiling: any request


# -- --timeout ------------------------------------------------------------------------------
STUBBORN = """%%capsule --timeout 1 --export done
done = 1
while True:
    try:
        while True:
            pass
    except BaseException:
        pass
"""


def test_timeout_stops_a_loop_that_catches_everything(tmp_path):
    start = time.monotonic()
    (rec,) = run_shell(tmp_path, cell(STUBBORN))
    assert rec["error"] == "CellTimeout"
    assert "time limit of 1s" in rec["message"] and "--timeout" in rec["message"]
    assert time.monotonic() - start < 30


def test_timeout_binds_nothing_and_the_session_is_usable_at_once(tmp_path):
    rec, bound, after = run_shell(
        tmp_path, cell(STUBBORN), cell("'done' in dir()"), cell("%%capsule\n6 * 7"), timeout=60
    )
    assert rec["error"] == "CellTimeout"
    assert bound["result"] == "False"  # --export done: skipped
    assert after["error"] is None and after["result"] == "42"


def test_python_code_stops_within_a_second_of_the_limit(tmp_path):
    (rec,) = run_shell(
        tmp_path,
        cell(
            "import time\nt0 = time.monotonic()\ntry:\n"
            "    get_ipython().run_cell_magic('capsule', '--timeout 0.5', "
            "'x = 0\\nwhile True:\\n    x += 1')\n"
            "finally:\n    elapsed = time.monotonic() - t0\nelapsed"
        ),
    )
    assert rec["error"] == "CellTimeout"
    # the trusted cell's `finally` recorded the time; read it from a new cell is not
    # possible after an error, so the shell's record of the cell is the proof:
    assert "time limit of 0.5s" in rec["message"]


def test_timeout_above_the_policy_is_refused_before_the_cell_runs(tmp_path):
    (cfg, rec) = run_shell(
        tmp_path,
        cell("%config CapsulePolicy.timeout = 5"),
        cell("%%capsule --timeout 50 --allow-import json\nimport json"),
    )
    assert rec["error"] == "CapsulePolicyError"
    assert "--timeout 50 is above the policy's limit of 5s" in rec["message"]


def test_the_policy_timeout_applies_to_every_cell(tmp_path):
    (_, rec) = run_shell(
        tmp_path, cell("%config CapsulePolicy.timeout = 1"), cell("%%capsule\nwhile True: pass")
    )
    assert rec["error"] == "CellTimeout"


def test_keyboard_interrupt_reaches_capsule_code_on_its_thread(tmp_path):
    (rec,) = run_shell(tmp_path, cell("%%capsule\nwhile True: pass", interrupt_after=1.0))
    assert rec["error"] == "KeyboardInterrupt"


# -- --max-memory ---------------------------------------------------------------------------
def test_over_the_memory_limit_is_a_refusal_and_the_process_keeps_its_memory(tmp_path):
    (rec,) = run_shell(
        tmp_path,
        cell("%%capsule --max-memory 50M\nx = [bytes(1000) for _ in range(10**6)]"),
    )
    assert rec["error"] == "CellMemoryLimit"
    assert "memory limit of 50M" in rec["message"] and "--max-memory" in rec["message"]
    assert rec["rss"] < 400 << 20  # the megabytes it built were given back


def test_memory_error_is_catchable_inside_the_capsule(tmp_path):
    (rec,) = run_shell(
        tmp_path,
        cell(
            "%%capsule --max-memory 100M\ntry:\n    big = bytearray(10**9)\n"
            "except MemoryError:\n    big = None\nsmall = bytearray(10**6)\nbig is None"
        ),
    )
    assert rec["error"] is None and rec["result"] == "True"


def test_a_huge_repetition_is_refused_at_once(tmp_path):
    start = time.monotonic()
    (rec,) = run_shell(tmp_path, cell("%%capsule --max-memory 200M\n'a' * 10**10"))
    assert rec["error"] == "CellMemoryLimit"
    assert time.monotonic() - start < 30


def test_numpy_array_data_counts_against_the_memory_limit(tmp_path):
    """numpy's data comes from its own memory handler, not Python's allocators: the capsule
    thread gets a counting one.  np.ones touches every page, so without it the cell would
    really take 800 MB; np.zeros(10**9) asks for 8 GB at once.  Trusted numpy afterwards
    allocates as before (the handler was the capsule thread's only)."""
    records = run_shell(
        tmp_path,
        cell(
            "%%capsule --allow-import numpy --max-memory 300M\nimport numpy as np\nx = np.ones(10**8)"
        ),
        cell(
            "%%capsule --allow-import numpy --max-memory 300M\nimport numpy as np\n"
            "try:\n    np.zeros(10**9)\nexcept MemoryError as e:\n    caught = str(e)\n"
            "small = np.ones(10**6)\n(caught[:18], float(small.sum()))"
        ),
        cell("import numpy as np\nfloat(np.ones(5 * 10**7).sum())"),
    )
    refused, caught, trusted = records
    assert refused["error"] == "CellMemoryLimit", refused
    assert "memory limit of 300M" in refused["message"]
    assert refused["rss"] < 600 << 20
    assert caught["error"] is None and caught["result"] == "('Unable to allocate', 1000000.0)"
    assert trusted["error"] is None and trusted["result"] == "50000000.0"


def test_big_int_powers_and_shifts_are_refused_before_they_run(tmp_path):
    """One C call no timeout can stop: refused from the operands' sizes, at once; modular
    powers, small exponents and floats run as usual; --max-memory lowers the bound."""
    start = time.monotonic()
    records = run_shell(
        tmp_path,
        cell("%%capsule\ne = 10**9\n10 ** e"),
        cell("%%capsule\nx = 7\nx **= 10**9"),
        cell("%%capsule\n1 << 10**12"),
        cell("%%capsule\npow(10, 10**9)"),
        cell("%%capsule\n(pow(10, 10**9, 7), 3 ** 40 % 7, 2.0 ** 0.5, (10 ** 10**5).bit_length())"),
        cell("%%capsule --max-memory 16M\ne = 10**8\n10 ** e"),
    )
    assert time.monotonic() - start < 60
    *refused, fine, limited = records
    for rec in refused:
        assert rec["error"] == "IntResultTooLarge", rec
        assert "over the bound of 64M for one int operation" in rec["message"]
    assert fine["error"] is None and fine["result"] == "(4, 4, 1.4142135623730951, 332193)"
    assert limited["error"] == "IntResultTooLarge" and "bound of 16M" in limited["message"]


def test_memory_limit_hits_are_in_the_audit_log(tmp_path):
    log = tmp_path / "audit.jsonl"
    run_shell(
        tmp_path,
        cell(f"%config CapsulePolicy.audit_log = {str(log)!r}"),
        cell("%%capsule --max-memory 20M\nx = bytearray(10**8)"),
        cell("%%capsule --timeout 0.5\nwhile True: pass"),
    )
    events = [json.loads(line) for line in log.read_text().splitlines()]
    hits = [(e["event"], e["target"]) for e in events if e.get("kind") == "limits"]
    assert ("refuse", "max_memory") in hits and ("refuse", "timeout") in hits
    assert not [e for e in events if e["event"] == "limits"]  # per-cell records: view only


def test_registry_view_shows_the_limits_each_cell_ran_under(tmp_path):
    (_, view) = run_shell(
        tmp_path,
        cell("%%capsule --timeout 7 --max-memory 64M --max-output 1K\nx = 1"),
        cell("str(get_ipython().run_line_magic('capsule', 'list'))"),
    )
    assert "timeout 7s, memory 64M, output 1K" in view["result"]
    assert "peak memory" in view["result"]


# -- --max-output -------------------------------------------------------------------------
def test_output_is_capped_with_a_note_saying_how_much_was_dropped(tmp_path):
    (rec,) = run_shell(
        tmp_path,
        cell(
            "%%capsule --max-output 1K\nimport sys\nprint('x' * 3000)\n"
            "n = sys.stderr.write('y' * 3000)"
        ),
    )
    assert rec["error"] is None
    assert rec["stdout"] == "x" * 1024
    assert "4,977 more characters of output were dropped" in rec["stderr"]
    assert "1K (--max-output)" in rec["stderr"]
    assert "yyy" not in rec["stderr"]


# -- terminal control sequences -------------------------------------------------------------
ATTACK = (
    "print('\\x1b]52;c;ZXZpbA==\\x07clip \\x1b]0;title\\x07t \\x1b[2J\\x1b[H\\x1b[1A"
    "\\x1b[8mhidden\\x1b[0m \\x1b[31mred\\x1b[0m \\x1b[1mbold\\x1b[0m a\\rb c\\bd')"
)


def test_capsule_stdout_keeps_colours_and_drops_control_sequences(tmp_path):
    (rec,) = run_shell(tmp_path, cell("%%capsule\n" + ATTACK))
    out = rec["stdout"]
    assert "\x1b]" not in out and "\x07" not in out and "\x1b[2J" not in out
    assert "\x1b[8m" not in out and "\x1b[1A" not in out and "\r" not in out
    assert "\x1b[0;31mred" in out and "\x1b[0;1mbold" in out
    assert "a\nb d" in out


@pytest.mark.parametrize(
    ("flags", "body", "extra", "error"),
    [
        ("--timeout 1", "while True: pass", {}, "CellTimeout"),
        ("--max-memory 50M", "hog = [bytes(1000) for _ in range(10**6)]", {}, "CellMemoryLimit"),
        ("", "while True: pass", {"interrupt_after": 1.0}, "KeyboardInterrupt"),
    ],
    ids=["timeout", "memory", "interrupt"],
)
def test_a_stopped_capsule_cell_binds_no_user_name(tmp_path, flags, body, extra, error):
    """As a failed one (test_magics): a limit or an interrupt after the cell bound its
    --export names leaves the user namespace as it was."""
    stopped, after = run_shell(
        tmp_path,
        cell("kept = 'before'"),
        cell(
            f"%%capsule {flags} --export kept,fresh\nkept = 'rebound'\nfresh = 1\n{body}", **extra
        ),
        cell("(kept, 'fresh' in globals())"),
    )[1:]
    assert stopped["error"] == error, stopped
    assert after["result"] == "('before', False)"


def test_an_error_message_that_never_ends_is_stopped_by_the_timeout(tmp_path):
    """The host's copy of a capsule's exception is made under the cell's limits: a __str__
    that loops forever cannot hang the session after the cell."""
    source = (
        "%%capsule --timeout 1\nclass Silent(Exception):\n    def __str__(self):\n"
        "        while True:\n            pass\nraise Silent()"
    )
    start = time.monotonic()
    (rec,) = run_shell(tmp_path, cell(source))
    assert rec["error"] == "CellTimeout", rec
    assert time.monotonic() - start < 60


def test_trusted_output_is_not_filtered(tmp_path):
    (rec,) = run_shell(tmp_path, cell("print('\\x1b]0;mine\\x07ok')"))
    assert rec["stdout"] == "\x1b]0;mine\x07ok\n"


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("\x1b]52;c;ZXZpbA==\x07x", "x"),  # OSC 52 clipboard
        ("\x1b]2;title\x1b\\x", "x"),  # OSC 2 title, ST-terminated
        ("\x9d0;t\x9cx", "x"),  # 8-bit OSC
        ("\x1b[2J\x1b[Hx\x1b[K", "x"),  # clear screen, home, erase line
        ("\x1b[3Ax\x1b[10;5H", "x"),  # cursor movement
        ("\x1b[8msecret", "secret"),  # conceal
        ("\x1b[7mx", "x"),  # reverse video
        ("\x1b[31;41msame", "\x1b[0;31msame\x1b[0m"),  # red on red: background dropped
        ("\x1b[31;42mok", "\x1b[0;31;42mok\x1b[0m"),
        ("\x1b[38;2;200;80;9;48;2;200;80;9mx", "\x1b[0;38;2;200;80;9mx\x1b[0m"),
        ("\x1b[38;2;9;9;9;48;2;9;9;9mx", "x"),  # near-black: the default background's colour
        ("\x1b[44mx", "x"),  # a background without a foreground of another hue
        ("\x1b[1;3;4mx\x1b[0m", "\x1b[0;1;3;4mx\x1b[0m"),
        ("ab\r\ncd\ref", "ab\ncd\nef"),
        ("abc\b\bX", "aX"),
        ("\bX", "X"),
        ("tab\tbell\x07", "tab\tbell"),
        # bidi controls (Trojan Source): overrides, embeddings, isolates, marks
        ("user\u202e \u2066// admin\u2069 \u2066x", "user // admin x"),
        ("\u202a\u202b\u202c\u202d\u2067\u2068a\u200e\u200f\u061cb", "ab"),
        ("\x1b[31m\u202eevil\x1b[0m", "\x1b[0;31mevil\x1b[0m"),
        ("\u05e9\u05dc\u05d5\u05dd world", "\u05e9\u05dc\u05d5\u05dd world"),  # RTL text stays
    ],
)
def test_sanitize(raw, clean):
    assert sanitize(raw) == clean


def test_bidi_controls_in_capsule_output_are_removed(tmp_path):
    """stdout, stderr, the text/plain of a value and an error message: none shows text a
    bidi override reorders (what is displayed is what was written, in order)."""
    out, err = run_shell(
        tmp_path,
        cell(
            "%%capsule\nimport sys\nprint('a\\u202eb\\u2066c\\u2069')\n"
            "print('d\\u200fe\\u061c', file=sys.stderr)\n"
            "class T:\n    def __repr__(self):\n        return 'T\\u202dF\\u2067G'\nT()"
        ),
        cell("%%capsule\nraise ValueError('nice\\u202e lave')"),
    )
    assert "abc\n" in out["stdout"] and "de\n" in out["stderr"]
    assert "Out[1]: TFG" in out["stdout"]
    assert err["error"] == "ValueError" and err["message"] == "nice lave"
    assert not any(ch in out["stdout"] + out["stderr"] for ch in "\u202e\u2066\u200f\u202d")


def test_display_text_plain_from_a_capsule_is_sanitized(tmp_path):
    (rec,) = run_shell(
        tmp_path,
        cell(
            "%%capsule\nclass T:\n    def __repr__(self):\n"
            "        return '\\x1b]0;title\\x07\\x1b[8mT'\nT()"
        ),
    )
    assert "Out[1]: T" in rec["stdout"] and "\x1b" not in rec["stdout"]


# -- crashes by stack depth ---------------------------------------------------------------
@pytest.mark.parametrize(("name", "source"), CRASHERS, ids=[n for n, _ in CRASHERS])
def test_crasher_leaves_the_session_alive(tmp_path, name, source):
    (rec,) = run_shell(tmp_path, cell("%%capsule\n" + source), timeout=300)
    assert rec["error"] in (None, "CellMemoryLimit"), rec
