"""The engine: run Python source as capsule code, with only the authority it was granted.

``Capsule(policy=..., grants=...).run(source)`` gates the source, compiles it under a
recognisable filename (registered in ``linecache`` so tracebacks show its lines), and runs it
in the capsule's own namespace under capsule builtins, the membrane and the tripwire.  It
returns the value of the last expression, like a notebook cell.  The engine never imports
IPython.
"""

from __future__ import annotations

import ast
import linecache
import os
import sys
import types
from collections.abc import Iterable, Mapping

from . import guard, tripwire
from .builtins import make_builtins
from .errors import (
    CapabilityError,
    CapsuleImportError,
    CapsulePermissionError,
    CapsuleSyntaxError,
    CapsuleTypeError,
)
from .gate import CompileCache, gate, source_filename
from .membrane import _is_plain, export, scrub_outbound, wrap
from .policy import CapsulePolicy
from .registry import Capability, Registry

_CACHE = CompileCache()

#: Capsule code runs with __name__ '__capsule__', so its classes say __module__ '__capsule__'.
#: Libraries look that module up (dataclasses resolves string annotations in it); it is an
#: empty stand-in whose builtins are empty too, so nothing evaluated there gets real builtins.
_CAPSULE_MODULE = types.ModuleType("__capsule__", "Stand-in module of capsule classes (empty).")
_CAPSULE_MODULE.__dict__["__builtins__"] = {}
sys.modules.setdefault("__capsule__", _CAPSULE_MODULE)
_STDLIB_NAMES = frozenset(sys.stdlib_module_names)


