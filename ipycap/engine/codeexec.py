"""The capsule's ``exec``, ``eval`` and ``compile``: source goes through the gate first, and
``compile`` returns an opaque handle that only the gated ``exec``/``eval`` accept."""

from __future__ import annotations

import linecache
import sys
import types

from . import guard, tripwire
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
        CACHE.put(key, (code, gated.names))
        code = (code, gated.names)
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    return code


def make_code_builtins(context) -> dict:
    rexec = context.mode == "rexec"

    def _prepare_globals(g):
        if type(g) is not dict:
            raise CapsuleTypeError("exec()/eval() globals must be a plain dict", "builtins")
        for key in [k for k in g if isinstance(k, str) and k.startswith("_ipycap")]:
            del g[key]
        g["__builtins__"] = context.builtins
        return g

    def _resolve(source, mode, depth=2):
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
        code, names = compile_gated(source, source_filename(source, "string"), mode, rexec)
        context.expose(names)
        return code

    def _frames(g, loc):
        caller = sys._getframe(2)
        if g is None:
            g = caller.f_globals
            if loc is None:
                loc = caller.f_locals
        else:
            _prepare_globals(g)
        return g, loc

    def exec(source, globals=None, locals=None, /):  # noqa: A001
        """exec() through the capsule's gate."""
        code = _resolve(source, "exec")
        g, lo = _frames(globals, locals)
        __builtins__["exec"](code, g, lo)  # type: ignore[index]

    def eval(source, globals=None, locals=None, /):  # noqa: A001
        """eval() through the capsule's gate."""
        if isinstance(source, str):
            source = source.strip()
        code = _resolve(source, "eval")
        g, lo = _frames(globals, locals)
        return __builtins__["eval"](code, g, lo)  # type: ignore[index]

    def compile(
        source,
        filename="<string>",
        mode="exec",
        flags=0,
        dont_inherit=False,  # noqa: A001
        optimize=-1,
    ):
        """compile() through the capsule's gate: returns an opaque handle."""
        if flags:
            raise CapsuleTypeError(
                "compile() flags are not available in a capsule", "builtins", None
            )
        if mode not in ("exec", "eval", "single"):
            raise ValueError("compile() mode must be 'exec', 'eval' or 'single'")
        if isinstance(source, bytes):
            source = source.decode("utf-8")
        if not isinstance(source, str):
            raise CapsuleTypeError("compile() in a capsule takes source text", "builtins")
        source = "".join([source])
        fname = source_filename(source, "compiled")
        code, names = compile_gated(source, fname, mode, rexec)
        context.expose(names)
        handle = CompiledHandle()
        _handle_set_code(handle, code)
        handle.mode = mode
        handle.filename = fname
        return handle

    import builtins as _py

    __builtins__ = {"exec": _py.exec, "eval": _py.eval}
    return {"exec": exec, "eval": eval, "compile": compile}
