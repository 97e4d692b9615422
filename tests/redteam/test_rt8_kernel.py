"""Red team 8, the display / kernel / IPython surface (issue 11, the boundary).

Classes (each payload aims only at a canary this module makes: a secret file, a token a
capsule method prints when trusted code runs it, a list a protected object appends to):

(A) a capsule-raised SyntaxError (any builtin subclass, or a capsule subclass) whose
    ``filename``/``lineno`` name a file the capsule may not read: IPython's SyntaxError printer
    read and showed that file's line.  Only ``<capsule-...>`` locations survive, whole.
(B) IPython's frame printer truth-tested capsule frames' ``__tracebackhide__`` and repr()'d
    their locals (Verbose): capsule ``__bool__``/``__repr__`` ran as trusted code.
(C) inspection (``obj?``, ``%pinfo``, completion) of capsule objects in the user namespace.
(D) the capsule kernel showed the raw SyntaxError from ``sys.exc_info()``.
(E) ``%debug``/``%pdb`` post-mortem on capsule frames.
(F) ``%capsule request``'s question: requested text escaped, long paths whole.
"""

from __future__ import annotations

import json
import re
import shlex

import pytest

from tests import test_magics as shared
from tests.kernel.conftest import WORKDIR, execute, kernelspecs, start_kernel  # noqa: F401
from tests.redteam.shell_cells import token

_shell = shared._shell
ip = shared.ip

SYNTAX_CLASSES = ("SyntaxError", "IndentationError", "TabError")
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _shown(ip, capsys) -> str:
    captured = capsys.readouterr()
    parts = [captured.out, captured.err]
    parts += [json.dumps(o, default=repr) for o in ip.outputs]
    parts += [json.dumps(d, default=repr) for d in ip.formatted]
    return ANSI.sub("", "\n".join(parts))


# -- (A) SyntaxError locations -----------------------------------------------------------------
def _spoofs(cls: str, path: str) -> dict[str, str]:
    """Every way a capsule names a location for its SyntaxError."""
    return {
        "args": f"raise {cls}('x', ({path!r}, 1, 1, None))",
        "args-end": f"raise {cls}('x', ({path!r}, 1, 1, None, 1, 2))",
        "attributes": f"e = {cls}('x')\ne.filename = {path!r}\ne.lineno = 1\nraise e",
        "subclass": f"class S({cls}):\n    pass\nraise S('x', ({path!r}, 1, 1, None))",
        "subclass-properties": (
            f"class S({cls}):\n    @property\n    def filename(self):\n        return {path!r}\n"
            "    @property\n    def lineno(self):\n        return 1\nraise S('x')"
        ),
        "capsule-prefix": f"raise {cls}('x', ('<capsule-x/..' + {path!r}, 1, 1, None))",
    }


SPOOFS = sorted(_spoofs("SyntaxError", "/p"))


@pytest.fixture
def secret_line(tmp_path):
    """A file outside every grant, and a folder named like a capsule file beside the cwd
    (so ``<capsule-x/../...`` resolves on disk, as a write grant could arrange)."""
    path = tmp_path / "outside" / "secret.py"
    path.parent.mkdir(exist_ok=True)
    canary = token()
    path.write_text(f"{canary} = 1\n")
    return path, canary


@pytest.mark.parametrize("cls", SYNTAX_CLASSES)
@pytest.mark.parametrize("spoof", SPOOFS)
@pytest.mark.parametrize("xmode", ("Context", "Plain", "Verbose", "Minimal"))
def test_magic_syntax_error_location_outside_the_capsule_is_dropped(
    ip, capsys, secret_line, tmp_path, cls, spoof, xmode
):
    path, canary = secret_line
    (tmp_path / "<capsule-x").mkdir(exist_ok=True)
    rel = "/outside/secret.py" if spoof == "capsule-prefix" else str(path)
    body = _spoofs(cls, rel)[spoof]
    ip.shell.run_line_magic("xmode", xmode)
    try:
        err = ip.fails("%%capsule\n" + body, SyntaxError)
        shown = _shown(ip, capsys)
    finally:
        ip.shell.run_line_magic("xmode", "Context")
    assert canary not in shown
    assert "Traceback" not in shown and "ipycap/" not in shown  # shown whole, by our printer
    assert re.search(r"Error: (S: )?x\b", shown)  # the message, as the host's copy has it
    assert getattr(err, "filename", None) in (None, "<string>")
    assert type(err).__module__ == "builtins"


