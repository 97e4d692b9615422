"""The output filter and the registry views: what capsule output may put into the page.

Jupyter trusts the output of executed cells (HTML is not sanitised, JavaScript runs), so
capsule output is filtered where it is published.  These tests capture what really reaches
the display publisher and the displayhook of a real InteractiveShell."""

from __future__ import annotations

import base64
import html
import re

import pytest

from ipycap.ipython.display import (
    RegistryView,
    filter_bundle,
    sanitize_html,
    sanitize_markdown,
)
from tests import test_magics as shared

# The shared shell fixtures (one InteractiveShell per session, reset per test).
_shell = shared._shell
ip = shared.ip

EVIL_OBJECT = """\
class Evil:
    def _repr_html_(self):
        return "<b>bold</b><script>alert('pwned')</script>"
    def _repr_javascript_(self):
        return "alert('pwned')"
    def _repr_svg_(self):
        return "<svg><script>alert(1)</script></svg>"
    def __repr__(self):
        return "Evil()"
"""


def _published(ip) -> list[dict]:
    return [o["data"] for o in ip.outputs]


def _all_text(bundles) -> str:
    return "\n".join(str(v) for b in bundles for v in b.values())


# -- the displayhook: Out of a capsule cell --------------------------------------------------
def test_script_in_repr_html_never_reaches_the_output(ip):
    # text/html is published by default, through the sanitiser: the script is gone.
    ip.ok(f"%%capsule\n{EVIL_OBJECT}Evil()")
    data = ip.formatted[-1]
    assert data == {"text/plain": "Evil()", "text/html": "<b>bold</b>"}
    assert "<script>" not in _all_text(ip.formatted + _published(ip))


def test_html_not_in_the_policy_is_dropped(ip):
    ip.ok("%config CapsulePolicy.output_mime_types = ['text/plain']")
    ip.ok(f"%%capsule\n{EVIL_OBJECT}Evil()")
    assert ip.formatted[-1] == {"text/plain": "Evil()"}


def test_allowed_html_is_sanitised(ip):
    ip.ok("%config CapsulePolicy.output_mime_types = ['text/plain', 'text/html', 'image/svg+xml']")
    ip.ok(f"%%capsule\n{EVIL_OBJECT}Evil()")
    data = ip.formatted[-1]
    assert data["text/html"] == "<b>bold</b>"
    assert "image/svg+xml" not in data  # never, even when listed
    assert "application/javascript" not in data


def test_exported_capsule_object_is_filtered_in_trusted_cells_too(ip):
    ip.ok(f"%%capsule --export evil\n{EVIL_OBJECT}evil = Evil()")
    ip.ok("evil")
    assert ip.formatted[-1] == {"text/plain": "Evil()", "text/html": "<b>bold</b>"}
    ip.ok("from IPython.display import display\ndisplay(evil)")
    assert _published(ip)[-1] == {"text/plain": "Evil()", "text/html": "<b>bold</b>"}


def test_repr_methods_of_capsule_objects_run_as_capsule_code(ip, canary):
    path, token = canary
    ip.ok(
        "%%capsule --export spy\n"
        "class Spy:\n"
        "    def _repr_html_(self):\n"
        f"        return open({str(path)!r}).read()\n"
        "    def __repr__(self):\n"
        "        return 'Spy()'\n"
        "spy = Spy()"
    )
    ip.ok("spy")  # the displayhook runs _repr_html_ after the cell ended
    assert token not in _all_text(ip.formatted + _published(ip))
    refused = [e for e in ip.ext.registry.refusals() if e.get("target") == str(path)]
    assert refused, "the read was refused by the capsule's own open()"


