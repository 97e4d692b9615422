"""Escapes found by the lead while building the engine, kept as named regression tests."""

from __future__ import annotations

import os

import pytest

from ipycap import Capsule, CapsuleAttributeError


def _plain(source: str, canary_path) -> dict:
    """Run the payload as plain Python (full builtins): it must reach the canary."""
    ns = {"CANARY": str(canary_path)}
    exec(source, ns)
    return ns


def test_exec_with_fresh_globals_gets_capsule_builtins(canary):
    """exec(src, {}) once ran the string with the *trusted* builtins of the engine's own
    module (a frame-depth slip), so `open` and `__import__` were the real ones."""
    path, token = canary
    payload = "g = {'p': CANARY}\nexec(\"stolen = open(p).read()\", g)\nstolen = g['stolen']\n"
    assert _plain(payload, path)["stolen"] == token
    capsule = Capsule()
    capsule.namespace["CANARY"] = str(path)
    try:
        capsule.run(payload)
    except PermissionError:
        pass
    assert capsule.namespace.get("stolen") != token
    assert "stolen" not in capsule.namespace


def test_exec_with_fresh_globals_cannot_import_os(tmp_path):
    """The same slip let exec(src, {}) import os and create files."""
    marker = tmp_path / "marker"
    payload = f'exec("import os; os.mkdir({str(marker)!r})", {{}})\n'
    exec(payload, {})
    assert marker.exists()
    os.rmdir(marker)
    try:
        Capsule().run(payload)
    except ImportError:
        pass
    assert not marker.exists()


def test_raw_sys_reached_as_a_module_attribute_is_refused():
    """'sys' is a default import (as a capsule-safe view), so a module attribute holding the
    raw sys module (datetime.sys) was once handed out as a view of the *raw* module, and
    datetime.sys.modules['os'] was one step away."""
    import sys

    payload = "import datetime\nmods = datetime.sys.modules\nos_mod = mods['os']\n"
    plain = {}
    exec(payload, plain)
    assert plain["os_mod"] is sys.modules["os"]
    capsule = Capsule(protected={"sys": sys})
    try:
        capsule.run(payload)
    except ImportError:
        pass
    assert "os_mod" not in capsule.namespace and "mods" not in capsule.namespace
    # The user namespace's own 'sys' is seen as the capsule-safe view too.
    try:
        capsule.run("m = sys.modules")
    except AttributeError:
        pass
    assert "m" not in capsule.namespace


def test_hard_link_opened_through_fileio_class_is_refused(canary, tmp_path):
    """A hard link to a secret placed inside a granted folder, opened not with the capsule's
    open (which checks the link count) but with io.FileIO taken from a granted file's
    buffer: only the tripwire sees that open, and it once admitted it (the layer matrix
    showed the capsule builtins as the only layer in the way)."""
    path, token = canary
    granted = tmp_path / "granted"
    granted.mkdir()
    (granted / "ok.txt").write_text("fine")
    os.link(path, granted / "hard")
    payload = (
        f"f = open({str(granted / 'ok.txt')!r}, 'rb')\n"
        f"loot = type(f.raw)({str(granted / 'hard')!r}).read().decode()\n"
    )
    plain = {}
    exec(payload, plain)
    assert plain["loot"] == token
    capsule = Capsule(grants=[("read", str(granted))])
    try:
        capsule.run(payload)
    except (PermissionError, AttributeError):  # the revocable handle has no .raw any more
        pass
    assert capsule.namespace.get("loot") != token


def test_unloading_the_extension_does_not_unguard_existing_capsules(canary):
    """%unload_ext ipycap once disarmed the audit hook process-wide, so a capsule made before
    the unload could then read files through a protected helper (review finding)."""
    from ipycap.engine import tripwire

    path, token = canary

    class Reader:
        def read(self, p):
            with open(p) as f:
                return f.read()

    capsule = Capsule(protected={"reader": Reader()})
    capsule.run(f"def steal():\n    return reader.read({str(path)!r})")
    assert Reader().read(str(path)) == token  # plain Python reaches it
    tripwire.disarm()  # what the last extension unload does
    loot = None
    try:
        loot = capsule.namespace["steal"]()  # capsule code running later, outside run()
    except PermissionError:
        pass
    assert loot != token


def test_inspection_of_a_revoked_proxy_shows_nothing_of_its_target():
    """The capsule kernel's static inspector looked through a proxy without checking its
    capability, so `acct.pin?` still showed the value after `%capsule revoke acct` (review
    finding)."""
    from ipycap import CapsulePolicy, Registry
    from ipycap.kernel import static

    class Acct:
        def __init__(self):
            self.pin = "PIN-" + os.urandom(4).hex()

    acct = Acct()
    registry = Registry(CapsulePolicy())
    capsule = Capsule(registry=registry, protected={"acct": acct})
    capsule.run("a = acct")
    proxy = capsule.namespace["a"]
    assert static.static_attr(proxy, "pin") == acct.pin  # visible while granted
    registry.revoke("acct")
    assert static.static_attr(proxy, "pin") is not acct.pin
    assert acct.pin not in static.describe("a", proxy)
    assert "pin" not in static.attribute_names(proxy)


def test_attributeerror_obj_of_a_module_view_is_not_the_raw_module():
    """A failed lookup on a module view raised the AttributeError Python made, whose .obj
    (set automatically since 3.10) was the raw module: raw json -> json.codecs.sys.modules ->
    any object of the process (found by the widened fuzzer)."""
    import sys
    import types

    vault = types.SimpleNamespace(_token="TOKEN-" + os.urandom(4).hex())
    mod = types.ModuleType("ipycap_test_vault_holder")
    mod.vault = vault
    sys.modules[mod.__name__] = mod
    try:
        payload = (
            "import json\n"
            "try:\n"
            "    json.nope\n"
            "except AttributeError as e:\n"
            "    raw = e.obj\n"
            f"loot = raw.codecs.sys.modules[{mod.__name__!r}].vault._token\n"
        )
        plain = {}
        exec(payload, plain)
        assert plain["loot"] == vault._token
        capsule = Capsule()
        try:
            capsule.run(payload)
        except (AttributeError, ImportError):
            pass
        assert capsule.namespace.get("loot") != vault._token
        assert not isinstance(capsule.namespace.get("raw"), types.ModuleType) or (
            type(capsule.namespace["raw"]).__name__ == "ModuleView"
        )
    finally:
        del sys.modules[mod.__name__]


def test_attributeerror_obj_raised_in_trusted_code_is_refused():
    """exc.obj of an AttributeError raised inside trusted code names an object the capsule
    was never given (a library called directly does not go through the membrane); the guard
    hands it out only when it is the capsule's own, plain data or a proxy."""
    hidden = type("Hidden", (), {})()
    try:
        hidden.nope  # fails in trusted code, with obj=hidden
    except AttributeError as e:
        err = e
    assert err.obj is hidden  # what plain Python hands over
    capsule = Capsule()
    capsule.namespace["err"] = err  # as if a library's exception reached capsule code
    for payload in ("o = err.obj", "o = getattr(err, 'obj')", "o = '{0.obj}'.format(err)"):
        with pytest.raises(CapsuleAttributeError):
            capsule.run(payload)
        assert "o" not in capsule.namespace  # neither the object nor its repr got out
    assert capsule.run("class A:\n    obj = 5\nA().obj") == 5  # ordinary .obj still works
