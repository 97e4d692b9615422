"""Capsule builtins: a fresh builtins dict per capsule.

The safe subset of Python's builtins, the guarded accessors, an ``__import__`` that follows
the policy's three import tiers and hands out read-only module views, an ``open`` that checks
the registry's path grants on the real path, gated ``exec``/``eval``/``compile``, and
refusing stand-ins for ``input``, ``help``, ``breakpoint``, ``exit`` and friends.
"""

from __future__ import annotations

import builtins as _py
import operator
import os
import stat
import sys
import types

from . import epoch, fastpaths, guard, handles, output, stdlib_guards, tripwire
from .approval import capsule_prompt
from .codeexec import make_code_builtins
from .errors import (
    CapabilityError,
    CapsuleImportError,
    CapsulePermissionError,
    CapsuleTypeError,
)
from .hooks import guard_class_hooks
from .libraries.wrappers import check_import as library_check_import
from .membrane import Proxy, capability_of, class_for_capsule, target_of
from .modules import (
    SPECIAL_MODULES,
    BuiltinsModule,
    ModuleView,
    _special_module,
    make_view,
    new_builtins_module,
)
from .stdviews import os_view

stdlib_guards.install()

SAFE_BUILTINS = """abs aiter all anext any ascii bin bool bytearray bytes callable chr classmethod
complex dict divmod enumerate filter float format frozenset hash hex id int isinstance iter
len list map max min memoryview next object oct ord pow print property range repr reversed
round set slice sorted staticmethod str sum super tuple zip Ellipsis NotImplemented False
True None""".split()
SAFE_BUILTINS += [
    n for n, v in vars(_py).items() if isinstance(v, type) and issubclass(v, BaseException)
]

REFUSING = {
    "help": "help() opens a pager that can run shell commands",
    "breakpoint": "breakpoint() starts a debugger with full authority",
    "exit": "exit() would stop the kernel",
    "quit": "quit() would stop the kernel",
    "license": "license() reads files outside the capsule",
    "copyright": "copyright() is not available",
    "credits": "credits() is not available",
}


class _Refusing:
    __slots__ = ("name", "why")

    def __new__(cls, name, why):
        # state set once, here: __init__ is object's (``help.__init__('x', 'y')`` changes
        # nothing; tests/test_frozen_state.py)
        self = object.__new__(cls)
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "why", why)
        return self

    def __setattr__(self, name, value):
        raise CapsuleTypeError(f"{self.name} cannot be changed", "builtins")

    def __call__(self, *args, **kwargs):
        hint = "use obj? in a notebook for help" if self.name == "help" else None
        raise CapsuleTypeError(
            f"{self.name}() is not available in a capsule: {self.why}", "builtins", hint=hint
        )

    def __repr__(self):
        return f"<{self.name}: not available in a capsule>"


# -- the builtins dict ---------------------------------------------------------------------
_REAL = vars(_py)
_PICK: list = [(), None]  # SAFE_BUILTINS as last seen, an itemgetter of those names


def _safe_entries() -> dict:
    """``{name: getattr(builtins, name)}`` for the SAFE_BUILTINS present, read now (one C
    call: none of these names is an attribute of the module type, so the module's dict
    answers as getattr does)."""
    names = tuple(SAFE_BUILTINS)
    if _PICK[0] != names:
        if len(names) < 2 or any(hasattr(types.ModuleType, n) for n in names):
            return {name: getattr(_py, name) for name in names if hasattr(_py, name)}
        _PICK[:] = [names, operator.itemgetter(*names)]
    try:
        return dict(zip(names, _PICK[1](_REAL), strict=True))
    except KeyError:  # a builtin was deleted: the ones present
        return {name: getattr(_py, name) for name in names if hasattr(_py, name)}


def make_builtins(context) -> BuiltinsModule:
    """A fresh builtins module for one capsule context (its dict is the frames' builtins)."""
    b = _safe_entries()
    b.update(_ACCESSORS[context.mode])
    for name, why in REFUSING.items():
        b[name] = _Refusing(name, why)
    b["__import__"] = _IMPORT
    b["open"] = _OPEN
    # A marker, not authority: the limits' stop trace (C) and the interrupt guard recognise
    # capsule frames by it.  Every security decision asks guard.context_of instead, so a
    # capsule that deleted it (its builtins module is read-only) could at most evade its
    # own timeout, a denial of service, never reach anything.
    b[guard.CAPSULE_MARK] = True
    b["__build_class__"] = _build_class
    b["type"] = _type
    b["issubclass"] = _FAST["issubclass"]
    b["isinstance"] = _FAST["isinstance"]
    b["input"] = _INPUT
    b["display"] = output.display
    b.update(make_code_builtins(context.mode))
    module, _ = new_builtins_module(b)
    return module


