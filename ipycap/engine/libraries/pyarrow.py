"""pyarrow: Arrow tables and their file formats on granted paths; file systems refused."""

from .profile import PathArg, Profile

_SRC = PathArg(0, "source")
_WHERE = PathArg(1, "where")
_WHERE_DEST = PathArg(1, "dest")

PROFILE = Profile(
    package="pyarrow",
    summary="Arrow tables, CSV/Parquet/Feather on granted paths",
    loads=("numpy", "pandas"),
    stdlib=("importlib.metadata", "importlib.resources", "importlib.readers", "concurrent.futures"),
    refused={
        "pyarrow.fs": "a file system object reads and writes any path natively",
        "pyarrow.hdfs": "a file system object reads and writes any path natively",
        "pyarrow.OSFile": "it opens any path natively",
        "pyarrow.memory_map": "it maps any path natively",
        "pyarrow.create_memory_map": "it maps any path natively",
        "pyarrow.input_stream": "it opens any path natively",
        "pyarrow.output_stream": "it opens any path natively",
        "pyarrow.foreign_buffer": "it turns a raw address into a buffer",
        "pyarrow.cffi": "raw C pointers",
        "pyarrow.jvm": "raw JVM pointers",
        "pyarrow.flight": "network services",
        "pyarrow.ipc.MessageReader": "MessageReader.open_stream opens any path natively",
        "pyarrow.MemoryMappedFile": "it maps any path natively",
        "pyarrow.parquet.core.ParquetReader": "ParquetReader.open opens any path natively",
    },
    object_attrs={
        "address": "a buffer's raw memory address",
        "_export_to_c": "raw C pointers",
        "_import_from_c": "raw C pointers",
        # a file system object (a dataset's .filesystem, a ParquetFile's): any path natively
        **{
            name: "a file system object reads and writes any path natively"
            for name in (
                "open_input_file",
                "open_input_stream",
                "open_output_stream",
                "open_append_stream",
                "delete_file",
                "delete_dir",
                "delete_dir_contents",
                "create_dir",
                "copy_file",
                "move",
            )
        },
        "write_metadata_file": "it writes any path natively",
        # the file system object itself (a dataset's, a fragment's): any path natively (red
        # team 10 read a file through ds.dataset(granted).filesystem and from_paths)
        "filesystem": "a file system object reads and writes any path natively",
        "from_paths": "it opens the paths it is given natively, unchecked",
        "inspect": "a dataset file format opens any path natively",
        "make_fragment": "a dataset file format opens any path natively",
        "reader": "a ParquetFile's native reader (its open() opens any path natively)",
        "serialize_to": "a str sink is a path pyarrow opens natively",
    },
    reads={
        "pyarrow.csv.read_csv": PathArg(0, "input_file"),
        "pyarrow.csv.open_csv": PathArg(0, "input_file"),
        "pyarrow.json.read_json": PathArg(0, "input_file"),
        "pyarrow.json.open_json": PathArg(0, "input_file"),
        "pyarrow.parquet.read_table": _SRC,
        "pyarrow.parquet.read_pandas": _SRC,
        "pyarrow.parquet.read_schema": PathArg(0, "where"),
        "pyarrow.parquet.read_metadata": PathArg(0, "where"),
        "pyarrow.parquet.ParquetFile": _SRC,
        "pyarrow.parquet.ParquetDataset": PathArg(0, "path_or_paths"),
        "pyarrow.feather.read_table": _SRC,
        "pyarrow.feather.read_feather": _SRC,
        "pyarrow.orc.read_table": _SRC,
        "pyarrow.orc.ORCFile": _SRC,
        "pyarrow.ipc.open_file": _SRC,
        "pyarrow.ipc.open_stream": _SRC,
        "pyarrow.dataset.dataset": _SRC,
        "pyarrow.dataset.parquet_dataset": PathArg(0, "metadata_path"),
        "pyarrow.ipc.RecordBatchFileReader": _SRC,
        "pyarrow.ipc.RecordBatchStreamReader": _SRC,
        # a str is a path: pyarrow memory-maps or opens it natively
        "pyarrow.ipc.read_message": _SRC,
        "pyarrow.ipc.read_tensor": _SRC,
        "pyarrow.ipc.read_schema": PathArg(0, "obj"),
        "pyarrow.ipc.read_record_batch": PathArg(0, "obj"),
        "pyarrow.feather.FeatherDataset": PathArg(0, "path_or_paths"),
    },
    writes={
        "pyarrow.csv.write_csv": PathArg(1, "output_file"),
        "pyarrow.parquet.write_table": _WHERE,
        "pyarrow.parquet.write_to_dataset": PathArg(1, "root_path"),
        "pyarrow.parquet.ParquetWriter": PathArg(0, "where"),
        "pyarrow.parquet.write_metadata": _WHERE,
        "pyarrow.ipc.RecordBatchFileWriter": PathArg(0, "sink"),
        "pyarrow.ipc.RecordBatchStreamWriter": PathArg(0, "sink"),
        "pyarrow.ipc.write_tensor": _WHERE_DEST,
        "pyarrow.csv.CSVWriter": PathArg(0, "sink"),
        "pyarrow.orc.ORCWriter": PathArg(0, "where"),
        "pyarrow.feather.write_feather": PathArg(1, "dest"),
        "pyarrow.orc.write_table": _WHERE,
        "pyarrow.ipc.new_file": PathArg(0, "sink"),
        "pyarrow.ipc.new_stream": PathArg(0, "sink"),
        "pyarrow.dataset.write_dataset": PathArg(1, "base_dir"),
    },
    options={
        "pyarrow.set_io_thread_count": "it changes the whole process",
        "pyarrow.set_cpu_count": "it changes the whole process",
        "pyarrow.lib.set_timezone_db_path": "it changes the whole process",
        "pyarrow.set_memory_pool": "it changes the whole process's default pool (pass "
        "memory_pool= to one call)",
        "pyarrow.enable_signal_handlers": "it changes the whole process",
        # found by red team 11: native switches of the whole process the name scan missed
        "pyarrow.log_memory_allocations": "it changes the whole process (every allocation "
        "logged after the cell)",
        "pyarrow.jemalloc_set_decay_ms": "it changes the whole process's allocator",
    },
    not_options={"pyarrow.compute.random": "draws numbers (no state kept)"},
    registers={
        "pyarrow.register_extension_type": "pyarrow's extension types",
        "pyarrow.unregister_extension_type": "pyarrow's extension types",
        **{
            f"pyarrow.compute.register_{kind}_function": "pyarrow's compute functions"
            for kind in ("scalar", "aggregate", "tabular", "vector")
        },
    },
    not_registries={"pyarrow.compute.add_checked": "arithmetic"},
    unchecked="a file system passed as filesystem= is refused with pyarrow.fs",
    not_paths={
        "pyarrow.dataset:Partitioning.parse": "parses a path string; opens nothing",
        "pyarrow.dataset:Scanner.from_batches": "an iterable of batches, not a path",
        "pyarrow.lib.encode_file_path": "a str helper; opens nothing",
        "pyarrow.lib:Array.copy_to": "a device or memory manager, not a file",
        "pyarrow.lib:RecordBatch.copy_to": "a device or memory manager, not a file",
        "pyarrow.lib:Codec.detect": "reads the codec from a file name's extension",
        "pyarrow.parquet.core:FileMetaData.set_file_path": "a str in the metadata",
    },
    shared={
        "pyarrow.vendored.docscrape:ClassDoc.extra_public_methods": "docstring parsing only",
        "pyarrow.vendored.docscrape:NumpyDocString.sections": "docstring parsing only",
    },
)
