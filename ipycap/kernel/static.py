"""Inspection and completion that never run code: ``obj?``, Shift-Tab and Tab in the kernel.

A stock kernel answers ``inspect_request`` and ``complete_request`` by evaluating: IPython's
inspector calls ``repr()``, reads properties and ``__doc__`` through ``getattr``, and its
completer (or Jedi) calls ``dir()`` and ``__getattr__``.  On a capsule object each of those is
capsule code, run because a human pressed Tab.  Here every lookup is static: names are looked
up in dicts, attributes in the instance ``__dict__`` and the class MRO's ``__dict__``s (never
through a descriptor), and values are described with :func:`safe_repr`, which only formats exact
builtin types and otherwise prints ``<Class object>``.  Proxies and module views are looked
through to their (trusted) targets, statically as well.

What a lookup may follow mirrors what capsule code may read: private (underscore) names only
on the capsule's own objects (the membrane hides them on everything else), and a module
reached as an attribute only when the capsule may import it.  "Statically" includes the
machinery: no ``isinstance`` (it reads ``obj.__class__``, which a capsule class can make a
property), no dict lookup that compares a capsule's own keys with ``==``, no ``is_own`` that
hashes a capsule's class.
"""

from __future__ import annotations

import builtins as _py
import keyword
import linecache
import re
import types
from collections.abc import Iterable, Mapping

from ..engine.guard import CAPSULE_MARK, is_own_static, may_read_statically
from ..engine.membrane import Proxy, capability_of, target_of
from ..engine.modules import SPECIAL_MODULES, ModuleView

_MISSING = object()
_NAME_AT_END = re.compile(r"[A-Za-z_][\w.]*$")
_PLAIN = (int, float, complex, bool, str, bytes, type(None))
_FUNCS = (types.FunctionType, types.BuiltinFunctionType, types.MethodType)
_type_dict = type.__dict__["__dict__"].__get__  # the class's own mappingproxy, no metaclass
_module_of_view = ModuleView.__dict__["__ipycap_module__"].__get__


def _is_class(obj) -> bool:
    """``isinstance(obj, type)`` without reading ``obj.__class__`` (isinstance falls back to
    it, and a capsule class can make it a property: code run by a Tab press)."""
    return issubclass(type(obj), type)


def _one_of(tp, types_: tuple) -> bool:
    """``tp in types_`` by identity (``in`` compares with ``==``, and a capsule metaclass's
    ``__eq__`` would run)."""
    return any(tp is t for t in types_)


def _get(mapping, name: str):
    """``mapping[name]`` for an exact-str key, or ``_MISSING``, without running code: a dict
    lookup compares colliding keys with ``==``, and a capsule can put a key whose ``__eq__``
    is capsule code into its own objects' ``__dict__``."""
    items = dict.items(mapping) if type(mapping) is dict else mapping.items()
    for key, value in items:
        if type(key) is str and key == name:
            return value
    return _MISSING


def look_through(value):
    """The object a static lookup should read: a proxy's target, a module view's module."""
    tp = type(value)
    if tp is Proxy:
        if capability_of(value).revoked:
            return None  # a revoked capability shows nothing, not even to inspection
        return target_of(value)
    if tp is ModuleView:
        return _module_of_view(value)
    return value


def instance_dict(obj) -> Mapping:
    """``obj.__dict__`` read through the C-level descriptor only (a class may define a
    ``__dict__`` property; that would run code)."""
    if _is_class(obj):
        return _type_dict(obj)
    if type(obj) is types.ModuleType:
        return types.ModuleType.__dict__["__dict__"].__get__(obj)
    for klass in type.__dict__["__mro__"].__get__(type(obj)):
        entry = _get(_type_dict(klass), "__dict__")
        if entry is _MISSING:
            continue
        if type(entry) is types.GetSetDescriptorType:
            d = entry.__get__(obj)
            return d if type(d) is dict else {}
        return {}
    return {}


def _mro(obj) -> tuple:
    klass = obj if _is_class(obj) else type(obj)
    mro = type.__dict__["__mro__"].__get__(klass)
    if _is_class(obj):
        mro = mro + type.__dict__["__mro__"].__get__(type(obj))
    return mro


def static_attr(obj, name: str):
    """The attribute as stored (descriptors unresolved), or ``_MISSING``."""
    obj = look_through(obj)
    value = _get(instance_dict(obj), name)
    if value is not _MISSING:
        return value
    for klass in _mro(obj):
        value = _get(_type_dict(klass), name)
        if value is not _MISSING:
            return value
    return _MISSING


def attribute_names(obj) -> list[str]:
    """Every name a static lookup could find on ``obj`` (public first when sorted)."""
    obj = look_through(obj)
    names = {k for k in instance_dict(obj) if type(k) is str}
    for klass in _mro(obj):
        names.update(k for k in _type_dict(klass) if type(k) is str)
    if type(obj) is types.ModuleType:
        public = _get(instance_dict(obj), "__all__")  # no module __getattr__
        if _one_of(type(public), (list, tuple)):
            names.update(n for n in public if type(n) is str)
    return sorted(names, key=lambda n: (n.startswith("_"), n))


