"""Native I/O entry points of the granted libraries that do I/O in Rust or C++ (polars,
pyarrow): deny by default.

The tripwire sees only Python-level opens, so every public callable of these libraries with a
parameter named like a path must be checked against the grants (``Profile.reads/writes``),
refused (``refused``, ``replaced`` with a refusal, a refused name on its objects), or
classified as not opening a file (``Profile.not_paths``, with the reason).  The scan fails on
one in none of them; the regression tests are the red team's (tests/redteam/test_rt6_seam.py,
sections 5 and 6) and the variants here.
"""

from __future__ import annotations

import inspect
import sys

import pytest

from ipycap import CapabilityError, Capsule
from ipycap.engine.libraries import PROFILES, wrappers

NATIVE = ("polars", "pyarrow")
PATH_NAMES = frozenset(
    "path file source where sink filename fp destination uri dest target output_file "
    "input_file base_dir root_path path_or_paths metadata_path".split()
)


@pytest.fixture(scope="module")
def installed():
    import polars  # noqa: F401
    import pyarrow  # noqa: F401
    import pyarrow.csv  # noqa: F401
    import pyarrow.dataset  # noqa: F401
    import pyarrow.feather  # noqa: F401
    import pyarrow.ipc  # noqa: F401
    import pyarrow.json  # noqa: F401
    import pyarrow.orc  # noqa: F401
    import pyarrow.parquet  # noqa: F401

    wrappers.install()


def _path_params(fn):
    fn = fn.__func__ if isinstance(fn, (classmethod, staticmethod)) else fn
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return []
    return [p for p in signature.parameters if p in PATH_NAMES]


def _hits(package):
    """(key, object, owner class or None, params) for the public callables of ``package``."""
    seen = set()
    for name, module in list(sys.modules.items()):
        if name.partition(".")[0] != package or module is None:
            continue
        if any(p[:1] == "_" for p in name.split(".")[1:]):
            continue
        for attr, value in list(vars(module).items()):
            if attr[:1] == "_" or id(value) in seen:
                continue
            where = getattr(value, "__module__", None)
            if type(where) is not str or where.partition(".")[0] != package:
                continue
            seen.add(id(value))
            if isinstance(value, type):
                for meth, fn in list(vars(value).items()):
                    if meth[:1] == "_" and meth != "__init__":
                        continue
                    params = _path_params(fn)
                    if params:
                        yield f"{name}:{value.__qualname__}.{meth}", fn, value, params
            elif callable(value):
                params = _path_params(value)
                if params:
                    yield f"{name}.{attr}", value, None, params


def _resolve(key):
    module_name, colon, path = key.partition(":")
    if not colon:
        module_name, _, attr = key.rpartition(".")
        module = sys.modules.get(module_name)
        return getattr(module, attr, None) if module is not None else None
    owner = sys.modules.get(module_name)
    *parts, attr = path.split(".")
    for part in parts:
        owner = getattr(owner, part, None)
    return vars(owner).get(attr) if isinstance(owner, type) else getattr(owner, attr, None)


def _covered(profile):
    keys = {
        **profile.reads,
        **profile.writes,
        **profile.refused,
        **profile.options,
        **profile.replaced,
        **profile.not_paths,
    }
    objects = {id(o): o for o in map(_resolve, keys) if o is not None}
    refused = {id(o) for o in map(_resolve, profile.refused) if isinstance(o, type)}
    refused_modules = tuple(k + "." for k in profile.refused) + tuple(
        k.replace(".", "._", 1) + "." for k in profile.refused
    )
    return keys, objects, refused_modules, refused


@pytest.mark.parametrize("package", NATIVE)
def test_every_path_parameter_is_checked_refused_or_classified(installed, package):
    profile = PROFILES[package]
    keys, objects, refused_modules, refused_classes = _covered(profile)
    unclassified = []
    for key, fn, owner, params in _hits(package):
        meth = key.rpartition(".")[2]
        where = getattr(owner if owner is not None else fn, "__module__", "") + "."
        if (
            key in keys
            or id(fn) in objects
            or (owner is not None and meth == "__init__" and id(owner) in objects)
            or (owner is not None and meth in profile.object_attrs)
            or (owner is not None and id(owner) in refused_classes)
            or where.startswith(refused_modules)
        ):
            continue
        unclassified.append(f"{key} {params}")
    assert not unclassified, (
        f"{package} callables taking a path that no profile table checks, refuses or "
        f"classifies (native I/O the tripwire cannot see): {sorted(unclassified)}"
    )


def _run(capsule, source):
    try:
        return capsule.run(source)
    except CapabilityError as err:
        return err


