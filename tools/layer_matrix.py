"""Which layer stops what: run the red-team corpus in fresh interpreters that each never
install one chosen layer, and write the matrix into SECURITY.md.

There is deliberately no switch inside ``ipycap`` that turns a layer off (an escape could
flip it).  Instead this script re-runs *itself* as a child process per layer; the child reads
the layer to leave out from ``IPYCAP_MATRIX_WITHOUT`` (read only here, by this script's own
child) and monkeypatches ipycap in its own process before any capsule exists:

- ``gate``: the source is parsed but nothing is refused or rewritten;
- ``guard``: every accessor is Python's own (``getattr``, ``vars``, ``str.format``...);
- ``membrane``: protected objects enter the capsule raw, not as proxies;
- ``builtins``: the capsule runs with Python's full builtins (plus the guard's hooks);
- ``tripwire``: the audit hook is never installed.

    .venv/bin/python tools/layer_matrix.py            # print and write SECURITY.md
    .venv/bin/python tools/layer_matrix.py --print    # print only
"""

from __future__ import annotations

import argparse
import ast
import builtins
import json
import os
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ("gate", "guard", "membrane", "builtins", "tripwire")
ENV = "IPYCAP_MATRIX_WITHOUT"
START, END = "<!-- layer-matrix:start -->", "<!-- layer-matrix:end -->"


# -- the child: one interpreter without one layer ---------------------------------------------
def _remove(layer: str) -> None:
    import ipycap.engine.capsule as cc
    import ipycap.engine.codeexec as ce
    import ipycap.engine.gate as cg
    import ipycap.engine.guard as gd
    import ipycap.engine.modules as cm
    import ipycap.engine.tripwire as tw

    if layer == "tripwire":
        tw.install = lambda: None
    elif layer == "gate":

        def gate(source, filename="<capsule>", *, mode="exec", rexec=False):
            tree = ast.parse(source, filename, mode)
            names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
            return cg.GatedSource(tree, names, 0)

        cg.gate = cc.gate = ce.gate = gate
    elif layer == "guard":
        import operator
        import string

        gd.decide = lambda value, name, mode="proxy": getattr(value, name)
        plain = {
            "_ipycap_getattr": getattr,
            "_ipycap_setattr": setattr,
            "_ipycap_delattr": delattr,
            "getattr": getattr,
            "hasattr": hasattr,
            "setattr": setattr,
            "delattr": delattr,
            "vars": vars,
            "dir": dir,
        }
        gd.make_accessors = lambda mode="proxy", on_refuse=None: dict(plain)
        cm.MODULE_OVERRIDES.clear()
        cm.MODULE_OVERRIDES.update(
            {
                ("string", "Formatter"): string.Formatter,
                ("operator", "attrgetter"): operator.attrgetter,
                ("operator", "methodcaller"): operator.methodcaller,
            }
        )
    elif layer == "membrane":
        cc.wrap = lambda value, cap=None, writable=False, **how: value
    elif layer == "builtins":
        original = cc.make_builtins

        def make_builtins(context):
            capsule_builtins = original(context)
            full = dict(vars(builtins))
            for key, value in capsule_builtins.items():
                if key.startswith("_ipycap"):  # keep the guard's hooks and the capsule mark
                    full[key] = value
            return full

        cc.make_builtins = make_builtins
    elif layer != "none":
        raise SystemExit(f"unknown layer {layer!r}")


def _child() -> None:
    layer = os.environ[ENV]
    sys.path.insert(0, str(ROOT))
    _remove(layer)
    from tests.redteam.harness import make_env, reached, run_capsule
    from tests.redteam.payloads import PAYLOADS

    results = {}
    for payload in PAYLOADS:
        with tempfile.TemporaryDirectory() as tmp:
            tmp_path = Path(tmp) / "t"
            (tmp_path / "outside").mkdir(parents=True)
            secret = tmp_path / "outside" / "secret.txt"
            token = "CANARY-" + os.urandom(8).hex()
            secret.write_text(token)
            env = make_env(tmp_path, (secret, token))
            try:
                outcome = run_capsule(payload, env)
                results[payload.name] = reached(outcome, env)
            except BaseException as e:  # noqa: BLE001 - a crash is not an escape
                results[payload.name] = False
                print(f"{payload.name}: harness error {e!r}", file=sys.stderr)
            finally:
                try:
                    os.close(env.fd)
                except OSError:
                    pass
    sys.stdout.write("\n@@MATRIX@@" + json.dumps(results) + "\n")


