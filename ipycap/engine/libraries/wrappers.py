"""The checks a profile needs code for: what a module view of a granted library hands out
instead of the raw attribute, and the few methods checked on the library's classes.

- *refused* names raise a refusal that names the library's profile;
- *option setters* that change the whole session are refused, with the per-block way;
- *native I/O* (Rust, C++, C: the tripwire sees only Python-level opens) gets its path
  argument resolved and checked against the read/write grants of every capsule on the
  stack before the library sees it; URLs and file systems are refused;
- *replaced* names (``df.query``, ``np.load``, ``as_strided``...) are safe versions.

Module functions are replaced only in the views capsules get (``view_attr``, called by
:mod:`ipycap.engine.modules`).  Methods are reached on instances, which capsules hold raw,
so they are wrapped on the class once (``install``): the wrapper checks when a capsule is on
the stack and is the original call otherwise.
"""

from __future__ import annotations

import ast
import fnmatch
import functools
import os
import re
import sys
import tokenize
import types
from collections.abc import Mapping

from .. import arrayguard, caches, guard, rules, tables, tripwire
from ..errors import (
    CapsuleImportError,
    CapsulePermissionError,
    CapsuleSyntaxError,
    CapsuleTypeError,
)
from ..gate import gate
from ..membrane import Proxy, export, target_of
from ..membrane import readonly as _membrane_readonly
from ..values import add_value_types
from . import (
    PROFILES,
    asking_package,
    blocks,
    boundary,
    engines,
    instances,
    randomstate,
    sqltext,
)
from .profile import PathArg

_PATH_TYPES = ("PosixPath", "PurePosixPath", "WindowsPath", "PureWindowsPath", "Path")
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://|^(s3|gs|gcs|az|abfs|hf|https?|ftp):")
_GLOB = re.compile(r"[*?\[]")


def _refusal(package: str, what: str, how=None, hint=None, cls=CapsulePermissionError):
    err = cls(what, f"{package} profile", how, hint=hint)
    ctx = tripwire.current_context()
    if ctx is not None:
        ctx.record_refusal(err, kind="library", target=package)
    return err


def _contexts(package: str, name: str) -> list:
    contexts = tripwire.contexts_on_stack(sys._getframe(2))
    if not contexts:
        raise CapsulePermissionError(
            f"{name} called for a capsule outside its code (a worker thread or a "
            "stored callback): its file access cannot be checked there",
            f"{package} profile",
            None,
        )
    return contexts


# -- path arguments -------------------------------------------------------------------------
def _as_path(value, arg: PathArg):
    """The path ``value`` names as an exact str; None when it is data or a file object.
    Raises for what cannot be trusted to name one path (a capsule os.PathLike)."""
    tp = type(value)
    if isinstance(value, str):
        return "".join([value])
    if isinstance(value, (bytes, bytearray, memoryview)):
        return None if arg.data_bytes else os.fsdecode(bytes(memoryview(value)))
    if tp.__module__ == "pathlib" and tp.__name__ in _PATH_TYPES:
        return str(value)
    if issubclass(tp, _stdviews().Path):  # the capsule's pathlib view (ipycap.engine.stdviews)
        # its own __fspath__, not a subclass's (a RevocableFile's ``__ipycap_path__`` *slot*
        # is no such marker: red team 8, finding 1)
        return _stdviews().Path.__fspath__(value)
    if hasattr(tp, "__fspath__"):
        raise CapsuleTypeError(
            f"a path given as a {tp.__name__} object (it could name another file when the "
            "library asks it again)",
            "library profile",
            None,
            hint="pass the path as a str",
        )
    return None  # a file object, a buffer or data: the library reads what it was given


def _stdviews():
    from .. import stdviews

    return stdviews


# -- file objects ------------------------------------------------------------------------------
# A descriptor number is authority (red team 8, finding 1): native code given a file object
# may take its ``fileno()`` and read or write that number below Python's I/O.  A file object
# argument is therefore one whose number is known: the capsule's own file (its grants
# checked now, for the kind of access), an in-memory stream, a process stream, or an object
# that cannot answer ``fileno`` at all.  Every native use of a number is checked again by the
# number (ipycap.engine.fds); this check refuses early, with a message that says what works.
#: Packages none of whose own objects is a file a library may be handed: polars' target
#: objects name paths its native code opens.
_TARGETS_RESOLVED_NATIVELY = frozenset({"polars"})


def _in_memory_types() -> tuple:
    import io

    from .. import streams

    return (io.BytesIO, io.StringIO, streams.CellStream, streams.ProcessStream)


def _has_name(namespace, name: str) -> bool:
    """``name`` among the keys (or a key that is no exact str: its ``__eq__`` could answer
    differently when the library looks the name up)."""
    return any(type(k) is not str or k == name for k in namespace)


def _may_answer_fileno(value) -> bool:
    """Whether ``fileno`` may be found on ``value`` (read from the class dicts only: no
    method of the object runs, so it cannot answer differently later)."""
    import types

    tp = type(value)
    mro = type.__dict__["__mro__"].__get__(tp)
    for cls in mro:
        d = type.__dict__["__dict__"].__get__(cls)
        if _has_name(d, "fileno"):
            return True
        if cls is not object and ("__getattr__" in d or "__getattribute__" in d):
            return True
    for cls in mro:
        slot = type.__dict__["__dict__"].__get__(cls).get("__dict__")
        if slot is None:
            continue
        if type(slot) is not types.GetSetDescriptorType:
            return True  # a __dict__ of the class's own making
        try:
            own = slot.__get__(value)
        except (AttributeError, TypeError):
            return True
        return type(own) is not dict or _has_name(own, "fileno")
    return False


