"""numpy never gets raw memory from an object capsule code shapes (ipycap/engine/arrayguard.py).

Canary: a bytes object holding a random token, whose address the test knows.  Each payload
builds an ``__array_interface__`` at that address (read-only: nothing is ever written to
memory the test does not own) in one of the ways a capsule can make an object answer it,
and hands the object to granted numpy.  In a capsule it must not get the token; as plain
Python the same source must (or the payload is not a real attack)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from ipycap.engine.errors import CapabilityError
from tests import test_libraries
from tests.array_payloads import EXTRA_IMPORTS, PAYLOADS, N, source_for
from tests.test_libraries import capsule_cell, run

# The %%capsule shell of tests/test_libraries.py (its fixtures, shared).
_shell, ip = test_libraries._shell, test_libraries.ip


@pytest.fixture
def canary():
    token = os.urandom(N // 2).hex().encode()
    held = bytes(bytearray(token))  # a fresh object: its ob_sval is where the token is
    address = id(held) + bytes.__basicsize__ - 1
    yield held, address
    del held


@pytest.mark.parametrize("name", sorted(PAYLOADS))
def test_capsule_object_never_hands_numpy_an_address(ip, canary, name):
    held, address = canary
    source = source_for(name, address)
    imports = ",".join(["numpy", *EXTRA_IMPORTS.get(name, "").split(",")]).strip(",")
    value, error = run(ip, capsule_cell(imports, (), source))
    assert held not in repr(value).encode() + str(error).encode(), f"{name} read the canary"
    if error is not None:
        assert isinstance(error, CapabilityError), f"{name}: {error!r}"
    else:  # numpy saw no interface: an object array, not the canary's bytes
        assert held not in value
    # The same source as plain Python, in a process without ipycap (its hooks are
    # process-wide), reads its own canary: ipycap is what stopped it.
    out = subprocess.run(
        [sys.executable, "-c", PLAIN, name],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": os.path.dirname(os.path.dirname(__file__))},
    )
    assert out.stdout.strip() == "read", f"{name} is not a real attack in plain Python: {out}"


PLAIN = """
import os, sys
from tests.array_payloads import source_for
assert "ipycap" not in sys.modules
held = bytes(bytearray(os.urandom(8).hex().encode()))
ns = {}
exec(source_for(sys.argv[1], id(held) + bytes.__basicsize__ - 1).rsplit("\\n", 1)[0], ns)
print("read" if ns["r"].tobytes() == held else "not read")
"""


def test_refusal_says_what_and_which_layer(ip, canary):
    _, address = canary
    _, error = run(ip, capsule_cell("numpy", (), source_for("class-attribute", address)))
    assert isinstance(error, TypeError)
    assert "__array_interface__ of A" in str(error)
    assert "array protocols" in str(error) and "np.frombuffer" in str(error)


ORDINARY = """
import numpy as np
class P:
    pass
class MA(np.ndarray):
    pass
m = np.arange(3).view(MA)
(np.array([P(), P()]).dtype.kind, np.array(P()).dtype.kind, hasattr(P(), '__array_interface__'),
 m.__array_interface__['shape'], np.asarray(m).tolist(), type(m.__array_struct__).__name__)
"""


def test_ordinary_objects_and_ndarray_subclasses_keep_plain_behaviour(ip):
    value, error = run(ip, capsule_cell("numpy", (), ORDINARY))
    assert error is None, error
    assert value == ("O", "O", False, (3,), [0, 1, 2], "PyCapsule")


def test_trusted_classes_keep_their_array_interface():
    """Classes trusted code makes (a library's) are not touched: only capsule-made ones."""
    import numpy as np

    from ipycap.engine import arrayguard

    assert arrayguard.install()

    class Exporter:
        def __init__(self):
            self.buf = np.arange(4, dtype=np.uint8)
            self.__array_interface__ = self.buf.__array_interface__

    assert np.asarray(Exporter()).tolist() == [0, 1, 2, 3]
    assert not arrayguard.is_guarded(Exporter)


def test_the_guard_a_class_carries_cannot_be_changed(ip):
    """vars(cls) hands the capsule the descriptor: its fields are not writable."""
    source = (
        "class A:\n    pass\nd = vars(A)['__array_interface__']\nout = []\n"
        "for attempt in (lambda: setattr(d, 'inherited', 5), lambda: delattr(d, 'defined')):\n"
        "    try:\n        attempt()\n        out.append('changed')\n"
        "    except AttributeError as e:\n        out.append(type(e).__name__)\nout"
    )
    value, error = run(ip, capsule_cell("numpy", (), source))
    assert error is None, error
    assert value == ["CapsuleAttributeError", "CapsuleAttributeError"]
