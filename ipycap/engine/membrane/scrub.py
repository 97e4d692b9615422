"""Exceptions crossing the membrane: fresh ones, message only, no objects, no traceback."""

from __future__ import annotations

import builtins as _builtins
import sys

from .. import guard
from ..errors import CapabilityError
from ..values import is_plain, plain_result

_mro = type.__dict__["__mro__"].__get__
_name = type.__dict__["__name__"].__get__
_ERRORS_MODULE = CapabilityError.__module__


def is_builtin_class(cls) -> bool:
    """Whether ``cls`` IS a builtin class (by identity: a class may name any ``__module__``,
    and one claiming 'builtins' was rebuilt by hosts as if it were a builtin one)."""
    return getattr(_builtins, _name(cls), None) is cls


def builtin_base(tp) -> type:
    """The nearest builtin class in ``tp``'s MRO (BaseException at worst)."""
    return next((c for c in _mro(tp) if is_builtin_class(c)), BaseException)


def _is_ipycap_refusal(tp) -> bool:
    """One of ipycap's own refusal classes (by identity, like builtins)."""
    errors = sys.modules.get(_ERRORS_MODULE)
    return errors is not None and getattr(errors, _name(tp), None) is tp


def _message(exc) -> str:
    try:
        message = str(exc)
    except BaseException:  # noqa: BLE001 - a capsule __str__ may raise anything (SystemExit)
        return "<exception message unavailable>"
    if type(message) is str:
        return message
    try:
        return "".join([message]) if isinstance(message, str) else repr(message)
    except BaseException:  # noqa: BLE001
        return "<exception message unavailable>"


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
    message = _message(exc)
    builtin = builtin_base(tp)
    if builtin is not tp:
        message = f"{_name(tp)}: {message}"
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
    tp = type(exc)
    if is_builtin_class(tp) and not exc.args:
        return tp()
    if _is_ipycap_refusal(tp):
        # ipycap's own refusals keep their type (e.g. RevokedError), rebuilt from plain text.
        try:
            return tp(
                *(None if v is None else "".join([str(v)]) for v in (exc.what, exc.layer, exc.how))
            )
        except Exception:  # noqa: BLE001 - fall back to the builtin base below
            pass
    builtin = builtin_base(tp)
    message = plain_result(_message(exc))
    if builtin is not tp:
        message = f"{_name(tp)}: {message}"
    try:
        return builtin(message)
    except Exception:
        return Exception(message)
