"""Where granted libraries keep or later run what a capsule gave them (I3), and share state
with trusted code: registrations, format templates, pyplot's figure table, worker threads.

Regression tests for red-team pass 3 (branch rt-libs, tests/redteam/test_rt_libs.py): each
keeps the red team's assertion (the canary is not reached) and adds variants of its class."""

from __future__ import annotations

import importlib
import re
import sys
import textwrap
import types
import warnings

import pytest

from ipycap import Capsule
from ipycap.engine.libraries import PROFILES
from tests.redteam.harness import Vault

np = pytest.importorskip("numpy")
pd = pytest.importorskip("pandas")
mpl = pytest.importorskip("matplotlib")
mpl.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def run(source, imports, protected=None):
    capsule = Capsule(
        protected=protected or {}, grants=[("import", m) for m in imports], label="boundary"
    )
    try:
        result = capsule.run(textwrap.dedent(source))
    except Exception as e:  # noqa: BLE001 - a refusal is fine; the canary decides
        result = e
    return result, capsule.namespace


# == 1. registrations =========================================================================
_MODULES = [
    "numpy.lib",
    "pandas.api.extensions",
    "pandas.plotting",
    "pandas.io.excel",
    "pandas.core.config_init",
    "pandas.core.computation.expr",
    "pyarrow.compute",
    "polars.api",
    "polars.plugins",
    "matplotlib.pyplot",
    "matplotlib.scale",
    "matplotlib.projections",
    "matplotlib.backend_tools",
    "PIL.Image",
    "sklearn.base",
    "sklearn.preprocessing",
    "sklearn.linear_model",
    "sklearn.model_selection",
    "sklearn.pipeline",
    "sklearn.datasets",
    "sklearn.metrics",
    "sklearn.ensemble",
    "sklearn.cluster",
    "sklearn.decomposition",
    "pyarrow.parquet",
    "pyarrow.csv",
    "pyarrow.dataset",
    "pyarrow.feather",
    "pyarrow.ipc",
    "polars.selectors",
    "pandas.io.formats.style",
    "matplotlib.animation",
    "matplotlib.widgets",
    "matplotlib.dates",
    "matplotlib.patches",
    "PIL.ImageOps",
    "PIL.ImageDraw",
    "PIL.ImageFilter",
    "PIL.ImageFont",
    "PIL.ImageChops",
    "tqdm",
    "tqdm.contrib.concurrent",
    "tqdm.auto",
]
_REGISTRATION = re.compile(r"^(un|de)?register|^add_")


def _classified():
    """Every name a profile classifies, and the objects those names stand for."""
    names, objects = set(), set()
    for p in PROFILES.values():
        for table in (p.registers, p.not_registries, p.refused, p.options, p.replaced):
            for key in table:
                names.add(key)
                module_name, colon, path = key.partition(":")
                if colon:
                    continue
                module_name, _, attr = key.rpartition(".")
                module = sys.modules.get(module_name)
                if module is not None and attr in vars(module):
                    objects.add(id(vars(module)[attr]))
    return names, objects


