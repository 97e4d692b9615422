"""Results derived from a read-only library container: read-only, or the capsule's own.

A read-only proxy wraps what its target gives back read-only, because a result can share
memory with the user's object (``arr.T``, ``s.to_numpy()``).  For the library containers
(numpy arrays, pandas frames and the objects working on one) most results share nothing the
capsule could change: ``arr.copy()``, ``arr + 1``, ``df + 1``, ``df[['a']]``,
``df.groupby('g').sum()``.  Refusing to change those would break computations on local
values, so each result is judged by whether it can reach the data it was derived from --
numpy by its memory (``base`` chain), pandas by Copy-on-Write -- by the rule the library's
profile names for the source's class (``Profile.derived``, ``libraries/readonly.py``).  Not a
list of method names: the same rule for every method, attribute, item and operator.

A result that passes is *local*: its proxy holds the object itself (no read-only stand-in)
and allows assignment, deletion and in-place operators; what is read from it is judged
again with it as the source.  Local is per capability (``(object, capability)`` weakly
held), so the same object reached as the user's, or by another capsule, is protected as
before.  Nothing here makes the user's own object writable: a source's own data is reached
only through its stand-in (a read-only buffer, a lazy copy), which no rule accepts.
"""

from __future__ import annotations

import weakref

_address = object.__hash__
_type_dict = type.__dict__["__dict__"].__get__
_LIMIT = 20000

#: (address of the object, address of the capability) -> (weakref object, weakref cap).
_LOCAL: dict = {}
#: address of a class -> (class, its rule or None).
_RULES: dict = {}


def rule_for(tp):
    """The profile rule for results derived from a ``tp``, or None (cached per class)."""
    entry = _RULES.get(_address(tp))
    if entry is not None and entry[0] is tp:
        return entry[1]
    from ..libraries import derived_rule

    if len(_RULES) > _LIMIT:
        _RULES.clear()
    rule = derived_rule(tp)
    _RULES[_address(tp)] = (tp, rule)
    return rule


def is_source_type(tp) -> bool:
    """Whether results derived from a ``tp`` are judged (its methods bind in Python and
    its items leave the C fast path)."""
    rule = rule_for(tp)
    return rule is not None and getattr(rule, "judges_results", True)


def is_local(obj, cap) -> bool:
    """Whether ``obj`` is the capsule's own for capability ``cap``: a result a rule accepted,
    or an indexer (``.loc``/``.iat``) of one, which writes only the frame it indexes."""
    if not _LOCAL:
        return False
    entry = _LOCAL.get((_address(obj), _address(cap)))
    if entry is not None:
        return entry[0]() is obj and entry[1]() is cap
    if type(obj).__name__ not in _CONTAINERS and rule_for(type(obj)) is not None:
        # what an indexer, groupby or window (.obj) or numpy's flat iterator (.base) works on
        held = getattr(obj, "base" if type(obj).__name__ == "flatiter" else "obj", None)
        return held is not None and held is not obj and is_local(held, cap)
    return False


#: Source classes that hold data themselves (the others work on one they hold).
_CONTAINERS = frozenset(("ndarray", "DataFrame", "Series", "LazyFrame"))


def _mark(obj, cap) -> None:
    key = (_address(obj), _address(cap))
    if len(_LOCAL) > _LIMIT:
        for k, (o, c) in list(_LOCAL.items()):
            if o() is None or c() is None:
                _LOCAL.pop(k, None)
    try:
        _LOCAL[key] = (
            weakref.ref(obj, lambda r, key=key: _forget(key, r, 0)),
            weakref.ref(cap, lambda r, key=key: _forget(key, r, 1)),
        )
    except TypeError:  # not weakly referenceable: stays read-only
        pass


def _forget(key, ref, slot) -> None:
    entry = _LOCAL.get(key)
    if entry is not None and entry[slot] is ref:
        del _LOCAL[key]


#: address -> weakref of every read-only stand-in made (membrane/readonly.py): never local.
_stand_ins: dict = {}


