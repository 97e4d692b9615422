"""``python -m ipycap.demo``: JupyterLab on the teaching notebooks, hardened for untrusted output.

Jupyter treats the output of an executed cell as trusted: HTML with scripts and
``application/javascript`` run in the page, with the user's session.  A capsule's output filter
already drops those MIME types, but the demo should not depend on one layer, so the server
itself is hardened too:

* the JavaScript output renderer (``@jupyterlab/javascript-extension``) is disabled, through a
  ``page_config_hook`` that adds it to ``disabledExtensions`` on every page load (no file is
  written to the environment, and no other config can re-enable it for this server);
* a Content-Security-Policy without ``'unsafe-inline'`` scripts (``'unsafe-eval'`` is needed by
  JupyterLab's schema validation and stays), so ``<script>``,
  ``onerror=``/``onload=`` handlers and ``javascript:`` URLs in any HTML output are inert; the
  one static inline script of JupyterLab's page (it strips the token from the URL) is
  allowed by its hash;
* bound to 127.0.0.1 only, terminals disabled (a terminal is a shell).

:func:`hardened_config` builds the configuration; the browser test runs this module as a
subprocess, so what it checks is exactly what ``make demo`` launches.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import re
import sys
from pathlib import Path

from traitlets.config import Config

#: The JupyterLab plugin that renders ``application/javascript`` outputs.
JAVASCRIPT_RENDERER = "@jupyterlab/javascript-extension"
#: Plugins the demo turns off: the JavaScript renderer, and the news announcements (which ask
#: to fetch from the internet; a teaching demo should not).
DISABLED_PLUGINS = (JAVASCRIPT_RENDERER, "@jupyterlab/apputils-extension:announcements")
#: Where ``make demo`` opens JupyterLab: the repository's teaching notebooks.
NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
LOOPBACK = "127.0.0.1"


def _inline_script_hashes() -> list[str]:
    """CSP hashes of the static inline scripts of JupyterLab's page template.

    Computed from the installed template, so the policy follows JupyterLab upgrades; scripts
    with template syntax are never allowed (their content varies)."""
    try:
        import jupyterlab

        page = Path(jupyterlab.__file__).parent / "static" / "index.html"
        text = page.read_text(encoding="utf-8")
    except (ImportError, OSError):
        return []
    hashes = []
    for body in re.findall(r"<script>(.*?)</script>", text, flags=re.S):
        if "{{" in body or "{%" in body:
            continue
        digest = hashlib.sha256(body.encode("utf-8")).digest()
        hashes.append("'sha256-" + base64.b64encode(digest).decode("ascii") + "'")
    return hashes


def content_security_policy(port: int) -> str:
    """The CSP header: JupyterLab's own bundles run; nothing an output injects does."""
    # 'unsafe-eval' is required: JupyterLab's settings registry compiles JSON schemas with
    # ajv, which builds validators with new Function() (measured with JupyterLab 4.6: without
    # it most plugins fail to activate).  It does not let markup run script: that would need
    # 'unsafe-inline', which stays off, so <script>, on*= handlers and javascript: are inert.
    scripts = " ".join(["'self'", "'unsafe-eval'", *_inline_script_hashes()])
    return "; ".join(
        [
            "default-src 'self'",
            f"script-src {scripts}",
            "style-src 'self' 'unsafe-inline'",  # JupyterLab and its widgets set inline styles
            "img-src 'self' data: blob:",
            "font-src 'self' data:",
            f"connect-src 'self' ws://{LOOPBACK}:{port} ws://localhost:{port}",
            "worker-src 'self' blob:",
            "frame-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'self'",
        ]
    )


def disable_javascript_renderer(handler, page_config: dict) -> dict:
    """``page_config_hook``: JupyterLab never loads the JavaScript output renderer."""
    disabled = list(page_config.get("disabledExtensions") or [])
    disabled += [p for p in DISABLED_PLUGINS if p not in disabled]
    page_config["disabledExtensions"] = disabled
    return page_config