def _registration_candidates():
    """Public functions named like registrations (``register*``, ``add_*``), module-level
    dict/list subclasses, and objects with a ``register`` method, in every imported public
    module of every profiled library."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in _MODULES:
            try:
                importlib.import_module(name)
            except ImportError:
                pass
    found = {}
    for modname, module in sorted(sys.modules.items()):
        parts = modname.split(".")
        if parts[0] not in PROFILES or module is None or any(p[:1] == "_" for p in parts[1:]):
            continue
        for attr, value in sorted(vars(module).items()):
            if attr[:1] == "_" or isinstance(value, types.ModuleType):
                continue
            key = f"{modname}.{attr}"
            if callable(value) and not isinstance(value, type) and _REGISTRATION.match(attr):
                found.setdefault(id(value), (key, value))
            elif isinstance(value, (dict, list, set)) and type(value) not in (dict, list, set):
                found.setdefault(id(value), (key, value))
            elif not isinstance(value, type) and callable(getattr(type(value), "register", None)):
                found.setdefault(id(value), (key, value))
    return list(found.values())


def test_every_registration_api_of_the_profiled_libraries_is_classified():
    """A library upgrade adding a registration function (or a registry object) fails here
    until its profile says whether capsules may call it."""
    candidates = _registration_candidates()  # imports the modules first
    names, objects = _classified()
    method_owners = {k.partition(":")[2].rpartition(".")[0] for k in names if ":" in k}
    missing = []
    for key, value in candidates:
        if key in names or id(value) in objects:
            continue
        if type(value).__name__ in method_owners:  # a registry object: its methods are listed
            continue
        missing.append(key)
    assert not missing, f"registration APIs no profile classifies: {missing}"


def _refused_registrations():
    return sorted(k for p in PROFILES.values() for k in p.registers if ":" not in k)


@pytest.mark.parametrize("key", _refused_registrations())
def test_registration_function_is_refused_in_a_capsule(key):
    module_name, _, attr = key.rpartition(".")
    package = module_name.partition(".")[0]
    pytest.importorskip(package)
    result, ns = run(f"from {module_name} import {attr}\nok = 1\n", [package])
    assert isinstance(result, PermissionError), result
    assert f"refused by the {package} profile" in str(result) and "ok" not in ns


_LATER_REGISTRIES = {
    # the red team's three, and more registries of the same class
    "matplotlib_scale_registry": (
        """
        import matplotlib.scale as scale
        class Spy(scale.LogScale):
            name = 'log'
            def __init__(self, axis, **kw):
                stash.append(axis.axes.get_title())
                super().__init__(axis, **kw)
        scale.register_scale(Spy)
        """,
        ("matplotlib",),
    ),
    "matplotlib_colormaps_register": (
        """
        import matplotlib
        import matplotlib.colors as colors
        class Spy(colors.ListedColormap):
            def __call__(self, X, *a, **k):
                stash.append(repr(X))
                return super().__call__(X, *a, **k)
        matplotlib.colormaps.register(Spy(['red', 'blue'], name='viridis'), force=True)
        """,
        ("matplotlib",),
    ),
    "matplotlib_units_registry": (
        """
        import matplotlib.units as units
        class Spy(units.ConversionInterface):
            @staticmethod
            def convert(value, unit, axis):
                stash.append(repr(value))
                return value
        units.registry[float] = Spy()
        """,
        ("matplotlib",),
    ),
    "pandas_extension_dtype_registry": (
        """
        import pandas as pd
        @pd.api.extensions.register_extension_dtype
        class Hijack(pd.Float64Dtype):
            name = 'BoundaryFloat'
        """,
        ("pandas",),
    ),
    "pandas_dataframe_accessor": (
        """
        import pandas as pd
        @pd.api.extensions.register_dataframe_accessor('spy')
        class Spy:
            def __init__(self, frame):
                stash.append(frame)
        """,
        ("pandas",),
    ),
    "matplotlib_movie_writer_registry": (
        """
        import matplotlib.animation as animation
        @animation.writers.register('ffmpeg')
        class Spy(animation.FFMpegWriter):
            def setup(self, fig, *a, **k):
                stash.append(fig)
        """,
        ("matplotlib",),
    ),
    "pil_open_registry": (
        """
        import PIL.Image as Image
        def factory(fp, filename):
            stash.append(fp.read().decode())
            raise SyntaxError
        Image.register_open('BOUNDARY', factory, lambda prefix: True)
        """,
        ("PIL",),
    ),
    "pil_extensions_table": (
        """
        import PIL.Image as Image
        Image.registered_extensions()['.png'] = 'BOUNDARY'
        """,
        ("PIL",),
    ),
}


@pytest.mark.parametrize("name", sorted(_LATER_REGISTRIES))
def test_capsule_cannot_change_a_library_registry(name):
    """Nothing a capsule registers is found later by trusted code: each registry is the same
    object, with the same entries, after the capsule ran."""
    source, imports = _LATER_REGISTRIES[name]
    pytest.importorskip(imports[0])
    import matplotlib.scale as scale
    import matplotlib.units as units
    from pandas.core.dtypes.base import _registry
    from PIL import Image

    Image.init()  # PIL registers its own plugins on first use: not the capsule's doing
    import matplotlib.animation as animation

    before = (
        dict(animation.writers._registered),
        dict(scale._scale_mapping),
        dict(units.registry),
        list(_registry.dtypes),
        dict(Image.OPEN),
        list(Image.ID),
        dict(Image.EXTENSION),
        dict(mpl.colormaps),
        hasattr(pd.DataFrame, "spy"),
    )
    result, ns = run("stash = []\n" + textwrap.dedent(source), imports)
    after = (
        dict(animation.writers._registered),
        dict(scale._scale_mapping),
        dict(units.registry),
        list(_registry.dtypes),
        dict(Image.OPEN),
        list(Image.ID),
        dict(Image.EXTENSION),
        dict(mpl.colormaps),
        hasattr(pd.DataFrame, "spy"),
    )
    if name != "pil_extensions_table":  # that one changes a copy
        assert isinstance(result, (PermissionError, TypeError)), result
    assert before == after, f"ESCAPE ({name}): a registry changed"


@pytest.mark.parametrize(
    "source",
    [
        "from tqdm import tqdm\ntqdm.format_meter = staticmethod(spy)\n",
        "import tqdm.std\ntqdm.std.tqdm.__str__ = spy\n",
        "from tqdm import trange\ntype(trange(0)).format_meter = staticmethod(spy)\n",
    ],
)
def test_capsule_cannot_patch_tqdm_for_trusted_bars(source):
    """tqdm's classes were left unfrozen: a capsule's ``format_meter`` received the
    description of every progress bar trusted code drew later."""
    import io

    import tqdm.std

    result, ns = run(
        "stash = []\ndef spy(*a, **k):\n    stash.append(k)\n    return ''\n" + source, ["tqdm"]
    )
    bar = tqdm.std.tqdm(total=3, desc="USER-BAR", file=io.StringIO())
    bar.update(1)
    bar.close()
    assert isinstance(result, TypeError), result
    assert "USER-BAR" not in str(ns.get("stash"))


def test_tqdm_still_works_for_capsules_and_trusted_code():
    import io

    import tqdm.std
    from tqdm.contrib.concurrent import thread_map

    result, ns = run(
        """
        import io
        from tqdm import tqdm, trange
        f = io.StringIO()
        for i in tqdm(range(3), file=f, desc='capsule'):
            pass
        for i in trange(2, file=f):
            pass
        tqdm.write('hello', file=f)
        text = f.getvalue()
        """,
        ["tqdm"],
    )
    assert not isinstance(result, Exception), result
    assert "capsule: 100%" in ns["text"] and "hello" in ns["text"]
    out = io.StringIO()
    for _ in tqdm.std.tqdm(range(2), file=out, desc="trusted"):
        pass
    assert "trusted: 100%" in out.getvalue()
    assert thread_map(lambda x: x + 1, range(3), file=io.StringIO()) == [1, 2, 3]


def test_capsule_log_scale_registration_never_sees_the_users_figure(canary):
    """The red team's case: a capsule replaces the 'log' scale; the user's later log plot
    would hand it the user's Axes."""
    _, token = canary
    result, ns = run(
        "stash = []\n" + textwrap.dedent(_LATER_REGISTRIES["matplotlib_scale_registry"][0]),
        ["matplotlib"],
    )
    fig = plt.figure()
    ax = fig.add_subplot()
    ax.set_title(token)
    ax.set_yscale("log")
    plt.close(fig)
    assert token not in str(ns.get("stash"))


