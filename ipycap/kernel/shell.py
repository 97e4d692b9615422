"""The capsule kernel's shell: every cell runs through one persistent session capsule.

:class:`CapsuleShell` keeps what a notebook user relies on from IPython's shell (execution
count, history of the code *as sent*, ``Out``/``_``, tracebacks, the displayhook, ``display``
and ``clear_output``) and replaces the one thing that gives ambient authority: running the
cell.  A cell is split into segments at its ``%capsule`` lines and ``obj?`` help lines; the
``%capsule`` lines are kernel commands, help lines are answered by the static inspector
(nothing evaluated), and everything else is capsule code run by ``Capsule.run`` in the
session capsule's namespace.  The last value goes through ``ipycap.export`` before the
displayhook sees it, and the output filter from :mod:`ipycap.ipython.display` applies.
"""

from __future__ import annotations

import ast
import re
import sys
import traceback

from ipykernel.zmqshell import ZMQInteractiveShell
from IPython.core.displayhook import DisplayHook
from IPython.core.interactiveshell import ExecutionInfo, ExecutionResult
from traitlets import Any

from ..engine.after import host_bundle, host_error
from ..engine.errors import CapabilityError, CapsulePermissionError, one_line
from ..engine.gate import _inside_string, source_filename
from ..engine.membrane import export
from ..engine.rollback import Journal
from ..engine.tripwire import capsule_on_stack
from ..ipython import tracebacks
from ..ipython.display import HostOutput, OutputFilter, preload_inline_backend
from . import static
from .commands import CapsuleCommands, is_command

HELP_LINE = re.compile(r"^(\?{1,2})?([A-Za-z_][\w.]*)(\?{1,2})?$")


def split_cell(source: str) -> list[tuple[str, str, int]]:
    """``[(kind, text, first_line)]`` with kind 'code', 'command' or 'help', in cell order."""
    lines = source.splitlines(True)
    out: list[tuple[str, str, int]] = []
    code: list[str] = []
    start = 0
    for i, line in enumerate(lines):
        stripped = line.strip()
        kind = None
        if stripped[:1] in ("%", "?") or stripped.endswith("?"):
            if is_command(stripped):
                kind = "command"
            else:
                m = HELP_LINE.match(stripped)
                if m and (m.group(1) or m.group(3)):
                    kind = "help"
            if kind and _inside_string(source, i + 1):
                kind = None
        if kind is None:
            if not code:
                start = i
            code.append(line)
            continue
        if code:
            out.append(("code", "".join(code), start))
            code = []
        out.append((kind, stripped, i))
    if code:
        out.append(("code", "".join(code), start))
    return out


