"""Exceptions crossing the membrane: fresh ones, message only, no objects, no traceback."""

from __future__ import annotations

from .. import guard
from ..errors import RevokedError
from .values import is_plain, plain_result


def scrub(exc: BaseException) -> BaseException:
    """A fresh exception for the capsule: message only, no objects, no trusted traceback."""
    tp = type(exc)
    if guard.is_own(exc):
        exc.__context__ = None
        exc.__cause__ = None
        return exc.with_traceback(None)
    if isinstance(exc, guard.CapsuleAttributeError.__mro__[0]):
        fresh = tp(exc.what, exc.layer, exc.how) if hasattr(exc, "what") else None
        if fresh is not None:
            return fresh
    try:
        message = str(exc)
    except Exception:
        message = "<exception message unavailable>"
    if type(message) is not str:
        message = "".join([message]) if isinstance(message, str) else repr(message)
    builtin = next(c for c in tp.__mro__ if c.__module__ == "builtins")
    if builtin is not tp:
        message = f"{tp.__qualname__}: {message}"
    if builtin is KeyError and exc.args and is_plain(exc.args[0]) and builtin is tp:
        return KeyError(exc.args[0])
    if builtin is StopIteration:
        return StopIteration()
    for candidate in builtin.__mro__:
        try:
            return candidate(message)
        except Exception:
            continue
    return Exception(message)


def scrub_outbound(exc: BaseException) -> BaseException:
    """A capsule exception for trusted code: its builtin type and message, nothing else."""
    if type(exc).__module__ == "builtins" and not guard.is_own(exc) and not exc.args:
        return type(exc)()
    tp = type(exc)
    if tp.__module__ == RevokedError.__module__ and not guard.is_own(exc):
        # ipycap's own refusals keep their type (e.g. RevokedError), rebuilt from plain text.
        try:
            return tp(
                *(None if v is None else "".join([str(v)]) for v in (exc.what, exc.layer, exc.how))
            )
        except Exception:  # noqa: BLE001 - fall back to the builtin base below
            pass
    builtin = next(c for c in tp.__mro__ if c.__module__ == "builtins")
    try:
        message = plain_result(str(exc))
    except Exception:
        message = "<exception message unavailable>"
    if builtin is not tp:
        message = f"{tp.__qualname__}: {message}"
    try:
        return builtin(message)
    except Exception:
        return Exception(message)
