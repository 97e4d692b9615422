"""Process-wide state of default and grantable modules (I3), found by scanning them.

Two classes of deputy: module functions that write state every caller shares (a global,
a module-level table, an attribute of a module-level object), and module-level instances
trusted code keeps using.  Each scan fails on one that is not classified: overridden in
the capsule's view (modules.MODULE_OVERRIDES, deputies.OVERRIDES), sealed against capsule
writes (deputies.seal), immutable, or reviewed with a reason (deputies.REVIEWED).  The
behaviour tests then show the classified ones hold against a capsule.
"""

from __future__ import annotations

import calendar
import decimal
import dis
import enum
import functools
import importlib
import pkgutil
import re
import threading
import types
import typing

import pytest

from ipycap import Capsule
from ipycap.engine import deputies, modules, policy
from ipycap.engine.errors import CapabilityError
from tests.test_classfreeze import reach_all

_SKIP = {"sys", "IPython.display", "_pydecimal"}  # stand-ins; _pydecimal: not importable
_MUTATORS = frozenset(
    "append extend insert update setdefault pop popitem clear remove discard add "
    "appendleft __setitem__ __delitem__".split()
)
_INERT = (type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType)
_IMMUTABLE = (int, float, complex, str, bytes, tuple, frozenset, type(None))


def _grantable_modules() -> dict:
    """Every default and grantable stdlib module, with the submodules of packages."""
    found = {}
    names = [n for n in policy.DEFAULT_IMPORTS + policy.GRANTABLE_STDLIB]
    for name in names:
        if name in _SKIP or name in policy.STAND_IN_MODULES:
            continue
        module = importlib.import_module(name)
        found[name] = module
        for info in pkgutil.walk_packages(getattr(module, "__path__", []), name + "."):
            try:
                found[info.name] = importlib.import_module(info.name)
            except ImportError:  # optional parts (e.g. a missing C accelerator)
                pass
    return found


def _codes(code):
    yield code
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _codes(const)


def _process_writes(fn) -> set:
    """What ``fn`` (or a function nested in it) writes that every caller shares."""
    g = fn.__globals__
    found = set()
    for code in _codes(fn.__code__):
        ins = list(dis.get_instructions(code))
        for i, op in enumerate(ins):
            if op.opname in ("STORE_GLOBAL", "DELETE_GLOBAL"):
                found.add(f"global {op.argval}")
            if op.opname != "LOAD_GLOBAL" or op.argval not in g:
                continue
            value = g[op.argval]
            if isinstance(value, (dict, list, set)):
                nxt = ins[i + 1] if i + 1 < len(ins) else None
                if nxt is not None and nxt.opname in ("LOAD_METHOD", "LOAD_ATTR"):
                    if nxt.argval in _MUTATORS:
                        found.add(f"{op.argval}.{nxt.argval}()")
                if any(o.opname in ("STORE_SUBSCR", "DELETE_SUBSCR") for o in ins[i : i + 16]):
                    found.add(f"{op.argval}[...] =")
            elif not isinstance(value, _INERT + _IMMUTABLE):
                for o in ins[i + 1 : i + 4]:  # 'c.firstweekday = x' on a module-level object
                    if o.opname in ("STORE_ATTR", "DELETE_ATTR"):
                        found.add(f"{op.argval}.{o.argval} =")
                        break
                    if o.opname.startswith(("LOAD_", "CALL")) and o.opname != "LOAD_CONST":
                        break
    return found


def _classified(modname: str, name: str) -> bool:
    key = (modname, name)
    return key in modules.MODULE_OVERRIDES or key in deputies.REVIEWED


def test_every_process_wide_setter_of_a_grantable_module_is_classified():
    """A public function of a default or grantable module that writes a global, a
    module-level table or a module-level object's attribute (``registerDOMImplementation``,
    ``calendar.setfirstweekday``), or a C function named like a setter, is overridden in
    the capsule's view or reviewed with a reason."""
    unclassified = []
    for modname, module in sorted(_grantable_modules().items()):
        for name, value in sorted(vars(module).items()):
            if name[:1] == "_":
                continue
            if type(value) is types.FunctionType:
                writes = _process_writes(value)
            elif type(value) is types.BuiltinFunctionType and re.match(
                r"(set|register|unregister|install|seed|field_size_limit)", name
            ):
                writes = {"a C setter"}
            else:
                continue
            if writes and not _classified(modname, name):
                unclassified.append(f"{modname}.{name}: {sorted(writes)}")
    assert not unclassified, "\n".join(unclassified)


