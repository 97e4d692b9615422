"""Red team rt8-libs: granted libraries' process-wide state (I3) and their extension arrays (I2).

1. Scoped option blocks left open: a capsule enters ``pd.option_context(...)``,
   ``mpl.rc_context(...)``, ``plt.style.context(...)``, ``sklearn.config_context(...)`` or
   ``pl.Config(...)`` and never exits it (``__enter__`` called directly, a generator suspended
   inside the block, a block raised out of, a block stored and entered in a later cell): the
   option stayed set for trusted code after the cell.  Fixed by libraries/blocks.py: the run
   puts the options back, and a block ends with the run that entered it (parked).
2. Process-wide setters: every public setter of a profiled library is refused (with the
   per-block way) or listed with why it is not process-wide (a scan over the installed
   libraries).
3. pandas ExtensionArrays of a read-only frame are read-only copies.

Each payload aims only at state the test itself checks and puts back (an option value); the
``plain`` variants show the same payload leaks without ipycap (so each is a real attack).
"""

from __future__ import annotations

import gc
import re
import sys
import timeit
import types

import pytest

from ipycap import CapabilityError, Capsule
from ipycap.engine.libraries import PROFILES

pd = pytest.importorskip("pandas")
mpl = pytest.importorskip("matplotlib")
sklearn = pytest.importorskip("sklearn")
pl = pytest.importorskip("polars")
np = pytest.importorskip("numpy")


@pytest.fixture(autouse=True)
def _options_put_back():
    """Each test starts from the same options and leaves them so, leaked or not (a leak one
    test left must not hide another's: the payload values differ from these)."""
    pd.reset_option("display.max_rows")
    rc = {k: v for k, v in mpl.rcParams.items() if k != "backend"}
    sklearn.set_config(assume_finite=False)
    yield
    pd.reset_option("display.max_rows")
    mpl.rcParams.update(rc)
    pl.Config.restore_defaults()
    sklearn.set_config(assume_finite=False)


def _run(source, *packages, capsule=None):
    """The capsule's result, or the refusal it met."""
    capsule = capsule or Capsule(grants=[("import", p) for p in packages])
    try:
        return capsule.run(source)
    except CapabilityError as err:
        return err


def _plain(source):
    namespace: dict = {}
    exec(compile(source, "<plain>", "exec"), namespace)
    return namespace


# -- 1. blocks left open ---------------------------------------------------------------------
def _pandas_probe():
    return pd.get_option("display.max_rows")


def _rc_probe():
    return mpl.rcParams["lines.linewidth"]


def _style_probe():
    return mpl.rcParams["axes.facecolor"]


def _sklearn_probe():
    return sklearn.get_config()["assume_finite"]


def _polars_probe():
    return pl.Config.state().get("POLARS_FMT_MAX_ROWS")


_IMPORTS = {
    "pandas": "import pandas as pd\n",
    "matplotlib": "import matplotlib as mpl\nimport matplotlib.pyplot as plt\n",
    "sklearn": "import sklearn\n",
    "polars": "import polars as pl\n",
}

#: name -> (package, block expression, probe)
BLOCKS = {
    "pandas-option-context": ("pandas", "pd.option_context('display.max_rows', 3)", _pandas_probe),
    "mpl-rc-context": ("matplotlib", "mpl.rc_context({'lines.linewidth': 7.0})", _rc_probe),
    "plt-rc-context": ("matplotlib", "plt.rc_context({'lines.linewidth': 7.0})", _rc_probe),
    "plt-style-context": ("matplotlib", "plt.style.context('ggplot')", _style_probe),
    "sklearn-config-context": ("sklearn", "sklearn.config_context(assume_finite=True)", None),
    "polars-config": ("polars", "pl.Config(tbl_rows=3)", _polars_probe),
}