def remember_stand_in(view) -> None:
    key = _address(view)
    try:
        _stand_ins[key] = weakref.ref(view, lambda r, key=key: _drop_stand_in(key, r))
    except TypeError:
        pass


def _drop_stand_in(key, ref) -> None:
    if _stand_ins.get(key) is ref:
        del _stand_ins[key]


def is_stand_in(obj) -> bool:
    """Whether ``obj`` is the read-only stand-in of some protected object."""
    ref = _stand_ins.get(_address(obj))
    return ref is not None and ref() is obj


def note(result, source, cap) -> None:
    """Judge ``result``, just derived from ``source`` through a proxy of capability ``cap``:
    mark it local when the source's rule says it cannot reach data the capsule may not
    change.  Called by the membrane for every result it wraps read-only."""
    rule = rule_for(type(source))
    if rule is None or rule_for(type(result)) is None:
        return
    if is_stand_in(result):
        return
    if rule(result, source, lambda o: is_local(o, cap)):
        _mark(result, cap)


def judge(result, source, cap):
    """:func:`note` for every result a read-only proxy of ``source`` produces, whichever
    path made it (a method, an attribute, an item, an operator, a comparison, iteration):
    the result itself and, for an exact tuple (``divmod(arr, 2)``, ``arr.nonzero()``, a
    groupby's ``(key, group)`` pairs), each of its items.  Returns whether ``result`` is an
    iterator whose items must be judged against ``source`` in turn (``for row in arr``,
    ``for key, group in df.groupby('g')``): :func:`iterating` records that for its proxy."""
    rule = rule_for(type(source))
    if rule is None:
        return False
    tp = type(result)
    if tp is tuple:
        for item in tuple.__iter__(result):
            if rule_for(type(item)) is not None and not is_stand_in(item):
                if rule(item, source, lambda o: is_local(o, cap)):
                    _mark(item, cap)
        return False
    if rule_for(tp) is not None:
        if not is_stand_in(result) and rule(result, source, lambda o: is_local(o, cap)):
            _mark(result, cap)
        return False
    # an iterator of the source's items (a plain class's own __next__, never a library
    # container: flatiter has a rule of its own)
    return _is_iterator(tp)


def _is_iterator(tp) -> bool:
    entry = _ITERATOR_TYPES.get(_address(tp))
    if entry is not None and entry[0] is tp:
        return entry[1]
    if len(_ITERATOR_TYPES) > _LIMIT:
        _ITERATOR_TYPES.clear()
    found = any("__next__" in _type_dict(klass) for klass in _type_mro(tp))
    _ITERATOR_TYPES[_address(tp)] = (tp, found)
    return found


#: address of a class -> (class, whether it defines __next__).
_ITERATOR_TYPES: dict = {}


_type_mro = type.__dict__["__mro__"].__get__

#: address of the proxy of an iterator -> (weakref of the proxy, the source its items come
#: from, weakref of the capability): the items a read-only proxy of a library container
#: hands out through an iterator are judged against that container (the iterator of
#: ``iter(arr)`` takes no weak reference, its proxy does).  The C slots ask this table.
ITERATING: dict = {}


def iterating(proxy, source, cap) -> None:
    key = _address(proxy)
    if len(ITERATING) > _LIMIT:
        for k, (p, _, c) in list(ITERATING.items()):
            if p() is None or c() is None:
                ITERATING.pop(k, None)
    try:
        ITERATING[key] = (
            weakref.ref(proxy, lambda r, key=key: _drop_iterating(key, r)),
            source,
            weakref.ref(cap),
        )
    except TypeError:
        pass


def _drop_iterating(key, ref) -> None:
    entry = ITERATING.get(key)
    if entry is not None and entry[0] is ref:
        del ITERATING[key]


def iterated_source(proxy, cap):
    """The source whose iterator ``proxy`` wraps, or None."""
    entry = ITERATING.get(_address(proxy))
    if entry is not None and entry[0]() is proxy and entry[2]() is cap:
        return entry[1]
    return None


