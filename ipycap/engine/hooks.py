"""Capsule methods that trusted code calls later with values of its own.

A capsule class that subclasses an abstract base class, or a capsule metaclass, enters
tables that trusted code walks: ``isinstance(x, collections.abc.Sequence)`` anywhere in the
process calls ``__subclasshook__`` of every capsule subclass of ``Sequence`` with
``type(x)``, and ``__subclasscheck__``/``__instancecheck__`` of a capsule metaclass with
whatever is checked.  Raw, those arguments are trusted classes and objects (a user class, the
shell's class): I2 in DESIGN.md.  So these hooks are *guarded*: their arguments enter the
capsule as any trusted value does, through the membrane (builtin and standard-library
classes as they are, frozen; the capsule's own classes and objects as they are; everything
else as a proxy).  What the hook decides still decides.

Guarding at class creation alone is not enough (red team 1): a hook can be assigned later
(``C.__subclasshook__ = classmethod(f)``, ``setattr``, ``functools.update_wrapper``), be any
callable or descriptor (a ``staticmethod``, a ``partial``, a callable object, a property on
the metaclass, a metaclass ``__getattribute__`` that returns one), or sit on a class that no
``class`` statement made (``ABCMeta('X', bases, ns)``, ``type(int).__new__(M, ...)``,
``dataclasses.make_dataclass``).  So the rule is enforced where the hooks are *used*, not
where they are made: the ABC algorithm is the only trusted code that walks classes it was
not given, and every step of it passes through ``ABCMeta.__subclasscheck__``,
``__instancecheck__`` or ``register`` (Python methods of ``abc.ABCMeta``).  Those are
replaced, once per process, by versions that first *prepare* the class they are about to
consult (and its direct subclasses, whose metaclass hooks the C walk calls next): every hook
entry in their dicts and their metaclasses' dicts that is not trusted code is replaced by a
guarded descriptor.  Class statements, ``type(name, bases, ns)`` and guarded attribute
writes prepare at once as well, so a class is guarded before trusted code is handed it.
Trusted entries (functions of trusted modules, C methods) are never touched.
"""

from __future__ import annotations

import _abc
import abc
import functools
import sys
import types
import weakref

from . import arrayguard, guard, rules
from .caches import compares_in_capsule
from .libraries import PROFILES as _PROFILES
from .libraries import instances as _instances
from .libraries import readonly as _readonly  # noqa: F401 (wrap() imports it lazily: not while comparing)
from .membrane import Proxy, capability_of, is_plain, target_of, wrap
from .membrane.authority import _callback_cap, _check_withheld
from .registry import Capability

# Every class a capsule makes, however it is made, gets the array-protocol guard.
arrayguard.install()

_HEAPTYPE = 1 << 9
_TYPE_SUBCLASS = 1 << 31
_type_flags = type.__dict__["__flags__"].__get__
_type_dict = type.__dict__["__dict__"].__get__
_type_mro = type.__dict__["__mro__"].__get__
_subclasses = type.__dict__["__subclasses__"]
_address = object.__hash__  # id() raises an audit event; this does not

#: Hooks of a class (or metaclass) dict whose arguments come from trusted code.
CLASS_HOOKS = ("__subclasshook__", "__subclasscheck__", "__instancecheck__")
#: Metaclass entries that decide which callables (or classes) the ABC walk meets next.
META_HOOKS = ("__getattribute__", "__getattr__", "__subclasses__")
HOOK_NAMES = frozenset(CLASS_HOOKS + META_HOOKS)
#: Rich comparisons: trusted code calls them implicitly with its own objects as the operand
#: (``fp in (sys.stderr, sys.stdout)``, ``list.index``, a dict probe on a hash collision,
#: ``sorted``, ``inst.fp == fp`` in tqdm.write()).  See :class:`_Operands`.
COMPARE_HOOKS = frozenset(("__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__"))
#: Every argument-taking dunder of a capsule class that trusted code may call with values of
#: its own (an operator with a trusted operand, ``key in obj``, ``obj[key] = value``,
#: ``format(obj, spec)``, a ``with`` statement's exception and traceback, ``copy``'s memo,
#: numpy's ufunc arguments, a class statement's keywords ...): call-scoped like comparisons
#: (:class:`_Operands`).  The table lives in rules.py (the gate routes stores of these
#: names through the guard: rules.is_risky_store); NOT_OPERAND lists the argument-taking
#: dunders left out, with why; tests/test_operand_hooks.py fails on one in neither.
OPERAND_DUNDERS = rules.OPERAND_DUNDERS
NOT_OPERAND = rules.NOT_OPERAND
GUARDED_NAMES = HOOK_NAMES | COMPARE_HOOKS | OPERAND_DUNDERS

_TRUSTED_C = (
    types.BuiltinFunctionType,
    types.MethodDescriptorType,
    types.WrapperDescriptorType,
    types.ClassMethodDescriptorType,
    types.MethodWrapperType,
    types.GetSetDescriptorType,
    types.MemberDescriptorType,
)

#: Class dicts already prepared (by identity; a guarded write re-prepares its entry).
_PREPARED = guard.TypeSet()


