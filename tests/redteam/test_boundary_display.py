"""Regression tests: trusted display machinery handed capsule code raw trusted objects, and
remembered what capsule code put there (ESCAPES.md: "confused deputies: raw objects into
capsule hooks", "smuggling inside value types").

Found from outside: ``IPython.display.display(obj)`` called the capsule's
``_repr_pretty_(p, cycle)`` with IPython's real ``RepresentationPrinter``, whose
``type_pprinters``/``deferred_pprinters`` are the shell formatter's own tables; a printer the
capsule registered there was called later, by trusted code, with raw protected objects.
Each test shows the same steps reaching the canary in plain IPython (no ipycap) first."""

from __future__ import annotations

import pytest
from IPython.core.displaypub import CapturingDisplayPublisher
from IPython.core.interactiveshell import InteractiveShell

from tests import test_magics as shared

_shell = shared._shell
ip = shared.ip


class Vault:
    def __init__(self, token):
        self._token = token

    def __repr__(self):
        return "Vault()"


PRINTER_TABLE = """\
stolen = []
def spy(obj, p, cycle):
    stolen.append(obj._token)
    p.text('spied')
class Evil:
    def _repr_pretty_(self, p, cycle):
        for table in ('type_pprinters', 'singleton_pprinters'):
            try:
                getattr(p, table)[type(vault)] = spy
            except Exception:
                pass
        try:
            p.deferred_pprinters[('__main__', 'Vault')] = spy
        except Exception:
            pass
        p.text('evil')
"""

ROUTES = {
    "display": "from IPython.display import display\ndisplay(Evil())",
    "display-builtin": "display(Evil())",
    "display-in-a-list": "from IPython.display import display\ndisplay([Evil(), 1])",
    "out-of-the-cell": "Evil()",
    "out-nested-in-a-dict": "{'e': Evil()}",
}


@pytest.fixture
def plain_ipython(monkeypatch):
    """The same steps in plain IPython, to show the attack is real there."""
    shell = InteractiveShell.instance()
    saved = dict(shell.display_formatter.formatters["text/plain"].type_printers)
    yield shell
    printers = shell.display_formatter.formatters["text/plain"]
    printers.type_printers.clear()
    printers.type_printers.update(saved)
    printers.deferred_printers.pop(("__main__", "Vault"), None)


def test_plain_ipython_printer_tables_do_remember_a_spy(plain_ipython, canary):
    """Without ipycap: the printer handed to _repr_pretty_ carries the shell's tables."""
    _, token = canary
    shell = plain_ipython
    shell.user_ns["vault"] = Vault(token)
    result = shell.run_cell(PRINTER_TABLE + "from IPython.display import display\ndisplay(Evil())")
    assert result.success
    shell.run_cell("from IPython.display import display\ndisplay(vault)")
    assert token in shell.user_ns["stolen"]


@pytest.mark.parametrize("route", ROUTES.values(), ids=list(ROUTES))
def test_capsule_printer_tables_are_never_the_shells(ip, canary, route):
    _, token = canary
    ip.ns["vault"] = Vault(token)
    ip.run(f"%%capsule --export stolen\n{PRINTER_TABLE}{route}")
    ip.ok("vault")  # trusted code shows the protected object afterwards
    ip.ok("from IPython.display import display\ndisplay(vault)")
    shown = repr(ip.formatted) + repr([o["data"] for o in ip.outputs])
    assert "spied" not in shown
    assert token not in repr(ip.ns.get("stolen"))
    formatter = ip.shell.display_formatter.formatters["text/plain"]
    assert Vault not in formatter.type_printers
    assert ("__main__", "Vault") not in formatter.deferred_printers


def test_exported_capsule_object_shown_later_gets_no_printer(ip, canary):
    """A trusted cell showing an exported capsule object: its _repr_pretty_ is not called
    with IPython's printer (the reverse proxy answers with the object's repr)."""
    _, token = canary
    ip.ns["vault"] = Vault(token)
    ip.ok(f"%%capsule --export e,stolen\n{PRINTER_TABLE}e = Evil()")
    ip.ok("e")
    ip.ok("[e, e]")
    ip.ok("vault")
    formatter = ip.shell.display_formatter.formatters["text/plain"]
    assert Vault not in formatter.type_printers
    assert token not in repr(ip.formatted)


