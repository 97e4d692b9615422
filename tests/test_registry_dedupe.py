"""Identical grants are one capability: a session does not pile up records as it ages.

A cell grant made again by a later cell (the same ``--allow-read`` flag on every run) continues
the earlier record under its id, with its uses counted per cell, while the earlier capability
itself stays expired with every proxy it produced; a revocation stays final."""

from __future__ import annotations

import json

import pytest

from ipycap import CapsulePolicy, Registry
from ipycap.engine.errors import CapsuleRevokedError
from ipycap.engine.membrane import wrap


@pytest.fixture
def registry(tmp_path):
    policy = CapsulePolicy(readable_paths=[str(tmp_path)], audit_log=str(tmp_path / "audit.jsonl"))
    return Registry(policy)


def _cell(registry, label, path, uses):
    """One cell holding a cell-scoped read grant of ``path`` and using it ``uses`` times."""
    registry.cell = label
    cap = registry.grant("read", path, scope="cell", granted_by="%%capsule --allow-read")
    for _ in range(uses):
        registry.use(cap, path)
    registry.end_cell([cap])
    return cap


def test_the_same_cell_grant_in_many_cells_is_one_record_with_uses_per_cell(registry, tmp_path):
    path = str(tmp_path)
    first = _cell(registry, "In[1]", path, 1)
    second = _cell(registry, "In[2]", path, 2)
    for n in range(3, 50):
        _cell(registry, f"In[{n}]", path, 1)
    (record,) = registry.capabilities
    assert record.id == first.id == second.id and registry.get(first.id) is record
    assert record.uses == 50 and record.cells == 49
    assert record.uses_by_cell["In[1]"] == 1 and record.uses_by_cell["In[2]"] == 2
    assert len(record.uses_by_cell) == 49
    # Every use is still an event and an audit-log line naming its cell.
    log = [json.loads(line) for line in open(registry.policy.audit_log, encoding="utf-8")]
    uses = [(e["id"], e["cell"]) for e in log if e["event"] == "use"]
    assert uses[:3] == [(first.id, "In[1]"), (first.id, "In[2]"), (first.id, "In[2]")]
    assert len(uses) == 50
    assert [e["cell"] for e in log if e["event"] == "expire"][:2] == ["In[1]", "In[2]"]


def test_an_earlier_cells_capability_stays_expired_with_its_proxies(registry, tmp_path):
    registry.cell = "In[1]"
    cap1 = registry.grant("read", str(tmp_path), scope="cell", granted_by="flag")
    proxy = wrap([1, 2, 3], cap1)
    assert len(proxy) == 3
    registry.end_cell([cap1])
    registry.cell = "In[2]"
    cap2 = registry.grant("read", str(tmp_path), scope="cell", granted_by="flag")
    assert cap2.id == cap1.id and cap2 is not cap1
    assert cap2.active and cap1.revoked and cap1.expired
    with pytest.raises(CapsuleRevokedError):
        len(proxy)  # made in cell 1: the same grant in cell 2 does not bring it back
    registry.end_cell([cap2])
    assert not cap2.active


def test_identical_active_grants_are_one_capability_counting_every_use(registry, tmp_path):
    registry.cell = "In[1]"
    a = registry.grant("read", str(tmp_path), granted_by="%capsule grant")
    registry.use(a, "x")
    registry.cell = "In[2]"
    b = registry.grant("read", str(tmp_path), granted_by="config")
    registry.use(b, "y")
    assert a is b and a.uses == 2 and a.uses_by_cell == {"In[1]": 1, "In[2]": 1}
    assert len(registry.find("read")) == 1


def test_revoking_a_deduplicated_grant_by_id_or_name_is_final(registry, tmp_path):
    path = str(tmp_path)
    _cell(registry, "In[1]", path, 1)
    registry.cell = "In[2]"
    cap = registry.grant("read", path, scope="cell", granted_by="%%capsule --allow-read")
    assert registry.revoke(cap.id) == [cap]
    assert cap.state == "revoked"
    registry.end_cell([cap])  # the cell ends after its grant was revoked: no second event
    with pytest.raises(KeyError, match="no active capability"):
        registry.revoke(cap.id)
    # A revoked record is never continued: the next identical cell grant is a new capability.
    fresh = _cell(registry, "In[3]", path, 1)
    assert fresh.id != cap.id and registry.get(cap.id) is cap
    assert [c.id for c in registry.capabilities] == [cap.id, fresh.id]
    # By name (the target): the session grant and the running cell's grant both end.
    session = registry.grant("read", path, granted_by="%capsule grant")
    registry.cell = "In[4]"
    running = registry.grant("read", path, scope="cell", granted_by="%%capsule --allow-read")
    assert running.id == fresh.id
    assert set(registry.revoke(path)) == {session, running}
    assert not registry.find("read")


def test_an_expired_grant_cannot_be_revoked_and_says_so(registry, tmp_path):
    cap = _cell(registry, "In[1]", str(tmp_path), 0)
    with pytest.raises(KeyError, match="no active capability"):
        registry.revoke(cap.id)
