"""Capsule-aware guards on the few standard-library functions that reach another module's
namespace by a name the caller chooses, or keep trusted objects where a capsule finds them.

Every module a capsule imports by default hands out its public functions and classes raw, so
their own code runs with full authority on the capsule's behalf.  Most of it only computes;
the functions below do more, and each was an escape (``tests/redteam/test_default_modules.py``):

- ``typing.ForwardRef._evaluate`` evaluates a string in ``sys.modules[cls.__module__]``'s
  globals (``get_type_hints`` of a capsule class that names ``__module__ = 'dataclasses'``,
  ``ForwardRef(..., module=...)``, a function whose ``__wrapped__`` is a library function), so
  ``'sys'`` came back as the raw ``sys``; and ``eval`` put the *real* builtins into a globals
  dict the capsule passed in.
- ``enum.EnumType._convert_`` reads a named module's globals into enum members (raw ``sys``
  again) and, like ``enum.global_enum``, writes names into that module's globals (a capsule
  replaced ``ipycap.rules.classify``).
- ``dataclasses._create_fn`` ran the source it generates (field names pasted in unchecked)
  in the globals of ``sys.modules[cls.__module__]``: for a capsule it runs in fresh globals.
- ``importlib.import_module`` of a module already loaded raises no ``import`` audit event
  (CPython raises it only for a first load), so a granted library importing a capsule-chosen
  name (matplotlib's ``load_backend_module('module://os')``, pandas' plotting backend, polars'
  and scikit-learn's optional-dependency loaders, pyplot's ``figure.hooks``) handed the capsule
  the raw ``os``; the guard raises the event itself, so the tripwire's import rule decides.
- ``pprint.PrettyPrinter()`` keeps the raw ``sys.stdout`` (in a kernel: its session and
  signing key) in ``_stream``; its class-level ``_dispatch`` dict was a hook table trusted
  ``pformat`` calls with trusted objects.

Installed once (``install()``, at import of :mod:`ipycap.engine.builtins`); each is one stack walk
and otherwise the original function, so trusted code sees the same behaviour.
"""

from __future__ import annotations

import copy
import copyreg
import dataclasses
import enum
import importlib
import importlib.util
import keyword
import pprint
import sys
import types
import typing

from . import caches, guard, tables, tripwire
from .errors import CapsulePermissionError
from .modules import _special_module, is_capsule_builtins

_installed = False


#: Whether the nearest caller outside the standard library (and ipycap) is capsule code.
#: A granted third-party library that evaluates its own annotations in its own module is its
#: decision; a capsule asking the standard library to do it is not.
asked_by_capsule = guard.asked_by_capsule


def _refuse(what: str, hint: str | None = None):
    err = CapsulePermissionError(what, "builtins", None, hint=hint)
    ctx = tripwire.current_context()
    if ctx is not None:
        ctx.record_refusal(err, kind="module namespace", target=what)
    raise err


def _is_trusted_namespace(ns, ctx) -> bool:
    """A module's or outside function's globals: eval there reaches their names and builtins."""
    if type(ns) is not dict:
        return ns is not None
    stand_in = sys.modules.get("__capsule__")
    if stand_in is not None and ns is getattr(stand_in, "__dict__", None):
        return False  # the empty module capsule classes name (ipycap.capsule): capsule-own
    # By identity, never by contents: a C module's dict (sys, posix) has no __builtins__ key,
    # and a class's __module__ is the capsule's to set ('sys': typing looked up vars(sys) and
    # the annotation 'modules' gave the raw sys.modules, red team 10).
    for module in list(sys.modules.values()):
        if getattr(module, "__dict__", None) is ns:
            return True
    if "__builtins__" not in ns:
        return False
    return not is_capsule_builtins(dict.__getitem__(ns, "__builtins__"))  # the capsule's own


# -- typing ---------------------------------------------------------------------------------
_real_evaluate = typing.ForwardRef._evaluate


