"""Scoped option blocks: a capsule run leaves granted libraries' process-wide options as it
found them (I3).

pandas' options, matplotlib's rcParams and polars' Config are process-wide: trusted code (the
user's own cells, IPython's display) reads them after the capsule.  Their setters are refused
in capsules (the profiles' ``options``); the per-block way (``with pd.option_context(...)``)
is granted, and a block can be left open: ``cm.__enter__()`` with no exit, a generator
suspended inside a ``with``, a block stored and entered in a later cell.  Two rules close it:

- **The run puts them back.**  :func:`snapshot` saves the options of every such library the
  capsule's grants cover (and that is imported), :func:`restore` puts them back when the run
  ends, whatever the capsule did (``limits.run_limited`` calls both, around every capsule run
  and the host's formatting of its value).  A library first imported during the run gets its
  defaults back.  Values are compared by identity and written raw (with the library's own
  callback): no capsule ``__eq__`` or validator runs in trusted code.
- **A block ends with the run that entered it.**  The block factories a capsule gets
  (``pd.option_context``, ``mpl.rc_context``, ``plt.style.context``, ``plt.xkcd``,
  ``plt.ioff``/``ion``, ``sklearn.config_context``, ``pl.Config``) hand out a
  :class:`ScopedBlock`.  Blocks still open when their run ends are *parked*: the library's
  own context manager is kept, never exited, so its saved values -- taken inside the run --
  are never written back later (a generator closed by the garbage collector in a trusted
  cell, sklearn's exit on whichever thread collects it).  A parked block's ``__exit__`` does
  nothing.

numpy's print options, error state and buffer size are context variables since numpy 2: the
capsule thread's context is dropped after the run (``limits.run_limited``), so they need
nothing here (tests/redteam/test_rt8_libs.py checks it).
"""

from __future__ import annotations

import ctypes
import functools
import operator
import os
import sys
import types
from collections.abc import Mapping

from .. import guard, tripwire
from ..errors import CapsulePermissionError

_MISSING = object()


# -- the options of each library -------------------------------------------------------------
# A snapshot is (the container, its keys, its values) tuples, taken and compared in C: the
# common run changes nothing and pays a few identity checks per container.
def _same(container, keys, values) -> bool:
    return (
        dict.__len__(container) == len(keys)
        and all(map(operator.is_, dict.keys(container), keys))
        and all(map(operator.is_, dict.values(container), values))
    )


def _pandas_nodes(root, prefix=""):
    yield prefix, root
    for k, v in dict.items(root):
        if type(v) is dict:
            yield from _pandas_nodes(v, f"{prefix}{k}.")


#: pandas' option dicts, found again when an option is registered: [root, count, nodes]
_PANDAS_NODES: list = [None, -1, ()]


def _pandas_save(config):
    root, count = config._global_config, len(config._registered_options)
    if _PANDAS_NODES[0] is not root or _PANDAS_NODES[1] != count:
        _PANDAS_NODES[:] = [root, count, tuple(_pandas_nodes(root))]
    return [(p, d, tuple(dict.keys(d)), tuple(dict.values(d))) for p, d in _PANDAS_NODES[2]]


def _pandas_defaults(config):
    saved = []
    for prefix, d, keys, values in _pandas_save(config):
        values = tuple(
            v
            if type(v) is dict
            else getattr(config._registered_options.get(prefix + k), "defval", v)
            for k, v in zip(keys, values, strict=True)
        )
        saved.append((prefix, d, keys, values))
    return saved


def _pandas_restore(config, saved):
    for prefix, d, keys, values in saved:
        if _same(d, keys, values):
            continue
        changed = [
            k for k, v in zip(keys, values, strict=True) if dict.get(d, k, _MISSING) is not v
        ]
        dict.clear(d)
        dict.update(d, zip(keys, values, strict=True))
        for k in changed:
            opt = config._registered_options.get(prefix + k)
            if opt is not None and opt.cb is not None:
                opt.cb(prefix + k)  # pandas' own reaction (plotting backend, converters)


def _rc_save(mpl):
    rc = mpl.rcParams
    return tuple(dict.keys(rc)), tuple(dict.values(rc))


def _rc_defaults(mpl):
    orig = dict(dict.items(mpl.rcParamsOrig))
    orig["backend"] = dict.get(mpl.rcParams, "backend")
    return tuple(orig), tuple(orig.values())


