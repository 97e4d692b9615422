"""Capsule builtins, specified: imports follow the three tiers and hand out read-only module
views; ``open`` checks the real path against the grants; eval/exec/compile go through the
gate; interactive and shell-reaching builtins are absent or refuse."""

from __future__ import annotations

import os
import sys

import pytest

from ipycap import (
    Capsule,
    CapsuleAttributeError,
    CapsuleImportError,
    CapsulePermissionError,
    CapsulePolicyError,
    CapsuleTypeError,
)
from ipycap.engine.errors import CapabilityError


def run(source, **kwargs):
    return Capsule(**kwargs).run(source)


# -- imports ---------------------------------------------------------------------------------
def test_default_import_is_allowed_and_logged_as_a_use():
    capsule = Capsule()
    assert capsule.run("import math\nmath.floor(2.5)") == 2
    caps = capsule.registry.find("import", "math")
    assert caps and caps[0].uses >= 1 and caps[0].granted_by == "default"


@pytest.mark.parametrize(
    "stmt, module",
    [
        ("import os", "os"),
        ("import subprocess", "subprocess"),
        ("from os import path", "os"),
        ("import ctypes", "ctypes"),
        ("import pickle", "pickle"),
        ("import importlib", "importlib"),
        ("import builtins", "builtins"),
        ("import types", "types"),
        ("import IPython", "IPython"),
        ("from IPython.core import getipython", "IPython"),
        ("import gc", "gc"),
        ("import inspect", "inspect"),
    ],
)
def test_denied_import_is_refused_and_never_grantable(stmt, module):
    with pytest.raises(CapsuleImportError) as info:
        run(stmt)
    assert module in str(info.value)
    assert "cannot be granted" in str(info.value)
    assert isinstance(info.value, ImportError) and isinstance(info.value, CapabilityError)
    with pytest.raises(CapsulePolicyError, match="never grantable"):
        Capsule(grants=[("import", module)])


def test_grantable_import_needs_a_grant_and_names_the_flag():
    with pytest.raises(CapsuleImportError) as info:
        run("import csv")
    assert "--allow-import csv" in str(info.value)
    assert run("import csv\ncsv.QUOTE_ALL", grants=[("import", "csv")]) == 1


def test_grant_of_a_package_covers_its_submodules():
    src = "import xml.etree.ElementTree as ET\nET.fromstring('<a>1</a>').text"
    assert run(src, grants=[("import", "xml")]) == "1"


def test_relative_import_is_refused():
    with pytest.raises(CapsuleImportError):
        run("from . import x")


def test_sys_is_a_capsule_safe_view():
    assert run("import sys\nsys.version_info[0]") == sys.version_info[0]
    assert run("import sys\nsys.maxsize") == sys.maxsize
    for name in (
        "modules",
        "_getframe",
        "settrace",
        "path",
        "meta_path",
        "stdin",
        "exit",
        "addaudithook",
    ):
        with pytest.raises(AttributeError):
            run(f"import sys\nsys.{name}")


def test_print_to_sys_stderr_works(capsys):
    run("import sys\nprint('oops', file=sys.stderr)\nsys.stdout.write('hi')")
    out = capsys.readouterr()
    assert "oops" in out.err and "hi" in out.out


def test_stream_facade_does_not_reach_the_real_stream():
    with pytest.raises(AttributeError):
        run("import sys\nsys.stdout.buffer")


def test_ipython_display_view():
    assert run("from IPython.display import display, HTML\ncallable(display)") is True
    with pytest.raises(CapsuleImportError):
        run("from IPython.core.display import display")
    with pytest.raises(ImportError):
        run("from IPython.display import get_ipython")


# -- module views ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "expr",
    [
        "random._os",
        "collections._sys",
        "re._compiler",
        "random._inst",
        "math.__loader__",
        "math.__spec__",
        "getattr(random, '_os')",
        "random.__dict__",
        "vars(random)",
    ],
)
def test_module_views_hide_private_names(expr):
    with pytest.raises((AttributeError, CapsuleImportError)):
        run("import random, collections, json, re, math\n" + expr)


@pytest.mark.parametrize(
    "src",
    [
        # A module's raw 'sys' (or 'builtins', 'types', 'inspect', 'os') attribute: reaching
        # it hands out sys.modules and with it every module of the process.
        "import datetime\ndatetime.sys.modules",
        "import fractions\nfractions.sys.modules",
        "import statistics\nstatistics.sys.modules",
        "import calendar\ncalendar.sys.modules",
        "import enum\nenum.sys.modules",
        "import enum\nenum.bltns.open",
        "import typing\ntyping.sys.modules",
        "import typing\ntyping.types.FunctionType",
        "import dataclasses\ndataclasses.sys.modules",
        "import dataclasses\ndataclasses.inspect.currentframe",
        "import dataclasses\ndataclasses.builtins.open",
        "import random\nrandom._os",
        "import collections\ncollections._sys",
        "import re\nre.copyreg.dispatch_table",
        "import json\njson.codecs.open",
    ],
)
def test_module_attribute_that_is_a_denied_module_is_refused(src):
    with pytest.raises((CapsuleImportError, AttributeError)):
        run(src)


