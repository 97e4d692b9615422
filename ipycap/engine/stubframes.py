"""The host's traceback of a capsule exception holds stand-in frames, not the capsule's.

A traceback keeps its frames, and a frame keeps everything its code could reach: its locals,
its function (defaults, closure), its globals (the cell's namespace).  The host keeps a failed
cell's traceback long after the cell (``sys.last_traceback``, the error IPython shows, the
extension's ``last_error``), so every object of the failed cell stayed alive until the next
error, and was freed then -- its finalizers (``__del__``, a generator's ``finally``: capsule
code) running on the main thread, outside the cell's limits -- and any trusted reader of frame
locals (a ``capture_locals`` formatter, a post-mortem tool) had the capsule's objects to call.

:func:`stub_traceback` rebuilds a capsule traceback from *stand-in frames*: one suspended
generator per entry, whose code has the capsule frame's file name, function name and line (so
the source listing, ``%debug``'s navigation and IPython's printer show the same thing, carets
included), whose locals are the frame's plain variables only (``membrane.is_plain``), whose
globals are the plain globals and nothing else, and whose ``f_back`` is None (a suspended
generator's).  :func:`retire` then clears the capsule's own frames and drops the capsule
exception's tracebacks, so what the failed cell held is freed at once -- where the caller runs
it, which is under the cell's limits (``after.host_error``).
"""

from __future__ import annotations

import gc
import sys
import types
import weakref
from keyword import iskeyword

from .membrane import is_plain

_SHAPES: dict = {}


class _NotShown:
    """What a stand-in frame holds for an argument that was not plain data."""

    __slots__ = ()

    def __repr__(self):
        return "<not shown>"


NOT_SHOWN = _NotShown()

#: Flags of code whose frame belongs to a generator: clearing one would close it, running its
#: ``finally`` (a capsule may still hold and resume it).
_GENERATOR_FLAGS = 0x20 | 0x80 | 0x100 | 0x200  # GENERATOR COROUTINE ITERABLE_COROUTINE ASYNC_GEN

#: A stand-in frame's key in its globals for the generators that keep the stand-ins suspended
#: (not an identifier: no name a debugger is asked for can reach it).
_KEEP = "<ipycap stand-in frames>"

#: The argument names of the capsule frame each stand-in code stands in for (``%debug``'s
#: ``args``): the stand-in's own parameters are only the plain locals.
ARGUMENTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _varint(value: int) -> bytes:
    out = bytearray()
    while value >= 64:
        out.append(0x40 | (value & 0x3F))
        value >>= 6
    out.append(value)
    return bytes(out)


def _svarint(value: int) -> bytes:
    return _varint((-value << 1) | 1 if value < 0 else value << 1)


def _linetable(position, units: int) -> bytes:
    """A 3.11 location table giving each of ``units`` instructions ``position`` (line, end
    line, column, end column), relative to a first line equal to ``line``."""
    line, end_line, col, end_col = position
    table = bytearray()
    left = units
    while left:  # entries of up to 8 code units, each on the first line (line delta 0)
        size = min(left, 8)
        if col is None or end_col is None or end_line is None:
            table.append(0x80 | (13 << 3) | (size - 1))  # line only
            table += _svarint(0)
        else:
            table.append(0x80 | (14 << 3) | (size - 1))  # long form
            table += _svarint(0) + _varint(end_line - line) + _varint(col + 1)
            table += _varint(end_col + 1)
        left -= size
    return bytes(table)