def check_file_object(value, kinds, package: str, fn: str):
    """``value`` as a file object a library may be given for ``kinds`` (see above), or the
    refusal."""
    from .. import handles

    tp = type(value)
    if tp is handles.RevocableText or tp is handles.RevocableBinary:
        for kind in kinds:
            caps = value.__ipycap_read__ if kind == "read" else value.__ipycap_write__
            if not caps:
                raise _refusal(
                    package,
                    f"{fn} of the file opened on {value.__ipycap_path__!r}: it was not opened "
                    f"for {'reading' if kind == 'read' else 'writing'}",
                    hint="open it with mode " + ("'rb'" if kind == "read" else "'wb'"),
                )
            value.__ipycap_check__(kind)
        return value
    if tp is int or tp is bool or isinstance(value, int):
        raise _refusal(
            package,
            f"{fn} of a file descriptor number: native code would read or write it below "
            "every check",
            hint="pass the file open() returned, or a path within the grants",
        )
    module = type.__dict__["__module__"].__get__(tp)
    if type(module) is str and module.partition(".")[0] in _TARGETS_RESOLVED_NATIVELY:
        # polars' own target objects (pl.PartitionBy: a folder and a callable naming files)
        # are resolved to paths by its native sink, past every check (red team 10)
        raise _refusal(
            package,
            f"{fn} of a {tp.__name__} object: {module.partition('.')[0]} resolves the paths "
            "it names natively, unchecked",
            hint="write to a path within the grants (one file per call)",
        )
    if any(tp is t for t in _in_memory_types()) or not _may_answer_fileno(value):
        return value
    raise _refusal(
        package,
        f"{fn} of a {tp.__name__} object with a fileno(): native code would read or write "
        "the descriptor number it gives, below every check",
        hint="pass the file open() returned, a path within the grants, or an io.BytesIO / "
        "io.StringIO",
    )


#: Parameter names of a file argument, for the methods checked by their file objects only.
FILE_KEYWORDS = ("fp", "fname", "file", "f", "buf", "path_or_buf", "fh", "target", "source")


def _file_object_method(kind):
    def factory(fn, package, name):
        def checked(self, *args, **kwargs):
            if tripwire.capsule_on_stack():
                for value in args[:1] + tuple(v for k, v in kwargs.items() if k in FILE_KEYWORDS):
                    if not isinstance(value, (str, bytes, list, tuple)):
                        check_file_object(value, (kind,), package, name)
            return fn(self, *args, **kwargs)

        _describe(checked, fn, name)
        return checked

    return factory


writes_file_object = _file_object_method("write")
reads_file_object = _file_object_method("read")


def _check_one(path: str, kind: str, contexts, package: str, fn: str) -> str:
    """Resolve ``path`` and check it for ``kind`` in every capsule; returns what the library
    should be given (the resolved path, so ``~`` and symlinks mean what was checked)."""
    if _URL.match(path):
        raise _refusal(
            package,
            f"{fn} of {path!r}: network and cloud storage are outside the capsule",
        )
    expanded = os.path.expanduser(path)
    tail = ""
    if _GLOB.search(expanded):
        # A pattern: everything it matches lies under its literal leading folder.
        head, parts = [], expanded.split(os.sep)
        for i, part in enumerate(parts):
            if _GLOB.search(part):
                tail = os.sep.join(parts[i:])
                break
            head.append(part)
        expanded = os.sep.join(head) or "."
    resolved = os.path.realpath(expanded)
    for ctx in contexts:
        if not ctx.allows_path(kind, resolved):
            denied = kind == "write" and ctx.policy.write_plants_code(resolved)
            raise _refusal(
                package,
                f"{kind} access to {resolved} by {fn} (native I/O, checked by the "
                "library's profile)",
                None if denied else ctx.how_to_grant(kind, resolved),
            )
        ctx.check_path(kind, resolved)  # records the use
    if kind == "read" and not tail:
        try:
            st = os.stat(resolved)
        except OSError:
            st = None
        if st is not None and not os.path.isdir(resolved) and st.st_nlink > 1:
            raise _refusal(
                package,
                f"{fn} of {resolved}: the file has several hard links, so the same "
                "file may live outside the grant",
                hint="copy the file instead of linking it",
            )
    if kind == "read" and (tail or os.path.isdir(resolved)):
        _check_below(resolved, tail, contexts, package, fn)
    return os.path.join(resolved, tail) if tail else resolved


#: Most entries a pattern or folder read may reach before it is refused unchecked.
BELOW_MAX = 20_000


def _check_below(folder: str, tail: str, contexts, package: str, fn: str) -> None:
    """A pattern or a folder the library expands natively (polars' and pyarrow's own glob and
    dataset discovery, which follow symlinks): every path it can open -- each match of the
    pattern, hidden names included as Rust's glob matches them, and everything below a
    matched or given folder -- must resolve inside the grants, with one link only (red team
    8, finding 5)."""
    import glob as _glob

    if tail:
        todo = _glob.glob(os.path.join(folder, tail), recursive=True, include_hidden=True)
    else:
        todo = [folder]
    seen: set = set()
    while todo:
        path = todo.pop()
        real = os.path.realpath(path)
        for ctx in contexts:
            if not ctx.allows_path("read", real):
                raise _refusal(
                    package,
                    f"{fn} of {folder}: {path} leads to {real}, outside the grants (the "
                    "library opens what its pattern or folder holds natively)",
                    hint="grant what the link points to, or name the files one by one",
                )
        if real in seen:
            continue
        seen.add(real)
        if len(seen) > BELOW_MAX:
            raise _refusal(
                package,
                f"{fn} of {folder}: more than {BELOW_MAX} files to check under it",
                hint="name a smaller folder or pattern",
            )
        try:
            st = os.stat(real)
        except OSError:
            continue
        if os.path.isdir(real):
            try:
                todo.extend(os.path.join(real, name) for name in os.listdir(real))
            except OSError:
                continue
        elif st.st_nlink > 1:
            raise _refusal(
                package,
                f"{fn} of {folder}: {path} has several hard links, so the same file may "
                "live outside the grant",
                hint="copy the file instead of linking it",
            )


def _check_arg(value, kinds, arg: PathArg, contexts, package: str, fn: str):
    if isinstance(value, (list, tuple)) and not isinstance(value, str):
        return type(value)(_check_arg(v, kinds, arg, contexts, package, fn) for v in value)
    path = _as_path(value, arg)
    if path is None:
        if isinstance(value, (bytes, bytearray, memoryview)):
            return value  # data
        return check_file_object(value, kinds, package, fn)
    for kind in kinds:
        resolved = _check_one(path, kind, contexts, package, fn)
    return resolved


def _rebind(args, kwargs, arg: PathArg, checker):
    """Apply ``checker`` to the path argument, wherever it was passed."""
    if len(args) > arg.position:
        args = list(args)
        args[arg.position] = checker(args[arg.position])
    elif arg.keyword in kwargs:
        kwargs[arg.keyword] = checker(kwargs[arg.keyword])
    return args, kwargs


