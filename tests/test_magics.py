"""The IPython extension as a notebook user meets it: %%capsule flags, %capsule subcommands,
configuration, and load/unload.  Everything runs through a real InteractiveShell."""

from __future__ import annotations

import gc
import json
import os
import re
import subprocess
import sys
import textwrap

import pytest
from IPython.core.displaypub import CapturingDisplayPublisher
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

import ipycap
from ipycap.engine import tripwire
from ipycap.engine.errors import (
    CapsuleImportError,
    CapsulePermissionError,
    CapsulePolicyError,
    CapsuleRevokedError,
    CapsuleSyntaxError,
    CapsuleTypeError,
)
from ipycap.engine.membrane import ReverseProxy
from ipycap.ipython.display import EventLogView, PolicyView, RegistryView
from ipycap.ipython.magics import extension_for
from ipycap.ipython.panel import RegistryChannel


def plain(text: str) -> str:
    """Captured output without ANSI colours."""
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


class Shell:
    """One InteractiveShell per test session; each test gets it freshly reset and loaded."""

    def __init__(self, shell):
        self.shell = shell
        self.formatted: list[dict] = []

    def run(self, source: str):
        """Run a cell; returns its ExecutionResult."""
        return self.shell.run_cell(textwrap.dedent(source).lstrip("\n"), store_history=True)

    def ok(self, source: str):
        result = self.run(source)
        assert result.error_before_exec is None and result.error_in_exec is None, (
            result.error_before_exec or result.error_in_exec
        )
        return result.result

    def fails(self, source: str, exc_type=BaseException) -> BaseException:
        result = self.run(source)
        err = result.error_in_exec or result.error_before_exec
        assert isinstance(err, exc_type), f"expected {exc_type.__name__}, got {err!r}"
        return err

    @property
    def ns(self) -> dict:
        return self.shell.user_ns

    @property
    def ext(self):
        return extension_for(self.shell)

    @property
    def outputs(self) -> list[dict]:
        return self.shell.display_pub.outputs


@pytest.fixture(scope="session")
def _shell():
    shell = InteractiveShell.instance()
    shell.history_manager.enabled = False
    return shell


@pytest.fixture
def ip(_shell, monkeypatch, tmp_path):
    """A reset shell with ipycap loaded, a capturing display publisher and displayhook."""
    monkeypatch.chdir(tmp_path)
    _shell.reset(new_session=False)
    saved_pub = _shell.display_pub
    _shell.display_pub = CapturingDisplayPublisher()
    wrapper = Shell(_shell)
    monkeypatch.setattr(
        _shell.displayhook,
        "write_format_data",
        lambda data, md=None: wrapper.formatted.append(data),
    )
    _shell.run_line_magic("load_ext", "ipycap")
    assert wrapper.ext is not None
    yield wrapper
    if "ipycap" in _shell.extension_manager.loaded:
        _shell.run_line_magic("unload_ext", "ipycap")
    _shell.display_pub = saved_pub
    _shell.config.pop("CapsulePolicy", None)  # %config changes live in the shell's config
    _shell.reset(new_session=False)


# -- running cells ---------------------------------------------------------------------------
def test_last_expression_is_out_and_out_holds_the_exported_value(ip):
    ip.ns["data"] = {"a": 16}
    assert ip.ok("%%capsule\nimport math\nmath.sqrt(data['a'])") == 4.0
    assert ip.ns["_"] == 4.0
    assert ip.formatted[-1]["text/plain"] == "4.0"
    # A capsule's own object leaves as a reverse proxy, never raw.
    ip.ok("%%capsule\nclass Box:\n    pass\nBox()")
    assert type(ip.ns["_"]) is ReverseProxy
    # A list of primitives leaves as a copy; the user's own object comes back unwrapped.
    assert ip.ok("%%capsule\n[1, 2, 'x']") == [1, 2, "x"]
    assert ip.ok("%%capsule\ndata") is ip.ns["data"]


