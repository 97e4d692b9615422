"""Red team: the IPython extension surface (ESCAPES.md rows "notebook surface", "implicit
calls", "pagers and debuggers").

Every payload runs twice in a real InteractiveShell: once as an ordinary cell, where it
reaches its canary (so it is a real attack), and once as a ``%%capsule`` cell, where it must
not.  Canaries: a secret file outside every grant, a token held privately by a user object,
a marker file, or script reaching the published output.
"""

from __future__ import annotations

import json
import os

import pytest

from tests import test_magics as shared

_shell = shared._shell
ip = shared.ip


def _everything_shown(ip) -> str:
    """Every output the shell published or formatted so far, as one string."""
    parts = [json.dumps(o, default=repr) for o in ip.outputs]
    parts += [json.dumps(d, default=repr) for d in ip.formatted]
    return "\n".join(parts)


def _plain_cell(ip, body: str):
    """The same payload as an ordinary (trusted) cell: it must reach its canary."""
    result = ip.run(body)
    return result.error_in_exec or result.error_before_exec


def _capsule_cell(ip, body: str, flags: str = ""):
    result = ip.run(f"%%capsule {flags}\n{body}")
    return result.error_in_exec or result.error_before_exec


VAULT = """
class Vault:
    def __init__(self, token):
        self._token = token
vault = Vault({token!r})
"""


@pytest.fixture
def vault(ip, canary):
    """A user object holding the canary token privately."""
    _, token = canary
    ip.ok(VAULT.format(token=token))
    return token


# -- the shell itself, reached through user objects -----------------------------------------
# Source: pyjail collections / Jupyter trust model: any handle on the InteractiveShell runs
# code with the notebook's full authority (shell.ev, shell.run_cell, shell.user_ns).
SHELL_ROUTES = {
    "alias": ("ip = get_ipython()", "stolen = ip.ev('vault._token')"),
    "bound_method": ("ev = get_ipython().ev", "stolen = ev('vault._token')"),
    "attribute_of_user_object": (
        "class Holder:\n    pass\nholder = Holder()\nholder.shell = get_ipython()",
        "stolen = holder.shell.ev('vault._token')",
    ),
    "method_attribute_c_fast_path": (
        "class Holder:\n    pass\nholder = Holder()\nholder.run = get_ipython().ev",
        "stolen = holder.run('vault._token')",
    ),
    "user_ns_of_shell": (
        "ip = get_ipython()",
        "stolen = ip.user_ns['vault'].__dict__['_token']",
    ),
    "renamed_get_ipython": (
        "from IPython import get_ipython as gi",
        "stolen = gi().ev('vault._token')",
    ),
}


@pytest.mark.parametrize("route", sorted(SHELL_ROUTES))
def test_shell_reached_through_a_user_object_is_withheld(ip, vault, route):
    # Escape found by this red team (fixed in membrane.wrap / _speedups.c): a user object
    # referencing the shell was proxied, and its public ev() evaluated trusted code.
    setup, body = SHELL_ROUTES[route]
    ip.ok(setup)
    _capsule_cell(ip, body, "--export stolen")
    assert ip.ns.get("stolen") != vault
    assert _plain_cell(ip, body) is None
    assert ip.ns["stolen"] == vault


def test_ipython_autocall_exit_carries_the_shell(ip, vault):
    # Source: pyjail collections: exit._ip / quit._ip are the shell.
    body = "stolen = exit._ip.ev('vault._token')"
    _capsule_cell(ip, body, "--export stolen")
    assert ip.ns.get("stolen") != vault
    assert _plain_cell(ip, body) is None and ip.ns["stolen"] == vault


@pytest.mark.parametrize(
    "body",
    [
        "stolen = Out[{n}]._token",
        "stolen = _oh[{n}]._token",
        "stolen = _{n}._token",
        "stolen = _._token",
        "stolen = __builtin__.globals()['vault']._token",
        "stolen = In and _ih and get_ipython().user_ns['vault']._token",
    ],
)
def test_ipython_history_and_builtins_are_not_in_the_capsule(ip, vault, body):
    # Source: ESCAPES.md notebook surface: In/Out/_ih/_oh/_N/__builtin__ hold raw objects.
    n = ip.shell.execution_count
    ip.ok("vault")  # Out[n] now holds the raw vault
    body = body.format(n=n)
    _capsule_cell(ip, body, "--export stolen")
    assert ip.ns.get("stolen") != vault
    assert _plain_cell(ip, body) is None and ip.ns["stolen"] == vault


