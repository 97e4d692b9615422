"""Engine objects a capsule reaches cannot be initialised again (issue 11).

``__init__`` is a protocol dunder (rules.PROTOCOL): capsule code calls it natively on
anything it holds -- ``x.__init__(...)``, ``type(x).__init__(x, ...)``, ``super(T, x)``, a
base class's ``__init__``.  An engine object whose ``__init__`` stored its state would let
a capsule re-aim it: a shared table in place on a library class (or pprint's dispatch
table) pointed at the capsule's dict, an array-protocol guard answering with the capsule's
data address, a file handle given capabilities that never end.

The class, closed: every class of a module on the audited list (rules.AUDITED_MODULES, the
ipycap modules whose objects may enter a capsule frame) either has object's ``__init__``
(state set once in ``__new__``) or is classified below with the reason; the scan fails on a
new class that is neither.  The functional tests attempt the re-init, and a copy
reconstruction, from inside a capsule and check trusted code's view is unchanged.
"""

from __future__ import annotations

import enum
import importlib
from collections import namedtuple

import pytest

from ipycap import CapabilityError, Capsule
from ipycap.engine import arrayguard, rules, stdviews, tables
from ipycap.engine.libraries import wrappers

#: Classes of reachable modules whose ``__init__`` sets state, and why that is safe.
CLASSIFIED = {
    # bind-once: a second __init__ is refused (streams._init)
    "ipycap.engine.streams.CellStream": "bind-once: streams._init refuses a second init",
    "ipycap.engine.streams.ProcessStream": "bind-once: streams._init refuses a second init",
    # refusals: the capsule can raise one with any text itself; the registry records the
    # what/layer/how strings when it is raised (registry._event), not the object
    **{
        f"ipycap.engine.errors.{name}": "an exception: the capsule's to re-word, as it could "
        "raise one with any text; refusals are recorded as strings when raised"
        for name in (
            "CapabilityError",
            "CapsuleAttributeError",
            "CapsuleImportError",
            "CapsulePermissionError",
            "CapsulePolicyError",
            "CapsuleRequestRefused",
            "CapsuleRevokedError",
            "CapsuleSyntaxError",
            "CapsuleTypeError",
        )
    },
    # the capsule's own objects, made per call for it: re-initialising changes only its own
    "ipycap.engine.output.CapsulePrinter": "made per _repr_pretty_ call for the capsule alone",
    "ipycap.engine.output.CapsuleDisplayHandle": "the capsule's own handle; its display_id "
    "is one the capsule may pass to display() directly",
    "ipycap.engine.guard.GuardedFormatter": "string.Formatter() in a capsule: its own "
    "instance, whose mode is only a floor (the asking capsule's mode decides); the shared "
    "per-mode formatters (guard._FORMATTERS) are never handed out",
    "ipycap.engine.modules._CapsuleRepr": "reprlib.aRepr of one capsule (per capsule); "
    "Repr.__init__ only resets its own limits",
    "ipycap.engine.modules.BuiltinsModule": "ModuleType.__init__ (reachable through types."
    "ModuleType too) rewrites only __name__/__doc__ of the capsule's own builtins module",
    # never handed to capsule code: engine bookkeeping held in slots, tables and closures
    "ipycap.engine.guard.TypeSet": "engine bookkeeping (module-level sets), never handed out",
    "ipycap.engine.guard.TypeTable": "engine bookkeeping (module-level tables), never handed out",
    "ipycap.engine.guard._Building": "a context manager the class builder uses internally",
    "ipycap.engine.handles._ThisCell": "held in a RevocableFile's slot, never handed out",
    "ipycap.engine.modules._Owner": "held in modules._OWNERS, never handed out",
    "ipycap.engine.deputies.PerCapsule": "a module attribute the views resolve "
    "(modules._view_miss): capsule code gets the factory's copy, never the PerCapsule",
    "ipycap.engine.membrane.authority._ReadOnlyMethod": "a refusing stand-in: re-init "
    "changes only the wording of its refusal",
}


