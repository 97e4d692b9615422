"""Capsule methods that trusted code calls later with values of its own.

A capsule class that subclasses an abstract base class, or a capsule metaclass, enters
tables that trusted code walks: ``isinstance(x, collections.abc.Sequence)`` anywhere in the
process calls ``__subclasshook__`` of every capsule subclass of ``Sequence`` with
``type(x)``, and ``__subclasscheck__``/``__instancecheck__`` of a capsule metaclass with
whatever is checked.  Raw, those arguments are trusted classes and objects (a user class, the
shell's class): I2 in DESIGN.md.  So when a capsule class is made, these hooks are wrapped:
their arguments enter the capsule as any trusted value does, through the membrane (builtin
and standard-library classes as they are, frozen; the capsule's own classes and objects as
they are; everything else as a proxy).  What the hook decides still decides.
"""

from __future__ import annotations

import functools
import types

from . import arrayguard, guard
from .membrane import is_plain, wrap
from .membrane.authority import _callback_cap

# Every class a capsule makes, however it is made, gets the array-protocol guard.
arrayguard.install()

_HEAPTYPE = 1 << 9
_type_flags = type.__dict__["__flags__"].__get__

#: Hooks of a class (or metaclass) dict whose second argument comes from trusted code.
CLASS_HOOKS = ("__subclasshook__", "__subclasscheck__", "__instancecheck__")


def inbound(value):
    """``value`` as a capsule hook may receive it (see the module docstring)."""
    tp = type(value)
    if tp in guard.PROXY_TYPES or is_plain(value):
        return value
    if isinstance(value, type):
        if value in guard.OWN_TYPES:
            return value
        if not (_type_flags(value) & _HEAPTYPE) or guard._is_stdlib_class(value):
            return guard.share_class(value)
        return wrap(value, _callback_cap())
    if guard.is_own(value):
        return value
    return wrap(value, _callback_cap())


def _guarded(fn):
    @functools.wraps(fn)
    def hook(cls, arg, /):
        return fn(cls, inbound(arg))

    return hook


def guard_class_hooks(cls: type) -> None:
    """Wrap the hooks of capsule class ``cls`` that trusted code calls (in place)."""
    d = type.__dict__["__dict__"].__get__(cls)
    for name in CLASS_HOOKS:
        entry = d.get(name)
        if entry is None:
            continue
        if type(entry) is classmethod:
            replacement = classmethod(_guarded(entry.__func__))
        elif type(entry) is types.FunctionType:
            replacement = _guarded(entry)
        else:
            continue  # a staticmethod or other descriptor gets no trusted ``cls`` pairing
        type.__setattr__(cls, name, replacement)
