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
    src = "%%capsule\n" + finalizer(f"print('\\x1b]52;c;{tok}\\x07\\x1b]0;{tok}\\x07\\x1b[2J')")
    (rec,) = run_shell(tmp_path, {"source": src})
    # Canary: an OSC 52 clipboard write, a title and a screen clear reach the terminal
    # (inside the cell the same print is sanitised: see test_limits).
    assert "\x1b]52" not in rec["stdout"] and tok not in rec["stdout"], repr(rec["stdout"])


# Plain Python: the same print is an OSC 52 clipboard write in any xterm-compatible terminal.
PLAIN_FINALIZER = "print('\\x1b]52;c;' + 'CANARY' + '\\x07')"


# -- 3. a revoke does not reach authority already derived from the grant -----------------------
# Class: what a grant produced that is not a proxy -- an open file (the capsule's open returns
# the raw io object), a module view (one per module, process-wide) -- is not tied to the
# capability, so `%capsule revoke` (and the end of a once/cell-scoped approval) leaves it
# usable.  The capsule kernel keeps the capsule namespace across cells, so the handle lives on.


def test_open_file_keeps_writing_after_its_grant_is_revoked(tmp_path):
    granted = tmp_path / "granted"
    granted.mkdir()
    target = granted / "log.txt"
    tok = token()
    registry = Registry()
    cap = registry.grant("write", str(granted), scope="session")
    # The capsule kernel's session capsule: one namespace for every cell.
    capsule = Capsule(registry=registry, grants=[cap], scope="session")
    capsule.run(f"g = open({str(target)!r}, 'w')")
    registry.revoke(cap.id)  # the human: %capsule revoke cap-1
    assert cap.revoked
    try:
        capsule.run(f"g.write({tok!r}); g.flush()")
    except PermissionError:
        pass
    # Canary: the write lands after the revocation.
    assert tok not in target.read_text()


from tests.kernel.conftest import WORKDIR, execute, kernelspecs, start_kernel  # noqa: E402,F401


def test_kernel_write_handle_outlives_a_revoke(kernelspecs):  # noqa: F811 - the fixture
    tok = token()
    name = "rt-limits-" + tok + ".txt"
    km, kc = start_kernel(kernelspecs["plain"])
    try:
        # The human answers [a]lways to one write access (a [y]es, once, ends at once and
        # leaves the handle just the same) ...
        reply, _, prompts = execute(kc, f"g = open({name!r}, 'w')", stdin_answer="a")
        assert reply["status"] == "ok", reply
        assert prompts and prompts[0].startswith("ipycap-approval: "), prompts
        # ... then revokes it.
        reply, outputs, _ = execute(kc, f"%capsule revoke {os.path.realpath(WORKDIR / name)}")
        assert reply["status"] == "ok" and "revoked cap-" in str(outputs), (reply, outputs)
        # Later cells keep writing through the handle.
        reply, _, _ = execute(kc, f"g.write({tok!r}); g.flush()", stdin_answer="n")
        written = (WORKDIR / name).read_text()
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
        (WORKDIR / name).unlink(missing_ok=True)
    # Canary: the token is in the file, written after the grant was revoked.
    assert tok not in written, reply


# -- 4. the approval question can be worded by the capsule ------------------------------------
# Class: capsule-chosen *printable* text (a file name) inside the question the human answers.
# ``approval.shown`` escapes only non-printable text, so a name can carry the question's own
# structure: "(grant: read notes.txt)" before the real "(grant: read <folder>/)".  The
# JupyterLab dialog takes the grant from the first "(grant: ...)" and shows that; text
# prompts show it first.  Answering [a]lways grants the whole parent folder for the session.
# Variants: "?" / "[y]es" inside the name to end the question early, padding with printable
# blanks (U+2800, U+3164) to push the real grant off the line, lookalike folder names.

DIALOG_HINT = r"\s*\[[^\]]*\][^?]*$"  # labextension/src/model.ts parseApprovalPrompt
DIALOG_GRANT = r"\(grant: ([^()]*)\)"


