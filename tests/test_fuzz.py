"""Fuzzing the capsule (short profile): generated attribute chains and calls over many roots
never hand trusted code a reached canary (see tests/redteam/fuzzing.py for the property).
The long profile (>= 100,000 examples) is ``make fuzz-long`` (bench/fuzz_long.py)."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, given, settings

from .redteam.fuzzing import forbidden, programs, render, run_program

TOKEN = "CANARY-" + os.urandom(6).hex()


@settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(programs)
def test_generated_chains_never_reach_a_canary(expr):
    value, error, vault = run_program(expr, TOKEN, "")
    why = forbidden(value, TOKEN, vault)
    assert why is None, f"{expr!r} returned {why}"


def test_the_property_detects_a_reached_canary():
    """The checker is not vacuous: the same chains as plain Python do reach canaries."""
    from .redteam.harness import Vault

    vault = Vault(TOKEN)
    ns = {"vault": vault}
    exec("import operator\nresult = " + render("vault", [("attr", "_token")]), ns)
    assert forbidden(ns["result"], TOKEN, vault) == "the token"
    exec("result = " + render("print", [("attr", "__self__")]), ns)
    assert forbidden(ns["result"], TOKEN, vault) == "a module"
    exec("result = " + render("vault", [("attr", "public"), ("attr", "__globals__")]), ns)
    assert forbidden(ns["result"], TOKEN, vault) == "a module's globals"
