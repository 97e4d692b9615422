"""Descriptor numbers are authority: native code's use of one is checked by the number.

A granted library's native code takes any object with a ``fileno()`` as a file and reads or
writes the descriptor number it returns below Python's I/O (numpy's ``npy_PyFile_Dup2``:
``os.dup`` + C ``fdopen``; Pillow's encoders and decoders given ``fp.fileno()``), where no
audit event is raised (red team 8, finding 1).  A capsule class can return any small integer,
so the object cannot be trusted: the number is checked where it is used.

- :func:`note` records each descriptor a capsule's ``open()`` made (handles.revocable): the
  io object (weakly), the capabilities of its access, and the capsule.
- :func:`check` admits a descriptor for a capsule only while it is such a file's: the file
  still open under that number, every capability of its kind still active, its capsule on
  the stack and every other capsule on the stack granted the path.
- :func:`install` puts checked ``os.dup``/``os.dup2`` into the real ``os`` module (numpy calls
  ``os.dup`` through ``PyObject_CallMethod(os, "dup")``, so it meets the wrapper); trusted
  code pays one flag test and a walk of its stack (measured in tests/test_descriptors.py).
  ``os.fdopen`` and ``io.open(int)`` raise the ``open`` audit event, which the tripwire
  refuses for a descriptor.  ``os.read``/``os.write``/``os.lseek``/``os.fstat`` are not
  wrapped: native code reaches a descriptor through ``dup`` or its own libc calls, and
  capsule code holds no ``os`` (stdviews gives it ``os.path`` only).
"""

from __future__ import annotations

import builtins as _builtins
import os
import stat
import sys
import weakref

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None

from . import guard
from .errors import CapsulePermissionError

#: descriptor number -> (weakref to the io object, read caps, write caps, weakref to the
#: context, path).  An entry whose io object is gone, closed or now holds another number
#: admits nothing, so stale entries need no cleanup; a new file under the number replaces it.
_FILES: dict[int, tuple] = {}

_real_dup = os.dup
_real_dup2 = os.dup2
_installed = False


def note(file, read_caps, write_caps, context, path: str) -> None:
    """Record the descriptor of ``file`` (just opened by capsule ``open``)."""
    try:
        number = file.fileno()
    except (OSError, ValueError, AttributeError):
        return
    if type(number) is not int:
        return
    ctx_ref = weakref.ref(context) if context is not None else None
    _FILES[number] = (weakref.ref(file), tuple(read_caps), tuple(write_caps), ctx_ref, path)


def _refusal(number, what: str, why: str):
    return CapsulePermissionError(
        f"{what} of file descriptor {number!r}: {why} (a descriptor number is authority; "
        "native code given it reads or writes below Python's checks)",
        "descriptor check",
        None,
        hint="pass the file open() returned, a path within the grants, or an io.BytesIO",
    )


def _stack(frame) -> list:
    """The capsule contexts on the stack from ``frame`` out (the tripwire's walk: builtins
    dicts by identity, inlined: trusted code's os.dup pays it); refuses capsule code running
    with builtins of its own choosing."""
    table, codes = guard._CAPSULE_BUILTINS, guard._CAPSULE_CODE
    runs_capsule_code = guard._frame_runs_capsule_code
    found: list = []
    f = frame
    while f is not None:
        builtins = f.f_builtins
        entry = None if builtins is _REAL_BUILTINS else table.get(_address(builtins))
        if entry is not None and entry[0] is builtins:
            if entry[1] not in found:
                found.append(entry[1])
        elif (
            runs_capsule_code(f, codes)
            if runs_capsule_code is not None
            else guard.frame_is_capsule_code(f)
        ):
            raise CapsulePermissionError(
                "a file descriptor used by capsule code running with builtins of its own choosing",
                "descriptor check",
                None,
            )
        f = f.f_back
    return found


_address = object.__hash__
_REAL_BUILTINS = _builtins.__dict__  # never a capsule's (those are tables of their own)


def check(number, what: str, kinds=None, contexts=None, frame=None) -> None:
    """Refuse ``number`` for the capsules on the stack unless it is the live descriptor of a
    capsule's own file whose grants for ``kinds`` (default: every access it was opened for)
    are active, or a regular file every capsule on the stack is granted (:func:`_check_target`).
    No-op when no capsule is on the stack."""
    if contexts is None:
        contexts = _stack(frame if frame is not None else sys._getframe(1))
    if not contexts:
        return
    try:
        _check(number, what, kinds, contexts)
    except CapsulePermissionError as error:
        for ctx in contexts:
            ctx.record_refusal(error)
        raise