def test_magic_syntax_error_spoof_reaches_the_file_in_plain_ipython(ip, capsys, secret_line):
    """The control: the same payload in an ordinary cell shows the secret line."""
    path, canary = secret_line
    ip.run(_spoofs("SyntaxError", str(path))["args"])
    assert canary in _shown(ip, capsys)


def test_magic_capsule_syntax_error_keeps_its_own_location(ip, capsys):
    err = ip.fails("%%capsule\nx = 1\ny = x +\n", SyntaxError)
    shown = _shown(ip, capsys)
    assert err.filename.startswith("<capsule-") and err.lineno == 2
    assert "y = x +" in shown and "<capsule-" in shown
    assert "Traceback" not in shown and "ipycap/" not in shown


# -- (B) frame printers ------------------------------------------------------------------------
LOUD = """
class Loud:
    def __bool__(self):
        print({t!r} + '-bool')
        return True
    def __repr__(self):
        print({t!r} + '-repr-ran')
        return {t!r} + '-repr'
    __str__ = __repr__
def f(arg):
    __tracebackhide__ = Loud()
    local = Loud()
    1 / 0
f(Loud())
"""


@pytest.mark.parametrize("xmode", ("Context", "Verbose", "Plain", "Minimal", "Docs"))
def test_magic_traceback_printer_runs_no_capsule_method(ip, capsys, xmode):
    t = token()
    ip.shell.run_line_magic("xmode", xmode)
    try:
        ip.fails("%%capsule\n" + LOUD.format(t=t), ZeroDivisionError)
        shown = _shown(ip, capsys)
    finally:
        ip.shell.run_line_magic("xmode", "Context")
    assert t not in shown
    if xmode not in ("Minimal", "Docs"):  # Docs shows only the outermost frame
        assert "1 / 0" in shown  # the capsule's own frames are still shown


@pytest.mark.parametrize("xmode", ("Context", "Verbose"))
def test_magic_traceback_printer_runs_loud_methods_in_plain_ipython(ip, capsys, xmode):
    """The control: IPython's printer calls them for an ordinary cell."""
    t = token()
    ip.shell.run_line_magic("xmode", xmode)
    try:
        ip.run(LOUD.format(t=t))
        shown = _shown(ip, capsys)
    finally:
        ip.shell.run_line_magic("xmode", "Context")
    assert t + ("-bool" if xmode == "Context" else "-repr") in shown


def test_magic_traceback_formatting_failure_never_breaks_the_cell(ip, capsys, monkeypatch):
    from ipycap.ipython import tracebacks

    def broken(*args):
        raise RuntimeError("formatter broke")

    monkeypatch.setattr(tracebacks, "capsule_structured_traceback", broken)
    ip.fails("%%capsule\n1 / 0", ZeroDivisionError)
    shown = _shown(ip, capsys)
    assert "ZeroDivisionError" in shown
    assert ip.ok("1 + 1") == 2


# -- the capsule kernel: (A), (B), (D) ------------------------------------------------------------
@pytest.fixture(scope="module")
def kc(kernelspecs):  # noqa: F811
    km, client = start_kernel(kernelspecs["plain"])
    yield client
    client.stop_channels()
    km.shutdown_kernel(now=True)


@pytest.fixture(scope="module")
def kernel_secret():
    """A file outside the kernel's ceiling, and a '<capsule-x' folder in its cwd."""
    outside = WORKDIR.parent / "rt8-outside"
    outside.mkdir(exist_ok=True)
    canary = token()
    (outside / "secret.py").write_text(f"{canary} = 1\n")
    (WORKDIR / "<capsule-x").mkdir(exist_ok=True)
    return outside / "secret.py", canary


def _kernel_shown(reply, outputs) -> str:
    return re.sub(r"\\u001b\[[0-9;]*m", "", json.dumps([reply, outputs]))


@pytest.mark.kernel
@pytest.mark.parametrize("cls", SYNTAX_CLASSES)
@pytest.mark.parametrize("spoof", SPOOFS)
def test_kernel_syntax_error_location_outside_the_capsule_is_dropped(kc, kernel_secret, cls, spoof):
    path, canary = kernel_secret
    rel = f"/../{path.parent.name}/{path.name}" if spoof == "capsule-prefix" else str(path)
    reply, outputs, _ = execute(kc, _spoofs(cls, rel)[spoof])
    assert reply["status"] == "error"
    assert reply["ename"] in SYNTAX_CLASSES
    assert canary not in _kernel_shown(reply, outputs)