class CapsuleContext:
    """The authority of one capsule: its grants, mode and the registry that records use.

    Code runs with the active grants of the capsule that compiled it (found on the stack by
    the tripwire through the capsule's builtins)."""

    def __init__(self, registry: Registry, grants: list[Capability], mode: str, label: str):
        self.registry = registry
        self.policy: CapsulePolicy = registry.policy
        self.grants = grants
        self.mode = mode
        self.label = label
        #: How a refusal names the way to grant: the extension's flags by default; the capsule
        #: kernel replaces it with its own '%capsule request ...' commands.
        self.how_to_grant = extension_grant_hint

    # -- decisions ---------------------------------------------------------------------------
    def _active(self, kind):
        return [c for c in self.grants if c.kind == kind and not c.revoked]

    def may_import(self, name: str) -> bool:
        tier = self.policy.import_tier(name)
        if tier == "denied":
            return False
        if tier == "default":
            # e.g. 'IPython.display': a default view of a module in a denied package
            return not self._revoked_import(name)
        parts = name.split(".")
        prefixes = {".".join(parts[:i]) for i in range(1, len(parts) + 1)}
        if any(self.policy.import_tier(p) == "denied" for p in prefixes):
            return False
        if prefixes & set(self.policy.default_imports):
            return not self._revoked_import(name)
        return any(c.target in prefixes for c in self._active("import"))

    def _revoked_import(self, name: str) -> bool:
        """A default import revoked with %capsule revoke stays revoked (no silent re-grant)."""
        top = name.partition(".")[0]
        revoked = self.registry.find("import", None, active=False)
        if not any(c.target in (name, top) for c in revoked):
            return False
        return not any(c.target in (name, top) for c in self._active("import"))

    def is_stdlib_internal(self, name: str) -> bool:
        """Modules a stdlib library may import lazily on a capsule's behalf."""
        top = name.partition(".")[0]
        return (
            top in _STDLIB_NAMES
            and self.policy.import_tier(name) != "denied"
            and top not in ("os", "sys", "subprocess", "socket", "ctypes", "importlib")
        )

    def check_import(self, name: str) -> None:
        if self.may_import(name):
            self._use_import(name)
            return
        tier = self.policy.import_tier(name)
        if tier == "denied" or any(
            self.policy.import_tier(".".join(name.split(".")[:i])) == "denied"
            for i in range(1, name.count(".") + 2)
        ):
            err = CapsuleImportError(
                f"import of {name!r}: it is in c.CapsulePolicy.denied_imports (it carries "
                "ambient authority)",
                "builtins",
                None,
            )
        elif self._revoked_import(name):
            err = CapsuleImportError(
                f"import of {name!r}: its capability was revoked in this session",
                "builtins",
                self.how_to_grant("import", name),
            )
        else:
            err = CapsuleImportError(
                f"import of {name!r} was not granted to this capsule",
                "builtins",
                self.how_to_grant("import", name),
            )
        self.record_refusal(err, kind="import", target=name)
        raise err

    def _use_import(self, name: str) -> None:
        for cap in self._active("import"):
            if name == cap.target or name.startswith(cap.target + "."):
                self.registry.use(cap, name)
                return
        cap = self.registry.grant(
            "import",
            name.partition(".")[0]
            if name.partition(".")[0] in self.policy.default_imports
            else name,
            scope="session",
            granted_by="default",
        )
        self.grants.append(cap)
        self.registry.use(cap, name)

    def allows_path(self, kind: str, path: str) -> bool:
        """Whether the resolved ``path`` is within an active grant (no event recorded)."""
        if kind == "write" and self.policy.write_plants_code(path):
            return False
        for root in self.policy.denied_path_roots(kind):
            if path == root or path.startswith(root.rstrip("/") + "/"):
                return False
        return any(c.covers_path(path) for c in self._active(kind))

    def check_path(self, kind: str, path: str) -> None:
        for cap in self._active(kind):
            if cap.covers_path(path) and self.allows_path(kind, path):
                self.registry.use(cap, path)
                return
        if kind == "write" and self.policy.write_plants_code(path):
            how = None
            what = (
                f"write access to {path}: code written there would run later with "
                "full authority (write-then-import)"
            )
        elif any(
            path == r or path.startswith(r.rstrip("/") + "/")
            for r in self.policy.denied_path_roots(kind)
        ):
            how, what = None, f"{kind} access to {path}: it is under the policy's denied paths"
        else:
            what = f"{kind} access to {path} was not granted to this capsule"
            how = self.how_to_grant(kind, path)
        err = CapsulePermissionError(what, "builtins", how)
        self.record_refusal(err, kind=kind, target=path)
        raise err

    def may_input(self) -> bool:
        return self.policy.allow_input or bool(self._active("input"))

    def record_refusal(self, err, *, kind: str = "", target: str = "") -> None:
        """Record a refusal: ``kind``/``target`` say what was asked for (e.g. 'read', a path);
        the event also carries the error's what/layer/how."""
        self.registry.refuse(err, kind=kind or "", target=target or self.label)


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def capsule_traceback(tb):
    """The traceback a user needs: from the first capsule frame on, without the frames of
    ipycap itself (the host above the cell, the layer that raised a refusal)."""
    kept, started = [], False
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        started = started or filename.startswith("<capsule-")
        if started and not os.path.abspath(filename).startswith(_PACKAGE_DIR):
            kept.append(tb)
        tb = tb.tb_next
    new = None
    for t in reversed(kept):
        new = types.TracebackType(new, t.tb_frame, t.tb_lasti, t.tb_lineno)
    return new


def _plain_text(value) -> str | None:
    if value is None:
        return None
    return "".join([value]) if isinstance(value, str) else str(export(value))


