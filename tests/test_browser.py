"""End to end in a real browser: the hardened JupyterLab of ``make demo``, Debian's Chromium.

JupyterLab runs ``python -m ipycap.demo`` (the same hardened configuration as the demo) on
loopback, in a temporary folder holding a copy of ``01-capabilities.ipynb`` and a notebook of
output attacks; Chromium, driven by Playwright, runs every cell of both.  We assert what a
learner sees (the registry rendered as a table with rows, a refusal message) and that no
output, from a capsule or (through the server's hardening) even from a trusted cell, runs
script in the page: each attack tries to change ``document.title`` and set a window global.

The "no effect" is meaningful only if the same payloads do run script where nothing stops
them, so two controls: a static page on a loopback ``http.server`` holds each payload as is
(every one fires; with the demo's CSP header, none does),
and a plain, unhardened JupyterLab runs the same attack notebook (the trusted cell's
``Javascript``, ``<script>`` and ``onerror`` all run there; the capsule cells still do not).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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

#: Each attack tries to change document.title, set window.__ipycap_pwned and append its tag
#: to window.__ipycap_hits (so a page that runs several of them records every one).
_JS = (
    "document.title='{tag}-" + MARK + "'; window.__ipycap_pwned='{tag}'; "
    "(window.__ipycap_hits=window.__ipycap_hits||[]).push('{tag}')"
)
#: name -> (IPython.display class, payload, tag): the same payloads feed the capsule cells in
#: JupyterLab and the unhardened control page, which shows that each one does run script.
PAYLOADS = {
    "script": ("HTML", f"<script>{_JS.format(tag='script')}</script>", "script"),
    "img-onerror": ("HTML", f'<img src=x onerror="{_JS.format(tag="img")}">', "img"),
    "svg-onload": ("HTML", f'<svg onload="{_JS.format(tag="svg")}"></svg>', "svg"),
    "svg-mime": (
        "SVG",
        '<svg xmlns="http://www.w3.org/2000/svg" onload="'
        + _JS.format(tag="svgmime").replace("'", "&apos;")
        + '"><circle r="5"/></svg>',
        "svgmime",
    ),
    "markdown-html": ("Markdown", f'hello <img src=x onerror="{_JS.format(tag="md")}">', "md"),
    "javascript": ("Javascript", _JS.format(tag="js"), "js"),
}
CAPSULE_ATTACKS = {name: f"{cls}({src!r})" for name, (cls, src, _) in PAYLOADS.items()}
TRUSTED_TAGS = ("trusted-js", "trusted-script", "trusted-img")


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


def _serve(root: Path, argv: list[str], port: int, token: str):
    """Start a Jupyter server (``argv``) in a temporary home; yields once its API answers."""
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
        # The test's own kernelspecs (its home) win over any in the venv (make demo or make
        # notebooks install one there, without the test's config).
        JUPYTER_PREFER_ENV_PATH="0",
    )
    env.pop("JUPYTER_PATH", None)
    log = open(root / "server.log", "w")  # noqa: SIM115 - closed below
    server = subprocess.Popen(
        [sys.executable, "-m", *argv, "--port", str(port)],
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
def lab(tmp_path_factory):
    """JupyterLab as ``make demo`` runs it, on a copy of the notebooks; yields (url, port)."""
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium)")
    port, token = _free_port(), os.urandom(12).hex()
    argv = ["ipycap.demo", "--no-browser", "--token", token]
    root = tmp_path_factory.mktemp("lab")
    yield from _serve(root, [*argv, "--notebook-dir", str(root / "notebooks")], port, token)


@pytest.fixture(scope="module")
def plain_lab(tmp_path_factory):
    """JupyterLab without the demo's hardening (the control): default CSP, JS renderer on."""
    port, token = _free_port(), os.urandom(12).hex()
    root = tmp_path_factory.mktemp("plain-lab")
    argv = ["jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1", "--ServerApp.port_retries=0"]
    argv += [f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root / 'notebooks'}"]
    argv += [
        "--LabApp.news_url=",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    if os.geteuid() == 0:
        argv.append("--ServerApp.allow_root=True")
    yield from _serve(root, argv, port, token)


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium, driven by Playwright."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def page(lab, browser):
    pg = browser.new_page(viewport={"width": 1400, "height": 1000})
    yield pg
    pg.close()


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
    # Done when every code cell shows an execution count (no "[ ]" or "[*]"); approval
    # prompts (grants asked at the moment of access) are answered 'n', as the lessons expect.
    try:
        _wait_all_ran(page, answer="n")
    except Exception:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"browser-failed-{name}.png"))
        raise