def _reachable_modules() -> set[str]:
    names = {m for m in rules.AUDITED_MODULES if m.startswith("ipycap.")}
    for name in names:
        importlib.import_module(name)
    wrappers.install()
    return names


def _reachable_classes() -> dict[str, type]:
    """Every class (nested and generated ones included) defined in a reachable module."""
    modules = _reachable_modules()
    found, seen, stack = {}, set(), [object]
    while stack:
        cls = stack.pop()
        try:
            subs = type.__subclasses__(cls)
        except TypeError:  # a metaclass: type.__subclasses__ needs the unbound form
            subs = cls.__subclasses__(cls)
        for sub in subs:
            if sub in seen:
                continue
            seen.add(sub)
            stack.append(sub)
            try:
                module = type.__dict__["__module__"].__get__(sub)
            except AttributeError:  # a class made without one (type.__new__ with a bare
                continue  # dict): no class statement of an audited module makes those
            if module in modules:
                found[f"{sub.__module__}.{sub.__qualname__}"] = sub
    return found


def _sets_state(cls) -> list[str]:
    """What would let a second init or a reconstruction rebind state: an ``__init__``
    other than object's anywhere in the MRO, an ipycap ``__setstate__``."""
    why = [
        f"__init__ of {base.__qualname__}"
        for base in cls.__mro__
        if base is not object and "__init__" in vars(base)
    ]
    why += [
        f"__setstate__ of {base.__qualname__}"
        for base in cls.__mro__
        if "__setstate__" in vars(base) and base.__module__.startswith("ipycap")
    ]
    return why


def test_scan_every_reachable_class_is_frozen_or_classified():
    """A class of a module on the audited list has object's ``__init__`` (state set in
    ``__new__``) or is classified with the reason."""
    open_ = {
        name: _sets_state(cls)
        for name, cls in _reachable_classes().items()
        if _sets_state(cls) and name not in CLASSIFIED
    }
    assert not open_, (
        "classes capsule code can reach whose __init__/__setstate__ sets state: set it in "
        f"__new__ or classify them in CLASSIFIED: {open_}"
    )


def test_scan_classified_entries_are_not_stale():
    found = _reachable_classes()
    stale = sorted(n for n in CLASSIFIED if n not in found or not _sets_state(found[n]))
    assert not stale, f"CLASSIFIED names classes that are gone or frozen now: {stale}"


def test_scan_sees_the_classes_it_is_about():
    found = _reachable_classes()
    for cls in (
        tables.ReadOnlyTable,
        tables.SharedTable,
        tables.ReadOnlyList,
        tables.SharedList,
        arrayguard.ArrayProtocol,
        stdviews.Path,
        wrappers.ReadOnlyOptions,
        wrappers.ConfigStandIn,
    ):
        assert found[f"{cls.__module__}.{cls.__qualname__}"] is cls
        assert cls.__init__ is object.__init__


# -- functional: re-init attempts from inside a capsule -------------------------------------
def _run(capsule, source, **names):
    capsule.namespace.update(names)
    try:
        return capsule.run(source)
    except (CapabilityError, TypeError, AttributeError) as err:
        return err


#: Ways capsule code reaches an initialiser of ``x`` (``new`` is the capsule's state).
REINIT = [
    "x.__init__(*new)",
    "type(x).__init__(x, *new)",
    "super(type(x), x).__init__(*new)",
    "[c.__init__(x, *new) for c in type(x).__mro__[:-1]]",
    "object.__init__(x, *new)",
]


@pytest.mark.parametrize("call", REINIT)
@pytest.mark.parametrize("kind", [tables.SharedTable, tables.ReadOnlyTable])
def test_shared_table_is_not_re_aimed(kind, call):
    """A shared table in place on a library class: trusted code keeps reading its dict."""
    data = {"key": "trusted"}
    table = kind(data, "canary table")
    _run(Capsule(), f"new = ({{'key': 'capsule'}}, 'x')\n{call}", x=table)
    assert table.__ipycap_data__ is data and table["key"] == "trusted"
    assert table.__ipycap_name__ == "canary table"