def error_for_host(exc: BaseException) -> BaseException:
    """The exception a capsule raised, as its host (the extension, the kernel) should hold
    and show it.

    Refusals and builtin exceptions with plain arguments are rebuilt fresh (no ``obj``, no
    context chain holding capsule objects); anything else becomes its builtin base with the
    message.  The traceback keeps the capsule's frames and drops ipycap's and IPython's."""
    tp = type(exc)
    tb = capsule_traceback(exc.__traceback__)
    if isinstance(exc, CapabilityError) and not guard.is_own(exc):
        if tp is CapsuleSyntaxError:
            fresh = tp(
                _plain_text(exc.what),
                _plain_text(exc.how),
                filename=_plain_text(exc.filename),
                lineno=exc.lineno if type(exc.lineno) is int else None,
                col_offset=exc.offset - 1 if type(exc.offset) is int else None,
                text=_plain_text(exc.text),
            )
        else:
            try:  # the host's own refusals (e.g. the kernel's RequestRefused) keep their type
                fresh = tp(
                    _plain_text(exc.what),
                    _plain_text(exc.layer),
                    _plain_text(exc.how),
                    hint=_plain_text(getattr(exc, "hint", None)),
                )
            except TypeError:
                fresh = scrub_outbound(exc)
    elif tp.__module__ == "builtins" and _is_plain(exc.args):
        fresh = tp(*exc.args)
    else:
        fresh = scrub_outbound(exc)
    return fresh.with_traceback(tb)


def extension_grant_hint(kind: str, target: str) -> str | None:
    """How to grant ``kind`` on ``target`` in the IPython extension (``writable``: a
    writable proxy of a user-namespace name; ``object``: a revoked name back)."""
    flags = {
        "import": "--allow-import",
        "read": "--allow-read",
        "write": "--allow-write",
        "writable": "--writable",
    }
    if kind in flags:
        return f"%%capsule {flags[kind]} {target}"
    if kind == "input":
        return "%capsule grant input"
    return f"%capsule grant {kind} {target}"


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
    code = _CACHE.get(key)
    if code is None:
        gated = gate(source, filename, mode=mode, rexec=rexec)
        code = tripwire.trusted_compile(gated.tree, filename, mode)
        _CACHE.put(key, (code, gated.names))
        code = (code, gated.names)
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    return code


def make_code_builtins(context: CapsuleContext) -> dict:
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


