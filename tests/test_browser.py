"""End to end in a real browser: the hardened JupyterLab of ``make demo``, Debian's Chromium.

JupyterLab runs ``python -m ipycap.demo`` (the same hardened configuration as the demo) on
loopback, in a temporary folder holding a copy of ``01-capabilities.ipynb`` and a notebook of
output attacks; Chromium, driven by Playwright, runs every cell of both.  We assert what a
learner sees (the registry rendered as a table with rows, a refusal message) and that no
output, from a capsule or (through the server's hardening) even from a trusted cell, runs
script in the page: each attack tries to change ``document.title`` and set a window global.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from ipycap.demo import JAVASCRIPT_RENDERER, content_security_policy

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = ROOT / "artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
MARK = "pwned"
#: The notebook in the active tab (an earlier notebook stays in the DOM, hidden).
CURRENT = ".jp-NotebookPanel:not(.lm-mod-hidden)"

#: Each attack tries to change document.title and set window.__ipycap_pwned.
_JS = "document.title='{tag}-" + MARK + "'; window.__ipycap_pwned='{tag}'"
CAPSULE_ATTACKS = {
    "script": f'HTML("<script>{_JS.format(tag="script")}</script>")',
    "img-onerror": f'HTML("<img src=x onerror=\\"{_JS.format(tag="img")}\\">")',
    "svg-onload": f'HTML("<svg onload=\\"{_JS.format(tag="svg")}\\"></svg>")',
    "svg-mime": (
        'SVG(\'<svg xmlns="http://www.w3.org/2000/svg" onload="'
        + _JS.format(tag="svgmime").replace("'", "&apos;")
        + '"><circle r="5"/></svg>\')'
    ),
    "markdown-html": f'Markdown("hello <img src=x onerror=\\"{_JS.format(tag="md")}\\">")',
    "javascript": f'Javascript("{_JS.format(tag="js")}")',
}


def _attack_notebook() -> nbformat.NotebookNode:
    nb = new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }
    nb.metadata["language_info"] = {"name": "python"}
    cells = ["%load_ext ipycap"]
    for expr in CAPSULE_ATTACKS.values():
        # Once through display(), once as the cell's result (the display hook's path).
        cells.append(
            "%%capsule\nfrom IPython.display import HTML, Javascript, Markdown, SVG, display\n"
            f"display({expr})\n{expr}"
        )
    # Trusted cells: the capsule's output filter does not apply here; the server's hardening
    # (JavaScript renderer disabled, CSP without inline script) must stop these.
    cells.append(
        "from IPython.display import HTML, Javascript, display\n"
        f'display(Javascript("{_JS.format(tag="trusted-js")}"))\n'
        f'HTML("<script>{_JS.format(tag="trusted-script")}</script>'
        f'<img src=x onerror=\\"{_JS.format(tag="trusted-img")}\\">")'
    )
    cells.append('print("attacks " + "done")')
    nb.cells = [new_code_cell(src) for src in cells]
    return nb


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab as ``make demo`` runs it, on a copy of the notebooks; yields (url, port)."""
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium)")
    root = tmp_path_factory.mktemp("lab")
    work = root / "notebooks"
    work.mkdir()
    shutil.copy(ROOT / "notebooks" / "01-capabilities.ipynb", work)
    nbformat.write(_attack_notebook(), work / "attacks.ipynb")
    home = root / "home"
    env = dict(os.environ)
    env.update(
        HOME=str(home),
        IPYTHONDIR=str(home / ".ipython"),
        JUPYTER_CONFIG_DIR=str(home / ".jupyter"),
        JUPYTER_DATA_DIR=str(home / "data"),
        JUPYTER_RUNTIME_DIR=str(home / "runtime"),
        JUPYTER_PLATFORM_DIRS="1",
    )
    env.pop("JUPYTER_PATH", None)
    port, token = _free_port(), os.urandom(12).hex()
    log = open(root / "server.log", "w")  # noqa: SIM115 - closed below
    server = subprocess.Popen(
        [sys.executable, "-m", "ipycap.demo", "--no-browser", "--port", str(port)]
        + ["--notebook-dir", str(work), "--token", token],
        env=env,
        cwd=str(work),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    log.flush()
                    pytest.fail("JupyterLab did not start:\n" + (root / "server.log").read_text())
                time.sleep(0.3)
        yield base, port, token
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


@pytest.fixture(scope="module")
def page(lab):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            pg = browser.new_page(viewport={"width": 1400, "height": 1000})
            yield pg
        finally:
            browser.close()


def _open_and_run_all(page, base: str, token: str, name: str) -> None:
    page.goto(f"{base}/lab/tree/{name}?token={token}")
    page.wait_for_selector(f"{CURRENT} .jp-Cell", timeout=60_000)
    select = page.locator(".jp-Dialog .jp-mod-accept", has_text="Select")
    try:  # JupyterLab asks which kernel to start when it is unsure; the notebook's own is fine
        select.wait_for(timeout=3_000)
        select.click()
    except Exception:  # noqa: BLE001 - no dialog: the notebook's kernel started directly
        pass
    # The kernel must be idle before "Run All" (the status shows in the toolbar).
    page.wait_for_selector(
        f"{CURRENT} .jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=60_000
    )
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
    # Done when every code cell shows an execution count (no "[ ]" or "[*]").
    try:
        _wait_all_ran(page)
    except Exception:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"browser-failed-{name}.png"))
        raise


