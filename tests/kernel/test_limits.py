"""Limits in the capsule kernel (real kernels through jupyter_client): the policy's limits apply
to every cell, a cell over them gets a refusal naming the limit, and the kernel survives every
crasher of tests/crashers and answers the next cell."""

from __future__ import annotations

import time

import pytest
from jupyter_client.manager import start_new_kernel

from tests.crashers.py311 import CRASHERS

from .conftest import WORKDIR, execute, value_of

pytestmark = pytest.mark.kernel

LIMITS = [
    "--CapsulePolicy.timeout=2",
    "--CapsulePolicy.max_memory=200M",
    "--CapsulePolicy.max_output=2K",
]


@pytest.fixture(scope="module")
def limited(kernelspecs):
    km, kc = start_new_kernel(
        kernel_name=kernelspecs["plain"],
        cwd=str(WORKDIR),
        startup_timeout=60,
        extra_arguments=LIMITS,
    )
    yield km, kc
    kc.stop_channels()
    km.shutdown_kernel(now=True)
    assert not km.is_alive()


def _error(reply) -> str:
    assert reply["status"] == "error", reply
    return reply["ename"]


def test_timeout_of_the_policy_stops_every_cell(limited):
    km, kc = limited
    start = time.monotonic()
    reply, outputs, _ = execute(
        kc, "while True:\n    try:\n        while True: pass\n    except BaseException: pass"
    )
    assert _error(reply) == "CellTimeout"
    assert "time limit of 2s" in reply["evalue"]
    assert time.monotonic() - start < 15
    assert value_of(kc, "6 * 7") == "42"


def test_interrupt_reaches_the_capsule_thread(limited):
    km, kc = limited
    msg_id = kc.execute("n = 0\nwhile n < 10**12:\n    n += 1")
    time.sleep(0.5)
    km.interrupt_kernel()
    reply = kc.get_shell_msg(timeout=20)
    assert reply["parent_header"]["msg_id"] == msg_id
    assert _error(reply["content"]) == "KeyboardInterrupt"
    assert value_of(kc, "n > 0") == "True"


def test_memory_limit_raises_memory_error_and_the_kernel_keeps_going(limited):
    _, kc = limited
    reply, _, _ = execute(kc, "hog = [bytes(1000) for _ in range(10**6)]")
    assert _error(reply) == "CellMemoryLimit"
    assert "memory limit of 200M" in reply["evalue"]
    assert value_of(kc, "try:\n    b = bytearray(10**9)\nexcept MemoryError:\n    b = 0\nb") == "0"


def test_output_over_the_policy_limit_is_dropped_with_a_note(limited):
    _, kc = limited
    reply, outputs, _ = execute(kc, "print('z' * 5000)")
    assert reply["status"] == "ok"
    text = "".join(c.get("text", "") for t, c in outputs if t == "stream")
    assert text.count("z") == 2048
    assert "more characters of output were dropped" in text


def test_terminal_controls_are_removed_from_kernel_output(limited):
    _, kc = limited
    reply, outputs, _ = execute(kc, "print('\\x1b]52;c;ZXZpbA==\\x07\\x1b[2J\\x1b[31mred\\x1b[0m')")
    assert reply["status"] == "ok"
    [(kind, content)] = [o for o in outputs if o[0] == "stream"]
    assert content["text"] == "\x1b[0;31mred\x1b[0m\n"


def test_decimal_context_holds_across_cells(limited):
    _, kc = limited
    execute(kc, "import decimal\ndecimal.getcontext().prec = 7")
    assert value_of(kc, "decimal.getcontext().prec") == "7"


@pytest.fixture(scope="module")
def crash_kernel(kernelspecs):
    km, kc = start_new_kernel(
        kernel_name=kernelspecs["plain"], cwd=str(WORKDIR), startup_timeout=60
    )
    yield km, kc
    kc.stop_channels()
    km.shutdown_kernel(now=True)


@pytest.mark.parametrize(("name", "source"), CRASHERS, ids=[n for n, _ in CRASHERS])
def test_kernel_survives_the_crasher(crash_kernel, name, source):
    km, kc = crash_kernel
    reply, _, _ = execute(kc, source, timeout=300)
    assert reply["status"] == "ok", reply
    assert km.is_alive()
    assert value_of(kc, "'alive:' + str(6 * 7)") == "'alive:42'"
    # the crasher's structure is dropped in a later cell, on that cell's capsule thread
    reply, _, _ = execute(kc, "x = g = result = None", timeout=300)
    assert reply["status"] == "ok" and km.is_alive()