@pytest.mark.kernel
def test_kernel_shows_no_raw_capsule_syntax_error(kc):
    """(D) the shown error is the host's copy: a capsule subclass's ``__str__``/``__repr__``
    and its ``filename`` property never run on the kernel's main thread."""
    t = token()
    body = (
        "class S(SyntaxError):\n"
        "    @property\n"
        "    def filename(self):\n"
        f"        print({t!r} + '-filename')\n"
        "        return '<capsule-x>'\n"
        "    @property\n"
        "    def text(self):\n"
        f"        print({t!r} + '-text')\n"
        "        return 'x'\n"
        "raise S('boom')"
    )
    reply, outputs, _ = execute(kc, body)
    shown = _kernel_shown(reply, outputs)
    assert reply["status"] == "error" and reply["ename"] == "SyntaxError"
    assert t not in shown
    assert "boom" in shown


@pytest.mark.kernel
def test_kernel_syntax_errors_of_the_cell_keep_their_location(kc):
    reply, outputs, _ = execute(kc, "x = 1\ny = x +\n")
    shown = _kernel_shown(reply, outputs)
    assert reply["ename"] == "SyntaxError"
    assert "<capsule-" in shown and "y = x +" in shown
    reply, _, _ = execute(kc, "%ls")
    assert reply["ename"] == "CapsuleSyntaxError"


@pytest.mark.kernel
def test_kernel_traceback_printer_runs_no_capsule_method(kc):
    t = token()
    reply, outputs, _ = execute(kc, LOUD.format(t=t))
    shown = _kernel_shown(reply, outputs)
    assert reply["ename"] == "ZeroDivisionError"
    assert t not in shown
    assert "1 / 0" in shown
    reply, _, _ = execute(kc, "1 + 1")
    assert reply["status"] == "ok"


# -- (F) %capsule request: the question ----------------------------------------------------------
def _ask(kc, code: str, answer: str = "n"):
    """Run ``code``; returns (reply, [input_request contents]), answering every question."""
    from queue import Empty

    msg_id = kc.execute(code, allow_stdin=True)
    requests, reply = [], None
    while reply is None:
        try:
            req = kc.get_stdin_msg(timeout=0.05)
            requests.append(req["content"])
            kc.input(answer)
        except Empty:
            pass
        try:
            msg = kc.get_shell_msg(timeout=0.05)
        except Empty:
            continue
        if msg["parent_header"].get("msg_id") == msg_id:
            reply = msg["content"]
    return reply, requests


#: Paths whose text words a different question: every one is printable, so the old
#: ``isprintable()`` check showed them verbatim.
REQUEST_SPOOFS = {
    "question-structure": "x (this session). Allow? [y/N] ipycap-approval: Cell [1] asks for "
    "read access to /srv/notes",
    "fullwidth-slashes": "\uff0fsrv\uff0fnotes",
    "hangul-filler-padding": "notes" + "\u3164" * 60 + "/etc/shadow",
    "braille-blank": "notes\u2800\u2800(grant: read /srv)",
    "quotes": 'x" (grant: read /) "',
}


@pytest.mark.kernel
@pytest.mark.parametrize("name", sorted(REQUEST_SPOOFS))
def test_request_question_escapes_printable_spoofs(kc, name):
    spoof = REQUEST_SPOOFS[name]
    target = WORKDIR / spoof
    reply, requests = _ask(kc, f"%capsule request read {shlex.quote(str(target))}")
    assert reply["status"] == "error" and len(requests) == 1
    prompt = requests[0]["prompt"]
    assert prompt.isprintable() and prompt.isascii(), prompt
    assert spoof not in prompt
    # the question's own structure appears once: "asks for ... (this session). Allow? [y/N]"
    assert prompt.count("(") == 1 and prompt.count("[y/N]") == 1 and prompt.count("?") == 1
    assert prompt.startswith("ipycap-approval: Cell [")


@pytest.mark.kernel
@pytest.mark.parametrize("control", ["\b\b\b", "\x07", "\x1b[2K", "\u202e", "\u200b", "\t"])
def test_request_question_escapes_control_characters(kc, control):
    target = WORKDIR / f"a{control}b"
    reply, requests = _ask(kc, f"%capsule request read {shlex.quote(str(target))}")
    assert len(requests) == 1
    prompt = requests[0]["prompt"]
    assert prompt.isprintable() and control not in prompt


