"""The tripwire: one PEP 578 audit hook that refuses effects capsule code is not granted.

Installed once per process (audit hooks cannot be removed) and inert until a capsule runs.
While capsule code is anywhere on the stack, every audit event is refused unless the table
below admits it, which catches what a library does on a capsule's behalf and capsule code
that runs *later* (``__del__``, a ``__repr__`` called by the displayhook, a stored callback).

Capsule frames are recognised by their builtins dict, by identity (``guard.context_of``: the
table of capsule builtins is trusted state); reading it raises no audit event.  The helpers at the bottom of this
module mark their own legitimate use: a frame running one of them, met before any capsule
frame on the way out from the event, means the event is the helper's.  A capsule frame
nearer the event than the helper voids the mark.
"""

from __future__ import annotations

import ast
import os
import stat
import sys
import sysconfig
import threading
import weakref
from types import FunctionType

from . import guard, libraries, rules
from .errors import CapsulePermissionError

_state = threading.local()
_installed = False
_armed = False
_context_of = guard.context_of
_STDLIB = os.path.realpath(sysconfig.get_paths()["stdlib"])


def install() -> None:
    """Install the audit hook (once per process) and arm it."""
    global _installed, _armed
    if not _installed:
        sys.addaudithook(_hook)
        _installed = True
        from . import fds

        fds.install(sys.modules[__name__])  # os.dup/os.dup2 check descriptor numbers (no
        # audit event is raised for them)
    _armed = True


#: Capsule contexts still alive: while any exists, capsule code may run later (an exported
#: function, a __del__), so the hook must stay armed.
_LIVE: weakref.WeakSet = weakref.WeakSet()


def register(context) -> None:
    """Record a capsule context and arm the hook (called for every new capsule)."""
    _LIVE.add(context)
    install()


def _called_by_ipycap(helper_frame) -> bool:
    """Whether a trusted helper was called by ipycap's own code.  A helper's mark vouches
    for its caller's checks; called from anywhere else (capsule code holding a leaked
    reference, a trusted trampoline calling it back) it vouches for nothing (I4)."""
    caller = helper_frame.f_back
    if caller is None or _context_of(caller.f_builtins) is not None:
        return False
    name = caller.f_globals.get("__name__")
    return type(name) is str and name.startswith("ipycap.")


def disarm() -> bool:
    """Leave the hook inert (extension unload; hooks cannot be removed from a process), but
    only once no capsule context is alive: code of a capsule made earlier may still run, and
    it must still meet the tripwire.  Returns whether the hook is now inert."""
    global _armed
    if not _LIVE:
        _armed = False
    return not _armed


def is_installed() -> bool:
    return _installed


def contexts_on_stack(frame=None) -> list:
    """Capsule contexts of every capsule frame on this thread's stack, innermost first."""
    f = frame if frame is not None else sys._getframe(1)
    found = []
    while f is not None:
        ctx = _context_of(f.f_builtins)
        if ctx is not None and ctx not in found:
            found.append(ctx)
        f = f.f_back
    return found


def current_context():
    """The innermost capsule context on the stack, or None."""
    f = sys._getframe(1)
    while f is not None:
        ctx = _context_of(f.f_builtins)
        if ctx is not None:
            return ctx
        f = f.f_back
    return None


def capsule_module_name(default: str = "__capsule__") -> str:
    """``__name__`` of the innermost capsule frame's globals (an exact str), as CPython names
    the module of a class ``type(name, bases, ns)`` makes for its caller."""
    f = sys._getframe(1)
    while f is not None:
        if _context_of(f.f_builtins) is not None:
            name = f.f_globals.get("__name__")
            return "".join([name]) if isinstance(name, str) else default
        f = f.f_back
    return default


def capsule_on_stack() -> bool:
    f = sys._getframe(1)
    while f is not None:
        if _context_of(f.f_builtins) is not None or guard.frame_is_capsule_code(f):
            return True
        f = f.f_back
    return False


_frame_is_capsule_code = guard.frame_is_capsule_code