def _check(number, what, kinds, contexts) -> None:
    if type(number) is not int:
        if not isinstance(number, int):  # its __index__ could answer differently later
            raise _refusal("?", what, f"a descriptor given as a {type(number).__name__} object")
        number = int.__index__(number)  # an int subclass: its value, no method of it
    entry = _FILES.get(number)
    file = entry[0]() if entry is not None else None
    try:
        live = file is not None and not file.closed and file.fileno() == number
    except (OSError, ValueError):
        live = False
    if not live:
        _check_target(number, what, kinds, contexts)
        return
    _, read_caps, write_caps, ctx_ref, path = entry
    owner = ctx_ref() if ctx_ref is not None else None
    if owner is None or not any(ctx is owner for ctx in contexts):
        raise _refusal(number, what, "the file was opened by another capsule")
    if kinds is None:  # what the descriptor gives: the access the file was opened for
        kinds = ("read",) * bool(read_caps) + ("write",) * bool(write_caps)
    for kind in kinds:
        caps = read_caps if kind == "read" else write_caps
        if not any(not cap.revoked for cap in caps):
            raise _refusal(
                number,
                what,
                f"{kind} through the file opened on {path!r}: "
                + (
                    "the grant that allowed it was revoked or has ended"
                    if caps
                    else "not opened for it"
                ),
            )
        for ctx in contexts:
            if ctx is not owner and not ctx.allows_path(kind, path):
                raise _refusal(
                    number, what, f"{kind} of {path!r} is not granted to every capsule on the stack"
                )


def _describe_fd(number: int):
    """(stat, real path, access flags) of descriptor ``number``; the tripwire stands aside
    (as for the auditor's and limits' own calls): these are this check's own syscalls."""
    state = _TRIPWIRE[0]._state
    was = getattr(state, "busy", False)
    state.busy = True
    try:
        st = os.fstat(number)
        target = os.readlink(f"/proc/self/fd/{number}")
        flags = fcntl.fcntl(number, fcntl.F_GETFL) if fcntl is not None else os.O_RDWR
    finally:
        state.busy = was
    return st, target, flags & os.O_ACCMODE


def _check_target(number, what, kinds, contexts) -> None:
    """A descriptor that is no file of a capsule's ``open()`` (one a granted library opened
    on a checked path: ``np.save(path)`` -> ``tofile``): admitted by what it names -- a
    regular file, one link, whose real path every capsule on the stack is granted for the
    access the descriptor gives.  Sockets, pipes, terminals, deleted files are refused."""
    try:
        st, target, access = _describe_fd(number)
    except OSError:
        raise _refusal(number, what, "it names no open file") from None
    if not stat.S_ISREG(st.st_mode) or not target.startswith("/") or target.endswith(" (deleted)"):
        raise _refusal(number, what, "it is not a file the capsule opened or was granted")
    if st.st_nlink > 1:
        raise _refusal(number, what, f"{target} has several hard links")
    if kinds is None:
        kinds = {os.O_RDONLY: ("read",), os.O_WRONLY: ("write",)}.get(access, ("read", "write"))
    for kind in kinds:
        for ctx in contexts:
            if not ctx.allows_path(kind, target):
                raise _refusal(
                    number,
                    what,
                    f"it is not a file this capsule opened, and {kind} of {target} is not granted",
                )


def dup(fd, /):
    if _TRIPWIRE[0]._armed:
        check(fd, "os.dup", frame=sys._getframe())
    return _real_dup(fd)


def dup2(fd, fd2, inheritable=True):
    if _TRIPWIRE[0]._armed:
        contexts = _stack(sys._getframe())
        check(fd, "os.dup2", contexts=contexts)
        check(fd2, "os.dup2 (onto)", kinds=("read", "write"), contexts=contexts)
    return _real_dup2(fd, fd2, inheritable)


_TRIPWIRE: list = []


def _describe(wrapper, real):
    wrapper.__name__ = real.__name__
    wrapper.__qualname__ = real.__qualname__
    wrapper.__module__ = "os"
    wrapper.__doc__ = real.__doc__


def armed() -> bool:
    """Whether the tripwire is armed (a capsule context exists): before, nothing is checked."""
    return bool(_TRIPWIRE) and _TRIPWIRE[0]._armed


def install(tripwire) -> None:
    """Put the checked ``dup``/``dup2`` into the real ``os`` module (once).  ``tripwire`` is
    the tripwire module calling (passed, not imported: its armed flag and its busy state)."""
    global _installed
    if _installed:
        return
    _TRIPWIRE.append(tripwire)
    _describe(dup, _real_dup)
    _describe(dup2, _real_dup2)
    os.dup = dup
    os.dup2 = dup2
    _installed = True
