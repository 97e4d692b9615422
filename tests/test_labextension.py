"""The JupyterLab extension (labextension/) end to end: the hardened JupyterLab of ``make demo``
with the extension as installed in the venv, Debian's Chromium driven by Playwright.

Capsule-kernel cells make a grant and refusals; the Capabilities panel and the status item show
them, a target named like markup shows as text, revoking from the panel makes the next cell
refuse, capsule cells are marked, and the approval dialog answers the kernel's
"ipycap-approval: " prompts (a %%capsule import asks for real; a trusted cell of an ordinary
kernel stands in for the kernel's own prompt to try every answer) while other prompts keep the
stdin box.  The jest unit tests of the panel's model run
here too (npm test).  Screenshots go to artifacts/.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from .test_browser import (  # noqa: F401 - browser is a fixture
    ARTIFACTS,
    CHROMIUM,
    CURRENT,
    _free_port,
    _serve,
    browser,
)

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parent.parent
LAB = ROOT / "labextension"
#: A name that would run script if the panel rendered it as markup.
INJECTION = "<img src=x onerror=window.__ipycap_pwned=1>"
MARKER = "ipycap-approval: "
QUESTION = "Allow read access to 'data/notes.txt' (grant: read data/)? [y]es / [n]o / [a]lways this session"


def test_panel_model_unit_tests():
    """The jest suite of labextension/ (the panel's model and the approval protocol)."""
    run = subprocess.run(
        ["npm", "test", "--silent"], cwd=LAB, capture_output=True, text=True, timeout=240
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert re.search(r"Tests:\s+\d+ passed, \d+ total", run.stderr), run.stderr


def test_the_extension_is_installed():
    out = subprocess.run(
        [sys.executable, "-m", "jupyter", "labextension", "list"],
        capture_output=True,
        text=True,
        check=True,
    )
    line = next(ln for ln in (out.stdout + out.stderr).splitlines() if "ipycap" in ln)
    assert "enabled" in line and "OK" in line, line


def _notebook(kernel: str, cells: list[str]) -> nbformat.NotebookNode:
    nb = new_notebook()
    display = "Python 3 (capsule)" if kernel == "capsule" else "Python 3 (ipykernel)"
    nb.metadata["kernelspec"] = {"name": kernel, "display_name": display, "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    nb.cells = [new_code_cell(src) for src in cells]
    return nb


CAPSULE_CELLS = [
    "import json\njson.dumps({'a': 1})",
    "open('data/notes.txt').read()",
    "open('secret.txt').read()",
    f"open({INJECTION!r}, 'w')",
]
EXTENSION_CELLS = ["%load_ext ipycap", "%%capsule\nimport csv", "x = 1"]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """The demo's JupyterLab with a capsule kernelspec of its own; yields (url, notebooks dir)."""
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium)")
    root = tmp_path_factory.mktemp("labext")
    config = root / "capsule_kernel_config.py"
    # Prompts off: these tests read refusals in the panel (the dialog test fakes its prompt).
    config.write_text(
        f"c.CapsuleKernel.grants = ['read:data/', {'read:' + INJECTION!r}]\n"
        "c.CapsulePolicy.prompt = False\n"
    )
    env = dict(os.environ, JUPYTER_DATA_DIR=str(root / "home" / "data"), JUPYTER_PLATFORM_DIRS="1")
    subprocess.run(
        [sys.executable, "-m", "ipycap.kernel", "install", "--user", "--config", str(config)],
        env=env,
        check=True,
        capture_output=True,
    )
    port, token = _free_port(), os.urandom(12).hex()
    argv = ["ipycap.demo", "--no-browser", "--token", token]
    work = root / "notebooks"
    for base, _, tok in _serve(root, [*argv, "--notebook-dir", str(work)], port, token):
        (work / "data").mkdir()
        (work / "data" / "notes.txt").write_text("notes")
        (work / "secret.txt").write_text("secret")
        nbformat.write(_notebook("capsule", CAPSULE_CELLS), work / "capsule.ipynb")
        nbformat.write(_notebook("python3", EXTENSION_CELLS), work / "extension.ipynb")
        prompt = MARKER + QUESTION
        approval = [
            f"answer = input({prompt!r})\nprint('answer=' + answer)",
            "name = input('capsule asks: your name? ')\nprint('name=' + name)",
        ]
        nbformat.write(_notebook("python3", approval), work / "approval.ipynb")
        yield f"{base}/lab/tree/{{}}?token={tok}", work


@pytest.fixture(scope="module")
def page(lab, browser):  # noqa: F811 - the imported fixture
    pg = browser.new_page(viewport={"width": 1500, "height": 950})
    yield pg
    pg.close()


def _open(page, url: str) -> None:
    page.goto(url)
    page.wait_for_selector(f"{CURRENT} .jp-Cell", timeout=60_000)
    select = page.locator(".jp-Dialog .jp-mod-accept", has_text="Select")
    try:  # JupyterLab asks which kernel to start when it is unsure
        select.wait_for(timeout=3_000)
        select.click()
    except Exception:  # noqa: BLE001 - no dialog: the notebook's kernel started directly
        pass
    page.wait_for_selector(
        f"{CURRENT} .jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=60_000
    )


def _prompt(page, index: int) -> str:
    return page.locator(f"{CURRENT} .jp-CodeCell .jp-InputPrompt").nth(index).text_content()


def _run_cell(page, index: int, *, wait: bool = True) -> None:
    """Run code cell ``index`` (click its editor, Ctrl+Enter: run in place); wait for its new count."""
    cell = page.locator(f"{CURRENT} .jp-CodeCell").nth(index)
    before = _prompt(page, index)
    cell.locator(".jp-InputArea-editor").click()
    page.keyboard.press("Control+Enter")
    if wait:
        _wait_ran(page, index, before)


def _wait_ran(page, index: int, before: str) -> None:
    page.wait_for_function(
        """([index, before]) => {
            const panel = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
            const p = panel.querySelectorAll('.jp-CodeCell .jp-InputPrompt')[index];
            return p && /\\[\\d+\\]/.test(p.textContent) && p.textContent !== before;
        }""",
        arg=[index, before],
        timeout=60_000,
    )


def _append_and_run(page, code: str) -> int:
    """Add a code cell at the end with ``code`` and run it; returns its index."""
    cells = page.locator(f"{CURRENT} .jp-CodeCell")
    n = cells.count()
    cells.nth(n - 1).locator(".jp-InputArea-editor").click()
    page.keyboard.press("Escape")
    page.keyboard.press("b")
    page.wait_for_function(
        "n => document.querySelectorAll("
        "'.jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell').length > n",
        arg=n,
    )
    page.keyboard.press("Enter")
    page.keyboard.type(code)
    before = _prompt(page, n)
    page.keyboard.press("Control+Enter")
    _wait_ran(page, n, before)
    return n


def _output(page, index: int) -> str:
    return page.locator(f"{CURRENT} .jp-CodeCell").nth(index).locator(".jp-OutputArea").inner_text()


STATUS = re.compile(r"^capsule · (\d+) grants? · (\d+) refused$")


def _status(page) -> tuple[int, int]:
    item = page.locator(".ipycap-Status")
    item.wait_for(state="visible", timeout=20_000)
    m = STATUS.match(item.text_content().strip())
    assert m, item.text_content()
    return int(m.group(1)), int(m.group(2))


def _wait_status(page, pattern: str) -> None:
    """Wait until the status item's text matches the JS regex ``pattern``."""
    try:
        page.wait_for_function(
            "p => new RegExp(p).test(document.querySelector('.ipycap-Status')?.textContent || '')",
            arg=pattern,
            timeout=20_000,
        )
    except Exception:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "labextension-failed.png"))
        status = page.evaluate("document.querySelector('.ipycap-Status')?.textContent")
        raise AssertionError(f"status item {status!r} never matched {pattern!r}") from None


