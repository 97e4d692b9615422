"""The extension in Jupyter Notebook 7 (the same prebuilt extension as in JupyterLab: Notebook 7
loads JupyterLab 4 extensions), Debian's Chromium driven by Playwright.

A capsule-kernel notebook opened in Notebook 7: its cells are marked as capsules, the kernel's
moment-of-access prompt shows as the approval dialog (denied: the cell is refused), and the
Capabilities panel, opened from View > Right Sidebar, lists the grants and the refusal with
the way to grant it, and revoking from it makes the next cell refuse.  (The status-bar item is
JupyterLab's only: Notebook 7 has no status bar; the panel's own status line has the counts.)
"""

from __future__ import annotations

import os
import subprocess
import sys

import nbformat
import pytest

from .test_browser import (  # noqa: F401 - browser is a fixture
    ARTIFACTS,
    CHROMIUM,
    CURRENT,
    _free_port,
    _serve,
    browser,
)
from .test_labextension import (
    _append_and_run,
    _notebook,
    _open,
    _output,
    _prompt,
    _row,
    _run_cell,
    _wait_ran,
)

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]

CELLS = [
    "import json\njson.dumps({'a': 1})",
    "open('data/notes.txt').read()",
    "open('secret.txt').read()",
]


@pytest.fixture(scope="module")
def notebook7(tmp_path_factory):
    """Notebook 7 with a capsule kernelspec of its own (prompts on, the default); yields the
    URL of capsule.ipynb."""
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium)")
    root = tmp_path_factory.mktemp("notebook7")
    config = root / "capsule_kernel_config.py"
    config.write_text("c.CapsuleKernel.grants = ['read:data/']\n")
    env = dict(os.environ, JUPYTER_DATA_DIR=str(root / "home" / "data"), JUPYTER_PLATFORM_DIRS="1")
    subprocess.run(
        [sys.executable, "-m", "ipycap.kernel", "install", "--user", "--config", str(config)],
        env=env,
        check=True,
        capture_output=True,
    )
    port, token = _free_port(), os.urandom(12).hex()
    work = root / "notebooks"
    argv = ["notebook", "--no-browser", "--ServerApp.ip=127.0.0.1", "--ServerApp.port_retries=0"]
    argv += [f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={work}"]
    if os.geteuid() == 0:
        argv.append("--ServerApp.allow_root=True")
    for base, _, tok in _serve(root, argv, port, token):
        (work / "data").mkdir()
        (work / "data" / "notes.txt").write_text("notes")
        (work / "secret.txt").write_text("secret")
        nbformat.write(_notebook("capsule", CELLS), work / "capsule.ipynb")
        yield f"{base}/notebooks/capsule.ipynb?token={tok}"


def test_notebook7_marks_cells_asks_and_shows_the_panel(notebook7, browser):  # noqa: F811
    page = browser.new_page(viewport={"width": 1400, "height": 950})
    try:
        _open(page, notebook7)
        config = page.evaluate(
            "JSON.parse(document.getElementById('jupyter-config-data').textContent)"
        )
        assert config["appName"] == "Jupyter Notebook", config["appName"]  # not JupyterLab
        _run_cell(page, 0)
        _run_cell(page, 1)
        assert "notes" in _output(page, 1)
        # Outside the grants, within the ceiling: the kernel asks; the dialog, denied.
        before = _prompt(page, 2)
        _run_cell(page, 2, wait=False)
        dialog = page.locator(".jp-Dialog.ipycap-Approval")
        dialog.wait_for(state="visible", timeout=30_000)
        assert (
            "Allow read access to 'secret.txt' (grant: read secret.txt)?" in dialog.text_content()
        )
        dialog.locator("button", has_text="Deny").click()
        _wait_ran(page, 2, before)
        assert "was not granted" in _output(page, 2)
        assert page.locator(f"{CURRENT} .jp-Stdin").count() == 0
        # Every cell of the capsule kernel is marked.
        cells = page.locator(f"{CURRENT} .jp-CodeCell")
        assert cells.count() == len(CELLS)
        assert page.locator(f"{CURRENT} .jp-CodeCell.ipycap-capsuleCell").count() == len(CELLS)
        # The panel, from Notebook 7's View menu.
        panel = page.locator("#ipycap-capabilities")
        assert not panel.is_visible()
        page.locator(".lm-MenuBar-itemLabel", has_text="View").first.click()
        page.locator(".lm-Menu-itemLabel", has_text="Right Sidebar").first.hover()
        page.locator(".lm-Menu-itemLabel", has_text="Show Capabilities (ipycap)").first.click()
        panel.wait_for(state="visible", timeout=10_000)
        page.wait_for_function(
            "() => document.querySelectorAll('#ipycap-capabilities .ipycap-Refusal').length > 0",
            timeout=20_000,
        )
        data_row = _row(page, "data")
        assert data_row.count() == 1 and "config" in data_row.text_content()
        assert data_row.locator(".ipycap-Grant-uses").text_content() == "1"
        assert "default" in _row(page, "json").filter(has_text="import").text_content()
        refusal = panel.locator(".ipycap-Refusal", has_text="secret.txt")
        assert "was not granted" in refusal.text_content()
        how = refusal.locator(".ipycap-Refusal-how code").text_content()
        assert how == "%capsule request read secret.txt (the human is asked to approve)"
        # No status bar here: the panel's own status line carries the counts.
        status = panel.locator(".ipycap-Panel-status").text_content()
        assert status == "capsule · 2 grants · 1 refused", status
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "notebook7-panel.png"))
        # Revoke import json from the panel: the next cell that imports it is refused.
        _row(page, "json").filter(has_text="import").locator("button.ipycap-Revoke").click()
        page.wait_for_function(
            "() => [...document.querySelectorAll('#ipycap-capabilities li.ipycap-Grant-revoked')]"
            ".some(r => r.querySelector('.ipycap-Grant-target').textContent === 'json')",
            timeout=20_000,
        )
        index = _append_and_run(page, "import json")
        assert "revoked in this session" in _output(page, index)
    finally:
        page.close()