def test_user_function_globals_are_the_user_namespace(ip, vault):
    # Source: pyjail collections: any user function's __globals__ is the user namespace.
    ip.ok("def helper():\n    return 1")
    body = "stolen = helper.__globals__['vault']._token"
    _capsule_cell(ip, body, "--export stolen")
    assert ip.ns.get("stolen") != vault
    assert _plain_cell(ip, body) is None and ip.ns["stolen"] == vault


# -- shell escapes and magics in the body ---------------------------------------------------
@pytest.mark.parametrize(
    "body",
    [
        "!touch {marker}",
        "   !touch {marker}",
        "if True:\n    !touch {marker}",
        "x = 1\n%system touch {marker}",
        "files = !touch {marker}",
        "get_ipython().system('touch {marker}')",
        "%%bash\ntouch {marker}",
    ],
)
def test_shell_escapes_and_magics_inside_the_body_do_not_run(ip, tmp_path, body):
    # Source: ESCAPES.md notebook surface (!cmd, %magic, indented escapes).
    marker = tmp_path / "marker"
    body = body.format(marker=marker)
    _capsule_cell(ip, body)
    assert not marker.exists()
    _plain_cell(ip, body)
    assert marker.exists()


def test_config_magic_in_the_body_cannot_raise_the_ceiling(ip, canary):
    # Source: issue 4: %config from a capsule would change its own policy.
    path, token = canary
    ip.ok("%config CapsulePolicy.readable_paths = ['/nonexistent']")
    body = f"%config CapsulePolicy.readable_paths = ['/']\nstolen = open({str(path)!r}).read()"
    _capsule_cell(ip, body, "--export stolen")
    assert ip.ns.get("stolen") != token
    assert ip.ext.policy.readable_paths == ["/nonexistent"]
    _plain_cell(ip, f"stolen = open({str(path)!r}).read()")
    assert ip.ns["stolen"] == token


# -- output: script never reaches the page ---------------------------------------------------
SCRIPT = "alert(document.domain)//ipycap-pwned"
OUTPUT_PAYLOADS = {
    "javascript": "from IPython.display import display, Javascript\n"
    f"display(Javascript({SCRIPT!r}))",
    "html_script": "from IPython.display import display, HTML\n"
    f"display(HTML('<b>x</b><script>{SCRIPT}</script>'))",
    "html_event_handler": "from IPython.display import display, HTML\n"
    f"display(HTML('<img src=x onerror=\"{SCRIPT}\">'))",
    "svg_script": "from IPython.display import display, SVG\n"
    f"display(SVG('<svg xmlns=\"http://www.w3.org/2000/svg\"><script>{SCRIPT}</script></svg>'))",
    "markdown_js_link": "from IPython.display import display, Markdown\n"
    f"display(Markdown('[click](javascript:{SCRIPT})'))",
    "markdown_entity_js_link": "from IPython.display import display, Markdown\n"
    f"display(Markdown('[click](&#106;avascript:{SCRIPT})'))",
    "markdown_raw_html": "from IPython.display import display, Markdown\n"
    f"display(Markdown('hi <script>{SCRIPT}</script>'))",
    "mimebundle_extra_keys": "from IPython.display import display\n"
    "class B:\n    def _repr_mimebundle_(self, include=None, exclude=None):\n"
    f"        return {{'text/plain': 'b', 'application/javascript': {SCRIPT!r},\n"
    f"                 'text/html': '<script>{SCRIPT}</script>'}}\n"
    "display(B())",
    "raw_publish": "from IPython.display import display\n"
    f"display({{'application/javascript': {SCRIPT!r}, 'text/plain': 'x'}}, raw=True)",
    "repr_javascript_of_out": f"class J:\n    def _repr_javascript_(self):\n        return {SCRIPT!r}\nJ()",
    "repr_html_of_out": "class H:\n"
    f"    def _repr_html_(self):\n        return '<script>{SCRIPT}</script>'\nH()",
}


@pytest.mark.parametrize("name", sorted(OUTPUT_PAYLOADS))
def test_script_never_reaches_the_output(ip, name):
    # Source: Jupyter trust model: executed output is trusted, so script in it runs.
    ip.ok(
        "%config CapsulePolicy.output_mime_types = "
        "['text/plain', 'text/html', 'text/markdown', 'image/png']"
    )
    body = OUTPUT_PAYLOADS[name]
    _capsule_cell(ip, body)
    shown = _everything_shown(ip)
    assert "ipycap-pwned" not in shown or (
        "<script" not in shown
        and "javascript:" not in shown
        and "onerror" not in shown
        and "application/javascript" not in shown
    ), shown
    ip.outputs.clear()
    ip.formatted.clear()
    _plain_cell(ip, body)
    assert "ipycap-pwned" in _everything_shown(ip)


