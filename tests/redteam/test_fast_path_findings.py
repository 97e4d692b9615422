"""Red team 5 (the code rewritten for speed): findings fixed as classes, kept as regressions.

1. A cache of filesystem facts keyed by configuration: the resolved import roots dropped
   sys.path entries that were not folders yet, and the answer was cached while sys.path was
   unchanged -- a capsule made the folder and planted a module trusted code then imported.
5. Capsule code recognised by a value capsule code can choose: functions made after code
   rewrote its own ``globals['__builtins__']`` ran unrecognised (no table knew the dict);
   gate-compiled code objects are now recognised by identity, whatever their builtins.
6/7. The tripwire ran a method of an event argument (``path[:]`` of a str subclass): it was
   shown a granted path while open read another, and capsule code ran inside the hook, where
   nested events were skipped (now refused when capsule code is between them and the hook).
Each test states the attack; the plain-Python effect is shown inside it (trusted code
importing the planted module, dropping the namespace) or by the refused direct form.
"""

from __future__ import annotations

import importlib
import os
import sys

import pytest

from ipycap import Capsule
from ipycap.engine import guard
from ipycap.engine.errors import CapsulePolicyError
from tests import test_magics as shared

_shell = shared._shell
ip = shared.ip


def test_stale_import_roots_let_a_capsule_plant_a_module(tmp_path, canary, monkeypatch):
    """write-then-import through the resolved-roots cache.

    ``policy.import_roots()`` keeps only sys.path entries that are folders *now*
    (``os.path.isdir``), and ``_cached_tuple`` keeps that answer while epoch, sys.path, cwd
    and env are unchanged: it is not keyed by the filesystem.  A sys.path entry that does not
    exist yet (a project's ``lib``/``src`` folder, a build dir) is created by the capsule
    itself (its write grant, the capsule's pathlib ``mkdir``); the cached roots still say it
    is no import root, so writing ``entry/mod.py`` passes ``write_plants_code`` (the same
    write with the cache cleared is refused: "code written there would run later with full
    authority").  Trusted code importing the module later runs it with full authority."""
    secret, token = canary
    out = tmp_path / "out"
    out.mkdir()
    entry = out / "lib"  # on sys.path, not created yet
    marker = tmp_path / "marker.txt"
    monkeypatch.setattr(sys, "path", [*sys.path, str(entry)])
    modname = "rt_perf_planted_" + os.urandom(4).hex()
    planted = f"open({str(marker)!r}, 'w').write(open({str(secret)!r}).read())\n"
    src = (
        "from pathlib import Path\n"
        f"Path({str(entry)!r}).mkdir()\n"
        f"open({str(entry / (modname + '.py'))!r}, 'w').write({planted!r})\n"
    )
    capsule = None
    try:
        # Refused at the grant now (the entry under out/ is an import root) or at the write.
        capsule = Capsule(grants=[("write", str(out)), ("read", str(out))])
        capsule.run(src)
    except (PermissionError, CapsulePolicyError):
        pass  # refused: what should happen
    try:
        # plain Python, later: the user's trusted code imports from its sys.path
        if (entry / (modname + ".py")).exists():
            importlib.invalidate_caches()
            importlib.import_module(modname)
    finally:
        sys.modules.pop(modname, None)
        if capsule is not None:
            capsule.end()
    reached = marker.exists() and token in marker.read_text()
    assert not reached, "the planted module, imported by trusted code, read the canary"
    assert not (entry / (modname + ".py")).exists(), "the capsule planted a module on sys.path"


# -- 6. capsule code is recognised by its builtins dict, which capsule code can choose -------
_CHOSEN_BUILTINS_PAYLOAD = """
import configparser
loot = []
g = {{'configparser': configparser, 'loot': loot, 'SECRET': {secret!r}}}
g['g'] = g
exec('''
g['__bu' + 'iltins__'] = {{'list': list, 'print': print}}
def grab(self):
    try:
        configparser.ConfigParser().read(SECRET)
    except Exception as e:
        loot.append(str(e))
''', g)
class K:
    pass
K.__del__ = g['grab']
k = K()
"""


