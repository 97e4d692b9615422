"""Module views: what a capsule gets for ``import m`` — a read-only view of the module's
public names, with submodules visible only when the capsule may import them — and the
capsule-safe stand-ins for ``sys`` and ``IPython.display``."""

from __future__ import annotations

import calendar
import copyreg
import decimal
import itertools
import operator
import random
import reprlib
import sys
import types
import weakref

from . import caches, epoch, guard, rules, tripwire
from . import classfreeze as _classfreeze
from . import deputies as _deputies
from . import tables as _tables
from .errors import (
    CapabilityError,
    CapsuleAttributeError,
    CapsuleImportError,
    CapsuleRevokedError,
    CapsuleTypeError,
)
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
    __slots__ = ("__ipycap_module__", "__dict__", "__weakref__")

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
    """A name the view has not decided yet (the C fast path found no cached value).

    A view never answers a miss with an ``AttributeError`` when ``module.name`` is in
    ``sys.modules``: CPython's ``from m import name`` (IMPORT_FROM) takes any AttributeError
    for a circular import and falls back to ``sys.modules[m.__name__ + '.' + name]`` -- the
    raw submodule (``from re import _compiler`` gave the raw module, red team 10)."""
    try:
        return _decide_miss(self, name)
    except AttributeError as e:
        full = f"{_view_module(self).__name__}.{guard.exact_name(name)}"
        if full not in sys.modules:
            raise
        what = e.what if isinstance(e, CapabilityError) else str(e)
        raise CapsuleImportError(what, "builtins", getattr(e, "hint", None)) from None


def _decide_miss(self, name):
    name = guard.exact_name(name)
    module = _view_module(self)
    owner = _owner_of(self)
    # None: checked at every use (an 'Allow once' view); else valid until the next change
    checked = _EPOCH[0] if owner is None or owner.token is _EPOCH[0] else _check_owner(owner, name)
    if name == "__all__":
        return _public_names(module)
    if name == "__name__":  # read by 'from m import x' for its error messages
        return module.__name__
    if name[:1] == "_":
        raise _private(module.__name__, name)
    override = MODULE_OVERRIDES.get((module.__name__, name))
    copied = PER_CAPSULE.get((module.__name__, name))
    if copied is not None:
        # one copy per capsule view, kept across authority changes (its changes stay its own)
        kept = owner.kept if owner is not None else {}
        override = kept.get(name)
        if override is None:
            override = kept[name] = copied()
    if type(override) is _deputies.PerCapsule:
        return override.get()  # each capsule's own copy: never cached in the shared view
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
    if isinstance(value, types.ModuleType):  # a ModuleType subclass too (lazy modules)
        return _context_view(value, f"{module.__name__}.{name}")
    if module.__name__.partition(".")[0] not in _STDLIB or type(value) is types.MethodType:
        # A method in a standard-library module is trusted code's when its object is (the
        # kernel's getpass.getpass is ipykernel's bound method, installed while cells run).
        _check_reexport(module.__name__, name, value)
    if isinstance(value, type):
        guard.share_class(value)
    value = _read_only_container(value)
    d = _view_dict(self)
    if owner is not None:
        if (
            type(value) in _FUNCTION_TYPES
            and _make_function is not None
            and not _is_ipycap_stand_in(value)
        ):
            value = _revocable_function(owner, name, value)
        if checked is None:
            return value
        if not d:
            _FILLED.append(self)  # its decisions are dropped at the next authority change
    d[name] = value
    return value


# -- revocation: a view answers, and its functions run, only while its grant holds -----------
#: A view made for a capsule belongs to that capsule's context, and the import names that
#: admitted it.  Its decided names (the instance dict the C lookup reads) are dropped at
#: every authority change (epoch.bump), so the next read of each asks again; the functions
#: it handed out are ViewFunctions (_viewcalls.c) that compare the epoch per call and ask
#: again only after a change.  The table is trusted state keyed by the view's identity: the
#: view holds no reference to its context (I4).
_EPOCH = epoch.STATE
_OWNERS: dict = {}  # address of a view -> (weakref to the view, its _Owner)
_FILLED: list = []  # owned views whose instance dict holds decisions
_FUNCTION_TYPES = frozenset({types.FunctionType, types.BuiltinFunctionType, types.MethodType})

