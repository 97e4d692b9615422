"""IPython glue: ``%%capsule``, ``%capsule``, and loading/unloading the extension.

This module makes no security decisions: grants go through the shell's ``Registry`` (which
checks the ``CapsulePolicy`` ceiling), code runs through ``Capsule.run``, values leave through
``ipycap.export`` and output through :class:`ipycap.ipython.display.OutputFilter`.  What it adds is
what a notebook user meets: flags declared with ``magic_arguments`` (so ``%%capsule?``
documents them and a bad flag is a ``UsageError``), the user namespace offered to the capsule
without IPython's own state, ``--export`` that binds names only when the cell succeeds,
tracebacks that show the capsule's lines and none of ipycap's, and the registry view.
"""

from __future__ import annotations

import builtins
import functools
import os
import sys
import weakref
from collections.abc import Iterator, Mapping

from IPython.core.error import StdinNotImplementedError, UsageError
from IPython.core.magic import (
    Magics,
    cell_magic,
    line_magic,
    magics_class,
    no_var_expand,
    output_can_be_silenced,
)
from IPython.core.magic_arguments import argument, magic_arguments

from ..engine import guard, tripwire
from ..engine.after import host_bundle, host_error
from ..engine.capsule import Capsule, error_for_host
from ..engine.errors import CapabilityError, CapsulePolicyError, one_line
from ..engine.limits import Limits, release_namespace
from ..engine.membrane import Proxy, export
from ..engine.policy import CapsulePolicy
from ..engine.registry import KINDS, Registry
from ..engine.values import is_value_type
from . import debugger, inspection, panel, tracebacks
from .display import (
    EventLogView,
    HostOutput,
    OutputFilter,
    PolicyView,
    RegistryView,
    preload_inline_backend,
)
from .usage import parse_magic_line

#: IPython's own state: never offered to a capsule, whatever the user namespace holds.
IPYTHON_NAMES = frozenset(
    "get_ipython In Out exit quit open __builtin__ __builtins__ __name__ __doc__".split()
)
#: Session grants of these kinds reach every later capsule (objects are matched by name).
SESSION_KINDS = ("import", "read", "write", "input", "display", "comm")
_FLAG_KINDS = (
    ("allow_import", "import", "--allow-import"),
    ("allow_read", "read", "--allow-read"),
    ("allow_write", "write", "--allow-write"),
)
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
_EXTENSIONS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_BUILTIN_INPUT = builtins.input


def _isatty(stream) -> bool:
    try:
        return stream is not None and stream.isatty()
    except (AttributeError, ValueError, OSError):
        return False


def _capsule_raised(exc) -> bool:
    """Whether ``exc`` is a capsule's: a capsule class's instance, or raised through a
    capsule frame (its traceback, or its cause/context chain's)."""
    seen = 0
    while isinstance(exc, BaseException) and seen < 32:
        if guard.is_own(exc) or guard.is_own(type(exc)):
            return True
        tb = BaseException.__dict__["__traceback__"].__get__(exc)
        while tb is not None:
            if tracebacks.is_capsule_filename(tb.tb_frame.f_code.co_filename):
                return True
            tb = tb.tb_next
        exc = BaseException.__dict__["__context__"].__get__(exc)
        seen += 1
    return False


class UserNamespaceView(Mapping):
    """The user namespace as a capsule may see it: without IPython's state or ``_`` names.

    A live view (no copy per cell); the capsule reads only the names its code mentions."""

    def __init__(self, shell):
        self._ns = shell.user_ns
        self._hidden = shell.user_ns_hidden

    def _visible(self, name) -> bool:
        if type(name) is not str or name in IPYTHON_NAMES or name[:1] == "_":
            return False
        if name not in self._ns:
            return False
        hidden = self._hidden.get(name, self)
        return hidden is self or hidden is not self._ns[name]  # still IPython's own value?

    def __getitem__(self, name):
        if not self._visible(name):
            raise KeyError(name)
        return self._ns[name]

    def __contains__(self, name) -> bool:
        return self._visible(name)

    def __iter__(self) -> Iterator[str]:
        return (n for n in list(self._ns) if self._visible(n))

    def __len__(self) -> int:
        return sum(1 for _ in self)