def test_library_registers_its_own_entries_while_a_capsule_runs():
    """The refusal is of capsule code calling the registration: the library registering on
    its own behalf during a capsule's call still works (pandas' own dtypes, matplotlib's
    colormaps), and reading the registries works."""
    result, ns = run(
        """
        import matplotlib
        import pandas as pd
        names = 'viridis' in matplotlib.colormaps
        s = str(pd.Series([1.5], dtype='Float64').dtype)
        import PIL.Image
        exts = '.png' in PIL.Image.registered_extensions()
        """,
        ["matplotlib", "pandas", "PIL"],
    )
    assert not isinstance(result, Exception), result
    assert (ns["names"], ns["s"], ns["exts"]) == (True, "Float64", True)


# == 2. templates ===============================================================================
_CHAIN = "x.__globals__[sys].modules[__main__].boundary_vault._token"
_TEMPLATES = {
    # the red team's two
    "matplotlib_strmethodformatter": (
        "from matplotlib.ticker import StrMethodFormatter\nimport matplotlib.pyplot as plt\n"
        "loot = StrMethodFormatter('{" + _CHAIN + "}')(plt.figure)\n",
        ("matplotlib",),
    ),
    "tqdm_bar_format": (
        "from tqdm import tqdm\n"
        "loot = tqdm.format_meter(1, 2, 0, bar_format='{" + _CHAIN + "}', x=tqdm.format_meter)\n",
        ("tqdm",),
    ),
    # the same class: the template set later, another API, another library
    "matplotlib_strmethodformatter_fmt_reassigned": (
        "from matplotlib.ticker import StrMethodFormatter\nimport matplotlib.pyplot as plt\n"
        "f = StrMethodFormatter('{x:.1f}')\nf.fmt = '{" + _CHAIN + "}'\n"
        "loot = f(plt.figure)\n",
        ("matplotlib",),
    ),
    "matplotlib_axis_formatter_string": (
        "import matplotlib.pyplot as plt\nfig, ax = plt.subplots()\n"
        "ax.xaxis.set_major_formatter('{x.__class__.__init__.__globals__}')\n"
        "fig.canvas.draw()\nloot = [t.get_text() for t in ax.get_xticklabels()]\n",
        ("matplotlib",),
    ),
    "tqdm_bar_format_in_constructor": (
        "from tqdm import tqdm\nimport io\n"
        "bar = tqdm(total=2, file=io.StringIO(), bar_format='{n.__class__.__mro__}')\n"
        "loot = str(bar)\n",
        ("tqdm",),
    ),
    "tqdm_bar_format_reassigned": (
        "from tqdm import tqdm\nimport io\n"
        "bar = tqdm(total=2, file=io.StringIO())\nbar.bar_format = '{n.__class__.__mro__}'\n"
        "loot = str(bar)\n",
        ("tqdm",),
    ),
    "pandas_float_format_template": (
        "import pandas as pd\n"
        "loot = pd.DataFrame({'a': [1.5]}).to_string(float_format='{0.__class__.__mro__}')\n",
        ("pandas",),
    ),
    # (Styler.format itself is refused by the guard: '.format' is a format oracle's name)
    "pandas_styler_format_index_template": (
        "import pandas as pd\n"
        "loot = pd.DataFrame({'a': [1.5]}).style.format_index('{0.__class__.__mro__}')"
        ".to_html()\n",
        ("pandas",),
    ),
    "pandas_styler_relabel_index_template": (
        "import pandas as pd\n"
        "loot = pd.DataFrame({'a': [1.5]}).style.relabel_index(['{0.__class__.__mro__}'])"
        ".to_html()\n",
        ("pandas",),
    ),
}


