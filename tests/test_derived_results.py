"""Results derived from protected library containers, on every path that produces one.

membrane/derived.py judges a result of a read-only numpy array or pandas frame: one that
cannot reach the user's data is the capsule's own (writable, no stand-in).  These tests
check the rule holds wherever results are produced -- the proxy's C slots (comparisons,
iteration, calls), tuple items, unary operators, writable grants, polars -- and that
capsule-made library objects combine with protected ones.  In every test the user's own
object is checked unchanged afterwards.
"""

from __future__ import annotations

import pytest

from ipycap import Capsule

np = pytest.importorskip("numpy")
pd = pytest.importorskip("pandas")


def _capsule(writable=(), **objs):
    grants = [("import", "numpy"), ("import", "pandas"), ("import", "polars")]
    return Capsule(grants=grants, protected=objs, writable=writable)


def _refused(capsule, source):
    with pytest.raises(Exception) as info:  # noqa: PT011 - the refusal's class varies by layer
        capsule.run(source)
    return info.value


_ARR = [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]
_FRAME = {"a": [1, 2, 3], "b": [4.0, 5.0, 6.0], "g": ["x", "y", "x"]}


def _arr():
    return np.array(_ARR)


def _frame():
    return pd.DataFrame(_FRAME)


# -- 1. results of the proxy's own slots (C: comparisons, iteration, calls) ---------------------
@pytest.mark.parametrize(
    "source",
    [
        "m = arr > 0\nm[0, 0] = True\nm[1, 2] = False\nout = m.tolist()",
        "m = arr == 1\nm[0, 0] = True\nout = m.tolist()",
        "m = arr != 1\nm[0, 1] = True\nout = m.tolist()",
        "m = 1 < arr\nm[0] = True\nout = m.tolist()",
        "m = -arr\nm[0, 0] = 9\nout = m.tolist()",
        "m = abs(arr)\nm[0, 0] = 9\nout = m.tolist()",
        "q, r = divmod(arr, 2)\nq[0, 0] = 9\nr[1, 1] = 7\nout = [q.tolist(), r.tolist()]",
        "t = arr.nonzero()\nx = t[0]\nx[0] = 5\nout = x.tolist()",
        "import numpy as np\nt = np.nonzero(arr)\nx = t[1]\nx[0] = 5\nout = x.tolist()",
        "rows = [r for r in arr.copy()]\nrows[0][0] = 7\nout = [r.tolist() for r in rows]",
        "c = arr.copy()\nfor row in c:\n    row[0] = 7\nout = c.tolist()",
        "it = iter(arr + 1)\nrow = next(it)\nrow[1] = -1\nout = row.tolist()",
    ],
    ids=["gt", "eq", "ne", "reflected", "neg", "abs", "divmod", "nonzero", "np-nonzero"]
    + ["iter-copy"]
    + ["for-copy", "next"],
)
def test_array_results_of_slots_are_the_capsules(source):
    arr = _arr()
    c = _capsule(arr=arr)
    out = c.run(source + "\nout")
    plain = {"arr": _arr(), "np": np}
    exec(source, plain)
    assert out == plain["out"]
    assert arr.tolist() == _ARR and arr.flags.writeable


@pytest.mark.parametrize(
    "source",
    [
        "m = df == 1\nm['a'] = True\nout = m['a'].tolist()",
        "m = (df == 1)['a']\nm[0] = True\nout = m.tolist()",
        "m = df[['a', 'b']] > 1\nm.loc[0, 'a'] = True\nout = m.values.tolist()",
        "m = df['a'] != df['b']\nm[1] = False\nout = m.tolist()",
        "m = abs(df[['a', 'b']])\nm['a'] = 0\nout = m['a'].tolist()",
        "m = -df[['a', 'b']]\nm.iat[0, 0] = 9\nout = m['a'].tolist()",
        "out = []\nfor k, g in df.groupby('g'):\n    g['b'] = 0.0\n    out.append(g['b'].tolist())",
        "out = []\nfor i, row in df.iterrows():\n    row['a'] = 0\n    out.append(row['a'])",
        "q, r = divmod(df[['a', 'b']], 2)\nq['a'] = 0\nout = q['a'].tolist()",
    ],
    ids=["eq", "eq-column", "gt", "ne-series", "abs", "neg", "groupby-pairs", "iterrows"]
    + ["divmod"],
)
def test_frame_results_of_slots_are_the_capsules(source):
    df = _frame()
    c = _capsule(df=df)
    out = c.run(source + "\nout")
    plain = {"df": _frame()}
    exec(source, plain)
    assert out == plain["out"]
    assert df.equals(_frame())


