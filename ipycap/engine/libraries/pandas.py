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
    readonly={
        "pandas:DataFrame": "pandas_frame",
        "pandas:Series": "pandas_frame",
        # Categorical, masked, string, Arrow, interval, sparse, datetime... arrays: their
        # methods write their buffers in place (fillna(copy=False)), which Copy-on-Write
        # does not cover
        "pandas.api.extensions:ExtensionArray": "pandas_array",
    },
    # Results of frames, and of the objects working on one (groupby, rolling, resample, the
    # loc/iloc/at/iat indexers): under Copy-on-Write a new frame never writes the data it
    # shares; numpy arrays handed out of it stay read-only.
    derived={
        "pandas:DataFrame": "pandas_result",
        "pandas:Series": "pandas_result",
        "pandas.core.groupby.groupby:BaseGroupBy": "pandas_result",
        "pandas.core.window.rolling:BaseWindow": "pandas_result",
        "pandas.core.indexing:_LocationIndexer": "pandas_result",
        "pandas.core.indexing:_ScalarAccessIndexer": "pandas_scalars",
    },
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
        # Styler's templates (its string compiles are sandboxed for capsules: engines.py)
        "jinja2",
        "markupsafe",
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
        # it imports the module it is named and returns it raw
        "pandas.compat.import_optional_dependency": "it imports a module by name and hands "
        "it over raw",
        "pandas.compat._optional.import_optional_dependency": "it imports a module by name "
        "and hands it over raw",
        # an expression scope copies the globals and locals of frames it names by level, the
        # host's and ipycap's beyond the capsule's included (session 11; pd.eval and query
        # make theirs at the capsule's own frame)
        **{
            f"pandas.core.computation.{module}.{name}": "it reads the frames of its callers"
            for module, name in (
                ("scope", "Scope"),
                ("scope", "ensure_scope"),
                ("expr", "Scope"),
                ("eval", "ensure_scope"),
                ("expr", "Expr"),  # Expr(text, level=N) makes its scope N frames up
                ("eval", "Expr"),
            )
        },
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
        # pandas' module switches behind its compute.* options
        "pandas.core.computation.expressions.set_use_numexpr": (
            "with pd.option_context('compute.use_numexpr', False): ..."
        ),
        "pandas.core.computation.expressions.set_numexpr_threads": "numexpr's threads are the "
        "session's (with pd.option_context('compute.use_numexpr', False): ... to avoid them)",
        "pandas.core.computation.expressions.set_test_mode": "it is pandas' own test switch",
        "pandas.core.nanops.set_use_bottleneck": (
            "with pd.option_context('compute.use_bottleneck', False): ..."
        ),
        "pandas.core.util.numba_.set_use_numba": (
            "with pd.option_context('compute.use_numba', True): ..."
        ),
        # option callbacks: they apply the value of the option named to a module switch
        **{
            f"pandas.core.config_init.use_{lib}_cb": f"with pd.option_context('compute.use_{lib}'"
            ", ...): ..."
            for lib in ("bottleneck", "numba", "numexpr")
        },
        "pandas.io.formats.printing.enable_data_resource_formatter": (
            "with pd.option_context('display.html.table_schema', True): ..."
        ),
    },
    not_options={
        "pandas.compat.set_function_name": "sets the name of the function given",
        "pandas.core.accessor.set_module": "a decorator setting __module__ of the object given",
        "pandas.core.interchange.from_dataframe.set_nulls": "masks the data given",
    },
    registers={
        "pandas.core.dtypes.base.register_extension_dtype": "pandas' dtype names (every "
        "dtype string is looked up there)",
        "pandas.core.dtypes.base:Registry.register": "pandas' dtype names",
        "pandas.core.accessor.register_dataframe_accessor": "pandas.DataFrame (every frame)",
        "pandas.core.accessor.register_series_accessor": "pandas.Series (every series)",
        "pandas.core.accessor.register_index_accessor": "pandas.Index (every index)",
        "pandas.io.excel.register_writer": "pandas' Excel writer engines",
        "pandas.tseries.holiday.register": "pandas' holiday calendars (get_calendar)",
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
        # plotting a protected frame onto the capsule's own Axes (wrappers.py)
        "pandas.plotting._core:PlotAccessor.__call__": "plots_on_capsule_axes",
        "pandas.core.frame:DataFrame.hist": "plots_on_capsule_axes",
        "pandas.core.frame:DataFrame.boxplot": "plots_on_capsule_axes",
        "pandas.core.series:Series.hist": "plots_on_capsule_axes",
        "pandas.eval": "pandas_eval",
        "pandas:DataFrame.query": "frame_query",
        "pandas:DataFrame.eval": "frame_eval",
        "pandas.core.generic:NDFrame.to_pickle": "refuse_pickle",
        "pandas.plotting.plot_params": "read_only_table",
        # ended with the capsule run that entered it (blocks.py)
        "pandas.option_context": "scoped_block",
        # for "no seed", numpy's global RandomState: the capsule's own (randomstate.py)
        "pandas.core.common.random_state": "capsule_random_state",
    },
    tables={
        "pandas.core.dtypes.base:_registry.dtypes": "the dtype classes pandas_dtype('...') "
        "asks (construct_from_string)",
        # red team 11: the holiday rules trusted calendars compute with
        "pandas.tseries.holiday:AbstractHolidayCalendar.rules": "the rules every calendar "
        "class inherits",
        "pandas.tseries.holiday:USFederalHolidayCalendar.rules": "the federal holidays",
        "pandas._config.config:options.d": "pandas' options (set_option is refused)",
        "pandas.compat.pickle_compat:Unpickler.dispatch": "opcode -> the function read_pickle "
        "calls",
        "pandas:ExcelFile._engines": "engine name -> the reader class ExcelFile instantiates",
        "pandas.plotting:PlotAccessor._kind_aliases": "plot kinds",
        "pandas.io.formats.format:EngFormatter.ENG_PREFIXES": "number formatting",
        "pandas:Index._engine_types": "dtype -> the engine class every index instantiates",
        "pandas.core.groupby.ops:WrappedCythonOp._CYTHON_FUNCTIONS": "op -> the cython "
        "function groupby calls by name",
        "pandas.core.groupby.ops:WrappedCythonOp._cython_arity": "groupby",
        "pandas.io.pytables:GenericFixed._index_type_map": "-> the index class HDF reads make",
        "pandas.io.pytables:GenericFixed._reverse_index_map": "HDF index classes",
        "pandas.io.stata:StataMissingValue.MISSING_VALUES": "Stata missing values",
        "pandas.io.stata:StataMissingValue.BASE_MISSING_VALUES": "Stata missing values",
        "pandas.arrays:ArrowExtensionArray._PYARROW_AGG_FUNCS": "aggregation names",
        "pandas.arrays:ArrowExtensionArray._PYARROW_AGG_DEFAULTS": "aggregation defaults",
        "pandas.arrays:BooleanArray._TRUE_VALUES": "strings read as True",
        "pandas.arrays:BooleanArray._FALSE_VALUES": "strings read as False",
        **{
            f"pandas.core.computation.expr:BaseExprVisitor.{name}": "how pd.eval/query "
            "visit an expression"
            for name in ("binary_op_nodes_map", "unary_op_nodes_map", "rewrite_map")
        },
        **{
            f"{cls}._cache_dtypes": "dtype string -> the dtype object pandas hands out"
            for cls in (
                "pandas.core.dtypes.dtypes:PandasExtensionDtype",
                "pandas:CategoricalDtype",
                "pandas:DatetimeTZDtype",
                "pandas:IntervalDtype",
                "pandas:PeriodDtype",
            )
        },
        # attribute names trusted code reads and passes on by name (__finalize__, copies)
        **{
            key: "attribute names pandas copies and compares by name"
            for key in (
                "pandas.core.generic:NDFrame._metadata",
                "pandas:Series._metadata",
                "pandas.core.generic:NDFrame._internal_names",
                "pandas.core.generic:NDFrame._internal_names_set",
                "pandas:DataFrame._internal_names_set",
                "pandas:Series._internal_names_set",
                "pandas.core.base:SelectionMixin._internal_names",
                "pandas.core.base:SelectionMixin._internal_names_set",
                "pandas.api.typing:Resampler._internal_names_set",
                "pandas.core.generic:NDFrame._AXIS_TO_AXIS_NUMBER",
                "pandas:DataFrame._AXIS_TO_AXIS_NUMBER",
                "pandas:DataFrame._AXIS_ORDERS",
                "pandas:Series._AXIS_ORDERS",
                "pandas:Index._attributes",
                "pandas:Index._comparables",
                "pandas:MultiIndex._comparables",
                "pandas:MultiIndex._names",
                "pandas:Flags._keys",
                "pandas:Timedelta._req_any_kwargs_new",
                "pandas.core.indexes.datetimelike:DatetimeTimedeltaMixin._attributes",
                "pandas.core.indexes.datetimelike:DatetimeTimedeltaMixin._comparables",
                "pandas.core.window.rolling:BaseWindow._attributes",
                "pandas.core.window.rolling:BaseWindowGroupBy._attributes",
                "pandas.io.pytables:BlockManagerFixed.attributes",
                "pandas.io.pytables:GenericFixed.attributes",
                "pandas.io.pytables:SeriesFixed.attributes",
                "pandas.io.pytables:DataCol._info_fields",
                "pandas.io.pytables:IndexCol._info_fields",
                *(
                    f"pandas.api.typing:{cls}._attributes"
                    for cls in (
                        "Expanding",
                        "ExpandingGroupBy",
                        "ExponentialMovingWindow",
                        "ExponentialMovingWindowGroupBy",
                        "Resampler",
                        "Rolling",
                        "RollingGroupBy",
                        "Window",
                    )
                ),
                *(
                    f"pandas.arrays:{cls}.{ops}"
                    for cls in ("DatetimeArray", "PeriodArray", "TimedeltaArray")
                    for ops in (
                        "_bool_ops",
                        "_datetimelike_methods",
                        "_datetimelike_ops",
                        "_field_ops",
                        "_other_ops",
                    )
                ),
                "pandas.arrays:PeriodArray._object_ops",
            )
        },
        "pandas.io.formats.style_render:StylerRenderer.env.globals": "the names every "
        "Styler template sees",
        "pandas.io.formats.style_render:StylerRenderer.loader.searchpath": "where every "
        "Styler finds its templates",
        # the shared Environment's other tables: every later render calls what they hold
        # (env.tests['defined'] = f ran a capsule function in trusted renders: red team 10)
        **{
            f"pandas.io.formats.style_render:StylerRenderer.env.{t}": "what every Styler "
            "template calls"
            for t in ("tests", "filters", "policies")
        },
    },
    shared={
        "pandas.core.accessor:DirNamesMixin._accessors": "accessor names dir() shows; "
        "registering an accessor is refused",
        "pandas.core.generic:NDFrame._accessors": "as DirNamesMixin._accessors",
        "pandas:DataFrame._accessors": "as DirNamesMixin._accessors",
        "pandas:Series._accessors": "as DirNamesMixin._accessors",
        "pandas:Index._accessors": "as DirNamesMixin._accessors",
        "pandas.tseries.holiday:Holiday().offset": "OPEN (red team 11 D2): the offsets of "
        "pandas' module-level holiday rules, on shared Holiday instances that are not sealed "
        "(SECURITY.md)",
        "pandas.compat.numpy.function:CompatValidator().defaults": "OPEN: numpy-compatible "
        "argument defaults a validator compares keyword arguments with (a capsule edit "
        "refuses or allows a keyword; no code runs) (SECURITY.md)",
    },
    unchecked="pandas' Python-level file opens are also checked by the tripwire",
    shared_tables={
        "pandas:Index._engine_types": "dtype -> index engine class (classes, frozen)",
        "pandas.tseries.holiday:USFederalHolidayCalendar.rules": "pandas' Holiday rules, made "
        "at import; capsule writes refused (Profile.tables)",
    },
)