def test_a_bound_method_in_the_namespace_is_a_capability_to_call(ip):
    """``add = items.append`` in the user's namespace is callable from a capsule, like a
    user function doing the same; ``items.append`` reached through read-only ``items``
    is not (membrane/readonly.py ``refuses_handed``)."""
    ip.ns["items"] = items = [1]
    ip.ns["add"] = items.append
    ip.ok("%%capsule\nadd(2)")
    err = ip.fails("%%capsule\nitems.append(3)", CapsuleTypeError)
    assert "--writable items" in str(err)
    assert items == [1, 2]


def test_trailing_semicolon_silences_out(ip):
    assert ip.ok("%%capsule\n1 + 1;") is None
    assert ip.formatted == []


def test_user_namespace_is_read_only_by_default(ip):
    ip.ns["data"] = {"a": 1}
    err = ip.fails("%%capsule\ndata['a'] = 2", CapsuleTypeError)
    assert "--writable data" in str(err)
    assert ip.ns["data"] == {"a": 1}


@pytest.mark.parametrize(
    "name", ["get_ipython", "In", "Out", "_ih", "_oh", "_dh", "_", "__", "_i", "_i1", "__builtin__"]
)
def test_no_ipython_state_inside(ip, name):
    ip.ok("1")  # so _, _i, _i1 ... exist in the user namespace
    err = ip.fails(f"%%capsule\n{name}", NameError)
    assert name in str(err)


def test_ipython_exit_quit_and_open_are_the_capsules_own(ip, canary):
    path, token = canary
    ip.fails("%%capsule\nexit()", CapsuleTypeError)
    ip.fails("%%capsule\nquit()", CapsuleTypeError)
    err = ip.fails(f"%%capsule\nopen({str(path)!r}).read()", CapsulePermissionError)
    assert token not in str(err)


def test_user_names_starting_with_underscore_are_not_offered(ip):
    ip.ns["_private"] = 1
    ip.fails("%%capsule\n_private", NameError)


def test_magics_and_shell_escapes_in_the_body_are_refused_not_run(ip):
    err = ip.fails("%%capsule\n%config CapsulePolicy.mode = 'rexec'", CapsuleSyntaxError)
    assert "magics" in str(err)
    assert ip.ext.policy.mode == "proxy"
    err = ip.fails("%%capsule\n!touch planted", CapsuleSyntaxError)
    assert "shell escapes" in str(err)
    assert not os.path.exists("planted")


def test_bad_flag_is_a_usage_error(ip):
    ip.fails("%%capsule --bogus\n1", UsageError)
    ip.fails("%%capsule --mode sandbox\n1", UsageError)


def test_flags_are_documented(ip):
    doc = ip.shell.find_cell_magic("capsule").__doc__
    for flag in ("--allow-import", "--allow-read", "--allow-write", "--export", "--mode"):
        assert flag in doc
    for flag in ("--writable", "--hide", "--label"):
        assert flag in doc


# -- flags --------------------------------------------------------------------------------------
def test_allow_import_repeats_and_takes_lists_and_ends_with_the_cell(ip):
    err = ip.fails("%%capsule\nimport csv", CapsuleImportError)
    assert "--allow-import csv" in str(err)
    ip.ok("%%capsule --allow-import csv,zlib\nimport csv, zlib")
    ip.ok("%%capsule --allow-import csv --allow-import zlib\nimport csv, zlib")
    caps = ip.ext.registry.find("import", "csv", active=None)
    assert caps and all(c.state == "revoked" and c.scope == "cell" for c in caps)
    assert caps[0].granted_by == "%%capsule --allow-import"
    ip.fails("%%capsule\nimport csv", CapsuleImportError)


def test_denied_module_flag_is_refused_naming_flag_and_trait(ip):
    err = ip.fails("%%capsule --allow-import subprocess\n1", CapsulePolicyError)
    assert "--allow-import subprocess" in str(err)
    assert "denied_imports" in str(err)