try:
    from . import _viewcalls
except ImportError:  # pragma: no cover - without the extension, the view's reads decide alone
    _viewcalls = None
_make_function = _viewcalls.make if _viewcalls is not None else None


class _Owner:
    """Whose view it is: the capsule context (weakly), the import names that admitted it,
    the cell of an 'Allow once' approval, and the functions it handed out."""

    __slots__ = ("context", "module", "names", "once", "token", "functions", "kept")

    def __init__(self, context, module):
        self.context = weakref.ref(context)
        self.module = module
        self.names: list = []
        self.once = None
        self.token = None  # the epoch it was last found valid in
        self.functions: dict = {}
        self.kept: dict = {}  # PER_CAPSULE copies


def _owner_of(view):
    entry = _OWNERS.get(guard._address(view))
    if entry is None or entry[0]() is not view:
        return None
    return entry[1]


def _forget_decisions():
    """After a grant, revoke, expiry or policy change: owned views decide every name again."""
    filled = _FILLED[:]
    del _FILLED[:]
    for view in filled:
        _view_dict(view).clear()


epoch.LISTENERS.append(_forget_decisions)


def _check_owner(owner, name=None):
    """Raise the refusal if the view's capsule may no longer import its module; else return
    the epoch it was checked in (the C functions remember it)."""
    if type(owner) is not _Owner:
        raise CapsuleTypeError("not a module view's function", "builtins")
    token = _EPOCH[0]
    context = owner.context()
    what = f"{owner.module}.{name}" if name else f"module {owner.module!r}"
    if context is None:
        raise CapsuleRevokedError(
            f"{what}: the capsule that imported it has ended; import it again", "builtins"
        )
    if any(context.may_import(n) for n in owner.names):
        owner.token = token
        return token
    if owner.once is not None and context.running and context.registry.cell == owner.once:
        return None  # valid while the approving cell runs: no epoch marks its end
    err = _revoked_import(context, owner, what)
    context.record_refusal(err, kind="import", target=owner.names[0] if owner.names else "")
    raise err


def _revoked_import(context, owner, what):
    names = owner.names or [owner.module]
    ended = [
        c
        for c in context.registry.find("import", None, active=False)
        if any(n == c.target or n.startswith(c.target + ".") for n in names)
    ]
    top = names[0].partition(".")[0]
    tier = context.policy.import_tier(top)
    how = context.how_to_grant("import", top) if tier in ("default", "grantable") else None
    if not ended:
        return CapsuleRevokedError(
            f"{what}: this capsule may no longer import {names[0]!r}", "builtins", how
        )
    cap = ended[-1]
    why = "was for one cell, which has ended" if cap.expired else "was revoked"
    return CapsuleRevokedError(
        f"{what}: the capsule's import capability {cap.id} ({cap.target!r}) {why}",
        "builtins",
        how,
    )


def _is_ipycap_stand_in(fn) -> bool:
    """Functions handed out as they are: ipycap's own guarded stand-ins (operator.attrgetter,
    the capsule's display: they hold no authority of the module they stand in, and the engine
    recognises them by identity), and functions used as class bases (typing.NamedTuple and
    TypedDict: a class statement needs their ``__mro_entries__``)."""
    if type(fn) is types.FunctionType and "__mro_entries__" in fn.__dict__:
        return True
    module = fn.__module__ if type(fn) is not types.MethodType else None
    return type(module) is str and module.partition(".")[0] == "ipycap"


