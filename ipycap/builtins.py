"""Capsule builtins: a fresh builtins dict per capsule.

The safe subset of Python's builtins, the guarded accessors, an ``__import__`` that follows
the policy's three import tiers and hands out read-only module views, an ``open`` that checks
the registry's path grants on the real path, gated ``exec``/``eval``/``compile``, and
refusing stand-ins for ``input``, ``help``, ``breakpoint``, ``exit`` and friends.
"""

from __future__ import annotations

import builtins as _py
import copyreg
import os
import reprlib
import stat
import sys
import types

from . import guard, stdlib_guards, tripwire
from .errors import (
    CapabilityError,
    CapsuleImportError,
    CapsulePermissionError,
    CapsuleTypeError,
)
from .membrane import Proxy

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

    def __init__(self, name, why):
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "why", why)

    def __setattr__(self, name, value):
        raise CapsuleTypeError(f"{self.name} cannot be changed", "builtins")

    def __call__(self, *args, **kwargs):
        hint = "use obj? in a notebook for help" if self.name == "help" else None
        raise CapsuleTypeError(
            f"{self.name}() is not available in a capsule: {self.why}", "builtins", hint=hint
        )

    def __repr__(self):
        return f"<{self.name}: not available in a capsule>"


# -- module views ----------------------------------------------------------------------------
try:
    from ._speedups import ViewBase as _ViewBase
    from ._speedups import set_view_hook as _set_view_hook
except ImportError:  # pragma: no cover - without the extension, __getattr__ below decides
    _ViewBase, _set_view_hook = object, None


class ModuleView(_ViewBase):
    """A read-only view of a module: public names only; modules inside are views or refused."""

    # The instance dict caches names already decided (never submodules: whether a capsule may
    # see one depends on that capsule's grants), so 'math.sqrt' in a loop is a C-speed
    # lookup.  Capsule code cannot write to it: assignment is refused and __dict__ is never
    # given out.
    __slots__ = ("__ipycap_module__", "__dict__")

    if _set_view_hook is None:

        def __getattr__(self, name):
            return _view_miss(self, name)

    @property
    def __class__(self):
        # isinstance(view, types.ModuleType) holds, like for the module it stands for.
        return types.ModuleType

    def __setattr__(self, name, value):
        raise CapsuleTypeError(
            f"module views are read-only (cannot set {name!r})", "builtins", None
        )

    def __delattr__(self, name):
        raise CapsuleTypeError(
            f"module views are read-only (cannot delete {name!r})", "builtins", None
        )

    def __dir__(self):
        return _public_names(_view_module(self))

    def __repr__(self):
        return f"<module {_view_module(self).__name__!r} (capsule view)>"

    def __reduce_ex__(self, protocol):
        raise CapsuleTypeError("module views cannot be pickled", "builtins")


_view_module = ModuleView.__dict__["__ipycap_module__"].__get__
_view_set_module = ModuleView.__dict__["__ipycap_module__"].__set__
_view_dict = ModuleView.__dict__["__dict__"].__get__


def _view_miss(self, name):
    """A name the view has not decided yet (the C fast path found no cached value)."""
    name = guard.exact_name(name)
    module = _view_module(self)
    if name == "__all__":
        return _public_names(module)
    if name == "__name__":  # read by 'from m import x' for its error messages
        return module.__name__
    if name[:1] == "_":
        raise _private(module.__name__, name)
    override = MODULE_OVERRIDES.get((module.__name__, name))
    if override is not None:
        value = override
    else:
        try:
            value = getattr(module, name)
        except AttributeError:
            # A fresh error: the one Python raised carries the raw module in .obj (3.10+),
            # and from the raw module every other module is one attribute away.
            missing = AttributeError(f"module {module.__name__!r} has no attribute {name!r}")
        else:
            missing = None
        if missing is not None:
            raise missing
    if type(value) is types.ModuleType:
        return _context_view(value, f"{module.__name__}.{name}")
    if isinstance(value, type):
        guard.share_class(value)
    _view_dict(self)[name] = value
    return value


if _set_view_hook is not None:
    _set_view_hook(_view_miss)


