"""Module names a capsule controls never decide whose module trusted code writes or reads.

``enum.global_enum`` writes an enum's members into ``sys.modules[cls.__module__]`` and
``Enum._convert_`` reads (and writes) a named module's globals.  The guards let the call
through when the caller's ``__name__`` equalled the module name -- but a capsule sets both
``__name__`` (a top-level assignment) and ``__module__`` (in the class body): naming its cell
and its enum ``ipycap.engine.rules`` replaced ``rules.classify`` and ended with raw ``sys``
and an open of any file (red team 1, finding 6).  The guards now compare the caller's globals
with the module's namespace by identity.  As plain Python each payload writes into the named
module (shown on a scratch module the test creates).
"""

import sys
import types

import pytest

from ipycap import Capsule
from ipycap.engine import rules, tripwire

GLOBAL_ENUM = """
import enum
__name__ = {module!r}
@enum.global_enum
class E(enum.Enum):
    __module__ = {module!r}
    classify = 1
    def __call__(self, name):
        return 'allow'
"""

CONVERT = """
import enum
__name__ = {module!r}
E = enum.IntEnum._convert_('E', {module!r}, lambda name: name.isupper(), as_global=True)
"""

SPOOFED = ["ipycap.engine.rules", "__main__", "ipycap.engine.tripwire"]


@pytest.mark.parametrize("module", SPOOFED)
@pytest.mark.parametrize("payload", [GLOBAL_ENUM, CONVERT], ids=["global_enum", "_convert_"])
def test_a_capsule_cannot_write_into_a_module_it_names(payload, module):
    target = sys.modules[module]
    before = dict(vars(target))
    classify = rules.classify
    try:
        with pytest.raises(PermissionError, match="enum"):
            Capsule().run(payload.format(module=module))
        assert rules.classify is classify
        assert {k: v for k, v in vars(target).items() if before.get(k) is not v} == {}
    finally:
        rules.classify = classify
        tripwire._armed = True
        for k in set(vars(target)) - set(before):
            delattr(target, k)


@pytest.mark.parametrize("payload", [GLOBAL_ENUM, CONVERT], ids=["global_enum", "_convert_"])
def test_plain_python_writes_into_the_named_module(payload):
    name = "ipycap_scratch_module_for_spoofing"
    scratch = types.ModuleType(name)
    scratch.classify = "original"
    sys.modules[name] = scratch
    try:
        exec(payload.format(module=name), {"__name__": "x"})
        assert scratch.classify != "original" or "E" in vars(scratch)
    finally:
        del sys.modules[name]


def test_type_names_a_class_after_the_capsule_not_after_ipycap():
    """``type(name, bases, ns)`` in a capsule named the class's module after the engine's
    builtins module (the frame that called the real type), so deputies that look a class's
    module up by name found ipycap's own; it is the capsule's module now, as in plain Python."""
    made = Capsule().run("X = type('X', (), {})\nclass Y: pass\n(X.__module__, Y.__module__)")
    assert made[0] == made[1] and not made[0].startswith("ipycap")
