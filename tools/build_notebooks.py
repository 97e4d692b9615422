"""Write the teaching notebooks (notebooks/*.ipynb) from the lessons in tools/lessons/.

The lessons are Python modules that list their cells (prose and code); keeping them as code
makes review diffs readable and the cell ids stable.  The .ipynb files are the committed
artifact: after changing a lesson, run this script and then ``make notebooks`` (which
executes them and stores their outputs).

    python tools/build_notebooks.py            # write every notebook (without outputs)
    python tools/build_notebooks.py 01 05      # only some
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ROOT = Path(__file__).resolve().parent.parent
LESSONS = ROOT / "tools" / "lessons"
NOTEBOOKS = ROOT / "notebooks"

KERNELS = {
    "python3": {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"},
    "capsule": {"name": "capsule", "display_name": "Python 3 (capsule)", "language": "python"},
}


def md(text: str) -> dict:
    """A prose cell (leading indentation and the first/last blank lines removed)."""
    return {"kind": "markdown", "source": _dedent(text)}


def code(source: str, *tags: str, id: str | None = None) -> dict:  # noqa: A002
    """A code cell; tags: ``check`` (outputs asserted by the tests), ``raises-exception``.

    ``id`` names the cell for the tests (the cell id becomes ``n<NN>-<id>``); other cells
    are numbered by position."""
    return {"kind": "code", "source": _dedent(source), "tags": list(tags), "id": id}


def _dedent(text: str) -> str:
    import textwrap

    return textwrap.dedent(text).strip("\n")


def build(lesson_path: Path) -> nbformat.NotebookNode:
    spec = importlib.util.spec_from_file_location(lesson_path.stem, lesson_path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[lesson_path.stem] = module
    spec.loader.exec_module(module)
    nb = new_notebook()
    nb.metadata["kernelspec"] = KERNELS[module.KERNEL]
    nb.metadata["language_info"] = {"name": "python"}
    stem = module.NAME.split("-", 1)[0]
    for i, cell in enumerate(module.CELLS):
        ident = f"n{stem}-{cell.get('id') or f'{i:02d}'}"
        if cell["kind"] == "markdown":
            nb.cells.append(new_markdown_cell(cell["source"], id=ident))
        else:
            c = new_code_cell(cell["source"], id=ident)
            if cell["tags"]:
                c.metadata["tags"] = cell["tags"]
            nb.cells.append(c)
    nbformat.validate(nb)
    return nb


def lessons(selected=()) -> list[Path]:
    paths = sorted(LESSONS.glob("[0-9][0-9]_*.py"))
    if selected:
        paths = [p for p in paths if p.name[:2] in selected]
    return paths


def main(argv: list[str]) -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    NOTEBOOKS.mkdir(exist_ok=True)
    for path in lessons(argv):
        nb = build(path)
        name = sys.modules[path.stem].NAME
        target = NOTEBOOKS / f"{name}.ipynb"
        nbformat.write(nb, target)
        print(f"wrote {target.relative_to(ROOT)} ({len(nb.cells)} cells)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
