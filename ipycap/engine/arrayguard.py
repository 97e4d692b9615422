"""The array protocols of objects capsule code shapes: never raw memory.

numpy looks ``__array_interface__`` (and ``__array_struct__``) up with a plain getattr on
any object that is not a basic Python type -- an argument of ``np.array``, an item of a list
it converts, an operand of an ndarray operator or ufunc, the value of ``arr[...] = obj`` --
and trusts the answer: a data address (or a buffer) with a shape and strides it reads and
writes unchecked.  pandas, matplotlib, scikit-learn, PIL ... convert through it.  So any
object whose answer capsule code chooses hands the capsule the process's memory.

The class of objects whose answer capsule code chooses, and how each is closed:

* **classes made while capsule code asks** -- a class statement, ``type(name, bases, ns)``,
  a metaclass called directly, or a standard-library deputy (``Enum('E', ns)``,
  ``namedtuple``, ``make_dataclass``): the nearest frame that is not the standard library,
  the import system or ipycap is capsule code.  ``type.__new__`` is hooked (``_arrayguard``)
  so every such class, however made, gets :class:`ArrayProtocol` data descriptors for both
  names (they win over the instance dict and over a metaclass attribute alike) and its own
  ``__getattribute__``/``__getattr__`` wrapped to answer neither.  A class that defined one
  of them (in its body, a base, a property, a ``__getattr__`` that answers) is refused with a
  clear error when numpy asks; one that did not simply has none, as in plain Python.
  Setting those four names on such a class later is refused by the guard.
  The answer inherited from a C type (a capsule subclass of ``np.ndarray``) stays.
* **instance dicts no class guards** -- functions (``f.__dict__``; bound methods answer
  from their function), staticmethod and classmethod objects (dicts of their own) and
  ``SimpleNamespace`` (its keywords): their getattr answers neither name, in the whole
  process (no such object is ever an array).
* **standard-library namespaces** (``argparse.Namespace``, ``optparse.Values``): guarded like
  capsule classes wherever they are made.
* **setting the names** through the guard (``obj.__array_interface__ = ...``, ``setattr``)
  is refused on every object.

What stays open is listed in SECURITY.md (a trusted class outside the standard library whose
instances take attribute names from their caller; trusted code setting one of the names on
a capsule class on the capsule's behalf).  Without the C hooks (no compiler at install), numpy cannot be
granted: :func:`unavailable` says why.
"""

from __future__ import annotations

import functools
import operator
import sys
import types

from . import guard
from .errors import CapsuleAttributeError, CapsuleTypeError
from .guard import TypeSet

try:
    from . import _arrayguard
except ImportError:  # no compiler at install time
    _arrayguard = None

#: The names numpy asks an object for (``__array__`` returns an ndarray: no raw memory), and
#: their neighbours: the DataFrame interchange protocol (``__dataframe__``: pandas' and
#: pyarrow's ``from_dataframe`` copy ``bufsize`` bytes from each buffer's ``ptr``), the Arrow
#: C data interface and DLPack (PyCapsules holding addresses), CUDA's array interface.
#: ``_arrayguard.c`` holds the same list.
ARRAY_NAMES = frozenset(
    {
        "__array_interface__",
        "__array_struct__",
        "__dataframe__",
        "__arrow_c_array__",
        "__arrow_c_stream__",
        "__arrow_c_schema__",
        "__arrow_c_device_array__",
        "__arrow_c_device_stream__",
        "__dlpack__",
        "__dlpack_device__",
        "__cuda_array_interface__",
    }
)
_GETATTR_NAMES = ("__getattribute__", "__getattr__")
_HEAPTYPE = 1 << 9
_type_flags = type.__dict__["__flags__"].__get__
_type_dict = type.__dict__["__dict__"].__get__
_type_mro = type.__dict__["__mro__"].__get__
_set_type_attr = type.__setattr__
_C_DESCRIPTORS = (types.GetSetDescriptorType, types.MemberDescriptorType)

_LAYER = "guard (array protocols)"
_HINT = "build arrays from data (np.array(a_list), np.frombuffer(some_bytes)), not from addresses"


def _refusal(cls, name):
    what = "numpy" if name in ("__array_interface__", "__array_struct__") else "a library"
    return CapsuleTypeError(
        f"{name} of {cls.__qualname__}: a data protocol defined by capsule code would hand "
        f"{what} raw memory addresses",
        _LAYER,
        None,
        hint=_HINT,
    )


