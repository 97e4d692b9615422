"""Red team: the capsule kernel's protocol doors, attacked through jupyter_client.

Every payload aims at a canary this module creates: a secret file outside the kernel's
ceiling, a private token of a protected startup object (``vault._token``), an environment
variable of the kernel process, a literal in the admin's startup source, marker files written
by the trusted objects' hooks, and a ``calls`` list that capsule-defined hooks append to.  Each
test sends the same request to a stock ipykernel (``python -m ipykernel install --prefix``,
running the same startup file as ``exec_files``) and shows it reaching the canary there, so
each payload is a real attack and the capsule kernel is what stops it.  Doors that evaluate
nothing in a stock kernel either are pinned on the capsule kernel only, and say so.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager

from ipycap.engine.approval import APPROVAL_PREFIX
from tests.kernel.conftest import execute, value_of

pytestmark = pytest.mark.kernel

RT = Path(os.environ["HOME"]).parent / "redteam-kernel-doors"
PREFIX, WORK, OUTSIDE, MARKS = (RT / n for n in ("prefix", "work", "outside", "marks"))
SECRET = OUTSIDE / "secret.txt"
TOKEN = "VAULT-" + uuid.uuid4().hex[:12]  # the protected object's private state
SECRET_TEXT = "OUTSIDE-" + uuid.uuid4().hex[:12]  # a file outside the ceiling
ENV_TOKEN = "ENV-" + uuid.uuid4().hex[:12]  # the kernel process's environment
SOURCE_TOKEN = "SOURCE-" + uuid.uuid4().hex[:12]  # a literal in the admin's startup source
CANARIES = (TOKEN, SECRET_TEXT, ENV_TOKEN, SOURCE_TOKEN)

STARTUP = '''
"""The admin's protected objects (trusted code, run at kernel start)."""
import threading
import warnings

from comm import get_comm_manager

MARKS = {marks!r}


def _mark(text):
    with open(MARKS + "/" + text, "w") as f:
        f.write(text)


class Vault:
    """A protected object with a private token; every hook leaves a mark when it runs."""

    def __init__(self):
        self._token = {token!r}

    @property
    def balance(self):
        _mark("vault-property")
        return 100

    def __getattr__(self, name):
        _mark("vault-getattr")
        raise AttributeError(name)

    def __dir__(self):
        _mark("vault-dir")
        return ["balance"]

    def __repr__(self):
        _mark("vault-repr")
        return "Vault(" + self._token + ")"

    def keys(self):
        _mark("vault-keys")
        return ["a"]

    def __getitem__(self, key):
        _mark("vault-getitem")
        return 1

    def __class_getitem__(cls, item):
        _mark("vault-class-getitem")
        return cls


vault = Vault()


def read_file(path):
    try:
        with open(path) as f:
            return "read: " + f.read()
    except OSError as e:
        return "refused: " + type(e).__name__


def write_file(path):
    try:
        with open(path, "w") as f:
            f.write("x")
        return "written"
    except OSError as e:
        return "refused: " + type(e).__name__


def in_thread(func, *args):
    out = []
    t = threading.Thread(target=lambda: out.append(func(*args)))
    t.start()
    t.join()
    return out[0]


def legacy(loud=False):
    """A trusted helper whose source holds a key (and which warns, so its file is cached)."""
    key = {source!r}
    if loud:
        warnings.warn("legacy() is deprecated", stacklevel=1)
    return len(key)


def _opened(comm, msg):
    _mark("comm-opened")
    comm.on_msg(lambda m: _mark("comm-msg"))


