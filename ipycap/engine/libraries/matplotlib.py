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
        "matplotlib.rc_file_defaults": "with plt.rc_context(): ...",
        "matplotlib.interactive": "plt.ion() or plt.ioff() (they end with the cell)",
        "matplotlib.dates.set_epoch": "dates as datetime64 or datetime objects (the epoch "
        "is the session's)",
    },
    not_options={
        "matplotlib.pyplot.set_cmap": "the capsule's current image and rcParams['image.cmap'],"
        " put back after the cell (blocks.py)",
        "matplotlib.rc_params": "returns a new RcParams",
        "matplotlib.rc_params_from_file": "returns a new RcParams (reads on granted paths)",
    },
    replaced={
        # protected DataFrames/Series plotted: deep copies (wrappers.copies_protected)
        **{
            key: "copies_protected"
            for n in _PLOTS
            for key in (f"matplotlib.pyplot.{n}", f"matplotlib.axes._axes:Axes.{n}")
        },
        # a file object's fileno() is a descriptor Pillow's encoders write (fds / pil.py)
        "matplotlib.figure:Figure.savefig": "writes_file_object",
        "matplotlib.rcParams": "read_only_rc",
        "matplotlib.pyplot.rcParams": "read_only_rc",
        "matplotlib.rcParamsDefault": "read_only_rc",  # rcdefaults() copies them back
        "matplotlib.rcParamsOrig": "read_only_rc",
        "matplotlib.units.registry": "read_only_table",  # type -> converter, every plot asks
        "matplotlib.colors.get_named_colors_mapping": "read_only_result",  # the colour names
        # ended with the capsule run that entered them (blocks.py); xkcd/ioff/ion apply
        # when called, as matplotlib's do
        "matplotlib.rc_context": "rc_block",
        "matplotlib.pyplot.rc_context": "rc_block",
        "matplotlib.style.context": "rc_block",
        "matplotlib.pyplot.xkcd": "eager_block",
        "matplotlib.pyplot.ioff": "eager_block",
        "matplotlib.pyplot.ion": "eager_block",
    },
    refused={
        "matplotlib.set_loglevel": "matplotlib's logger is the session's",
        "matplotlib.pyplot.set_loglevel": "matplotlib's logger is the session's",
        "matplotlib.pyplot.install_repl_displayhook": "it changes IPython's display hooks "
        "for the session",
        "matplotlib.pyplot.uninstall_repl_displayhook": "it changes IPython's display hooks "
        "for the session",
        # it imports the module it is named and returns it raw (load_backend_module('agg')
        # gave the capsule matplotlib.backends.backend_agg, and from it cbook.os)
        "matplotlib.backends.registry:BackendRegistry.load_backend_module": "it imports a "
        "module by name and hands it over raw",
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
    tables={
        **{
            f"matplotlib.lines:Line2D.{name}": "marker, line and draw styles every Line2D uses"
            for name in (
                "markers",
                "lineStyles",
                "_lineStyles",
                "drawStyles",
                "_drawStyles_l",
                "_drawStyles_s",
                "drawStyleKeys",
            )
        },
        "matplotlib.markers:MarkerStyle.markers": "the marker names every plot looks up",
        **{
            f"matplotlib.patches:{cls}._style_list": f"{cls}('name') instantiates the class here"
            for cls in ("BoxStyle", "ConnectionStyle", "ArrowStyle")
        },
        "matplotlib.colors:ColorConverter.colors": "the colour names (the same table as "
        "colors.get_named_colors_mapping())",
        "matplotlib.font_manager:fontManager.defaultFamily": "the fallback font of findfont",
        "matplotlib.font_manager:fontManager.ttflist": "the fonts findfont chooses from",
        "matplotlib.font_manager:fontManager.afmlist": "the fonts findfont chooses from",
        "matplotlib.legend:Legend._default_handler_map": "artist type -> the handler object "
        "every legend calls",
        "matplotlib.backend_bases:FigureCanvasBase.filetypes": "savefig's format names",
        "matplotlib.ticker:EngFormatter.ENG_PREFIXES": "tick labels",
        "matplotlib.ticker:MaxNLocator.default_params": "every MaxNLocator's parameters",
        "matplotlib.path:Path.NUM_VERTICES_FOR_CODE": "how every path is walked",
        "matplotlib:RcParams.validate": "rc key -> the validator every rcParams[...] = v calls",
        "matplotlib.backends.registry:backend_registry._name_to_module": "backend name -> "
        "the module switch_backend imports",
        "matplotlib.backends.registry:backend_registry._backend_to_gui_framework": "backends",
        "matplotlib.backends.registry:BackendRegistry._BUILTIN_BACKEND_TO_GUI_FRAMEWORK": "backends",
        "matplotlib.backends.registry:BackendRegistry._GUI_FRAMEWORK_TO_BACKEND": "backends",
        "matplotlib.cm:_colormaps._cmaps": "matplotlib.colormaps: name -> the colormap every "
        "plot copies and calls",
        "matplotlib.cm:_multivar_colormaps._cmaps": "multivariate colormaps",
        "matplotlib.cm:_bivar_colormaps._cmaps": "bivariate colormaps",
        "matplotlib.colors:_color_sequences._color_sequences": "matplotlib.color_sequences",
        "matplotlib.colors:ColorSequenceRegistry._BUILTIN_COLOR_SEQUENCES": "colour sequences",
        "matplotlib.projections:projection_registry._all_projection_types": "projection name "
        "-> the Axes class add_subplot instantiates",
        "matplotlib.mathtext:MathTextParser._font_type_mapping": "-> the font class mathtext "
        "instantiates",
        "matplotlib.texmanager:TexManager._font_preambles": "the LaTeX preamble usetex runs",
        "matplotlib.texmanager:TexManager._font_types": "usetex fonts",
        "matplotlib.texmanager:TexManager._grey_arrayd": "usetex's rendered cache",
        "matplotlib.dviread:Dvi._dtable": "opcode -> the method dvi parsing calls",
        "matplotlib.animation:writers._registered": "writer name -> the class "
        "Animation.save(writer='ffmpeg') instantiates",
        "matplotlib:*.supported_formats": "the formats a movie writer accepts",
        **{
            f"matplotlib.{key}": "layout codes and aliases trusted code looks up"
            for key in (
                "legend:Legend.codes",
                "offsetbox:AnchoredOffsetbox.codes",
                "table:Table.codes",
                "table:Cell._edge_aliases",
                "quiver:QuiverKey.halign",
                "quiver:QuiverKey.valign",
                "quiver:QuiverKey.pivot",
                "transforms:BboxBase.coefs",
                "dates:DateLocator.hms0d",
                "scale:AsinhScale.auto_tick_multipliers",
                "gridspec:GridSpec._AllowedKeys",
                "backend_bases:FigureCanvasBase.events",
                "artist:Artist._PROPERTIES_EXCLUDED_FROM_SET",
            )
        },
        **{
            f"{module}:{cls}._alias_to_prop": "keyword aliases (lw -> linewidth) of every call"
            for module, cls in (
                ("matplotlib.lines", "Line2D"),
                ("matplotlib.patches", "Patch"),
                ("matplotlib.text", "Text"),
                ("matplotlib.collections", "Collection"),
                ("matplotlib.axes._base", "_AxesBase"),
            )
        },
    },
    shared={
        "matplotlib.artist:ArtistInspector._NOT_LINKABLE": "frozen at install (a set)",
        "matplotlib.colors:ColorConverter.cache": "OPEN: the colour cache (name -> RGBA "
        "tuple) a capsule can poison: wrong colours, no code runs (SECURITY.md)",
        "matplotlib.text:Text._charsize_cache": "OPEN: a layout cache of floats (SECURITY.md)",
        "matplotlib.ticker:Formatter._locs": "a class default each formatter replaces",
        "matplotlib.axes._base:_AxesBase._shared_axes": "OPEN: axis name -> the Grouper of "
        "shared axes; its entries are not containers (SECURITY.md)",
        "matplotlib.colors:ListedColormap().colors": "OPEN: module-level colormap instances "
        "(matplotlib.cm.viridis...) keep their colour lists raw (SECURITY.md); the registry "
        "hands out copies",
        "matplotlib.colors:LinearSegmentedColormap()._segmentdata": "OPEN: as .colors",
        "matplotlib.rcsetup:ValidateInStrings().valid": "OPEN: the accepted strings of one rc "
        "validator (a capsule can widen what it accepts; no code runs) (SECURITY.md)",
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
