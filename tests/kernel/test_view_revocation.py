"""Revoked imports in the capsule kernel (through jupyter_client): the cells share one
persistent namespace, so a module view or a function taken from it in one cell is still
there in the next; it answers only while the capsule may import the module."""

from __future__ import annotations

import pytest

from .conftest import execute, value_of


@pytest.fixture(scope="module")
def kc(kernel):
    return kernel[1]


def test_a_once_import_is_refused_in_the_next_cell(kc):
    reply, _, prompts = execute(
        kc, "import csv\nreader = csv.reader\nlist(reader(['a,b']))", stdin_answer="y"
    )
    assert reply["status"] == "ok" and len(prompts) == 1
    reply, _, prompts = execute(kc, "list(reader(['c,d']))", allow_stdin=False)
    assert reply["ename"] == "CapsuleRevokedError" and prompts == []
    assert "was for one cell, which has ended" in reply["evalue"]
    reply, _, _ = execute(kc, "csv.writer", allow_stdin=False)
    assert reply["ename"] == "CapsuleRevokedError"


def test_a_revoked_default_import_stops_what_the_namespace_holds(kc):
    assert value_of(kc, "import json\ndumps = json.dumps\ndumps([1])") == "'[1]'"
    reply, _, _ = execute(kc, "%capsule revoke json")
    assert reply["status"] == "ok"
    for code in ("dumps([2])", "json.loads('2')", "sorted(['2', '1'], key=json.loads)"):
        reply, _, _ = execute(kc, code, allow_stdin=False)
        assert reply["ename"] == "CapsuleRevokedError", (code, reply)
        assert "('json') was revoked" in reply["evalue"]
    assert value_of(kc, "import math\nmath.sqrt(4.0)") == "2.0"  # other grants untouched
