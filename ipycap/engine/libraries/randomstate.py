"""numpy's legacy global random state, per capsule (as the standard library's ``random`` is).

``np.random.seed(0)``, ``np.random.rand()`` and the other legacy module functions draw from
one ``RandomState`` shared by the whole process: a capsule seeding it would choose the
numbers trusted code draws next, and a capsule drawing from it would see (and move) the
stream trusted code uses (I3).  In a capsule these names are the methods of the capsule's
own ``RandomState`` (fresh entropy when the capsule first uses one, kept across its cells),
so ``np.random.seed(0); np.random.rand()`` is reproducible inside the capsule and never
touches trusted code's stream.  Functions handing out the global state itself for "no seed"
(``sklearn.utils.check_random_state(None)``, pandas' ``random_state(None)``) hand out the
capsule's.  What stays shared: library code that draws from numpy's global state on its own
(an estimator given ``random_state=None`` draws from trusted code's stream; SECURITY.md).
"""

from __future__ import annotations

import functools
import sys
import weakref

from .. import tripwire
from .numpy import LEGACY  # noqa: F401 - the names this module makes per capsule

_STATES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def capsule_state(context):
    """``context``'s own ``RandomState`` (made on first use)."""
    state = _STATES.get(context)
    if state is None:
        state = _STATES[context] = sys.modules["numpy"].random.RandomState()
    return state


def _call(context, name, args, kwargs):
    if name == "set_bit_generator":
        (bitgen,) = args or tuple(kwargs.values())
        _STATES[context] = sys.modules["numpy"].random.RandomState(bitgen)
        return None
    state = capsule_state(context)
    if name == "get_bit_generator":
        return state._bit_generator
    if name in ("ranf", "sample"):
        name = "random_sample"
    return getattr(state, name)(*args, **kwargs)


def per_capsule(fn, package: str, name: str):
    """A profile's ``replaced`` factory: ``numpy.random.<name>`` on the capsule's state."""
    attr = name.rpartition(".")[2]

    @functools.wraps(fn)
    def call(*args, **kwargs):
        context = tripwire.current_context()
        if context is None:
            return fn(*args, **kwargs)
        return _call(context, attr, args, kwargs)

    return call


def _is_global(value) -> bool:
    numpy = sys.modules.get("numpy")
    if numpy is None:
        return False
    if value is None or value is numpy.random or value is numpy.random.mtrand._rand:
        return True
    modules = sys.modules[__package__.rpartition(".")[0] + ".modules"]  # no import circle
    if isinstance(value, modules.ModuleView):  # the capsule's view of numpy.random
        owner = modules._owner_of(value)
        return owner is not None and owner.module == "numpy.random"
    return False


def capsule_random_state(fn, package: str, name: str):
    """``fn(seed)`` resolving a seed to a generator: for "no seed" (None, ``np.random``), the
    capsule's own ``RandomState`` instead of the process's."""

    @functools.wraps(fn)
    def call(seed=None, *args, **kwargs):
        context = tripwire.current_context()
        if context is not None and _is_global(seed):
            return capsule_state(context)
        return fn(seed, *args, **kwargs)

    return call


#: The factories profiles name in ``replaced`` (``wrappers`` reads them).
FACTORIES = {"per_capsule_random": per_capsule, "capsule_random_state": capsule_random_state}
