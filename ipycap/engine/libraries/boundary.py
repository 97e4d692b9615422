"""Where a granted library keeps or later runs what a capsule gave it (I3), and shares state
between capsules and trusted code: the profile checks that need code, by class.

- *Registrations* (``register_scale``, ``register_extension_dtype``, ``Image.register_open``,
  ``colormaps.register`` ...): refused when capsule code calls them (:func:`refuse_registration`);
  the profiles list them (``Profile.registers``), tests/test_library_boundary.py finds them.
- *Templates* a library runs with ``str.format`` in its own frames (``StrMethodFormatter``,
  tqdm's ``bar_format``, pandas' ``Styler.format('{...}')``): checked with the capsule's own
  rule for format fields (:func:`check_template`).
- *pyplot's figure table* (``matplotlib._pylab_helpers.Gcf.figs``): seen per capsule
  (:class:`ScopedFigures`); trusted code sees every figure, as before.
- *Library worker threads* (polars runs UDFs on Rust threads, where no capsule frame is on the
  stack): a UDF a capsule hands over runs under a frame of that capsule (:func:`capsule_udfs`).
"""

from __future__ import annotations

import functools
import string
import sys
import types

from .. import guard, rules, tripwire
from ..errors import CapsulePermissionError
from . import asking_package
from .profile import PathArg


def _refusal(package, what, hint=None):
    err = CapsulePermissionError(what, f"{package} profile", None, hint=hint)
    ctx = tripwire.current_context()
    if ctx is not None:
        ctx.record_refusal(err, kind="library", target=package)
    return err


def _called_by_capsule(frame) -> bool:
    """Capsule code is the caller (not the library calling itself on the capsule's behalf)."""
    return tripwire.capsule_on_stack() and asking_package(frame) is None


def _describe(wrapper, fn, name):
    wrapper.__name__ = getattr(fn, "__name__", name.rpartition(".")[2])
    wrapper.__qualname__ = getattr(fn, "__qualname__", name)
    wrapper.__doc__ = getattr(fn, "__doc__", None)
    return wrapper


# -- 1. registrations -------------------------------------------------------------------------
def registration_message(name: str, table: str) -> str:
    return (
        f"{name}: it registers into {table}, a process-wide table trusted code uses later "
        "(with its own data)"
    )


def refuse_registration(table: str):
    """A factory for a registration *method* (``ColormapRegistry.register``): refused when
    capsule code calls it, the original otherwise."""

    def factory(fn, package, name):
        def checked(*args, **kwargs):
            if _called_by_capsule(sys._getframe(1)):
                raise _refusal(package, registration_message(name, table))
            return fn(*args, **kwargs)

        return _describe(checked, fn, name)

    return factory


def refuse_call(why: str):
    """A factory for a refused *method* (``"module:Class.method"`` in ``Profile.refused``):
    refused when capsule code calls it, the original for the library's own calls."""

    def factory(fn, package, name):
        def checked(*args, **kwargs):
            if _called_by_capsule(sys._getframe(1)):
                raise _refusal(package, f"{name}: {why}")
            return fn(*args, **kwargs)

        return _describe(checked, fn, name)

    return factory


# -- 2. templates -----------------------------------------------------------------------------
from _string import formatter_field_name_split as _split  # noqa: E402

_parse = string.Formatter().parse
_VERDICTS: dict = {}


def _risky_step(name: str) -> bool:
    """A private name, or one the gate routes through the guard in capsule code (``gi_frame``,
    ``f_globals``, ``ctypes``: red team 10 walked ``{0.gi_frame.f_globals[sys]...}``)."""
    return name[:1] == "_" or rules.is_risky(name)


def _bad_field(template: str):
    """The first field of ``template`` that traverses a private or guarded name
    (``{x.__class__}``, ``{0._data}``, ``{0.gi_frame}``), or None.  The capsule's own ``str.format`` lets a field read only what the
    guard allows; a library formats in its own frame, on trusted objects, so here a field may
    traverse public names only.  Nested fields in a format spec are checked too."""
    verdict = _VERDICTS.get(template)
    if verdict is not None or template in _VERDICTS:
        return verdict
    found = None
    try:
        todo = [template]
        while todo and found is None:
            for _literal, field, spec, _conv in _parse(todo.pop()):
                if field is None:
                    continue
                _first, rest = _split(field)
                if any(is_attr and _risky_step(str(key)) for is_attr, key in rest):
                    found = field
                    break
                if spec and "{" in spec:
                    todo.append(spec)
    except (ValueError, TypeError):
        found = None  # the library raises its own error for a template it cannot parse
    if len(_VERDICTS) < 4096:
        _VERDICTS[template] = found
    return found


