"""Real notebook libraries inside %%capsule (IPython InteractiveShell), with their profiles:
the matrix of tests/library_cases.py, canary-asserted refusals, and the registry's record.

The same cases run in the capsule kernel in tests/kernel/test_libraries.py."""

from __future__ import annotations

import re
import textwrap

import pytest
from IPython.core.displaypub import CapturingDisplayPublisher
from IPython.core.interactiveshell import InteractiveShell

from ipycap.engine.errors import CapabilityError
from tests.library_cases import CANARY, CANARY_WRITES, CSV, REFUSED, USER_OBJECTS, WORKS


@pytest.fixture(scope="module")
def _shell():
    shell = InteractiveShell.instance()
    shell.history_manager.enabled = False
    return shell


@pytest.fixture
def ip(_shell, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "t.csv").write_text(CSV)
    _shell.reset(new_session=False)
    saved = _shell.display_pub
    _shell.display_pub = CapturingDisplayPublisher()
    _shell.run_line_magic("load_ext", "ipycap")
    yield _shell
    _shell.run_line_magic("unload_ext", "ipycap")
    _shell.display_pub = saved
    _shell.reset(new_session=False)


def capsule_cell(imports: str, folders, source: str) -> str:
    flags = [f"--allow-import {imports}"] if imports else []
    flags += [f"--allow-{kind} data/" for kind in folders]
    return f"%%capsule {' '.join(flags)}\n{source}"


def run(ip, cell: str):
    result = ip.run_cell(textwrap.dedent(cell), store_history=False)
    return result.result, result.error_in_exec or result.error_before_exec


@pytest.mark.parametrize("name", sorted(WORKS))
def test_library_operation_works_in_a_capsule(ip, name):
    imports, folders, source, expected = WORKS[name]
    value, error = run(ip, capsule_cell(imports, folders, source))
    assert error is None, f"{name}: {error!r}"
    assert repr(value) == expected


@pytest.mark.parametrize("name", sorted(USER_OBJECTS))
def test_user_dataframe_through_library_calls(ip, name):
    """A user DataFrame reached through its (read-only) proxy and handed to numpy, pandas
    and matplotlib gives the answer plain Python gives, and stays unchanged."""
    import pandas as pd

    df = pd.DataFrame({"a": [1, 2, 3], "b": [4.0, 5.0, 6.0]})
    ip.user_ns["df"] = df
    imports, source, expected = USER_OBJECTS[name]
    value, error = run(ip, capsule_cell(imports, (), source))
    assert error is None, f"{name}: {error!r}"
    assert repr(value) == expected
    assert df.equals(pd.DataFrame({"a": [1, 2, 3], "b": [4.0, 5.0, 6.0]}))
    ip.user_ns["df"] = df.copy()
    plain, error = run(ip, source)
    assert error is None and repr(plain) == expected, (plain, error)


def test_protected_dataframe_with_objects_is_not_copied_into_a_library(ip):
    """Items of an object column are not copied: a trusted object among them would reach
    the capsule raw through the library's result, so the call is refused instead."""
    import pandas as pd

    class Secret:
        pass

    ip.user_ns["df"] = pd.DataFrame({"a": [1, 2], "o": [Secret(), Secret()]})
    value, error = run(ip, capsule_cell("pandas", (), "import pandas as pd\npd.concat([df, df])"))
    assert isinstance(error, CapabilityError) and "Python objects in a column" in str(error)
    # An object array's items come back wrapped, as any value derived from the target.
    from ipycap.engine.capsule import Capsule
    from ipycap.engine.membrane import Proxy

    capsule = Capsule(grants=[("import", "numpy")], protected={"df": ip.user_ns["df"]})
    capsule.run("import numpy as np\nitem = np.array(df)[0, 1]")
    assert type(capsule.namespace["item"]) is Proxy


@pytest.mark.parametrize("name", sorted(CANARY))
def test_payload_at_the_canary_is_refused(ip, canary, name):
    path, token = canary
    imports, template, words = CANARY[name]
    source = template.format(canary=str(path), outside=str(path.parent))
    value, error = run(ip, capsule_cell(imports, (), source))
    assert isinstance(error, CapabilityError), f"{name}: {error!r} / {value!r}"
    assert words in str(error)
    assert token not in repr(value) + str(error)
    # The same payload as plain Python reaches the canary: ipycap is what stopped it.
    plain, error = run(ip, source)
    assert error is None, error
    assert token in repr(plain) or "secret.txt" in repr(plain), plain