def inbound(value):
    """``value`` as a capsule hook may receive it (see the module docstring)."""
    tp = type(value)
    if tp in guard.PROXY_TYPES or is_plain(value):
        return value
    if _type_flags(tp) & _TYPE_SUBCLASS:
        if value in guard.OWN_TYPES:
            return value
        if not (_type_flags(value) & _HEAPTYPE) or guard._is_stdlib_class(value):
            return guard.share_class(value)
        return wrap(value, _callback_cap())
    if guard.is_own(value):
        return value
    return wrap(value, _callback_cap())


def _withheld(value) -> bool:
    """Whether ``value`` is machinery the membrane never hands a capsule."""
    if type(value) in guard.PROXY_TYPES or is_plain(value):
        return False
    try:
        _check_withheld(value)
    except guard.CapsuleTypeError:
        return True
    return False


def _is_trusted(entry) -> bool:
    """Whether a class-dict entry is trusted code (never wrapped) or already guarded."""
    tp = type(entry)
    if tp is _Hook or tp is _DataHook or tp is _OperandHook or tp is _OperandDataHook:
        return True
    if tp is _CompareHook or tp is _CompareDataHook:
        return True
    if tp is _OperandC and _OperandC is not None:
        return True
    if tp in _TRUSTED_C:
        return guard.trusted_c_entry(entry)  # not a C method bound to a capsule's object
    if tp is types.FunctionType:
        return not guard.is_own(entry)
    if tp is classmethod or tp is staticmethod:
        return _is_trusted(entry.__func__)
    if _type_flags(tp) & _TYPE_SUBCLASS:
        # a class as the entry (``__class_getitem__ = classmethod(GenericAlias)``): a class
        # of trusted code runs its own __new__/__init__; a capsule's class keeps what its
        # inherited C constructor is given (``__eq__ = Rec``, an Exception subclass: .args)
        return not guard.is_own(entry)
    return False


class _Bound:
    """A hook as trusted code calls it: arguments through :func:`inbound`."""

    __slots__ = ("_fn", "_name")

    def __new__(cls, fn, name):  # state set once: a capsule's re-__init__ changes nothing
        self = object.__new__(cls)
        self._fn = fn
        self._name = name
        return self

    def __call__(self, *args, **kwargs):
        if self._name in rules.ABC_HOOKS and any(map(_withheld, args)):
            # ipycap's own machinery never enters a capsule, not even as a hook's operand:
            # the capsule's hook is not asked and trusted isinstance/issubclass answer
            # without it (a file handle is no instance of a capsule's ABC)
            return NotImplemented if self._name == "__subclasshook__" else False
        args = [inbound(a) for a in args]
        kwargs = {k: inbound(v) for k, v in kwargs.items()}
        result = self._fn(*args, **kwargs)
        name = self._name
        if name in ("__getattribute__", "__getattr__"):
            if args and type(args[0]) is str and args[0] in HOOK_NAMES:
                return _Bound(result, args[0])  # what the ABC walk calls next
        elif name == "__subclasses__":
            for item in result if type(result) is list else ():
                prepare(item if _type_flags(type(item)) & _TYPE_SUBCLASS else type(item))
        return result


class _Hook:
    """A guarded class-dict entry: binds like the entry it replaces, calls through
    :class:`_Bound`.  (``_DataHook`` keeps a data descriptor a data descriptor, so a
    property on a metaclass still wins over the class's own entries.)"""

    __slots__ = ("_entry", "_name")

    def __new__(cls, entry, name):  # state set once (tests/test_frozen_state.py)
        self = object.__new__(cls)
        self._entry = entry
        self._name = name
        return self

    def __get__(self, obj, owner=None):
        entry = self._entry
        get = getattr(type(entry), "__get__", None)
        bound = entry if get is None else get(entry, obj, owner)
        return _Bound(bound, self._name)


class _Data:
    """Keeps a guarded data descriptor a data descriptor (mixed into the hooks below)."""

    __slots__ = ()

    def __set__(self, obj, value):
        type(self._entry).__set__(self._entry, obj, value)

    def __delete__(self, obj):
        type(self._entry).__delete__(self._entry, obj)


class _DataHook(_Data, _Hook):
    __slots__ = ()


# -- comparisons trusted code runs on capsule objects -------------------------------------
#: Code of ipycap's builtins that runs a capsule's own class statement or ``type(...)`` for
#: it: ``__prepare__``, ``__mro_entries__``, ``__set_name__`` and ``__init_subclass__`` are
#: called from those frames with what the capsule wrote (address -> weak reference, as
#: guard._CAPSULE_CODE; filled when the builtins module is first there).
_DEPUTY_CODE: dict = {}


def _deputy_code() -> dict:
    if not _DEPUTY_CODE:
        mod = sys.modules.get("ipycap.engine.builtins")
        if mod is not None:
            for fn in (mod._build_class, mod._CapsuleType._call):
                guard._record_code(_DEPUTY_CODE, fn.__code__)
    return _DEPUTY_CODE


def _capsule_caller(frame) -> bool:
    if guard.context_of(frame.f_builtins) is not None or guard.frame_is_capsule_code(frame):
        return True
    run = guard._frame_runs_capsule_code
    return run is not None and run(frame, _deputy_code())