def _rc_restore(mpl, saved):
    rc = mpl.rcParams
    if not _same(rc, *saved):
        dict.clear(rc)
        dict.update(rc, zip(*saved, strict=True))


def _polars_save(config):
    env = os.environ._data  # bytes -> bytes: os.environ.get per key costs a µs each
    keys = _polars_keys(config)
    return (
        tuple(map(env.get, keys[0])),
        tuple(get() for get in config._POLARS_CFG_DIRECT_VARS.values()),
        config._snapshot_runtime_vars(),
    )


_POLARS_KEYS: list = [None, (), ()]


def _polars_keys(config):
    names = config._POLARS_CFG_ENV_VARS
    if _POLARS_KEYS[0] is not names or len(_POLARS_KEYS[1]) != len(names):
        ordered = tuple(sorted(names))
        _POLARS_KEYS[:] = [names, tuple(map(os.fsencode, ordered)), ordered]
    return _POLARS_KEYS[1:]


def _polars_defaults(config):
    return None


def _polars_restore(config, saved):
    if saved is None:
        config.Config.restore_defaults()
        config._restore_runtime_vars({})
        return
    env_values, direct, runtime = saved
    # strs of os.environ and values of polars' own getters: == is theirs
    if _polars_save(config)[:2] != (env_values, direct):
        config.Config.restore_defaults()
        for key, value in zip(_polars_keys(config)[1], env_values, strict=True):
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = os.fsdecode(value)
        for (name, _get), value in zip(config._POLARS_CFG_DIRECT_VARS.items(), direct, strict=True):
            getattr(config.Config, name)(value)
        config.plr.config_reload_env_vars()
    now = config._snapshot_runtime_vars()
    if any(now.get(k, _MISSING) is not v for k, v in runtime.items()):
        config._restore_runtime_vars(runtime)


#: package -> (the module holding its options, save, defaults, restore)
LIBRARIES = {
    "pandas": ("pandas._config.config", _pandas_save, _pandas_defaults, _pandas_restore),
    "matplotlib": ("matplotlib", _rc_save, _rc_defaults, _rc_restore),
    "polars": ("polars.config", _polars_save, _polars_defaults, _polars_restore),
}


#: Thread-local configurations (module, attribute): emptied when a capsule thread takes a
#: run, so the next run on a reused thread starts from the library's global configuration
#: (a block a capsule left open wrote the thread's own: sklearn's config_context).
THREAD_LOCALS = (("sklearn._config", "_threadlocal"),)


def fresh_thread() -> None:
    """On a capsule thread about to run (``limits._fresh_thread_state``)."""
    for module_name, attr in THREAD_LOCALS:
        local = getattr(sys.modules.get(module_name), attr, None)
        if local is not None:
            local.__dict__.clear()


# -- runs ------------------------------------------------------------------------------------
#: Per capsule run in progress (outermost first): the blocks entered in it and still open.
_OPEN: list[list] = []
#: The library context managers of blocks left open when their run ended: kept, never exited
#: (their generators are never finalized, so their saved values are never written back).
_PARKED: list = []


def _park(cm) -> None:
    _PARKED.append(cm)
    # One reference never given back: not even the interpreter's teardown frees it, so a
    # generator's ``finally`` (the block's exit) never runs.
    ctypes.pythonapi.Py_IncRef(ctypes.py_object(cm))


#: frozenset of granted top-level packages -> the specs of LIBRARIES they cover
_COVERED: dict = {}


def _covered_specs(context) -> tuple:
    """The :data:`LIBRARIES` entries ``context``'s import grants cover, with what their
    profiles load.  Revoked grants count too: snapshotting more is never wrong, and this
    runs for every cell (``covered_packages`` asks the policy about each grant)."""
    grants = getattr(context, "grants", None) or ()
    tops = frozenset(c.target.partition(".")[0] for c in grants if c.kind == "import")
    specs = _COVERED.get(tops)
    if specs is None:
        from . import PROFILES

        covered, todo = set(), list(tops)
        while todo:
            package = todo.pop()
            if package not in covered:
                covered.add(package)
                profile = PROFILES.get(package)
                todo.extend(profile.loads if profile is not None else ())
        specs = tuple(spec for package, spec in LIBRARIES.items() if package in covered)
        if len(_COVERED) < 256:
            _COVERED[tops] = specs
    return specs


