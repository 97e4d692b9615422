"""The process-wide ``sys.stdout``/``sys.stderr`` objects ipycap installs: opaque.

Libraries keep ``sys.stderr`` as an attribute (tqdm's ``bar.fp._wrapped``), compare it with a
capsule's objects (``fp in (sys.stderr, sys.stdout)`` runs a capsule ``__eq__``), and hand it
to callbacks: whatever the process streams are, capsule code can hold them.  So they carry no
authority and expose nothing (I4): their state (the stream below, the running cell) sits in a
slot whose accessor is kept here and deleted from the class, so no attribute path from a
stream leads to a run, a context, a registry, ipykernel's OutStream or its session.  Trusted
code (no capsule frame on the stack) still reaches every attribute of the stream below
(ipykernel's ``set_parent``, IPython's ``_is_master_process``); capsule code, and library
code running for it, gets the methods below and plain attributes of the ``IO_NAMES``.
"""

from __future__ import annotations

import threading

from . import terminal, tripwire
from .errors import CapsuleAttributeError, CapsuleTypeError

_PLAIN = (str, int, bool, float, type(None))

#: Attributes of the stream below a capsule may read (plain values only: a str, int, bool).
IO_NAMES = frozenset(
    {
        "encoding",
        "errors",
        "closed",
        "name",
        "mode",
        "newlines",
        "line_buffering",
        "write_through",
    }
)


def _refuse(name: str):
    return CapsuleAttributeError(
        f"{name!r} of the process stream (sys.stdout/sys.stderr) is hidden from capsule code",
        "membrane",
        None,
        hint="the stream carries no authority: write, flush, isatty, fileno and its encoding work",
    )


def _refuse_write(name):
    return CapsuleAttributeError(
        f"setting {name if type(name) is str else '?'!r} on the process stream "
        "(sys.stdout/sys.stderr): trusted code writes through it",
        "membrane",
        None,
    )


class _OpaqueStream:
    """What ``sys.stdout``/``sys.stderr`` share: the stream below is reached only through
    :data:`_STATE`'s accessor."""

    # __dict__: IPython sets attributes on sys.stdout (its history's ``stream.write``).
    __slots__ = ("_ipycap_state", "__weakref__", "__dict__")

    def __setattr__(self, name, value):
        if tripwire.capsule_on_stack():  # trusted code later writes through what is set
            raise _refuse_write(name)
        object.__setattr__(self, name, value)

    def __delattr__(self, name):
        if tripwire.capsule_on_stack():
            raise _refuse_write(name)
        object.__delattr__(self, name)

    def flush(self):
        return _below(self).flush()

    def isatty(self):
        return bool(_below(self).isatty())

    def fileno(self):
        number = _below(self).fileno()
        if type(number) is not int:
            raise OSError("fileno")
        return number

    def writable(self):
        return True

    def readable(self):
        return False

    def seekable(self):
        return False

    def writelines(self, lines):
        for line in lines:
            self.write(line)

    def __getattr__(self, name):
        below = _below(self)
        if not tripwire.capsule_on_stack():
            return getattr(below, name)
        if type(name) is str and name in IO_NAMES:
            value = getattr(below, name)
            if type(value) in _PLAIN:
                return value
        raise _refuse(name if type(name) is str else "?")

    def __repr__(self):
        return f"<ipycap {type(self).__name__}>"


_STATE = _OpaqueStream.__dict__["_ipycap_state"]
_get_state = _STATE.__get__
_set_state = _STATE.__set__
del _OpaqueStream._ipycap_state
del _OpaqueStream.__slots__


def _init(stream, value) -> None:
    """Set a stream's state once: a second ``__init__`` (capsule code calling it on the
    process's stream) would redirect what trusted code writes."""
    try:
        _get_state(stream)
    except AttributeError:
        _set_state(stream, value)
    else:
        raise CapsuleTypeError(
            "initialising the process stream again (trusted code writes through it)",
            "membrane",
            None,
        )


def _below(stream):
    return _get_state(stream)[0]


def state(stream):
    """(the stream below, the run or None): for ipycap's own code."""
    return _get_state(stream)


class CellStream(_OpaqueStream):
    """``sys.stdout``/``sys.stderr`` while a limited cell runs: what the capsule thread writes
    is sanitised (terminal control sequences) and counted; other threads pass through."""

    __slots__ = ()

    def __init__(self, stream, run):
        _init(self, (stream, run))

    def write(self, text):
        stream, run = _get_state(self)
        if threading.current_thread() is not run.thread:
            return stream.write(text)
        if type(text) is not str:
            text = "".join([text]) if isinstance(text, str) else str(text)
        n = len(text)
        clean = terminal.sanitize(text)
        kept = run.take_output(len(clean))
        if kept:
            stream.write(clean[:kept])
        return n


class ProcessStream(_OpaqueStream):
    """``sys.stdout``/``sys.stderr`` between cells: what is written while capsule code is on
    the writing thread's stack (a ``__del__`` run by a later garbage collection, a callback
    trusted code calls) passes the terminal sanitiser; trusted writes pass through as they
    are.  Installed around the process's streams by the first limited cell and kept."""

    __slots__ = ()

    def __init__(self, stream):
        _init(self, (stream, None))

    def write(self, text):
        if tripwire.capsule_on_stack():
            text = terminal.sanitize(text)
        return _below(self).write(text)


__all__ = ["IO_NAMES", "CellStream", "ProcessStream", "state"]
