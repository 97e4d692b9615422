"""The introspection explorer: what each introspection feature gives on an object, three ways.

``explain(obj)`` runs the same probes (``type(x)``, ``x.__class__``, ``dir(x)``, ``vars(x)``,
``x.__dict__``, ``repr(x)``, a private attribute, a method's ``__func__``/``__self__``/
``__globals__``, ``setattr``, ``isinstance``, ``hash``/``==``, iteration) on

* the raw object, in trusted Python,
* the object's proxy, as capsule code (``Capsule(protected={'x': obj})`` in proxy mode),
* the same proxy seen by a capsule in rexec mode,

and returns an :class:`Explanation` table.  It exists so a learner can *see* what a proxy
hides and why, which is the 2003 python-dev argument (proxies vs rexec) made concrete.

The explorer must not change what it explains: nothing is ever assigned on the raw object
(the raw ``setattr`` cell is described from the type, not run), iterators are never advanced,
other iterables give at most three items, and the capsule probes run in a private registry
so the user's own registry view is not cluttered by them.
"""

from __future__ import annotations

import html
import inspect
import itertools
import keyword
import types
from collections.abc import Iterator

from .engine.capsule import Capsule
from .engine.errors import CapabilityError
from .engine.policy import CapsulePolicy
from .engine.registry import Registry
from .engine.terminal import cell_text

#: Longest text shown in one cell of the table.
CELL_WIDTH = 72
_MISSING = object()
_ROUTINES = (
    types.FunctionType,
    types.MethodType,
    types.BuiltinFunctionType,
    types.BuiltinMethodType,
    types.MethodDescriptorType,
    types.WrapperDescriptorType,
    types.MethodWrapperType,
    types.ClassMethodDescriptorType,
    staticmethod,
    classmethod,
)
_PLAIN_SETATTR = (object.__setattr__, type.__setattr__, types.ModuleType.__setattr__)