def checked_function(fn, package: str, name: str, kinds, arg: PathArg):
    """A module function whose path argument is checked (given out by views only)."""

    def checked(*args, **kwargs):
        contexts = _contexts(package, name)
        if "filesystem" in kwargs and kwargs["filesystem"] is not None:
            raise _refusal(package, f"{name} with a filesystem= object")
        args, kwargs = _rebind(
            args, kwargs, arg, lambda v: _check_arg(v, kinds, arg, contexts, package, name)
        )
        return fn(*args, **kwargs)

    _describe(checked, fn, name)
    return checked


def checked_method(fn, package: str, name: str, kinds, arg: PathArg):
    """A method whose path argument is checked whenever a capsule is on the stack."""

    def checked(self, *args, **kwargs):
        contexts = tripwire.contexts_on_stack(sys._getframe(1))
        if contexts:
            args, kwargs = _rebind(
                args, kwargs, arg, lambda v: _check_arg(v, kinds, arg, contexts, package, name)
            )
        return fn(self, *args, **kwargs)

    _describe(checked, fn, name)
    return checked


def _describe(wrapper, fn, name):
    wrapper.__name__ = getattr(fn, "__name__", name.rpartition(".")[2])
    wrapper.__qualname__ = getattr(fn, "__qualname__", name)
    wrapper.__doc__ = getattr(fn, "__doc__", None)


# -- replacements -------------------------------------------------------------------------
def _refusing(package: str, name: str, why: str, hint=None):
    """A stand-in that refuses when called (a view hands it out for a refused function)."""

    def refused(*args, **kwargs):
        raise _refusal(package, f"{name}: {why}", hint=hint)

    refused.__name__ = name.rpartition(".")[2]
    refused.__qualname__ = name
    refused.__doc__ = f"Refused in a capsule: {why}."
    return refused


def numpy_load(fn, package, name):
    def load(file, mmap_mode=None, allow_pickle=False, *args, **kwargs):
        if allow_pickle:
            raise _refusal(package, "numpy.load(allow_pickle=True): unpickling runs code")
        if mmap_mode is not None:
            raise _refusal(package, "numpy.load(mmap_mode=...): mmap is refused in capsules")
        return fn(file, None, False, *args, **kwargs)

    _describe(load, fn, name)
    return load


def as_strided(fn, package, name):
    """``as_strided`` whose result stays inside the memory of the array it views."""

    def checked(x, shape=None, strides=None, subok=False, writeable=True):
        np = sys.modules["numpy"]
        x = np.asanyarray(x)
        shape = tuple(x.shape if shape is None else shape)
        strides = tuple(x.strides if strides is None else strides)
        if len(shape) != len(strides) or any(type(n) is not int for n in shape + strides):
            raise _refusal(package, "as_strided with a shape and strides that do not match")
        root = x
        while isinstance(getattr(root, "base", None), np.ndarray):
            root = root.base
        lo, hi = np.lib.array_utils.byte_bounds(root)
        start = x.__array_interface__["data"][0]
        if any(n == 0 for n in shape):
            low = high = start
        else:
            low = start + sum(s * (n - 1) for n, s in zip(shape, strides, strict=True) if s < 0)
            high = start + sum(s * (n - 1) for n, s in zip(shape, strides, strict=True) if s > 0)
            high += x.itemsize
        if low < lo or high > hi or any(n < 0 for n in shape):
            raise _refusal(
                package,
                "numpy.lib.stride_tricks.as_strided with strides that reach outside the "
                "array's memory",
                hint="sliding_window_view gives windows without raw strides",
            )
        return fn(x, shape, strides, subok, writeable)

    _describe(checked, fn, name)
    return checked


def printoptions(fn, package, name):
    def checked(*args, **kwargs):
        if "formatter" in kwargs:
            raise _refusal(
                package,
                "numpy.printoptions(formatter=...): the formatter would run on arrays printed "
                "by trusted code",
            )
        return fn(*args, **kwargs)

    _describe(checked, fn, name)
    return checked


_BACKTICKS = re.compile(r"`[^`]*`")


def _as_pandas_parses(expr: str) -> str:
    """The Python source pandas' own pre-parser makes of ``expr`` (its tokenizer: backticks
    inside string literals are text, red team 10 hid ``@a.ctypes._ctypes`` between two
    quoted backticks from a regex), with ``@name`` as ``name``.  pandas parses the same
    text (``parser='python'`` does no pre-parsing: a backtick there is a syntax error)."""
    try:
        from pandas.core.computation import expr as pandas_expr
        from pandas.core.computation.parsing import clean_backtick_quoted_toks
    except ImportError:  # no pandas: the plain rule
        return _BACKTICKS.sub("bt_column", expr).replace("@", "")

    def no_at(tok):
        return (tok[0], "") if tok == (tokenize.OP, "@") else tok

    def each(tok):
        return no_at(clean_backtick_quoted_toks(pandas_expr._replace_booleans(tok)))

    try:
        return pandas_expr._preparse(expr, f=each)
    except Exception:  # noqa: BLE001 - pandas' tokenizer fails on it: so does pandas
        return "("  # a syntax error: refused by the caller


def check_expression(expr, package: str = "pandas") -> None:
    """A pandas expression passes the gate's rules: pandas evaluates attributes and calls in
    its own frames with the raw getattr, so no risky attribute or reserved name may appear."""
    if not isinstance(expr, str):
        return  # pandas itself refuses anything else
    source = _as_pandas_parses("".join([expr]))
    try:
        tree = ast.parse(source, "<expression>", "exec")
    except SyntaxError:
        # pandas parses this same text: it fails there too -- or the check misread it
        raise _refusal(
            package, f"the expression {expr!r} does not parse as pandas reads it (a syntax error)"
        ) from None
    try:
        gated = gate(source, "<expression>")
    except CapsuleSyntaxError as e:
        raise _refusal(package, f"the expression {expr!r}: {e.what}") from None
    risky = [n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute) and n.attr[:1] == "_"]
    if gated.rewrites or risky:
        raise _refusal(
            package,
            f"the expression {expr!r} reads an attribute the guard protects (pandas "
            "evaluates it outside the guard)",
            hint="compute that part in the cell and use it as @name",
        )