#: Standard-library modules whose functions take objects by identity (copy, display,
#: operator dispatch, an element chosen or returned as it is, a class's own methods): their
#: arguments pass as they are.  None of them stores a str/bytes key in a module-level table
#: (typing's caches skip capsule-made keys: caches.py).  Every other standard-library
#: module's functions get exact builtin copies of value-subclass arguments (issue 11, I3).
_BY_IDENTITY = frozenset(
    """copy copyreg pickle pprint reprlib dataclasses enum functools operator itertools
    collections typing numbers heapq bisect abc contextlib queue graphlib math cmath
    statistics random weakref sys io types inspect builtins""".split()
)


def _converts(owner, fn) -> bool:
    """Whether the view's function gets exact copies of value-subclass arguments: a function
    of a standard-library module not taking objects by identity (a method is its object's)."""
    top = owner.module.partition(".")[0]
    if top not in _STDLIB or top in _BY_IDENTITY or type(fn) is types.MethodType:
        return False
    module = getattr(fn, "__module__", None)
    return type(module) is str and module.partition(".")[0].lstrip("_") not in _BY_IDENTITY


def _revocable_function(owner, name, fn):
    """The function ``fn`` of the view, as the view hands it out: one wrapper per name and
    function (so ``json.dumps is json.dumps`` holds across authority changes)."""
    kept = owner.functions.get(name)
    if kept is not None and _viewcalls.unwrap(kept) is fn:
        return kept
    convert = caches.exact_args if _converts(owner, fn) else None
    wrapped = owner.functions[name] = _make_function(fn, owner, convert)
    return wrapped


def _view_function_dunder(f, name):
    if name in ("__name__", "__qualname__", "__module__", "__doc__", "__text_signature__"):
        return getattr(f, name)
    if name == "__class__":
        return type(f)
    raise CapsuleAttributeError(
        f"{name!r} of a module's function is not available to capsule code", "guard", None
    )


_CONTAINERS = (dict, list, set)


def _is_module_table(value, fn) -> bool:
    """Whether ``value`` is one of the globals of ``fn``'s module, by identity (a scan in C:
    no cache to go stale when a module rebinds a table lazily)."""
    g = getattr(fn, "__globals__", None)
    if type(g) is not dict:
        module = sys.modules.get(getattr(fn, "__module__", None) or "")
        g = getattr(module, "__dict__", None) if module is not None else None
        if type(g) is not dict:
            return False
    return any(map(operator.is_, dict.values(g), itertools.repeat(value)))


def _call_result(value, fn):
    """What a view's function returned, when it is or holds a module, or is a container
    (_viewcalls.c checks): a module is the capsule's view of it, or refused, as for a module
    reached as an attribute (polars' ``import_optional('sys')`` was raw ``sys``); a table of
    the function's own module comes back read-only, as the module attribute would
    (sklearn's ``distance_metrics()``, session 11)."""
    tp = type(value)
    if tp in _CONTAINERS:
        if _is_module_table(value, fn):
            return _read_only_container(value)
        return value
    if isinstance(value, types.ModuleType):
        return _context_view(value, "the result of a library call")
    return tuple(_call_result(v, fn) if isinstance(v, types.ModuleType) else v for v in value)


if _viewcalls is not None:
    _viewcalls.setup(epoch.STATE, _check_owner)
    _viewcalls.set_result_hook(_call_result)
    guard.PROXY_TYPES[_viewcalls.ViewFunction] = _view_function_dunder


_STDLIB = frozenset(sys.stdlib_module_names)
_READ_ONLY = {list: tuple, set: frozenset, bytearray: bytes}


def _read_only_container(value):
    """A module-level container, as capsules see it: a read-only snapshot.  Raw, it is the
    module's own table (``warnings.filters``, ``calendar.mdays``): a capsule could put
    objects there that trusted code later calls or trusts (I3)."""
    tp = type(value)
    if tp is dict:  # entries read-only too (matplotlib's style library: an RcParams a style)
        return _tables.ReadOnlyTable(dict(value), "a module-level table")
    convert = _READ_ONLY.get(tp)
    if convert is tuple or convert is frozenset:
        return convert(_tables.read_only(v) for v in value)
    return convert(value) if convert is not None else value


