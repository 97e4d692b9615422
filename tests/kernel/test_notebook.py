"""A notebook of ordinary idioms executed with nbclient under the capsule kernel."""

from __future__ import annotations

import nbformat
import pytest
from nbclient import NotebookClient

from .conftest import WORKDIR

pytestmark = pytest.mark.kernel

CELLS = [
    "import math\nfrom IPython.display import display, clear_output, Markdown\nimport sys",
    "values = [math.sqrt(n) for n in range(5)]\nround(sum(values), 3)",
    "print('to stderr', file=sys.stderr)\ndisplay(Markdown('**bold**'))",
    "class Point:\n    def __init__(self, x):\n        self.x = x\nPoint(3).x",
    "%capsule list",
]


@pytest.mark.parametrize("kind", ["plain", "confined"])
def test_notebook_runs_under_capsule_kernel(kernelspecs, kind):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in CELLS]
    NotebookClient(
        nb, kernel_name=kernelspecs[kind], timeout=60, resources={"metadata": {"path": WORKDIR}}
    ).execute()
    outputs = [c.outputs for c in nb.cells]
    assert outputs[1][0]["data"]["text/plain"] == "6.146"
    assert outputs[2][0]["name"] == "stderr"
    assert outputs[3][0]["data"]["text/plain"] == "3"
    assert "OS confinement" in outputs[4][0]["data"]["text/plain"]
