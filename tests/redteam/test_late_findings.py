"""Escapes the red team found in the engine after the corpus was written, kept as named
regression tests (each with its plain-Python demonstration)."""

from __future__ import annotations

import json
import subprocess
import sys

from ipycap import Capsule

_SPY = (
    "import json\nstolen = []\n"
    "def spy(self, s, *a, **k):\n    stolen.append(s)\n    return None\n"
    "json.JSONDecoder.decode = spy\n"
)


def test_monkeypatched_stdlib_class_receives_no_trusted_data():
    """A capsule replaced json.JSONDecoder.decode (plain class attribute stores are native
    bytecode and raise no audit event), and trusted code's next json.loads handed its data
    to capsule code.  Fixed by freezing standard-library classes a capsule can reach."""
    capsule = Capsule()
    try:
        capsule.run(_SPY)
    except Exception:  # noqa: BLE001 - the refusal is the fix
        pass
    assert json.loads('"TRUSTED-SECRET"') == "TRUSTED-SECRET"
    assert "TRUSTED-SECRET" not in str(capsule.namespace.get("stolen"))


def test_the_same_monkeypatch_reaches_the_data_in_plain_python():
    """In a fresh interpreter (no class frozen yet) the payload steals trusted data."""
    code = _SPY + "json.loads('\"TRUSTED-SECRET\"')\nprint(stolen)\n"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    assert "TRUSTED-SECRET" in out
