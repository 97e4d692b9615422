"""The guard: the one decision "may this capsule get attribute NAME of VALUE?".

Used by the gate's rewritten accesses and by the guarded ``getattr``, ``setattr``,
``delattr``, ``hasattr``, ``vars``, ``dir``, ``str.format``/``format_map`` and the
``operator.attrgetter``/``methodcaller`` of capsule module views.  The rules are the tables
of :mod:`ipycap.rules`.
"""

from __future__ import annotations

import string
import sys
import threading
import types
import weakref
from collections import UserString

from . import intlimits, rules
from .errors import CapsuleAttributeError, CapsuleTypeError
from .values import is_plain as is_plain_value

#: Name under which the kernel's inspector hides engine entries (kept for its listings).
CAPSULE_MARK = "_ipycap_context"

#: address of a builtins dict -> (that dict, its capsule context, the context's import cache,
#: for the C fast path of its __import__: ipycap.engine.fastpaths): a frame runs capsule code
#: when its builtins dict is one of these, by identity.  The mark lives here, in trusted
#: hands, not in the dict capsule frames use (which a capsule could otherwise unmark).
_CAPSULE_BUILTINS: dict = {}


#: address of a code object the gate compiled -> a weak reference to it.  A frame whose code
#: is one of these runs capsule code whatever its builtins: CPython takes a function's
#: builtins from ``globals['__builtins__']`` when the function is made, and code holding its
#: own globals dict can put a dict there that no table knows (red team 5, finding 5).  Such a
#: frame is refused everything the tripwire judges, never taken for trusted code.
_CAPSULE_CODE: dict = {}


def _record_code(table: dict, code) -> None:
    """Record ``code`` and every code object nested in it in ``table`` (address -> weak
    reference; an entry goes when its code dies, never one a newer code took over)."""
    stack = [code]
    while stack:
        c = stack.pop()
        key = _address(c)
        entry = table.get(key)
        if entry is not None and entry() is c:
            continue
        table[key] = weakref.ref(c, lambda ref, key=key: _forget_code(table, key, ref))
        stack.extend(k for k in c.co_consts if type(k) is types.CodeType)


def _forget_code(table: dict, key, ref) -> None:
    if table.get(key) is ref:
        del table[key]


def register_code(code) -> None:
    """Record ``code`` and every code object nested in it as capsule code (while alive)."""
    _record_code(_CAPSULE_CODE, code)


def is_capsule_code(code) -> bool:
    """Whether ``code`` was compiled by the gate (see :data:`_CAPSULE_CODE`)."""
    entry = _CAPSULE_CODE.get(_address(code))
    return entry is not None and entry() is code


try:  # frame.f_code raises an audit event; the C check reads the frame's code without one
    from ._arrayguard import frame_runs_capsule_code as _frame_runs_capsule_code
except ImportError:  # pragma: no cover - exercised when the extension is not built
    _frame_runs_capsule_code = None


def frame_is_capsule_code(frame) -> bool:
    """Whether ``frame`` runs gate-compiled code (whatever builtins it runs with)."""
    if _frame_runs_capsule_code is not None:
        return _frame_runs_capsule_code(frame, _CAPSULE_CODE)
    return is_capsule_code(frame.f_code)


def register_builtins(builtins_dict: dict, context) -> None:
    """Record that frames using ``builtins_dict`` run code of ``context``'s capsule.

    Held strongly, for the life of the process: capsule code can run after its capsule is
    gone (a ``__del__``, an exported function), and its frames must still be recognised
    (by the tripwire above all).  A few kilobytes per capsule."""
    cache = getattr(context, "import_cache", None)
    _CAPSULE_BUILTINS[_address(builtins_dict)] = (builtins_dict, context, cache)


#: Frames of these top-level modules run on behalf of whoever called them.
TRANSPARENT_TOPS = frozenset(sys.stdlib_module_names) | {
    "ipycap",
    "_frozen_importlib",
    "_frozen_importlib_external",
}


def asked_by_capsule(frame) -> bool:
    """Whether the nearest frame from ``frame`` outward that is trusted code of its own
    (neither the standard library, the import system nor ipycap) is capsule code.

    A frame counts as such a trusted asker only when its globals are, by identity, the
    namespace of a loaded module (not the capsule stand-in ``__capsule__``): ``__name__`` is
    the capsule's to set, and code a library generated for a capsule (a dataclass
    ``__init__`` in fresh globals) calls what the capsule chose (red team 6, finding B).
    Frames of any other globals are walked past, so a capsule frame further out still
    decides; code a library generated on a capsule's behalf counts as the capsule's."""
    f = frame
    while f is not None:
        if context_of(f.f_builtins) is not None or frame_is_capsule_code(f):
            return True
        if _frame_is_generated(f):
            return True
        g = f.f_globals
        name = g.get("__name__")
        if type(name) is str and name != "__capsule__":
            module = sys.modules.get(name)
            if module is not None and getattr(module, "__dict__", None) is g:
                if name.partition(".")[0] not in TRANSPARENT_TOPS:
                    return False  # a loaded module's own code: trusted, asking for itself
        f = f.f_back
    return False


