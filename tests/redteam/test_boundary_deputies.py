"""Regression tests (red team 4, rt-limits): trusted "deputies" that change process-wide state
for a capsule, and capsule state that flows back to trusted code after the cell.

Classes: (A) grantable stdlib modules whose functions resolve a dotted name and set attributes
on what they find (``unittest.mock.patch``), or write interpreter-wide tables trusted code then
uses (``gettext.install`` -> ``builtins._``, ``warnings`` filters, ``csv`` dialects); on Python
3.11 setting an arbitrary class attribute raises no audit event, so such modules are not
grantable at all (policy.GRANTABLE_STDLIB) or show refusing stand-ins (engine/deputies.py).
(B) a capsule object left in ``sys.stdout`` and the other ``sys`` hooks: put back after every
cell.  (C) the capsule thread's ``contextvars`` (numpy 2's error state) no longer flow back.
"""

from __future__ import annotations

import builtins
import sys

import pytest

from ipycap import Capsule
from ipycap.engine.errors import CapabilityError
from ipycap.engine.policy import CapsulePolicy
from tests.redteam.shell_cells import run_script, run_shell, token

# -- A. grantable stdlib deputies -----------------------------------------------------------

MOCK_SCRIPT = r"""
import json, os, sys
from IPython.core.interactiveshell import InteractiveShell
sh = InteractiveShell.instance()
sh.history_manager.enabled = False
sh.run_line_magic("load_ext", "ipycap")
marker = sys.argv[1]
r = sh.run_cell('''%%capsule --allow-import unittest
import unittest.mock, functools
def grab(self, *a, **k):
    shell = self.shell
    code = "open(MARKER, 'w').write('escaped')"
    shell.events.register("post_execute", functools.partial(shell.ex, code))
    patcher.stop()
patcher = unittest.mock.patch("IPython.core.displayhook.DisplayHook.__call__", grab)
patcher.start()
'''.replace("MARKER", repr(marker)))
sh.run_cell("1 + 1")
sh.run_cell("2 + 2")
sys.__stdout__.write(json.dumps({"capsule_ok": r.success}) + "\n")
"""


def test_unittest_mock_patch_hands_the_raw_shell_to_capsule_code(tmp_path):
    marker = tmp_path / "outside" / "escaped.txt"
    marker.parent.mkdir()
    run_script(tmp_path, MOCK_SCRIPT, str(marker))
    # Canary: a file outside every grant, written with the shell's authority.
    assert not marker.exists()


class Victim:
    def method(self):
        return "trusted"


@pytest.mark.parametrize(
    "module, source",
    [
        ("unittest", "import unittest.mock\nunittest.mock.patch('{mod}.Victim.method', f).start()"),
        ("unittest.mock", "import unittest.mock\nunittest.mock.patch.object(V, 'method', f)"),
        ("pkgutil", "import pkgutil\npkgutil.resolve_name('{mod}:Victim')"),
        ("gettext", "import gettext\ngettext.install('x')"),
        ("warnings", "import warnings\nwarnings.simplefilter('error')"),
        ("locale", "import locale\nlocale.setlocale(locale.LC_ALL, 'C')"),
        ("argparse", "import argparse"),
        ("email", "import email.charset\nemail.charset.add_charset('utf-8', None, None)"),
        ("mimetypes", "import mimetypes\nmimetypes.add_type('text/x-capsule', '.py')"),
        ("atexit", "import atexit"),
    ],
    ids=lambda v: v if "\n" not in v else "",
)
def test_stdlib_deputy_modules_are_not_grantable(module, source):
    """Neither granted nor imported: the refusal names the policy list, no useless hint."""
    with pytest.raises(CapabilityError) as granted:
        Capsule(grants=[("import", module)])
    assert granted.value.how is None
    with pytest.raises(CapabilityError) as imported:
        Capsule().run(source.format(mod=__name__), namespace={"f": print})
    assert imported.value.how is None
    assert Victim().method() == "trusted"