def _build_class(func, name, /, *bases, **kwargs):
    for base in (*bases, kwargs.get("metaclass")):
        if type(base) in guard.PROXY_TYPES:
            raise CapsuleTypeError(
                f"class {name}: a protected object can never be a base class or metaclass",
                "builtins",
                hint="define your own class and call the protected object's methods",
            )
    # The capsule's 'type' is a function (type(proxy) stays proxied); as a base or metaclass
    # it means the real type, so 'class Meta(type)' works as in plain Python.
    bases = tuple(_py.type if b is _type else b for b in bases)
    if kwargs.get("metaclass") is _type:
        kwargs["metaclass"] = _py.type
    qualname = func.__qualname__ if type(func) is types.FunctionType else name
    module = func.__globals__.get("__name__") if type(func) is types.FunctionType else None
    with guard.building(qualname, module):
        cls = _py.__build_class__(func, name, *bases, **kwargs)
    if isinstance(cls, type):
        guard.OWN_TYPES.add(cls)
        guard_class_hooks(cls)
    return cls


class _CapsuleType(fastpaths.TypeBase):
    """The capsule's ``type``: ``type(x)`` keeps a proxy's class proxied, ``type(name, bases,
    ns)`` makes an own class, and ``isinstance(x, type)`` / ``class M(type)`` work as usual.
    (Its C base answers ``type(x)`` of unproxied objects whose class needs no freezing and
    calls ``_call`` for the rest.)"""

    __slots__ = ()
    __name__ = __qualname__ = "type"

    def _call(self, *args, **kwargs):
        if len(args) == 1 and not kwargs:
            obj = args[0]
            tp = type(obj)
            if tp is Proxy:
                return class_for_capsule(target_of(obj), capability_of(obj))
            if tp is ModuleView:
                return types.ModuleType
            return guard.share_class(tp)
        if len(args) == 3:
            name, bases, ns = args
            for base in bases:
                if type(base) in guard.PROXY_TYPES:
                    raise CapsuleTypeError(
                        "a protected object can never be a base class", "builtins"
                    )
            if type(ns) is not dict:
                raise TypeError("type() argument 3 must be dict")
            bases = tuple(_py.type if b is self else b for b in bases)
            ns = dict(ns)
            if "__module__" not in ns:
                # as type() names it for its caller: the capsule's module, not this one's
                ns["__module__"] = tripwire.capsule_module_name()
            cls = type(guard.exact_name(name), bases, ns, **kwargs)
            guard.OWN_TYPES.add(cls)
            guard_class_hooks(cls)
            return cls
        raise TypeError("type() takes 1 or 3 arguments")

    if fastpaths.TypeBase is object:  # pragma: no cover - without the C extension
        __call__ = _call

    def __instancecheck__(self, obj):
        return isinstance(obj, type)

    def __subclasscheck__(self, cls):
        return issubclass(cls, type)

    def __mro_entries__(self, bases):
        return (type,)

    def __repr__(self):
        return "<class 'type'>"


_type = _CapsuleType()
fastpaths.set_type(_type, _CapsuleType._call)
_HEAPTYPE = 1 << 9


def _checks_run_no_capsule_code(classinfo) -> bool:
    """Whether isinstance/issubclass against ``classinfo`` may see a protected object's raw
    class: builtin classes and proxied (trusted) classes run no capsule hooks, but an ABC can
    call ``__subclasshook__`` of capsule subclasses with whatever class it is asked about."""
    items = classinfo if type(classinfo) is tuple else (classinfo,)
    for c in items:
        if type(c) is Proxy or c is _type:
            continue
        if isinstance(c, type) and not (type.__dict__["__flags__"].__get__(c) & _HEAPTYPE):
            continue
        return False
    return True


def _raw_classinfo(classinfo):
    def one(c):
        return target_of(c) if type(c) is Proxy else (type if c is _type else c)

    return tuple(one(c) for c in classinfo) if type(classinfo) is tuple else one(classinfo)