def _hook(event, args):
    if not _armed:
        return
    if event == "sys._getframe":
        if not getattr(_state, "busy", False):
            _frame_request(args[0])
        return
    if _ALWAYS.get(event):
        return  # events the table admits for anyone (id(), exec of checked code) skip the walk
    if getattr(_state, "busy", False):
        _nested(event)
        return
    _state.busy = True
    try:
        try:
            f = sys._getframe(1)
        except ValueError:  # raised from C with no Python frame (thread start, shutdown)
            return
        found = None
        while f is not None:
            g = f.f_globals
            if g is _HELPER_GLOBALS and found is None and _called_by_ipycap(f):
                return  # a trusted helper's own use, with no capsule frame nearer the event
            ctx = _context_of(f.f_builtins)
            if ctx is not None:
                if found is None:
                    found = [ctx]
                elif ctx not in found:
                    found.append(ctx)
            elif _frame_is_capsule_code(f):
                # Capsule code running with builtins no table knows: it chose them (see
                # guard._CAPSULE_CODE).  No grant of any capsule applies to it.
                raise CapsulePermissionError(
                    f"{event} by capsule code running with builtins of its own choosing",
                    "tripwire",
                    None,
                )
            f = f.f_back
        if found is None:
            return
        rule = EVENTS.get(event, _deny)  # an event the table does not know is refused
        error = rule(event, args, found, sys._getframe(1))
        if error is not None:
            for ctx in found:
                ctx.record_refusal(error)
            raise error
    finally:
        _state.busy = False


def _frame_request(target) -> None:
    """``sys._getframe(n)`` called below a capsule frame may not answer with a frame older
    than every capsule frame on the stack: trusted code the capsule called (pandas'
    expression ``Scope(level)``) copied the globals and locals of ipycap's and the host's
    frames, raw ``sys`` among them (session 11).  Frames in the capsule's part of the stack,
    and every request with no capsule frame between its caller and the frame, are answered."""
    _state.busy = True  # this function's own sys._getframe
    try:
        f = sys._getframe(2)  # the code that called sys._getframe
        crossed = None
        while f is not None and f is not target:
            if crossed is None:
                crossed = _context_of(f.f_builtins)
            f = f.f_back
        if crossed is None or f is None:
            return
        while f is not None:
            if _context_of(f.f_builtins) is not None:
                return  # the frame asked for is at or below a capsule frame
            f = f.f_back
    finally:
        _state.busy = False
    error = CapsulePermissionError(
        "sys._getframe past the capsule: trusted code the capsule called asked for a frame "
        "of the host's",
        "tripwire",
        None,
    )
    crossed.record_refusal(error)  # in the capsule's registry, as the hook's refusals are
    raise error


def _nested(event):
    """An event raised while the hook itself runs (its own bookkeeping: the audit log, a
    path it resolves) is the hook's and skips the walk -- unless capsule code runs between
    that event and the hook (a method of an event argument the hook touched): then it is
    refused, never skipped (red team 5, finding 7)."""
    if getattr(_state, "nesting", False):
        return  # this walk's own events (sys._getframe)
    _state.nesting = True
    try:
        f = sys._getframe(2)
        while f is not None:
            if _context_of(f.f_builtins) is not None or _frame_is_capsule_code(f):
                raise CapsulePermissionError(
                    f"{event} by capsule code run inside the tripwire's own check",
                    "tripwire",
                    None,
                )
            if _is_ipycap_frame(f):
                return  # the nearest frame is ipycap's own (the hook, or a helper that set
                # the busy flag to stand the hook aside: the auditor, limits)
            f = f.f_back
    finally:
        _state.nesting = False


def _is_ipycap_frame(f) -> bool:
    """Whether ``f`` runs code of an ipycap module, by its globals' identity (a capsule can
    name its own globals 'ipycap.anything', never make them a loaded module's namespace)."""
    g = f.f_globals
    name = g.get("__name__")
    if type(name) is not str or not name.startswith("ipycap"):
        return False
    module = sys.modules.get(name)
    return module is not None and getattr(module, "__dict__", None) is g


# -- the allow table ------------------------------------------------------------------------
# A rule gets (event, args, contexts, frame) — ``frame`` is the innermost Python frame, the one
# whose call raised the event — and returns None (admit) or the error to raise.
_IMPORT_MACHINERY: tuple = ()


def _machinery_globals() -> tuple:
    """The globals of the import system's own modules (frozen, so capsules cannot edit them)."""
    global _IMPORT_MACHINERY
    if not _IMPORT_MACHINERY:
        names = ("_frozen_importlib", "_frozen_importlib_external", "zipimport")
        _IMPORT_MACHINERY = tuple(vars(sys.modules[n]) for n in names if n in sys.modules)
    return _IMPORT_MACHINERY


def _by_import_system(frame) -> bool:
    """The event comes from the import system loading a module whose import was checked."""
    g = frame.f_globals if frame is not None else None
    return any(g is m for m in _machinery_globals())


def _allow(event, args, contexts, frame=None):
    return None


def _deny(event, args, contexts, frame=None):
    return CapsulePermissionError(
        f"{event} (an operation outside what capsules may do)", "tripwire", None
    )


