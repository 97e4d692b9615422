"""Capsule output: values become MIME bundles inside the capsule, and only plain dicts leave.

"Format inside, publish plain" (DESIGN.md, the boundary): a capsule's values are turned into
``{mime: str | bytes}`` bundles here, by ipycap's own small printer, which calls the capsule's
``_repr_*_`` methods itself and hands ``_repr_pretty_`` a :class:`CapsulePrinter` that holds
nothing but text.  IPython's formatter then never calls a capsule method and never hands
capsule code its printer, whose type tables are the shell's (I2, I3).

Three kinds of value, three ways:

* plain data, the capsule's own objects and builtin containers of them: formatted here;
* proxies (the user's objects): formatted by the host's formatter on the trusted target, as
  a trusted cell would show it (``trusted_format``, set by the host on the context);
* other trusted objects the capsule made through a library (a DataFrame, a Figure, a deque):
  text/plain is their own ``repr``; the richer types come from the host's formatter with
  text/plain excluded, because IPython's pretty printer walks containers and would hand a
  capsule object inside one the real printer.

What the host publishes is filtered by the policy (``ipycap.ipython.display``).  The capsule
reaches all of this as ``display``, ``update_display``, ``clear_output`` (its builtins and
``IPython.display``); the host's publishing functions live on the context, which capsule code
cannot reach (I4).
"""

from __future__ import annotations

import contextlib
import sys

from . import guard, modules, tripwire
from .errors import CapabilityError, CapsulePermissionError, CapsuleTypeError
from .membrane import Proxy, is_plain, plain_result, target_of

#: MIME type -> the ``_repr_*_`` method that gives it, as IPython's formatters look them up.
REPR_METHODS = {
    "text/html": "_repr_html_",
    "text/markdown": "_repr_markdown_",
    "text/latex": "_repr_latex_",
    "image/svg+xml": "_repr_svg_",
    "image/png": "_repr_png_",
    "image/jpeg": "_repr_jpeg_",
    "image/gif": "_repr_gif_",
    "application/json": "_repr_json_",
    "application/javascript": "_repr_javascript_",
    "application/pdf": "_repr_pdf_",
}
_WIDTH = 79
_MAX_ITEMS = 1000
_CONTAINERS = (list, tuple, set, frozenset, dict)


class CapsulePrinter:
    """What a capsule's ``_repr_pretty_(p, cycle)`` receives: IPython's printer API over a
    list of text, with no tables and no reference to anything outside the capsule."""

    __slots__ = ("_parts", "_indent", "_seen", "output_width", "max_width", "newline")

    def __init__(self, seen=()):
        self._parts: list[str] = []
        self._indent = 0
        self._seen = list(seen)
        self.output_width = 0
        self.max_width = _WIDTH
        self.newline = "\n"

    def text(self, obj) -> None:
        self._parts.append(_exact_text(obj))

    def breakable(self, sep=" ") -> None:
        self._parts.append(_exact_text(sep))

    def break_(self) -> None:
        self._parts.append("\n" + " " * self._indent)

    def begin_group(self, indent=0, open="") -> None:  # noqa: A002 - IPython's signature
        self._indent += indent if type(indent) is int else 0
        if open:
            self.text(open)

    def end_group(self, dedent=0, close="") -> None:
        self._indent -= dedent if type(dedent) is int else 0
        if close:
            self.text(close)

    @contextlib.contextmanager
    def group(self, indent=0, open="", close=""):  # noqa: A002
        self.begin_group(indent, open)
        try:
            yield
        finally:
            self.end_group(indent, close)

    @contextlib.contextmanager
    def indent(self, indent):
        self._indent += indent if type(indent) is int else 0
        try:
            yield
        finally:
            self._indent -= indent if type(indent) is int else 0

    def pretty(self, obj) -> None:
        self._parts.append(text_of(obj, self._seen))

    def flush(self) -> None:
        pass

    def getvalue(self) -> str:
        return "".join(self._parts)