#: address of a code object a standard-library code generator compiled for a capsule (the
#: functions ``dataclasses._create_fn`` makes while a capsule asks) -> a weak reference to
#: it.  Such code runs with the real builtins, so it is not :data:`_CAPSULE_CODE` (which the
#: tripwire refuses everything); but it acts for the capsule: :func:`asked_by_capsule` says
#: so, whoever is nearer.
_GENERATED_CODE: dict = {}


def register_generated(code) -> None:
    """Record ``code`` (and code nested in it) as generated on a capsule's behalf."""
    _record_code(_GENERATED_CODE, code)


def _frame_is_generated(frame) -> bool:
    if not _GENERATED_CODE:
        return False
    if _frame_runs_capsule_code is not None:
        return _frame_runs_capsule_code(frame, _GENERATED_CODE)
    entry = _GENERATED_CODE.get(_address(frame.f_code))
    return entry is not None and entry() is frame.f_code


def context_of(builtins_dict):
    """The capsule context whose frames use ``builtins_dict``, or None (no code runs)."""
    entry = _CAPSULE_BUILTINS.get(_address(builtins_dict))
    if entry is None or entry[0] is not builtins_dict:
        return None
    return entry[1]


#: An object's address-derived hash, whatever its class says (no audit event, unlike id()).
_address = object.__hash__


#: Changes whenever a TypeSet or TypeTable changes (the C fast paths cache membership per
#: class while it is unchanged: ipycap.engine.fastpaths).
TABLES_VERSION = [0]


def _pop_entry(_, key, refs) -> None:
    refs.pop(key, None)
    TABLES_VERSION[0] += 1


class TypeSet:
    """A set of classes by identity, weakly held: membership never hashes or compares the
    class asked about, so a capsule metaclass's ``__hash__``/``__eq__`` cannot vote (a
    WeakSet would ask it, and a class equal to everything was in every table)."""

    __slots__ = ("_refs",)

    def __init__(self):
        self._refs: dict = {}

    def add(self, cls) -> None:
        key = _address(cls)
        self._refs[key] = weakref.ref(cls, lambda r, k=key, d=self._refs: _pop_entry(r, k, d))
        TABLES_VERSION[0] += 1

    def __contains__(self, cls) -> bool:
        ref = self._refs.get(_address(cls))
        return ref is not None and ref() is cls

    def __iter__(self):
        return iter([c for c in (r() for r in list(self._refs.values())) if c is not None])

    def __len__(self) -> int:
        return len(self._refs)


class TypeTable:
    """A mapping from classes to rules, by identity (see :class:`TypeSet`)."""

    __slots__ = ("_entries",)

    def __init__(self):
        self._entries: dict = {}

    def __setitem__(self, cls, rule) -> None:
        self._entries[_address(cls)] = (cls, rule)
        TABLES_VERSION[0] += 1

    def get(self, cls, default=None):
        entry = self._entries.get(_address(cls))
        return entry[1] if entry is not None and entry[0] is cls else default

    def __getitem__(self, cls):
        entry = self._entries.get(_address(cls))
        if entry is None or entry[0] is not cls:
            raise KeyError(cls)
        return entry[1]

    def __contains__(self, cls) -> bool:
        entry = self._entries.get(_address(cls))
        return entry is not None and entry[0] is cls

    def __iter__(self):
        return iter([cls for cls, _ in list(self._entries.values())])


#: Set by hooks.py: called after a guarded write of a risky name (an ABC hook assigned to a
#: class after it was made is guarded like one in its class statement).
after_class_write = None
before_freeze = None

#: Classes created by a ``class`` statement in a capsule (recorded by its __build_class__).
OWN_TYPES = TypeSet()

#: Types that make their own decision (the membrane's proxies, module views): type -> rule.
PROXY_TYPES = TypeTable()

_FunctionType = types.FunctionType
_MethodType = types.MethodType
_PRIMITIVES = (int, float, complex, str, bytes, bool, type(None))


_CLASS_NAMES = frozenset(
    {
        "__class__",
        "__base__",
        "__bases__",
        "__mro__",
        "__objclass__",
        "__self_class__",
        "__thisclass__",
        "__orig_bases__",
    }
)
_STDLIB = frozenset(sys.stdlib_module_names)
_HEAPTYPE = 1 << 9
try:
    from ._speedups import freeze_type as _freeze_type