def _evaluate(self, globalns, localns, *args, **kwargs):
    """ForwardRef._evaluate, never in a trusted namespace on a capsule's behalf."""
    ctx = tripwire.current_context()
    if ctx is None or getattr(ctx, "builtins", None) is None:
        return _real_evaluate(self, globalns, localns, *args, **kwargs)
    module = self.__forward_module__
    if module is not None and type(module) is not str:
        # looked up in sys.modules twice (here, then by typing): a capsule object answers
        # each lookup as it likes (red team 10); a module is named by an exact str
        _refuse("an annotation's module given as something other than a str")
    if module is not None and module in sys.modules:
        globalns = vars(sys.modules[module])
        if asked_by_capsule(sys._getframe(1)):
            _refuse(
                f"evaluating the annotation {self.__forward_arg__!r} in module {module!r}",
                hint="annotations in a capsule resolve against the capsule's own names",
            )
        return _real_evaluate(self, globalns, localns, *args, **kwargs)
    if _is_trusted_namespace(globalns, ctx) or _is_trusted_namespace(localns, ctx):
        if asked_by_capsule(sys._getframe(1)):
            _refuse(
                f"evaluating the annotation {self.__forward_arg__!r} in the namespace of a "
                "module or an outside function",
                hint="annotations in a capsule resolve against the capsule's own names",
            )
        return _real_evaluate(self, globalns, localns, *args, **kwargs)
    # The capsule's own names: evaluated with the capsule's builtins, on copies (eval would
    # otherwise insert the real builtins into a dict the capsule holds).
    if globalns is None and localns is None:
        globalns = localns = {}
    elif globalns is None:
        globalns = localns
    elif localns is None:
        localns = globalns
    g = dict(globalns)
    g["__builtins__"] = ctx.builtins_module
    lo = g if localns is globalns else dict(localns)
    return _real_evaluate(self, g, lo, *args, **kwargs)


# -- enum -----------------------------------------------------------------------------------
_real_global_enum = enum.global_enum
_real_convert = enum.EnumType.__dict__["_convert_"]
_enum_globals = vars(enum)


def _is_module_globals(globals_dict, name) -> bool:
    """Whether ``globals_dict`` is the namespace of the module ``sys.modules[name]`` itself,
    by identity: both ``__name__`` in a capsule's globals and a class's ``__module__`` are the
    capsule's to set, so equal names prove nothing (a capsule named its cell and its enum
    'ipycap.engine.rules' and wrote its members there: red team 1, finding 6)."""
    module = sys.modules.get(name) if type(name) is str else None
    return module is not None and getattr(module, "__dict__", None) is globals_dict


def global_enum(cls, update_str=False):
    """enum.global_enum, refused when a capsule asks it to write into another module."""
    caller = sys._getframe(1)
    own_module = _is_module_globals(caller.f_globals, getattr(cls, "__module__", None))
    if not own_module and caller.f_globals is not _enum_globals and tripwire.capsule_on_stack():
        if asked_by_capsule(caller):
            _refuse(
                f"enum.global_enum writes {cls.__name__}'s members into module {cls.__module__!r}",
                hint="use the enum's members through the class",
            )
    return _real_global_enum(cls, update_str)


def _convert_(cls, name, module, filter, source=None, *, boundary=None, as_global=False):
    caller = sys._getframe(1)
    if not _is_module_globals(caller.f_globals, module) and tripwire.capsule_on_stack():
        if asked_by_capsule(caller):
            _refuse(
                f"Enum._convert_ reads and writes the globals of module {module!r}",
                hint="define the enum's members in the capsule",
            )
    return _real_convert(cls, name, module, filter, source, boundary=boundary, as_global=as_global)


# -- pprint ---------------------------------------------------------------------------------
_real_pp_init = pprint.PrettyPrinter.__init__


def _pp_init(self, *args, **kwargs):
    _real_pp_init(self, *args, **kwargs)
    if self._stream is sys.stdout and tripwire.capsule_on_stack():
        self._stream = _special_module("sys").stdout  # the capsule's write-only facade


# -- copy -----------------------------------------------------------------------------------
_real_reconstruct = copy._reconstruct
#: Reconstructors that make a fresh object of a class the reduction names.
_FRESH_MAKERS = (copyreg.__newobj__, copyreg.__newobj_ex__, copyreg._reconstructor)


def _fresh_from(func, y) -> bool:
    """Whether ``y`` is a new object the reconstructor made (so setting state on it changes
    nothing shared): the capsule's own, or made by calling its builtin/stdlib class."""
    if guard.is_own(y):
        return True
    tp = type(y)
    if issubclass(tp, enum.Enum):
        return False  # members are shared singletons, whatever made them
    if func is tp or any(func is maker for maker in _FRESH_MAKERS):
        # Made by calling its class (or object.__new__): new, unless the class caches its
        # instances (enum members above; SECURITY.md lists this as the residual case).
        module = type.__dict__["__module__"].__get__(tp)
        return type(module) is str and module.partition(".")[0] != "ipycap"
    return False


