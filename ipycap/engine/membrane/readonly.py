"""What a read-only proxy refuses beyond assignment, deletion and in-place operators
(DESIGN.md, "Read-only means").

Two mechanisms, one per kind of container:

- **Standard-library containers** (list, dict, set, bytearray, deque, OrderedDict, Counter,
  ChainMap, UserDict/UserList, array.array, the collections.abc Mutable* mixins, the io
  family, memoryview, mmap): a method is mutating when the class that *defines* it along the
  target type's MRO is one of them (or a standard-library subclass of one) and lists it,
  whatever the method's type (builtin or Python).  A user class that overrides the name keeps
  its own method callable; a user class that aliases a mutating method (``push =
  list.append``) does not.  Decisions are cached per (type, name).
- **Library containers** (numpy arrays, pandas and polars frames), where a method table is
  hopeless: the proxy's target is itself immutable for the library (a non-writeable numpy
  view over a read-only buffer, a lazy pandas/polars copy), made once per object and reused
  while it lives (``libraries/readonly.py``; the profiles name the classes).
"""

from __future__ import annotations

import _io
import array
import collections
import collections.abc as _abc
import mmap
import tempfile
import weakref
from sys import stdlib_module_names as _STDLIB

from .derived import is_source_type, remember_stand_in

_mro = type.__dict__["__mro__"].__get__
_type_dict = type.__dict__["__dict__"].__get__
_type_module = type.__dict__["__module__"].__get__

_LIST = ("append", "extend", "insert", "pop", "remove", "clear", "sort", "reverse")
_DICT = ("pop", "popitem", "clear", "update", "setdefault")
_SET = (
    *("add", "discard", "remove", "pop", "clear", "update"),
    *("difference_update", "intersection_update", "symmetric_difference_update"),
)
_IO = ("write", "writelines", "truncate", "close", "flush", "detach", "reconfigure")

#: Defining class -> the public methods of it that change the object.  Reading a stream
#: (read, readline, seek, tell) moves its position and stays allowed: it is the only way to
#: use a read-only file; writing, truncating, flushing, closing and re-encoding are not.
MUTATORS: dict = {
    list: frozenset(_LIST),
    dict: frozenset(_DICT),
    set: frozenset(_SET),
    bytearray: frozenset(("append", "extend", "insert", "pop", "remove", "clear", "reverse")),
    collections.deque: frozenset(
        (*_LIST[:6], "appendleft", "extendleft", "popleft", "rotate", "reverse")
    ),
    collections.OrderedDict: frozenset((*_DICT, "move_to_end")),
    collections.Counter: frozenset(("update", "subtract")),
    collections.UserList: frozenset(_LIST),
    _abc.MutableMapping: frozenset(_DICT),
    _abc.MutableSequence: frozenset(
        ("append", "extend", "insert", "pop", "remove", "clear", "reverse")
    ),
    _abc.MutableSet: frozenset(("add", "discard", "remove", "pop", "clear")),
    array.array: frozenset(
        (*_LIST[:5], "reverse", "byteswap", "frombytes", "fromfile", "fromlist", "fromunicode")
    ),
    _io._IOBase: frozenset(_IO),
    # NamedTemporaryFile: its close is its own; the rest comes through __getattr__
    tempfile._TemporaryFileWrapper: frozenset(_IO),
    memoryview: frozenset(("release",)),
    mmap.mmap: frozenset(("write", "write_byte", "move", "resize", "close", "flush")),
}
#: For the C fast path (_speedups.c): exact builtin types whose every mutator is a builtin
#: method of their own, decided there by name with no Python call.
EXACT_MUTATORS = {tp: MUTATORS[tp] for tp in (list, dict, set, bytearray)}
#: The mutating functions and descriptors themselves, so an alias in a user class
#: (``push = list.append``, ``update = MutableMapping.update``) is refused too.
_MUTATING_OBJECTS = {
    id(d[n]): d[n]
    for c, names in MUTATORS.items()
    for n in names
    if n in (d := _type_dict(c)) and callable(d[n])
}
_LIMIT = 20000
#: Python-side caches are keyed by the type's address and check identity, so a metaclass's
#: __hash__/__eq__ gets no vote: (address, name) or address -> (type, answer).
_address = object.__hash__
_decisions: dict = {}
#: type -> whether read-only proxies of it may bind its methods in C without asking
#: ``refuses`` (read by the C fast path in _speedups.c; filled by ``fast_path_ok``).
FAST_TYPES: dict = {}