except ImportError:  # pragma: no cover - without the extension stdlib classes stay mutable
    _freeze_type = None


def share_class(value):
    """Before a capsule gets a standard-library class (or a tuple of them), make it and its
    bases immutable: plain attribute stores on classes raise no audit event on 3.11, so
    without this a capsule could monkeypatch e.g. json.JSONDecoder.decode and receive the
    data trusted code decodes later.  Returns ``value``."""
    if _freeze_type is None:
        return value
    classes = value if type(value) is tuple else (value,)
    for cls in classes:
        if not isinstance(cls, type):
            continue
        for base in type.__dict__["__mro__"].__get__(cls):
            if (
                type.__dict__["__flags__"].__get__(base) & _HEAPTYPE
                and base not in OWN_TYPES
                and (_is_stdlib_class(base) or _is_ipycap_class(base) or _is_library_class(base))
            ):
                d = type.__dict__
                where = (d["__module__"].__get__(base), d["__qualname__"].__get__(base))
                if where in rules.FREEZE_EXEMPT:
                    raise CapsuleTypeError(
                        f"{where[0]}.{where[1]} is not available in a capsule: its own code "
                        "changes the class while it runs, so it cannot be shared frozen",
                        "guard",
                        None,
                    )
                if before_freeze is not None:
                    before_freeze(base)  # guard capsule hooks while the class can change
                _freeze_type(base)
    return value


def _is_ipycap_class(cls) -> bool:
    """ipycap's own classes a capsule meets (string.Formatter's stand-in, the sys streams,
    type, compile handles) are shared by every capsule: freezing them keeps one capsule from
    swapping a guarded method for the raw one it stands in for."""
    module = type.__dict__["__module__"].__get__(cls)
    return type(module) is str and module.partition(".")[0] == "ipycap"


#: Top-level packages with a library profile (ipycap.engine.libraries): their classes are
#: shared with trusted code too, so they are frozen like the standard library's.
LIBRARY_PACKAGES: set = set()


def _is_library_class(cls) -> bool:
    module = type.__dict__["__module__"].__get__(cls)
    return type(module) is str and module.partition(".")[0] in LIBRARY_PACKAGES


_UNBOUND_C = (
    types.MethodDescriptorType,
    types.WrapperDescriptorType,
    types.ClassMethodDescriptorType,
    types.GetSetDescriptorType,
    types.MemberDescriptorType,
)


def trusted_c_entry(entry) -> bool:
    """Whether ``entry`` (a class-dict entry trusted code's slots call) is C code acting on
    nothing of a capsule's: an unbound descriptor, a module's C function, or a C method bound
    to plain data or a class no capsule made.  A C method bound to a capsule object
    (``__eq__ = sink.append``) takes trusted code's operand into that object (red team 10)."""
    tp = type(entry)
    if tp in _UNBOUND_C:
        return True
    if tp is types.BuiltinFunctionType or tp is types.MethodWrapperType:
        owner = entry.__self__
        if owner is None or type(owner) is types.ModuleType:
            return True
        if isinstance(owner, type):
            return not is_own(owner)
        return is_plain_value(owner)
    return False


def _is_stdlib_class(cls) -> bool:
    module = type.__dict__["__module__"].__get__(cls)
    return type(module) is str and module.partition(".")[0] in _STDLIB


def exact_name(name) -> str:
    """Normalise an attribute name to an exact ``str`` (a subclass could lie in __eq__)."""
    if type(name) is str:
        return name
    if isinstance(name, str):
        return "".join([name])
    raise TypeError(f"attribute name must be string, not '{type(name).__name__}'")


def is_own(value) -> bool:
    """Whether ``value`` is something the capsule created itself (DESIGN.md: own objects)."""
    tp = type(value)
    if tp is _FunctionType:
        return context_of(value.__builtins__) is not None
    if tp is _MethodType:
        return is_own(value.__func__) and is_own(value.__self__)
    try:
        if tp in OWN_TYPES:
            return True
        if issubclass(tp, type):  # not isinstance: it would read a capsule __class__
            return value in OWN_TYPES or _being_built(value)
        return False
    except TypeError:
        return False


#: Classes a capsule's ``class`` statement is creating right now, innermost last, as
#: (qualname, module): inside its own ``__init_subclass__`` and ``__set_name__`` a class is
#: the capsule's before ``__build_class__`` returns it and it joins OWN_TYPES.
_BUILDING = threading.local()


