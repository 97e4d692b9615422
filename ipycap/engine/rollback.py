"""A failed cell binds nothing: rollback of a persistent capsule namespace (the capsule kernel).

In the capsule kernel every cell runs in one session namespace.  A cell that fails -- an error,
its time or memory limit, an interrupt -- must leave that namespace exactly as it was: names
it bound removed, names it rebound or deleted put back (objects it changed in place stay
changed, as in any Python session).  A ``%%capsule`` cell in the extension needs none of this:
it runs in a fresh namespace and binds user names only when it succeeds.

Copy-on-write, not a copy of the namespace: only the names a cell *can* bind are recorded,
with their values before the cell, and only when the code that can bind them is about to
run.  What can write a namespace's names is known from the bytecode of the code objects that
run with it as globals (gate-compiled capsule code, :func:`code_writes`):

* the cell's own module-level ``STORE_NAME``/``DELETE_NAME`` (assignments, ``def``, ``class``,
  ``import``, ``for``/``with``/``except ... as`` targets, ``match`` captures, a docstring),
  ``SETUP_ANNOTATIONS`` (``__annotations__``, whose content is saved too) and ``import *``
  (any name: the whole namespace is saved, once);
* ``STORE_GLOBAL``/``DELETE_GLOBAL`` of any function, lambda, comprehension (a ``:=`` in it)
  or class body nested in code that ran in this namespace -- kept for the namespace's later
  cells too, since a function defined in one cell can assign a global in another;
* code the capsule's ``exec``/``eval`` run in this namespace during the cell
  (:func:`note_exec`, called by ``codeexec`` before it runs the code).

Capsule code cannot reach the namespace dict any other way (``globals()`` is read-only,
``__globals__`` and frames' ``f_globals`` are refused by the guard).

Freeing is the other half.  The values a rollback displaces (what the failed cell bound) and
the values a successful cell displaced (kept alive by the record until the cell ended) may be
deep structures, whose freeing recurses in C as deep as using them, and their finalizers are
capsule code: they are freed on a capsule thread (its large stack) under the cell's limits
(:func:`ipycap.engine.limits.run_after`), never on the main thread.  Flat values (numbers,
strings, small builtin containers of them) are dropped at once.  The namespace itself is
restored by trusted code holding a reference to every value it takes out, so no capsule code
runs while it changes.
"""

from __future__ import annotations

import dis
import weakref

from . import limits

#: A name that was not bound before the cell.
MISSING = object()

_STORE_NAME = frozenset({dis.opmap["STORE_NAME"], dis.opmap["DELETE_NAME"]})
_STORE_GLOBAL = frozenset({dis.opmap["STORE_GLOBAL"], dis.opmap["DELETE_GLOBAL"]})
_IMPORT_STAR = dis.opmap["IMPORT_STAR"]
_SETUP_ANNOTATIONS = dis.opmap["SETUP_ANNOTATIONS"]
_EXTENDED_ARG = dis.EXTENDED_ARG
_CODE = type(compile("", "", "exec"))

#: address of a code object -> (a weak reference to it, what code_writes found).  By address:
#: hashing a code object hashes its whole bytecode.
_WRITES: dict = {}
_address = object.__hash__  # id() raises an audit event (the tripwire's hook); this does not


def _scan(code) -> tuple[set, set, bool]:
    """(own-level names, global names, import *) of one code object, from its bytecode."""
    own, glob, star = set(), set(), False
    names = code.co_names
    raw = code.co_code
    arg = 0
    for i in range(0, len(raw), 2):
        op = raw[i]
        if op == _EXTENDED_ARG:
            arg = (arg | raw[i + 1]) << 8
            continue
        oparg = arg | raw[i + 1]
        arg = 0
        if op in _STORE_NAME:
            own.add(names[oparg])
        elif op in _STORE_GLOBAL:
            glob.add(names[oparg])
        elif op == _IMPORT_STAR:
            star = True
        elif op == _SETUP_ANNOTATIONS:
            own.add("__annotations__")
    return own, glob, star


def code_writes(code) -> tuple[frozenset, frozenset, bool]:
    """``(names, global_names, star)``: what running ``code`` as module-level code may bind or
    delete in its namespace -- ``names`` at its own level, ``global_names`` from it and every
    code object nested in it, and whether it has an ``import *`` (any name)."""
    entry = _WRITES.get(_address(code))
    if entry is not None and entry[0]() is code:
        return entry[1]
    own, glob, star = _scan(code)
    stack = [k for k in code.co_consts if type(k) is _CODE]
    while stack:
        nested = stack.pop()
        _, g, _ = _scan(nested)
        glob |= g
        stack.extend(k for k in nested.co_consts if type(k) is _CODE)
    cached = (frozenset(own), frozenset(glob), star)
    key = _address(code)
    _WRITES[key] = (weakref.ref(code, lambda ref, key=key: _forget(key, ref)), cached)
    return cached


def _forget(key, ref) -> None:
    entry = _WRITES.get(key)
    if entry is not None and entry[0] is ref:
        del _WRITES[key]


#: address of a namespace -> the journal recording it (while a cell of it runs).
_ACTIVE: dict[int, Journal] = {}


def note_exec(code, *namespaces) -> None:
    """(``codeexec``) ``code`` is about to run with these globals/locals: a journal recording
    one of them records the names it can bind first."""
    if not _ACTIVE:
        return
    for ns in namespaces:
        journal = _ACTIVE.get(_address(ns))
        if journal is not None and journal.ns is ns:
            journal.note(code)