@pytest.mark.parametrize(
    "source",
    [
        "for row in arr:\n    row[0] = 99",
        "rows = list(arr)\nrows[1][1] = 99",
        "row = next(iter(arr))\nrow.fill(99)",
        "row = next(iter(arr))\nrow.setflags(write=True)",
        "t = divmod(arr, 1)\nt[0].base[0] = 5",
        "v = (arr > 0, arr[0])\nv[1][0] = 99",
        "m = arr[0] > 0\nm.base.setflags(write=True)",
    ],
)
def test_views_reached_through_slots_stay_read_only(source):
    """Iteration of the user's array gives views of its memory: read-only, as ``arr[0]``."""
    arr = _arr()
    c = _capsule(arr=arr)
    _refused(c, source)
    assert arr.tolist() == _ARR and arr.flags.writeable


def test_iterating_an_object_array_gives_read_only_items():
    inner = np.arange(3)
    arr = np.empty(2, dtype=object)
    arr[0], arr[1] = inner, inner
    c = _capsule(arr=arr)
    for source in (
        "for x in arr:\n    x[0] = 5",
        "x, y = arr\ny.fill(1)",
        "next(iter(arr))[0] = 1",
    ):
        _refused(c, source)
    assert inner.tolist() == [0, 1, 2]


def test_a_judged_iterator_is_per_capability():
    """The iterator table is keyed by the proxy: another capsule's proxy of the same
    iterator judges nothing of the first capsule's."""
    arr = _arr()
    c = _capsule(arr=arr)
    c.run("it = iter(arr.copy())")
    from ipycap.engine.membrane import target_of

    it = target_of(c.namespace["it"])
    other = _capsule(it=it)
    _refused(other, "row = next(it)\nrow[0] = 5")
    assert c.run("row = next(it)\nrow[0] = 5\nrow.tolist()") == [5.0, 4.0, 5.0]
    assert arr.tolist() == _ARR


# -- 2. writable grants ------------------------------------------------------------------------
def test_results_of_a_writable_frame_are_the_capsules_and_its_own_writes_reach_it():
    df = _frame()
    c = _capsule(writable=("df",), df=df)
    out = c.run(
        "d = df.copy()\nd['a'] = 0\nm = df == 1\nm['a'] = True\n[d['a'].tolist(), m['a'].tolist()]"
    )
    assert out == [[0, 0, 0], [True, True, True]]
    assert df.equals(_frame())
    c.run("df.loc[0, 'a'] = 10")  # the grant itself still writes the user's frame
    assert df.loc[0, "a"] == 10


def test_results_of_a_writable_array_are_the_capsules_and_views_stay_read_only():
    arr = _arr()
    c = _capsule(writable=("arr",), arr=arr)
    assert c.run(
        "m = arr > 2\nm[0, 0] = True\nc = arr.copy()\nc[0, 0] = -1\n[m[0, 0], c[0, 0]]"
    ) == [
        True,
        -1.0,
    ]
    assert arr.tolist() == _ARR
    c.run("arr[0, 0] = 42")
    assert arr[0, 0] == 42


# -- 3. polars ---------------------------------------------------------------------------------
pl_sources = [
    "d = df.with_columns(c=df['a'] * 2)\nd[0, 'a'] = 99\nout = [d['a'].to_list(), d['c'].to_list()]",
    "d = df.select('a', 'b')\nd[1, 'b'] = -1.0\nout = d['b'].to_list()",
    "d = df.filter(df['a'] > 1)\nd[0, 'a'] = 7\nout = d['a'].to_list()",
    "s = df['a']\ns[0] = 42\nout = s.to_list()",
    "s = df.get_column('a') + 1\ns.scatter(1, 0)\nout = s.to_list()",
    "t = s * 2\nt[0] = -5\nout = t.to_list()",
    "d = df.lazy().select('a', 'b').collect()\nd[0, 'a'] = 0\nout = d['a'].to_list()",
    "d = df.group_by('g', maintain_order=True).sum()\nd[0, 'a'] = 0\nout = d['a'].to_list()",
    "d = df.filter(pl.Series([True, False, True]))\nd[0, 'a'] = 0\nout = d['a'].to_list()",
    "d = df.with_columns(pl.Series('z', [7, 8, 9]))\nd[0, 'z'] = 0\nout = d['z'].to_list()",
    "d = df.hstack([pl.Series('z', [7, 8, 9])])\nout = d.columns",
    "m = df['a'] > 1\nm[0] = True\nout = m.to_list()",
    "d = df.clone()\nd.insert_column(0, pl.Series('z', [0, 0, 0]))\nout = d.columns",
]