def test_function_with_capsule_chosen_builtins_runs_unrecognised(canary):
    """Every layer tells capsule code by ``frame.f_builtins`` (the tripwire, I1's
    caller_frame, is_own, retention, _arrayguard's capsule_on_stack).  But CPython 3.11
    takes a function's builtins from ``globals['__builtins__']`` each time MAKE_FUNCTION
    runs, and the gated ``exec`` sets that key only *before* the code starts: code that
    holds its own globals dict (``g['g'] = g``) rewrites ``g['__builtins__']`` mid-exec
    (a string-built key: the gate only bans the name) and every function defined after it
    has a capsule-chosen builtins dict that no table knows.  Run by trusted code later (here
    a ``__del__`` when the cell's namespace is dropped: IPython's release_namespace, the
    cyclic GC anywhere) no frame on the stack is capsule code, so the tripwire is inert: a
    stdlib module the capsule may import (configparser) opens the canary.  The same read in
    the cell itself is refused by the tripwire."""
    secret, token = canary
    capsule = Capsule(grants=[("import", "configparser")])
    capsule.run(_CHOSEN_BUILTINS_PAYLOAD.format(secret=str(secret)))
    # the direct read is refused (configparser swallows the PermissionError, an OSError)
    assert capsule.run(f"configparser.ConfigParser().read({str(secret)!r})") == []
    loot = capsule.namespace["loot"]
    capsule.end()
    # plain Python, later: trusted code drops the cell's namespace (k.__del__ runs)
    capsule.namespace.clear()
    import gc

    gc.collect()
    assert not any(token in line for line in loot), "capsule code read the canary unrecognised"


def test_chosen_builtins_through_the_extension(ip, canary, capsys):
    """The same through ``%%capsule --allow-import configparser``: the cell succeeds, and
    when its namespace is released after the cell the unrecognised ``__del__`` would print
    the canary into the notebook."""
    secret, token = canary
    payload = _CHOSEN_BUILTINS_PAYLOAD.format(secret=str(secret)).replace(
        "loot.append(str(e))", "print('LEAKED', e)"
    )
    ip.run("%%capsule --allow-import configparser\n" + payload)
    import gc

    gc.collect()
    ip.run("rt_perf_after = 1")
    assert token not in capsys.readouterr().out, "the capsule's __del__ printed the canary"


def _granted_file(tmp_path):
    granted = tmp_path / "granted"
    granted.mkdir()
    (granted / "ok.txt").write_text("fine\n")
    return granted, granted / "ok.txt"


def test_tripwire_open_path_from_a_lying_str_subclass(tmp_path, canary):
    """``tripwire._exact_path`` copies a str subclass with ``path[:]`` to get "the data, not
    the subclass's methods", but ``path[:]`` *is* the subclass's ``__getitem__``.  A library
    the capsule may import passes the capsule's path object to the real ``open``
    (configparser, gzip, tarfile, zipfile, configparser.read: ``os.fspath`` keeps a str
    subclass); the audit event carries that object; the tripwire checks whatever
    ``__getitem__`` answers (a granted file) while ``open`` opens the subclass's real data
    (the canary).  The plain path is refused."""
    secret, token = canary
    granted, ok = _granted_file(tmp_path)
    capsule = Capsule(grants=[("import", "configparser"), ("read", str(granted))])
    # the plain path is refused (configparser swallows the PermissionError, an OSError)
    assert (
        capsule.run(f"import configparser\nconfigparser.ConfigParser().read({str(secret)!r})") == []
    )
    src = (
        "import configparser\n"
        "lines = []\n"
        "class S(str):\n"
        "    def __getitem__(self, k):\n"
        f"        return {str(ok)!r}\n"
        "try:\n"
        f"    configparser.ConfigParser().read(S({str(secret)!r}))\n"
        "except Exception as e:\n"
        "    lines.append(str(e))\n"
    )
    try:
        capsule.run(src)
    except PermissionError:
        pass
    lines = capsule.namespace.get("lines") or []
    capsule.end()
    assert not any(token in line for line in lines), "the tripwire was shown a granted path"


