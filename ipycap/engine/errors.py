"""Refusals: exceptions that subclass the natural Python error and teach how to grant.

Every refusal names what was refused, which layer refused it, and the exact flag or
config that would grant it (or says that it is not grantable at all).
"""

from __future__ import annotations


class CapabilityError(Exception):
    """Base of every ipycap refusal.

    ``what`` is the refused operation, ``layer`` the layer that refused it (gate, guard,
    membrane, builtins, tripwire, policy, kernel, confine), ``how`` what would grant it
    (``None`` when it can never be granted).
    """

    def __init__(self, what: str, layer: str, how: str | None = None, hint: str | None = None):
        self.what = what
        self.layer = layer
        self.how = how
        self.hint = hint
        grant = f"To grant it: {how}." if how else "It cannot be granted."
        extra = f" {hint[:1].upper()}{hint[1:]}." if hint else ""
        super().__init__(f"{what} (refused by the {layer}). {grant}{extra}")


class CapsuleImportError(CapabilityError, ImportError):
    """An import a capsule may not make."""


class CapsulePermissionError(CapabilityError, PermissionError):
    """A file, process or network operation outside the capsule's grants."""


class CapsuleAttributeError(CapabilityError, AttributeError):
    """An attribute a capsule may not read or write."""


class CapsuleSyntaxError(CapabilityError, SyntaxError):
    """Source the gate refuses before it runs."""

    def __init__(
        self,
        what: str,
        how: str | None = None,
        *,
        filename=None,
        lineno=None,
        col_offset=None,
        text=None,
        hint=None,
    ):
        CapabilityError.__init__(self, what, "gate", how, hint)
        self.msg = self.args[0]
        self.filename = filename
        self.lineno = lineno
        self.offset = (col_offset + 1) if col_offset is not None else None
        self.text = text

    def __str__(self):  # SyntaxError's own __str__ appends the location
        loc = f" (line {self.lineno})" if self.lineno else ""
        return f"{self.msg}{loc}"


class CapsuleTypeError(CapabilityError, TypeError):
    """An operation on a proxy or builtin that a capsule may not perform."""


class CapsuleRevokedError(CapabilityError, PermissionError):
    """Access through a proxy whose capability has been revoked."""


class CapsulePolicyError(CapabilityError, ValueError):
    """A grant beyond the policy's ceiling."""


class CapsuleRequestRefused(CapabilityError, PermissionError):
    """A grant asked for (``%capsule request``, an approval prompt) that was refused."""


def one_line(err: BaseException) -> BaseException:
    """Have IPython show ``err`` as one line ``Name: message`` (no traceback banner).

    For refusals raised by trusted code (a magic, a kernel command): their stack is ipycap's
    own, so it says nothing to the user; IPython calls ``_render_traceback_`` when present."""
    text = f"{type(err).__name__}: {err}"
    err._render_traceback_ = lambda: [text]  # type: ignore[attr-defined]
    return err


# The names before the Capsule*Error family (ipycap 0.1); kept for code written against them.
RevokedError = CapsuleRevokedError
PolicyError = CapsulePolicyError