@pytest.mark.parametrize("source", pl_sources)
def test_polars_results_are_the_capsules(source):
    pl = pytest.importorskip("polars")
    df = pl.DataFrame(_FRAME)
    s = pl.Series("s", [1, 2, 3])
    c = _capsule(df=df, s=s)
    out = c.run("import polars as pl\n" + source + "\nout")
    plain = {"df": df.clone(), "s": s.clone(), "pl": pl}
    exec(source, plain)
    assert out == plain["out"]
    assert df.equals(pl.DataFrame(_FRAME)) and s.to_list() == [1, 2, 3]


def test_polars_object_columns_and_numpy_views_stay_read_only():
    pl = pytest.importorskip("polars")
    inner = np.arange(3)
    df = pl.DataFrame({"o": pl.Series([inner, inner], dtype=pl.Object), "n": [1, 2]})
    nums = pl.DataFrame({"a": [1.0, 2.0]})
    c = _capsule(df=df, nums=nums)
    for source in (
        "d = df.select('o', 'n')\nd[0, 'n'] = 5",
        "s = df['o'].clone()\ns[0] = 1",
        "v = nums['a'].to_numpy()\nv[0] = 99",
        "v = nums.to_numpy()\nv.setflags(write=True)",
        "nums[0, 'a'] = 5.0",
        "df[0, 'n'] = 5",
    ):
        _refused(c, source)
    assert inner.tolist() == [0, 1, 2] and nums["a"].to_list() == [1.0, 2.0]
    assert df["n"].to_list() == [1, 2]


@pytest.mark.xfail(
    strict=True,
    reason="a capsule pl.Expr leaves as a reverse proxy: no side-effect-free way to prove it "
    "holds no Python callable or object (serializing pickles UDFs with cloudpickle in trusted "
    "code; its display does not escape names); see scratch/drv-docs.md",
)
def test_polars_capsule_expressions_reach_protected_frames():
    pl = pytest.importorskip("polars")
    df = pl.DataFrame(_FRAME)
    c = _capsule(df=df)
    out = c.run("import polars as pl\ndf.with_columns(c=pl.col('a') * 2)['c'].to_list()")
    assert out == [2, 4, 6]


# -- 4. mixing capsule-made and protected library objects ---------------------------------------
_OPS = ["+", "-", "*", "/", "//", "%", "**", "==", "!=", "<", ">=", "&", "|"]
_MAKERS = {
    # name -> (expression building the object, in the capsule and in plain Python)
    "numpy": "np.array([3, 1, 2])",
    "pandas-series": "pd.Series([3, 1, 2], index=[2, 0, 1])",
    "pandas-frame": "pd.DataFrame({'a': [3, 1, 2], 'b': [1, 2, 3]}, index=[2, 0, 1])",
    "polars-series": "pl.Series('s', [3, 1, 2])",
}
_OWN = {
    "numpy": "np.array([1, 2, 3])",
    "pandas-series": "pd.Series([1, 2, 3])",
    "pandas-frame": "pd.DataFrame({'a': [1, 2, 3], 'b': [4, 5, 6]})",
    "polars-series": "pl.Series('t', [1, 2, 3])",
}
_PAIRS = [
    ("numpy", "pandas-series"),
    ("pandas-series", "numpy"),
    ("pandas-series", "pandas-series"),
    ("pandas-frame", "pandas-frame"),
    ("pandas-series", "pandas-frame"),
    ("numpy", "numpy"),
    ("polars-series", "polars-series"),
    ("numpy", "polars-series"),
]


def _plain(value):
    """A comparable plain form of a library result (index alignment included)."""
    if isinstance(value, np.ndarray):
        return ("ndarray", str(value.dtype), repr(value.tolist()))
    if isinstance(value, (pd.DataFrame, pd.Series)):
        frame = value.sort_index()
        return (type(value).__name__, str(frame.dtypes), frame.to_string())
    if type(value).__module__.startswith("polars"):
        return ("pl." + type(value).__name__, str(value.dtype), repr(value.to_list()))
    return (type(value).__name__, repr(value))


_POLARS_NEVER_DEFERS = pytest.mark.xfail(
    strict=True,
    reason="polars' operators never defer (no priority protocol): a capsule series takes a "
    "proxy for a scalar; 'p + own' works (scratch/drv-docs.md)",
)
_NUMPY_POLARS_POW = pytest.mark.xfail(
    strict=True,
    reason="numpy ** polars runs polars' ufunc path (a UDF without a return type) when the "
    "proxy defers to the protected series; the plain pair takes numpy's",
)


