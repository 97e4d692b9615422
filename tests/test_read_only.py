"""Read-only protected objects stay unchanged (DESIGN.md, "Read-only means").

Red teams changed read-only protected objects through their own public methods: the
membrane refused a method only when it was a builtin method of an *exact* list, dict, set or
bytearray.  Now the standard-library containers are judged by the class that defines the
method (membrane/readonly.py), and library containers (numpy, pandas, polars) are held by
the proxy as an immutable stand-in sharing their data.  Each test checks the user's object
afterwards: a refusal alone proves nothing.  Reading and computing keep working."""

from __future__ import annotations

import array
import collections
import collections.abc
import io

import pytest

from ipycap import Capsule, CapsuleTypeError
from ipycap.engine.membrane import readonly

np = pytest.importorskip("numpy")
pd = pytest.importorskip("pandas")


def _attempt(capsule, source):
    """Run ``source``; a refusal or a library's own error is what read-only should give."""
    try:
        return capsule.run(source)
    except Exception as err:  # noqa: BLE001 - the object's state is what the tests check
        return err


# -- the red-team findings, as regressions ---------------------------------------------------
@pytest.mark.parametrize(
    "source",
    [
        "settings.update(admin=True)",
        "settings.setdefault('root', True)",
        "settings.move_to_end('admin')",
        "settings.pop('admin')",
        "settings.clear()",
        "settings.popitem()",
        "queue.append('planted')",
        "queue.appendleft('planted')",
        "queue.extend(['planted'])",
        "queue.rotate(1)\nqueue.append('x')",
        "queue.popleft()",
        "queue.clear()",
        "getattr(queue, 'append')('planted')",
        "m = queue.append\nm('planted')",
    ],
)
def test_read_only_proxy_of_ordereddict_is_mutable(source):
    settings = collections.OrderedDict(admin=False, user=True)
    queue = collections.deque(["job"])
    c = Capsule(protected={"settings": settings, "queue": queue})
    _attempt(c, source)
    assert list(settings.items()) == [("admin", False), ("user", True)] and list(queue) == [
        "job"
    ], "a read-only protected container was changed through its public methods"


@pytest.mark.parametrize(
    "source",
    [
        "log.write('planted by the capsule\\n')\nlog.flush()",
        "log.writelines(['planted\\n'])",
        "print('planted', file=log)",
        "log.buffer.write(b'planted')",
        "log.buffer.raw.write(b'planted')",
        "w = log.write\nw('planted')",
        "log.truncate(0)",
        "log.close()",
        "log.reconfigure(encoding='latin-1')",
        "log.detach()",
    ],
)
def test_read_only_proxy_of_open_file_is_writable(tmp_path, source):
    path = tmp_path / "app.log"
    path.write_text("kept\n")
    with open(path, "a", encoding="utf-8") as log:
        c = Capsule(protected={"log": log})
        _attempt(c, source)
        assert not log.closed and log.encoding == "utf-8"
        log.write("user line\n")
    assert path.read_text() == "kept\nuser line\n", "a capsule changed a read-only file object"


def test_read_only_named_temporary_file_is_not_writable(tmp_path):
    """tempfile's wrapper hands out its file's methods through __getattr__, as functions."""
    import tempfile

    with tempfile.NamedTemporaryFile("w+", dir=tmp_path, delete=False) as tmp:
        c = Capsule(protected={"tmp": tmp})
        for source in ("tmp.write('planted')", "tmp.file.write('planted')", "tmp.close()"):
            _attempt(c, source)
        assert not tmp.closed
    with open(tmp.name, encoding="utf-8") as f:
        assert f.read() == ""


def test_read_only_file_can_still_be_read(tmp_path):
    path = tmp_path / "data.txt"
    path.write_text("a\nb\n")
    with open(path, encoding="utf-8") as f:
        c = Capsule(protected={"f": f})
        assert c.run("[f.readline(), f.read(), f.readable(), f.writable()]") == [
            "a\n",
            "b\n",
            True,
            False,
        ]


