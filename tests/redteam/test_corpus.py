"""The red-team corpus: every payload is refused by a capsule (its canary is not reached) and
reaches its canary as plain Python with the same objects, so each one is a real attack."""

from __future__ import annotations

import os
from collections import Counter

import pytest

from .harness import make_env, reached, run_capsule, run_plain
from .payloads import PAYLOADS, ROWS

IDS = [p.name for p in PAYLOADS]


@pytest.fixture
def env(tmp_path, canary):
    e = make_env(tmp_path, canary)
    yield e
    os.close(e.fd)


@pytest.mark.parametrize("payload", PAYLOADS, ids=IDS)
def test_capsule_refuses(payload, env):
    outcome = run_capsule(payload, env)
    assert not reached(outcome, env), (
        f"ESCAPE: {payload.name} ({payload.row}) reached its canary; "
        f"loot={outcome.loot!r:.200} error={outcome.error!r:.200}"
    )


@pytest.mark.parametrize("payload", PAYLOADS, ids=IDS)
def test_plain_python_reaches(payload, env):
    outcome = run_plain(payload, env)
    assert reached(outcome, env), (
        f"{payload.name} is not a real attack: as plain Python it did not reach its canary "
        f"(error={outcome.error!r:.300})"
    )


def test_every_escapes_row_has_three_payloads():
    counts = Counter(p.row for p in PAYLOADS)
    thin = {row: counts.get(row, 0) for row in ROWS if counts.get(row, 0) < 3}
    assert not thin, f"ESCAPES.md rows with fewer than 3 payloads: {thin}"
    assert len(PAYLOADS) >= 120


def _escape_rows(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    rows = [line.split("|")[1].strip() for line in text.splitlines() if line.startswith("| ")]
    return sorted(r for r in rows if r and r != "class" and not r.startswith("---"))


def test_rows_match_escapes_md():
    """The corpus' row names are the rows of docs/ESCAPES.md (the project's copy of the
    escape classes), and that copy keeps every row of the shared original where it is
    present (it adds the classes our own red teams found; the original is not ours)."""
    here = os.path.dirname(__file__)
    ours = _escape_rows(os.path.join(here, "..", "..", "docs", "ESCAPES.md"))
    assert ours == sorted(ROWS)
    shared = os.path.join(here, "..", "..", "..", "shared", "ESCAPES.md")
    if os.path.exists(shared):
        missing = set(_escape_rows(shared)) - set(ours)
        assert not missing, f"rows of the shared ESCAPES.md missing from ours: {missing}"