def _defining_module(value):
    if type(value) is types.MethodType:
        owner = value.__self__  # an instance, or the class of a classmethod
        owner = owner if issubclass(type(owner), type) else type(owner)
        module = type.__dict__["__module__"].__get__(owner)
    elif isinstance(value, (types.FunctionType, types.BuiltinFunctionType, type)):
        module = getattr(value, "__module__", None)
    else:
        module = type.__dict__["__module__"].__get__(type(value))
    return module if type(module) is str else None


def _check_reexport(modname, name, value) -> None:
    """A granted library's attribute that is really a denied module's (scikit-learn's
    ``utils.discovery.import_module`` is importlib's, tqdm's ``getenv`` is os's, a backend's
    ``Comm`` is ipykernel's): refused as the denied module itself would be."""
    defining = _defining_module(value)
    if defining is None or defining == "builtins" or defining in rules.AUDITED_MODULES:
        return
    ctx = tripwire.current_context()
    if ctx is None:
        return
    # 'internal' too: a library's re-export of warnings.filterwarnings is the deputy itself.
    if ctx.policy.import_tier(defining) in ("denied", "internal") or any(
        ctx.policy.import_tier(".".join(defining.split(".")[:i])) == "denied"
        for i in range(1, defining.count(".") + 1)
    ):
        raise CapsuleImportError(
            f"{modname}.{name} comes from {defining!r}, which capsules may never use",
            "builtins",
            None,
        )


if _set_view_hook is not None:
    _set_view_hook(_view_miss)


def _private(modname, name):
    return CapsuleAttributeError(f"{modname}.{name} is private module state", "builtins", None)


def _view_dunder(view, name):
    module = _view_module(view)
    if not rules.is_dunder(name):  # a name a library profile routes here (rules.LIBRARY_ATTRS)
        return _view_miss(view, name)
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


def make_view(module, context=None, name=None, once=False) -> ModuleView:
    """The read-only view of ``module`` for the capsule of ``context``, admitted by its grant
    to import ``name`` (default: the module's name; ``once``: an 'Allow once' approval, valid
    while that cell runs).  It answers only while that capsule may import ``name``.

    The raw ``sys`` and ``IPython.display`` are never viewed: their capsule-safe stand-ins
    are viewed instead."""
    if module.__name__ in SPECIAL_MODULES and module is sys.modules.get(module.__name__):
        module = _special_module(module.__name__)
    views = _VIEWS if context is None else vars(context).setdefault("module_views", {})
    view = views.get(module.__name__)
    if _library_install is not None:
        _library_install()  # profiled methods of libraries imported since (once each)
    _deputies.on_view(module)
    caches.on_view(module)  # its lru_caches store no capsule-made key (before freezing)
    _classfreeze.freeze_reachable(module)  # stdlib classes it leads to (classfreeze.py)
    if view is None or _view_module(view) is not module:
        view = ModuleView.__new__(ModuleView)
        _view_set_module(view, module)
        views[module.__name__] = view
        if context is not None:
            key = guard._address(view)
            ref = weakref.ref(view, lambda _, key=key: _OWNERS.pop(key, None))
            _OWNERS[key] = (ref, _Owner(context, module.__name__))
    owner = _owner_of(view) if context is not None else None
    if owner is not None:
        if once:
            owner.once = context.registry.cell
        else:
            grant = name or module.__name__
            if grant not in owner.names:
                owner.names.append(grant)
                owner.token = None
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


guard.MODULE_VIEW[0] = _context_view  # guard.decide and the membrane show modules as this


# -- the capsule's builtins, as namespaces hold them ---------------------------------------
_module_dict = types.ModuleType.__dict__["__dict__"].__get__


