"""Stand-ins for the parts of grantable standard-library modules that act on process-wide state.

A grantable module's function that writes a table every caller shares (``csv``'s dialect
registry, ``xml.etree``'s namespace prefixes) or the interpreter's streams
(``contextlib.redirect_stdout``) would let a capsule change what trusted code does later (I3).
The capsule's view of the module (modules.MODULE_OVERRIDES) shows these stand-ins instead:
they refuse, with what to do instead, or answer reads only.  Modules whose deputies cannot be
cut out this way (unittest.mock, gettext, warnings, locale) are not grantable at all
(policy.GRANTABLE_STDLIB).

Module-level *instances* trusted code keeps using are the same class of deputy: the capsule
gets its own copy (``PerCapsule``: ``decimal.DefaultContext``, the template of every new
thread's context) or the shared instance is sealed against capsule writes (``seal``:
calendar's localized names, minidom's one DOMImplementation).  tests/test_deputies.py scans
every default and grantable module for setters and instances not classified here.
"""

from __future__ import annotations

import enum
import functools
import sys
import types
import typing
import weakref

from . import tripwire
from .errors import CapsulePermissionError, CapsuleTypeError


def _refuser(qualname: str, why: str, hint: str | None):
    def refused(*args, **kwargs):
        raise CapsulePermissionError(f"{qualname} ({why})", "builtins", None, hint=hint)

    refused.__name__ = refused.__qualname__ = qualname.rpartition(".")[2]
    refused.__doc__ = f"Refused in capsules: {why}."
    return refused


_STREAMS = "sys.stdout and sys.stderr are the whole process's streams, not the capsule's"


def field_size_limit(*args, **kwargs):
    """csv.field_size_limit(): the limit is process-wide, so capsules may only read it."""
    if args or kwargs:
        raise CapsulePermissionError(
            "csv.field_size_limit(new_limit) (the limit is process-wide: it would change "
            "how trusted code parses CSV)",
            "builtins",
            None,
        )
    import csv  # only when asked: importing ipycap loads no extension module it need not

    return csv.field_size_limit()


OVERRIDES = {
    ("contextlib", "redirect_stdout"): _refuser(
        "contextlib.redirect_stdout", _STREAMS, "write to it with print(..., file=obj)"
    ),
    ("contextlib", "redirect_stderr"): _refuser(
        "contextlib.redirect_stderr", _STREAMS, "write to it with print(..., file=obj)"
    ),
    ("contextlib", "chdir"): _refuser(
        "contextlib.chdir", "the working directory is the whole process's", None
    ),
    ("csv", "register_dialect"): _refuser(
        "csv.register_dialect",
        "the dialect registry is process-wide: trusted csv code would use the capsule's",
        "pass the options to csv.reader/csv.writer, or a csv.Dialect subclass as dialect=",
    ),
    ("csv", "unregister_dialect"): _refuser(
        "csv.unregister_dialect", "the dialect registry is process-wide", None
    ),
    ("csv", "field_size_limit"): field_size_limit,
}
_REGISTER_NAMESPACE = _refuser(
    "xml.etree.ElementTree.register_namespace",
    "the prefix table is process-wide: trusted XML output would use the capsule's",
    None,
)
OVERRIDES[("xml.etree.ElementTree", "register_namespace")] = _REGISTER_NAMESPACE
OVERRIDES[("xml.etree.cElementTree", "register_namespace")] = _REGISTER_NAMESPACE


class PerCapsule:
    """A module attribute each capsule gets its own copy of, made on first read by
    ``factory()``; the module views never cache it (modules._view_miss)."""

    __slots__ = ("factory", "copies")

    def __init__(self, factory):
        self.factory = factory
        self.copies = weakref.WeakKeyDictionary()

    def get(self):
        ctx = tripwire.current_context()
        if ctx is None:
            return self.factory()
        value = self.copies.get(ctx)
        if value is None:
            value = self.copies[ctx] = self.factory()
        return value


_GUARDED: set = set()  # classes whose __setattr__/__delattr__ check for shared instances
_SHARED: dict = {}  # identity -> shared instance (held: they live as long as their module)
#: An identity key: object.__hash__ is the pointer's (unique among live objects), whatever
#: the class defines, and unlike id() raises no audit event (the tripwire sees every id()).
_key = object.__hash__
_HEAPTYPE, _IMMUTABLE = 1 << 9, 1 << 8

#: Shared instances classfreeze met whose class was frozen before it could be guarded;
#: tests/test_deputies.py fails on any.
UNSEALED: list = []


def sealable(obj) -> bool:
    """Whether ``obj`` is a standard-library instance with attributes a capsule could write
    (enum members are guarded by _guard_enum_members instead)."""
    cls = type(obj)
    flags = type.__dict__["__flags__"].__get__(cls)
    if not flags & _HEAPTYPE or isinstance(obj, _NOT_SHARED):
        return False
    if flags & _IMMUTABLE and type(obj).__dictoffset__ == 0:
        return False  # an extension type that keeps its state to itself (re.Pattern)
    module = type.__dict__["__module__"].__get__(cls)
    return type(module) is str and module.partition(".")[0] in _STDLIB