def test_allow_read_is_relative_to_the_working_directory(ip, tmp_path, canary):
    (tmp_path / "data.txt").write_text("hello")
    err = ip.fails("%%capsule\nopen('data.txt').read()", CapsulePermissionError)
    assert "--allow-read" in str(err)
    assert ip.ok("%%capsule --allow-read data.txt\nopen('data.txt').read()") == "hello"
    path, token = canary
    err = ip.fails(f"%%capsule --allow-read data.txt\nopen({str(path)!r}).read()")
    assert token not in str(err)


def test_the_same_allow_read_in_many_cells_is_one_capability_with_uses_per_cell(ip, tmp_path):
    (tmp_path / "data.txt").write_text("hello")
    cell = "%%capsule --allow-read data.txt\nopen('data.txt').read()"
    for _ in range(3):
        assert ip.ok(cell) == "hello"
    ip.ok("%%capsule --allow-read data.txt\nopen('data.txt').read() + open('data.txt').read()")
    (cap,) = ip.ext.registry.find("read", active=None)
    assert cap.uses == 5 and cap.cells == 4 and not cap.active  # expired with its cell
    assert list(cap.uses_by_cell.values()) == [1, 1, 1, 2]
    assert all(cell.startswith("In[") for cell in cap.uses_by_cell)
    # The view and the log show each cell's uses; the panel's snapshot carries them too.
    view = str(ip.ok("%capsule list"))
    last = list(cap.uses_by_cell)[-1]
    assert f"{last}: 2" in view and "granted in 4 cells" in view
    log = str(ip.ok("%capsule log 100"))
    assert sum(1 for line in log.splitlines() if " use " in f" {line} " and cap.id in line) == 5
    snap = RegistryChannel(ip.ext.registry, "extension").snapshot()
    (grant,) = [g for g in snap["grants"] if g["id"] == cap.id]
    assert grant["uses"] == 5 and grant["cells"] == 4
    assert grant["uses_by_cell"] == cap.uses_by_cell
    # An expired grant is not revocable; the next cell's identical grant is, by id or name.
    ip.fails(f"%capsule revoke {cap.id}", UsageError)
    ip.ok("%%capsule --allow-read data.txt --export ok\nok = open('data.txt').read()")
    assert ip.ns["ok"] == "hello"


def test_read_beyond_the_ceiling_names_the_trait(ip, tmp_path):
    (tmp_path / "ok").mkdir()
    (tmp_path / "other").mkdir()
    ip.ok(f"%config CapsulePolicy.readable_paths = [{str(tmp_path / 'ok')!r}]")
    ip.ok("%%capsule --allow-read ok\n1")
    err = ip.fails("%%capsule --allow-read other\n1", CapsulePolicyError)
    assert "--allow-read other" in str(err) and "readable_paths" in str(err)


def test_allow_write_and_the_working_directory_on_sys_path(ip, tmp_path, monkeypatch):
    (tmp_path / "out").mkdir()
    ip.ok("%%capsule --allow-write out\nwith open('out/r.txt', 'w') as f:\n    f.write('x')")
    assert (tmp_path / "out" / "r.txt").read_text() == "x"
    monkeypatch.syspath_prepend(str(tmp_path))
    err = ip.fails("%%capsule --allow-write .\n1", CapsulePolicyError)
    assert "--allow-write ." in str(err) and "subdirectory" in str(err)


def test_export_only_on_success(ip):
    ip.ok("%%capsule --export a,b\na = 1\nb = [2]")
    assert ip.ns["a"] == 1 and ip.ns["b"] == [2]
    ip.ok("%%capsule --export c --export d\nc, d = 3, 4")
    assert (ip.ns["c"], ip.ns["d"]) == (3, 4)
    before = {k: v for k, v in ip.ns.items() if not k.startswith("_") and k not in ("In", "Out")}
    err = ip.fails("%%capsule --export e,a\ne = 5\na = 99\n1/0", ZeroDivisionError)
    after = {k: v for k, v in ip.ns.items() if not k.startswith("_") and k not in ("In", "Out")}
    assert after == before
    assert any("bound no user name" in n for n in err.__notes__)


