"""The kernel's parts in-process: frozen policy, deferred interrupts, static inspection,
cell splitting and the kernelspec installer."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import traceback

import pytest
from traitlets.config import Config, Configurable

from ipycap import Capsule, CapsulePolicyError, Registry
from ipycap.kernel import static
from ipycap.kernel.interrupts import InterruptGuard, critical_code
from ipycap.kernel.kernel import kernel_grant_hint, make_policy
from ipycap.kernel.kernelspec import DISPLAY_NAME
from ipycap.kernel.shell import split_cell


def _policy(**section):
    return make_policy(Configurable(config=Config({"CapsulePolicy": section})))


def test_grant_hints_offer_prompts_only_where_prompting_is_on():
    """A refusal's hint names a way that would work: a frontend that answers prompts helps
    only when CapsulePolicy.prompt is on (off, the kernel's configuration is the one way)."""
    assert kernel_grant_hint("read", "x.csv", can_ask=True) == (
        "%capsule request read x.csv (the human is asked to approve)"
    )
    assert kernel_grant_hint("read", "x.csv", can_ask=False) == (
        "c.CapsuleKernel.grants = ['read:x.csv'] in the kernel's configuration, "
        "or run the cell from a frontend that answers prompts"
    )
    assert kernel_grant_hint("read", "x.csv", can_ask=False, prompting=False) == (
        "c.CapsuleKernel.grants = ['read:x.csv'] in the kernel's configuration"
    )


def test_policy_is_frozen_at_start():
    policy = _policy(allow_input=False)
    assert policy.readable_paths == [os.getcwd()]  # the kernel's default ceiling
    with pytest.raises(CapsulePolicyError):
        policy.allow_input = True
    with pytest.raises(CapsulePolicyError):
        policy.set_trait("readable_paths", ["/"])
    with pytest.raises(CapsulePolicyError):
        policy.readable_paths.append("/")
    with pytest.raises(CapsulePolicyError):
        policy.update_config(Config({"CapsulePolicy": {"readable_paths": ["/"]}}))
    assert policy.readable_paths == [os.getcwd()] and policy.allow_input is False


def test_configured_ceiling_is_kept():
    assert _policy(readable_paths=["/srv/data"]).readable_paths == ["/srv/data"]


def _interrupt_until(done: threading.Event, sent: list) -> None:
    """Press Ctrl-C after a random moment, and again every 2 s until the cell stops."""
    if done.wait(random.uniform(0.01, 0.05)):
        return
    while not done.is_set():
        sent.append(1)
        os.kill(os.getpid(), signal.SIGINT)
        done.wait(2)


def test_interrupts_never_land_inside_ipycap_code():
    """SIGINTs at random moments of a loop that spends most of its time in the registry:
    every KeyboardInterrupt is raised in capsule code, and the registry's counts agree."""
    registry = Registry()
    capsule = Capsule(registry=registry, scope="session")
    events = []
    registry.listeners.append(lambda e: e["event"] == "use" and events.append(e))
    guard = InterruptGuard()
    saved = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGALRM)
    saved_timer = signal.getitimer(signal.ITIMER_REAL)
    guard.install_alarm()
    signal.signal(signal.SIGINT, guard.handler)
    # Garbage from earlier tests may be finalized inside the loop; a KeyboardInterrupt that
    # lands in a __del__ is "unraisable" (reported and dropped).  Record those here: pytest's
    # own hook would format their tracebacks under a capsule frame, which the tripwire refuses.
    lost = []
    saved_hook = sys.unraisablehook
    sys.unraisablehook = lambda u: lost.append(u.exc_type)
    landed, inside, sent = [], [], []
    try:
        for _ in range(15):
            done = threading.Event()
            timer = threading.Thread(target=_interrupt_until, args=(done, sent))
            timer.start()
            guard.begin()
            try:
                capsule.run("while True:\n    import math")
            except KeyboardInterrupt as e:
                landed.append(e)
                inside += [
                    frame.f_code.co_name
                    for frame, _ in traceback.walk_tb(e.__traceback__)
                    if frame.f_code in critical_code()
                ]
            finally:
                guard.end()
                done.set()
                timer.join()
    finally:
        sys.unraisablehook = saved_hook
        signal.signal(signal.SIGINT, saved[0])
        signal.signal(signal.SIGALRM, saved[1])
        signal.setitimer(signal.ITIMER_REAL, *saved_timer)
    assert len(landed) == 15
    # One press per interrupt, even when a KeyboardInterrupt is lost in a finalizer (run by
    # the garbage collector inside the loop): the guard delivers it again.
    assert len(sent) == 15, sent
    assert set(lost) <= {KeyboardInterrupt}
    assert inside == []
    [cap] = registry.find("import", "math")
    registry.flush_uses()  # repeated uses are counted: an event stands for its 'count'
    assert cap.uses == sum(e.get("count", 1) for e in events)