def _row(page, target_text: str):
    return page.locator("#ipycap-capabilities li.ipycap-Grant", has_text=target_text)


def test_panel_shows_grants_and_refusals_and_revokes(lab, page):
    url, work = lab
    _open(page, url.format("capsule.ipynb"))
    for i in range(len(CAPSULE_CELLS)):
        _run_cell(page, i)
    assert "notes" in _output(page, 0 + 1)
    assert "was not granted" in _output(page, 2)
    # Every cell of the capsule kernel is marked as a capsule.
    cells = page.locator(f"{CURRENT} .jp-CodeCell")
    assert cells.count() == len(CAPSULE_CELLS)
    assert page.locator(f"{CURRENT} .jp-CodeCell.ipycap-capsuleCell").count() == cells.count()
    # The status item counts: read data/, read <img...>, import json; two refusals.
    _wait_status(page, "· 2 refused$")
    grants, refused = _status(page)
    assert refused == 2
    page.locator(".ipycap-Status").click()
    panel = page.locator("#ipycap-capabilities")
    panel.wait_for(state="visible", timeout=10_000)
    active = panel.locator("li.ipycap-Grant-active")
    assert active.count() == grants >= 3
    data_row = _row(page, str(work / "data"))
    assert "config" in data_row.text_content() and "session" in data_row.text_content()
    assert data_row.locator(".ipycap-Grant-uses").text_content() == "1"
    json_row = _row(page, "json").filter(has_text="import")
    assert "default" in json_row.text_content()
    # The refusal and the exact way to grant it.
    refusal = panel.locator(".ipycap-Refusal", has_text="secret.txt")
    assert "was not granted" in refusal.text_content()
    how = refusal.locator(".ipycap-Refusal-how code").text_content()
    # Prompts are off in this kernel (the fixture's config): the one way left is its config.
    assert how == "c.CapsuleKernel.grants = ['read:secret.txt'] in the kernel's configuration"
    # Markup in a target (a config grant) and in a refused module name shows as text.
    assert _row(page, INJECTION).count() == 1
    assert panel.locator(".ipycap-Refusal", has_text=INJECTION).count() == 1
    assert panel.locator("img, script, [onerror]").count() == 0
    assert page.evaluate("window.__ipycap_pwned === undefined")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "labextension-panel.png"))
    panel.screenshot(path=str(ARTIFACTS / "labextension-panel-only.png"))

    # Revoke import json from the panel: the next cell that imports it is refused.
    json_row.locator("button.ipycap-Revoke").click()
    page.wait_for_function(
        "() => [...document.querySelectorAll('#ipycap-capabilities li.ipycap-Grant-revoked')]"
        ".some(r => r.querySelector('.ipycap-Grant-target').textContent === 'json')",
        timeout=20_000,
    )
    assert "revoked cap-" in panel.locator(".ipycap-Panel-note").text_content()
    assert _status(page) == (grants - 1, 2)
    index = _append_and_run(page, "import json")
    assert "revoked in this session" in _output(page, index)
    _wait_status(page, "· 3 refused$")
    assert (
        page.locator(f"{CURRENT} .jp-CodeCell")
        .nth(index)
        .get_attribute("class")
        .count("ipycap-capsuleCell")
    )