def test_approval_question_names_a_grant_the_capsule_wrote(tmp_path, monkeypatch):
    import re

    from ipycap.engine.policy import CapsulePolicy

    home = tmp_path / "home"
    work = home / "work"
    work.mkdir(parents=True)
    diary = home / "diary.txt"
    tok = token()
    diary.write_text(tok)
    monkeypatch.chdir(work)
    policy = CapsulePolicy(prompt=True)
    registry = Registry(policy)
    asked = []

    def human(prompt):
        asked.append(prompt)
        question = re.sub(DIALOG_HINT, "", prompt[len("ipycap-approval: ") :].strip()).strip()
        shown = re.search(DIALOG_GRANT, question).group(1)
        # The human approves "always" only what is shown as the grant: one named file.
        return "a" if shown == "read notes.txt" else "n"

    registry.approver = human
    capsule = Capsule(registry=registry, scope="session")
    got = capsule.run(
        "try:\n"
        "    open('../notes.txt (grant: read notes.txt)')\n"
        "except OSError:\n"
        "    pass\n"
        f"open({str(diary)!r}).read()"
    )
    # Canary: the diary next to the 'notes.txt' the human approved is read.
    assert got != tok, (asked, [(c.kind, c.target) for c in registry.capabilities])


# Plain Python: the question is the string the human reads.
PLAIN_APPROVAL = (
    "print('Allow read access to /home/u/notes.txt (grant: read notes.txt) "
    "(grant: read /home/u/)? [y]es / [n]o / [a]lways this session')"
)


# -- 6. --max-output counts only what the capsule thread writes or publishes as data ----------
# Class: output the host produces for the capsule after (or beside) the count: the cell's
# last value (formatted in the capsule, shown by the displayhook on the main thread), display
# metadata (charge_display sums only the data's str/bytes), the traceback of a capsule
# exception, and finalizer output (section 1).  All reach the notebook/terminal uncounted.


def test_last_value_is_shown_whole_past_max_output(tmp_path):
    (rec,) = run_shell(tmp_path, {"source": "%%capsule --max-output 1K\n'x' * 200000"})
    shown = rec["stdout"]  # what the terminal shows (Out[1]: 'xxx...')
    # Canary: 200,000 characters shown by a cell limited to 1K of output.
    assert shown.count("x") < 2048, (len(shown), shown[:60])


