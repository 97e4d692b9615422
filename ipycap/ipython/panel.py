"""The registry's channel to JupyterLab's Capabilities panel (``labextension/``).

Trusted kernel code attaches a snapshot of the registry to the metadata of every
``execute_reply`` (key ``"ipycap"``), after the cell has run.  Capsule code cannot write to that
channel or suppress it: the reply is built and sent by the kernel's own request handler on the
shell channel, outside every capsule, and the snapshot is read from the registry, which capsule
code cannot reach.  Output a cell prints or displays travels on iopub and is never read by the
panel.  (This holds while the in-process layers hold: code that escaped its capsule could speak
the protocol itself; see SECURITY.md.)

The panel asks for a refresh, or revokes a capability, with a silent ``execute_request`` whose
code is empty and whose *request* metadata is ``{"ipycap": {"revoke": "cap-3"}}``.  The only
request this channel serves is revoking one active capability by its id: nothing sent to it can
grant, widen or re-enable authority.  The reply's snapshot then carries
``"result": {"revoke": id, "ok": bool, "message": str}``.

Snapshot, protocol 1::

    {"protocol": 1, "mode": "kernel" | "extension", "seq": <events so far>,
     "grants": [{"id", "kind", "target", "granted_by", "scope", "uses", "last_use", "state",
                 "cells", "uses_by_cell": {cell: uses} (the newest cells)}],
     "refusals": [{"time", "kind", "target", "what", "layer", "how"}],   # oldest first
     "refused_total": <refusals since start>, "confinement": str, "result": {...}?}
"""

from __future__ import annotations

import itertools
import re
from collections import deque

from ..engine.registry import Registry

METADATA_KEY = "ipycap"
PROTOCOL = 1
#: Refusals carried by one snapshot (the newest); the total count is kept separately.
MAX_REFUSALS = 50
#: Grants that ended (revoked or expired cell grants) carried by one snapshot (the newest);
#: active grants are always all there.
MAX_ENDED_GRANTS = 100
#: Cells whose uses one grant entry lists (the newest); ``cells`` counts them all.
MAX_CELLS_PER_GRANT = 20
_CAP_ID = re.compile(r"cap-[0-9]{1,9}")


def _text(value) -> str | None:
    """An exact ``str`` copy of ``value``, or None (nothing of a foreign type is called)."""
    if value is None:
        return None
    if type(value) is str:
        return "".join([value])
    return f"<{type(value).__name__}>"


def _number(value) -> float | int | None:
    return value if type(value) in (int, float) else None