def _is_trusted_class(cls) -> bool:
    """Builtin and standard-library classes: their methods are judged by the table."""
    module = _type_module(cls)
    return type(module) is str and module.partition(".")[0] in _STDLIB


_ABSENT = object()


def _is_mutator(obj) -> bool:
    return _MUTATING_OBJECTS.get(id(obj), _ABSENT) is obj


def _decide(tp, name: str) -> bool:
    for cls in _mro(tp):
        d = _type_dict(cls)
        if name in d:
            break
    else:
        return False
    if not _is_trusted_class(cls):
        # A user class's own method stays callable, unless it is a mutator under a new name.
        return _is_mutator(d[name])
    return any(name in MUTATORS.get(b, ()) for b in _mro(cls))


def refuses(tp, name: str) -> bool:
    """Whether a read-only proxy of an instance of ``tp`` refuses its method ``name``."""
    key = (_address(tp), name)
    entry = _decisions.get(key)
    if entry is not None and entry[0] is tp:
        return entry[1]
    if len(_decisions) > _LIMIT:
        _decisions.clear()
    r = _decide(tp, name)
    _decisions[key] = (tp, r)
    return r


#: The FAST_TYPES value of a class whose results are judged (membrane/derived.py): the C
#: fast path then leaves its methods and items (``df[['a']]``) to Python.
DERIVED = "derived"


def fast_path_ok(tp) -> bool:
    """Whether read-only proxies of ``tp`` may bind methods in C with no ``refuses`` check:
    no container in its MRO, no alias of a mutator in any of its class dicts, and no
    profile rule judging its results (those bind in Python, membrane/derived.py)."""
    r = FAST_TYPES.get(tp)
    if r is None:
        if len(FAST_TYPES) > _LIMIT:
            FAST_TYPES.clear()
        if is_source_type(tp):
            FAST_TYPES[tp] = DERIVED
            return False
        mro = _mro(tp)
        r = not any(c in MUTATORS for c in mro) and not any(
            _is_mutator(v) for c in mro for v in _type_dict(c).values()
        )
        FAST_TYPES[tp] = r
    return r is True


_inserting: dict = {}


def inserts_on_missing(tp) -> bool:
    """Whether reading a missing key of a ``tp`` inserts it (defaultdict's own __missing__,
    not a user override)."""
    entry = _inserting.get(_address(tp))
    if entry is not None and entry[0] is tp:
        return entry[1]
    if len(_inserting) > _LIMIT:
        _inserting.clear()
    r = False
    for cls in _mro(tp):
        if "__missing__" in _type_dict(cls):
            r = cls is collections.defaultdict
            break
    _inserting[_address(tp)] = (tp, r)
    return r


# -- library containers: the read-only target ------------------------------------------------
_targets: dict = {}


def _target_function(tp):
    entry = _targets.get(_address(tp))
    if entry is not None and entry[0] is tp:
        return entry[1]
    from ..libraries import readonly_target_function

    if len(_targets) > _LIMIT:
        _targets.clear()
    # a memoryview (BytesIO.getbuffer(), arr.data) becomes its read-only twin
    fn = memoryview.toreadonly if tp is memoryview else readonly_target_function(tp)
    _targets[_address(tp)] = (tp, fn)
    if fn is not None and tp is not memoryview and on_library_type is not None:
        # a protected library object reaches a capsule that never imported its library: the
        # profile's checked methods and value types apply to it all the same
        on_library_type()
    return fn


#: Set by libraries/wrappers.py: installs the profiles' method checks (once each).
on_library_type = None


#: (id(original), id(capability)) -> weak references to the original, the capability and
#: the read-only target: one target per live object per capability (so one proxy), and no
#: strong reference either way.  Per capability, because a lazy pandas/polars copy is the
#: capsule's to change: what one capsule does to its copy no other capsule ever sees.
_views: dict = {}


def readonly_target(value, cap):
    """What a read-only proxy of ``value`` (for capability ``cap``) holds: ``value``
    itself, or for a library container a stand-in sharing its data that no change reaches
    the user's object through (made once while the object and the capability live)."""
    fn = _target_function(type(value))
    if fn is None:
        return value
    key = (id(value), id(cap))
    entry = _views.get(key)
    if entry is not None:
        origin, owner, view = entry[0](), entry[1](), entry[2]()
        if origin is value and owner is cap and view is not None:
            return view
    view = fn(value)
    if view is value:
        return value
    remember_stand_in(view)
    try:
        ref = weakref.ref(value, lambda r, key=key: _forget(key, r))
        _views[key] = (
            ref,
            weakref.ref(cap, lambda r, key=key: _forget(key, r, 1)),
            weakref.ref(view),
        )
    except TypeError:  # not weakly referenceable: a fresh target each time
        pass
    return view