def _wait_all_ran(page) -> None:
    page.wait_for_function(
        """() => {
            const panel = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
            if (!panel) return false;
            const prompts = [...panel.querySelectorAll('.jp-CodeCell .jp-InputPrompt')];
            return prompts.length > 0 && prompts.every(p => /\\[\\d+\\]/.test(p.textContent));
        }""",
        timeout=90_000,
    )


def test_server_sends_the_hardening(lab):
    base, port, token = lab
    with urllib.request.urlopen(f"{base}/lab?token={token}") as resp:
        csp = resp.headers["Content-Security-Policy"]
        page = resp.read().decode()
    assert csp == content_security_policy(port)
    assert "'unsafe-inline'" not in csp.split("script-src", 1)[1].split(";", 1)[0]
    assert JAVASCRIPT_RENDERER in page.split('"disabledExtensions"', 1)[1].split("]", 1)[0]


def test_lesson_01_runs_in_the_browser(lab, page):
    base, _, token = lab
    _open_and_run_all(page, base, token, "01-capabilities.ipynb")
    table = page.locator(f"{CURRENT} table.ipycap-registry").first
    table.wait_for(state="attached", timeout=10_000)
    table.scroll_into_view_if_needed()
    table.wait_for(state="visible", timeout=10_000)
    assert table.locator("tbody tr").count() >= 3
    text = table.text_content()
    assert "import" in text and "acct" in text and "revoked" in text
    refusal = page.locator(
        f"{CURRENT} .jp-OutputArea-output", has_text="refused by the builtins"
    ).first
    refusal.scroll_into_view_if_needed()
    assert refusal.is_visible()
    assert "It cannot be granted" in refusal.text_content()
    table.evaluate("t => t.scrollIntoView({block: 'center'})")
    page.wait_for_timeout(500)  # cells off screen render lazily (content-visibility)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "browser-01.png"))


def test_outputs_cannot_run_script(lab, page):
    base, _, token = lab
    _open_and_run_all(page, base, token, "attacks.ipynb")
    done = page.locator(f"{CURRENT} .jp-OutputArea-output", has_text="attacks done").first
    done.wait_for(state="attached", timeout=10_000)
    done.scroll_into_view_if_needed()
    page.wait_for_timeout(1500)  # give an onerror/onload handler time to fire, if it could
    assert MARK not in page.title()
    assert page.evaluate("window.__ipycap_pwned === undefined")
    # Not vacuous: every attack cell ran and showed something (the filtered text/plain).
    cells = page.locator(f"{CURRENT} .jp-CodeCell")
    for i in range(1, 1 + len(CAPSULE_ATTACKS)):
        outputs = cells.nth(i).locator(".jp-OutputArea-output")
        assert outputs.count() >= 1, f"attack cell {i} produced no output"
        text = cells.nth(i).text_content()
        assert "Error" not in text, text
    # No capsule output reached the page as markup at all: only the filtered text/plain.
    # (The trusted cell's <script>/<img onerror> are in the DOM; the CSP keeps them inert,
    # which the title and global assertions above verify.)
    for i in range(1, 1 + len(CAPSULE_ATTACKS)):
        for out in cells.nth(i).locator(".jp-OutputArea-output").all():
            assert out.locator("script, img, svg, [onerror], [onload]").count() == 0, (
                out.inner_html()
            )
            assert "IPython.core.display" in out.text_content()
    trusted = cells.nth(1 + len(CAPSULE_ATTACKS)).locator(".jp-OutputArea")
    assert trusted.locator("script").count() >= 1  # it did reach the page: CSP held