guard.share_class(CapsulePrinter)


def _exact_text(value) -> str:
    if type(value) is str:
        return value
    if isinstance(value, str):
        return "".join([value])
    raise CapsuleTypeError("the printer takes text", "builtins")


def _own_method(obj, name):
    """``obj.name`` when ``obj`` is the capsule's own and has it (capsule code runs here,
    called with nothing of ours), else None."""
    if not guard.is_own(obj):
        return None
    try:
        method = getattr(obj, name, None)
    except Exception:  # noqa: BLE001 - a capsule descriptor may raise
        return None
    return method if callable(method) else None


def text_of(obj, seen=()) -> str:
    """The text/plain form of a capsule value (IPython's pretty style: one line when it fits
    in 79 columns, else one item per line)."""
    seen = list(seen)
    if any(obj is s for s in seen):
        return _cycle_text(obj)
    if is_plain(obj):
        return plain_result(repr(obj))
    tp = type(obj)
    if tp is Proxy:
        return _proxy_text(obj)
    if tp in _CONTAINERS:
        return _container_text(obj, seen + [obj])
    pretty = _own_method(obj, "_repr_pretty_")
    if pretty is not None:
        printer = CapsulePrinter(seen + [obj])
        pretty(printer, False)
        return printer.getvalue()
    try:
        text = repr(obj)
    except CapabilityError:
        raise  # a refusal while formatting is the cell's error, as any refusal is
    except Exception as e:  # noqa: BLE001 - a failing repr is shown, not raised
        return f"<{tp.__name__} object (repr failed: {type(e).__name__})>"
    return _exact_text(text) if isinstance(text, str) else f"<{tp.__name__} object>"


def _cycle_text(obj) -> str:
    tp = type(obj)
    if tp is list:
        return "[...]"
    if tp is tuple:
        return "(...)"
    if tp is dict:
        return "{...}"
    return f"<{tp.__name__}...>"


def _container_text(obj, seen) -> str:
    tp = type(obj)
    if tp is dict:
        items = list(dict.items(obj))[:_MAX_ITEMS]
        parts = [f"{text_of(k, seen)}: {text_of(v, seen)}" for k, v in items]
        more = len(obj) > _MAX_ITEMS
        return _join(parts, "{", "}", more, empty="{}")
    values = list(tp.__iter__(obj))[:_MAX_ITEMS]
    parts = [text_of(v, seen) for v in values]
    more = len(obj) > _MAX_ITEMS
    if tp is list:
        return _join(parts, "[", "]", more, empty="[]")
    if tp is tuple:
        if len(parts) == 1:
            return f"({parts[0]},)"
        return _join(parts, "(", ")", more, empty="()")
    if tp is set:
        return _join(sorted(parts), "{", "}", more, empty="set()")
    return _join(sorted(parts), "frozenset({", "})", more, empty="frozenset()")


def _join(parts, open_, close, more, empty) -> str:
    if not parts:
        return empty
    if more:
        parts = parts + ["..."]
    flat = open_ + ", ".join(parts) + close
    if len(flat) <= _WIDTH and "\n" not in flat:
        return flat
    pad = " " * len(open_)
    body = (",\n" + pad).join(p.replace("\n", "\n" + pad) for p in parts)
    return open_ + body + close


def _proxy_text(proxy) -> str:
    ctx = tripwire.current_context() or _HOST_CONTEXT.get("context")
    fmt = getattr(ctx, "trusted_format", None) if ctx is not None else None
    if fmt is not None:
        data, _ = fmt(target_of(proxy), None, None)
        text = data.get("text/plain") if type(data) is dict else None
        if type(text) is str:
            return text
    return repr(proxy)


#: The context a host formats for when no capsule frame is on the stack (the host formats a
#: cell's result after the cell ran): set around the call by :func:`bundle_for`.
_HOST_CONTEXT: dict = {}


