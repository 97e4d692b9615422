"""The engine: run Python source as capsule code, with only the authority it was granted.

``Capsule(policy=..., grants=...).run(source)`` gates the source, compiles it under a
recognisable filename (registered in ``linecache`` so tracebacks show its lines), and runs it
in the capsule's own namespace under capsule builtins, the membrane and the tripwire.  It
returns the value of the last expression, like a notebook cell.  The engine never imports
IPython.
"""

from __future__ import annotations

import ast
import decimal
import linecache
import os
import re
import sys
import types
from collections.abc import Iterable, Mapping

from . import guard, limits, retention, rollback, terminal, toplevel_await, tripwire
from .builtins import make_builtins
from .codeexec import CACHE as _CACHE
from .context import CapsuleContext
from .errors import CapabilityError, CapsuleImportError, CapsuleSyntaxError
from .gate import gate, source_filename
from .membrane import export, is_plain, scrub_outbound, wrap
from .membrane.scrub import is_builtin_class
from .modules import _module_dict, make_view
from .policy import CapsulePolicy
from .registry import Capability, Registry
from .stubframes import stub_traceback

#: Capsule code runs with __name__ '__capsule__', so its classes say __module__ '__capsule__'.
#: Libraries look that module up (dataclasses resolves string annotations in it); it is an
#: empty stand-in whose builtins are empty too, so nothing evaluated there gets real builtins.
_CAPSULE_MODULE = types.ModuleType("__capsule__", "Stand-in module of capsule classes (empty).")
_CAPSULE_MODULE.__dict__["__builtins__"] = {}
sys.modules.setdefault("__capsule__", _CAPSULE_MODULE)