def check_template(value, package: str, name: str) -> None:
    """Refuse a template (a str, or a list/tuple/dict of them) with a field that traverses
    a private or guarded name."""
    if type(value) in (list, tuple):
        for v in value:
            check_template(v, package, name)
        return
    if type(value) is dict:
        for v in value.values():
            check_template(v, package, name)
        return
    if not isinstance(value, str):
        return
    template = "".join([value])
    field = _bad_field(template)
    if field is not None:
        raise _refusal(
            package,
            f"{name} with the template {template!r}: the field {{{field}}} reads a private "
            f"or guarded attribute ({package} formats it outside the guard)",
            hint="format the value in the cell (an f-string) and pass a callable or plain text",
        )


#: Objects whose template was set while a capsule was on the stack (a StrMethodFormatter or
#: tqdm bar made in a capsule): their template is checked again whenever it is used, since
#: capsule code can reassign it (``f.fmt = ...``) and trusted code uses it later.
_MADE = guard.TypeSet()


def _template_arg(args, kwargs, arg: PathArg):
    if len(args) > arg.position:
        return args[arg.position]
    return kwargs.get(arg.keyword)


def checked_template(spec, fn, package: str, name: str, *, method: bool):
    """``fn`` with its template checked: ``spec`` is a PathArg (an argument, checked when a
    capsule is on the stack) or a str (an attribute of ``self``, checked when a capsule is on
    the stack or ``self`` was made in one)."""
    if isinstance(fn, functools.partialmethod):  # tqdm's __init__ under TQDM_* variables
        inner = checked_template(spec, fn.func, package, name, method=method)
        return functools.partialmethod(inner, *fn.args, **fn.keywords)
    static = isinstance(fn, staticmethod)
    raw = fn.__func__ if static else fn

    if isinstance(spec, str):

        def checked(self, *args, **kwargs):
            if self in _MADE or tripwire.capsule_on_stack():
                check_template(getattr(self, spec, None), package, name)
            return raw(self, *args, **kwargs)

    elif method and not static:
        constructor = name.endswith(".__init__")

        def checked(self, *args, **kwargs):
            if tripwire.capsule_on_stack():
                check_template(_template_arg(args, kwargs, spec), package, name)
                if constructor:
                    result = raw(self, *args, **kwargs)
                    _MADE.add(self)
                    return result
            return raw(self, *args, **kwargs)

    else:

        def checked(*args, **kwargs):
            if tripwire.capsule_on_stack():
                check_template(_template_arg(args, kwargs, spec), package, name)
            return raw(*args, **kwargs)

    _describe(checked, raw, name)
    return staticmethod(checked) if static else checked


# -- 3. pyplot's figure table, per capsule ----------------------------------------------------
class ScopedFigures:
    """``Gcf.figs`` (pyplot's table of open figures: number -> manager) as each caller sees
    it.  Trusted code sees every figure, in order, as before (the inline backend shows and
    closes the figures capsules made, as it always did).  Capsule code sees only the figures
    its own capsule made: ``plt.gcf()``, ``gca()``, ``get_fignums()``, ``close('all')`` never
    reach the user's figures.  A capsule's new figure gets a number no other figure has
    (:func:`capsule_figure`), so numbers never collide in the one table."""

    def __init__(self, figs):
        self._figs = figs  # the OrderedDict matplotlib made: number -> manager
        self._owners: dict = {}  # number -> the capsule context that made it

    # who asks
    def _scope(self):
        ctx = tripwire.current_context()
        if ctx is None:
            return None
        return ctx

    def _visible(self, ctx):
        owners = self._owners
        return [k for k in self._figs if owners.get(k) is ctx]

    def _mine(self, key, ctx) -> bool:
        return key in self._figs and self._owners.get(key) is ctx

    # reads
    def __contains__(self, key):
        ctx = self._scope()
        return key in self._figs if ctx is None else self._mine(key, ctx)

    def get(self, key, default=None):
        ctx = self._scope()
        if ctx is None or self._mine(key, ctx):
            return self._figs.get(key, default)
        return default

    def __getitem__(self, key):
        ctx = self._scope()
        if ctx is None or self._mine(key, ctx):
            return self._figs[key]
        raise KeyError(key)

    def keys(self):
        ctx = self._scope()
        return list(self._figs) if ctx is None else self._visible(ctx)

    __iter__ = lambda self: iter(self.keys())  # noqa: E731

    def values(self):
        ctx = self._scope()
        if ctx is None:
            return list(self._figs.values())
        return [self._figs[k] for k in self._visible(ctx)]

    def items(self):
        return list(zip(self.keys(), self.values(), strict=True))

    def __len__(self):
        return len(self.keys())

    def __bool__(self):
        return len(self) > 0

    # writes
    def __setitem__(self, key, manager):
        ctx = self._scope()
        if ctx is None:  # trusted code: any figure (making a capsule's current keeps its owner)
            if self._figs.get(key) is not manager:
                self._owners.pop(key, None)
            self._figs[key] = manager
            return
        if key in self._figs and self._owners.get(key) is not ctx:
            raise _refusal(
                "matplotlib",
                f"figure number {key!r} belongs to a figure outside this capsule",
                hint="plt.figure() without a number gives a new figure",
            )
        self._figs[key] = manager
        self._owners[key] = ctx

    def move_to_end(self, key, last=True):
        ctx = self._scope()
        if ctx is None or self._mine(key, ctx):
            self._figs.move_to_end(key, last)
        else:
            raise KeyError(key)

    def pop(self, key, *default):
        ctx = self._scope()
        if ctx is None or self._mine(key, ctx):
            if key in self._figs:
                self._owners.pop(key, None)
            return self._figs.pop(key, *default)
        if default:
            return default[0]
        raise KeyError(key)

    def __delitem__(self, key):
        self.pop(key)

    def clear(self):
        for key in self.keys():
            self.pop(key, None)

    def next_number(self) -> int:
        """A figure number no open figure has (trusted or any capsule's)."""
        return max((k for k in self._figs if type(k) is int), default=0) + 1

    def __repr__(self):
        return f"<pyplot figures ({len(self)} visible)>"


