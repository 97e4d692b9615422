"""What crosses the membrane unchanged, and plain copies of builtin values."""

from __future__ import annotations

import datetime
import decimal
import fractions

_PRIMITIVES = frozenset(
    {int, float, complex, str, bytes, bool, type(None), type(...), type(NotImplemented)}
)
#: Immutable value types whose every field is plain data: they cross unchanged in both
#: directions.
VALUES = _PRIMITIVES | {
    range,
    datetime.date,
    datetime.timedelta,
    datetime.timezone,
    decimal.Decimal,
    fractions.Fraction,
}
#: Value types with fields that can hold any object (``slice(obj)``, ``datetime(...,
#: tzinfo=obj)``): plain only when their fields are.  A capsule object inside one is still a
#: capsule object, and a trusted object inside one is still trusted (I2).
FIELDED = frozenset({slice, datetime.datetime, datetime.time})
_timezone = datetime.timezone
_MUTATING = {
    list: {"append", "extend", "insert", "pop", "remove", "clear", "sort", "reverse"},
    dict: {"pop", "popitem", "clear", "update", "setdefault"},
    set: {
        "add",
        "discard",
        "remove",
        "pop",
        "clear",
        "update",
        "difference_update",
        "intersection_update",
        "symmetric_difference_update",
    },
    bytearray: {"append", "extend", "insert", "pop", "remove", "clear", "reverse"},
}


def is_plain(value) -> bool:
    """Whether ``value`` is immutable data all the way down (it may cross unchanged)."""
    tp = type(value)
    if tp in VALUES:
        return True
    if tp is tuple or tp is frozenset:
        return all(is_plain(v) for v in value)
    if tp is slice:
        return is_plain(value.start) and is_plain(value.stop) and is_plain(value.step)
    if tp is datetime.datetime or tp is datetime.time:
        return value.tzinfo is None or type(value.tzinfo) is _timezone
    return False


def plain_result(result):
    tp = type(result)
    if tp is str or tp is int or tp is bool or tp is float or tp is bytes:
        return result
    if isinstance(result, str):
        return "".join([result])
    if isinstance(result, bool):
        return bool(result)
    if isinstance(result, int):
        return int.__add__(result, 0)
    if isinstance(result, float):
        return float.__add__(result, 0.0)
    if isinstance(result, bytes):
        return bytes(memoryview(result))
    return result