def _passes(value) -> bool:
    """An operand a capsule operand method may receive as it is (plain data, a proxy, its
    own, a class it is building, a tuple of such)."""
    tp = type(value)
    if tp in guard.PROXY_TYPES or is_plain(value):
        return True
    if _type_flags(tp) & _TYPE_SUBCLASS:
        return (
            value in guard.OWN_TYPES
            or not (_type_flags(value) & _HEAPTYPE)
            or guard._being_built(value)
        )
    if tp is tuple:
        return all(map(_passes, value))
    return guard.is_own(value)


def _operand_cap():
    """A capability for the operands of one comparison call: revoked when it returns."""
    return Capability(None, "cap-operand", "object", _OPERAND_TARGET, "membrane", "cell")


_OPERAND_TARGET = "<an operand trusted code passed to a capsule method>"


def _operand(value, cap):
    """``value`` as a capsule comparison called by trusted code receives it: as it is when
    it passes, else a proxy under ``cap`` (objects that never enter a capsule, ipycap's and
    IPython's machinery, as a proxy of a placeholder: the comparison learns nothing of
    them)."""
    if _passes(value):
        return value
    if _type_flags(type(value)) & _TYPE_SUBCLASS and guard._is_stdlib_class(value):
        return guard.share_class(value)
    try:
        _check_withheld(value)
    except guard.CapsuleTypeError:
        return wrap(object(), cap)
    return wrap(value, cap)


def _call_operands(fn, args, kwargs, frame, owner=None, deputies=False):
    """Call ``fn`` (a capsule operand method, bound or not) for the caller at ``frame``:
    as it is for capsule code (or a standard-library deputy acting for it, when
    ``deputies``) or when every operand passes; else with call-scoped proxies."""
    if not kwargs and all(map(_passes, args)):
        return fn(*args)
    if _capsule_caller(frame) or (deputies and guard.asked_by_capsule(frame)):
        return fn(*args, **kwargs)
    first = ()
    if owner is not None and args and _type_flags(type(args[0])) & _TYPE_SUBCLASS:
        if any(k is owner for k in _type_mro(args[0])):
            first, args = args[:1], args[1:]  # __new__'s class argument: the class made
    cap = _operand_cap()
    try:
        return fn(
            *first,
            *[_operand(a, cap) for a in args],
            **{k: _operand(v, cap) for k, v in kwargs.items()},
        )
    finally:
        cap.revoked = True


class _Operands:
    """A capsule class's operand method (a comparison, an operator, ``__contains__``,
    ``__getitem__`` ... :data:`OPERAND_DUNDERS`) as bound for one call, for entries that
    are not plain functions (a staticmethod of ``__new__``, a property, a callable object).

    Called from capsule code, it runs as written.  Called from trusted code (a library's
    ``x in (a, b)``, ``list.index``, ``sorted``, ``trusted + obj``), each operand that is
    not plain data, a proxy or the capsule's own enters as a proxy whose capability ends
    when the method returns: the method decides with it, nothing keeps it (I2).  Beyond
    comparisons a standard-library deputy acting on the capsule's request counts as the
    capsule (guard.asked_by_capsule): copy.deepcopy hands __deepcopy__ its memo and
    __init__/__setstate__ the capsule's own state rebuilt; comparisons keep the stricter
    nearest-frame rule they had."""

    __slots__ = ("_fn", "_owner", "_deputies", "_bound")

    def __new__(cls, fn, owner=None, deputies=False, bound=None):  # state set once
        self = object.__new__(cls)
        self._fn = fn
        self._owner = owner  # for __new__: its first argument, the class made, passes
        self._deputies = deputies
        self._bound = bound  # a classmethod's class: judged as an operand (fn is unbound)
        return self

    def __call__(self, *args, **kwargs):
        if _caller_is_capsule(1):
            return self._fn(*args, **kwargs)
        frame = sys._getframe(1)
        fn, bound = self._fn, self._bound
        if bound is not None:
            fn, args = fn.func, (bound, *args)
        return _call_operands(fn, args, kwargs, frame, self._owner, self._deputies)


def _caller_is_capsule_py(depth):  # pragma: no cover - without the C extension
    frame = sys._getframe(depth + 1)
    return guard.context_of(frame.f_builtins) is not None or guard.frame_is_capsule_code(frame)


try:  # the nearest-frame check without sys._getframe's audit event (a hook's fast path)
    from ._arrayguard import caller_is_capsule as _caller_is_capsule
except ImportError:  # pragma: no cover
    _caller_is_capsule = _caller_is_capsule_py


def _operand_function(fn, name, owner=None):
    """The class-dict entry for capsule function ``fn`` under operand name ``name``: a plain
    function (bound natively, as ``fn`` was; the nearest-frame check first, the operands
    only for other callers), made once per entry.  It is this module's code, so trusted:
    never wrapped again."""
    deputies = name not in COMPARE_HOOKS
    if _OperandC is not None:
        # the C entry: the nearest-frame check and the call without a Python frame
        operand_hook = _OperandC(fn, _slow_deputies if deputies else _slow_compare, owner)
    else:  # pragma: no cover - without the C extension
        getframe = sys._getframe
        capsule_caller = _caller_is_capsule

        def operand_hook(*args, **kwargs):
            if capsule_caller(1):
                return fn(*args, **kwargs)
            return _call_operands(fn, args, kwargs, getframe(1), None, deputies)

        _OPERAND_FUNCTIONS.add(operand_hook.__code__)
    d = operand_hook.__dict__
    for attr in ("__module__", "__name__", "__qualname__", "__doc__"):
        value = getattr(fn, attr, None)
        if value is not None:
            d[attr] = value
    d.update(fn.__dict__)  # __isabstractmethod__ and the like
    d["__wrapped__"] = fn  # inspect.signature follows it
    return operand_hook