def _isinstance(obj, classinfo, /):
    """isinstance that sees through proxies where no capsule code can watch."""
    if type(obj) is Proxy and _checks_run_no_capsule_code(classinfo):
        return isinstance(target_of(obj), _raw_classinfo(classinfo))
    try:
        return isinstance(obj, classinfo)
    except TypeError:
        if type(obj) is Proxy:
            return False  # an ABC may not learn a protected object's raw class
        raise


def _issubclass(cls, classinfo, /):
    """issubclass with the same rule as isinstance."""
    if type(cls) is Proxy and _checks_run_no_capsule_code(classinfo):
        return issubclass(target_of(cls), _raw_classinfo(classinfo))
    if cls is _type:
        cls = type
    try:
        return issubclass(cls, classinfo)
    except TypeError:
        if type(cls) is Proxy:
            return False
        raise


def _calling_context(what: str):
    """The context of the innermost capsule frame above the builtin that asks.

    Capsule builtins hold no reference to their context (a closure cell would give it to
    any library that reads ``__closure__`` for the capsule, pandas' eval or typing's
    ForwardRef among them: I4); they find it on the stack, where only frames of capsule
    code carry it."""
    ctx = tripwire.current_context()
    if ctx is None:
        raise CapsuleTypeError(f"{what} of a capsule was called outside any capsule", "builtins")
    return ctx


def _make_input():
    def input(prompt="", /):  # noqa: A001 - the capsule's input()
        """input(): only when the policy or a grant allows it (it can phish the user)."""
        context = _calling_context("input()")
        if not context.may_input():
            err = CapsulePermissionError(
                "input() in a capsule (it could ask the user for a password)",
                "builtins",
                "c.CapsulePolicy.allow_input = True, or "
                + context.how_to_grant("input", "input()"),
            )
            context.record_refusal(err, kind="input", target="input()")
            raise err
        answer = tripwire.trusted_input(capsule_prompt(prompt))  # never like an approval
        return "".join([answer])

    return input


# -- imports ---------------------------------------------------------------------------------
def _make_import():
    _epoch = epoch.STATE
    _modules = sys.modules

    def __import__(name, globals=None, locals=None, fromlist=(), level=0):  # noqa: A002
        context = _calling_context("__import__")
        # The same import again (an import statement in a hot function): the decision made
        # last time, while nothing it rests on changed -- no grant, revoke, expiry or policy
        # change since (the epoch), no module imported since, the same module, the
        # capability still active.  The use is counted (Registry.count_use).
        key = None
        if type(name) is str and not level:
            if fromlist is None or (
                type(fromlist) is tuple and all(type(f) is str for f in fromlist)
            ):
                # exact strs only: nothing capsule-defined is hashed ('import a' by its name)
                key = name if fromlist is None else (name, fromlist)
        if key is not None:
            hit = context.import_cache.get(key)
            if (
                hit is not None
                and hit[0] == _epoch[0]
                and hit[1] == len(_modules)
                and _modules.get(name) is hit[2]
                and not hit[4].revoked
            ):
                registry = context.registry
                registry.count_use(hit[4], name)
                counter = registry.counter(hit[4], name)
                if counter is not hit[5]:  # retired by the last event: the C path needs it
                    context.import_cache[key] = (*hit[:5], counter)
                return hit[3]
        made_in = _epoch[0]
        view, cap = _import(context, name, fromlist, level)
        if key is not None and cap is not None:
            entry = (made_in, len(_modules), _modules.get(name), view, cap)
            # and what the C fast path counts the use with (Registry.counter)
            context.import_cache[key] = (*entry, context.registry.counter(cap, name))
        return view

    def _import(context, name, fromlist, level):
        name = guard.exact_name(name)
        if level:
            raise CapsuleImportError(
                "relative imports are not available in a capsule", "builtins", None
            )
        cap = context.check_import(name, counted=True)
        library_check_import(context, name)
        once = cap is None  # an 'Allow once' approval: its view answers while the cell runs
        if name in SPECIAL_MODULES:
            mod = _special_module(name)
            if name == "IPython.display" and not fromlist:
                raise CapsuleImportError(
                    "use 'from IPython.display import display'", "builtins", None
                )
            if name == "os.path" and not fromlist:
                # 'import os.path' binds an os of path only
                return make_view(os_view(), context, name, once), cap
            return make_view(mod, context, name, once), cap
        top = tripwire.trusted_import(name)
        items = [guard.exact_name(f) for f in (fromlist or ())]
        target = sys.modules[name] if items else top
        if not items:
            # 'import a.b' binds 'a': a view whose submodules are views when allowed.
            return make_view(top, context, name, once), cap
        complete = True  # every name is there: the same import again needs no import
        for item in items:
            if item == "*" or hasattr(target, item):
                continue
            complete = False
            full = f"{name}.{item}"
            if context.may_import(full):
                try:
                    tripwire.trusted_import(full)
                except ModuleNotFoundError:
                    pass
        return make_view(target, context, name, once), cap if complete else None

    return __import__


