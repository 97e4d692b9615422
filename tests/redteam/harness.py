"""Runs a red-team payload two ways against the same canaries: inside a capsule (it must not
reach them) and as plain Python with full builtins and the same objects unwrapped (it must
reach them — otherwise the payload is not a real attack and does not count).

Canaries, all created fresh per test: a secret file outside every grant (its contents are the
token), a ``Vault`` that holds the same token privately in ``self._token``, and a marker file
that a payload would create.  A payload reaches its canary when the token appears in what it
left in ``loot`` (or anywhere it printed), or when the marker exists afterwards.
"""

from __future__ import annotations

import builtins
import collections.abc
import contextlib
import io
import os
import sys
from dataclasses import dataclass, field

from ipycap import Capsule


class Vault:
    """A protected object: the token is private state, reachable only by breaking in."""

    def __init__(self, token: str):
        self._token = token
        self.name = "vault"

    def public(self):
        return "public data"

    def check(self, guess):
        """Compares a guess with the secret (hands the raw token to guess.__eq__)."""
        return guess == self._token

    def contains(self, collection):
        """Hands the raw token to collection.__contains__."""
        return self._token in collection

    def combine(self, other):
        """Hands the raw token to other.__radd__ via str + other."""
        return self._token + other

    def sorted_by(self, key):
        """Calls a key function with the raw token."""
        return sorted([self._token, "z"], key=key)

    def fail(self):
        raise LookupError("vault failure", self)

    def remember(self, callback):
        self._callback = callback

    def fire(self):
        """Trusted code calls a stored callback later, passing itself."""
        return self._callback(self)

    def describe(self, obj):
        """Trusted code formats a capsule object (calls its __format__/__repr__)."""
        return f"{obj!r}"

    def kind(self):
        """Trusted code asks an abstract base class about its own object (ABCs walk their
        subclasses, capsule ones included, with the object's raw class)."""
        return "sequence" if isinstance(self, collections.abc.Sequence) else "object"

    def starts_before(self, window):
        """Trusted code touches a field of a value type: window.start < the secret."""
        return window.start < self._token


@dataclass
class Env:
    """The canaries and the paths one payload run may aim at."""

    secret: str
    token: str
    marker: str
    granted: str  # a readable directory (holds a symlink and a hard link to the secret)
    writable: str  # a writable directory, not on sys.path
    plant: str  # a directory on sys.path that the capsule is (mis)granted writes under
    fd: int  # a descriptor trusted code holds open on the secret
    extra: dict = field(default_factory=dict)

    def fill(self, source: str) -> str:
        """Replace ``@secret@``-style placeholders (braces stay free for the payload)."""
        for key, value in self.fmt().items():
            source = source.replace(f"@{key}@", str(value))
        return source

    def fmt(self) -> dict:
        return {
            "secret": self.secret,
            "marker": self.marker,
            "granted": self.granted,
            "writable": self.writable,
            "plant": self.plant,
            "fd": self.fd,
            "plantmod": os.path.basename(self.plant),
        }


def make_env(tmp_path, canary) -> Env:
    path, token = canary
    granted = tmp_path / "granted"
    granted.mkdir()
    (granted / "ok.txt").write_text("ok")
    os.symlink(path, granted / "link")
    os.symlink(path.parent, granted / "dirlink")
    writable = tmp_path / "writable"
    writable.mkdir()
    root = tmp_path / "syspath"
    plant = root / f"plantpkg_{tmp_path.name.replace('-', '_')[-20:]}"
    plant.mkdir(parents=True)
    fd = os.open(path, os.O_RDONLY)
    return Env(
        str(path), token, str(tmp_path / "marker"), str(granted), str(writable), str(plant), fd
    )


def protected(env: Env) -> dict:
    """The trusted objects a payload may touch (proxied in a capsule, raw in plain Python)."""
    vault = Vault(env.token)
    return {
        "vault": vault,
        "data": {"owner": vault, "items": [1, 2, 3]},
        "items": [vault, "x"],
        "helper": vault.check,
    }


@dataclass
class Outcome:
    loot: object = None
    error: BaseException | None = None
    output: str = ""


import json as _json  # noqa: E402

_JSON_DECODE = _json.JSONDecoder.decode


def _hardlink(env: Env) -> str:
    link = os.path.join(env.granted, "hard")
    if not os.path.exists(link):
        os.link(env.secret, link)
    return link


_CRASH_CAPSULE = """
import sys
from ipycap import Capsule
try:
    Capsule(label="redteam-crash").run(sys.stdin.read())
except BaseException as e:  # a refusal or an error is fine; dying is not
    print(type(e).__name__)
"""


def _run_crash(source: str, capsule: bool) -> Outcome:
    """A crasher runs in its own interpreter: ``reached`` means that process died of a signal
    (the session it stands for would be lost)."""
    import subprocess

    code = _CRASH_CAPSULE if capsule else "import sys\nexec(sys.stdin.read())"
    proc = subprocess.run(
        [sys.executable, "-c", code], input=source, capture_output=True, text=True, timeout=300
    )
    out = Outcome(output=proc.stdout[-500:] + proc.stderr[-500:])
    out.loot = {"returncode": proc.returncode}
    return out