def test_raw_sys_modules_never_reaches_a_capsule(canary):
    # Regression: 'datetime.sys' was a view of the raw sys module, and sys.modules['io'].open
    # read any file once the tripwire was disarmed through sys.modules['ipycap.engine.tripwire'].
    secret, token = canary
    src = (
        "import datetime\n"
        "m = datetime.sys.modules\n"
        "m['ipycap.engine.tripwire'].disarm()\n"
        f"m['io'].open({str(secret)!r}).read()"
    )
    try:
        from ipycap.engine import tripwire

        result = None
        with pytest.raises((CapsuleImportError, AttributeError)):
            result = run(src)
        assert token not in str(result)
    finally:
        tripwire.install()  # re-arm in case the payload disarmed it


def test_module_attribute_that_is_an_allowed_module_is_a_view():
    assert "capsule view" in repr(run("import json\njson.decoder"))
    assert run("import textwrap\ntextwrap.re.escape('.')") == "\\."


def test_module_views_are_read_only():
    with pytest.raises(CapsuleTypeError):
        run("import math\nmath.pi = 3")
    with pytest.raises(CapsuleTypeError):
        run("import math\ndel math.pi")
    with pytest.raises(CapsuleTypeError):
        run("import math\nsetattr(math, 'pi', 3)")
    import math

    assert math.pi != 3


def test_module_view_dir_and_repr():
    names = run("import math\ndir(math)")
    assert "sqrt" in names and not any(n.startswith("_") for n in names)
    assert run("import math\nmath.__name__") == "math"
    assert "math" in run("import math\nrepr(math)")


def test_string_formatter_is_guarded():
    from ipycap.engine.guard import GuardedFormatter

    assert run("import string\nstring.Formatter") is GuardedFormatter
    assert run("from string import Formatter\nFormatter().format('{0}', 1)") == "1"
    with pytest.raises(CapsuleAttributeError):
        run("from string import Formatter\nFormatter().format('{0.__globals__}', len)")


def test_from_import_of_a_guarded_name_gets_the_guarded_one():
    from ipycap.engine import guard

    assert run("from operator import attrgetter\nattrgetter") is guard.attrgetter


# -- files -------------------------------------------------------------------------------------
@pytest.fixture
def tree(tmp_path, canary):
    granted = tmp_path / "granted"
    granted.mkdir()
    (granted / "data.txt").write_text("public")
    secret, token = canary
    return granted, secret, token


def test_read_of_a_granted_file_works(tree):
    granted, _secret, _token = tree
    src = f"open({str(granted / 'data.txt')!r}).read()"
    assert run(src, grants=[("read", str(granted))]) == "public"


def test_read_outside_grants_is_refused_with_the_flag(tree):
    _granted, secret, token = tree
    with pytest.raises(CapsulePermissionError) as info:
        run(f"open({str(secret)!r}).read()")
    assert "--allow-read" in str(info.value)
    assert token not in str(info.value)


def test_symlink_out_of_a_granted_dir_is_refused(tree):
    granted, secret, token = tree
    (granted / "link").symlink_to(secret)
    with pytest.raises(CapsulePermissionError):
        run(f"open({str(granted / 'link')!r}).read()", grants=[("read", str(granted))])


def test_dotdot_out_of_a_granted_dir_is_refused(tree):
    granted, secret, _ = tree
    path = os.path.join(str(granted), "..", "outside", "secret.txt")
    with pytest.raises(CapsulePermissionError):
        run(f"open({path!r}).read()", grants=[("read", str(granted))])


def test_proc_self_root_is_resolved(tree):
    granted, secret, _ = tree
    via_root = "/proc/self/root" + str(secret)
    with pytest.raises(CapsulePermissionError):
        run(f"open({via_root!r}).read()", grants=[("read", str(granted))])
    ok = "/proc/self/root" + str(granted / "data.txt")
    assert run(f"open({ok!r}).read()", grants=[("read", str(granted))]) == "public"


def test_hard_link_into_a_granted_dir_is_refused(tree):
    granted, secret, token = tree
    os.link(secret, granted / "hard.txt")
    with pytest.raises(CapsulePermissionError, match="hard link"):
        run(f"open({str(granted / 'hard.txt')!r}).read()", grants=[("read", str(granted))])


def test_write_grant_does_not_imply_read(tree):
    granted, _, _ = tree
    with pytest.raises(CapsulePermissionError, match="read"):
        run(f"open({str(granted / 'data.txt')!r}).read()", grants=[("write", str(granted))])
    with pytest.raises(CapsulePermissionError):
        run(f"open({str(granted / 'data.txt')!r}, 'r+')", grants=[("write", str(granted))])