#: Types whose instances have no state a capsule could change.
_STATELESS = (
    re.Pattern,
    types.MappingProxyType,
    functools.partial,  # func/args/keywords are read-only
    type(decimal.Decimal(0).as_tuple()),  # a named tuple
)


def _stateless(value) -> bool:
    if type(value) in modules._READ_ONLY or type(value) is dict:
        return True  # views hand out read-only snapshots (modules._read_only_container)
    if isinstance(value, _IMMUTABLE + _INERT + _STATELESS + (enum.Enum, types.MethodType)):
        return True  # enum members: deputies._guard_enum_members
    name = f"{type(value).__module__}.{type(value).__qualname__}"
    return name in {
        "datetime.timezone",
        "builtins.PyCapsule",
        "uuid.UUID",  # its __setattr__ raises: 'UUID objects are immutable'
        "functools._lru_cache_wrapper",  # called through its C slot, not its attributes
        "unicodedata.UCD",
    }


def test_every_module_level_instance_of_a_grantable_module_is_classified():
    """A public module-level object of a default or grantable module that has state (an
    instance of a standard-library class: typing's aliases, calendar's names,
    decimal.DefaultContext, minidom's DOMImplementation) is per capsule, sealed against
    capsule writes, stateless or reviewed.  Sealing happens when a capsule's view of the
    module is made, so every module is viewed first."""
    found = _grantable_modules()
    Capsule(grants=[("import", n) for n in policy.GRANTABLE_STDLIB]).run(reach_all(found))
    unclassified = []
    for modname, module in sorted(found.items()):
        if any(part[:1] == "_" for part in modname.split(".")[1:]):
            continue  # tomllib._parser: views refuse private submodules
        for name, value in sorted(vars(module).items()):
            if name[:1] == "_" or _stateless(value) or _classified(modname, name):
                continue
            if deputies.is_sealed(value):
                continue
            unclassified.append(f"{modname}.{name}: {type(value).__qualname__}")
    assert not unclassified, "\n".join(unclassified)
    assert not deputies.UNSEALED, "shared instances whose class was frozen before sealing"


# -- behaviour: per capsule ---------------------------------------------------------------------
def _trusted_thread_precision() -> int:
    out = {}
    t = threading.Thread(target=lambda: out.setdefault("prec", decimal.getcontext().prec))
    t.start()
    t.join()
    return out["prec"]


@pytest.mark.parametrize("name", ["DefaultContext", "BasicContext", "ExtendedContext"])
def test_decimal_template_contexts_are_per_capsule(name):
    """Each capsule has its own copy of decimal's module-level contexts: its writes stay
    with it, trusted threads and other capsules keep theirs."""
    before = getattr(decimal, name).prec, _trusted_thread_precision()
    a, b = Capsule(), Capsule()
    assert a.run(f"import decimal\ndecimal.{name}.prec = 5\ndecimal.{name}.prec") == 5
    assert a.run(f"decimal.{name}.prec") == 5  # the same copy on the next read
    assert b.run(f"import decimal\ndecimal.{name}.prec") == before[0]
    assert (getattr(decimal, name).prec, _trusted_thread_precision()) == before


def test_calendar_setfirstweekday_sets_the_capsules_calendar_only():
    first = calendar.firstweekday()
    c = Capsule()
    out = c.run(
        "import calendar\ncalendar.setfirstweekday(calendar.SUNDAY)\n"
        "calendar.firstweekday(), calendar.weekheader(2)"
    )
    assert out == (calendar.SUNDAY, "Su Mo Tu We Th Fr Sa")
    assert calendar.firstweekday() == first
    with pytest.raises(calendar.IllegalWeekdayError):
        c.run("calendar.setfirstweekday(9)")