def scope_figures() -> None:
    """Install :class:`ScopedFigures` as pyplot's figure table and the capsule-aware
    ``pyplot.figure`` (once, when pyplot is imported)."""
    helpers = sys.modules.get("matplotlib._pylab_helpers")
    pyplot = sys.modules.get("matplotlib.pyplot")
    if helpers is None or pyplot is None or isinstance(helpers.Gcf.figs, ScopedFigures):
        return
    table = ScopedFigures(helpers.Gcf.figs)
    helpers.Gcf.figs = table
    original = pyplot.figure

    @functools.wraps(original)
    def figure(num=None, *args, **kwargs):
        if tripwire.capsule_on_stack() and type(num) in (type(None), str):
            # pyplot numbers a new figure after the ones the caller sees: in a capsule only
            # its own, so the number could be one of the user's.  Give it a fresh one.
            label = num
            if label is None or label not in pyplot.get_figlabels():
                fig = original(table.next_number(), *args, **kwargs)
                if label is not None:
                    fig.set_label(label)
                return fig
        return original(num, *args, **kwargs)

    pyplot.figure = figure


# -- 4. UDFs a library runs on its own threads ------------------------------------------------
_module_dict = type(sys).__dict__["__dict__"].__get__


def _capsule_builtins(frame):
    """The builtins module of the innermost capsule frame (what its globals hold)."""
    f = frame
    while f is not None:
        if guard.context_of(f.f_builtins) is not None:
            module = f.f_globals.get("__builtins__")
            if isinstance(module, types.ModuleType) and _module_dict(module) is f.f_builtins:
                return module
            return None
        f = f.f_back
    return None


def in_capsule_frame(fn, builtins_module):
    """``fn`` called under a frame of the capsule whose builtins module is
    ``builtins_module``: the tripwire then sees that capsule on any thread the library runs
    it on, with its grants (a trusted function such as ``Path.read_text`` handed over as a
    UDF included)."""
    return tripwire.trusted_udf(fn, builtins_module)


def capsule_udfs(arg: PathArg):
    """A factory: the callable at ``arg`` is wrapped by :func:`in_capsule_frame` when capsule
    code passes it (polars' ``map_elements``, ``map_batches``, ``fold`` ...)."""

    def factory(fn, package, name):
        def checked(*args, **kwargs):
            builtins_dict = _capsule_builtins(sys._getframe(1))
            if builtins_dict is not None:
                # the library may cache what it is given (polars' UDF parser cache, in a
                # module it imports lazily): its caches keep nothing of a capsule's
                from .. import caches

                caches.on_library_modules(frozenset((package,)))
                if len(args) > arg.position and callable(args[arg.position]):
                    args = list(args)
                    args[arg.position] = in_capsule_frame(args[arg.position], builtins_dict)
                elif callable(kwargs.get(arg.keyword)):
                    kwargs[arg.keyword] = in_capsule_frame(kwargs[arg.keyword], builtins_dict)
            return fn(*args, **kwargs)

        return _describe(checked, fn, name)

    return factory
