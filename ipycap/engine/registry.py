"""The registry: the only source of authority, and the record of its use.

A capability is a record (``cap-N``) of one grant: an import, a readable or writable path,
a protected object, and so on.  Every use and every refusal is an event, visible in
``%capsule list`` and optionally appended to a JSON-lines audit log.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable

from . import epoch
from .errors import CapsulePolicyError
from .policy import CapsulePolicy, internal_module_refusal
from .tripwire import trusted_append

KINDS = ("import", "read", "write", "object", "input", "display", "comm")
SCOPES = ("cell", "session")


class Capability:
    """One grant.  ``revoke()`` disables it and every proxy it produced, at once."""

    __slots__ = (
        "id",
        "kind",
        "target",
        "granted_by",
        "scope",
        "uses",
        "last_use",
        "revoked",
        "expired",
        "note",
        "cells",
        "uses_by_cell",
        "_registry",
        "__weakref__",
    )

    def __init__(self, registry, cap_id, kind, target, granted_by, scope, note=""):
        self.id = cap_id
        self.kind = kind
        self.target = target
        self.granted_by = granted_by
        self.scope = scope
        self.uses = 0
        self.last_use: float | None = None
        self.revoked = False
        #: Ended with its cell (cell scope), not revoked: an identical later cell grant
        #: continues this record under the same id (see ``Registry.grant``).
        self.expired = False
        self.note = note
        #: How many cells held this grant (cell scope: one per cell it was granted in).
        self.cells = 1
        #: Uses per cell (the host's cell label, e.g. 'In[3]'; '' outside a labelled cell).
        self.uses_by_cell: dict[str, int] = {}
        self._registry = registry

    @property
    def state(self) -> str:
        return "revoked" if self.revoked else "active"

    @property
    def active(self) -> bool:
        return not self.revoked

    def revoke(self) -> None:
        """Disable this capability; proxies it produced refuse every later access."""
        if not self.revoked:
            self.revoked = True
            self._registry._ended(self)
            self._registry._event("revoke", cap=self)

    def covers_path(self, path: str) -> bool:
        """Whether the resolved ``path`` lies under this path grant."""
        root = self.target
        return path == root or path.startswith(root.rstrip("/") + "/")

    def as_dict(self) -> dict:
        return {
            "id": self.id,
            "kind": self.kind,
            "target": self.target,
            "granted_by": self.granted_by,
            "scope": self.scope,
            "uses": self.uses,
            "last_use": self.last_use,
            "state": self.state,
            "cells": self.cells,
        }

    def __repr__(self):
        return (
            f"<Capability {self.id} {self.kind} {self.target!r} "
            f"({self.scope}, {self.state}, {self.uses} uses)>"
        )


class Registry:
    """Grants capabilities within a policy's ceiling and records every event."""

    def __init__(self, policy: CapsulePolicy | None = None, *, max_events: int = 1000):
        self.policy = policy if policy is not None else CapsulePolicy()
        self.capabilities: list[Capability] = []
        self.events: deque[dict] = deque(maxlen=max_events)
        self.listeners: list[Callable[[dict], None]] = []
        self.confinement: str = "OS confinement: not applied (in-process capsule only)"
        self._lock = threading.RLock()
        self._counter = 0
        #: The cell now running, as its host names it ('In[3]'); every event carries it.
        self.cell: str = ""
        #: Indexes of ``capabilities``: by id, the active ones by (kind, target, scope), and
        #: the expired cell grants an identical later grant continues.
        self._by_id: dict[str, Capability] = {}
        self._active: dict[tuple, Capability] = {}
        self._expired: dict[tuple, Capability] = {}
        #: The host's way to ask the human at the moment of access (see
        #: :mod:`ipycap.engine.approval`): ``approver(prompt) -> answer`` or None when no
        #: human can be asked now.  Set by the host (kernel, extension); never capsule-reachable.
        self.approver: Callable[[str], str | None] | None = None
        #: Repeated uses counted by count_use: (capability, detail) -> [uses not recorded as
        #: an event yet, primed]; the primed ones, also in _dirty, are recorded (one event
        #: with their count) before the next event.
        self._counters: dict = {}
        self._dirty: list = []

    # -- granting ----------------------------------------------------------------------
    def grant(
        self,
        kind: str,
        target: str,
        scope: str = "session",
        granted_by: str = "config",
        note: str = "",
    ) -> Capability:
        """Grant one capability within the policy's ceiling, or raise ``CapsulePolicyError``."""
        if kind not in KINDS:
            raise ValueError(f"unknown capability kind {kind!r}; expected one of {KINDS}")
        if scope not in SCOPES:
            raise ValueError(f"unknown scope {scope!r}; expected one of {SCOPES}")
        if type(target) is not str:
            target = "".join([target]) if isinstance(target, str) else os.fspath(target)
        if kind in ("read", "write"):
            target = self.check_path_grant(kind, target)
        elif kind == "import":
            self.check_import_grant(target)
        with self._lock:
            cap = self._active.get((kind, target, scope))
            if cap is not None and not cap.revoked:
                return cap  # identical active grants are one capability; its uses count
            previous = self._expired.pop((kind, target, scope, granted_by), None)
            if previous is not None and self._by_id.get(previous.id) is previous:
                # The same cell grant again (a flag on every run of a cell): a fresh
                # capability under the earlier one's id, its record continued.  The earlier
                # one stays expired, with every proxy it produced: nothing is re-enabled.
                cap = Capability(self, previous.id, kind, target, granted_by, scope, note)
                cap.uses, cap.last_use = previous.uses, previous.last_use
                cap.cells = previous.cells + 1
                cap.uses_by_cell = previous.uses_by_cell
                previous.uses_by_cell = dict(previous.uses_by_cell)
                self.capabilities[self.capabilities.index(previous)] = cap
            else:
                self._counter += 1
                cap = Capability(
                    self, f"cap-{self._counter}", kind, target, granted_by, scope, note
                )
                self.capabilities.append(cap)
            self._by_id[cap.id] = cap
            self._active[(kind, target, scope)] = cap
        self._event("grant", cap=cap)
        return cap

    def _ended(self, cap: Capability) -> None:
        """``cap`` was revoked or expired: out of the active index."""
        with self._lock:
            key = (cap.kind, cap.target, cap.scope)
            if self._active.get(key) is cap:
                del self._active[key]
            if cap.expired and self._by_id.get(cap.id) is cap:
                self._expired[(cap.kind, cap.target, cap.scope, cap.granted_by)] = cap

    def check_path_grant(self, kind: str, path: str) -> str:
        """Resolve ``path`` and check it against the ceiling and ``denied_paths``."""
        resolved, err = self.path_grant_error(kind, path)
        if err is not None:
            self.refuse(err, kind=kind, target=resolved)
            raise err
        return resolved

    def path_grant_error(self, kind: str, path: str) -> tuple[str, CapsulePolicyError | None]:
        """``(resolved, None)`` if a ``kind`` grant of ``path`` lies within the ceiling, else
        ``(resolved, the refusal)``; records nothing (hints and prompts ask it first)."""
        resolved = os.path.realpath(os.path.expanduser(path))
        trait = "readable_paths" if kind == "read" else "writable_paths"
        ceiling = self.policy.ceiling(kind)
        if not any(_under(resolved, root) for root in ceiling):
            return resolved, CapsulePolicyError(
                f"{kind} access to {resolved} is outside the policy's ceiling",
                "policy",
                f"add a folder containing it to c.CapsulePolicy.{trait} "
                f"(now {ceiling!r}) in the configuration",
            )
        if kind == "write":
            for root in self.policy.import_roots():
                if _under(root, resolved):
                    return resolved, _never(
                        kind,
                        resolved,
                        f"{root} is on sys.path, so a module "
                        "written there would run later with full authority "
                        "(write-then-import); grant a subdirectory that is not on sys.path "
                        "instead (e.g. ./out)",
                    )
        for root in self.policy.denied_path_roots(kind):
            # A write grant on a parent of a denied folder would cover that folder too.
            if _under(resolved, root) or (kind == "write" and _under(root, resolved)):
                return resolved, _never(
                    kind,
                    resolved,
                    f"{root} is in the policy's denied paths "
                    "(credentials, Jupyter/IPython configuration, installed "
                    "code or kernelspecs)",
                )
        return resolved, None

    def check_import_grant(self, module: str) -> None:
        tier = self.policy.import_tier(module)
        if tier == "denied":
            err = CapsulePolicyError(
                f"import of {module!r} is never grantable: it is in "
                "c.CapsulePolicy.denied_imports (it carries ambient authority)",
                "policy",
                None,
            )
            self.refuse(err, kind="import", target=module)
            raise err
        if tier == "internal":
            err = CapsulePolicyError(internal_module_refusal(module), "policy", None)
            self.refuse(err, kind="import", target=module)
            raise err

    # -- lookups -----------------------------------------------------------------------
    def get(self, ident: str) -> Capability:
        cap = self._by_id.get(ident) if type(ident) is str else None
        if cap is None:
            raise KeyError(ident)
        return cap

    def find(
        self, kind: str | None = None, target: str | None = None, active: bool | None = True
    ) -> list[Capability]:
        return [
            c
            for c in self.capabilities
            if (kind is None or c.kind == kind)
            and (target is None or c.target == target)
            and (active is None or c.active == active)
        ]

    def revoke(self, ident_or_name: str) -> list[Capability]:
        """Revoke by id (``cap-3``) or by target (a user-namespace name, a path, a module)."""
        caps = [
            c
            for c in self.capabilities
            if c.active and (c.id == ident_or_name or c.target == ident_or_name)
        ]
        if not caps:
            raise KeyError(
                f"no active capability with id or target {ident_or_name!r}; see %capsule list"
            )
        for cap in caps:
            cap.revoke()
        return caps

    def revoke_beyond_ceiling(self) -> list[Capability]:
        """Revoke the active grants the policy (just narrowed) no longer allows."""
        ended = []
        for cap in list(self.capabilities):
            if not cap.active:
                continue
            if cap.kind in ("read", "write"):
                beyond = self.path_grant_error(cap.kind, cap.target)[1] is not None
            elif cap.kind == "import":
                beyond = self.policy.import_tier(cap.target) == "denied"
            else:
                continue
            if beyond:
                cap.revoke()
                ended.append(cap)
        return ended

    def end_cell(self, caps: Iterable[Capability]) -> None:
        """Cell-scoped grants end with their cell."""
        self.flush_uses()  # the cell's counted uses are recorded within the cell
        for cap in caps:
            if cap.scope == "cell" and not cap.revoked:
                cap.revoked = True
                cap.expired = True
                self._ended(cap)
                self._event("expire", cap=cap)

    # -- events ------------------------------------------------------------------------
    def use(self, cap: Capability, detail: str = "") -> None:
        cap.uses += 1
        cap.last_use = time.time()
        cell = self.cell
        cap.uses_by_cell[cell] = cap.uses_by_cell.get(cell, 0) + 1
        self._event("use", cap=cap, detail=detail)

    def count_use(self, cap: Capability, detail: str = "") -> None:
        """A use made again and again (an ``import`` in a loop): the capability counts it at
        once; the first since the last event is recorded as usual, the rest as one ``use``
        event with their ``count``, before the next event (or at the end of the cell)."""
        cap.uses += 1
        cap.last_use = time.time()
        counter = self.counter(cap, detail)
        if counter[1]:
            counter[0] += 1
            return
        cell = self.cell
        cap.uses_by_cell[cell] = cap.uses_by_cell.get(cell, 0) + 1
        self._event("use", cap=cap, detail=detail)  # records the others first
        counter[1] = True
        self._dirty.append((cap, detail, counter))

    def counter(self, cap: Capability, detail: str = "") -> list:
        """The use counter of ``cap`` and ``detail``: [uses not recorded yet, primed].  While
        primed, a fast path may count a use as count_use does: ``uses``, ``last_use`` and
        the counter's first item, each by one (ipycap.engine.fastpaths)."""
        key = (cap, detail)
        counter = self._counters.get(key)
        if counter is None:
            counter = self._counters[key] = [0, False]
        return counter

    def flush_uses(self) -> None:
        """Record the counted uses not recorded yet (one event per capability and detail)."""
        dirty, self._dirty = self._dirty, []
        for cap, detail, counter in dirty:
            count = counter[0]
            counter[0], counter[1] = 0, False
            # Retired: a loop over many paths leaves no counter behind (a cached import
            # asks for a fresh one at its next use).
            self._counters.pop((cap, detail), None)
            if count:
                # counted in this cell (a flush comes before the next event, and at its end)
                cell = self.cell
                cap.uses_by_cell[cell] = cap.uses_by_cell.get(cell, 0) + count
                self._event("use", cap=cap, detail=detail, count=count)

    def refuse(self, error: BaseException, *, kind: str = "", target: str = "") -> None:
        self._event("refuse", error=error, kind=kind, target=target)

    def note(
        self, name: str, *, target: str = "", detail: str = "", kind: str = "", audit=True
    ) -> None:
        """Record an event that is not a grant, use or refusal (e.g. a policy change);
        ``audit=False`` keeps it out of the audit log (the limits every cell ran under)."""
        self._event(name, kind=kind, target=target, detail=detail, audit=audit)

    def refusals(self) -> list[dict]:
        return [e for e in self.events if e["event"] == "refuse"]

    def _event(
        self,
        name: str,
        *,
        cap: Capability | None = None,
        error=None,
        kind: str = "",
        target: str = "",
        detail: str = "",
        audit: bool = True,
        count: int = 0,
    ) -> None:
        if self._dirty and not count:
            self.flush_uses()  # counted uses come first, in the order they were made
        if name in ("grant", "revoke", "expire"):
            epoch.bump()  # cached decisions are made again (a revoke counts at the next use)
        event = {"time": time.time(), "event": name}
        if cap is not None:
            event.update(cap.as_dict())
        else:
            event.update({"kind": kind, "target": target})
        if self.cell:
            event["cell"] = self.cell
        if detail:
            event["detail"] = detail
        if count:
            event["count"] = count  # this many more uses, counted since the last event
        if error is not None:
            event["what"] = getattr(error, "what", str(error))
            event["layer"] = getattr(error, "layer", "")
            event["how"] = getattr(error, "how", None)
        self.events.append(event)
        for listener in list(self.listeners):
            listener(event)
        if self.policy.audit_log and audit:
            self._append_log(event)

    def _append_log(self, event: dict) -> None:
        trusted_append(
            os.path.expanduser(self.policy.audit_log), json.dumps(event, default=str) + "\n"
        )


def _never(kind: str, resolved: str, reason: str) -> CapsulePolicyError:
    return CapsulePolicyError(
        f"{kind} access to {resolved} is never grantable: {reason}", "policy", None
    )


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")
