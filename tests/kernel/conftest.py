"""Kernel test fixtures: capsule kernelspecs installed into a temporary prefix.

``python -m ipycap.kernel install --prefix P`` writes each kernelspec (as an admin would), and
``JUPYTER_PATH`` points at ``P/share/jupyter`` so jupyter_client (and jupyter_kernel_test)
find them by name.  Kernels start in a temporary working directory, which is the kernel's
default read/write ceiling.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from queue import Empty

import pytest

PREFIX = Path(os.environ["HOME"]).parent / "kernel-prefix"
WORKDIR = Path(os.environ["HOME"]).parent / "kernel-workdir"
MARKS = Path(os.environ["HOME"]).parent / "kernel-marks"  # trusted code's side effects
OUTSIDE = Path(os.environ["HOME"]).parent / "kernel-outside"  # outside every ceiling

STARTUP = '''
"""The admin's protected objects (trusted code, run at kernel start)."""
import threading
from comm import get_comm_manager

MARKS = {marks!r}


def _mark(text):
    with open(MARKS + "/" + text, "w") as f:
        f.write(text)


class Account:
    """A protected object whose property and __getattr__ have side effects."""

    @property
    def balance(self):
        _mark("property-ran")
        return 100

    def __getattr__(self, name):
        _mark("getattr-ran")
        raise AttributeError(name)


account = Account()


def read_file(path):
    """Trusted code reading a path (what a Python-level escape could do)."""
    try:
        with open(path) as f:
            return "read: " + f.read()
    except OSError as e:
        return "refused: " + type(e).__name__


def read_in_thread(path):
    out = []
    t = threading.Thread(target=lambda: out.append(read_file(path)))
    t.start()
    t.join()
    return out[0]


def _opened(comm, msg):
    _mark("comm-opened-" + comm.target_name)


get_comm_manager().register_target("probe", _opened)
get_comm_manager().register_target("granted-probe", _opened)
'''


def _install(name: str, *args: str) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "ipycap.kernel",
            "install",
            "--prefix",
            str(PREFIX),
            "--name",
            name,
            *args,
        ],
        check=True,
        capture_output=True,
    )


@pytest.fixture(scope="session")
def kernelspecs():
    """Install 'capsule-test' and 'capsule-confined-test'; returns their names."""
    for d in (PREFIX, WORKDIR, MARKS, OUTSIDE):
        d.mkdir(parents=True, exist_ok=True)
    startup = PREFIX / "startup.py"
    startup.write_text(STARTUP.format(marks=str(MARKS)))
    config = PREFIX / "capsule_kernel_config.py"
    config.write_text(
        textwrap.dedent(
            f"""
            c.CapsuleKernel.protected_startup = {str(startup)!r}
            c.CapsuleKernel.comm_targets = ["granted-probe"]
            """
        )
    )
    _install("capsule-test", "--config", str(config))
    _install(
        "capsule-confined-test",
        "--config",
        str(config),
        "--confine",
        "on",
        f"--CapsulePolicy.memory_limit={3 * 2**30}",
    )
    os.environ["JUPYTER_PATH"] = str(PREFIX / "share" / "jupyter")
    (OUTSIDE / "secret.txt").write_text("OUTSIDE-SECRET")
    return {"plain": "capsule-test", "confined": "capsule-confined-test"}


def start_kernel(name: str):
    from jupyter_client.manager import start_new_kernel

    return start_new_kernel(kernel_name=name, cwd=str(WORKDIR), startup_timeout=60)


@pytest.fixture(scope="module")
def kernel(kernelspecs):
    """One capsule kernel (and a client) shared by a test module."""
    km, kc = start_kernel(kernelspecs["plain"])
    yield km, kc
    kc.stop_channels()
    km.shutdown_kernel(now=True)


def execute(kc, code: str, *, timeout: float = 30, stdin_answer: str | None = None, **kwargs):
    """Run ``code``; returns (reply content, [(msg_type, content)] of its IOPub outputs, prompts).

    With ``stdin_answer``, every input_request is answered with it (and recorded)."""
    allow_stdin = kwargs.pop("allow_stdin", stdin_answer is not None)
    msg_id = kc.execute(code, allow_stdin=allow_stdin, **kwargs)
    prompts = []
    deadline = time.monotonic() + timeout
    reply = None
    while reply is None:
        if time.monotonic() > deadline:
            raise TimeoutError(f"no reply to {code!r}")
        if stdin_answer is not None:
            try:
                req = kc.get_stdin_msg(timeout=0.05)
                prompts.append(req["content"]["prompt"])
                kc.input(stdin_answer)
            except Empty:
                pass
        try:
            msg = kc.get_shell_msg(timeout=0.05)
        except Empty:
            continue
        if msg["parent_header"].get("msg_id") == msg_id:
            reply = msg["content"]
    outputs = []
    while True:
        msg = kc.get_iopub_msg(timeout=timeout)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            break
        if msg["msg_type"] not in ("status", "execute_input"):
            outputs.append((msg["msg_type"], msg["content"]))
    return reply, outputs, prompts


def value_of(kc, expr: str):
    """The text/plain result of evaluating ``expr`` in the capsule kernel."""
    reply, outputs, _ = execute(kc, expr)
    assert reply["status"] == "ok", reply
    results = [c["data"]["text/plain"] for t, c in outputs if t == "execute_result"]
    assert results, outputs
    return results[-1]


def marks() -> set[str]:
    return {p.name for p in MARKS.iterdir()}