class _Spy:
    calls: list = []

    @property
    def __dict__(self):
        _Spy.calls.append("__dict__")
        return {}

    @property
    def prop(self):
        """A property with a side effect."""
        _Spy.calls.append("prop")
        return 1

    def __getattr__(self, name):
        _Spy.calls.append(name)
        return 1

    def __repr__(self):
        _Spy.calls.append("repr")
        return "spy"


def test_static_inspection_and_completion_run_nothing():
    spy = _Spy()
    ns = static.Namespaces({"spy": spy, "data": [1, spy]})
    text = static.describe("spy", ns.resolve("spy"))
    assert "_Spy object" in text
    assert "not evaluated" in static.describe("spy.prop", ns.resolve("spy.prop"))
    assert "side effect" in static.describe("spy.prop", ns.resolve("spy.prop"))
    assert static.complete("spy.pr", ns) == ["spy.prop"]
    assert static.complete("spy.prop.", ns) == []
    assert "<" in static.safe_repr(ns.resolve("data"))
    assert _Spy.calls == []


def test_signature_reads_defaults_without_repr():
    spy = _Spy()

    def f(a, b=spy, *args, c=2, **kw):
        pass

    assert static.signature(f) == "f(a, b=<tests.kernel.test_units._Spy object>, *args, c=2, **kw)"
    assert _Spy.calls == []


def test_split_cell_keeps_order_and_strings():
    cell = "x = 1\n%capsule list\nx?\ns = '''\n%capsule log\n'''\nx"
    kinds = [k for k, _, _ in split_cell(cell)]
    assert kinds == ["code", "command", "help", "code"]
    assert split_cell(cell)[-1][2] == 3  # first line of the last segment (0-based)


def test_install_writes_a_kernelspec(tmp_path):
    subprocess.run(
        [
            sys.executable,
            "-m",
            "ipycap.kernel",
            "install",
            "--prefix",
            str(tmp_path),
            "--name",
            "capsule-x",
            "--confine",
            "require",
            "--CapsulePolicy.allow_input=True",
        ],
        check=True,
        capture_output=True,
    )
    spec = json.loads((tmp_path / "share/jupyter/kernels/capsule-x/kernel.json").read_text())
    assert spec["display_name"] == DISPLAY_NAME
    assert spec["argv"][:5] == [sys.executable, "-m", "ipycap.kernel", "-f", "{connection_file}"]
    assert "--CapsuleKernelApp.confine=require" in spec["argv"]
    assert "--CapsulePolicy.allow_input=True" in spec["argv"]
    assert spec["metadata"]["debugger"] is False


def test_close_stops_the_publishing_threads_before_iopub(monkeypatch):
    # At exit ipykernel stopped IOPub first, then the control thread: a control thread still
    # flushing a stream sent into a closed event pipe (the kernel hung in a PUSH send, or
    # libzmq aborted): 1 in ~60 runs of test_confined on a loaded machine.
    from ipycap.kernel.app import CapsuleKernelApp

    events = []

    class Thread:
        def __init__(self, name):
            self.name, self.alive = name, True

        def is_alive(self):
            return self.alive

        def stop(self):
            events.append(f"stop {self.name}")

        def join(self, timeout=None):
            self.alive = False
            events.append(f"join {self.name}")

    class IOPub:
        def stop(self):
            events.append("stop iopub")

        def close(self):
            events.append("close iopub")

    app = CapsuleKernelApp()
    monkeypatch.setattr(app, "reset_io", lambda: None)
    app.control_thread = Thread("control")
    app.shell_channel_thread = Thread("shell")
    app.iopub_thread = IOPub()
    app.heartbeat = None
    app.close()
    assert events.index("join control") < events.index("stop iopub"), events
    assert events.index("join shell") < events.index("stop iopub"), events
    assert events.count("stop control") == 1, events
