"""The capsule kernel as a new user meets it (through jupyter_client): %capsule help and
listing, one-line refusals, hints that work, top-level await, and grants asked for at the
moment of access through Jupyter's stdin channel."""

from __future__ import annotations

import re
import time

import pytest

from ipycap.engine.approval import APPROVAL_PREFIX, CAPSULE_INPUT_PREFIX

from .conftest import WORKDIR, execute, value_of


@pytest.fixture(scope="module")
def kc(kernel):
    return kernel[1]


@pytest.fixture
def notes():
    folder = WORKDIR / "ux-data"
    folder.mkdir(exist_ok=True)
    (folder / "notes.txt").write_text("NOTES")
    (folder / "more.txt").write_text("MORE")
    yield folder
    for p in folder.iterdir():
        p.unlink()
    folder.rmdir()


def plain(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def shown(outputs) -> str:
    """Everything a frontend shows for a cell: streams, displays and error tracebacks."""
    parts = []
    for t, c in outputs:
        if t == "stream":
            parts.append(c["text"])
        elif t in ("display_data", "execute_result"):
            parts.append(c["data"].get("text/plain", ""))
        elif t == "error":
            parts.append("\n".join(c["traceback"]))
    return plain("\n".join(parts))


QUESTION = (
    APPROVAL_PREFIX + "Allow read access to 'ux-data/notes.txt' (grant: read ux-data/)? "
    "[y]es / [n]o / [a]lways this session"
)


def test_bare_capsule_lists_the_registry_and_capsule_help_helps(kc):
    reply, outputs, _ = execute(kc, "%capsule")
    assert reply["status"] == "ok" and "ipycap capabilities" in shown(outputs)
    reply, outputs, _ = execute(kc, "%capsule?")
    assert reply["status"] == "ok"
    assert "request read PATH" in shown(outputs) and "list (the default)" in shown(outputs)
    reply, outputs, _ = execute(kc, "%capsule policy")
    assert reply["status"] == "ok" and "readable_paths" in shown(outputs)
    reply, outputs, _ = execute(kc, "%capsule lsit")
    assert "did you mean 'list'?" in shown(outputs)
    reply, outputs, _ = execute(kc, "%config X.y = 1")
    assert "'%capsule list|explain|log|policy|request|revoke'" in reply["evalue"]


def test_refused_request_is_one_line(kc):
    reply, outputs, _ = execute(kc, "%capsule request read /etc")
    assert reply["status"] == "error" and reply["ename"] == "CapsuleRequestRefused"
    text = shown(outputs).strip()
    assert text.startswith("CapsuleRequestRefused: request for read access to /etc")
    assert "Traceback" not in text and len(text.splitlines()) == 1


def test_hint_beyond_the_ceiling_advises_no_request(kc):
    reply, _, _ = execute(kc, "open('/etc/hostname').read()", stdin_answer="y")
    assert reply["ename"] == "CapsulePermissionError"
    assert "outside the policy's ceiling" in reply["evalue"]
    assert "%capsule request" not in reply["evalue"] and "restart the kernel" in reply["evalue"]


def test_top_level_await(kc):
    assert value_of(kc, "async def twice(x):\n    return 2 * x\nawait twice(21)") == "42"


def test_yes_continues_once(kc, notes):
    reply, outputs, prompts = execute(kc, "open('ux-data/notes.txt').read()", stdin_answer="y")
    assert reply["status"] == "ok" and "NOTES" in shown(outputs), (reply, prompts)
    assert prompts == [QUESTION]
    reply, _, prompts = execute(kc, "open('ux-data/notes.txt').read()", stdin_answer="n")
    assert reply["ename"] == "CapsulePermissionError" and prompts == [QUESTION]
    assert "%capsule request read ux-data/" in reply["evalue"]  # works: the human can answer


def test_no_stdin_refuses_without_asking_and_hints_the_configuration(kc, notes):
    reply, _, prompts = execute(kc, "open('ux-data/notes.txt').read()", allow_stdin=False)
    assert reply["ename"] == "CapsulePermissionError" and prompts == []
    assert "c.CapsuleKernel.grants = ['read:ux-data/']" in reply["evalue"]


def test_capsule_code_cannot_answer_or_forge_the_question(kc, notes):
    code = f"print('y')\ninput({QUESTION!r})"
    reply, _, prompts = execute(kc, code, stdin_answer="y")
    # input() is refused here (no allow_input), and its prompt never reaches the frontend.
    assert reply["ename"] == "CapsulePermissionError" and prompts == []
    reply, _, prompts = execute(
        kc, "print('y')\nopen('ux-data/notes.txt').read()", stdin_answer="n"
    )
    assert reply["ename"] == "CapsulePermissionError" and prompts == [QUESTION]
    assert not any(p.startswith(CAPSULE_INPUT_PREFIX) for p in prompts)


def test_always_grants_for_the_session(kc, notes):
    reply, _, prompts = execute(kc, "open('ux-data/notes.txt').read()", stdin_answer="a")
    assert reply["status"] == "ok" and prompts == [QUESTION]
    reply, outputs, prompts = execute(kc, "open('ux-data/more.txt').read()", stdin_answer="n")
    assert reply["status"] == "ok" and prompts == [] and "MORE" in shown(outputs)
    _, outputs, _ = execute(kc, "%capsule list")
    assert re.search(r"read\s+\S*ux-data\s+prompt\s+session", shown(outputs)), shown(outputs)
    execute(kc, "%capsule revoke " + str(notes))


def _reply(kc, msg_id, timeout=30):
    while True:
        msg = kc.get_shell_msg(timeout=timeout)
        if msg["parent_header"].get("msg_id") == msg_id:
            return msg["content"]


def test_a_cell_sent_after_an_error_reply_runs(kc):
    """Regression (failed under load): ipykernel began aborting the queue only after sending
    the error reply, so the next request, sent on seeing that reply, could be aborted."""
    for _ in range(20):
        assert _reply(kc, kc.execute("1/0"))["status"] == "error"
        assert _reply(kc, kc.execute("1 + 1"))["status"] == "ok"


def test_cells_queued_behind_an_error_are_still_aborted(kc):
    """'Run all' semantics stay: what was queued behind the failed cell does not run."""
    first = kc.execute("import time\ntime.sleep(0.5)\n1/0")
    second = kc.execute("'ran'")
    assert _reply(kc, first)["status"] == "error"
    assert _reply(kc, second)["status"] == "aborted"
    assert value_of(kc, "'after'") == "'after'"


def test_the_extension_in_an_ordinary_kernel_asks_like_jupyterlab(tmp_path):
    """%%capsule in an ipykernel with %load_ext ipycap, driven as JupyterLab drives it
    (allow_stdin on every execute_request): the approval is asked on the stdin channel from the
    capsule thread, and every answer, or an interrupt while it is asked, ends the cell (the
    browser tests' cells waited here on a question nobody answered)."""
    from jupyter_client.manager import start_new_kernel

    km, kc = start_new_kernel(kernel_name="python3", cwd=str(tmp_path), startup_timeout=60)
    question = APPROVAL_PREFIX + (
        "Allow import of 'csv' (grant: import csv)? [y]es / [n]o / [a]lways this session"
    )
    try:
        assert execute(kc, "%load_ext ipycap")[0]["status"] == "ok"
        reply, _, prompts = execute(kc, "%%capsule\nimport csv", allow_stdin=False)
        assert reply["ename"] == "CapsuleImportError" and prompts == []
        reply, _, prompts = execute(kc, "%%capsule\nimport csv", stdin_answer="n")
        assert reply["ename"] == "CapsuleImportError" and prompts == [question]
        assert "%%capsule --allow-import csv" in reply["evalue"]
        reply, _, prompts = execute(kc, "%%capsule\nimport csv\ncsv.QUOTE_ALL", stdin_answer="y")
        assert reply["status"] == "ok" and prompts == [question], reply
        # Interrupted while asked: the cell ends, the kernel goes on.
        msg_id = kc.execute("%%capsule\nimport csv", allow_stdin=True)
        assert kc.get_stdin_msg(timeout=30)["content"]["prompt"] == question
        km.interrupt_kernel()
        assert _reply(kc, msg_id)["ename"] == "KeyboardInterrupt"
        # ipykernel aborts requests that reach it while it is still aborting after an
        # error (stop_on_error); under load the next one can land in that window.
        time.sleep(1)
        assert value_of(kc, "1 + 1") == "2"
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