def test_a_deputy_module_loaded_by_stdlib_code_still_works_for_it():
    """'internal' modules: what stdlib code imports on a capsule's behalf still loads."""
    policy = CapsulePolicy()
    assert policy.import_tier("unittest.mock") == "internal"
    assert policy.import_tier("warnings") == "internal"
    assert policy.import_tier("csv") == "grantable"
    assert policy.import_tier("contextlib") == "grantable"
    assert policy.import_tier("numpy") == "grantable"  # not stdlib: libraries are profiled
    assert Capsule(grants=[("import", "csv")]).run("import csv\ncsv.QUOTE_ALL") == 1


def test_gettext_install_writes_the_real_builtins():
    before = builtins.__dict__.get("_", None)
    try:
        capsule = Capsule(grants=[("import", "gettext")])
        capsule.run(
            "import gettext\n"
            "class T(gettext.NullTranslations):\n"
            "    def gettext(self, message):\n"
            "        return 'CAPSULE:' + message\n"
            "T().install()\n"
        )
    except Exception:  # noqa: BLE001, S110 - a refusal is the fix
        pass
    now = builtins.__dict__.get("_", None)
    if now is not before:  # leave the interpreter as it was for the other tests
        if before is None:
            builtins.__dict__.pop("_", None)
        else:
            builtins.__dict__["_"] = before
    # Canary: the process's real builtins hold a capsule method.
    assert now is before, now


def test_warnings_filter_set_in_a_capsule_makes_later_trusted_code_fail():
    import warnings

    saved = list(warnings.filters)
    try:
        capsule = Capsule(grants=[("import", "warnings")])
        capsule.run("import warnings\nwarnings.filterwarnings('error')")
    except Exception:  # noqa: BLE001, S110 - a refusal is the fix
        pass
    try:
        with warnings.catch_warnings():
            warnings.filters[:] = list(warnings.filters)  # as the capsule left them
            try:
                warnings.warn("a trusted, harmless warning", UserWarning, stacklevel=1)
                failed = False
            except UserWarning:
                failed = True
    finally:
        warnings.filters[:] = saved
    # Canary: trusted code raises on a warning because of the capsule's filter.
    assert not failed


@pytest.mark.parametrize(
    "grant, source, check",
    [
        ("csv", "import csv\ncsv.register_dialect('excel', delimiter=';')", "excel"),
        ("csv", "import csv\ncsv.unregister_dialect('excel')", "excel"),
        ("csv", "import csv\ncsv.field_size_limit(1)", "limit"),
        ("xml", "import xml.etree.ElementTree as E\nE.register_namespace('cap', 'urn:x')", "ns"),
        ("contextlib", "import contextlib\ncontextlib.redirect_stdout(None).__enter__()", "out"),
        ("contextlib", "from contextlib import redirect_stderr\nredirect_stderr(None)", "out"),
        ("contextlib", "import contextlib\ncontextlib.chdir('/').__enter__()", "cwd"),
    ],
    ids=["csv-dialect", "csv-unregister", "csv-limit", "xml-ns", "stdout", "stderr", "chdir"],
)
def test_grantable_stdlib_functions_on_process_wide_tables_are_refused(grant, source, check):
    import csv
    import os
    import xml.etree.ElementTree as ET

    before = (csv.get_dialect("excel").delimiter, csv.field_size_limit(), dict(ET._namespace_map))
    capsule = Capsule(grants=[("import", grant)])
    capsule.run("1")  # the process streams are guarded from the first cell on (ProcessStream)
    cwd, out = os.getcwd(), sys.stdout
    with pytest.raises(PermissionError):
        capsule.run(source)
    assert (csv.get_dialect("excel").delimiter, csv.field_size_limit()) == before[:2]
    assert dict(ET._namespace_map) == before[2]
    assert os.getcwd() == cwd and sys.stdout is out
    # Reading stays possible.
    assert capsule.run("import csv\ncsv.field_size_limit()") == before[1] if grant == "csv" else 1


# -- B. a capsule object left in sys.stdout --------------------------------------------------

