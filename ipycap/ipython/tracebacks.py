"""How a capsule's exception is shown: the one path both hosts format it through.

IPython's traceback printers run on the main thread with the notebook's authority, and they
touch what they print:

* the SyntaxError printer (``showsyntaxerror`` / ``SyntaxTB``) reads the line that the
  error's ``filename``/``lineno`` name, through ``linecache``, from any file on disk;
* the frame printers truth-test each frame's ``__tracebackhide__`` (``skip_hidden``) and, in
  the Verbose mode (``include_vars``), ``repr()`` the frame's locals and arguments;
* ``showsyntaxerror`` and the exception-group fallback read ``sys.exc_info()``, which in
  the capsule kernel's error path was the capsule's own exception, not the host's copy.

A capsule's frames hold capsule objects, so each of those ran capsule code (``__bool__``,
``__repr__``, a ``filename`` property) as trusted code, outside every limit.  Here a capsule
exception is shown only as its host copy (:func:`ipycap.engine.capsule.error_for_host`),
a SyntaxError keeps a location only in capsule source (``<capsule-...>``, the capsule's own
code), and frames are formatted with ``skip_hidden`` and ``include_vars`` off, whatever the
``%xmode``.  A failure while formatting is caught (:func:`run_catching`): it never runs
capsule code and never ends the cell.
"""

from __future__ import annotations

import builtins
import sys
import traceback

from ..engine import terminal
from ..engine.capsule import _CAPSULE_FILENAME
from ..engine.errors import CapsuleSyntaxError

#: The filenames capsule source is compiled under (``engine.gate.source_filename``), whole:
#: a prefix match would let ``<capsule-x/../../etc/passwd`` name a file on disk.
CAPSULE_FILENAME = _CAPSULE_FILENAME
_BUILTIN_SYNTAX = frozenset(
    tp for tp in vars(builtins).values() if isinstance(tp, type) and issubclass(tp, SyntaxError)
)
#: SyntaxError's C member descriptors: reading through them runs no Python code of a subclass
#: (a capsule subclass may define ``filename`` or ``lineno`` as properties).
_FIELD = {
    name: vars(SyntaxError)[name]
    for name in ("msg", "filename", "lineno", "offset", "text", "end_lineno", "end_offset")
    if name in vars(SyntaxError)
}
_END_FIELDS = tuple(n for n in ("end_lineno", "end_offset") if n in _FIELD)
_MRO = vars(type)["__mro__"]


def is_syntax_error(value) -> bool:
    """Whether ``value``'s type derives from SyntaxError, read from its type's MRO (an
    ``isinstance`` falls back to a capsule object's ``__class__``)."""
    return SyntaxError in _MRO.__get__(type(value))


def is_capsule_filename(filename) -> bool:
    return type(filename) is str and CAPSULE_FILENAME.match(filename) is not None


def _builtin_class(value) -> type:
    """The nearest builtin SyntaxError class of ``value``'s type (never a capsule class)."""
    for tp in _MRO.__get__(type(value)):
        if tp in _BUILTIN_SYNTAX:
            return tp
    return SyntaxError


def _field(value, name):
    try:
        return _FIELD[name].__get__(value)
    except Exception:  # noqa: BLE001 - not a SyntaxError's layout
        return None


_REFUSAL = ("what", "how", "hint")


def _text(value):
    return terminal.sanitize(value) if type(value) is str else None


def safe_syntax_error(value) -> SyntaxError:
    """A fresh builtin SyntaxError (of the nearest builtin class) with ``value``'s message,
    and its location only if that lies in capsule source.  Reads ``value`` only through
    SyntaxError's own C descriptors: no capsule code runs, whatever ``value`` is."""
    if not is_syntax_error(value):
        return SyntaxError("invalid syntax")
    tp = _builtin_class(value)
    msg = _field(value, "msg")
    msg = terminal.sanitize(msg) if type(msg) is str else "invalid syntax"
    filename = _field(value, "filename")
    lineno = _field(value, "lineno")
    offset = _field(value, "offset")
    text = _field(value, "text")
    located = is_capsule_filename(filename) and type(lineno) is int
    if type(value) is CapsuleSyntaxError:  # the gate's refusal (ipycap's class, plain fields)
        fields = {k: _text(object.__getattribute__(value, "__dict__").get(k)) for k in _REFUSAL}
        return CapsuleSyntaxError(
            fields["what"] or msg,
            fields["how"],
            filename=filename if located else None,
            lineno=lineno if located else None,
            col_offset=offset - 1 if located and type(offset) is int else None,
            text=_text(text) if located else None,
            hint=fields["hint"],
        )
    if not located:
        return tp(msg)
    details = [
        filename,
        lineno,
        offset if type(offset) is int else None,
        terminal.sanitize(text) if type(text) is str else None,
    ]
    for name in _END_FIELDS:
        item = _field(value, name)
        details.append(item if type(item) is int else None)
    try:
        return tp(msg, tuple(details))
    except Exception:  # noqa: BLE001 - an inconsistent end position
        return tp(msg, tuple(details[:4]))


