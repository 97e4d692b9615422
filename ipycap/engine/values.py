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
    decimal.Decimal,
}
#: Value types with fields that can hold any object (``slice(obj)``, ``datetime(...,
#: tzinfo=obj)``): plain only when their fields are.  A capsule object inside one is still a
#: capsule object, and a trusted object inside one is still trusted (I2).
FIELDED = frozenset(
    {slice, datetime.datetime, datetime.time, datetime.timezone, fractions.Fraction}
)
_timezone = datetime.timezone
_address = object.__hash__
_VALUE_BY_ADDRESS = {_address(t): t for t in VALUES}
_FIELDED_BY_ADDRESS = {_address(t): t for t in FIELDED}


def add_value_types(types) -> None:
    """Immutable scalar types of a granted library that carry nothing but their value
    (numpy's numeric scalars: ``df['a'].sum()``): they cross unchanged, like ``int``."""
    for tp in types:
        _VALUE_BY_ADDRESS[_address(tp)] = tp


def is_value_type(tp) -> bool:
    """``tp in VALUES`` by identity: a capsule metaclass's __hash__/__eq__ get no vote."""
    return _VALUE_BY_ADDRESS.get(_address(tp)) is tp


def is_fielded_type(tp) -> bool:
    """``tp in FIELDED`` by identity."""
    return _FIELDED_BY_ADDRESS.get(_address(tp)) is tp


def is_plain(value) -> bool:
    """Whether ``value`` is immutable data all the way down (it may cross unchanged)."""
    tp = type(value)
    if _VALUE_BY_ADDRESS.get(_address(tp)) is tp:
        return True
    if tp is tuple or tp is frozenset:
        return all(is_plain(v) for v in value)
    if tp is slice:
        return is_plain(value.start) and is_plain(value.stop) and is_plain(value.step)
    if tp is datetime.datetime or tp is datetime.time:
        return value.tzinfo is None or _plain_zone(value.tzinfo)
    if tp is _timezone:
        return _plain_zone(value)
    if tp is fractions.Fraction:
        # Fraction keeps what it was given (a capsule int subclass), in writable slots.
        return type(value.numerator) is int and type(value.denominator) is int
    return False


def _plain_zone(zone) -> bool:
    """A timezone keeps the name it was given, a str subclass included."""
    return type(zone) is _timezone and type(zone.tzname(None)) is str


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