def _slow_compare(fn, args, kwargs):
    """The C entry's call for a caller that is not capsule code (a comparison)."""
    return _call_operands(fn, args, kwargs, sys._getframe(1), None, False)


def _slow_deputies(fn, args, kwargs):
    """As :func:`_slow_compare`, for the other operand names (deputies count)."""
    return _call_operands(fn, args, kwargs, sys._getframe(1), None, True)


try:
    from ._arrayguard import OperandHook as _OperandC
    from ._arrayguard import guard_init as _guard_init_c
except ImportError:  # pragma: no cover
    _OperandC = None
    _guard_init_slot = None
else:
    _guard_init_slot = None  # set at the end of the module, with the slow path defined


#: The code of :func:`_operand_function`'s wrappers (one code object for all).
_OPERAND_FUNCTIONS: set = set()


def is_operand_hook(entry) -> bool:
    """Whether a class-dict entry is a guarded operand entry (either form)."""
    tp = type(entry)
    if tp is _OperandHook or tp is _OperandDataHook or (tp is _OperandC and _OperandC is not None):
        return True
    if tp is _CompareHook or tp is _CompareDataHook:
        return True
    return tp is types.FunctionType and entry.__code__ in _OPERAND_FUNCTIONS


class _OperandHook(_Hook):
    """A guarded operand entry of a capsule class (:data:`OPERAND_DUNDERS`): binds like the
    entry it replaces, calls through :class:`_Operands`."""

    __slots__ = ()

    def __get__(self, obj, owner=None):
        entry = self._entry
        get = getattr(type(entry), "__get__", None)
        fn = entry if get is None else get(entry, obj, owner)
        name = self._name
        if name in COMPARE_HOOKS:
            return _Operands(fn)
        if type(entry) is classmethod and owner is not None:
            # the class it binds to is an operand too: trusted code subclassing a capsule
            # class (__init_subclass__) or subscripting a trusted subclass of one
            return _Operands(functools.partial(entry.__func__, owner), None, True, owner)
        return _Operands(fn, owner if name == "__new__" else None, True)


class _OperandDataHook(_Data, _OperandHook):
    __slots__ = ()


class _CompareHook(_OperandHook):
    """The operand entry for a comparison (the family this one generalises): the
    nearest-frame rule only, no standard-library deputy counts as the capsule."""

    __slots__ = ()


class _CompareDataHook(_Data, _CompareHook):
    __slots__ = ()


def _mro_entry(cls, name):
    for klass in _type_mro(cls):
        entry = _type_dict(klass).get(name)
        if entry is not None:
            return entry
    return None


def _guard_init(cls) -> None:
    """A capsule-made class whose ``__init__`` (its own or inherited) is a capsule function
    gets the guarded tp_init slot (``_arrayguard.guard_init``): the entry itself stays a
    plain function, so ``super().__init__`` chains run natively."""
    if _guard_init_slot is None or not _capsule_made(cls):
        return
    entry = _mro_entry(cls, "__init__")
    if type(entry) is types.FunctionType and guard.is_own(entry):
        _guard_init_slot(cls)


def _guard_inits(cls) -> None:
    """After ``__init__`` changed on ``cls`` (CPython re-derived the slot of it and of the
    subclasses that inherit it): guard them again."""
    todo = [cls]
    while todo:
        klass = todo.pop()
        _guard_init(klass)
        todo.extend(_subclasses(klass))


def _slow_init(self, args, kwargs):
    """The guarded tp_init's call for a caller that is not capsule code with operands that
    are not all plain (``K(trusted)`` from trusted code)."""
    fn = _mro_entry(type(self), "__init__")
    return _call_operands(fn, (self, *args), kwargs or {}, sys._getframe(1), None, True)


def _guard_entry(cls: type, name: str, entry) -> None:
    if _is_trusted(entry):
        return
    if name == "__init__" and type(entry) is types.FunctionType and _guard_init_slot is not None:
        _guard_inits(cls)  # the slot, not the entry (see _guard_init)
        return
    data = hasattr(type(entry), "__set__") or hasattr(type(entry), "__delete__")
    if name in HOOK_NAMES:
        replacement = (_DataHook if data else _Hook)(entry, name)
    elif type(entry) is types.FunctionType and name != "__new__":
        replacement = _operand_function(entry, name, cls)
    elif name in COMPARE_HOOKS:
        replacement = (_CompareDataHook if data else _CompareHook)(entry, name)
    else:
        replacement = (_OperandDataHook if data else _OperandHook)(entry, name)
    try:
        type.__setattr__(cls, name, replacement)
    except TypeError:
        # An immutable class holding capsule code: it cannot be guarded, so it must not run.
        raise guard.CapsuleTypeError(
            f"class {type.__dict__['__name__'].__get__(cls)!r} holds a capsule {name} that "
            "trusted code would call with its own objects, and it cannot be guarded",
            "builtins",
        ) from None


