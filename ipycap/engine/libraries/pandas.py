"""pandas (with pyarrow): data frames, CSV/Parquet on granted paths, query/eval through the
gate's rules; pickles and global options refused."""

from .profile import PathArg, Profile

_PATH = PathArg(0, "path")
_READS = (
    "read_csv",
    "read_table",
    "read_fwf",
    "read_json",
    "read_excel",
    "read_xml",
    "read_html",
    "read_stata",
    "read_sas",
    "read_spss",
    "read_hdf",
)

PROFILE = Profile(
    package="pandas",
    summary="data frames: read/write files on granted paths, groupby, plotting (with matplotlib)",
    readonly={"pandas:DataFrame": "pandas_frame", "pandas:Series": "pandas_frame"},
    loads=(
        "pyarrow",
        "numpy",
        "dateutil",
        "pytz",
        "tzdata",
        "matplotlib",
        "PIL",
        "scipy",
        "polars",
        "narwhals",
        "numexpr",
        "bottleneck",
    ),
    stdlib=(
        "importlib.metadata",
        "importlib.resources",
        "importlib.readers",
        "pickle",
        "_pickle",
        "concurrent.futures",
        "multiprocessing.dummy",
    ),
    refused={
        "pandas.read_pickle": "unpickling runs code named by the file",
        "pandas.read_clipboard": "the clipboard is outside the capsule",
        "pandas.read_sql": "database connections are outside the capsule",
        "pandas.read_sql_query": "database connections are outside the capsule",
        "pandas.read_sql_table": "database connections are outside the capsule",
        "pandas.options": "pandas.options changes the options of the whole session",
    },
    reads={
        **{f"pandas.{name}": PathArg(0, "filepath_or_buffer") for name in _READS},
        "pandas.read_parquet": _PATH,
        "pandas.read_feather": _PATH,
        "pandas.read_orc": _PATH,
    },
    writes={
        "pandas:DataFrame.to_parquet": _PATH,
        "pandas:DataFrame.to_feather": _PATH,
        "pandas:DataFrame.to_orc": _PATH,
    },
    options={
        "pandas.set_option": "with pd.option_context('display.max_rows', 5): ...",
        "pandas.reset_option": "with pd.option_context(...): ...",
        "pandas.set_eng_float_format": "with pd.option_context('display.float_format', ...)",
    },
    registers={
        "pandas.core.dtypes.base.register_extension_dtype": "pandas' dtype names (every "
        "dtype string is looked up there)",
        "pandas.core.dtypes.base:Registry.register": "pandas' dtype names",
        "pandas.core.accessor.register_dataframe_accessor": "pandas.DataFrame (every frame)",
        "pandas.core.accessor.register_series_accessor": "pandas.Series (every series)",
        "pandas.core.accessor.register_index_accessor": "pandas.Index (every index)",
        "pandas.io.excel.register_writer": "pandas' Excel writer engines",
        "pandas.plotting.register_matplotlib_converters": "matplotlib.units.registry",
        "pandas.plotting.deregister_matplotlib_converters": "matplotlib.units.registry",
        "pandas.core.config_init.register_converter_cb": "matplotlib.units.registry",
        "pandas.core.config_init.register_plotting_backend_cb": "pandas' plotting backend",
    },
    not_registries={
        "pandas.core.arrays.datetimelike.add_overflowsafe": "arithmetic on the arrays given",
        "pandas.core.computation.expr.add_ops": "a decorator adding methods to the class given",
    },
    templates={
        # Styler.format('{...}'), format_index, format_index_names: one funnel
        "pandas.io.formats.style_render._maybe_wrap_formatter": PathArg(0, "formatter"),
        "pandas.io.formats.style_render:StylerRenderer.relabel_index": PathArg(0, "labels"),
        # to_string / to_html / to_latex(float_format='{...}')
        "pandas.io.formats.format:DataFrameFormatter._validate_float_format": PathArg(0, "fmt"),
    },
    replaced={
        # protected DataFrames/Series among the arguments: deep copies (wrappers.py)
        **{
            f"pandas.{n}": "copies_protected"
            for n in (
                "concat",
                "merge",
                "merge_asof",
                "merge_ordered",
                "crosstab",
                "pivot_table",
                "melt",
                "get_dummies",
                "wide_to_long",
                "to_numeric",
                "to_datetime",
                "cut",
                "qcut",
                "isna",
                "notna",
                "unique",
            )
        },
        "pandas.core.frame:DataFrame.__init__": "copies_protected",
        "pandas.core.series:Series.__init__": "copies_protected",
        "pandas.eval": "pandas_eval",
        "pandas:DataFrame.query": "frame_query",
        "pandas:DataFrame.eval": "frame_eval",
        "pandas.core.generic:NDFrame.to_pickle": "refuse_pickle",
        "pandas.plotting.plot_params": "read_only_table",
    },
    tables={
        "pandas.io.formats.style_render:StylerRenderer.env.globals": "the names every "
        "Styler template sees",
        "pandas.io.formats.style_render:StylerRenderer.loader.searchpath": "where every "
        "Styler finds its templates",
    },
    unchecked="pandas' Python-level file opens are also checked by the tripwire",
)