def _forget(key, ref, slot=0):
    """A weak reference's callback: the original (slot 0) or the capability (slot 1) died."""
    entry = _views.get(key)
    if entry is not None and entry[slot] is ref:
        del _views[key]


def refuses_attribute(target, name: str, method) -> bool:
    """The membrane's one question for a bound method read as ``target.name`` through a
    read-only proxy (crossing.py ``_finish_getattr``).  Also records whether the C fast path
    may bind ``type(target)``'s methods without asking."""
    owner = method.__self__
    if owner is target:
        if FAST_TYPES.get(type(target)) is None:
            fast_path_ok(type(target))  # next time, C binds this type's methods itself
        return refuses(type(target), name)
    return refuses_bound(method)


def refuses_bound(method) -> bool:
    """Whether a bound method crossing read-only (a call's result, another object's method
    stored as an attribute) would change the object it is bound to."""
    owner = getattr(method, "__self__", None)
    if owner is None or type(owner) is _Module:
        return False
    return refuses(type(owner), getattr(method, "__name__", ""))


def refuses_callable(value) -> bool:
    """Whether ``value``, crossing read-only (a call's result, an attribute holding another
    object's method, ``Proxy(OrderedDict).update``), is a mutator: a bound method that would
    change its object, or an unbound one that would change the raw object it is given (the
    membrane hands trusted callables the target behind a proxy argument)."""
    tp = type(value)
    if tp is _BuiltinMethod or tp is _Method:
        return refuses_bound(value)
    if tp is _Descriptor:
        return _is_mutator(value)
    if tp is _Function:
        # functools.wraps around a bound mutator (tempfile's wrapper hands out its file's
        # methods so): judged as the method it wraps
        wrapped = getattr(value, "__wrapped__", None)
        if type(wrapped) is _BuiltinMethod or type(wrapped) is _Method:
            return refuses_bound(wrapped)
        return _is_mutator(value)
    return False


def refuses_handed(value) -> bool:
    """``refuses_callable`` for a callable the user handed the capsule by name (the
    capability's own target, not something derived from a read-only object): a bound method
    is the capability itself -- ``app = items.append`` handed is callable like a user function
    doing the same, since calling it is the point of handing it.  Unbound mutators
    (``list.append``, ``MutableMapping.update``) stay refused: the membrane hands them the
    target behind a proxy argument, so they would change whatever read-only object the
    capsule passes."""
    tp = type(value)
    if tp is _BuiltinMethod or tp is _Method:
        return False
    if tp is _Function:
        wrapped = getattr(value, "__wrapped__", None)
        if type(wrapped) is _BuiltinMethod or type(wrapped) is _Method:
            return False
    return refuses_callable(value)


def refused_callable(value, target_name: str):
    from .authority import _ReadOnlyMethod

    value = getattr(value, "__wrapped__", value) if type(value) is _Function else value
    owner = getattr(value, "__self__", None)
    if owner is None:  # unbound: granting the class would not make its argument writable
        owner_name = getattr(value, "__qualname__", "?").rpartition(".")[0] or "?"
        target_name = "<unbound>"
    else:
        owner_name = type(owner).__name__
    return _ReadOnlyMethod(getattr(value, "__name__", "?"), owner_name, target_name)


_BuiltinMethod = type([].append)
_Method = type(collections.Counter().update)
_Descriptor = type(list.append)
_Function = type(_decide)
_Module = type(_abc)
#: The callables ``refuses_callable`` judges (a cheap type test before the call).
CALLABLE_TYPES = frozenset((_BuiltinMethod, _Method, _Descriptor, _Function))


def missing_key_refusal(target_name: str):
    """The refusal for reading a missing key of a read-only defaultdict: its factory would
    insert the key."""
    from ..errors import CapsuleTypeError
    from .authority import _grant_hint

    return CapsuleTypeError(
        "reading a missing key would insert it into a read-only defaultdict",
        "membrane",
        _grant_hint("writable", target_name),
        hint="use .get(key) to read without inserting",
    )