class CapsuleExtension:
    """Everything ipycap adds to one shell: policy, registry, output filter, magics, hooks."""

    def __init__(self, shell):
        self.shell = shell
        self.policy = CapsulePolicy(parent=shell)
        self.registry = Registry(self.policy)
        self.output_filter = OutputFilter(shell, self.registry)
        self.output = HostOutput(shell, self.output_filter)
        self.magics = CapsuleMagics(shell, extension=self)
        self._callback_cap = None
        self.registry_channel: panel.RegistryChannel | None = None
        #: The last exception %%capsule raised, so its display can leave out trusted frames.
        self.last_error: BaseException | None = None

    def install(self) -> None:
        shell = self.shell
        preload_inline_backend()
        shell.configurables.append(self.policy)
        shell.register_magics(self.magics)
        shell.events.register("pre_run_cell", self._pre_run_cell)
        shell.events.register("post_run_cell", self._post_run_cell)
        self.policy.observe(self._policy_changed)
        self.registry.approver = self._approve
        self.output_filter.ensure_installed()
        shell.showsyntaxerror = self._make_showsyntaxerror(shell.showsyntaxerror)
        shell.showtraceback = self._make_showtraceback(shell.showtraceback)
        inspection.install(shell, self)  # obj? on a capsule object reads no attribute of it
        debugger.install(shell, self)  # %debug/%pdb: capsule frames show plain variables only
        # The registry on every execute_reply, for JupyterLab's Capabilities panel.
        self.registry_channel = panel.attach_to_kernel(shell, self.registry)
        tripwire.install()

    def uninstall(self) -> None:
        shell = self.shell
        mman = shell.magics_manager
        for kind in ("line", "cell"):
            fn = mman.magics[kind].get("capsule")
            if getattr(fn, "__self__", None) is self.magics:
                del mman.magics[kind]["capsule"]
        if mman.registry.get(type(self.magics).__name__) is self.magics:
            del mman.registry[type(self.magics).__name__]
        for event, fn in (
            ("pre_run_cell", self._pre_run_cell),
            ("post_run_cell", self._post_run_cell),
        ):
            if fn in shell.events.callbacks[event]:
                shell.events.unregister(event, fn)
        shell.configurables[:] = [c for c in shell.configurables if c is not self.policy]
        self.policy.unobserve(self._policy_changed)
        self.output_filter.uninstall()
        panel.detach_from_kernel(self.registry_channel)
        self.registry_channel = None
        for name in ("showsyntaxerror", "showtraceback"):
            if getattr(vars(shell).get(name), "__ipycap_extension__", None) is self:
                delattr(shell, name)
        inspection.uninstall(shell, self)
        debugger.uninstall(shell, self)
        self.last_error = None
        # Authority handed out by the extension ends with it: every proxy and every
        # exported capsule function stops working (its grants are revoked).
        for cap in list(self.registry.capabilities):
            cap.revoke()

    # -- hooks ---------------------------------------------------------------------------------
    def _make_showtraceback(self, original):
        """IPython shows exceptions that never went through ``%%capsule``'s own handling:
        one a capsule's display method raised inside IPython's formatter
        (``catch_format_error`` passes it on raw), one from a post-execute hook drawing a
        capsule's figure.  Its raw form went into ``sys.last_value`` (a later ``%tb`` called
        its ``_render_traceback_``) and a SyntaxError's printer read whatever file it named
        and wrote the line into the capsule's object (red team 10).  A capsule's exception
        is shown, and kept, as its host copy -- the kernel's shell does the same."""

        def showtraceback(exc_tuple=None, *args, **kwargs):
            etype, value, tb = exc_tuple if exc_tuple is not None else sys.exc_info()
            if value is not None and value is not self.last_error and _capsule_raised(value):
                try:
                    value = error_for_host(value)
                except BaseException:  # noqa: BLE001 - a capsule exception must not break it
                    value = RuntimeError("a capsule raised an exception that cannot be shown")
                if tracebacks.is_syntax_error(value):
                    return tracebacks.show_syntax_error(self.shell, value)
                exc_tuple = (type(value), value, value.__traceback__)
            return original(exc_tuple, *args, **kwargs)

        showtraceback.__ipycap_extension__ = self
        return showtraceback

    def _make_showsyntaxerror(self, original):
        """A capsule's syntax error has no stack worth showing: not IPython's, not ipycap's."""

        def showsyntaxerror(filename=None, running_compiled_code=False):
            value = sys.exc_info()[1]
            if value is not None and value is self.last_error:
                # Its safe copy, located only in capsule source (ipython/tracebacks.py).
                return tracebacks.show_syntax_error(self.shell, value)
            return original(filename, running_compiled_code)

        showsyntaxerror.__ipycap_extension__ = self
        return showsyntaxerror

    def _pre_run_cell(self, info=None) -> None:
        self.output_filter.ensure_installed()
        # The cell every registry event of this run is recorded under.
        self.registry.cell = f"In[{self.shell.execution_count}]"

    def _post_run_cell(self, result=None) -> None:
        self.output_filter.pending_result = None
        self.output_filter.pending_bundle = None

    def _policy_changed(self, change) -> None:
        self.registry.note(
            "policy",
            kind="policy",
            target=change["name"],
            detail=f"{change['old']!r} -> {change['new']!r}",
        )
        # A narrowed ceiling ends the grants it no longer covers (and their proxies).
        for cap in self.registry.revoke_beyond_ceiling():
            print(f"revoked {cap.id}: {cap.kind} {cap.target} (outside the new policy)")

    def _approve(self, prompt: str) -> str | None:
        """The registry's approver: ask the human through the shell's own input (the
        terminal, or the notebook's stdin when the kernel allows it); None if nobody can be
        asked (no terminal, or the frontend sends no stdin)."""
        reader = builtins.input
        if reader is _BUILTIN_INPUT and not _isatty(sys.stdin):
            return None  # a script or a pipe: nobody to answer
        try:
            return reader(prompt)
        except (EOFError, OSError, StdinNotImplementedError):
            return None

    def callback_cap(self):
        """The capability that wraps what trusted code passes into exported capsule objects."""
        if self._callback_cap is None or self._callback_cap.revoked:
            self._callback_cap = self.registry.grant(
                "object", "<values passed into capsule objects>", granted_by="membrane"
            )
        return self._callback_cap