def test_export_of_a_name_the_cell_did_not_define_binds_nothing(ip):
    err = ip.fails("%%capsule --export x,y\nx = 1", NameError)
    assert "'y'" in str(err)
    assert "x" not in ip.ns


def test_failing_cell_lists_the_write_grants_it_used(ip, tmp_path):
    (tmp_path / "out").mkdir()
    err = ip.fails(
        "%%capsule --allow-write out\nopen('out/partial.txt', 'w').write('half')\n1/0",
        ZeroDivisionError,
    )
    note = "\n".join(err.__notes__)
    assert "write" in note and str(tmp_path / "out") in note
    assert (tmp_path / "out" / "partial.txt").exists()  # the write itself stays


def test_mode_rexec_denies_underscore_introspection(ip):
    src = "class A:\n    pass\nA().__dict__"
    assert ip.ok(f"%%capsule\n{src}") == {}
    ip.fails(f"%%capsule --mode rexec\n{src}", AttributeError)


def test_writable_lets_the_cell_change_a_user_dict(ip):
    ip.ns["settings"] = {}
    ip.ok("%%capsule --writable settings\nsettings['k'] = 1")
    assert ip.ns["settings"] == {"k": 1}
    ip.fails("%%capsule --writable nosuchname\n1", UsageError)


def test_hide_makes_a_name_invisible(ip):
    ip.ns["secret"] = "s3cret"
    assert ip.ok("%%capsule\nsecret") == "s3cret"
    ip.fails("%%capsule --hide secret\nsecret", NameError)


def test_label_names_the_capsule_in_tracebacks(ip, capsys):
    ip.fails("%%capsule --label loader\n1/0", ZeroDivisionError)
    assert "<capsule-loader" in plain(capsys.readouterr().out)


def test_traceback_shows_capsule_lines_and_no_internals(ip, capsys):
    ip.fails("%%capsule\ndef inner():\n    import os\ninner()", CapsuleImportError)
    out = plain(capsys.readouterr().out)
    assert "<capsule-" in out and "import os" in out and "inner()" in out
    assert "ipycap/" not in out and "interactiveshell.py" not in out
    assert "It cannot be granted." in out  # the refusal in full
    ip.fails("%%capsule\n%ls", CapsuleSyntaxError)
    out = plain(capsys.readouterr().out)
    assert "ipycap/" not in out and "interactiveshell.py" not in out
    assert "magics ('%') are not available in a capsule" in out


def test_policy_error_is_shown_without_internals(ip, capsys):
    ip.fails("%%capsule --allow-import os\n1", CapsulePolicyError)
    out = plain(capsys.readouterr().out)
    assert "never grantable" in out and "ipycap/" not in out


def test_exceptions_leaving_a_capsule_carry_no_capsule_objects(ip):
    err = ip.fails("%%capsule\nclass Bad(Exception):\n    pass\nraise Bad('boom')", Exception)
    assert type(err) is Exception and "Bad: boom" in str(err)
    err = ip.fails("%%capsule\nclass A:\n    pass\nA().missing", AttributeError)
    assert getattr(err, "obj", None) is None


# -- %capsule ------------------------------------------------------------------------------
def test_capsule_list_shows_capabilities_and_refusals(ip):
    ip.ns["data"] = [1]
    ip.ok("%%capsule\nimport math\nlen(data)")
    ip.fails("%%capsule\nimport csv")
    for line in ("%capsule", "%capsule list"):
        view = ip.ok(line)
        assert isinstance(view, RegistryView)
        text = str(view)
        assert "cap-" in text and "data" in text and "math" in text
        assert "import of 'csv' was not granted" in text and "--allow-import csv" in text
        assert ip.ext.registry.confinement in text
        assert view._repr_html_().startswith("<div class='ipycap'><table")