_MUTATE_LIBS = {
    "ndarray_fill": ("arr", "arr.fill(7)"),
    "ndarray_view_put": ("arr", "v = arr.reshape(-1)\nv.put([0], [7])"),
    "ndarray_sort": ("arr", "arr.sort()"),
    "ndarray_partition": ("arr", "arr.partition(1)"),
    "ndarray_byteswap": ("arr", "arr.byteswap(inplace=True)"),
    "ndarray_resize": ("arr", "arr.resize(10, refcheck=False)"),
    "ndarray_setflags": ("arr", "arr.setflags(write=True)\narr.fill(7)"),
    "ndarray_view_setflags": ("arr", "v = arr[:]\nv.setflags(write=True)\nv.fill(7)"),
    "ndarray_slice_item": ("arr", "v = arr[:]\nv[0] = 7"),
    "ndarray_transpose_fill": ("arr", "arr.T.fill(7)"),
    "ndarray_view_method": ("arr", "arr.view().fill(7)"),
    "ndarray_base_fill": ("arr", "arr.base.fill(7)"),
    "ndarray_setfield": ("arr", "arr.setfield(7, arr.dtype)"),
    "ndarray_put": ("arr", "arr.put([0], [7])"),
    "ndarray_flat": ("arr", "f = arr.flat\nf[0] = 7"),
    "ndarray_np_copyto": ("arr", "import numpy as np\nnp.copyto(arr, 7)"),
    "ndarray_ufunc_out": ("arr", "import numpy as np\nnp.add(arr, 1, out=arr)"),
    "dataframe_inplace_drop": ("df", "df.drop(columns=['a'], inplace=True)"),
    "dataframe_insert": ("df", "df.insert(1, 'evil', [0, 0])"),
    "dataframe_inplace_rename": ("df", "df.rename(columns={'a': 'z'}, inplace=True)"),
    "dataframe_inplace_fillna": ("df", "df.fillna(0, inplace=True)"),
    "dataframe_derived_loc": ("df", "d = df[['a']]\nd.loc[0, 'a'] = 99"),
    "dataframe_column_values": ("df", "df['a'].values[0] = 99"),
    "dataframe_values": ("df", "df.values[0, 0] = 99"),
    "dataframe_to_numpy": ("df", "df.to_numpy()[0, 0] = 99"),
    "dataframe_column_array_setflags": ("df", "v = df['a'].values\nv.setflags(write=True)\nv[0]=9"),
    "dataframe_pop": ("df", "df.pop('a')"),
    "dataframe_update": ("df", "import pandas as pd\ndf.update(pd.DataFrame({'a': [9, 9]}))"),
    "series_inplace": ("s", "s.clip(upper=0, inplace=True)"),
    "series_values": ("s", "s.values[0] = 99"),
}


def _mutable_objects():
    return {
        "arr": np.array([3, 1, 2]),
        "df": pd.DataFrame({"a": [1, 2]}),
        "s": pd.Series([5, 6]),
    }


def _snapshot(obj):
    return obj.tolist() if isinstance(obj, np.ndarray) else obj.to_dict()


@pytest.mark.parametrize("name", sorted(_MUTATE_LIBS))
def test_capsule_read_only_protected_container_mutated(name):
    key, source = _MUTATE_LIBS[name]
    objs = _mutable_objects()
    before = _snapshot(objs[key])
    c = Capsule(grants=[("import", "numpy"), ("import", "pandas")], protected=objs)
    _attempt(c, source)
    assert _snapshot(objs[key]) == before, f"ESCAPE ({name}): the read-only object changed"
    if key == "arr":
        assert objs["arr"].flags.writeable  # the user's own array stays theirs to write


# -- standard-library containers, judged by the defining class ------------------------------
class UserMapping(collections.abc.MutableMapping):
    """A user class that inherits the MutableMapping mixins."""

    def __init__(self):
        self._d = {"k": 1}

    def __getitem__(self, key):
        return self._d[key]

    def __setitem__(self, key, value):
        self._d[key] = value

    def __delitem__(self, key):
        del self._d[key]

    def __iter__(self):
        return iter(self._d)

    def __len__(self):
        return len(self._d)

    def describe(self):
        return f"{len(self._d)} keys"