def test_dark_theme_screenshot(lab, page):
    """The panel in JupyterLab Dark (the CSS uses only JupyterLab's variables)."""
    page.locator(".lm-MenuBar-itemLabel", has_text="Settings").first.click()
    page.locator(".lm-Menu-itemLabel", has_text="Theme").first.hover()
    page.locator(".lm-Menu-itemLabel", has_text="JupyterLab Dark").first.click()
    page.wait_for_function("() => document.body.dataset.jpThemeLight === 'false'", timeout=20_000)
    page.wait_for_timeout(500)
    panel = page.locator("#ipycap-capabilities")
    panel.wait_for(state="visible", timeout=10_000)
    color = panel.evaluate("n => getComputedStyle(n).backgroundColor")
    assert color not in ("rgb(255, 255, 255)", "rgba(0, 0, 0, 0)"), color
    page.screenshot(path=str(ARTIFACTS / "labextension-panel-dark.png"))
    panel.screenshot(path=str(ARTIFACTS / "labextension-panel-dark-only.png"))
    page.locator(".lm-MenuBar-itemLabel", has_text="Settings").first.click()
    page.locator(".lm-Menu-itemLabel", has_text="Theme").first.hover()
    page.locator(".lm-Menu-itemLabel", has_text="JupyterLab Light").first.click()
    page.wait_for_function("() => document.body.dataset.jpThemeLight === 'true'")