# -- the parent ------------------------------------------------------------------------------
def run_layers() -> dict:
    out, errors = {}, {}
    for layer in ("none",) + LAYERS:
        env = dict(os.environ, **{ENV: layer})
        proc = subprocess.run(
            [sys.executable, __file__],
            env=env,
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=900,
        )
        marker = proc.stdout.rfind("@@MATRIX@@")
        if marker < 0:
            raise SystemExit(f"layer {layer}: child failed\n{proc.stderr[-3000:]}")
        out[layer] = json.loads(proc.stdout[marker + len("@@MATRIX@@") :])
        errors[layer] = [line for line in proc.stderr.splitlines() if "harness error" in line]
        # a layer taken out by a stale monkeypatch makes payloads crash instead of escape:
        # the column would read "stopped" for every one of them
        extra = len(errors[layer]) - len(errors["none"])
        if extra > 0:
            shown = "\n".join(errors[layer][:5])
            raise SystemExit(
                f"layer {layer}: {extra} more harness errors than with all layers\n{shown}"
            )
    return out


def render(results: dict) -> str:
    sys.path.insert(0, str(ROOT))
    from tests.redteam.payloads import PAYLOADS

    groups: dict = defaultdict(list)
    for p in PAYLOADS:
        groups[p.row].append(p)
    lines = [
        f"Generated by `tools/layer_matrix.py` from {len(PAYLOADS)} payloads. Each column is a "
        "fresh interpreter with that one layer never installed; a cell counts the payloads of "
        "the row that then **reach their canary** (so that layer alone stood in their way). "
        "`-` means every payload of the row is still stopped by the remaining layers.",
        "",
        "| ESCAPES row | payloads | all layers | " + " | ".join(f"no {x}" for x in LAYERS) + " |",
        "|---|---|---|" + "---|" * len(LAYERS),
    ]
    single: list = []
    for row, payloads in groups.items():
        cells = []
        base = sum(results["none"][p.name] for p in payloads)
        for layer in LAYERS:
            n = sum(results[layer][p.name] for p in payloads)
            cells.append(str(n) if n else "-")
        lines.append(f"| {row} | {len(payloads)} | {base or '-'} | " + " | ".join(cells) + " |")
    for p in PAYLOADS:
        stoppers = [x for x in LAYERS if results[x][p.name]]
        if len(stoppers) == 1:
            single.append((p.name, stoppers[0]))
    lines += ["", f"Payloads stopped by one layer only ({len(single)}), findings to note:", ""]
    by_layer: dict = defaultdict(list)
    for name, layer in single:
        by_layer[layer].append(name)
    for layer in LAYERS:
        if by_layer[layer]:
            lines.append(f"- only the **{layer}**: " + ", ".join(f"`{n}`" for n in by_layer[layer]))
    escaped = [p.name for p in PAYLOADS if results["none"][p.name]]
    lines += ["", f"Payloads that escape with every layer installed: {escaped or 'none'}."]
    return "\n".join(lines)


def write(text: str, path: Path) -> None:
    doc = path.read_text(encoding="utf-8")
    start, end = doc.index(START) + len(START), doc.index(END)
    path.write_text(doc[:start] + "\n" + text + "\n" + doc[end:], encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--print", action="store_true", help="print only, do not write")
    parser.add_argument("--security", default=str(ROOT / "SECURITY.md"))
    args = parser.parse_args(argv)
    text = render(run_layers())
    print(text)
    if not args.print:
        write(text, Path(args.security))
    return 0


if __name__ == "__main__":
    if os.environ.get(ENV):
        _child()
    else:
        sys.exit(main())
