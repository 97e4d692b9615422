"""Authority checks the membrane makes: revocation, write grants, withheld machinery, and
the refusals it records (with the grant hint of the capsule's host)."""

from __future__ import annotations

import types

from traitlets.config import Configurable as _Configurable

from ..context import extension_grant_hint
from ..errors import CapsuleTypeError, RevokedError
from ..registry import Registry
from ..tripwire import current_context

#: Never proxied: IPython's and Jupyter's machinery (the shell, the kernel, comms, history,
#: magics) are traitlets Configurables whose public methods (``shell.ev``, ``run_cell``,
#: ``kernel.session.send``) run code or speak to the frontend with the user's full authority.
WITHHELD_TYPES: tuple = (_Configurable,)

_type_module = type.__dict__["__module__"].__get__


def _defined_by_ipycap(owner) -> bool:
    """Whether ``owner`` (an object, a class or a function) is ipycap's own: its registry,
    policy, contexts, capsules, views, ``explain``...  Through a proxy their public methods
    would grant, read raw objects or run a more privileged capsule (I2, I4)."""
    if type(owner) is types.FunctionType or type(owner) is types.BuiltinFunctionType:
        module = owner.__module__
    else:
        module = _type_module(owner if isinstance(owner, type) else type(owner))
    return type(module) is str and (module == "ipycap" or module.startswith("ipycap."))


def _check_withheld(value) -> None:
    owner = value.__self__ if type(value) is types.MethodType else value
    if isinstance(owner, WITHHELD_TYPES):
        raise CapsuleTypeError(
            f"{type(owner).__name__} objects (IPython/Jupyter machinery) never enter a capsule: "
            "its methods run code with the notebook's full authority",
            "membrane",
            None,
        )
    if _defined_by_ipycap(owner):
        raise CapsuleTypeError(
            "ipycap's own objects (its registry, policy, capsules, explain) never enter a "
            "capsule: they hold the authority the capsule is confined by",
            "membrane",
            None,
        )


def _grant_hint(kind: str, target: str):
    """How the host of the capsule on the stack grants this (extension flags, kernel
    requests), or None where it cannot."""
    if target.startswith("<"):
        return None  # a capability of the membrane's own (callback arguments): no grant
    ctx = current_context()
    return (ctx.how_to_grant if ctx is not None else extension_grant_hint)(kind, target)


def _recorded(cap, err):
    """Record a membrane refusal in the registry that granted ``cap`` (and the audit log)."""
    registry = getattr(cap, "_registry", None)
    if registry is not None:
        registry.refuse(err, kind=cap.kind, target=cap.target)
    return err


def _revoked(cap):
    raise _recorded(
        cap,
        RevokedError(
            f"capability {cap.id} ({cap.kind} {cap.target!r}) was revoked",
            "membrane",
            _grant_hint("object", cap.target),
        ),
    )


class _ReadOnlyMethod:
    """Stands in for a mutating method of a read-only standard-library container."""

    __slots__ = ("name", "owner", "target")

    def __init__(self, name, owner, target="NAME"):
        self.name = name
        self.owner = owner
        self.target = target

    def __call__(self, *args, **kwargs):
        raise CapsuleTypeError(
            f"{self.owner}.{self.name}() would modify a read-only protected object",
            "membrane",
            _grant_hint("writable", self.target),
        )

    def __repr__(self):
        return f"<read-only {self.owner}.{self.name}>"


#: The capability that wraps what trusted code passes into capsule callbacks.
_CALLBACK_CAP = None


def _callback_cap():
    global _CALLBACK_CAP
    if _CALLBACK_CAP is None:
        _CALLBACK_CAP = Registry().grant(
            "object", "<arguments passed to capsule callbacks>", granted_by="membrane"
        )
    return _CALLBACK_CAP
