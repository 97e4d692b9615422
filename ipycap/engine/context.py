"""The authority of one capsule (its grants, mode and registry) and the decisions made from
it: may this capsule import NAME, open PATH, ask for input.  Every layer asks here."""

from __future__ import annotations

import sys

from . import approval, tripwire
from .errors import CapsuleImportError, CapsulePermissionError
from .policy import CapsulePolicy, internal_module_refusal
from .registry import Capability, Registry

_STDLIB_NAMES = frozenset(sys.stdlib_module_names)


class CapsuleContext:
    """The authority of one capsule: its grants, mode and the registry that records use.

    Code runs with the active grants of the capsule that compiled it (found on the stack by
    the tripwire through the capsule's builtins)."""

    def __init__(self, registry: Registry, grants: list[Capability], mode: str, label: str):
        self.registry = registry
        self.policy: CapsulePolicy = registry.policy
        self.grants = grants
        self.mode = mode
        self.label = label
        #: How a refusal names the way to grant: the extension's flags by default; the capsule
        #: kernel replaces it with its own '%capsule request ...' commands.
        self.how_to_grant = extension_grant_hint
        #: The capsule ``__import__``'s decisions, (name, fromlist) -> (epoch, ...): see
        #: ipycap.engine.builtins; valid only while the authority epoch is unchanged.
        self.import_cache: dict = {}
        #: How many runs of this capsule are in progress (Capsule.run): its output functions
        #: publish only while one is, so capsule code called later cannot write into (or
        #: clear) another cell's output (ipycap/engine/output.py).
        self.running = 0

    # -- decisions ---------------------------------------------------------------------------
    def _active(self, kind):
        return [c for c in self.grants if c.kind == kind and not c.revoked]

    def may_import(self, name: str) -> bool:
        tier = self.policy.import_tier(name)
        if tier == "denied" or tier == "internal":
            return False
        if tier == "default":
            # e.g. 'IPython.display': a default view of a module in a denied package
            return not self._revoked_import(name)
        parts = name.split(".")
        prefixes = {".".join(parts[:i]) for i in range(1, len(parts) + 1)}
        if any(self.policy.import_tier(p) == "denied" for p in prefixes):
            return False
        if prefixes & set(self.policy.default_imports):
            return not self._revoked_import(name)
        return any(c.target in prefixes for c in self._active("import"))

    def _revoked_import(self, name: str) -> bool:
        """A default import revoked with %capsule revoke stays revoked (no silent re-grant).
        A cell's grant (a flag, an 'Allow once') that ended with its cell is no revocation:
        the name is as it was before that cell (a default import again, or asked for)."""
        top = name.partition(".")[0]
        revoked = [c for c in self.registry.find("import", None, active=False) if c.scope != "cell"]
        if not any(c.target in (name, top) for c in revoked):
            return False
        return not any(c.target in (name, top) for c in self._active("import"))

    def is_stdlib_internal(self, name: str) -> bool:
        """Modules a stdlib library may import lazily on a capsule's behalf."""
        top = name.partition(".")[0]
        return (
            top in _STDLIB_NAMES
            and self.policy.import_tier(name) != "denied"
            and top not in ("os", "sys", "subprocess", "socket", "ctypes", "importlib")
        )

    def check_import(self, name: str, counted: bool = False):
        """Allow the import of ``name`` (returning the capability used, or None when the
        human approved it just now) or raise the refusal.  ``counted``: the use is one of
        many (``Registry.count_use``)."""
        if self.may_import(name):
            return self._use_import(name, counted)
        tier = self.policy.import_tier(name)
        if tier == "denied" or any(
            self.policy.import_tier(".".join(name.split(".")[:i])) == "denied"
            for i in range(1, name.count(".") + 2)
        ):
            err = CapsuleImportError(
                f"import of {name!r}: it is in c.CapsulePolicy.denied_imports (it carries "
                "ambient authority)",
                "builtins",
                None,
            )
        elif tier == "internal":
            err = CapsuleImportError(internal_module_refusal(name), "builtins", None)
        elif self._revoked_import(name):
            err = CapsuleImportError(
                f"import of {name!r}: its capability was revoked in this session",
                "builtins",
                self.how_to_grant("import", name),
            )
        else:
            if self._approved_import(name):
                return None
            top = name.partition(".")[0]  # granting the package covers its submodules
            err = CapsuleImportError(
                f"import of {name!r} was not granted to this capsule",
                "builtins",
                self.how_to_grant(
                    "import", top if self.policy.import_tier(top) == "grantable" else name
                ),
            )
        self.record_refusal(err, kind="import", target=name)
        raise err

    def _use_import(self, name: str, counted: bool = False) -> Capability:
        use = self.registry.count_use if counted else self.registry.use
        for cap in self._active("import"):
            if name == cap.target or name.startswith(cap.target + "."):
                use(cap, name)
                return cap
        cap = self.registry.grant(
            "import",
            name.partition(".")[0]
            if name.partition(".")[0] in self.policy.default_imports
            else name,
            scope="session",
            granted_by="default",
        )
        self.grants.append(cap)
        use(cap, name)
        return cap

    def allows_path(self, kind: str, path: str) -> bool:
        """Whether the resolved ``path`` is within an active grant (no event recorded)."""
        if kind == "write" and self.policy.write_plants_code(path):
            return False
        if self.policy.is_denied_path(kind, path):
            return False
        return any(c.covers_path(path) for c in self._active(kind))

    def check_path(self, kind: str, path: str, typed: str | None = None) -> None:
        """Allow ``kind`` access to the resolved ``path`` (``typed``: as the code wrote it), or
        ask the human (within the ceiling), or raise the refusal."""
        for cap in self._active(kind):
            if cap.covers_path(path) and self.allows_path(kind, path):
                self.registry.count_use(cap, path)  # a loop of opens: counted (registry)
                return
        error = self.path_refusal(kind, path, typed, layer="builtins")
        if error is None:
            return  # the human approved it
        self.record_refusal(error, kind=kind, target=path)
        raise error

    def path_refusal(self, kind: str, path: str, typed: str | None, layer: str):
        """The refusal of an access no grant covers, or None when the human approves it now
        (``approve`` asks only within the ceiling).  Hints name a grant that would work, with
        the path as typed or its folder."""
        shown = approval.printable(approval.display_path(path, typed))
        if kind == "write" and self.policy.write_plants_code(path):
            return CapsulePermissionError(
                f"write access to {shown}: code written there would run later with "
                "full authority (write-then-import)",
                layer,
                None,
            )
        if any(
            path == r or path.startswith(r.rstrip("/") + "/")
            for r in self.policy.denied_path_roots(kind)
        ):
            return CapsulePermissionError(
                f"{kind} access to {shown}: it is under the policy's denied paths", layer, None
            )
        grant = approval.path_grant(self.registry, kind, path, typed)
        if grant is None:
            ceiling = self.registry.path_grant_error(kind, path)[1]
            how = ceiling.how if ceiling is not None else None
            if how and getattr(self.policy, "frozen", False):
                how += ", then restart the kernel"
            return CapsulePermissionError(
                f"{kind} access to {shown}: it is outside the policy's ceiling", layer, how
            )
        if self._approved_path(kind, path, typed, grant):
            return None
        return CapsulePermissionError(
            f"{kind} access to {shown} was not granted to this capsule",
            layer,
            self.how_to_grant(kind, approval.display_path(grant, folder=grant != path)),
        )

    # -- asking the human at the moment of access (ipycap.engine.approval) --------------------
    def _ask(self, question: str, kind: str, target: str) -> str | None:
        registry = self.registry
        if registry.approver is None or not self.policy.prompt:
            return None
        if self.__dict__.get("_asking") or getattr(registry, "_asking", False):
            return None  # one question at a time; a nested one is refused
        # The open question, as structured fields a host may send beside the text (the kernel
        # does: input_request content "ipycap_approval"), so no frontend parses free text.
        registry._asking = {"kind": kind, "grant": target}
        try:
            answer = tripwire.trusted_approval(registry, approval.APPROVAL_PREFIX + question)
        finally:
            registry._asking = False
        if answer is None:
            return None  # nobody can be asked now (no stdin): refused as without prompting
        decision = approval.parse_answer(answer)
        registry.note("prompt", kind=kind, target=target, detail=f"answered {decision or 'no'}")
        return decision

    def _approved_path(self, kind: str, path: str, typed: str | None, grant: str) -> bool:
        decision = self._ask(approval.path_question(kind, path, typed, grant), kind, grant)
        if decision is None:
            return False
        if decision == approval.ONCE:
            cap = self.registry.grant(kind, path, scope="cell", granted_by="prompt (once)")
            self.registry.use(cap, path)
            self.registry.end_cell([cap])
        else:
            cap = self.registry.grant(kind, grant, scope="session", granted_by="prompt")
            self.grants.append(cap)
            self.registry.use(cap, path)
        return True

    def _approved_import(self, name: str) -> bool:
        decision = self._ask(approval.import_question(name), "import", name)
        if decision is None:
            return False
        scope = "cell" if decision == approval.ONCE else "session"
        by = "prompt (once)" if decision == approval.ONCE else "prompt"
        cap = self.registry.grant("import", name, scope=scope, granted_by=by)
        self.registry.use(cap, name)
        if decision == approval.ONCE:
            self.registry.end_cell([cap])
        else:
            self.grants.append(cap)
        return True

    def may_input(self) -> bool:
        return self.policy.allow_input or bool(self._active("input"))

    def record_refusal(self, err, *, kind: str = "", target: str = "") -> None:
        """Record a refusal: ``kind``/``target`` say what was asked for (e.g. 'read', a path);
        the event also carries the error's what/layer/how."""
        self.registry.refuse(err, kind=kind or "", target=target or self.label)


def extension_grant_hint(kind: str, target: str) -> str | None:
    """How to grant ``kind`` on ``target`` in the IPython extension (``writable``: a
    writable proxy of a user-namespace name; ``object``: a revoked name back)."""
    flags = {
        "import": "--allow-import",
        "read": "--allow-read",
        "write": "--allow-write",
        "writable": "--writable",
    }
    if kind in flags:
        return f"%%capsule {flags[kind]} {target}"
    if kind == "input":
        return "%capsule grant input"
    return f"%capsule grant {kind} {target}"