def _check_state_names(state) -> None:
    """State a capsule's reduction names goes into an instance ``__dict__`` (or through
    ``setattr``) of what the reconstructor made; called for a fresh object of a trusted
    class: only public names.  A dunder there is a protocol of trusted code
    (``__array_interface__`` in an ``Exception``'s dict made numpy read and write any
    address, red team 10); a private name is the trusted class's own state."""
    parts = state if type(state) is tuple and len(state) == 2 else (state,)
    for part in parts:
        if part is None or type(part) is not dict:
            continue  # a __setstate__ argument: the class's own method decides
        for key in dict.keys(part):
            if type(key) is not str or not key.isidentifier() or key[:1] == "_":
                _refuse(
                    f"copy would set the attribute {key!r} from a capsule's reduction (only "
                    "public names are state)",
                    hint="give the class __copy__/__deepcopy__",
                )


def _reconstruct(x, memo, func, args, state=None, listiter=None, dictiter=None, **kwargs):
    """copy's reconstruction of a reduced object, for a capsule: the reconstructor may not
    be one of Python's attribute or namespace builtins (a bound method reduces to
    ``(getattr, (obj, name))``, and a capsule can rename the function), and state, items and
    entries are applied only to an object the reconstructor just made, never to a shared
    one a capsule reconstructor returned (a module view's cache, typing's ``Literal``)."""
    if not tripwire.capsule_on_stack():
        return _real_reconstruct(x, memo, func, args, state, listiter, dictiter, **kwargs)
    if type(func) is types.BuiltinFunctionType and not any(func is m for m in _FRESH_MAKERS):
        _refuse(
            f"copying through the builtin {getattr(func, '__name__', '?')}() (a reduction may "
            "not read or write attributes for the capsule)",
            hint="give the class __copy__/__deepcopy__, or reduce to the class itself",
        )
    if state is None and listiter is None and dictiter is None:
        return _real_reconstruct(x, memo, func, args, **kwargs)

    def maker(*a):
        y = func(*a)
        if not _fresh_from(func, y):
            _refuse(
                "copy would set state on an object the reconstructor did not make (a shared "
                "object of trusted code)",
                hint="the reconstructor must return a new object",
            )
        if not guard.is_own(y) and guard.is_own(x):
            # a capsule object's reduction made a fresh trusted object: public state only
            _check_state_names(state)
        return y

    return _real_reconstruct(x, memo, maker, args, state, listiter, dictiter, **kwargs)


_dataclasses_create_fn = dataclasses._create_fn


def _create_fn(name, args, body, *, globals=None, locals=None, **kwargs):  # noqa: A002
    """``dataclasses._create_fn`` runs the source it generates in the globals of
    ``sys.modules[cls.__module__]``.  Field names are pasted into that source unchecked (a
    name from ``__annotations__`` or a base's ``__dataclass_fields__`` can be any string), so
    a capsule class naming ``__module__ = 'dataclasses'`` with a field named
    ``"a,)[1:]or(sys"`` made ``__eq__`` return the raw ``sys``.  Every name the generated
    code uses is passed in ``locals`` or is a builtin, so for a capsule the code runs in
    fresh globals that hold nothing of any module (its builtins are still screened by the
    tripwire's check of generated source)."""
    if not asked_by_capsule(sys._getframe(1)):
        return _dataclasses_create_fn(name, args, body, globals=globals, locals=locals, **kwargs)
    if globals is not None:
        globals = {"__name__": "__capsule__"}
    fn = _dataclasses_create_fn(name, args, body, globals=globals, locals=locals, **kwargs)
    code = getattr(fn, "__code__", None)
    if type(code) is types.CodeType:
        guard.register_generated(code)  # it acts for the capsule (guard.asked_by_capsule)
    return fn


_dataclasses_process_class = dataclasses._process_class