def run_capsule(payload, env: Env) -> Outcome:
    source = env.fill(payload.source)
    if payload.canary == "crash":
        return _run_crash(source, capsule=True)
    if "hard" in payload.needs:
        _hardlink(env)
    grants = [("read", env.granted), ("write", env.writable)]
    if "plant" in payload.needs:
        grants.append(("write", env.plant))
    grants += list(payload.grants)
    out = Outcome()
    buf = io.StringIO()
    capsule = None
    root = os.path.dirname(env.plant)
    sys.path.insert(0, root)  # the plant folder's parent is on sys.path, like a kernel's cwd
    try:
        with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
            capsule = Capsule(protected=protected(env), grants=grants, label="redteam")
            cwd = os.getcwd()
            try:
                if "chdir" in payload.needs:
                    os.chdir(env.granted)
                out.loot = capsule.run(source)
            finally:
                os.chdir(cwd)
    except BaseException as e:  # noqa: BLE001 - any refusal is fine; the canary decides
        out.error = e
    finally:
        sys.path.remove(root)
    if capsule is not None and out.loot is None:
        out.loot = capsule.namespace.get("loot")
    out.output = buf.getvalue()
    _after(payload, env, capsule.namespace if capsule else {})
    return out


def run_plain(payload, env: Env) -> Outcome:
    """The same payload as plain Python: full builtins, raw objects, no ipycap at all."""
    source = env.fill(payload.source)
    if payload.canary == "crash":
        return _run_crash(source, capsule=False)
    if "hard" in payload.needs:
        _hardlink(env)
    if payload.plain == "ipython":
        return _run_ipython(source, env)
    if "json-later" in payload.needs:
        # A capsule run earlier in this process froze json.JSONDecoder (that is the fix), so
        # the plain attack is shown in a fresh interpreter, where the class is still open.
        return _run_plain_fresh(source + _JSON_LATER.format(token=env.token), env)
    ns = {"__builtins__": builtins, "__name__": "__plain__", **protected(env)}
    out = Outcome()
    buf = io.StringIO()
    cwd = os.getcwd()
    try:
        with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
            if "chdir" in payload.needs:
                os.chdir(env.granted)
            exec(compile(source, "<plain>", "exec"), ns)
    except BaseException as e:  # noqa: BLE001
        out.error = e
    finally:
        os.chdir(cwd)
    out.loot = ns.get("loot")
    out.output = buf.getvalue()
    _after(payload, env, ns)
    return out


_JSON_LATER = """
import json as _trusted_json
_trusted_json.loads(_trusted_json.dumps({token!r}))  # trusted code decodes its own secret
"""


def _run_plain_fresh(source: str, env: Env) -> Outcome:
    import subprocess

    out = Outcome()
    proc = subprocess.run(
        [sys.executable, "-c", source], capture_output=True, text=True, timeout=60
    )
    out.output = proc.stdout + proc.stderr
    if proc.returncode:
        out.error = RuntimeError(proc.stderr[-300:])
    return out


def _run_ipython(source: str, env: Env) -> Outcome:
    """Plain IPython (no ipycap): the notebook-surface payloads' natural habitat."""
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    shell.user_ns.update(protected(env))
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
        result = shell.run_cell(source, store_history=False)
    return Outcome(shell.user_ns.get("loot"), result.error_in_exec, buf.getvalue())


def _after(payload, env: Env, ns: dict) -> None:
    """What trusted code does after the cell (a later import, collecting garbage)."""
    if "json-later" in payload.needs:
        import json

        try:
            json.loads(json.dumps(env.token))  # trusted code decodes its own secret
        except Exception:  # noqa: BLE001
            pass
        finally:
            if json.JSONDecoder.decode is not _JSON_DECODE:  # (frozen classes cannot change)
                json.JSONDecoder.decode = _JSON_DECODE
    if "import-later" in payload.needs:
        mod = os.path.basename(env.plant)
        root = os.path.dirname(env.plant)
        sys.path.insert(0, root)
        try:
            __import__(f"{mod}.evil")
        except Exception:  # noqa: BLE001 - nothing planted: the import fails
            pass
        finally:
            sys.path.remove(root)
            for name in [n for n in sys.modules if n == mod or n.startswith(mod + ".")]:
                del sys.modules[name]
    if "gc" in payload.needs:
        ns.clear()
        import gc

        gc.collect()


def _text(value, depth=0) -> str:
    """Every string reachable in ``value`` (containers walked), for the token check."""
    if depth > 6:
        return ""
    if isinstance(value, (str, bytes)):
        return value if isinstance(value, str) else value.decode("latin-1")
    if isinstance(value, dict):
        return " ".join(_text(k, depth + 1) + _text(v, depth + 1) for k, v in value.items())
    if isinstance(value, (list, tuple, set, frozenset)):
        return " ".join(_text(v, depth + 1) for v in value)
    try:
        return object.__repr__(value) if type(value).__module__ != "builtins" else repr(value)
    except Exception:  # noqa: BLE001
        return ""


def reached(outcome: Outcome, env: Env) -> bool:
    """Whether the run reached a canary: the token in its loot or output, the marker, or
    (crashers) the death of the process that ran it."""
    if isinstance(outcome.loot, dict) and set(outcome.loot) == {"returncode"}:
        return outcome.loot["returncode"] < 0
    if os.path.exists(env.marker):
        return True
    return env.token in _text(outcome.loot) or env.token in outcome.output