def _private(modname, name):
    from .errors import CapsuleAttributeError

    return CapsuleAttributeError(f"{modname}.{name} is private module state", "builtins", None)


def _view_dunder(view, name):
    module = _view_module(view)
    if name in ("__name__", "__doc__", "__package__", "__version__", "__file__"):
        value = getattr(module, name, None)
        return value if type(value) is str or value is None else None
    if name == "__all__":
        return _public_names(module)
    if name == "__class__":
        return types.ModuleType
    if name == "__dir__":
        return view.__dir__
    raise _private(module.__name__, name)


guard.PROXY_TYPES[ModuleView] = _view_dunder


def _public_names(module):
    names = getattr(module, "__all__", None)
    if not (isinstance(names, (list, tuple)) and all(type(n) is str for n in names)):
        names = [n for n in dir(module) if n[:1] != "_"]
    return [n for n in names if n[:1] != "_"]


#: One view per module: what a view may hand out is decided per access, for the capsule
#: on the stack (tripwire.current_context), so views can be shared between capsules.
_VIEWS: dict = {}


def make_view(module, context=None) -> ModuleView:
    """The read-only view of ``module`` (``context`` is accepted for the call sites' clarity).

    The raw ``sys`` and ``IPython.display`` are never viewed: their capsule-safe stand-ins
    are viewed instead."""
    if module.__name__ in SPECIAL_MODULES and module is sys.modules.get(module.__name__):
        module = _special_module(module.__name__)
    view = _VIEWS.get(module.__name__)
    if view is None or _view_module(view) is not module:
        view = ModuleView.__new__(ModuleView)
        _view_set_module(view, module)
        _VIEWS[module.__name__] = view
    return view


def _context_view(module, name):
    """A module reached as an attribute: a view when the capsule may import it, else refused."""
    context = tripwire.current_context()
    if module.__name__ in SPECIAL_MODULES:
        raise CapsuleImportError(
            f"{name} is the raw {module.__name__} module",
            "builtins",
            hint=f"'import {module.__name__}' gives the capsule-safe view",
        )
    if context is not None and context.may_import(module.__name__):
        return make_view(module, context)
    raise CapsuleImportError(
        f"module {module.__name__!r} (reached as {name}) is not available to this capsule",
        "builtins",
        context.how_to_grant("import", module.__name__)
        if context and context.policy.import_tier(module.__name__) == "grantable"
        else None,
    )


def module_view_for_membrane(module):
    return _context_view(module, module.__name__)


# -- capsule-safe sys ---------------------------------------------------------------------
class _Stream:
    """A write-only stand-in for sys.stdout/stderr: the real stream is looked up per call, and
    nothing else of it (its session, its sockets) is reachable."""

    __slots__ = ("_name",)

    def __init__(self, name):
        object.__setattr__(self, "_name", name)

    def __setattr__(self, name, value):
        raise CapsuleTypeError("the capsule's sys streams are read-only", "builtins")

    def write(self, text):
        return getattr(sys, self._name).write(
            "".join([text]) if isinstance(text, str) else str(text)
        )

    def writelines(self, lines):
        for line in lines:
            self.write(line)

    def flush(self):
        getattr(sys, self._name).flush()

    def isatty(self):
        return False

    @property
    def encoding(self):
        return "utf-8"

    def __repr__(self):
        return f"<capsule {self._name}>"


SYS_NAMES = (
    "version",
    "version_info",
    "hexversion",
    "maxsize",
    "maxunicode",
    "byteorder",
    "platform",
    "float_info",
    "int_info",
    "hash_info",
    "float_repr_style",
    "implementation",
    "getrecursionlimit",
    "getsizeof",
    "intern",
    "getdefaultencoding",
    "getfilesystemencoding",
    "api_version",
    "copyright",
)


def _sys_view():
    mod = types.ModuleType("sys", "A capsule-safe view of sys: streams and version facts only.")
    for n in SYS_NAMES:
        setattr(mod, n, getattr(sys, n))
    mod.stdout = _Stream("stdout")
    mod.stderr = _Stream("stderr")
    mod.__all__ = list(SYS_NAMES) + ["stdout", "stderr"]
    return mod