#: The operand names beyond comparisons are guarded on classes a capsule made (a class
#: statement, ``type(...)``, a metaclass or stdlib factory called while it asks: arrayguard
#: marks those), not on the trusted classes the ABC walk prepares too: a trusted class's
#: entry that is no plain function (a partialmethod, a property) is trusted code.
_CAPSULE_MADE_ONLY = OPERAND_DUNDERS - COMPARE_HOOKS
_ALWAYS = HOOK_NAMES | COMPARE_HOOKS


def _capsule_made(cls) -> bool:
    return cls in guard.OWN_TYPES or arrayguard.is_guarded(cls)


def _prepare_dict(cls: type) -> None:
    if cls in _PREPARED:
        return
    if _type_flags(cls) & _HEAPTYPE:
        d = _type_dict(cls)
        names = GUARDED_NAMES if _capsule_made(cls) else _ALWAYS
        for name in d.keys() & names:  # the names the class has (not ~100 lookups)
            entry = d.get(name)
            if entry is not None:
                _guard_entry(cls, name, entry)
    _PREPARED.add(cls)


#: id(cls) -> weakref(cls): classes whose MRO and metaclass MRO are all prepared (the fast
#: path of every ABC check; guarded writes of __bases__/__class__ drop the entry).
_READY: dict = {}


#: What a class compares and hashes by as a key: a capsule metaclass defining them decides
#: every trusted dict and cache keyed by classes (singledispatch's dispatch cache, ABC and
#: typing caches, weak dictionaries): ``__eq__`` True with a builtin's hash made polars'
#: singledispatch answer None for every trusted call after the cell (red team 10).
CLASS_IDENTITY = frozenset({"__eq__", "__ne__", "__hash__"})
_ABSENT = object()


def _refuse_class_identity(meta) -> None:
    """A class of a capsule metaclass compares and hashes as itself (by identity)."""
    for klass in _type_mro(meta):
        if klass is type or not _capsule_made(klass):
            continue
        d = _type_dict(klass)
        found = {
            n
            for n in CLASS_IDENTITY & d.keys()
            if d[n] is not type.__dict__.get(n, _ABSENT) and d[n] is not object.__dict__.get(n)
        }
        if found:
            # disarmed first: classes of it may exist whatever is raised.  The __hash__ = None
            # CPython adds beside an __eq__ goes too: left, it made every such class
            # unhashable, and trusted code walking type.__subclasses__() into a set failed.
            named = sorted(n for n in found if not (n == "__hash__" and d[n] is None))
            named = named or sorted(found)
            for n in found:
                type.__delattr__(klass, n)
            raise guard.CapsuleTypeError(
                f"a metaclass's {', '.join(named)}: classes compare and hash by "
                "identity in a capsule (trusted dictionaries and caches keyed by classes "
                "would ask the capsule's)",
                "hooks",
                None,
                hint="compare the classes' attributes in a function of your own",
            )


def _no_answer(cls, subclass):
    return NotImplemented


_NO_ANSWER = classmethod(_no_answer)


def _refuse_trusted_abc_hook(cls) -> None:
    """A capsule subclass of a trusted ABC may not answer for it: CPython's ABC check asks
    every subclass (``issubclass(C, scls)`` for each of ``cls.__subclasses__()``), so a
    capsule ``__subclasshook__`` under ``collections.abc.Mapping`` made trusted
    ``isinstance(1, Mapping)`` True for the rest of the session (red team 10) -- the same
    door ``register()`` on a trusted ABC is refused for."""
    if not _capsule_made(cls) or not isinstance(cls, abc.ABCMeta):
        return
    mro = _type_mro(cls)
    if not any(isinstance(b, abc.ABCMeta) and not _capsule_made(b) for b in mro[1:]):
        return
    own = [
        n
        for n in ("__subclasshook__",)
        if n in _type_dict(cls) and _type_dict(cls)[n] is not _NO_ANSWER
    ]
    own += [
        n
        for klass in _type_mro(type(cls))
        if _capsule_made(klass)
        for n in ("__subclasscheck__", "__instancecheck__")
        if n in _type_dict(klass)
    ]
    if own:
        # disarmed first: the class exists (among the ABC's subclasses) whatever is raised
        if "__subclasshook__" in _type_dict(cls):
            type.__setattr__(cls, "__subclasshook__", _NO_ANSWER)
        for klass in _type_mro(type(cls)):
            if _capsule_made(klass):
                for n in ("__subclasscheck__", "__instancecheck__"):
                    if n in _type_dict(klass):
                        type.__delattr__(klass, n)
        raise guard.CapsuleTypeError(
            f"{own[0]} on a subclass of a trusted ABC: trusted isinstance()/issubclass() "
            "would ask it about trusted classes",
            "hooks",
            None,
            hint="subclass an ABC of the capsule's own instead (class A(metaclass=abc.ABCMeta): "
            "..., with %%capsule --allow-import abc)",
        )


