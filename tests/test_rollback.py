"""The capsule kernel's failed-cell rollback (ipycap/engine/rollback.py), in process: every way
capsule code binds a name is undone when the cell fails and kept when it succeeds, and what a
cell displaces is freed on a capsule thread.  (Through a real kernel: tests/kernel/test_limits.py.)"""

from __future__ import annotations

import threading
import weakref

import pytest

from ipycap.engine.capsule import Capsule
from ipycap.engine.limits import Limits
from ipycap.engine.rollback import Journal, code_writes

BEFORE = "kept = 'before'\ngone = [1]\ndef setg():\n    global g\n    g = 'set'\n"


@pytest.fixture
def session():
    capsule = Capsule(scope="session", label="kernel")
    capsule.limits = Limits(timeout=5)
    journal = Journal(capsule.namespace, capsule.context)

    def cell(source):
        journal.begin()
        try:
            capsule.run(source, filename=f"<capsule-test-{abs(hash(source))}>")
        except BaseException as e:  # noqa: BLE001 - the cell's failure, returned
            journal.roll_back()
            return e
        journal.commit()
        return None

    assert cell(BEFORE) is None
    return capsule, cell


def _user(ns) -> dict:
    return {k: v for k, v in ns.items() if not k.startswith("__")}


@pytest.mark.parametrize(
    "binding",
    [
        "kept = 'rebound'\nfresh = 1\ndel gone",
        "setg()",  # a global assigned by a function of an earlier cell
        "exec('fresh = 1')\neval('(fresh2 := 2)')",
        "[w := i for i in range(3)]",
        "import math\nfrom math import *",
        "for i in range(3): pass\nclass CM:\n    def __enter__(self): return 1\n"
        "    def __exit__(self, *a): pass\nwith CM() as c: pass",
        "try:\n    1/0\nexcept ZeroDivisionError as err:\n    caught = 1",
        "match [1]:\n    case [m]: pass",
        "class K: pass\ndef f(): pass\nlate: int = 3",
        "'a docstring'\nkept = 2",
        "def later():\n    global g2\n    g2 = 1\nlater()",
    ],
)
def test_a_failed_cell_leaves_the_namespace_as_it_was(session, binding):
    capsule, cell = session
    before = _user(capsule.namespace)
    annotations = dict(capsule.namespace.get("__annotations__", {}))
    doc = capsule.namespace.get("__doc__")
    err = cell(binding + "\nraise ValueError('late')")
    assert type(err) is ValueError, err
    assert _user(capsule.namespace) == before
    assert dict(capsule.namespace.get("__annotations__", {})) == annotations
    assert capsule.namespace.get("__doc__") == doc
    assert cell(binding) is None  # and the same code, succeeding, keeps its bindings
    assert _user(capsule.namespace) != before


def test_a_stopped_cell_leaves_the_namespace_as_it_was(session):
    capsule, cell = session
    capsule.limits = Limits(timeout=0.5)
    before = _user(capsule.namespace)
    err = cell("kept = 'rebound'\nfresh = 1\ndel gone\nsetg()\nwhile True: pass")
    assert type(err).__name__ == "CellTimeout"
    assert _user(capsule.namespace) == before


def test_code_writes_reads_the_bytecode():
    code = compile("a = 1\ndef f():\n    global b\n    b = 2\n[c := 1 for _ in ()]", "", "exec")
    names, global_names, star = code_writes(code)
    assert {"a", "f"} <= names and global_names == {"b", "c"} and not star
    assert code_writes(compile("from math import *", "", "exec"))[2]


def test_what_a_cell_displaces_is_freed_on_a_capsule_thread(session):
    capsule, cell = session
    freed_on = []

    def watch(name):  # trusted: the thread that frees the capsule's object
        value = capsule.namespace[name][0]
        return weakref.ref(value, lambda ref: freed_on.append(threading.current_thread().name))

    assert cell("class H:\n    pass\nheld = [H()]") is None
    ref = watch("held")
    assert cell("held = None") is None
    assert freed_on == ["ipycap-capsule"] and ref() is None
    assert cell("held = [H()]") is None
    ref = watch("held")
    assert type(cell("held2 = held\nheld = None\ndel held2\n1/0")) is ZeroDivisionError
    assert freed_on == ["ipycap-capsule"] and ref() is not None  # put back, not freed
    ref = watch("held")
    assert cell("del held\nraise ValueError") is not None
    assert cell("del held") is None  # deleted by a cell that succeeds: freed there too
    assert freed_on == ["ipycap-capsule", "ipycap-capsule"] and ref() is None
