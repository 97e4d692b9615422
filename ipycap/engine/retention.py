"""Capsule builtins no code can run with any more leave the guard's table.

:func:`ipycap.engine.guard.register_builtins` holds every capsule's builtins dict and context
strongly: capsule code can run after its capsule is gone (a ``__del__``, an exported function)
and its frames must still be recognised.  In a long session that was one entry per cell, kept
forever with all its context reaches (about 30 objects the cyclic collector tracks per cell:
after 3,000 cells a full collection took 4x longer and even a plain cell cost 2x).

An entry may go when no code can ever run with its builtins again.  Code runs with a builtins
dict only through a frame or a function that holds it (CPython 3.11: ``func_builtins``, a
strong reference; a frame holds its function), or through a globals dict that holds the
builtins *module* (``exec``, ``FunctionType``), which holds the dict.  So an entry is dropped
only when every reference to the dict, to its module and to its capsule is ipycap's own
bookkeeping, counted exactly (``sys.getrefcount``): the entry, the context, the capsule the
context names.  Anything else -- a function, a generator, a namespace kept by an exported
function, a traceback's frame, a caller still holding the ``Capsule``, garbage not yet
collected -- keeps it.  The sweep runs when a new capsule registers and the table has doubled
since the last one, so its cost per capsule is constant.
"""

from __future__ import annotations

import sys

from . import guard
from .modules import _module_dict

_state = {"next": 256}


def _unreachable(d: dict, context) -> bool:
    """Whether the only references to ``d``, its module and its capsule are ipycap's own."""
    module = getattr(context, "builtins_module", None)
    expose = vars(context).get("expose") if hasattr(context, "__dict__") else None
    capsule = getattr(expose, "__self__", None)
    if (
        module is None
        or capsule is None
        or getattr(context, "builtins", None) is not d
        or getattr(capsule, "builtins", None) is not d
        or getattr(capsule, "builtins_module", None) is not module
        or getattr(capsule, "context", None) is not context
        or _module_dict(module) is not d
    ):
        return False
    # References counted below: getrefcount's own argument and this frame's name, and then
    # d: prune()'s name and the guard's entry, context.builtins, capsule.builtins, the
    # module's dict slot; module: context.builtins_module, capsule.builtins_module;
    # expose: the context's __dict__; capsule: the bound method context.expose.
    # The capsule's own namespace may hold the module (``__builtins__``) if nothing but the
    # capsule holds the namespace (a function defined there would hold it, and ``d``).
    ns = vars(capsule).get("namespace")
    in_ns = type(ns) is dict and ns.get("__builtins__") is module
    if in_ns and sys.getrefcount(ns) != 2 + 1:  # + the capsule's __dict__
        return False
    return (
        sys.getrefcount(d) == 2 + 5
        and sys.getrefcount(module) == 2 + 2 + in_ns
        and sys.getrefcount(expose) == 2 + 1
        and sys.getrefcount(capsule) == 2 + 1
    )


def prune(force: bool = False) -> int:
    """Drop the table's entries no code can use any more (see the module docstring); returns
    how many.  Without ``force`` only when the table has doubled since the last sweep."""
    table = guard._CAPSULE_BUILTINS
    if not force and len(table) < _state["next"]:
        return 0
    dropped = 0
    for key in list(table):
        entry = table.get(key)
        if entry is None:
            continue
        d, context = entry[0], entry[1]  # (dict, context, import cache)
        del entry
        if _unreachable(d, context):
            del table[key]
            dropped += 1
        del d, context
    _state["next"] = max(256, 2 * len(table))
    return dropped