def _scan_cases():
    for pair in _PAIRS:
        for own_first in (True, False):
            for op in _OPS:
                if op in "&|" and "polars" in pair[0] + pair[1]:
                    continue  # polars integer series have no bitwise operators: no case
                marks = []
                if pair == ("polars-series", "polars-series") and own_first:
                    marks.append(_POLARS_NEVER_DEFERS)
                if pair == ("numpy", "polars-series") and own_first and op == "**":
                    marks.append(_NUMPY_POLARS_POW)
                order = "own-op-protected" if own_first else "protected-op-own"
                yield pytest.param(
                    pair, own_first, op, marks=marks, id=f"{'-'.join(pair)}-{order}-{op}"
                )


@pytest.mark.parametrize("pair, own_first, op", list(_scan_cases()))
def test_operators_mixing_own_and_protected_objects_give_the_librarys_answer(pair, own_first, op):
    """Every operator between a capsule-made object and a protected one computes what the
    library computes for two objects of its own (alignment, broadcasting, result type), the
    result is the capsule's own, and the protected object is unchanged."""
    pl = pytest.importorskip("polars")
    own_kind, protected_kind = pair
    env = {"np": np, "pd": pd, "pl": pl}
    protected = eval(_MAKERS[protected_kind], env)
    own_src = _OWN[own_kind]
    expr = f"own {op} p" if own_first else f"p {op} own"
    try:
        expected = _plain(
            eval(expr, {**env, "own": eval(own_src, env), "p": eval(_MAKERS[protected_kind], env)})
        )
    except Exception as e:  # noqa: BLE001 - the library refuses this pair: so must the capsule
        expected = type(e)
    c = _capsule(p=protected)
    source = (
        "import numpy as np\nimport pandas as pd\nimport polars as pl\n"
        f"own = {own_src}\nr = {expr}\n"
    )
    if isinstance(expected, type):
        if own_kind.partition("-")[0] == protected_kind.partition("-")[0]:
            with pytest.raises(Exception):  # noqa: PT011 - one library refuses its own pair
                c.run(source)
        else:  # two libraries' quirks (numpy x polars): an answer or a refusal, nothing changed
            try:
                c.run(source)
            except Exception:  # noqa: BLE001, S110
                pass
        assert _plain(protected) == _plain(eval(_MAKERS[protected_kind], env))
        return
    c.run(source)
    got = c.run("r")
    from ipycap.engine.membrane import target_of

    raw = target_of(got) if type(got).__name__ == "Proxy" else got
    assert _plain(raw) == expected
    library = {"ndarray": "numpy", "Series": "pandas", "DataFrame": "pandas"}.get(
        expected[0], "polars"
    )
    if protected_kind.startswith(library):
        # the result is the capsule's: it can change it, and nothing protected changes (a
        # result of another library than the protected object's is judged by the protected
        # object's rule, which knows only its own library: it stays read-only)
        if expected[0] == "DataFrame":
            c.run("r[r.columns[0]] = r[r.columns[0]]")
        elif expected[0] == "Series":
            c.run("r[r.index[0]] = r[r.index[0]]")
        elif expected[0] != "pl.DataFrame":
            c.run("r[0] = r[0]")
    assert _plain(protected) == _plain(eval(_MAKERS[protected_kind], env))


@pytest.mark.parametrize(
    "source, expected",
    [
        ("r = df[pd.Series([True, False, True])]\nr['a'] = 0\nout = r.index.tolist()", [0, 2]),
        ("r = df.merge(pd.DataFrame({'a': [1, 3], 'z': [9, 8]}))\nout = r['z'].tolist()", [9, 8]),
        ("r = pd.concat([pd.DataFrame({'a': [7]}), df])\nout = r['a'].tolist()", [7, 1, 2, 3]),
        (
            "r = df.assign(c=pd.Series([1, 2, 3]))\nr['c'] = 0\nout = r.columns.tolist()",
            ["a", "b", "g", "c"],
        ),
        ("r = df.set_index(pd.Index([5, 6, 7]))\nout = r.index.tolist()", [5, 6, 7]),
        (
            "r = df['a'].isin(pd.Series([1, 3]))\nr[0] = False\nout = r.tolist()",
            [False, False, True],
        ),
        ("r = np.arange(10)[df['a']]\nr[0] = -1\nout = r.tolist()", [-1, 2, 3]),
        ("r = df['a'].reindex(pd.Index([2, 1, 0]))\nout = r.tolist()", [3, 2, 1]),
        ("r = df['a'].where(pd.Series([True, False, True]), 0)\nout = r.tolist()", [1, 0, 3]),
    ],
)
def test_methods_of_protected_frames_accept_capsule_made_objects(source, expected):
    df = _frame()
    c = _capsule(df=df)
    assert c.run("import numpy as np\nimport pandas as pd\n" + source + "\nout") == expected
    assert df.equals(_frame())


