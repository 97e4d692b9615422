"""matplotlib: figures and savefig on granted paths; its fonts and mpl-data are its own;
global rc settings only per block."""

from .profile import PathArg, Profile

_PLOTS = (
    "plot",
    "scatter",
    "bar",
    "barh",
    "hist",
    "boxplot",
    "fill_between",
    "step",
    "stem",
    "errorbar",
    "pie",
    "imshow",
    "violinplot",
)

PROFILE = Profile(
    package="matplotlib",
    summary="figures and plots; savefig only to granted paths; rc settings per block",
    loads=(
        "PIL",
        "matplotlib_inline",
        "numpy",
        "kiwisolver",
        "pyparsing",
        "cycler",
        "dateutil",
        "fontTools",
        "packaging",
        "contourpy",
        "pandas",
    ),
    stdlib=(
        "importlib.metadata",
        "importlib.resources",
        "importlib.readers",
        "importlib.util",
        "importlib.machinery",
    ),
    options={
        "matplotlib.rc": "with plt.rc_context({'lines.linewidth': 2}): ...",
        "matplotlib.pyplot.rc": "with plt.rc_context({'lines.linewidth': 2}): ...",
        "matplotlib.rcdefaults": "with plt.rc_context(): ...",
        "matplotlib.pyplot.rcdefaults": "with plt.rc_context(): ...",
        "matplotlib.rc_file": "with plt.rc_context(fname=...): ...",
        "matplotlib.use": "the backend is the notebook's",
        "matplotlib.pyplot.switch_backend": "the backend is the notebook's",
        "matplotlib.style.use": "with plt.style.context('ggplot'): ...",
        "matplotlib.pyplot.style.use": "with plt.style.context('ggplot'): ...",
    },
    replaced={
        # protected DataFrames/Series plotted: deep copies (wrappers.copies_protected)
        **{
            key: "copies_protected"
            for n in _PLOTS
            for key in (f"matplotlib.pyplot.{n}", f"matplotlib.axes._axes:Axes.{n}")
        },
        "matplotlib.rcParams": "read_only_rc",
        "matplotlib.pyplot.rcParams": "read_only_rc",
        "matplotlib.rcParamsDefault": "read_only_rc",  # rcdefaults() copies them back
        "matplotlib.rcParamsOrig": "read_only_rc",
        "matplotlib.units.registry": "read_only_table",  # type -> converter, every plot asks
    },
    registers={
        "matplotlib.scale.register_scale": "matplotlib's scale names ('log' for everyone)",
        "matplotlib.projections.register_projection": "matplotlib's projection names",
        "matplotlib.backend_bases.register_backend": "matplotlib's savefig formats",
        "matplotlib.cm:ColormapRegistry.register": "matplotlib.colormaps",
        "matplotlib.cm:ColormapRegistry.unregister": "matplotlib.colormaps",
        "matplotlib.colors:ColorSequenceRegistry.register": "matplotlib.color_sequences",
        "matplotlib.colors:ColorSequenceRegistry.unregister": "matplotlib.color_sequences",
        "matplotlib.projections:ProjectionRegistry.register": "matplotlib's projection names",
        "matplotlib.animation:MovieWriterRegistry.register": "matplotlib.animation.writers "
        "(Animation.save(writer='ffmpeg') looks the writer up there)",
    },
    not_registries={
        "matplotlib.backend_tools.add_tools_to_container": "adds tools to the container given",
        "matplotlib.backend_tools.add_tools_to_manager": "adds tools to the manager given",
    },
    templates={
        # '{x.__class__...}' formatted by matplotlib on tick values and what else it is given
        "matplotlib.ticker:StrMethodFormatter.__init__": PathArg(0, "fmt"),
        "matplotlib.ticker:StrMethodFormatter.__call__": "fmt",  # f.fmt = ... later
        "matplotlib.cbook._auto_format_str": PathArg(0, "fmt"),  # bar_label(fmt='{...}')
    },
    unchecked="savefig opens files from Python, where the tripwire checks them",
    # Cached unit polygons and stars (Path objects): per capsule, so a capsule's Path is
    # never the one trusted code draws.
    instance_tables=(
        "matplotlib.path:Path._unit_regular_polygons",
        "matplotlib.path:Path._unit_regular_stars",
    ),
    shared_tables={
        "matplotlib:RcParams.validate": "rcParam name -> validator, made at import",
        "matplotlib._mathtext:_GlueSpec._named": "mathtext glue specs (named tuples)",
        "matplotlib.path:Path.NUM_VERTICES_FOR_CODE": "path code -> vertex count (ints)",
        "matplotlib.legend:Legend._default_handler_map": (
            "artist class -> legend handler, made at import (no instance of user data)"
        ),
        "matplotlib.axes._base:_AxesBase._shared_axes": (
            "Groupers of axes joined by sharex/sharey: trusted code draws a capsule's "
            "figures after its cell and must see its shared axes.  OPEN: it holds the "
            "user's shared axes too (a per-capsule view of the Groupers is to be written)"
        ),
    },
)
