"""polars: data frames whose Rust I/O is checked against the grants (the tripwire cannot see
it); cloud and network sources refused; global Config only per block."""

from .profile import PathArg, Profile

_SRC = PathArg(0, "source", data_bytes=True)
_FILE = PathArg(0, "file")
_READS = (
    "read_csv",
    "read_ipc",
    "read_ipc_stream",
    "read_ipc_schema",
    "read_json",
    "read_ndjson",
    "read_parquet",
    "read_parquet_schema",
    "read_parquet_metadata",
    "read_avro",
    "read_excel",
    "read_ods",
    "read_lines",
    "scan_csv",
    "scan_ipc",
    "scan_ndjson",
    "scan_parquet",
    "scan_lines",
)
_WRITES = (
    "write_csv",
    "write_ipc",
    "write_ipc_stream",
    "write_json",
    "write_ndjson",
    "write_parquet",
    "write_avro",
    "write_excel",
)
_SINKS = ("sink_csv", "sink_ipc", "sink_ndjson", "sink_parquet")

PROFILE = Profile(
    package="polars",
    summary="data frames with native (Rust) I/O checked against the grants",
    readonly={"polars:DataFrame": "polars_frame", "polars:Series": "polars_frame"},
    # results of frames, series, plans and group-bys: always new objects over immutable
    # Arrow buffers (libraries/readonly.py polars_result)
    derived={
        "polars:DataFrame": "polars_result",
        "polars:Series": "polars_result",
        "polars:LazyFrame": "polars_result",
        "polars.dataframe.group_by:GroupBy": "polars_result",
        "polars.lazyframe.group_by:LazyGroupBy": "polars_result",
    },
    loads=("pyarrow", "numpy", "pandas", "matplotlib", "narwhals"),
    stdlib=("importlib.metadata", "importlib.util", "concurrent.futures"),
    object_attrs={
        # the native (Rust) objects behind polars' Python classes: their methods read and
        # write files past every check of the profile
        "_df": "the native frame, past the profile's checks",
        "_ldf": "the native frame, past the profile's checks",
        "_s": "the native series, past the profile's checks",
        "_ctxt": "the native SQL context, past the profile's checks",
        "_pyexpr": "the native expression, past the profile's checks",
        # methods that take raw memory addresses (an ArrowArray written to, or a frame built
        # from, any address: red team 10); tests/test_library_boundary.py finds them all
        "_export_arrow_to_c": "it writes to a raw memory address",
        "_import_arrow_from_c": "it reads from raw memory addresses",
        "_import": "it reads from a raw memory address",
        "_import_columns": "it reads from a raw memory address",
    },
    refused={
        "polars.read_database": "database connections are outside the capsule",
        "polars.read_database_uri": "database connections are outside the capsule",
        "polars.read_delta": "a storage backend outside the grants",
        "polars.scan_delta": "a storage backend outside the grants",
        "polars.scan_iceberg": "a storage backend outside the grants",
        "polars.scan_lance": "a storage backend outside the grants",
        "polars.scan_pyarrow_dataset": "a dataset reads paths natively, unchecked",
        "polars.scan_external_reader": "an external reader runs outside the grants",
        "polars.scan_arrow_c_stream": "raw C pointers",
        "polars.read_clipboard": "the clipboard is outside the capsule",
        "polars.plugins": "plugins load native libraries",
        "polars.register_io_source": "an I/O source runs outside the grants",
        "polars.delete_iceberg": "a storage backend outside the grants",
        "polars.io.external_reader": "an external reader runs outside the grants",
        "polars.expr.meta.serialize_polars_object": "it writes any path natively",
        "polars.io.spreadsheet.functions.process_file_url": "it downloads a URL",
    },
    reads={f"polars.{name}": _SRC for name in _READS},
    writes={
        **{f"polars:DataFrame.{name}": _FILE for name in _WRITES},
        **{f"polars:LazyFrame.{name}": PathArg(0, "path") for name in _SINKS},
        # a frame's or plan's serialized form, written natively
        "polars:DataFrame.serialize": _FILE,
        "polars:LazyFrame.serialize": _FILE,
        "polars.expr.meta:ExprMetaNameSpace.serialize": _FILE,
        # the engines LazyFrame.sink_* hands the path to (callable directly: lf comes first)
        **{
            f"polars.lazyframe.{module}:{cls}.{name}": PathArg(1, "path")
            for module, cls in (("engine", "Engine"), ("engine_remote", "RemoteEngine"))
            for name in _SINKS
        },
    },
    registers={
        **{
            f"polars.api.register_{kind}_namespace": f"polars.{cls} (every {kind})"
            for kind, cls in (
                ("dataframe", "DataFrame"),
                ("lazyframe", "LazyFrame"),
                ("series", "Series"),
                ("expr", "Expr"),
            )
        },
        "polars.datatypes.extension.register_extension_type": "polars' extension types",
        "polars.datatypes.extension.unregister_extension_type": "polars' extension types",
        "polars.plugins.register_plugin_function": "polars' plugin functions",
        "polars.io.plugins.register_io_source": "polars' I/O sources",
    },
    udfs={
        **{
            f"polars:{key}": PathArg(1, "function")
            for key in (
                "Expr.map_batches",
                "Expr.map_elements",
                "Expr.pipe",
                "Expr.pipe_with_dtype",
                "Expr.rolling_map",
                "Series.map_elements",
                "Series.rolling_map",
                "DataFrame.map_rows",
                "DataFrame.pipe",
                "LazyFrame.map_batches",
                "LazyFrame.pipe",
                "LazyFrame.pipe_with_schema",
                "LazyFrame.sink_batches",
            )
        },
        "polars:DataFrame.map_columns": PathArg(2, "function"),
        "polars.dataframe.group_by:GroupBy.map_groups": PathArg(1, "function"),
        "polars.lazyframe.group_by:LazyGroupBy.map_groups": PathArg(1, "function"),
        **{
            f"polars.{name}": PathArg(position, "function")
            for name, position in (
                ("cum_fold", 1),
                ("cum_reduce", 0),
                ("defer", 0),
                ("fold", 1),
                ("map_batches", 1),
                ("map_groups", 1),
                ("pipe_with_dtype", 1),
                ("reduce", 0),
            )
        },
    },
    options={
        "polars.set_random_seed": "pass seed= to sample/shuffle (polars' seed is the session's)",
        "polars.config.set_engine_affinity_override": "with pl.Config(engine_affinity=...): ...",
    },
    not_options={
        "polars.enable_string_cache": "does nothing since polars 1.41 (pl.Categories)",
        "polars.disable_string_cache": "does nothing since polars 1.41 (pl.Categories)",
    },
    environ=("POLARS_",),  # 'with pl.Config(...)' sets and restores POLARS_FMT_* variables
    replaced={
        "polars.Config": "polars_config",
        "polars:DataFrame.write_database": "refuse_database",
        "polars:DataFrame.write_delta": "refuse_database",
        "polars:DataFrame.write_iceberg": "refuse_database",
        "polars:DataFrame.write_clipboard": "refuse_database",
        # SQL whose table functions (read_csv('...')) read files natively
        "polars.sql": "checked_sql",
        "polars.sql_expr": "checked_sql",
        "polars.sql.context:SQLContext.execute": "checked_sql",
        "polars.sql.context:SQLContext.execute_global": "checked_sql",
        "polars.sql.context:SQLContext.register_catalog": "refuse_database",
        "polars:LazyFrame.sink_delta": "refuse_database",
        "polars:LazyFrame.sink_iceberg": "refuse_database",
        # a serialized plan or frame may carry pickled Python objects (UDFs, Object columns)
        "polars:DataFrame.deserialize": "refuse_unpickle",
        "polars:LazyFrame.deserialize": "refuse_unpickle",
        "polars:Expr.deserialize": "refuse_unpickle",
    },
    unchecked="reads through a polars plugin or a cloud URL are refused, never unchecked",
    evaluators={
        "polars.io.delta._dataset:DeltaDataset.to_dataset_scan": (
            "evals the pyarrow predicate polars serialises from an expression (its own text; "
            "a private class of scan_delta, which needs deltalake)"
        ),
    },
    not_paths={
        "polars.config:Config.load_from_file": "pl.Config is a stand-in in a capsule; it "
        "refuses load_*/save_*",
        "polars.config:Config.save_to_file": "as load_from_file",
        "polars.expr.expr.normalize_filepath": "a str helper (expanduser); opens nothing",
        "polars.io.csv.functions.prepare_file_arg": "opens through Python (fsspec/open), "
        "where the tripwire checks it",
        "polars.io.parquet.functions.get_sources": "lists the sources it is given; opens nothing",
        "polars.io.spreadsheet.functions.looks_like_url": "a str test",
        "polars.io.partition:SinkedPath.__init__": "a description of a sink's path (the sink "
        "itself is checked)",
        "polars.selectors.expand_selector": "a frame or schema, not a path",
    },
    shared={
        f"polars.{key}._accessors": "namespace names dir() shows; registering one is refused"
        for key in (
            "dataframe.frame:DataFrame",
            "lazyframe.frame:LazyFrame",
            "series.series:Series",
            "expr.expr:Expr",
            "datatype_expr.datatype_expr:DataTypeExpr",
        )
    },
)
