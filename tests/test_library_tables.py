"""Granted libraries' tables are read-only for capsules all the way down (I3).

A library keeps process-wide containers on its classes and shared objects (marker and style
tables, registries, caches) that trusted code reads later.  Capsule code reaches them natively
(a class attribute, a module-level object's attribute), so each is either replaced by a shared
table (``Profile.tables``: trusted code uses it as before, capsule code cannot change it) or
classified as left as it is (``Profile.shared``, with the reason).  The scan below fails on a
container of an installed profiled library that is neither; the regression tests are the red
team's (tests/redteam/test_rt6_seam.py, section 2) and the variants here.
"""

from __future__ import annotations

import collections
import sys
import types

import pytest

from ipycap import CapabilityError, Capsule
from ipycap.engine import tables
from ipycap.engine.libraries import PROFILES, wrappers

_MUTABLE = (dict, list, set, bytearray, collections.deque)
#: The enum and namedtuple machinery's own tables (Enum classes are frozen with their class).
_MACHINERY = frozenset(
    {
        "_member_names_",
        "_member_map_",
        "_value2member_map_",
        "_unhashable_values_",
        "_field_defaults",
        "_fields_",
    }
)


def _raw_container(value) -> bool:
    return type(value) in _MUTABLE or (
        isinstance(value, dict) and type(value).__module__ != "builtins"
    )


def _is_dunder(name: str) -> bool:
    return name[:2] == "__" and name[-2:] == "__"


def _scan():
    """Raw containers on the public classes (and their in-package bases) and public
    module-level objects of every imported public module of a profiled library:
    ``"module:Class.attr"`` / ``"module:Class().attr"`` -> type name."""
    found = {}
    for name, module in list(sys.modules.items()):
        top = name.partition(".")[0]
        if top not in PROFILES or module is None:
            continue
        if any(p[:1] == "_" for p in name.split(".")[1:]):
            continue
        for attr, value in list(vars(module).items()):
            if attr[:1] == "_":
                continue
            if isinstance(value, type):
                for base in value.__mro__:
                    where = base.__dict__.get("__module__")
                    if type(where) is not str or where.partition(".")[0] != top:
                        continue
                    for key, entry in list(vars(base).items()):
                        if _raw_container(entry) and not _is_dunder(key) and key not in _MACHINERY:
                            found[f"{where}:{base.__qualname__}.{key}"] = type(entry).__name__
            elif not isinstance(value, (types.FunctionType, types.ModuleType, types.MethodType)):
                cls = type(value)
                where = getattr(cls, "__module__", None)
                if type(where) is not str or where.partition(".")[0] != top:
                    continue
                state = getattr(value, "__dict__", None)
                if type(state) is not dict:
                    continue
                for key, entry in list(state.items()):
                    if _raw_container(entry) and not _is_dunder(key):
                        found[f"{where}:{cls.__qualname__}().{key}"] = type(entry).__name__
    return found


@pytest.fixture(scope="module")
def installed():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.animation  # noqa: F401
    import matplotlib.pyplot  # noqa: F401
    import numpy  # noqa: F401
    import pandas
    import PIL.Image  # noqa: F401
    import polars  # noqa: F401
    import pyarrow  # noqa: F401
    import sklearn  # noqa: F401
    import sklearn.linear_model  # noqa: F401
    import sklearn.preprocessing  # noqa: F401
    import tqdm  # noqa: F401

    PIL.Image.init()  # every image plugin
    pandas.DataFrame().style  # noqa: B018 (imports the Styler)
    wrappers.install()


def test_every_library_table_is_shared_or_classified(installed):
    """Scan: a new raw container on a profiled library's class or shared object (a new
    library version, a new profile) fails here until its profile says what it is."""
    classified = {k for p in PROFILES.values() for k in p.shared}
    unclassified = sorted(k for k in _scan() if k not in classified)
    assert not unclassified, (
        "containers of granted libraries a capsule can change, in neither Profile.tables "
        f"nor Profile.shared: {unclassified}"
    )


def test_every_profile_table_is_installed(installed):
    """Each ``Profile.tables`` entry of an imported module is a shared table now."""
    missing = []
    for profile in PROFILES.values():
        for key in profile.tables:
            module_name, _, path = key.partition(":")
            if path.startswith("*."):
                continue  # a pattern: the scan finds what it misses
            owner = sys.modules.get(module_name)
            if owner is None:
                continue
            *parts, attr = path.split(".")
            for part in parts:
                owner = getattr(owner, part)
            value = vars(owner).get(attr) if isinstance(owner, type) else owner.__dict__[attr]
            if type(value) not in (tables.SharedTable, tables.SharedList, frozenset):
                missing.append(f"{key} ({type(value).__name__})")
    assert not missing, missing


def test_shared_classifications_name_real_containers(installed):
    """A ``Profile.shared`` entry names something the scan finds (no stale entries that
    would hide a renamed table)."""
    found = _scan()
    stale = sorted(k for p in PROFILES.values() for k in p.shared if k not in found)
    # entries of modules not imported here (optional parts) are not stale
    stale = [k for k in stale if k.partition(":")[0] in sys.modules]
    assert not stale, stale


def _run(capsule, source):
    try:
        return capsule.run(source)
    except CapabilityError as err:
        return err


MPL = [("import", "matplotlib")]


