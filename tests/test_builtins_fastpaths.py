"""The capsule builtins' caches and C fast paths decide as the Python rules do: a cached
decision never outlives the authority it rests on (a revoke, an expiry, a narrowed policy
or a new sys.path entry counts at the very next use in a hot loop), counted uses are all in
the registry and its events, and the fast builtins refuse what the guard refuses."""

from __future__ import annotations

import json
import os
import sys

import pytest

from ipycap import (
    Capsule,
    CapsuleAttributeError,
    CapsuleImportError,
    CapsulePermissionError,
)
from ipycap.engine import fastpaths
from ipycap.engine.policy import CapsulePolicy

HOT_IMPORT = """
def work(n):
    for _ in range(n):
        import {module}
    return {module}.__name__
"""


def _uses_in_events(registry, target):
    events = [e for e in registry.events if e["event"] == "use" and e["target"] == target]
    return sum(e.get("count", 1) for e in events)  # a counted use event stands for 'count'


def test_the_extension_is_built():
    # Without it every number of bench_builtins is the Python path's; the suite says so.
    assert fastpaths._c is not None


def test_revoking_a_default_import_counts_at_the_next_hot_loop_use():
    capsule = Capsule()
    capsule.run(HOT_IMPORT.format(module="math"))
    work = capsule.namespace["work"]
    assert work(500) == "math"  # cached after the first imports
    capsule.registry.revoke("math")
    with pytest.raises(CapsuleImportError, match="revoked"):
        work(1)


def test_revoking_a_granted_import_counts_at_the_next_hot_loop_use():
    capsule = Capsule(grants=[("import", "csv")], scope="session")
    capsule.run(HOT_IMPORT.format(module="csv"))
    work = capsule.namespace["work"]
    assert work(300) == "csv"
    (cap,) = capsule.registry.find("import", "csv")
    cap.revoke()
    with pytest.raises(CapsuleImportError, match="revoked"):
        work(1)


@pytest.mark.parametrize("change", ["append", "assign"])
def test_a_narrowed_policy_counts_at_the_next_hot_loop_use(change):
    policy = CapsulePolicy()
    capsule = Capsule(policy)
    capsule.run(HOT_IMPORT.format(module="json"))
    work = capsule.namespace["work"]
    assert work(300) == "json"
    if change == "append":
        policy.denied_imports.append("json")  # in place: the watched list says so
    else:
        policy.denied_imports = [*policy.denied_imports, "json"]
    with pytest.raises(CapsuleImportError, match="denied_imports"):
        work(1)


def test_counted_uses_are_all_in_the_registry_and_its_events():
    capsule = Capsule()
    capsule.run(HOT_IMPORT.format(module="math") + "work(1)\n")
    (cap,) = capsule.registry.find("import", "math")
    before, logged_before = cap.uses, _uses_in_events(capsule.registry, "math")
    capsule.namespace["work"](1000)
    assert cap.uses - before == 1000
    capsule.registry.flush_uses()
    assert _uses_in_events(capsule.registry, "math") - logged_before == 1000
    # A counted use event carries the capability's total, as every use event does.
    assert [e for e in capsule.registry.events if e.get("count")][-1]["uses"] == cap.uses


def test_counted_uses_are_recorded_before_the_next_event_and_in_the_audit_log(tmp_path):
    log = tmp_path / "audit.jsonl"
    capsule = Capsule(CapsulePolicy(audit_log=str(log)))
    capsule.run(HOT_IMPORT.format(module="math") + "work(50)\n")
    capsule.namespace["work"](7)  # after the cell: counted, recorded before the next event
    capsule.registry.note("marker", target="after")
    names = [e["event"] for e in capsule.registry.events]
    last_use = max(i for i, n in enumerate(names) if n == "use")
    assert last_use < names.index("marker")  # the counted uses came first
    logged = [json.loads(line) for line in log.read_text().splitlines()]
    uses = sum(e.get("count", 1) for e in logged if e["event"] == "use" and e["target"] == "math")
    assert uses == 57


@pytest.fixture
def granted(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "in.txt").write_text("hello")
    policy = CapsulePolicy(readable_paths=[str(tmp_path)], writable_paths=[str(tmp_path)])
    capsule = Capsule(
        policy, grants=[("read", str(folder)), ("write", str(folder))], scope="session"
    )
    capsule.run(
        f"""
def read(n):
    for _ in range(n):
        with open({str(folder / "in.txt")!r}) as f:
            text = f.read()
    return text

def write(n):
    for _ in range(n):
        with open({str(folder / "out.py")!r}, 'w') as f:
            f.write('x = 1')
    return n
"""
    )
    return capsule, policy, folder


def test_revoking_a_read_grant_counts_at_the_next_open(granted):
    capsule, policy, folder = granted
    assert capsule.namespace["read"](100) == "hello"
    capsule.registry.find("read", str(folder.resolve()))[0].revoke()
    with pytest.raises(CapsulePermissionError):
        capsule.namespace["read"](1)