def test_repr_pretty_is_not_given_ipythons_printer(ip):
    ip.ok(
        "%%capsule --export Fancy\n"
        "class Fancy:\n"
        "    calls = []\n"
        "    def _repr_pretty_(self, p, cycle):\n"
        "        Fancy.calls.append(p)\n"
        "        p.text('PRETTY')\n"
        "    def __repr__(self):\n"
        "        return 'REPR'\n"
        "Fancy()"
    )
    # Formatted inside the capsule (DESIGN.md, "format inside, publish plain"): the
    # capsule's own _repr_pretty_ is honoured, as in plain IPython, but what it was handed
    # is ipycap's text-only printer, never IPython's RepresentationPrinter.
    assert ip.formatted[-1]["text/plain"] == "PRETTY"
    from ipycap.engine.membrane.crossing import _rp_target
    from ipycap.engine.output import CapsulePrinter

    calls = [_rp_target(c) for c in ip.ns["Fancy"].calls]  # exported: reverse proxies
    assert len(calls) == 1
    assert type(calls[0]) is CapsulePrinter


# -- publishing from capsule code ------------------------------------------------------------
def test_display_javascript_from_a_capsule_is_dropped(ip):
    ip.ok(
        "%%capsule\nfrom IPython.display import display, Javascript\ndisplay(Javascript('alert(1)'))"
    )
    published = _published(ip)
    assert published and all("application/javascript" not in b for b in published)
    assert published[-1] == {"text/plain": "<IPython.core.display.Javascript object>"}
    assert any("application/javascript" in e["what"] for e in ip.ext.registry.refusals())
    # With nothing left to show, the output says what was dropped and why.
    ip.ok(
        "%%capsule\nfrom IPython.display import display\n"
        "display({'application/javascript': 'alert(1)'}, raw=True)"
    )
    assert "never published from a capsule" in _published(ip)[-1]["text/plain"]


def test_display_html_and_raw_bundles_from_a_capsule(ip):
    ip.ok(
        "%%capsule\nfrom IPython.display import display, HTML\n"
        "display(HTML('<script>alert(1)</script>'))\n"
        "display({'text/html': '<img src=x onerror=alert(1)>', 'image/svg+xml': '<svg/>',"
        " 'text/plain': 'plain'}, raw=True)"
    )
    published = _published(ip)
    assert all("image/svg+xml" not in b for b in published)
    assert all("script" not in b.get("text/html", "") for b in published)
    assert all("onerror" not in b.get("text/html", "") for b in published)
    assert published[-1] == {"text/plain": "plain", "text/html": "<img>"}


def test_pandas_tables_render_as_sanitised_html(ip):
    """The default allow-list: pandas' table survives; style, id, forms, iframes and links
    other than http(s) do not; images only as data URIs."""
    ip.ok(
        "%%capsule --allow-import pandas\nimport pandas as pd\n"
        "pd.DataFrame({'a': [1, 2]}, index=['x', 'y'])"
    )
    html = ip.formatted[-1]["text/html"]
    assert '<table border="1" class="dataframe">' in html and "<td>2</td>" in html
    assert "<style" not in html
    ip.ok(
        "%%capsule\nfrom IPython.display import display, HTML\n"
        'display(HTML(\'<p id="x" style="color:red">t</p><form><input></form>'
        '<iframe src="https://e.org"></iframe><a href="javascript:1">j</a>'
        '<a href="https://e.org">k</a><img src="https://e.org/t.png">'
        '<img src="data:image/png;base64,AAAA">\'))'
    )
    html = _published(ip)[-1]["text/html"]
    for banned in ("id=", "style", "<form", "<input", "<iframe", "javascript", "e.org/t.png"):
        assert banned not in html, banned
    assert '<a href="https://e.org"' in html and 'src="data:image/png;base64,AAAA"' in html


def test_ipython_display_hook_of_a_capsule_object_is_filtered(ip):
    ip.ok(
        "%%capsule\nfrom IPython.display import display, Javascript\n"
        "class Widget:\n"
        "    def _ipython_display_(self):\n"
        "        display(Javascript('alert(1)'))\n"
        "Widget()"
    )
    assert all("application/javascript" not in b for b in _published(ip))