def note_run(ns, body, tail) -> None:
    """(``Capsule.run``) a cell's body and last expression are about to run in ``ns``."""
    journal = _ACTIVE.get(_address(ns))
    if journal is not None and journal.ns is ns:
        journal.note(body, tail)


class Journal:
    """The record of one namespace across its cells: ``begin()`` before a cell, ``note(code)``
    before each piece of code runs in it, then ``commit()`` or ``roll_back()``."""

    def __init__(self, ns: dict, context):
        self.ns = ns
        self.context = context
        #: Global names any code that ran in this namespace may assign (kept across cells).
        self.global_writes: set = set()
        self.saved: dict | None = None
        self.annotations = None  # (the __annotations__ dict, a copy of its content)
        self.whole = False

    @property
    def recording(self) -> bool:
        return self.saved is not None

    def begin(self) -> None:
        ns, get = self.ns, dict.get
        if self.global_writes:
            self.saved = {name: get(ns, name, MISSING) for name in self.global_writes}
        else:
            self.saved = {}
        self.annotations = None
        self.whole = False
        _ACTIVE[_address(ns)] = self

    def note(self, *codes) -> None:
        """Record the names ``codes`` can bind, with their values now (the first value
        recorded for a name is the one from before the cell)."""
        saved = self.saved
        if saved is None:
            return
        ns, get = self.ns, dict.get
        for code in codes:
            if code is None:
                continue
            names, glob, star = code_writes(code)
            if glob:
                self.global_writes |= glob
                for name in glob:
                    if name not in saved:
                        saved[name] = get(ns, name, MISSING)
            if star:
                self._save_whole()
            for name in names:
                if name not in saved:
                    saved[name] = get(ns, name, MISSING)
                    if name == "__annotations__":
                        self._save_annotations()

    def _save_whole(self) -> None:
        if not self.whole:
            # Marked whole only once every name is saved: a stop landing in the middle
            # (the code then never runs) must not make the rollback delete unsaved names.
            saved = self.saved
            for name, value in dict.items(dict.copy(self.ns)):
                if name not in saved:
                    saved[name] = value
                    if name == "__annotations__":
                        self._save_annotations()
            self.whole = True

    def _save_annotations(self) -> None:
        ann = self.saved["__annotations__"]
        if type(ann) is dict and self.annotations is None:
            self.annotations = (ann, dict.copy(ann))

    def end(self) -> None:
        key = _address(self.ns)
        if _ACTIVE.get(key) is self:
            del _ACTIVE[key]
        self.saved = None
        self.annotations = None

    def commit(self) -> None:
        """The cell succeeded: the values it displaced are freed (on a capsule thread when
        they are not flat)."""
        saved, ns, get = self.saved, self.ns, dict.get
        garbage = []
        if saved:
            for name, old in dict.items(saved):
                if old is not MISSING and get(ns, name, MISSING) is not old:
                    garbage.append(old)
            saved.clear()
        old = None  # the last value looked at is held by the garbage list only
        self.end()
        if garbage or _DEFERRED:
            release(garbage, self.context)

    def roll_back(self) -> None:
        """The cell failed: every name it bound, rebound or deleted is as before the cell."""
        saved, ns, get = self.saved, self.ns, dict.get
        garbage = []
        if saved is not None:
            if self.whole:  # after an ``import *``: names not saved were bound by the cell
                for name in [n for n in dict.keys(ns) if n not in saved]:
                    garbage.append(dict.pop(ns, name))
            for name, old in dict.items(saved):
                now = get(ns, name, MISSING)
                if now is old:
                    continue
                if now is not MISSING:
                    garbage.append(now)  # held, so the change below frees nothing here
                if old is MISSING:
                    dict.__delitem__(ns, name)
                else:
                    dict.__setitem__(ns, name, old)
            if self.annotations is not None:
                ann, content = self.annotations
                garbage.extend(dict.values(ann))
                dict.clear(ann)
                dict.update(ann, content)
            saved.clear()
        old = now = None  # the last values looked at are held by the garbage list only
        self.end()
        if garbage or _DEFERRED:
            release(garbage, self.context)


def release(values: list, context) -> None:
    """Free ``values`` (taking the caller's list): flat ones here, the rest on a capsule
    thread under the last cell's limits; a limit hit or an interrupt while freeing ends the
    freeing, never the caller."""
    if not _DEFERRED and all(_flat(v) for v in values):
        values.clear()
        return
    box = [values[:], *_DEFERRED]
    values.clear()
    _DEFERRED.clear()

    def free():
        box.clear()

    try:
        limits.run_after(free, context)
    except BaseException as e:  # noqa: BLE001 - freeing must not change a cell's outcome
        try:
            context.registry.note(
                "limit",
                kind="limits",
                target="release",
                detail=f"freeing a cell's values stopped ({type(e).__name__})",
            )
        except Exception:  # noqa: BLE001, S110 - a note is best effort
            pass
    finally:
        _DEFERRED.extend(box)  # not freed (the capsule thread never ran): the next release


_CONTAINERS = frozenset({list, tuple, set, frozenset})
_SMALL = 256


def _flat(value) -> bool:
    """Whether freeing ``value`` runs no capsule code and cannot recurse: a number, a string,
    or a small builtin container of those (exact types only: a subclass may have __del__)."""
    flat = limits._FLAT
    tp = type(value)
    if tp in flat:
        return True
    if tp in _CONTAINERS:
        return len(value) <= _SMALL and all(type(v) in flat for v in value)
    if tp is dict:
        return len(value) <= _SMALL and all(
            type(k) in flat and type(v) in flat for k, v in dict.items(value)
        )
    return False


#: Values a release could not hand to a capsule thread, freed by the next one.
_DEFERRED: list = []