def _split(values) -> list[str]:
    """``--x a --x b,c`` -> ['a', 'b', 'c']."""
    out = []
    for value in values or ():
        out += [part.strip() for part in value.split(",") if part.strip()]
    return out


@magics_class
class CapsuleMagics(Magics):
    """``%%capsule`` runs a cell as a capsule; ``%capsule`` shows and changes the registry."""

    def __init__(self, shell, extension: CapsuleExtension):
        super().__init__(shell)
        self.extension = extension

    # -- %%capsule -----------------------------------------------------------------------------
    @no_var_expand
    @output_can_be_silenced
    @magic_arguments("%capsule")
    @argument(
        "--allow-import",
        action="append",
        metavar="MODULE[,MODULE]",
        help="more modules this cell may import (denied modules are never grantable)",
    )
    @argument(
        "--allow-read",
        action="append",
        metavar="PATH[,PATH]",
        help="files or folders this cell may read (relative to the working directory)",
    )
    @argument(
        "--allow-write",
        action="append",
        metavar="PATH[,PATH]",
        help="files or folders this cell may write (never a folder on sys.path)",
    )
    @argument(
        "--export",
        action="append",
        metavar="NAME[,NAME]",
        help="capsule variables copied into the user namespace if the cell succeeds",
    )
    @argument("--mode", choices=("proxy", "rexec"), help="introspection mode of this cell")
    @argument(
        "--writable",
        action="append",
        metavar="NAME[,NAME]",
        help="user objects this cell may modify through their proxies",
    )
    @argument(
        "--hide",
        action="append",
        metavar="NAME[,NAME]",
        help="user names this cell cannot see at all",
    )
    @argument("--label", help="a name for this capsule in tracebacks and the registry")
    @argument(
        "--timeout",
        metavar="SECONDS",
        help="stop the cell after this long (at most c.CapsulePolicy.timeout)",
    )
    @argument(
        "--max-memory",
        metavar="SIZE",
        help="memory the cell may allocate, e.g. 300M or 2G (at most c.CapsulePolicy.max_memory)",
    )
    @argument(
        "--max-output",
        metavar="SIZE",
        help="output the cell may show, e.g. 64K (at most c.CapsulePolicy.max_output)",
    )
    @cell_magic("capsule")
    def capsule_cell(self, line: str, cell: str):
        """Run the cell as a capsule: only what it is granted, every grant visible.

        The body sees the user namespace through read-only proxies (no IPython state) and runs
        in its own namespace; the last expression is shown as Out.  See `%capsule list`.
        """
        __tracebackhide__ = True
        ext = self.extension
        args = parse_magic_line(self.capsule_cell, line)
        ext.output_filter.ensure_installed()
        registry = ext.registry
        writable, hidden, exports = _split(args.writable), _split(args.hide), _split(args.export)
        protected = UserNamespaceView(self.shell) if ext.policy.expose_user_namespace else {}
        for name in writable:
            if name not in protected or name in hidden:
                raise UsageError(f"--writable {name}: no such visible name in the user namespace")
        writes: dict[str, dict] = {}

        def note_write(event):
            if event["event"] == "use" and event.get("kind") == "write":
                writes[event["id"]] = event

        registry.listeners.append(note_write)
        err = value = capsule = None
        cell_caps: list = []
        try:
            cell_limits = Limits.from_policy(ext.policy).narrowed(
                timeout=args.timeout, max_memory=args.max_memory, max_output=args.max_output
            )
            cell_caps = self._grant_flags(args)
            session_caps = [
                c
                for c in registry.capabilities
                if c.active and c.scope == "session" and c.kind in SESSION_KINDS
            ]
            capsule = Capsule(
                registry=registry,
                protected=protected,
                grants=cell_caps + session_caps,
                writable=writable,
                hidden=hidden,
                mode=args.mode,
                label=args.label,
                scope="cell",
            )
            ext.output.attach(capsule.context)
            capsule.limits = cell_limits
            try:
                result = capsule.run(cell)
                missing = [n for n in exports if n not in capsule.namespace]
                if missing:
                    raise NameError(
                        f"--export {', '.join(missing)}: the cell did not define "
                        f"{' or '.join(repr(n) for n in missing)}"
                    )
                values = [capsule.namespace[n] for n in exports]
                cb = ext.callback_cap() if any(map(_needs_cap, [result, *values])) else None
                bound = {n: export(v, cb) for n, v in zip(exports, values, strict=True)}
                # Formatted inside the capsule, while its cell grants still hold.
                # (on a capsule thread, under the cell's limits and output budget)
                bundle = host_bundle(result, capsule.context) if result is not None else None
                value = export(result, cb)
            finally:
                capsule.end()
                release_namespace(capsule)  # a deep structure is freed on a deep stack
        except BaseException as e:  # noqa: BLE001 - cleaned, then re-raised below
            # (its __str__ is capsule code: run under the cell's limits)
            err = host_error(e, capsule.context if capsule is not None else None)
        finally:
            registry.listeners.remove(note_write)
            registry.end_cell(cell_caps)
        if err is not None:
            if exports or writes:
                err.add_note(_failure_note(exports, writes, registry))
            # Shown from the capsule's frames only (IPython calls _render_traceback_); a
            # refusal with none (a flag beyond the ceiling) is one line, no banner.
            if err.__traceback__ is None and isinstance(err, CapabilityError):
                one_line(err)
            else:
                err._render_traceback_ = functools.partial(
                    _render_traceback, self.shell, type(err), err, err.__traceback__
                )
            ext.last_error = err
            raise err
        self.shell.user_ns.update(bound)
        ext.output_filter.pending_result = value
        ext.output_filter.pending_bundle = bundle
        return value

    def _grant_flags(self, args) -> list:
        """Cell-scoped grants for the flags, within the ceiling; refusals name the flag."""
        registry = self.extension.registry
        caps: list = []
        try:
            for attr, kind, flag in _FLAG_KINDS:
                for target in _split(getattr(args, attr)):
                    try:
                        caps.append(
                            registry.grant(
                                kind, target, scope="cell", granted_by=f"%%capsule {flag}"
                            )
                        )
                    except CapsulePolicyError as e:
                        raise CapsulePolicyError(
                            f"{flag} {target}: {e.what}", e.layer, e.how
                        ) from None
        except BaseException:
            registry.end_cell(caps)
            raise
        return caps

    # -- %capsule ------------------------------------------------------------------------------
    @no_var_expand
    @magic_arguments("%capsule")
    @argument(
        "command",
        nargs="?",
        default="list",
        choices=("list", "grant", "revoke", "explain", "policy", "log"),
        help="list (default): the registry; grant KIND TARGET; revoke ID|NAME; "
        "explain NAME; policy; log [N]",
    )
    @argument("words", nargs="*", help="the command's arguments")
    @line_magic("capsule")
    def capsule_line(self, line: str = ""):
        """Show and change what capsules may do.

        `%capsule` / `%capsule list`: every capability and recent refusals.
        `%capsule grant KIND TARGET`: a session grant (kinds: import, read, write, object, input).
        `%capsule revoke ID|NAME`: revoke a capability and every proxy it produced.
        `%capsule explain NAME`: what introspection gives on NAME raw, proxied and in rexec mode.
        `%capsule policy`: the ceiling.  `%capsule log [N]`: the last N registry events.
        """
        if tripwire.capsule_on_stack():  # never reachable from a capsule; refuse if it were
            raise CapabilityError("%capsule from capsule code", "magics", None)
        args = parse_magic_line(self.capsule_line, line)
        ext, words = self.extension, args.words
        command = getattr(self, f"_command_{args.command}")
        return command(ext, words)

    def _command_list(self, ext, words):
        _expect(words, 0, "%capsule list")
        return RegistryView(ext.registry)

    def _command_policy(self, ext, words):
        _expect(words, 0, "%capsule policy")
        return PolicyView(ext.policy)

    def _command_log(self, ext, words):
        if len(words) > 1 or (words and not words[0].isdigit()):
            raise UsageError("usage: %capsule log [N]")
        return EventLogView(ext.registry, int(words[0]) if words else 30)

    def _command_grant(self, ext, words):
        if len(words) == 1 and words[0] == "input":
            words = ["input", "input()"]
        _expect(words, 2, "%capsule grant KIND TARGET")
        kind, target = words
        if kind not in KINDS:
            raise UsageError(f"%capsule grant: unknown kind {kind!r}; expected one of {KINDS}")
        try:
            cap = ext.registry.grant(kind, target, scope="session", granted_by="%capsule grant")
        except CapsulePolicyError as err:
            # The message is the whole story: one line, none of ipycap's frames.
            raise one_line(CapsulePolicyError(err.what, err.layer, err.how, err.hint)) from None
        print(f"granted {cap.id}: {cap.kind} {cap.target} (session)")
        return None

    def _command_revoke(self, ext, words):
        _expect(words, 1, "%capsule revoke ID|NAME")
        try:
            caps = ext.registry.revoke(words[0])
        except KeyError as e:
            raise UsageError(e.args[0]) from None
        for cap in caps:
            print(f"revoked {cap.id}: {cap.kind} {cap.target}")
        return None

    def _command_explain(self, ext, words):
        _expect(words, 1, "%capsule explain NAME")
        name = words[0]
        if name not in self.shell.user_ns:
            raise UsageError(f"%capsule explain: no name {name!r} in the user namespace")
        from .. import explain

        return explain(self.shell.user_ns[name], name=name)