def run_catching(fn, *args, fallback=None):
    """``fn(*args)``; if formatting fails, ``fallback`` (and the cell goes on)."""
    try:
        return fn(*args)
    except Exception:  # noqa: BLE001 - a broken exception must not break the cell
        return fallback


# -- frames ------------------------------------------------------------------------------------
def _formatter(shell):
    """A FormattedTB like the shell's (mode, theme, header), with ``skip_hidden`` and
    ``include_vars`` off: it never truth-tests a frame's ``__tracebackhide__`` nor repr()s
    a local."""
    from IPython.core.ultratb import FormattedTB

    itb = shell.InteractiveTB
    mode = getattr(itb, "mode", "Context")
    fmt = FormattedTB(
        mode=mode,
        theme_name=getattr(itb, "_theme_name", "nocolor"),
        tb_offset=0,
        long_header=getattr(itb, "long_header", False),
        check_cache=getattr(itb, "check_cache", None),
    )
    fmt.include_vars = False
    fmt.skip_hidden = False
    return fmt


def _docs_traceback(fmt, etype, value, tb) -> list[str]:
    from IPython.core.doctb import DocTB

    doc = DocTB(theme_name=fmt._theme_name, tb_offset=0, include_vars=False)
    doc.skip_hidden = False
    return doc.structured_traceback(etype, value, tb, 0, 1)


def capsule_structured_traceback(shell, etype, value, tb) -> list[str]:
    """The structured traceback of a capsule exception's host copy ``value``, as the
    shell's ``%xmode`` shows it but without reading any frame's locals."""
    if is_syntax_error(value):
        safe = safe_syntax_error(value)
        return shell.SyntaxTB.structured_traceback(type(safe), safe, [])
    fmt = _formatter(shell)
    if fmt.mode == "Docs":
        return _docs_traceback(fmt, etype, value, tb)
    return fmt.structured_traceback(etype, value, tb, tb_offset=0)


def _plain_lines(etype, value, tb) -> list[str]:
    try:
        return traceback.format_exception(etype, value, tb)
    except Exception:  # noqa: BLE001
        return [f"{getattr(etype, '__name__', 'Exception')}: <the exception cannot be shown>\n"]


def render_traceback(shell, etype, value, tb) -> list[str]:
    """``_render_traceback_`` of a host copy: :func:`capsule_structured_traceback`, or the
    plain lines of the host copy if IPython's printer fails (never the capsule's object)."""
    return run_catching(
        capsule_structured_traceback,
        shell,
        etype,
        value,
        tb,
        fallback=None,
    ) or _plain_lines(etype, value, tb)


def show_syntax_error(shell, value) -> None:
    """Show ``value`` (any SyntaxError, even a capsule's own object) as its safe copy, with
    no frames; sys.last_* hold the copy."""
    safe = safe_syntax_error(value)
    sys.last_type, sys.last_value, sys.last_traceback = type(safe), safe, None
    if sys.version_info >= (3, 12):
        sys.last_exc = safe
    stb = run_catching(shell.SyntaxTB.structured_traceback, type(safe), safe, []) or _plain_lines(
        type(safe), safe, None
    )
    shell._showtraceback(type(safe), safe, stb)


__all__ = [
    "CAPSULE_FILENAME",
    "capsule_structured_traceback",
    "is_capsule_filename",
    "render_traceback",
    "run_catching",
    "safe_syntax_error",
    "show_syntax_error",
]
