"""Every door of the Jupyter protocol, through jupyter_client against a real capsule kernel."""

from __future__ import annotations

import re
import time
import uuid

import pytest

from .conftest import MARKS, OUTSIDE, WORKDIR, execute, marks, value_of

pytestmark = pytest.mark.kernel

SPY = """
calls = []

class Spy:
    def __getattr__(self, name):
        calls.append("getattr " + name)
        return 1

    @property
    def prop(self):
        calls.append("prop")
        return 2

spy = Spy()
"""


@pytest.fixture(scope="module")
def kc(kernel):
    km, kc = kernel
    for p in MARKS.iterdir():
        p.unlink()
    reply, _, _ = execute(kc, SPY)
    assert reply["status"] == "ok", reply
    return kc


def test_cells_share_one_capsule_namespace_and_history_is_true(kc):
    execute(kc, "x = 20")
    assert value_of(kc, "x + 1") == "21"
    reply, outputs, _ = execute(kc, "import os")
    assert reply["status"] == "error" and reply["ename"] == "CapsuleImportError"
    assert "denied_imports" in reply["evalue"]
    msg_id = kc.history(hist_access_type="tail", n=3, raw=True, output=False)
    hist = kc.get_shell_msg(timeout=10)
    assert hist["parent_header"]["msg_id"] == msg_id
    assert [h[2] for h in hist["content"]["history"]][-2:] == ["x + 1", "import os"]


def test_magics_and_shell_escapes_are_refused_with_a_clear_message(kc):
    for code in ("%config CapsulePolicy.readable_paths = ['/']", "!cat /etc/passwd", "%ls"):
        reply, _, _ = execute(kc, code)
        assert reply["status"] == "error", code
        assert reply["ename"] == "CapsuleSyntaxError"
        assert "%capsule list" in reply["evalue"] or "magics" in reply["evalue"]


def test_user_expressions_run_as_capsule_code(kc):
    reply, _, _ = execute(
        kc,
        "y = 5",
        user_expressions={
            "pid": "__import__('os').getpid()",
            "via_import": "[m for m in [1] if __builtins__]",
            "ok": "y * 2",
        },
    )
    exprs = reply["user_expressions"]
    assert exprs["pid"]["status"] == "error"
    assert "data" not in exprs["pid"]
    assert exprs["via_import"]["status"] == "error"
    assert exprs["ok"] == {"status": "ok", "data": {"text/plain": "10"}, "metadata": {}}


def test_inspect_never_runs_properties_or_getattr(kc):
    for code in ("account.balance", "account", "spy.prop", "spy", "spy.missing"):
        kc.inspect(code, len(code))
        reply = kc.get_shell_msg(timeout=10)["content"]
        assert reply["status"] == "ok"
    kc.inspect("account.balance", len("account.balance"), detail_level=1)
    reply = kc.get_shell_msg(timeout=10)["content"]
    assert reply["found"] and "not evaluated" in reply["data"]["text/plain"]
    assert marks() == set(), "inspection ran a protected object's code"
    assert value_of(kc, "calls") == "[]", "inspection ran capsule code"


def test_help_line_in_a_cell_is_static(kc):
    reply, _, _ = execute(kc, "spy.prop?")
    assert reply["status"] == "ok"
    [page] = reply["payload"]
    assert page["source"] == "page" and "property" in page["data"]["text/plain"]
    assert value_of(kc, "calls") == "[]"


def test_completion_never_calls_getattr(kc):
    for code in ("spy.", "spy.pr", "spy.prop.", "account.", "account.bal"):
        kc.complete(code, len(code))
        reply = kc.get_shell_msg(timeout=10)["content"]
        assert reply["status"] == "ok"
        if code == "spy.pr":
            assert reply["matches"] == ["spy.prop"]
        if code == "account.bal":
            assert reply["matches"] == ["account.balance"]
    assert marks() == set()
    assert value_of(kc, "calls") == "[]"


def test_debugger_refused_and_not_advertised(kc):
    kc.kernel_info()
    info = kc.get_shell_msg(timeout=10)["content"]
    assert info["debugger"] is False
    assert "debugger" not in info["supported_features"]
    assert "kernel subshells" not in info["supported_features"]
    msg = kc.session.msg(
        "debug_request",
        {"type": "request", "seq": 1, "command": "initialize", "arguments": {}},
    )
    kc.control_channel.send(msg)
    reply = kc.control_channel.get_msg(timeout=10)
    assert reply["msg_type"] == "debug_reply"
    assert reply["content"]["success"] is False
    assert "disabled" in reply["content"]["message"]