@pytest.mark.parametrize(
    "package, code",
    [
        ("polars", "import polars as pl\npl.col('a').meta.serialize(MARKER)"),
        ("polars", "import polars as pl\npl.DataFrame({'a': [1]}).serialize(file=MARKER)"),
        (
            "pyarrow",
            "import pyarrow as pa, pyarrow.ipc as ipc\n"
            "ipc.RecordBatchStreamWriter(MARKER, pa.schema([('a', pa.int64())])).close()",
        ),
        (
            "pyarrow",
            "import pyarrow as pa, pyarrow.csv as csv\n"
            "csv.CSVWriter(MARKER, pa.schema([('a', pa.int64())])).close()",
        ),
        (
            "pyarrow",
            "import pyarrow as pa, pyarrow.parquet as pq\n"
            "pq.write_metadata(pa.schema([('a', pa.int64())]), MARKER)",
        ),
    ],
)
def test_native_writer_variant_outside_the_grants_is_refused(tmp_path, package, code):
    outside = tmp_path / "outside"
    outside.mkdir()
    marker = outside / "marker"
    result = _run(Capsule(grants=[("import", package)], protected={"MARKER": str(marker)}), code)
    assert isinstance(result, CapabilityError), result
    assert not marker.exists()


def test_native_writer_inside_a_write_grant_works(tmp_path):
    target = tmp_path / "t.parquet"
    capsule = Capsule(
        grants=[("import", "pyarrow"), ("write", str(tmp_path))],
        protected={"TARGET": str(target)},
    )
    capsule.run(
        "import pyarrow as pa, pyarrow.parquet as pq\n"
        "with pq.ParquetWriter(TARGET, pa.schema([('a', pa.int64())])) as w:\n"
        "    w.write_table(pa.table({'a': [1, 2]}))\n"
    )
    import pyarrow.parquet as pq

    assert pq.read_table(target).column(0).to_pylist() == [1, 2]


@pytest.mark.parametrize(
    "code",
    [
        "import polars as pl\npl.DataFrame.deserialize(MARKER)",
        "import polars as pl\npl.LazyFrame.deserialize(MARKER)",
        "import polars as pl\npl.DataFrame({'a': [1]})._df",
        "import polars as pl\npl.SQLContext()._ctxt",
    ],
)
def test_polars_native_doors_are_refused(tmp_path, code):
    result = _run(Capsule(grants=[("import", "polars")], protected={"MARKER": str(tmp_path)}), code)
    assert isinstance(result, CapabilityError), result
    assert "polars profile" in str(result)


def test_trusted_deserialize_still_works(tmp_path):
    import polars as pl

    path = tmp_path / "frame.bin"
    pl.DataFrame({"a": [1, 2]}).serialize(path)
    assert pl.DataFrame.deserialize(path)["a"].to_list() == [1, 2]


# -- file names inside query text: polars SQL ------------------------------------------------
SQL_CASES = [
    "pl.SQLContext().execute(f\"SELECT * FROM read_csv('{SECRET}')\", eager=True)",
    "pl.DataFrame({'a': [1]}).sql(f\"SELECT * FROM self, read_parquet('{SECRET}*')\")",
    "pl.LazyFrame({'a': [1]}).sql(f\"select * from \\\"READ_IPC\\\" ('{SECRET}')\").collect()",
    "pl.sql(f\"SELECT * FROM (SELECT * FROM read_json('{SECRET}')) AS t\").collect()",
    "pl.sql(f\"SELECT * FROM some_new_reader('{SECRET}')\").collect()",
    "pl.SQLContext.execute_global(f\"WITH t AS (SELECT * FROM read_csv('{SECRET}')) "
    'SELECT * FROM t").collect()',
]


@pytest.mark.parametrize("call", SQL_CASES)
def test_polars_sql_table_functions_are_refused(tmp_path, call):
    secret = tmp_path / "secret.csv"
    secret.write_text("token\n1\n")
    capsule = Capsule(grants=[("import", "polars")], protected={"SECRET": str(secret)})
    result = _run(capsule, "import polars as pl\n" + call)
    assert isinstance(result, CapabilityError), result
    assert "polars profile" in str(result) and "table function" in str(result)


def test_polars_sql_over_frames_still_works():
    source = (
        "import polars as pl\n"
        "frame = pl.DataFrame({'a': [1, 2, 3], 'b': ['x', 'y', 'x']})\n"
        "ctx = pl.SQLContext(frame=frame)\n"
        "r1 = ctx.execute('SELECT b, SUM(a) AS s FROM frame GROUP BY b ORDER BY b', eager=True)\n"
        "r2 = frame.sql(\"SELECT COUNT(*) AS n FROM self WHERE b = 'x'\")\n"
        "r3 = pl.sql('SELECT a FROM frame JOIN (SELECT 2 AS a) u USING (a)').collect()\n"
        "r4 = frame.sql('SELECT * FROM UNNEST([1, 2]) AS t(v)') if False else None\n"
        "(r1.to_dicts(), r2.item(), r3.to_dicts())"
    )
    assert Capsule(grants=[("import", "polars")]).run(source) == (
        [{"b": "x", "s": 4}, {"b": "y", "s": 2}],
        2,
        [{"a": 2}],
    )