def test_read_grant_does_not_imply_write(tree):
    granted, _, _ = tree
    with pytest.raises(CapsulePermissionError, match="write"):
        run(f"open({str(granted / 'new.txt')!r}, 'w')", grants=[("read", str(granted))])
    assert not (granted / "new.txt").exists()


def test_write_to_a_granted_dir_works(tree):
    granted, _, _ = tree
    src = f"with open({str(granted / 'out.txt')!r}, 'w') as f:\n    f.write('done')\n"
    run(src, grants=[("write", str(granted))])
    assert (granted / "out.txt").read_text() == "done"


def test_open_by_file_descriptor_or_opener_is_refused(tree):
    with pytest.raises(CapsulePermissionError):
        run("open(0)")
    granted, _, _ = tree
    with pytest.raises(CapsuleTypeError):
        run(f"open({str(granted / 'data.txt')!r}, opener=print)", grants=[("read", str(granted))])


def test_proc_self_fd_cannot_leave_the_grant(tree):
    granted, _, _ = tree
    with pytest.raises(CapsulePermissionError):
        run("open('/proc/self/fd/0').read()", grants=[("read", str(granted))])


def test_allow_write_on_a_sys_path_entry_is_refused(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(CapsulePolicyError, match="sys.path"):
        Capsule(grants=[("write", str(tmp_path))])


def test_writing_a_module_into_a_sys_path_entry_is_refused(tmp_path, monkeypatch):
    sub = tmp_path / "pkgroot"
    sub.mkdir()
    grant_root = tmp_path
    capsule = Capsule(grants=[("write", str(grant_root))])
    monkeypatch.syspath_prepend(str(sub))
    with pytest.raises(CapsulePermissionError, match="write-then-import"):
        capsule.run(f"open({str(sub / 'evil.py')!r}, 'w')")
    assert not (sub / "evil.py").exists()


# -- code builtins ----------------------------------------------------------------------------
def test_eval_and_exec_go_through_the_gate():
    assert run("eval('1 + 2')") == 3
    assert run("ns = {}\nexec('x = 4', ns)\nns['x']") == 4
    with pytest.raises(CapsuleAttributeError):
        run("eval('object.__subclasses__()')")
    with pytest.raises(CapsuleAttributeError):
        run("exec('object.__subclasses__()')")
    with pytest.raises(SyntaxError):
        run("exec('__builtins__')")


def test_exec_with_fresh_globals_gets_capsule_builtins_not_the_real_ones():
    with pytest.raises(CapsuleImportError):
        run("exec('import os', {})")
    with pytest.raises(CapsuleImportError):
        run("exec('import os', {'__builtins__': {'__import__': 1}})")


def test_compile_returns_an_opaque_handle_only_gated_exec_accepts():
    handle = run("compile('1 + 1', 'x', 'eval')")
    assert "capsule code" in repr(handle)
    assert run("c = compile('1 + 1', 'x', 'eval')\neval(c)") == 2
    for attr in ("co_code", "__ipycap_code__", "__class__.__dict__"):
        with pytest.raises(AttributeError):
            run(f"c = compile('1', 'x', 'eval')\nc.{attr}")
    with pytest.raises(CapsuleTypeError):
        run("compile('1', 'x', 'exec', 0x400)")  # ast.PyCF_ONLY_AST


def test_exec_refuses_raw_code_objects():
    with pytest.raises(CapsuleTypeError):
        run("def f(): pass\nexec(type(f).__init__)")


@pytest.mark.parametrize(
    "name", ["help", "breakpoint", "exit", "quit", "license", "copyright", "credits"]
)
def test_interactive_builtins_refuse(name):
    with pytest.raises((CapsuleTypeError, NameError)):
        run(f"{name}()")


def test_input_refuses_without_a_grant():
    with pytest.raises(CapsulePermissionError, match="allow_input"):
        run("input('password: ')")


@pytest.mark.parametrize("name", ["get_ipython", "In", "Out", "_ih", "__IPYTHON__"])
def test_ipython_names_are_absent(name):
    with pytest.raises(NameError):
        run(name)


def test_display_is_the_capsules_own_not_ipythons():
    """display() is a capsule builtin (issue 12), and it is ipycap's capsule-side one, the
    same as IPython.display.display in the capsule: never IPython's, which would call capsule
    methods with IPython's real printer."""
    import IPython.display

    from ipycap.engine import output

    assert run("display") is output.display
    assert run("from IPython.display import display as d\nd") is output.display
    assert run("display") is not IPython.display.display


def test_capsule_builtins_are_a_fresh_dict_per_capsule():
    a, b = Capsule(), Capsule()
    assert a.builtins is not b.builtins
    import builtins

    assert a.builtins is not vars(builtins)
    assert a.builtins["open"] is not builtins.open


def test_type_with_three_arguments_makes_an_own_class():
    assert run("C = type('C', (), {'x': 1})\nC().__dict__") == {}
    assert run("C = type('C', (), {'x': 1})\nvars(C)['x']") == 1


def test_globals_is_read_only():
    with pytest.raises(TypeError):
        run("globals()['x'] = 1")
