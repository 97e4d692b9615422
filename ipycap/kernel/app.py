"""CapsuleKernelApp: ``python -m ipycap.kernel -f CONNECTION_FILE``, optionally confined.

The app is ipykernel's ``IPKernelApp`` with ``kernel_class = CapsuleKernel``.  It builds the
frozen policy from the configuration (``ipython_kernel_config.py``, ``--config=FILE``,
``--CapsulePolicy.x=...``) and, when ``confine`` is 'on' or 'require', confines the process
with :func:`ipycap.confine.apply` in the main thread *before* ipykernel starts any thread (a
Landlock domain covers the thread that applies it and the threads it creates later).  The
hook point is ``init_poller``, the first step after the connection file is read (so the ports
are known) and before the sockets, the heartbeat and the IOPub, control and shell threads.
"""

from __future__ import annotations

import os
import socket

import zmq
from ipykernel.kernelapp import IPKernelApp, kernel_aliases
from traitlets import Dict, Enum, Type

from ..engine.policy import CapsulePolicy
from .kernel import CapsuleKernel, make_policy
from .shell import CapsuleShell

_PORTS = ("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port")


class CapsuleKernelApp(IPKernelApp):
    """The capsule kernel application."""

    name = "ipycap-kernel"
    description = (
        "The ipycap capsule kernel: every cell runs as a capsule, with only the imports, "
        "paths and objects granted to it (the CapsulePolicy ceiling below).  "
        "'install' writes its kernelspec; a frontend starts it with -f CONNECTION_FILE."
    )
    kernel_class = Type(
        "ipycap.kernel.kernel.CapsuleKernel",
        klass="ipykernel.kernelbase.Kernel",
        help="The kernel class (the capsule kernel).",
    ).tag(config=True)
    classes = [*IPKernelApp.classes, CapsuleKernel, CapsuleShell, CapsulePolicy]
    subcommands = {
        "install": (
            "ipycap.kernel.kernelspec.InstallCapsuleKernelSpecApp",
            "Install the capsule kernelspec",
        )
    }
    confine = Enum(
        ["off", "on", "require"],
        default_value="off",
        config=True,
        help="OS confinement (Linux: Landlock, seccomp, rlimits) applied before the kernel "
        "starts its threads. 'on': apply what this machine supports and say what it could "
        "not; 'require': refuse to start without Landlock.",
    )
    aliases = Dict({**kernel_aliases, "confine": "CapsuleKernelApp.confine"})

    capsule_policy = None
    confinement_summary = None
    confinement_report = None

    def init_poller(self):
        """First step after the connection file was read: build the policy and confine."""
        self.capsule_policy = make_policy(self)
        self._confine()
        super().init_poller()

    def _confine(self) -> None:
        from .. import confine as confine_mod

        if self.confine == "off":
            status = confine_mod.status()
            self.confinement_summary = (
                "OS confinement: off (CapsuleKernelApp.confine = 'off'); "
                + status.summary().split(": ", 1)[-1]
            )
            return
        if self.transport == "tcp":
            for name in _PORTS:
                if not getattr(self, name):
                    setattr(self, name, _free_port(self.ip))
        extra_read, extra_write = self._kernel_files()
        try:
            report = confine_mod.apply(
                self.capsule_policy,
                bind_ports=[getattr(self, n) for n in _PORTS] if self.transport == "tcp" else (),
                extra_read=extra_read,
                extra_write=extra_write,
                require=self.confine == "require",
            )
        except confine_mod.ConfinementError as e:
            self.log.critical("The capsule kernel will not start: %s", e)
            self.exit(1)
        self.confinement_report = report
        self.confinement_summary = report.summary()
        level = self.log.info if report.landlock_abi else self.log.warning
        level("%s", self.confinement_summary)
        for warning in report.warnings:
            self.log.warning("confinement: %s", warning)
        # History in memory: the profile folder is outside what a confined kernel may write.
        self.config.HistoryManager.hist_file = ":memory:"

    def init_iopub(self, context):
        """IOPub without the subprocess pipe when confined: the pipe binds a random TCP port,
        which a confined kernel may not (and it cannot start subprocesses anyway)."""
        if self.confinement_report is None:
            return super().init_iopub(context)
        from ipykernel.iostream import IOPubThread

        self.iopub_socket = context.socket(zmq.XPUB)
        self.iopub_socket.linger = 1000
        self._apply_curve_server_options(self.iopub_socket)
        self.iopub_port = self._bind_socket(self.iopub_socket, self.iopub_port)
        self.configure_tornado_logger()
        self.iopub_thread = IOPubThread(self.iopub_socket, pipe=False, session=self.session)
        self.iopub_thread.start()
        self.iopub_socket = self.iopub_thread.background_socket
        return None

    def close(self):
        """Stop the threads that publish on IOPub (control, shell channel) before IOPub.

        ipykernel's own ``close`` (at exit) stops the IOPub thread first and closes its event
        pipes while the control thread may still be flushing a stream into one: that thread
        then blocked for ever in a PUSH send with no peer left (the kernel never exited), or
        used a socket the main thread was closing (libzmq aborted on the POLLIN assertion).
        Producers first, then the consumer."""
        for name in ("control_thread", "shell_channel_thread"):
            thread = getattr(self, name, None)
            if thread is not None and thread.is_alive():
                thread.stop()
                thread.join(timeout=30)
        super().close()

    def _kernel_files(self) -> tuple[list[str], list[str]]:
        """What the kernel itself reads and writes after confinement: its connection file,
        the admin's protected-startup file.  Files, not folders: the runtime folder holds other
        kernels' signing keys."""
        read, write = [], []
        cf = self.abs_connection_file
        if cf and os.path.exists(cf):
            read.append(cf)
            write.append(cf)
        startup = self.config.get("CapsuleKernel", {}).get("protected_startup")
        if startup:
            read.append(os.path.abspath(os.path.expanduser(str(startup))))
        return read, write


def _free_port(ip: str) -> int:
    """A free TCP port, chosen now because a confined kernel may only bind known ports."""
    with socket.socket() as s:
        s.bind((ip or "127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    """Entry point of ``python -m ipycap.kernel``."""
    CapsuleKernelApp.launch_instance()