class BuiltinsModule(types.ModuleType):
    """What a capsule namespace holds as ``__builtins__`` (``globals()['__builtins__']``, the
    ``__builtins__`` of a dict after ``exec('1', g)``): a read-only module whose dict is the
    capsule's builtins dict (CPython reads a module's dict as a frame's builtins).

    Capsule code reads its public builtins through it and nothing else: underscore names
    (the guard's hooks, the capsule mark that leads to the engine's context) are refused,
    assignment and deletion too, so a capsule cannot unmark its own frames or swap a hook
    (I4 in DESIGN.md)."""

    __slots__ = ()

    def __getattribute__(self, name):
        name = guard.exact_name(name)
        if name == "__import__":
            # C code imports through the current globals' builtins with a plain attribute
            # read (PyImport_Import): the capsule's own checked __import__.
            return dict.__getitem__(_module_dict(self), name)
        if rules.is_dunder(name) and name != "__dict__":
            # The class's own dunders (__class__, __repr__, ...) for trusted code that asks;
            # capsule code meets the guard for every dunder (it gives __name__ only).
            return object.__getattribute__(self, name)
        if name[:1] == "_":
            raise CapsuleAttributeError(
                f"{name!r} of the capsule's builtins is the engine's own", "builtins", None
            )
        try:
            return dict.__getitem__(_module_dict(self), name)
        except KeyError:
            raise AttributeError(f"the capsule's builtins have no {name!r}") from None

    def __setattr__(self, name, value):
        raise CapsuleTypeError("the capsule's builtins are read-only", "builtins", None)

    def __delattr__(self, name):
        raise CapsuleTypeError("the capsule's builtins are read-only", "builtins", None)

    def __dir__(self):
        return sorted(k for k in dict.keys(_module_dict(self)) if k[:1] != "_")

    def __repr__(self):
        return "<capsule builtins>"

    def __reduce_ex__(self, protocol):
        raise CapsuleTypeError("the capsule's builtins cannot be pickled", "builtins")


def new_builtins_module(entries: dict) -> tuple[BuiltinsModule, dict]:
    """A capsule builtins module holding ``entries``, and its dict (the frames' builtins)."""
    module = types.ModuleType.__new__(BuiltinsModule)
    types.ModuleType.__init__(module, "builtins", "The builtins of one capsule (read-only).")
    d = _module_dict(module)
    for key in ("__loader__", "__spec__", "__package__"):
        d.pop(key, None)
    d.update(entries)
    return module, d


def is_capsule_builtins(value) -> bool:
    """Whether a namespace's ``__builtins__`` is a capsule's (and so the namespace too)."""
    return type(value) is BuiltinsModule


guard.PROXY_TYPES[BuiltinsModule] = lambda m, name: (
    "builtins"
    if name == "__name__"
    else guard.refuse(m, name, "the capsule's builtins show their public names only")
)


# -- capsule-safe sys ---------------------------------------------------------------------
class _Stream:
    """A write-only stand-in for sys.stdout/stderr: the real stream is looked up per call, and
    nothing else of it (its session, its sockets) is reachable."""

    __slots__ = ("_name",)

    def __new__(cls, name):
        # state set once, here: __init__ is object's (``sys.stdout.__init__('stderr')`` would
        # redirect the stand-in; tests/test_frozen_state.py)
        self = object.__new__(cls)
        object.__setattr__(self, "_name", name)
        return self

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
    # Formatting happens inside the capsule and only plain bundles leave (output.py):
    # IPython's own display() would call capsule methods with IPython's real printer.
    for n, stand_in in DISPLAY_STAND_INS.items():
        setattr(mod, n, stand_in)
    for n in ("display_html", "display_markdown", "display_png", "display_pretty"):
        mod.__dict__.pop(n, None)
    mod.__all__ = [n for n in names if n in vars(mod)]
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


#: The capsule's display(), update_display(), clear_output() and DisplayHandle, which stand
#: in for IPython's in the IPython.display view (registered by ipycap.engine.output).
DISPLAY_STAND_INS: dict = {}

