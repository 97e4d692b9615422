"""Re-execute the teaching notebooks and store (or check) their normalised outputs.

    python tools/run_notebooks.py --write        # execute and store outputs (make notebooks)
    python tools/run_notebooks.py --check        # execute and fail if stored outputs differ
    python tools/run_notebooks.py --write 01 05  # only some notebooks

01–05 run under the IPython kernel (``python3``), 06 under the capsule kernel.  Both
kernelspecs are installed into a temporary prefix first (so this works on a fresh checkout
without touching the user's Jupyter folders), and every kernel runs with HOME, IPYTHONDIR and
JUPYTER_* pointing into that temporary tree.

Outputs are normalised so a fresh run compares equal: cell ids come from the notebook,
execution timing metadata is dropped, stream outputs are coalesced, and memory addresses,
temporary paths, the repository and Python install paths, times and id-derived hashes are
replaced by placeholders (see :func:`normalise_text`).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import os
import re
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Iterator
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
#: Which kernel runs which notebook (everything else: python3).
KERNEL_OF = {"06-capsule-kernel": "capsule"}
TIMEOUT = 120

_TMP = re.escape(tempfile.gettempdir().rstrip("/"))
_PATTERNS = [
    (re.compile(r"0x[0-9a-fA-F]{4,}"), "0x…"),
    # Read as what they stand for, not as template slots: a lesson's scratch folder keeps
    # its prefix ('/tmp/ipycap-lesson-…'), a clock time reads 'hh:mm:ss'.
    (re.compile(_TMP + r"/((?:[A-Za-z]+-)+)?[^\s'\"<>/]+"), r"/tmp/\1…"),
    (
        re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(\.\d+)?([+-]\d\d:?\d\d|Z)?"),
        "yyyy-mm-dd hh:mm:ss",
    ),
    (re.compile(r"(?<![\w.])\d{10}\.\d+"), "<epoch seconds>"),
    (re.compile(r"(?<![\w.])\d\d:\d\d:\d\d(?![\w.])"), "hh:mm:ss"),
    (re.compile(r"(?<![\w.])-?\d{10,}(?![\w.])"), "<int>"),  # id-derived hashes
    (re.compile(r"\b(pid|PID)[ =:]+\d+"), r"\1 <pid>"),
]


def _path_replacements() -> list[tuple[str, str]]:
    paths = {
        str(ROOT): "<repo>",
        sysconfig.get_paths()["purelib"]: "<site-packages>",
        sysconfig.get_paths()["stdlib"]: "<stdlib>",
        sys.prefix: "<prefix>",
    }
    return sorted(paths.items(), key=lambda kv: -len(kv[0]))


def normalise_text(text: str) -> str:
    """Replace what differs between two runs of the same notebook by placeholders."""
    for path, placeholder in _path_replacements():
        text = text.replace(path, placeholder)
    for pattern, placeholder in _PATTERNS:
        text = pattern.sub(placeholder, text)
    return text


def _normalise_value(value):
    if isinstance(value, str):
        return normalise_text(value)
    if isinstance(value, list):
        return [_normalise_value(v) for v in value]
    if isinstance(value, dict):
        return {k: _normalise_value(v) for k, v in value.items()}
    return value


_PLACEHOLDER_TAGS = re.compile(r"<(epoch seconds|int|pid|repo|site-packages|stdlib|prefix)>")


def _normalise_mime(mime: str, text: str) -> str:
    """Normalise one output representation; in HTML the placeholders are escaped, or a
    browser would take ``<repo>`` for an unknown element and show nothing."""
    text = normalise_text(text)
    if mime == "text/html":
        text = _PLACEHOLDER_TAGS.sub(r"&lt;\1&gt;", text)
    return text


def normalise_outputs(outputs: list) -> list:
    """Coalesce streams and normalise every text in a cell's outputs."""
    merged: list = []
    for out in outputs:
        out = copy.deepcopy(out)
        if (
            out.get("output_type") == "stream"
            and merged
            and merged[-1].get("output_type") == "stream"
            and merged[-1].get("name") == out.get("name")
        ):
            merged[-1]["text"] += out["text"]
            continue
        merged.append(out)
    result = []
    for out in merged:
        if "text" in out:
            out["text"] = normalise_text("".join(out["text"]))
        if "data" in out:
            out["data"] = {
                k: _normalise_mime(k, "".join(v)) if isinstance(v, (str, list)) else v
                for k, v in out["data"].items()
            }
        if "evalue" in out:
            out["evalue"] = normalise_text(out["evalue"])
        if "traceback" in out:
            out["traceback"] = [normalise_text(line) for line in out["traceback"]]
        result.append(nbformat.from_dict(out))
    return result


