"""Shared caches of the standard library never compare a capsule's key with a trusted one.

A cache is a hash table shared by every caller in the process.  A lookup whose hash matches
a stored key compares the two with ``==``; when the key a capsule passes runs capsule code
to hash or compare (a class with a capsule metaclass ``__eq__``/``__hash__``, an object of a
capsule class, a tuple holding one), that method is handed the *stored* key (I2 in
DESIGN.md).  The capsule controls ``__hash__`` and can compute the hash of anything it
holds a proxy of (a proxy hashes like its target, so it works as a dict key): it aims at a
trusted class or object that trusted code cached, e.g. ``typing.List[Vault]``, and its
``__eq__`` receives the raw ``Vault``.

The tables that matter are the ones keyed by *objects*: ``typing``'s alias caches (one
``functools.lru_cache`` per special form, keyed by the parameters) and the ABC caches and
registries (weak sets of classes; ``hooks.py`` routes capsule-compared classes around them).
Caches keyed by strings (``re``'s compile cache, ``fnmatch``, ``_strptime``, ``struct``)
are not: a capsule ``str`` subclass can only collide with a stored string whose SipHash
(keyed per process) it computed from that same string, so it learns nothing it did not
know.  The rule: a key that would run capsule code when hashed or compared never meets the
table; such a call computes afresh and stores nothing.

They do keep the key *object* they are given (issue 11, I3; rt8 finding 4): a capsule
``str`` subclass instance used as a pattern stayed in ``re``'s cache after the cell, with
everything it holds (attributes, its class and so the cell's namespace), and its ``__del__``
ran later inside whichever trusted call evicted it (``re.purge()``), on the main thread and
without the cell's limits.  The rule: *a trusted table never stores a capsule-made object*.
(1) Arguments that are instances of heap subclasses of the builtin value types reach the
standard library's functions as exact builtin copies (:func:`exact_args`): the module views'
functions convert them (``modules._revocable_function``, C ``_viewcalls``), except in the
modules whose functions take objects by identity (``copy``, ``pprint``, ``operator``...).
(2) The caches a capsule reaches *natively*, through a method of a trusted object it holds
(``Pattern.sub``/``Match.expand`` reach ``re._compile_repl``; ``datetime.strptime`` reaches
``_strptime._strptime``), convert at the cache itself (:class:`_ExactKeys`).  (3) ``typing``'s
caches, keyed by objects (classes, ``Literal`` values), skip every key holding a capsule-made
object (:func:`capsule_made`).  tests/test_kept_objects.py scans every module-level table.
"""

from __future__ import annotations

import builtins
import functools
import sys
import types

_HEAPTYPE = 1 << 9
_type_flags = type.__dict__["__flags__"].__get__
_type_dict = type.__dict__["__dict__"].__get__
_type_mro = type.__dict__["__mro__"].__get__
_REAL_BUILTINS = builtins.__dict__
_EXACT = frozenset({str, bytes, int, float, complex, bool, type(None), type(...)})
_COMPARE = ("__eq__", "__hash__", "__ne__")
_C_CODE = (
    types.BuiltinFunctionType,
    types.MethodDescriptorType,
    types.WrapperDescriptorType,
    types.ClassMethodDescriptorType,
    types.MethodWrapperType,
)


#: exact copies of a subclass instance: the value, by the base type's own slot (no capsule code)
_COPIES = (
    (str, str.__str__),
    (bytes, bytes.__bytes__),
    (int, int.__int__),
    (float, float.__float__),
    (complex, complex.__complex__),
)
_tuple_slice = tuple.__getitem__
_frozenset_copy = frozenset.copy
_ALL = slice(None)


def exact_copy(value, _depth: int = 0):
    """``value`` itself when its type is a builtin one (or a static C type: numpy's scalars,
    bool); an exact builtin copy of an instance of a heap subclass of str, bytes, int, float,
    complex (the value is the base type's), and of tuple or frozenset when its class or an
    item is capsule-made (items converted too).  Runs no code of the value's class: the
    copies are the base types' own C slots, read through their descriptors."""
    tp = type(value)
    if tp in _EXACT or not _type_flags(tp) & _HEAPTYPE:
        if tp is tuple and _depth < 20:
            items = [exact_copy(v, _depth + 1) for v in value]
            if any(a is not b for a, b in zip(items, value, strict=True)):
                return tuple(items)
        return value
    mro = _type_mro(tp)
    for base, copy in _COPIES:
        for klass in mro:
            if klass is base:
                return copy(value)
    for klass in mro:
        if klass is tuple or klass is frozenset:
            items = list(_tuple_slice(value, _ALL) if klass is tuple else _frozenset_copy(value))
            if not _capsule_class(mro) and not capsule_made(items):
                # a trusted class's instance of trusted values (time.struct_time, whose
                # tm_zone a plain tuple would lose; a stdlib namedtuple): as it is
                return value
            items = [exact_copy(v, _depth + 1) for v in items]
            return tuple(items) if klass is tuple else frozenset(items)
    return value


