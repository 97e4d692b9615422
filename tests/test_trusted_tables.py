# ruff: noqa: UP006 - typing.List on purpose (a shared typing alias)
"""Trusted tables a capsule could fill or read raw (issue 11, I2/I3): object-keyed
registries and caches of the standard library, class-level tables of shared classes,
module-level mutable objects.  Each table below is reviewed (SECURITY.md, "Trusted tables");
the scans fail on a table of a capsule-reachable module that the review has not classified.
"""

from __future__ import annotations

import calendar
import collections
import decimal
import importlib
import re
import subprocess
import sys
import types
import typing
import warnings
import weakref

import pytest

from ipycap import Capsule, Registry
from ipycap.engine import modules, rules
from ipycap.engine.errors import CapabilityError
from ipycap.engine.policy import CapsulePolicy

_POLICY = CapsulePolicy()


def _reachable_modules():
    names = sorted(set(_POLICY.default_imports) | set(_POLICY.grantable_stdlib))
    out = []
    for name in names:
        if name in modules.SPECIAL_MODULES or _POLICY.import_tier(name) in ("denied", "internal"):
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                out.append((name, importlib.import_module(name)))
            except ImportError:
                continue
    return out


def run(source, imports=()):
    capsule = Capsule(registry=Registry(), grants=[("import", m) for m in imports])
    return capsule.run(source)


# == the review: each listed table, what a capsule meets ======================================
#: table -> (capsule source, grants, the refusal it meets); the source tries to put a capsule
#: object into the table or to read it raw.
REVIEWED = {
    "copyreg.dispatch_table / extension registry (denied import)": (
        "import copyreg",
        (),
        ImportError,
    ),
    "copy.dispatch_table (read-only view of copyreg's)": (
        "import copy\ncopy.dispatch_table[int] = print",
        (),
        CapabilityError,  # the refusal (shared tables, sealed typing objects)
    ),
    "copy._deepcopy_dispatch (private)": (
        "import copy\ncopy._deepcopy_dispatch",
        (),
        AttributeError,
    ),
    "pickle's dispatch (denied import)": ("import pickle", (), ImportError),
    "abc caches (_abc_registry, private; register refused for shared ABCs)": (
        "import abc, collections.abc\nclass X: pass\ncollections.abc.Sequence.register(X)",
        ("abc",),
        TypeError,
    ),
    "typing._caches (private)": ("import typing\ntyping._caches", (), AttributeError),
    "typing._tp_cache (private)": ("import typing\ntyping._tp_cache", (), AttributeError),
    "typing alias writes (forwarded to the origin class)": (
        "import typing\ntyping.Counter.most_common = print",
        (),
        CapabilityError,  # the refusal (shared tables, sealed typing objects)
    ),
    "enum member maps (snapshots)": (
        "import re\nre.RegexFlag._value2member_map_[99] = 1",
        (),
        TypeError,
    ),
    "re compile cache (private; string keys)": ("import re\nre._cache", (), AttributeError),
    "json default encoder (private)": ("import json\njson._default_encoder", (), AttributeError),
    "json encoder classes (frozen)": (
        "import json\njson.JSONEncoder.default = print",
        (),
        TypeError,
    ),
    "warnings registry/onceregistry (internal module)": ("import warnings", (), ImportError),
    "linecache (denied import)": ("import linecache", (), ImportError),
    "io.text_encoding (not in the io stand-in)": (
        "import io\nio.text_encoding",
        (),
        AttributeError,
    ),
    "codecs registry (denied import)": ("import codecs", (), ImportError),
    "encodings search (internal module)": ("import encodings", (), ImportError),
    "locale (internal module)": ("import locale", (), ImportError),
    "pprint dispatch (read-only)": (
        "import pprint\npprint.PrettyPrinter._dispatch[int] = print",
        (),
        CapabilityError,  # the refusal (shared tables, sealed typing objects)
    ),
    "functools.singledispatch of trusted functions (private registries)": (
        "import functools\nfunctools._find_impl",
        (),
        AttributeError,
    ),
    "class-level tables of shared classes (snapshots)": (
        "import calendar\ncalendar.HTMLCalendar.cssclasses.append(1)",
        (),
        AttributeError,
    ),
}


