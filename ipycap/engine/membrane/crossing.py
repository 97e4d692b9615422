"""The crossing itself: the two proxy types and the two directions, ``wrap`` (trusted ->
capsule) and ``export`` (capsule -> trusted), which recurse into each other.

Inbound (trusted -> capsule): public attributes readable, calls forwarded, results wrapped,
underscore names hidden, writes refused unless granted, every operator forwarded without
handing the raw object to capsule code.  Outbound (capsule -> trusted): exact primitives and
containers of them are copied; our own proxies are unwrapped; anything else leaves as a
reverse proxy that wraps every argument trusted code passes in.  Exceptions cross scrubbed.
"""

from __future__ import annotations

import functools
import gc
import operator
import types
import weakref

from .. import guard, rules
from ..errors import CapsuleAttributeError, CapsuleTypeError
from ..values import is_fielded_type as _fielded
from ..values import is_plain as _is_plain
from ..values import is_value_type as _value_type
from ..values import plain_result as _plain_result
from . import derived as _derived
from . import readonly as _ro
from .arrays import array_method
from .authority import (
    _callback_cap,
    _check_withheld,
    _grant_hint,
    _ReadOnlyMethod,
    _recorded,
    _revoked,
)
from .scrub import scrub, scrub_outbound

_derived_rules = _derived._RULES
_SAFE_DUNDERS = frozenset({"__name__", "__qualname__", "__doc__", "__module__"})
_object_setattr = object.__setattr__
#: The object's address-derived hash: unique among live objects, and unlike id() it raises
#: no audit event, so wrapping stays cheap under the tripwire.
_identity = object.__hash__


def _slow_getattr(proxy, name):
    """Every attribute read the C fast path does not finish itself."""
    cap = _get_cap(proxy)
    if cap.revoked:
        _revoked(cap)
    if type(name) is not str:
        name = guard.exact_name(name)
    if name[:1] == "_":
        return _private_attr(proxy, name)
    try:
        value = getattr(_get_target(proxy), name)
    except BaseException as e:  # noqa: BLE001 - re-raised scrubbed below
        err = scrub(e)
    else:
        return _finish_getattr(proxy, name, value)
    raise err


def _finish_getattr(proxy, name, value):
    """The capsule-side form of a public attribute value the target gave."""
    tp = type(value)
    if _value_type(tp):
        return value
    known = _derived.known_indexer(proxy, name, value, _get_target(proxy))
    if known is not None:  # df.iat in a loop: the proxy made at the first read
        return known
    writable = _get_writable(proxy)
    # read-only: the mutating methods of standard-library containers (membrane/readonly.py)
    if (tp is types.MethodType or tp is types.BuiltinMethodType) and not writable:
        if _ro.refuses_attribute(_get_target(proxy), name, value):
            return _ReadOnlyMethod(name, type(value.__self__).__name__, _get_cap(proxy).target)
    if _derived.is_source_type(type(_get_target(proxy))):
        if not writable:
            return _derived_attribute(proxy, name, value)
        if (tp is types.MethodType or tp is types.BuiltinMethodType) and (
            value.__self__ is _get_target(proxy)
        ):
            # a writable library container: its methods' results judged as well (a copy is
            # the capsule's own; a view of the user's data stays read-only, as before)
            _check_withheld(value)
            return _bind(
                _judging_method(value, _get_target(proxy), _get_cap(proxy)), _get_cap(proxy)
            )
    if tp is types.MethodType:
        _check_withheld(value)
        return _bind(value, _get_cap(proxy))
    return wrap(value, _get_cap(proxy), writable)


def _derived_attribute(proxy, name, value):
    """An attribute of a read-only library container: its methods' results and the value
    itself judged by the profile's rule (membrane/derived.py)."""
    target, cap = _get_target(proxy), _get_cap(proxy)
    tp = type(value)
    if (tp is types.MethodType or tp is types.BuiltinMethodType) and value.__self__ is target:
        _check_withheld(value)
        return _bind(_judging_method(value, target, cap), cap)
    if _derived.is_indexer(value, target):  # df.iat / df.loc: one proxy per proxy
        return _derived.cached_indexer(proxy, name, value, lambda v: wrap(v, cap, False))
    return _judged(value, target, cap)