_PATH_TYPES = ("PosixPath", "PurePosixPath", "WindowsPath", "PureWindowsPath", "Path")
_address = object.__hash__


def _pathlib_types() -> dict:
    import pathlib

    return {_address(t): t for t in (getattr(pathlib, n) for n in _PATH_TYPES)}


_PATHLIB_TYPES = _pathlib_types()


def _exact_path(path, dir_fd=None):
    """The real path an event's argument names, or None when it cannot be trusted.

    Only exact values are read: a capsule ``os.PathLike`` could answer differently when the
    library opens it, and a ``str`` subclass could lie in its methods."""
    tp = type(path)
    if tp is not str and tp is not bytes:
        # No method of the argument runs here (a subclass's __getitem__ or __str__ could
        # answer differently than what the library opens, and would run inside the hook):
        # the joins copy the data in C; pathlib's own classes only, by identity.
        if issubclass(tp, str):
            path = "".join([path])
        elif issubclass(tp, bytes):
            path = b"".join([path])
        elif _PATHLIB_TYPES.get(_address(tp)) is tp:
            path = str(path)
        else:
            return None
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if dir_fd is not None and not os.path.isabs(path):
        if type(dir_fd) is not int:
            return None
        try:
            path = os.path.join(os.readlink(f"/proc/self/fd/{dir_fd}"), path)
        except OSError:
            return None
    return os.path.realpath(path)


def _path_error(kind, path, contexts, typed=None):
    for ctx in contexts:
        if path is None:
            return CapsulePermissionError(
                f"{kind} access to a file descriptor or path object (by code running for the "
                "capsule)",
                "tripwire",
                None,
            )
        if not ctx.allows_path(kind, path):
            # Asks the human when the grant lies within the ceiling (the hook is busy, so the
            # asking's own events pass); None when approved.
            error = ctx.path_refusal(kind, path, typed, layer="tripwire")
            if error is not None:
                return CapsulePermissionError(
                    error.what + " (by code running for the capsule)", "tripwire", error.how
                )
    return None


def _in_stdlib(path: str) -> bool:
    return path == _STDLIB or path.startswith(_STDLIB + os.sep)


def _open_rule(event, args, contexts, frame=None):
    path, mode = args[0], args[1]
    flags = args[2] if len(args) > 2 else 0
    if isinstance(path, int):
        return _deny("open of a file descriptor", args, contexts)
    path = _exact_path(path)
    writes = (
        bool(flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND))
        if mode is None
        else any(c in str(mode) for c in "wax+")
    )
    reads = (not writes) or bool(flags & os.O_RDWR) or (mode is not None and "+" in str(mode))
    if path is not None and reads and not writes:
        if _in_stdlib(path) or _by_import_system(frame):
            return None  # stdlib source (tracebacks, data files); modules being imported
        if libraries.library_reads_own_data(contexts, path, frame):
            return None  # a granted library reading its own package data (fonts, datasets)
    typed = args[0] if type(args[0]) is str else None
    for kind, wanted in (("read", reads), ("write", writes)):
        if wanted:
            error = _path_error(kind, path, contexts, typed)
            if error is not None:
                return error
    if path is not None and _hard_linked(path):
        return CapsulePermissionError(
            f"open of {path}: the file has several hard links, so the same file may live "
            "outside the grant (by code running for the capsule)",
            "tripwire",
            None,
            hint="copy the file instead of linking it",
        )
    return None


def _hard_linked(path: str) -> bool:
    try:
        st = os.stat(path, follow_symlinks=False)
    except OSError:
        return False  # not there yet (a file being created) or not ours to see
    return stat.S_ISREG(st.st_mode) and st.st_nlink > 1


def _paths_rule(write=(), read=(), dir_fd=None):
    """A rule for os.* events: the path arguments at these positions must be granted."""

    def rule(event, args, contexts, frame=None):
        fd = args[dir_fd] if dir_fd is not None and len(args) > dir_fd else None
        for kind, positions in (("write", write), ("read", read)):
            for i in positions:
                if isinstance(args[i], int):
                    return _deny(f"{event} on a file descriptor", args, contexts)
                error = _path_error(kind, _exact_path(args[i], fd), contexts)
                if error is not None:
                    return error
        return None

    return rule


def _listdir_rule(event, args, contexts, frame=None):
    if _by_import_system(frame):
        return None  # the path finder lists sys.path entries for a checked import
    path = args[0]
    if isinstance(path, int):
        return _deny(f"{event} of a file descriptor", args, contexts)
    path = _exact_path("." if path is None else path)
    if path is not None and libraries.library_reads_own_data(contexts, path, frame, listing=True):
        return None  # a granted library listing its own package folders (or sys.path's)
    return _path_error("read", path, contexts)


