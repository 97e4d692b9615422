"""The boundary auditor: a test mode that checks invariant I2 at every Python-level crossing.

Switched on by the environment (``IPYCAP_AUDIT=1``; ``IPYCAP_AUDIT_LOG=path`` appends each
violation as a line there, which is how kernels started by the tests report back), it
installs a profile function (``sys.setprofile``, on every thread) that watches

* calls into a capsule frame from a frame that is not the same capsule's: every argument
  (the frame's locals at entry) must be a value capsule code may hold;
* returns from a non-capsule frame into a capsule frame: the returned value likewise.

"May hold" is :func:`verdict`: plain immutable data (fields of value types included), the
capsule's own objects and classes, proxies and ipycap's stand-ins, builtin and
standard-library classes (frozen when shared), standard-library functions and objects (what
module views hand out, what a standard-library constructor made for the capsule), objects of
a library the capsule may import, and builtin containers of those.  Never: modules, module
and class ``__dict__``s, module-level containers, frames, tracebacks and code, the engine's
context/registry/policy, IPython's and Jupyter's Configurables, classes and functions of
anything else.

Blind spots, by construction (SECURITY.md repeats them): results of C functions and native
attribute and subscript loads raise no profile event, so a raw object produced by C code
(``getattr`` in C, ``dict.__getitem__``, an iterator's ``__next__``) is seen only when it is
later passed into or returned through a Python-level crossing.  The auditor costs several
times plain speed, so it runs as its own pass of the suite.
"""

from __future__ import annotations

import os
import sys
import threading
import types

from . import guard, libraries, rules, tripwire
from .membrane import is_plain

ENV = "IPYCAP_AUDIT"
LOG_ENV = "IPYCAP_AUDIT_LOG"
_STDLIB = frozenset(sys.stdlib_module_names)
_HEAPTYPE = 1 << 9
_type_module = type.__dict__["__module__"].__get__
_type_flags = type.__dict__["__flags__"].__get__
_CONTAINERS = (dict, list, set, frozenset, tuple, slice)
_MODULE_SLOTS = (types.MemberDescriptorType, types.GetSetDescriptorType)

#: What the auditor saw: (where, verdict) pairs, newest last.
violations: list[tuple[str, str]] = []
_state = threading.local()
_forbidden_types: tuple = ()
_module_ids: dict = {"count": -1, "ids": frozenset()}


def _module_containers() -> frozenset:
    """ids of every module's ``__dict__`` and of the containers stored in them."""
    modules = list(sys.modules.values())
    if len(modules) == _module_ids["count"]:
        return _module_ids["ids"]
    ids = set()
    for m in modules:
        if getattr(m, "__name__", None) == "__capsule__":
            continue  # the empty stand-in module of capsule classes (capsule.py)
        d = getattr(m, "__dict__", None)
        if type(d) is not dict:
            continue
        ids.add(id(d))
        for v in list(d.values()):
            if type(v) in (dict, list, set):
                ids.add(id(v))
    _module_ids.update(count=len(modules), ids=frozenset(ids))
    return _module_ids["ids"]


def _top(module) -> str:
    return module.partition(".")[0] if type(module) is str else ""


def _may_import(top: str, ctx) -> bool:
    """A package the capsule entered (``ctx``; None: any live capsule) may import, or whose
    code a granted library's profile loads on its own behalf (numpy for pandas and
    scikit-learn: granting the library trusts what it hands back, DESIGN.md "Granted
    libraries: profiles")."""
    contexts = list(tripwire._LIVE) if ctx is None else [ctx]
    return any(c.may_import(top) or top in libraries.covered_packages(c) for c in contexts)


def _audited(module, ctx=None) -> bool:
    """Whether things defined in ``module`` may be held by capsule code (rules.py)."""
    if type(module) is not str:
        return False
    top = module.partition(".")[0]
    if top in _STDLIB or top == "builtins" or module in rules.AUDITED_MODULES:
        return True
    return top != "ipycap" and _may_import(top, ctx)