@pytest.fixture
def user_main(canary):
    main = sys.modules["__main__"]
    main.boundary_vault = Vault(canary[1])  # a user object the capsule was never given
    yield canary[1]
    del main.boundary_vault


@pytest.mark.parametrize("name", sorted(_TEMPLATES))
def test_library_format_template_cannot_traverse_private_names(name, user_main):
    source, imports = _TEMPLATES[name]
    pytest.importorskip(imports[0])
    if name.startswith("pandas_styler"):
        pytest.importorskip("jinja2")
    result, ns = run(source, imports)
    loot = str(ns.get("loot")).replace("\u2212", "-")
    assert user_main not in loot, f"ESCAPE ({name})"
    assert "mro" not in loot and "__globals__" not in loot and "<class" not in loot
    assert isinstance(result, PermissionError), result
    assert "reads a private or guarded attribute" in str(result)


def test_library_format_templates_with_public_fields_work():
    result, ns = run(
        """
        import io
        import matplotlib.pyplot as plt
        import pandas as pd
        from matplotlib.ticker import StrMethodFormatter
        from tqdm import tqdm
        tick = StrMethodFormatter('{x:.2f} m')(1.5)
        bar = str(tqdm(total=4, initial=2, file=io.StringIO(), bar_format='{n}/{total} {unit}'))
        table = pd.DataFrame({'a': [1.5]}).to_string(float_format='{:.3f}'.format)
        table2 = pd.DataFrame({'a': [1.5]}).to_string(float_format='{:.3f}')
        fig, ax = plt.subplots()
        bars = ax.bar([0], [2.0])
        label = ax.bar_label(bars, fmt='{:.1f}')[0].get_text()
        plt.close(fig)
        """,
        ["matplotlib", "pandas", "tqdm"],
    )
    assert not isinstance(result, Exception), result
    assert ns["tick"] == "1.50 m" and ns["bar"] == "2/4 it" and ns["label"] == "2.0"
    assert "1.500" in ns["table"] and "1.500" in ns["table2"]