class UserSequence(collections.abc.MutableSequence):
    def __init__(self):
        self._l = [1]

    def __getitem__(self, i):
        return self._l[i]

    def __setitem__(self, i, v):
        self._l[i] = v

    def __delitem__(self, i):
        del self._l[i]

    def __len__(self):
        return len(self._l)

    def insert(self, i, v):
        self._l.insert(i, v)


class UserSet(collections.abc.MutableSet):
    def __init__(self):
        self._s = {1}

    def __contains__(self, x):
        return x in self._s

    def __iter__(self):
        return iter(self._s)

    def __len__(self):
        return len(self._s)

    def add(self, x):
        self._s.add(x)

    def discard(self, x):
        self._s.discard(x)


class Sublist(list):
    """A plain subclass: list's own mutators are still list's."""


class Aliased:
    def __init__(self):
        self.items = []

    push = list.append  # a mutator under another name, in a user class

    def add_item(self, x):  # the user's own method: stays callable
        self.items.append(x)


def _stdlib_objects():
    return {
        "od": collections.OrderedDict(a=1),
        "dq": collections.deque([1]),
        "ctr": collections.Counter("ab"),
        "cm": collections.ChainMap({"a": 1}),
        "dd": collections.defaultdict(list, {"a": [1]}),
        "ud": collections.UserDict(a=1),
        "ul": collections.UserList([1]),
        "arr": array.array("i", [1]),
        "um": UserMapping(),
        "us": UserSequence(),
        "uset": UserSet(),
        "sub": Sublist([1]),
        "buf": io.BytesIO(b"data"),
        "sio": io.StringIO("text"),
        "mv": memoryview(bytearray(b"abc")),
    }


def _state(objs):
    def one(v):
        if isinstance(v, (io.BytesIO, io.StringIO)):
            return (v.closed, not v.closed and v.getvalue())
        if isinstance(v, memoryview):
            return v.tobytes()
        if isinstance(v, (UserMapping, UserSequence, UserSet)):
            return repr(vars(v))
        return repr(v)

    return {k: one(v) for k, v in objs.items()}


@pytest.mark.parametrize(
    "source",
    [
        "od.update(b=2)",
        "od.move_to_end('a', last=False)",
        "dq.extendleft([0])",
        "dq.insert(0, 0)",
        "dq.remove(1)",
        "ctr.update('zz')",
        "ctr.subtract('a')",
        "cm.update(x=1)",
        "cm.pop('a')",
        "cm.maps[0].update(x=1)",
        "cm.maps.append({})",
        "cm.new_child().maps[1].update(x=1)",
        "cm.parents.maps.append({})",
        "dd['missing']",
        "dd['missing'].append(1)",
        "dd.setdefault('k', [])",
        "dd['a'].append(2)",
        "ud.update(x=1)",
        "ud.data.update(x=1)",
        "ud.pop('a')",
        "ul.append(2)",
        "ul.sort(reverse=True)\nul.append(0)",
        "ul.data.append(2)",
        "arr.append(2)",
        "arr.frombytes(b'\\0\\0\\0\\0')",
        "arr.byteswap()",
        "arr.fromlist([3])",
        "um.update(x=1)",
        "um.setdefault('x', 1)",
        "um.pop('k')",
        "um.popitem()",
        "um.clear()",
        "us.append(2)",
        "us.extend([2])",
        "us.reverse()",
        "us.pop()",
        "uset.remove(1)",
        "uset.pop()",
        "uset.clear()",
        "sub.append(2)",
        "sub.sort()",
        "buf.write(b'X')",
        "buf.truncate(0)",
        "buf.close()",
        "buf.getbuffer()[0] = 88",
        "m = buf.getbuffer()\nm.release()",
        "sio.write('X')",
        "sio.close()",
        "mv[0] = 88",
        "mv.release()",
        "mv.cast('B')[0] = 88",
    ],
)
def test_stdlib_container_mutators_are_refused(source):
    objs = _stdlib_objects()
    before = _state(objs)
    _attempt(Capsule(protected=objs), source)
    assert _state(objs) == before, f"{source!r} changed a read-only protected object"


def test_refusal_names_the_method_the_layer_and_the_grant():
    c = Capsule(protected={"od": collections.OrderedDict()})
    with pytest.raises(CapsuleTypeError) as info:
        c.run("od.move_to_end('a')")
    msg = str(info.value)
    assert "OrderedDict.move_to_end()" in msg and "membrane" in msg and "--writable od" in msg