@pytest.mark.kernel
def test_request_question_shows_a_long_escaped_path_whole(kc):
    tail = "\u202e" + "t" * 300 + "-end"
    target = WORKDIR / ("d" * 200) / tail
    reply, requests = _ask(kc, f"%capsule request read {shlex.quote(str(target))}")
    prompt = requests[0]["prompt"]
    assert "\u2026" not in prompt and str(WORKDIR / ("d" * 200)) in prompt
    assert "\\u202e" + "t" * 300 + "-end" in prompt


@pytest.mark.kernel
def test_request_sends_structured_approval_fields(kc):
    folder = WORKDIR / "rt8-fields"
    folder.mkdir(exist_ok=True)
    reply, requests = _ask(kc, f"%capsule request read {folder}")
    assert requests[0]["ipycap_approval"] == {"kind": "read", "grant": str(folder)}
    # a capsule's own input() never carries them
    reply, requests = _ask(kc, "input('q')")
    assert all("ipycap_approval" not in r for r in requests)


# -- (C) inspection and completion of capsule objects in the user namespace ----------------------
LOUD_OBJECT = """
class Loud:
    \"\"\"Loud's own docstring.\"\"\"
    def __getattr__(self, name):
        print({t!r} + '-getattr-' + name)
        raise AttributeError(name)
    def __dir__(self):
        print({t!r} + '-dir')
        return ['a']
    def __repr__(self):
        print({t!r} + '-repr')
        return 'Loud()'
    @property
    def prop(self):
        print({t!r} + '-prop')
        return 1
obj = Loud()
class Holder:
    pass
holder = Holder()
holder.inner = obj
"""

INSPECTIONS = {
    "pinfo": lambda sh: sh.run_cell("obj?"),
    "pinfo2": lambda sh: sh.run_cell("obj??"),
    "pinfo-magic": lambda sh: sh.run_line_magic("pinfo", "obj"),
    "pinfo-property": lambda sh: sh.run_cell("obj.prop?"),
    "pinfo-through-attribute": lambda sh: sh.run_cell("obj.prop.real?"),
    "pinfo-nested": lambda sh: sh.run_cell("holder.inner?"),
    "pinfo-nested-attr": lambda sh: sh.run_cell("holder.inner.prop?"),
    "pdef": lambda sh: sh.run_line_magic("pdef", "obj"),
    "pdoc": lambda sh: sh.run_line_magic("pdoc", "obj"),
    "psource": lambda sh: sh.run_line_magic("psource", "obj"),
    "pfile": lambda sh: sh.run_line_magic("pfile", "obj"),
    "object_inspect": lambda sh: sh.object_inspect("obj", detail_level=1),
    "object_inspect_mime": lambda sh: sh.object_inspect_mime("obj", detail_level=1),
    "inspect-attr": lambda sh: sh.object_inspect_mime("obj.prop"),
    "complete-attr": lambda sh: list(sh.Completer.completions("obj.", 4)),
    "complete-prop": lambda sh: list(sh.Completer.completions("obj.prop.", 9)),
    "complete-key": lambda sh: list(sh.Completer.completions("obj['", 5)),
    "complete-nested": lambda sh: list(sh.Completer.completions("holder.inner.", 13)),
    "complete-in-trusted": lambda sh: list(sh.Completer.completions("box.inner.", 10)),
    "complete-in-trusted-key": lambda sh: list(sh.Completer.completions("box.inner['", 11)),
    "complete-in-trusted-prop": lambda sh: list(sh.Completer.completions("box.inner.prop.", 15)),
    "complete-in-trusted-call": lambda sh: list(sh.Completer.completions("box.inner(", 10)),
    "complete-in-list": lambda sh: list(sh.Completer.completions("[obj][0].", 9)),
    "complete-legacy": lambda sh: sh.complete("obj.", "obj.", 4),
    "pinfo-in-trusted": lambda sh: sh.run_cell("box.inner?"),
}


@pytest.fixture
def loud_object(ip, monkeypatch):
    t = token()
    ip.ok("%%capsule --export obj,holder\n" + LOUD_OBJECT.format(t=t))
    ip.ok("import types\nbox = types.SimpleNamespace(inner=obj)")  # trusted, holding it
    pages = []
    import IPython.core.page as page

    monkeypatch.setattr(page, "page", lambda text, *a, **k: pages.append(text))
    return t, pages