def _being_built(cls) -> bool:
    stack = getattr(_BUILDING, "stack", None)
    if not stack:
        return False
    qualname = type.__dict__["__qualname__"].__get__(cls)
    module = type.__dict__["__module__"].__get__(cls)
    # Exact strings only, and only classes of the capsule's own module: a capsule that
    # renamed its __name__ could otherwise make a trusted class look like the one it builds.
    if type(qualname) is not str or type(module) is not str or module != "__capsule__":
        return False
    return any(type(q) is str and q == qualname for q, _ in stack)


def building(qualname: str, module: str):
    """Context manager: a capsule class statement for ``qualname`` in ``module`` is running."""
    return _Building((qualname, module))


class _Building:
    __slots__ = ("entry",)

    def __init__(self, entry):
        self.entry = entry

    def __enter__(self):
        stack = getattr(_BUILDING, "stack", None)
        if stack is None:
            stack = _BUILDING.stack = []
        stack.append(self.entry)

    def __exit__(self, *exc):
        _BUILDING.stack.pop()
        return False


def is_own_static(value) -> bool:
    """``is_own`` decided by identity only, for code that must run nothing a capsule wrote
    (the kernel's inspector): ``is_own`` looks the class up in a WeakSet, which hashes it,
    and a capsule metaclass's ``__hash__`` is capsule code."""
    tp = type(value)
    if tp is _FunctionType:
        return context_of(value.__builtins__) is not None
    if tp is _MethodType:
        return is_own_static(value.__func__) and is_own_static(value.__self__)
    return tp in OWN_TYPES or value in OWN_TYPES  # by identity (TypeSet)


def may_read_statically(value, name: str) -> bool:
    """Whether a static lookup (inspection, completion) may follow ``value.name``: the rule
    capsule code meets, without running anything.  ``value`` is the object behind a proxy
    or view; underscore names are the capsule's only on what it created (the membrane and
    module views hide them on everything else)."""
    return name[:1] != "_" or is_own_static(value)


def _is_plain_data(value) -> bool:
    tp = type(value)
    if tp in _PRIMITIVES:
        return True
    if tp in (tuple, frozenset, list):
        return all(_is_plain_data(v) for v in value)
    return False


_type_mro = type.__dict__["__mro__"].__get__
_type_dict = type.__dict__["__dict__"].__get__


def _table_attr(value, name):
    """``value.NAME`` for a name of rules.CLASS_TABLES: the table itself when it is the
    capsule's (its own instance's, or in an own class's dict), else a read-only copy."""
    table = getattr(value, name)
    if not isinstance(table, (dict, list, set, bytearray)):
        return table
    own_value = is_own(value)
    if own_value and not isinstance(value, type):
        try:
            inst = object.__getattribute__(value, "__dict__")
        except AttributeError:
            inst = None
        if type(inst) is dict and dict.get(inst, name) is table:
            return table
    for cls in _type_mro(value if isinstance(value, type) else type(value)):
        d = _type_dict(cls)
        if name in d:
            if d[name] is table and is_own(cls):
                return table
            break
    if isinstance(table, dict):
        return types.MappingProxyType(dict(table))
    return tuple(table) if not isinstance(table, bytearray) else bytes(table)


def refuse(value, name: str, why: str, how: str | None = None, mode: str = "proxy", hint=None):
    kind = type(value).__name__
    if how is None and mode == "rexec":
        how = "run the cell with --mode proxy to introspect objects the capsule created"
    raise CapsuleAttributeError(
        f"attribute {name!r} of a {kind} object: {why}", "guard", how, hint=hint
    )


def decide(value, name: str, mode: str = "proxy"):
    """Return the attribute or raise ``CapsuleAttributeError``.  ``name`` is an exact str.

    A loaded module is never the answer (I2): it is the capsule's view of it, or refused
    (``arr.ctypes._ctypes`` was the raw ctypes module, and ``._os`` the raw os, red team 10)."""
    result = _decide(value, name, mode)
    if type(result) is types.ModuleType:
        loaded = sys.modules.get(getattr(result, "__name__", None))
        if loaded is result:
            view = MODULE_VIEW[0]
            if view is None:  # pragma: no cover - the modules layer sets it when it loads
                refuse(value, name, "a loaded module is shown to a capsule only as its view")
            return view(result, f"{type(value).__name__}.{name}")
    return result


#: The modules layer's ``_context_view(module, name)``, set when that layer loads (it imports
#: this module and the membrane, so neither can import it).  Unset, a module is refused.
MODULE_VIEW: list = [None]


