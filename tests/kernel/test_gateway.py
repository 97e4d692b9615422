"""The capsule kernel behind a real Jupyter Kernel Gateway (REST + websocket), as a hub or a
remote frontend reaches it: a plain cell, a refusal and the registry."""

from __future__ import annotations

import pytest

from .conftest import WORKDIR
from .gateway import Gateway


@pytest.fixture(scope="module")
def gateway_kernel(kernelspecs):
    with Gateway(kernelspecs["plain"], cwd=WORKDIR) as gw:
        yield gw.start_kernel()


def test_kernel_info_through_the_gateway(gateway_kernel):
    models = gateway_kernel.gateway.request("GET", "/api/kernels")
    assert [m["id"] for m in models] == [gateway_kernel.id]
    assert models[0]["name"] == "capsule-test"


def test_a_plain_cell(gateway_kernel):
    reply, outputs = gateway_kernel.execute("import math\nmath.factorial(5)")
    assert reply["status"] == "ok"
    assert [c["data"]["text/plain"] for t, c in outputs if t == "execute_result"] == ["120"]


def test_a_refusal(gateway_kernel):
    reply, outputs = gateway_kernel.execute("import os")
    assert reply["status"] == "error" and reply["ename"] == "CapsuleImportError"
    assert "denied_imports" in reply["evalue"]
    # No stdin through this client: an access within the ceiling is refused, not asked.
    reply, _ = gateway_kernel.execute("open('gateway-notes.txt', 'w')")
    assert reply["ename"] == "CapsulePermissionError"
    assert "c.CapsuleKernel.grants = ['write:gateway-notes.txt']" in reply["evalue"]


def test_the_registry(gateway_kernel):
    reply, outputs = gateway_kernel.execute("%capsule list")
    assert reply["status"] == "ok"
    text = "".join(c["data"]["text/plain"] for t, c in outputs if t == "display_data")
    assert "ipycap capabilities" in text and "import of 'os'" in text
