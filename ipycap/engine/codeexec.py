"""The capsule's ``exec``, ``eval`` and ``compile``: source goes through the gate first, and
``compile`` returns an opaque handle that only the gated ``exec``/``eval`` accept."""

from __future__ import annotations

import builtins as _py
import linecache
import sys
import types

from . import guard, rollback, tripwire
from .errors import CapsuleTypeError
from .gate import CompileCache, gate, source_filename

#: Gated code, by (source, filename, mode, rexec): an unchanged cell re-runs from here.
CACHE = CompileCache()


class CompiledHandle:
    """What the gated ``compile`` returns: only the gated ``exec``/``eval`` accept it."""

    __slots__ = ("__ipycap_code__", "mode", "filename")

    def __repr__(self):
        return f"<capsule code {self.filename} ({self.mode})>"


_handle_code = CompiledHandle.__dict__["__ipycap_code__"].__get__
_handle_set_code = CompiledHandle.__dict__["__ipycap_code__"].__set__
guard.PROXY_TYPES[CompiledHandle] = lambda h, name: guard.refuse(
    h, name, "compiled capsule code is opaque"
)


def compile_gated(source: str, filename: str, mode: str, rexec: bool) -> types.CodeType:
    """Gate and compile, served from a cache when the same source runs again."""
    key = (source, filename, mode, rexec)
    code = CACHE.get(key)
    if code is None:
        gated = gate(source, filename, mode=mode, rexec=rexec)
        code = tripwire.trusted_compile(gated.tree, filename, mode)
        guard.register_code(code)
        CACHE.put(key, (code, gated.names))
        code = (code, gated.names)
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    return code


def caller_frame(depth: int, what: str):
    """``(frame, context)`` of the frame ``depth`` levels above the caller, when it runs
    capsule code (I1 in DESIGN.md); otherwise a refusal.

    ``exec``/``eval`` without globals, ``globals()`` and ``locals()`` read the frame that
    called them.  Trusted code can be made to call a capsule's builtin (``copy``'s
    reconstructor, a ``defaultdict`` factory, a json hook, any trusted method taking a
    callback): that frame is then the trusted module's, with its globals and the real
    builtins.  A frame is a capsule's when its builtins carry the engine's context, which
    holds for every frame of gate-compiled code (functions, lambdas, comprehensions,
    generators, class bodies) and for no other."""
    frame = sys._getframe(depth + 1)
    ctx = guard.context_of(frame.f_builtins)
    if ctx is None:
        raise CapsuleTypeError(
            f"{what} was called by code outside this capsule (a trusted function calling a "
            "capsule builtin back), so it has no capsule namespace to use",
            "builtins",
            None,
            hint=f"pass the namespace explicitly, e.g. {what.partition('(')[0]}(source, {{}})"
            if what.startswith(("exec", "eval"))
            else None,
        )
    return frame, ctx


def _stack_context(what: str):
    """The innermost capsule context on the stack (a builtin holds none of its own)."""
    ctx = tripwire.current_context()
    if ctx is None:
        raise CapsuleTypeError(f"{what} of a capsule was called outside any capsule", "builtins")
    return ctx


def _views(ctx) -> dict:
    """id(namespace) -> (namespace, its read-only view): what ``globals()`` returned, so that
    ``eval(src, globals(), ...)`` means the caller's own namespace, as in plain Python."""
    views = ctx.__dict__.get("globals_views")
    if views is None:
        views = ctx.__dict__["globals_views"] = {}
    return views


def _prepare_globals(g, ctx):
    if type(g) is not dict:
        raise CapsuleTypeError("exec()/eval() globals must be a plain dict", "builtins")
    current = dict.get(g, "__builtins__")
    if current is _py or current is _REAL_BUILTINS:
        # A namespace with the real builtins is trusted code's (a module's or an outside
        # function's globals): the capsule never runs code there.
        raise CapsuleTypeError(
            "exec()/eval() in a namespace that belongs to code outside the capsule",
            "builtins",
            None,
            hint="use a fresh dict: exec(source, {})",
        )
    for key in list(dict.keys(g)):
        if isinstance(key, str) and "".join([key]).startswith("_ipycap"):
            dict.__delitem__(g, key)  # no name may shadow the guard's hooks
    dict.__setitem__(g, "__builtins__", ctx.builtins_module)
    return g