def snapshot(context) -> tuple:
    """What :func:`restore` puts back after a run of ``context``: the options of every
    library of :data:`LIBRARIES` its grants cover."""
    saved = []
    for spec in _covered_specs(context):
        module = sys.modules.get(spec[0])
        saved.append((spec, spec[1](module) if module is not None else _MISSING))
    open_blocks: list = []
    _OPEN.append(open_blocks)
    return open_blocks, saved


def restore(token) -> BaseException | None:
    """End a run: park the blocks it left open, put the libraries' options back.  Returns
    the error to raise when a library's could not be (after the run's own cleanup)."""
    open_blocks, saved = token
    while _OPEN and _OPEN[-1] is not open_blocks:
        _OPEN.pop()  # a run that ended without restore (cannot happen; fails closed)
    if _OPEN:
        _OPEN.pop()
    for block in reversed(open_blocks):
        cm = object.__getattribute__(block, "__ipycap_cm__")
        if cm is not None and cm is not _PARK:
            _park(cm)
        object.__setattr__(block, "__ipycap_cm__", _PARK)
    open_blocks.clear()
    failed = None
    for (module_name, _save, defaults, put_back), state in saved:
        module = sys.modules.get(module_name)
        if module is None:
            continue
        try:
            if state is _MISSING:  # imported during the run: its defaults
                state = defaults(module)
            put_back(module, state)
        except Exception as err:  # noqa: BLE001 - the others are put back all the same
            failed = failed or err
    if failed is not None:  # the cell fails rather than leave trusted code's options changed
        error = RuntimeError(
            f"ipycap could not put back a library's options after the cell: {failed!r}"
        )
        error.__cause__ = failed
        return error
    return None


# -- the blocks a capsule gets ---------------------------------------------------------------
_KEY = object()
_PARK = object()  # a block whose run ended while it was open


class ScopedBlock:
    """A library's option block as a capsule gets it: entered and exited as the library's
    own, ended with the capsule run that entered it (see the module docstring).

    ``eager`` blocks (``plt.xkcd()``, ``plt.ioff()``) apply their options when made, as the
    library's do; the others when entered.  Its state is set in ``__new__`` and only by this
    module afterwards (``__init__`` binds nothing; attributes cannot be set).

    The library's own context manager never reaches the capsule, and no capsule object
    reaches it (the boundary issue's invariants):

    - ``with block as x`` binds the block itself, or None when the library's binds nothing:
      never the library's object (``pl.Config``'s is the class whose setters change the whole
      session, ``save_to_file`` included).  What the library's object offers in the block
      (``cfg.set_tbl_rows(5)``) is the profile's ``members(block, name)``: attribute lookups
      the block itself does not answer go there, or fail.
    - ``__exit__`` exits the library's block as a normal exit, whatever the capsule passes:
      the exception type, value and traceback a capsule chooses (``cm.__exit__(Bad, None,
      None)`` makes contextlib call ``Bad()``) never reach the library's code.  None of the
      granted blocks suppresses an exception, so the ``with`` statement re-raises the cell's
      own exception as it would.
    """

    __slots__ = ("__ipycap_make__", "__ipycap_cm__")

    def __new__(cls, key, make, args, kwargs, eager=False, members=None):
        if key is not _KEY:
            raise TypeError("ScopedBlock objects are made by a library's block factory")
        self = object.__new__(cls)
        object.__setattr__(self, "__ipycap_make__", (make, args, kwargs, eager, members))
        object.__setattr__(self, "__ipycap_cm__", None)
        if eager:
            object.__setattr__(self, "__ipycap_cm__", make(*args, **kwargs))
            _track(self)
        return self

    def __setattr__(self, name, value):
        raise AttributeError(f"{type(self).__name__} objects are read-only")

    __delattr__ = __setattr__

    def __getattr__(self, name):
        members = object.__getattribute__(self, "__ipycap_make__")[4]
        if members is None or type(name) is not str or name.startswith("__"):
            raise AttributeError(f"a scoped option block has no attribute {str.__str__(name)!r}")
        return members(self, name)

    def __enter__(self):
        make, args, kwargs, eager, _ = object.__getattribute__(self, "__ipycap_make__")
        cm = object.__getattribute__(self, "__ipycap_cm__")
        if cm is _PARK:
            raise RuntimeError("this block was left open by a cell that ended: make a new one")
        if cm is None or not eager:
            if cm is not None:
                raise RuntimeError("this block is already entered")
            cm = make(*args, **kwargs)
            object.__setattr__(self, "__ipycap_cm__", cm)
        try:
            result = type(cm).__enter__(cm)
        except BaseException:
            object.__setattr__(self, "__ipycap_cm__", None)
            raise
        if not eager:
            _track(self)
        return None if result is None else self

    def __exit__(self, tp, value, tb):
        cm = object.__getattribute__(self, "__ipycap_cm__")
        if cm is None or cm is _PARK:
            return False  # parked: its run already put the options back
        object.__setattr__(self, "__ipycap_cm__", None)
        for run in reversed(_OPEN):
            if self in run:
                run.remove(self)
                break
        type(cm).__exit__(cm, None, None, None)
        return False

    def entered(self) -> bool:
        """Whether the block is open now (its options apply)."""
        cm = object.__getattribute__(self, "__ipycap_cm__")
        return cm is not None and cm is not _PARK

    def __call__(self, func):
        """As a decorator (``@pd.option_context(...)``): each call in a new block."""
        make, args, kwargs, _, members = object.__getattribute__(self, "__ipycap_make__")

        def in_block(*a, **k):
            with ScopedBlock(_KEY, make, args, kwargs, members=members):
                return func(*a, **k)

        if type(func) is types.FunctionType:  # a function's own fields: no capsule code runs
            for field in ("__name__", "__qualname__", "__doc__"):
                setattr(in_block, field, _FUNCTION_FIELDS[field].__get__(func))
        in_block.__wrapped__ = func
        return in_block

    def __repr__(self):
        make = object.__getattribute__(self, "__ipycap_make__")[0]
        return f"<scoped block {getattr(make, '__qualname__', 'block')} (ends with the cell)>"