def _no_level(kwargs, package, name):
    if "level" in kwargs:
        raise _refusal(
            package,
            f"{name}(level=...): it reads the names of frames outside the capsule",
        )


def pandas_eval(fn, package, name):
    def checked(expr, *args, **kwargs):
        _no_level(kwargs, package, name)
        check_expression(expr, package)
        kwargs["level"] = 1  # the capsule's frame, not this wrapper's
        return fn(expr, *args, **kwargs)

    _describe(checked, fn, name)
    return checked


def _frame_method(fn, package, name):
    def checked(self, expr, *args, **kwargs):
        if tripwire.capsule_on_stack() and asking_package(sys._getframe(1)) is None:
            _no_level(kwargs, package, name)  # the capsule calls (not pandas' query -> eval)
            check_expression(expr, package)
        kwargs["level"] = kwargs.pop("level", 0) + 1  # skip this wrapper's frame
        return fn(self, expr, *args, **kwargs)

    _describe(checked, fn, name)
    return checked


frame_query = frame_eval = _frame_method


def _refusing_method(why):
    def factory(fn, package, name):
        kind = type(fn) if isinstance(fn, (classmethod, staticmethod)) else None
        raw = fn.__func__ if kind is not None else fn

        def checked(*args, **kwargs):
            if tripwire.capsule_on_stack():
                raise _refusal(package, f"{name}: {why}")
            return raw(*args, **kwargs)

        _describe(checked, raw, name)
        return kind(checked) if kind is not None else checked

    return factory


refuse_pickle = _refusing_method("pickling writes a file other code may unpickle later")
refuse_unpickle = _refusing_method(
    "a serialized frame or plan may carry pickled Python objects, which run code when loaded"
)
refuse_database = _refusing_method("databases, lakes and the clipboard are outside the capsule")


class ReadOnlyOptions(Mapping):
    """A capsule's view of a global settings mapping (matplotlib's rcParams): reading works,
    changing it is refused with the per-block way."""

    __slots__ = ("__ipycap_data__", "__ipycap_hint__", "__ipycap_what__")

    def __new__(cls, data, hint, what=("matplotlib", "rcParams")):
        # state set once, here: __init__ is object's, so capsule code cannot re-aim the
        # view (``type(v).__init__(v, its_dict, None)``) that other capsules read
        self = object.__new__(cls)
        object.__setattr__(self, "__ipycap_data__", data)
        object.__setattr__(self, "__ipycap_hint__", hint)
        object.__setattr__(self, "__ipycap_what__", what)
        return self

    def __getitem__(self, key):
        return tables.read_only(self.__ipycap_data__[key], self.__ipycap_what__[1])

    def __iter__(self):
        return iter(self.__ipycap_data__)

    def __len__(self):
        return len(self.__ipycap_data__)

    def __setitem__(self, key, value):
        package, what = self.__ipycap_what__
        raise _refusal(
            package,
            f"{what}[{key!r}] = ...: it changes a table the whole session uses",
            hint=self.__ipycap_hint__,
        )

    __delitem__ = __setitem__

    def update(self, *args, **kwargs):
        self.__setitem__("...", None)

    def __setattr__(self, name, value):
        self.__setitem__(name, value)

    def __repr__(self):
        return f"<read-only {self.__ipycap_what__[1]} ({len(self)} entries)>"


guard.share_class(ReadOnlyOptions)


def read_only_rc(fn, package, name):
    return ReadOnlyOptions(
        fn, "with plt.rc_context({'lines.linewidth': 2}): ...", (package, name.rpartition(".")[2])
    )


def read_only_table(fn, package, name):
    """A process-wide table (``matplotlib.units.registry``, ``pandas.plotting.plot_params``)
    as a capsule sees it: readable, never changed."""
    return ReadOnlyOptions(fn, None, (package, name))


def checked_sql(fn, package, name):
    """``fn`` taking SQL text (polars' ``SQLContext.execute``, ``pl.sql``): refused when the
    query may call a table function, which reads a file natively (:mod:`.sqltext`)."""
    wrapper = type(fn) if isinstance(fn, (classmethod, staticmethod)) else None
    raw = fn.__func__ if wrapper is not None else fn

    def checked(*args, **kwargs):
        if tripwire.capsule_on_stack():
            texts = [a for a in args if isinstance(a, str)]
            texts += [v for k, v in kwargs.items() if k in ("query", "sql") and isinstance(v, str)]
            for text in texts:
                call = sqltext.table_function("".join([text]))
                if call is not None:
                    raise _refusal(
                        package,
                        f"{name} of a query calling {call}(...): SQL table functions read "
                        "files natively, where no grant is checked",
                        hint="read the file with pl.read_csv/pl.scan_parquet (checked against "
                        "the grants) and query the frame",
                    )
        return raw(*args, **kwargs)

    _describe(checked, raw, name)
    return wrapper(checked) if wrapper is not None else checked


def read_only_result(fn, package, name):
    """``fn`` returning the library's own table (``colors.get_named_colors_mapping()``):
    capsule code gets it read-only."""

    @functools.wraps(fn)
    def call(*args, **kwargs):
        return tables.read_only(fn(*args, **kwargs), name)

    return call


def copy_result(fn, package, name):
    """``fn`` returning a copy of the library's own table (``Image.registered_extensions``)."""

    @functools.wraps(fn)
    def call(*args, **kwargs):
        return dict(fn(*args, **kwargs))

    return call


#: The types a ``pl.Config`` setter takes in a capsule: options are plain values, and a
#: capsule callable given to polars' session state (``set_default_credential_provider``)
#: would be called by trusted code's scans.
_PLAIN_OPTION_TYPES = frozenset({type(None), bool, int, float, str})


def _plain_options(name, args, kwargs) -> None:
    for value in (*args, *kwargs.values()):
        items = value if type(value) in (tuple, list) else (value,)
        if not all(type(v) in _PLAIN_OPTION_TYPES for v in items):
            raise _refusal(
                "polars",
                f"polars.Config.{name} with a {type(value).__name__} argument: "
                "options are None, bool, int, float or str in a capsule",
            )
    if not all(type(k) is str for k in kwargs):
        raise _refusal("polars", f"polars.Config.{name} with a non-str keyword")


