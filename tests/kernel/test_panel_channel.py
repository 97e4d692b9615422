"""The registry's channel to the Capabilities panel, through jupyter_client: every execute_reply
carries the registry (metadata key "ipycap"), a cell cannot forge or hide entries, and the only
request the channel serves is revoking one capability by id (narrowing only)."""

from __future__ import annotations

import time
from queue import Empty

import pytest
from jupyter_client.manager import start_new_kernel

from .conftest import WORKDIR, start_kernel

pytestmark = pytest.mark.kernel


def run(kc, code: str, request=None, *, silent: bool = False, timeout: float = 30):
    """Send an execute_request (with ``request`` as its ipycap metadata); returns
    (the execute_reply message, [iopub messages of the request])."""
    metadata = {} if request is None else {"ipycap": request}
    content = {
        "code": code,
        "silent": silent,
        "store_history": not silent,
        "user_expressions": {},
        "allow_stdin": False,
        "stop_on_error": False,
    }
    msg = kc.session.msg("execute_request", content, metadata=metadata)
    kc.shell_channel.send(msg)
    msg_id = msg["header"]["msg_id"]
    deadline = time.monotonic() + timeout
    while True:
        if time.monotonic() > deadline:
            raise TimeoutError(f"no reply to {code!r}")
        try:
            reply = kc.get_shell_msg(timeout=0.1)
        except Empty:
            continue
        if reply["parent_header"].get("msg_id") == msg_id:
            break
    iopub = []
    while True:
        m = kc.get_iopub_msg(timeout=timeout)
        if m["parent_header"].get("msg_id") != msg_id:
            continue
        iopub.append(m)
        if m["msg_type"] == "status" and m["content"]["execution_state"] == "idle":
            break
    return reply, iopub


def snapshot(reply) -> dict:
    snap = reply["metadata"]["ipycap"]
    assert snap["protocol"] == 1 and "error" not in snap, snap
    return snap


def grants(snap, **match) -> list[dict]:
    return [g for g in snap["grants"] if all(g[k] == v for k, v in match.items())]


@pytest.fixture(scope="module")
def kc(kernelspecs):
    km, kc = start_kernel(kernelspecs["plain"])
    yield kc
    kc.stop_channels()
    km.shutdown_kernel(now=True)


def test_every_reply_carries_the_registry(kc):
    reply, _ = run(kc, "", silent=True)
    snap = snapshot(reply)
    assert snap["mode"] == "kernel"
    # The kernelspec's config grant is there from the start.
    (comm,) = grants(snap, kind="comm", target="granted-probe")
    assert comm["granted_by"] == "config" and comm["state"] == "active"
    reply, _ = run(kc, "import json\njson.dumps([1])")
    (imp,) = grants(snapshot(reply), kind="import", target="json")
    assert imp["granted_by"] == "default" and imp["uses"] >= 1 and imp["last_use"] > 0
    secret = WORKDIR / "panel-secret.txt"
    secret.write_text("no")
    before = snapshot(reply)["refused_total"]
    reply, _ = run(kc, f"open({str(secret)!r}).read()")
    assert reply["content"]["status"] == "error"
    snap = snapshot(reply)
    assert snap["refused_total"] == before + 1
    last = snap["refusals"][-1]
    assert last["kind"] == "read" and last["target"] == str(secret)
    assert last["layer"] == "builtins" and "was not granted" in last["what"]
    # The panel shows exactly the grant the refusal named (no stdin here: the configuration).
    assert last["how"] and f"To grant it: {last['how']}." in reply["content"]["evalue"]
    assert "c.CapsuleKernel.grants" in last["how"] and "panel-secret.txt" in last["how"]


FORGE = """
import json
from IPython.display import display
fake = {"protocol": 1, "mode": "kernel", "seq": 0, "refused_total": 0, "refusals": [],
        "grants": [{"id": "cap-999", "kind": "read", "target": "/", "granted_by": "config",
                    "scope": "session", "uses": 0, "last_use": None, "state": "active"}]}
print(json.dumps({"ipycap": fake}))
display({"text/plain": "forged"}, metadata={"ipycap": fake}, raw=True)
try:
    open("/etc/hostname")
except Exception:
    pass
"""


