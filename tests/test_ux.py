"""The extension as a new user meets it (InteractiveShell): one-line refusals, "did you mean",
hints that work, a narrowed ceiling, and grants asked for at the moment of access."""

from __future__ import annotations

import builtins
import io
import os
import sys

import pytest
from IPython.core.error import UsageError

from ipycap.engine.approval import APPROVAL_PREFIX, CAPSULE_INPUT_PREFIX
from ipycap.engine.errors import (
    CapsuleImportError,
    CapsulePermissionError,
    CapsulePolicyError,
    CapsuleTypeError,
)
from tests import test_magics as shared
from tests.test_magics import plain

_shell = shared._shell
ip = shared.ip


class Human:
    """Stands in for the person at the terminal: records each prompt, answers in turn."""

    def __init__(self, *answers: str):
        self.answers = list(answers)
        self.prompts: list[str] = []

    def __call__(self, prompt=""):
        self.prompts.append(prompt)
        return self.answers.pop(0) if self.answers else "n"


@pytest.fixture
def data(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "notes.txt").write_text("NOTES")
    (tmp_path / "data" / "more.txt").write_text("MORE")
    return tmp_path / "data"


def human(monkeypatch, *answers) -> Human:
    h = Human(*answers)
    monkeypatch.setattr(builtins, "input", h)
    return h


QUESTION = (
    APPROVAL_PREFIX + "Allow read access to 'data/notes.txt' (grant: read data/)? "
    "[y]es / [n]o / [a]lways this session"
)


# -- 2: refusals from trusted code are one line ---------------------------------------------
def test_refused_grant_prints_one_line(ip, capsys):
    ip.fails("%capsule grant import os", CapsulePolicyError)
    out = plain(capsys.readouterr().out).strip()
    assert out == (
        "CapsulePolicyError: import of 'os' is never grantable: it is in "
        "c.CapsulePolicy.denied_imports (it carries ambient authority) (refused by the "
        "policy). It cannot be granted."
    )


def test_flag_beyond_the_ceiling_prints_no_traceback_banner(ip, capsys):
    ip.fails("%%capsule --allow-import subprocess\n1", CapsulePolicyError)
    out = plain(capsys.readouterr().out).strip()
    assert out.startswith("CapsulePolicyError: --allow-import subprocess:")
    assert "Traceback" not in out and len(out.splitlines()) == 1


# -- 6: did you mean ------------------------------------------------------------------------
def test_mistyped_flag_gets_did_you_mean(ip):
    err = ip.fails("%%capsule --allow-reed data\n1", UsageError)
    assert "unknown flag --allow-reed: did you mean --allow-read?" in str(err)
    err = ip.fails("%capsule lsit", UsageError)
    assert "did you mean 'list'?" in str(err)
    ip.ok("%%capsule --allow-imp csv\nimport csv")  # an abbreviation argparse accepts


# -- 3: hints that can work -----------------------------------------------------------------
def test_hint_names_the_folder_as_typed(ip, data):
    err = ip.fails("%%capsule\nopen('data/notes.txt').read()", CapsulePermissionError)
    assert "read access to data/notes.txt was not granted" in str(err)
    assert "To grant it: %%capsule --allow-read data/." in str(err)
    assert str(data) not in str(err)  # no long absolute path
    # ... and the hint works.
    assert ip.ok("%%capsule --allow-read data/\nopen('data/notes.txt').read()") == "NOTES"


def test_no_hint_beyond_the_ceiling(ip, data, tmp_path):
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "x.txt").write_text("X")
    ip.ok(f"%config CapsulePolicy.readable_paths = [{str(data)!r}]")
    err = ip.fails("%%capsule\nopen('other/x.txt').read()", CapsulePermissionError)
    assert "outside the policy's ceiling" in str(err)
    assert "--allow-read" not in str(err) and "c.CapsulePolicy.readable_paths" in str(err)