def _config_member(cls, block, name):
    """What ``pl.Config`` (``block`` None) and a ``pl.Config(...)`` block offer a capsule:
    ``state()``, and in an entered block its ``set_*`` options (undone when the block
    exits, and by the run's end: ``blocks.restore``).  Everything else of polars' class --
    ``save_to_file``, ``load_from_file``, ``_set_config_params`` -- is refused: a capsule
    never holds the class itself."""
    if name == "state":

        def state(*args, **kwargs):
            _plain_options(name, args, kwargs)
            return dict(cls.state(*args, **kwargs))  # str -> str | None

        return state
    setter = cls.__dict__.get(name) if name.startswith("set_") else None
    if type(setter) is classmethod and block is not None:

        def set_option(*args, **kwargs):
            if not block.entered():
                raise _refusal(
                    "polars",
                    f"polars.Config.{name} outside its block: it changes the options of "
                    "the whole session",
                    hint="call it inside 'with pl.Config() as cfg:'",
                )
            _plain_options(name, args, kwargs)
            setter.__func__(cls, *args, **kwargs)
            return block

        return set_option
    if type(setter) is classmethod:
        raise _refusal(
            "polars",
            f"polars.Config.{name}: it changes the options of the whole session",
            hint=f"use 'with pl.Config() as cfg: cfg.{name}(...)' for a block",
        )
    raise _refusal("polars", f"polars.Config.{name} is not available in a capsule")


class ConfigStandIn:
    """``polars.Config`` in a capsule: ``with pl.Config(tbl_rows=5) as cfg:`` works (restored
    on exit), ``cfg.set_*`` in the block too; ``pl.Config.state()`` reads; the class-level
    setters, which change the whole session, and the rest of polars' class are refused
    (:func:`_config_member`)."""

    __slots__ = ("__ipycap_cls__",)

    def __new__(cls, config_cls):
        # state set once, here: a capsule calling __init__ again could put its own class
        # behind every capsule's pl.Config
        self = object.__new__(cls)
        object.__setattr__(self, "__ipycap_cls__", config_cls)
        return self

    def __call__(self, *args, **kwargs):
        if args or kwargs.get("restore_defaults") or kwargs.get("apply_on_context_enter"):
            raise _refusal("polars", "polars.Config(...) with positional or restore arguments")
        cls = object.__getattribute__(self, "__ipycap_cls__")
        _plain_options("__init__", (), kwargs)
        return blocks.polars_block(cls, functools.partial(_config_member, cls), **kwargs)

    def __getattr__(self, name):
        if type(name) is not str or name.startswith("__"):
            raise AttributeError(
                f"polars.Config has no attribute {str.__str__(name)!r} in a capsule"
            )
        return _config_member(object.__getattribute__(self, "__ipycap_cls__"), None, name)

    def __setattr__(self, name, value):
        raise _refusal("polars", "polars.Config is read-only in a capsule")

    def __repr__(self):
        return "<polars.Config (capsule: use it as a context manager)>"


guard.share_class(ConfigStandIn)


def polars_config(fn, package, name):
    return ConfigStandIn(fn)


def _text_tqdm(fn, package, name):
    return sys.modules["tqdm.std"].tqdm


def _text_trange(fn, package, name):
    return sys.modules["tqdm.std"].trange


text_tqdm, text_trange = _text_tqdm, _text_trange


# -- protected objects into a library function: deep copies -----------------------------------
def _protected_copy(target):
    """A copy of protected pandas/numpy ``target`` that shares nothing with it (data,
    index and column labels), so the library and its result -- which comes back raw -- never
    reach the user's object.  Object columns must hold plain values: their items are not
    copied, and a trusted object among them would reach the capsule raw (I2)."""
    from ..membrane import is_plain

    pd, np = sys.modules.get("pandas"), sys.modules.get("numpy")
    if pd is not None and isinstance(target, (pd.DataFrame, pd.Series)):
        copy = target.copy(deep=True)
        objects = [copy] if isinstance(copy, pd.Series) else [copy[c] for c in copy.columns]
        for column in objects:
            if column.dtype == object and not all(is_plain(v) for v in column.tolist()):
                raise CapsuleTypeError(
                    "a protected pandas object with Python objects in a column cannot be "
                    "handed to a library call",
                    "membrane",
                    hint="select the columns of plain values first",
                )
        copy.index = target.index.copy(deep=True)
        if isinstance(copy, pd.DataFrame):
            copy.columns = target.columns.copy(deep=True)
        return copy
    if np is not None and type(target) is np.ndarray and not target.dtype.hasobject:
        return np.array(target, copy=True)
    return None


#: Containers longer than this are passed as they are (``pd.DataFrame(rows)`` of a million
#: rows is not scanned): the frames ``pd.concat`` joins come in short lists.
_SCANNED = 64


def _copied(value, depth=0):
    """``value`` with the protected pandas/numpy objects in it (one container deep) copied;
    the value itself when there are none."""
    tp = type(value)
    if tp is Proxy:
        copy = _protected_copy(target_of(value))
        return value if copy is None else copy
    if (tp is not list and tp is not tuple and tp is not dict) or depth or len(value) > _SCANNED:
        return value
    items = value.values() if tp is dict else value
    if not any(type(v) is Proxy for v in items):
        return value
    if tp is dict:
        return {k: _copied(v, 1) for k, v in value.items()}
    copied = [_copied(v, 1) for v in value]
    return copied if tp is list else tuple(copied)


def copies_protected(fn, package, name):
    """``fn`` (``pd.concat``, ``pd.merge`` ...) getting deep copies of the protected pandas
    and numpy objects among its arguments (directly, or in a list, tuple or dict of them)
    instead of their proxies, which it would refuse: it gives the same answer as without
    ipycap, and what it returns shares nothing with the user's objects."""

    @functools.wraps(fn)
    def call(*args, **kwargs):
        return fn(*[_copied(a) for a in args], **{k: _copied(v) for k, v in kwargs.items()})

    return call


def _capsule_axes(value):
    """The capsule's own matplotlib Axes behind a reverse proxy (``df.plot(ax=own)``: the
    membrane exported the capsule's Axes), or None."""
    from ..membrane import ReverseProxy
    from ..membrane.crossing import _rp_target

    if type(value) is not ReverseProxy:
        return None
    axes = sys.modules.get("matplotlib.axes")
    target = _rp_target(value)
    cls = getattr(axes, "Axes", None)
    if cls is None or not isinstance(target, cls):
        return None
    module = type.__dict__["__module__"].__get__(type(target))
    return target if type(module) is str and module.partition(".")[0] == "matplotlib" else None