class RegistryChannel:
    """Serves one registry to the panel through ``execute_reply`` metadata (module docstring).

    ``mode`` is ``"kernel"`` (every cell is a capsule) or ``"extension"`` (``%%capsule`` cells
    of an ordinary kernel)."""

    def __init__(self, registry: Registry, mode: str):
        self.registry = registry
        self.mode = mode
        self.kernel = None
        self.closed = False
        refusals = [e for e in registry.events if e.get("event") == "refuse"]
        self.refused_total = len(refusals)
        #: The newest refusals, kept as they happen (a snapshot does not scan the events).
        self._refusals: deque = deque((_refusal(e) for e in refusals), maxlen=MAX_REFUSALS)
        self.seq = len(registry.events)
        registry.listeners.append(self._on_event)

    def close(self) -> None:
        self.closed = True
        if self._on_event in self.registry.listeners:
            self.registry.listeners.remove(self._on_event)

    def _on_event(self, event: dict) -> None:
        self.seq += 1
        if event.get("event") == "refuse":
            self.refused_total += 1
            self._refusals.append(_refusal(event))

    # -- the reply -------------------------------------------------------------------------------
    def finish_metadata(self, parent: dict, metadata: dict) -> dict:
        """Serve the request in ``parent``'s metadata, if any, and attach the snapshot."""
        request = (parent.get("metadata") or {}).get(METADATA_KEY)
        try:
            result = self.serve(request) if request is not None else None
            snapshot = self.snapshot()
        except Exception as e:  # noqa: BLE001 - the reply must still go out, saying so
            snapshot = {"protocol": PROTOCOL, "mode": self.mode, "error": _text(str(e))}
            result = None
        if result is not None:
            snapshot["result"] = result
        metadata = dict(metadata or {})
        metadata[METADATA_KEY] = snapshot
        return metadata

    def serve(self, request) -> dict | None:
        """A panel request: ``{}`` (refresh) or ``{"revoke": "cap-N"}`` (narrowing only)."""
        if type(request) is not dict or not request:
            return None
        ident = request.get("revoke")
        result = {"revoke": _text(ident), "ok": False, "message": ""}
        if set(request) != {"revoke"} or type(ident) is not str or not _CAP_ID.fullmatch(ident):
            result["message"] = (
                "the Capabilities panel can only revoke one capability by its id (cap-N)"
            )
            return result
        try:
            cap = self.registry.get(ident)
        except KeyError:
            result["message"] = f"no capability {ident} in this kernel"
            return result
        if cap.revoked:
            result["message"] = f"{ident} was already {self._ended(cap)}"
            return result
        cap.revoke()
        result.update(ok=True, message=f"revoked {ident} ({cap.kind} {cap.target})")
        return result

    def _ended(self, cap) -> str:
        for event in reversed(self.registry.events):
            if event.get("id") == cap.id and event.get("event") in ("revoke", "expire"):
                return "revoked" if event["event"] == "revoke" else "expired (cell scope)"
        return "revoked"

    def snapshot(self) -> dict:
        caps = list(self.registry.capabilities)
        ended = [c for c in caps if c.revoked][-MAX_ENDED_GRANTS:]
        keep = {id(c) for c in ended}
        grants = [_grant(c) for c in caps if not c.revoked or id(c) in keep]
        return {
            "protocol": PROTOCOL,
            "mode": self.mode,
            "seq": self.seq,
            "grants": grants,
            "refusals": list(self._refusals),
            "refused_total": self.refused_total,
            "confinement": _text(self.registry.confinement),
        }


def _grant(cap) -> dict:
    return {
        "id": _text(cap.id),
        "kind": _text(cap.kind),
        "target": _text(cap.target),
        "granted_by": _text(cap.granted_by),
        "scope": _text(cap.scope),
        "uses": _number(cap.uses) or 0,
        "last_use": _number(cap.last_use),
        "state": "revoked" if cap.revoked else "active",
        "cells": _number(cap.cells) or 0,
        "uses_by_cell": {
            _text(cell): _number(n) or 0
            for cell, n in reversed(
                list(itertools.islice(reversed(cap.uses_by_cell.items()), MAX_CELLS_PER_GRANT))
            )
        },
    }


def _refusal(event: dict) -> dict:
    return {
        "time": _number(event.get("time")),
        "kind": _text(event.get("kind")) or "",
        "target": _text(event.get("target")) or "",
        "what": _text(event.get("what")) or "",
        "layer": _text(event.get("layer")) or "",
        "how": _text(event.get("how")),
    }


# -- the ordinary kernel (%load_ext ipycap) ------------------------------------------------------
def attach_to_kernel(shell, registry: Registry) -> RegistryChannel | None:
    """Serve ``registry`` on the replies of ``shell``'s ipykernel (None without a kernel).

    Wraps the kernel's ``finish_metadata`` on the instance; :func:`detach_from_kernel` undoes
    it."""
    kernel = getattr(shell, "kernel", None)
    original = getattr(kernel, "finish_metadata", None)
    if original is None:
        return None
    channel = RegistryChannel(registry, "extension")

    def finish_metadata(parent, metadata, reply_content):
        metadata = original(parent, metadata, reply_content)
        return metadata if channel.closed else channel.finish_metadata(parent, metadata)

    finish_metadata.__ipycap_channel__ = channel
    kernel.finish_metadata = finish_metadata
    channel.kernel = kernel
    return channel


def detach_from_kernel(channel: RegistryChannel | None) -> None:
    if channel is None:
        return
    channel.close()
    kernel = getattr(channel, "kernel", None)
    hook = vars(kernel).get("finish_metadata") if kernel is not None else None
    if getattr(hook, "__ipycap_channel__", None) is channel:
        del kernel.finish_metadata