@pytest.mark.parametrize("call", REINIT)
@pytest.mark.parametrize("kind", [tables.SharedList, tables.ReadOnlyList])
def test_shared_list_is_not_re_aimed(kind, call):
    data = ["trusted"]
    table = kind(data, "canary list")
    _run(Capsule(), f"new = (['capsule'], 'x')\n{call}", x=table)
    assert table.__ipycap_data__ is data and table[0] == "trusted"


@pytest.mark.parametrize("call", REINIT[:3])
def test_pprint_dispatch_table_is_not_re_aimed(call):
    """pprint's dispatch table (stdlib_guards) is a read-only table trusted pprint uses:
    a capsule handing it its own dict would have trusted pprint call capsule functions."""
    import pprint

    before = pprint.PrettyPrinter._dispatch
    data = before.__ipycap_data__
    source = (
        "import pprint\nx = pprint.PrettyPrinter._dispatch\n"
        "def spy(*a):\n    pass\n"
        f"new = ({{dict.__repr__: spy}}, 'x')\n{call}"
    )
    _run(Capsule(), source)
    assert pprint.PrettyPrinter._dispatch is before and before.__ipycap_data__ is data
    assert pprint.pformat({"a": [1, 2]}) == "{'a': [1, 2]}"


@pytest.mark.parametrize("call", REINIT[:3])
def test_read_only_options_are_not_re_aimed(call):
    data = {"lines.linewidth": 1.0}
    view = wrappers.ReadOnlyOptions(data, None, ("matplotlib", "rcParams"))
    _run(Capsule(), f"new = ({{'lines.linewidth': 'capsule'}}, None)\n{call}", x=view)
    assert view.__ipycap_data__ is data and view["lines.linewidth"] == 1.0


@pytest.mark.parametrize("call", REINIT[:3])
def test_config_stand_in_is_not_re_aimed(call):
    class Config:  # stands for polars.Config
        def __init__(self, **kwargs):
            self.kwargs = kwargs

    stand_in = wrappers.ConfigStandIn(Config)
    source = f"class Mine:\n    def __init__(self, **kw):\n        pass\nnew = (Mine,)\n{call}"
    _run(Capsule(), source, x=stand_in)
    assert stand_in.__ipycap_cls__ is Config


@pytest.mark.parametrize("call", REINIT[:3])
def test_path_stand_in_stays_where_it_was(call, tmp_path):
    path = stdviews.Path(str(tmp_path / "canary"))
    _run(Capsule(), f"new = ({str(tmp_path / 'elsewhere')!r},)\n{call}", x=path)
    assert str(path) == str(tmp_path / "canary")


@pytest.mark.parametrize("call", REINIT[:3])
def test_refusing_builtin_keeps_its_refusal(call):
    capsule = Capsule()
    _run(capsule, f"x = help\nnew = ('print', 'now it is fine')\n{call}")
    result = _run(capsule, "help()")
    assert isinstance(result, CapabilityError) and "help() is not available" in str(result)


@pytest.mark.parametrize("call", REINIT[:3])
def test_sys_stream_stand_in_keeps_its_stream(call, capsys):
    capsule = Capsule()
    _run(capsule, f"import sys\nx = sys.stdout\nnew = ('stderr',)\n{call}")
    capsule.run("import sys\nsys.stdout.write('canary-out')")
    captured = capsys.readouterr()
    assert "canary-out" in captured.out and "canary-out" not in captured.err


@pytest.mark.parametrize("call", REINIT[:3])
def test_file_handle_gets_no_new_capabilities(call, tmp_path):
    """A handle whose grant was revoked stays refused: a re-init cannot hand it a
    capability of the capsule's making."""
    canary = tmp_path / "canary.txt"
    canary.write_text("secret")
    capsule = Capsule(grants=[("read", str(canary))])
    capsule.run(f"f = open({str(canary)!r})")
    handle = capsule.namespace["f"]
    caps = handle.__ipycap_read__
    for cap in capsule.cell_grants:
        cap.revoke()
    source = (
        "class Live:\n    revoked = False\n"
        f"x = f\nnew = (f, [Live()], [Live()], 'x')\n{call}\nf.read()"
    )
    result = _run(capsule, source, f=handle)
    assert isinstance(result, CapabilityError), result
    assert handle.__ipycap_read__ == caps


