"""The capsule kernel started confined (CapsuleKernelApp.confine = 'on'): the OS boundary."""

from __future__ import annotations

import pytest

from .conftest import OUTSIDE, execute, start_kernel, value_of

pytestmark = pytest.mark.kernel


@pytest.fixture(scope="module")
def confined(kernelspecs):
    km, kc = start_kernel(kernelspecs["confined"])
    yield km, kc
    kc.stop_channels()
    km.shutdown_kernel(now=True)


def test_registry_view_reports_landlock(confined):
    _, kc = confined
    reply, outputs, _ = execute(kc, "%capsule list")
    text = "".join(c["data"]["text/plain"] for t, c in outputs if t == "display_data")
    assert "OS confinement: Landlock ABI" in text


def test_outside_read_refused_by_the_os_in_a_new_thread(confined, kernel):
    """A thread has no capsule frame, so the tripwire is inert there: in the plain kernel the
    admin's trusted function reads the file; in the confined one Landlock refuses it."""
    secret = str(OUTSIDE / "secret.txt")
    _, plain = kernel
    assert value_of(plain, f"read_in_thread({secret!r})") == "'read: OUTSIDE-SECRET'"
    _, kc = confined
    assert value_of(kc, f"read_in_thread({secret!r})") == "'refused: PermissionError'"
    # On the main thread, the capsule layer refuses first (the tripwire sees the capsule).
    assert "refused" in value_of(kc, f"read_file({secret!r})")


def test_memory_bomb_fails_and_next_cell_runs(confined):
    _, kc = confined
    reply, _, _ = execute(kc, "blob = bytearray(8 * 2**30)")
    assert reply["status"] == "error" and reply["ename"] == "MemoryError"
    assert value_of(kc, "sum(range(10))") == "45"