def _namespaces(g, loc, what):
    """(globals, locals, context) for exec/eval called two frames up."""
    if type(g) is types.MappingProxyType:
        caller, ctx = caller_frame(2, what.replace("without globals", "with globals()"))
        entry = _views(ctx).get(id(caller.f_globals))
        if entry is None or entry[1] is not g:
            raise CapsuleTypeError(
                "exec()/eval() globals must be a plain dict or this code's own globals()",
                "builtins",
            )
        g = caller.f_globals
        return _prepare_globals(g, ctx), loc, ctx
    if g is None:
        # exec(src) / eval(src): the caller's namespaces, only when the caller is capsule
        # code (a trampoline would hand over a trusted module's globals).
        caller, ctx = caller_frame(2, what)
        return caller.f_globals, caller.f_locals if loc is None else loc, ctx
    ctx = _stack_context(what.replace(" without globals", ""))
    return _prepare_globals(g, ctx), loc, ctx


def _resolve(source, mode, ctx):
    if type(source) is CompiledHandle:
        if source.mode != mode and not (mode == "exec"):
            raise TypeError(f"code compiled for {source.mode!r} used with {mode}")
        return _handle_code(source)
    if isinstance(source, bytes):
        source = source.decode("utf-8")
    if not isinstance(source, str):
        raise CapsuleTypeError(
            f"{mode}() in a capsule takes source text or the result of its compile()",
            "builtins",
            None,
        )
    source = "".join([source])
    rexec = ctx.mode == "rexec"
    code, names = compile_gated(source, source_filename(source, "string"), mode, rexec)
    ctx.expose(names)
    return code


def exec(source, globals=None, locals=None, /):  # noqa: A001
    """exec() through the capsule's gate."""
    g, lo, ctx = _namespaces(globals, locals, "exec() without globals")
    code = _resolve(source, "exec", ctx)
    rollback.note_exec(code, g, lo)  # a kernel cell's names, for its rollback on failure
    _real_exec(code, g, lo)


def eval(source, globals=None, locals=None, /):  # noqa: A001
    """eval() through the capsule's gate."""
    if isinstance(source, str):
        source = source.strip()
    g, lo, ctx = _namespaces(globals, locals, "eval() without globals")
    code = _resolve(source, "eval", ctx)
    rollback.note_exec(code, g, lo)  # a kernel cell's names, for its rollback on failure
    return _real_eval(code, g, lo)


def compile(
    source,
    filename="<string>",
    mode="exec",
    flags=0,
    dont_inherit=False,  # noqa: A001
    optimize=-1,
):
    """compile() through the capsule's gate: returns an opaque handle."""
    ctx = _stack_context("compile()")
    if flags:
        raise CapsuleTypeError("compile() flags are not available in a capsule", "builtins", None)
    if mode not in ("exec", "eval", "single"):
        raise ValueError("compile() mode must be 'exec', 'eval' or 'single'")
    if isinstance(source, bytes):
        source = source.decode("utf-8")
    if not isinstance(source, str):
        raise CapsuleTypeError("compile() in a capsule takes source text", "builtins")
    source = "".join([source])
    fname = source_filename(source, "compiled")
    code, names = compile_gated(source, fname, mode, ctx.mode == "rexec")
    ctx.expose(names)
    handle = CompiledHandle()
    _handle_set_code(handle, code)
    handle.mode = mode
    handle.filename = fname
    return handle


def globals():  # noqa: A001 - the capsule's globals()
    """The capsule's globals, read-only (assign names with ordinary statements)."""
    frame, ctx = caller_frame(1, "globals()")
    ns = frame.f_globals
    views = _views(ctx)
    entry = views.get(id(ns))
    if entry is None or entry[0] is not ns:
        entry = views[id(ns)] = (ns, types.MappingProxyType(ns))
    return entry[1]


def locals():  # noqa: A001 - the capsule's locals()
    """A snapshot of the caller's local names."""
    return dict(caller_frame(1, "locals()")[0].f_locals)


def make_code_builtins(mode: str) -> dict:
    """The capsule's exec, eval, compile, globals and locals: the same functions for every
    capsule, holding nothing (they find their capsule on the stack)."""
    return {"exec": exec, "eval": eval, "compile": compile, "globals": globals, "locals": locals}


_real_exec = _py.exec
_REAL_BUILTINS = vars(_py)
_real_eval = _py.eval