def verdict(value, depth: int = 0, ctx=None) -> str | None:
    """None when capsule code of ``ctx`` (None: of any live capsule) may hold ``value`` (I2),
    else why not.

    Decided statically, as the kernel's inspector decides: types by identity and their C
    slots only, so no capsule ``__class__``, ``__hash__`` or ``__eq__`` runs here."""
    if depth > 8:
        return None
    tp = type(value)
    if tp in guard.PROXY_TYPES or (tp not in _CONTAINERS and is_plain(value)):
        return None  # containers below, depth-bounded (is_plain recurses without bound)
    if issubclass(tp, _forbidden_types):
        return f"{tp.__name__} (the engine's or IPython's machinery)"
    if tp is types.ModuleType:
        return f"the raw module {value.__name__!r}"
    if tp in (types.FrameType, types.TracebackType, types.CodeType):
        return f"a {tp.__name__}"
    if tp is types.MappingProxyType:
        return None  # globals() of the capsule; class dicts only reach own classes
    if tp in _CONTAINERS:
        if id(value) in _module_containers():
            return f"a module-level {tp.__name__}"
        if tp is dict:
            items = [x for kv in list(dict.items(value))[:200] for x in kv]
        elif tp is slice:
            items = [value.start, value.stop, value.step]
        else:
            items = list(tp.__iter__(value))[:200]
        for v in items:
            why = verdict(v, depth + 1, ctx)
            if why is not None:
                return f"{tp.__name__} holding {why}"
        return None
    if guard.is_own_static(value):
        return None
    if issubclass(tp, type):
        if not (_type_flags(value) & _HEAPTYPE) or _audited(_type_module(value), ctx):
            return None
        return f"the raw class {value.__qualname__} of {_type_module(value)!r}"
    if tp is types.MethodType:
        why = verdict(value.__self__, depth + 1, ctx)
        return None if why is None else f"a method bound to {why}"
    if tp is types.FunctionType:
        if _audited(value.__module__, ctx) or guard.is_capsule_code(value.__code__):
            return None  # (gate-compiled code is the capsule's own, whatever its module)
        return f"the function {value.__qualname__} of {value.__module__!r}"
    if tp is types.BuiltinFunctionType:
        owner = value.__self__
        if owner is None or type(owner) is types.ModuleType:
            return None  # module-level C functions; what they give back is checked later
        return verdict(owner, depth + 1, ctx)
    module = _type_module(tp)
    if type(module) in _MODULE_SLOTS:
        # A C type whose instances carry their own __module__ (Cython's functions): the
        # member's value, read in C, is the defining module of this one object.
        module = module.__get__(value, tp)
    if _audited(module, ctx):
        return None
    return f"a raw {module}.{tp.__qualname__} object"


def _is_capsule(frame) -> bool:
    return frame is not None and guard.context_of(frame.f_builtins) is not None


def _where(frame) -> str:
    code = frame.f_code
    return f"{code.co_filename}:{frame.f_lineno} {code.co_name}"


def _profile(frame, event, arg):
    try:
        _watch(frame, event, arg)
    except Exception:  # noqa: BLE001 - e.g. at interpreter shutdown, globals already gone
        pass


def _watch(frame, event, arg):
    if event == "call":
        if not _is_capsule(frame):
            return
        back = frame.f_back
        if _is_capsule(back) and back.f_builtins is frame.f_builtins:
            return
        _check(frame, None, frame)
    elif event == "return":
        if _is_capsule(frame) or not _is_capsule(frame.f_back):
            return
        _check(frame, arg, frame.f_back)


def _check(frame, returned, into) -> None:
    """Check one crossing, as a tripwire helper: the tripwire's own busy flag keeps this
    reading of frames and values from counting as capsule code's."""
    tw_state = tripwire._state
    if getattr(_state, "busy", False) or getattr(tw_state, "busy", False):
        return
    _state.busy = tw_state.busy = True
    try:
        ctx = guard.context_of(into.f_builtins)  # judged for the capsule entered
        if into is frame:
            for name, value in list(frame.f_locals.items()):
                why = verdict(value, 0, ctx)
                if why is not None:
                    _report(f"argument {name!r} into {_where(frame)}", why)
        elif _into_c_slot(into):
            # A proxy slot in C (ipycap/engine/_speedups.c) called this trusted function
            # from capsule frame ``into``: what it returns goes to the slot, which wraps it.
            return
        elif _into_view_call(into) and _judged_by_the_view_call(frame, returned):
            # A module view's function (C ViewFunction) called this one from ``into``: it
            # turns a module into its view and its module's own tables read-only (the
            # profile sees no frame of that C step).  Anything else it passes as it is.
            return
        elif _method_of_protected_object(frame, ctx):
            # A protected object's method is reached through the membrane's C method proxy,
            # which wraps what it returns; the profile sees no frame of that C step.
            return
        else:
            why = verdict(returned, 0, ctx)
            if why is not None:
                _report(f"return from {_where(frame)} into {_where(into)}", why)
    except Exception as e:  # noqa: BLE001 - the auditor must never change the program
        _report(f"auditor error at {_where(into)}", repr(e))
    finally:
        _state.busy = tw_state.busy = False