def test_capsule_display_ids_cannot_overwrite_trusted_outputs(ip):
    ip.ok("from IPython.display import display\ndisplay('trusted', display_id='status')")
    assert ip.outputs[-1]["transient"] == {"display_id": "status"}
    ip.ok(
        "%%capsule\nfrom IPython.display import update_display, display\n"
        "update_display('forged', display_id='status')\n"
        "h = display('mine', display_id=True)\n"
        "h.update('mine, updated')"
    )
    capsule_ids = [o["transient"]["display_id"] for o in ip.outputs[1:]]
    assert capsule_ids and all(i != "status" for i in capsule_ids)
    assert all(i.startswith(ip.ext.output_filter.prefix) for i in capsule_ids)
    assert capsule_ids[-1] == capsule_ids[-2]  # a capsule still updates its own display


def test_clear_output_from_a_capsule_is_allowed(ip):
    ip.ok(
        "%%capsule\nfrom IPython.display import display, clear_output\ndisplay(1)\nclear_output()"
    )
    assert ip.outputs == []


def test_set_next_input_payloads_from_capsule_code_are_dropped(ip):
    ip.ok(
        "def suggest(text):\n    get_ipython().payload_manager.write_payload({'source': 'set_next_input', 'text': text})"
    )
    ip.ok("%%capsule\nsuggest('import os; os.system(\"evil\")')")
    assert ip.shell.payload_manager.read_payload() == []
    ip.ok("suggest('trusted')")
    assert ip.shell.payload_manager.read_payload()[0]["text"] == "trusted"


def test_trusted_output_is_untouched(ip):
    ip.ok("from IPython.display import display, HTML, Javascript\ndisplay(HTML('<b>x</b>'))")
    ip.ok("display(Javascript('1'))")
    published = _published(ip)
    assert published[0]["text/html"] == "<b>x</b>"
    assert "application/javascript" in published[1]


# -- sanitisers --------------------------------------------------------------------------------
def test_sanitize_html_removes_script_handlers_and_js_urls():
    cleaned = sanitize_html(
        "<b onclick='x()'>ok</b><script>1</script><a href='javascript:alert(1)'>l</a>"
        "<iframe src='https://example.org'></iframe><style>*{}</style>"
    )
    for bad in ("script", "onclick", "javascript", "iframe", "style"):
        assert bad not in cleaned
    assert "<b>ok</b>" in cleaned


@pytest.mark.parametrize(
    "markdown",
    [
        "[click](javascript:alert(1))",
        "[click](&#106;avascript:alert(1))",
        "[click](java\\script:alert(1))",
        "![img](data:text/html;base64,PHNjcmlwdD4=)",
        "[ref]: vbscript:msgbox\n\n[x][ref]",
    ],
)
def test_markdown_with_script_links_is_dropped(markdown):
    assert sanitize_markdown(markdown) is None


def test_markdown_raw_html_is_neutralised():
    cleaned = sanitize_markdown("# Title\n\n<script>alert(1)</script> [ok](https://x.org)")
    assert "<script" not in cleaned and "&lt;script" in cleaned
    assert "[ok](https://x.org)" in cleaned and cleaned.startswith("# Title")


def test_filter_bundle_keeps_only_allowed_plain_data():
    data = {
        "text/plain": "p",
        "text/markdown": "[x](javascript:1)",
        "application/javascript": "1",
        "image/png": b"\x89PNG",
        "application/json": {"a": 1},
    }
    metadata = {"image/png": {"width": 3}, "application/json": {"x": 1}}
    allowed = ["text/plain", "text/markdown", "image/png", "application/javascript"]
    out, md, dropped = filter_bundle(data, metadata, allowed)
    assert out == {"text/plain": "p", "image/png": b"\x89PNG"}
    assert md == {"image/png": {"width": 3}}
    assert set(dropped) == {"text/markdown", "application/javascript", "application/json"}


