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
import timeit

import pytest

from ipycap import CapabilityError, Capsule

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
