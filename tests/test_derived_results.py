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