def test_capsule_code_runs_inside_the_busy_tripwire_hook(tmp_path, canary):
    """Same door, second effect: ``_hook`` sets ``_state.busy`` and skips *every* event
    while it is set, then calls rules that run capsule code (``path[:]`` above).  Capsule
    code running there opens anything: here a granted file's path object reads the canary
    from its ``__getitem__``."""
    secret, token = canary
    granted, ok = _granted_file(tmp_path)
    capsule = Capsule(grants=[("import", "configparser"), ("read", str(granted))])
    src = (
        "import configparser\n"
        "loot = []\n"
        "class S(str):\n"
        "    def __getitem__(self, k):\n"
        "        try:\n"
        f"            configparser.ConfigParser().read({str(secret)!r})\n"
        "        except Exception as e:\n"
        "            loot.append(str(e))\n"
        "        return str.__getitem__(self, k)\n"
        "try:\n"
        f"    configparser.ConfigParser().read(S({str(ok)!r}))\n"
        "except Exception:\n"
        "    pass\n"
    )
    try:
        capsule.run(src)
    except PermissionError:
        pass
    loot = capsule.namespace.get("loot") or []
    capsule.end()
    assert not any(token in line for line in loot), "capsule code ran unchecked inside the hook"


def test_a_function_with_chosen_builtins_called_later_by_trusted_code_is_refused(canary):
    """The same function called directly by trusted code after the cell (an exported
    callback): no capsule frame is on the stack, its own frame is recognised by its code."""
    secret, token = canary
    capsule = Capsule(grants=[("import", "configparser")])
    capsule.run(_CHOSEN_BUILTINS_PAYLOAD.format(secret=str(secret)))
    grab = capsule.namespace["g"]["grab"]
    grab(None)  # the open is refused (configparser swallows the PermissionError)
    assert not any(token in line for line in capsule.namespace["loot"])
    capsule.end()


def test_classes_made_with_chosen_builtins_are_still_capsule_classes():
    """A class statement run by such a function is still capsule code for the guards that
    decide by "who asked" (here the array-protocol guard placed on every capsule class)."""
    from ipycap.engine import arrayguard

    if not arrayguard.install():
        pytest.fail("the array guard's C module is not built")
    capsule = Capsule()
    cls = capsule.run(
        "g = {'__name__': 'm'}\ng['g'] = g\n"
        "exec(\"g['__bu' + 'iltins__'] = {'object': object}\\n"
        'class A:\\n    pass\\n", g)\n'
        "g['A']"
    )
    assert guard.is_capsule_code is not None
    assert "__array_interface__" in type.__dict__["__dict__"].__get__(cls), (
        "a class made under capsule-chosen builtins was taken for trusted code"
    )


def test_an_entry_added_to_sys_path_after_the_grant_is_an_import_root_before_it_exists(
    tmp_path, canary, monkeypatch
):
    """The same with the grant made first and the (not yet existing) entry put on sys.path
    afterwards: the write into it is refused, the module is never planted."""
    secret, token = canary
    out = tmp_path / "out"
    out.mkdir()
    capsule = Capsule(grants=[("write", str(out)), ("read", str(out))])
    capsule.run("1")  # the roots are resolved and cached once
    entry = out / "lib"
    monkeypatch.setattr(sys, "path", [*sys.path, str(entry)])
    target = entry / ("rt_perf_late_" + os.urandom(4).hex() + ".py")
    with pytest.raises(PermissionError):
        capsule.run(
            f"from pathlib import Path\nPath({str(entry)!r}).mkdir()\n"
            f"open({str(target)!r}, 'w').write('x = 1')\n"
        )
    capsule.end()
    assert not target.exists(), "the capsule planted a module on sys.path"