def bundle_for(value, context, include=None, exclude=None) -> tuple[dict, dict]:
    """The MIME bundle of a capsule value: ``({mime: str | bytes}, {mime: metadata})``.

    Runs capsule methods (``_repr_*_``); call it as the capsule's own formatting, never with
    anything of trusted code's but the value itself."""
    previous = _HOST_CONTEXT.get("context")
    _HOST_CONTEXT["context"] = context
    context.running += 1  # the host shows this value in the cell that asked: its output
    try:
        return _bundle(value, context, _mimes(include), _mimes(exclude))
    finally:
        context.running -= 1
        _HOST_CONTEXT["context"] = previous


def _mimes(value):
    if value is None:
        return None
    if isinstance(value, str):
        return {"".join([value])}
    return {"".join([m]) for m in value if isinstance(m, str)}


def _wanted(mime, include, exclude) -> bool:
    return (include is None or mime in include) and (exclude is None or mime not in exclude)


def _bundle(value, context, include, exclude):
    data: dict = {}
    metadata: dict = {}
    fmt = getattr(context, "trusted_format", None)
    if type(value) is Proxy:
        if fmt is not None:
            return fmt(target_of(value), include, exclude)
        return {"text/plain": repr(value)}, {}
    own = guard.is_own(value)
    if own:
        show = _own_method(value, "_ipython_display_")
        if show is not None:
            show()  # it displays itself (through the capsule's display)
            return {}, {}
        bundle = _own_method(value, "_repr_mimebundle_")
        if bundle is not None:
            result = bundle(
                include=sorted(include) if include else None,
                exclude=sorted(exclude) if exclude else None,
            )
            got, md = result if type(result) is tuple and len(result) == 2 else (result, {})
            _merge(data, metadata, got, md, include, exclude)
        for mime, name in REPR_METHODS.items():
            if mime in data or not _wanted(mime, include, exclude):
                continue
            method = _own_method(value, name)
            if method is None:
                continue
            result = method()
            got, md = result if type(result) is tuple and len(result) == 2 else (result, None)
            _merge(data, metadata, {mime: got}, {mime: md} if md else {}, include, exclude)
    elif (
        not (is_plain(value) or type(value) in _CONTAINERS)
        and fmt is not None
        and (_library_object(value))
    ):
        # A trusted object the capsule made through a library: its rich types from the host
        # (IPython's formatter, matplotlib's figure printer), its text below.
        got, md = fmt(value, include, (exclude or set()) | {"text/plain"})
        _merge(data, metadata, got, md, include, exclude)
    if _wanted("text/plain", include, exclude):
        data["text/plain"] = text_of(value)
    return data, metadata


def _library_object(value) -> bool:
    """Whether the host formatter may be given ``value``: an object of a library's class.
    Builtin and standard-library objects have no rich display of their own, and some
    delegate attribute lookups to what they wrap -- ``super(A, a)``, an ``lru_cache``
    wrapper (it copies the function's ``__dict__``), a typing alias (``G[int]._repr_html_``
    is ``G``'s) -- so IPython's formatter called the capsule's ``_repr_html_`` outside the
    capsule (red team 10): those show as text."""
    module = type.__dict__["__module__"].__get__(type(value))
    return type(module) is str and module.partition(".")[0] not in _BUILTIN_TOPS


_BUILTIN_TOPS = frozenset(sys.stdlib_module_names) | {"builtins"}


def _merge(data, metadata, got, md, include, exclude) -> None:
    """Copy what a repr method or the host returned, keeping exact str/bytes values only."""
    if type(got) is not dict:
        return
    for mime, value in dict.items(got):
        if not isinstance(mime, str):
            continue
        mime = "".join([mime])
        if not _wanted(mime, include, exclude):
            continue
        if isinstance(value, str):
            data[mime] = "".join([value])
        elif isinstance(value, (bytes, bytearray)):
            data[mime] = bytes(memoryview(value))
        elif mime == "application/json" and is_plain(value):
            data[mime] = value
        else:
            continue
        entry = dict.get(md, mime) if type(md) is dict else None
        if entry is not None:
            metadata[mime] = entry


