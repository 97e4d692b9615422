"""Read-only tables: what capsule code gets for a container trusted code reads later.

A table frozen at the top only (a ``mappingproxy`` of matplotlib's style library, a frozen
class holding a dict) still hands out its *entries* raw: the RcParams of one style, the
marker table of a frozen class, a jinja environment's globals.  A capsule edits the entry and
trusted code uses it later (I3): ``plt.style.use('ggplot')`` then runs the ffmpeg the capsule
named.  So every container reached this way is read-only *all the way down*:

- :func:`read_only` is what capsule code gets for a container: a :class:`ReadOnlyTable` (a
  mapping) or a :class:`ReadOnlyList` (a sequence); their entries come out read-only too.
- A table a library keeps on a class or a shared object (``Profile.tables``) is replaced in
  place by a :class:`SharedTable`/:class:`SharedList`: trusted code reads and writes it as
  before (registrations at import, a user's own ``MarkerStyle.markers[...] = ...``); a write
  made directly by capsule code is refused, and what capsule code reads comes out read-only.

Neither is a dict or list subclass (``dict.__setitem__(t, k, v)`` would write past any
override), and neither lets capsule code reach what it wraps: the storage lives in slots
named ``__ipycap_*__``, which the guard never hands out (and a ``mappingproxy`` would, to a
capsule ``__eq__`` it compares with: it compares its dict with the other operand).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence

from . import guard
from .errors import CapsulePermissionError

_CONTAINERS = (dict, list, set, bytearray)


_COPY_HINT = "copy it first (dict(t), list(t)) and change the copy"


def _refusal(what: str, name: str, hint=_COPY_HINT):
    from . import tripwire

    err = CapsulePermissionError(
        f"{name}: {what} changes a table trusted code reads later",
        "library profile (shared tables)",
        None,
        hint=hint,
    )
    ctx = tripwire.current_context()
    if ctx is not None:
        ctx.record_refusal(err, kind="library", target=name)
    return err


def read_only(value, name: str = "a library table"):
    """``value`` as capsule code may hold it: a mutable container becomes a read-only view
    (recursively, as it is read); anything else is returned as it is."""
    tp = type(value)
    if tp is SharedTable or tp is SharedList:
        return (ReadOnlyTable if tp is SharedTable else ReadOnlyList)(
            value.__ipycap_data__, value.__ipycap_name__
        )
    if isinstance(value, dict) or (isinstance(value, Mapping) and hasattr(value, "__setitem__")):
        if isinstance(value, (ReadOnlyTable, SharedTable)):
            return value
        return ReadOnlyTable(value, name)
    if isinstance(value, (list, bytearray)):
        return ReadOnlyList(value, name)
    if isinstance(value, set):
        return frozenset(value)  # a snapshot: sets hold hashable (mostly immutable) items
    return value


def _bind(cls, data, name):
    """A new table of ``cls`` over ``data``, its state set here once: ``__init__`` is
    object's, so capsule code calling ``type(t).__init__(t, its_dict)`` on a table trusted
    code reads (a :class:`SharedTable` in place on a library class, pprint's dispatch table)
    changes nothing (tests/test_frozen_state.py)."""
    self = object.__new__(cls)
    object.__setattr__(self, "__ipycap_data__", data)
    object.__setattr__(self, "__ipycap_name__", name)
    return self


def _capsule_writes(depth: int = 2) -> bool:
    """Whether the code writing (``depth`` frames up) is capsule code itself, not a library
    writing on a capsule's behalf."""
    return guard.asked_by_capsule(sys._getframe(depth))


class ReadOnlyTable(Mapping):
    """A mapping capsule code reads but never changes (the entries read-only too)."""

    __slots__ = ("__ipycap_data__", "__ipycap_name__")

    def __new__(cls, data, name="a library table"):
        return _bind(cls, data, name)

    def __getitem__(self, key):
        return read_only(self.__ipycap_data__[key], self.__ipycap_name__)

    def __iter__(self):
        return iter(list(self.__ipycap_data__))

    def __len__(self):
        return len(self.__ipycap_data__)

    def __contains__(self, key):
        return key in self.__ipycap_data__

    def get(self, key, default=None):
        data = self.__ipycap_data__
        return self[key] if key in data else default

    def copy(self):
        """A plain dict of the entries (the capsule's own to change)."""
        return dict(self.items())

    def _write(self, what):
        raise _refusal(what, self.__ipycap_name__)

    def __setitem__(self, key, value):
        self._write(f"setting [{key!r}]")

    def __delitem__(self, key):
        self._write(f"deleting [{key!r}]")

    def update(self, *args, **kwargs):
        self._write("update()")

    def pop(self, *args):
        self._write("pop()")

    def popitem(self):
        self._write("popitem()")

    def setdefault(self, *args):
        self._write("setdefault()")

    def clear(self):
        self._write("clear()")

    def __ior__(self, other):
        self._write("|=")

    def __setattr__(self, name, value):
        self._write(f"setting .{name}")

    def __delattr__(self, name):
        self._write(f"deleting .{name}")

    def __or__(self, other):
        return self.copy() | other

    def __repr__(self):
        return f"<read-only {self.__ipycap_name__}: {self.__ipycap_data__!r}>"

    __hash__ = None


class ReadOnlyList(Sequence):
    """A list capsule code reads but never changes (the items read-only too)."""

    __slots__ = ("__ipycap_data__", "__ipycap_name__")

    def __new__(cls, data, name="a library table"):
        return _bind(cls, data, name)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [read_only(v, self.__ipycap_name__) for v in self.__ipycap_data__[index]]
        return read_only(self.__ipycap_data__[index], self.__ipycap_name__)

    def __len__(self):
        return len(self.__ipycap_data__)

    def __iter__(self):
        return iter([read_only(v, self.__ipycap_name__) for v in self.__ipycap_data__])

    def copy(self):
        return list(self)

    def __eq__(self, other):
        if isinstance(other, (ReadOnlyList, SharedList)):
            other = list(other)
        return list(self) == other if isinstance(other, (list, tuple)) else NotImplemented

    def __add__(self, other):
        return list(self) + list(other)

    def _write(self, what):
        raise _refusal(what, self.__ipycap_name__)

    def __setitem__(self, index, value):
        self._write(f"setting [{index!r}]")

    def __delitem__(self, index):
        self._write(f"deleting [{index!r}]")

    def __iadd__(self, other):
        self._write("+=")

    def append(self, value):
        self._write("append()")

    def extend(self, values):
        self._write("extend()")

    def insert(self, index, value):
        self._write("insert()")

    def remove(self, value):
        self._write("remove()")

    def pop(self, *args):
        self._write("pop()")

    def clear(self):
        self._write("clear()")

    def sort(self, *args, **kwargs):
        self._write("sort()")

    def reverse(self):
        self._write("reverse()")

    def __setattr__(self, name, value):
        self._write(f"setting .{name}")

    def __repr__(self):
        return f"<read-only {self.__ipycap_name__}: {self.__ipycap_data__!r}>"

    __hash__ = None


class SharedTable(ReadOnlyTable):
    """A library's process-wide mapping, in place of the dict it kept on a class or shared
    object: trusted code uses it as before; capsule code reads it read-only and cannot
    change it."""

    __slots__ = ()

    def __getitem__(self, key):
        value = self.__ipycap_data__[key]
        if not isinstance(value, _CONTAINERS) or not _capsule_writes():
            return value  # (entries first: trusted code reads these tables in loops)
        return read_only(value, self.__ipycap_name__)

    def get(self, key, default=None):
        value = self.__ipycap_data__.get(key, default)
        if not isinstance(value, _CONTAINERS) or not _capsule_writes():
            return value
        return read_only(value, self.__ipycap_name__)

    def __iter__(self):
        return iter(self.__ipycap_data__)

    def copy(self):
        """A plain dict of the entries; for capsule code (``t.copy()``, ``t | {}``) with the
        entries read-only, as ``t[key]`` gives them: a shallow copy of the storage would hand
        out the library's own containers."""
        if _capsule_writes():
            return dict(self.items())
        return dict(self.__ipycap_data__)

    def _write(self, what):
        if _capsule_writes(3):
            raise _refusal(what, self.__ipycap_name__)

    def __setitem__(self, key, value):
        self._write(f"setting [{key!r}]")
        self.__ipycap_data__[key] = value

    def __delitem__(self, key):
        self._write(f"deleting [{key!r}]")
        del self.__ipycap_data__[key]

    def update(self, *args, **kwargs):
        self._write("update()")
        self.__ipycap_data__.update(*args, **kwargs)

    def pop(self, *args):
        self._write("pop()")
        return self.__ipycap_data__.pop(*args)

    def popitem(self):
        self._write("popitem()")
        return self.__ipycap_data__.popitem()

    def setdefault(self, *args):
        self._write("setdefault()")
        return self.__ipycap_data__.setdefault(*args)

    def clear(self):
        self._write("clear()")
        self.__ipycap_data__.clear()

    def __ior__(self, other):
        self._write("|=")
        self.__ipycap_data__.update(other)
        return self

    def __setattr__(self, name, value):
        raise _refusal(f"setting .{name}", self.__ipycap_name__)

    __delattr__ = __setattr__

    def __repr__(self):
        return repr(self.__ipycap_data__)


class SharedList(ReadOnlyList):
    """A library's process-wide list (a template search path, a font list), in place of the
    list itself: trusted code uses it as before; capsule code cannot change it."""

    __slots__ = ()

    def __getitem__(self, index):
        value = self.__ipycap_data__[index]
        if not isinstance(value, _CONTAINERS) or not _capsule_writes():
            return value
        return read_only(value, self.__ipycap_name__)

    def __iter__(self):
        if _capsule_writes():
            return iter([read_only(v, self.__ipycap_name__) for v in self.__ipycap_data__])
        return iter(self.__ipycap_data__)

    def copy(self):
        """A plain list of the items (read-only ones for capsule code, as ``copy`` above)."""
        if _capsule_writes():
            return list(self)
        return list(self.__ipycap_data__)

    def _write(self, what):
        if _capsule_writes(3):
            raise _refusal(what, self.__ipycap_name__)

    def __setitem__(self, index, value):
        self._write(f"setting [{index!r}]")
        self.__ipycap_data__[index] = value

    def __delitem__(self, index):
        self._write(f"deleting [{index!r}]")
        del self.__ipycap_data__[index]

    def __iadd__(self, other):
        self._write("+=")
        self.__ipycap_data__.extend(other)
        return self

    def append(self, value):
        self._write("append()")
        self.__ipycap_data__.append(value)

    def extend(self, values):
        self._write("extend()")
        self.__ipycap_data__.extend(values)

    def insert(self, index, value):
        self._write("insert()")
        self.__ipycap_data__.insert(index, value)

    def remove(self, value):
        self._write("remove()")
        self.__ipycap_data__.remove(value)

    def pop(self, *args):
        self._write("pop()")
        return self.__ipycap_data__.pop(*args)

    def clear(self):
        self._write("clear()")
        self.__ipycap_data__.clear()

    def sort(self, *args, **kwargs):
        self._write("sort()")
        self.__ipycap_data__.sort(*args, **kwargs)

    def reverse(self):
        self._write("reverse()")
        self.__ipycap_data__.reverse()

    def __setattr__(self, name, value):
        raise _refusal(f"setting .{name}", self.__ipycap_name__)

    def __repr__(self):
        return repr(self.__ipycap_data__)


for _cls in (ReadOnlyTable, ReadOnlyList, SharedTable, SharedList):
    guard.share_class(_cls)


def share(owner, attr: str, name: str) -> bool:
    """Replace the container ``owner.attr`` (a class or a shared object's attribute) by its
    shared, capsule-read-only equivalent; whether it was replaced (False: not a dict or list,
    or already done)."""
    is_type = isinstance(owner, type)
    value = vars(owner).get(attr) if is_type else getattr(owner, "__dict__", {}).get(attr)
    if type(value) in (dict,) or (isinstance(value, dict) and type(value).__module__ != "builtins"):
        shared = SharedTable(value, name)
    elif type(value) is list:
        shared = SharedList(value, name)
    elif type(value) is set:
        shared = frozenset(value)  # (a set the library never adds to after import)
    else:
        return False
    if is_type:
        try:
            type.__setattr__(owner, attr, shared)
        except TypeError:  # frozen already (a capsule got it before its module's tables)
            from . import _arrayguard

            _arrayguard.place(owner, attr, shared)
    else:
        object.__setattr__(owner, attr, shared)
        _guard_attributes(owner)
    return True


#: Shared objects holding shared tables (``fontManager``, a jinja environment): capsule code
#: may not set their attributes (``fontManager.defaultFamily = {...}`` would put the table
#: back).  By identity: a capsule object's __eq__ never votes.
_OWNERS: list = []
_GUARDED_CLASSES: set = set()


def _guard_attributes(owner) -> None:
    if not any(o is owner for o in _OWNERS):
        _OWNERS.append(owner)
    cls = type(owner)
    if cls in _GUARDED_CLASSES:
        return
    _GUARDED_CLASSES.add(cls)
    set_orig, del_orig = cls.__setattr__, cls.__delattr__

    def __setattr__(self, name, value):
        if any(o is self for o in _OWNERS) and _capsule_writes():
            raise _refusal(f"setting .{name} of a shared {cls.__name__}", cls.__qualname__, None)
        set_orig(self, name, value)

    def __delattr__(self, name):
        if any(o is self for o in _OWNERS) and _capsule_writes():
            raise _refusal(f"deleting .{name} of a shared {cls.__name__}", cls.__qualname__, None)
        del_orig(self, name)

    try:
        type.__setattr__(cls, "__setattr__", __setattr__)
        type.__setattr__(cls, "__delattr__", __delattr__)
    except TypeError:  # frozen already: its tables are shared, its attributes stay settable
        _GUARDED_CLASSES.discard(cls)