def test_defaultdict_reads_of_present_keys_work_and_missing_keys_are_refused():
    dd = collections.defaultdict(int, {"x": 1})
    c = Capsule(protected={"dd": dd})
    assert c.run("[dd['x'], dd.get('nope'), 'nope' in dd, sorted(dd)]") == [1, None, False, ["x"]]
    with pytest.raises(CapsuleTypeError) as info:
        c.run("dd['nope']")
    assert "defaultdict" in str(info.value) and ".get(key)" in str(info.value)
    assert dict(dd) == {"x": 1}


def test_user_overrides_and_own_methods_stay_callable():
    class Box(list):
        def append(self, x):  # the user's override: the user's code decides
            list.append(self, x * 10)

    objs = {"box": Box(), "al": Aliased(), "um": UserMapping()}
    c = Capsule(protected=objs)
    c.run("box.append(1)\nal.add_item(2)")
    assert objs["box"] == [10] and objs["al"].items == [2]
    assert c.run("um.describe()") == "1 keys"
    assert c.run("[um['k'], len(um), list(um.keys()), um.get('k')]") == [1, 1, ["k"], 1]
    _attempt(c, "al.push(3)")  # list.append under another name: still list's mutator
    assert objs["al"].items == [2]


def test_unbound_mutators_reached_through_a_proxy_are_refused():
    lst = Sublist([1])
    od = collections.OrderedDict()
    c = Capsule(protected={"Sub": Sublist, "lst": lst, "OD": collections.OrderedDict, "od": od})
    for source in ("Sub.append(lst, 2)", "OD.update(od, a=1)", "OD.__dict__"):
        _attempt(c, source)
    assert lst == [1] and od == {}


def test_non_mutating_methods_of_containers_work():
    objs = _stdlib_objects()
    c = Capsule(protected=objs)
    got = c.run(
        "[od.copy(), list(dq), dq.count(1), ctr.most_common(1), cm['a'], ud.get('a'), "
        "ul.index(1), arr.tolist(), um.get('k'), buf.getvalue(), sio.read(), mv.tobytes(), "
        "sorted(dd.keys())]"
    )
    assert got[1:] == [[1], 1, [("a", 1)], 1, 1, 0, [1], 1, b"data", "text", b"abc", ["a"]]
    assert dict(got[0]) == {"a": 1}


def test_writable_proxies_still_mutate():
    objs = _stdlib_objects()
    c = Capsule(protected=objs, writable=["od", "dq", "ctr", "um", "dd", "buf"])
    c.run(
        "od.update(b=2)\ndq.append(2)\nctr.update('a')\num.update(x=1)\ndd['new']\nbuf.write(b'X')"
    )
    assert objs["od"] == {"a": 1, "b": 2} and list(objs["dq"]) == [1, 2]
    assert objs["ctr"]["a"] == 2 and objs["um"]["x"] == 1 and "new" in objs["dd"]
    assert objs["buf"].getvalue() == b"Xata"