def seal(obj):
    """Make a shared trusted instance refuse attribute writes and deletes while capsule code
    is on the stack (trusted code alone still writes it): its class checks, in a
    ``__setattr__``/``__delattr__`` put before whatever it had.  Returns ``obj``; TypeError
    if its class is frozen already (classfreeze seals before it freezes)."""
    guard_class(type(obj))
    _SHARED[_key(obj)] = obj
    return obj


def is_sealed(obj) -> bool:
    return _SHARED.get(_key(obj)) is obj


def guard_class(cls) -> None:
    """Give ``cls`` the check seal() relies on (once; before it is frozen)."""
    if cls in _GUARDED:
        return
    if type.__dict__["__flags__"].__get__(cls) & _IMMUTABLE:
        raise TypeError(f"{cls.__qualname__} is frozen: its instances cannot be sealed")
    set_through, del_through = cls.__setattr__, cls.__delattr__

    def __setattr__(self, name, value):
        if _SHARED.get(_key(self)) is self:
            _refuse_capsule_write(self, name)
        set_through(self, name, value)

    def __delattr__(self, name):
        if _SHARED.get(_key(self)) is self:
            _refuse_capsule_write(self, name)
        del_through(self, name)

    type.__setattr__(cls, "__setattr__", __setattr__)
    type.__setattr__(cls, "__delattr__", __delattr__)
    _GUARDED.add(cls)


def _guard_typing_objects() -> None:
    """typing's objects (aliases, special forms, TypeVars) are the module-level instances of
    every module with annotations; their classes are guarded now, before classfreeze
    freezes them from whichever module it walks first."""
    todo = [typing._Final]
    while todo:
        cls = todo.pop()
        if cls.__module__ == "typing" and not issubclass(cls, type):
            guard_class(cls)
        todo.extend(type.__subclasses__(cls))


def seal_found(obj, module_level=True) -> None:
    """classfreeze met a shared instance: seal it if it is sealable (a class attribute's
    only when its class can still be guarded)."""
    if _SHARED.get(_key(obj)) is not obj and sealable(obj):
        try:
            seal(obj)
        except TypeError:
            if module_level:
                UNSEALED.append(obj)


def _guard_enum_members() -> None:
    """Enum members are shared singletons (``re.IGNORECASE``): a capsule's
    ``re.I._value_ = 0`` would change what trusted code's regexes mean.  A member its class
    already lists refuses writes while capsule code is on the stack, unless the capsule made
    the class; members being made (Flag pseudo-members) are not listed yet."""
    from . import guard

    def __setattr__(self, name, value):
        if _listed(self) and not guard.is_own(self):
            _refuse_capsule_write(self, name)
        object.__setattr__(self, name, value)

    def __delattr__(self, name):
        if _listed(self) and not guard.is_own(self):
            _refuse_capsule_write(self, name)
        object.__delattr__(self, name)

    if "__setattr__" not in vars(enum.Enum):
        enum.Enum.__setattr__ = __setattr__
        enum.Enum.__delattr__ = __delattr__


def _listed(member) -> bool:
    """Whether its class lists ``member`` (by name, or by value: Flag's cached pseudo-members
    such as re.I | re.M); only with str/int keys, whose __eq__ no one else chose."""
    state, cls_state = vars(member), vars(type(member))
    name, value = state.get("_name_"), state.get("_value_")
    by_name, by_value = cls_state.get("_member_map_"), cls_state.get("_value2member_map_")
    if type(name) is str and type(by_name) is dict and by_name.get(name) is member:
        return True
    return type(value) is int and type(by_value) is dict and by_value.get(value) is member


def _refuse_capsule_write(obj, name):
    if tripwire.capsule_writes_here():
        raise CapsuleTypeError(
            f"{type(obj).__module__}.{type(obj).__qualname__} object is shared with trusted "
            f"code: capsules cannot set or delete {name!r} on it",
            "builtins",
            None,
        )


def _decimal_copies() -> dict:
    import decimal

    return {
        (module, name): PerCapsule(getattr(decimal, name).copy)
        for module in ("decimal", "_decimal", "_pydecimal")
        for name in ("DefaultContext", "BasicContext", "ExtendedContext")
    }


def _overload(func):
    """typing.overload for capsules: the overload registry is process-wide (trusted
    typing.get_overloads would return capsule functions), so nothing is registered."""
    import typing

    return typing._overload_dummy