@pytest.mark.parametrize("name", sorted(INSPECTIONS))
def test_inspecting_a_capsule_object_runs_no_capsule_code(ip, capsys, loud_object, name):
    t, pages = loud_object
    capsys.readouterr()
    from IPython.core.completer import provisionalcompleter

    with provisionalcompleter():
        result = INSPECTIONS[name](ip.shell)
    shown = _shown(ip, capsys) + json.dumps([result, pages], default=repr)
    assert t not in shown


def test_inspecting_a_capsule_object_shows_its_class_and_docstring(ip, loud_object):
    info = ip.shell.object_inspect("obj", detail_level=0)
    assert info["found"]
    text = ANSI.sub("", ip.shell.object_inspect_text("obj"))
    assert "<capsule object of class " in text and "Loud>" in text
    assert "Loud's own docstring." in text


def test_inspecting_trusted_objects_is_unchanged(ip):
    import collections

    ip.ns["od"] = collections.OrderedDict(a=1)
    assert "OrderedDict" in ip.shell.object_inspect_text("od")
    assert ip.shell.object_inspect("od.keys")["found"]
    assert ip.shell.object_inspect("nosuchname")["found"] is False
    assert ip.shell._object_find("%capsule").ismagic  # magics are still found


def test_inspection_hook_leaves_with_the_extension(ip):
    assert "_object_find" in vars(ip.shell)
    ip.shell.run_line_magic("unload_ext", "ipycap")
    assert "_object_find" not in vars(ip.shell)
    ip.shell.run_line_magic("load_ext", "ipycap")


# -- (E) %debug / %pdb post-mortem on capsule frames ---------------------------------------------
#: The token is spelled backwards in the source: the debugger shows trusted frames' arguments
#: (the cell's text), and only a capsule method that runs prints it forwards.
DEBUGGEE = """
class Loud:
    def __bool__(self):
        print({r!r}[::-1] + '-bool')
        return True
    def __repr__(self):
        print({r!r}[::-1] + '-repr')
        return {r!r}[::-1] + '-repr'
    def __getattr__(self, name):
        print({r!r}[::-1] + '-getattr')
        return 1
    __str__ = __repr__
def f(arg, n=42):
    __tracebackhide__ = Loud()
    local = Loud()
    label = 'plain-label'
    1 / 0
f(Loud())
"""

#: Each session: commands typed at the post-mortem prompt, ending with q.
DEBUG_SESSIONS = {
    "where": "where\nq\n",
    "args": "args\nq\n",
    "p-local": "p local\nq\n",
    "pp-local": "pp local\nq\n",
    "bare-name": "local\nq\n",
    "bang": "!local\nq\n",
    "expression": "local.anything\nq\n",
    "attribute-p": "p local.anything\nq\n",
    "str": "p str(local)\nq\n",
    "whatis": "whatis local\nq\n",
    "display": "display local\nq\n",
    "tracebackhide": "p __tracebackhide__\nq\n",
    "retval": "retval\nq\n",
    "up-down": "up\ndown\nwhere\nq\n",
    "list": "ll\nlist\nq\n",
    "alias": "alias x p local\nx\nq\n",
    "semicolons": "p 1;; p local\nq\n",
    "repeat-empty": "p local\n\nq\n",
    "pinfo": "pinfo local\nq\n",
    "interact": "interact\nq\n",
    "exec-statement": "print(local)\nq\n",
}


def _debug(ip, monkeypatch, capsys, commands: str, how: str = "%debug") -> str:
    import io
    import sys

    monkeypatch.setattr(sys, "stdin", io.StringIO(commands))
    capsys.readouterr()
    if how == "%debug":
        ip.shell.run_line_magic("debug", "")
    return _shown(ip, capsys)


@pytest.mark.parametrize("session", sorted(DEBUG_SESSIONS))
def test_post_mortem_on_a_capsule_frame_calls_no_capsule_method(ip, capsys, monkeypatch, session):
    t = token()
    ip.fails("%%capsule\n" + DEBUGGEE.format(r=t[::-1]), ZeroDivisionError)
    capsys.readouterr()
    shown = _debug(ip, monkeypatch, capsys, DEBUG_SESSIONS[session])
    assert t not in shown