_FUNCTION_FIELDS = {
    f: types.FunctionType.__dict__[f] for f in ("__name__", "__qualname__", "__doc__")
}


def _track(block) -> None:
    if _OPEN:
        _OPEN[-1].append(block)


guard.share_class(ScopedBlock)


def block(fn, package: str, name: str, *, eager: bool = False):
    """A profile's ``replaced`` factory: ``fn`` (a library's block factory) handing out
    :class:`ScopedBlock` objects."""

    @functools.wraps(fn)
    def make_block(*args, **kwargs):
        return ScopedBlock(_KEY, fn, args, kwargs, eager)

    return make_block


def eager_block(fn, package: str, name: str):
    """As :func:`block`, for factories that apply their options when called."""
    return block(fn, package, name, eager=True)


def polars_block(cls, members, **kwargs):
    """``pl.Config(**options)`` in a capsule: its options apply when the block is entered;
    ``members(block, name)`` answers ``cfg.set_tbl_rows`` and the like."""
    return ScopedBlock(_KEY, cls, (), {**kwargs, "apply_on_context_enter": True}, False, members)


#: rcParams whose values name code or programs matplotlib later imports, walks or runs:
#: ``figure.hooks`` ("module:attr.path", imported and called for every new figure -- a
#: capsule's ``gc:callbacks.append`` left its object in gc.callbacks, red team 10), the
#: backend ("module://..."), animation writers and the external programs they start, and
#: TeX (``text.usetex`` runs latex on the figure's text).
CODE_NAMING_RC = frozenset(
    """figure.hooks backend backend_fallback animation.writer animation.ffmpeg_path
    animation.convert_path animation.ffmpeg_args animation.convert_args text.usetex
    text.latex.preamble pgf.preamble pgf.texsystem path.effects""".split()
)


def _rc_refusal(what: str, package: str) -> CapsulePermissionError:
    err = CapsulePermissionError(what, f"{package} profile", None)
    ctx = tripwire.current_context()
    if ctx is not None:
        ctx.record_refusal(err, kind="library", target=package)
    return err


_PLAIN_SCALARS = (str, bool, int, float, type(None))


def _same_plain(value, current) -> bool:
    """``value == current`` for plain data of one exact type (no capsule ``__eq__``)."""
    tp = type(value)
    if tp in (list, tuple) and type(current) in (list, tuple):
        return len(value) == len(current) and all(map(_same_plain, value, current))
    return tp is type(current) and tp in _PLAIN_SCALARS and value == current


def _exact_key(key):
    return "".join([key]) if isinstance(key, str) else key  # a str subclass's own data