def _judged(result, source, cap):
    """The capsule-side form of ``result``, derived from library container ``source``
    through a proxy of ``cap``: judged by the profile's rule (membrane/derived.py ``judge``:
    the result, a tuple's items), then wrapped; an iterator's proxy is remembered so that
    the items it hands out are judged against ``source`` in turn."""
    iterator = _derived.judge(result, source, cap)
    wrapped = wrap(result, cap, False)
    if iterator and type(wrapped) is Proxy:
        _derived.iterating(wrapped, source, cap)
    return wrapped


def _judge_result(result, proxy):
    """The one hand-off of every result a proxy's own operation produces for a library
    container (comparisons, iteration, unary and binary operators, items, calls; the C slots
    of _speedups.c call this too): judged against the container, or against the container
    whose items the proxied iterator hands out."""
    cap = _get_cap(proxy)
    source = _derived.iterated_source(proxy, cap) if _derived.ITERATING else None
    if source is None:
        source = _get_target(proxy)
    return _judged(result, source, cap)


def _call_judging(method, source, cap, *args, **kwargs):
    return _judged(method(*args, **kwargs), source, cap)


def _judging_method(bound, source, cap):
    """What a proxy of library container ``source`` binds for its method ``bound``: the same
    call, its result judged (``_judged``) before the capsule gets it."""
    return functools.partial(_call_judging, bound, source, cap)


try:
    # The C fast path: target and capability live in struct fields with no descriptor.
    from .._speedups import ProxyBase as _ProxyBase
    from .._speedups import cache_get as _cache_get
    from .._speedups import cache_new as _cache_new
    from .._speedups import new_cache as _new_cache
    from .._speedups import new_method_proxy as _new_method_proxy
    from .._speedups import new_proxy as _new_proxy
    from .._speedups import proxy_cap as _get_cap
    from .._speedups import proxy_target as _get_target
    from .._speedups import proxy_writable as _get_writable
    from .._speedups import set_hooks as _set_hooks
    from .._speedups import set_judge_hook as _set_judge_hook
    from .._speedups import set_protocol_hooks as _set_protocol_hooks
    from .._speedups import set_readonly_types as _set_readonly_types

    SPEEDUPS = True
except ImportError:  # pragma: no cover - exercised when the extension is not built
    SPEEDUPS = False
    _new_method_proxy = None

    class _ProxyBase:
        """Pure-Python stand-in for ipycap._speedups.ProxyBase."""

        __slots__ = ("__ipycap_target__", "__ipycap_cap__", "__ipycap_writable__", "__weakref__")

        # __getattribute__ rather than __getattr__: on Python 3.11 a failed normal lookup
        # builds an AttributeError before __getattr__ runs, which costs more than the hop.
        def __getattribute__(self, name):
            if type(name) is str and name[:1] != "_":
                cap = _get_cap(self)
                if not cap.revoked:
                    try:
                        value = getattr(_get_target(self), name)
                    except BaseException as e:  # noqa: BLE001
                        err = scrub(e)
                    else:
                        if _value_type(type(value)):
                            return value
                        return _finish_getattr(self, name, value)
                    raise err
            return _slow_getattr(self, name)

    _get_target = _ProxyBase.__dict__["__ipycap_target__"].__get__
    _get_cap = _ProxyBase.__dict__["__ipycap_cap__"].__get__
    _get_writable = _ProxyBase.__dict__["__ipycap_writable__"].__get__
    _set_target = _ProxyBase.__dict__["__ipycap_target__"].__set__
    _set_cap = _ProxyBase.__dict__["__ipycap_cap__"].__set__
    _set_writable = _ProxyBase.__dict__["__ipycap_writable__"].__set__

    def _new_proxy(cls, target, cap, writable):
        p = object.__new__(cls)
        _set_target(p, target)
        _set_cap(p, cap)
        _set_writable(p, bool(writable))
        return p