def _marshal_rule(event, args, contexts, frame=None):
    if _by_import_system(frame):
        return None  # loading a .pyc of a module whose import was checked
    return _deny(event, args, contexts)


def _sqlite_rule(event, args, contexts, frame=None):
    database = args[0]
    if database in (":memory:", "", b":memory:", b"") and type(database) in (str, bytes):
        return None
    path = _exact_path(database)
    return _path_error("read", path, contexts) or _path_error("write", path, contexts)


def _import_rule(event, args, contexts, frame=None):
    name = args[0]
    if type(name) is not str:
        return _deny(event, args, contexts)
    for ctx in contexts:
        if ctx.may_import(name) or ctx.is_stdlib_internal(name):
            continue
        if libraries.library_import(ctx, name, frame) is not None:
            continue  # a granted library importing what its profile loads on its own behalf
        asker = libraries.asking_package(frame)
        target = libraries.grant_target(ctx, name)
        return CapsulePermissionError(
            f"import of {name!r} (by {asker if asker else 'code'} running for the capsule)",
            "tripwire",
            ctx.how_to_grant("import", target)
            if ctx.policy.import_tier(target) == "grantable"
            else None,
        )
    return None


def _compile_rule(event, args, contexts, frame=None):
    source, filename = args[0], args[1]
    if type(filename) is str and filename.startswith("<capsule-"):
        return None  # compiled by the gate
    if isinstance(source, bytes):
        source = source.decode("utf-8", "replace")
    if isinstance(source, str) and not _generated_source_is_clean("".join([source]), frame):
        return CapsulePermissionError(
            "a library compiled source that reaches risky names or attributes (code "
            "generated from capsule input, e.g. a string annotation or a crafted field name)",
            "tripwire",
            None,
        )
    if not isinstance(source, str):
        return _deny("compile of an AST or code outside the gate", args, contexts)
    return None


#: Builtins that carry authority when generated code runs with the real builtins.
_RISKY_GENERATED_NAMES = frozenset(
    """getattr setattr delattr vars eval exec compile open __import__ globals locals
    breakpoint input help license copyright credits exit quit memoryview __builtins__
    __loader__ __spec__ __build_class__ __file__ __cached__""".split()
)
#: Attributes generated code may not read (besides the guard's NEVER list).
_RISKY_GENERATED_ATTRS = frozenset({"__self__", "__func__", "__dict__", "mro", "__mro__"})


def _is_dataclass_base(node) -> bool:
    """``__dataclass_builtins_object__`` or ``super(cls, self)``, as dataclasses writes them."""
    if isinstance(node, ast.Name):
        return node.id == "__dataclass_builtins_object__"
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "super"
        and [type(a) for a in node.args] == [ast.Name, ast.Name]
    )


#: Verdicts of :func:`_source_is_clean` on sources a library generated, keyed by the exact
#: source and the code object of the library function that compiled it (dataclasses'
#: ``_create_fn``, namedtuple, ...): a dataclass cell re-run compiles the same sources again.
#: The same source compiled by any other caller (capsule code included) is checked afresh.
_CLEAN_CACHE: dict = {}
_CLEAN_CACHE_MAX = 4096
_CLEAN_CACHE_SOURCE_MAX = 1 << 16


def _generated_source_is_clean(source: str, frame) -> bool:
    """:func:`_source_is_clean`, remembered per (generating library function, source)."""
    code = frame.f_code if frame is not None else None
    if (
        code is None
        or _context_of(frame.f_builtins) is not None  # capsule code compiling: never cached
        or len(source) > _CLEAN_CACHE_SOURCE_MAX
    ):
        return _source_is_clean(source)
    # By identity: code objects compare equal by value, and another function's may match.
    key = (id(code), source)
    entry = _CLEAN_CACHE.get(key)
    if entry is not None and entry[0] is code:
        return entry[1]
    verdict = _source_is_clean(source)
    if len(_CLEAN_CACHE) >= _CLEAN_CACHE_MAX:
        _CLEAN_CACHE.clear()
    _CLEAN_CACHE[key] = (code, verdict)  # the code is held, so its id is not reused
    return verdict