def test_trusted_code_keeps_its_own_templates():
    """The check is a capsule's: the user's own formatter with any template is unchanged."""
    from matplotlib.ticker import StrMethodFormatter

    assert StrMethodFormatter("{x.__class__.__name__}")(1.5) == "float"


# == 3. pyplot's figure table =================================================================
def test_capsule_pyplot_current_figure_is_not_the_users(canary):
    """The red team's case: plt.gcf() in a capsule returned the user's current figure."""
    _, token = canary
    fig = plt.figure()
    fig.add_subplot().set_title(token)
    try:
        result, ns = run(
            "import matplotlib.pyplot as plt\nloot = plt.gcf().axes[0].get_title()\n",
            ["matplotlib"],
        )
    finally:
        plt.close(fig)
    assert token not in str(ns.get("loot")), "ESCAPE: the capsule read the user's figure"


_FIGURE_STATE = {
    "gcf_axes": "loot = [a.get_title() for a in plt.gcf().axes]",
    "gca": "loot = plt.gca().get_title()",
    "get_fignums_then_figure": "loot = [plt.figure(n).axes[0].get_title() for n in plt.get_fignums()]",
    "figure_by_number": "loot = plt.figure(NUM).axes",
    "figure_by_label": "loot = plt.figure('user-figure').axes",
    "get_figlabels": "loot = plt.get_figlabels()",
    "fignum_exists": "loot = plt.fignum_exists(NUM)",
    "close_all": "plt.close('all')\nloot = ''",
    "clf": "plt.clf()\nloot = ''",
    "close_by_number": "plt.close(NUM)\nloot = ''",
}


@pytest.mark.parametrize("name", sorted(_FIGURE_STATE))
def test_capsule_sees_only_its_own_pyplot_figures(name, canary):
    _, token = canary
    fig = plt.figure("user-figure")
    fig.add_subplot().set_title(token)
    num = fig.number
    try:
        source = "import matplotlib.pyplot as plt\n" + _FIGURE_STATE[name].replace("NUM", str(num))
        result, ns = run(source, ["matplotlib"])
        assert token not in str(ns.get("loot")), f"ESCAPE ({name})"
        assert "user-figure" not in str(ns.get("loot")) and ns.get("loot") is not True
        assert plt.fignum_exists(num) and fig.axes and fig.axes[0].get_title() == token
        assert plt.figure(num) is fig  # the user's figure is still theirs, untouched
    finally:
        plt.close("all")


def test_capsule_figures_are_numbered_apart_from_the_users():
    user = plt.figure()
    try:
        result, ns = run(
            """
            import matplotlib.pyplot as plt
            a = plt.figure(); b, _ = plt.subplots()
            nums = plt.get_fignums()
            same = plt.gcf() is b and plt.figure(nums[0]) is a
            plt.close(a)
            left = plt.get_fignums() == [nums[1]]
            """,
            ["matplotlib"],
        )
        assert not isinstance(result, Exception), result
        assert ns["same"] and ns["left"] and user.number not in ns["nums"]
        assert plt.gcf() is not user or len(plt.get_fignums()) == 2  # trusted sees them all
        assert user.number in plt.get_fignums()
        capsule_fig = plt.figure(ns["nums"][1])  # trusted code may make it current
        assert capsule_fig is ns["b"] and plt.gcf() is capsule_fig
    finally:
        plt.close("all")


