"""Revocable file handles (ipycap/engine/handles.py) read line by line: every line is checked
against the grants that opened the file, by the C line iterator as by ``__next__``."""

from __future__ import annotations

import pytest

from ipycap import Capsule
from ipycap.engine.registry import Registry


def _capsule(tmp_path, lines=5):
    folder = tmp_path / "granted"
    folder.mkdir()
    path = folder / "lines.txt"
    path.write_text("".join(f"line {i}\n" for i in range(lines)))
    registry = Registry()
    cap = registry.grant("read", str(folder), scope="session")
    return Capsule(registry=registry, grants=[cap], scope="session"), registry, cap, path


def test_lines_of_a_granted_file_mixing_for_and_next(tmp_path):
    capsule, _, _, path = _capsule(tmp_path)
    capsule.run(f"f = open({str(path)!r})\nfirst = next(f)\nrest = [x for x in f]\nf.close()")
    assert capsule.namespace["first"] == "line 0\n"
    assert capsule.namespace["rest"] == [f"line {i}\n" for i in range(1, 5)]


def test_a_revoke_stops_an_iteration_at_the_next_line_and_closes_the_file(tmp_path):
    capsule, registry, cap, path = _capsule(tmp_path)
    capsule.run(f"f = open({str(path)!r})\nit = iter(f)\nfirst = next(it)")
    registry.revoke(cap.id)
    for source in ("next(it)", "next(f)", "[x for x in it]"):
        with pytest.raises(PermissionError, match="revoked or has ended"):
            capsule.run(source)
    assert capsule.run("f.closed") is True


def test_the_line_iterator_shows_capsule_code_nothing_of_the_file(tmp_path):
    capsule, _, _, path = _capsule(tmp_path)
    capsule.run(f"f = open({str(path)!r})\nit = iter(f)")
    for name in ("file", "caps", "refuse", "__reduce__"):
        with pytest.raises(AttributeError):
            capsule.run(f"getattr(it, {name!r})")
    with pytest.raises(TypeError, match="cannot create"):
        capsule.run("type(it)(1, (), print)")
    with pytest.raises(TypeError, match="cannot pickle"):
        capsule.run("import copy\ncopy.copy(it)")