def test_every_public_method_of_the_table_classes_is_classified():
    """A class in the table either lists a method as mutating or this test knows it reads:
    a new Python version's new mutator fails here instead of slipping through."""
    reading = {
        list: {"copy", "count", "index"},
        dict: {"copy", "fromkeys", "get", "items", "keys", "values"},
        set: {"copy", "difference", "intersection", "isdisjoint", "issubset", "issuperset"}
        | {"symmetric_difference", "union"},
        collections.deque: {"copy", "count", "index"},
        collections.OrderedDict: {"copy", "fromkeys", "items", "keys", "values"},
        collections.Counter: {"copy", "elements", "most_common", "total", "fromkeys"},
        collections.UserList: {"copy", "count", "index"},
        array.array: {"buffer_info", "count", "index", "tobytes", "tofile", "tolist"}
        | {"tounicode"},
        memoryview: {"cast", "hex", "tobytes", "tolist", "toreadonly"},
    }
    reading[bytearray] = {n for n in vars(bytes) if n[:1] != "_"} | {"copy"}
    io_reading = {"fileno", "isatty", "readable", "readline", "readlines", "seek", "seekable"}
    io_reading |= {"tell", "writable", "peek", "read", "read1", "readall", "readinto"}
    io_reading |= {"readinto1", "getvalue", "getbuffer"}
    for cls in (io.FileIO, io.BufferedReader, io.BufferedWriter, io.BufferedRandom):
        reading[cls] = io_reading
    for cls in (io.BufferedRWPair, io.TextIOWrapper, io.StringIO, io.BytesIO):
        reading[cls] = io_reading
    classes = [*reading, collections.ChainMap, collections.UserDict, collections.defaultdict]
    for cls in classes:
        known = set().union(*(reading.get(k, ()) for k in cls.__mro__))
        known |= {"get", "items", "keys", "values", "copy", "fromkeys", "new_child"}
        for klass in cls.__mro__:
            for name, value in vars(klass).items():
                if name[:1] == "_" or not callable(value) or klass is object:
                    continue
                assert readonly.refuses(cls, name) or name in known, (
                    f"{cls.__qualname__}.{name} is neither a mutator nor known to read"
                )
                if name in known:
                    assert not readonly.refuses(cls, name), f"{cls.__qualname__}.{name}"


# -- library containers: an immutable target ------------------------------------------------
def _lib_capsule(**objs):
    return Capsule(grants=[("import", "numpy"), ("import", "pandas")], protected=objs)


@pytest.mark.parametrize(
    "make",
    [
        lambda: np.arange(12.0).reshape(3, 4),
        lambda: np.arange(12).reshape(3, 4)[:, ::2],
        lambda: np.arange(12).reshape(3, 4).T,
        lambda: np.arange(10)[::-1],
        lambda: np.array(["2020-01-01", "2021-06-30"], dtype="datetime64[D]"),
        lambda: np.array([1, 2], dtype="timedelta64[s]"),
        lambda: np.zeros(3, dtype=[("a", "i4"), ("b", "f8")]),
        lambda: np.array(5.0),
        lambda: np.array(["ab", "c"]),
        lambda: np.array([[1, 2], [3, 4]], dtype=np.float16),
    ],
    ids=["2d", "strided", "transposed", "reversed", "datetime", "timedelta", "struct", "0d"]
    + ["str", "float16"],
)
def test_read_only_arrays_of_every_layout_cannot_be_written(make):
    arr = make()
    before = arr.copy()
    c = _lib_capsule(arr=arr)
    for source in (
        "arr.fill(arr.flat[0])",
        "arr.setflags(write=True)\narr.fill(arr.flat[0])",
        "arr.view().setflags(write=True)",
        "arr.reshape(-1).setflags(write=True)",
        "arr.reshape(-1).put([0], arr.reshape(-1)[-1:])",
        "arr.base.setflags(write=True)",
        "arr.base.base.setflags(write=True)",
    ):
        _attempt(c, source)
    assert arr.tobytes() == before.tobytes() and arr.flags.writeable
    assert c.run("arr.shape") == arr.shape and c.run("arr.flags.writeable") is False
    assert c.run("arr.tolist()") == arr.tolist()


def test_object_arrays_are_read_only_copies_with_read_only_items():
    items = [[1], [2]]
    arr = np.empty(2, dtype=object)
    arr[0], arr[1] = items
    c = _lib_capsule(arr=arr)
    for source in (
        "arr[0] = 5",
        "arr.fill(None)",
        "arr[0].append(9)",
        "arr.setflags(write=True)\narr[0] = 5",
    ):
        _attempt(c, source)
    assert arr[0] is items[0] and items == [[1], [2]]
    assert c.run("arr[1][0]") == 2


def test_read_only_array_keeps_identity_and_type():
    arr = np.arange(3)
    c = _lib_capsule(arr=arr)
    assert c.run(
        "import numpy as np\n[arr is arr, isinstance(arr, np.ndarray), type(arr).__name__]"
    ) == [
        True,
        True,
        "ndarray",
    ]
    c.run("a = arr\n")
    assert c.run("a is arr")