def _decide(value, name: str, mode: str = "proxy"):
    if mode == "rexec" and name[:1] == "_" and name not in rules.REXEC_ALLOWED:
        refuse(value, name, "rexec mode denies underscore introspection on every object", mode=mode)
    special = PROXY_TYPES.get(type(value))
    if special is not None:
        return special(value, name)
    library = rules.LIBRARY_ATTRS.get(name)
    if library is not None:
        library(value, name)  # raises for a profiled library's object (arr.ctypes)
    if name in rules.FORMAT_ATTRS:
        return _format_attr(value, name, mode)
    if name in rules.EXCEPTION_ATTRS:
        return _exception_attr(value, name)
    if name in rules.CLASS_TABLES:
        return _table_attr(value, name)
    rule = rules.classify(name)
    if rule == "never" and name in rules.ABC_STATE:
        refuse(
            value,
            name,
            "an ABC's registry state is never available in a capsule (a trusted ABC's is "
            "shared by every isinstance() in the process)",
            hint="register classes with cls.register() on an ABC the capsule defines",
        )
    if rule == "never":
        refuse(
            value,
            name,
            "frames, code, globals, generic accessors and pickling hooks are "
            "never available in a capsule, not even on its own objects",
        )
    if rule == "allow":
        result = getattr(value, name)
        if name in _CLASS_NAMES or isinstance(result, type):
            share_class(result)  # e.g. typing.Mapping.__origin__ is collections.abc.Mapping
        return result
    if rule == "own":
        if is_own(value):
            return getattr(value, name)
        # On outside objects only what is the capsule's own anyway, e.g.
        # functools.lru_cache(f).__wrapped__ of a capsule function f.
        result = getattr(value, name, None)
        if result is not None and is_own(result):
            return result
        refuse(
            value,
            name,
            "only objects the capsule created itself may be introspected this way",
        )
    if rule == "special":
        return _special(value, name)
    if rules.is_dunder(name) or name[:1] == "_":
        # Not in the table: allowed on own objects, elsewhere only if it is plain data.
        result = getattr(value, name)
        if is_own(value) or _is_plain_data(result):
            return result
        refuse(value, name, "an unclassified dunder that is not plain data")
    return getattr(value, name)


def _exception_attr(value, name):
    """``exc.obj``: the object a failed lookup was made on.  When the failure happened in
    trusted code that may be an object the capsule was never given, so on exceptions it is
    only handed out when it is the capsule's own, plain data, a proxy or a view."""
    result = getattr(value, name)
    if not isinstance(value, BaseException) or is_own(value):
        return result
    if result is None or is_own(result) or _is_plain_data(result):
        return result
    if type(result) in PROXY_TYPES:
        return result
    refuse(
        value,
        name,
        "the object a failed lookup was made on may come from trusted code",
        hint="the exception's message names the attribute",
    )


def _special(value, name):
    if name == "__class__":
        return share_class(getattr(value, name))
    result = getattr(value, name)
    if is_own(result) or _is_plain_data(result) or type(result) in PROXY_TYPES:
        return result
    if name == "__self__" and isinstance(result, type(value)):
        return result
    refuse(
        value,
        name,
        f"{name} of this object leads outside the capsule (e.g. print.__self__ "
        "is the builtins module)",
    )


# -- the str.format oracle ------------------------------------------------------------------
class GuardedFormatter:
    """A ``string.Formatter`` whose field traversal obeys the guard's table.

    It borrows ``string.Formatter``'s methods rather than subclassing it: through ``__mro__``
    (or ``mro()``) a capsule would reach the real class, whose ``vformat`` traverses fields
    with the raw getattr: ``Formatter.__mro__[1]().vformat('{0.__globals__}', ...)``."""

    format = string.Formatter.format
    vformat = string.Formatter.vformat
    _vformat = string.Formatter._vformat
    parse = string.Formatter.parse
    get_value = string.Formatter.get_value
    check_unused_args = string.Formatter.check_unused_args
    format_field = string.Formatter.format_field
    convert_field = string.Formatter.convert_field

    def __init__(self, mode: str = "proxy"):
        self.mode = mode

    def get_field(self, field_name, args, kwargs):
        first, rest = _formatter_field_name_split(field_name)
        obj = self.get_value(first, args, kwargs)
        mode = self.mode
        if self is not _FORMATTERS["proxy"] and self is not _FORMATTERS["rexec"]:
            # A capsule's own ``string.Formatter()``: its mode is state the capsule set
            # (``Formatter()`` defaults to proxy, ``f.mode = 'proxy'``), so the rule is the
            # asking capsule's, with the instance's mode only as a floor.
            mode = _asking_mode(mode)
        risky = rules.is_risky_rexec if mode == "rexec" else rules.is_risky
        for is_attr, key in rest:
            if is_attr:
                key = exact_name(key)
                obj = decide(obj, key, mode) if risky(key) else getattr(obj, key)
            else:
                obj = obj[key]
        return obj, first


