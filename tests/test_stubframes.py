"""A failed capsule cell's traceback, as the host keeps it (``sys.last_traceback``, the
error IPython shows, ``%debug``): stand-ins of the capsule's frames holding plain data only,
while the cell's own objects are freed at once, their finalizers under the cell's limits.

Before: the host's copy kept the capsule's real frames, so every object of the failed cell
stayed alive until the next error and was freed then, on the main thread with no limit (a
``__del__`` spinning forever hung the session at an unrelated later error); any trusted
reader of frame locals had the capsule's objects to call."""

from __future__ import annotations

import gc
import re
import sys
import time
import traceback

from ipycap import Capsule
from ipycap.engine.after import host_error
from ipycap.engine.membrane import is_plain
from ipycap.engine.stubframes import ARGUMENTS, NOT_SHOWN
from tests import test_magics as _magics

_shell = _magics._shell  # the fixtures
ip = _magics.ip

FAILING = """%%capsule --timeout 1
class Kept{t}:
    def __del__(self):
        print("finalizer-{t}")
def f(a, b, k):
    c = a + b
    label = 'plain-label'
    return c / 0
f(1, 0, Kept{t}())
"""


def _capsule_entries(tb):
    out = []
    while tb is not None:
        if tb.tb_frame.f_code.co_filename.startswith("<capsule-"):
            out.append(tb)
        tb = tb.tb_next
    return out


def _alive(name: str) -> int:
    gc.collect()
    return sum(1 for o in gc.get_objects() if type(o).__name__ == name)


def test_a_failed_cells_objects_are_freed_with_the_cell(ip, capsys):
    err = ip.fails(FAILING.format(t="A1"), ZeroDivisionError)
    assert "finalizer-A1" in capsys.readouterr().out  # ran as part of the failed cell
    assert _alive("KeptA1") == 0
    assert err is not None


def test_a_runaway_finalizer_of_a_failed_cell_is_stopped_by_the_cells_limit(ip):
    spin = FAILING.format(t="A2").replace('print("finalizer-A2")', "while True:\n            pass")
    start = time.monotonic()
    err = ip.fails(spin, ZeroDivisionError)  # the cell's own error, not the finalizer's
    assert time.monotonic() - start < 30  # --timeout 1: the loop was stopped
    assert "division" in str(err)
    start = time.monotonic()
    ip.fails("1/0", ZeroDivisionError)  # the next error frees nothing of the capsule's
    assert time.monotonic() - start < 5


def test_the_kept_traceback_holds_only_plain_data(ip):
    ip.fails(FAILING.format(t="A3"), ZeroDivisionError)
    entries = _capsule_entries(sys.last_traceback)
    assert [e.tb_frame.f_code.co_name for e in entries] == ["<module>", "f"]
    for entry in entries:
        frame = entry.tb_frame
        assert frame.f_back is None
        assert frame.f_builtins == {}
        # plain data, or ipycap's own marker for an argument that was not
        assert all(is_plain(v) or v is NOT_SHOWN for v in frame.f_locals.values())
        names = [k for k in frame.f_globals if k.isidentifier() and k != "__builtins__"]
        assert all(is_plain(frame.f_globals[k]) for k in names)
    local = entries[-1].tb_frame.f_locals
    assert local == {"a": 1, "b": 0, "k": NOT_SHOWN, "c": 1, "label": "plain-label"}
    assert ARGUMENTS[entries[-1].tb_frame.f_code] == ("a", "b", "k")
    assert entries[-1].tb_frame.f_code.co_varnames[:3] == ("a", "b", "k")  # the signature


def test_the_kept_traceback_shows_the_capsules_lines_and_positions(ip):
    ip.fails(FAILING.format(t="A4"), ZeroDivisionError)
    text = "".join(traceback.format_exception(sys.last_value))
    assert "    return c / 0\n" in text
    assert "           ~~^~~\n" in text  # the failing operation, as on the real frame
    assert text.index(", line 8, in <module>") < text.index(", line 7, in f\n")
    entry = _capsule_entries(sys.last_traceback)[-1]
    assert entry.tb_lineno == entry.tb_frame.f_lineno == 7


def test_host_error_drops_the_capsule_exceptions_tracebacks():
    capsule = Capsule(label="stub-engine")
    try:
        capsule.run("def g(x):\n    y = [x]\n    raise KeyError(y)\ng(object())")
    except KeyError as e:
        caught = e
    copy = host_error(caught, capsule.context)
    assert caught.__traceback__ is None
    assert type(copy) is KeyError
    (entry,) = [e for e in _capsule_entries(copy.__traceback__) if e.tb_frame.f_code.co_name == "g"]
    assert entry.tb_frame.f_locals == {"x": NOT_SHOWN}  # x and y are capsule objects: not kept
    assert entry.tb_lineno == 3


def test_post_mortem_on_the_stand_ins_shows_the_capsule_frame(ip, capsys, monkeypatch):
    import io

    ip.fails(FAILING.format(t="A5"), ZeroDivisionError)
    capsys.readouterr()
    monkeypatch.setattr(sys, "stdin", io.StringIO("args\np label\nll\nup\nq\n"))
    ip.shell.run_line_magic("debug", "")
    shown = re.sub(r"\x1b\[[0-9;]*m", "", capsys.readouterr().out)
    assert "a = 1" in shown and "b = 0" in shown and "k = <not plain: not shown>" in shown
    assert "'plain-label'" in shown
    assert "return c / 0" in shown  # ll lists the capsule function's source


def test_stand_ins_keep_every_signature_shape():
    capsule = Capsule(label="stub-shapes")
    source = (
        "def f(a, /, b, *rest, k, m=2, **kw):\n"
        "    q = 'x'\n"
        "    raise ValueError(q)\n"
        "f(1, object(), 3, 4, k=5, w=6)\n"
    )
    try:
        capsule.run(source)
    except ValueError as e:
        caught = e
    copy = host_error(caught, capsule.context)
    (entry,) = [e for e in _capsule_entries(copy.__traceback__) if e.tb_frame.f_code.co_name == "f"]
    frame = entry.tb_frame
    assert frame.f_locals == {
        "a": 1,
        "b": NOT_SHOWN,
        "k": 5,
        "m": 2,
        "rest": (3, 4),
        "kw": {},
        "q": "x",
    }
    assert ARGUMENTS[frame.f_code] == ("a", "b", "k", "m", "rest", "kw")
    assert (entry.tb_lineno, frame.f_lineno) == (3, 3)


def test_a_comprehension_frame_gets_its_stand_in_and_the_error_stays_the_cells():
    """3.11's comprehensions are functions whose argument is named ``.0``."""
    capsule = Capsule(label="stub-comprehension")
    try:
        capsule.run("n = 3\nsquares = [1 / (i - 2) for i in range(n)]")
    except ZeroDivisionError as e:
        caught = e
    copy = host_error(caught, capsule.context)
    assert type(copy) is ZeroDivisionError
    names = [e.tb_frame.f_code.co_name for e in _capsule_entries(copy.__traceback__)]
    assert names == ["<module>", "<listcomp>"]
    frame = _capsule_entries(copy.__traceback__)[-1].tb_frame
    assert frame.f_locals == {".0": NOT_SHOWN, "i": 2}  # the range iterator is not plain
    assert ARGUMENTS[frame.f_code] == (".0",)