def test_display_metadata_is_not_counted_against_max_output(tmp_path):
    tok = token()
    src = (
        "%%capsule --max-output 1K\n"
        "from IPython.display import display\n"
        "png = b'\\x89PNG\\r\\n\\x1a\\n' + b'0' * 10\n"
        f"display({{'image/png': png}}, raw=True, metadata={{'image/png': {{'alt': '{tok}' * 20000}}}})\n"
    )
    code = (
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "import json\n"
        "sh = InteractiveShell.instance()\n"
        "sh.run_line_magic('load_ext', 'ipycap')\n"
        "from IPython.utils.capture import capture_output\n"
        f"with capture_output() as cap:\n    sh.run_cell({src!r})\n"
        "print(json.dumps(sum(len(json.dumps(o.metadata)) for o in cap.outputs)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    published = int(out.stdout.strip().splitlines()[-1])
    # Canary: ~360K characters of metadata published by a cell limited to 1K of output.
    assert published < 2048, published


# -- 8. the capsule kernel's `%capsule explain` runs the cell's own methods as trusted code ----
# Class: section 1's, reached on purpose: the explorer's "raw" column is trusted code calling
# repr/dir/getattr/==/hash/iter on the cell's own object, on the main thread, outside
# run_limited -- no timeout, no memory limit, no output count, no sanitiser -- and the view it
# displays carries the object's repr unsanitised.  Variant: the kernel's error reply carries
# a capsule exception's message unsanitised (section 2) to every frontend.


@pytest.fixture(scope="module")
def rt_kernel(kernelspecs):  # noqa: F811 - the fixture
    km, kc = start_kernel(kernelspecs["plain"])
    yield kc
    kc.stop_channels()
    km.shutdown_kernel(now=True)


def test_kernel_explain_runs_a_cell_object_repr_with_raw_terminal_output(rt_kernel):
    tok = token()
    cell = (
        "class Evil:\n"
        "    def __repr__(self):\n"
        f"        print('\\x1b]52;c;{tok}\\x07')\n"
        f"        return '\\x1b]0;{tok}\\x07'\n"
        "x = Evil()\n"
        "%capsule explain x\n"
    )
    reply, outputs, _ = execute(rt_kernel, cell)
    sent = json.dumps(outputs)
    # Canary: the clipboard write (printed by the capsule's __repr__, run by the trusted
    # explorer) and the title sequence (in the view) reach the frontend raw.
    assert "\\u001b]52;c;" + tok not in sent and "\\u001b]0;" + tok not in sent, sent[:600]


def test_kernel_error_reply_carries_a_capsule_message_raw(rt_kernel):
    tok = token()
    reply, outputs, _ = execute(rt_kernel, f"raise ValueError(chr(27) + ']52;c;{tok}' + chr(7))")
    sent = json.dumps([reply, outputs])
    # Canary: an OSC 52 clipboard write in the error reply and the IOPub error message.
    assert "\\u001b]52;c;" + tok not in sent, sent[:600]


# -- 11. an approval takes whatever input_reply comes next --------------------------------------
# Class: the kernel's approval is ipykernel's raw_input: the first input_reply on the stdin
# socket after the request is the answer, whichever prompt the human was answering (replies
# are not matched to their input_request).  A cell that times out while its question is open
# leaves that prompt on the page; the next cell (queued behind it, the same author's) asks
# for more, and the human's late answer to the first, harmless question grants the second.
# Variants: a capsule input() prompt left open by a timeout; an interrupt during a prompt.


def test_kernel_late_answer_to_an_abandoned_prompt_grants_the_next_question(kernelspecs):  # noqa: F811 - the fixture

    tok = token()
    secret_dir = WORKDIR / ("rt-limits-" + os.urandom(4).hex())
    secret_dir.mkdir()
    (secret_dir / "keys.txt").write_text(tok)
    km, kc = start_kernel_with(kernelspecs["plain"], ["--CapsulePolicy.timeout=2"])
    try:
        # Cell A: a harmless question, then the cell runs out of time with it still open.
        a = kc.execute("open('notes.txt')\n", allow_stdin=True)
        first = kc.get_stdin_msg(timeout=30)["content"]["prompt"]
        timed_out = wait_reply(kc, a)
        # Cell B (queued by "Run all"): asks for the secret folder.
        b = kc.execute(f"open({str(secret_dir / 'keys.txt')!r}).read()\n", allow_stdin=True)
        second = kc.get_stdin_msg(timeout=30)["content"]["prompt"]
        # The human answers the first box they saw ("notes.txt"), late: [a]lways.
        kc.input("a")
        reply, outputs = wait_reply(kc, b, outputs=True)
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
        for p in secret_dir.iterdir():
            p.unlink()
        secret_dir.rmdir()
    assert timed_out.get("ename") == "CellTimeout", timed_out
    assert "notes.txt" in first and "keys.txt" in second, (first, second)
    results = [c["data"]["text/plain"] for t, c in outputs if t == "execute_result"]
    # Canary: cell B read the secret on an answer given to cell A's question.
    assert not any(tok in r for r in results), (reply, results)


def start_kernel_with(name, extra):
    from jupyter_client.manager import start_new_kernel

    return start_new_kernel(
        kernel_name=name, cwd=str(WORKDIR), startup_timeout=60, extra_arguments=extra
    )


def wait_reply(kc, msg_id, outputs=False, timeout=60):
    from queue import Empty

    deadline = time.monotonic() + timeout
    reply = None
    while reply is None:
        assert time.monotonic() < deadline, "no reply"
        try:
            msg = kc.get_shell_msg(timeout=0.1)
        except Empty:
            continue
        if msg["parent_header"].get("msg_id") == msg_id:
            reply = msg["content"]
    seen = []
    while True:
        msg = kc.get_iopub_msg(timeout=timeout)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            break
        seen.append((msg["msg_type"], msg["content"]))
    return (reply, seen) if outputs else reply