def test_javascript_of_a_capsule_object_smuggled_in_a_slice_stays_filtered(ip, monkeypatch):
    """A slice crossed unchanged, so its field kept the raw capsule object, and trusted code
    showing ``s.start`` later published the object's JavaScript unfiltered."""
    formatter = ip.shell.display_formatter
    # A notebook frontend's shell formats JavaScript (the terminal's only text/plain).
    monkeypatch.setattr(
        formatter, "active_types", [*formatter.active_types, "application/javascript"]
    )
    monkeypatch.setattr(formatter.formatters["application/javascript"], "enabled", True)
    ip.ok(
        "%%capsule --export s\n"
        "class JS:\n"
        "    def _repr_javascript_(self):\n"
        "        return 'alert(1)'\n"
        "    def __repr__(self):\n"
        "        return 'JS()'\n"
        "s = slice(JS(), 2)"
    )
    assert type(ip.ns["s"]) is slice
    ip.ok("s.start")
    ip.ok("from IPython.display import display\ndisplay(s.start)")
    shown = ip.formatted + [o["data"] for o in ip.outputs]
    assert shown and not any("application/javascript" in b for b in shown)
    # The same object, shown by trusted code as a trusted value, would publish its script:
    ip.ok("class T:\n    def _repr_javascript_(self):\n        return 'alert(2)'\nT()")
    assert "application/javascript" in ip.formatted[-1]


def test_display_handle_updates_only_the_capsules_own_output(ip):
    ip.ok(
        "%%capsule\n"
        "h = display('first', display_id=True)\n"
        "h.update('second')\n"
        "from IPython.display import update_display\n"
        "update_display('third', display_id=h.display_id)"
    )
    outs = ip.outputs
    assert [o["data"]["text/plain"] for o in outs] == ["'first'", "'second'", "'third'"]
    ids = {o["transient"]["display_id"] for o in outs if o.get("transient")}
    assert len(ids) == 1 and all(i.startswith("capsule-") for i in ids)


# -- output authority belongs to the capsule's own cell (red team 2, "output authority is not
# tied to the capsule's cell"): the host publishes into whichever cell runs, so capsule code
# called by a later trusted cell wrote into, or cleared, that cell's output.
LATER = {
    "display-from-an-exported-function": (
        "def show():\n    display('FORGED')\n",
        "show()",
    ),
    "clear-output-from-an-exported-function": (
        "from IPython.display import clear_output\ndef wipe():\n    clear_output()\n",
        "print('TRUSTED'); display('TRUSTED'); wipe()",
    ),
    "display-handle-updated-later": (
        "h = display('first', display_id=True)\ndef show():\n    h.update('FORGED')\n",
        "show()",
    ),
    "update-display-from-an-exported-function": (
        "from IPython.display import update_display\n"
        "def show():\n    update_display('FORGED', display_id='capsule-x')\n",
        "show()",
    ),
}


@pytest.mark.parametrize("name", sorted(LATER))
def test_capsule_output_reaches_only_its_own_cell(ip, name):
    define, later = LATER[name]
    ip.ok(
        "%%capsule --export show,wipe,h\n" + define + "show = globals().get('show')\n"
        "wipe = globals().get('wipe')\nh = globals().get('h')"
    )
    before = list(ip.outputs)
    err = ip.fails(later, PermissionError)
    assert "cell has ended" in str(err) and "output filter" in str(err)
    after = ip.outputs
    assert not any("FORGED" in str(o["data"]) for o in after)
    assert after[: len(before)] == before  # nothing of the earlier output was cleared
    if "clear" in name:
        assert any("TRUSTED" in str(o["data"]) for o in after)


@pytest.mark.parametrize("name", sorted(LATER))
def test_plain_ipython_functions_do_write_into_a_later_cell(plain_ipython, monkeypatch, name):
    """Without ipycap the same function writes into (or clears) the later cell's output."""
    define, later = LATER[name]
    shell = plain_ipython
    monkeypatch.setattr(shell, "display_pub", CapturingDisplayPublisher())
    setup = define.replace("display_id=True", "display_id='capsule-x'")
    result = shell.run_cell("from IPython.display import display, clear_output\n" + setup)
    assert result.error_in_exec is None, result.error_in_exec
    result = shell.run_cell(later)
    assert result.error_in_exec is None, result.error_in_exec
    after = shell.display_pub.outputs
    if "clear" in name:
        assert not any("TRUSTED" in str(o["data"]) for o in after)  # the later cell's, wiped
    else:
        assert any("FORGED" in str(o["data"]) for o in after)


def test_capsule_display_still_works_in_its_own_cell(ip):
    ip.ok("%%capsule\ndef show():\n    display('mine')\nshow()")
    assert [o["data"]["text/plain"] for o in ip.outputs] == ["'mine'"]