def _capsule_class(mro) -> bool:
    from . import guard

    return any(k in guard.OWN_TYPES for k in mro)


def exact_args(args: tuple) -> tuple:
    """Every item of ``args`` as :func:`exact_copy` gives it (the module views' functions)."""
    return tuple([exact_copy(a) for a in args])


class _CacheStandIn:
    """A trusted cache (or cache-filling function) stood in for: binds like the function it
    stands for, and keeps it as ``__wrapped__``."""

    __slots__ = ("_func", "__wrapped__")

    def __init__(self, func):
        self._func = func
        self.__wrapped__ = func

    def __get__(self, obj, owner=None):
        return self if obj is None else types.MethodType(self, obj)


class _ExactKeys(_CacheStandIn):
    """A trusted cache-filling function (an ``lru_cache`` wrapper or a function filling a
    dict) that a capsule reaches natively: its value-subclass arguments are stored as exact
    copies.  ``cache_clear``/``cache_info`` stay the cache's."""

    __slots__ = ()

    def __call__(self, *args, **kwargs):
        for a in args:
            if type(a) not in _EXACT:
                args = exact_args(args)
                break
        if kwargs:
            kwargs = {k: exact_copy(v) for k, v in kwargs.items()}
        return self._func(*args, **kwargs)

    def cache_clear(self):
        self._func.cache_clear()

    def cache_info(self):
        return self._func.cache_info()

    def cache_parameters(self):
        return self._func.cache_parameters()


#: Caches that are not lru_caches, filled by a function a capsule reaches natively (through
#: a method of a trusted object or a class it calls): module -> (class or None, function).
#: ``Pattern.sub``/``Match.expand`` reach ``re._compile_repl``; ``datetime.strptime``
#: reaches ``_strptime._strptime``; ``IPv4Network((addr, n))`` reaches ``_make_netmask``
#: (``cls._netmask_cache[arg]``).  tests/test_kept_objects.py's scan finds new ones.
_NATIVE_FILLERS = {
    "re": ((None, "_compile_repl"),),
    "_strptime": ((None, "_strptime"),),
    "ipaddress": (("_BaseV4", "_make_netmask"), ("_BaseV6", "_make_netmask")),
}


def _guard_fillers(module, name) -> None:
    d = module.__dict__
    for cls_name, func_name in _NATIVE_FILLERS.get(name, ()):
        if cls_name is None:
            if type(d.get(func_name)) is not _ExactKeys:
                d[func_name] = _ExactKeys(d[func_name])
            continue
        cls = d[cls_name]
        entry = _type_dict(cls)[func_name]
        if type(entry) is classmethod and type(entry.__func__) is not _ExactKeys:
            type.__setattr__(cls, func_name, classmethod(_ExactKeys(entry.__func__)))


def _guard_native_caches() -> None:
    import _strptime
    import ipaddress
    import re

    for module in (re, _strptime, ipaddress):
        on_view(module)


_LRU = type(functools.lru_cache()(lambda: None))
_SEEN: dict = {}  # module name -> the module whose lru caches were guarded
#: typing's caches skip capsule-made keys instead (_Bypass); functools' are the caller's own.
_NOT_GUARDED = frozenset({"typing", "functools"})


def _lru_in(entry):
    """The lru_cache wrapper an entry of a class dict stands for (and how to rewrap it)."""
    if type(entry) is _LRU:
        return entry, lambda g: g
    if type(entry) in (classmethod, staticmethod) and type(entry.__func__) is _LRU:
        kind = type(entry)
        return entry.__func__, kind
    return None, None