SPECIAL_MODULES = {"sys": _sys_view, "IPython.display": _display_view, **STAND_INS}
_SPECIAL_CACHE: dict = {}


def _special_module(name):
    mod = _SPECIAL_CACHE.get(name)
    if mod is None:
        mod = _SPECIAL_CACHE[name] = SPECIAL_MODULES[name]()
    return mod


class _CapsuleRepr(reprlib.Repr):
    """The capsules' reprlib.aRepr: never the one trusted code uses, and read-only, since
    one capsule's 'repr_X' attribute would format another capsule's objects."""

    def __setattr__(self, name, value):
        if "_ready" in self.__dict__:
            raise CapsuleTypeError("reprlib.aRepr is shared by capsules: read-only", "builtins")
        object.__setattr__(self, name, value)


_CAPSULE_REPR = _CapsuleRepr()
_CAPSULE_REPR.__dict__["_ready"] = True

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
    # (a table that hides it: a mappingproxy hands its dict to a capsule __eq__ it is
    # compared with)
    ("copy", "dispatch_table"): _tables.ReadOnlyTable(
        copyreg.dispatch_table, "copy.dispatch_table"
    ),
    # reprlib.repr/aRepr are one Repr instance that trusted code calls: an instance attribute
    # 'repr_Vault' on it would receive every trusted Vault that reprlib.repr formats.
    ("reprlib", "aRepr"): _CAPSULE_REPR,
    ("reprlib", "repr"): _CAPSULE_REPR.repr,
}

#: Module-level mutable objects trusted code reads later, given to each capsule view as its
#: own copy (I3): decimal's template contexts (DefaultContext seeds every new thread's
#: context: a capsule's prec = 5 there reached trusted threads).
PER_CAPSULE = {
    ("decimal", "DefaultContext"): decimal.DefaultContext.copy,
    ("decimal", "BasicContext"): decimal.BasicContext.copy,
    ("decimal", "ExtendedContext"): decimal.ExtendedContext.copy,
}

# calendar's module functions are methods of one TextCalendar trusted code uses too: a
# capsule's attribute on it would be called by trusted calendar.month() later (I3).
_CAPSULE_CALENDAR = calendar.TextCalendar()
for _name in ("setfirstweekday", "firstweekday", "monthcalendar", "prweek", "week",
              "weekheader", "prmonth", "month", "prcal", "calendar", "itermonthdates"):  # fmt: skip
    _fn = getattr(calendar, _name, None)
    if type(_fn) is types.MethodType and _fn.__self__ is getattr(calendar, "c", None):
        MODULE_OVERRIDES[("calendar", _name)] = types.MethodType(_fn.__func__, _CAPSULE_CALENDAR)
MODULE_OVERRIDES[("calendar", "c")] = _CAPSULE_CALENDAR
MODULE_OVERRIDES.update(_deputies._calendar_overrides(_CAPSULE_CALENDAR))
# Grantable stdlib functions that write process-wide tables or streams (ipycap.engine.deputies).
MODULE_OVERRIDES.update(_deputies.OVERRIDES)

# random's module functions are methods of one Random instance that trusted code draws from
# too: random.seed(0) in a capsule would fix the notebook's numbers, random.getstate() would
# reveal them.  Capsules draw from their own generator (I3: shared state, per capsule).
_CAPSULE_RANDOM = random.Random()
for _name in random.__all__:
    _fn = getattr(random, _name, None)
    if type(_fn) is types.MethodType and _fn.__self__ is getattr(random, "_inst", None):
        MODULE_OVERRIDES[("random", _name)] = getattr(_CAPSULE_RANDOM, _name)

from .libraries import wrappers as _library_wrappers  # noqa: E402

_library_view_attr = _library_wrappers.view_attr
_library_refused = _library_wrappers.is_view_refused
_library_install = _library_wrappers.install