def test_capsule_grant_is_a_session_grant(ip, tmp_path):
    (tmp_path / "d.txt").write_text("D")
    ip.ok("%capsule grant read d.txt")
    ip.ok("%capsule grant import csv")
    assert ip.ok("%%capsule\nimport csv\nopen('d.txt').read()") == "D"
    assert ip.ok("%%capsule\nopen('d.txt').read()") == "D"  # still there a cell later
    cap = ip.ext.registry.find("read", str(tmp_path / "d.txt"))[0]
    assert (cap.scope, cap.granted_by, cap.uses) == ("session", "%capsule grant", 2)
    ip.fails("%capsule grant import os", CapsulePolicyError)
    ip.fails("%capsule grant teleport x", UsageError)
    ip.fails("%capsule grant read", UsageError)


def test_capsule_revoke_by_name_kills_proxies_held_by_exported_functions(ip):
    ip.ns["data"] = {"a": 1}
    ip.ok("%%capsule --export f\ndef f():\n    return data['a']")
    assert ip.ns["f"]() == 1
    ip.ok("%capsule revoke data")
    with pytest.raises(CapsuleRevokedError):
        ip.ns["f"]()
    ip.fails("%capsule revoke data", UsageError)  # nothing active by that name any more


def test_capsule_revoke_by_id(ip, tmp_path):
    ip.ok("%capsule grant read .")
    cap = ip.ext.registry.find("read")[0]
    ip.ok(f"%capsule revoke {cap.id}")
    assert cap.state == "revoked"
    ip.fails("%%capsule\nopen('x')", CapsulePermissionError)


def test_capsule_explain(ip):
    ip.ns["acct"] = {"balance": 3}
    explanation = ip.ok("%capsule explain acct")
    assert "<table" in explanation._repr_html_()
    assert explanation.row("type(acct)")
    ip.fails("%capsule explain nosuchname", UsageError)


def test_capsule_policy_and_config_apply_to_later_capsules_and_are_logged(ip):
    view = ip.ok("%capsule policy")
    assert isinstance(view, PolicyView) and "output_mime_types" in str(view)
    ip.ok("%config CapsulePolicy.mode = 'rexec'")
    assert "'rexec'" in str(ip.ok("%capsule policy"))
    ip.fails("%%capsule\nclass A:\n    pass\nA().__dict__", AttributeError)
    log = ip.ok("%capsule log")
    assert isinstance(log, EventLogView)
    events = [e for e in ip.ext.registry.events if e["event"] == "policy"]
    assert events and events[-1]["target"] == "mode" and "'rexec'" in events[-1]["detail"]
    assert "policy" in str(log) and "mode" in str(log)
    ip.fails("%capsule log many", UsageError)
    ip.fails("%capsule frobnicate", UsageError)


def test_audit_log_through_the_magic(ip, tmp_path):
    log = tmp_path / "audit.jsonl"
    ip.ok(f"%config CapsulePolicy.audit_log = {str(log)!r}")
    ip.ok("%%capsule --allow-import csv\nimport csv")
    ip.fails("%%capsule\nimport zlib")
    events = [json.loads(line) for line in log.read_text().splitlines()]
    kinds = {(e["event"], e.get("kind"), e.get("target")) for e in events}
    assert ("grant", "import", "csv") in kinds and ("use", "import", "csv") in kinds
    assert any(e["event"] == "refuse" and "zlib" in e["what"] for e in events)


# -- loading ---------------------------------------------------------------------------------
def test_policy_is_a_registered_configurable(ip):
    assert ip.ext.policy in ip.shell.configurables
    assert ip.ext.policy.parent is ip.shell