def test_reading_computing_and_plotting_from_read_only_objects_works():
    mpl = pytest.importorskip("matplotlib")
    mpl.use("Agg")
    arr = np.arange(6.0).reshape(2, 3)
    df = pd.DataFrame({"g": ["a", "b", "a"], "v": [1.0, 2.0, 3.0]})
    c = Capsule(
        grants=[("import", "numpy"), ("import", "pandas"), ("import", "matplotlib")],
        protected={"arr": arr, "df": df},
    )
    assert c.run("import numpy as np\nfloat(np.mean(arr))") == 2.5
    assert c.run("float(arr.sum())") == 15.0
    assert c.run("(arr * 2).tolist()") == [[0.0, 2.0, 4.0], [6.0, 8.0, 10.0]]
    assert c.run("df.describe().loc['mean', 'v']") == 2.0
    assert c.run("df.groupby('g')['v'].sum().to_dict()") == {"a": 4.0, "b": 2.0}
    assert c.run("df[df.v > 1].shape") == (2, 2)
    assert c.run("import numpy as np\nfloat(np.asarray(df['v']).sum())") == 6.0
    # pandas plots from its read-only copy; matplotlib gets numpy's copy of an array.  (A
    # proxy handed straight to ax.plot meets ABCMeta.__instancecheck__ with a proxied class
    # once a capsule has imported numpy: on main too, reported separately.)
    assert c.run(
        "import matplotlib.pyplot as plt\nimport numpy as np\nax = df.plot()\n"
        "df.plot.bar(x='g', y='v', ax=ax)\ndf['v'].hist(ax=ax)\n"
        "fig, own = plt.subplots()\nown.plot(np.asarray(arr[0]))\nlen(own.lines)"
    )
    c.run("import matplotlib.pyplot as plt\nplt.close('all')")
    assert df.shape == (3, 2) and arr.flags.writeable


def test_copies_of_read_only_arrays_are_the_capsules_to_change():
    arr = np.arange(3)
    c = _lib_capsule(arr=arr)
    assert c.run(
        "import numpy as np\nc = np.copy(arr)\nc[0] = 9\n[c.flags.writeable, c.tolist()]"
    ) == [
        True,
        [9, 1, 2],
    ]
    assert c.run("import numpy as np\nc = np.array(arr)\nc += 1\nc.tolist()") == [1, 2, 3]
    assert arr.tolist() == [0, 1, 2]


def test_read_only_dataframe_changes_stay_in_the_capsules_copy():
    df = pd.DataFrame({"a": [1, 2], "b": [3, 4]})
    c = _lib_capsule(df=df)
    _attempt(c, "df.drop(columns=['a'], inplace=True)")
    assert list(df.columns) == ["a", "b"] and df.to_dict() == {"a": {0: 1, 1: 2}, "b": {0: 3, 1: 4}}


def test_numpy_arrays_pandas_hands_out_of_a_read_only_frame_are_read_only():
    df = pd.DataFrame({"a": [1, 2]})
    c = _lib_capsule(df=df)
    assert c.run("[df.values.flags.writeable, df['a'].to_numpy().flags.writeable]") == [
        False,
        False,
    ]


def test_polars_frames_are_read_only_clones():
    pl = pytest.importorskip("polars")
    df = pl.DataFrame({"a": [1, 2]})
    s = pl.Series("s", [1, 2])
    c = Capsule(grants=[("import", "polars")], protected={"df": df, "s": s})
    for source in (
        "df.insert_column(1, df['a'].alias('e'))",
        "df.extend(df)",
        "s.scatter(0, 99)",
        "s.append(s)",
        "df.replace_column(0, df['a'] * 0)",
    ):
        _attempt(c, source)
    assert df.columns == ["a"] and df["a"].to_list() == [1, 2] and s.to_list() == [1, 2]
    fresh = Capsule(grants=[("import", "polars")], protected={"df": df})
    assert fresh.run("[df['a'].sum(), df.shape, df.filter(df['a'] > 1).height]") == [3, (2, 1), 1]


def test_read_only_target_is_made_once_per_object():
    arr = np.arange(3)
    cap, other = _Cap(), _Cap()
    first = readonly.readonly_target(arr, cap)
    assert readonly.readonly_target(arr, cap) is first and not first.flags.writeable
    assert readonly.readonly_target(arr, other) is not first
    items = [1]
    assert readonly.readonly_target(items, cap) is items


