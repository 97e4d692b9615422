"""Module views: what a capsule gets for ``import m`` — a read-only view of the module's
public names, with submodules visible only when the capsule may import them — and the
capsule-safe stand-ins for ``sys`` and ``IPython.display``."""

from __future__ import annotations

import copyreg
import reprlib
import sys
import types

from . import guard, tripwire
from .errors import CapsuleAttributeError, CapsuleImportError, CapsuleTypeError
from .stdviews import STAND_INS

_HEAPTYPE = 1 << 9

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
    elif _library_view_attr is not None and _library_refused(module.__name__, name):
        value = _library_view_attr(module.__name__, name, None)  # raises the refusal
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
    if override is None and _library_view_attr is not None:
        value = _library_view_attr(module.__name__, name, value)  # a library profile's say
    if type(value) is types.ModuleType:
        return _context_view(value, f"{module.__name__}.{name}")
    if isinstance(value, type):
        guard.share_class(value)
    _view_dict(self)[name] = value
    return value


if _set_view_hook is not None:
    _set_view_hook(_view_miss)


def _private(modname, name):
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


#: Library profiles (ipycap.engine.libraries.wrappers) decide what views of granted
#: libraries hand out; set below, after this module's names exist.
_library_view_attr = _library_refused = _library_install = None

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
    if _library_install is not None:
        _library_install()  # profiled methods of libraries imported since (once each)
    if view is None or _view_module(view) is not module:
        view = ModuleView.__new__(ModuleView)
        _view_set_module(view, module)
        _VIEWS[module.__name__] = view
    return view


def _context_view(module, name):
    """A module reached as an attribute: a view when the capsule may import it, else refused."""
    context = tripwire.current_context()
    if any(module is m for m in _SPECIAL_CACHE.values()):
        return make_view(module, context)  # a stand-in's own part (os.path of 'import os.path')
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


SPECIAL_MODULES = {"sys": _sys_view, "IPython.display": _display_view, **STAND_INS}
_SPECIAL_CACHE: dict = {}


def _special_module(name):
    mod = _SPECIAL_CACHE.get(name)
    if mod is None:
        mod = _SPECIAL_CACHE[name] = SPECIAL_MODULES[name]()
    return mod


_CAPSULE_REPR = reprlib.Repr()  # the capsules' own, never the one trusted code uses

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


from .libraries import wrappers as _library_wrappers  # noqa: E402

_library_view_attr = _library_wrappers.view_attr
_library_refused = _library_wrappers.is_view_refused
_library_install = _library_wrappers.install
