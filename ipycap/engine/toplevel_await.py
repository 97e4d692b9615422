"""Top-level ``await`` in a capsule cell, as a normal kernel allows it, with no event loop.

A cell compiled with ``ast.PyCF_ALLOW_TOP_LEVEL_AWAIT`` that awaits at top level becomes a
coroutine (its code has ``CO_COROUTINE``).  A stock kernel hands it to the kernel's asyncio
loop, which would give capsule code event-loop authority (scheduling callbacks that trusted
code runs later, reaching the loop's sockets and executors).  The capsule instead drives the
coroutine itself: ``send(None)`` until it finishes.  That completes every coroutine that
awaits only other coroutines and awaitables of its own; one that suspends (awaits a future of
an event loop, e.g. ``asyncio.sleep``; ``asyncio`` is a denied import anyway) is closed and
refused with a clear message.  What it yields is dropped unread, never called.
"""

from __future__ import annotations

import ast
import inspect

from .errors import CapsuleTypeError

#: Compile flag of capsule cells (no effect on cells that do not await at top level).
FLAGS = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT


def is_coroutine_code(code) -> bool:
    return code is not None and bool(code.co_flags & inspect.CO_COROUTINE)


def run_to_completion(coro):
    """Run a top-level-await coroutine of capsule code; returns its value."""
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value
    coro.close()
    raise CapsuleTypeError(
        "top-level await of something that suspends (it needs an event loop, and capsule "
        "code gets none: an event loop would run its callbacks later with the kernel's "
        "authority)",
        "builtins",
        None,
        hint="await coroutines of your own; awaiting asyncio futures or sleeps is not "
        "available in a capsule",
    )


def run_cell(body, tail, ns):
    """``exec`` the body and ``eval`` the last expression, awaiting either if it awaits."""
    if is_coroutine_code(body):
        run_to_completion(eval(body, ns))
    else:
        exec(body, ns)
    if tail is None:
        return None
    if is_coroutine_code(tail):
        return run_to_completion(eval(tail, ns))
    return eval(tail, ns)