class Explanation:
    """The table ``explain`` returns: one row per introspection operation.

    ``rows`` is a list of ``(operation, raw, proxy, rexec)`` strings; ``refused`` says, for
    the same cells, which ones are ipycap refusals (a ``CapabilityError``, marked in the HTML)
    as opposed to Python's own errors (``TypeError: unhashable type``) or values.  It renders as an
    HTML ``<table>`` in notebooks (every value escaped) and as a plain-text table elsewhere.
    """

    columns = ("operation", "raw object (trusted)", "proxy (capsule)", "rexec mode (capsule)")

    def __init__(self, name: str, type_name: str, rows, refused):
        self.name = name
        self.type_name = type_name
        self.rows: list[tuple[str, str, str, str]] = list(rows)
        self.refused: list[tuple[bool, bool, bool]] = list(refused)

    def row(self, operation: str) -> tuple[str, str, str, str]:
        """The row whose operation is ``operation`` (``KeyError`` if there is none)."""
        for r in self.rows:
            if r[0] == operation:
                return r
        raise KeyError(operation)

    def _repr_html_(self) -> str:
        esc = html.escape
        head = "".join(f"<th style='text-align:left'>{esc(c)}</th>" for c in self.columns)
        body = []
        for row, refused in zip(self.rows, self.refused, strict=True):
            cells = [f"<td style='text-align:left'><code>{esc(row[0])}</code></td>"]
            for text, bad in zip(row[1:], refused, strict=True):
                cls = "ipycap-refused" if bad else "ipycap-ok"
                mark = "&#x2716; " if bad else ""
                cells.append(f"<td class='{cls}' style='text-align:left'>{mark}{esc(text)}</td>")
            body.append("<tr>" + "".join(cells) + "</tr>")
        caption = (
            f"ipycap.explain({esc(self.name)}): {esc(_article(self.type_name))} seen raw, "
            "through its proxy, and in rexec mode (&#x2716; = refused)"
        )
        return (
            "<table class='ipycap-explain'>"
            f"<caption style='text-align:left'>{caption}</caption>"
            f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
        )

    def __str__(self) -> str:
        table = [self.columns, *self.rows]
        widths = [max(len(r[i]) for r in table) for i in range(4)]
        lines = [f"ipycap.explain({self.name}): {_article(self.type_name)}"]
        for n, r in enumerate(table):
            lines.append(" | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
            if n == 0:
                lines.append("-+-".join("-" * w for w in widths))
        return "\n".join(lines)

    __repr__ = __str__

    def _repr_pretty_(self, p, cycle) -> None:
        p.text(str(self))


def explain(obj, *, name: str | None = None) -> Explanation:
    """Run every introspection probe on ``obj`` raw, through its proxy, and in rexec mode.

    ``name`` is what the probes call the object (``x`` when omitted or not an identifier),
    e.g. ``explain(account, name='account')`` shows ``type(account)``.
    """
    var = name if _is_identifier(name) else "x"
    probes = _probes(obj, var)
    registry = Registry(CapsulePolicy())
    capsules = [
        Capsule(registry=registry, protected={var: obj}, mode=mode, label=f"explain-{mode}")
        for mode in ("proxy", "rexec")
    ]
    rows, refused = [], []
    for label, raw, source in probes:
        if callable(raw):
            raw = raw(obj)
        raw_text, raw_bad = raw if isinstance(raw, tuple) else (raw, False)
        raw_text = _truncate(raw_text)
        cells, bad = [raw_text], [raw_bad]
        for capsule in capsules:
            if source is None:
                cells.append(cells[0])
                bad.append(bad[0])
                continue
            text, was_refused = _run_probe(capsule, obj, source)
            cells.append(text)
            bad.append(was_refused)
        rows.append((label, *cells))
        refused.append(tuple(bad))
    for capsule in capsules:
        capsule.end()
    return Explanation(name or var, type(obj).__name__, rows, refused)


# -- the probes ---------------------------------------------------------------------------------
def _probes(obj, x: str):
    """(label, raw callable or described text, capsule source or None) for each operation."""
    probes = [
        (f"type({x})", _raw(type), f"type({x})"),
        (f"{x}.__class__", _raw(lambda o: o.__class__), f"{x}.__class__"),
        (f"dir({x})", _raw(dir, _summarise_names), f"dir({x})"),
        (f"vars({x})", _raw(vars), f"vars({x})"),
        (f"{x}.__dict__", _raw(lambda o: o.__dict__), f"{x}.__dict__"),
        (f"repr({x})", _raw(repr), f"repr({x})"),
    ]
    private = _first_private(obj)
    if private is None:
        na = "n/a: no single-underscore attribute"
        probes.append((f"{x}._<private>", na, None))
    else:
        probes.append((f"{x}.{private}", _raw(lambda o: getattr(o, private)), f"{x}.{private}"))
    target = _method_target(obj, x)
    if target is None:
        na = "n/a: no public method"
        probes += [(f"{x}.<method>.{a}", na, None) for a in ("__func__", "__self__", "__globals__")]
    else:
        expr, get = target
        for attr in ("__func__", "__self__", "__globals__"):
            probes.append(
                (f"{expr}.{attr}", _raw(lambda o, a=attr: getattr(get(o), a)), f"{expr}.{attr}")
            )
    if isinstance(obj, type):
        probes.append(
            (f"{x}.__subclasses__()", _raw(lambda o: o.__subclasses__()), f"{x}.__subclasses__()")
        )
    if isinstance(obj, types.GeneratorType | types.CoroutineType | types.AsyncGeneratorType):
        frame = {types.GeneratorType: "gi_frame", types.CoroutineType: "cr_frame"}.get(
            type(obj), "ag_frame"
        )
        probes.append((f"{x}.{frame}", _raw(lambda o: getattr(o, frame)), f"{x}.{frame}"))
    probes += [
        (f"setattr({x}, 'probe', 1)", _describe_setattr(obj), f"setattr({x}, 'probe', 1)"),
        (
            f"isinstance({x}, type({x}))",
            _raw(lambda o: isinstance(o, type(o))),
            f"isinstance({x}, type({x}))",
        ),
        (f"hash({x})", _raw(hash), f"hash({x})"),
        (f"{x} == {x}", _raw(lambda o: o == o), f"{x} == {x}"),
    ]
    if isinstance(obj, Iterator):
        text = "not run: it is an iterator and iterating would consume it"
        probes.append((f"iter({x}) is {x}", _raw(lambda o: iter(o) is o), f"iter({x}) is {x}"))
        probes.append((f"next({x})", text, None))
    else:
        source = (
            f"items = []\nfor item in {x}:\n    items.append(item)\n"
            "    if len(items) == 3:\n        break\nitems"
        )
        probes.append(
            (
                f"iterate {x} (first 3)",
                _raw(lambda o: list(itertools.islice(iter(o), 3))),
                source,
            )
        )
    return probes


def _raw(func, fmt=None):
    """Run ``func(obj)`` as trusted code; format the value or the exception."""

    def run(obj):
        try:
            value = func(obj)
        except Exception as err:  # noqa: BLE001 - shown in the table
            return _describe_error(err), False
        return (fmt or _short)(value), False

    return run


def _run_probe(capsule: Capsule, obj, source: str) -> tuple[str, bool]:
    before = _static(obj, "probe")
    try:
        value = capsule.run(source)
    except Exception as err:  # noqa: BLE001 - shown in the table
        return _describe_error(err), isinstance(err, CapabilityError)
    finally:
        if before is _MISSING and _static(obj, "probe") is not _MISSING:
            # The explorer never changes what it explains, even if a membrane bug let it.
            try:
                delattr(obj, "probe")
            except Exception:  # noqa: BLE001
                pass
    if source.startswith("dir("):
        return _summarise_names(value), False
    return _short(value), False


def _describe_setattr(obj) -> str:
    """What ``setattr(obj, 'probe', 1)`` would do, read from the type: never run on ``obj``."""
    tp = type(obj)
    setter = getattr(tp, "__setattr__", object.__setattr__)
    # By identity: 'in' compares with ==, and a capsule's own __eq__ would be handed the
    # generic setattr slot wrappers (with which it unmarked its frames: red team 2).
    if not any(setter is plain for plain in _PLAIN_SETATTR):
        return f"not run: {tp.__name__} defines its own __setattr__ (would run its code)"
    if isinstance(obj, type) and type.__setattr__ is setter:
        if tp.__flags__ & (1 << 9) == 0:  # Py_TPFLAGS_HEAPTYPE: builtin types are immutable
            return f"TypeError: cannot set 'probe' attribute of immutable type {obj.__name__!r}"
        return "would set a class attribute (not run: the explorer never mutates)"
    if any("__dict__" in vars(k) for k in tp.__mro__ if k is not object) or any(
        "probe" in (getattr(k, "__slots__", ()) or ()) for k in tp.__mro__
    ):
        return "would set an instance attribute (not run: the explorer never mutates)"
    return f"AttributeError: {tp.__name__!r} object has no attribute 'probe' (no __dict__)"


def _first_private(obj) -> str | None:
    """The first single-underscore (non-dunder) attribute name of ``obj``, if any."""
    try:
        names = sorted(dir(obj))
    except Exception:  # noqa: BLE001
        return None
    for n in names:
        if n[:1] == "_" and not (n[:2] == "__" and n[-2:] == "__"):
            return n
    return None


def _method_target(obj, x: str):
    """(expression, getter) for the routine whose internals the method rows probe.

    A function or method is probed itself; otherwise the first public method, found
    statically so no property or ``__getattr__`` of the object runs."""
    if isinstance(obj, types.FunctionType | types.MethodType | types.BuiltinFunctionType):
        return x, lambda o: o
    try:
        names = sorted(dir(obj))
    except Exception:  # noqa: BLE001
        return None
    for n in names:
        if n[:1] == "_":
            continue
        static = _static(obj, n)
        if isinstance(static, _ROUTINES):
            return f"{x}.{n}", lambda o, n=n: getattr(o, n)
    return None


def _static(obj, name):
    try:
        return inspect.getattr_static(obj, name)
    except AttributeError:
        return _MISSING


# -- formatting ---------------------------------------------------------------------------------
def _short(value) -> str:
    try:
        text = repr(value)
    except Exception as err:  # noqa: BLE001
        text = f"<repr failed: {type(err).__name__}>"
    return _truncate(" ".join(text.split()))


def _summarise_names(names) -> str:
    names = list(names)
    public = [n for n in names if n[:1] != "_"]
    private = len(names) - len(public)
    shown = ", ".join(public[:6]) + (", …" if len(public) > 6 else "")
    return _truncate(f"{len(names)} names ({private} underscore): {shown or '-'}")


def _describe_error(err: BaseException) -> str:
    name = type(err).__name__
    if isinstance(err, CapabilityError):
        return _truncate(f"{name} [{err.layer}]: {err.what}")
    message = str(err).split("\n", 1)[0]
    return _truncate(f"{name}: {message}")


def _truncate(text: str, width: int = CELL_WIDTH) -> str:
    # Every cell of the view: text of the explained object's (its repr, its names), so
    # control characters are shown escaped, never sent to a terminal (terminal.cell_text).
    return cell_text(text, width)


def _is_identifier(name) -> bool:
    return (
        isinstance(name, str)
        and name.isidentifier()
        and not keyword.iskeyword(name)
        and name[:1] != "_"
    )


__all__ = ["Explanation", "explain"]


def _article(noun: str) -> str:
    """'a list', 'an Account', 'an int' (by the first letter's sound, near enough)."""
    return ("an " if noun[:1].lower() in "aeiou" else "a ") + noun