def _source_is_clean(source: str) -> bool:
    """Whether library-generated source stays away from what the guard protects."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return True  # compile() will refuse it anyway
    defined = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
    for node in ast.walk(tree):
        if not isinstance(node, _GENERATED_NODES) or isinstance(node, _GENERATED_REFUSED):
            return False  # an import, global, match pattern, class or anything unlisted
        if isinstance(node, ast.Attribute):
            attr = node.attr
            if attr in ("__setattr__", "__delattr__") and _is_dataclass_base(node.value):
                continue  # frozen dataclasses set fields through object.__setattr__(self, ...)
            if (
                attr in rules.NEVER
                or attr in rules.FORMAT_ATTRS
                or attr in _RISKY_GENERATED_ATTRS
                or "__" in attr.strip("_")  # name-mangled private state, e.g. _Printer__data
            ):
                return False
        elif isinstance(node, ast.Name):
            name = node.id
            if name in _RISKY_GENERATED_NAMES:
                return False
            if (
                rules.is_dunder(name)
                and name not in defined  # ``return __init__``: the function just defined
                and not name.startswith(_GENERATED_DUNDERS)
            ):
                return False  # module-level dunders (__loader__, __spec__, __class__ ...)
    return True


#: What library-generated source may be made of (an allow-list: red team 6, finding A).
#: Generators pass every object their code uses as an argument or local and generate
#: functions, assignments, calls, comparisons and returns; reaching anything else without a
#: Name or Attribute node -- ``import sys``, ``global``, a ``match`` class pattern reading
#: ``__self__``, a class body -- is not what they do, so any other node is refused.
_GENERATED_NODES = (
    ast.Module,
    ast.Expression,
    ast.Interactive,
    ast.FunctionDef,
    ast.Return,
    ast.Assign,
    ast.AugAssign,
    ast.AnnAssign,
    ast.Delete,
    ast.Expr,
    ast.If,
    ast.For,
    ast.While,
    ast.Break,
    ast.Continue,
    ast.Pass,
    ast.Raise,
    ast.Try,
    ast.ExceptHandler,
    ast.With,
    ast.withitem,
    ast.expr,  # every expression but those refused below
    ast.arguments,
    ast.arg,
    ast.keyword,
    ast.comprehension,
    ast.expr_context,
    ast.boolop,
    ast.operator,
    ast.unaryop,
    ast.cmpop,
)
_GENERATED_REFUSED = (ast.Await, ast.Yield, ast.YieldFrom)
#: Dunder names the generators write themselves (dataclasses' locals, its wrapper function).
_GENERATED_DUNDERS = ("__dataclass_", "__create_fn__")


#: Names a library may set on classes and functions it builds for a capsule (namedtuple sets
#: __module__, dataclasses __qualname__); the rest (__code__, __defaults__, __bases__,
#: __class__ ...) would change shared behaviour.
_DESCRIPTIVE_SETS = frozenset(
    {"__module__", "__qualname__", "__name__", "__doc__", "__annotations__", "__type_params__"}
)


def _setattr_rule(event, args, contexts, frame=None):
    obj = args[0]
    if guard.is_own(obj):
        return None
    name = args[1]
    if type(name) is str and name in _DESCRIPTIVE_SETS:
        return None
    if name in ("__defaults__", "__bases__") and _made_by_this_namedtuple(obj, frame):
        return None
    if _library_edits_its_own(obj, frame):
        return None
    return CapsulePermissionError(
        f"changing attribute {name!r} of a {type(obj).__name__} object"
        " (shared classes and functions belong to everyone in this process)",
        "tripwire",
        "subclass it instead",
    )


def _library_edits_its_own(obj, frame) -> bool:
    """A granted (non-standard) library setting attributes on its own functions or classes,
    from its own code (matplotlib's decorators set ``__kwdefaults__`` when it is imported on
    a capsule's behalf): its code is trusted, and the object is its own."""
    if frame is None or _context_of(frame.f_builtins) is not None:
        return False
    if type(obj) is FunctionType:
        owner = obj.__module__
    elif isinstance(obj, type):
        owner = type.__dict__["__module__"].__get__(obj)
    else:
        return False
    asker = frame.f_globals.get("__name__")
    if type(owner) is not str or type(asker) is not str:
        return False
    top = owner.partition(".")[0]
    return top == asker.partition(".")[0] and top not in _STDLIB_TOPS and top != "ipycap"


_STDLIB_TOPS = frozenset(sys.stdlib_module_names)


def _made_by_this_namedtuple(obj, frame) -> bool:
    """``namedtuple(..., defaults=...)`` sets ``__defaults__`` on the ``__new__`` it has just
    built, and ``class T(NamedTuple)`` sets ``__bases__`` on the class it has just built: the
    object must be the one *this running call* made (a function whose globals are the call's
    fresh ``namespace`` dict; the class in its ``nm_tpl`` local), so nothing anyone else
    holds (a trusted namedtuple's ``__new__``) can be the one changed."""
    if frame is None:
        return False
    code = frame.f_code
    collections = sys.modules.get("collections")
    builder = getattr(collections, "namedtuple", None)
    if type(builder) is FunctionType and code is builder.__code__:
        return type(obj) is FunctionType and obj.__globals__ is frame.f_locals.get("namespace")
    typing = sys.modules.get("typing")
    meta = getattr(typing, "NamedTupleMeta", None)
    new = vars(meta).get("__new__") if isinstance(meta, type) else None
    new = new.__func__ if type(new) is staticmethod else new
    if type(new) is FunctionType and code is new.__code__:
        return isinstance(obj, type) and obj is frame.f_locals.get("nm_tpl")
    return False


def _getattr_rule(event, args, contexts, frame=None):
    obj, name = args[0], args[1]
    if name in ("__code__", "__defaults__", "__kwdefaults__") and type(obj) is FunctionType:
        # Function attributes CPython audits.  Capsule code never reads them except through
        # the guard, which refuses them on outside functions before reading; what is left is
        # the guard itself on the capsule's own functions and libraries introspecting
        # functions they keep (inspect.signature inside dataclasses, functools).
        if guard.is_own(obj) or not _read_by_capsule_frame(frame):
            return None
    if libraries.library_reads_frames(contexts, frame):
        return None  # a granted library aiming a warning at its caller (find_stack_level)
    if frame is not None and frame.f_globals.get("__name__") in _TRACEBACK_READERS:
        # Formatting a traceback (sys.unraisablehook after a capsule __del__ failed, an
        # error display) reads frames and code; capsules cannot import these modules, and
        # what they return is text.
        return None
    return CapsulePermissionError(
        f"reading {args[1]!r} (frames and code objects)", "tripwire", None
    )


_TRACEBACK_READERS = frozenset({"traceback", "linecache", "logging"})  # text of frames, no frame


def _read_by_capsule_frame(frame) -> bool:
    """Whether the frame that raised the event is capsule code itself."""
    return frame is not None and _context_of(frame.f_builtins) is not None


def _environ_rule(event, args, contexts, frame=None):
    if libraries.library_sets_env(contexts, args[0] if args else None, frame):
        return None  # polars' 'with pl.Config(...)' sets and restores its own variables
    return _deny(event, args, contexts)


def _input_rule(event, args, contexts, frame=None):
    for ctx in contexts:
        if not ctx.may_input():
            return CapsulePermissionError(
                "input()", "tripwire", "c.CapsulePolicy.allow_input = True"
            )
    return None


#: Harmless, or covered by the lower-level event it leads to (os.scandir, open, os.mkdir...).
ALLOWED_EVENTS = """array.__new__ builtins.id builtins.input/result exec sys._getframe
    sys._getframemodulename time.sleep sys.excepthook sys.unraisablehook
    cpython._PySys_ClearAuditHooks sys.set_asyncgen_hook_finalizer
    sys.set_asyncgen_hook_firstiter sys.set_asyncgen_hooks_finalizer
    sys.set_asyncgen_hooks_firstiter marshal.dumps glob.glob glob.glob/2 os.walk os.fwalk
    pathlib.Path.glob pathlib.Path.rglob shutil.copyfile shutil.copymode shutil.copystat
    shutil.copytree shutil.make_archive shutil.move shutil.rmtree shutil.unpack_archive
    tempfile.mkstemp tempfile.mkdtemp sqlite3.connect/handle""".split()

#: Refused whenever capsule code is on the stack: processes, signals, sockets and network
#: clients, ctypes, gc, debuggers and tracers, code/function construction, unpickling
#: globals, interpreter state, changes of directory, owner, environment and limits.
DENIED_EVENTS = """builtins.breakpoint code.__new__ function.__new__
    cpython.PyInterpreterState_Clear cpython.PyInterpreterState_New cpython.run_command
    cpython.run_file cpython.run_interactivehook cpython.run_module cpython.run_startup
    cpython.run_stdin cpython.remote_debugger_script ctypes.addressof ctypes.call_function
    ctypes.cdata ctypes.cdata/buffer ctypes.create_string_buffer ctypes.create_unicode_buffer
    ctypes.dlopen ctypes.dlsym ctypes.dlsym/handle ctypes.get_errno ctypes.get_last_error
    ctypes.seh_exception ctypes.set_errno ctypes.set_exception ctypes.set_last_error
    ctypes.string_at ctypes.wstring_at ctypes.PyObj_FromPtr ensurepip.bootstrap fcntl.fcntl
    fcntl.flock fcntl.ioctl fcntl.lockf ftplib.connect ftplib.sendcmd gc.get_objects
    gc.get_referents gc.get_referrers gc.freeze http.client.connect http.client.send
    imaplib.open imaplib.send mmap.__new__ msvcrt.get_osfhandle msvcrt.locking
    msvcrt.open_osfhandle nntplib.connect nntplib.putline os.add_dll_directory os.chdir
    os.chflags os.chown os.exec os.fork os.forkpty os.kill os.killpg os.lockf os.posix_spawn
    os.spawn os.startfile os.startfile/2 os.system os.listdrives
    os.listmounts os.listvolumes pdb.Pdb pickle.find_class poplib.connect poplib.putline
    pty.spawn resource.prlimit resource.setrlimit setopencode shutil.chown
    signal.pthread_kill smtplib.connect smtplib.send socket.__new__ socket.bind
    socket.connect socket.getaddrinfo socket.gethostbyaddr socket.gethostbyname
    socket.gethostname socket.getnameinfo socket.getservbyname socket.getservbyport
    socket.sendmsg socket.sendto socket.sethostname sqlite3.enable_load_extension
    sqlite3.load_extension subprocess.Popen sys._current_exceptions sys._current_frames
    sys.addaudithook sys.setprofile sys.settrace sys.monitoring.register_callback
    sys.remote_exec syslog.closelog syslog.openlog syslog.setlogmask syslog.syslog
    telnetlib.Telnet.open telnetlib.Telnet.write urllib.Request webbrowser.open
    _thread.start_new_thread locale.setlocale winreg.ConnectRegistry winreg.CreateKey
    winreg.DeleteKey winreg.DeleteValue winreg.DisableReflectionKey
    winreg.EnableReflectionKey winreg.EnumKey winreg.EnumValue
    winreg.ExpandEnvironmentStrings winreg.LoadKey winreg.OpenKey winreg.OpenKey/result
    winreg.PyHKEY.Detach winreg.QueryInfoKey winreg.QueryReflectionKey winreg.QueryValue
    winreg.SaveKey winreg.SetValue _winapi.CreateFile _winapi.CreateJunction
    _winapi.CreateNamedPipe _winapi.CreatePipe _winapi.CreateProcess _winapi.OpenProcess
    _winapi.TerminateProcess""".split()

#: Exact event name -> rule.  An event not listed is refused (fail closed), and a test
#: fails on any event of this Python that is not listed.
EVENTS = {
    **{name: _allow for name in ALLOWED_EVENTS},
    **{name: _deny for name in DENIED_EVENTS},
    "open": _open_rule,
    "import": _import_rule,
    "compile": _compile_rule,
    "object.__setattr__": _setattr_rule,
    "object.__delattr__": _setattr_rule,
    "object.__getattr__": _getattr_rule,
    "builtins.input": _input_rule,
    "os.putenv": _environ_rule,
    "os.unsetenv": _environ_rule,
    "os.listdir": _listdir_rule,
    "os.scandir": _listdir_rule,
    "marshal.loads": _marshal_rule,
    "marshal.load": _marshal_rule,
    "sqlite3.connect": _sqlite_rule,
    "os.mkdir": _paths_rule(write=(0,), dir_fd=2),
    "os.remove": _paths_rule(write=(0,), dir_fd=1),
    "os.rmdir": _paths_rule(write=(0,), dir_fd=1),
    "os.truncate": _paths_rule(write=(0,)),
    "os.utime": _paths_rule(write=(0,), dir_fd=3),
    "os.chmod": _paths_rule(write=(0,), dir_fd=2),
    "os.setxattr": _paths_rule(write=(0,)),
    "os.removexattr": _paths_rule(write=(0,)),
    "os.rename": _paths_rule(write=(0, 1)),
    "os.link": _paths_rule(write=(1,), read=(0,)),
    "os.symlink": _paths_rule(write=(1,), read=(0,)),
    "os.getxattr": _paths_rule(read=(0,)),
    "os.listxattr": _paths_rule(read=(0,)),
}


#: Events admitted whatever is on the stack: the hook answers them without a stack walk.
_ALWAYS = {name: True for name, rule in EVENTS.items() if rule is _allow}


def classify_event(event: str) -> str | None:
    """'allow', 'deny' or 'rule' for an event the table knows; None if it is unclassified."""
    rule = EVENTS.get(event)
    if rule is None:
        return None
    return {_allow: "allow", _deny: "deny"}.get(rule, "rule")


# -- trusted helpers (their frames are marks) -------------------------------------------------
def trusted_import(name: str):
    """Import ``name`` for a capsule that was already allowed to (events are the helper's)."""
    name = "".join([name])
    __import__(name)
    return sys.modules[name.partition(".")[0]]


def trusted_open(path: str, mode: str, buffering, encoding, errors, newline, verify):
    """Open an already checked, resolved path without following a final symlink."""
    flags = os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0)
    if "+" in mode:
        flags |= os.O_RDWR
    elif any(c in mode for c in "wax"):
        flags |= os.O_WRONLY
    else:
        flags |= os.O_RDONLY
    if "w" in mode:
        flags |= os.O_CREAT | os.O_TRUNC
    if "a" in mode:
        flags |= os.O_CREAT | os.O_APPEND
    if "x" in mode:
        flags |= os.O_CREAT | os.O_EXCL
    # The helper checks who asks (I4): it vouches for the checks of ipycap's own open(); a
    # leaked reference called by capsule code or a trampoline opens nothing.
    if not _called_by_ipycap(sys._getframe(0)):
        raise CapsulePermissionError(
            f"open of {path} asked of the trusted open by code other than ipycap's",
            "tripwire",
            None,
        )
    fd = os.open(path, flags, 0o666)
    try:
        verify(fd, path)
    except BaseException:
        os.close(fd)
        raise
    return open(fd, mode, buffering, encoding, errors, newline, closefd=True)