class Proxy(_ProxyBase):
    """A capsule's view of a protected object.  Capsule code never sees the target."""

    __slots__ = ()

    def __setattr__(self, name, value):
        _check_write(self, "assign to attribute", name)
        _call(setattr, self, _get_target(self), guard.exact_name(name), export(value))

    def __delattr__(self, name):
        _check_write(self, "delete attribute", name)
        _call(delattr, self, _get_target(self), guard.exact_name(name))

    def __dir__(self):
        return sorted(n for n in dir(_get_target(self)) if n[:1] != "_")

    # -- protocols -------------------------------------------------------------------------
    def __call__(self, *args, **kwargs):
        return _call(_apply, self, _get_target(self), args, kwargs, _get_cap(self))

    def __repr__(self):
        return f"<proxy of {_call(repr, self, _get_target(self), raw=True)}>"

    def __str__(self):
        return _call(str, self, _get_target(self), raw=True)

    def __format__(self, spec):
        return _call(format, self, _get_target(self), guard.exact_name(spec), raw=True)

    def __bytes__(self):
        return _call(bytes, self, _get_target(self), raw=True)

    def __len__(self):
        return _call(len, self, _get_target(self), raw=True)

    def __bool__(self):
        return _call(bool, self, _get_target(self), raw=True)

    def __hash__(self):
        return _call(hash, self, _get_target(self), raw=True)

    def __iter__(self):
        return _call(iter, self, _get_target(self))

    def __next__(self):
        return _call(next, self, _get_target(self))

    def __reversed__(self):
        return _call(reversed, self, _get_target(self))

    def __contains__(self, item):
        return _call(operator.contains, self, _get_target(self), export(item), raw=True)

    def __getitem__(self, key):
        if not _get_writable(self):
            return _getitem_read_only(self, key)
        return _call(operator.getitem, self, _get_target(self), export(key))

    def __setitem__(self, key, value):
        _check_write(self, "assign to item", repr(key))
        _call(operator.setitem, self, _get_target(self), export(key), export(value))

    def __delitem__(self, key):
        _check_write(self, "delete item", repr(key))
        _call(operator.delitem, self, _get_target(self), export(key))

    def __enter__(self):
        return _call(lambda t: t.__enter__(), self, _get_target(self))

    def __exit__(self, tp, value, tb):
        # The capsule's exception never reaches trusted code: only its type's message.
        return _call(lambda t: t.__exit__(None, None, None), self, _get_target(self))

    def __instancecheck__(self, instance):
        return _call(isinstance, self, unwrap(instance), _get_target(self), raw=True)

    def __subclasscheck__(self, cls):
        return _call(issubclass, self, unwrap(cls), _get_target(self), raw=True)

    def __mro_entries__(self, bases):
        raise CapsuleTypeError(
            "a proxy can never be a base class",
            "membrane",
            hint="define your own class, or use the object through its methods",
        )

    def __index__(self):
        return _call(operator.index, self, _get_target(self), raw=True)

    def __int__(self):
        return _call(int, self, _get_target(self), raw=True)

    def __float__(self):
        return _call(float, self, _get_target(self), raw=True)

    def __complex__(self):
        return _call(complex, self, _get_target(self), raw=True)

    def __round__(self, n=None):
        # ndigits crosses like every other operand: a capsule object would reach the
        # target's __round__ raw (and its __eq__ could be handed trusted values).
        return _call(round, self, _get_target(self), None if n is None else export(n))

    # pickling and copying never reach the slots
    def __reduce_ex__(self, protocol):
        raise CapsuleTypeError("proxies cannot be pickled or copied", "membrane")

    __reduce__ = __reduce_ex__

    def __copy__(self):
        return self

    def __deepcopy__(self, memo):
        return self

    def __init_subclass__(cls, **kwargs):
        raise CapsuleTypeError("a proxy can never be a base class", "membrane")


def _getitem_read_only(proxy, key):
    """``proxy[key]`` on a read-only proxy (the C slot asks for dict subclasses only): a
    defaultdict's missing key is refused, since its factory would insert it."""
    target = _get_target(proxy)
    key = export(key)
    if _ro.inserts_on_missing(type(target)) and not _call(
        operator.contains, proxy, target, key, raw=True
    ):
        raise _recorded(_get_cap(proxy), _ro.missing_key_refusal(_get_cap(proxy).target))
    return _call(operator.getitem, proxy, target, key)


def _make_binary(op, dunder, reflected):
    """One half of a binary operator, as Python itself splits it: the target's own method
    first; NotImplemented lets Python try the other operand's reflected method, which then
    receives this proxy, never the raw target.  Only when the other operand is trusted data
    (not a capsule object) may the full operator run on both raw values."""

    def method(self, other):
        target = _get_target(self)
        o = export(other)
        impl = getattr(type(target), dunder, None)
        if impl is not None:
            result = _call(impl, self, target, o)
            if result is not NotImplemented:
                return result
        if type(o) is ReverseProxy:
            return NotImplemented
        if reflected:
            return _call(lambda t, x: op(x, t), self, target, o)
        return _call(op, self, target, o)

    return method


