"""The tripwire: one PEP 578 audit hook that refuses effects capsule code is not granted.

Installed once per process (audit hooks cannot be removed) and inert until a capsule runs.
While capsule code is anywhere on the stack, every audit event is refused unless the table
below admits it, which catches what a library does on a capsule's behalf and capsule code
that runs *later* (``__del__``, a ``__repr__`` called by the displayhook, a stored callback).

Capsule frames are recognised by their builtins (``f_builtins`` carries the capsule's
context); reading it raises no audit event.  The few trusted helpers at the bottom of this
module mark their own legitimate use: a frame running one of them, met before any capsule
frame on the way out from the event, means the event is the helper's.  A capsule frame
nearer the event than the helper voids the mark.
"""

from __future__ import annotations

import ast
import os
import sys
import sysconfig
import threading

from . import guard, rules
from .errors import CapsulePermissionError

_state = threading.local()
_installed = False
_armed = False
_MARK = guard.CAPSULE_MARK
_STDLIB = os.path.realpath(sysconfig.get_paths()["stdlib"])


def install() -> None:
    """Install the audit hook (once per process) and arm it."""
    global _installed, _armed
    if not _installed:
        sys.addaudithook(_hook)
        _installed = True
    _armed = True


def disarm() -> None:
    """Leave the hook inert (extension unload); it cannot be removed from the process."""
    global _armed
    _armed = False


def is_installed() -> bool:
    return _installed


def contexts_on_stack(frame=None) -> list:
    """Capsule contexts of every capsule frame on this thread's stack, innermost first."""
    f = frame if frame is not None else sys._getframe(1)
    found = []
    while f is not None:
        ctx = f.f_builtins.get(_MARK)
        if ctx is not None and ctx not in found:
            found.append(ctx)
        f = f.f_back
    return found


def current_context():
    """The innermost capsule context on the stack, or None."""
    f = sys._getframe(1)
    while f is not None:
        ctx = f.f_builtins.get(_MARK)
        if ctx is not None:
            return ctx
        f = f.f_back
    return None


def capsule_on_stack() -> bool:
    f = sys._getframe(1)
    while f is not None:
        if _MARK in f.f_builtins:
            return True
        f = f.f_back
    return False


def _hook(event, args):
    if not _armed or getattr(_state, "busy", False):
        return
    _state.busy = True
    try:
        try:
            f = sys._getframe(1)
        except ValueError:  # raised from C with no Python frame (thread start, shutdown)
            return
        found = None
        while f is not None:
            g = f.f_globals
            if g is _HELPER_GLOBALS and found is None:
                return  # a trusted helper's own use, with no capsule frame nearer the event
            ctx = f.f_builtins.get(_MARK)
            if ctx is not None:
                if found is None:
                    found = [ctx]
                elif ctx not in found:
                    found.append(ctx)
            f = f.f_back
        if found is None:
            return
        rule = EVENTS.get(event)
        if rule is None:
            rule = _prefix_rule(event)
        error = rule(event, args, found)
        if error is not None:
            for ctx in found:
                ctx.record_refusal(error)
            raise error
    finally:
        _state.busy = False


# -- the allow table ------------------------------------------------------------------------
def _allow(event, args, contexts):
    return None


def _deny(event, args, contexts):
    return CapsulePermissionError(
        f"{event} (an operation outside what capsules may do)", "tripwire", None
    )


def _open_rule(event, args, contexts):
    path, mode = args[0], args[1]
    flags = args[2] if len(args) > 2 else 0
    if isinstance(path, int):
        return _deny("open of a file descriptor", args, contexts)
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    path = os.path.realpath(path)
    writes = (
        bool(flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND))
        if mode is None
        else any(c in str(mode) for c in "wax+")
    )
    reads = (not writes) or bool(flags & os.O_RDWR) or (mode is not None and "+" in str(mode))
    if reads and not writes and (path == _STDLIB or path.startswith(_STDLIB + os.sep)):
        return None  # the standard library's own source (tracebacks, lazy data files)
    for ctx in contexts:
        for kind, wanted in (("read", reads), ("write", writes)):
            if wanted and not ctx.allows_path(kind, path):
                return CapsulePermissionError(
                    f"{kind} access to {path} (by code running for the capsule)",
                    "tripwire",
                    f"%%capsule --allow-{kind} {path}",
                )
    return None


def _import_rule(event, args, contexts):
    name = args[0]
    if not isinstance(name, str):
        return _deny(event, args, contexts)
    for ctx in contexts:
        if not (ctx.may_import(name) or ctx.is_stdlib_internal(name)):
            return CapsulePermissionError(
                f"import of {name!r} (by code running for the capsule)",
                "tripwire",
                f"--allow-import {name}" if ctx.policy.import_tier(name) == "grantable" else None,
            )
    return None