# -- files ---------------------------------------------------------------------------------
def _make_open():
    def open(
        file,
        mode="r",
        buffering=-1,
        encoding=None,
        errors=None,
        newline=None,  # noqa: A001
        closefd=True,
        opener=None,
    ):
        """open(): only paths this capsule was granted (checked on the real path)."""
        context = _calling_context("open()")
        if opener is not None or closefd is not True:
            raise CapsuleTypeError(
                "open() with opener or closefd is not available in a capsule", "builtins", None
            )
        if isinstance(file, int) or isinstance(file, bool):
            raise CapsulePermissionError("open() of a file descriptor", "builtins", None)
        path = os.fspath(file)
        if isinstance(path, bytes):
            path = os.fsdecode(bytes(memoryview(path)))
        path = "".join([path])
        mode = guard.exact_name(mode)
        wants_write = any(c in mode for c in "wax+")
        wants_read = "r" in mode or "+" in mode
        resolved = os.path.realpath(path)
        if wants_read:
            context.check_path("read", resolved, typed=path)
        if wants_write:
            context.check_path("write", resolved, typed=path)
        opened = tripwire.trusted_open(
            resolved, mode, buffering, encoding, errors, newline, verify=_verify_opened
        )
        # Revocable: every read/write checks the grant is still active (ipycap/engine/handles.py).
        kinds = ("read",) * wants_read + ("write",) * wants_write
        return handles.revocable(opened, context, kinds, resolved)

    return open


_PROC_FD = []  # [True] once /proc/self/fd was seen (it does not go away)


def _verify_opened(fd: int, resolved: str) -> None:
    """After opening: the file really is the checked path (no symlink swap, no hard link)."""
    if not _PROC_FD and os.path.exists("/proc/self/fd"):
        _PROC_FD.append(True)
    real = os.readlink(f"/proc/self/fd/{fd}") if _PROC_FD else resolved
    st = os.fstat(fd)
    if real != resolved:
        raise CapsulePermissionError(
            f"open({resolved!r}) reached {real!r} instead (the path changed while it was checked)",
            "builtins",
            None,
        )
    if stat.S_ISREG(st.st_mode) and st.st_nlink > 1:
        raise CapsulePermissionError(
            f"open({resolved!r}): the file has {st.st_nlink} hard links, so the same file "
            "may live outside the grant",
            "builtins",
            "copy the file instead of linking it",
        )


__all__ = ["make_builtins", "ModuleView", "CapabilityError"]


def _record_refusal_on_stack(err) -> None:
    ctx = tripwire.current_context()
    if ctx is not None:
        ctx.record_refusal(err)


# One set of builtins for every capsule (per mode): none of them holds a context.
_IMPORT = _make_import()
_OPEN = _make_open()
_INPUT = _make_input()
_ACCESSORS = {
    mode: guard.make_accessors(mode, on_refuse=_record_refusal_on_stack)
    for mode in ("proxy", "rexec")
}
# The C fast paths in front of them (ipycap.engine.fastpaths): the same decisions.
_FAST = fastpaths.install(
    slow={
        "__import__": _IMPORT,
        "isinstance": _isinstance,
        "issubclass": _issubclass,
        "getattr": _ACCESSORS["proxy"]["getattr"],
        "hasattr": _ACCESSORS["proxy"]["hasattr"],
        "getattr_rexec": _ACCESSORS["rexec"]["getattr"],
        "hasattr_rexec": _ACCESSORS["rexec"]["hasattr"],
        "_ipycap_getattr": _ACCESSORS["proxy"]["_ipycap_getattr"],
        "vars": _ACCESSORS["proxy"]["vars"],
    },
    proxy_type=Proxy,
    view_type=ModuleView,
)
_IMPORT = _FAST["__import__"]
for _name in ("getattr", "hasattr", "_ipycap_getattr", "vars"):
    _ACCESSORS["proxy"][_name] = _FAST[_name]
for _name in ("getattr", "hasattr"):
    _ACCESSORS["rexec"][_name] = _FAST[f"{_name}_rexec"]
del _name