# -- 4: narrowing the ceiling ends grants beyond it -----------------------------------------
def test_narrowed_ceiling_revokes_grants_outside_it(ip, data, tmp_path, capsys):
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "x.txt").write_text("X")
    ip.ok("%capsule grant read other")
    ip.ok("%capsule grant read data")
    assert ip.ok("%%capsule\nopen('other/x.txt').read()") == "X"
    capsys.readouterr()
    ip.ok(f"%config CapsulePolicy.readable_paths = [{str(data)!r}]")
    assert f"read {tmp_path / 'other'} (outside the new policy)" in capsys.readouterr().out
    registry = ip.ext.registry
    assert registry.find("read", str(tmp_path / "other")) == []
    assert len(registry.find("read", str(data))) == 1  # still within: kept
    ip.fails("%%capsule\nopen('other/x.txt').read()", CapsulePermissionError)
    assert ip.ok("%%capsule\nopen('data/notes.txt').read()") == "NOTES"


# -- 5: a refused module is no active capability --------------------------------------------
def test_refused_os_in_user_namespace_is_no_active_capability(ip):
    ip.ok("import os")
    ip.fails("%%capsule\nimport os\nos.listdir('.')", CapsuleImportError)
    ip.fails("%%capsule\nos.listdir('.')", CapsuleImportError)
    assert ip.ext.registry.find("object", "os") == []


# -- 7: top-level await ---------------------------------------------------------------------
def test_top_level_await_runs_in_the_capsule(ip):
    ip.ok("%%capsule --export y\nasync def double(x):\n    return 2 * x\ny = await double(4)")
    assert ip.ns["y"] == 8
    assert ip.ok("%%capsule\nasync def f():\n    return 'done'\nawait f()") == "done"
    err = ip.fails(
        "%%capsule\nclass Later:\n    def __await__(self):\n        yield 'tick'\nawait Later()",
        CapsuleTypeError,
    )
    assert "needs an event loop" in str(err)


# -- the prompt at the moment of access -----------------------------------------------------
def test_yes_continues_the_operation_once(ip, data, monkeypatch):
    h = human(monkeypatch, "y", "n")
    assert ip.ok("%%capsule\nopen('data/notes.txt').read()") == "NOTES"
    assert h.prompts == [QUESTION]
    cap = ip.ext.registry.find("read", str(data / "notes.txt"), active=None)[0]
    assert (cap.granted_by, cap.uses, cap.active) == ("prompt (once)", 1, False)
    ip.fails("%%capsule\nopen('data/notes.txt').read()", CapsulePermissionError)
    assert len(h.prompts) == 2  # asked again: 'yes' was for that access only


def test_always_grants_the_folder_for_the_session(ip, data, monkeypatch):
    h = human(monkeypatch, "a")
    assert ip.ok("%%capsule\nopen('data/notes.txt').read()") == "NOTES"
    assert ip.ok("%%capsule\nopen('data/more.txt').read()") == "MORE"
    assert h.prompts == [QUESTION]
    cap = ip.ext.registry.find("read", str(data))[0]
    assert (cap.scope, cap.granted_by, cap.uses) == ("session", "prompt", 2)


def test_no_refuses_as_without_prompting(ip, data, monkeypatch):
    h = human(monkeypatch, "n")
    err = ip.fails("%%capsule\nopen('data/notes.txt').read()", CapsulePermissionError)
    assert "To grant it: %%capsule --allow-read data/." in str(err)
    assert h.prompts == [QUESTION] and ip.ext.registry.find("read") == []


def test_no_terminal_refuses_without_asking(ip, data, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO("y\n"))  # a pipe cannot answer
    ip.fails("%%capsule\nopen('data/notes.txt').read()", CapsulePermissionError)
    assert sys.stdin.read() == "y\n"  # nothing was read from it


def test_prompt_off_refuses_without_asking(ip, data, monkeypatch):
    h = human(monkeypatch, "y")
    ip.ok("%config CapsulePolicy.prompt = False")
    ip.fails("%%capsule\nopen('data/notes.txt').read()", CapsulePermissionError)
    assert h.prompts == []