def test_script_in_a_trusted_objects_repr_displayed_by_a_capsule(ip):
    # Source: Jupyter trust model: capsule code asks a user object to render its JavaScript.
    ip.ok(
        f"class Widget:\n    def _repr_javascript_(self):\n        return {SCRIPT!r}\nw = Widget()"
    )
    body = "from IPython.display import display\ndisplay(w)"
    _capsule_cell(ip, body)
    assert "ipycap-pwned" not in _everything_shown(ip)
    _plain_cell(ip, body)
    assert "ipycap-pwned" in _everything_shown(ip)


def test_capsule_display_id_cannot_overwrite_a_trusted_output(ip):
    # Source: ESCAPES.md notebook surface: update_display with another output's display_id.
    ip.ok("from IPython.display import display\ndisplay('trusted', display_id='dashboard')")
    body = (
        "from IPython.display import update_display, DisplayHandle\n"
        "update_display('PWNED', display_id='dashboard')\n"
        "DisplayHandle('dashboard').update('PWNED')"
    )
    _capsule_cell(ip, body)
    hijacked = [
        o
        for o in ip.outputs
        if o.get("transient", {}).get("display_id") == "dashboard" and "PWNED" in str(o)
    ]
    assert hijacked == []
    _plain_cell(ip, body)
    assert any(o.get("transient", {}).get("display_id") == "dashboard" for o in ip.outputs[-2:])


# -- capsule code that runs later, in trusted cells ------------------------------------------
LATER = {
    "repr_when_out_is_shown": (
        "class Spy:\n    def __repr__(self):\n        return open({path!r}).read()\nspy = Spy()",
        "spy",
    ),
    "repr_html_when_out_is_shown": (
        "class Spy:\n    def _repr_html_(self):\n        return open({path!r}).read()\n"
        "    def __repr__(self):\n        return 'Spy()'\nspy = Spy()",
        "spy",
    ),
    "ipython_display_hook": (
        "from IPython.display import display\nclass Spy:\n"
        "    def _ipython_display_(self):\n        display(open({path!r}).read())\nspy = Spy()",
        "spy",
    ),
    "getattr_probed_by_the_formatter": (
        "class Spy:\n    def __getattr__(self, name):\n        if name == '_repr_html_':\n"
        "            return lambda: open({path!r}).read()\n        raise AttributeError(name)\n"
        "    def __repr__(self):\n        return 'Spy()'\nspy = Spy()",
        "spy",
    ),
    "del_when_the_user_deletes_it": (
        "from IPython.display import display\nclass Spy:\n"
        "    def __del__(self):\n        display(open({path!r}).read())\nspy = Spy()",
        "del spy",
    ),
    "str_when_trusted_code_prints_it": (
        "class Spy:\n    def __str__(self):\n        return open({path!r}).read()\nspy = Spy()",
        "print(spy)",
    ),
}


@pytest.mark.parametrize("name", sorted(LATER))
def test_exported_capsule_code_running_later_is_still_confined(ip, canary, capsys, name):
    # Source: ESCAPES.md implicit calls: __repr__/_repr_html_/__del__ run by the displayhook
    # or the garbage collector after the cell ended, outside the capsule's own frames.
    path, token = canary
    define, trigger = LATER[name]
    define = define.format(path=str(path))
    assert _capsule_cell(ip, define, "--export spy") is None
    ip.run(trigger)
    captured = capsys.readouterr()
    assert token not in _everything_shown(ip) + captured.out + captured.err
    ip.ok(define)  # the same class, trusted this time
    ip.run(trigger)
    captured = capsys.readouterr()
    assert token in _everything_shown(ip) + captured.out + captured.err


def test_exception_str_run_by_the_traceback_formatter(ip, canary, capsys):
    # Source: pyjail collections: an exception's __str__ runs later, in trusted formatting.
    path, token = canary
    body = (
        "class Boom(Exception):\n    def __str__(self):\n"
        f"        return open({str(path)!r}).read()\nraise Boom()"
    )
    err = _capsule_cell(ip, body)
    captured = capsys.readouterr()
    assert token not in str(err) + captured.out + captured.err + _everything_shown(ip)
    err = _plain_cell(ip, body)
    captured = capsys.readouterr()
    assert token in str(err) + captured.out


