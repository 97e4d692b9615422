"""Revocable file handles: what a capsule's ``open()`` returns.

A grant's authority must end when the grant does (``%capsule revoke``, the end of a
cell-scoped or [y]es-once approval), also for what it already produced.  A raw io object
would keep reading and writing after that, for as long as the capsule holds it (the capsule
kernel keeps the namespace across cells).  :class:`RevocableFile` holds the io object and the
capabilities that allowed the access; every read or write first checks that one of them is
still active, and on the first refusal the file is closed.  Closing and reading attributes
(``name``, ``mode``, ``closed``) need no capability.

Methods are spelled out for the operations capsules use (no per-call closures), so a read or a
write costs one attribute check more than on the raw object.  ``buffer``/``raw``/``detach``
hand out the underlying objects and are refused.  ``fileno`` is checked like a read or a write:
a descriptor number is authority (native code reads and writes it below Python's I/O, red
team 8 finding 1), so it is given only while the file's grants are active, and every native
use of a number is checked again by the number (:mod:`ipycap.engine.fds`).
"""

from __future__ import annotations

import io

from . import fds, limits
from .errors import CapsuleAttributeError, CapsulePermissionError

try:
    from ._speedups import checked_lines as _checked_lines
except ImportError:  # pragma: no cover - the extension is optional
    _checked_lines = None

#: Attributes read through to the io object (plain values or harmless queries).
_PASSED = frozenset(
    {
        "name",
        "mode",
        "closed",
        "encoding",
        "errors",
        "newlines",
        "line_buffering",
        "write_through",
        "readable",
        "writable",
        "seekable",
        "isatty",
    }
)


class RevocableFile:
    """A file opened by capsule code, usable while the grants that opened it are active."""

    # "__ipycap*" names: never readable by capsule code (rules.is_never), not name-mangled.
    __slots__ = ("__ipycap_file__", "__ipycap_read__", "__ipycap_write__", "__ipycap_path__")

    def __new__(cls, file, read_caps, write_caps, path: str):
        # state set once, here: __init__ is object's, so capsule code cannot hand its open
        # file new capabilities (``f.__init__(..., [still_valid], ...)``) after a revoke
        self = object.__new__(cls)
        self.__ipycap_file__ = file
        self.__ipycap_read__ = tuple(read_caps)
        self.__ipycap_write__ = tuple(write_caps)
        self.__ipycap_path__ = path
        return self

    # -- the check --------------------------------------------------------------------------
    def __ipycap_check__(self, kind: str):
        caps = self.__ipycap_read__ if kind == "read" else self.__ipycap_write__
        for cap in caps:
            if not cap.revoked:
                return self.__ipycap_file__
        file = self.__ipycap_file__
        try:
            file.close()
        finally:
            raise CapsulePermissionError(
                f"{kind} through a file opened on {self.__ipycap_path__!r}: the grant that allowed it "
                "was revoked or has ended",
                "builtins",
                None,
                hint="open the file again once it is granted",
            )

    # -- reading -----------------------------------------------------------------------------
    def read(self, *args):
        return self.__ipycap_check__("read").read(*args)

    def readline(self, *args):
        return self.__ipycap_check__("read").readline(*args)

    def readlines(self, *args):
        return self.__ipycap_check__("read").readlines(*args)

    def read1(self, *args):
        return self.__ipycap_check__("read").read1(*args)

    def peek(self, *args):
        return self.__ipycap_check__("read").peek(*args)

    def readinto(self, buffer):
        return self.__ipycap_check__("read").readinto(buffer)

    def __iter__(self):
        self.__ipycap_check__("read")
        if _checked_lines is None:  # pragma: no cover - without the C extension
            return self
        # each line checked in C, as __next__ does (no Python frame per line)
        return _checked_lines(self.__ipycap_file__, self.__ipycap_read__, self.__ipycap_check__)

    def __next__(self):
        # __ipycap_check__ inlined (a line is the hottest read): the same check per use
        for cap in self.__ipycap_read__:
            if not cap.revoked:
                return self.__ipycap_file__.__next__()
        return next(self.__ipycap_check__("read"))

    # -- writing -----------------------------------------------------------------------------
    def write(self, data):
        return self.__ipycap_check__("write").write(data)

    def writelines(self, lines):
        return self.__ipycap_check__("write").writelines(lines)

    def truncate(self, *args):
        return self.__ipycap_check__("write").truncate(*args)

    def flush(self):
        if self.__ipycap_write__:
            return self.__ipycap_check__("write").flush()
        return self.__ipycap_file__.flush()

    # -- position and life ---------------------------------------------------------------------
    def seek(self, *args):
        return self.__ipycap_check__("read" if self.__ipycap_read__ else "write").seek(*args)

    def tell(self):
        return self.__ipycap_check__("read" if self.__ipycap_read__ else "write").tell()

    def close(self):
        return self.__ipycap_file__.close()

    def fileno(self):
        # the descriptor gives every access the file was opened for: each checked now
        if self.__ipycap_read__:
            self.__ipycap_check__("read")
        if self.__ipycap_write__:
            self.__ipycap_check__("write")
        return self.__ipycap_file__.fileno()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.__ipycap_file__.close()
        return False

    def __getattr__(self, name):
        if name in _PASSED:
            return getattr(self.__ipycap_file__, name)
        raise CapsuleAttributeError(
            f"{name!r} of a capsule's file (it would hand out the underlying file, past "
            "revocation)",
            "builtins",
            None,
        )

    def __repr__(self):
        state = "closed" if self.__ipycap_file__.closed else "open"
        return (
            f"<capsule file {self.__ipycap_path__!r} mode={self.__ipycap_file__.mode!r} ({state})>"
        )


# Libraries test the kind of a file with isinstance (text or bytes): keep their answer.
class RevocableText(RevocableFile):
    __slots__ = ()


class RevocableBinary(RevocableFile):
    __slots__ = ()


io.TextIOBase.register(RevocableText)
io.BufferedIOBase.register(RevocableBinary)


class _ThisCell:
    """Stands for a [y]es-once approval (whose capability ends at once): valid while the
    limited run that asked is still the one running on this thread (the cell that opened
    the file), ended after it."""

    __slots__ = ("run",)

    def __init__(self, run):
        self.run = run

    @property
    def revoked(self) -> bool:
        return self.run is None or limits.current_run() is not self.run


def revocable(file, context, kinds, path: str):
    """Wrap ``file`` (just opened by capsule ``open``) with the active path capabilities of
    ``context`` that cover ``path`` for each of ``kinds`` (an access approved once: this
    cell)."""
    caps = {}
    for kind in kinds:
        caps[kind] = [c for c in context._active(kind) if c.covers_path(path)] or [
            _ThisCell(limits.current_run())
        ]
    cls = RevocableText if isinstance(file, io.TextIOBase) else RevocableBinary
    handle = cls(file, caps.get("read", ()), caps.get("write", ()), path)
    fds.note(file, handle.__ipycap_read__, handle.__ipycap_write__, context, path)
    return handle
