"""Hypothesis strategies for the fuzzer: attribute chains and calls over many roots.

A generated program starts from a root (a literal, a builtin, a proxy of a protected object,
an object the capsule made, a caught exception, a generator, a coroutine) and applies up to
eight accessors (attribute, ``getattr``, a ``str.format`` field, ``operator.attrgetter``,
a subscript, a call, ``vars``).  The property, checked by *trusted* code on what the capsule
returns: no canary is reached — the result is never the token of a protected object or the
secret file's contents, never a raw protected object, a module, a frame, a traceback, a code
object, a function's globals or the builtins.
"""

from __future__ import annotations

import builtins
import types

from hypothesis import strategies as st

from ipycap import Capsule, rules

from .harness import Vault

PRELUDE = """
import operator
class Own:
    def method(self):
        return 1
own = Own()
def gen_fn():
    yield 1
gen = gen_fn()
async def coro_fn():
    return 1
coro = coro_fn()
try:
    vault.fail()
except Exception as e:
    exc = e
try:
    1 / 0
except Exception as e:
    exc2 = e
"""

ROOTS = [
    "()", "[]", "{}", "''", "1", "1.5", "None", "True", "b''", "print", "len", "object",
    "type", "str", "int", "range(2)", "vault", "data", "items", "helper", "own", "Own",
    "gen", "gen_fn", "coro", "exc", "exc2", "(lambda: 0)", "operator", "vault.public",
    "Exception",
]  # fmt: skip

NAMES = sorted(
    rules.NEVER | rules.OWN_ONLY | rules.SPECIAL | {"__class__", "__base__", "__bases__",
    "__mro__", "__dict__", "_token", "public", "check", "fail", "mro", "method", "append",
    "keys", "values", "items", "real", "__name__", "__doc__", "__init__", "__call__", "obj",
    "args", "cell_contents", "__subclasses__", "__globals__", "f_back", "gi_frame",
    "tb_frame", "__traceback__", "format", "__getitem__", "load_module", "open"}
)  # fmt: skip

_names = st.sampled_from(NAMES)
_accessors = st.one_of(
    st.tuples(st.just("attr"), _names),
    st.tuples(st.just("getattr"), _names),
    st.tuples(st.just("format"), _names),
    st.tuples(st.just("attrgetter"), _names),
    st.tuples(st.just("index"), st.sampled_from(["0", "-1", "'__builtins__'", "'_token'"])),
    st.tuples(st.just("call"), st.sampled_from(["", "0", "'x'", "object"])),
    st.tuples(st.just("vars"), st.just("")),
)


def render(root: str, steps) -> str:
    expr = root
    for kind, arg in steps:
        if kind == "attr":
            expr = f"({expr}).{arg}"
        elif kind == "getattr":
            expr = f"getattr({expr}, {arg!r})"
        elif kind == "format":
            expr = f"'{{0.{arg}}}'.format({expr})"
        elif kind == "attrgetter":
            expr = f"operator.attrgetter({arg!r})({expr})"
        elif kind == "index":
            expr = f"({expr})[{arg}]"
        elif kind == "call":
            expr = f"({expr})({arg})"
        else:
            expr = f"vars({expr})"
    return expr


programs = st.builds(render, st.sampled_from(ROOTS), st.lists(_accessors, min_size=1, max_size=8))


_FORBIDDEN_TYPES = (types.FrameType, types.TracebackType, types.CodeType, types.ModuleType)


def forbidden(value, token: str, vault: Vault, depth: int = 0) -> str | None:
    """Why ``value`` (returned to trusted code) is a reached canary, or None."""
    if depth > 3:
        return None
    if value is vault:
        return "the raw protected object"
    if isinstance(value, _FORBIDDEN_TYPES):
        return f"a {type(value).__name__}"
    if value is builtins or value is vars(builtins):
        return "the builtins"
    if isinstance(value, (str, bytes)):
        text = value if isinstance(value, str) else value.decode("latin-1")
        return "the token" if token in text else None
    if isinstance(value, dict):
        if (
            "__builtins__" in value
            and "__name__" in value
            and value.get("__name__") not in ("__capsule__",)
        ):
            return "a module's globals"
        items = list(value.items())[:50]
        for k, v in items:
            why = forbidden(k, token, vault, depth + 1) or forbidden(v, token, vault, depth + 1)
            if why:
                return why
    if isinstance(value, (list, tuple, set, frozenset)):
        for v in list(value)[:50]:
            why = forbidden(v, token, vault, depth + 1)
            if why:
                return why
    if isinstance(value, types.FunctionType) and "_ipycap_context" not in value.__builtins__:
        return "a trusted function (its __globals__ are one step away)"
    return None


def run_program(expr: str, token: str, secret: str):
    """Run one generated program in a fresh capsule; returns (value, error)."""
    vault = Vault(token)
    capsule = Capsule(
        protected={"vault": vault, "data": {"v": vault}, "items": [vault], "helper": vault.check}
    )
    try:
        value = capsule.run(PRELUDE + f"result = {expr}\nresult")
    except BaseException as e:  # noqa: BLE001 - refusals and ordinary errors are fine
        return capsule.namespace.get("result"), e, vault
    finally:
        coro = capsule.namespace.get("coro")
        if type(coro) is types.CoroutineType:
            coro.close()
    return value, None, vault