def prepare(cls) -> None:
    """Guard every hook trusted code may call on ``cls``: entries of its MRO and of its
    metaclass's MRO that are capsule code become guarded descriptors (in place)."""
    ref = _READY.get(_address(cls))
    if ref is not None and ref() is cls:
        return
    if not _type_flags(type(cls)) & _TYPE_SUBCLASS:
        return
    if _type_flags(type(cls)) & _HEAPTYPE and type(cls) is not type:
        _refuse_class_identity(type(cls))
        _refuse_trusted_abc_hook(cls)
    for klass in _type_mro(cls):
        _prepare_dict(klass)
    for klass in _type_mro(type(cls)):
        _prepare_dict(klass)
    _guard_init(cls)
    key = _address(cls)
    _READY[key] = weakref.ref(cls, lambda _, k=key: _forget(k))


def guard_class_hooks(cls: type) -> None:
    """Guard the hooks of capsule class ``cls`` (a class statement or ``type(...)``), when
    its class statement returns: the type.__new__ hook prepared it as it was made, but a
    trusted metaclass may set entries after that (typing.NamedTuple's copies the body's
    functions onto the class collections.namedtuple made), so its own dict is looked at
    again."""
    prepare(cls)
    if _type_flags(cls) & _HEAPTYPE:
        d = _type_dict(cls)
        for name in d.keys() & (GUARDED_NAMES if _capsule_made(cls) else _ALWAYS):
            entry = d[name]
            if not _is_trusted(entry):
                _guard_entry(cls, name, entry)


def after_write(obj, name: str) -> None:
    """A guarded attribute write set ``name`` on ``obj``: guard it if it is a hook; a new
    ``__bases__`` or ``__class__`` brings new dicts into the walk, so prepare again."""
    if not _type_flags(type(obj)) & _TYPE_SUBCLASS:
        return
    if name == "__subclasshook__" and _capsule_made(obj):
        _refuse_trusted_abc_hook(obj)  # (the store is undone before the refusal)
    if name in CLASS_IDENTITY and issubclass(obj, type) and _capsule_made(obj):
        _refuse_class_identity(obj)
    if name in _ALWAYS or (name in _CAPSULE_MADE_ONLY and _capsule_made(obj)):
        entry = _type_dict(obj).get(name)
        if entry is not None:
            _guard_entry(obj, name, entry)
    elif name in ("__bases__", "__class__"):
        _READY.clear()  # every class below obj has a new MRO
        _WALKED.clear()
        _CLEAN.clear()
        prepare(obj)


#: id(abc) -> (weakref(abc), ids of its direct subclasses when they were last prepared).
#: Cleared whenever a prepared class dies, so an id in it is never a newer class's.
_WALKED: dict = {}


def _forget(key) -> None:
    _READY.pop(key, None)
    _WALKED.clear()


def _prepare_walk(cls) -> None:
    """Before the C walk of ``cls``: it and its direct subclasses (whose metaclass hooks the
    walk calls next; deeper levels pass through ``_subclasscheck`` again)."""
    subs = _subclasses(cls)
    ids = tuple(map(_address, subs))
    seen = _WALKED.get(_address(cls))
    if seen is not None and seen[1] == ids and seen[0]() is cls:
        return
    prepare(cls)
    for sub in subs:
        try:
            prepare(sub)
        except guard.CapsuleTypeError:
            pass  # a capsule class whose making was refused: disarmed, asked nothing
    _WALKED[_address(cls)] = (weakref.ref(cls), ids, _metas_of(subs))


def _metas_of(subs) -> tuple:
    """Weak references to the metaclasses (other than ABCMeta and type) of ``subs``: whose
    ``__subclasscheck__`` the C walk calls."""
    metas = {_address(type(sub)): type(sub) for sub in subs}
    metas.pop(_address(abc.ABCMeta), None)
    metas.pop(_address(type), None)
    return tuple(map(weakref.ref, metas.values()))


_OWN_REFS = guard.OWN_TYPES._refs


def _own_class(klass) -> bool:
    ref = _OWN_REFS.get(_address(klass))
    return ref is not None and ref() is klass


def _check_entries(klass) -> None:
    d = _type_dict(klass)
    for name in HOOK_NAMES:
        entry = d.get(name)
        if entry is not None and not _is_trusted(entry):
            _guard_entry(klass, name, entry)


#: id(cls) -> weakref(cls): classes none of whose MRO is the capsule's (trusted ABCs): the
#: use-time look below has nothing to check on them.  Dropped on a __bases__ write.
_CLEAN: dict = {}


def _verify(cls) -> None:
    """At use time, whatever the caches above say: every hook entry the ABC algorithm may
    call next on ``cls`` (its MRO's dicts, its metaclass's) is trusted or guarded.  A
    trusted deputy can set a hook on a capsule class with a plain ``setattr`` that no
    guarded write sees (copy's slot state: red team 6, finding G).  Only the capsule's own
    classes need the look: on any other class the tripwire refuses a capsule's writes."""
    key = _address(cls)
    clean = _CLEAN.get(key)
    if clean is None or clean() is not cls:
        refs = _OWN_REFS
        own = False
        for klass in _type_mro(cls):
            ref = refs.get(_address(klass))  # _own_class, inlined
            if ref is not None and ref() is klass:
                own = True
                _check_entries(klass)
        if not own:  # a trusted class with trusted bases (only trusted code changes them)
            _CLEAN[key] = weakref.ref(cls, lambda _, k=key: _CLEAN.pop(k, None))
    meta = type(cls)
    if meta is not abc.ABCMeta and meta is not type:
        for klass in _type_mro(meta):
            if _own_class(klass):
                _check_entries(klass)