class Namespaces:
    """Where a capsule name lives: its own namespace, its builtins, then protected names.

    ``may_import(name)`` (the capsule context's) decides whether a module reached as an
    attribute (``a.json.decoder``) may be followed, as ``ModuleView`` decides for the capsule."""

    def __init__(self, *mappings: Mapping, may_import=None):
        self.mappings = mappings
        self.may_import = may_import

    def lookup(self, name: str):
        for m in self.mappings:
            value = _get(m, name)
            if value is not _MISSING:
                return value
        return _MISSING

    def may_follow(self, value, part: str) -> bool:
        """Whether the capsule could read ``value.part``: private names only on its own
        objects (a proxy's target, a module behind a view, a builtin are not its own)."""
        return may_read_statically(look_through(value), part)

    def module_visible(self, module) -> bool:
        """A module reached as an attribute: visible when the capsule may import it (never the
        raw modules of the capsule-safe views, ``sys`` and ``IPython.display``)."""
        name = _get(instance_dict(module), "__name__")
        if type(name) is not str or _get(SPECIAL_MODULES, name) is not _MISSING:
            return False
        return self.may_import is None or bool(self.may_import(name))

    def names(self) -> set[str]:
        out: set[str] = set()
        for m in self.mappings:
            out.update(k for k in m if type(k) is str and k != CAPSULE_MARK)
        return out

    def resolve(self, dotted: str):
        """Follow ``a.b.c`` statically; stops (``_MISSING``) at a descriptor it would have to run."""
        first, *rest = dotted.split(".")
        value = self.lookup(first)
        for part in rest:
            if value is _MISSING or not self.may_follow(value, part):
                return _MISSING
            value = static_attr(value, part)
            if type(value) is types.ModuleType and not self.module_visible(value):
                return _MISSING
            if _is_unresolved_descriptor(value):
                return value if part == rest[-1] else _MISSING
        return value


def _is_unresolved_descriptor(value) -> bool:
    tp = type(value)
    return tp is property or (
        not issubclass(tp, (type, *_FUNCS))
        and static_attr(value, "__get__") is not _MISSING
        and not _one_of(tp, (staticmethod, classmethod))
    )


# -- describing without running ----------------------------------------------------------------
def safe_repr(value, limit: int = 200, _depth: int = 0) -> str:
    """A repr computed only for exact builtin types; anything else is ``<Class object>``."""
    tp = type(value)
    if _one_of(tp, _PLAIN):
        text = repr(value)
    elif _one_of(tp, (list, tuple, set, frozenset)) and _depth < 3:
        items = list(tp.__iter__(value))[:20]
        inner = ", ".join(safe_repr(v, limit, _depth + 1) for v in items)
        more = ", ..." if len(value) > 20 else ""
        if tp is list:
            text = f"[{inner}{more}]"
        elif tp is tuple:
            text = f"({inner}{',' if len(items) == 1 else ''}{more})"
        else:
            text = f"{{{inner}{more}}}" if items else f"{tp.__name__}()"
    elif tp is dict and _depth < 3:
        items = list(dict.items(value))[:20]
        inner = ", ".join(
            f"{safe_repr(k, limit, _depth + 1)}: {safe_repr(v, limit, _depth + 1)}"
            for k, v in items
        )
        text = "{" + inner + (", ..." if len(value) > 20 else "") + "}"
    elif _is_class(value):
        text = f"<class '{_qualname(value)}'>"
    elif _one_of(tp, _FUNCS):
        text = f"<{tp.__name__} {_qualname(value)}>"
    elif tp is types.ModuleType:
        text = f"<module {value.__name__!r}>"
    else:
        text = f"<{_qualname(tp)} object>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _qualname(obj) -> str:
    if _is_class(obj):
        d = _type_dict(obj)
        module = _get(d, "__module__")
        name = type.__dict__["__qualname__"].__get__(obj)
        return (
            f"{module}.{name}" if type(module) is str and module not in ("builtins", "") else name
        )
    name = getattr(obj, "__qualname__", None) if _one_of(type(obj), _FUNCS) else None
    return name if type(name) is str else "?"


def static_doc(value) -> str | None:
    """The docstring, read without running a descriptor."""
    if _is_class(value):
        doc = _get(_type_dict(value), "__doc__")
    elif _one_of(type(value), (*_FUNCS, types.ModuleType)):
        doc = value.__doc__  # C-level getters on these exact types
    elif _one_of(type(value), (property, staticmethod, classmethod)):
        doc = value.__doc__
    else:
        doc = static_attr(type(value), "__doc__")
    return doc if type(doc) is str else None