def _display_view():
    tripwire.trusted_import("IPython.display")  # a trusted helper: the tripwire's mark
    d = sys.modules["IPython.display"]

    mod = types.ModuleType("IPython.display", "Capsule-safe IPython.display: output is filtered.")
    names = [
        "display",
        "clear_output",
        "update_display",
        "HTML",
        "Markdown",
        "Image",
        "SVG",
        "Javascript",
        "Latex",
        "Math",
        "Pretty",
        "JSON",
        "Code",
        "DisplayHandle",
        "display_html",
        "display_markdown",
        "display_png",
        "display_pretty",
    ]
    for n in names:
        if hasattr(d, n):
            setattr(mod, n, getattr(d, n))
    mod.__all__ = [n for n in names if hasattr(d, n)]
    _freeze_shared_classes(vars(mod).values(), "IPython")
    return mod


def _freeze_shared_classes(values, package):
    """Make the classes among ``values`` (and their bases from ``package``) immutable: they
    are shared with trusted code, so HTML.__init__ = spy would receive the data of every
    trusted HTML(...) built later.  Subclassing still works."""
    if guard._freeze_type is None:
        return
    for cls in values:
        if isinstance(cls, type):
            for base in cls.__mro__:
                if base.__flags__ & _HEAPTYPE and base.__module__.partition(".")[0] == package:
                    guard._freeze_type(base)


SPECIAL_MODULES = {"sys": _sys_view, "IPython.display": _display_view}
_SPECIAL_CACHE: dict = {}


def _special_module(name):
    mod = _SPECIAL_CACHE.get(name)
    if mod is None:
        mod = _SPECIAL_CACHE[name] = SPECIAL_MODULES[name]()
    return mod


_CAPSULE_REPR = reprlib.Repr()  # the capsules' own, never the one trusted code uses
stdlib_guards.install()

MODULE_OVERRIDES = {
    ("string", "Formatter"): guard.GuardedFormatter,
    ("operator", "attrgetter"): guard.attrgetter,
    ("operator", "methodcaller"): guard.methodcaller,
    # _operator is a default import (operator's C half); its attrgetter reads any attribute
    # in C, e.g. _operator.attrgetter('__globals__')(pprint.pprint), past the guard.
    ("_operator", "attrgetter"): guard.attrgetter,
    ("_operator", "methodcaller"): guard.methodcaller,
    # update_wrapper reads and sets attributes its caller names (assigned=('__globals__',)).
    ("functools", "update_wrapper"): guard.update_wrapper,
    ("functools", "wraps"): guard.wraps,
    # copy.dispatch_table is copyreg's: a hook put there runs when trusted code copies or
    # pickles an object of that class, and receives the raw object.
    ("copy", "dispatch_table"): types.MappingProxyType(copyreg.dispatch_table),
    # reprlib.repr/aRepr are one Repr instance that trusted code calls: an instance attribute
    # 'repr_Vault' on it would receive every trusted Vault that reprlib.repr formats.
    ("reprlib", "aRepr"): _CAPSULE_REPR,
    ("reprlib", "repr"): _CAPSULE_REPR.repr,
}


# -- the builtins dict ---------------------------------------------------------------------
def make_builtins(context) -> dict:
    """A fresh builtins dict for one capsule context."""
    b = {name: getattr(_py, name) for name in SAFE_BUILTINS if hasattr(_py, name)}
    b.update(guard.make_accessors(context.mode, on_refuse=context.record_refusal))
    for name, why in REFUSING.items():
        b[name] = _Refusing(name, why)
    b[guard.CAPSULE_MARK] = context
    b["__import__"] = _make_import(context)
    b["open"] = _make_open(context)
    b["__build_class__"] = _build_class
    b["type"] = _type
    b["issubclass"] = _issubclass
    b["isinstance"] = _isinstance
    b["globals"] = _globals
    b["locals"] = _locals
    b["input"] = _make_input(context)
    from .capsule import make_code_builtins

    b.update(make_code_builtins(context))
    return b


