"""CapsulePolicy, specified: documented traits with sane defaults, clear refusals of bad
values, the three import tiers and the roots no grant may ever cover."""

from __future__ import annotations

import os
import site
import sys

import pytest
from traitlets import TraitError
from traitlets.config import Config

from ipycap import CapsulePolicy


def test_defaults_follow_the_design():
    p = CapsulePolicy()
    for module in (
        "math",
        "json",
        "re",
        "collections",
        "itertools",
        "functools",
        "random",
        "statistics",
        "decimal",
        "fractions",
        "datetime",
        "textwrap",
        "enum",
        "string",
        "heapq",
        "bisect",
        "cmath",
        "sys",
        "IPython.display",
    ):
        assert module in p.default_imports, module
    for module in (
        "os",
        "subprocess",
        "ctypes",
        "gc",
        "inspect",
        "importlib",
        "builtins",
        "marshal",
        "pickle",
        "socket",
        "types",
        "IPython",
    ):
        assert module in p.denied_imports, module
    assert p.readable_paths == ["/"] and p.writable_paths == ["/"]
    assert any(".ssh" in d for d in p.denied_paths)
    assert p.expose_user_namespace is True
    assert p.mode == "proxy"
    assert p.allow_input is False
    assert p.audit_log == ""
    assert "text/plain" in p.output_mime_types
    assert not any("javascript" in m for m in p.output_mime_types)
    assert p.memory_limit == 0 and p.file_size_limit == 0


def test_every_trait_is_configurable_and_documented():
    traits = CapsulePolicy.class_traits(config=True)
    assert len(traits) >= 12
    for name, trait in traits.items():
        assert trait.help and len(trait.help) > 20, f"{name} has no useful help="


def test_configured_from_a_traitlets_config():
    cfg = Config()
    cfg.CapsulePolicy.readable_paths = ["/data"]
    cfg.CapsulePolicy.mode = "rexec"
    p = CapsulePolicy(config=cfg)
    assert p.readable_paths == ["/data"] and p.mode == "rexec"


@pytest.mark.parametrize(
    "trait, value, words",
    [
        ("default_imports", ["os path"], "not a module name"),
        ("denied_imports", ["1abc"], "not a module name"),
        ("readable_paths", [""], "not a usable path"),
        ("writable_paths", ["/tmp/\0x"], "not a usable path"),
        ("denied_paths", [""], "not a usable path"),
        ("output_mime_types", ["png"], "not a MIME type"),
        ("memory_limit", -1, ">= 0"),
        ("file_size_limit", -5, ">= 0"),
        ("mode", "sandbox", "mode"),
        ("readable_paths", [5], ""),
        ("expose_user_namespace", "yes", ""),
    ],
)
def test_bad_values_raise_trait_error_with_a_clear_message(trait, value, words):
    p = CapsulePolicy()
    with pytest.raises(TraitError) as info:
        setattr(p, trait, value)
    assert words in str(info.value)


@pytest.mark.parametrize(
    "name, tier",
    [
        ("math", "default"),
        ("json", "default"),
        ("sys", "default"),
        ("IPython.display", "default"),
        ("os", "denied"),
        ("os.path", "default"),  # the capsule-safe stand-in (ipycap.engine.stdviews)
        ("os.path.os", "denied"),
        ("importlib.util", "denied"),
        ("IPython", "denied"),
        ("IPython.core.interactiveshell", "denied"),
        ("pickle", "denied"),
        ("ctypes.util", "denied"),
        ("numpy", "grantable"),
        ("csv", "grantable"),
        ("xml.etree.ElementTree", "grantable"),
    ],
)
def test_import_tier(name, tier):
    assert CapsulePolicy().import_tier(name) == tier


def test_import_tier_follows_configuration():
    p = CapsulePolicy(default_imports=["math", "csv"], denied_imports=["json"])
    assert p.import_tier("csv") == "default"
    assert p.import_tier("json") == "denied"
    assert p.import_tier("json.decoder") == "denied"
    assert p.import_tier("re") == "grantable"


def test_default_imports_do_not_cover_submodules_implicitly():
    p = CapsulePolicy(default_imports=["xml"])
    assert p.import_tier("xml") == "default"
    assert p.import_tier("xml.etree") == "grantable"


def _under_any(path, roots):
    path = os.path.realpath(path)
    return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)


def test_denied_roots_cover_credentials_for_read_and_write(test_home):
    p = CapsulePolicy()
    for kind in ("read", "write"):
        roots = p.denied_path_roots(kind)
        for sub in (".ssh", ".gnupg", ".aws", ".config/gcloud", ".kube", ".netrc"):
            assert _under_any(os.path.join(test_home, sub), roots), (kind, sub)


def test_denied_roots_cover_jupyter_and_ipython_dirs():
    roots = CapsulePolicy().denied_path_roots("read")
    for var in ("IPYTHONDIR", "JUPYTER_CONFIG_DIR", "JUPYTER_RUNTIME_DIR"):
        assert _under_any(os.environ[var], roots), var
    from jupyter_core.paths import jupyter_runtime_dir

    assert _under_any(os.path.join(jupyter_runtime_dir(), "kernel-1.json"), roots)


def test_write_roots_cover_installed_code_but_reads_do_not():
    p = CapsulePolicy()
    write, read = p.denied_path_roots("write"), p.denied_path_roots("read")
    for d in site.getsitepackages():
        assert _under_any(d, write), d
        assert not _under_any(d, read), d
    assert _under_any(os.path.join(sys.prefix, "share", "jupyter", "kernels"), write)
    assert _under_any(os.environ["JUPYTER_DATA_DIR"], write)


def test_import_roots_are_sys_path_and_writes_there_plant_code(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    p = CapsulePolicy()
    assert os.path.realpath(tmp_path) in p.import_roots()
    real = os.path.realpath(tmp_path)
    assert p.write_plants_code(os.path.join(real, "evil.py"))
    assert p.write_plants_code(os.path.join(real, "evilpkg"))
    assert p.write_plants_code(os.path.join(real, "x.pth"))
    assert not p.write_plants_code(os.path.join(real, "results.csv"))
    # a folder under a sys.path entry is a namespace package: sub/evil.py imports as sub.evil
    assert p.write_plants_code(os.path.join(real, "sub", "evil.py"))


def test_configured_denied_path_is_a_root(tmp_path):
    p = CapsulePolicy(denied_paths=[str(tmp_path / "secret")])
    assert _under_any(str(tmp_path / "secret" / "x"), p.denied_path_roots("read"))


def test_ceiling_is_resolved(tmp_path):
    target = tmp_path / "real"
    target.mkdir()
    (tmp_path / "link").symlink_to(target)
    p = CapsulePolicy(readable_paths=[str(tmp_path / "link")], writable_paths=[])
    assert p.ceiling("read") == [os.path.realpath(target)]
    assert p.ceiling("write") == []
