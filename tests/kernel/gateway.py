"""A real Jupyter Kernel Gateway serving the capsule kernel, for tests and benchmarks.

:class:`Gateway` starts ``python -m kernel_gateway`` on 127.0.0.1 with a port the OS chose and
a random token; :meth:`Gateway.start_kernel` asks its REST API for a kernel and returns a
:class:`GatewayKernel` that speaks the Jupyter protocol over the gateway's websocket
(``/api/kernels/ID/channels``), as JupyterHub's or a remote frontend's client would.  Several
kernels may run at once (the class-scale measurement starts sixteen).

Used as a context manager::

    with Gateway("capsule-test", cwd=work) as gw:
        kernel = gw.start_kernel()
        reply, outputs = kernel.execute("1 + 1")
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import websocket


def free_port() -> int:
    """A TCP port on 127.0.0.1 the OS just handed out (never a fixed one)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Gateway:
    """``jupyter kernelgateway`` on loopback, serving ``kernel_name`` (see the module doc)."""

    def __init__(self, kernel_name: str, cwd: str | os.PathLike, *, startup_timeout: float = 60):
        self.kernel_name = kernel_name
        self.cwd = Path(cwd)
        self.token = secrets.token_hex(16)
        self.port = free_port()
        self.startup_timeout = startup_timeout
        self.proc: subprocess.Popen | None = None
        self.kernels: list[GatewayKernel] = []
        self.log_path = self.cwd / f"gateway-{self.port}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- process -------------------------------------------------------------------------------
    def start(self) -> Gateway:
        argv = [
            sys.executable,
            "-m",
            "kernel_gateway",
            "--KernelGatewayApp.ip=127.0.0.1",
            f"--KernelGatewayApp.port={self.port}",
            f"--KernelGatewayApp.auth_token={self.token}",
            f"--KernelGatewayApp.default_kernel_name={self.kernel_name}",
            "--KernelGatewayApp.port_retries=0",
            "--JupyterWebsocketPersonality.list_kernels=True",
        ]
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(argv, cwd=self.cwd, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + self.startup_timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the gateway exited: {self.log()}")
            try:
                self.request("GET", "/api")
                return self
            except (urllib.error.URLError, ConnectionError):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the gateway did not answer: {self.log()}") from None
                time.sleep(0.1)

    def stop(self) -> None:
        for kernel in list(self.kernels):
            kernel.shutdown()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if getattr(self, "_log", None) is not None:
            self._log.close()
            self._log = None

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def __enter__(self) -> Gateway:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- REST ------------------------------------------------------------------------------------
    def request(self, method: str, path: str, body: dict | None = None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            self.url + path,
            data=data,
            method=method,
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=30) as resp:
            text = resp.read()
        return json.loads(text) if text else None

    def start_kernel(self) -> GatewayKernel:
        """A new kernel of ``kernel_name`` and a websocket connected to its channels."""
        model = self.request("POST", "/api/kernels", {"name": self.kernel_name})
        kernel = GatewayKernel(self, model["id"])
        self.kernels.append(kernel)
        return kernel


class GatewayKernel:
    """One kernel behind the gateway: the Jupyter protocol over its websocket."""

    def __init__(self, gateway: Gateway, kernel_id: str):
        self.gateway = gateway
        self.id = kernel_id
        self.session = uuid.uuid4().hex
        ws_url = (
            f"ws://127.0.0.1:{gateway.port}/api/kernels/{kernel_id}/channels"
            f"?session_id={self.session}"
        )
        self.ws = websocket.create_connection(
            ws_url, header=[f"Authorization: token {gateway.token}"], timeout=60
        )

    def _send(self, channel: str, msg_type: str, content: dict) -> str:
        msg_id = uuid.uuid4().hex
        self.ws.send(
            json.dumps(
                {
                    "header": {
                        "msg_id": msg_id,
                        "msg_type": msg_type,
                        "username": "test",
                        "session": self.session,
                        "date": "",
                        "version": "5.3",
                    },
                    "parent_header": {},
                    "metadata": {},
                    "content": content,
                    "channel": channel,
                    "buffers": [],
                }
            )
        )
        return msg_id

    def execute(self, code: str, *, timeout: float = 60) -> tuple[dict, list[tuple[str, dict]]]:
        """Run ``code``; returns (the execute_reply content, [(msg_type, content)] of its
        IOPub outputs) once the kernel is idle again."""
        msg_id = self._send(
            "shell",
            "execute_request",
            {
                "code": code,
                "silent": False,
                "store_history": True,
                "user_expressions": {},
                "allow_stdin": False,
                "stop_on_error": True,
            },
        )
        reply, outputs, idle = None, [], False
        deadline = time.monotonic() + timeout
        while reply is None or not idle:
            self.ws.settimeout(max(0.1, deadline - time.monotonic()))
            msg = json.loads(self.ws.recv())
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind = msg["msg_type"]
            if msg.get("channel") == "shell" and kind == "execute_reply":
                reply = msg["content"]
            elif kind == "status":
                idle = idle or msg["content"]["execution_state"] == "idle"
            elif kind != "execute_input":
                outputs.append((kind, msg["content"]))
        return reply, outputs

    def shutdown(self) -> None:
        try:
            self.ws.close()
        finally:
            if self in self.gateway.kernels:
                self.gateway.kernels.remove(self)
            try:
                self.gateway.request("DELETE", f"/api/kernels/{self.id}")
            except (urllib.error.URLError, ConnectionError):
                pass