def _asking_mode(floor) -> str:
    """``"rexec"`` when ``floor`` is, or when any capsule frame on the stack runs in rexec
    mode; else ``"proxy"``."""
    if type(floor) is str and floor == "rexec":
        return "rexec"
    f = sys._getframe(1)
    while f is not None:
        ctx = context_of(f.f_builtins)
        if ctx is not None and ctx.mode == "rexec":
            return "rexec"
        f = f.f_back
    return "proxy"


#: Set by ipycap/engine/arrayguard.py (which builds on this module): its check before
#: capsule code sets or deletes a risky name.
ARRAY_SETATTR_CHECK = None


def _array_setattr(obj, name, on_refuse) -> None:
    """The array-protocol names are never set by capsule code (ipycap/engine/arrayguard.py)."""
    check = ARRAY_SETATTR_CHECK
    if check is None:  # arrayguard is imported with the capsule builtins (hooks.py)
        return
    try:
        check(obj, name)
    except CapsuleAttributeError as err:
        if on_refuse is not None:
            on_refuse(err)
        raise


from _string import formatter_field_name_split as _formatter_field_name_split  # noqa: E402
from _string import formatter_parser as _formatter_parser  # noqa: E402

_FORMATTERS = {"proxy": GuardedFormatter("proxy"), "rexec": GuardedFormatter("rexec")}


#: template -> the attribute names its fields traverse (nested fields of format specs
#: included), for templates seen before; read by the C fast path too (fastpaths).
TEMPLATE_ATTRS: dict = {}
_TEMPLATES_MAX = 4096


def template_attrs(template: str):
    """The attribute names the fields of ``template`` (an exact str) traverse, as the
    formatter parses them, or None when it does not parse (the formatter raises then)."""
    names = TEMPLATE_ATTRS.get(template)
    if names is not None:
        return names
    found: list = []

    def walk(text, depth):
        if depth < 0:
            raise ValueError("Max string recursion exceeded")
        for _, field, spec, _ in _formatter_parser(text):
            if field is not None:
                for is_attr, key in _formatter_field_name_split(field)[1]:
                    if is_attr:
                        found.append(exact_name(key))
            if spec:
                walk(spec, depth - 1)

    try:
        walk(template, 2)
    except (ValueError, TypeError):
        return None
    names = tuple(found)
    if len(TEMPLATE_ATTRS) < _TEMPLATES_MAX:
        TEMPLATE_ATTRS[template] = names
    return names


def _traverses_only_plain_names(template: str, mode: str) -> bool:
    """Whether ``str.format`` itself may format ``template``: every attribute its fields
    traverse is one the guard leaves to plain ``getattr`` (as GuardedFormatter.get_field
    does), and indexing is ``obj[key]`` in both."""
    if "." not in template and "[" not in template:
        return True  # no field can traverse anything
    names = template_attrs(template)
    risky = rules.is_risky_rexec if mode == "rexec" else rules.is_risky
    return names is not None and not any(risky(n) for n in names)


def guarded_format(template: str, /, *args, _ipycap_mode="proxy", **kwargs) -> str:
    """``str.format`` whose fields cannot reach what the guard refuses."""
    template = exact_name(template)
    if _traverses_only_plain_names(template, _ipycap_mode):
        return str.format(template, *args, **kwargs)
    return _FORMATTERS[_ipycap_mode].vformat(template, args, kwargs)


def guarded_format_map(template: str, mapping, /, *, _ipycap_mode="proxy") -> str:
    """``str.format_map`` whose fields cannot reach what the guard refuses."""
    template = exact_name(template)
    if _traverses_only_plain_names(template, _ipycap_mode):
        return str.format_map(template, mapping)
    return _FORMATTERS[_ipycap_mode].vformat(template, (), mapping)


def _rexec_format(template, /, *args, **kwargs):
    return guarded_format(template, *args, _ipycap_mode="rexec", **kwargs)


def _rexec_format_map(template, mapping, /):
    return guarded_format_map(template, mapping, _ipycap_mode="rexec")


_FORMAT_FUNCS = {
    ("proxy", "format"): guarded_format,
    ("proxy", "format_map"): guarded_format_map,
    ("rexec", "format"): _rexec_format,
    ("rexec", "format_map"): _rexec_format_map,
}


