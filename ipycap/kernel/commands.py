"""``%capsule`` lines in the capsule kernel: list, explain, log, policy, revoke, request.

These are the only ``%`` lines the kernel understands; the gate refuses every other magic and
``!`` line.  They run as trusted kernel code, before or between the capsule code of a cell.
Cells can only *narrow* authority here (``revoke``); a ``request`` asks the human through
Jupyter's stdin prompt and is refused without one, and nothing reaches beyond the policy's
ceiling, which is fixed when the kernel starts.
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING

from IPython.core.error import UsageError
from IPython.core.magic_arguments import argument, magic_arguments

from ..engine.approval import APPROVAL_PREFIX, parse_answer, shown_whole
from ..engine.errors import (
    CapsulePermissionError,
    CapsulePolicyError,
    CapsuleRequestRefused,
)
from ..engine.limits import run_after
from ..engine.membrane import Proxy
from ..engine.modules import ModuleView
from ..ipython.display import EventLogView, PolicyView, RegistryView
from ..ipython.usage import parse_magic_line
from .static import MISSING, Namespaces, look_through

if TYPE_CHECKING:
    from .shell import CapsuleShell

COMMAND_LINE = re.compile(r"^%capsule(\?{1,2}|\s|$)")
USAGE = (
    "%capsule [list] | explain NAME | log [N] | policy | revoke ID|NAME | "
    "request read PATH | request write PATH | request import MODULE"
)
REQUEST_KINDS = ("read", "write", "import")


@magic_arguments("capsule")
@argument(
    "action",
    nargs="?",
    default="list",
    choices=["list", "explain", "log", "policy", "revoke", "request"],
    help="list (the default): the registry; explain NAME: what introspection gives on NAME raw, proxied and "
    "in rexec mode; log [N]: recent events; policy: the ceiling; revoke ID|NAME: end a grant; "
    "request read PATH | write PATH | import MODULE: ask the human for a grant",
)
@argument("args", nargs="*", help="arguments of the action")
def capsule_command(line: str) -> None:
    """The capsule kernel's only magic; it runs as trusted kernel code, never as the cell's.

    Cells can only narrow authority here (revoke); a request asks the human, within the
    ceiling the kernel's configuration fixed at start."""