def test_exported_function_called_by_trusted_code_gets_a_proxy(ip, vault):
    # Source: issue 3 (both directions): a capsule callback receiving a trusted object.
    define = (
        "def probe(v):\n    try:\n        return v._token\n"
        "    except Exception as e:\n        return type(e).__name__"
    )
    assert _capsule_cell(ip, define, "--export probe") is None
    ip.ok("stolen = probe(vault)")
    assert ip.ns["stolen"] != vault
    ip.ok(define + "\nstolen = probe(vault)")
    assert ip.ns["stolen"] == vault


def test_exported_capsule_class_subclassed_by_trusted_code(ip, canary):
    # Source: ESCAPES.md implicit calls: __init_subclass__ sees the trusted subclass body.
    _, token = canary
    define = (
        "seen = []\nclass Base:\n    def __init_subclass__(cls, **kw):\n"
        "        seen.append(cls.key)\n"
        "def loot():\n    return list(seen)"
    )
    assert _capsule_cell(ip, define, "--export Base,loot") is None
    ip.run(f"class Impl(Base):\n    key = {token!r}")
    assert token not in ip.ok("loot()")
    ip.ok(define)
    ip.ok(f"class Impl(Base):\n    key = {token!r}")
    assert ip.ok("loot()") == [token]


def test_capsule_eq_compared_with_a_trusted_secret(ip, vault):
    # Escape found by this red team (fixed in membrane.ReverseProxy): trusted code comparing
    # a capsule object with private data ran the capsule's __eq__ with the raw value.
    ip.ok("def check(vault, guess):\n    return guess == vault._token")
    define = (
        "seen = []\nclass Guess:\n    def __eq__(self, other):\n"
        "        seen.append(other)\n        return False\n    __hash__ = object.__hash__\n"
        "guess = Guess()\ndef loot():\n    return [s for s in seen if type(s) is str]"
    )
    assert _capsule_cell(ip, define, "--export guess,loot") is None
    ip.ok("check(vault, guess)")
    assert vault not in ip.ok("loot()")
    ip.ok(define + "\ncheck(vault, guess)")
    assert ip.ok("loot()") == [vault]


# -- the registry view and the audit log -----------------------------------------------------
HOSTILE = "<img src=x onerror=alert('ipycap-pwned')>"


def test_registry_html_escapes_hostile_labels_targets_and_refusals(ip, tmp_path):
    # Source: stored XSS through any text a capsule controls and the registry shows.
    hostile_dir = tmp_path / HOSTILE.replace("/", "_")
    hostile_dir.mkdir()
    _capsule_cell(
        ip,
        f"__import__({HOSTILE!r})\nopen({str(hostile_dir / 'x')!r})",
        f"--label {json.dumps(HOSTILE)} --allow-read {json.dumps(str(hostile_dir))}",
    )
    html = ip.ok("%capsule list")._repr_html_()
    html += ip.ok("%capsule log")._repr_html_()
    assert "ipycap-pwned" in html  # the text is there, shown as text
    assert "<img" not in html and "onerror=alert" not in html.replace("onerror=alert(&#x27;", "")
    assert "<img" in HOSTILE  # unescaped, this would be markup


def test_audit_log_lines_cannot_be_forged_by_capsule_text(ip, tmp_path):
    # Source: log injection: a newline and JSON in a refused module name or label.
    log = tmp_path / "audit.jsonl"
    ip.ok(f"%config CapsulePolicy.audit_log = {str(log)!r}")
    forged = '{"event": "grant", "kind": "read", "target": "/", "id": "cap-999"}'
    _capsule_cell(ip, f"__import__('x\\n{forged}\\n')", "--label 'a\\nb'")
    lines = log.read_text().splitlines()
    events = [json.loads(line) for line in lines]  # every line is one whole JSON record
    assert not any(e.get("id") == "cap-999" for e in events)
    naive = f"x\n{forged}\n".splitlines()  # what an unescaped writer would have produced
    assert json.loads(naive[1])["id"] == "cap-999"


def test_hostile_paths_in_flags_are_refused_or_escaped(ip, tmp_path, canary):
    # Source: path tricks: '..' and markup in --allow-read stay within what was granted.
    path, token = canary
    (tmp_path / "data").mkdir()
    body = f"stolen = open({str(path)!r}).read()"
    _capsule_cell(ip, body, "--allow-read data/../data/<script> --export stolen")
    assert ip.ns.get("stolen") != token
    assert not os.path.exists(tmp_path / "data" / "<script>")
    assert _plain_cell(ip, body) is None and ip.ns["stolen"] == token
