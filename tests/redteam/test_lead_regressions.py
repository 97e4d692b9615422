"""Escapes found by the lead while building the engine, kept as named regression tests."""

from __future__ import annotations

import os

from ipycap import Capsule


def _plain(source: str, canary_path) -> dict:
    """Run the payload as plain Python (full builtins): it must reach the canary."""
    ns = {"CANARY": str(canary_path)}
    exec(source, ns)
    return ns


def test_exec_with_fresh_globals_gets_capsule_builtins(canary):
    """exec(src, {}) once ran the string with the *trusted* builtins of the engine's own
    module (a frame-depth slip), so `open` and `__import__` were the real ones."""
    path, token = canary
    payload = "g = {'p': CANARY}\nexec(\"stolen = open(p).read()\", g)\nstolen = g['stolen']\n"
    assert _plain(payload, path)["stolen"] == token
    capsule = Capsule()
    capsule.namespace["CANARY"] = str(path)
    try:
        capsule.run(payload)
    except PermissionError:
        pass
    assert capsule.namespace.get("stolen") != token
    assert "stolen" not in capsule.namespace


def test_exec_with_fresh_globals_cannot_import_os(tmp_path):
    """The same slip let exec(src, {}) import os and create files."""
    marker = tmp_path / "marker"
    payload = f'exec("import os; os.mkdir({str(marker)!r})", {{}})\n'
    exec(payload, {})
    assert marker.exists()
    os.rmdir(marker)
    try:
        Capsule().run(payload)
    except ImportError:
        pass
    assert not marker.exists()