def on_view(module) -> None:
    """Before a capsule first sees a standard-library module: its own ``lru_cache``s (module
    functions and its classes' methods, e.g. ``ipaddress``' netmask cache, ``fnmatch``'s
    pattern cache) store exact copies of value-subclass arguments, since a capsule reaches
    them natively (a class it calls, a method of an object it holds), not only through the
    view's functions.  Once per module object."""
    name = getattr(module, "__name__", None)
    if type(name) is not str or _SEEN.get(name) is module:
        return
    _SEEN[name] = module
    top = name.partition(".")[0]
    if top not in sys.stdlib_module_names or top in _NOT_GUARDED:
        return
    d = getattr(module, "__dict__", None)
    if type(d) is not dict:
        return
    _guard_fillers(module, name)
    for key, value in list(d.items()):
        if type(value) is _LRU and getattr(value, "__module__", None) == name:
            d[key] = _ExactKeys(value)
        elif isinstance(value, type) and _type_dict(value).get("__module__") == name:
            for attr, entry in list(_type_dict(value).items()):
                func, wrap = _lru_in(entry)
                if func is not None:
                    try:
                        type.__setattr__(value, attr, wrap(_ExactKeys(func)))
                    except TypeError:  # pragma: no cover - an immutable class
                        pass


class _NoCapsuleKeys(_CacheStandIn):
    """A granted library's ``lru_cache`` wrapper (``pandas.core.dtypes.cast
    ._maybe_promote_cached``) that a capsule reaches through the library's own calls: a call
    with a capsule-made argument runs the function uncached, so the cache never keeps (and
    never later hashes or compares) a capsule's object -- its ``__del__`` ran inside a
    trusted ``cache_clear()``, red team 10.  Other calls are the cache's, unchanged (no
    exact copies: trusted code's own value subclasses, ``np.str_``, reach it as they are)."""

    __slots__ = ()

    def __call__(self, *args, **kwargs):
        for a in args:
            if type(a) not in _EXACT and capsule_made(a):
                return self._func.__wrapped__(*args, **kwargs)
        for a in kwargs.values():
            if type(a) not in _EXACT and capsule_made(a):
                return self._func.__wrapped__(*args, **kwargs)
        return self._func(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._func, name)  # cache_clear, cache_info, __name__, __doc__...


_LIBRARY_SEEN: dict = {}  # module name -> the module whose lru caches were guarded
_LIBRARY_AT: dict = {}  # packages -> len(sys.modules) when last walked


def on_library_modules(packages) -> None:
    """Guard the ``lru_cache``s of every loaded module of ``packages`` (granted libraries'
    packages), each module once: in its namespace, its classes, and wherever another of the
    package's modules imported the same wrapper (``from .cast import f``)."""
    if _LIBRARY_AT.get(packages) == len(sys.modules):
        return  # no module was imported since
    _LIBRARY_AT[packages] = len(sys.modules)
    replaced: dict = {}
    fresh = []
    for name, module in list(sys.modules.items()):
        if module is None or name.partition(".")[0] not in packages:
            continue
        if _LIBRARY_SEEN.get(name) is module:
            continue
        _LIBRARY_SEEN[name] = module
        d = getattr(module, "__dict__", None)
        if type(d) is not dict:
            continue
        fresh.append(d)
        for key, value in list(d.items()):
            if (
                type(value).__name__ == "LRUCache"
                and type(value).__module__ == "polars._utils.cache"
            ):
                d[key] = _no_capsule_keys_lru(value)  # polars' own (its UDF parser cache)
                continue
            if type(value) is _LRU:
                wrapper = replaced.get(id(value))
                if wrapper is None:
                    wrapper = replaced[id(value)] = (value, _NoCapsuleKeys(value))
                d[key] = wrapper[1]
            elif isinstance(value, type) and _type_dict(value).get("__module__") == name:
                for attr, entry in list(_type_dict(value).items()):
                    func, wrap = _lru_in(entry)
                    if func is not None:
                        try:
                            type.__setattr__(value, attr, wrap(_NoCapsuleKeys(func)))
                        except TypeError:  # pragma: no cover - an immutable class
                            pass
    if not replaced:
        return
    for d in list(_LIBRARY_SEEN_DICTS) + fresh:
        for key, value in list(d.items()):
            if type(value) is _LRU and id(value) in replaced and replaced[id(value)][0] is value:
                d[key] = replaced[id(value)][1]
    _LIBRARY_SEEN_DICTS.extend(fresh)


_LIBRARY_SEEN_DICTS: list = []
_LRU_SUBCLASSES: dict = {}


def _no_capsule_keys_lru(cache):
    """polars' ``LRUCache`` (``_BYTECODE_PARSER_CACHE_`` kept every capsule UDF it was
    given, keyed by the function), as one that stores no capsule-made key."""
    base = type(cache)
    cls = _LRU_SUBCLASSES.get(base)
    if cls is None:

        def __setitem__(self, key, value):  # noqa: N807
            if capsule_made(key):
                return  # computed again next time: the cache keeps nothing of a capsule's
            base.__setitem__(self, key, value)

        cls = _LRU_SUBCLASSES[base] = type(base.__name__, (base,), {"__setitem__": __setitem__})
    fresh = cls(cache.maxsize)
    for key, value in list(cache.items()):
        if not capsule_made(key):
            base.__setitem__(fresh, key, value)
    return fresh