#: technique -> the cell(s) leaving BLOCK open
TECHNIQUES = {
    "enter-directly": ["cm = BLOCK\ncm.__enter__()"],
    "generator-suspended": [
        "def g():\n    with BLOCK:\n        yield 1\nit = g()\nnext(it)",
    ],
    "raise-mid-block": [
        "cm = BLOCK\ntry:\n    cm.__enter__()\n    raise ValueError('mid-block')\n"
        "except ValueError:\n    pass",
    ],
    "stored-entered-later": ["cm = BLOCK", "cm.__enter__()"],
    "entered-twice-nested": ["cm = BLOCK\nwith BLOCK:\n    cm.__enter__()"],
}


def _probe_for(name):
    package, _, probe = BLOCKS[name]
    return probe or _sklearn_probe


@pytest.mark.parametrize("technique", sorted(TECHNIQUES))
@pytest.mark.parametrize("name", sorted(BLOCKS))
def test_block_left_open_does_not_outlive_the_cell(name, technique):
    """Technique: a scoped option block entered and never exited (see TECHNIQUES).  Trusted
    code after the cell -- and after the garbage collector finalized the capsule's generator
    or context manager -- sees the options it had before the cell (I3)."""
    package, expr, _ = BLOCKS[name]
    probe = _probe_for(name)
    before = probe()
    capsule = Capsule(grants=[("import", package)])
    for i, cell in enumerate(TECHNIQUES[technique]):
        source = (_IMPORTS[package] if i == 0 else "") + cell.replace("BLOCK", expr)
        result = _run(source, capsule=capsule)
        assert not isinstance(result, CapabilityError), result
        assert probe() == before, f"{name}/{technique}: option left set after cell {i}"
    capsule.namespace.clear()
    gc.collect()
    assert probe() == before, f"{name}/{technique}: set again when the block was collected"


def test_block_left_open_plain_python_leaks():
    """The same payloads without ipycap leave the option set (the attack is real)."""
    before = _pandas_probe()
    ns = _plain(
        "import pandas as pd\ncm = pd.option_context('display.max_rows', 3)\ncm.__enter__()"
    )
    try:
        assert _pandas_probe() == 3 != before
    finally:
        ns["cm"].__exit__(None, None, None)
    before = _rc_probe()
    ns = _plain("import matplotlib as mpl\ncm = mpl.rc_context({'lines.linewidth': 7.0})\n"
                "cm.__enter__()")  # fmt: skip
    try:
        assert _rc_probe() == 7.0 != before
    finally:
        ns["cm"].__exit__(None, None, None)


def test_generator_closed_in_a_later_trusted_cell_writes_nothing():
    """Technique: a generator suspended in a block saved values *inside* the capsule run
    (after an outer block changed them); closing it later, from trusted code, would write
    those values back over what trusted code set meanwhile.  The block is parked."""
    capsule = Capsule(grants=[("import", "pandas")])
    source = (
        "import pandas as pd\nouter = pd.option_context('display.max_rows', 11)\n"
        "outer.__enter__()\n"
        "def g():\n    with pd.option_context('display.max_rows', 12):\n        yield 1\n"
        "it = g()\nnext(it)"
    )
    assert not isinstance(_run(source, capsule=capsule), CapabilityError)
    before = _pandas_probe()
    with pd.option_context("display.max_rows", 42):  # trusted code's own block
        it = capsule.namespace.pop("it")
        it.close()  # the capsule's generator, finalized in trusted code
        del it
        gc.collect()
        assert _pandas_probe() == 42
    assert _pandas_probe() == before


def test_block_inside_a_cell_still_works():
    """Ordinary use keeps working: a block applies inside the cell and ends at its exit; a
    block made in one cell can be used in a later one; as a decorator."""
    capsule = Capsule(grants=[("import", "pandas"), ("import", "matplotlib")])
    source = (
        "import pandas as pd\nimport matplotlib as mpl\n"
        "with pd.option_context('display.max_rows', 3):\n"
        "    inside = pd.get_option('display.max_rows')\n"
        "after = pd.get_option('display.max_rows')\n"
        "@pd.option_context('display.max_rows', 4)\n"
        "def show():\n    return pd.get_option('display.max_rows')\n"
        "decorated = show()\n"
        "with mpl.rc_context({'lines.linewidth': 5.0}):\n"
        "    lw = mpl.rcParams['lines.linewidth']\n"
        "cm = pd.option_context('display.max_rows', 6)\n"
        "(inside, after == pd.get_option('display.max_rows'), decorated, lw)"
    )
    assert capsule.run(source) == (3, True, 4, 5.0)
    assert capsule.run("with cm:\n    v = pd.get_option('display.max_rows')\nv") == 6


