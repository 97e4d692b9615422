"""Big-int ``**`` and ``<<`` in capsule code: pre-checked, because C cannot be interrupted.

``10 ** 10 ** 9`` or ``1 << 10 ** 12`` is one C call: the cell's ``--timeout`` cannot stop it
and it allocates its whole result at the end.  The gate rewrites ``a ** b`` and ``a << b``
(and ``**=``/``<<=`` on a name) whose right operand is not a small constant into these
functions, and the capsule's ``pow`` is :func:`checked_pow`.  When both operands are ints,
the size of the result is estimated first (a lower bound: ``(bit_length(a) - 1) * b`` bits
for a power, ``bit_length(a) + b`` for a shift) and a result over :data:`INT_RESULT_CAP`
bytes, or over the cell's ``--max-memory``, is refused before any work is done.  Anything
else (floats, arrays, the capsule's own classes) is the plain operator.

Not checked (listed in ipycap/engine/limits.py): ``a.__pow__(b)`` and ``operator.pow``
called explicitly, ``x.attr **= n`` and ``x[i] **= n``, and a capsule ``int`` subclass's own
``__pow__``.
"""

from __future__ import annotations

import operator

from .errors import CapabilityError

#: The largest int one capsule ``**``/``<<`` may compute (bytes): about 160 million digits,
#: a few seconds of C multiplication.  ``--max-memory`` lowers it.
INT_RESULT_CAP = 64 << 20
#: Below this size no limit is consulted (the fast path).
_SMALL_BITS = 8 << 20


class IntResultTooLarge(CapabilityError, MemoryError):
    """An int operation whose result would be over the bound."""


#: Set by ipycap/engine/limits.py (which builds on the guard, which builds on this module):
#: the running cell's --max-memory (or None), and how sizes are written.
cell_memory_limit = lambda: None  # noqa: E731
format_size = "{}B".format


def _bound_bytes() -> int:
    memory = cell_memory_limit()
    return min(INT_RESULT_CAP, memory) if memory else INT_RESULT_CAP


def _check(bits: int, what: str) -> None:
    if bits <= _SMALL_BITS:
        return
    bound = _bound_bytes()
    if bits // 8 > bound:
        raise IntResultTooLarge(
            f"{what} would compute an int of at least {format_size(bits // 8)}, over the "
            f"bound of {format_size(bound)} for one int operation (C code that no timeout "
            "can stop)",
            "limits",
            None,
            hint="pow(a, b, mod) computes modular powers without the huge int",
        )


def _is_int(x) -> bool:
    return type(x) is int or type(x) is bool


def checked_pow(base, exp, mod=None):
    """The capsule's ``pow`` and ``**``."""
    if mod is None and _is_int(base) and _is_int(exp) and exp > 1:
        _check((abs(base).bit_length() - 1) * exp, "a ** b")
    return pow(base, exp, mod)


def checked_ipow(base, exp):
    """``x **= y``."""
    if _is_int(base) and _is_int(exp) and exp > 1:
        _check((abs(base).bit_length() - 1) * exp, "a **= b")
    return operator.ipow(base, exp)


def checked_lshift(a, n):
    """``a << n``."""
    if _is_int(a) and _is_int(n) and n > 0 and a:
        _check(abs(a).bit_length() + n, "a << n")
    return a << n


def checked_ilshift(a, n):
    """``a <<= n``."""
    if _is_int(a) and _is_int(n) and n > 0 and a:
        _check(abs(a).bit_length() + n, "a <<= n")
    return operator.ilshift(a, n)


#: The names the gate's rewrites call (capsule builtins).
HOOKS = {
    "_ipycap_pow": checked_pow,
    "_ipycap_ipow": checked_ipow,
    "_ipycap_lshift": checked_lshift,
    "_ipycap_ilshift": checked_ilshift,
}