@pytest.mark.parametrize("name", sorted(CANARY_WRITES))
def test_native_write_outside_the_grants_is_refused(ip, tmp_path, name):
    outside = tmp_path / "outside"
    outside.mkdir()
    imports, template = CANARY_WRITES[name]
    target = outside / "new.file"
    value, error = run(ip, capsule_cell(imports, (), template.format(target=str(target))))
    assert isinstance(error, CapabilityError), f"{name}: {error!r}"
    assert "write access" in str(error)
    assert list(outside.iterdir()) == []
    _, error = run(ip, template.format(target=str(target)))
    assert error is None and list(outside.iterdir()), "plain Python writes the file"


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_profile_refusal(ip, name):
    imports, source, words = REFUSED[name]
    value, error = run(ip, capsule_cell(imports, (), source.format()))
    assert error is not None, f"{name} was not refused: {value!r}"
    assert words in str(error), f"{name}: {error}"


def test_refusals_name_the_package_to_grant(ip):
    """A library's lazy import the profile does not cover names the package, not the
    internal submodule (here: pandas' pyarrow engine without pandas' grant on pyarrow is
    covered; pyarrow itself asked for by the capsule names 'pyarrow')."""
    _, error = run(ip, capsule_cell("pandas", (), "import pyarrow.parquet"))
    assert "--allow-import pyarrow." in str(error)
    assert "pyarrow.parquet." not in str(error)


def test_library_classes_stay_unchanged_for_trusted_code(ip):
    import pandas as pd

    before = pd.DataFrame.to_csv
    run(ip, capsule_cell("pandas", (), "import pandas as pd\npd.DataFrame.to_csv = print"))
    assert pd.DataFrame.to_csv is before
    # Trusted code keeps the real methods: the checked ones are the originals there.
    assert pd.DataFrame({"a": [1]}).to_csv(index=False) == "a\n1\n"


LOADED_ON_ITS_OWN_BEHALF = """
import os, sys
os.chdir(sys.argv[1])
from ipycap.engine.capsule import Capsule
c = Capsule(grants=[("import", "pandas"), ("import", "matplotlib"), ("read", sys.argv[1])])
print(c.run("import pandas as pd\\nint(pd.read_csv('t.csv', engine='pyarrow').v.sum())"))
try:
    c.run("import pandas as pd\\npd.DataFrame({'a': [1]}).plot(backend='os')")
except Exception as e:
    print(type(e).__name__)
for e in c.registry.events:
    print(e["event"], e.get("target"), e.get("detail", ""), e.get("what", ""))
"""


def test_registry_records_what_a_library_did_on_its_own_behalf(tmp_path):
    """In a fresh process (nothing imported yet): pandas importing pyarrow lazily is recorded
    as a use of the pandas grant.  pandas asked (by the capsule's backend='os') to import a
    module by name is refused by the tripwire's import rule, although os is loaded already
    (stdlib_guards.import_module, red team 10), and the refusal is in the registry."""
    import subprocess
    import sys

    (tmp_path / "t.csv").write_text(CSV)
    out = subprocess.run(
        [sys.executable, "-c", LOADED_ON_ITS_OWN_BEHALF, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert out.splitlines()[0] == "6"
    assert re.search(r"use pandas pyarrow\S* \(loaded by pandas on its own behalf\)", out), out
    assert out.splitlines()[1] == "CapsulePermissionError"
    assert "import of 'os' (by pandas running for the capsule)" in out


def test_unprofiled_library_is_noted_in_the_registry(ip):
    value, error = run(ip, capsule_cell("csv", (), "import csv\n1"))
    assert error is None
    from ipycap.ipython.magics import extension_for

    notes = [e for e in extension_for(ip).registry.events if e.get("event") == "unprofiled library"]
    assert notes == []  # csv is the standard library: no note
    value, error = run(ip, capsule_cell("jupyter_kernel_test", (), "import jupyter_kernel_test\n1"))
    assert error is None, error
    notes = [e for e in extension_for(ip).registry.events if e.get("event") == "unprofiled library"]
    assert notes and re.search(r"native \(C/Rust\).*confined kernel", str(notes[-1]))


PROTECTED_WITHOUT_IMPORT = """
import os, sys
import pandas as pd
from ipycap.engine.capsule import Capsule
df = pd.DataFrame({"a": [1, 2]})
c = Capsule(grants=[("write", sys.argv[1])], protected={"df": df})
try:
    c.run(f"df.to_pickle({sys.argv[1]!r} + '/x.pkl')")
except Exception as e:
    print(type(e).__name__, e)
print(sorted(os.listdir(sys.argv[1])))
"""


def test_profiles_apply_to_a_protected_object_whose_library_the_capsule_never_imported(
    tmp_path,
):
    """In a fresh process: a user's DataFrame reaches a capsule that imports nothing.  The
    pandas profile's checks apply to it all the same (the membrane installs them when it
    first meets a profiled class): to_pickle is refused even into a granted folder."""
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-c", PROTECTED_WITHOUT_IMPORT, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout.splitlines()
    assert "to_pickle" in out[0] and "refused by the pandas profile" in out[0], out
    assert out[1] == "[]", out