def comparable(outputs: list) -> list:
    """What must match between the stored and a fresh run: no tracebacks (line numbers of
    library code change with every edit), no ANSI colours."""
    result = []
    for out in normalise_outputs(outputs):
        out = dict(out)
        out.pop("traceback", None)
        out.pop("execution_count", None)
        result.append(_normalise_value(out))
    return result


def normalise_notebook(nb) -> None:
    """In place: outputs normalised, timing metadata removed, execution counts kept."""
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        cell.metadata.pop("collapsed", None)
        cell.metadata.pop("scrolled", None)
        if cell.cell_type == "code":
            cell.outputs = normalise_outputs(cell.outputs)


# -- kernels ------------------------------------------------------------------------------------
@contextlib.contextmanager
def kernel_environment() -> Iterator[dict]:
    """A temporary prefix with both kernelspecs, and an isolated environment for kernels.

    Yields the environment variables to use while executing."""
    with tempfile.TemporaryDirectory(prefix="ipycap-nbrun-") as tmp:
        prefix = os.path.join(tmp, "prefix")
        home = os.path.join(tmp, "home")
        env = dict(os.environ)
        env.update(
            HOME=home,
            IPYTHONDIR=os.path.join(home, ".ipython"),
            JUPYTER_CONFIG_DIR=os.path.join(home, ".jupyter"),
            JUPYTER_DATA_DIR=os.path.join(prefix, "share", "jupyter"),
            JUPYTER_RUNTIME_DIR=os.path.join(home, "runtime"),
            JUPYTER_PLATFORM_DIRS="1",
            PYDEVD_DISABLE_FILE_VALIDATION="1",
        )
        env.pop("JUPYTER_PATH", None)
        for d in (home, env["IPYTHONDIR"], env["JUPYTER_CONFIG_DIR"], env["JUPYTER_RUNTIME_DIR"]):
            os.makedirs(d, exist_ok=True)
        py = sys.executable
        subprocess.run(
            [py, "-m", "ipykernel", "install", "--prefix", prefix, "--name", "python3"],
            check=True,
            env=env,
            capture_output=True,
        )
        subprocess.run(
            [py, "-m", "ipycap.kernel", "install", "--prefix", prefix],
            check=True,
            env=env,
            capture_output=True,
        )
        # jupyter_client looks in {JUPYTER_DATA_DIR}/kernels first: both specs are there.
        yield env


@contextlib.contextmanager
def _patched_environ(env: dict) -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def execute(path: Path, env: dict, *, timeout: int = TIMEOUT):
    """Execute one notebook with nbclient (cells tagged ``raises-exception`` may fail)."""
    from jupyter_client.kernelspec import KernelSpecManager
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    kernel = KERNEL_OF.get(path.stem, "python3")
    with _patched_environ(env), tempfile.TemporaryDirectory(prefix="ipycap-nbcwd-") as cwd:
        ksm = KernelSpecManager()
        if kernel not in ksm.find_kernel_specs():
            raise RuntimeError(f"kernelspec {kernel!r} is not installed for {path.name}")
        workdir = str(NOTEBOOKS) if kernel == "python3" else cwd
        client = NotebookClient(
            nb,
            timeout=timeout,
            kernel_name=kernel,
            kernel_spec_manager=ksm,
            resources={"metadata": {"path": workdir}},
            record_timing=False,
            allow_errors=False,
        )
        client.execute()
    normalise_notebook(nb)
    return nb


def notebooks(selected=()) -> list[Path]:
    paths = sorted(NOTEBOOKS.glob("[0-9][0-9]-*.ipynb"))
    if selected:
        paths = [p for p in paths if p.name[:2] in selected]
    return paths


def diff_cells(stored, fresh) -> list[str]:
    """Ids of code cells whose comparable outputs differ."""
    bad = []
    for a, b in zip(stored.cells, fresh.cells, strict=True):
        if a.cell_type == "code" and comparable(a.outputs) != comparable(b.outputs):
            bad.append(a.id)
    return bad


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help="store the fresh outputs")
    mode.add_argument("--check", action="store_true", help="fail if stored outputs differ")
    parser.add_argument("which", nargs="*", help="notebook numbers (default: all)")
    args = parser.parse_args(argv)
    status = 0
    with kernel_environment() as env:
        for path in notebooks(args.which):
            fresh = execute(path, env)
            if args.check:
                stored = nbformat.read(path, as_version=4)
                bad = diff_cells(stored, fresh)
                if bad:
                    status = 1
                    print(f"{path.name}: stored outputs differ in cells {', '.join(bad)}")
                else:
                    print(f"{path.name}: outputs match")
            else:
                nbformat.write(fresh, path)
                print(f"{path.name}: executed and stored")
    return status


if __name__ == "__main__":
    raise SystemExit(main())