def test_a_new_denied_path_counts_at_the_next_open(granted):
    capsule, policy, folder = granted
    assert capsule.namespace["read"](100) == "hello"
    policy.denied_paths.append(str(folder))
    with pytest.raises(CapsulePermissionError, match="denied"):
        capsule.namespace["read"](1)


def test_a_new_sys_path_entry_counts_at_the_next_write(granted, monkeypatch):
    capsule, policy, folder = granted
    assert capsule.namespace["write"](20) == 20  # out.py, not importable from anywhere
    monkeypatch.setattr(sys, "path", [*sys.path, str(folder)])
    with pytest.raises(CapsulePermissionError, match="write-then-import"):
        capsule.namespace["write"](1)
    assert os.path.exists(folder / "out.py")


# -- the fast builtins refuse what the guard refuses ------------------------------------------
@pytest.mark.parametrize(
    "source",
    [
        "getattr(len, '__self__')",
        "def f(): pass\ngetattr(f, '__globals__')",
        "def f(): pass\nf.__globals__",
        "vars(len)",
        "import json\nvars(json.JSONDecoder)",
        "'{0.__globals__}'.format(lambda: 0)",
        "'{0.__class__.__base__.__subclasses__}'.format(0)",
        "'{x.__init__.__globals__}'.format_map({'x': lambda: 0})",
        # a nested field of a format spec, asked twice (the second time from the cache)
        "def f(): pass\nfor _ in range(2):\n    '{0:{1.__globals__}}'.format(1, f)",
        "def f(): pass\nfor _ in range(2):\n    '{0.x}{1.__globals__}'.format(f, f)",
    ],
)
def test_fast_builtins_refuse_what_the_guard_refuses(source):
    with pytest.raises((CapsuleAttributeError, AttributeError)):
        Capsule().run(source)


def test_fast_builtins_answer_as_the_python_rules():
    capsule = Capsule(protected={"data": [1, 2, 3]})
    assert capsule.run("isinstance(data, list), issubclass(type(data), list)") == (True, True)
    assert capsule.run("type(data).__name__, type(7)") == ("list", int)
    assert capsule.run("class P:\n    pass\np = P()\np.__class__.__name__") == "P"
    assert capsule.run("p.x = 1\nvars(p), hasattr(p, 'x'), getattr(p, 'y', 5)") == (
        {"x": 1},
        True,
        5,
    )
    assert capsule.run("'{:>{w}.{p}f}|{!r}'.format(3.14159, 'a', w=8, p=2)") == "    3.14|'a'"
    assert capsule.run("'{0[1]}'.format(data)") == "2"
    assert capsule.run("[f'{p.x}', *('{0.x}|{0.x:>{w}}'.format(p, w=3) for _ in 'ab')]") == [
        "1",
        "1|  1",
        "1|  1",
    ]
    # Nothing of the C functions leads anywhere.
    assert capsule.run("isinstance.__self__, getattr.__self__") == (None, None)
    with pytest.raises(CapsuleAttributeError):
        capsule.run("'{}'.format.__self__")


CLASS_AND_NAME = """
class Plain:
    pass

class Fake:
    @property
    def __class__(self):
        return int

class Meta(type):
    @property
    def __name__(cls):
        return 'from the metaclass'

class Named(metaclass=Meta):
    pass

class Renamed:
    pass

Renamed.__name__ = 'New'
r = (Plain().__class__.__name__, Fake().__class__, Named.__name__, Named().__class__.__name__,
     Renamed.__name__, type(7).__name__, type(len).__name__, Plain.__class__.__name__)
"""


def test_class_and_name_reads_answer_as_python_does():
    # ``__class__`` and ``__name__`` are read in C only where CPython's own lookup would
    # end in object's __class__ or type's __name__; overrides are read as Python reads them.
    expected = dict(__name__="__main__")
    exec(CLASS_AND_NAME, expected)
    capsule = Capsule()
    capsule.run(CLASS_AND_NAME)
    assert (
        capsule.namespace["r"]
        == expected["r"]
        == (
            "Plain",
            int,
            "from the metaclass",
            "from the metaclass",
            "New",
            "int",
            "builtin_function_or_method",
            "type",
        )
    )


@pytest.mark.parametrize(
    "name, read", [("shape2", "getattr(p, 'shape2')"), ("__dict__", "p.__dict__")]
)
def test_a_library_rule_added_later_counts_at_the_next_use(monkeypatch, name, read):
    from ipycap.engine import rules

    capsule = Capsule()
    capsule.run(
        "class P:\n    pass\np = P()\np.shape2 = 1\n"
        f"def get(n):\n    for _ in range(n):\n        x = {read}\n    return x\n"
    )
    capsule.namespace["get"](100)  # decided by the fast path, its flags cached

    def profile_rule(value, attr):
        raise CapsuleAttributeError(f"{attr}: refused by a library profile", "guard")

    monkeypatch.setitem(rules.LIBRARY_ATTRS, name, profile_rule)
    with pytest.raises(CapsuleAttributeError, match="library profile"):
        capsule.namespace["get"](1)