def _make_inplace(name):
    def method(self, other):
        _check_write(self, "use an in-place operator", name)
        op = getattr(operator, name.strip("_"))
        return _call(op, self, _get_target(self), export(other))

    return method


def _make_unary(op):
    def method(self):
        return _call(op, self, _get_target(self))

    return method


_BINARY = {
    "add": operator.add,
    "sub": operator.sub,
    "mul": operator.mul,
    "matmul": operator.matmul,
    "truediv": operator.truediv,
    "floordiv": operator.floordiv,
    "mod": operator.mod,
    "pow": operator.pow,
    "lshift": operator.lshift,
    "rshift": operator.rshift,
    "and": operator.and_,
    "xor": operator.xor,
    "or": operator.or_,
    "divmod": divmod,
}
for _n, _op in _BINARY.items():
    setattr(Proxy, f"__{_n}__", _make_binary(_op, f"__{_n}__", False))
    setattr(Proxy, f"__r{_n}__", _make_binary(_op, f"__r{_n}__", True))
    if _n != "divmod":
        setattr(Proxy, f"__i{_n}__", _make_inplace(f"__i{_n.rstrip('_')}__"))
for _n, _op in {
    "lt": operator.lt,
    "le": operator.le,
    "gt": operator.gt,
    "ge": operator.ge,
    "eq": operator.eq,
    "ne": operator.ne,
}.items():
    setattr(Proxy, f"__{_n}__", _make_binary(_op, f"__{_n}__", False))
for _n, _op in {
    "neg": operator.neg,
    "pos": operator.pos,
    "abs": operator.abs,
    "invert": operator.invert,
}.items():
    setattr(Proxy, f"__{_n}__", _make_unary(_op))
for _n in ("trunc", "floor", "ceil"):
    setattr(Proxy, f"__{_n}__", _make_unary(getattr(__import__("math"), _n)))

#: With the C extension these protocols are ProxyBase's slots (ipycap/engine/_speedups.c),
#: which make the same decisions as the Python methods above without the Python frames:
#: the capability checked, operands exported, results wrapped, exceptions scrubbed.
_C_PROTOCOL = frozenset(
    "__call__ __len__ __bool__ __hash__ __iter__ __next__ __contains__ __getitem__ "
    "__eq__ __ne__ __lt__ __le__ __gt__ __ge__".split()
)
if SPEEDUPS:
    for _n in _C_PROTOCOL:
        delattr(Proxy, _n)

_proxy_attribute = object.__getattribute__
_PROXY_METHODS = frozenset(n for n in vars(Proxy) if rules.is_dunder(n)) | _C_PROTOCOL


def _private_attr(proxy, name):
    """Underscore names asked of a proxy by trusted C code (isinstance, copy, pickle...)."""
    if name == "__class__":
        # Native isinstance() sees builtin classes as they are; any other class stays
        # proxied, since C code (ABCMeta.__instancecheck__) hands __class__ to capsule hooks.
        return class_for_capsule(_get_target(proxy), _get_cap(proxy))
    if name in _PROXY_METHODS and name in rules.PROTOCOL:
        return _proxy_attribute(proxy, name)
    if name == "__array__":  # numpy converting a protected object: a copy (membrane/arrays.py)
        return array_method(_get_target(proxy), _get_cap(proxy), wrap)
    if name in _PRIORITIES:
        return _priority(proxy, name)
    raise _recorded(
        _get_cap(proxy),
        CapsuleAttributeError(
            f"{name!r} is private state of the protected object",
            "membrane",
            hint="private attributes of protected objects are never visible; use its public "
            "methods",
        ),
    )


#: The operator priorities numpy and pandas ask of an operand (``np.arange(3) + s``,
#: ``own_series + s``): a proxy of an object whose class names one answers above every
#: library object, so the library defers to the proxy, whose operator then runs on the
#: trusted side with the capsule's operand exported as a copy (derived.exported_copy), as
#: the library computes it for two objects of its own (index alignment, broadcasting).
_PRIORITIES = {"__array_priority__": 1e9, "__pandas_priority__": 10**9}