_ALL_RAN = """() => {
    const panel = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
    if (!panel) return false;
    const prompts = [...panel.querySelectorAll('.jp-CodeCell .jp-InputPrompt')];
    return prompts.length > 0 && prompts.every(p => /\\[\\d+\\]/.test(p.textContent));
}"""

#: The approval questions the browser tests answered (text as JupyterLab showed it).
APPROVALS: list[str] = []
#: The extension's approval dialog (labextension/src/approval.ts).  JupyterLab sends
#: allow_stdin, so the kernel asks for a grant within the ceiling on the stdin channel; the
#: extension (installed in every JupyterLab these tests start) shows each prompt that starts
#: with "ipycap-approval: " as this dialog, never as the stdin box.
APPROVAL_DIALOG = ".jp-Dialog.ipycap-Approval"
APPROVAL_BUTTONS = {"y": "Allow once", "a": "Allow this session", "n": "Deny"}


def _answer_approval(page, answer: str) -> bool:
    """Answer the approval dialog if it is open (recording its question); False if none is."""
    dialog = page.locator(APPROVAL_DIALOG)
    if not dialog.count():
        return False
    APPROVALS.append(dialog.locator(".ipycap-Approval-question").text_content())
    dialog.locator("button", has_text=APPROVAL_BUTTONS[answer]).click()
    dialog.wait_for(state="detached", timeout=10_000)
    return True


