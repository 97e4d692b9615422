"""Kernel start time and warm execute round trip: capsule kernel vs stock ipykernel.

Run: ``.venv/bin/python bench/bench_kernel.py [--starts 7] [--trips 200]``.

All kernels are measured in the same run, interleaved (start A, start B, start C, repeat), in a
temporary Jupyter tree (no real home touched), each kernelspec installed the way a user would:
``python -m ipykernel install --prefix`` for the stock 'python3' and ``python -m ipycap.kernel
install --prefix`` for the capsule kernel, unconfined and confined.  Start time is wall time
from launching the process to the kernel_info reply (what ``start_new_kernel`` waits for);
a round trip is ``execute('x = 1')`` to the reply plus the idle status on IOPub.  Medians are
printed with the ratio to stock.  Issue 5's targets: <= 1.3x start, <= 1.2x round trip.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

KERNELS = {
    "stock ipykernel": "python3",
    "capsule": "capsule",
    "capsule confined": "capsule-confined",
}


def _isolate() -> str:
    root = tempfile.mkdtemp(prefix="ipycap-bench-kernel-")
    for var, sub in {
        "HOME": "home",
        "IPYTHONDIR": "home/.ipython",
        "JUPYTER_CONFIG_DIR": "home/.jupyter",
        "JUPYTER_DATA_DIR": "home/.local/share/jupyter",
        "JUPYTER_RUNTIME_DIR": "home/.local/share/jupyter/runtime",
    }.items():
        os.makedirs(os.path.join(root, sub), exist_ok=True)
        os.environ[var] = os.path.join(root, sub)
    prefix = os.path.join(root, "prefix")
    py = sys.executable
    run = lambda *a: subprocess.run([py, "-m", *a], check=True, capture_output=True)
    run("ipykernel", "install", "--prefix", prefix, "--name", "python3")
    run("ipycap.kernel", "install", "--prefix", prefix, "--name", "capsule")
    run(
        "ipycap.kernel",
        "install",
        "--prefix",
        prefix,
        "--name",
        "capsule-confined",
        "--confine",
        "on",
    )
    os.environ["JUPYTER_PATH"] = os.path.join(prefix, "share", "jupyter")
    work = os.path.join(root, "work")
    os.makedirs(work)
    return work


def start(name: str, cwd: str):
    from jupyter_client.manager import start_new_kernel

    t0 = time.perf_counter()
    km, kc = start_new_kernel(kernel_name=name, cwd=cwd, startup_timeout=60)
    return time.perf_counter() - t0, km, kc


def round_trip(kc) -> float:
    t0 = time.perf_counter()
    msg_id = kc.execute("x = 1")
    while kc.get_shell_msg(timeout=10)["parent_header"].get("msg_id") != msg_id:
        pass
    while True:
        msg = kc.get_iopub_msg(timeout=10)
        if (
            msg["parent_header"].get("msg_id") == msg_id
            and msg["msg_type"] == "status"
            and msg["content"]["execution_state"] == "idle"
        ):
            return time.perf_counter() - t0


def stop(km, kc) -> None:
    kc.stop_channels()
    km.shutdown_kernel(now=True)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starts", type=int, default=7)
    parser.add_argument("--trips", type=int, default=200)
    opts = parser.parse_args(argv)
    work = _isolate()
    starts = {label: [] for label in KERNELS}
    for _ in range(opts.starts):
        for label, name in KERNELS.items():
            seconds, km, kc = start(name, work)
            starts[label].append(seconds)
            stop(km, kc)
    trips = {label: [] for label in KERNELS}
    clients = {label: start(name, work)[1:] for label, name in KERNELS.items()}
    try:
        for _km, kc in clients.values():
            for _ in range(20):  # warm up: first cells compile, import, fill caches
                round_trip(kc)
        for _ in range(opts.trips):
            for label, (_km, kc) in clients.items():
                trips[label].append(round_trip(kc))
    finally:
        for km, kc in clients.values():
            stop(km, kc)
    base_start = statistics.median(starts["stock ipykernel"])
    base_trip = statistics.median(trips["stock ipykernel"])
    results = {}
    print(f"{'kernel':<18} {'start (median)':>15} {'ratio':>6} {'round trip':>11} {'ratio':>6}")
    for label in KERNELS:
        s, t = statistics.median(starts[label]), statistics.median(trips[label])
        results[label] = {"start_s": s, "round_trip_ms": t * 1000}
        print(
            f"{label:<18} {s:>13.3f} s {s / base_start:>5.2f}x {t * 1000:>8.2f} ms "
            f"{t / base_trip:>5.2f}x"
        )
    conf, plain = results["capsule confined"], results["capsule"]
    print(f"confined vs unconfined capsule start: {conf['start_s'] / plain['start_s']:.2f}x")
    return results


if __name__ == "__main__":
    main()
