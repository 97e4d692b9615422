"""Limits in the capsule kernel (real kernels through jupyter_client): the policy's limits apply
to every cell, a cell over them gets a refusal naming the limit, and the kernel survives every
crasher of tests/crashers and answers the next cell."""

from __future__ import annotations

import re
import time

import pytest
from jupyter_client.manager import start_new_kernel

from tests.crashers.py311 import CRASHERS

from .conftest import WORKDIR, execute, value_of

pytestmark = pytest.mark.kernel

LIMITS = [
    "--CapsulePolicy.timeout=2",
    "--CapsulePolicy.max_memory=200M",
    "--CapsulePolicy.max_output=2K",
]


@pytest.fixture(scope="module")
def limited(kernelspecs):
    km, kc = start_new_kernel(
        kernel_name=kernelspecs["plain"],
        cwd=str(WORKDIR),
        startup_timeout=60,
        extra_arguments=LIMITS,
    )
    yield km, kc
    kc.stop_channels()
    km.shutdown_kernel(now=True)
    assert not km.is_alive()


def _error(reply) -> str:
    assert reply["status"] == "error", reply
    return reply["ename"]


def test_timeout_of_the_policy_stops_every_cell(limited):
    km, kc = limited
    start = time.monotonic()
    reply, outputs, _ = execute(
        kc, "while True:\n    try:\n        while True: pass\n    except BaseException: pass"
    )
    assert _error(reply) == "CellTimeout"
    assert "time limit of 2s" in reply["evalue"]
    assert time.monotonic() - start < 15
    assert value_of(kc, "6 * 7") == "42"


def test_interrupt_reaches_the_capsule_thread(limited):
    km, kc = limited
    msg_id = kc.execute("n = 0\nwhile n < 10**12:\n    n += 1")
    time.sleep(0.5)
    km.interrupt_kernel()
    reply = kc.get_shell_msg(timeout=20)
    assert reply["parent_header"]["msg_id"] == msg_id
    assert _error(reply["content"]) == "KeyboardInterrupt"
    # stopped inside the loop (the cell's frame in the traceback), and the failed cell bound
    # nothing (test_an_interrupted_cell_binds_nothing)
    shown = re.sub(r"\x1b\[[0-9;]*m", "", "".join(reply["content"]["traceback"]))
    assert "while n < 10**12" in shown
    assert value_of(kc, "'n' in globals()") == "False"


def test_memory_limit_raises_memory_error_and_the_kernel_keeps_going(limited):
    _, kc = limited
    reply, _, _ = execute(kc, "hog = [bytes(1000) for _ in range(10**6)]")
    assert _error(reply) == "CellMemoryLimit"
    assert "memory limit of 200M" in reply["evalue"]
    assert value_of(kc, "try:\n    b = bytearray(10**9)\nexcept MemoryError:\n    b = 0\nb") == "0"


def test_output_over_the_policy_limit_is_dropped_with_a_note(limited):
    _, kc = limited
    reply, outputs, _ = execute(kc, "print('z' * 5000)")
    assert reply["status"] == "ok"
    text = "".join(c.get("text", "") for t, c in outputs if t == "stream")
    assert text.count("z") == 2048
    assert "more characters of output were dropped" in text


def test_terminal_controls_are_removed_from_kernel_output(limited):
    _, kc = limited
    reply, outputs, _ = execute(kc, "print('\\x1b]52;c;ZXZpbA==\\x07\\x1b[2J\\x1b[31mred\\x1b[0m')")
    assert reply["status"] == "ok"
    [(kind, content)] = [o for o in outputs if o[0] == "stream"]
    assert content["text"] == "\x1b[0;31mred\x1b[0m\n"


def test_bidi_controls_are_removed_from_kernel_output(limited):
    """Trojan Source-style reordering: stdout, a value's text/plain and an error's text."""
    _, kc = limited
    source = (
        "print('a\\u202eb\\u2066c')\nclass T:\n    def __repr__(self):\n"
        "        return 'x\\u200fy\\u061cz'\nT()"
    )
    reply, outputs, _ = execute(kc, source)
    assert reply["status"] == "ok", reply
    [stream] = [c["text"] for t, c in outputs if t == "stream"]
    [result] = [c["data"]["text/plain"] for t, c in outputs if t == "execute_result"]
    assert stream == "abc\n" and result == "xyz"
    # (a str's own repr already shows them escaped)
    assert value_of(kc, "'x\\u202ey'") == "'x\\u202ey'"
    reply, _, _ = execute(kc, "raise ValueError('nice\\u202e lave')")
    assert reply["evalue"] == "nice lave"