get_comm_manager().register_target("probe", _opened)
legacy(loud=True)
'''

# Capsule-side hooks (the same cell runs in both kernels): each appends to ``calls``.
HOOKS = """
import dataclasses
calls = []

class Spy:
    def __getattr__(self, name):
        calls.append('getattr')
        return 1
    def __dir__(self):
        calls.append('dir')
        return ['zz']
    def __repr__(self):
        calls.append('repr')
        return 'spy'
    def keys(self):
        calls.append('keys')
        return ['alpha']
    def __getitem__(self, key):
        calls.append('getitem')
        return 1
    @property
    def prop(self):
        calls.append('prop')
        return 'p'

class Evil:
    @property
    def __class__(self):
        calls.append('class')
        return int

class Collide:
    def __hash__(self):
        return hash('x')
    def __eq__(self, other):
        calls.append('eq')
        return False

class Desc:
    def __get__(self, obj, owner=None):
        calls.append('get')
        return 1

class Holder:
    d = Desc()

class Script:
    def _repr_javascript_(self):
        return 'document.title = 1'
    def _repr_html_(self):
        return '<script>document.title = 2</script>'

spy, evil, holder = Spy(), Evil(), Holder()
collide = Holder()
collide.__dict__[Collide()] = 1
"""


def _install(*args: str) -> None:
    subprocess.run([sys.executable, "-m", *args], check=True, capture_output=True, timeout=120)


@pytest.fixture(scope="module")
def ksm():
    """The startup file, the canaries and three kernelspecs in a private prefix."""
    for d in (PREFIX, WORK, OUTSIDE, MARKS):
        d.mkdir(parents=True, exist_ok=True)
    SECRET.write_text(SECRET_TEXT)
    (OUTSIDE / "payload.py").write_text(f"open({str(MARKS / 'run-payload')!r}, 'w').close()\n")
    startup = PREFIX / "startup.py"
    startup.write_text(
        STARTUP.format(marks=str(MARKS), token=TOKEN, source=SOURCE_TOKEN), encoding="utf-8"
    )
    config = PREFIX / "redteam_kernel_config.py"
    config.write_text(f"c.CapsuleKernel.protected_startup = {str(startup)!r}\n")
    where = ("--prefix", str(PREFIX))
    _install("ipycap.kernel", "install", *where, "--name", "capsule", "--config", str(config))
    _install(
        "ipycap.kernel", "install", *where, "--name", "capsule-confined",
        "--config", str(config), "--confine", "on",
    )  # fmt: skip
    _install("ipykernel", "install", *where, "--name", "python3")
    ksm = KernelSpecManager(kernel_dirs=[str(PREFIX / "share" / "jupyter" / "kernels")])
    ksm.startup = startup
    return ksm


def _start(ksm, name: str, extra=()):
    km = KernelManager(kernel_name=name, kernel_spec_manager=ksm)
    env = {"RT_ENV_SECRET": ENV_TOKEN, **os.environ}  # first: inside a truncated repr
    km.start_kernel(cwd=str(WORK), env=env, extra_arguments=list(extra))
    kc = km.client()
    kc.start_channels()
    kc.wait_for_ready(timeout=60)
    reply, _, _ = execute(kc, HOOKS)
    assert reply["status"] == "ok", reply
    return km, kc


@pytest.fixture(scope="module")
def capsule(ksm):
    km, kc = _start(ksm, "capsule")
    yield kc
    kc.stop_channels()
    km.shutdown_kernel(now=True)


@pytest.fixture(scope="module")
def stock(ksm):
    km, kc = _start(ksm, "python3", [f"--IPKernelApp.exec_files={[str(ksm.startup)]!r}"])
    yield kc
    kc.stop_channels()
    km.shutdown_kernel(now=True)


@pytest.fixture(autouse=True)
def _clean_marks(ksm):
    for p in MARKS.iterdir():
        p.unlink()


def marks() -> set[str]:
    return {p.name for p in MARKS.iterdir()}


def calls(kc) -> list:
    """What the capsule-defined hooks recorded (and a fresh list for the next payload)."""
    recorded = ast.literal_eval(value_of(kc, "calls"))
    execute(kc, "calls.clear()")
    return recorded


def reached(*messages) -> set[str]:
    """Which canaries appear anywhere in ``messages`` (replies, outputs, prompts)."""
    text = json.dumps(messages, default=str)
    return {c for c in CANARIES if c in text}


def request(kc, msg_type: str, content: dict, channel: str = "shell") -> dict:
    """Send one request; return the reply message."""
    chan = kc.shell_channel if channel == "shell" else kc.control_channel
    msg = kc.session.msg(msg_type, content)
    chan.send(msg)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        reply = chan.get_msg(timeout=20)
        if reply["parent_header"].get("msg_id") == msg["header"]["msg_id"]:
            return reply
    raise TimeoutError(msg_type)


def inspect(kc, code: str, detail: int = 0) -> dict:
    return request(
        kc, "inspect_request", {"code": code, "cursor_pos": len(code), "detail_level": detail}
    )["content"]


def complete(kc, code: str) -> list[str]:
    return request(kc, "complete_request", {"code": code, "cursor_pos": len(code)})["content"][
        "matches"
    ]


# -- execute_request: user_expressions, magics, help lines ---------------------------------------
EXPRESSIONS = {
    "env": "__import__('os').environ['RT_ENV_SECRET']",
    "file": f"open({str(SECRET)!r}).read()",
    "token": "vault._token",
    "getattr": "getattr(vault, '_token')",
    "vars": "vars(vault)",
    "shell": "get_ipython().user_ns['vault']._token",
    "globals": "read_file.__globals__['vault']._token",
}


@pytest.mark.parametrize(
    "variant",
    [{}, {"silent": True}, {"store_history": False}, {"stop_on_error": False}],
    ids=["plain", "silent", "no-history", "no-stop-on-error"],
)
def test_user_expressions_reach_no_canary(capsule, stock, variant):
    """A stock kernel evaluates user_expressions with full authority; here they are capsule
    code and every one of these fails."""
    reply, outputs, _ = execute(capsule, "y = 5", user_expressions=EXPRESSIONS, **variant)
    results = reply["user_expressions"]
    assert set(results) == set(EXPRESSIONS)
    assert all(r["status"] == "error" for r in results.values()), results
    assert reached(reply, outputs) == set()
    reply, outputs, _ = execute(stock, "y = 5", user_expressions=EXPRESSIONS, **variant)
    assert reached(reply) == {TOKEN, SECRET_TEXT, ENV_TOKEN}
    assert all(r["status"] == "ok" for r in reply["user_expressions"].values())


def test_user_expression_output_cannot_carry_script(capsule, stock):
    reply, _, _ = execute(capsule, "pass", user_expressions={"s": "Script()"})
    data = reply["user_expressions"]["s"]["data"]
    # text/html is published by default, sanitised: the script is gone, the JavaScript dropped.
    assert set(data) == {"text/plain", "text/html"}, data
    assert "script" not in data["text/html"] and "document.title" not in data["text/html"]
    reply, _, _ = execute(stock, "pass", user_expressions={"s": "Script()"})
    assert "application/javascript" in reply["user_expressions"]["s"]["data"]


SHELL_PAYLOADS = {
    "bang": (f"!cat {SECRET}", SECRET_TEXT),
    "bang-after-command": (f"!cat {SECRET}\n%capsule list", SECRET_TEXT),
    "system-call": (f"get_ipython().system('cat {SECRET}')", SECRET_TEXT),
    "cell-magic-bash": (f"%%bash\ncat {SECRET}", SECRET_TEXT),
    "run": (f"%run {OUTSIDE / 'payload.py'}", "run-payload"),
    "writefile": (f"%%writefile {MARKS / 'writefile'}\nx", "writefile"),
    "load-ext-then-bang": (f"%load_ext ipycap\n!cat {SECRET}", SECRET_TEXT),
    "config-then-bang": (f"%config InteractiveShell.autocall = 1\n!cat {SECRET}", SECRET_TEXT),
}


@pytest.mark.parametrize("name", sorted(SHELL_PAYLOADS))
def test_magics_and_shell_escapes_reach_nothing(capsule, stock, name):
    code, canary = SHELL_PAYLOADS[name]
    reply, outputs, _ = execute(capsule, code)
    assert reply["status"] == "error", reply
    assert reached(reply, outputs) == set() and canary not in marks()
    reply, outputs, _ = execute(stock, code)
    assert canary in reached(reply, outputs) or canary in marks()


@pytest.mark.parametrize(
    "line",
    [
        "%capsule  request read {out}",
        "%capsule\trequest read {out}",
        "   %capsule request read {out}",
        "%capsule\u00a0request read {out}",
        "\uff05capsule request read {out}",
        "%capsule request read {out}\u2028open({secret!r}).read()",
        "%%capsule\nopen({secret!r}).read()",
        "x = 1; %capsule request read {out}",
        "%capsule request read {out} ; open({secret!r}).read()",
    ],
)
def test_odd_capsule_lines_never_prompt_or_grant(capsule, line):
    """%capsule lines with odd spacing, Unicode look-alikes, a cell magic form, or code
    after them: none asks the human, none grants, none reads the secret.  (A stock kernel
    has no %capsule: this door exists only here.)"""
    code = line.format(out=OUTSIDE, secret=str(SECRET))
    reply, outputs, prompts = execute(capsule, code, stdin_answer="y")
    assert prompts == [] and reached(reply, outputs) == set()
    reply, outputs, _ = execute(capsule, f"open({str(SECRET)!r}).read()")
    assert reply["ename"] == "CapsulePermissionError"


HELP_PAYLOADS = {
    "private-attr": ("vault._token?", {TOKEN}),
    "private-attr-prefix": ("?vault._token", {TOKEN}),
    "private-attr-detail": ("vault._token??", {TOKEN}),
    "repr-of-protected": ("vault?", {TOKEN, "vault-repr"}),
    "repr-of-protected-detail": ("vault??", {TOKEN, "vault-repr"}),
    "env-through-module-attrs": ("dataclasses.inspect.os.environ._data??", {ENV_TOKEN}),
    "trusted-source": ("legacy??", {SOURCE_TOKEN}),
}


@pytest.mark.parametrize("name", sorted(HELP_PAYLOADS))
def test_help_lines_reveal_nothing(capsule, stock, name):
    """``obj?`` in a cell: the capsule kernel's static inspector never shows private state,
    module internals the capsule cannot import, or the admin's source."""
    code, canaries = HELP_PAYLOADS[name]
    reply, outputs, _ = execute(capsule, code)
    assert reached(reply, outputs) == set() and marks() == set()
    reply, outputs, _ = execute(stock, code)
    assert canaries <= reached(reply, outputs) | marks()


@pytest.mark.parametrize("code", ["open({secret!r})?", "(lambda: 1)()?", "open({secret!r})??"])
def test_help_on_calls_runs_nothing(capsule, stock, code):
    """Help on a call expression: a syntax error in both kernels (pinned so it stays one)."""
    code = code.format(secret=str(SECRET))
    for kc in (capsule, stock):
        reply, outputs, _ = execute(kc, code)
        assert reply["status"] == "error" and reached(reply, outputs) == set()


def test_explain_of_protected_objects_refused(capsule, stock):
    """Regression: ``%capsule explain vault`` ran the explorer's raw column (trusted
    ``vars``, ``repr``, iteration) on the protected object: its private token went into the
    cell's output and its hooks ran with full authority.  The cell's own objects can still
    be explained.  The same command in a stock kernel with the extension shows the token."""
    execute(capsule, "v = vault\nclass Own:\n    def m(self):\n        return 1\nown = Own()")
    for name in ("vault", "v", "read_file", "dataclasses", "dataclasses.inspect.os"):
        reply, outputs, _ = execute(capsule, f"%capsule explain {name}")
        assert reply["status"] == "error" and reached(reply, outputs) == set(), name
    assert marks() == set()
    reply, outputs, _ = execute(capsule, "%capsule explain own")
    assert reply["status"] == "ok" and "raw object" in json.dumps(outputs)
    calls(capsule)  # the raw column formats own.m.__globals__: capsule reprs ran (tripwire on)
    reply, outputs, _ = execute(stock, "%load_ext ipycap\n%capsule explain vault")
    assert reached(reply, outputs) == {TOKEN} and "vault-repr" in marks()


# -- inspect_request and complete_request ------------------------------------------------------
INSPECT_PAYLOADS = {
    "private-attr": ("vault._token", {TOKEN}, []),
    "protected-repr": ("vault", {"vault-repr"}, []),
    "protected-getattr": ("vault.missing", {"vault-getattr"}, []),
    "env": ("dataclasses.inspect.os.environ._data", {ENV_TOKEN}, []),
    "trusted-source": ("legacy", {SOURCE_TOKEN}, []),
    "capsule-getattr": ("spy.missing", set(), ["getattr"]),
    "capsule-repr": ("spy", set(), ["repr"]),
    "capsule-class-property": ("evil", set(), ["class"]),
    "capsule-descriptor": ("holder.d", set(), ["get"]),
}


@pytest.mark.parametrize("name", sorted(INSPECT_PAYLOADS))
def test_inspect_evaluates_nothing(capsule, stock, name):
    code, canaries, hooks = INSPECT_PAYLOADS[name]
    for detail in (0, 1):
        assert reached(inspect(capsule, code, detail)) == set()
    assert marks() == set() and calls(capsule) == []
    stock_replies = [inspect(stock, code, detail) for detail in (0, 1)]
    assert canaries <= reached(*stock_replies) | marks()
    assert set(hooks) <= set(calls(stock))


def test_inspect_never_runs_capsule_eq_or_class(capsule):
    """Regression: the inspector's own machinery ran capsule code: ``isinstance`` read a
    capsule ``__class__`` property, and a dict lookup compared a capsule key with ``==``."""
    for code in ("evil", "evil.x", "collide.x", "collide", "Evil", "Collide"):
        inspect(capsule, code, 1)
        complete(capsule, code + ".")
    assert calls(capsule) == []


COMPLETE_PAYLOADS = {
    "protected-dir": ("vault.", {"vault-dir"}, []),
    "protected-property": ("vault.balance.", {"vault-property"}, []),
    "capsule-dir": ("spy.", set(), ["dir"]),
    "capsule-property": ("spy.prop.", set(), ["prop"]),
    "path-outside-ceiling": (f"open('{OUTSIDE}/", {"secret.txt"}, []),
}


@pytest.mark.parametrize("name", sorted(COMPLETE_PAYLOADS))
def test_completion_evaluates_nothing(capsule, stock, name):
    code, canaries, hooks = COMPLETE_PAYLOADS[name]
    matches = complete(capsule, code)
    assert not any("secret" in m or "_token" in m for m in matches), matches
    assert marks() == set() and calls(capsule) == []
    matches = complete(stock, code)
    found = marks() | {c for c in canaries if any(c in m for m in matches)}
    assert canaries <= found
    assert set(hooks) <= set(calls(stock))


def test_completion_hides_private_names_and_keys(capsule):
    """No private names of protected objects, no dict-key completion calling ``keys()``, no
    modules the capsule may not import (the stock completer lists them all)."""
    assert complete(capsule, "vault._") == []
    assert complete(capsule, "dataclasses.inspect.os.") == []
    complete(capsule, "spy['")
    complete(capsule, "vault['")
    assert calls(capsule) == [] and marks() == set()


# -- other shell-channel doors -----------------------------------------------------------------
def test_history_and_is_complete_add_nothing_trusted(capsule):
    """History holds exactly the cells sent (the user's own), never the startup source;
    is_complete compiles nothing it would run.  Neither is a door in a stock kernel either."""
    cells = ["h1 = 1", "%capsule list"]
    for cell in cells:
        execute(capsule, cell)
    hist = request(
        capsule,
        "history_request",
        {"hist_access_type": "tail", "n": 2, "raw": True, "output": False},
    )
    assert [h[2] for h in hist["content"]["history"]] == cells
    assert reached(hist) == set()
    for code in (f"!touch {MARKS / 'x'}", f"get_ipython().system('touch {MARKS / 'x'}')"):
        reply = request(capsule, "is_complete_request", {"code": code})
        assert reply["content"]["status"] in ("complete", "invalid")
    assert marks() == set()


def _comm_open(kc, comm_id: str) -> None:
    msg = kc.session.msg("comm_open", {"comm_id": comm_id, "target_name": "probe", "data": {}})
    kc.shell_channel.send(msg)
    msg = kc.session.msg("comm_msg", {"comm_id": comm_id, "data": {"x": 1}})
    kc.shell_channel.send(msg)
    request(kc, "kernel_info_request", {})  # both handled once this is answered
    time.sleep(0.2)


def test_frontend_comm_open_refused_and_not_listed(capsule, stock):
    _comm_open(capsule, uuid.uuid4().hex)
    info = request(capsule, "comm_info_request", {})["content"]
    assert info["comms"] == {} and marks() == set()
    comm_id = uuid.uuid4().hex
    _comm_open(stock, comm_id)
    assert {"comm-opened", "comm-msg"} <= marks()
    info = request(stock, "comm_info_request", {})["content"]
    assert info["comms"][comm_id]["target_name"] == "probe"


def test_debugger_refused_and_not_advertised(capsule, stock):
    info = request(capsule, "kernel_info_request", {})["content"]
    assert info["debugger"] is False
    assert "debugger" not in info["supported_features"]
    stock_info = request(stock, "kernel_info_request", {})["content"]
    assert "debugger" in stock_info["supported_features"]
    for command, arguments in (
        ("richInspectVariables", {"variableName": "vault"}),
        ("inspectVariables", {}),
        ("evaluate", {"expression": "vault._token"}),
    ):
        content = {"type": "request", "seq": 1, "command": command, "arguments": arguments}
        reply = request(capsule, "debug_request", content, "control")["content"]
        assert reply["success"] is False and reached(reply) == set()
    content = {
        "type": "request",
        "seq": 1,
        "command": "richInspectVariables",
        "arguments": {"variableName": "vault"},
    }
    assert reached(request(stock, "debug_request", content, "control")) == {TOKEN}


def test_subshells_refused(capsule, stock):
    for kind in ("create", "list", "delete"):
        content = {"subshell_id": "x"} if kind == "delete" else {}
        reply = request(capsule, f"{kind}_subshell_request", content, "control")
        assert reply["content"]["status"] == "error"
    reply = request(stock, "create_subshell_request", {}, "control")
    assert reply["content"]["status"] == "ok" and reply["content"]["subshell_id"]


def test_execute_on_the_control_channel_refused(capsule, stock):
    """Regression: ipykernel accepts every shell request on the control channel, so an
    execute_request there ran a capsule cell on the control thread, beside the shell's (the
    concurrency the subshell refusal exists to prevent)."""
    content = {
        "code": "ctl = 1",
        "silent": False,
        "store_history": False,
        "user_expressions": {"s": f"read_file({str(SECRET)!r})"},
        "allow_stdin": False,
        "stop_on_error": True,
    }
    reply = request(capsule, "execute_request", content, "control")["content"]
    assert reply["status"] == "error" and reply["ename"] == "CapabilityError"
    assert execute(capsule, "ctl")[0]["ename"] == "NameError"
    reply = request(stock, "execute_request", content, "control")["content"]
    assert reply["status"] == "ok" and reached(reply) == {SECRET_TEXT}


PHISHING = {
    "input": "input('Password: ')",
    "getpass": "import getpass\ngetpass.getpass('Password: ')",
    "input-in-repr": "class Ask:\n    def __repr__(self):\n        return input('Password: ')\nAsk()",
}


@pytest.mark.parametrize("name", sorted(PHISHING))
def test_capsule_cannot_ask_for_a_password(capsule, stock, name):
    # No prompt at all: getpass is not a grantable stdlib module (CapsulePolicy.
    # grantable_stdlib), so not even the kernel's question for its import is asked.
    approvals = []
    for answer in ("hunter2", "y"):
        reply, outputs, prompts = execute(capsule, PHISHING[name], stdin_answer=answer)
        assert prompts == approvals and "hunter2" not in json.dumps([reply, outputs])
        assert reply["status"] == "error"
    reply, outputs, prompts = execute(stock, PHISHING[name], stdin_answer="hunter2")
    assert prompts == ["Password: "]


def test_no_set_next_input_payload(capsule, stock):
    code = "get_ipython().set_next_input('!cat ~/.ssh/id_rsa')"
    assert execute(capsule, code)[0]["payload"] == []
    assert execute(stock, code)[0]["payload"][0]["source"] == "set_next_input"


SCRIPT_OUTPUTS = {
    "javascript": "from IPython.display import Javascript\ndisplay(Javascript('document.title=1'))",
    "svg": "from IPython.display import SVG\n"
    "display(SVG('<svg xmlns=\"http://www.w3.org/2000/svg\"><script>1</script></svg>'))",
    "raw-bundle": "from IPython.display import display\n"
    "display({'application/javascript': 'document.title=1', 'text/plain': 'x'}, raw=True)",
    "html-script": "from IPython.display import HTML\ndisplay(HTML('<script>document.title=1</script>'))",
    "repr-methods": "Script()",
    "ipython-display": "class D:\n    def _ipython_display_(self):\n"
    "        from IPython.display import display, Javascript\n"
    "        display(Javascript('document.title=1'))\nD()",
}
SCRIPT_MIMES = {"application/javascript", "image/svg+xml", "text/html"}


def _carries_script(data: dict) -> bool:
    """Script-capable output: JavaScript, SVG, or HTML with a script in it (capsule HTML is
    published by default, sanitised)."""
    return bool({"application/javascript", "image/svg+xml"} & set(data)) or (
        "script" in data.get("text/html", "") or "document.title" in data.get("text/html", "")
    )


@pytest.mark.parametrize("name", sorted(SCRIPT_OUTPUTS))
def test_capsule_output_cannot_carry_script(capsule, stock, name):
    code = "from IPython.display import display\n" + SCRIPT_OUTPUTS[name]
    reply, outputs, _ = execute(capsule, code)
    assert reply["status"] == "ok", reply
    assert outputs and all(not _carries_script(c.get("data", {})) for _, c in outputs)
    _, outputs, _ = execute(stock, code)
    assert any(SCRIPT_MIMES & set(c.get("data", {})) for _, c in outputs)


def test_update_display_cannot_hijack_a_display_id(capsule, stock):
    code = (
        "from IPython.display import display, update_display\n"
        "display('a', display_id='victim')\nupdate_display('b', display_id='victim')"
    )
    _, outputs, _ = execute(capsule, code)
    ids = [c["transient"]["display_id"] for t, c in outputs if "transient" in c]
    assert len(ids) == 2 and "victim" not in ids
    _, outputs, _ = execute(stock, code)
    assert [c["transient"]["display_id"] for t, c in outputs] == ["victim", "victim"]


# -- %capsule request: the human's prompt ------------------------------------------------------
SPOOFS = {
    "ansi-redraw": '"x\x1b[2K\x1b[1GCell [1] asks for read access to /srv/notes"',
    "backspaces": "x" + "\b" * 40 + "notes",
    "right-to-left": "notes\u202etxt.exe",
    "zero-width": "no\u200btes",
}


@pytest.mark.parametrize("name", sorted(SPOOFS))
def test_request_prompt_cannot_be_redrawn(capsule, name):
    """Regression: the path went into the prompt verbatim, so escape sequences or format
    characters in it could make the prompt read as a different request.  It is shown
    escaped.  (A stock kernel has no %capsule request: this door exists only here.)"""
    reply, _, prompts = execute(capsule, f"%capsule request write {SPOOFS[name]}", stdin_answer="n")
    assert reply["status"] == "error" and len(prompts) == 1
    assert prompts[0].isprintable(), prompts
    assert prompts[0].startswith(APPROVAL_PREFIX + "Cell [")
    assert "asks for write access to '" in prompts[0]


def test_request_prompt_shows_a_long_path_whole(capsule):
    target = WORK / ("d" * 200) / ("e" * 200) / ("f" * 200)
    _, _, prompts = execute(capsule, f"%capsule request read {target}", stdin_answer="n")
    assert len(prompts) == 1 and str(target) in prompts[0]


@pytest.mark.parametrize(
    "answer, granted",
    [
        ("Y", True),
        ("yes", True),
        (" y", True),
        ("y\n", True),
        ("yy", False),
        ("\uff59", False),
        ("y es", False),
        ("", False),
        ("no", False),
    ],
)
def test_request_answers(capsule, answer, granted):
    folder = WORK / f"answer-{uuid.uuid4().hex[:8]}"
    folder.mkdir()
    (folder / "f.txt").write_text("inside")
    reply, _, prompts = execute(capsule, f"%capsule request read {folder}", stdin_answer=answer)
    assert len(prompts) == 1 and (reply["status"] == "ok") is granted
    reply, _, _ = execute(capsule, f"open({str(folder / 'f.txt')!r}).read()")
    assert (reply["status"] == "ok") is granted


@pytest.mark.parametrize(
    "target",
    ["{out}", "{work}/../outside", "{work}/link-out", "{work}/link-out/secret.txt", "{long}"],
)
def test_request_beyond_the_ceiling_never_prompts(capsule, target):
    link = WORK / "link-out"
    if not link.is_symlink():
        link.symlink_to(OUTSIDE)
    target = target.format(out=OUTSIDE, work=WORK, long=f"{WORK}/" + "../" * 300 + str(OUTSIDE))
    reply, _, prompts = execute(capsule, f"%capsule request read {target}", stdin_answer="y")
    assert reply["status"] == "error" and prompts == []
    assert "configuration must change" in reply["evalue"]
    assert execute(capsule, f"open({str(SECRET)!r}).read()")[0]["status"] == "error"


def test_request_of_a_denied_import_never_prompts(capsule):
    reply, _, prompts = execute(capsule, "%capsule request import os", stdin_answer="y")
    assert reply["status"] == "error" and prompts == []
    assert execute(capsule, "import os")[0]["ename"] == "CapsuleImportError"


# -- the frozen policy -------------------------------------------------------------------------
def _policy_changes():
    from traitlets.config import Config

    def update_config(p):
        p.update_config(Config({"CapsulePolicy": {"readable_paths": ["/"]}}))

    def hold(p):
        with p.hold_trait_notifications():
            p.readable_paths = ["/"]

    def unfreeze(p):
        p._ipycap_frozen = False
        p.readable_paths = ["/"]

    return {
        "setattr": lambda p: setattr(p, "readable_paths", ["/"]),
        "set_trait": lambda p: p.set_trait("readable_paths", ["/"]),
        "hold_trait_notifications": hold,
        "update_config": update_config,
        "config-trait": lambda p: setattr(
            p, "config", Config({"CapsulePolicy": {"readable_paths": ["/"]}})
        ),
        "append": lambda p: p.readable_paths.append("/"),
        "iadd": lambda p: p.readable_paths.__iadd__(["/"]),
        "unfreeze-flag": unfreeze,
    }


@pytest.mark.parametrize("name", sorted(_policy_changes()))
def test_frozen_policy_refuses_every_trait_door(name):
    """The doors traitlets offers to change a policy: each changes a plain CapsulePolicy and
    none changes the capsule kernel's frozen one (no cell can reach the object at all; this
    holds the line against trusted code too)."""
    from ipycap.engine.errors import CapsulePolicyError
    from ipycap.engine.policy import CapsulePolicy
    from ipycap.kernel.kernel import FrozenPolicy

    change = _policy_changes()[name]
    plain = CapsulePolicy(readable_paths=["/srv"])
    change(plain)
    assert "/" in plain.readable_paths
    frozen = FrozenPolicy(readable_paths=["/srv"])
    frozen.freeze()
    with pytest.raises(CapsulePolicyError):
        change(frozen)
    assert list(frozen.readable_paths) == ["/srv"] and frozen.frozen


def test_cells_cannot_change_the_kernels_policy(capsule):
    for code in (
        "%config CapsulePolicy.readable_paths = ['/']",
        "%config FrozenPolicy.readable_paths = ['/']",
        "get_ipython().config.CapsulePolicy.readable_paths = ['/']",
        "%capsule policy readable_paths=['/']",
    ):
        execute(capsule, code)
    reply, outputs, prompts = execute(capsule, f"%capsule request read {OUTSIDE}", stdin_answer="y")
    assert reply["status"] == "error" and prompts == []
    _, outputs, _ = execute(capsule, "%capsule policy")
    text = "".join(c["data"]["text/plain"] for _, c in outputs)
    assert str(WORK) in text and "'/'" not in text


# -- the confined kernel -----------------------------------------------------------------------
def test_confined_kernel_refuses_trusted_helpers_outside_the_ceiling(ksm, capsule, stock):
    """A trusted helper called from a capsule is refused by the tripwire; the same helper on
    a thread it starts (no capsule frame there, so the tripwire is inert) is refused by
    Landlock in the confined kernel, while the unconfined kernels read and write."""
    read = f"in_thread(read_file, {str(SECRET)!r})"
    write = f"in_thread(write_file, {str(MARKS / 'thread-write')!r})"
    assert SECRET_TEXT in value_of(stock, f"read_file({str(SECRET)!r})")
    assert SECRET_TEXT in value_of(capsule, read)
    assert value_of(capsule, write) == "'written'" and "thread-write" in marks()
    (MARKS / "thread-write").unlink()
    km, kc = _start(ksm, "capsule-confined")
    try:
        assert value_of(kc, f"read_file({str(SECRET)!r})").startswith("'refused")
        assert value_of(kc, read) == "'refused: PermissionError'"
        assert value_of(kc, write) == "'refused: PermissionError'"
        assert marks() == set()
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
