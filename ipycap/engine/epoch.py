"""The authority epoch: a counter that changes whenever a decision cached by the capsule
builtins could change (a grant, a revoke, an expiry, any change of a ``CapsulePolicy``).

Caches of *allowed* decisions (import decisions, resolved ceilings and denied roots) store
the epoch they were made in and are used only while it is unchanged, so a revoke or a
narrowed policy takes effect at the next use.  Refusals are never cached."""

from __future__ import annotations

#: One item, the current epoch (a list so the C fast paths can read it without a call).
STATE = [0]

#: Trusted callables run after every change (module views drop their decided names:
#: ipycap.engine.modules).  Engine code appends here at import; nothing capsule-reachable.
LISTENERS: list = []


def bump() -> None:
    """Invalidate every cached decision (call after the change is in place)."""
    STATE[0] += 1
    for listener in LISTENERS:
        listener()


def current() -> int:
    return STATE[0]
