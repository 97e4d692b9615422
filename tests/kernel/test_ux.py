"""The capsule kernel as a new user meets it: %capsule help and listing, one-line refusals,
hints that work, and grants asked for at the moment of access (Deno-style)."""

from __future__ import annotations

import pytest

from .conftest import execute


@pytest.fixture(scope="module")
def kc(kernel):
    return kernel[1]


def stderr_of(outputs) -> str:
    return "".join(c.get("text", "") for t, c in outputs if t == "stream" and c["name"] == "stderr")


def errors_of(outputs) -> list[dict]:
    return [c for t, c in outputs if t == "error"]


def test_probe(kc):
    for code in ("import os", "%capsule list"):
        reply, outputs, _ = execute(kc, code)
        print(reply, outputs)
    assert 0