def test_polars_config_block_and_as_object():
    """``with pl.Config(...) as cfg: cfg.set_*(...)`` works in the block; nothing stays."""
    before = _polars_probe()
    source = (
        "import polars as pl\n"
        "with pl.Config(tbl_rows=3) as cfg:\n"
        "    cfg.set_tbl_cols(4)\n"
        "    inside = pl.Config.state().get('POLARS_FMT_MAX_ROWS')\n"
        "inside"
    )
    assert _run(source, "polars") == "3"
    assert _polars_probe() == before
    assert pl.Config.state().get("POLARS_FMT_MAX_COLS") is None


def test_xkcd_and_ioff_apply_in_the_cell_only():
    """``plt.xkcd()`` and ``plt.ioff()`` apply when called (as matplotlib's do) and end with
    the cell; ``with plt.xkcd():`` works."""
    sketch, interactive = mpl.rcParams["path.sketch"], mpl.is_interactive()
    source = (
        "import matplotlib.pyplot as plt\nimport matplotlib as mpl\nplt.xkcd()\n"
        "on = mpl.rcParams['path.sketch'] is not None\n"
        "plt.ion() if not mpl.is_interactive() else plt.ioff()\n"
        "with plt.xkcd():\n    pass\n"
        "on"
    )
    assert _run(source, "matplotlib") is True
    assert mpl.rcParams["path.sketch"] == sketch and mpl.is_interactive() == interactive


def test_options_changed_any_way_are_put_back():
    """Whatever path a capsule finds to pandas' and matplotlib's option stores (a refused
    setter reached some other way), the run puts the options back: checked here by the
    run's own restore with an option changed under it."""
    from ipycap.engine.libraries import blocks

    capsule = Capsule(grants=[("import", "pandas"), ("import", "matplotlib")])
    token = blocks.snapshot(capsule.context)
    before = (_pandas_probe(), _rc_probe())
    pd.set_option("display.max_rows", 17)
    mpl.rcParams["lines.linewidth"] = 9.0
    blocks.restore(token)
    assert (_pandas_probe(), _rc_probe()) == before


def test_ungranted_capsule_snapshots_nothing():
    """A capsule whose grants cover none of the libraries pays nothing."""
    from ipycap.engine.libraries import blocks

    token = blocks.snapshot(Capsule().context)
    try:
        assert token[1] == []
    finally:
        blocks.restore(token)


def test_numpy_contextvar_options_do_not_outlive_the_cell():
    """numpy 2's print options and error state are context variables of the capsule thread's
    context, which is dropped after the run: set, or a block left open, stays in the cell."""
    before = (np.get_printoptions()["precision"], np.geterr()["divide"], np.getbufsize())
    for source in (
        "import numpy as np\ncm = np.printoptions(precision=2)\ncm.__enter__()",
        "import numpy as np\ncm = np.errstate(all='raise')\ncm.__enter__()",
        "import numpy as np\nnp.seterr(all='raise')",
        "import numpy as np\nnp.setbufsize(16384)",
    ):
        _run(source, "numpy")
        after = (np.get_printoptions()["precision"], np.geterr()["divide"], np.getbufsize())
        assert after == before, source


def test_block_state_is_frozen():
    """A ScopedBlock's state is set in ``__new__``: no attribute writes, no re-``__init__``
    rebinding, and capsule code cannot make one around its own object."""
    source = (
        "import pandas as pd\ncm = pd.option_context('display.max_rows', 3)\nout = []\n"
        "for attempt in (lambda: setattr(cm, 'x', 1),\n"
        "                lambda: type(cm).__init__(cm, object(), (), {}),\n"
        "                lambda: type(cm)(object(), print, (), {})):\n"
        "    try:\n        attempt()\n        out.append('ok')\n"
        "    except Exception as e:\n        out.append(type(e).__name__)\n"
        "with cm:\n    v = pd.get_option('display.max_rows')\n"
        "(out, v)"
    )
    result = _run(source, "pandas")
    assert not isinstance(result, CapabilityError), result
    out, v = result
    assert out[0] != "ok" and out[2] != "ok" and v == 3