def hardened_settings(port: int) -> dict:
    """The tornado settings that carry the hardening (headers and the page-config hook)."""
    return {
        "headers": {
            "Content-Security-Policy": content_security_policy(port),
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
        },
        "page_config_hook": disable_javascript_renderer,
    }


def hardened_config(
    root_dir: str | os.PathLike = NOTEBOOKS,
    port: int = 8888,
    *,
    token: str | None = None,
    open_browser: bool = True,
) -> Config:
    """The JupyterLab server configuration of the demo (and of the browser test)."""
    c = Config()
    c.ServerApp.ip = LOOPBACK
    c.ServerApp.port = port
    c.ServerApp.port_retries = 0  # the CSP names the port: never drift to another one
    c.ServerApp.root_dir = str(root_dir)
    c.ServerApp.open_browser = open_browser
    c.ServerApp.terminals_enabled = False
    c.ServerApp.allow_remote_access = False
    # Containers and CI run as root; the server is loopback-only and token-protected anyway.
    c.ServerApp.allow_root = hasattr(os, "geteuid") and os.geteuid() == 0
    c.ServerApp.tornado_settings = hardened_settings(port)
    c.LabApp.news_url = ""  # no fetches to the internet from the page
    c.LabApp.check_for_updates_class = "jupyterlab.NeverCheckForUpdate"
    if token is not None:
        c.IdentityProvider.token = token
    return c


def _enforce(serverapp, port: int) -> None:
    """Re-apply the hardening after config files were read, and refuse to start otherwise."""
    settings = serverapp.web_app.settings
    settings.setdefault("headers", {}).update(hardened_settings(port)["headers"])
    settings["page_config_hook"] = disable_javascript_renderer
    if serverapp.ip != LOOPBACK:
        raise SystemExit(f"ipycap.demo: refusing to listen on {serverapp.ip!r}, not {LOOPBACK}")
    if serverapp.port != port:
        raise SystemExit(f"ipycap.demo: port {port} is busy; choose another with --port")


def _has_capsule_kernel() -> bool:
    from jupyter_client.kernelspec import KernelSpecManager

    return "capsule" in KernelSpecManager().find_kernel_specs()


def scratch_copy(source: Path = NOTEBOOKS) -> str:
    """A copy of the teaching notebooks in a new folder under TMPDIR (kept after the demo:
    the learner's own notebooks may be in it)."""
    import shutil
    import tempfile

    target = Path(tempfile.mkdtemp(prefix="ipycap-demo-")) / "notebooks"
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    return str(target)


def main(argv: list[str] | None = None) -> None:
    """Launch the hardened JupyterLab (``make demo`` runs this)."""
    parser = argparse.ArgumentParser(prog="python -m ipycap.demo", description=__doc__)
    parser.add_argument("--port", type=int, default=8888, help="port on 127.0.0.1")
    parser.add_argument("--no-browser", action="store_true", help="do not open a browser")
    parser.add_argument(
        "--notebook-dir",
        default=None,
        help="directory to serve (default: a fresh scratch copy of the teaching notebooks, so "
        "new notebooks and checkpoints never land in the repository)",
    )
    parser.add_argument("--token", default=None, help="server token (default: a random one)")
    args = parser.parse_args(argv)
    if not _has_capsule_kernel():
        print(
            "ipycap.demo: the capsule kernel is not installed; run "
            "`python -m ipycap.kernel install --sys-prefix` (make demo does).",
            file=sys.stderr,
        )
    if args.notebook_dir is None:
        args.notebook_dir = scratch_copy()
        print(f"ipycap.demo: serving a copy of the notebooks in {args.notebook_dir}")
    from jupyterlab.labapp import LabApp

    config = hardened_config(
        args.notebook_dir, args.port, token=args.token, open_browser=not args.no_browser
    )
    serverapp = LabApp.initialize_server(argv=[], config=config)
    _enforce(serverapp, args.port)
    serverapp.start()


if __name__ == "__main__":
    main()