def _checked_rc(entries: dict, package: str, name: str) -> dict:
    """``entries`` (a plain dict the caller made) with every option that names code refused
    unless it keeps the session's value or matplotlib's default (``text.usetex: False``,
    the ``'default'`` style): only a changed value runs something new."""
    mpl = sys.modules["matplotlib"]
    for key, value in entries.items():
        if type(key) is str and key in CODE_NAMING_RC:
            kept = (
                dict.get(mpl.rcParams, key, _MISSING),
                dict.get(mpl.rcParamsDefault, key, _MISSING),
            )
            if not any(_same_plain(value, v) for v in kept):
                raise _rc_refusal(
                    f"{name} with {key!r}: the option names code or a program to run", package
                )
    return entries


def _rc_from_file(path, package, name) -> dict:
    # a style file: read once, as the capsule (the tripwire checks the open), and passed on as
    # the options read, so the file checked is the file applied
    rc = sys.modules["matplotlib"].rc_params_from_file(path, use_default_template=False)
    return _checked_rc(dict(dict.items(rc)), package, name)


def _rc_options(value, package, name, *, styles: bool):
    """What an ``rc_context``/``style.context`` argument sets, as plain data checked here and
    passed on in its place: a mapping copied once (a capsule mapping answers once), a style
    file read once, a library style by its exact name.  Anything else matplotlib would read
    with its own protocol (``keys()`` of any object) is refused."""
    if value is None or type(value) is bool:
        return value
    if isinstance(value, Mapping):
        items = dict.items(value) if isinstance(value, dict) else list(value.items())
        return _checked_rc({_exact_key(k): v for k, v in items}, package, name)
    if isinstance(value, os.PathLike):
        return _rc_from_file(value, package, name)
    if isinstance(value, str):
        value = _exact_key(value)
        if "/" in value or value.endswith(".mplstyle"):
            return _rc_from_file(value, package, name)
        if styles and (value == "default" or value in sys.modules["matplotlib.style"].library):
            return value  # matplotlib's own styles (read-only tables for a capsule)
        if styles and "." in value:
            raise _rc_refusal(
                f"{name}({value!r}): a style named by package imports that package", package
            )
        return value  # matplotlib refuses the unknown name itself
    if styles and type(value) in (list, tuple):
        if any(type(v) in (list, tuple) for v in value):
            raise _rc_refusal(f"{name} with a list inside a list of styles", package)
        return [_rc_options(v, package, name, styles=True) for v in value]
    raise _rc_refusal(
        f"{name} with a {type(value).__name__}: options come as a dict, a style name or a "
        "style file",
        package,
    )


def _rc_context_options(args, kwargs, package, name):
    """``rc_context(rc=None, fname=None)`` as one checked dict: the file's options, then
    ``rc``'s over them (matplotlib's order)."""
    if len(args) > 2 or set(kwargs) - {"rc", "fname"}:
        raise TypeError(f"{name}() takes rc= and fname= only")
    given = dict(zip(("rc", "fname")[: len(args)], args, strict=True))
    if set(given) & set(kwargs):
        raise TypeError(f"{name}() got rc or fname twice")
    given.update(kwargs)
    merged = {}
    fname, rc = given.get("fname"), given.get("rc")
    if fname is not None:
        if not isinstance(fname, (str, os.PathLike)):
            raise _rc_refusal(f"{name} with fname a {type(fname).__name__}", package)
        merged.update(_rc_from_file(_exact_key(fname), package, name))
    if rc is not None:
        if not isinstance(rc, Mapping):
            raise _rc_refusal(f"{name} with rc a {type(rc).__name__}: rc is a dict", package)
        merged.update(_rc_options(rc, package, name, styles=False))
    return merged


def rc_block(fn, package, name, values=lambda options: options):
    """``rc_context``/``style.context`` as a scoped block (blocks.py), whose options may not
    name code (:data:`CODE_NAMING_RC`), from a dict, a style file or a list of styles.
    ``values`` gives the checked options as trusted code keeps them (the profiles pass
    ``wrappers.option_values``)."""
    made = block(fn, package, name)
    if name.rpartition(".")[2] == "rc_context":

        @functools.wraps(fn)
        def checked(*args, **kwargs):
            return made(rc=values(_rc_context_options(args, kwargs, package, name)))

    else:

        @functools.wraps(fn)
        def checked(*args, **kwargs):
            args = [_rc_options(v, package, name, styles=True) for v in args]
            kwargs = {k: _rc_options(v, package, name, styles=True) for k, v in kwargs.items()}
            return made(*values(args), **values(kwargs))

    return checked


#: The factories profiles name in ``replaced`` (``wrappers`` reads them).
FACTORIES = {"scoped_block": block, "eager_block": eager_block, "rc_block": rc_block}