def _field_names(cls) -> list:
    """The names dataclasses will paste into the source it generates for ``cls``: its own
    annotations and the fields of its dataclass bases."""
    names = []
    annotations = type.__dict__["__dict__"].__get__(cls).get("__annotations__", {})
    if type(annotations) is dict:
        names.extend(annotations)
    for base in type.__dict__["__mro__"].__get__(cls)[1:]:
        fields = type.__dict__["__dict__"].__get__(base).get("__dataclass_fields__")
        if type(fields) is dict:
            for key, f in fields.items():
                names.append(key)
                names.append(getattr(f, "name", key))
    return names


def _process_class(cls, *args, **kwargs):
    """``dataclasses._process_class``, for a capsule only with field names that are plain
    identifiers (exact ``str``, not keywords): the names are pasted into generated source
    (and their ``repr`` too), so anything else is code (red team 6, finding A)."""
    if isinstance(cls, type) and asked_by_capsule(sys._getframe(1)):
        for name in _field_names(cls):
            if type(name) is not str or not name.isidentifier() or keyword.iskeyword(name):
                shown = str.__repr__(name)[:60] if type(name) is str else type(name).__name__
                _refuse(
                    f"a dataclass field named {shown} (field names must be plain identifiers)",
                    hint="name the field with a Python identifier",
                )
    return _dataclasses_process_class(cls, *args, **kwargs)


_alias_setattr_orig = typing._BaseGenericAlias.__setattr__
_special_setattr_orig = typing._SpecialForm.__setattr__


def _typing_write_by_capsule(frame) -> bool:
    """Whether an attribute write on a shared typing object comes from capsule code: typing
    sets attributes on the aliases it builds (``typing.List[int]`` for a capsule), which is
    its own business; any other caller is judged as ``asked_by_capsule`` judges it."""
    if frame is None:
        return False
    name = frame.f_globals.get("__name__")
    if name == "typing" and guard.context_of(frame.f_builtins) is None:
        return False
    return asked_by_capsule(frame)


def _alias_setattr(self, attr, val):
    # typing.Counter.most_common = f would set it on collections.Counter itself (an alias
    # forwards writes to its origin class), and typing's aliases are cached and shared.
    if _typing_write_by_capsule(sys._getframe(1)):
        _refuse(
            f"setting {attr!r} on a typing alias: aliases are shared with trusted code and "
            "pass writes on to the class they stand for"
        )
    _alias_setattr_orig(self, attr, val)


def _special_setattr(self, attr, val):
    if _typing_write_by_capsule(sys._getframe(1)):
        _refuse(f"setting {attr!r} on a typing special form: it is shared with trusted code")
    _special_setattr_orig(self, attr, val)


_real_import_module = importlib.import_module


def import_module(name, package=None):
    """``importlib.import_module``, judged by the tripwire's import rule also when the module
    is already loaded (see the module docstring): the ``import`` audit event is raised here."""
    if type(name) is str and name in sys.modules:
        sys.audit("import", name, None, sys.path, sys.meta_path, sys.path_hooks)
    elif type(name) is str and name.startswith(".") and type(package) is str:
        absolute = importlib.util.resolve_name(name, package)
        if absolute in sys.modules:
            sys.audit("import", absolute, None, sys.path, sys.meta_path, sys.path_hooks)
    return _real_import_module(name, package)


def install() -> None:
    """Put the guards in place (once per process, before any class is frozen)."""
    global _installed
    if _installed:
        return
    typing.ForwardRef._evaluate = _evaluate
    importlib.import_module = import_module
    enum.global_enum = global_enum
    enum.EnumType._convert_ = _convert_
    pprint.PrettyPrinter.__init__ = _pp_init
    copy._reconstruct = _reconstruct
    dataclasses._create_fn = _create_fn
    dataclasses._process_class = _process_class
    typing._BaseGenericAlias.__setattr__ = _alias_setattr
    typing._SpecialForm.__setattr__ = _special_setattr
    # The dispatch table stays readable (subclasses copy it), never writable.
    if type(pprint.PrettyPrinter._dispatch) is dict:
        # (not a mappingproxy: compared with a capsule object, it hands over its dict)
        pprint.PrettyPrinter._dispatch = tables.ReadOnlyTable(
            pprint.PrettyPrinter._dispatch, "pprint.PrettyPrinter._dispatch"
        )
    caches.install()  # typing/re/fnmatch/_strptime caches never compare capsule keys
    _installed = True