def test_post_mortem_shows_plain_variables_of_a_capsule_frame(ip, capsys, monkeypatch):
    t = token()
    ip.fails("%%capsule\n" + DEBUGGEE.format(r=t[::-1]), ZeroDivisionError)
    shown = _debug(ip, monkeypatch, capsys, "p label\np n\nargs\nlocal\nwhere\nq\n")
    assert "'plain-label'" in shown and "42" in shown
    assert "n = 42" in shown and "arg = <not plain: not shown>" in shown
    assert "not a plain variable" in shown
    assert "1 / 0" in shown or "<capsule-" in shown
    assert t not in shown


def test_pdb_on_runs_the_guarded_debugger_after_a_capsule_error(ip, capsys, monkeypatch):
    import io
    import sys

    t = token()
    ip.shell.run_line_magic("pdb", "on")
    try:
        monkeypatch.setattr(sys, "stdin", io.StringIO("p local\nlocal\nwhere\nq\n"))
        ip.run("%%capsule\n" + DEBUGGEE.format(r=t[::-1]))
        shown = _shown(ip, capsys)
    finally:
        ip.shell.run_line_magic("pdb", "off")
    assert t not in shown and "not a plain variable" in shown


def test_post_mortem_in_plain_ipython_calls_the_methods(ip, capsys, monkeypatch):
    """The control: the same session on an ordinary cell's frame runs them."""
    t = token()
    ip.run(DEBUGGEE.format(r=t[::-1]))
    shown = _debug(ip, monkeypatch, capsys, "p local\nq\n")
    assert t + "-repr" in shown


def test_trusted_frames_are_debugged_as_before(ip, capsys, monkeypatch):
    ip.run("def g(x):\n    y = [x]\n    1 / 0\ng(7)")
    shown = _debug(ip, monkeypatch, capsys, "p y\np len(y) + 1\nq\n")
    assert "[7]" in shown and "2" in shown


def test_debugger_class_is_restored_on_unload(ip):
    from ipycap.ipython.debugger import CapsuleFrameMixin

    itb = ip.shell.InteractiveTB
    assert issubclass(itb.debugger_cls, CapsuleFrameMixin)
    ip.shell.run_line_magic("unload_ext", "ipycap")
    assert not issubclass(itb.debugger_cls, CapsuleFrameMixin)
    ip.shell.run_line_magic("load_ext", "ipycap")


# -- (C) display of an exported capsule object: the _repr_*_ discovery --------------------------
DISPLAYED = """
class Shown:
    def __getattr__(self, name):
        print({r!r}[::-1] + '-getattr-' + name)
        raise AttributeError(name)
    def _repr_html_(self):
        return '<b>shown-html</b>'
    def __repr__(self):
        return 'Shown()'
shown = Shown()
class Bare:
    def __getattr__(self, name):
        print({r!r}[::-1] + '-getattr-' + name)
        raise AttributeError(name)
bare = Bare()
"""


@pytest.mark.parametrize(
    "cell",
    [
        "shown",
        "bare",
        "display(shown)",
        "display(bare)",
        "from IPython.display import display\ndisplay(shown, bare)",
        "[shown, bare]",
        "print(repr(shown))",
    ],
)
def test_displaying_an_exported_capsule_object_runs_no_capsule_getattr(ip, capsys, cell):
    t = token()
    ip.ok("%%capsule --export shown,bare\n" + DISPLAYED.format(r=t[::-1]))
    capsys.readouterr()
    ip.run(cell)
    shown = _shown(ip, capsys)
    assert t not in shown


def test_exported_capsule_objects_still_display_their_own_reprs(ip, capsys):
    t = token()
    ip.ok("%%capsule --export shown,bare\n" + DISPLAYED.format(r=t[::-1]))
    ip.ok("shown")
    assert ip.formatted[-1].get("text/html") == "<b>shown-html</b>"
    assert ip.formatted[-1]["text/plain"] == "Shown()"
    ip.ok("bare")
    assert list(ip.formatted[-1]) == ["text/plain"]


def test_completion_of_trusted_names_still_works_beside_capsule_objects(ip, loud_object):
    from IPython.core.completer import provisionalcompleter

    ip.ns["trusted_dict"] = {"alpha": 1}
    with provisionalcompleter():
        attrs = [c.text for c in ip.shell.Completer.completions("trusted_dict.ke", 15)]
        names = [c.text for c in ip.shell.Completer.completions("trusted_d", 9)]
        keys = [c.text for c in ip.shell.Completer.completions("trusted_dict['al", 16)]
    assert "keys" in attrs and "trusted_dict" in names and any("alpha" in k for k in keys)
    assert ip.shell.Completer.namespace is ip.shell.user_ns  # the copies never stay