def _array_guard(capsule):
    capsule.run(
        "class C:\n    pass\n"
        "class Spy:\n"
        "    def __get__(self, obj, owner=None):\n"
        "        return {'data': (12345, False), 'shape': (1,), 'typestr': '|u1', 'version': 3}\n"
        "x = C.__dict__['__array_interface__']\n"
    )
    return capsule.namespace["C"], capsule.namespace["x"]


@pytest.mark.parametrize(
    "call",
    [*REINIT, "tuple.__init__(x, ('__array_interface__', C, False, Spy()))"],
)
def test_array_protocol_guard_cannot_be_re_aimed(call):
    """The descriptor's state is a tuple fixed in ``__new__``: re-initialising it with a
    capsule descriptor as the 'inherited' answer leaves the guard answering nothing."""
    capsule = Capsule()
    cls, guard = _array_guard(capsule)
    _run(capsule, f"new = ('__array_interface__', C, False, Spy())\n{call}")
    assert type(guard) is arrayguard.ArrayProtocol
    assert guard.inherited is None and guard.owner is cls and not guard.defined
    with pytest.raises(AttributeError):
        cls().__array_interface__  # noqa: B018 - what numpy asks


@pytest.mark.parametrize(
    "source",
    [
        "x.name = 'other'",
        "x.inherited = Spy()",
        "del x.owner",
        "object.__setattr__(x, 'inherited', Spy())",
        "type(x).inherited.fset(x, Spy())",
    ],
)
def test_array_protocol_guard_fields_cannot_be_set(source):
    capsule = Capsule()
    cls, guard = _array_guard(capsule)
    result = _run(capsule, source)
    assert isinstance(result, (CapabilityError, AttributeError, TypeError)), result
    assert guard.inherited is None and guard.name == "__array_interface__"


def test_array_protocol_guard_compares_by_identity():
    """No capsule metaclass code runs when trusted code compares, hashes or shows a guard
    (it holds the capsule class).  A metaclass ``__eq__``/``__hash__`` is refused when the
    class is made (red team 10); its ``__repr__`` is not, and is never asked."""
    capsule = Capsule()
    capsule.run(
        "class Meta(type):\n"
        "    def __repr__(cls):\n        raise RuntimeError('capsule repr')\n"
        "class C(metaclass=Meta):\n    pass\n"
        "x = C.__dict__['__array_interface__']\n"
    )
    guard = capsule.namespace["x"]
    other = capsule.namespace["C"].__dict__["__array_struct__"]
    assert guard == guard and guard != other and len({guard, other}) == 2
    assert repr(guard) == "<array-protocol guard __array_interface__>"


@pytest.mark.parametrize(
    ("source", "state"),
    [
        ("import calendar\ncalendar.day_name.__init__('%a')", "calendar.day_name.format"),
        (
            "import calendar\ntype(calendar.day_name).__init__(calendar.day_name, '%a')",
            "calendar.day_name.format",
        ),
        ("import typing\ntyping.List.__init__(dict, 2, inst=False, name='D')", "typing.List._name"),
        (
            "import typing\ntype(typing.AnyStr).__init__(typing.AnyStr, 'X')",
            "typing.AnyStr.__name__",
        ),
        ("import typing\ntyping.Optional.__init__(print)", "typing.Optional._getitem"),
    ],
)
def test_shared_standard_library_instances_refuse_a_second_init(source, state):
    """The same class among the standard library's shared instances: their Python
    ``__init__`` stores through ``__setattr__``, which sealing refuses to capsule code
    (deputies.seal)."""
    import calendar  # noqa: F401 - named by ``state``
    import typing  # noqa: F401

    before = eval(state)
    result = _run(Capsule(), source)
    assert isinstance(result, CapabilityError), result
    assert eval(state) == before