def _build_class(func, name, *bases, **kwargs):
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
    cls = _py.__build_class__(func, name, *bases, **kwargs)
    if isinstance(cls, type):
        guard.OWN_TYPES.add(cls)
    return cls


class _CapsuleType:
    """The capsule's ``type``: ``type(x)`` keeps a proxy's class proxied, ``type(name, bases,
    ns)`` makes an own class, and ``isinstance(x, type)`` / ``class M(type)`` work as usual."""

    __slots__ = ()
    __name__ = __qualname__ = "type"

    def __call__(self, *args, **kwargs):
        if len(args) == 1 and not kwargs:
            obj = args[0]
            tp = type(obj)
            if tp is Proxy:
                from .membrane import capability_of, class_for_capsule, target_of

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
            cls = type(guard.exact_name(name), bases, dict(ns), **kwargs)
            guard.OWN_TYPES.add(cls)
            return cls
        raise TypeError("type() takes 1 or 3 arguments")

    def __instancecheck__(self, obj):
        return isinstance(obj, type)

    def __subclasscheck__(self, cls):
        return issubclass(cls, type)

    def __mro_entries__(self, bases):
        return (type,)

    def __repr__(self):
        return "<class 'type'>"


_type = _CapsuleType()
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
    from .membrane import target_of

    def one(c):
        return target_of(c) if type(c) is Proxy else (type if c is _type else c)

    return tuple(one(c) for c in classinfo) if type(classinfo) is tuple else one(classinfo)


def _isinstance(obj, classinfo, /):
    """isinstance that sees through proxies where no capsule code can watch."""
    from .membrane import target_of

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
    from .membrane import target_of

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


def _globals():
    """The capsule's globals, read-only (assign names with ordinary statements)."""
    return types.MappingProxyType(sys._getframe(1).f_globals)


def _locals():
    """A snapshot of the caller's local names."""
    return dict(sys._getframe(1).f_locals)


def _make_input(context):
    def input(prompt="", /):  # noqa: A001 - the capsule's input()
        """input(): only when the policy or a grant allows it (it can phish the user)."""
        if not context.may_input():
            err = CapsulePermissionError(
                "input() in a capsule (it could ask the user for a password)",
                "builtins",
                "c.CapsulePolicy.allow_input = True, or "
                + context.how_to_grant("input", "input()"),
            )
            context.record_refusal(err, kind="input", target="input()")
            raise err
        answer = tripwire.trusted_input("".join([str(prompt)]))
        return "".join([answer])

    return input


# -- imports ---------------------------------------------------------------------------------
def _make_import(context):
    def __import__(name, globals=None, locals=None, fromlist=(), level=0):  # noqa: A002
        name = guard.exact_name(name)
        if level:
            raise CapsuleImportError(
                "relative imports are not available in a capsule", "builtins", None
            )
        context.check_import(name)
        if name in SPECIAL_MODULES:
            mod = _special_module(name)
            if name == "IPython.display" and not fromlist:
                raise CapsuleImportError(
                    "use 'from IPython.display import display'", "builtins", None
                )
            return make_view(mod, context)
        top = tripwire.trusted_import(name)
        items = [guard.exact_name(f) for f in (fromlist or ())]
        target = sys.modules[name] if items else top
        if not items:
            # 'import a.b' binds 'a': a view whose submodules are views when allowed.
            return make_view(top, context)
        for item in items:
            if item == "*" or hasattr(target, item):
                continue
            full = f"{name}.{item}"
            if context.may_import(full):
                try:
                    tripwire.trusted_import(full)
                except ModuleNotFoundError:
                    pass
        return make_view(target, context)

    return __import__


# -- files ---------------------------------------------------------------------------------
def _make_open(context):
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
            context.check_path("read", resolved)
        if wants_write:
            context.check_path("write", resolved)
        return tripwire.trusted_open(
            resolved, mode, buffering, encoding, errors, newline, verify=_verify_opened
        )

    return open


def _verify_opened(fd: int, resolved: str) -> None:
    """After opening: the file really is the checked path (no symlink swap, no hard link)."""
    real = os.readlink(f"/proc/self/fd/{fd}") if os.path.exists("/proc/self/fd") else resolved
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