def exported_copy(value):
    """A copy of the capsule's own library container leaving the membrane (``df['a'] *
    weights``, ``df.assign(c=np.arange(3))``, ``proxied_df[own_mask]``, ``own_series +
    proxied_series``), as a list leaves as a copy: trusted code gets data it can check and
    keep, never the capsule's object (nor a reverse proxy, which fails every library check).
    Only containers of data qualify (a numeric numpy array; a pandas frame, series or index
    of scalars with plain labels and names; a polars frame or series without ``Object``
    values): the profile's rule (``libraries/readonly.py exported_copy``).  None for
    anything else."""
    tp = type(value)
    module = type.__dict__["__module__"].__get__(tp)
    if type(module) is not str:
        return None
    package = module.partition(".")[0]
    if package != "numpy" and package != "pandas" and package != "polars":
        return None
    from ..libraries.readonly import exported_copy as copy_of

    return copy_of(value)


#: address of a proxy -> (weakref of the proxy, {attribute name: proxy of its value}): the
#: pandas indexers (``df.iat``, ``df.loc``), which pandas makes afresh on every read.  One per
#: proxy while it lives, so ``df.iat[i, 0]`` in a loop wraps nothing (an indexer has no state
#: but its name and frame).  The entry dies with the proxy.
_INDEXERS: dict = {}


def cached_indexer(proxy, name, value, make):
    """The proxy of indexer ``value`` read as ``proxy.name``: the one made before, or
    ``make(value)`` remembered."""
    key = _address(proxy)
    entry = _INDEXERS.get(key)
    if entry is not None and entry[0]() is proxy:
        known = entry[1].get(name)
        if known is not None:
            return known
    else:
        if len(_INDEXERS) > _LIMIT:
            for k, (ref, _) in list(_INDEXERS.items()):
                if ref() is None:
                    _INDEXERS.pop(k, None)
        try:
            ref = weakref.ref(proxy, lambda r, key=key: _drop_indexers(key, r))
        except TypeError:
            return make(value)
        entry = _INDEXERS[key] = (ref, {})
    wrapped = entry[1][name] = make(value)
    return wrapped


def known_indexer(proxy, name, value, target):
    """The proxy :func:`cached_indexer` made for ``proxy.name`` when ``value`` is again an
    indexer of the same class on ``target`` (pandas makes one afresh on every read), else
    None.  Only read-only sources of a profile rule have entries, so the answer is what
    the full path would give."""
    entry = _INDEXERS.get(_address(proxy))
    if entry is None or entry[0]() is not proxy:
        return None
    known = entry[1].get(name)
    if known is None:
        return None
    tp = type(value)
    if _INDEXER_TYPES.get(_address(tp)) is not tp or value.obj is not target:
        return None
    return known


def _drop_indexers(key, ref) -> None:
    entry = _INDEXERS.get(key)
    if entry is not None and entry[0] is ref:
        del _INDEXERS[key]


def is_indexer(value, target) -> bool:
    """Whether ``value`` is a pandas indexer of ``target`` (``.loc``/``.iloc``/``.at``/
    ``.iat``: pandas' own classes, exactly) working on ``target`` itself."""
    if _address(type(value)) not in _INDEXER_TYPES:
        if _INDEXER_TYPES or not _load_indexer_types():
            return False
        if _address(type(value)) not in _INDEXER_TYPES:
            return False
    return _INDEXER_TYPES[_address(type(value))] is type(value) and value.obj is target


#: address -> class: pandas' indexer classes (filled once pandas.core.indexing is loaded).
_INDEXER_TYPES: dict = {}


def _load_indexer_types() -> bool:
    import sys

    indexing = sys.modules.get("pandas.core.indexing")
    if indexing is None:
        return False
    for name in ("_LocIndexer", "_iLocIndexer", "_AtIndexer", "_iAtIndexer"):
        cls = getattr(indexing, name, None)
        if isinstance(cls, type):
            _INDEXER_TYPES[_address(cls)] = cls
    return True