@pytest.mark.parametrize(
    "source",
    [
        # the red team's class, other doors: the entry's own methods, C-level dict methods,
        # the nested list of an rc entry, a replaced attribute of a shared object
        "import matplotlib.pyplot as plt\n"
        "plt.style.library['ggplot'].update({'animation.ffmpeg_path': '/bin/sh'})",
        "from matplotlib.markers import MarkerStyle\ndict.__setitem__(MarkerStyle.markers, 'c', 'x')",
        "import matplotlib\nmatplotlib.rcParams['font.sans-serif'].insert(0, 'capsule')",
        "import matplotlib.font_manager as fm\nfm.fontManager.defaultFamily = {'ttf': 'capsule'}",
        "import matplotlib.font_manager as fm\nfm.fontManager.ttflist.clear()",
        "import matplotlib\nmatplotlib.RcParams.validate['animation.ffmpeg_path'] = str",
    ],
)
def test_capsule_cannot_change_a_matplotlib_table(source, mpl_reset):
    import matplotlib
    import matplotlib.font_manager as fm

    before = (
        dict(matplotlib.style.library["ggplot"]),
        list(matplotlib.rcParams["font.sans-serif"]),
        dict(fm.fontManager.defaultFamily),
        len(fm.fontManager.ttflist),
    )
    try:
        result = Capsule(grants=MPL).run(source)
    except (CapabilityError, TypeError) as err:  # TypeError: dict.__setitem__ on a non-dict
        result = err
    assert isinstance(result, (CapabilityError, TypeError)), result
    after = (
        dict(matplotlib.style.library["ggplot"]),
        list(matplotlib.rcParams["font.sans-serif"]),
        dict(fm.fontManager.defaultFamily),
        len(fm.fontManager.ttflist),
    )
    assert after == before
    from matplotlib.markers import MarkerStyle

    assert "c" not in MarkerStyle.markers


@pytest.fixture
def mpl_reset():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.style

    yield
    matplotlib.style.reload_library()


def test_read_only_views_never_hand_over_their_storage():
    """The storage of a read-only table is not reachable: not by name, not through a
    comparison (a mappingproxy hands its dict to the other operand's ``__eq__``)."""
    capsule = Capsule(grants=MPL)
    grab = (
        "class X:\n    def __eq__(self, other):\n        got.append(other)\n        return False\n"
        "got = []\n"
    )
    for source in (
        "import matplotlib\nmatplotlib.rcParams.__ipycap_data__",
        "from matplotlib.markers import MarkerStyle\ntype(MarkerStyle.markers).__ipycap_data__",
        grab + "from matplotlib.markers import MarkerStyle\nMarkerStyle.markers == X()\n"
        "[type(g).__name__ for g in got]",
        grab + "import copy\ncopy.dispatch_table == X()\n[type(g).__name__ for g in got]",
        grab
        + "import pprint\npprint.PrettyPrinter._dispatch == X()\n[type(g).__name__ for g in got]",
    ):
        result = _run(capsule, source)
        assert isinstance(result, CapabilityError) or "dict" not in result, (source, result)


def test_trusted_code_uses_shared_tables_as_before():
    """Trusted code (a user's own cell, the library itself) still reads and writes them."""
    import matplotlib.pyplot as plt
    from matplotlib.markers import MarkerStyle

    MarkerStyle.markers["trusted-marker"] = "x"
    try:
        assert MarkerStyle.markers["trusted-marker"] == "x"
        assert isinstance(MarkerStyle.markers, collections.abc.Mapping)
    finally:
        del MarkerStyle.markers["trusted-marker"]
    assert "trusted-marker" not in MarkerStyle.markers
    fig, ax = plt.subplots()
    try:
        ax.plot([1, 2], marker="o", ls="--", lw=2)
        ax.legend(["a"])
        fig.canvas.draw()
    finally:
        plt.close(fig)


def test_capsule_reads_tables_and_uses_them():
    """Reading works in a capsule: a style as a mapping for rc_context, the colour names,
    the marker names; a copy is the capsule's own to change."""
    source = (
        "import matplotlib.pyplot as plt\nimport matplotlib.colors as c\n"
        "from matplotlib.markers import MarkerStyle\n"
        "style = plt.style.library['ggplot']\n"
        "with plt.rc_context(style):\n    fig = plt.figure()\nplt.close(fig)\n"
        "mine = dict(style)\nmine['lines.linewidth'] = 3\n"
        "(c.get_named_colors_mapping()['red'], 'o' in MarkerStyle.markers, len(mine) > 5)"
    )
    assert Capsule(grants=MPL).run(source) == ("#FF0000", True, True)


def test_pandas_and_numpy_tables_are_read_only_in_a_capsule():
    capsule = Capsule(grants=[("import", "pandas"), ("import", "numpy")])
    for source in (
        "import pandas as pd\npd.ExcelFile._engines['capsule'] = object",
        "import pandas as pd\npd.CategoricalDtype._cache_dtypes['capsule'] = 1",
    ):
        result = _run(capsule, source)
        assert isinstance(result, CapabilityError), (source, result)
    import numpy as np

    assert np.finfo(np.float64).eps > 0  # numpy's own cache writes still work
    # numpy's finfo cache is per capsule instead (libraries/instances.py): clearing it clears
    # the capsule's own, and trusted code's cache keeps its entries.
    np.finfo(np.float32)
    trusted = dict(np.finfo._finfo_cache)
    assert _run(capsule, "import numpy as np\nnp.finfo._finfo_cache.clear()") is None
    assert np.finfo._finfo_cache == trusted
