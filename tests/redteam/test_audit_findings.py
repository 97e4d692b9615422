"""Real I2 violations found by running the whole suite under the boundary auditor
(``make test-audit``), each fixed as a class and kept as a named regression test with its
plain-Python demonstration."""

from __future__ import annotations

import importlib

import pytest
from traitlets.config import Configurable

from ipycap import Capsule, CapsuleImportError

#: getpass itself is no longer importable by capsules (an internal standard-library module,
#: red team 4); the class is any standard-library module a capsule may import, default or
#: grantable, whose attribute trusted code replaced with a trusted object's method.
_PATCHED = ["json.dumps", "shlex.split"]


@pytest.mark.parametrize("name", _PATCHED)
def test_a_trusted_method_patched_into_a_stdlib_module_is_refused(monkeypatch, name):
    """Found in the kernel (test_kernel_doors: getpass): ``getpass.getpass`` is the kernel's
    bound method while a cell runs, and the module view handed it to the capsule raw (a
    method bound to the CapsuleKernel).  A method in a standard-library module whose object
    is a denied module's is now refused like a denied module's re-export."""
    module_name, attr = name.split(".")
    module = importlib.import_module(module_name)
    host = Configurable()  # trusted machinery of a denied module, as the kernel is
    monkeypatch.setattr(module, attr, host.has_trait)
    c = Capsule(grants=[("import", module_name)])
    with pytest.raises(CapsuleImportError, match=r"comes from 'traitlets|which capsules"):
        c.run(f"import {module_name}\n{name}")
    # Classmethods too: the class is the owner.
    monkeypatch.setattr(module, attr, Configurable.class_config_section)
    with pytest.raises(CapsuleImportError, match="which capsules may never use"):
        Capsule(grants=[("import", module_name)]).run(f"import {module_name}\n{name}")


def test_the_stdlib_modules_own_functions_and_methods_still_cross():
    c = Capsule(grants=[("import", "shlex")])
    assert c.run("import shlex\ncallable(shlex.split)") is True
    assert c.run("import random\nrandom.seed(1)\nrandom.random() < 1") is True


def test_the_patched_method_reaches_the_host_in_plain_python(monkeypatch):
    host = Configurable()
    import shlex

    monkeypatch.setattr(shlex, "split", host.has_trait)
    ns: dict = {}
    exec("import shlex\nleak = shlex.split.__self__", ns)
    assert ns["leak"] is host  # the trusted object itself, and its config from there
