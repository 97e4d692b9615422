"""The capsule thread is reused from cell to cell (starting one per cell was most of a trivial
cell's cost), and each cell still starts as on a fresh thread: a thread that a stop, an
interrupt or a memory hit reached is never reused, the auditor's profile function (set for
threads after it) still sees every cell, and the engine's thread-local state starts empty."""

from __future__ import annotations

import sys
import threading

import pytest

from ipycap import Capsule
from ipycap.engine import limits, tripwire
from ipycap.engine.limits import CellTimeout, Limits

_CURRENT = []


def _call_current():
    return _CURRENT[-1]()


def _run_with(capsule: Capsule, f, source: str = "f()"):
    """Run ``source`` with the trusted callable ``f`` reached through the protected name ``f``
    (a proxy, as a user's function reaches a capsule), not planted raw in its namespace."""
    _CURRENT.append(f)
    try:
        return capsule.run(source)
    finally:
        _CURRENT.pop()


def _thread_of(capsule: Capsule) -> int:
    seen = []
    capsule.limits = Limits(timeout=30)
    _run_with(capsule, lambda: seen.append(threading.get_ident()))
    return seen[0]


@pytest.fixture
def capsule():
    return Capsule(protected={"f": _call_current})


def test_consecutive_clean_cells_share_one_capsule_thread(capsule):
    first = _thread_of(capsule)
    assert first != threading.get_ident()
    assert _thread_of(capsule) == first
    capsule.limits = Limits(timeout=30)
    with pytest.raises(ZeroDivisionError):
        capsule.run("1 / 0")
    # A cell that raised is not trusted to have left its thread as it found it.
    assert _thread_of(capsule) != first


def test_a_stopped_cells_thread_is_never_reused(capsule):
    before = _thread_of(capsule)
    capsule.limits = Limits(timeout=0.3)
    seen = []
    ns = {"f": lambda: seen.append(threading.get_ident())}
    with pytest.raises(CellTimeout):
        _run_with(
            capsule,
            ns["f"],
            "f()\nwhile True:\n    try:\n        while True:\n            pass\n"
            "    except BaseException:\n        pass\n",
        )
    assert seen == [before]  # it ran on the reused thread ...
    after = _thread_of(capsule)
    assert after != before  # ... which is retired after the stop
    assert _thread_of(capsule) == after


def test_each_cell_gets_the_profile_function_set_for_new_threads(capsule):
    _thread_of(capsule)  # the worker exists before the profile function is set
    calls = []

    def profile(frame, event, arg):  # reads nothing of the frame: the tripwire guards f_code
        calls.append(threading.get_ident())

    threading.setprofile(profile)
    try:
        ident = _thread_of(capsule)
    finally:
        threading.setprofile(None)
    assert ident in calls
    calls.clear()
    other = _thread_of(capsule)
    assert other not in calls  # unset again for the next cell


def test_engine_thread_local_state_starts_empty_in_every_cell(capsule):
    ident = _thread_of(capsule)
    seen = []

    def look():
        seen.append((threading.get_ident(), getattr(tripwire._state, "busy", False)))

    def plant():
        tripwire._state.leftover = True

    capsule.limits = Limits(timeout=30)
    _run_with(capsule, plant)
    _run_with(capsule, lambda: seen.append(vars(tripwire._state).copy()))
    _run_with(capsule, look)
    assert "leftover" not in seen[0]  # planted on this very thread one cell earlier
    assert seen[1] == (ident, False)


def test_the_worker_stack_is_what_the_limits_ask_for(capsule):
    capsule.limits = Limits(timeout=30)
    capsule.run("1")
    idle = list(limits._Worker._idle)
    assert idle and all(w.granted >= limits.stack_size_for(Limits()) for w in idle)
    # Deep recursion in C still cannot overflow the reused thread's stack.
    capsule.limits = Limits(timeout=60)
    depth = sys.getrecursionlimit() * 4
    value = capsule.run(f"x = iter([1])\nfor _ in range({depth}):\n    x = map(abs, x)\nlist(x)")
    assert value == [1]