@pytest.mark.parametrize(
    "source",
    [
        # technique: string.Formatter() defaulted to proxy mode inside a rexec capsule
        "string.Formatter().format('{0._x}', A())",
        "string.Formatter().vformat('{a._x}', (), {'a': A()})",
        # technique: the mode is a plain attribute of the capsule's own formatter
        "f = string.Formatter('rexec')\nf.mode = 'proxy'\nf.format('{0._x}', A())",
        "f = string.Formatter('rexec')\nf.__init__('proxy')\nf.format('{0._x}', A())",
        "class F(string.Formatter):\n    pass\nF().format('{0._x}', A())",
    ],
)
def test_rexec_formatter_follows_the_capsule_mode(source):
    """rexec mode denies underscore introspection on every object; a capsule's own
    ``string.Formatter`` traverses fields under the asking capsule's rule, whatever mode
    the formatter was made or re-initialised with."""
    capsule = Capsule(mode="rexec")
    result = _run(capsule, "import string\nclass A:\n    _x = 'canary'\n" + source)
    assert isinstance(result, CapabilityError), result
    assert "rexec" in str(result)


def test_formatter_still_formats_in_both_modes():
    for mode in ("proxy", "rexec"):
        source = (
            "import string\nclass A:\n    y = 6\nstring.Formatter().format('{0.y} {1}', A(), 2)"
        )
        assert Capsule(mode=mode).run(source) == "6 2"
    assert (
        Capsule().run(
            "import string\nclass A:\n    _x = 5\nstring.Formatter().format('{0._x}', A())"
        )
        == "5"
    )


# -- copy / pickle reconstruction -----------------------------------------------------------
@pytest.mark.parametrize("how", ["copy.copy(x)", "copy.deepcopy(x)"])
@pytest.mark.parametrize(
    "make",
    [
        lambda: tables.SharedTable({"key": "trusted"}, "canary"),
        lambda: tables.ReadOnlyList(["trusted"], "canary"),
        lambda: wrappers.ReadOnlyOptions({"key": "trusted"}, None),
        lambda: stdviews.Path("/canary"),
    ],
)
def test_copy_reconstruction_leaves_the_original_alone(make, how):
    obj = make()
    data, text = getattr(obj, "__ipycap_data__", None), str(obj)
    # refused, a separate object, or (Path, immutable like str) the object itself: never a
    # state change of the original, also when the capsule re-initialises what it got back
    _run(Capsule(), f"import copy\ny = {how}\ny.__init__({{'key': 'capsule'}}, 'x')", x=obj)
    assert getattr(obj, "__ipycap_data__", None) is data and str(obj) == text


@pytest.mark.parametrize(
    "source",
    [
        "x.__setstate__((None, {'__ipycap_data__': new}))",
        "getattr(x, '__setstate__')((None, {'__ipycap_data__': new}))",
        "f, args, state = x.__reduce_ex__(2)[:3]",
        "type(x).__reduce_ex__(x, 2)",
        "object.__reduce_ex__(x, 2)",
        "vars(type(x))",
    ],
)
def test_reconstruction_hooks_are_never_names(source):
    """The pickle reconstruction hooks are refused on every object, so capsule code cannot
    rebuild a shared table over its own state by hand either."""
    data = {"key": "trusted"}
    shared = tables.SharedTable(data, "canary")
    result = _run(Capsule(), "new = {'key': 'capsule'}\n" + source, x=shared)
    assert isinstance(result, CapabilityError), result
    assert shared.__ipycap_data__ is data


@pytest.mark.parametrize("how", ["copy.copy(x)", "copy.deepcopy(x)"])
def test_copy_of_an_array_protocol_guard_is_refused(how):
    capsule = Capsule()
    _array_guard(capsule)
    result = _run(capsule, f"import copy\n{how}")
    assert isinstance(result, CapabilityError), result