def _udf_code():
    def make(fn):
        def udf(*args, **kwargs):
            return fn(*args, **kwargs)

        return udf

    return make(None).__code__


_UDF_CODE = _udf_code()
_module_dict = type(sys).__dict__["__dict__"].__get__


def trusted_udf(fn, builtins_module):
    """A function that calls ``fn`` in a frame running with the builtins of
    ``builtins_module`` (a capsule's builtins module, what its globals hold): wherever a
    library runs it (polars' worker threads), that capsule is on the stack
    (ipycap/engine/libraries/boundary.py).  Makes only this fixed trampoline; its globals
    hold the builtins module and a name, as a capsule's own ``globals()`` does, and ``fn``
    is in a closure cell."""
    if type(builtins_module) is dict or _context_of(_module_dict(builtins_module)) is None:
        raise CapsulePermissionError("a trampoline for builtins of no capsule", "tripwire")
    namespace = {"__builtins__": builtins_module, "__name__": "<capsule udf>"}
    return FunctionType(_UDF_CODE, namespace, "udf", None, (_new_cell(fn),))


def _new_cell(value):
    return (lambda: value).__closure__[0]


def trusted_compile(tree, filename: str, mode: str, flags: int = 0):
    """Compile a tree the gate produced (an AST compile carries no filename in its event)."""
    return compile(
        tree, filename, mode, flags=flags & ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True
    )