#: The whole ipycap package (engine, IPython glue, kernel): its frames are not the user's.
_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


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
    message.  The traceback shows the capsule's frames (not ipycap's or IPython's) through
    stand-ins holding only their plain variables (:mod:`ipycap.engine.stubframes`)."""
    tp = type(exc)
    tb = stub_traceback(capsule_traceback(exc.__traceback__))
    if issubclass(tp, CapabilityError) and not guard.is_own(exc):
        if tp is CapsuleSyntaxError:
            fresh = tp(
                _plain_text(exc.what),
                _plain_text(exc.how),
                filename=_plain_text(exc.filename),
                lineno=exc.lineno if type(exc.lineno) is int else None,
                col_offset=exc.offset - 1 if type(exc.offset) is int else None,
                text=_plain_text(exc.text),
                hint=_plain_text(getattr(exc, "hint", None)),
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
    elif is_builtin_class(tp) and is_plain(exc.args):
        fresh = tp(*exc.args)
        if issubclass(tp, SyntaxError):
            fresh = _syntax_error_for_host(tp, exc.args)
    else:
        fresh = scrub_outbound(exc)
    return _for_terminal(fresh).with_traceback(tb)


def _sanitized(value):
    if type(value) is str:
        return terminal.sanitize(value)
    if type(value) is tuple:
        return tuple(_sanitized(v) for v in value)
    return value


def _for_terminal(exc: BaseException) -> BaseException:
    """The one chokepoint for capsule text in what the host prints of an exception (the
    traceback IPython shows, the kernel's error reply): every text the message is built from
    goes through the terminal sanitiser, so escapes a capsule put there are removed."""
    try:
        exc.args = _sanitized(exc.args)
        for name in ("what", "how", "hint", "msg", "text", "filename", "filename2", "strerror"):
            value = getattr(exc, name, None)
            if type(value) is str:
                setattr(exc, name, terminal.sanitize(value))
    except (AttributeError, TypeError):  # a read-only attribute: fall back to the message
        return Exception(terminal.sanitize(str(exc)))
    return exc


#: What ``gate.source_filename`` makes, whole (no '/', no second '<' or '>').
_CAPSULE_FILENAME = re.compile(r"<capsule-[\w.\-]{0,80}>\Z")


def _syntax_error_for_host(tp, args):
    """A SyntaxError keeps a location only in capsule source: the host's traceback printer
    reads the named file (through linecache) after the capsule's frames are gone, so
    ``SyntaxError('x', ('/etc/passwd', 1, 1, None))`` would have it print any file."""
    msg = args[0] if args else ""
    details = args[1] if len(args) > 1 and type(args[1]) is tuple else None
    if details and len(details) >= 4 and type(details[0]) is str:
        if _CAPSULE_FILENAME.match(details[0]):  # whole: '<capsule-x/../f' names a file
            return tp(msg, details)
    return tp(msg)


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
        #: The namespaces' ``__builtins__`` (a read-only module) and its dict, which is what
        #: frames of this capsule's code use as builtins (and the tripwire recognises).
        self.builtins_module = make_builtins(self.context)
        self.builtins = _module_dict(self.builtins_module)
        self.context.expose = self._expose
        self.context.builtins = self.builtins
        self.context.builtins_module = self.builtins_module
        retention.prune()  # entries of capsules no code can run in any more (amortised)
        guard.register_builtins(self.builtins, self.context)
        self.object_caps: dict[str, Capability] = {}
        self._exposed: dict[str, object] = {}  # protected name -> the value its proxy wraps
        self.decimal_context = decimal.Context()
        tripwire.register(self.context)

    # -- protected names ---------------------------------------------------------------------
    def _expose(self, names, builtins_dict=None) -> None:
        """Make the protected names the code reads visible, each through its proxy."""
        b = self.builtins if builtins_dict is None else builtins_dict
        exposed = self._exposed if builtins_dict is None else {}
        for name in names:
            if name in self.namespace or name in self.hidden:
                continue
            was = exposed.get(name, _NOT_EXPOSED)
            if was is _NOT_EXPOSED and name in b:
                continue  # a builtin of the capsule's own
            if name not in self.protected:
                if was is not _NOT_EXPOSED:  # the user deleted it since the last run
                    del exposed[name]
                    b.pop(name, None)
                continue
            value = self.protected[name]
            if value is was:
                continue
            # First use, or the user rebound the name since the last run of this capsule.
            b[name] = self._proxy_for(name)
            exposed[name] = value

    def _proxy_for(self, name):
        value = self.protected[name]
        if isinstance(value, types.ModuleType) and not self.context.may_import(value.__name__):
            # A stand-in that refuses every use: no authority, so no object capability (the
            # registry must not list 'os' as active right after refusing its import).
            return _UnavailableModule(name, value.__name__, self.policy)
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
            return make_view(value, self.context)
        if not cap.revoked:
            self.registry.use(cap, name)
        return wrap(value, cap, name in self.writable, handed=True)

    # -- running -------------------------------------------------------------------------------
    #: The limits of the next run (None: the policy's); set by the host for one cell.
    limits: limits.Limits | None = None

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
            flags = toplevel_await.FLAGS  # a cell may await at top level, as in a kernel
            body_code = tripwire.trusted_compile(ast.Module(body, []), filename, "exec", flags)
            tail_code = tripwire.trusted_compile(tail, filename, "eval", flags) if tail else None
            guard.register_code(body_code)
            if tail_code is not None:
                guard.register_code(tail_code)
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
        if rollback._ACTIVE:  # a kernel cell records what it may bind (rollback.py)
            rollback.note_run(ns, body, tail)
        ns["__builtins__"] = self.builtins_module
        tripwire.install()  # re-armed even if an extension unload left it inert
        runner = _RUNNER
        # The decimal context is per thread, shared with trusted code: the capsule gets its
        # own (kept across its runs), and the caller's comes back afterwards (I3).
        saved = decimal.getcontext()
        decimal.setcontext(self.decimal_context)
        self.context.running += 1  # its output functions publish only now (output.py)
        try:
            # On a capsule thread, under the cell's limits (ipycap/engine/limits.py).
            cell_limits = self.limits or limits.Limits.from_policy(self.policy)
            return limits.run_limited(runner, body, tail, ns, self.context, cell_limits)
        finally:
            self.context.running -= 1
            decimal.setcontext(saved)

    def end(self) -> None:
        """End the cell: cell-scoped grants expire."""
        self.registry.end_cell(self.cell_grants)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.end()


_NOT_EXPOSED = object()


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
    if toplevel_await.is_coroutine_code(body) or toplevel_await.is_coroutine_code(tail):
        return toplevel_await.run_cell(body, tail, ns)
    exec(body, ns)
    if tail is not None:
        return eval(tail, ns)
    return None


_RUNNER = _run

__all__ = ["Capsule", "CapsuleContext", "CapabilityError", "CapsuleSyntaxError"]