def _verify_walk(metas) -> None:
    """The C walk calls each direct subclass's metaclass ``__subclasscheck__`` (ABCMeta's
    is :func:`_subclasscheck`, which verifies that subclass itself): ``metas`` are weak
    references to the other metaclasses among them (kept in :data:`_WALKED`)."""
    for ref in metas:
        meta = ref()
        if meta is not None:
            for klass in _type_mro(meta):
                if _own_class(klass):
                    _check_entries(klass)


# -- the ABC algorithm's entry points (abc.ABCMeta's Python methods), once per process --------
_abc_subclasscheck = abc._abc_subclasscheck
_abc_instancecheck = abc._abc_instancecheck
_abc_register = abc._abc_register


def _uncached_subclasscheck(cls, subclass):
    """The ABC algorithm without its caches (weak sets compared with ``==``), for a class
    whose metaclass hashes or compares in capsule code: it would be handed the trusted
    classes stored there (caches.py)."""
    if not _type_flags(type(subclass)) & _TYPE_SUBCLASS:
        raise TypeError("issubclass() arg 1 must be a class")
    ok = cls.__subclasshook__(subclass)
    if ok is not NotImplemented:
        return bool(ok)
    if any(c is cls for c in _type_mro(subclass)):
        return True
    for ref in list(_abc._get_dump(cls)[0]):
        rcls = ref()
        if rcls is not None and issubclass(subclass, rcls):
            return True
    return any(issubclass(subclass, scls) for scls in cls.__subclasses__())


def _subclasscheck(cls, subclass):
    """Override for the use of isinstance() and issubclass()."""
    subs = _subclasses(cls)
    seen = _WALKED.get(_address(cls))
    if seen is None or seen[0]() is not cls or seen[1] != tuple(map(_address, subs)):
        _prepare_walk(cls)
        seen = _WALKED.get(_address(cls))
    _verify(cls)
    metas = seen[2] if seen is not None else _metas_of(subs)
    if metas:
        _verify_walk(metas)
    meta = type(subclass)
    if meta is not type and meta is not abc.ABCMeta and compares_in_capsule(meta):
        return _uncached_subclasscheck(cls, subclass)
    return _abc_subclasscheck(cls, subclass)


def _instancecheck(cls, instance):
    """Override for isinstance(instance, cls)."""
    # The C check asks cls.__subclasscheck__ (prepared here) on a cache miss, which walks.
    ref = _READY.get(_address(cls))
    if ref is None or ref() is not cls:
        prepare(cls)
    _verify(cls)
    tp = type(instance)
    if tp is Proxy and not capability_of(instance).revoked:
        # A proxy handed to trusted code (matplotlib's isinstance(x, MappingView)): judged
        # by its target's class, as without ipycap.  Its __class__ is a proxied class, which
        # the C check would hand to issubclass() (TypeError); capsule hooks the walk meets
        # are guarded (they get the class through the membrane).
        return _subclasscheck(cls, type(target_of(instance)))
    if _type_flags(tp) & _HEAPTYPE:
        sub = instance.__class__  # what the C check looks up in the caches
        meta = type(sub)
        if meta is not type and meta is not abc.ABCMeta and compares_in_capsule(meta):
            if _type_flags(type(sub)) & _TYPE_SUBCLASS and _subclasscheck(cls, sub):
                return True
            return tp is not sub and _subclasscheck(cls, tp)
    return _abc_instancecheck(cls, instance)


def _register(cls, subclass):
    """Register a virtual subclass of an ABC.  Returns the subclass, to allow usage as a
    class decorator."""
    if cls not in guard.OWN_TYPES and guard.asked_by_capsule(sys._getframe(1)):
        # A trusted ABC's registry is trusted state every later isinstance() of trusted
        # code consults (I3): a capsule's class there would be asked about trusted classes
        # for the rest of the session, and a class that raises in the check (an unchecked
        # typing.Protocol) breaks them.  Capsules register with their own ABCs.
        raise guard.CapsuleTypeError(
            f"registering a class with {getattr(cls, '__qualname__', 'an ABC')} changes a "
            "registry trusted code shares",
            "builtins",
            hint=f"subclass {getattr(cls, '__qualname__', 'the ABC')} instead, or register "
            "with an ABC the capsule defines",
        )
    if cls in guard.OWN_TYPES and "_abc_impl" not in _type_dict(cls):
        # Without state of its own, register() would write the state it inherits: a trusted
        # ABC's registry (red team 6, finding C).
        raise guard.CapsuleTypeError(
            f"{getattr(cls, '__qualname__', 'this ABC')} has no ABC registry of its own",
            "builtins",
            hint="register with an ABC made by a class statement",
        )
    prepare(subclass)
    _prepare_walk(cls)
    if compares_in_capsule(type(subclass)):
        raise guard.CapsuleTypeError(
            "a class whose metaclass defines __eq__ or __hash__ cannot be registered with "
            "an ABC: its registry is shared and compared with ==",
            "builtins",
            hint="register a class with an ordinary metaclass",
        )
    return _abc_register(cls, subclass)