class ArrayProtocol(tuple):
    """The data descriptor every capsule-made class carries for one array protocol name.

    Its state is a tuple fixed by ``__new__``: capsule code reaches the descriptor through
    ``vars(cls)``, and an ``__init__`` that stored fields (``type(d).__init__(d, name, cls,
    False, spy)``) would let it re-aim an existing guard at an answer of its choosing
    (``spy.__get__`` returning a data address numpy then reads).  ``__init__`` is object's,
    and no attribute of a tuple can be rebound (tests/test_frozen_state.py)."""

    __slots__ = ()

    def __new__(cls, name, owner, defined, inherited):
        return tuple.__new__(cls, (name, owner, defined, inherited))

    name = property(operator.itemgetter(0), doc="the protocol name this guard answers")
    owner = property(operator.itemgetter(1), doc="the class it was placed on")
    defined = property(operator.itemgetter(2), doc="whether capsule code defined the name")
    inherited = property(operator.itemgetter(3), doc="a C type's own answer to keep, or None")

    # identity, never the fields: a capsule class's metaclass __eq__/__hash__/__repr__
    # must not run when trusted code compares, hashes or shows a descriptor
    __eq__ = object.__eq__
    __ne__ = object.__ne__
    __lt__ = object.__lt__
    __le__ = object.__le__
    __gt__ = object.__gt__
    __ge__ = object.__ge__
    __hash__ = object.__hash__

    def __repr__(self):
        return f"<array-protocol guard {self[0]}>"

    def __reduce_ex__(self, protocol):
        raise CapsuleTypeError("the array-protocol guard cannot be copied", _LAYER, None)

    def __setattr__(self, name, value):  # capsule code reaches it through vars(cls)
        raise CapsuleAttributeError("the array-protocol guard cannot be changed", _LAYER, None)

    def __delattr__(self, name):
        raise CapsuleAttributeError("the array-protocol guard cannot be changed", _LAYER, None)

    def __get__(self, obj, owner=None):
        inherited = self[3]
        if obj is not None and inherited is not None:
            return inherited.__get__(obj, owner)
        if self[2]:
            raise _refusal(self[1], self[0])
        # (a message made once per name: numpy asks every object it converts, and formatting
        # the class name each time was a third of the cost)
        raise AttributeError(_ABSENT[self[0]])

    def __set__(self, obj, value):
        raise CapsuleAttributeError(f"setting {self[0]!r} is refused", _LAYER, None, hint=_HINT)

    def __delete__(self, obj):
        raise CapsuleAttributeError(f"deleting {self[0]!r} is refused", _LAYER, None)


_ABSENT = {name: f"no attribute {name!r} (capsule-made classes have none)" for name in ARRAY_NAMES}
_OBJECT_GETATTRIBUTE = object.__dict__["__getattribute__"]
_WATCHED = ARRAY_NAMES | frozenset(_GETATTR_NAMES)


def _below(cls) -> dict:
    """The first entry (base, value) of each watched name below ``cls``: one walk of the
    MRO for all thirteen names (a class made in a capsule pays this once)."""
    found: dict = {}
    for base in _type_mro(cls)[1:]:
        d = _type_dict(base)
        for name in _WATCHED.intersection(d):
            if name not in found:
                found[name] = (base, d[name])
    return found


def _inherited(found, name):
    """(defined by capsule code, C-level answer to keep) for ``name`` below the class whose
    :func:`_below` is ``found``."""
    hit = found.get(name)
    if hit is None:
        return False, None
    base, entry = hit
    if type(entry) is ArrayProtocol:
        return entry[2], entry[3]
    if not (_type_flags(base) & _HEAPTYPE) and (
        type(entry) in _C_DESCRIPTORS or hasattr(type(entry), "__get__")
    ):
        # a C type's own: np.ndarray's interface, its __dlpack__ method, a pyarrow
        # Array's __arrow_c_array__ (the object's own memory)
        return False, entry
    return True, None  # a trusted Python class's answer reads state capsule code sets


def _inherited_getattr(found, kind):
    """The ``__getattribute__``/``__getattr__`` the class inherits, unless it is object's
    own generic one or one the guard placed."""
    hit = found.get(kind)
    if hit is None:
        return None
    entry = hit[1]
    if entry is _OBJECT_GETATTRIBUTE or entry in _HOOKS:
        return None
    return entry


def _answers(fn, self, name):
    """Whether capsule ``fn`` (a ``__getattribute__``/``__getattr__``) answers ``name``."""
    try:
        fn(self, name)
    except AttributeError:
        return False
    return True


def _wrap_getattr(entry, cls, kind):
    get = getattr(type(entry), "__get__", None)

    def call(self, name):
        bound = get(entry, self, type(self)) if get is not None else entry
        return bound(name)

    if type(entry) is types.FunctionType:
        wrapped_from = entry
    else:
        wrapped_from = None

    def hook(self, name, /):
        if type(name) is str and name in ARRAY_NAMES:
            if _answers(call, self, name):
                raise _refusal(cls, name)
            raise AttributeError(f"{cls.__qualname__!r} object has no attribute {name!r}")
        return call(self, name)

    if wrapped_from is not None:
        hook = functools.wraps(wrapped_from)(hook)
    hook.__name__ = hook.__qualname__ = kind
    return hook