def test_decimal_context_holds_across_cells(limited):
    _, kc = limited
    execute(kc, "import decimal\ndecimal.getcontext().prec = 7")
    assert value_of(kc, "decimal.getcontext().prec") == "7"


@pytest.fixture(scope="module")
def crash_kernel(kernelspecs):
    km, kc = start_new_kernel(
        kernel_name=kernelspecs["plain"], cwd=str(WORKDIR), startup_timeout=60
    )
    yield km, kc
    kc.stop_channels()
    km.shutdown_kernel(now=True)


@pytest.mark.parametrize(("name", "source"), CRASHERS, ids=[n for n, _ in CRASHERS])
def test_kernel_survives_the_crasher(crash_kernel, name, source):
    km, kc = crash_kernel
    reply, _, _ = execute(kc, source, timeout=300)
    assert reply["status"] == "ok", reply
    assert km.is_alive()
    assert value_of(kc, "'alive:' + str(6 * 7)") == "'alive:42'"
    # the crasher's structure is dropped in a later cell, on that cell's capsule thread
    reply, _, _ = execute(kc, "x = g = result = None", timeout=300)
    assert reply["status"] == "ok" and km.is_alive()


# -- a failed cell binds nothing -----------------------------------------------------------------
#: What every rollback test checks afterwards: the names as the setup cell left them.
_STATE = "(kept, 'fresh' in globals(), 'gone' in globals() and gone)"


def _setup(kc):
    reply, _, _ = execute(kc, "kept = 'before'\ngone = 'still here'\nfresh = 0\ndel fresh")
    assert reply["status"] == "ok", reply
    assert value_of(kc, _STATE) == "('before', False, 'still here')"


@pytest.mark.parametrize(
    ("failure", "ename"),
    [
        ("raise ValueError('late')", "ValueError"),
        ("while True: pass", "CellTimeout"),
        ("hog = [bytes(1000) for _ in range(10**6)]", "CellMemoryLimit"),
    ],
    ids=["error", "timeout", "memory"],
)
def test_a_failed_cell_binds_nothing(limited, failure, ename):
    """An error, the time limit or the memory limit after the cell bound, rebound and deleted
    names: the namespace is as before the cell (the names a later cell sees)."""
    _, kc = limited
    _setup(kc)
    source = f"kept = 'rebound'\nfresh = [1]\ndel gone\n{failure}"
    reply, _, _ = execute(kc, source)
    assert _error(reply) == ename
    assert value_of(kc, _STATE) == "('before', False, 'still here')"
    assert value_of(kc, "'hog' in globals()") == "False"


def test_an_interrupted_cell_binds_nothing(limited):
    km, kc = limited
    _setup(kc)
    msg_id = kc.execute(
        "kept = 'rebound'\nfresh = 1\ndel gone\nn = 0\nwhile n < 10**12:\n    n += 1"
    )
    time.sleep(0.5)
    km.interrupt_kernel()
    reply = kc.get_shell_msg(timeout=20)
    assert reply["parent_header"]["msg_id"] == msg_id
    assert _error(reply["content"]) == "KeyboardInterrupt"
    assert value_of(kc, _STATE) == "('before', False, 'still here')"


def test_every_way_of_binding_is_undone(limited):
    """Globals a function from an earlier cell assigns, exec and eval in the namespace, a
    ':=' in a comprehension, imports (``import *`` too), annotations, and an earlier segment
    of the same cell (before a %capsule line)."""
    _, kc = limited
    reply, _, _ = execute(kc, "def setg():\n    global g\n    g = 'set'\nnote: str = 'n'")
    assert reply["status"] == "ok", reply
    source = (
        "seg1 = 1\n%capsule list\nsetg()\nexec('e1 = 1')\neval('(e2 := 2)')\n"
        "[w := i for i in range(3)]\nimport math\nfrom math import *\nlate: int = 3\n1/0"
    )
    reply, _, _ = execute(kc, source)
    assert _error(reply) == "ZeroDivisionError"
    names = "[n for n in ('seg1', 'g', 'e1', 'e2', 'w', 'math', 'pi', 'late') if n in globals()]"
    assert value_of(kc, names) == "[]"
    assert value_of(kc, "__annotations__") == "{'note': <class 'str'>}"