def _position(code, lasti: int, lineno: int):
    try:
        position = list(code.co_positions())[lasti // 2]
    except (IndexError, ValueError, TypeError):
        return lineno, lineno, None, None
    line, end_line, col, end_col = position
    if line != lineno or end_line is None or end_line < line:
        return lineno, lineno, None, None
    return position


def _shape(sig: tuple, names: tuple, dropped: tuple):
    """The code of ``def f(<args of code>): del <dropped>; <names> = yield; yield``, cached
    by shape: a generator with the capsule frame's signature; sent the values of ``names``,
    it suspends holding exactly these variables."""
    key = (sig, names, dropped)
    made = _SHAPES.get(key)
    if made is not None:
        return made
    posonly, pos, kwonly, flags, real = sig
    # Written with placeholder names, then given the real ones: a comprehension's ``.0``, any
    # name at all, compiles (the code refers to its variables by index).
    params = [f"_a{i}" for i in range(len(real))]
    gone = [params[real.index(d)] for d in dropped]
    values = [f"_v{i}" for i in range(len(names))]
    signature = params[:posonly] + (["/"] if posonly else []) + params[posonly:pos]
    rest = params[pos:]
    if flags & 0x04:
        signature.append("*" + rest[kwonly])
    elif kwonly:
        signature.append("*")
    signature += rest[:kwonly]
    if flags & 0x08:
        signature.append("**" + rest[-1])
    body = [f"del {', '.join(gone)}"] if gone else []
    if values:
        body.append(f"{', '.join(values)}, = yield")
    lines = [f"def f({', '.join(signature)}):"] + [" " + b for b in body] + [" yield"]
    inner = compile("\n".join(lines), "<ipycap>", "exec").co_consts[0]
    inner = inner.replace(co_varnames=(*real, *names))
    if len(_SHAPES) > 512:
        _SHAPES.clear()
    _SHAPES[key] = inner
    return inner


def _signature(code) -> tuple:
    """(positional-only, positional, keyword-only counts, the */** flags, their names)."""
    flags = code.co_flags & 0x0C
    count = code.co_argcount + code.co_kwonlyargcount + bool(flags & 0x04) + bool(flags & 0x08)
    return (
        code.co_posonlyargcount,
        code.co_argcount,
        code.co_kwonlyargcount,
        flags,
        code.co_varnames[:count],
    )


_BARE = (0, 0, 0, 0, ())


def _plain_locals(frame) -> dict:
    try:
        names = frame.f_locals
    except Exception:  # noqa: BLE001 - a frame we cannot read: no variables
        return {}
    if type(names) is not dict:
        return {}
    keep = {}
    for k, v in dict.items(names):
        if type(k) is str and k.isidentifier() and not iskeyword(k) and is_plain(v):
            keep[k] = v
    return keep


def _plain_globals(frame, made: dict) -> dict:
    """One stand-in globals dict per capsule globals dict: its plain entries only."""
    try:
        ns = frame.f_globals
    except Exception:  # noqa: BLE001
        ns = None
    key = id(ns)
    if key in made:
        return made[key][1]
    plain: dict = {"__builtins__": {}, _KEEP: []}
    if type(ns) is dict:
        for k, v in dict.items(ns):
            if type(k) is str and k.isidentifier() and k != "__builtins__" and is_plain(v):
                plain[k] = v
    made[key] = (ns, plain)  # ns held while building: its id stays its own
    return plain


def _stand_in(tb, made: dict, bare: bool = False):
    frame = tb.tb_frame
    code = frame.f_code
    lineno = tb.tb_lineno if type(tb.tb_lineno) is int and tb.tb_lineno > 0 else 1
    local = {} if bare else _plain_locals(frame)
    sig = _BARE if bare else _signature(code)
    _, pos, kwonly, flags, params = sig
    names = tuple(k for k in local if k not in params)
    shape = _shape(sig, names, ())
    stub = shape.replace(
        co_firstlineno=lineno,
        co_filename=code.co_filename,
        co_name=code.co_name,
        co_qualname=code.co_qualname,
        co_linetable=_linetable(_position(code, tb.tb_lasti, lineno), len(shape.co_code) // 2),
    )
    ARGUMENTS[stub] = params
    g = _plain_globals(frame, made)
    fn = types.FunctionType(stub, g)
    # an argument that is not plain data is bound to NOT_SHOWN: the signature IPython's
    # printer shows (inspect.getargvalues) stays whole, and the debugger shows it as not plain
    args = [local.get(p, NOT_SHOWN) for p in params[:pos]]
    kwargs = {p: local.get(p, NOT_SHOWN) for p in params[pos : pos + kwonly]}
    if flags & 0x04 and type(local.get(params[pos + kwonly])) is tuple:
        args += local[params[pos + kwonly]]  # *args, when plain (else dropped: bound to ())
    gen = fn(*args, **kwargs)
    next(gen)  # to the (first) ``yield``: suspended, so f_back is None
    if names:
        gen.send(tuple(local[k] for k in names))
    g[_KEEP].append(gen)
    return gen.gi_frame, gen.gi_frame.f_lasti, lineno


def stub_traceback(tb):
    """``tb`` (a chain of capsule frames, :func:`capsule.capsule_traceback`) rebuilt from
    stand-in frames holding only plain data (see the module docstring)."""
    entries = []
    while tb is not None:
        entries.append(tb)
        tb = tb.tb_next
    made: dict = {}
    new = None
    for entry in reversed(entries):
        try:
            frame, lasti, lineno = _stand_in(entry, made)
        except Exception:  # noqa: BLE001 - a frame we cannot mirror: its place, no variables
            try:
                frame, lasti, lineno = _stand_in(entry, made, bare=True)
            except Exception:  # noqa: BLE001 - not even that: the entry is left out
                continue
        new = types.TracebackType(new, frame, lasti, lineno)
    return new


def _chain(exc):
    seen, todo = [], [exc]
    cause = BaseException.__dict__["__cause__"]
    context = BaseException.__dict__["__context__"]
    while todo:
        e = todo.pop()
        if not isinstance(e, BaseException) or any(e is s for s in seen):
            continue
        seen.append(e)
        todo += [cause.__get__(e), context.__get__(e)]
    return seen


def retire(exc, is_capsule_frame) -> None:
    """Free what ``exc`` (a capsule's exception, after the host's copy was made) holds
    through its tracebacks: clear the capsule's finished frames (not a generator's: that
    would close it) and drop every traceback of its cause/context chain; a cycle through the
    cell's namespace is collected here too.  Call it where the capsule's finalizers may run
    (under the cell's limits)."""
    tb_attr = BaseException.__dict__["__traceback__"]
    namespaces, frame = [], None
    for e in _chain(exc):
        tb = tb_attr.__get__(e)
        while tb is not None:
            frame = tb.tb_frame
            if is_capsule_frame(frame) and not frame.f_code.co_flags & _GENERATOR_FLAGS:
                if not any(frame.f_globals is n for n in namespaces):
                    namespaces.append(frame.f_globals)
                try:
                    frame.clear()
                except RuntimeError:  # still executing (another thread's): left as it is
                    pass
            tb = tb.tb_next
        tb_attr.__set__(e, None)
    del tb, frame
    # Each namespace: our list, getrefcount's argument; more is a cycle or another holder.
    if any(sys.getrefcount(n) > 3 for n in namespaces):
        namespaces.clear()
        gc.collect()


__all__ = ["ARGUMENTS", "NOT_SHOWN", "retire", "stub_traceback"]