def test_never_asks_beyond_the_ceiling_or_for_denied(ip, data, monkeypatch, tmp_path):
    # Every path here is the test's own (HOME is a scratch folder too): a 'y' must not matter.
    h = human(monkeypatch, "y", "y", "y", "y")
    ip.fails("%%capsule\nimport subprocess", CapsuleImportError)
    key = os.path.join(os.environ["HOME"], ".ssh", "id_ipycap_test")
    ip.fails(f"%%capsule\nopen({key!r}).read()", CapsulePermissionError)  # denied path
    (tmp_path / "lib").mkdir()
    monkeypatch.syspath_prepend(str(tmp_path / "lib"))
    ip.fails("%%capsule\nopen('lib/evil.py', 'w')", CapsulePermissionError)
    assert not (tmp_path / "lib" / "evil.py").exists()
    ip.ok(f"%config CapsulePolicy.readable_paths = [{str(data)!r}]")
    (tmp_path / "secret.txt").write_text("S")
    ip.fails("%%capsule\nopen('secret.txt').read()", CapsulePermissionError)
    assert h.prompts == []


def test_import_is_asked_for_too(ip, monkeypatch):
    h = human(monkeypatch, "a")
    assert ip.ok("%%capsule\nimport csv\ncsv.QUOTE_ALL") == 1
    assert ip.ok("%%capsule\nimport csv\ncsv.QUOTE_ALL") == 1
    assert h.prompts == [
        APPROVAL_PREFIX + "Allow import of 'csv' (grant: import csv)? "
        "[y]es / [n]o / [a]lways this session"
    ]


def test_an_import_granted_for_one_cell_is_not_revoked_after_it(ip, monkeypatch):
    """Regression: a cell's import grant ending with its cell counted as a revocation, so the
    next cell was refused "revoked in this session" (without asking, even for a default
    import any capsule has); a real revocation still stays final."""
    h = human(monkeypatch, "y", "n")
    assert ip.ok("%%capsule\nimport csv\ncsv.QUOTE_ALL") == 1  # allowed once
    err = ip.fails("%%capsule\nimport csv", CapsuleImportError)
    assert "was not granted" in str(err) and len(h.prompts) == 2  # asked again, denied
    ip.ok("%%capsule --allow-import json\nimport json")
    assert ip.ok("%%capsule\nimport json\njson.dumps(1)") == "1"  # still a default import
    ip.ok("%%capsule --allow-import base64\nimport base64")
    ip.fails("%%capsule\nimport base64", CapsuleImportError)
    assert h.prompts[-1].startswith(APPROVAL_PREFIX + "Allow import of 'base64'")
    (cap,) = ip.ext.registry.find("import", "json", active=True)
    ip.ok(f"%capsule revoke {cap.id}")
    err = ip.fails("%%capsule\nimport json", CapsuleImportError)
    assert "revoked in this session" in str(err)


def test_a_library_opening_for_the_capsule_asks_from_the_audit_hook(ip, data, monkeypatch):
    (data / "conf.ini").write_text("[s]\nk = v\n")
    h = human(monkeypatch, "y")
    value = ip.ok(
        "%%capsule --allow-import configparser\nimport configparser\n"
        "p = configparser.ConfigParser()\np.read('data/conf.ini')\np['s']['k']"
    )
    assert value == "v"
    assert h.prompts == [
        APPROVAL_PREFIX + "Allow read access to 'data/conf.ini' (grant: read data/)? "
        "[y]es / [n]o / [a]lways this session"
    ]


def test_capsule_code_cannot_answer_or_forge_the_question(ip, data, monkeypatch):
    h = human(monkeypatch, "n", "whatever")
    # What the capsule prints or holds is no answer: the human's 'n' refuses.
    ip.fails("%%capsule\nprint('y')\nopen('data/notes.txt').read()", CapsulePermissionError)
    # Its own input() is always behind the capsule prefix, so it never reads as a question.
    ip.ok("%config CapsulePolicy.allow_input = True")
    assert ip.ok(f"%%capsule\ninput({QUESTION!r})") == "whatever"
    assert h.prompts == [QUESTION, CAPSULE_INPUT_PREFIX + QUESTION]


# -- make demo serves a copy ----------------------------------------------------------------
def test_demo_serves_a_scratch_copy_of_the_notebooks():
    import shutil

    from ipycap import demo

    target = demo.scratch_copy()
    try:
        assert not target.startswith(str(demo.NOTEBOOKS.parent))
        names = sorted(p.name for p in demo.NOTEBOOKS.glob("*.ipynb"))
        assert names and sorted(os.listdir(target)) == names
    finally:
        shutil.rmtree(os.path.dirname(target))