def plots_on_capsule_axes(fn, package, name):
    """pandas plotting of a protected frame (``df.plot(ax=own)``, ``df['a'].hist(ax=own)``)
    onto an Axes the capsule made: the Axes reaches pandas as itself (a reverse proxy fails
    pandas' and matplotlib's class checks), and pandas plots a deep copy of the frame, so
    nothing the capsule's Axes keeps (lines, their data) shares memory with the user's.
    Any other call is the original."""

    @functools.wraps(fn)
    def call(self, *args, **kwargs):
        ax = kwargs.get("ax")
        axes = _capsule_axes(ax)
        if axes is None:
            return fn(self, *args, **kwargs)
        frame = getattr(self, "_parent", self)  # PlotAccessor keeps its frame as _parent
        copy = _protected_copy(frame)
        if copy is None:
            raise _refusal(package, f"{name}: no copy of a {type(frame).__name__} to plot")
        kwargs["ax"] = axes
        result = fn(copy if frame is self else type(self)(copy), *args, **kwargs)
        return ax if result is axes else result  # the capsule's own Axes, coming home

    return call


def _holds_capsule_code(value) -> bool:
    """Whether trusted code keeping ``value`` would later call or ask capsule code: a capsule
    function, object or class, a method bound to one, or a partial of one -- or one of
    ipycap's stand-ins a capsule was given (``operator.attrgetter``, ``'...'.format``), which
    decide for the capsule and, called by trusted code with its raw objects, read them."""
    tp = type(value)
    if guard.is_own(value):
        return True
    if tp is types.FunctionType:
        name = value.__globals__.get("__name__")
        return type(name) is str and name.partition(".")[0] == "ipycap"
    if type.__dict__["__module__"].__get__(tp) == "ipycap.engine._fastbuiltins":
        return True
    if tp is types.MethodType:
        return _holds_capsule_code(value.__func__) or _holds_capsule_code(value.__self__)
    if tp is types.BuiltinFunctionType or tp is types.MethodWrapperType:
        owner = value.__self__
        return owner is not None and type(owner) is not types.ModuleType and guard.is_own(owner)
    if tp is functools.partial:
        return (
            _holds_capsule_code(value.func)
            or any(map(_holds_capsule_code, value.args))
            or any(map(_holds_capsule_code, value.keywords.values()))
        )
    return False


def option_values(value, depth=0):
    """Option values as a library's process-wide table may keep them: what holds capsule code
    leaves as the membrane exports it, a reverse proxy that wraps whatever trusted code later
    hands it.  pandas' Styler called a capsule's ``styler.format.formatter`` with the raw
    cells of a protected frame (session 11).  Containers are copied (a capsule list
    subclass leaves as a list); plain data and library objects stay as they are."""
    if depth > 20:
        raise CapsulePermissionError("option values nested too deeply", "library profile")
    tp = type(value)
    if tp is tuple or tp is list:
        return tp(option_values(v, depth + 1) for v in value)
    if tp is dict:
        return {
            option_values(k, depth + 1): option_values(v, depth + 1) for k, v in dict.items(value)
        }
    if _holds_capsule_code(value):
        return export(value)
    return value


def _options_exported(factory):
    """A block factory (blocks.py) whose option values are :func:`option_values`."""

    def make(fn, package, name):
        made = factory(fn, package, name)

        @functools.wraps(fn)
        def call(*args, **kwargs):
            return made(*option_values(args), **option_values(kwargs))

        return call

    return make


_FACTORIES = {
    "plots_on_capsule_axes": plots_on_capsule_axes,
    "copies_protected": copies_protected,
    "numpy_load": numpy_load,
    "as_strided": as_strided,
    "printoptions": printoptions,
    "pandas_eval": pandas_eval,
    "frame_query": frame_query,
    "frame_eval": frame_eval,
    "refuse_pickle": refuse_pickle,
    "refuse_unpickle": refuse_unpickle,
    "refuse_database": refuse_database,
    "read_only_rc": read_only_rc,
    "read_only_table": read_only_table,
    "copy_result": copy_result,
    "read_only_result": read_only_result,
    "checked_sql": checked_sql,
    "polars_config": polars_config,
    "text_tqdm": text_tqdm,
    "text_trange": text_trange,
    "writes_file_object": writes_file_object,
    "reads_file_object": reads_file_object,
    "scoped_block": _options_exported(blocks.block),
    "eager_block": _options_exported(blocks.eager_block),
    # its own check reads each argument once into a plain dict; then the dict's values
    "rc_block": functools.partial(blocks.rc_block, values=option_values),
    **randomstate.FACTORIES,
}


# -- the index -------------------------------------------------------------------------------
def _entries():
    """name -> (package, what) for every name a profile mentions."""
    table: dict[str, dict] = {}
    for profile in PROFILES.values():
        pkg = profile.package

        def entry(key, _pkg=pkg):
            return table.setdefault(key, {"package": _pkg, "kinds": []})

        for key, why in profile.refused.items():
            if ":" in key:  # a method: refused to capsule code, kept for the library's own
                entry(key)["replaced"] = boundary.refuse_call(why)
            else:
                entry(key)["refused"] = why
        for key, hint in profile.options.items():
            entry(key)["option"] = hint
        for key, arg in profile.reads.items():
            e = entry(key)
            e["kinds"].append("read")
            e["arg"] = arg
        for key, arg in profile.writes.items():
            e = entry(key)
            e["kinds"].append("write")
            e["arg"] = arg
        for key, factory in profile.replaced.items():
            entry(key)["replaced"] = _FACTORIES[factory]
        for key, table_name in profile.registers.items():
            if ":" in key:
                entry(key)["replaced"] = boundary.refuse_registration(table_name)
            else:
                entry(key)["refused"] = boundary.registration_message(key, table_name).partition(
                    ": "
                )[2]
        for key, arg in profile.udfs.items():
            entry(key)["replaced"] = boundary.capsule_udfs(arg)
        for key, spec in profile.templates.items():
            _TEMPLATES[key] = (pkg, spec)
        _TABLES.update(profile.tables)
    return table