@pytest.mark.parametrize("table", sorted(REVIEWED))
def test_reviewed_table_is_out_of_a_capsules_reach(table):
    source, grants, refusal = REVIEWED[table]
    with pytest.raises(refusal):
        run(source, grants)


def test_a_capsules_own_singledispatch_registry_is_its_own():
    got = run(
        "import functools\n@functools.singledispatch\ndef f(x):\n    return 'any'\n"
        "@f.register\ndef _(x: int):\n    return 'int'\n[f(1), f('a')]"
    )
    assert got == ["int", "any"]


# == class-level tables of shared classes ======================================================
_MUTABLE = (dict, list, set, bytearray, collections.deque, weakref.WeakKeyDictionary,
            weakref.WeakValueDictionary, weakref.WeakSet)  # fmt: skip


def _class_tables():
    found = set()
    for modname, module in _reachable_modules():
        for name in dir(module):
            if name[:1] == "_":
                continue
            cls = getattr(module, name, None)
            if not isinstance(cls, type):
                continue
            for base in cls.__mro__:
                for attr, value in vars(base).items():
                    if not rules.is_dunder(attr) and isinstance(value, _MUTABLE):
                        found.add((f"{modname}.{name}", attr))
    return found


def test_every_class_level_table_of_a_reachable_class_is_classified():
    unclassified = sorted(f"{c}.{a}" for c, a in _class_tables() if a not in rules.CLASS_TABLES)
    assert not unclassified, (
        "class-level mutable tables of capsule-reachable classes, not in rules.CLASS_TABLES "
        f"(review each: SECURITY.md, 'Trusted tables'): {unclassified}"
    )
    assert _class_tables(), "the scan found nothing: it no longer sees the tables"


@pytest.mark.parametrize(
    "source",
    [
        "import calendar\ncalendar.HTMLCalendar.cssclasses",
        "import calendar\ncalendar.HTMLCalendar().cssclasses_weekday_head",
        "import calendar\ngetattr(calendar.HTMLCalendar, 'cssclasses')",
        "import operator, calendar\noperator.attrgetter('cssclasses')(calendar.HTMLCalendar)",
        "import calendar\nclass H(calendar.HTMLCalendar):\n    pass\nH.cssclasses",
        "import re\nre.RegexFlag._member_names_",
        "import re\nre.RegexFlag._member_map_",
        "import textwrap\ntextwrap.TextWrapper.unicode_whitespace_trans",
        "import difflib\ndifflib.Match._field_defaults",
    ],
)
def test_class_tables_reach_a_capsule_as_read_only_copies(source):
    got = run(source)
    assert type(got) in (tuple, types.MappingProxyType)


def test_a_capsules_own_tables_stay_its_own():
    got = run(
        "import enum, calendar\nclass C(enum.Enum):\n    A = 1\n"
        "C._value2member_map_[5] = C.A\n"
        "class H(calendar.HTMLCalendar):\n    cssclasses = ['a']\nH.cssclasses.append('b')\n"
        "[C(5) is C.A, H.cssclasses]"
    )
    assert got == [True, ["a", "b"]]


def test_trusted_tables_are_unchanged_after_the_attempts():
    assert calendar.HTMLCalendar.cssclasses == ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    assert 99 not in re.RegexFlag._value2member_map_
    assert collections.Counter("aab").most_common(1) == [("a", 2)]
    assert typing.List._name == "List"


