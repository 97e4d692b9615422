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
        "note",
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
        self.note = note
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
        #: The host's way to ask the human at the moment of access (see
        #: :mod:`ipycap.engine.approval`): ``approver(prompt) -> answer`` or None when no
        #: human can be asked now.  Set by the host (kernel, extension); never capsule-reachable.
        self.approver: Callable[[str], str | None] | None = None

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
            for cap in self.capabilities:
                if (cap.kind, cap.target, cap.scope, cap.active) == (kind, target, scope, True):
                    return cap
            self._counter += 1
            cap = Capability(self, f"cap-{self._counter}", kind, target, granted_by, scope, note)
            self.capabilities.append(cap)
        self._event("grant", cap=cap)
        return cap

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
        for cap in self.capabilities:
            if cap.id == ident:
                return cap
        raise KeyError(ident)

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
        for cap in caps:
            if cap.scope == "cell" and not cap.revoked:
                cap.revoked = True
                self._event("expire", cap=cap)

    # -- events ------------------------------------------------------------------------
    def use(self, cap: Capability, detail: str = "") -> None:
        cap.uses += 1
        cap.last_use = time.time()
        self._event("use", cap=cap, detail=detail)

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
    ) -> None:
        event = {"time": time.time(), "event": name}
        if cap is not None:
            event.update(cap.as_dict())
        else:
            event.update({"kind": kind, "target": target})
        if detail:
            event["detail"] = detail
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