#: Template-taking functions and methods (``Profile.templates``): wrapped in place, in the
#: library's own module or class, so the library's internal calls are checked too.
_TEMPLATES: dict = {}
#: Shared tables (``Profile.tables``): replaced in place (ipycap.engine.tables).
_TABLES: dict = {}


_TABLE = _entries()
_VIEW_INDEX = {tuple(k.rsplit(".", 1)): v for k, v in _TABLE.items() if ":" not in k}
_METHODS = {k: v for k, v in _TABLE.items() if ":" in k}


def _replacement(entry, value, name):
    package = entry["package"]
    if "refused" in entry:
        raise _refusal(package, f"{name}: {entry['refused']}")
    if "option" in entry:
        # a profile's text is either the way that works (a block, another call) or, when no
        # way does, the reason: a reason is no hint (refusals hint only what would work)
        text = entry["option"]
        if text.startswith(("it ", "the ")):
            raise _refusal(
                package,
                f"{name}: it changes the options of the whole session, no block sets it ({text})",
            )
        how = "for a block" if text.startswith("with ") else "instead"
        raise _refusal(
            package, f"{name}: it changes the options of the whole session", hint=f"{how}: {text}"
        )
    if entry["kinds"]:
        value = checked_function(value, package, name, tuple(entry["kinds"]), entry["arg"])
    if "replaced" in entry:
        value = entry["replaced"](value, package, name)
    return value


_BY_OBJECT: dict[int, tuple] = {}  # id(original) -> (original, entry, name): aliases
_INDEXED: set[str] = set()


def _index_objects() -> None:
    """Index the originals of every entry whose module is imported, so an alias of a checked
    function (``pd.io.parsers.read_csv``, ``np.lib.npyio.load``) gets the same treatment."""
    for (module_name, attr), entry in _VIEW_INDEX.items():
        if module_name in _INDEXED:
            continue
        module = sys.modules.get(module_name)
        if module is None:
            continue
        original = vars(module).get(attr)
        if original is not None and not isinstance(original, (int, str, float)):
            _BY_OBJECT[id(original)] = (original, entry, f"{module_name}.{attr}")
    _INDEXED.update(m for m, _ in _VIEW_INDEX if m in sys.modules)


def view_attr(module_name: str, name: str, value):
    """What a capsule's view of ``module_name`` hands out for ``name`` (``value`` is the
    module's own attribute): the value itself, a checked or safe version, or a refusal."""
    entry = _VIEW_INDEX.get((module_name, name))
    if entry is not None:
        return _replacement(entry, value, f"{module_name}.{name}")
    _index_objects()
    alias = _BY_OBJECT.get(id(value))
    if alias is not None and alias[0] is value:
        return _replacement(alias[1], value, alias[2])
    return value


def check_import(ctx, name: str) -> None:
    """Before a capsule's import of ``name`` from a granted library: refused submodules
    (``pyarrow.fs``) and private ones (``pyarrow._fs``) are refused however they are named,
    and a package without a profile is noted in the registry."""
    parts = name.split(".")
    missing = arrayguard.unavailable()
    if missing and parts[0] in PROFILES and parts[0] != "tqdm":  # they convert with numpy
        raise _refusal(parts[0], f"import of {name!r}: {missing}", cls=CapsuleImportError)
    if parts[0] in PROFILES:
        for i in range(1, len(parts)):
            parent, child = ".".join(parts[:i]), parts[i]
            if child[:1] == "_":
                raise _refusal(
                    parts[0],
                    f"import of {name!r}: {child} is private to {parent}",
                    cls=CapsuleImportError,
                )
            if is_view_refused(parent, child):
                view_attr(parent, child, None)  # raises the profile's refusal
    note_unprofiled(ctx, name)


def is_view_refused(module_name: str, name: str) -> bool:
    entry = _VIEW_INDEX.get((module_name, name))
    return entry is not None and ("refused" in entry or "option" in entry)


# -- classes: methods checked in place, attributes refused, classes frozen -------------------
_INSTALLED: set[str] = set()
_INSTALLED_KEYS: set[str] = set()


def _numpy_scalars():
    """numpy's numeric, boolean and time scalar types (immutable, no buffer of an array:
    ``np.void`` scalars can view an array and are not among them)."""
    np = sys.modules["numpy"]
    found = set()
    todo = [np.number, np.bool_, np.datetime64, np.timedelta64]
    while todo:
        tp = todo.pop()
        found.add(tp)
        todo.extend(type.__subclasses__(tp))
    return {t for t in found if t.__module__ == "numpy" and not (t.__flags__ & (1 << 9))}


def _warm_numpy() -> None:
    """numpy's C code imports some of its Python helpers on first use (``ndarray.sum`` ->
    ``numpy._core._methods``, dtype printing -> ``numpy._core._dtype``) through the
    ``__import__`` of the innermost Python frame: a capsule's, whose import of a private
    submodule is refused.  Using them once here, in trusted code, fills numpy's cache."""
    np = sys.modules["numpy"]
    a = np.ones(2)
    for method in ("sum", "prod", "mean", "std", "var", "min", "max", "any", "all", "clip"):
        try:
            getattr(a, method)(*((0, 1) if method == "clip" else ()))
        except Exception:  # noqa: BLE001 - a warm-up only
            pass
    str(a.dtype), repr(a.dtype), repr(a), str(np.float64(1.5)), repr(np.int64(1))


def install() -> None:
    """Wrap the profiled methods (and template-taking functions) of every profiled library
    module imported so far; each once.  Called whenever a capsule makes a module view, so a
    submodule the library imported lazily since (pandas' Styler) is wrapped then."""
    for package in PROFILES:
        if package in _INSTALLED or package not in sys.modules:
            continue
        _INSTALLED.add(package)
        if package == "numpy":
            add_value_types(_numpy_scalars())
            _warm_numpy()
        if package == "pandas":
            _import_quietly("pandas.io.formats.style_render")  # Styler.format's templates
        if package == "tqdm":
            _prepare_tqdm()
    if "PIL" in sys.modules:
        from . import pil

        pil.install_descriptor_checks()  # Pillow's codecs given descriptor numbers
    if "matplotlib.pyplot" in sys.modules:
        boundary.scope_figures()
    instances.scope_tables(PROFILES.values())  # class-level instance tables, per capsule
    engines.install()  # jinja2 (pandas' Styler): capsule text only in its sandbox
    if len(_INSTALLED_KEYS) == len(_METHODS) + len(_TEMPLATES) + len(_TABLES) and (
        _PATTERNS_AT == len(sys.modules)
    ):
        return  # everything wrapped: the common case, two comparisons per module view
    for key, entry in _METHODS.items():
        if key not in _INSTALLED_KEYS:
            _install_method(key, entry)
    for key, (package, spec) in _TEMPLATES.items():
        if "template " + key not in _INSTALLED_KEYS:
            _install_template(key, package, spec)
    for key in _TABLES:
        if "table " + key not in _INSTALLED_KEYS:
            _install_table(key)
    _install_table_patterns()