def _priority(proxy, name):
    """The priority ``name`` a proxy answers: above every library's own when its target is
    a library container (a profile's derived-rule class: numpy, pandas, polars) or its class
    defines one (read from the class dicts: data only, no code runs), else the
    AttributeError an object without one raises."""
    tp = type(_get_target(proxy))
    if _derived.rule_for(tp) is not None:
        return _PRIORITIES[name]
    for klass in type.__dict__["__mro__"].__get__(tp):
        value = type.__dict__["__dict__"].__get__(klass).get(name)
        if value is not None:
            if type(value) in (int, float):
                return _PRIORITIES[name]
            break
    raise CapsuleAttributeError(f"{name!r} is not defined by the protected object", "membrane")


def _bind(method, cap):
    """A proxied bound method.  With the C extension, a MethodProxy whose method and
    capability live in C fields; without it, a closure (whose cells a library's getattr of
    ``__closure__`` could read: SECURITY.md says the extension is needed for that)."""
    if _new_method_proxy is not None:
        return _new_method_proxy(method, cap, _cache_for(cap))
    return _bind_closure(method, cap)


def _bind_closure(method, cap):

    def proxied_method(*args, **kwargs):
        if cap.revoked:
            _revoked(cap)
        try:
            if kwargs:
                result = method(
                    *[export(a) for a in args],
                    **{guard.exact_name(k): export(v) for k, v in kwargs.items()},
                )
            elif args:
                result = method(*[export(a) for a in args])
            else:
                result = method()
        except BaseException as e:  # noqa: BLE001
            err = scrub(e)
        else:
            if _value_type(type(result)):
                return result
            return wrap(result, cap)
        raise err

    return proxied_method


# -- crossing in ---------------------------------------------------------------------------
def _module_view(module):
    """A module crossing in: its capsule view, or refused (the modules layer decides; it sits
    above this one, so it hands its rule over through ``guard.MODULE_VIEW``)."""
    view = guard.MODULE_VIEW[0]
    if view is None:  # pragma: no cover - the modules layer loads with the engine
        raise CapsuleTypeError("a module crosses into a capsule only as its view", "membrane")
    return view(module, module.__name__)


def wrap(value, cap, writable: bool = False, *, handed: bool = False):
    """The capsule-side form of a trusted ``value`` derived from capability ``cap``;
    ``handed``: ``value`` is the capability's own target, named by the user (a bound method
    handed in is callable, membrane/readonly.py ``refuses_handed``)."""
    tp = type(value)
    if _value_type(tp):
        return value
    if tp is Proxy or tp is _ReadOnlyMethod:
        return value
    if tp is ReverseProxy:
        return _rp_target(value)  # the capsule's own object, coming home
    if (tp is tuple or tp is frozenset or _fielded(tp)) and _is_plain(value):
        return value
    if tp is slice:  # its fields cross like any other value
        return slice(wrap(value.start, cap), wrap(value.stop, cap), wrap(value.step, cap))
    if tp is types.ModuleType:
        return _module_view(value)
    target = value
    if not writable:  # read-only: mutators refused, library containers immutable (readonly.py)
        if tp in _ro.CALLABLE_TYPES and (
            _ro.refuses_handed(value) if handed else _ro.refuses_callable(value)
        ):
            return _ro.refused_callable(value, cap.target)
        entry = _derived_rules.get(_identity(tp))
        if entry is not None and entry[0] is tp and entry[1] is None:
            target = _ro.readonly_target(value, cap)  # no library rule: the common case
        else:
            # a result the capsule owns (membrane/derived.py) is held as it is
            local = _derived.is_local(value, cap)
            target = value if local else _ro.readonly_target(value, cap)
            if _ro.FAST_TYPES.get(type(target)) is None:
                _ro.fast_path_ok(type(target))  # the C paths learn which types Python judges
    elif _ro.FAST_TYPES.get(tp) is None and _derived.rule_for(tp) is not None:
        _ro.fast_path_ok(tp)  # a writable library container: its slots' results judged too
    if SPEEDUPS:
        # The C identity cache (one proxy per object per capability while it lives): the
        # proxy takes itself out when it dies, so a hit is always the live proxy of value.
        # Keyed by the target: a read-only stand-in is one per object per capability.
        cache = _cache_for(cap)
        p = _cache_get(cache, target, writable)
        if p is not None:
            return p
        _check_withheld(value)
        # bound methods are fresh objects each time: not worth caching
        store = tp is not types.MethodType and tp is not types.BuiltinMethodType
        return _cache_new(cache, target, cap, writable, store)
    cache = _CACHES.get(cap)
    if cache is None:
        # Weak values: a proxy lives as long as capsule code holds it, so fresh results of
        # calls in a loop do not pile up (the target check below rules out reused ids).
        cache = _CACHES[cap] = weakref.WeakValueDictionary()
    key = (_identity(value), writable)
    p = cache.get(key)
    if p is not None and _get_target(p) is target:
        return p
    _check_withheld(value)
    p = _new_proxy(Proxy, target, cap, writable)
    if tp is not types.MethodType and tp is not types.BuiltinMethodType:
        cache[key] = p  # bound methods are fresh objects each time: not worth caching
    return p