def test_block_run_cost():
    """The per-run cost of snapshot + restore for a capsule covering all four libraries
    (printed; a generous bound so a loaded machine does not fail it)."""
    from ipycap.engine.libraries import blocks

    ctx = Capsule(grants=[("import", p) for p in ("pandas", "matplotlib", "polars")]).context
    times = sorted(
        timeit.timeit(lambda: blocks.restore(blocks.snapshot(ctx)), number=200) / 200
        for _ in range(7)
    )
    median = times[len(times) // 2] * 1e6
    print(f"blocks snapshot+restore (pandas+matplotlib+polars): median {median:.1f} us")
    assert median < 2000


# -- 2. process-wide setters -----------------------------------------------------------------
_SETTER = re.compile(
    r"^(set|reset|enable|disable|use|seed|interactive|ion|ioff|rc|rcdefaults|rc_file|"
    r"switch_backend|xkcd|install|uninstall|threadpool_limits)(_|$)"
)


def _setter_candidates():
    """Public functions named like setters in every imported public module of every
    profiled library (the modules test_library_boundary imports first)."""
    from tests.test_library_boundary import _registration_candidates

    _registration_candidates()  # imports the modules
    found = {}
    for modname, module in sorted(sys.modules.items()):
        parts = modname.split(".")
        if parts[0] not in PROFILES or module is None or any(p[:1] == "_" for p in parts[1:]):
            continue
        for attr, value in sorted(vars(module).items()):
            if attr[:1] == "_" or isinstance(value, types.ModuleType) or isinstance(value, type):
                continue
            if callable(value) and _SETTER.match(attr):
                found.setdefault(id(value), (f"{modname}.{attr}", value))
    return list(found.values())


def _setters_classified():
    names, objects, prefixes = set(), set(), []
    for p in PROFILES.values():
        for table in (
            p.options,
            p.refused,
            p.replaced,
            p.registers,
            p.not_registries,
            p.not_options,
        ):
            for key in table:
                names.add(key)
                if ":" in key:
                    continue
                module_name, _, attr = key.rpartition(".")
                module = sys.modules.get(module_name)
                if module is not None and attr in vars(module):
                    objects.add(id(vars(module)[attr]))
        prefixes.extend(k + "." for k in p.refused if ":" not in k)  # a refused module
    return names, objects, tuple(prefixes)


def test_every_setter_of_the_profiled_libraries_is_classified():
    """SCAN: a public function named like a setter (set_*, reset_*, enable_*, use, seed,
    register* ...) of an installed profiled library is refused (options / refused), made
    per capsule (replaced), or listed in ``not_options`` with why it is not process-wide.
    A library upgrade adding one fails here until its profile says."""
    candidates = _setter_candidates()
    names, objects, prefixes = _setters_classified()
    missing = [
        key
        for key, value in candidates
        if key not in names and id(value) not in objects and not key.startswith(prefixes)
    ]
    assert not missing, f"setters no profile classifies: {missing}"


def _refused_setters():
    out = []
    for p in PROFILES.values():
        for key in (*p.options, *p.refused):
            if ":" not in key and _SETTER.match(key.rpartition(".")[2]):
                out.append((p.package, key))
    return sorted(out)


@pytest.mark.parametrize(("package", "key"), _refused_setters())
def test_setter_is_refused_with_a_teaching_refusal(package, key):
    """Each refused setter, reached by its module path in a capsule, is refused by the
    library's profile, and an option setter's refusal names the per-block way."""
    parts = key.split(".")
    n = max(i for i in range(1, len(parts)) if ".".join(parts[:i]) in sys.modules)
    module_name, rest = ".".join(parts[:n]), ".".join(parts[n:])
    grants = [package] + (["pyarrow"] if module_name.startswith("pyarrow") else [])
    result = _run(f"import {module_name} as m\nm.{rest}", *grants)
    assert isinstance(result, CapabilityError), f"{key} handed out: {result!r}"
    text = str(result)
    assert f"{package} profile" in text or "private" in text or "profile" in text, text
    profile = PROFILES[package]
    if key in profile.options:
        assert "whole session" in text and profile.options[key] in text, text


#: setter payloads whose effect trusted code would see: (package, source, probe)
SETTER_PAYLOADS = {
    "pandas-set-use-numexpr": (
        "pandas",
        "import pandas.core.computation.expressions as e\ne.set_use_numexpr(False)",
        lambda: sys.modules["pandas.core.computation.expressions"].USE_NUMEXPR,
    ),
    "pandas-option-callback": (
        "pandas",
        "import pandas.core.config_init as c\nc.use_bottleneck_cb('display.max_rows')",
        lambda: sys.modules["pandas.core.nanops"]._USE_BOTTLENECK,
    ),
    "mpl-interactive": (
        "matplotlib",
        "import matplotlib\nmatplotlib.interactive(not matplotlib.is_interactive())",
        lambda: mpl.is_interactive(),
    ),
    "mpl-rc-file-defaults": (
        "matplotlib",
        "import matplotlib\nmatplotlib.rc_file_defaults()",
        lambda: mpl.rcParams["lines.linewidth"],
    ),
    "polars-random-seed": ("polars", "import polars as pl\npl.set_random_seed(3)", None),
    "numpy-polynomial-printstyle": (
        "numpy",
        "import numpy.polynomial as P\nP.set_default_printstyle('ascii')",
        lambda: str(np.polynomial.Polynomial([1, 2])),
    ),
}


@pytest.mark.parametrize("name", sorted(SETTER_PAYLOADS))
def test_setter_payload_changes_nothing_trusted_code_sees(name):
    """Technique: a process-wide setter reached by its module path (not the profiled
    top-level name).  Refused; the state trusted code reads is unchanged."""
    package, source, probe = SETTER_PAYLOADS[name]
    if name == "mpl-rc-file-defaults":
        mpl.rcParams["lines.linewidth"] = 2.25  # trusted code's own setting
    before = probe() if probe else None
    result = _run(source, package)
    assert isinstance(result, CapabilityError), f"{name}: not refused ({result!r})"
    if probe:
        assert probe() == before


# -- numpy's legacy global random state is per capsule ----------------------------------------
def test_np_random_seed_is_the_capsules_own():
    """Technique: ``np.random.seed(k)`` in a capsule chose the numbers trusted code drew
    next (I3).  Now the capsule's own RandomState: reproducible inside the capsule, trusted
    code's stream unchanged (the same draws as if the capsule never ran)."""
    np.random.seed(1234)
    expected = np.random.RandomState(1234).random_sample(3).tolist()
    capsule = Capsule(grants=[("import", "numpy")])
    source = (
        "import numpy as np\nnp.random.seed(0)\na = np.random.rand(3).tolist()\n"
        "np.random.seed(0)\nb = np.random.random_sample(3).tolist()\n"
        "np.random.set_state(np.random.RandomState(5).get_state())\n"
        "np.random.get_bit_generator().state = np.random.MT19937(6).state\n"
        "np.random.shuffle([1, 2, 3])\n"
        "(a == b, a == np.random.RandomState(0).rand(3).tolist())"
    )
    assert _run(source, capsule=capsule) == (True, True)
    assert np.random.random_sample(3).tolist() == expected


def test_np_random_state_kept_across_a_capsules_cells():
    """The capsule's state is kept across its cells (a seed in one, draws in the next)."""
    capsule = Capsule(grants=[("import", "numpy")])
    _run("import numpy as np\nnp.random.seed(7)", capsule=capsule)
    got = _run("np.random.randint(0, 1000, 4).tolist()", capsule=capsule)
    assert got == np.random.RandomState(7).randint(0, 1000, 4).tolist()


@pytest.mark.parametrize(
    ("package", "source"),
    [
        ("sklearn", "from sklearn.utils import check_random_state\nrs = check_random_state(None)"),
        (
            "sklearn",
            "from sklearn.utils.validation import check_random_state\n"
            "import numpy as np\nrs = check_random_state(np.random)",
        ),
        ("pandas", "import pandas.core.common as com\nrs = com.random_state(None)"),
    ],
)
def test_no_seed_gives_the_capsules_state_not_the_process(package, source):
    """Technique: a library helper resolving "no seed" hands out numpy's global RandomState
    itself (sklearn) or the ``numpy.random`` module (pandas): seeding it seeded trusted
    code's stream.  The capsule gets its own."""
    np.random.seed(99)
    expected = np.random.RandomState(99).random_sample(2).tolist()
    result = _run(source + "\nrs.seed(5)\nrs.random_sample(2).tolist()", package, "numpy")
    assert not isinstance(result, CapabilityError), result
    assert result == np.random.RandomState(5).random_sample(2).tolist()
    assert np.random.random_sample(2).tolist() == expected


def test_every_legacy_random_function_is_per_capsule():
    """SCAN: every ``numpy.random`` function drawing from (or setting) the global
    RandomState is in randomstate.LEGACY."""
    from ipycap.engine.libraries.numpy import LEGACY

    rand = np.random.mtrand._rand
    bound = {n for n, v in vars(np.random).items() if getattr(v, "__self__", None) is rand}
    module_level = {
        n
        for n, v in vars(np.random.mtrand).items()
        if n[:1] != "_" and callable(v) and not isinstance(v, type) and n in vars(np.random)
    }
    assert not (bound | module_level) - set(LEGACY)


# -- 3. pandas ExtensionArrays of a read-only frame ------------------------------------------
def _ea_frame():
    """One column per kind of ExtensionArray, each with a missing value where it has one."""
    return pd.DataFrame(
        {
            "cat": pd.Categorical(["a", None, "a"]),
            "str": pd.array(["x", None, "z"], dtype="string"),
            "str_arrow": pd.array(["x", None, "z"], dtype="string[pyarrow]"),
            "arrow": pd.array([1, None, 3], dtype="int64[pyarrow]"),
            "Int64": pd.array([1, None, 3], dtype="Int64"),
            "boolean": pd.array([True, None, False], dtype="boolean"),
            "Float64": pd.array([1.5, None, 2.5], dtype="Float64"),
            "interval": pd.arrays.IntervalArray.from_breaks([0, 1, 2, 3]),
            "sparse": pd.arrays.SparseArray([0.0, np.nan, 0.0]),
            "datetime": pd.array(pd.to_datetime(["2020-01-01", None, "2020-01-03"])),
            "datetime_tz": pd.array(pd.date_range("2020", periods=3, tz="UTC")),
            "timedelta": pd.array(pd.to_timedelta([1, None, 3], unit="D")),
            "period": pd.array(pd.period_range("2020", periods=3, freq="D")),
        }
    )


#: column -> (a new value, a fill value)
_EA_VALUES = {
    "cat": ("'a'", "'a'"),
    "str": ("'Q'", "'Q'"),
    "str_arrow": ("'Q'", "'Q'"),
    "arrow": ("9", "9"),
    "Int64": ("9", "9"),
    "boolean": ("True", "True"),
    "Float64": ("9.5", "9.5"),
    "interval": ("pd.Interval(0, 1)", "pd.Interval(0, 1)"),
    "sparse": ("5.0", "5.0"),
    "datetime": ("pd.Timestamp('1999-01-01')", "pd.Timestamp('1999-01-01')"),
    "datetime_tz": ("pd.Timestamp('1999-01-01', tz='UTC')", "pd.Timestamp('1999', tz='UTC')"),
    "timedelta": ("pd.Timedelta(9, 'D')", "pd.Timedelta(9, 'D')"),
    "period": ("pd.Period('1999-01-01', 'D')", "pd.Period('1999-01-01', 'D')"),
}

#: technique -> payload (C: the column, NEW / FILL: the values)
EA_WRITES = {
    "array-setitem": "x = df[C].array\nx[0] = NEW",
    "values-setitem": "x = df[C].values\nx[0] = NEW",
    "fillna-in-place": "x = df[C].array\nx.fillna(FILL, copy=False)",
    "values-fillna-in-place": "x = df[C].values\nx.fillna(FILL, copy=False)",
    "view-fillna-in-place": "x = df[C].array.view() if hasattr(df[C].array, 'view') "
    "else df[C].array\nx.fillna(FILL, copy=False)",
    "pd-array-no-copy": "x = pd.array(df[C].array, copy=False)\nx[0] = NEW\n"
    "x.fillna(FILL, copy=False)",
    "private-values": "x = df[C]._values\nx[0] = NEW",
    "frame-copy-array": "x = df.copy(deep=False)[C].array\nx.fillna(FILL, copy=False)",
    "column-subset-array": "x = df[[C]][C].array\nx.fillna(FILL, copy=False)",
}


@pytest.mark.parametrize("technique", sorted(EA_WRITES))
@pytest.mark.parametrize("column", sorted(_EA_VALUES))
def test_extension_array_of_a_read_only_frame_is_not_the_users(column, technique):
    """Technique: reach a read-only frame's ExtensionArray (``.array``, ``.values``,
    ``pd.array(..., copy=False)``, a derived frame's) and write it -- by item, or in place
    through a method (``fillna(copy=False)`` fills a masked array's own buffers; Copy-on-Write
    covers numpy arrays, not extension arrays).  The user's frame is unchanged (I2)."""
    df = _ea_frame()
    original = df.copy(deep=True)
    new, fill = _EA_VALUES[column]
    source = "import pandas as pd\n" + EA_WRITES[technique].replace("C", repr(column)).replace(
        "NEW", new
    ).replace("FILL", fill)
    capsule = Capsule(grants=[("import", "pandas")], protected={"df": df})
    try:
        capsule.run(source)
    except Exception:  # noqa: BLE001 - a refusal or the library's own error: both stop it
        pass
    pd.testing.assert_frame_equal(df, original)


def test_extension_array_write_plain_python_changes_the_frame():
    """The same in-place fill without ipycap writes the user's frame (the attack is real)."""
    df = _ea_frame()
    d = df[["Int64"]]
    d["Int64"].array.fillna(9, copy=False)
    assert df["Int64"].tolist()[1] == 9


def test_extension_arrays_of_a_read_only_frame_still_read():
    """Ordinary reads of a protected frame's extension arrays keep working."""
    capsule = Capsule(grants=[("import", "pandas")], protected={"df": _ea_frame()})
    source = (
        "import pandas as pd\n"
        "(len(df['cat'].array), df['cat'].cat.categories.tolist(), "
        "df['Int64'].array.fillna(0).tolist(), (df['Float64'].array * 2).tolist()[0], "
        "str(df['str'].array.dtype), df['interval'].array.left.tolist(), "
        "round(df['sparse'].array.density, 2), df['Int64'].array.sum())"
    )
    assert capsule.run(source) == (3, ["a"], [1, 0, 3], 3.0, "string", [0, 1, 2], 0.67, 4)


def test_sklearn_block_left_open_does_not_reach_the_next_capsule():
    """Technique: ``sklearn.config_context`` entered and never exited writes the capsule
    thread's thread-local configuration; capsule threads are reused, so the next capsule
    (another cell) started with it.  Each capsule run starts from sklearn's global
    configuration."""
    first = Capsule(grants=[("import", "sklearn")])
    source = "import sklearn\ncm = sklearn.config_context(assume_finite=True)\ncm.__enter__()"
    assert not isinstance(_run(source, capsule=first), CapabilityError)
    for _ in range(3):  # whichever idle capsule thread runs it
        got = _run("import sklearn\nsklearn.get_config()['assume_finite']", "sklearn")
        assert got is False


def test_a_restore_that_fails_still_puts_the_others_back_and_fails_the_cell():
    """If one library's options cannot be put back, the others still are, and the run
    reports it (the cell fails) instead of leaving trusted code's options changed quietly."""
    from ipycap.engine.libraries import blocks

    def broken(module, state):
        raise ValueError("cannot")

    capsule = Capsule(grants=[("import", "pandas"), ("import", "matplotlib")])
    token = blocks.snapshot(capsule.context)
    token[1].insert(0, (("pandas._config.config", None, None, broken), None))
    before = _rc_probe()
    mpl.rcParams["lines.linewidth"] = 8.5
    error = blocks.restore(token)
    assert isinstance(error, RuntimeError) and "put back" in str(error)
    assert _rc_probe() == before


#: every public alias of a block factory in the installed libraries: (package, module,
#: attribute, arguments, probe)
BLOCK_ALIASES = [
    ("pandas", "pandas.io.clipboards", "option_context", "'display.max_rows', 3", _pandas_probe),
    ("polars", "polars.config", "Config", "tbl_rows=3", _polars_probe),
    # matplotlib 3.11 keeps style.core as a deprecated alias module, imported by whatever
    # touches it first (not always in a run of this file alone)
    ("matplotlib", "matplotlib.style.core", "context", "'dark_background'", _style_probe),
    ("polars", "polars.dataframe.frame", "Config", "tbl_rows=3", _polars_probe),
    ("sklearn", "sklearn.base", "config_context", "assume_finite=True", _sklearn_probe),
    ("sklearn", "sklearn.metrics.pairwise", "config_context", "assume_finite=True", None),
]


@pytest.mark.parametrize(
    ("package", "module", "attr", "args", "probe"),
    BLOCK_ALIASES,
    ids=[f"{m}.{a}" for _, m, a, _, _ in BLOCK_ALIASES],
)
def test_block_factory_reached_by_an_alias_is_scoped_too(package, module, attr, args, probe):
    """Technique: the same block factory reached through another public module (pandas'
    clipboards module, sklearn.base), to get the library's own, unparked block.  Aliases are
    the same object, so the capsule gets the scoped one."""
    probe = probe or _sklearn_probe
    before = probe()
    capsule = Capsule(grants=[("import", package)])
    source = f"import {module} as m\ncm = m.{attr}({args})\ncm.__enter__()\nrepr(m.{attr})"
    result = _run(source, capsule=capsule)
    assert not isinstance(result, CapabilityError), result
    assert probe() == before
    capsule.namespace.clear()
    gc.collect()
    assert probe() == before


def test_every_public_alias_of_a_block_factory_is_listed():
    """SCAN: BLOCK_ALIASES names every public module attribute that is one of the block
    factories (a library upgrade re-exporting one shows up here)."""
    from tests.test_library_boundary import _registration_candidates

    _registration_candidates()  # imports the modules
    plt = sys.modules["matplotlib.pyplot"] if "matplotlib.pyplot" in sys.modules else None
    factories = {id(pd.option_context), id(mpl.rc_context), id(sklearn.config_context)}
    factories |= {id(pl.Config), id(mpl.style.context)}
    if plt is not None:
        factories |= {id(plt.rc_context), id(plt.xkcd), id(plt.ioff), id(plt.ion)}
    profiled = {
        key.rpartition(".")
        for p in PROFILES.values()
        for key, factory in p.replaced.items()
        if ":" not in key
    }
    listed = {(m, a) for _, m, a, _, _ in BLOCK_ALIASES}
    refused = tuple(k for p in PROFILES.values() for k in p.refused if ":" not in k)
    found = []
    for modname, module in sorted(sys.modules.items()):
        parts = modname.split(".")
        if parts[0] not in PROFILES or module is None or any(p[:1] == "_" for p in parts[1:]):
            continue
        if modname in refused or modname.startswith(tuple(r + "." for r in refused)):
            continue  # a refused module: a capsule never gets it
        for attr, value in vars(module).items():
            if attr[:1] != "_" and id(value) in factories:
                if (modname, ".", attr) not in profiled and (modname, attr) not in listed:
                    found.append(f"{modname}.{attr}")
    assert not found, f"block factory aliases not listed: {found}"
