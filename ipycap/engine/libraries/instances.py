"""Class-level tables of live instances a granted library keeps, per capsule.

A library keeps every live instance in a table on its class (``tqdm.tqdm._instances``, a
WeakSet that ``tqdm.write()`` and the monitor walk; matplotlib's ``_AxesBase._shared_axes``;
numpy's ``finfo._finfo_cache``).  Capsule code reads a library class's private names
natively, so one shared table hands the user's trusted instances to a capsule (their
``iterable``, a trusted file, raw: I2) and keeps the capsule's instances where trusted code
uses them later (I3: ``tqdm.write`` compares every bar's file with the trusted stdout).

So each listed table (``Profile.instance_tables``) is replaced on its class by
:class:`PerCapsule`: trusted code sees the library's own table, as before; code running for a
capsule (the capsule's, or the library's on its behalf) sees a table of that capsule's own,
made empty (its keys kept for a dict of tables) the first time it asks.  The descriptor
carries nothing readable: its state sits in a slot whose accessor is kept here.
``tests/test_library_boundary.py`` scans every profiled class for such tables and fails on
one no profile classifies (``instance_tables`` or ``shared_tables``).
"""

from __future__ import annotations

import sys
import weakref

from .. import tripwire

WEAK_TABLES = (weakref.WeakSet, weakref.WeakValueDictionary, weakref.WeakKeyDictionary)


def fresh(table):
    """An empty table like ``table`` (a dict of tables: the same keys, each table fresh)."""
    tables = (*WEAK_TABLES, set, list, dict)
    if type(table) is dict and table and all(isinstance(v, tables) for v in table.values()):
        return {k: type(v)() for k, v in table.items()}
    return type(table)()


class PerCapsule:
    """A class attribute holding a table of instances, as each caller sees it."""

    __slots__ = ("_ipycap_state", "__weakref__")

    def __init__(self, table):
        try:
            _get(self)
        except AttributeError:
            _set(self, (table, weakref.WeakKeyDictionary(), {}))
        else:
            raise TypeError("a per-capsule table is made once")

    def __get__(self, obj, owner=None):
        ctx = tripwire.current_context()
        table, views, by_id = _get(self)
        if ctx is None:
            return table
        try:
            view = views.get(ctx)
        except TypeError:  # a context that cannot be weakly referenced
            view = by_id.get(id(ctx))
        if view is None:
            view = fresh(table)
            try:
                views[ctx] = view
            except TypeError:
                by_id[id(ctx)] = view
        return view

    def __repr__(self):
        return "<ipycap per-capsule table>"


_STATE = PerCapsule.__dict__["_ipycap_state"]
_get = _STATE.__get__
_set = _STATE.__set__
del PerCapsule._ipycap_state
del PerCapsule.__slots__


def trusted_table(descriptor):
    """The library's own table behind a :class:`PerCapsule` (for ipycap's tests)."""
    return _get(descriptor)[0]


_type_module = type.__dict__["__module__"].__get__
_type_qualname = type.__dict__["__qualname__"].__get__
_type_dict = type.__dict__["__dict__"].__get__
#: "module:Class" -> the attribute names listed for it (every profile's instance_tables).
_LISTED: dict = {}


def listed(profiles) -> dict:
    if not _LISTED:
        for profile in profiles:
            for key in profile.instance_tables:
                owner, _, attr = key.rpartition(".")
                _LISTED.setdefault(owner, []).append(attr)
    return _LISTED


def scope_class(cls, profiles) -> None:
    """Install :class:`PerCapsule` for ``cls``'s listed tables (called before a library class
    is frozen, and for every listed class imported whenever a capsule makes a module view)."""
    module, qualname = _type_module(cls), _type_qualname(cls)
    if type(module) is not str or type(qualname) is not str:
        return
    attrs = listed(profiles).get(f"{module}:{qualname}")
    if not attrs:
        return
    d = _type_dict(cls)
    for attr in attrs:
        table = d.get(attr)
        if table is not None and type(table) is not PerCapsule:
            try:
                type.__setattr__(cls, attr, PerCapsule(table))
            except TypeError:  # frozen already: tests/test_library_boundary.py reports it
                pass


def scope_tables(profiles) -> None:
    """:func:`scope_class` for every listed class already imported."""
    for owner in listed(profiles):
        module_name, _, cls_name = owner.partition(":")
        module = sys.modules.get(module_name)
        cls = getattr(module, cls_name, None) if module is not None else None
        if isinstance(cls, type):
            scope_class(cls, profiles)


__all__ = ["WEAK_TABLES", "PerCapsule", "fresh", "scope_class", "scope_tables", "trusted_table"]
