"""The C fast paths of the capsule builtins (``_fastbuiltins.c``), wired to the Python
builtins they stand in front of.

Each fast function answers only the common case it can decide by the guard's own live
tables (an ``isinstance`` of an unproxied object, ``getattr`` of a name the gate would not
route, ``self.__dict__`` of the capsule's own object, ``type(x)`` of a class that needs no
freezing, the same ``import`` again while nothing changed -- see ``epoch``) and calls the
Python function, with the same arguments, for everything else.  Nothing is refused in C.
Without the extension (it is optional) the Python functions are used as they are.
"""

from __future__ import annotations

from . import epoch, guard, rules
from .registry import Capability

try:
    from . import _fastbuiltins as _c
except ImportError:  # pragma: no cover - the extension is optional
    _c = None

try:
    from ._speedups import TARGET_OFFSET as _TARGET_OFFSET
    from ._speedups import ProxyBase as _ProxyBase
    from ._speedups import freeze_type as _freeze
except ImportError:  # pragma: no cover
    _freeze = _ProxyBase = _TARGET_OFFSET = None

#: The capsule type's C base (its __call__ answers type(x) for unproxied objects).
TypeBase = _c.TypeBase if _c is not None else object


def install(*, slow: dict, proxy_type, view_type) -> dict:
    """The fast builtins for ``slow`` (name -> the Python builtin it stands in front of:
    __import__, isinstance, issubclass, getattr, hasattr, getattr_rexec, hasattr_rexec,
    _ipycap_getattr, vars), or ``slow`` itself without the extension."""
    if _c is None:
        return dict(slow)
    fast = _c.setup(
        {
            "capsule_builtins": guard._CAPSULE_BUILTINS,
            "epoch": epoch.STATE,
            "proxy_type": proxy_type,
            "view_type": view_type,
            "own_types": guard.OWN_TYPES._refs,
            "tables_version": guard.TABLES_VERSION,
            "proxy_types": guard.PROXY_TYPES._entries,
            "protocol": rules.PROTOCOL,
            # the non-dunder names is_risky routes to the guard's 'never' (C: one table)
            "frame_attrs": rules.FRAME_ATTRS | rules.ABC_STATE,
            "format_attrs": rules.FORMAT_ATTRS,
            # names the C paths always leave to the Python guard (class tables too)
            "exception_attrs": rules.EXCEPTION_ATTRS | rules.CLASS_TABLES,
            "library_attrs": rules.LIBRARY_ATTRS,
            "never": rules.NEVER,
            "special": rules.SPECIAL,
            "own_only": rules.OWN_ONLY,
            "descriptive": rules.DESCRIPTIVE,
            "class_names": guard._CLASS_NAMES,
            "slow_import": slow["__import__"],
            "slow_isinstance": slow["isinstance"],
            "slow_issubclass": slow["issubclass"],
            "slow_getattr": slow["getattr"],
            "slow_hasattr": slow["hasattr"],
            "slow_getattr_rexec": slow["getattr_rexec"],
            "slow_hasattr_rexec": slow["hasattr_rexec"],
            "slow_hook": slow["_ipycap_getattr"],
            "slow_vars": slow["vars"],
            "share_class": guard.share_class,
            "guarded_format": guard.guarded_format,
            "guarded_format_map": guard.guarded_format_map,
            "template_attrs": guard.TEMPLATE_ATTRS,
            "can_freeze": _freeze is not None,
            "capability_type": Capability,
            # isinstance(proxy, builtin class) reads the C proxy's target (when Proxy is one)
            "proxy_base": _ProxyBase,
            "proxy_target_offset": _TARGET_OFFSET,
        }
    )
    # The bound format a capsule gets for 'abc'.format: nothing of it is readable.
    guard.PROXY_TYPES[_c.GuardedFormat] = lambda g, name: guard.refuse(
        g, name, "a guarded format method reveals nothing of its implementation"
    )
    return fast


def set_type(type_object, slow_call) -> None:
    """The capsule's ``type`` (an instance of a TypeBase subclass) and its Python call."""
    if _c is not None:
        _c.set_type(type_object, slow_call)