def test_a_successful_cell_keeps_its_bindings(limited):
    _, kc = limited
    _setup(kc)
    reply, _, _ = execute(
        kc, "kept = 'rebound'\nfresh = 1\ndel gone\ndef setg():\n    global g\n    g = 2\nsetg()"
    )
    assert reply["status"] == "ok", reply
    assert value_of(kc, "(kept, fresh, 'gone' in globals(), g)") == "('rebound', 1, False, 2)"


# -- user_expressions run and are formatted under the limits ---------------------------------------
_REPRS = (
    "class Forever:\n    def __repr__(self):\n        while True:\n            pass\n"
    "class Huge:\n    def __repr__(self):\n        return str(len([bytes(1000) for _ in range(10**6)]))\n"
    "class Loud:\n    def __repr__(self):\n        return 'q' * 5000\n"
    "class Mute(Exception):\n    def __str__(self):\n        while True:\n            pass\n"
    "def mute():\n    raise Mute()\n"
    "forever, huge, loud = Forever(), Huge(), Loud()"
)


def test_user_expressions_are_formatted_under_the_limits(limited):
    """A user expression's __repr__ is capsule code, formatted on the capsule thread: one that
    loops forever is stopped by the timeout (an error for that expression), one that allocates
    hugely fails at the memory limit, one too long for the output limit is replaced by a
    note; the other expressions are answered and so is the next cell."""
    km, kc = limited
    reply, _, _ = execute(kc, _REPRS)
    assert reply["status"] == "ok", reply
    start = time.monotonic()
    reply, _, _ = execute(
        kc,
        "pass",
        user_expressions={
            "forever": "forever",
            "huge": "huge",
            "loud": "loud",
            "mute": "mute()",
            "ok": "6 * 7",
        },
        timeout=60,
    )
    assert reply["status"] == "ok", reply
    exprs = reply["user_expressions"]
    assert exprs["forever"]["status"] == "error" and exprs["forever"]["ename"] == "CellTimeout"
    assert "time limit of 2s" in exprs["forever"]["evalue"]
    # a repr that fails inside the capsule is shown as failed (as for a cell's value): here
    # its allocation went over the 200M limit (1 GB asked) and failed with MemoryError
    assert exprs["huge"]["data"]["text/plain"] == "<Huge object (repr failed: MemoryError)>"
    assert exprs["loud"]["status"] == "ok"
    assert "--max-output" in exprs["loud"]["data"]["text/plain"]
    assert "q" * 100 not in exprs["loud"]["data"]["text/plain"]
    # an exception whose __str__ never returns: its message is made under the limits too
    assert exprs["mute"]["status"] == "error" and exprs["mute"]["ename"] == "CellTimeout"
    assert exprs["ok"] == {"status": "ok", "data": {"text/plain": "42"}, "metadata": {}}
    assert time.monotonic() - start < 30
    assert km.is_alive()
    assert value_of(kc, "'alive:' + str(6 * 7)") == "'alive:42'"


def test_an_error_message_that_never_ends_is_stopped_by_the_timeout(limited):
    """The error of a cell is shown from the host's copy of the exception, made on the capsule
    thread under the cell's limits: a __str__ that loops cannot hang the kernel."""
    km, kc = limited
    start = time.monotonic()
    source = "class Silent(Exception):\n    def __str__(self):\n        while True:\n            pass\nraise Silent()"
    reply, _, _ = execute(kc, source)
    assert _error(reply) == "CellTimeout"
    assert time.monotonic() - start < 15
    assert value_of(kc, "'alive:' + str(6 * 7)") == "'alive:42'"
    assert value_of(kc, "'Silent' in globals()") == "False"  # the failed cell bound nothing


def test_a_failed_user_expression_binds_nothing(limited):
    _, kc = limited
    reply, _, _ = execute(kc, "pass", user_expressions={"w": "(walrus := 1) / 0"})
    assert reply["user_expressions"]["w"]["ename"] == "ZeroDivisionError"
    assert value_of(kc, "'walrus' in globals()") == "False"