def _compile_rule(event, args, contexts):
    source, filename = args[0], args[1]
    if isinstance(filename, str) and filename.startswith("<capsule-"):
        return None  # compiled by the gate
    if isinstance(source, bytes):
        source = source.decode("utf-8", "replace")
    if isinstance(source, str) and not _source_is_clean(source):
        return CapsulePermissionError(
            "a library compiled source that reaches risky attributes (code generated from "
            "capsule input, e.g. a string annotation or a crafted field name)",
            "tripwire",
            None,
        )
    return None


def _source_is_clean(source: str) -> bool:
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return True  # compile() will refuse it anyway
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and (
            node.attr in rules.NEVER
            or node.attr in rules.FORMAT_ATTRS
            or node.attr == "__class__"
            or node.attr == "__self__"
        ):
            return False
        if isinstance(node, ast.Name) and node.id in (
            "getattr",
            "setattr",
            "vars",
            "eval",
            "exec",
            "compile",
            "open",
            "__import__",
            "globals",
            "locals",
            "breakpoint",
            "__builtins__",
            "delattr",
        ):
            return False
    return True


def _setattr_rule(event, args, contexts):
    obj = args[0]
    if guard.is_own(obj):
        return None
    return CapsulePermissionError(
        f"changing attribute {args[1]!r} of {type(obj).__name__} {getattr(obj, '__name__', '')}"
        " (shared classes and functions belong to everyone in this process)",
        "tripwire",
        "subclass it instead",
    )


def _getattr_rule(event, args, contexts):
    obj = args[0]
    if args[1] == "__code__" and guard.is_own(obj):
        return None  # e.g. inspect.signature() of a capsule function, used by a library
    return CapsulePermissionError(
        f"reading {args[1]!r} (frames and code objects)", "tripwire", None
    )


def _input_rule(event, args, contexts):
    for ctx in contexts:
        if not ctx.may_input():
            return CapsulePermissionError(
                "input()", "tripwire", "c.CapsulePolicy.allow_input = True"
            )
    return None


def _listdir_rule(event, args, contexts):
    path = args[0]
    if isinstance(path, int) or path is None:
        path = "."
    path = os.path.realpath(os.fsdecode(path))
    if all(ctx.allows_path("read", path) for ctx in contexts):
        return None
    return CapsulePermissionError(f"listing {path}", "tripwire", f"--allow-read {path}")


#: Exact event names -> rule.  Everything else falls to _prefix_rule (deny by default).
EVENTS = {
    "open": _open_rule,
    "import": _import_rule,
    "compile": _compile_rule,
    "exec": _allow,  # runs a code object; its source was checked at 'compile'
    "builtins.id": _allow,
    "sys._getframe": _allow,  # libraries find their caller's module name (namedtuple, enum)
    "sys._getframemodulename": _allow,
    "object.__setattr__": _setattr_rule,
    "object.__delattr__": _setattr_rule,
    "object.__getattr__": _getattr_rule,
    "builtins.input": _input_rule,
    "builtins.input/result": _allow,
    "time.sleep": _allow,
    "array.__new__": _allow,
    "os.listdir": _listdir_rule,
    "os.scandir": _listdir_rule,
    "sys.excepthook": _allow,
    "sys.unraisablehook": _allow,
    "cpython._PySys_ClearAuditHooks": _allow,
    "locale.setlocale": _deny,
}


def _prefix_rule(event, args, contexts):
    return _deny(event, args, contexts)


# -- trusted helpers (their frames are marks) -------------------------------------------------
def trusted_import(name: str):
    """Import ``name`` for a capsule that was already allowed to (events are the helper's)."""
    name = "".join([name])
    __import__(name)
    return sys.modules[name.partition(".")[0]]


def trusted_open(path: str, mode: str, buffering, encoding, errors, newline, verify):
    """Open an already checked, resolved path without following a final symlink."""
    flags = os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0)
    if "+" in mode:
        flags |= os.O_RDWR
    elif any(c in mode for c in "wax"):
        flags |= os.O_WRONLY
    else:
        flags |= os.O_RDONLY
    if "w" in mode:
        flags |= os.O_CREAT | os.O_TRUNC
    if "a" in mode:
        flags |= os.O_CREAT | os.O_APPEND
    if "x" in mode:
        flags |= os.O_CREAT | os.O_EXCL
    fd = os.open(path, flags, 0o666)
    try:
        verify(fd, path)
    except BaseException:
        os.close(fd)
        raise
    return open(fd, mode, buffering, encoding, errors, newline, closefd=True)


def trusted_append(path: str, text: str) -> None:
    """Append to ipycap's own audit log."""
    with open(path, "a", encoding="utf-8") as f:
        f.write(text)


def trusted_input(prompt: str) -> str:
    return input(prompt)


_HELPER_GLOBALS = globals()