#: One identity cache per capability: target -> its live proxy, so identity and creation
#: cost stay sane while the capsule holds a proxy.  With the C extension an IdentityCache
#: (borrowed slots, about 17 bytes per live proxy), else a WeakValueDictionary.
_CACHES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _cache_for(cap):
    cache = _CACHES.get(cap)
    if cache is None:
        cache = _CACHES[cap] = _new_cache()
    return cache


def class_for_capsule(target, cap):
    """What ``type(p)`` / ``p.__class__`` give for a proxy: builtin and standard-library
    classes as they are (``type(x) is list`` keeps working), others proxied."""
    cls = type(target)
    if (cls.__module__ == "builtins" and cls.__flags__ & (1 << 9) == 0) or guard._is_stdlib_class(
        cls
    ):
        # Builtin and standard-library classes are no secret (the capsule can import them)
        # and are frozen before they are shared; user classes stay proxied.
        return guard.share_class(cls)
    return wrap(cls, cap)


def unwrap(value):
    """The trusted form of a capsule value for trusted code (same as ``export``)."""
    return export(value)


def target_of(proxy: Proxy):
    """For trusted code (the explorer, the IPython glue): the object behind a proxy."""
    return _get_target(proxy)


def capability_of(proxy: Proxy):
    return _get_cap(proxy)


def _check_write(proxy, what, name):
    cap = _get_cap(proxy)
    if cap.revoked:
        _revoked(cap)
    if not _get_writable(proxy) and not _derived.is_local(_get_target(proxy), cap):
        raise _recorded(
            cap,
            CapsuleTypeError(
                f"cannot {what} {name!r}: '{cap.target}' is read-only in this capsule",
                "membrane",
                _grant_hint("writable", cap.target),
            ),
        )
    if isinstance(name, str) and name[:1] == "_" and what.endswith("attribute"):
        raise _recorded(
            cap,
            CapsuleAttributeError(
                f"{name!r} is private state of the protected object", "membrane", None
            ),
        )


def _apply(fn, args, kwargs, cap=None):
    """Call trusted ``fn`` with capsule arguments exported; callbacks among them wrap what
    trusted code later passes in with ``cap`` (so revoking it reaches them too)."""
    return fn(
        *[export(a, cap) for a in args],
        **{guard.exact_name(k): export(v, cap) for k, v in kwargs.items()},
    )


def _call(fn, proxy, *args, raw=False):
    """Run ``fn(*args)`` for a proxy; wrap the result and scrub any exception."""
    cap = _get_cap(proxy)
    if cap.revoked:
        _revoked(cap)
    try:
        result = fn(*args)
    except BaseException as e:  # noqa: BLE001
        err = scrub(e)
    else:
        if raw:
            return _plain_result(result)
        return _judge_result(result, proxy)  # arr + 1, -arr, df[['a']], divmod(arr, 2)
    raise err  # outside the except block, so __context__ stays empty