_PATTERNS_AT = 0  # len(sys.modules) when the table patterns were last applied


def _install_table_patterns() -> None:
    """Pattern entries (``"sklearn:*._parameter_constraints"``; ``*`` in the attribute
    matches as in fnmatch): the attribute on every class of the package's imported modules, again whenever
    modules were imported since."""
    global _PATTERNS_AT
    if _PATTERNS_AT == len(sys.modules):
        return
    _PATTERNS_AT = len(sys.modules)
    caches.on_library_modules(frozenset(PROFILES))  # their lru_caches keep no capsule key
    for key in _TABLES:
        package, _, path = key.partition(":")
        if not path.startswith("*."):
            continue
        attr = path[2:]
        for name, module in list(sys.modules.items()):
            if module is None or name.partition(".")[0] != package:
                continue
            for cls in list(vars(module).values()):
                if not isinstance(cls, type) or getattr(cls, "__module__", None) != name:
                    continue
                for entry in list(vars(cls)):
                    if entry == attr or ("*" in attr and fnmatch.fnmatchcase(entry, attr)):
                        tables.share(cls, entry, f"{name}.{cls.__qualname__}.{entry}")


def _install_table(key) -> None:
    """A profile's shared table (``"module:Owner.attr"``), replaced once its module is
    imported (ipycap.engine.tables.share)."""
    module_name, _, path = key.partition(":")
    owner = sys.modules.get(module_name)
    if path.startswith("*."):
        _INSTALLED_KEYS.add("table " + key)  # (applied by _install_table_patterns)
        return
    if owner is None:
        return
    *parts, attr = path.split(".")
    for part in parts:
        owner = getattr(owner, part, None)
    if owner is None:
        return
    _INSTALLED_KEYS.add("table " + key)
    tables.share(owner, attr, key.replace(":", "."))


def _prepare_tqdm() -> None:
    """What tqdm would write to its (frozen) class later, done now: its write lock, and no
    monitor thread (tqdm reassigns ``cls.monitor`` whenever the thread has ended)."""
    std = sys.modules.get("tqdm.std") or _import_quietly("tqdm.std") or sys.modules["tqdm.std"]
    cls = std.tqdm
    cls.get_lock()
    monitor = vars(cls).get("monitor")
    if monitor is not None:
        monitor.exit()
        cls.monitor = None
    cls.monitor_interval = 0


def _import_quietly(name: str) -> None:
    try:
        tripwire.trusted_import(name)
    except ImportError:  # an optional dependency (jinja2) missing: nothing to wrap
        pass


def _owner(key):
    """(class or module, attribute name) of a profile key, or None while not imported."""
    module_name, colon, path = key.partition(":")
    if not colon:
        module_name, _, attr = key.rpartition(".")
        module = sys.modules.get(module_name)
        return (module, attr) if module is not None and attr in vars(module) else None
    owner = sys.modules.get(module_name)
    cls_name, _, meth = path.rpartition(".")
    cls = getattr(owner, cls_name, None) if owner is not None else None
    if not isinstance(cls, type) or meth not in vars(cls):
        return None
    return cls, meth


def _install_method(key, entry) -> None:
    found = _owner(key)
    if found is None:
        return
    _INSTALLED_KEYS.add(key)
    cls, meth = found
    package = entry["package"]
    fn = vars(cls)[meth]
    name = f"{package}.{key.partition(':')[2]}"
    if entry["kinds"]:
        fn = checked_method(fn, package, name, tuple(entry["kinds"]), entry["arg"])
    if "replaced" in entry:
        fn = entry["replaced"](fn, package, name)
    setattr(cls, meth, fn)


def _install_template(key, package, spec) -> None:
    found = _owner(key)
    if found is None:
        return
    _INSTALLED_KEYS.add("template " + key)
    owner, attr = found
    fn = vars(owner)[attr]
    name = key.replace(":", ".")
    setattr(owner, attr, boundary.checked_template(spec, fn, package, name, method=":" in key))


def _object_attr_rule(package: str, why: str):
    def rule(value, name):
        # the library's objects, and its classes themselves (type(fs).open_output_stream)
        owner = value if isinstance(value, type) else type(value)
        for cls in type.__dict__["__mro__"].__get__(owner):
            module = type.__dict__["__module__"].__get__(cls)
            if type(module) is str and module.partition(".")[0] == package:
                raise _refusal(
                    package, f"attribute {name!r} of a {type(value).__name__} object: {why}"
                )
        return None

    return rule


def _register_object_attrs() -> None:
    for profile in PROFILES.values():
        for name, why in profile.object_attrs.items():
            rules.LIBRARY_ATTRS[name] = _object_attr_rule(profile.package, why)
    guard.LIBRARY_PACKAGES.update(p.package for p in PROFILES.values() if p.freeze)


_register_object_attrs()


def note_unprofiled(ctx, name: str) -> None:
    """A granted package without a profile: say in the registry what stays unchecked."""
    top = name.partition(".")[0]
    if top in PROFILES or top in sys.stdlib_module_names:
        return
    seen = _NOTED.setdefault(id(ctx.registry), set())
    if top in seen:
        return
    seen.add(top)
    ctx.registry.note(
        "unprofiled library",
        target=top,
        kind="import",
        detail=f"{top} has no ipycap profile: its Python-level file opens and imports are "
        "checked, native (C/Rust) file and network access is not; the confined kernel "
        "(Landlock) is what stops that",
    )


_NOTED: dict[int, set] = {}

__all__ = ["view_attr", "install", "check_expression", "asking_package", "note_unprofiled"]


# A protected library object can reach a capsule that never imported the library (a user's
# DataFrame): the membrane installs the profiles when it first meets such a class.
_membrane_readonly.on_library_type = install