# -- what the capsule calls ----------------------------------------------------------------
class CapsuleDisplayHandle:
    """What ``display(obj, display_id=True)`` returns in a capsule: updates its own output."""

    __slots__ = ("display_id",)

    def __init__(self, display_id):
        self.display_id = _exact_text(display_id)

    def display(self, obj, **kwargs):
        display(obj, display_id=self.display_id, **kwargs)

    def update(self, obj, **kwargs):
        update_display(obj, display_id=self.display_id, **kwargs)

    def __repr__(self):
        return f"<CapsuleDisplayHandle display_id={self.display_id}>"


guard.share_class(CapsuleDisplayHandle)
_next_id = [0]


def _context():
    """The context whose cell this output goes to, or None (no host: text to stdout).

    Output authority is the running cell's (while its capsule runs, or while the host
    formats a value for the cell that shows it): a capsule function exported and called from
    a later cell, a callback or a ``__del__`` after the cell ended would otherwise add to, or
    clear, the output of whichever cell runs then (the host publishes into the current
    cell).  Refused rather than re-routed: the later cell did not ask for capsule output, and
    it can display what the function returns."""
    ctx = tripwire.current_context()
    if ctx is None or getattr(ctx, "publish", None) is None:
        return None
    if not getattr(ctx, "running", 0):
        raise CapsulePermissionError(
            "rich output from capsule code whose cell has ended (a capsule's display and "
            "clear_output reach only the output of the cell that runs it)",
            "output filter",
            None,
            hint="return the value and display it in the cell that calls the function",
        )
    return ctx


def display(
    *objs,
    include=None,
    exclude=None,
    metadata=None,
    transient=None,
    display_id=None,
    raw=False,
    clear=False,
    update=False,
    **kwargs,
):
    """Show objects as rich output: formatted inside the capsule, published by the host
    through the output filter (capsule-safe ``IPython.display.display``)."""
    ctx = _context()
    if display_id is True:
        _next_id[0] += 1
        display_id = f"capsule-display-{_next_id[0]}"
    if display_id is not None:
        display_id = _exact_text(str(display_id))
    for obj in objs:
        if ctx is None:
            print(text_of(obj))
            continue
        if clear:
            ctx.clear_output(True)
        if raw:
            data, md = {}, {}
            _merge(data, md, obj, metadata or {}, None, None)
        else:
            data, md = bundle_for(obj, ctx, include, exclude)
        if type(metadata) is dict:
            for key, value in dict.items(metadata):
                if isinstance(key, str) and key in data and is_plain_json(value):
                    md["".join([key])] = value
        ctx.publish(data, md, display_id, update)
    if display_id is not None and not update:
        return CapsuleDisplayHandle(display_id)
    return None


def is_plain_json(value, depth=0) -> bool:
    tp = type(value)
    if value is None or tp in (bool, int, float, str):
        return True
    if depth > 10:
        return False
    if tp is dict:
        return all(type(k) is str and is_plain_json(v, depth + 1) for k, v in dict.items(value))
    if tp in (list, tuple):
        return all(is_plain_json(v, depth + 1) for v in value)
    return False


def update_display(obj, *, display_id, **kwargs):
    """Update the output a capsule made with ``display(..., display_id=...)``."""
    kwargs.pop("update", None)
    display(obj, display_id=display_id, update=True, **kwargs)


def clear_output(wait=False):
    """Clear the output of the current cell (only what the capsule's cell shows)."""
    ctx = _context()
    if ctx is not None:
        ctx.clear_output(bool(wait) if type(wait) is bool else False)


modules.DISPLAY_STAND_INS.update(
    display=display,
    update_display=update_display,
    clear_output=clear_output,
    DisplayHandle=CapsuleDisplayHandle,
)
