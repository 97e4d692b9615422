"""Revoking an import grant reaches what the capsule already holds (issue 11, red team 5
finding 4): a module view, and the functions it handed out, answer only while the capsule
they were made for may import the module.  Classes, instances and plain values already
taken stay what they are (docs/DESIGN.md, "Revoking an import")."""

from __future__ import annotations

import pytest

from ipycap import Capsule, Registry
from ipycap.engine.errors import CapsuleImportError, CapsuleRevokedError


def _refused(capsule, source):
    with pytest.raises(CapsuleRevokedError) as info:
        capsule.run(source)
    return str(info.value)


def _regrant(capsule, target):
    cap = capsule.registry.grant("import", target, granted_by="prompt")
    capsule.context.grants.append(cap)  # as the kernel's '%capsule grant' does
    return cap


def test_revoke_then_attribute_read_of_a_held_view_is_refused():
    capsule = Capsule(registry=Registry(), scope="session")
    capsule.run("import json\nj = json\nassert json.loads('[1]') == [1]")
    (cap,) = capsule.registry.revoke("json")
    message = _refused(capsule, "j.loads('[2]')")
    assert f"{cap.id} ('json') was revoked" in message
    assert "json.loads" in message
    # names never read before the revoke too, and a fresh import
    assert "json.JSONDecoder" in _refused(capsule, "j.JSONDecoder")
    with pytest.raises(CapsuleImportError, match="revoked"):
        capsule.run("import json")
    refusals = [e for e in capsule.registry.refusals() if e["kind"] == "import"]
    assert refusals and refusals[-1]["target"] == "json"


def test_revoke_then_call_of_a_stored_function_is_refused():
    capsule = Capsule(registry=Registry(), scope="session")
    capsule.run(
        "import json, math\nfrom json import loads\ndumps = json.dumps\n"
        "sqrt = math.sqrt\nassert dumps([1]) == '[1]' and loads('2') == 2"
    )
    (cap,) = capsule.registry.revoke("json")
    assert f"{cap.id} ('json') was revoked" in _refused(capsule, "dumps([3])")
    assert "was revoked" in _refused(capsule, "loads('3')")
    # a callback handed to trusted code is refused the same way when trusted code calls it
    assert "was revoked" in _refused(capsule, "sorted(['1', '2'], key=loads)")
    assert capsule.run("sqrt(9.0)") == 3.0  # math's grant is untouched


def test_cell_scoped_grant_ends_with_its_cell():
    registry = Registry()
    ns: dict = {}
    first = Capsule(registry=registry, grants=[("import", "csv")], namespace=ns)
    first.run(
        "import csv\nreader = csv.reader\nw = csv\nassert list(reader(['a,b'])) == [['a', 'b']]"
    )
    first.end()
    later = Capsule(registry=registry, namespace=ns)  # the next cell, same namespace
    message = _refused(later, "list(reader(['c,d']))")
    assert "was for one cell, which has ended" in message and "'csv'" in message
    assert "csv.writer" in _refused(later, "w.writer")


def test_a_regrant_makes_held_views_and_functions_answer_again():
    capsule = Capsule(registry=Registry(), scope="session")
    capsule.run("import json\nj = json\ndumps = json.dumps")
    capsule.registry.revoke("json")
    _refused(capsule, "dumps(1)")
    _regrant(capsule, "json")
    assert capsule.run("dumps([1]) + j.dumps(2)") == "[1]2"
    assert capsule.run("dumps is j.dumps")  # one function object across the changes


def test_another_capsule_with_its_own_grant_is_unaffected():
    registry = Registry()
    a = Capsule(registry=registry, grants=[("import", "csv")], scope="session")
    b = Capsule(registry=registry, grants=[("import", "csv")], scope="cell")
    a.run("import csv\nreader = csv.reader")
    b.run("import csv\nreader = csv.reader")
    (a_cap,) = [c for c in a.context.grants if c.target == "csv"]
    registry.revoke(a_cap.id)
    assert "was revoked" in _refused(a, "list(reader(['x']))")
    assert b.run("list(reader(['x,y'])) + [csv.writer.__name__]") == [["x", "y"], "writer"]
    # A's view stays A's: handed to B, it still answers for A's (revoked) grant
    b.namespace["a_reader"] = a.namespace["reader"]
    assert "was revoked" in _refused(b, "a_reader(['x'])")


def test_view_functions_behave_like_the_functions():
    capsule = Capsule(registry=Registry(), scope="session")
    got = capsule.run(
        "import json, copy, textwrap\n"
        "class Box:\n    dedent = textwrap.dedent\n"
        "[json.dumps.__name__, json.dumps.__module__, repr(json.dumps).startswith('<function'),"
        " copy.copy(json.dumps) is json.dumps, copy.deepcopy(json.dumps) is json.dumps,"
        " Box.dedent('  a'), callable(json.dumps), list(map(json.dumps, [1, 'a']))]"
    )
    assert got == ["dumps", "json", True, True, True, "a", True, ["1", '"a"']]
    with pytest.raises(AttributeError):
        capsule.run("json.dumps.__wrapped__")
    with pytest.raises(AttributeError):
        capsule.run("json.dumps.__globals__")


def test_an_allow_once_import_answers_while_its_cell_runs():
    registry = Registry()
    registry.policy.prompt = True
    registry.approver = lambda question: "y"  # 'Allow once'
    ns: dict = {}
    registry.cell = "In[1]"
    first = Capsule(registry=registry, namespace=ns)
    assert first.run("import csv\nreader = csv.reader\nlist(reader(['a,b']))") == [["a", "b"]]
    first.end()
    registry.approver = None  # nobody to ask in the next cell
    registry.cell = "In[2]"
    later = Capsule(registry=registry, namespace=ns)
    assert "was for one cell, which has ended" in _refused(later, "list(reader(['c']))")