def signature(value) -> str | None:
    """``name(a, b=1, *args, c, **kw)`` from the code object: no ``inspect.signature``
    (it reads ``__signature__``/``__wrapped__`` and reprs defaults, which can run code)."""
    if type(value) is types.MethodType:
        func, bound = value.__func__, True
    elif type(value) is types.FunctionType:
        func, bound = value, False
    elif _is_class(value):
        init = static_attr(value, "__init__")
        if type(init) is types.FunctionType:
            sig = signature(init)
            return sig and sig.replace("self, ", "", 1).replace("(self)", "()")
        text = _get(_type_dict(value), "__text_signature__")
        return text if type(text) is str else None
    elif type(value) is types.BuiltinFunctionType:
        text = value.__text_signature__
        return f"{value.__name__}{text.replace('($module, ', '(')}" if type(text) is str else None
    else:
        return None
    code = func.__code__
    names = code.co_varnames
    npos, nkw = code.co_argcount, code.co_kwonlyargcount
    # Exact types only: a capsule may store a tuple/dict subclass (its __len__, __getitem__).
    defaults = func.__defaults__ if type(func.__defaults__) is tuple else ()
    kwdefaults = func.__kwdefaults__ if type(func.__kwdefaults__) is dict else {}
    parts = []
    for i, name in enumerate(names[:npos]):
        d = i - (npos - len(defaults))
        parts.append(f"{name}={safe_repr(defaults[d], 40)}" if d >= 0 else name)
        if i + 1 == code.co_posonlyargcount:
            parts.append("/")
    idx = npos + nkw
    if code.co_flags & 0x04:
        parts.append("*" + names[idx])
        idx += 1
    elif nkw:
        parts.append("*")
    for name in names[npos : npos + nkw]:
        default = _get(kwdefaults, name)
        parts.append(f"{name}={safe_repr(default, 40)}" if default is not _MISSING else name)
    if code.co_flags & 0x08:
        parts.append("**" + names[idx])
    if bound and parts:
        parts = parts[1:]
    name = func.__name__
    return f"{name if type(name) is str else '?'}({', '.join(parts)})"


def source_of(value) -> str | None:
    """Source of a capsule function or class from ``linecache`` (registered by the engine).

    Only capsule code: a trusted function's file can be in ``linecache`` too (after a warning
    or a traceback named it), and the admin's startup source is not the cell's to read."""
    func = value.__func__ if type(value) is types.MethodType else value
    if type(func) is not types.FunctionType:
        return None
    code = func.__code__
    if not code.co_filename.startswith("<capsule-"):
        return None
    lines = linecache.cache.get(code.co_filename)
    if not lines:
        return None
    import inspect

    try:
        return "".join(inspect.getblock(lines[2][code.co_firstlineno - 1 :]))
    except Exception:  # an unparsable block: no source rather than a wrong one
        return None


def describe(name: str, value, detail_level: int = 0) -> str:
    """The text of ``name?`` (``name??`` adds the source of capsule functions)."""
    if _is_unresolved_descriptor(value):
        kind = type(value).__name__
        lines = [f"Type:      {kind} (not evaluated: inspection never runs {kind} code)"]
        doc = value.__doc__ if type(value) is property else static_doc(value)
    else:
        lines = [f"Type:      {_qualname(type(value))}"]
        lines.append(f"String form: {safe_repr(value)}")
        if _one_of(type(value), (list, tuple, dict, set, frozenset, str, bytes)):
            lines.append(f"Length:    {len(value)}")
        doc = static_doc(value)
        sig = signature(value)
        if sig:
            lines.insert(0, f"Signature: {sig}")
    lines.append("Docstring: " + (doc.strip() if doc else "<no docstring>"))
    if detail_level > 0:
        src = source_of(value)
        if src:
            lines.append("Source:\n" + src.rstrip())
    return f"{name}\n" + "\n".join(lines)


# -- completion ------------------------------------------------------------------------------
def token_before(code: str, cursor_pos: int) -> str:
    """The dotted name that ends at the cursor ('' when there is none)."""
    m = _NAME_AT_END.search(code[:cursor_pos])
    return m.group(0) if m else ""


def complete(token: str, namespaces: Namespaces, extra: Iterable[str] = ()) -> list[str]:
    """Completions of ``token`` (``a.b.pre``), statically; private names only when typed, and
    only of the capsule's own objects."""
    base, dot, prefix = token.rpartition(".")
    if dot:
        target = namespaces.resolve(base)
        if target is _MISSING or _is_unresolved_descriptor(target):
            return []
        candidates = attribute_names(target)
        if not is_own_static(look_through(target)):
            candidates = [c for c in candidates if c[:1] != "_"]
    else:
        candidates = sorted(namespaces.names() | set(keyword.kwlist) | set(extra))
    out = [c for c in candidates if c.startswith(prefix) and (c[:1] != "_" or prefix[:1] == "_")]
    return [f"{base}.{c}" if dot else c for c in out]


def inspect_token(code: str, cursor_pos: int) -> str:
    """The dotted name under the cursor (IPython's tokenizer: text only, nothing evaluated)."""
    from IPython.utils.tokenutil import token_at_cursor

    return token_at_cursor(code, cursor_pos)


BUILTIN_NAMES = frozenset(n for n in dir(_py) if not n.startswith("_"))
MISSING = _MISSING
