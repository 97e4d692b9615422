"""CapsuleKernel: ipykernel's IPythonKernel with every protocol door guarded.

Cells run in one persistent session capsule (see :mod:`ipycap.kernel.shell`).  The other doors
of the Jupyter protocol, each of which runs code or hands out authority in a stock kernel:

* ``user_expressions`` run as capsule code (the shell's ``user_expressions``);
* ``inspect_request`` and ``complete_request`` never evaluate (:mod:`ipycap.kernel.static`);
* ``debug_request`` is refused and ``kernel_info`` advertises no debugger;
* a frontend's ``comm_open`` is refused unless ``CapsuleKernel.comm_targets`` grants it;
* ``input()``/``getpass`` in capsule code need ``CapsulePolicy.allow_input`` or a grant;
* subshell requests are refused (a second thread running cells would share the capsule);
* SIGINT never lands inside ipycap's own code (:mod:`ipycap.kernel.interrupts`).

The policy is built once from the traitlets configuration and frozen (:class:`FrozenPolicy`):
nothing a cell sends can change it.  Grants come from ``CapsuleKernel.grants`` and from the
human's answer to ``%capsule request``.
"""

from __future__ import annotations

import os
import signal
import sys

from ipykernel.ipkernel import IPythonKernel
from traitlets import Instance, List, Type, Unicode
from traitlets.config import Configurable

from ..engine.approval import capsule_prompt
from ..engine.capsule import Capsule
from ..engine.errors import CapabilityError, CapsulePermissionError, CapsulePolicyError
from ..engine.policy import CapsulePolicy
from ..engine.registry import Registry
from ..engine.tripwire import contexts_on_stack
from ..ipython.panel import RegistryChannel
from . import static
from .interrupts import InterruptGuard
from .shell import CapsuleShell
from .stdin import MatchedStdin

DEBUGGER_REFUSED = (
    "the debugger is disabled in the capsule kernel: it evaluates arbitrary code with the "
    "kernel's full authority"
)


class _FrozenList(list):
    """A policy list after start: reading works, changing it in place does not."""

    def _refuse(self, *args, **kwargs):
        raise CapsulePolicyError(
            "the capsule kernel's policy is fixed at start", "kernel", "change the configuration"
        )

    append = extend = insert = remove = pop = clear = sort = reverse = _refuse
    __setitem__ = __delitem__ = __iadd__ = __imul__ = _refuse


class FrozenPolicy(CapsulePolicy):
    """A CapsulePolicy that refuses every change once :meth:`freeze` was called.

    It reads the ``CapsulePolicy`` configuration section like its base class."""

    def freeze(self) -> None:
        for name in self.trait_names(config=True):
            value = getattr(self, name)
            if isinstance(value, list):  # the policy's watched lists too
                self._trait_values[name] = _FrozenList(value)
        object.__setattr__(self, "_ipycap_frozen", True)

    @property
    def frozen(self) -> bool:
        return self.__dict__.get("_ipycap_frozen", False)

    def _refuse(self, name):
        raise CapsulePolicyError(
            f"changing CapsulePolicy.{name} in a running capsule kernel",
            "kernel",
            "the policy is fixed at start: change ipython_kernel_config.py or the kernelspec "
            "and restart the kernel",
        )

    def __setattr__(self, name, value):
        if self.frozen and (self.has_trait(name) or name == "_ipycap_frozen"):
            self._refuse(name)
        super().__setattr__(name, value)

    def set_trait(self, name, value):
        if self.frozen:
            self._refuse(name)
        super().set_trait(name, value)

    def _load_config(self, cfg, section_names=None, traits=None):
        if self.frozen:
            self._refuse("(configuration)")
        super()._load_config(cfg, section_names=section_names, traits=traits)


def make_policy(parent: Configurable) -> FrozenPolicy:
    """The kernel's policy from ``parent``'s configuration; the path ceilings default to the
    working directory (DESIGN.md), not the extension's ``/``. Frozen before it is returned."""
    policy = FrozenPolicy(parent=parent)
    configured = set(parent.config.get("CapsulePolicy", {})) | set(
        parent.config.get("FrozenPolicy", {})
    )
    for name in ("readable_paths", "writable_paths"):
        if name not in configured:
            setattr(policy, name, [os.getcwd()])
    policy.freeze()
    return policy


