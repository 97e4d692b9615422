"""The teaching notebooks, executed with nbclient exactly as ``make notebooks`` does.

Every notebook must run top to bottom (cells tagged ``raises-exception`` must raise, the others
must not), the key cells (tagged ``check``) must show what the prose says they show, and the
outputs stored in the committed .ipynb must match a fresh run for those cells, so the
notebooks people read on GitHub never go stale.
"""

from __future__ import annotations

import importlib.util
import json
import re
import tempfile
from html import unescape
from pathlib import Path

import nbformat
import pytest

pytestmark = [pytest.mark.kernel, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = [
    "01-capabilities",
    "02-proxies-vs-rexec",
    "03-introspection-explorer",
    "04-writing-a-policy",
    "05-escape-gallery",
    "06-capsule-kernel",
    "07-data-notebook",
]


def _load_runner():
    spec = importlib.util.spec_from_file_location("run_notebooks", ROOT / "tools/run_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


runner = _load_runner()


@pytest.fixture(scope="module")
def kernels():
    with runner.kernel_environment() as env:
        yield env


@pytest.fixture(scope="module")
def executed(kernels):
    """name -> (stored notebook, freshly executed notebook); each runs once per session."""
    cache: dict = {}

    def get(name: str):
        if name not in cache:
            path = ROOT / "notebooks" / f"{name}.ipynb"
            if not path.exists():
                pytest.fail(f"notebooks/{name}.ipynb does not exist (issue 8 lists it)")
            cache[name] = (nbformat.read(path, as_version=4), runner.execute(path, kernels))
        return cache[name]

    return get


# -- helpers ----------------------------------------------------------------------------------
def cell(nb, ident: str):
    for c in nb.cells:
        if c.id == ident:
            return c
    raise AssertionError(f"no cell {ident!r}")


def error(c) -> dict:
    errs = [o for o in c.outputs if o.output_type == "error"]
    assert errs, f"cell {c.id} did not raise"
    return errs[0]


def text(c) -> str:
    """Everything a reader sees in a cell's outputs, as text (HTML tags included)."""
    parts = []
    for o in c.outputs:
        if o.output_type == "stream":
            parts.append(o.text)
        elif o.output_type == "error":
            parts.append(f"{o.ename}: {o.evalue}")
        else:
            parts += ["".join(v) if isinstance(v, list) else str(v) for v in o.data.values()]
    return "\n".join(parts)


def html(c) -> str:
    return "\n".join(
        "".join(o.data["text/html"]) for o in c.outputs if "text/html" in o.get("data", {})
    )


def refusal(c, exc: str, layer: str) -> str:
    err = error(c)
    assert err.ename == exc, (err.ename, err.evalue)
    assert f"refused by the {layer}" in err.evalue, err.evalue
    assert "To grant it:" in err.evalue or "It cannot be granted." in err.evalue
    return err.evalue


# -- every notebook ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_and_stored_outputs_match(executed, name):
    stored, fresh = executed(name)
    assert [c.id for c in stored.cells] == [c.id for c in fresh.cells]
    checks = [c for c in fresh.cells if "check" in c.metadata.get("tags", [])]
    assert len(checks) >= 3, "a lesson needs key cells tagged 'check'"
    for c in fresh.cells:
        if c.cell_type != "code":
            continue
        raises = "raises-exception" in c.metadata.get("tags", [])
        errors = [o for o in c.outputs if o.output_type == "error"]
        assert bool(errors) == raises, f"{name} cell {c.id}: raises={bool(errors)}"
    for c in checks:
        old = cell(stored, c.id)
        assert old.outputs, f"{name} cell {c.id}: no stored outputs (run `make notebooks`)"
        assert runner.comparable(old.outputs) == runner.comparable(c.outputs), (
            f"{name} cell {c.id}: stored outputs differ from a fresh run (run `make notebooks`)"
        )


def test_normalisation_hides_what_differs_between_runs():
    tmp = tempfile.gettempdir()
    raw = f"<Account object at 0x7f12ab34cd56> in {tmp}/ipycap-lesson-abc123/data at 08:16:03"
    assert runner.normalise_text(raw) == (
        "<Account object at 0x…> in /tmp/ipycap-lesson-…/data at hh:mm:ss"
    )
    assert runner.normalise_text(runner.normalise_text(raw)) == runner.normalise_text(raw)
    assert runner.normalise_text("hash 8763273191749, value 42") == "hash <int>, value 42"


# -- what each lesson must show -----------------------------------------------------------------
def test_01_capabilities(executed):
    _, nb = executed("01-capabilities")
    assert "CANARY-TOKEN" in text(cell(nb, "n01-ambient"))
    assert text(cell(nb, "n01-first-capsule")) == "(12.25, 13)"
    evalue = refusal(cell(nb, "n01-refuse-os"), "CapsuleImportError", "builtins")
    assert "It cannot be granted." in evalue
    evalue = refusal(cell(nb, "n01-refuse-read"), "CapsulePermissionError", "builtins")
    assert "%%capsule --allow-read" in evalue
    # The grant changes the outcome of the same read.
    assert text(cell(nb, "n01-grant-read")) == "(3, 'day,temperature')"
    refusal(cell(nb, "n01-refuse-dotdot"), "CapsulePermissionError", "builtins")
    assert text(cell(nb, "n01-proxy-public")) == "('Hello, Ada!', 'Ada')"
    refusal(cell(nb, "n01-proxy-private"), "CapsuleAttributeError", "membrane")
    assert "--writable acct" in refusal(
        cell(nb, "n01-proxy-readonly"), "CapsuleTypeError", "membrane"
    )
    assert text(cell(nb, "n01-export")) == "12.25"
    registry = html(cell(nb, "n01-registry"))
    assert "<table" in registry
    assert len(re.findall(r"<tr>", registry)) >= 5
    assert ">acct<" in registry and ">import<" in registry
    assert "revoked cap-" in text(cell(nb, "n01-revoke"))
    refusal(cell(nb, "n01-revoked"), "CapsuleRevokedError", "membrane")
    filtered = cell(nb, "n01-output-filter")
    assert all(set(o.get("data", {})) <= {"text/plain", "text/html"} for o in filtered.outputs)
    assert "<script" not in text(filtered) and "owned" not in text(filtered)
    assert html(filtered) == "<b>bold?</b>"  # sanitised HTML: the bold stays, the script goes


def _html_rows(c) -> list[tuple[str, ...]]:
    """The data cells of each row of the HTML tables in a cell's outputs, unescaped."""
    return [
        tuple(unescape(td) for td in re.findall(r"<td[^>]*>(.*?)</td>", tr))
        for tr in re.findall(r"<tr>(.*?)</tr>", html(c))
    ]


def test_02_proxies_vs_rexec(executed):
    _, nb = executed("02-proxies-vs-rexec")
    # Ordinary code on own objects works in proxy mode and breaks in rexec mode.
    assert text(cell(nb, "n02-own-proxy")) == "Reading(place='Oslo', celsius=4.5)"
    assert "'_cache'" in refusal(cell(nb, "n02-own-rexec"), "CapsuleAttributeError", "guard")
    # Protected private state is hidden in both modes, by different layers.
    c = cell(nb, "n02-protected-proxy")
    assert "Ada Account" in text(c)
    assert "'_pin'" in refusal(c, "CapsuleAttributeError", "membrane")
    assert "rexec mode" in refusal(
        cell(nb, "n02-protected-rexec"), "CapsuleAttributeError", "guard"
    )
    # The side-by-side table: one row per probe, own objects open only in proxy mode.
    rows = {r[0]: r[1:] for r in _html_rows(cell(nb, "n02-side-by-side")) if r}
    assert len(rows) == 9
    own_proxy, own_rexec, prot_proxy, prot_rexec = zip(*rows.values(), strict=True)
    assert rows["vars(x)"] == ("✔ {'text': 'hello'}", "✖ guard", "✖ membrane", "✖ guard")
    assert rows["type(self).__name__ in a method"][0] == "✔ 'Note'"
    assert rows["type(self).__name__ in a method"][1] == "✖ guard"
    assert rows["a private attribute"] == ("✔ True", "✖ guard", "✖ membrane", "✖ guard")
    assert rows["f.__globals__"] == ("✖ guard", "✖ guard", "✖ membrane", "✖ guard")
    assert sum(v.startswith("✔") for v in own_proxy) == 8
    assert sum(v.startswith("✔") for v in own_rexec) == 2  # type(x) and dir(x) only
    assert not any(v.startswith("✔") for v in (rows["x.__dict__"][2], rows["x.__dict__"][3]))
    assert "__subclasses__" in refusal(
        cell(nb, "n02-subclass-walk"), "CapsuleAttributeError", "guard"
    )
    explained = html(cell(nb, "n02-explain"))
    assert "ipycap.explain(acct)" in explained and "ipycap-refused" in explained


def _explain_rows(c) -> dict:
    """operation -> (raw, proxy, rexec) texts of an ``ipycap.explain`` table in a cell."""
    out = "".join(o.data["text/plain"] for o in c.outputs if "text/plain" in o.get("data", {}))
    rows = {}
    for line in out.splitlines()[3:]:
        parts = [p.strip() for p in line.split(" | ")]
        if len(parts) == 4:
            rows[parts[0]] = tuple(parts[1:])
    return rows


def test_03_introspection_explorer(executed):
    _, nb = executed("03-introspection-explorer")
    acct = _explain_rows(cell(nb, "n03-instance"))
    assert acct["acct._pin"][0] == "1234"
    assert acct["acct._pin"][1].startswith("CapsuleAttributeError [membrane]")
    assert acct["acct._pin"][2].startswith("CapsuleAttributeError [guard]")
    assert "_pin" in acct["vars(acct)"][0] and "[membrane]" in acct["vars(acct)"][1]
    assert acct["isinstance(acct, type(acct))"] == ("True", "True", "True")
    assert "[guard]" in acct["acct.greeting.__self__"][1]
    func = _explain_rows(cell(nb, "n03-function"))
    assert "[membrane]" in func["add_interest.__globals__"][1]
    method = _explain_rows(cell(nb, "n03-method"))
    assert (
        "[membrane]" in method["greet.__self__"][1] and "[membrane]" in method["greet.__func__"][1]
    )
    cls = _explain_rows(cell(nb, "n03-class"))
    assert cls["Account._rate"][0] == "0.02" and "[membrane]" in cls["Account._rate"][1]
    assert "[membrane]" in cls["Account.__subclasses__()"][1]
    module = _explain_rows(cell(nb, "n03-module"))
    assert "[builtins]" in module["random.__dict__"][1]
    assert "(capsule view)" in module["repr(random)"][1]
    assert "random._os" in refusal(
        cell(nb, "n03-module-private"), "CapsuleAttributeError", "builtins"
    )
    d = _explain_rows(cell(nb, "n03-dict"))
    assert d["iterate settings (first 3)"][1] == "['theme', '_token']"
    c = cell(nb, "n03-dict-write")
    assert text(c).startswith("dark 2")
    assert "--writable settings" in refusal(c, "CapsuleTypeError", "membrane")
    assert error(cell(nb, "n03-dict-hidden")).ename == "NameError"
    gen = _explain_rows(cell(nb, "n03-generator"))
    assert gen["ticker.gi_frame"][0].startswith("<frame at")
    assert "[membrane]" in gen["ticker.gi_frame"][1] and "[membrane]" in gen["ticker.gi_frame"][2]
    assert gen["next(ticker)"][0].startswith("not run")
    c = cell(nb, "n03-own-generator")
    assert text(c).startswith("3 generator")
    assert "not even on its own objects" in refusal(c, "CapsuleAttributeError", "guard")


def test_04_writing_a_policy(executed):
    _, nb = executed("04-writing-a-policy")
    helptext = text(cell(nb, "n04-config-help"))
    for trait in (
        "readable_paths",
        "writable_paths",
        "denied_paths",
        "denied_imports",
        "audit_log",
    ):
        assert f"CapsulePolicy.{trait}=" in helptext
    assert "<table" in html(cell(nb, "n04-policy-view"))
    for ident in ("n04-denied-path", "n04-denied-runtime"):
        assert "denied paths" in refusal(cell(nb, ident), "CapsulePolicyError", "policy")
    # The ceiling names the trait, for a cell flag and for a session grant alike.
    for ident in ("n04-ceiling-cell", "n04-ceiling-session"):
        evalue = refusal(cell(nb, ident), "CapsulePolicyError", "policy")
        assert "outside the policy's ceiling" in evalue
        assert "c.CapsulePolicy.readable_paths" in evalue
    assert text(cell(nb, "n04-within-ceiling")) == "8"
    assert text(cell(nb, "n04-grantable-import")) == "['a', 'b', 'c']"
    for ident, module in (("n04-denied-import", "subprocess"), ("n04-denied-csv", "csv")):
        evalue = refusal(cell(nb, ident), "CapsulePolicyError", "policy")
        assert f"'{module}'" in evalue and "c.CapsulePolicy.denied_imports" in evalue
    assert "write-then-import" in refusal(
        cell(nb, "n04-write-then-import"), "CapsulePolicyError", "policy"
    )
    assert text(cell(nb, "n04-write-out")) == "'written'"
    assert text(cell(nb, "n04-written")) == "'8'"
    # The configuration file is what the separate IPython session enforces.
    out = text(cell(nb, "n04-config-file"))
    assert "readable_paths = ['/tmp/ipycap-policy-…/data'] | writable_paths = []" in out
    assert "CapsulePolicyError: read access to /etc is outside the policy's ceiling" in out
    # The capsule kernel is sealed: %config is refused, and so is anything beyond the file.
    sealed = text(cell(nb, "n04-sealed-config"))
    assert sealed.startswith("CapsuleSyntaxError") and "refused by the gate" in sealed
    request = text(cell(nb, "n04-sealed-request"))
    assert request.startswith("CapsuleRequestRefused") and "fixed at start" in request
    # The audit log: one JSON object per line, grant/use/expire/refuse in order.
    lines = [json.loads(line) for line in text(cell(nb, "n04-audit-log")).splitlines()]
    assert [e["event"] for e in lines] == [
        "policy",
        "grant",
        "grant",
        "use",
        "use",
        "expire",
        "refuse",
    ]
    assert lines[-1]["layer"] == "builtins" and "private/token.txt" in lines[-1]["what"]


#: The layer that must stop each escape of the gallery (lesson 05).
GALLERY_LAYERS = {
    "subclasses": "guard",
    "print-self": "guard",
    "bastion-self": "guard",
    "gi-frame": "guard",
    "traceback": "guard",
    "format": "guard",
    "format-map": "membrane",
    "formatter": "membrane",
    "nfkc": "membrane",
    "str-subclass": "membrane",
    "except-star": "gate",
    "object-getattribute": "guard",
    "exception-obj": "membrane",
    "reflected-eq": "membrane",
    "type-dict": "membrane",
    "globals-builtins": "membrane",
    "decorator-exec": "builtins",
    "metaclass-getitem": "builtins",
    "codecs": "builtins",
    "help": "builtins",
    "breakpoint": "builtins",
    "symlink": "builtins",
    "proc-root": "builtins",
    "library-open": "tripwire",
    "loader": "builtins",
    "builtins-name": "gate",
    "shell": "gate",
    "input": "builtins",
}
#: Refusals that surface as Python's own errors: the prose names the layer instead.
GALLERY_PLAIN = {"get-ipython": "NameError", "sys-modules": "AttributeError"}


def test_05_escape_gallery(executed):
    _, nb = executed("05-escape-gallery")
    cells = nb.cells
    gallery = {c.id[len("n05-g-") :]: i for i, c in enumerate(cells) if c.id.startswith("n05-g-")}
    attempts = set(gallery) - {"dunder-del"}  # part 1 of __del__ only plants the object
    assert len(attempts) >= 20
    assert set(GALLERY_LAYERS) | set(GALLERY_PLAIN) | {"dunder-del-later", "javascript"} == attempts
    for ident, layer in GALLERY_LAYERS.items():
        c = cells[gallery[ident]]
        evalue = refusal(c, error(c).ename, layer)
        assert "CANARY" not in text(c), ident
        # The prose before the attempt names the same layer.
        assert f"**Layer: {layer}" in cells[gallery[ident] - 1].source, ident
    for ident, ename in GALLERY_PLAIN.items():
        c = cells[gallery[ident]]
        assert error(c).ename == ename
        assert "**Layer: capsule builtins**" in cells[gallery[ident] - 1].source
    # __del__ runs later, in a trusted cell, and is still refused by the capsule's builtins.
    later = text(cells[gallery["dunder-del-later"]])
    assert later.startswith("Exception ignored in Parcel.__del__: CapsulePermissionError")
    assert "refused by the builtins" in later and "CANARY" not in later
    # JavaScript from a capsule is not published; the registry records the display refusal.
    js = cells[gallery["javascript"]]
    assert all(set(o.get("data", {})) <= {"text/plain"} for o in js.outputs)
    assert text(js) == "<IPython.core.display.Javascript object>"
    tally = text(cell(nb, "n05-tally"))
    for layer in ("builtins", "display", "guard", "membrane", "tripwire"):
        assert f"'{layer}'" in tally
    assert text(cell(nb, "n05-canaries")) == "('CANARY-SECRET-gallery', 'CANARY-TOKEN-vault')"


def test_06_capsule_kernel(executed):
    stored, nb = executed("06-capsule-kernel")
    assert stored.metadata.kernelspec.name == "capsule"
    assert text(cell(nb, "n06-first-cell")) == "12.25"
    assert text(cell(nb, "n06-shared-namespace")) == "24"  # one namespace across cells
    registry = cell(nb, "n06-list")
    assert len(_html_rows(registry)) >= 2 and ">math<" in html(registry)
    assert re.search(r"^OS confinement: \S", text(registry), re.M)
    refusal(cell(nb, "n06-import-os"), "CapsuleImportError", "builtins")
    refusal(cell(nb, "n06-write"), "CapsulePermissionError", "builtins")
    for ident in ("n06-config", "n06-shell"):
        refusal(cell(nb, ident), "CapsuleSyntaxError", "gate")
    # No stdin under nbclient: the request is refused, and the message says what to do.
    evalue = refusal(cell(nb, "n06-request"), "CapsuleRequestRefused", "kernel")
    assert "cannot answer prompts (no stdin)" in evalue and "c.CapsuleKernel.grants" in evalue
    refusal(cell(nb, "n06-input"), "CapsulePermissionError", "builtins")
    evalue = refusal(cell(nb, "n06-request-ceiling"), "CapsuleRequestRefused", "kernel")
    assert "outside the policy's ceiling" in evalue
    assert text(cell(nb, "n06-revoke")).strip() == "revoked cap-1 (import math)"
    log = _html_rows(cell(nb, "n06-log"))
    assert log[-1][1:5] == ("revoke", "cap-1", "import", "math")
    filtered = cell(nb, "n06-output-filter")
    assert all(set(o.get("data", {})) <= {"text/plain", "text/html"} for o in filtered.outputs)
    assert "<script" not in text(filtered) and "owned" not in text(filtered)
    assert html(filtered) == "<b>bold?</b>"  # sanitised HTML: the bold stays, the script goes


def test_07_data_notebook(executed):
    _, nb = executed("07-data-notebook")
    table = html(cell(nb, "n07-read-csv"))
    assert '<table border="1" class="dataframe">' in table and "<td>north</td>" in table
    assert text(cell(nb, "n07-groupby")) == "{'north': 270, 'south': 175}"
    plot = cell(nb, "n07-plot")
    assert any("image/png" in o.get("data", {}) for o in plot.outputs)
    evalue = refusal(cell(nb, "n07-exfiltrate"), "CapsulePermissionError", "polars profile")
    assert "private/token.txt" in evalue
    assert "CANARY-TOKEN" not in text(cell(nb, "n07-exfiltrate"))
    assert "by polars.read_csv (native I/O" in text(cell(nb, "n07-registry"))