_abc_registry_clear = abc.ABCMeta._abc_registry_clear
_abc_caches_clear = abc.ABCMeta._abc_caches_clear
_dump_registry = abc.ABCMeta._dump_registry


def _refuse_abc_state(cls, what: str) -> None:
    if cls not in guard.OWN_TYPES and guard.asked_by_capsule(sys._getframe(2)):
        raise guard.CapsuleTypeError(
            f"{what} of {getattr(cls, '__qualname__', 'an ABC')}: its registry is shared by "
            "trusted code",
            "builtins",
            hint="use an ABC the capsule defines",
        )


def _registry_clear(cls):
    """Clear the registry (for debugging or testing)."""
    _refuse_abc_state(cls, "clearing the registry")
    return _abc_registry_clear(cls)


def _caches_clear(cls):
    """Clear the caches (for debugging or testing)."""
    _refuse_abc_state(cls, "clearing the caches")
    return _abc_caches_clear(cls)


def _dump(cls, file=None):
    """Debug helper to print the ABC registry."""
    _refuse_abc_state(cls, "dumping the registry")
    return _dump_registry(cls, file)


def _as_abc(fn):
    """``fn`` running with globals named 'abc': typing's Protocol hook decides whether an
    isinstance()/issubclass() on a non-runtime protocol is the ABC machinery walking a
    class tree (allowed) by the *module name* of the frames above it (typing's
    ``_allow_reckless_class_checks``), so the replacements must sit there under abc's name,
    as ABCMeta's own methods do.  The globals are a snapshot of this module's (its tables
    are the same objects)."""
    return types.FunctionType(fn.__code__, _ABC_NAMED, fn.__name__, fn.__defaults__, fn.__closure__)


_ABC_NAMED: dict = {}


def _install() -> None:
    if abc.ABCMeta.__dict__.get("__subclasscheck__") is not abc.ABCMeta.__subclasscheck__:
        return  # pragma: no cover - the pure-Python _py_abc implementation: not patched
    if type(abc.ABCMeta.__dict__.get("register")) is types.FunctionType and (
        abc.ABCMeta.__dict__["register"].__code__ is _register.__code__
    ):
        return
    _ABC_NAMED.update(globals())
    _ABC_NAMED["__name__"] = "abc"
    replaced = ("_uncached_subclasscheck", "_subclasscheck", "_instancecheck", "_register")
    for name in replaced + ("_registry_clear", "_caches_clear", "_dump"):
        _ABC_NAMED[name] = _as_abc(globals()[name])
    for name, fn in (
        ("__subclasscheck__", _ABC_NAMED["_subclasscheck"]),
        ("__instancecheck__", _ABC_NAMED["_instancecheck"]),
        ("register", _ABC_NAMED["_register"]),
        # a trusted ABC's registry is emptied or read only by trusted code (finding C)
        ("_abc_registry_clear", _ABC_NAMED["_registry_clear"]),
        ("_abc_caches_clear", _ABC_NAMED["_caches_clear"]),
        ("_dump_registry", _ABC_NAMED["_dump"]),
    ):
        old = abc.ABCMeta.__dict__[name]
        fn.__name__, fn.__qualname__ = old.__name__, old.__qualname__
        type.__setattr__(abc.ABCMeta, name, fn)


def after_type_store(cls, name) -> None:
    """Called (``_arrayguard``) after any store or delete of a dunder name on a heap class,
    by whomever: a trusted deputy's ``setattr(K, '__radd__', f)`` for a capsule (a dataclass
    field default, a decorator) is guarded like a store the capsule made itself."""
    if type(name) is str and name in _OPERAND_OR_COMPARE and _capsule_made(cls):
        entry = _type_dict(cls).get(name)
        if entry is not None and not _is_trusted(entry):
            _guard_entry(cls, name, entry)
        if name == "__init__":
            _guard_inits(cls)  # stored or deleted: CPython re-derived the slots below cls


_OPERAND_OR_COMPARE = OPERAND_DUNDERS | COMPARE_HOOKS

if _OperandC is not None:
    # teaches _arrayguard which slot a Python __init__ gives a class (a throwaway class of
    # no audited module)
    _guard_init_c(
        type("probe", (), {"__init__": lambda self: None, "__module__": "ipycap-init-probe"}),
        _slow_init,
    )
    _guard_init_slot = _guard_init_c

_install()
guard.after_class_write = after_write
arrayguard.on_capsule_class = prepare
if _OperandC is not None:
    from ._arrayguard import install_setattr_hook as _install_setattr_hook

    _install_setattr_hook(after_type_store)


def _before_freeze(cls) -> None:
    """Before a shared class is frozen: guard its capsule hooks; a library class's listed
    instance tables become per capsule (libraries/instances.py)."""
    _prepare_dict(cls)
    _instances.scope_class(cls, _PROFILES.values())


guard.before_freeze = _before_freeze