def parse_grant(spec: str) -> tuple[str, str]:
    kind, sep, target = spec.partition(":")
    if not sep or kind not in ("read", "write", "import", "input", "comm", "object"):
        raise CapsulePolicyError(
            f"CapsuleKernel.grants entry {spec!r} is not 'kind:target'",
            "kernel",
            "write e.g. 'read:data/', 'write:out/', 'import:numpy' or 'input:'",
        )
    return kind, target


def kernel_grant_hint(
    kind: str, target: str, can_ask: bool = True, prompting: bool = True
) -> str | None:
    """How a capsule-kernel cell asks for a grant (the extension's flags do not exist here);
    ``can_ask``: whether a human can answer a prompt now (stdin, prompting on);
    ``prompting``: ``CapsulePolicy.prompt`` (off, no frontend's prompt would help).

    None where this kernel offers no way: protected objects are read-only and a revocation
    is final (cells can only narrow their authority)."""
    if kind in ("writable", "object"):
        return None
    if kind in ("read", "write", "import") and can_ask:
        return f"%capsule request {kind} {target} (the human is asked to approve)"
    if kind in ("read", "write", "import"):
        config = f"c.CapsuleKernel.grants = ['{kind}:{target}'] in the kernel's configuration"
        return (
            config + ", or run the cell from a frontend that answers prompts"
            if prompting
            else config
        )
    if kind == "input":
        return "c.CapsulePolicy.allow_input = True in the kernel's configuration"
    return f"c.CapsuleKernel.grants = ['{kind}:{target}'] in the kernel's configuration"