class Capsule:
    """Runs Python source with only the authority it was granted.

    ``policy`` is the ceiling, ``registry`` records grants, uses and refusals (one is made
    from the policy when omitted), ``grants`` are extra capabilities for this capsule: either
    ``Capability`` records or ``(kind, target)`` pairs granted now at cell scope.
    ``protected`` is a mapping of trusted names (e.g. the user namespace) that capsule code
    sees through read-only proxies, lazily; names in ``writable`` get writable proxies and
    names in ``hidden`` are not visible at all.
    """

    def __init__(
        self,
        policy: CapsulePolicy | None = None,
        grants: Iterable = (),
        *,
        registry: Registry | None = None,
        protected: Mapping | None = None,
        writable: Iterable[str] = (),
        hidden: Iterable[str] = (),
        mode: str | None = None,
        label: str | None = None,
        namespace: dict | None = None,
        scope: str = "cell",
    ):
        if registry is None:
            registry = Registry(policy)
        elif policy is not None and registry.policy is not policy:
            raise ValueError("the registry belongs to another policy")
        self.registry = registry
        self.policy = registry.policy
        mode = mode or self.policy.mode
        if mode not in ("proxy", "rexec"):
            raise ValueError(f"mode must be 'proxy' or 'rexec', not {mode!r}")
        self.mode = mode
        self.label = label or ""
        self.scope = scope
        self.cell_grants: list[Capability] = []
        caps = []
        for g in grants:
            if isinstance(g, Capability):
                caps.append(g)
            else:
                kind, target = g
                cap = registry.grant(kind, target, scope=scope, granted_by="capsule")
                caps.append(cap)
                self.cell_grants.append(cap)
        self.context = CapsuleContext(registry, caps, mode, self.label)
        self.protected = protected if protected is not None else {}
        self.writable = set(writable)
        self.hidden = set(hidden)
        self.namespace: dict = namespace if namespace is not None else {}
        self.namespace.setdefault("__name__", "__capsule__")
        self.namespace.setdefault("__doc__", None)
        self.builtins = make_builtins(self.context)
        self.context.expose = self._expose
        self.context.builtins = self.builtins
        self.object_caps: dict[str, Capability] = {}
        tripwire.register(self.context)

    # -- protected names ---------------------------------------------------------------------
    def _expose(self, names, builtins_dict=None) -> None:
        """Make the protected names the code reads visible, each through its proxy."""
        b = self.builtins if builtins_dict is None else builtins_dict
        for name in names:
            if name in b or name in self.namespace or name in self.hidden:
                continue
            if name not in self.protected:
                continue
            b[name] = self._proxy_for(name)

    def _proxy_for(self, name):
        value = self.protected[name]
        cap = self.object_caps.get(name)
        if cap is None:
            active = self.registry.find("object", name)
            if active:
                cap = active[0]
            elif self.registry.find("object", name, active=False):
                cap = self.registry.find("object", name, active=False)[-1]  # stays revoked
            else:
                cap = self.registry.grant(
                    "object", name, scope="session", granted_by="user namespace"
                )
            self.object_caps[name] = cap
        if isinstance(value, types.ModuleType):
            from .builtins import make_view

            if self.context.may_import(value.__name__):
                return make_view(value, self.context)
            return _UnavailableModule(name, value.__name__, self.policy)
        if not cap.revoked:
            self.registry.use(cap, name)
        return wrap(value, cap, name in self.writable)

    # -- running -------------------------------------------------------------------------------
    def compile(self, source: str, filename: str | None = None):
        """Gate and compile ``source``; returns (body code, last-expression code, names).

        Like a notebook cell, a final expression statement is compiled separately so that
        ``run`` can return its value."""
        if not isinstance(source, str):
            raise TypeError("capsule source must be str")
        source = "".join([source])
        filename = filename or source_filename(source, self.label)
        rexec = self.mode == "rexec"
        key = (source, filename, "cell", rexec)
        cached = _CACHE.get(key)
        if cached is None:
            gated = gate(source, filename, mode="exec", rexec=rexec)
            body, tail = gated.tree.body, None
            if body and isinstance(body[-1], ast.Expr):
                tail = ast.Expression(body.pop().value)
            body_code = tripwire.trusted_compile(ast.Module(body, []), filename, "exec")
            tail_code = tripwire.trusted_compile(tail, filename, "eval") if tail else None
            cached = (body_code, tail_code, frozenset(gated.names))
            _CACHE.put(key, cached)
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        return cached

    def run(self, source: str, *, namespace: dict | None = None, filename: str | None = None):
        """Run ``source`` as capsule code and return the value of its last expression.

        The result is the capsule-side value (trusted code should pass it through
        ``ipycap.export`` before keeping it).  ``namespace`` (default: this capsule's own
        namespace) is where the code's names live; trusted code may inspect it afterwards.
        """
        ns = self.namespace if namespace is None else namespace
        ns.setdefault("__name__", "__capsule__")
        body, tail, names = self.compile(source, filename)
        self._expose(names)
        ns["__builtins__"] = self.builtins
        tripwire.install()  # re-armed even if an extension unload left it inert
        runner = _RUNNER
        return runner(body, tail, ns)

    def end(self) -> None:
        """End the cell: cell-scoped grants expire."""
        self.registry.end_cell(self.cell_grants)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.end()


class _UnavailableModule:
    """What a capsule sees for a module in the user namespace it may not import."""

    __slots__ = ("name", "module", "how")

    def __init__(self, name, module, policy):
        self.name = name
        self.module = module
        self.how = (
            f"%%capsule --allow-import {module}"
            if policy.import_tier(module) == "grantable"
            else None
        )

    def __getattr__(self, attr):
        raise CapsuleImportError(
            f"{self.name} is the module {self.module!r}, which this capsule may not use",
            "membrane",
            self.how,
        )

    def __repr__(self):
        return f"<module {self.module!r}: not available in this capsule>"


guard.PROXY_TYPES[_UnavailableModule] = lambda v, name: v.__getattr__(name)


def _run(body, tail, ns):
    exec(body, ns)
    if tail is not None:
        return eval(tail, ns)
    return None


_RUNNER = _run

__all__ = ["Capsule", "CapsuleContext", "CapabilityError", "CapsuleSyntaxError"]