def test_capsule_cannot_take_a_users_figure_number():
    user = plt.figure()
    try:
        result, ns = run(
            f"import matplotlib.pyplot as plt\nplt.figure({user.number})\n", ["matplotlib"]
        )
        assert isinstance(result, PermissionError), result
        assert "belongs to a figure outside this capsule" in str(result)
        assert plt.figure(user.number) is user
    finally:
        plt.close("all")


@pytest.fixture
def ip(tmp_path, monkeypatch):
    from IPython.core.displaypub import CapturingDisplayPublisher
    from IPython.core.interactiveshell import InteractiveShell

    monkeypatch.chdir(tmp_path)
    shell = InteractiveShell.instance()
    shell.history_manager.enabled = False
    saved = shell.display_pub
    shell.display_pub = CapturingDisplayPublisher()
    shell.run_line_magic("load_ext", "ipycap")
    yield shell
    shell.run_line_magic("unload_ext", "ipycap")
    shell.display_pub = saved
    shell.reset(new_session=False)
    plt.close("all")
    from matplotlib_inline import backend_inline

    backend_inline.configure_inline_support(shell, "agg")  # unhooks the inline flush
    mpl.interactive(False)
    mpl.use("Agg")


def test_inline_backend_shows_capsule_figures_and_keeps_the_users(ip, canary):
    """With the inline backend in IPython, a capsule's figure is displayed at the end of its
    cell (by the backend, trusted, which shows every open figure as it always does); the
    capsule neither sees nor draws into the user's figure made earlier.  Before the fix the
    capsule's plt.plot drew into the user's current figure, and nothing new was shown."""
    _, token = canary
    from matplotlib_inline import backend_inline

    backend = "module://matplotlib_inline.backend_inline"
    mpl.use(backend)
    backend_inline.configure_inline_support(ip, backend)  # what %matplotlib inline sets up
    mpl.interactive(False)  # the user's figure stays open after its cell
    ip.run_cell(
        "import matplotlib.pyplot as plt\n"
        f"user_fig = plt.figure()\nuser_fig.add_subplot().set_title({token!r})",
        store_history=False,
    )
    mpl.interactive(True)  # as %matplotlib inline sets it
    ip.display_pub.outputs.clear()
    result = ip.run_cell(
        "%%capsule --allow-import matplotlib\nimport matplotlib.pyplot as plt\n"
        "seen = [a.get_title() for f in map(plt.figure, plt.get_fignums()) for a in f.axes]\n"
        "plt.plot([1, 2, 3])\nplt.title('capsule plot')\nstr(seen)",
        store_history=False,
    )
    assert result.error_in_exec is None, result.error_in_exec
    assert token not in str(result.result)
    assert result.result == "[]"
    pngs = [o for o in ip.display_pub.outputs if "image/png" in o["data"]]
    assert len(pngs) == 2, ip.display_pub.outputs  # the user's open figure and the capsule's
    user_fig = ip.user_ns["user_fig"]
    assert [a.get_title() for a in user_fig.axes] == [token] and not user_fig.axes[0].lines


# == 4. library worker threads ================================================================
_WORKER_THREAD = {
    "map_elements_path_read_text": """
        import polars as pl
        from matplotlib.cbook import Path
        lf = pl.LazyFrame({'p': [SECRET]})
        out = lf.select(
            pl.col('p').map_elements(Path, return_dtype=pl.Object)
            .map_elements(Path.read_text, return_dtype=pl.String)
        ).collect()
        loot = out.item()
        """,
    "map_batches_series": """
        import polars as pl
        from matplotlib.cbook import Path
        def read(s):
            return pl.Series([Path(p).read_text() for p in s])
        loot = pl.LazyFrame({'p': [SECRET]}).select(pl.col('p').map_batches(read)).collect().item()
        """,
    "lazyframe_map_batches": """
        import polars as pl
        from matplotlib.cbook import Path
        def read(df):
            return pl.DataFrame({'p': [Path(df.item()).read_text()]})
        loot = pl.LazyFrame({'p': [SECRET]}).map_batches(read).collect().item()
        """,
    "fold": """
        import polars as pl
        from matplotlib.cbook import Path
        def acc(a, b):
            return pl.Series([Path(b.item()).read_text()])
        loot = pl.LazyFrame({'p': [SECRET]}).select(
            pl.fold(pl.lit(''), acc, [pl.col('p')])).collect().item()
        """,
}