def test_a_cell_cannot_forge_or_hide_entries(kc):
    reply, _ = run(kc, "", silent=True)
    before = snapshot(reply)
    reply, iopub = run(kc, FORGE)
    assert reply["content"]["status"] == "ok", reply["content"]
    snap = snapshot(reply)
    # Not forged: the cell's own output is on iopub, never in the reply; the reply has no
    # cap-999 and no read grant on '/'.
    assert not grants(snap, id="cap-999") and not grants(snap, kind="read", target="/")
    sent = [m["msg_type"] for m in iopub if "cap-999" in str(m["content"])]
    assert "stream" in sent  # the attempts did go out
    assert [m for m in iopub if m["msg_type"] == "display_data"]
    assert all(m["msg_type"] != "execute_reply" for m in iopub)
    # Not hidden: the refusal the cell caught is recorded all the same.
    assert snap["refused_total"] == before["refused_total"] + 1
    assert snap["refusals"][-1]["target"] == "/etc/hostname"
    # The cell's failure does not suppress the channel either.
    reply, _ = run(kc, "raise ValueError('the panel must still update')")
    assert reply["content"]["status"] == "error"
    assert snapshot(reply)["seq"] >= snap["seq"]


def test_revoking_from_the_panel_narrows_and_nothing_else(kc):
    reply, _ = run(kc, "import statistics")
    (cap,) = grants(snapshot(reply), kind="import", target="statistics", state="active")
    reply, iopub = run(kc, "", {"revoke": cap["id"]}, silent=True)
    snap = snapshot(reply)
    assert snap["result"] == {
        "revoke": cap["id"],
        "ok": True,
        "message": f"revoked {cap['id']} (import statistics)",
    }
    assert grants(snap, id=cap["id"])[0]["state"] == "revoked"
    assert not [m for m in iopub if m["msg_type"] == "execute_input"]  # silent: no cell
    reply, _ = run(kc, "import statistics")
    assert reply["content"]["status"] == "error"
    assert "revoked in this session" in reply["content"]["evalue"]
    # Every other request is refused, and changes nothing.
    for request in (
        {"revoke": cap["id"]},  # already revoked: stays revoked
        {"grant": "read:/"},
        {"revoke": cap["id"], "grant": "read:/"},
        {"revoke": "granted-probe"},  # targets are not ids
        {"revoke": ["cap-1"]},
        {"revoke": "cap-99999"},
    ):
        before = snapshot(run(kc, "", silent=True)[0])
        reply, _ = run(kc, "", request, silent=True)
        snap = snapshot(reply)
        assert snap["result"]["ok"] is False, request
        assert snap["grants"] == before["grants"], request
    assert (
        "already revoked"
        in snapshot(run(kc, "", {"revoke": cap["id"]}, silent=True)[0])["result"]["message"]
    )


def test_the_ordinary_kernel_serves_the_extension_registry(tmp_path):
    km, kc = start_new_kernel(kernel_name="python3", cwd=str(tmp_path), startup_timeout=60)
    try:
        reply, _ = run(kc, "1", silent=True)
        assert "ipycap" not in reply["metadata"]  # not loaded: no channel
        reply, _ = run(kc, "%load_ext ipycap")
        assert snapshot(reply)["mode"] == "extension"
        reply, _ = run(kc, "%%capsule --allow-import base64\nimport base64\nimport csv")
        snap = snapshot(reply)
        (cell,) = grants(snap, kind="import", target="base64")
        assert cell["scope"] == "cell" and cell["granted_by"] == "%%capsule --allow-import"
        assert cell["state"] == "revoked"  # cell grants end with their cell
        assert snap["refusals"][-1]["target"] == "csv"
        assert snap["refusals"][-1]["how"] == "%%capsule --allow-import csv"
        run(kc, "%capsule grant import csv")
        reply, _ = run(kc, "", silent=True)
        (csv,) = grants(snapshot(reply), kind="import", target="csv", state="active")
        reply, _ = run(kc, "", {"revoke": csv["id"]}, silent=True)
        assert snapshot(reply)["result"]["ok"] is True
        reply, _ = run(kc, "%%capsule\nimport csv")
        assert reply["content"]["status"] == "error"
        reply, _ = run(kc, "%unload_ext ipycap")
        reply, _ = run(kc, "1", silent=True)
        assert "ipycap" not in reply["metadata"]
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