class CapsuleShell(ZMQInteractiveShell):
    """A ZMQInteractiveShell whose cells are capsule code (see the module docstring)."""

    #: The session capsule (set by the kernel).
    capsule = Any(allow_none=True)

    def init_capsule(self, capsule, interrupts) -> None:
        """Attach the session capsule and the interrupt guard (called by the kernel)."""
        self.capsule = capsule
        self.interrupts = interrupts
        #: A failed cell binds nothing: its names are recorded and put back (rollback.py).
        self.journal = Journal(capsule.namespace, capsule.context)
        self.commands = CapsuleCommands(self)
        preload_inline_backend()
        self.output_filter = OutputFilter(self, capsule.registry, "capsule-")
        self.output_filter.ensure_installed()
        HostOutput(self, self.output_filter).attach(capsule.context)

    # -- IPython entry points ----------------------------------------------------------------
    def transform_cell(self, raw_cell: str) -> str:
        """The cell is not rewritten: history keeps exactly what was sent."""
        return raw_cell

    def should_run_async(self, raw_cell, *, transformed_cell=None, preprocessing_exc_tuple=None):
        return False  # capsule code never awaits at top level (no event-loop authority)

    def set_next_input(self, text, replace=False):
        if capsule_on_stack():
            raise CapsulePermissionError("set_next_input from capsule code", "kernel", None)
        super().set_next_input(text, replace)

    def enable_gui(self, gui=None):
        raise CapsulePermissionError("GUI event loops in the capsule kernel", "kernel", None)

    def static_namespaces(self) -> static.Namespaces:
        c = self.capsule
        return static.Namespaces(
            c.namespace, c.builtins, c.protected, may_import=c.context.may_import
        )

    def _run_cell(self, raw_cell, store_history, silent, shell_futures, cell_id, cell_meta):
        info = ExecutionInfo(
            raw_cell,
            store_history,
            silent,
            shell_futures,
            cell_id,
            cell_meta,
            transformed_cell=raw_cell,
        )
        result = ExecutionResult(info)
        if not raw_cell or raw_cell.isspace():
            self.last_execution_succeeded = True
            self.last_execution_result = result
            return result
        if silent:
            store_history = False
        count = result.execution_count = self.execution_count
        if store_history:
            self.execution_count += 1
        self.events.trigger("pre_execute")
        if not silent:
            self.events.trigger("pre_run_cell", info)
        if store_history:
            self.history_manager.store_inputs(count, raw_cell, raw_cell)
        self.output_filter.ensure_installed()
        self.displayhook.exec_result = result
        self.interrupts.begin()
        try:
            raised = None
            try:
                self._run_segments(raw_cell, count, silent, result)
            except BaseException as e:  # noqa: BLE001 - a cell's error, KeyboardInterrupt included
                raised = e
            if raised is not None:
                # Shown outside the except block, so sys.exc_info() no longer holds the
                # capsule's own exception (IPython's showsyntaxerror read it from there).
                # ipykernel formats what the result holds (str(err) for the reply): only the
                # host's copy, never the capsule's own exception, whose __str__ is capsule code.
                result.error_in_exec = self._show_error(raised)
                raised = None
        finally:
            self.interrupts.end()
            self.displayhook.exec_result = None
            self.output_filter.pending_result = None
            self.output_filter.pending_bundle = None
        self.last_execution_succeeded = result.success
        self.last_execution_result = result
        if store_history:
            self.history_manager.store_output(count)
        return result

    def _run_segments(self, raw_cell: str, count: int, silent: bool, result) -> None:
        # A failed cell (an error, a limit, an interrupt) leaves the namespace as it was.
        journal = self.journal
        journal.begin()
        try:
            self._run_each(raw_cell, count, silent)
        except BaseException:
            journal.roll_back()
            raise
        journal.commit()

    def _run_each(self, raw_cell: str, count: int, silent: bool) -> None:
        segments = split_cell(raw_cell)
        for n, (kind, text, first_line) in enumerate(segments):
            if kind == "command":
                self.commands.run(text, count)
            elif kind == "help":
                self._page_help(text)
            else:
                source = "\n" * first_line + text
                filename = source_filename(source, f"In{count}")
                value = self.capsule.run(source, filename=filename)
                last = n == len(segments) - 1
                if value is not None and last and not silent:
                    if not DisplayHook.semicolon_at_end_of_expression(text):
                        self._display_result(value)

    def _display_result(self, value) -> None:
        # Formatted inside the capsule; the displayhook shows that bundle (filtered) and
        # keeps the exported value in Out/_.
        # Under the cell's limits, charged to its --max-output (engine/after.py).
        bundle = host_bundle(value, self.capsule.context)
        exported = export(value)
        self.output_filter.pending_result = exported
        self.output_filter.pending_bundle = bundle
        self.displayhook(exported)

    def _host_copy(self, e: BaseException) -> BaseException:
        """The host's copy of the capsule's exception: no capsule objects in its args,
        context or traceback; a SyntaxError located only in capsule source."""
        try:
            e = host_error(e, self.capsule.context)  # its __str__ runs under the limits
        except BaseException:  # noqa: BLE001 - nothing a capsule raised may end the kernel
            e = RuntimeError("the capsule raised an exception that cannot be shown")
        if tracebacks.is_syntax_error(e):
            e = tracebacks.safe_syntax_error(e).with_traceback(e.__traceback__)
        return e

    def _show_error(self, e: BaseException) -> BaseException:
        # What the kernel keeps (sys.last_value, the error reply) is the host's copy.
        e = self._host_copy(e)
        tb = e.__traceback__
        if tb is None and isinstance(e, CapabilityError):
            one_line(e)  # a kernel command's refusal: no capsule frame, no banner
        self._shown_error = e
        try:
            self.showtraceback((type(e), e, tb))
        except BaseException:  # noqa: BLE001 - a broken exception must not break the kernel
            print("".join(traceback.format_exception_only(type(e), e)), file=sys.stderr)
        finally:
            self._shown_error = None
        return e

    _shown_error = None

    def showtraceback(
        self,
        exc_tuple=None,
        filename=None,
        tb_offset=None,
        exception_only=False,
        running_compiled_code=False,
    ):
        """Every exception the capsule kernel shows is a host copy, formatted through
        :mod:`ipycap.ipython.tracebacks` (no frame's locals read, a SyntaxError located
        only in capsule source); IPython's own path read ``sys.exc_info()``."""
        etype, value, tb = exc_tuple if exc_tuple is not None else sys.exc_info()
        if value is None:
            value = getattr(sys, "last_value", None)
            if value is None:
                print("No traceback available to show.", file=sys.stderr)
                return
        if value is not self._shown_error:
            value = self._host_copy(value)  # not one this shell made: copy it first
        etype, tb = type(value), value.__traceback__
        sys.last_type, sys.last_value, sys.last_traceback = etype, value, tb
        if sys.version_info >= (3, 12):
            sys.last_exc = value
        if tracebacks.is_syntax_error(value):
            tracebacks.show_syntax_error(self, value)
            return
        if exception_only:
            stb = tracebacks.run_catching(self.InteractiveTB.get_exception_only, etype, value)
        elif hasattr(value, "_render_traceback_"):  # a one-line refusal (one_line)
            stb = tracebacks.run_catching(value._render_traceback_)
        else:
            stb = tracebacks.render_traceback(self, etype, value, tb)
        if stb is None:
            stb = traceback.format_exception_only(etype, value)
        self._showtraceback(etype, value, stb)

    def showsyntaxerror(self, filename=None, running_compiled_code=False):
        """Only ever the safe copy of a SyntaxError (never read through the raw object)."""
        value = sys.exc_info()[1]
        if value is None:
            value = getattr(sys, "last_value", None)
        tracebacks.show_syntax_error(self, value)

    # -- help and user_expressions -------------------------------------------------------------
    def _page_help(self, line: str) -> None:
        m = HELP_LINE.match(line)
        name = m.group(2)
        detail = 1 if "??" in ((m.group(1) or "") + (m.group(3) or "")) else 0
        value = self.static_namespaces().resolve(name)
        if value is static.MISSING:
            print(f"Object `{name}` not found.")
            return
        text = static.describe(name, value, detail)
        self.payload_manager.write_payload(
            {"source": "page", "data": {"text/plain": text}, "start": 0}
        )

    def user_expressions(self, expressions):
        """Each expression runs as capsule code (a stock kernel evaluates it unrestricted)."""
        out = {}
        for key, expr in dict(expressions).items():
            self.interrupts.begin()
            try:
                if not isinstance(expr, str):
                    raise TypeError("a user expression must be a string")
                ast.parse(expr, mode="eval")  # expressions only, as the protocol says
                raw = self._run_expression(expr)
                # Formatted inside the capsule, on a capsule thread under the expression's
                # limits (its __repr__ is capsule code), as a cell's result (engine/after.py).
                bundle = host_bundle(raw, self.capsule.context)
                value = export(raw)
                self.output_filter.pending_result = value
                self.output_filter.pending_bundle = bundle
                out[key] = self._format_user_obj(value)
            except BaseException as e:  # noqa: BLE001 - reported in the reply, never raised
                try:  # the host's copy (a capsule exception's __str__ runs under the limits)
                    e = host_error(e, self.capsule.context)
                except BaseException:  # noqa: BLE001 - nothing a capsule raised may end the kernel
                    e = RuntimeError("the capsule raised an exception that cannot be shown")
                out[key] = {
                    "status": "error",
                    "ename": type(e).__name__,
                    "evalue": _safe_str(e),
                    "traceback": [],
                }
            finally:
                self.interrupts.end()
                self.output_filter.pending_result = None
                self.output_filter.pending_bundle = None
        return out

    def _run_expression(self, expr: str):
        journal = self.journal  # a ':=' in a failed expression binds nothing either
        journal.begin()
        try:
            value = self.capsule.run(expr, filename=source_filename(expr, "user-expression"))
        except BaseException:
            journal.roll_back()
            raise
        journal.commit()
        return value


def _safe_str(e: BaseException) -> str:
    try:
        return str(e)
    except BaseException:  # noqa: BLE001 - capsule-defined __str__ may fail
        return f"<{type(e).__name__}>"