# -- behaviour: sealed and refused --------------------------------------------------------------
_LIST = typing.List  # noqa: UP006 - the shared alias object itself is under test
_SEALED_WRITES = {
    "typing-alias-origin": "import typing\ntyping.List.__origin__ = tuple",
    "typing-alias-state": "import typing\ntyping.List._inst = False",
    "special-form": "import typing\ntyping.Union._getitem = print",
    "enum-member": "import re\nre.IGNORECASE._value_ = 0",
    "enum-member-delete": "import re\ndel re.IGNORECASE._value_",
    "flag-pseudo-member": "import re\n(re.I | re.M)._value_ = 0",
    "calendar-name": "import calendar\ncalendar.day_name.extra = 1",
    "dom-implementation": "import xml.dom.minidom\n"
    "xml.dom.minidom.Document.implementation.createDocument = print",
}


@pytest.mark.parametrize("variant", sorted(_SEALED_WRITES))
def test_capsule_cannot_write_shared_module_level_instances(variant):
    """Shared instances trusted code keeps using refuse a capsule's writes, so typing's
    aliases, special forms, regex flags and minidom's implementation mean the same to
    trusted code after the cell; trusted code itself can still write them."""
    import xml.dom.minidom

    watched = {
        "typing-alias-origin": lambda: vars(_LIST)["__origin__"],
        "typing-alias-state": lambda: vars(_LIST)["_inst"],
        "special-form": lambda: typing.Union._getitem,
        "enum-member": lambda: re.IGNORECASE.value,
        "enum-member-delete": lambda: re.IGNORECASE.value,
        "flag-pseudo-member": lambda: (re.I | re.M).value,
        "calendar-name": lambda: vars(calendar.day_name).get("extra"),
        "dom-implementation": lambda: vars(xml.dom.minidom.Document.implementation).get(
            "createDocument"
        ),
    }[variant]
    before = watched()
    with pytest.raises(CapabilityError, match="shared with trusted code"):
        Capsule(grants=[("import", "xml")]).run(_SEALED_WRITES[variant])
    assert watched() == before
    calendar.day_name.trusted_may = 1  # trusted code is not refused
    del calendar.day_name.trusted_may


def test_capsule_own_enum_and_flag_combinations_still_work():
    """Guarding trusted enum members leaves the capsule's own enums and the pseudo-members
    trusted enum code makes for a capsule (re.I | re.M) working."""
    out = Capsule().run(
        "import enum, re\nclass E(enum.Enum):\n    A = 1\nE.A.note = 'mine'\n"
        "(E.A.note, bool(re.compile('a', re.I | re.M).match('A')))"
    )
    assert out == ("mine", True)


_REFUSED = {
    "registerDOMImplementation": "import xml.dom\nxml.dom.registerDOMImplementation('x', dict)",
    "domreg": "import xml.dom.domreg\nxml.dom.domreg.registerDOMImplementation('x', dict)",
    "clear_overloads": "import typing\ntyping.clear_overloads()",
}


@pytest.mark.parametrize("variant", sorted(_REFUSED))
def test_process_wide_registries_are_refused(variant):
    import xml.dom.domreg

    before = dict(xml.dom.domreg.registered)
    with pytest.raises(PermissionError, match="process-wide"):
        Capsule(grants=[("import", "xml")]).run(_REFUSED[variant])
    assert xml.dom.domreg.registered == before


def test_dom_implementation_for_capsules_is_their_own():
    """getDOMImplementation() still works in a capsule, but hands it a fresh
    implementation, never the one trusted minidom.parseString uses."""
    import xml.dom.minidom

    c = Capsule(grants=[("import", "xml")])
    out = c.run(
        "import xml.dom, xml.dom.minidom\nimpl = xml.dom.getDOMImplementation()\n"
        "impl.createDocument(None, 'root', None).documentElement.tagName"
    )
    assert out == "root"
    assert c.namespace["impl"] is not xml.dom.minidom.Document.implementation
    assert c.run("xml.dom.minidom.getDOMImplementation() is impl") is False


def test_typing_overload_registers_nothing_from_a_capsule():
    def probe():
        pass

    before = typing.get_overloads(probe)
    Capsule().run(
        "import typing\n@typing.overload\ndef probe(x: int) -> int: ...\n"
        "def probe(x):\n    return x\nout = probe(3)"
    )
    assert typing.get_overloads(probe) == before == []
