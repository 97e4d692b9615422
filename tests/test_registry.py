"""The registry, specified: the only source of authority.  Grants within the ceiling get an
id; every grant, use, refusal, revocation and expiry is an event, optionally appended to a
JSON-lines audit log."""

from __future__ import annotations

import json
import os

import pytest

from ipycap import Capsule, CapsulePolicy, CapsulePolicyError, Registry
from ipycap.engine.errors import CapsuleImportError, CapsulePermissionError


@pytest.fixture
def registry(tmp_path):
    policy = CapsulePolicy(audit_log=str(tmp_path / "audit.jsonl"))
    return Registry(policy)


def _log(registry):
    with open(registry.policy.audit_log, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def test_grant_returns_a_numbered_active_capability(tmp_path):
    r = Registry()
    a = r.grant("read", str(tmp_path))
    b = r.grant("import", "csv", scope="cell", granted_by="cell flag")
    assert (a.id, b.id) == ("cap-1", "cap-2")
    assert a.kind == "read" and a.target == os.path.realpath(tmp_path)
    assert b.scope == "cell" and b.granted_by == "cell flag"
    assert a.state == "active" and a.active and a.uses == 0 and a.last_use is None
    assert r.find("import", "csv") == [b]
    assert r.get("cap-2") is b
    assert "cap-1" in repr(a) and "read" in repr(a)


def test_same_grant_twice_is_the_same_capability():
    r = Registry()
    assert r.grant("import", "csv") is r.grant("import", "csv")
    assert r.grant("import", "csv", scope="cell") is not r.grant("import", "csv")


def test_unknown_kind_or_scope_is_refused():
    r = Registry()
    with pytest.raises(ValueError, match="kind"):
        r.grant("root", "x")
    with pytest.raises(ValueError, match="scope"):
        r.grant("import", "csv", scope="forever")


def test_path_grants_are_resolved(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real)
    cap = Registry().grant("read", str(tmp_path / "link" / ".." / "real"))
    assert cap.target == os.path.realpath(real)
    assert cap.covers_path(os.path.join(cap.target, "f.txt"))
    assert not cap.covers_path(cap.target + "-sibling/f.txt")


def test_grant_beyond_the_ceiling_names_the_trait(tmp_path):
    r = Registry(CapsulePolicy(readable_paths=[str(tmp_path / "only")], writable_paths=[]))
    with pytest.raises(CapsulePolicyError) as info:
        r.grant("read", "/etc")
    assert "c.CapsulePolicy.readable_paths" in str(info.value)
    with pytest.raises(CapsulePolicyError, match="writable_paths"):
        r.grant("write", str(tmp_path / "only"))
    assert len(r.refusals()) == 2


def test_denied_path_is_never_grantable(test_home):
    r = Registry()
    with pytest.raises(CapsulePolicyError) as info:
        r.grant("read", os.path.join(test_home, ".ssh", "id_rsa"))
    assert "cannot be granted" in str(info.value) and "denied" in str(info.value)


def test_write_grant_over_a_denied_folder_is_refused(test_home):
    with pytest.raises(CapsulePolicyError):
        Registry().grant("write", test_home)  # would cover ~/.ssh


def test_write_grant_on_sys_path_entry_is_refused(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(CapsulePolicyError, match="sys.path"):
        Registry().grant("write", str(tmp_path))
    Registry().grant("read", str(tmp_path))  # reading it is fine


def test_denied_import_is_never_grantable():
    r = Registry()
    with pytest.raises(CapsulePolicyError) as info:
        r.grant("import", "subprocess")
    assert "never grantable" in str(info.value) and "cannot be granted" in str(info.value)
    assert r.refusals()[-1]["target"] == "subprocess"


def test_use_counts_and_records(registry):
    cap = registry.grant("import", "csv")
    registry.use(cap, "csv.reader")
    registry.use(cap)
    assert cap.uses == 2 and cap.last_use is not None
    uses = [e for e in registry.events if e["event"] == "use"]
    assert len(uses) == 2 and uses[0]["detail"] == "csv.reader" and uses[0]["id"] == cap.id


def test_revoke_by_id_and_by_target(registry):
    a = registry.grant("object", "data")
    b = registry.grant("import", "csv")
    assert registry.revoke("cap-1") == [a]
    assert a.state == "revoked" and not a.active
    assert registry.revoke("csv") == [b]
    assert registry.find("import", "csv") == []
    assert registry.find("import", "csv", active=False) == [b]
    with pytest.raises(KeyError, match="no active capability"):
        registry.revoke("csv")
    a.revoke()  # idempotent: no second event
    assert [e["event"] for e in registry.events].count("revoke") == 2


def test_end_cell_expires_only_cell_scoped_grants(registry):
    cell = registry.grant("import", "csv", scope="cell")
    session = registry.grant("import", "zlib", scope="session")
    registry.end_cell([cell, session])
    assert cell.revoked and not session.revoked
    assert registry.events[-1]["event"] == "expire" and registry.events[-1]["id"] == cell.id


def test_listeners_see_every_event(registry):
    seen = []
    registry.listeners.append(seen.append)
    cap = registry.grant("import", "csv")
    registry.use(cap)
    cap.revoke()
    assert [e["event"] for e in seen] == ["grant", "use", "revoke"]


def test_refusal_event_carries_what_layer_how(registry):
    capsule = Capsule(registry=registry)
    with pytest.raises(CapsuleImportError):
        capsule.run("import csv")
    event = registry.refusals()[-1]
    assert "csv" in event["what"] and event["layer"] == "builtins"
    assert "--allow-import csv" in event["how"]


def test_audit_log_is_json_lines_of_every_event(registry, tmp_path):
    cap = registry.grant("read", str(tmp_path))
    registry.use(cap, str(tmp_path / "x"))
    cap.revoke()
    with pytest.raises(CapsulePolicyError):
        registry.grant("import", "os")
    events = _log(registry)
    assert [e["event"] for e in events] == ["grant", "use", "revoke", "refuse"]
    assert events[0]["id"] == cap.id and events[0]["kind"] == "read"
    assert events[3]["layer"] == "policy" and events[3]["how"] is None
    assert all("time" in e for e in events)


def test_capsule_activity_reaches_the_audit_log(registry, tmp_path):
    (tmp_path / "in.txt").write_text("hello")
    capsule = Capsule(registry=registry, grants=[("read", str(tmp_path))])
    assert capsule.run(f"import math\nopen({str(tmp_path / 'in.txt')!r}).read()") == "hello"
    with pytest.raises(CapsulePermissionError):
        capsule.run("open('/etc/hostname').read()")
    events = _log(registry)
    assert {"grant", "use", "refuse"} <= {e["event"] for e in events}
    assert any(e["event"] == "use" and e.get("target") == "math" for e in events)


def test_events_are_bounded():
    r = Registry(max_events=5)
    cap = r.grant("import", "csv")
    for _ in range(20):
        r.use(cap)
    assert len(r.events) == 5 and cap.uses == 20


def test_confinement_line_says_in_process_only_by_default():
    assert "not applied" in Registry().confinement