def _wait_all_ran(page, answer: str = "n", timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not page.evaluate(_ALL_RAN):
        _answer_approval(page, answer)
        box = page.locator(f"{CURRENT} input.jp-Stdin-input:not([disabled])")
        if box.count():  # these notebooks call no input(): only the kernel asks, by the dialog
            prompt = page.locator(f"{CURRENT} .jp-Stdin-prompt").last.text_content()
            raise AssertionError(f"a prompt reached the stdin box, not the dialog: {prompt!r}")
        if time.monotonic() > deadline:
            raise TimeoutError("the notebook did not finish running")
        page.wait_for_timeout(250)


def _run_attacks(page, base: str, token: str) -> list[str]:
    """Run attacks.ipynb; assert no capsule output reached the page as markup; return the
    tags of the payloads whose script ran (window.__ipycap_hits)."""
    _open_and_run_all(page, base, token, "attacks.ipynb")
    done = page.locator(f"{CURRENT} .jp-OutputArea-output", has_text="attacks done").first
    done.wait_for(state="attached", timeout=10_000)
    done.scroll_into_view_if_needed()
    page.wait_for_timeout(1500)  # give an onerror/onload handler time to fire, if it could
    # Not vacuous: every attack cell ran and showed something (the filtered text/plain).
    cells = page.locator(f"{CURRENT} .jp-CodeCell")
    for i in range(1, 1 + len(CAPSULE_ATTACKS)):
        outputs = cells.nth(i).locator(".jp-OutputArea-output")
        assert outputs.count() >= 1, f"attack cell {i} produced no output"
        text = cells.nth(i).text_content()
        assert "Error" not in text, text
    # Capsule output reaches the page only as text or allow-listed HTML (published by
    # default through nh3): no script, SVG, event handler, style, frame or form, and images
    # only as data URIs.
    banned = (
        "script, svg, iframe, form, input, style, [onerror], [onload], [style], [id],"
        " img[src]:not([src^='data:image/'])"
    )
    for i in range(1, 1 + len(CAPSULE_ATTACKS)):
        for out in cells.nth(i).locator(".jp-OutputArea-output").all():
            assert out.locator(banned).count() == 0, out.inner_html()
    trusted = cells.nth(1 + len(CAPSULE_ATTACKS)).locator(".jp-OutputArea")
    assert trusted.locator("script").count() >= 1  # the trusted cell's markup reached the page
    return page.evaluate("window.__ipycap_hits || []")


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
    # The read of data/measurements.csv was asked in the page, and answered 'n'.
    assert any("Allow read access to 'data/measurements.csv'" in a for a in APPROVALS), APPROVALS
    table.evaluate("t => t.scrollIntoView({block: 'center'})")
    page.wait_for_timeout(500)  # cells off screen render lazily (content-visibility)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "browser-01.png"))


def test_outputs_cannot_run_script(lab, page):
    """Hardened: neither the capsule cells nor (CSP, no JS renderer) the trusted cell run script.
    (The trusted cell's <script>/<img onerror> are in the DOM; the CSP keeps them inert.)"""
    base, _, token = lab
    hits = _run_attacks(page, base, token)
    assert hits == []  # the robust witness: JupyterLab rewrites document.title on its own
    assert MARK not in page.title()
    assert page.evaluate("window.__ipycap_pwned === undefined")


class _ControlPage(BaseHTTPRequestHandler):
    """``/plain/NAME``: a page whose body holds payload NAME as is (parsed by the browser, as
    unsanitised markup would be); ``/csp/NAME``: the same page with the demo's CSP header."""

    csp = ""

    def do_GET(self):  # noqa: N802 - http.server's name
        _, mode, name = (self.path.split("/") + ["", ""])[:3]
        if mode not in ("plain", "csp") or name not in PAYLOADS:
            self.send_error(404)
            return
        kind, source, _ = PAYLOADS[name]
        markup = f"<script>{source}</script>" if kind == "Javascript" else source
        body = f"<!doctype html><html><head><title>control</title></head><body>{markup}</body>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        if mode == "csp":
            self.send_header("Content-Security-Policy", self.csp)
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args):
        pass


def test_payloads_run_script_in_an_unhardened_page(browser):
    """Positive control: each payload, served without sanitising, does run script; the same
    page with the demo's CSP header runs none of them."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ControlPage)
    port = server.server_address[1]
    _ControlPage.csp = content_security_policy(port)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    control = browser.new_page()
    try:
        for name, (_, _, tag) in PAYLOADS.items():
            control.goto(f"http://127.0.0.1:{port}/plain/{name}")
            control.wait_for_function(
                "tag => (window.__ipycap_hits || []).includes(tag)", arg=tag, timeout=5000
            )
            assert control.title() == f"{tag}-{MARK}", name
            assert control.evaluate("window.__ipycap_pwned") == tag, name
        for name in PAYLOADS:
            control.goto(f"http://127.0.0.1:{port}/csp/{name}")
            control.wait_for_timeout(300)  # an onerror/onload would have fired by now
            assert control.evaluate("window.__ipycap_hits") is None, name
            assert control.title() == "control", name
    finally:
        control.close()
        server.shutdown()
        server.server_close()


def test_trusted_cell_runs_script_in_plain_jupyterlab(plain_lab, browser):
    """Control for test_outputs_cannot_run_script: without the demo's hardening, the trusted
    cell's Javascript, <script> and onerror all run, so it is the hardening that stops them;
    the capsule cells still run no script (their output filter does not need the server)."""
    base, _, token = plain_lab
    plain = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        hits = _run_attacks(plain, base, token)
        assert sorted(hits) == sorted(TRUSTED_TAGS), hits
        assert plain.evaluate("window.__ipycap_pwned") in TRUSTED_TAGS
        # (document.title is no witness here: JupyterLab rewrites it when the tab changes.)
    finally:
        plain.close()