def compile_generated_template(python: str, filename: str):
    """Compile the Python jinja's sandbox generated from a capsule's template text
    (libraries/engines.py): the sandbox's code generator, not the capsule, wrote it."""
    return compile(python, filename, "exec", dont_inherit=True)


def trusted_module_types(module) -> list:
    """The classes an extension module's state holds (classfreeze freezes them)."""
    import gc

    return [r for r in gc.get_referents(module) if isinstance(r, type)]


def capsule_writes_here() -> bool:
    """Whether capsule code is on the stack above the write a deputies guard checks, with
    no trusted module being imported in between (a library imported on a capsule's behalf
    sets up its own objects: pandas names the module of its enum member no_default)."""
    f = sys._getframe(1)
    while f is not None:
        if _context_of(f.f_builtins) is not None or _frame_is_capsule_code(f):
            return True
        if f.f_code.co_name == "<module>" and not _is_ipycap_frame(f):
            return False
        f = f.f_back
    return False


def trusted_append(path: str, text: str) -> None:
    """Append to ipycap's own audit log."""
    with open(path, "a", encoding="utf-8") as f:
        f.write(text)


def trusted_input(prompt: str) -> str:
    return input(prompt)


def trusted_approval(registry, prompt: str):
    """Ask the host's approver (the human) whether a capsule may have a grant: the I/O of the
    asking (the kernel's stdin channel, the terminal) is the host's, not the capsule's.  Only
    the registry's own approver is ever called, so a leaked reference asks nothing else."""
    approver = registry.approver
    if approver is None:
        return None
    return approver("".join([prompt]))


_HELPER_GLOBALS = globals()