def test_extension_marks_capsule_cells_only(lab, page):
    url, _ = lab
    _open(page, url.format("extension.ipynb"))
    _run_cell(page, 0)
    # import csv lies within the ceiling and JupyterLab sends allow_stdin: the kernel asks
    # (from the capsule thread), the dialog shows the question, Deny makes it a refusal.
    before = _prompt(page, 1)
    _run_cell(page, 1, wait=False)
    dialog = page.locator(".jp-Dialog.ipycap-Approval")
    dialog.wait_for(state="visible", timeout=30_000)
    assert "Allow import of 'csv' (grant: import csv)?" in dialog.text_content()
    dialog.locator("button", has_text="Deny").click()
    _wait_ran(page, 1, before)
    assert "import of 'csv' was not granted" in _output(page, 1)
    _run_cell(page, 2)
    _wait_status(page, "^capsule · \\d+ grants? · 1 refused$")
    marked = page.locator(f"{CURRENT} .jp-CodeCell.ipycap-capsuleCell")
    assert marked.count() == 1 and "%%capsule" in marked.first.text_content()
    panel = page.locator("#ipycap-capabilities")
    assert "%%capsule cells of this kernel" in panel.text_content()
    how = panel.locator(".ipycap-Refusal", has_text="csv").locator("code").text_content()
    assert how == "%%capsule --allow-import csv"


def test_approval_dialog_allows_and_denies(lab, page):
    url, _ = lab
    _open(page, url.format("approval.ipynb"))
    dialog = page.locator(".jp-Dialog.ipycap-Approval")
    for button, answer in (("Allow this session", "a"), ("Deny", "n"), ("Allow once", "y")):
        before = _prompt(page, 0)
        _run_cell(page, 0, wait=False)
        dialog.wait_for(state="visible", timeout=30_000)
        text = dialog.text_content()
        assert "Allow read access to 'data/notes.txt' (grant: read data/)?" in text
        assert "[y]es" not in text  # the typed-answer hint is replaced by the buttons
        assert dialog.locator(".ipycap-Approval-grant code").text_content() == "read data/"
        # The dialog replaces the stdin box: no input field in the output area.
        assert page.locator(f"{CURRENT} .jp-Stdin").count() == 0
        if answer == "a":
            page.screenshot(path=str(ARTIFACTS / "labextension-approval.png"))
        dialog.locator("button", has_text=button).click()
        _wait_ran(page, 0, before)
        assert _output(page, 0).strip() == f"answer={answer}"
        assert dialog.count() == 0
    # Escape denies.
    before = _prompt(page, 0)
    _run_cell(page, 0, wait=False)
    dialog.wait_for(state="visible", timeout=30_000)
    page.keyboard.press("Escape")
    _wait_ran(page, 0, before)
    assert _output(page, 0).strip() == "answer=n"
    # Any other prompt (a capsule's own input()) keeps the plain stdin box.
    before = _prompt(page, 1)
    _run_cell(page, 1, wait=False)
    stdin = page.locator(f"{CURRENT} .jp-Stdin-input")
    stdin.wait_for(state="visible", timeout=30_000)
    assert dialog.count() == 0
    stdin.fill("ada")
    stdin.press("Enter")
    _wait_ran(page, 1, before)
    assert "name=ada" in _output(page, 1)
