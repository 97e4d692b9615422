"""Capsule builtins and guard benchmarks: what everyday builtins cost inside a capsule.

Why: capsule code gets its own ``__import__``, ``open``, ``isinstance``, ``type``, guarded
``getattr``/``hasattr``/``vars``, the guarded ``str.format`` and read-only module views; the
gate routes dunder reads (``self.__dict__``, ``type(x).__name__``) through the guard.  If
these are far dearer than plain Python, ordinary cells pay for the boundary everywhere.

Every variant runs the *same* loop source inside a function: plain ``exec`` in a plain dict,
the capsule (``Capsule.run`` of the setup and the loop, the loop then called from trusted
code) and, where the operation exists there, RestrictedPython (``bench_engine``'s setup).
Ten operations per loop iteration (one for file I/O), loop included.  Targets (issue 13):
``import`` in a hot function <= 2x (the audit log off), open+read / open+write of a granted
2 KB file <= 4x and of a 1 MiB file <= 1.5x, ``isinstance``/``type()`` <= 1.5x,
``getattr``/``hasattr``, ``vars()``/``__dict__``, ``self.__class__.__name__`` <= 2x,
``str.format`` <= 1.5x (with format specs or field access <= 2x), module attribute reads
<= 1.25x.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from itertools import repeat

from common import Settings, Table, check, compare

from ipycap import Capsule
from ipycap.engine.policy import CapsulePolicy

CAPSULE = "capsule"
RP = "RestrictedPython"
_TEN = 10

SETUP = """
import math

class Point:
    def __init__(self):
        self.x = 1
        self.y = 2.5

p = Point()
n = 7
s = "abc"
"""

#: (title, statement, target, RestrictedPython applies)
OPS = [
    ("import math in a hot function", "import math", 2.0, True),
    ("isinstance(n, int)", "isinstance(n, int)", 1.5, True),
    ("isinstance(p, (int, Point))", "isinstance(p, (int, Point))", 1.5, True),
    ("type(n)", "type(n)", 1.5, False),
    ("type(n).__name__", "type(n).__name__", 1.5, False),
    ("getattr(p, 'x')", "getattr(p, 'x')", 2.0, True),
    ("hasattr(p, 'z')", "hasattr(p, 'z')", 2.0, True),
    ("vars(p)", "vars(p)", 2.0, False),
    ("p.__dict__", "p.__dict__", 2.0, False),
    ("p.__class__.__name__", "p.__class__.__name__", 2.0, False),
    ("'{} {}'.format(n, s)", "'{} {}'.format(n, s)", 1.5, False),
    ("'{:>8.2f}'.format(p.y)", "'{:>8.2f}'.format(p.y)", 2.0, False),
    ("'{0.x}-{0.y}'.format(p)", "'{0.x}-{0.y}'.format(p)", 2.0, False),
    ("f'{n} {s}' (f-string, for scale)", "f'{n} {s}'", 1.5, True),
    ("math.pi (module attribute)", "math.pi", 1.25, True),
]


def _loop(body: str, per: int) -> str:
    return "def work(it):\n    for _ in it:\n" + f"        {body}\n" * per


def _timed(fn):
    return lambda n: fn(repeat(None, n))


def _plain(source: str, ns: dict | None = None):
    ns = {"__name__": "__bench__", **(ns or {})}
    exec(compile(source, "<plain>", "exec"), ns)
    return _timed(ns["work"])


def _capsule(source: str, capsule: Capsule | None = None):
    capsule = capsule or Capsule(label="bench")
    capsule.run(source)
    return _timed(capsule.namespace["work"])


def _restricted(source: str):
    from bench_engine import restricted_globals
    from RestrictedPython import compile_restricted

    ns = restricted_globals()
    # RestrictedPython's safe builtins have no getattr/hasattr: an embedding gives its guard.
    getattr_ = ns["_getattr_"]
    ns["__builtins__"]["getattr"] = getattr_

    def hasattr_(obj, name):
        try:
            getattr_(obj, name)
        except AttributeError:
            return False
        return True

    ns["__builtins__"]["hasattr"] = hasattr_
    exec(compile_restricted(source, "<restricted>", "exec"), ns)
    return _timed(ns["work"])


def bench_ops(settings: Settings) -> list[Table]:
    tables = []
    for title, stmt, target, rp in OPS:
        source = SETUP + _loop(stmt, _TEN) + f"# {title}\n"
        variants = {"plain": _plain(source), CAPSULE: _capsule(source)}
        if rp:
            variants[RP] = _restricted(source)
        table = compare(f"builtins: {title}", variants, settings, unit="op", per=_TEN)
        check(table, CAPSULE, at_most=target, target=f"<= {target}x plain")
        tables.append(table)
    return tables


FILE_OPS = [
    ("read", "with open(path) as f:\n            f.read()"),
    ("write", "with open(out, 'w') as f:\n            f.write(text)"),
    # every line checked against the opening grants (revocable handles, engine/handles.py)
    ("iteration over the lines", "with open(path) as f:\n            for line in f: pass"),
]


def bench_files(settings: Settings) -> list[Table]:
    """open()+read / open()+write of a granted file, small and 1 MiB."""
    folder = os.path.realpath(tempfile.mkdtemp(prefix="ipycap-bench-"))
    try:
        policy = CapsulePolicy(readable_paths=[folder], writable_paths=[folder])
        tables = []
        for size, label, target in ((2048, "2 KB", 4.0), (1 << 20, "1 MiB", 1.5)):
            path = os.path.join(folder, f"in-{size}.txt")
            out = os.path.join(folder, f"out-{size}.txt")
            text = ("x" * 63 + "\n") * (size // 64)
            with open(path, "w") as f:
                f.write(text)
            for what, body in FILE_OPS:
                source = (
                    f"path = {path!r}\nout = {out!r}\ntext = 'x' * 63 + '\\n'\n"
                    f"text = text * {size // 64}\n" + _loop(body, 1) + f"# {what} {label}\n"
                )
                capsule = Capsule(policy, grants=[("read", folder), ("write", folder)])
                table = compare(
                    f"builtins: open()+{what} of a granted {label} file",
                    {"plain": _plain(source), CAPSULE: _capsule(source, capsule)},
                    settings,
                    unit="file",
                )
                check(table, CAPSULE, at_most=target, target=f"<= {target}x plain")
                tables.append(table)
        return tables
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def run(settings: Settings) -> list[Table]:
    return bench_ops(settings) + bench_files(settings)
