"""Real I2 violations found by running the whole suite under the boundary auditor
(``make test-audit``), each fixed as a class and kept as a named regression test with its
plain-Python demonstration."""

from __future__ import annotations

import getpass

import pytest
from traitlets.config import Configurable

from ipycap import Capsule, CapsuleImportError

_PATCHED = ["getpass.getpass", "getpass.getuser"]


@pytest.mark.parametrize("name", _PATCHED)
def test_a_trusted_method_patched_into_a_stdlib_module_is_refused(monkeypatch, name):
    """Found in the kernel (test_kernel_doors: getpass): ``getpass.getpass`` is the kernel's
    bound method while a cell runs, and the module view handed it to the capsule raw (a
    method bound to the CapsuleKernel).  A method in a standard-library module whose object
    is a denied module's is now refused like a denied module's re-export."""
    host = Configurable()  # trusted machinery of a denied module, as the kernel is
    monkeypatch.setattr(getpass, name.split(".")[1], host.has_trait)
    c = Capsule(grants=[("import", "getpass")])
    with pytest.raises(CapsuleImportError, match=r"comes from 'traitlets|which capsules"):
        c.run(f"import getpass\n{name}")
    # Classmethods too: the class is the owner.
    monkeypatch.setattr(getpass, "getpass", Configurable.class_config_section)
    with pytest.raises(CapsuleImportError, match="which capsules may never use"):
        Capsule(grants=[("import", "getpass")]).run("import getpass\ngetpass.getpass")


def test_the_stdlib_modules_own_functions_and_methods_still_cross():
    c = Capsule(grants=[("import", "getpass")])
    assert c.run("import getpass\ncallable(getpass.getpass)") is True
    assert c.run("import random\nrandom.seed(1)\nrandom.random() < 1") is True


def test_the_patched_method_reaches_the_host_in_plain_python(monkeypatch):
    host = Configurable()
    monkeypatch.setattr(getpass, "getpass", host.has_trait)
    ns: dict = {}
    exec("import getpass\nleak = getpass.getpass.__self__", ns)
    assert ns["leak"] is host  # the trusted object itself, and its config from there