def capsule_made(value, _depth: int = 0) -> bool:
    """Whether ``value`` is, or holds (in a tuple, list or frozenset), an object a capsule made:
    an instance of a class a capsule's class statement made, such a class, a function or
    method of capsule code (``guard.is_own_static``: by identity, nothing of it runs)."""
    from . import guard

    tp = type(value)
    if tp in _EXACT:
        return False
    if tp is tuple or tp is frozenset or tp is list:
        return _depth > 20 or any(capsule_made(v, _depth + 1) for v in value)
    parts = _alias_parts(value)
    if parts is not None:
        return _depth > 20 or any(capsule_made(v, _depth + 1) for v in parts)
    return guard.is_own_static(value)


def _alias_parts(value):
    """What a generic alias or union compares and hashes by (``__origin__``, ``__args__``):
    ``list[X]`` and ``typing.List[X]`` are equal when their parts are, so a capsule class
    nested in one decided a trusted cache's hit (red team 10).  None for anything else."""
    tp = type(value)
    module = _type_dict(tp).get("__module__") if isinstance(tp, type) else None
    if tp is not types.GenericAlias and tp is not types.UnionType and module != "typing":
        return None
    origin = getattr(value, "__origin__", None)
    args = getattr(value, "__args__", None)
    if type(args) is not tuple:
        args = ()
    return (origin, *args)


def _trusted_entry(entry) -> bool:
    from . import guard

    tp = type(entry)
    if tp in _C_CODE:
        return guard.trusted_c_entry(entry)  # not a C method bound to a capsule's object
    if tp is types.FunctionType:
        return entry.__builtins__ is _REAL_BUILTINS
    if tp is classmethod or tp is staticmethod:
        return _trusted_entry(entry.__func__)
    return False


def compares_in_capsule(tp: type) -> bool:
    """Whether hashing or comparing an instance of ``tp`` may run code that is not trusted."""
    for klass in _type_mro(tp):
        if not _type_flags(klass) & _HEAPTYPE:
            continue
        d = _type_dict(klass)
        for name in _COMPARE:
            entry = d.get(name)
            if entry is not None and not _trusted_entry(entry):
                return True
    return False


def capsule_keyed(value, _depth: int = 0) -> bool:
    """Whether ``value`` as a cache key would run untrusted ``__eq__``/``__hash__`` code."""
    tp = type(value)
    if tp in _EXACT:
        return False
    if tp is tuple or tp is frozenset or tp is list:
        return _depth > 20 or any(capsule_keyed(v, _depth + 1) for v in value)
    parts = _alias_parts(value)
    if parts is not None:
        return _depth > 20 or any(capsule_keyed(v, _depth + 1) for v in parts)
    return compares_in_capsule(tp)


class _Bypass:
    """``typing``'s lru_cache for one special form, skipped for capsule-compared keys."""

    __slots__ = ("_cached", "_func")

    def __init__(self, cached, func):
        self._cached = cached
        self._func = func

    def __call__(self, *args, **kwargs):
        if (
            capsule_keyed(args)
            or capsule_made(args)
            or (
                kwargs
                and (capsule_keyed(list(kwargs.values())) or capsule_made(list(kwargs.values())))
            )
        ):
            return self._func(*args, **kwargs)
        return self._cached(*args, **kwargs)

    def cache_clear(self):
        self._cached.cache_clear()

    def cache_info(self):
        return self._cached.cache_info()


def _guard_typing() -> None:
    import typing

    probe = typing._tp_cache(lambda: None)
    code = probe.__code__
    names = code.co_freevars

    def patch(fn):
        if type(fn) is not types.FunctionType or fn.__code__ is not code:
            return
        cells = dict(zip(names, fn.__closure__, strict=True))
        cached = cells["cached"].cell_contents
        if type(cached) is not _Bypass:
            cells["cached"].cell_contents = _Bypass(cached, cells["func"].cell_contents)

    for value in list(vars(typing).values()):
        patch(value)
        getitem = (
            getattr(value, "_getitem", None) if isinstance(value, typing._SpecialForm) else None
        )
        if getitem is not None:
            patch(getitem)
        if isinstance(value, type) and value.__module__ == "typing":
            for entry in list(vars(value).values()):
                patch(getattr(entry, "__func__", entry))


def install() -> None:
    """Guard the shared caches (once per process; idempotent)."""
    _guard_typing()
    _guard_native_caches()
