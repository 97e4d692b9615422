"""The capsule kernel at class scale: 16 kernels started at once behind one Jupyter Kernel
Gateway on loopback, against 16 stock ipykernels behind the same gateway.

Opt-in (it takes minutes on 2 shared cores): ``bench/run.py --gateway`` or
``.venv/bin/python bench/bench_gateway.py [--kernels 16] [--rounds 2]``.

The gateway is the tests' harness (``tests/kernel/gateway.py``: ``python -m kernel_gateway``
on 127.0.0.1, a port the OS chose, a random token); kernelspecs are installed into a temporary
prefix as ``bench_kernel.py`` does (no real home touched).  A round starts ``--kernels``
kernels of one kind concurrently (one thread each: ``POST /api/kernels``, the websocket, then
``execute('1')`` until its reply), then, with all of them idle, reads every kernel process's
resident memory (``VmRSS`` of the gateway's child processes), and shuts them down.  Rounds
alternate between the kinds (capsule, stock, capsule, ...).

Figures: *start* is the wall time from the POST to the first execute reply, per kernel (p50
and p95 over every kernel of every round of that kind); *RSS* is the median resident memory
per kernel process.  Targets: RSS <= 1.2x stock, start p95 <= 1.3x stock.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for p in (str(HERE), str(ROOT)):
    if p not in sys.path:
        sys.path.insert(0, p)

from common import Row, Table, percentile  # noqa: E402

KINDS = {"stock ipykernel": "python3", "capsule": "capsule"}


def _children_rss(pid: int) -> dict[int, int]:
    """Resident memory (bytes) of every direct child of ``pid``."""
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as f:
                status = f.read()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        if fields.get("PPid", "").strip() == str(pid) and "VmRSS" in fields:
            out[int(entry)] = int(fields["VmRSS"].split()[0]) * 1024
    return out


def _one_round(gw, name: str, count: int) -> tuple[list[float], list[int]]:
    from tests.kernel.gateway import GatewayKernel

    starts: list[float] = [0.0] * count
    kernels: list = [None] * count
    errors: list = []
    go = threading.Barrier(count)

    def start(i: int) -> None:
        try:
            go.wait()
            t0 = time.perf_counter()
            model = gw.request("POST", "/api/kernels", {"name": name})
            kernel = GatewayKernel(gw, model["id"])
            gw.kernels.append(kernel)
            kernels[i] = kernel
            reply, _ = kernel.execute("1", timeout=300)
            if reply.get("status") != "ok":
                raise RuntimeError(f"{name}: first cell failed: {reply}")
            starts[i] = time.perf_counter() - t0
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=start, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        if errors:
            raise RuntimeError(f"{len(errors)} of {count} {name} kernels failed: {errors[0]!r}")
        rss = list(_children_rss(gw.proc.pid).values())
    finally:
        for kernel in [k for k in kernels if k is not None]:
            kernel.shutdown()
        deadline = time.monotonic() + 60
        while _children_rss(gw.proc.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
    return starts, rss


def measure(kernels: int = 16, rounds: int = 2) -> dict:
    from bench_kernel import _isolate

    from tests.kernel.gateway import Gateway

    work = _isolate()
    results = {label: {"start": [], "rss": []} for label in KINDS}
    with Gateway("capsule", cwd=work, startup_timeout=120) as gw:
        for _ in range(rounds):
            for label, name in KINDS.items():
                starts, rss = _one_round(gw, name, kernels)
                results[label]["start"] += starts
                results[label]["rss"] += rss
    return results


def tables(results: dict, kernels: int, rounds: int) -> list[Table]:
    base = results["stock ipykernel"]
    start = Table(
        f"gateway: {kernels} kernels started concurrently (start to first reply)",
        "kernel",
        "stock ipykernel",
        inner=kernels,
        repeats=rounds,
    )
    rss = Table(
        f"gateway: resident memory per kernel ({kernels} running)",
        "kernel",
        "stock ipykernel",
        inner=kernels,
        repeats=rounds,
    )
    b50, b95 = percentile(base["start"], 0.5), percentile(base["start"], 0.95)
    brss = statistics.median(base["rss"])
    for label in KINDS:
        r = results[label]
        p50, p95 = percentile(r["start"], 0.5), percentile(r["start"], 0.95)
        start.rows.append(
            Row(label, p50 * 1e9, p50 / b50, p50 / b50, p95 / b95, note=f"p95 {p95:.2f} s")
        )
        m = statistics.median(r["rss"])
        rss.rows.append(
            Row(
                label,
                0.0,
                m / brss,
                percentile(r["rss"], 0.25) / brss,
                percentile(r["rss"], 0.75) / brss,
                note=f"median {m / 2**20:.1f} MiB over {len(r['rss'])} kernels",
            )
        )
    p95_ratio = percentile(results["capsule"]["start"], 0.95) / b95
    start.target = "start p95 <= 1.3x stock"
    start.verdict = f"capsule p95 {p95_ratio:.2f}x: {'MET' if p95_ratio <= 1.3 else 'MISSED'}"
    start.notes.append("ratio column: p50 vs stock p50; brackets: [p50 ratio - p95 ratio]")
    rss_ratio = rss.row("capsule").ratio
    rss.target = "RSS per kernel <= 1.2x stock"
    rss.verdict = f"capsule {rss_ratio:.2f}x: {'MET' if rss_ratio <= 1.2 else 'MISSED'}"
    rss.notes.append("time column unused; RSS = VmRSS of each kernel process, all idle")
    return [start, rss]


def run(settings) -> list[Table]:
    if not getattr(settings, "gateway", False):
        print("\n## bench_gateway: skipped (opt-in, takes minutes): bench/run.py --gateway")
        return []
    kernels, rounds = (4, 1) if settings.repeats < 10 else (16, 2)
    return tables(measure(kernels, rounds), kernels, rounds)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kernels", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2)
    opts = parser.parse_args(argv)
    for table in tables(measure(opts.kernels, opts.rounds), opts.kernels, opts.rounds):
        print("\n" + table.render())


if __name__ == "__main__":
    main()