class _GuardedFormat:
    """``str.format``/``format_map`` as a capsule gets them: a callable that is not a
    function, so nothing of the trusted implementation hangs off it."""

    __slots__ = ("__ipycap_fn__", "__ipycap_template__")

    def __call__(self, *args, **kwargs):
        template = self.__ipycap_template__
        if template is None:
            return self.__ipycap_fn__(*args, **kwargs)
        return self.__ipycap_fn__(template, *args, **kwargs)

    def __repr__(self):
        name = self.__ipycap_fn__.__name__.replace("guarded_", "").replace("_rexec_", "")
        return f"<guarded str.{name}>"


def _guarded_format(fn, template):
    g = _GuardedFormat.__new__(_GuardedFormat)
    _GuardedFormat.__ipycap_fn__.__set__(g, fn)
    _GuardedFormat.__ipycap_template__.__set__(g, template)
    return g


def _format_attr(value, name, mode="proxy"):
    fn = _FORMAT_FUNCS[mode, name]
    if value is str or (isinstance(value, type) and issubclass(value, str)):
        return _guarded_format(fn, None)
    if isinstance(value, str):
        return _guarded_format(fn, exact_name(value))
    if isinstance(value, UserString):
        return _guarded_format(fn, exact_name(value.data))
    if isinstance(value, GuardedFormatter) or value is GuardedFormatter:
        return getattr(value, name)
    if is_own(value):
        attr = getattr(value, name)
        if isinstance(attr, types.BuiltinMethodType) and isinstance(
            getattr(attr, "__self__", None), str
        ):
            return _guarded_format(fn, exact_name(attr.__self__))
        return attr
    refuse(
        value,
        name,
        "format methods traverse attributes in C, outside the guard",
        hint="use an f-string, or str.format on a string",
    )


PROXY_TYPES[_GuardedFormat] = lambda g, name: refuse(
    g, name, "a guarded format method reveals nothing of its implementation"
)


# -- guarded builtins -------------------------------------------------------------------------
def make_accessors(mode: str = "proxy", on_refuse=None):
    """The guarded getattr family for one capsule mode."""
    risky = rules.is_risky_rexec if mode == "rexec" else rules.is_risky
    # the gate routes stores of these names here (gate._Gate.risky_store): the same predicate
    risky_store = rules.is_risky_store_rexec if mode == "rexec" else rules.is_risky_store

    def _getattr_hook(value, name):
        try:
            return decide(value, name, mode)
        except CapsuleAttributeError as err:
            if on_refuse is not None:
                on_refuse(err)
            raise err from None

    _missing = object()

    def capsule_getattr(obj, name, default=_missing, /):
        """Guarded getattr: risky names follow the capsule's decision table."""
        name = exact_name(name)
        try:
            if risky(name):
                return _getattr_hook(obj, name)
            return getattr(obj, name)
        except AttributeError:
            if default is _missing:
                raise
            return default

    def capsule_hasattr(obj, name, /):
        """Guarded hasattr: a refused name is reported as absent."""
        try:
            capsule_getattr(obj, name)
        except AttributeError:
            return False
        return True

    def capsule_setattr(obj, name, value, /):
        """Guarded setattr: risky names only on the capsule's own objects."""
        name = exact_name(name)
        if risky(name):
            _array_setattr(obj, name, on_refuse)
            if rules.classify(name) == "never" or not is_own(obj):
                err = CapsuleAttributeError(
                    f"setting {name!r} on a {type(obj).__name__} object is refused",
                    "guard",
                    None
                    if rules.classify(name) == "never"
                    else "only objects the capsule created may have such attributes set",
                )
                if on_refuse is not None:
                    on_refuse(err)
                raise err
            if mode == "rexec" and name[:1] == "_" and name not in rules.REXEC_ALLOWED:
                refuse(obj, name, "rexec mode denies underscore attributes", mode=mode)
        setattr(obj, name, value)
        if after_class_write is not None and risky_store(name):
            after_class_write(obj, name)  # a hook assigned to a class is guarded (hooks.py)

    def capsule_delattr(obj, name, /):
        """Guarded delattr: the same rule as setattr."""
        name = exact_name(name)
        if risky(name):
            _array_setattr(obj, name, on_refuse)
        if risky(name) and (rules.classify(name) == "never" or not is_own(obj)):
            err = CapsuleAttributeError(
                f"deleting {name!r} on a {type(obj).__name__} object is refused", "guard"
            )
            if on_refuse is not None:
                on_refuse(err)
            raise err
        delattr(obj, name)

    def capsule_vars(*args):
        """Guarded vars: only for the capsule's own objects (and its own namespace)."""
        if not args:
            raise CapsuleTypeError(
                "vars() without an argument is not available in a capsule",
                "guard",
                hint="use globals() or name the object",
            )
        return _getattr_hook(args[0], "__dict__")

    def capsule_dir(*args):
        """Guarded dir: names only, never values."""
        if not args:
            raise CapsuleTypeError(
                "dir() without an argument is not available in a capsule",
                "guard",
                hint="use globals() or dir(obj)",
            )
        obj = args[0]
        if type(obj) in PROXY_TYPES:
            return sorted(n for n in type(obj).__dir__(obj) if n[:1] != "_")
        return sorted(dir(obj))

    return {
        "_ipycap_getattr": _getattr_hook,
        "_ipycap_setattr": capsule_setattr,
        "_ipycap_delattr": capsule_delattr,
        **intlimits.HOOKS,
        "pow": intlimits.checked_pow,
        "getattr": capsule_getattr,
        "hasattr": capsule_hasattr,
        "setattr": capsule_setattr,
        "delattr": capsule_delattr,
        "vars": capsule_vars,
        "dir": capsule_dir,
    }


