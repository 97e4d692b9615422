"""Fuzzing the capsule (short profile): generated attribute chains and calls over many roots
never reach a canary — the vault's token, the secret file (its contents, or opening it at all),
raw frames, modules, globals — in the returned value, a caught or escaping exception, printed
output or warnings (see tests/redteam/fuzzing.py for the property).  The checker itself is
shown to flag each kind of canary, and the same programs as plain Python do reach them.
The long profile (>= 100,000 examples) is ``make fuzz-long`` (bench/fuzz_long.py)."""

from __future__ import annotations

import os
import sys
import warnings

from hypothesis import HealthCheck, given, settings

from ipycap import Registry
from ipycap.engine.membrane import wrap

from .redteam.fuzzing import (
    Outcome,
    canaries,
    programs,
    reached,
    render,
    run_plain,
    run_program,
    watching_opens,
)
from .redteam.harness import Vault


@settings(
    max_examples=2000,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(programs)
def test_generated_chains_never_reach_a_canary(expr):
    out = run_program(expr)
    why = reached(out)
    assert why is None, f"{expr!r}: {why}"


def test_the_harness_really_runs_programs_with_a_live_grant():
    """The prelude runs, the read grant works, and the secret is refused by a layer (not a
    NameError), so a pass above means the chains met the layers."""
    assert run_program("vault.public()").value == "public data"
    ok = run_program("open(GRANTED + '/ok.txt').read()")
    assert ok.value == "ok\n" and ok.caught is None and ok.error is None
    for target in ("SECRET", "LINK", "DIRLINK + '/secret.txt'", "PathLike()", "FD"):
        out = run_program(f"open({target}).read()")
        assert isinstance(out.caught, PermissionError), (target, out.caught)
        assert "refused by" in str(out.caught) and reached(out) is None


def test_the_same_programs_as_plain_python_reach_the_canaries():
    """The checker is not vacuous: without ipycap the generated shapes do reach canaries."""
    c = canaries()
    cases = {
        render("open", [("call", "SECRET"), ("attr", "read"), ("call", "")]): "opened",
        render("open", [("call", "LINK"), ("methodcaller", "read")]): "opened",
        render("vault", [("attr", "_token")]): "returned the token",
        render("print", [("call", "vault._token")]): "printed the token",
        render("vault", [("format", "_token")]): "returned the token",
        render("sys", [("attr", "_getframe"), ("call", "")]): "returned a frame",
        render("vault", [("attr", "public"), ("attr", "__globals__")]): "a module's globals",
        render("print", [("attr", "__self__")]): "returned a module",
        render("int", [("call", "vault._token")]): "the token in an exception's message",
        # the seam: trusted list.index hands a capsule __eq__ the object it compares with
        render("Hashed()", [("wrap", "(lambda x: [vault].index(x))")]): "handed a capsule hook",
    }
    for expr, expected in cases.items():
        why = reached(run_plain(expr, c), c)
        assert why is not None and expected in why, (expr, why)


def test_the_checker_flags_every_kind_of_canary():
    c = canaries()
    vault = Vault(c.token)
    assert reached(Outcome(value=c.contents, vault=vault)) == "returned the secret file's contents"
    assert reached(Outcome(value=[{"k": c.token.encode()}])) == "returned the token"
    assert reached(Outcome(value=vault, vault=vault)) == "returned the raw protected object"
    assert reached(Outcome(value=os)) == "returned a module"
    assert reached(Outcome(value=sys._getframe())) == "returned a frame"
    assert reached(Outcome(value=Vault.public)).startswith("returned a raw function")
    msg = ValueError(f"invalid literal for int() with base 10: {c.token!r}")
    assert (
        reached(Outcome(caught=msg))
        == "caught an exception with the token in an exception's message"
    )
    hidden = LookupError("failure", ("nested", vault))
    assert "raw protected object" in reached(Outcome(error=hidden, vault=vault))
    attr = AttributeError("no", name="x", obj=vault)
    assert "raw protected object" in reached(Outcome(caught=attr, vault=vault))
    chained = RuntimeError("outer")
    chained.__context__ = OSError(c.contents)
    assert "secret file's contents" in reached(Outcome(caught=chained))
    assert reached(Outcome(output=f"x {c.token}\n")) == "printed the token"
    assert reached(Outcome(warned=[c.contents])) == "printed the secret file's contents"
    assert reached(Outcome(opened=[c.secret])).startswith("opened the secret file")
    cap = Registry().grant("object", "frame")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        proxied = wrap(sys._getframe(), cap)
    assert reached(Outcome(value=proxied)) == "returned a proxy of a frame"
    assert reached(Outcome(value="public data", caught=KeyError("nope"))) is None


def test_the_open_watcher_sees_every_way_to_the_secret_and_nothing_else():
    c = canaries()
    with watching_opens(c) as opened:
        open(os.path.join(c.granted, "ok.txt")).close()
        assert opened == []
        open(os.path.join(c.granted, "link")).close()
        open(os.path.join(c.granted, "dirlink", "secret.txt"), "rb").close()
        open(c.fd, closefd=False).close()
        os.close(os.open(c.secret.encode(), os.O_RDONLY))
    assert len(opened) == 4, opened
    open(c.secret).close()  # not watching: trusted code's own reads are not the capsule's
    assert len(opened) == 4