# -- crossing out ----------------------------------------------------------------------------
class ReverseProxy:
    """Trusted code's view of a capsule object: every argument it passes in is wrapped."""

    __slots__ = ("__ipycap_target__", "__ipycap_cap__", "__weakref__")

    def __getattr__(self, name):
        return _out(getattr, self, guard.exact_name(name))

    def __call__(self, *args, **kwargs):
        cap = _rp_cap(self)
        w = [wrap(a, cap) for a in args]
        kw = {guard.exact_name(k): wrap(v, cap) for k, v in kwargs.items()}
        return _out(lambda t: t(*w, **kw), self)

    def __repr__(self):
        return _out(repr, self, plain=True)

    def __str__(self):
        return _out(str, self, plain=True)

    def __len__(self):
        return _out(len, self, plain=True)

    def __bool__(self):
        return _out(bool, self, plain=True)

    def __hash__(self):
        return _out(hash, self, plain=True)

    def __iter__(self):
        return _out(iter, self)

    def __next__(self):
        return _out(next, self)

    def __eq__(self, other):
        o = _compare_operand(self, other)
        if o is NotImplemented:
            return o
        return _out(lambda t: t == o, self)

    def __ne__(self, other):
        o = _compare_operand(self, other)
        if o is NotImplemented:
            return o
        return _out(lambda t: t != o, self)

    def __lt__(self, other):
        o = _compare_operand(self, other)
        if o is NotImplemented:
            return o
        return _out(lambda t: t < o, self)

    def __gt__(self, other):
        o = _compare_operand(self, other)
        if o is NotImplemented:
            return o
        return _out(lambda t: t > o, self)

    def __getitem__(self, key):
        k = wrap(key, _rp_cap(self))
        return _out(lambda t: t[k], self)

    def __contains__(self, item):
        i = _compare_operand(self, item)
        if i is NotImplemented:  # a raw trusted value would reach the capsule's __contains__
            raise TypeError("a capsule object cannot be searched for a trusted value")
        return _out(lambda t: i in t, self, plain=True)

    def __reduce_ex__(self, protocol):
        raise TypeError("capsule objects cannot be pickled")

    def _repr_pretty_(self, p, cycle):
        # IPython's pretty printer (trusted code showing an exported capsule object later)
        # hands its real printer here; the capsule gets none of it, only its repr is asked.
        p.text(_out(repr, self, plain=True))


def _make_out_binary(op, reflected):
    if reflected:

        def method(self, other):
            o = _compare_operand(self, other)  # never a raw trusted value (self._token + x)
            if o is NotImplemented:
                return o
            return _out(lambda t: op(o, t), self)

    else:

        def method(self, other):
            o = _compare_operand(self, other)
            if o is NotImplemented:
                return o
            return _out(lambda t: op(t, o), self)

    return method


for _n, _op in _BINARY.items():
    setattr(ReverseProxy, f"__{_n}__", _make_out_binary(_op, False))
    setattr(ReverseProxy, f"__r{_n}__", _make_out_binary(_op, True))


def _compare_operand(rp, other):
    """What a capsule comparison method may receive from trusted code: a proxy or a capsule
    object, never a raw value.  Comparisons run implicitly (``in``, dict lookups,
    ``guess == self._token``), so a capsule ``__eq__`` would otherwise be handed private
    data; NotImplemented lets Python fall back to identity instead."""
    o = wrap(other, _rp_cap(rp))
    if o is other and type(o) is not Proxy:
        return NotImplemented
    return o


for _n, _op in {"le": operator.le, "ge": operator.ge}.items():
    setattr(ReverseProxy, f"__{_n}__", _make_out_binary(_op, False))

_rp_target = ReverseProxy.__dict__["__ipycap_target__"].__get__
_rp_cap = ReverseProxy.__dict__["__ipycap_cap__"].__get__
_rp_set_target = ReverseProxy.__dict__["__ipycap_target__"].__set__
_rp_set_cap = ReverseProxy.__dict__["__ipycap_cap__"].__set__


def _out(fn, rp, *args, plain=False):
    try:
        result = fn(_rp_target(rp), *args)
    except BaseException as e:  # noqa: BLE001
        err = scrub_outbound(e)
    else:
        return _plain_result(result) if plain else export(result, _rp_cap(rp))
    raise err