def test_subshells_refused(kc):
    msg = kc.session.msg("create_subshell_request", {})
    kc.control_channel.send(msg)
    reply = kc.control_channel.get_msg(timeout=10)
    assert reply["msg_type"] == "create_subshell_reply"
    assert reply["content"]["status"] == "error"


def _comm_open(kc, target):
    comm_id = uuid.uuid4().hex
    msg = kc.session.msg("comm_open", {"comm_id": comm_id, "target_name": target, "data": {}})
    kc.shell_channel.send(msg)
    closed = False
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        m = kc.get_iopub_msg(timeout=10)
        if m["parent_header"].get("msg_id") != msg["header"]["msg_id"]:
            continue
        if m["msg_type"] == "comm_close" and m["content"]["comm_id"] == comm_id:
            closed = True
        if m["msg_type"] == "status" and m["content"]["execution_state"] == "idle":
            break
    return closed


def test_frontend_comm_open_refused_unless_granted(kc):
    assert _comm_open(kc, "probe") is True
    assert "comm-opened-probe" not in marks()
    assert _comm_open(kc, "granted-probe") is False  # granted by c.CapsuleKernel.comm_targets
    assert "comm-opened-granted-probe" in marks()
    (MARKS / "comm-opened-granted-probe").unlink()


def test_capsule_request_through_stdin(kc):
    data = WORKDIR / "data"
    data.mkdir(exist_ok=True)
    (data / "yes.txt").write_text("granted text")
    other = WORKDIR / "other"
    other.mkdir(exist_ok=True)
    (other / "no.txt").write_text("refused text")

    reply, outputs, prompts = execute(kc, f"%capsule request read {data}", stdin_answer="y")
    assert reply["status"] == "ok", reply
    assert len(prompts) == 1 and "Allow? [y/N]" in prompts[0]
    assert "Cell [" in prompts[0] and str(data) in prompts[0]
    assert value_of(kc, f"open({str(data / 'yes.txt')!r}).read()") == "'granted text'"

    reply, _, prompts = execute(kc, f"%capsule request read {other}", stdin_answer="n")
    assert reply["status"] == "error" and "answered 'n'" in reply["evalue"]
    reply, _, _ = execute(kc, f"open({str(other / 'no.txt')!r}).read()")
    assert reply["status"] == "error" and reply["ename"] == "CapsulePermissionError"

    reply, _, prompts = execute(kc, f"%capsule request read {other}", allow_stdin=False)
    assert reply["status"] == "error" and "no stdin" in reply["evalue"] and not prompts

    reply, _, prompts = execute(kc, f"%capsule request read {OUTSIDE}", stdin_answer="y")
    assert reply["status"] == "error" and not prompts
    assert "configuration must change" in reply["evalue"]


def test_input_refused_without_grant(kc):
    reply, _, prompts = execute(kc, "input('password: ')", stdin_answer="hunter2")
    assert reply["status"] == "error" and reply["ename"] == "CapsulePermissionError"
    assert prompts == []


def test_registry_view_names_os_confinement(kc):
    reply, outputs, _ = execute(kc, "%capsule list")
    text = "".join(c["data"]["text/plain"] for t, c in outputs if t == "display_data")
    assert "OS confinement: off" in text
    assert "comm_open from the frontend for target 'probe'" in text


def test_capsule_output_is_filtered(kc):
    code = "from IPython.display import display, HTML\ndisplay(HTML('<script>alert(1)</script>'))"
    reply, outputs, _ = execute(kc, code)
    assert reply["status"] == "ok"
    [(kind, content)] = outputs
    # text/html is published by default, sanitised: the script is gone.
    assert kind == "display_data" and set(content["data"]) == {"text/plain", "text/html"}
    assert "script" not in content["data"]["text/html"]


def test_runaway_cell_is_interrupted_and_kernel_stays_usable(kernel, kc):
    km, _ = kernel
    msg_id = kc.execute("n = 0\nwhile True:\n    n += 1")
    time.sleep(1.0)
    km.interrupt_kernel()
    reply = kc.get_shell_msg(timeout=20)
    assert reply["parent_header"]["msg_id"] == msg_id
    assert reply["content"]["status"] == "error"
    assert reply["content"]["ename"] == "KeyboardInterrupt"
    # stopped inside the loop, and the interrupted cell bound nothing (its rollback)
    shown = re.sub(r"\x1b\[[0-9;]*m", "", "".join(reply["content"]["traceback"]))
    assert "n += 1" in shown
    assert value_of(kc, "'n' in globals()") == "False"