TAP_SCRIPT = r"""
import json, sys
from IPython.core.interactiveshell import InteractiveShell
sh = InteractiveShell.instance()
sh.history_manager.enabled = False
sh.run_line_magic("load_ext", "ipycap")
sh.run_cell('''%%capsule --allow-import contextlib
import contextlib
class Tap:
    seen = []
    def write(self, s):
        if s == "DUMP":
            raise ValueError("".join(Tap.seen))
        Tap.seen.append(s)
        return len(s)
    def flush(self):
        pass
contextlib.redirect_stdout(Tap()).__enter__()
''')
sh.run_cell("print('a trusted cell prints its secret:', TOKEN)".replace("TOKEN", repr(sys.argv[1])))
r = sh.run_cell('''%%capsule
try:
    print("DUMP", end="")
    leaked = None
except ValueError as e:
    leaked = str(e)
leaked
''')
sys.__stdout__.write("\n" + json.dumps({"leaked": r.result, "stdout": type(sys.stdout).__name__}) + "\n")
"""


def test_capsule_object_left_in_sys_stdout_reads_later_trusted_output(tmp_path):
    tok = token()
    rec = run_script(tmp_path, TAP_SCRIPT, tok)
    # Canary: a grant-less capsule cell gets the secret a trusted cell printed after it.
    assert tok not in str(rec["leaked"]) and rec["stdout"] != "Tap", rec


@pytest.mark.parametrize(
    "name", ["stdout", "stderr", "stdin", "displayhook", "excepthook", "unraisablehook"]
)
def test_sys_hooks_a_deputy_set_during_a_cell_are_put_back(name):
    """Whatever path a deputy takes to the raw sys (here a trusted function handed to the
    capsule), the cell's end puts back what was there."""
    Capsule().run("1")  # the process streams are guarded from the first cell on
    before = getattr(sys, name)

    def deputy(obj):
        setattr(sys, name, obj)

    try:
        Capsule(protected={"deputy": deputy}).run(
            "class Tap:\n    def write(self, s):\n        return len(s)\n"
            "    def flush(self):\n        pass\n"
            "    def __call__(self, *a):\n        pass\n"
            "deputy(Tap())",
        )
        now = getattr(sys, name)
    finally:
        setattr(sys, name, before)
    assert now is before, now


# -- C. the capsule thread's context variables stay on the capsule thread -------------------


def test_numpy_error_callback_set_in_a_capsule_is_called_by_a_later_trusted_cell(tmp_path):
    tok = token()
    capsule = (
        "%%capsule --allow-import numpy\n"
        "import numpy as np\n"
        "def spy(kind, flag):\n"
        f"    print('{tok}', kind)\n"
        "np.seterrcall(spy)\n"
        "np.seterr(all='call')\n"
    )
    trusted = "import numpy as np\nx = np.float64(1.0) / 0\nstr(np.geterr())"
    _, rec = run_shell(tmp_path, {"source": capsule}, {"source": trusted})
    # Canary: trusted numpy calls the capsule's function in a later, trusted cell.
    assert tok not in rec["stdout"] and "call" not in (rec["result"] or ""), rec


def test_numpy_error_state_set_in_a_capsule_makes_a_later_trusted_cell_fail(tmp_path):
    capsule = "%%capsule --allow-import numpy\nimport numpy as np\nnp.seterr(all='raise')"
    trusted = "import numpy as np\nfloat(np.float64(1.0) / 0)"
    _, rec = run_shell(tmp_path, {"source": capsule}, {"source": trusted})
    # Canary: the trusted cell raises FloatingPointError (it returns inf without the capsule).
    assert rec["error"] is None, rec


def test_a_context_variable_set_by_capsule_code_does_not_reach_the_caller():
    import contextvars

    var = contextvars.ContextVar("rt_limits_option", default="trusted")
    Capsule(protected={"setter": var.set}).run("setter('capsule')")
    assert var.get() == "trusted"


def test_decimal_context_changes_still_hold_for_the_capsule_and_not_the_caller():
    import decimal

    capsule = Capsule()
    capsule.run("import decimal\ndecimal.getcontext().prec = 5")
    assert capsule.run("import decimal\ndecimal.getcontext().prec") == 5
    assert decimal.getcontext().prec != 5