def test_capsule_objects_holding_capsule_values_still_leave_as_reverse_proxies():
    """Only containers of data leave as copies: a frame with an object column, a name or an
    attrs entry that is a capsule object, or labels of a capsule str subclass."""
    from ipycap.engine.membrane import derived

    class Mine(str):
        pass

    class Key:
        pass

    np_obj = np.array([object()], dtype=object)
    for value in (
        pd.DataFrame({"o": [object()]}),
        pd.Series([1], name=object()),
        pd.Series([1], index=pd.Index([Mine("x")], dtype=object)),
        pd.Series([1]).set_axis(pd.Index(["x"], name=object())),
        pd.Series(pd.Categorical([Key()])),
        np_obj,
    ):
        assert derived.exported_copy(value) is None, value
    s = pd.Series([1])
    s.attrs["k"] = object()
    assert derived.exported_copy(s) is None
    copied = derived.exported_copy(pd.Series([1, 2], index=["a", "b"], name="n"))
    assert copied.to_dict() == {"a": 1, "b": 2} and copied.name == "n"


def test_protected_objects_answer_library_priorities_and_nothing_else():
    """numpy and pandas ask a proxy (from C, as trusted code) for their priorities: a proxy
    of a library container answers above every library object; capsule code is not
    answered, and no other private name is."""
    c = _capsule(s=pd.Series([1]), arr=_arr(), df=_frame(), items=[1])
    s, arr, items = (c.run(n) for n in ("s", "arr", "items"))
    assert s.__array_priority__ > 1000 and s.__pandas_priority__ > 4000
    assert arr.__array_priority__ > 1000
    with pytest.raises(AttributeError):
        items.__array_priority__  # noqa: B018 - not a library container
    for name in ("__array_ufunc__", "_typ", "_mgr"):
        with pytest.raises(AttributeError):
            getattr(s, name)
    for source in ("s.__array_priority__", "df.__pandas_priority__", "s._typ", "df._mgr"):
        _refused(c, source)


def test_exported_copies_hold_library_dtypes_only():
    """Containers whose dtype is an extension type (which the capsule could define) leave as
    reverse proxies; polars' and pyarrow's own types leave as copies."""
    pl = pytest.importorskip("polars")
    pa = pytest.importorskip("pyarrow")
    import datetime

    from ipycap.engine.membrane import derived

    frame = pl.DataFrame(
        {
            "a": [1],
            "l": [[1]],
            "s": [{"x": 1}],
            "d": [datetime.date(2020, 1, 1)],
            "c": pl.Series(["x"], dtype=pl.Categorical),
        }
    )
    assert derived.exported_copy(frame).equals(frame)
    assert derived.exported_copy(pd.Series(["x"], dtype=pd.ArrowDtype(pa.string()))) is not None
    assert derived.exported_copy(pl.Series([object()], dtype=pl.Object)) is None
    assert derived.exported_copy(pl.DataFrame({"s": [{"o": object()}]}, strict=False)) is None

    class Tagged(pa.ExtensionType):
        def __init__(self):
            super().__init__(pa.int64(), "drv.tagged")

        def __arrow_ext_serialize__(self):
            return b""

        @classmethod
        def __arrow_ext_deserialize__(cls, storage_type, serialized):
            return cls()

    storage = pa.array([1])
    tagged = pa.ExtensionArray.from_storage(Tagged(), storage)
    series = pd.Series(pd.arrays.ArrowExtensionArray(tagged))
    assert derived.exported_copy(series) is None


def test_library_functions_combine_capsule_made_and_protected_frames():
    df = _frame()
    c = _capsule(df=df)
    out = c.run(
        "import pandas as pd\nown = pd.DataFrame({'a': [1, 3], 'z': [9, 8]})\n"
        "r = pd.merge(own, df)\nr['z'] = 0\n[r['b'].tolist(), pd.concat([own, df])['a'].tolist()]"
    )
    assert out == [[4.0, 6.0], [1, 3, 1, 2, 3]]
    assert df.equals(_frame())


@pytest.mark.xfail(
    strict=True,
    reason="a capsule frame's own methods get the proxy itself (pandas checks isinstance "
    "DataFrame): use pd.merge(own, df) or df.merge(own); scratch/drv-docs.md",
)
def test_capsule_frame_methods_accept_protected_frames():
    c = _capsule(df=_frame())
    assert c.run("import pandas as pd\npd.DataFrame({'a': [1]}).merge(df)['b'].tolist()") == [4.0]