# == module-level mutable objects ===============================================================
#: Module-level objects that are neither classes, functions, modules nor immutable values,
#: by type: why a capsule holding one cannot change what trusted code computes.
MODULE_OBJECTS = {
    "typing._SpecialGenericAlias": "typing alias: writes refused (stdlib_guards._alias_setattr)",
    "typing._CallableType": "typing alias: writes refused",
    "typing._TupleType": "typing alias: writes refused",
    "typing._SpecialForm": "typing special form: writes refused (stdlib_guards)",
    "typing._LiteralSpecialForm": "typing special form: writes refused",
    "typing.TypeVar": "module-level TypeVars (AnyStr, T, KT...): slots only, read by typing",
    "typing.ParamSpec": "as TypeVar",
    "decimal.Context": "template contexts: each capsule view gets its own copy (PER_CAPSULE)",
    "calendar._localized_day": "attribute writes refused by the guard ('format')",
    "calendar._localized_month": "attribute writes refused by the guard ('format')",
    "dataclasses._MISSING_TYPE": "a sentinel compared by identity; attributes unused",
    "dataclasses._KW_ONLY_TYPE": "a sentinel compared by identity; attributes unused",
    "datetime.timezone": "immutable",
    "builtins.PyCapsule": "datetime's C API capsule: unusable without ctypes (denied)",
    "typing._Final": "typing internals: slots only",
    "uuid.UUID": "immutable (its __setattr__ refuses)",
    "unicodedata.UCD": "a C object without settable attributes",
}


def _module_objects():
    immutable = (int, float, complex, str, bytes, bool, type(None), tuple, frozenset, range,
                 re.Pattern, types.MappingProxyType)  # fmt: skip
    found = {}
    for modname, module in _reachable_modules():
        for name in dir(module):
            if name[:1] == "_" or (modname, name) in modules.MODULE_OVERRIDES:
                continue
            value = getattr(module, name, None)
            if isinstance(value, (type, types.ModuleType, types.FunctionType,
                                  types.BuiltinFunctionType, types.MethodType) + immutable):  # fmt: skip
                continue
            if type(value) in (dict, list, set, bytearray):
                continue  # module views hand out read-only snapshots (modules._read_only_container)
            import enum

            if isinstance(value, enum.Enum):
                continue
            tp = type(value)
            found.setdefault(f"{tp.__module__}.{tp.__qualname__}", []).append(f"{modname}.{name}")
    return found


def test_every_module_level_mutable_object_is_classified():
    found = _module_objects()
    unclassified = {k: v for k, v in found.items() if k not in MODULE_OBJECTS}
    assert not unclassified, f"review these module-level objects: {unclassified}"
    # The scan sees module-level instances (decimal's template contexts are overrides now,
    # per capsule, so they are not among them; calendar's localized names are).
    assert "calendar._localized_day" in found


def test_decimal_template_contexts_are_per_capsule():
    before = decimal.DefaultContext.prec, decimal.BasicContext.traps[decimal.Inexact]
    got = run(
        "import decimal\ndecimal.DefaultContext.prec = 5\n"
        "decimal.BasicContext.traps[decimal.Inexact] = True\n"
        "decimal.DefaultContext.prec"
    )
    assert got == 5  # the capsule's copy keeps its change
    assert (decimal.DefaultContext.prec, decimal.BasicContext.traps[decimal.Inexact]) == before
    assert run("import decimal\ndecimal.DefaultContext.prec") == before[0]  # another capsule


def test_plain_python_changes_the_trusted_tables():
    # what the payloads above would do outside a capsule: the tables are shared
    saved = calendar.HTMLCalendar.cssclasses[:]
    try:
        ns: dict = {}
        exec("import calendar\ncalendar.HTMLCalendar.cssclasses.append('spy')", ns)
        assert calendar.HTMLCalendar.cssclasses[-1] == "spy"
    finally:
        calendar.HTMLCalendar.cssclasses[:] = saved
    # the alias writes onto the trusted class (in a fresh interpreter: here ipycap may have
    # frozen collections.Counter already, for capsules that read it through a view)
    code = (
        "import collections, typing\n"
        "typing.Counter.most_common = lambda self, n=None: 'SPY'\n"
        "print(collections.Counter('aab').most_common())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "SPY"
    saved_prec = decimal.DefaultContext.prec
    try:
        exec("import decimal\ndecimal.DefaultContext.prec = 5", {})
        assert decimal.DefaultContext.prec == 5
    finally:
        decimal.DefaultContext.prec = saved_prec