class CapsuleKernel(IPythonKernel):
    """The capsule kernel (see the module docstring)."""

    implementation = "ipycap"
    shell_class = Type(CapsuleShell)

    grants = List(
        Unicode(),
        config=True,
        help="Grants every cell has from the start, as 'kind:target': 'read:data/', "
        "'write:out/', 'import:numpy', 'input:' (allow input()). Each must lie within the "
        "CapsulePolicy ceiling.",
    )
    comm_targets = List(
        Unicode(),
        config=True,
        help="Comm targets a frontend may open (comm_open from the frontend is refused "
        "for every other target).",
    )
    protected_startup = Unicode(
        "",
        config=True,
        help="A Python file the kernel runs at start as trusted code; the public names it "
        "defines become the protected objects every cell sees through read-only proxies.",
    )
    policy = Instance(CapsulePolicy, allow_none=True)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.matched_stdin = MatchedStdin()
        parent_policy = getattr(self.parent, "capsule_policy", None)
        if self.policy is None:
            self.policy = parent_policy if parent_policy is not None else make_policy(self)
        self.registry = Registry(self.policy)
        confinement = getattr(self.parent, "confinement_summary", None)
        if confinement:
            self.registry.confinement = confinement
        caps = [
            self.registry.grant(*parse_grant(spec), scope="session", granted_by="config")
            for spec in self.grants
        ]
        for target in self.comm_targets:
            self.registry.grant("comm", target, scope="session", granted_by="config")
        self.capsule = Capsule(
            registry=self.registry,
            grants=caps,
            protected=self._run_protected_startup(),
            scope="session",
            label="kernel",
        )
        self.capsule.context.how_to_grant = self._grant_hint
        # Grants asked for at the moment of access go to the frontend's stdin channel.
        self.registry.approver = self._approve
        self.interrupts = InterruptGuard()
        if sys.platform != "win32":
            try:
                self.interrupts.install_alarm()
            except ValueError:  # not the main thread (an in-process kernel): no deferral
                pass
        self.shell.init_capsule(self.capsule, self.interrupts)
        self.shell.events.register("pre_run_cell", self._name_cell)
        #: The registry on every execute_reply, for JupyterLab's Capabilities panel.
        self.registry_channel = RegistryChannel(self.registry, "kernel")
        self.shell_handlers["comm_open"] = self._comm_open
        self.control_handlers["execute_request"] = self._refuse_control_execute

    def _name_cell(self, info=None) -> None:
        """The cell every registry event of this run is recorded under."""
        self.registry.cell = f"In[{self.shell.execution_count}]"

    def _run_protected_startup(self) -> dict:
        path = self.protected_startup
        if not path:
            return {}
        path = os.path.abspath(os.path.expanduser(path))
        with open(path, encoding="utf-8") as f:
            source = f.read()
        ns: dict = {"__name__": "__ipycap_startup__", "__file__": path}
        exec(compile(source, path, "exec"), ns)  # the admin's trusted code
        return {k: v for k, v in ns.items() if not k.startswith("_")}

    def finish_metadata(self, parent, metadata, reply_content):
        metadata = super().finish_metadata(parent, metadata, reply_content)
        return self.registry_channel.finish_metadata(parent, metadata)

    # -- info and refused doors ------------------------------------------------------------------
    @property
    def kernel_info(self):
        info = super().kernel_info
        info["supported_features"] = [
            f
            for f in info.get("supported_features", [])
            if f not in ("debugger", "kernel subshells")
        ]
        info["debugger"] = False
        info["banner"] = (
            "Python (capsule kernel): every cell runs as a capsule. "
            "%capsule list shows the registry.\n" + self.registry.confinement
        )
        return info

    @property
    def banner(self):  # type: ignore[override]
        return "Python (capsule kernel)"

    async def do_debug_request(self, msg):
        self.registry.refuse(
            CapabilityError("debug_request", "kernel", None), kind="debug", target="debugger"
        )
        return {
            "type": "response",
            "request_seq": msg.get("seq", 0),
            "success": False,
            "command": msg.get("command", ""),
            "message": DEBUGGER_REFUSED,
            "body": {},
        }

    def dispatch_debugpy(self, msg):
        return None  # no debugger session can exist

    def _refuse_subshell(self, socket, ident, parent, reply_type):
        err = CapabilityError(
            "subshells (a second thread running cells beside the capsule)", "kernel", None
        )
        self.registry.refuse(err, kind="subshell", target=reply_type)
        content = {
            "status": "error",
            "ename": "CapabilityError",
            "evalue": str(err),
            "traceback": [],
        }
        self.session.send(socket, reply_type, content, parent, ident)

    async def create_subshell_request(self, socket, ident, parent) -> None:
        self._refuse_subshell(socket, ident, parent, "create_subshell_reply")

    async def delete_subshell_request(self, socket, ident, parent) -> None:
        self._refuse_subshell(socket, ident, parent, "delete_subshell_reply")

    async def list_subshell_request(self, socket, ident, parent) -> None:
        self._refuse_subshell(socket, ident, parent, "list_subshell_reply")

    async def _refuse_control_execute(self, socket, ident, parent) -> None:
        """ipykernel accepts every shell request on the control channel as well; an
        ``execute_request`` there would run a cell on the control thread, beside the shell's
        (a subshell in all but name)."""
        err = CapabilityError(
            "execute_request on the control channel (a second thread running cells beside "
            "the capsule)",
            "kernel",
            None,
        )
        self.registry.refuse(err, kind="subshell", target="control execute_request")
        content = {
            "status": "error",
            "ename": "CapabilityError",
            "evalue": str(err),
            "traceback": [],
            "execution_count": self.execution_count,
        }
        self.session.send(socket, "execute_reply", content, parent, ident)

    def _comm_open(self, stream, ident, msg):
        content = msg.get("content", {})
        target = content.get("target_name", "")
        if self.registry.find("comm", target):
            for cap in self.registry.find("comm", target):
                self.registry.use(cap, "comm_open")
            return self.comm_manager.comm_open(stream, ident, msg)
        err = CapabilityError(
            f"comm_open from the frontend for target {target!r}",
            "kernel",
            f"c.CapsuleKernel.comm_targets = [{target!r}]",
        )
        self.registry.refuse(err, kind="comm", target=target)
        self.log.warning("%s", err)
        self.session.send(
            self.iopub_socket,
            "comm_close",
            {"comm_id": content.get("comm_id", ""), "data": {"error": str(err)}},
            parent=msg,
            ident=self._topic("comm_close"),
        )
        return None

    # -- inspection and completion: static only --------------------------------------------------
    def do_inspect(self, code, cursor_pos, detail_level=0, omit_sections=()):
        name = static.inspect_token(code, cursor_pos)
        value = self.shell.static_namespaces().resolve(name) if name else static.MISSING
        if value is static.MISSING:
            return {"status": "ok", "found": False, "data": {}, "metadata": {}}
        text = static.describe(name, value, detail_level)
        return {"status": "ok", "found": True, "data": {"text/plain": text}, "metadata": {}}

    def do_complete(self, code, cursor_pos):
        if cursor_pos is None:
            cursor_pos = len(code)
        token = static.token_before(code, cursor_pos)
        matches = static.complete(token, self.shell.static_namespaces())
        return {
            "matches": matches,
            "cursor_start": cursor_pos - len(token),
            "cursor_end": cursor_pos,
            "metadata": {},
            "status": "ok",
        }

    # -- stdin -------------------------------------------------------------------------------------
    def _check_input(self, what: str) -> bool:
        """Refuse ``what`` for capsule code without the input grant; True if capsule code
        is asking (its prompt then gets the capsule prefix)."""
        contexts = contexts_on_stack(sys._getframe(2))
        if contexts and not all(ctx.may_input() for ctx in contexts):
            err = CapsulePermissionError(
                f"{what} from capsule code (it could ask the user for a password)",
                "kernel",
                "c.CapsulePolicy.allow_input = True, or c.CapsuleKernel.grants = ['input:']",
            )
            for ctx in contexts:
                ctx.record_refusal(err)
            raise err
        return bool(contexts)

    def _input_request(self, prompt, ident, parent, password=False) -> str:
        # Replies matched to their question; abandoned questions withdrawn (stdin.py).
        return self.matched_stdin.request(self, prompt, ident, parent, password)

    def raw_input(self, prompt=""):
        if self._check_input("input()"):
            prompt = capsule_prompt(prompt)  # never mistaken for the kernel's own questions
        return super().raw_input(prompt)

    def getpass(self, prompt="", stream=None, **kwargs):
        if self._check_input("getpass()"):
            prompt = capsule_prompt(prompt)
        return super().getpass(prompt, stream, **kwargs)

    def trusted_raw_input(self, prompt: str) -> str:
        """The kernel's own prompt (``%capsule request``), never called by capsule code."""
        return super().raw_input(prompt)

    def _approve(self, prompt: str) -> str | None:
        """The registry's approver: the engine's question to the frontend's human, or None
        when this request's frontend cannot answer (no stdin)."""
        if not getattr(self, "_allow_stdin", False):
            return None
        asking = getattr(self.registry, "_asking", None)
        self.matched_stdin.fields = dict(asking) if isinstance(asking, dict) else None
        try:
            return super().raw_input(prompt)
        finally:
            self.matched_stdin.fields = None

    def _grant_hint(self, kind: str, target: str) -> str | None:
        prompting = bool(self.policy.prompt)
        can_ask = bool(getattr(self, "_allow_stdin", False)) and prompting
        return kernel_grant_hint(kind, target, can_ask, prompting)

    def _process_children(self):
        """Child processes to end at shutdown; a confined kernel may not list /proc (and
        cannot have started any: exec is denied)."""
        try:
            return super()._process_children()
        except OSError:
            return []

    # -- errors and the queue ------------------------------------------------------------------------
    async def do_execute(
        self,
        code,
        silent,
        store_history=True,
        user_expressions=None,
        allow_stdin=False,
        *,
        cell_meta=None,
        cell_id=None,
    ):
        reply = await super().do_execute(
            code,
            silent,
            store_history,
            user_expressions,
            allow_stdin,
            cell_meta=cell_meta,
            cell_id=cell_id,
        )
        parent = self.get_parent("shell") or {}
        content = parent.get("content", {})
        if reply.get("status") == "error" and not silent and content.get("stop_on_error", True):
            # ipykernel starts aborting the queue only after it sent the error reply, so a
            # request the client sends on seeing that reply can be aborted too (on a loaded
            # machine it often is). Abort here, before the reply: exactly the requests queued
            # behind the failed cell are aborted, as "Run all" expects, and no later one.
            self._abort_queues(parent.get("header", {}).get("subshell_id"))
            self._queue_aborted = True
        return reply

    def _abort_queues(self, subshell_id=None):
        if self.__dict__.pop("_queue_aborted", False):
            return  # already done before the reply (do_execute)
        super()._abort_queues(subshell_id)

    # -- interrupts --------------------------------------------------------------------------------
    def pre_handler_hook(self):
        self.interrupts.arm()
        self.saved_sigint_handler = signal.signal(signal.SIGINT, self.interrupts.handler)

    def post_handler_hook(self):
        super().post_handler_hook()
        self.interrupts.disarm()