def _calendar_overrides(capsule_calendar) -> dict:
    import calendar

    def setfirstweekday(firstweekday):
        """calendar.setfirstweekday for capsules: sets the capsules' calendar, not the
        process's (trusted calendar.firstweekday() stays)."""
        if not calendar.MONDAY <= firstweekday <= calendar.SUNDAY:
            raise calendar.IllegalWeekdayError(firstweekday)
        capsule_calendar.firstweekday = firstweekday

    for name in ("day_name", "day_abbr", "month_name", "month_abbr"):
        seal(getattr(calendar, name))  # .format read by trusted calendar.day_name[i]
    return {("calendar", "setfirstweekday"): setfirstweekday}


_minidom_sealed = False


def _seal_minidom() -> None:
    global _minidom_sealed
    minidom = sys.modules.get("xml.dom.minidom")
    if minidom is not None:
        seal(minidom.Document.implementation)  # expatbuilder's theDOMImplementation too
        _minidom_sealed = True


def on_view(module) -> None:
    """A capsule is about to get a view of ``module`` (modules.make_view), before classfreeze
    freezes what it reaches (a frozen class's instances cannot be sealed)."""
    if module.__name__.partition(".")[0] == "xml" and not _minidom_sealed:
        _seal_minidom()


def getDOMImplementation(name=None, features=()):  # noqa: N802 - xml.dom's name
    """xml.dom.getDOMImplementation for capsules: instead of minidom's one DOMImplementation
    (trusted minidom.parseString uses it too), a fresh one."""
    import xml.dom.domreg

    impl = xml.dom.domreg.getDOMImplementation(name, features)
    minidom = sys.modules.get("xml.dom.minidom")
    if minidom is not None and impl is minidom.Document.implementation:
        impl = minidom.DOMImplementation()
    return impl


def _minidom_implementation(features=None):
    """xml.dom.minidom.getDOMImplementation for capsules: a fresh DOMImplementation, not the
    one trusted minidom.parseString uses."""
    import xml.dom.minidom

    return xml.dom.minidom.DOMImplementation()


_DOM_REGISTRY = _refuser(
    "xml.dom.registerDOMImplementation",
    "the DOM implementation registry is process-wide: trusted getDOMImplementation() would "
    "build its documents with the capsule's factory",
    "call your implementation's createDocument() directly",
)

OVERRIDES.update(
    {
        ("xml.dom", "registerDOMImplementation"): _DOM_REGISTRY,
        ("xml.dom.domreg", "registerDOMImplementation"): _DOM_REGISTRY,
        ("xml.dom", "getDOMImplementation"): getDOMImplementation,
        ("xml.dom.domreg", "getDOMImplementation"): getDOMImplementation,
        ("xml.dom.minidom", "getDOMImplementation"): _minidom_implementation,
        ("typing", "overload"): _overload,
        ("typing", "clear_overloads"): _refuser(
            "typing.clear_overloads",
            "the overload registry is process-wide: it holds trusted code's overloads",
            None,
        ),
    }
)
OVERRIDES.update(_decimal_copies())
_STDLIB = frozenset(sys.stdlib_module_names)
#: Not sealed: classes (frozen), exceptions, modules (views), enum members (their own
#: guard), partials and lru_cache wrappers (called through their C slot; what they call
#: is read-only).
_NOT_SHARED = (
    type,
    BaseException,
    types.ModuleType,
    enum.Enum,
    functools.partial,
    type(functools.lru_cache(id)),
)
_guard_enum_members()
_guard_typing_objects()

#: Setters and module-level instances of default/grantable modules that write or are
#: process-wide state, reviewed and left as they are: (module, name) -> why.
REVIEWED = {
    ("base64", "a85encode"): "builds a constant table once (nothing the capsule chooses)",
    ("base64", "b85encode"): "builds a constant table once",
    ("base64", "b85decode"): "builds a constant table once",
    ("re", "purge"): "empties the regex cache: costs trusted code time, changes no answer",
    ("uuid", "getnode"): "caches this machine's node id, computed, not chosen",
    ("uuid", "uuid1"): "keeps the last timestamp so uuid1() stays monotonic: time, not data",
    ("xml.etree.ElementPath", "iterfind"): "caches compiled paths by (path, namespaces) "
    "strings: an equal key gets an equal selector",
    ("decimal", "setcontext"): "per thread: Capsule.run gives each capsule its own context",
    ("_decimal", "setcontext"): "per thread: as decimal.setcontext",
    ("operator", "setitem"): "writes only the container it is given",
    ("_operator", "setitem"): "writes only the container it is given",
    ("calendar", "c"): "overridden (modules.py: the capsules' TextCalendar)",
    ("reprlib", "aRepr"): "overridden (modules.py: the capsules' read-only Repr)",
    ("dataclasses", "MISSING"): "a sentinel compared by identity; no attribute is read",
    ("dataclasses", "KW_ONLY"): "a sentinel compared by identity; no attribute is read",
    ("unicodedata", "ucd_3_2_0"): "a C object without writable attributes",
}