def _needs_cap(value, depth: int = 0) -> bool:
    """Whether exporting ``value`` makes a reverse proxy (which needs a capability)."""
    tp = type(value)
    if is_value_type(tp) or tp is Proxy:
        return False
    if tp in (list, tuple, set, frozenset) and depth < 50:
        return any(_needs_cap(v, depth + 1) for v in value)
    if tp is dict and depth < 50:
        return any(_needs_cap(k, depth + 1) or _needs_cap(v, depth + 1) for k, v in value.items())
    return True


def _expect(words, n: int, usage: str) -> None:
    if len(words) != n:
        raise UsageError(f"usage: {usage}")


def _failure_note(exports, writes, registry) -> str:
    lines = ["ipycap: the cell failed, so it bound no user name"]
    if exports:
        lines[0] += f" (--export {', '.join(exports)} skipped)"
    if writes:
        lines.append("Writes it made through granted capabilities stay:")
        for cap_id, event in writes.items():
            lines.append(
                f"  {cap_id} write {event.get('target')} (last: {event.get('detail', '')})"
            )
    return "\n".join(lines)


# -- exceptions leaving a capsule --------------------------------------------------------------
def _render_traceback(shell, etype, value, tb) -> list[str]:
    # Never IPython's own frame printer: it reads the capsule frames' locals.
    return tracebacks.render_traceback(shell, etype, value, tb)


# -- loading -------------------------------------------------------------------------------------
def extension_for(shell) -> CapsuleExtension | None:
    """The loaded extension state of ``shell`` (policy, registry, output filter), or None."""
    return _EXTENSIONS.get(shell)


def load(ipython) -> CapsuleExtension:
    """Register %%capsule, %capsule, the policy (configurable) and the output filter."""
    if ipython in _EXTENSIONS:
        unload(ipython)
    ext = CapsuleExtension(ipython)
    ext.install()
    _EXTENSIONS[ipython] = ext
    return ext


def unload(ipython) -> None:
    """Remove everything ``load`` added; the audit hook goes inert when no shell uses it."""
    ext = _EXTENSIONS.pop(ipython, None)
    if ext is not None:
        ext.uninstall()
    if not _EXTENSIONS:
        tripwire.disarm()


__all__ = [
    "CapsuleMagics",
    "CapsuleExtension",
    "UserNamespaceView",
    "extension_for",
    "load",
    "unload",
]