def _caller_mode() -> str:
    """The mode of the innermost capsule on the stack ('proxy' when none is): the guarded
    stdlib helpers below are shared by every capsule, so they decide with the rules of the
    capsule that calls them (rexec denies every underscore name)."""
    f = sys._getframe(1)
    while f is not None:
        ctx = context_of(f.f_builtins)
        if ctx is not None:
            return "rexec" if getattr(ctx, "mode", "proxy") == "rexec" else "proxy"
        f = f.f_back
    return "proxy"


def _guarded_get(value, name: str, mode: str):
    risky = rules.is_risky_rexec if mode == "rexec" else rules.is_risky
    return decide(value, name, mode) if risky(name) else getattr(value, name)


def attrgetter(*names):
    """A guarded ``operator.attrgetter``: every dotted part obeys the guard."""
    parts = [exact_name(n).split(".") for n in names]

    def get(obj, /):
        mode = _caller_mode()
        results = []
        for chain in parts:
            value = obj
            for p in chain:
                value = _guarded_get(value, p, mode)
            results.append(value)
        return results[0] if len(results) == 1 else tuple(results)

    return get


def methodcaller(name, /, *args, **kwargs):
    """A guarded ``operator.methodcaller``."""
    name = exact_name(name)

    def call(obj, /):
        return _guarded_get(obj, name, _caller_mode())(*args, **kwargs)

    return call


def update_wrapper(wrapper, wrapped, assigned=None, updated=None):
    """A guarded ``functools.update_wrapper``: it reads and sets attributes named by its
    caller, so ``assigned=('__globals__',)`` would copy a library function's globals onto a
    capsule object, past the guard.  Risky names obey the guard's table on both sides."""
    import functools

    assigned = functools.WRAPPER_ASSIGNMENTS if assigned is None else assigned
    updated = functools.WRAPPER_UPDATES if updated is None else updated
    mode = _caller_mode()
    # functools' own names are what wraps() is for: they obey proxy-mode rules in either
    # mode (as before); any other name a rexec capsule passes obeys rexec's.
    standard = frozenset(functools.WRAPPER_ASSIGNMENTS) | frozenset(functools.WRAPPER_UPDATES)
    for attr in assigned:
        attr = exact_name(attr)
        try:
            value = _guarded_get(wrapped, attr, "proxy" if attr in standard else mode)
        except AttributeError:
            continue
        _guarded_set(wrapper, attr, value)
    for attr in updated:
        attr = exact_name(attr)
        how = "proxy" if attr in standard else mode
        try:
            source = _guarded_get(wrapped, attr, how)
        except AttributeError:
            source = {}
        target = _guarded_get(wrapper, attr, how)
        target.update(source)
    _guarded_set(wrapper, "__wrapped__", wrapped)
    return wrapper


_WRAPPER_NAMES = frozenset(
    "__module__ __name__ __qualname__ __doc__ __annotations__ __type_params__ __wrapped__".split()
)


def _guarded_set(obj, name, value):
    # Only the capsule's own wrapper gets attributes: on a trusted function, __wrapped__ or
    # __annotations__ would be read later by trusted code (get_type_hints evaluating
    # capsule source with no capsule on the stack).
    if not is_own(obj) or (rules.is_risky(name) and rules.classify(name) == "never"):
        raise CapsuleAttributeError(
            f"setting {name!r} on a {type(obj).__name__} object is refused",
            "guard",
            hint="functools.wraps and update_wrapper apply to the capsule's own functions",
        )
    setattr(obj, name, value)
    if after_class_write is not None:
        after_class_write(obj, name)


def wraps(wrapped, assigned=None, updated=None):
    """A guarded ``functools.wraps`` (see :func:`update_wrapper`)."""
    import functools

    return functools.partial(update_wrapper, wrapped=wrapped, assigned=assigned, updated=updated)