def _into_c_slot(into) -> bool:
    try:
        from ._speedups import crossing_frame
    except ImportError:  # pragma: no cover - without the extension every slot is Python
        return False
    return crossing_frame() is into


def _into_view_call(into) -> bool:
    try:
        from ._viewcalls import crossing_frame
    except ImportError:  # pragma: no cover - without the extension views wrap nothing
        return False
    return crossing_frame() is into


def _judged_by_the_view_call(frame, returned) -> bool:
    """What ``modules._call_result`` converts: a module (or a tuple holding one), and a
    container that is one of the returning function's own module's globals."""
    if isinstance(returned, types.ModuleType):
        return True
    if type(returned) is tuple and any(isinstance(v, types.ModuleType) for v in returned):
        return True
    if type(returned) in (dict, list, set):
        return any(v is returned for v in dict.values(frame.f_globals))
    return False


def _method_of_protected_object(frame, ctx) -> bool:
    code = frame.f_code
    if not code.co_argcount or code.co_varnames[0] != "self":
        return False
    if _audited(frame.f_globals.get("__name__"), ctx):
        return False
    owner = frame.f_locals.get("self")
    return owner is not None and not guard.is_own_static(owner)


_log = {"path": None, "fd": None}


def _open_log() -> None:
    """Open the log once, at install: a confined kernel (Landlock) could not open it later."""
    path = os.environ.get(LOG_ENV)
    if path and path != _log["path"]:
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
        _log.update(path=path, fd=os.open(path, flags, 0o600))


def _report(where: str, why: str) -> None:
    violations.append((where, why))
    path = os.environ.get(LOG_ENV)
    if path and path == _log["path"]:
        line = f"{where}: {why}".replace("\n", " ") + "\n"
        os.write(_log["fd"], line.encode("utf-8", "replace"))  # one append: lines never mix


def _c_slots_noted(on: bool) -> None:
    """Have the membrane's C slots and the views' C functions note the capsule frame they
    call from (see _into_c_slot, _into_view_call)."""
    try:
        from ._speedups import set_audit
        from ._viewcalls import set_audit as set_view_audit
    except ImportError:  # pragma: no cover
        return
    set_audit(on)
    set_view_audit(on)


def install() -> None:
    """Start auditing (test mode; every thread started from now on too)."""
    global _forbidden_types
    from traitlets.config import Configurable

    from .capsule import Capsule
    from .context import CapsuleContext
    from .registry import Capability, Registry

    _forbidden_types = (Configurable, CapsuleContext, Registry, Capability, Capsule)
    _c_slots_noted(True)
    _open_log()
    sys.setprofile(_profile)
    threading.setprofile(_profile)


class watching:
    """``with auditor.watching() as seen:`` audits a block (tests of the auditor itself);
    ``seen`` is the list of violations found inside it."""

    def __enter__(self):
        self.log = os.environ.pop(LOG_ENV, None)  # deliberate violations are not the run's
        self.previous = sys.getprofile()
        self.start = len(violations)
        install()
        self.seen: list = []
        return self.seen

    def __exit__(self, *exc):
        _c_slots_noted(self.previous is not None)
        sys.setprofile(self.previous)
        threading.setprofile(self.previous)
        self.seen.extend(violations[self.start :])
        del violations[self.start :]
        if self.log is not None:
            os.environ[LOG_ENV] = self.log
        return False


def watching_this_thread() -> bool:
    """Whether the auditor still watches the calling thread (CPython drops a profile
    function that raised, e.g. when an asynchronous exception landed in it)."""
    return sys.getprofile() is _profile


def enabled() -> bool:
    return os.environ.get(ENV, "") not in ("", "0")


__all__ = ["install", "enabled", "verdict", "violations", "watching", "watching_this_thread"]