class _Cap:
    """Stands in for a capability (only its identity matters to the target cache)."""


def test_only_container_types_leave_the_c_fast_path():
    """Read-only proxies bind Python methods in C unless the type could have a mutator."""

    class Plain:
        nothing = None

        def m(self):
            return 1

    assert readonly.fast_path_ok(Plain)
    for tp in (collections.Counter, UserMapping, Aliased, Sublist, collections.ChainMap):
        assert not readonly.fast_path_ok(tp), tp


# -- results derived from read-only library containers (membrane/derived.py) ------------------
@pytest.mark.parametrize(
    "make",
    [
        "arr.copy()",
        "arr + 1",
        "-arr",
        "arr[[0, 2]]",
        "arr[arr > 0]",
        "arr.astype('f4')",
        "arr.flatten()",
        "arr.copy().T",
        "arr.copy()[1:]",
        "arr.copy().reshape(2, 3).T",
    ],
)
def test_results_sharing_no_memory_with_a_read_only_array_are_the_capsules(make):
    arr = np.arange(6.0)
    c = _lib_capsule(arr=arr)
    out = c.run(f"a = {make}\na[0] = 99\na += 1\na.flat[-1] = -1\n[a.flags.writeable, a.tolist()]")
    plain = eval(make, {"arr": arr.copy()})
    plain[0] = 99
    plain += 1
    plain.flat[-1] = -1
    assert out == [True, plain.tolist()]
    assert arr.tolist() == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0] and arr.flags.writeable


@pytest.mark.parametrize(
    "make",
    [
        "arr.T",
        "arr[1:]",
        "arr[::-1]",
        "arr.view()",
        "arr.reshape(2, 3)",
        "arr.ravel()",
        "arr.squeeze()",
        "arr.astype(arr.dtype, copy=False)",
        "arr.real",
        "arr[...]",
    ],
)
def test_views_of_a_read_only_array_stay_read_only(make):
    arr = np.arange(6.0)
    c = _lib_capsule(arr=arr)
    c.run(f"v = {make}")
    for source in (
        "v[0] = 99",
        "v += 1",
        "v.fill(7)",
        "v.flags.writeable = True",
        "v.setflags(write=True)",
        "v.base.setflags(write=True)",
        "w = v.view()\nw[0] = 5",
        "w = v.T\nw.setflags(write=True)",
    ):
        _attempt(c, source)
    assert arr.tolist() == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0] and arr.flags.writeable
    assert c.run("v.flags.writeable") is False


def test_copies_of_object_arrays_stay_read_only_items_and_all():
    """An object array can hold the user's own arrays: nothing derived from it is relaxed."""
    inner = np.arange(3)
    arr = np.empty(2, dtype=object)
    arr[0], arr[1] = inner, [1]
    c = _lib_capsule(arr=arr)
    for source in (
        "a = arr.copy()\na[0][0] = 99",
        "a = arr.copy()\na[0] = 5",
        "arr.copy()[0].setflags(write=True)",
        "arr[:1].copy()[0].fill(9)",
    ):
        assert isinstance(_attempt(c, source), Exception), source
    assert inner.tolist() == [0, 1, 2] and arr[0] is inner and arr[1] == [1]


_FRAME = {"a": [1, 2, 3], "b": [4.0, 5.0, 6.0]}


@pytest.mark.parametrize(
    "make",
    [
        "df + 1",
        "df.copy()",
        "df.copy(deep=False)",
        "df.assign(c=1)",
        "df[['a', 'b']]",
        "df[df.a > 0]",
        "df.loc[:, ['a', 'b']]",
        "df.iloc[0:3]",
        "df.T.T",
        "df.groupby('a').sum().reset_index()",
        "df.sort_values('b')",
        "df.rolling(1).sum()",
    ],
)
def test_frames_derived_from_a_read_only_frame_are_the_capsules(make):
    """pandas' Copy-on-Write decides what shares memory: a new frame never writes it."""
    df = pd.DataFrame(_FRAME)
    c = _lib_capsule(df=df)
    source = (
        f"d = {make}\nd['a'] = d['a'] * 10\nd.loc[d.index[0], 'b'] = -1.0\nd.iat[1, 1] = -2.0\n"
        "s = d['b']\ns[s.index[2]] = -3.0\nd['b'] += 0\n[d['a'].tolist(), d['b'].tolist(), "
        "s.tolist()]"
    )
    out = c.run(source)
    plain = {"df": df.copy()}
    exec(source.replace("\n[", "\nout = ["), plain)
    assert out == plain["out"]
    assert df.equals(pd.DataFrame(_FRAME))