class CapsuleCommands:
    """Runs one ``%capsule`` line for the kernel's shell."""

    def __init__(self, shell: CapsuleShell):
        self.shell = shell

    @property
    def registry(self):
        return self.shell.capsule.registry

    def run(self, line: str, execution_count: int) -> None:
        text = line.strip()[len("%capsule") :]
        if text.strip() in ("?", "??", "-h", "--help", "help"):
            print(self.help())
            return
        try:
            args = parse_magic_line(capsule_command, text)
        except UsageError as e:
            raise UsageError(f"%capsule: {e}. Usage: {USAGE}") from None
        handler = getattr(self, "do_" + args.action)
        handler(args.args, execution_count)

    @staticmethod
    def help() -> str:
        """What ``%capsule?`` prints: the usage and every action's arguments."""
        return capsule_command.parser.format_help().strip()

    # -- actions -------------------------------------------------------------------------------
    def _show(self, view) -> None:
        from IPython.display import display

        display(view)

    def do_list(self, args, count) -> None:
        self._show(RegistryView(self.registry))

    def do_log(self, args, count) -> None:
        n = int(args[0]) if args and args[0].isdigit() else 30
        self._show(EventLogView(self.registry, n))

    def do_policy(self, args, count) -> None:
        view = PolicyView(self.registry.policy)
        view.footer = (
            "The capsule kernel's policy is fixed when it starts: change it in "
            "ipython_kernel_config.py or the kernelspec's argv (--CapsulePolicy.NAME=...)."
        )
        self._show(view)

    def do_explain(self, args, count) -> None:
        if len(args) != 1:
            raise UsageError("%capsule explain NAME")
        from ..explore import explain

        value = self.shell.static_namespaces().resolve(args[0])
        if value is MISSING:
            raise UsageError(f"%capsule explain: no name {args[0]!r} in the capsule")
        self._check_explainable(args[0])
        # The raw column calls the cell's own object's methods (capsule code): on a capsule
        # thread under the cell's limits, with sanitised, counted output.
        context = self.shell.capsule.context
        name = args[0].rpartition(".")[2]
        self._show(run_after(lambda: explain(look_through(value), name=name), context))

    def _check_explainable(self, dotted: str) -> None:
        """The explorer's 'raw object' column is trusted code reading the object (``vars``,
        ``repr``, a private attribute): in this kernel the cell is not trusted, so only what
        the cell itself holds unwrapped may be explained, never a protected object, the
        target of a proxy or a module behind a view."""
        capsule = self.shell.capsule
        ns = self.shell.static_namespaces()
        parts = dotted.split(".")
        held = Namespaces(capsule.namespace, capsule.builtins).lookup(parts[0]) is not MISSING
        for i in range(1, len(parts) + 1):
            tp = type(ns.resolve(".".join(parts[:i])))
            if tp is Proxy or tp is ModuleView:
                held = False
        if not held:
            raise CapsulePermissionError(
                f"%capsule explain {dotted}: it is a protected object or reached through one, "
                "and the explorer's raw column would show its private state",
                "kernel",
                None,
                hint="explain the cell's own objects here; an admin can run "
                "ipycap.explain(obj) in a trusted Python session",
            )

    def do_revoke(self, args, count) -> None:
        if len(args) != 1:
            raise UsageError("%capsule revoke ID|NAME")
        try:
            caps = self.registry.revoke(args[0])
        except KeyError as e:
            raise UsageError(str(e.args[0])) from None
        for cap in caps:
            print(f"revoked {cap.id} ({cap.kind} {cap.target})")

    def do_request(self, args, count) -> None:
        if len(args) != 2 or args[0] not in REQUEST_KINDS:
            raise UsageError("%capsule request read PATH | write PATH | import MODULE")
        kind, target = args
        shell = self.shell
        context = shell.capsule.context
        if kind in ("read", "write"):
            target = os.path.realpath(os.path.expanduser(target))
            try:
                self.registry.check_path_grant(kind, target)
            except CapsulePolicyError as e:
                raise CapsuleRequestRefused(
                    f"request for {kind} access to {target}: {e.what}",
                    "kernel",
                    (
                        "this kernel's policy is fixed at start, so its configuration must "
                        "change: " + e.how
                    )
                    if e.how
                    else None,
                ) from None
            if context.allows_path(kind, target):
                print(f"{kind} access to {target} is already granted.")
                return
        else:
            try:
                self.registry.check_import_grant(target)
            except CapsulePolicyError as e:
                raise CapsuleRequestRefused(
                    f"request to import {target!r}: {e.what}", "kernel", None
                ) from None
            if context.may_import(target):
                print(f"import of {target!r} is already granted.")
                return
        self._ask(kind, target, count)

    def _ask(self, kind: str, target: str, count: int) -> None:
        shell = self.shell
        kernel = shell.kernel
        # A path with control or format characters (ANSI escapes, backspaces, newlines, a
        # right-to-left override), the question's own structure ("(this session). Allow?
        # [y/N]") or look-alikes (fullwidth slashes, blank letters) could word the prompt as a
        # different request: every such character is escaped (approval.shown_whole), and the
        # path is shown whole, never elided (its end is what differs).
        shown = shown_whole(target)
        asked = f"{kind} access to {shown}" if kind != "import" else f"import of {shown}"
        # (refusal messages keep their form: they are sanitised for the terminal as a whole)
        plain = target if target.isprintable() else repr(target)
        what = f"{kind} access to {plain}" if kind != "import" else f"import of {target!r}"
        if not shell.capsule.policy.prompt:
            raise CapsuleRequestRefused(
                f"request for {what}: prompting is off (c.CapsulePolicy.prompt = False)",
                "kernel",
                f"add the grant to the kernel's configuration: c.CapsuleKernel.grants = "
                f"[{kind + ':' + target!r}]",
            )
        if not getattr(kernel, "_allow_stdin", False):
            raise CapsuleRequestRefused(
                f"request for {what}: this frontend cannot answer prompts (no stdin)",
                "kernel",
                f"run the cell from a frontend with stdin, or add c.CapsuleKernel.grants = "
                f"[{kind + ':' + target!r}] to the kernel's configuration",
            )
        question = f"{APPROVAL_PREFIX}Cell [{count}] asks for {asked} (this session). Allow? [y/N] "
        # The grant as structured fields too (input_request's "ipycap_approval"), as the
        # engine's own questions carry them: a frontend's dialog never parses the text.
        stdin = getattr(kernel, "matched_stdin", None)
        if stdin is not None:
            stdin.fields = {"kind": kind, "grant": target}
        try:
            answer = kernel.trusted_raw_input(question)
        finally:
            if stdin is not None:
                stdin.fields = None
        if parse_answer(answer) is None:
            raise CapsuleRequestRefused(
                f"request for {what}: the human answered {answer.strip()[:20]!r}",
                "kernel",
                "answer 'y' to the prompt",
            )
        cap = self.registry.grant(
            kind, target, scope="session", granted_by="prompt", note=f"cell [{count}]"
        )
        shell.capsule.context.grants.append(cap)
        print(f"granted {cap.id}: {what} (session, by prompt)")


def is_command(line: str) -> bool:
    """Whether a cell line is a ``%capsule`` command."""
    return bool(COMMAND_LINE.match(line.strip()))