@pytest.mark.parametrize("module", ["pickle", "copyreg", "_pickle"])
def test_pickle_reconstruction_is_out_of_reach(module):
    """``__reduce_ex__``/``__setstate__`` are never names; the modules that reconstruct
    from a pickle are denied imports."""
    result = _run(Capsule(), f"import {module}")
    assert isinstance(result, CapabilityError), result


# -- ordinary use still works ---------------------------------------------------------------
@pytest.mark.parametrize(
    "source",
    [
        "copy.copy(pathlib.Path('/tmp/a')) == pathlib.Path('/tmp/a')",
        "copy.deepcopy([pathlib.Path('/tmp/a')])[0] == pathlib.Path('/tmp/a')",
        "@dataclasses.dataclass\nclass A:\n    p: object\n"
        "dataclasses.asdict(A(pathlib.Path('/tmp/a')))['p'] == pathlib.Path('/tmp/a')",
    ],
)
def test_paths_copy_like_the_immutable_values_they_are(source):
    """copy/deepcopy (dataclasses.asdict) of a capsule Path: the Path itself, as for str
    (the generic reconstruction used to be refused: it sets state on a new object)."""
    assert Capsule().run("import copy, dataclasses, pathlib\n" + source) is True


def test_ordinary_classes_still_work_in_a_capsule():
    capsule = Capsule()
    result = capsule.run(
        "import dataclasses, enum, copy, json\nfrom collections import namedtuple\n"
        "@dataclasses.dataclass\nclass P:\n    x: int\n    y: int = 0\n"
        "Color = enum.Enum('Color', 'RED GREEN')\nPair = namedtuple('Pair', 'a b')\n"
        "(copy.deepcopy(P(1, 2)), Color.GREEN.value, Pair(1, 2).b, json.dumps([1]))"
    )
    assert result[1:] == (2, 2, "[1]") and result[0].x == 1


def test_guard_class_still_guards_enum_and_namedtuple():
    """Trusted-side: the one-walk guard_class answers as before for stdlib-made classes."""
    for cls in (enum.Enum("E", "A B"), namedtuple("P", "a b")):
        arrayguard.guard_class(cls)
        assert arrayguard.is_guarded(cls)
        for name in arrayguard.ARRAY_NAMES:
            entry = vars(cls)[name]
            assert type(entry) is arrayguard.ArrayProtocol and entry.owner is cls
            assert not entry.defined and entry.inherited is None


# -- shared tables: copies hand out read-only entries ---------------------------------------
@pytest.mark.parametrize(
    "source",
    [
        # technique: a shallow copy of the shared table's storage (SharedTable.copy) held the
        # library's own entry containers raw
        "t.copy()['style']['lw'] = 'capsule'",
        "(t | {})['style']['lw'] = 'capsule'",
        "c = t.copy()\nc['style'].update(lw='capsule')",
        "l.copy()[0]['lw'] = 'capsule'",
        "l.copy()[0].clear()",
        "[*l.copy()][0]['lw'] = 'capsule'",
    ],
)
def test_copy_of_a_shared_table_gives_read_only_entries(source):
    """What capsule code copies from a shared table is its own dict/list, with the entries
    read-only (as ``t[key]`` gives them): trusted code's entry containers are unchanged."""
    entry, item = {"lw": 1}, {"lw": 1}
    shared, shared_list = (
        tables.SharedTable({"style": entry}, "canary"),
        tables.SharedList([item], "canary list"),
    )
    result = _run(Capsule(), source, t=shared, l=shared_list)
    assert isinstance(result, CapabilityError), result
    assert entry == {"lw": 1} and item == {"lw": 1}


def test_copy_of_a_shared_table_is_still_a_plain_copy():
    """The copy itself is the capsule's to change; trusted code's copy stays raw."""
    entry = {"lw": 1}
    shared = tables.SharedTable({"style": entry}, "canary")
    result = _run(Capsule(), "c = t.copy()\nc['new'] = 1\n(sorted(c), dict(c['style']))", t=shared)
    assert result == (["new", "style"], {"lw": 1})
    assert shared.copy()["style"] is entry and tables.SharedList([entry], "l").copy()[0] is entry