def test_unload_leaves_nothing_behind_and_reload_works(ip):
    shell = ip.shell
    ext = ip.ext
    pub_before = shell.display_pub
    ip.ok("%unload_ext ipycap")
    assert "capsule" not in shell.magics_manager.magics["cell"]
    assert "capsule" not in shell.magics_manager.magics["line"]
    assert "CapsuleMagics" not in shell.magics_manager.registry
    assert ext.policy not in shell.configurables
    for event in ("pre_run_cell", "post_run_cell"):
        assert not any(getattr(f, "__self__", None) is ext for f in shell.events.callbacks[event])
    assert "publish" not in vars(pub_before)
    assert "format" not in vars(shell.display_formatter)
    assert "write_payload" not in vars(shell.payload_manager)
    assert "showsyntaxerror" not in vars(shell)
    # The hook goes inert once no capsule context is alive (code of a capsule made earlier
    # may still run later and must still meet the tripwire).
    gc.collect()
    assert tripwire._armed == bool(tripwire._LIVE)
    assert extension_for(shell) is None
    ip.fails("%%capsule\n1", UsageError)
    ip.ok("%load_ext ipycap")
    assert tripwire._armed
    assert ip.ok("%%capsule\n2 + 2") == 4
    ip.ok("%reload_ext ipycap")
    assert ip.ok("%%capsule\n3") == 3
    assert extension_for(shell) is not ext


def test_unload_revokes_what_the_extension_handed_out(ip):
    ip.ns["data"] = {"a": 1}
    ip.ok("%%capsule --export f\ndef f():\n    return data['a']")
    f = ip.ns["f"]
    ip.ok("%unload_ext ipycap")
    with pytest.raises(CapsuleRevokedError):
        f()


def test_autoload_and_config_from_a_profile_directory(tmp_path):
    """A real `ipython` process, a real profile directory, a real ipython_config.py."""
    ipdir = tmp_path / "ipython"
    profile = ipdir / "profile_default"
    profile.mkdir(parents=True)
    data = tmp_path / "data"
    data.mkdir()
    (data / "v.txt").write_text("42")
    audit = tmp_path / "audit.jsonl"
    (profile / "ipython_config.py").write_text(
        "c.InteractiveShellApp.extensions = ['ipycap']\n"
        f"c.CapsulePolicy.readable_paths = [{str(data)!r}]\n"
        f"c.CapsulePolicy.audit_log = {str(audit)!r}\n"
        "c.HistoryManager.enabled = False\n"
    )
    cells = [
        "%capsule policy",
        f"%%capsule --allow-read {data}\nopen({str(data / 'v.txt')!r}).read()",
        f"%%capsule --allow-read {tmp_path}\n1",
    ]
    script = (
        f"ip = get_ipython(); cells = {cells!r}\n"
        "print('POLICY', ip.run_cell(cells[0]).result)\n"
        "print('READ', ip.run_cell(cells[1]).result)\n"
        "print('REFUSED', type(ip.run_cell(cells[2]).error_in_exec).__name__)\n"
    )
    env = dict(os.environ, IPYTHONDIR=str(ipdir))
    proc = subprocess.run(
        [sys.executable, "-m", "IPython", "--colors=nocolor", "-c", script],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert re.search(rf"readable_paths\s+\[{re.escape(repr(str(data)))}\]", out), out
    assert "READ 42" in out
    assert "REFUSED CapsulePolicyError" in out
    assert "readable_paths" in out  # the refusal names the trait
    assert any(json.loads(line)["event"] == "grant" for line in audit.read_text().splitlines())


def test_public_hooks_are_the_magics_module(ip):
    ipycap.unload_ipython_extension(ip.shell)
    assert extension_for(ip.shell) is None
    ipycap.load_ipython_extension(ip.shell)
    assert extension_for(ip.shell) is not None


def test_expose_user_namespace_off_hides_every_user_name(ip):
    ip.ns["data"] = 1
    ip.ok("%config CapsulePolicy.expose_user_namespace = False")
    ip.fails("%%capsule\ndata", NameError)
    ip.fails("%%capsule --writable data\n1", UsageError)
