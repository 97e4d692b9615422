"""Regression tests (red team 4, rt-limits): capsule code and capsule authority that outlive
the cell, and questions and output the host produces for it.

Classes: (D) capsule code the host runs after the cell -- finalizers freed with its namespace,
the formatting of its value, the capsule kernel's ``%capsule explain`` -- now runs on a capsule
thread under the cell's limits (``limits.run_after``).  (I) ``--max-output`` now charges the
host's chokepoints: the value's bundle (``engine/after.py``) and display metadata.  (H) a
revoke (or the end of a once-approval) reaches open files: ``open`` returns a revocable handle
(``engine/handles.py``).  (F) the approval question quotes and escapes capsule-derived names.
(E) the kernel matches stdin replies to their request and withdraws abandoned questions
(``kernel/stdin.py``).  (G, kernel) the error reply is sanitised.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from ipycap import Capsule
from ipycap.engine import limits
from ipycap.engine.registry import Registry
from tests.redteam.shell_cells import run_shell, token

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
    try:
        got = capsule.run(
            "try:\n"
            "    open('../notes.txt (grant: read notes.txt)')\n"
            "except OSError:\n"
            "    pass\n"
            f"open({str(diary)!r}).read()"
        )
    except PermissionError:  # a refusal of the diary is the fix
        got = None
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


# -- variants --------------------------------------------------------------------------------
# D: every way capsule code runs as its namespace is freed meets the cell's limits.


def test_generator_finally_after_the_cell_writes_no_raw_escapes(tmp_path):
    tok = token()
    src = (
        "%%capsule\n"
        "def gen():\n"
        "    try:\n"
        "        yield 1\n"
        "    finally:\n"
        f"        print('\\x1b]52;c;{tok}\\x07\\x1b[2J')\n"
        "class Box:\n    pass\n"
        "b = Box(); b.g = gen(); next(b.g); b.me = b\n"
    )
    (rec,) = run_shell(tmp_path, {"source": src})
    assert "\x1b]52" not in rec["stdout"] and "\x1b[2J" not in rec["stdout"], repr(rec["stdout"])


def test_finalizer_output_is_counted_against_the_cells_max_output(tmp_path):
    src = "%%capsule --max-output 1K\n" + finalizer("print('y' * 100000)")
    (rec,) = run_shell(tmp_path, {"source": src})
    assert rec["stdout"].count("y") < 2048, len(rec["stdout"])


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # the stop
def test_release_namespace_stops_a_finalizer_at_the_cells_timeout():
    capsule = Capsule()
    capsule.limits = limits.Limits(timeout=0.5)
    capsule.run(
        "import time\n"
        + finalizer("t = time.monotonic()\nwhile time.monotonic() - t < 5:\n    pass")
    )
    start = time.monotonic()
    limits.release_namespace(capsule)
    assert time.monotonic() - start < 0.5 + limits.STOP_GRACE + 1


# I: the host's chokepoints charge the cell's budget.


def test_a_last_value_within_max_output_is_still_shown(tmp_path):
    (rec,) = run_shell(tmp_path, {"source": "%%capsule --max-output 1K\n'ok' * 3"})
    assert "okokok" in rec["stdout"], rec


def test_host_bundle_continues_the_cells_output_budget():
    from ipycap.engine.after import host_bundle

    capsule = Capsule()
    capsule.limits = limits.Limits(max_output=1000)
    value = capsule.run("print('p' * 900)\n'v' * 300")
    data, metadata = host_bundle(value, capsule.context)
    assert "v" * 300 not in data["text/plain"] and "max-output" in data["text/plain"], data
    small = capsule.run("'w'")  # a new cell: a new budget
    assert host_bundle(small, capsule.context)[0]["text/plain"] == "'w'"


def test_bundle_size_counts_nested_metadata():
    meta = {"image/png": {"alt": "a" * 500, "nested": [{"k": "b" * 500}]}}
    assert limits.bundle_size({"text/plain": "x"}, meta) > 1000


# H: authority derived from a grant ends with it.


def _session(tmp_path, *kinds):
    registry = Registry()
    caps = [registry.grant(kind, str(tmp_path), scope="session") for kind in kinds]
    capsule = Capsule(registry=registry, grants=caps, scope="session")
    capsule.namespace["folder"] = str(tmp_path)
    return registry, caps, capsule


def test_a_read_handle_refuses_after_its_grant_is_revoked_and_closes(tmp_path):
    (tmp_path / "data.txt").write_text("line1\nline2\n")
    registry, (cap,), capsule = _session(tmp_path, "read")
    assert capsule.run("f = open(folder + '/data.txt')\nf.readline()") == "line1\n"
    registry.revoke(cap.id)
    for source in ("f.readline()", "f.read()", "list(f)", "f.seek(0)"):
        with pytest.raises(PermissionError):
            capsule.run(source)
    assert capsule.run("f.closed") is True


def test_a_binary_handle_is_revocable_and_still_a_binary_file(tmp_path):
    (tmp_path / "b.bin").write_bytes(b"\x00\x01\x02")
    registry, (cap,), capsule = _session(tmp_path, "read")
    assert capsule.run(
        "import io\nh = open(folder + '/b.bin', 'rb')\n(isinstance(h, io.BufferedIOBase), h.read(1))"
    ) == (True, b"\x00")
    registry.revoke(cap.id)
    with pytest.raises(PermissionError):
        capsule.run("h.read()")


def test_handles_keep_working_while_granted(tmp_path):
    (tmp_path / "d.json").write_text('{"a": [1, 2]}')
    _, _, capsule = _session(tmp_path, "read", "write")
    assert capsule.run(
        "import json\nwith open(folder + '/d.json') as f:\n    d = json.load(f)\n"
        "with open(folder + '/o.txt', 'w') as g:\n    g.write('x'); g.writelines(['y', 'z'])\n"
        "import io\nt = open(folder + '/o.txt')\n(d, t.read(), isinstance(t, io.TextIOBase))"
    ) == ({"a": [1, 2]}, "xyz", True)


@pytest.mark.parametrize(
    "attr",
    ["buffer", "raw", "detach", "_RevocableFile__file", "__ipycap_file__", "__ipycap_check__"],
)
def test_a_handle_does_not_hand_out_the_raw_file(tmp_path, attr):
    (tmp_path / "data.txt").write_text("x")
    _, _, capsule = _session(tmp_path, "read")
    capsule.run("f = open(folder + '/data.txt')")
    with pytest.raises(AttributeError):
        capsule.run(f"f.{attr}")


def test_a_handle_approved_once_ends_with_its_cell(tmp_path, monkeypatch):
    from ipycap.engine.policy import CapsulePolicy

    monkeypatch.chdir(tmp_path)
    (tmp_path / "once.txt").write_text("once\n")
    registry = Registry(CapsulePolicy(prompt=True))
    registry.approver = lambda prompt: "y"
    capsule = Capsule(registry=registry, scope="session")
    assert capsule.run("f = open('once.txt')\nf.read()") == "once\n"
    with pytest.raises(PermissionError):
        capsule.run("f.seek(0)\nf.read()")


# F: no capsule-derived text can word the question.


@pytest.mark.parametrize(
    "name",
    [
        "../notes.txt (grant: read notes.txt)",
        "../a.txt? [y]es [n]o [a]lways this session (grant: read a.txt)",
        "../" + "n\u2800\u3164" * 40 + "x (grant: read notes.txt)",
        "../\uff08grant: read notes.txt\uff09",
        "../a'.txt' (grant: read notes.txt)",
        "../" + "a" * 500,
    ],
    ids=["parens", "hint", "blanks", "fullwidth", "quote", "long"],
)
def test_the_question_shows_the_real_grant_first_and_the_name_quoted(tmp_path, monkeypatch, name):
    import re

    from ipycap.engine import approval
    from ipycap.engine.policy import CapsulePolicy

    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    registry = Registry(CapsulePolicy(prompt=True))
    asked = []
    registry.approver = lambda prompt: asked.append(prompt) or "n"
    with pytest.raises(PermissionError):
        Capsule(registry=registry).run(f"open({name!r})")
    (prompt,) = asked
    question = re.sub(DIALOG_HINT, "", prompt[len("ipycap-approval: ") :].strip()).strip()
    grant = re.search(DIALOG_GRANT, question).group(1)
    assert grant == f"read {tmp_path}/", prompt
    assert question.count("(grant:") == 1 and question.count("?") == 1, question
    assert len(prompt) <= 2 * approval.SHOWN_MAX + 100  # the name and the grant, each capped
    shown = question[len("Allow read access to ") :]
    assert shown.startswith("'") and shown.index("' (grant: ") > 0, shown


# E: a reply answers the question it names.


def test_matched_stdin_takes_only_the_answer_to_its_own_question():
    import threading

    import zmq
    from jupyter_client.session import Session

    from ipycap.kernel.stdin import MatchedStdin

    ctx = zmq.Context.instance()
    kernel_side, client_side = ctx.socket(zmq.PAIR), ctx.socket(zmq.PAIR)
    port = kernel_side.bind_to_random_port("tcp://127.0.0.1")
    client_side.connect(f"tcp://127.0.0.1:{port}")
    session = Session(key=b"")

    class Kernel:
        stdin_socket = kernel_side
        log = __import__("logging").getLogger("test")

    Kernel.session = session
    stdin = MatchedStdin()
    stdin.abandoned = 1  # an earlier question was withdrawn and may still be answered

    def frontend():
        _, request = session.recv(client_side, mode=0)
        stale = session.msg("input_reply", {"value": "a"})  # no parent: the old question's
        foreign = session.msg("input_reply", {"value": "a"}, parent={"msg_id": "other"})
        mine = session.msg("input_reply", {"value": "n"}, parent=request["header"])
        for msg in (stale, foreign, mine):
            session.send(client_side, msg)

    helper = threading.Thread(target=frontend)
    helper.start()
    try:
        answer = stdin.request(Kernel, "question?", None, {})
    finally:
        helper.join()
        kernel_side.close(linger=0)
        client_side.close(linger=0)
    assert answer == "n" and stdin.abandoned == 0


def test_a_later_collection_on_the_main_thread_writes_only_sanitised_text(capsys):
    import gc

    tok = token()
    capsule = Capsule()
    capsule.run(finalizer(f"print('\\x1b]52;c;{tok}\\x07after', '{tok}')"))
    capsule.namespace.clear()  # the cycle stays: freed by a later collection, here
    gc.collect()
    out = capsys.readouterr().out
    assert out.count(tok) == 2 and "\x1b]52" not in out, repr(out)
    print("\x1b[2Jtrusted")  # trusted text passes as it is
    assert capsys.readouterr().out == "\x1b[2Jtrusted\n"


def test_kernel_approval_request_carries_its_grant_as_fields(rt_kernel):
    name = "notes (grant: read notes.txt).txt"
    msg_id = rt_kernel.execute(f"open({name!r})", allow_stdin=True)
    request = rt_kernel.get_stdin_msg(timeout=30)
    rt_kernel.input("n")
    wait_reply(rt_kernel, msg_id)
    fields = request["content"].get("ipycap_approval")
    assert request["parent_header"]["msg_id"] == msg_id
    assert fields == {"kind": "read", "grant": os.path.realpath(WORKDIR / name)}, request
    assert "\\x28grant" in request["content"]["prompt"]