@pytest.mark.parametrize(
    "make",
    [
        "df['a'].to_numpy()",
        "df.values",
        "df.to_numpy()",
        "(df + 1).values",
        "df[['a']]['a'].values",
    ],
)
def test_arrays_sharing_a_read_only_frames_memory_stay_read_only(make):
    df = pd.DataFrame(_FRAME)
    c = _lib_capsule(df=df)
    c.run(f"n = {make}")
    for source in (
        "n[0] = 99",
        "n.flags.writeable = True",
        "n.setflags(write=True)\nn[0] = 99",
        "n.base.setflags(write=True)",
    ):
        assert isinstance(_attempt(c, source), Exception), source
    assert df.equals(pd.DataFrame(_FRAME))
    assert c.run("n.copy().flags.writeable") is True  # a copy of it is the capsule's


def test_frames_holding_objects_give_back_read_only_results():
    """An object column (or label) can hold the user's own frames and arrays: results of
    such a frame stay read-only, whatever the method."""
    inner = pd.DataFrame({"x": [1]})
    items = np.arange(3)
    df = pd.DataFrame({"o": [inner, items], "n": [1, 2]})
    s = pd.Series([items, inner])
    c = _lib_capsule(df=df, s=s)
    for source in (
        "d = df.copy()\nd['n'] = 0",
        "df.copy()['o'].iloc[0]['x'] = 5",
        "df['o'].iloc[1][0] = 9",
        "s.get(0)[0] = 9",
        "s.iloc[1]['x'] = 5",
        "s.copy()[0] = 7",
        "t = s.iat[0]\nt.setflags(write=True)",
    ):
        assert isinstance(_attempt(c, source), Exception), source
    assert inner.equals(pd.DataFrame({"x": [1]})) and items.tolist() == [0, 1, 2]
    assert df["o"][0] is inner and s[0] is items


def test_a_result_is_the_capsules_only_for_the_capability_it_came_from():
    """A local result that reaches the user (an exported value) is protected again when a
    capsule gets it back as the user's object."""
    from ipycap.engine.membrane import target_of

    arr = np.arange(3)
    c = _lib_capsule(arr=arr)
    c.run("r = arr + 1\nr[0] = 10")
    mine = target_of(c.namespace["r"])
    assert mine.tolist() == [10, 2, 3]
    again = _lib_capsule(r=mine)
    assert isinstance(_attempt(again, "r[0] = 5"), CapsuleTypeError)
    assert isinstance(
        _attempt(again, "r.copy().T.base.setflags(write=False)\nr.fill(1)"), Exception
    )
    assert mine.tolist() == [10, 2, 3]


def test_a_bound_method_handed_in_is_callable_and_derived_mutators_are_not():
    """The user handing ``items.append`` by name handed the capability to call it (as a
    user function doing the same is callable); reaching ``items.append`` through a
    read-only ``items``, or an unbound mutator that would change any object passed to it,
    stays refused."""
    import functools

    items = [1]
    log = collections.OrderedDict()
    wrapped = functools.wraps(items.append)(lambda x: items.append(x))
    c = Capsule(
        protected={
            "items": items,
            "add": items.append,
            "note": log.update,
            "add_wrapped": wrapped,
            "unbound": list.append,
            "mm_update": collections.abc.MutableMapping.update,
            "boxes": [items.append],
        }
    )
    assert c.run("add(2)\nnote(a=1)\nadd_wrapped(3)\nitems[:]") == [1, 2, 3]
    assert dict(log) == {"a": 1}
    for source in (
        "items.append(9)",
        "getattr(items, 'append')(9)",
        "unbound(items, 9)",
        "mm_update(items, {})",
        "boxes[0](9)",
    ):
        assert isinstance(_attempt(c, source), CapsuleTypeError), source
    assert items == [1, 2, 3]