#: Classes that carry the guard, and the getattr wrappers it placed (by identity, weakly: a
#: capsule object's ``__eq__``/``__getattr__`` cannot vote).
_GUARDED = TypeSet()
_HOOKS = TypeSet()


def guard_class(cls) -> None:
    """Give capsule-made ``cls`` the array-protocol guard (in place, idempotent)."""
    d = _type_dict(cls)
    found = None
    for name in ARRAY_NAMES:
        entry = d.get(name)
        if type(entry) is ArrayProtocol and entry[1] is cls:
            continue
        if entry is not None:
            defined, inherited = True, None
        else:
            if found is None:
                found = _below(cls)
            defined, inherited = _inherited(found, name)
        _arrayguard.place(cls, name, ArrayProtocol(name, cls, defined, inherited))
    for kind in _GETATTR_NAMES:
        entry = d.get(kind)
        if entry is None:
            # An inherited one answers for this class too (a trusted base's __getattr__
            # reading instance state, ModuleType's, which falls back to a module __getattr__
            # in the instance dict): wrapped here, in the class's own dict.
            if found is None:
                found = _below(cls)
            entry = _inherited_getattr(found, kind)
            if entry is None:
                continue
        if entry in _HOOKS:
            continue
        hook = _wrap_getattr(entry, cls, kind)
        _HOOKS.add(hook)
        # type.__setattr__ (not place): the class's getattr slot must follow its new entry
        # (no metaclass has a guard descriptor for these two names).
        _set_type_attr(cls, kind, hook)
    _GUARDED.add(cls)


def is_guarded(cls) -> bool:
    return cls in _GUARDED


#: Standard-library classes whose instances take attribute names from their caller
#: (``argparse.Namespace(**kw)``): guarded wherever they are made.
NAMESPACE_CLASSES = frozenset({("argparse", "Namespace"), ("optparse", "Values")})


def _is_namespace_class(cls) -> bool:
    d = _type_dict(cls)
    return (d.get("__module__"), d.get("__qualname__")) in NAMESPACE_CLASSES


def _on_new_class(cls, /):
    """Called by ``type.__new__`` (``_arrayguard``) with every class made in the process."""
    if _is_namespace_class(cls):
        guard_class(cls)
        return
    try:
        frame = sys._getframe(1)
    except ValueError:  # made from C with no Python frame above: nobody's capsule
        return
    # (a standard-library module a capsule imports first defines its classes with the
    # capsule nearest: they get the guard too, which changes nothing for them)
    if guard.asked_by_capsule(frame):
        guard_class(cls)
        if on_capsule_class is not None:
            on_capsule_class(
                cls
            )  # hooks.prepare: its operand and ABC hooks, as a class statement's


#: Set by hooks.py: called with every class made while capsule code asks (a metaclass called
#: directly, ``types.new_class``, ``make_dataclass``, ``Enum('E', ns)``).
on_capsule_class = None


def refuse_setattr(obj, name) -> None:
    """The guard's check before capsule code sets or deletes ``name`` on ``obj``: the array
    protocol names on every object, and the getattr hooks of a guarded class after it was
    made (they would answer for it)."""
    if name in ARRAY_NAMES:
        what = (
            f"class {obj.__qualname__}"
            if isinstance(obj, type)
            else f"a {type(obj).__name__} object"
        )
        raise CapsuleAttributeError(
            f"setting {name!r} on {what} is refused",
            _LAYER,
            None,
            hint="a capsule object never has an array interface",
        )
    if name in _GETATTR_NAMES and isinstance(obj, type) and is_guarded(obj):
        raise CapsuleAttributeError(
            f"setting {name!r} on class {obj.__qualname__} after it was made is refused",
            _LAYER,
            None,
            hint=f"define {name} in the class body",
        )


guard.ARRAY_SETATTR_CHECK = refuse_setattr


def install() -> bool:
    """Install the hooks (once per process); whether they are in place."""
    if _arrayguard is None:
        return False
    if not _arrayguard.installed():
        _arrayguard.install(
            _on_new_class,
            types.SimpleNamespace,
            guard._CAPSULE_BUILTINS,
            guard._CAPSULE_CODE,
            guard._GENERATED_CODE,
        )
        for module, name in NAMESPACE_CLASSES:
            cls = getattr(sys.modules.get(module), name, None)
            if isinstance(cls, type):
                guard_class(cls)
    return True


def unavailable() -> str | None:
    """Why numpy cannot be granted in this process, or None."""
    if _arrayguard is None:
        return (
            "ipycap.engine._arrayguard was not built (no C compiler at install time): without "
            "it a capsule object could hand numpy raw memory addresses"
        )
    return None