# -- registry views ------------------------------------------------------------------------------
def test_registry_html_escapes_every_value(ip, tmp_path):
    evil = tmp_path / "<script>alert(1)<"
    evil.mkdir()
    (tmp_path / "<img src=x onerror=alert(1)>").mkdir()
    ip.ok(f"%capsule grant read {evil.name}")
    ip.ok("%capsule grant read '<img src=x onerror=alert(1)>'")
    ip.fails(f"%%capsule\nopen('{evil.name}/../x<b>', 'w')")
    view = ip.ok("%capsule list")
    page = view._repr_html_()
    assert "<script>" not in page and "<img" not in page and "<b>" not in page
    assert "&lt;script&gt;alert(1)&lt;" in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert page.count("<table") == 3 and "<th" in page  # capabilities, refusals, cells
    assert "<script>alert(1)<" in str(view)  # the plain text view shows the path as it is


def test_registry_view_plain_text_lists_columns(ip):
    text = str(RegistryView(ip.ext.registry))
    for column in ("id", "kind", "target", "granted by", "scope", "uses", "last use", "state"):
        assert column in text
    assert "(none)" in text


# -- markdown and metadata that reach nbconvert's HTML (red team 2: reference definitions in
# block quotes and lists, image metadata pasted into <img> unquoted) -----------------------
_MARKDOWN_LINKS = {
    "ref-in-blockquote": "> [x]: javascript:alert(1)\n\n[click][x]",
    "ref-in-bullet-list": "- [x]: javascript:alert(1)\n\n[click][x]",
    "ref-in-ordered-list": "1. [x]: javascript:alert(1)\n\n[click][x]",
    "ref-in-nested-containers": "> - > [x]: vbscript:alert(1)\n\n[click][x]",
    "ref-destination-on-a-quoted-continuation-line": "[click][x]\n\n>   [x]:\n>   javascript:alert(1)",
    "ref-angle-destination": "[x]: <javascript:alert(1)>\n\n[click][x]",
    "inline-angle-destination": "[click](<javascript:alert(1)>)",
    "ref-with-entity-in-scheme": "> [x]: jav&#97;script:alert(1)\n\n[click][x]",
}


@pytest.mark.parametrize("name", sorted(_MARKDOWN_LINKS))
def test_markdown_script_links_anywhere_are_refused(name):
    from nbconvert.filters.markdown_mistune import markdown2html_mistune

    text = _MARKDOWN_LINKS[name]
    assert sanitize_markdown(text) is None
    # Not a harmless shape: nbconvert (or, for the angle forms, a CommonMark renderer)
    # turns the same markdown into a script link.
    rendered = markdown2html_mistune(text).replace("%3C", "<")
    assert re.search(r'href="<?(java|vb)script:', html.unescape(rendered)), rendered


def test_markdown_with_safe_links_in_containers_is_kept():
    text = "> [x]: https://example.org\n\n- [y](mailto:a@b.org)\n\n[x] and [y]"
    assert sanitize_markdown(text) == text


def test_image_metadata_reaches_nbconvert_only_as_checked_numbers():
    import nbformat
    from nbconvert import HTMLExporter

    png = base64.b64encode(b"\x89PNG\r\n").decode()
    evil = {
        "width": "1 onerror=alert(1) x",
        "height": 2,
        "alt": '"><script>alert(1)</script>',
        "unconfined": "yes",
        "needs_background": "light",
    }

    def exported(metadata):
        nb = nbformat.v4.new_notebook()
        cell = nbformat.v4.new_code_cell("x")
        cell.outputs = [
            nbformat.v4.new_output("display_data", data={"image/png": png}, metadata=metadata)
        ]
        nb.cells.append(cell)
        return HTMLExporter().from_notebook_node(nb)[0]

    assert "onerror" in exported({"image/png": evil})  # raw, it injects an attribute
    out, md, _ = filter_bundle({"image/png": png}, {"image/png": evil}, ["image/png"])
    assert md == {"image/png": {"height": 2, "needs_background": "light"}}
    assert "onerror" not in exported(md) and "<script>" not in exported(md)
