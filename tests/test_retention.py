"""A long session does not keep every cell's capsule: the guard's table of capsule builtins
drops an entry once no code can run with those builtins any more, and keeps every entry whose
code can still run (an exported function, a generator, an object with ``__del__``, a capsule
its caller holds), so those frames are still recognised as capsule code."""

from __future__ import annotations

import gc
import sys

import pytest

from ipycap import Capsule
from ipycap.engine import guard, retention
from ipycap.engine.errors import CapabilityError

SECRET = "/etc/hostname"


def _entries_of(*capsules) -> list:
    return [c.builtins for c in capsules if guard.context_of(c.builtins) is not None]


def _sweep() -> int:
    gc.collect()
    return retention.prune(force=True)


def test_a_finished_capsule_leaves_the_table():
    before = len(guard._CAPSULE_BUILTINS)
    for _ in range(20):
        Capsule().run("x = [1, 2]\ny = {'a': x}")
    _sweep()
    assert len(guard._CAPSULE_BUILTINS) <= before


def test_a_capsule_its_caller_holds_stays_recognised():
    c = Capsule()
    c.run("x = 1")
    _sweep()
    assert guard.context_of(c.builtins) is c.context
    with pytest.raises(CapabilityError):
        c.run(f"open({SECRET!r}).read()")


@pytest.mark.parametrize(
    "source, keep",
    [
        ("def f():\n    return open(PATH).read()\n", lambda ns: ns["f"]),
        (
            "def g():\n    yield 1\n    yield open(PATH).read()\nit = g()\nnext(it)\n",
            lambda ns: ns["it"],
        ),
        (
            "class A:\n    def read(self):\n        return open(PATH).read()\na = A()\n",
            lambda ns: ns["a"].read,
        ),
    ],
    ids=["function", "suspended generator", "bound method"],
)
def test_code_that_can_still_run_keeps_its_entry_and_its_refusals(source, keep):
    c = Capsule()
    ns = {}
    c.run(source.replace("PATH", repr(SECRET)), namespace=ns)
    kept = keep(ns)
    builtins = c.builtins
    del c, ns
    _sweep()
    assert guard.context_of(builtins) is not None
    with pytest.raises(CapabilityError):
        kept() if callable(kept) else next(kept)


def test_a_del_that_runs_after_its_capsule_is_still_capsule_code(monkeypatch):
    raised = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: raised.append(u.exc_type))
    c = Capsule()
    ns = {}
    c.run(
        f"class D:\n    def __del__(self):\n        open({SECRET!r}).read()\nd = D()\n",
        namespace=ns,
    )
    d = ns.pop("d")
    builtins = c.builtins
    del c, ns
    _sweep()
    assert guard.context_of(builtins) is not None
    del d  # the refusal inside __del__ is reported as unraisable, never a read
    gc.collect()
    assert len(raised) == 1 and issubclass(raised[0], CapabilityError)


def test_the_sweep_is_amortised(monkeypatch):
    monkeypatch.setitem(retention._state, "next", len(guard._CAPSULE_BUILTINS) + 1000)
    assert retention.prune() == 0  # below the threshold: nothing is scanned