def export(value, cap=None, _depth=0):
    """The trusted-side form of a capsule ``value`` (arguments, exports, results)."""
    tp = type(value)
    if _value_type(tp):
        return value
    if tp is Proxy:
        return _get_target(value)
    if tp is ReverseProxy:
        return value
    if tp is tuple and _is_plain(value):  # exact primitives all the way down (df.iat[i, 0])
        return value
    if _depth > 50:
        raise CapsuleTypeError("value nested too deeply to leave the capsule", "membrane")
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, (str, bytes, int, float, complex)) and not guard.is_own(value):
        return _plain_result(value)
    if isinstance(value, str):
        return "".join([value])
    if isinstance(value, bytes):
        return bytes(memoryview(value))
    if isinstance(value, int):
        return int.__add__(value, 0)
    if isinstance(value, float):
        return float.__add__(value, 0.0)
    if tp is tuple:
        return tuple(export(v, cap, _depth + 1) for v in tuple.__iter__(value))
    if tp is list:
        return [export(v, cap, _depth + 1) for v in list.__iter__(value)]
    if tp is dict:
        return {
            export(k, cap, _depth + 1): export(v, cap, _depth + 1) for k, v in dict.items(value)
        }
    if tp is set:
        return {export(v, cap, _depth + 1) for v in set.__iter__(value)}
    if tp is frozenset:
        return frozenset(export(v, cap, _depth + 1) for v in frozenset.__iter__(value))
    if _fielded(tp) and _is_plain(value):
        return value
    if tp is slice:  # a capsule object in a field leaves as a reverse proxy, like any other
        return slice(
            export(value.start, cap, _depth + 1),
            export(value.stop, cap, _depth + 1),
            export(value.step, cap, _depth + 1),
        )
    copied = _derived.exported_copy(value)
    if copied is not None:
        return copied
    rp = ReverseProxy.__new__(ReverseProxy)
    _rp_set_target(rp, value)
    _rp_set_cap(rp, cap if cap is not None else _callback_cap())
    return rp


# -- the guard's decision for proxies --------------------------------------------------------
def _proxy_getattr(proxy, name):
    cap = _get_cap(proxy)
    if cap.revoked:
        _revoked(cap)
    target = _get_target(proxy)
    if name == "__class__":
        return class_for_capsule(target, cap)
    if name in _SAFE_DUNDERS:
        value = _call(getattr, proxy, target, name, None, raw=True)
        return value if _is_plain(value) else None
    if name == "__dir__":
        return proxy.__dir__
    if name in rules.FORMAT_ATTRS:
        return guard._format_attr(target, name) if isinstance(target, str) else getattr(proxy, name)
    if name in rules.PROTOCOL and hasattr(type(proxy), name):
        return getattr(proxy, name)
    raise CapsuleAttributeError(
        f"{name!r} of a protected {type(target).__name__} is hidden by its proxy",
        "membrane",
        hint="proxies never reveal the internals of protected objects; "
        "%capsule explain NAME shows what is visible",
    )


guard.PROXY_TYPES[Proxy] = _proxy_getattr


def _call_method(method, cap, args, kwargs):
    """A proxied method call the C fast path does not finish: export, call, wrap, scrub."""
    if cap.revoked:
        _revoked(cap)
    try:
        result = _apply(method, args, kwargs or {}, cap)
    except BaseException as e:  # noqa: BLE001
        err = scrub(e)
    else:
        return wrap(result, cap)
    raise err


if SPEEDUPS:
    from .._speedups import MethodProxy, method_cache_clear

    # The C method cache (proxies of d.get, l.index, ... per container proxy) is emptied as
    # each collection starts, so a cycle through a cached method is collected as before.
    gc.callbacks.append(method_cache_clear)

    guard.PROXY_TYPES[MethodProxy] = lambda m, name: guard.refuse(
        m, name, "a proxied method reveals nothing of the method behind it"
    )
    _set_hooks(_slow_getattr, _finish_getattr, scrub, _call_method, wrap)
    _set_readonly_types(_ro.FAST_TYPES, _getitem_read_only)
    _set_judge_hook(_judge_result, _derived.ITERATING)
    #: Classes wrap() only proxies and caches (no value type, no withheld owner, no module):
    #: the C slots wrap their instances themselves.  The extension accepts only static
    #: builtin classes here.
    _FAST_TYPES = (
        list,
        dict,
        set,
        bytearray,
        type(iter([])),
        type(reversed([])),
        type(iter(())),
        type(iter(set())),
        type(iter({})),
        type(iter({}.values())),
        type(iter({}.items())),
        type(reversed({})),
        type(reversed({}.values())),
        type(reversed({}.items())),
        type({}.keys()),
        type({}.values()),
        type({}.items()),
        type(iter(range(0))),
        type(iter("")),
        type(iter("é")),
        type(iter(b"")),
        type(iter(bytearray())),
    )
    from ..registry import Capability

    # Capability: its ``revoked`` slot is read in C while the class is unchanged.
    _set_protocol_hooks(
        wrap, export, _revoked, Proxy, ReverseProxy, _ro.EXACT_MUTATORS, _FAST_TYPES, Capability
    )