@pytest.mark.parametrize("name", sorted(_WORKER_THREAD))
def test_polars_worker_thread_runs_capsule_udfs_under_the_capsule(name, canary):
    """polars runs UDFs on its own threads, where no capsule frame was on the stack: a
    trusted function (Path.read_text) as the UDF read the secret unwatched."""
    pytest.importorskip("polars")
    import polars._utils.udfs  # noqa: F401 - the user has used map_elements before

    secret, token = canary
    source = textwrap.dedent(_WORKER_THREAD[name]).replace("SECRET", repr(str(secret)))
    result, ns = run(source, ["polars", "matplotlib"])
    assert token not in str(ns.get("loot")), f"ESCAPE ({name}): a polars thread read the secret"


def test_udf_trampoline_runs_as_the_capsule_and_holds_nothing():
    """The frame a capsule's UDF runs under belongs to that capsule (the tripwire finds it
    on any thread), its globals hold only what a capsule's own ``globals()`` holds, and the
    helper makes trampolines for capsule builtins only."""
    import builtins

    from ipycap.engine import tripwire

    capsule = Capsule(label="udf")
    capsule.run("x = 1")
    module = capsule.namespace["__builtins__"]
    udf = tripwire.trusted_udf(tripwire.current_context, module)
    assert udf() is capsule.context  # trusted fn, capsule frame above it
    assert set(udf.__globals__) == {"__builtins__", "__name__"}
    assert udf.__globals__["__builtins__"] is module
    raw = type(builtins).__dict__["__dict__"].__get__(module)  # the capsule's builtins dict
    for fake in (builtins, vars(builtins), raw, dict(raw)):
        with pytest.raises(PermissionError):
            tripwire.trusted_udf(print, fake)


def test_polars_udfs_still_work_in_a_capsule():
    pytest.importorskip("polars")
    result, ns = run(
        """
        import polars as pl
        df = pl.DataFrame({'a': [1, 2, 3]})
        out = df.lazy().select(pl.col('a').map_elements(lambda v: v * 10, return_dtype=pl.Int64)).collect()
        total = out['a'].to_list()
        b = pl.Series([1, 2]).map_elements(lambda v: v + 1, return_dtype=pl.Int64).to_list()
        """,
        ["polars"],
    )
    assert not isinstance(result, Exception), result
    assert ns["total"] == [10, 20, 30] and ns["b"] == [2, 3]


def test_every_polars_udf_parameter_is_profiled():
    """Every public polars function or method taking a ``function`` runs it under the
    capsule: a polars upgrade adding one fails here until the profile lists it."""
    pl = pytest.importorskip("polars")
    import inspect

    import polars.dataframe.group_by as gb
    import polars.lazyframe.group_by as lgb

    listed = set(PROFILES["polars"].udfs)
    owners = [
        (pl.Expr, "polars:Expr"),
        (pl.Series, "polars:Series"),
        (pl.DataFrame, "polars:DataFrame"),
        (pl.LazyFrame, "polars:LazyFrame"),
        (gb.GroupBy, "polars.dataframe.group_by:GroupBy"),
        (lgb.LazyGroupBy, "polars.lazyframe.group_by:LazyGroupBy"),
    ]
    missing = []
    for owner, label in owners:
        for n in dir(owner):
            v = getattr(owner, n, None)
            if n[:1] == "_" or not callable(v) or isinstance(v, type):
                continue
            try:
                params = inspect.signature(v).parameters
            except (TypeError, ValueError):
                continue
            if "function" in params and f"{label}.{n}" not in listed:
                missing.append(f"{label}.{n}")
    for n in dir(pl):
        v = getattr(pl, n)
        if n[:1] == "_" or not isinstance(v, types.FunctionType):
            continue
        if "function" in inspect.signature(v).parameters and f"polars.{n}" not in listed:
            missing.append(f"polars.{n}")
    assert not missing, missing
