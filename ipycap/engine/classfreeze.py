"""Freeze the standard-library classes a capsule can reach, before it can reach them (I3).

guard.share_class freezes a class when a module view or a guarded attribute hands it to a
capsule.  A class reaches capsule code other ways too: a trusted function's result
(``typing.get_origin``), a plain attribute of a stdlib object (``TarFile.tarinfo``), and
writes a trusted object forwards for the capsule (``typing.ChainMap.new_child = f`` is
``setattr(collections.ChainMap, ...)`` from typing's frame).  On 3.11 a class attribute
store raises no audit event, so the class itself must refuse it: when a capsule's view of a
standard-library module is made, every standard-library heap class reachable from that
module -- its classes and their class-valued attributes, the origins and arguments of its
typing aliases, and the same for every standard-library module its values come from -- is
frozen (Py_TPFLAGS_IMMUTABLETYPE; subclassing still works).  Each module is walked once,
and again when its dict has grown (``import xml.dom`` adds ``dom`` to ``xml``).

``EXEMPT`` lists the reachable classes whose own code writes their class attributes while
the program runs: freezing them would break trusted code, so they stay mutable, with why a
capsule cannot use that.  tests/test_classfreeze.py scans for reachable classes that are
neither frozen nor exempt.
"""

from __future__ import annotations

import enum
import sys
import types
import typing

from . import deputies, guard, rules, tripwire

_STDLIB = frozenset(sys.stdlib_module_names)
_HEAPTYPE = 1 << 9
_IMMUTABLE = 1 << 8
#: typing's aliases (``typing.ChainMap``) and ``list[int]``: what they stand for is reachable.
_ALIAS_TYPES = (types.GenericAlias, typing._BaseGenericAlias)

#: (module, qualname) -> why the class stays mutable (guard.share_class refuses them).
EXEMPT = rules.FREEZE_EXEMPT

_CONTAINERS = (dict, list, tuple, set, frozenset)
_CONTAINER_SEEN: dict = {}  # containers visited in the current walk (identity-keyed)
_key = object.__hash__  # identity without id(), whose audit event the tripwire sees
_WALKED: dict = {}  # module name -> size of its dict when walked (a grown one is walked again)


def _stdlib(module_name) -> bool:
    return type(module_name) is str and module_name.partition(".")[0] in _STDLIB


def _exempt(cls) -> bool:
    d = type.__dict__
    return (d["__module__"].__get__(cls), d["__qualname__"].__get__(cls)) in EXEMPT


def freeze_reachable(module) -> None:
    """Freeze the stdlib heap classes reachable from ``module`` (a stdlib module); called
    for every view a capsule gets, it returns at once for a module walked as it is now."""
    name = getattr(module, "__name__", None)
    if guard._freeze_type is None or not _stdlib(name) or _WALKED.get(name) == len(vars(module)):
        return
    pending = [module]
    _CONTAINER_SEEN.clear()
    seen_classes: dict = {}  # class -> to freeze? (at the end, after instances are sealed)
    while pending:
        mod = pending.pop()
        name, size = mod.__name__, len(vars(mod))
        if _WALKED.get(name) == size:
            continue
        _WALKED[name] = size
        for key, value in list(vars(mod).items()):
            _visit(value, pending, seen_classes, public=key[:1] != "_")
        for value in tripwire.trusted_module_types(mod):  # an extension module's own types
            _visit_class(value, pending, seen_classes)
    _CONTAINER_SEEN.clear()
    for cls in [cls for cls, freeze in seen_classes.items() if freeze]:
        if guard.before_freeze is not None:
            guard.before_freeze(cls)  # as share_class does: hooks guarded first
        seal_enum_setattr(cls)
        guard._freeze_type(cls)


def seal_enum_setattr(cls) -> None:
    """An enum class with its own ``__setattr__``/``__delattr__`` goes past the member guard
    enum.Enum carries (deputies._guard_enum_members): its shared members would take a
    capsule's writes.  Before the class is frozen, its own entries are wrapped in the same
    check (listed members refuse writes while capsule code is on the stack, unless the
    capsule made the class).  Idempotent; other classes are left alone."""
    if not isinstance(cls, type) or not issubclass(cls, enum.Enum) or cls is enum.Enum:
        return
    d = type.__dict__["__dict__"].__get__(cls)
    for kind in ("__setattr__", "__delattr__"):
        own = d.get(kind)
        if own is None or own in _ENUM_GUARDS:
            continue
        guarded = _enum_guard(own, kind)
        _ENUM_GUARDS.add(guarded)
        type.__setattr__(cls, kind, guarded)


_ENUM_GUARDS: set = set()


def _enum_guard(own, kind):
    call = own.__get__ if hasattr(type(own), "__get__") else None

    def guarded(self, name, *value):
        if deputies._listed(self) and not guard.is_own(self):
            deputies._refuse_capsule_write(self, name)
        fn = call(self, type(self)) if call is not None else (lambda *a: own(self, *a))
        return fn(name, *value)

    guarded.__name__ = guarded.__qualname__ = kind
    return guarded


def _queue_module(name, pending) -> None:
    if _stdlib(name):
        mod = sys.modules.get(name)
        if type(mod) is types.ModuleType and _WALKED.get(name) != len(vars(mod)):
            pending.append(mod)


def _visit(value, pending, seen_classes, public) -> None:
    tp = type(value)
    if tp is types.ModuleType:
        _queue_module(value.__name__, pending)
    elif isinstance(value, type):
        _visit_class(value, pending, seen_classes)
    elif isinstance(value, _ALIAS_TYPES):
        origin = value.__origin__ if tp is types.GenericAlias else vars(value).get("__origin__")
        if isinstance(origin, type):
            _visit_class(origin, pending, seen_classes)
        if public and tp is not types.GenericAlias:
            deputies.seal_found(value)  # typing.List.__origin__ = ... is the alias's own
        _visit_class(tp, pending, seen_classes)
    elif tp is types.FunctionType or tp is types.BuiltinFunctionType:
        _queue_module(getattr(value, "__module__", None), pending)
    elif tp in _CONTAINERS:  # module tables (copyreg.dispatch_table): views hand out copies
        if _CONTAINER_SEEN.get(_key(value)) is not value:
            _CONTAINER_SEEN[_key(value)] = value
            items = list(value.items()) if tp is dict else list(value)
            for item in items:
                for part in item if tp is dict else (item,):
                    _visit(part, pending, seen_classes, public=False)
    else:  # a shared instance: sealed (deputies.seal); its class is type(x) away
        if public:  # views hand out no private module attribute
            deputies.seal_found(value)
        _visit_class(type(value), pending, seen_classes)


def _visit_class(cls, pending, seen) -> None:
    """Visit ``cls``: a stdlib heap class is to be frozen; its bases, class-valued
    attributes and shared instances in its dict are visited too."""
    if cls in seen:
        return
    seen[cls] = False
    module = type.__dict__["__module__"].__get__(cls)
    if not _stdlib(module):
        return
    _queue_module(module, pending)
    flags = type.__dict__["__flags__"].__get__(cls)
    seen[cls] = bool(flags & _HEAPTYPE and not flags & _IMMUTABLE and not _exempt(cls))
    for base in type.__dict__["__mro__"].__get__(cls)[1:]:
        _visit_class(base, pending, seen)
    for key, attr in list(type.__dict__["__dict__"].__get__(cls).items()):
        if isinstance(attr, type):
            _visit_class(attr, pending, seen)
            continue
        if key[:1] != "_":
            deputies.seal_found(attr, module_level=False)  # Document.implementation
        _visit_class(type(attr), pending, seen)
