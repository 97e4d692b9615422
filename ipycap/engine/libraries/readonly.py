"""Read-only targets for library containers (membrane/readonly.py): what a read-only proxy of
a numpy array, a pandas or polars frame holds instead of the user's object, so that no
method, view or in-place operation of the library can change the user's data.

A method table is hopeless for these libraries (hundreds of methods, ``inplace=`` keywords,
views sharing memory), so the target itself is made immutable *for the library*:

- numpy: a non-writeable view whose base is a read-only buffer (a read-only memoryview of
  the array's memory), so neither ``setflags(write=True)``, views of it (``reshape``,
  ``arr[:]``, ``.T``), nor its methods (``fill``, ``sort``, ``put``...) can write.  Object
  arrays have no buffer, and subclasses other than matrix/memmap keep state a view loses (a
  MaskedArray's mask): a non-writeable copy (shallow for objects: the items are the user's
  and reach the capsule wrapped read-only).
- pandas (Copy-on-Write, the only mode of pandas 3): a lazy copy, ``copy(deep=False)``: the
  capsule's in-place operations (``inplace=True``, ``insert``, ``.loc[...] =``) change the
  copy, never the user's frame; arrays pandas hands out of a shared frame are read-only.
- pandas ExtensionArrays (Categorical, masked, string, Arrow, interval, sparse, datetime):
  a copy (Arrow-backed ones share their immutable Arrow data).
- polars: ``clone()`` (it shares the column buffers; ``insert_column``, ``extend`` and
  ``Series.scatter`` change only the clone).
"""

from __future__ import annotations

import sys


def numpy_array(arr):
    np = sys.modules["numpy"]
    if arr.dtype.hasobject:
        out = arr.copy()
        out.flags.writeable = False
        return out
    itemsize = arr.dtype.itemsize
    if itemsize == 0 or arr.size == 0:
        out = arr.copy()  # nothing to share
        out.flags.writeable = False
        return out
    dtype = arr.dtype
    if dtype.kind in "biufcSU" and dtype.fields is None:
        # numbers and strings have a buffer format of their own (~0.4 us)
        out = np.asarray(memoryview(arr).toreadonly())
    elif dtype.kind in "mM":  # datetime64 / timedelta64: through int64 of the same size
        out = np.asarray(memoryview(arr.view(f"<i{itemsize}")).toreadonly()).view(dtype)
    else:
        # A void view of the same item size exists for every layout and every dtype
        # without objects (structured dtypes; ~10 us: numpy parses the buffer's format).
        out = np.asarray(memoryview(arr.view(np.dtype((np.void, itemsize)))).toreadonly())
        out = out.view(dtype)
    if out.dtype != dtype or out.shape != arr.shape:  # never expected: refuse to guess
        raise TypeError(f"no read-only view of a {dtype} array")
    if type(arr) is np.ndarray:
        return out
    if type(arr) in (np.matrix, np.memmap):  # subclasses with no state of their own
        return out.view(type(arr))
    out = arr.copy()  # other subclasses keep state a view loses (a MaskedArray's mask)
    out.flags.writeable = False
    return out


def pandas_frame(frame):
    return frame.copy(deep=False)


def pandas_array(array):
    """A pandas ExtensionArray (``df['c'].array``, ``.values``, ``pd.array(...)``): its own
    copy.  Copy-on-Write protects the numpy arrays pandas hands out, not the buffers of an
    extension array, whose methods write them in place (``fillna(..., copy=False)`` on a
    masked array); an Arrow-backed array's copy shares its immutable Arrow data."""
    return array.copy()


def polars_frame(frame):
    return frame.clone()


# -- results derived from a protected container (membrane/derived.py) ---------------------------
# A rule answers: can ``result`` (of a method call, attribute, item or operator of ``source``
# reached read-only) reach data the capsule may not change?  False keeps it read-only (a
# stand-in, as above); True makes it the capsule's own.  ``local(obj)`` says whether ``obj``
# is already the capsule's own (for the same capability).


def numpy_result(result, source, local) -> bool:
    """An exact ndarray result of an exact ndarray without Python objects: the capsule's
    own when its memory is its own (``base is None``: ``copy()``, ``arr + 1``, fancy
    indexing) or a view of an array that is (``a.T`` of such a copy).  Views of the
    protected array (``arr.T``, ``arr[1:]``, ``view()``) have the read-only buffer as their
    base and stay read-only.  A numeric array holds no other object, so a result with
    memory of its own cannot be one the user holds; an object array can hold the user's
    arrays as items, so nothing derived from one qualifies."""
    np = sys.modules["numpy"]
    if type(source) is np.flatiter:  # arr.flat[...]: judged as the array it walks
        source = source.base
    if type(result) is not np.ndarray or result is source or source.dtype.hasobject:
        return False
    base = result.base
    for _ in range(64):
        if base is None:
            return True
        if type(base) is not np.ndarray:
            return False  # a buffer: the protected array's read-only memory
        if local(base):
            return True
        if base.base is None:
            # a view of fresh memory numpy made for this result (``arr.nonzero()``'s items
            # share one new array): every protected array reached read-only is a view of a
            # read-only buffer, or a non-writeable copy, never a writeable array of its own
            return base.flags.writeable
        base = base.base
    return False


#: Index kinds whose labels are scalars (pandas' own inference, cached on the index).
_SCALAR_LABELS = frozenset(
    (
        "string",
        "bytes",
        "integer",
        "floating",
        "mixed-integer-float",
        "decimal",
        "complex",
        "boolean",
        "datetime64",
        "datetime",
        "date",
        "timedelta64",
        "timedelta",
        "time",
        "period",
        "interval",
        "empty",
    )
)


def _scalar_dtype(dtype) -> bool:
    np = sys.modules["numpy"]
    if type(dtype) is np.dtype or isinstance(dtype, np.dtype):
        return not dtype.hasobject
    module = type.__dict__["__module__"].__get__(type(dtype))
    if type(module) is not str or module.partition(".")[0] != "pandas":
        return False  # a third-party extension dtype may hold anything
    subtype = getattr(dtype, "subtype", None)  # SparseDtype, IntervalDtype
    return subtype is None or not isinstance(subtype, np.dtype) or not subtype.hasobject


def _scalar_labels(index) -> bool:
    levels = getattr(index, "levels", None)
    if levels is not None:  # a MultiIndex: each level
        return all(_scalar_labels(level) for level in levels)
    return _scalar_dtype(index.dtype) or index.inferred_type in _SCALAR_LABELS


def _holds_only_scalars(frame) -> bool:
    """Whether every value and label of ``frame`` is a scalar: none of them can then be an
    object the user holds (a frame or array in an object column, an unhashable label)."""
    pd = sys.modules["pandas"]
    if type(frame) is pd.Series:
        dtypes = (frame.dtype,)
    else:
        if not _scalar_labels(frame.columns):
            return False
        blocks = getattr(getattr(frame, "_mgr", None), "blocks", None)
        # one dtype per block (a few), not frame.dtypes (a Series per call, ~30 us)
        dtypes = [b.dtype for b in blocks] if type(blocks) is tuple else frame.dtypes.tolist()
    return all(_scalar_dtype(d) for d in dtypes) and _scalar_labels(frame.index)


def pandas_result(result, source, local) -> bool:
    """An exact DataFrame or Series derived from a frame (or from a groupby, window or
    indexer of one) whose values and labels are all scalars: the capsule's own.  Under
    Copy-on-Write (pandas 3) a new frame never writes the data it shares with another, and
    the numpy arrays it hands out stay read-only (a numpy result of pandas is never relaxed
    here).  The frame itself, and any read-only stand-in, never qualify."""
    pd = sys.modules["pandas"]
    if type(result) is not pd.DataFrame and type(result) is not pd.Series:
        return False
    frame = source
    if type(frame) is not pd.DataFrame and type(frame) is not pd.Series:
        frame = getattr(source, "obj", None)  # what a groupby, window or indexer works on
        if type(frame) is not pd.DataFrame and type(frame) is not pd.Series:
            return False
    if result is source or result is frame:
        return False
    return _holds_only_scalars(frame)


def pandas_scalars(result, source, local) -> bool:
    """``at``/``iat`` give scalars: nothing to judge (their items stay on the C fast path).
    They are listed so that a write through the indexer of a local frame (``d.iat[0, 0] =
    1``) is allowed: it writes only that frame."""
    return False


pandas_scalars.judges_results = False


def _polars_plain_dtype(dtype, depth=0) -> bool:
    """Whether values of a polars ``dtype`` are data (numbers, strings, temporal, nested data):
    never ``Object``, whose values are Python objects (the user's own, in a user's frame)."""
    pl = sys.modules["polars"]
    if depth > 32 or type(dtype) is pl.Object or dtype == pl.Object:
        return False
    # polars' own dtype classes only: an extension type (pl.BaseExtension) may be a class
    # the capsule defined, whose methods trusted polars would call
    if type.__dict__["__module__"].__get__(type(dtype)) != "polars.datatypes.classes":
        return False
    base_extension = getattr(pl, "BaseExtension", None)
    if isinstance(base_extension, type) and isinstance(dtype, base_extension):
        return False
    inner = getattr(dtype, "inner", None)  # List / Array
    if inner is not None and not _polars_plain_dtype(inner, depth + 1):
        return False
    fields = getattr(dtype, "fields", None)  # Struct
    if fields is not None:
        return all(_polars_plain_dtype(f.dtype, depth + 1) for f in fields)
    return True


def polars_result(result, source, local) -> bool:
    """An exact polars DataFrame, Series or LazyFrame derived from one (or from a group-by of
    one) that holds no ``Object`` values: the capsule's own.  polars results are always new
    objects; the Arrow buffers they share with the source are immutable from Python (an
    in-place ``scatter``, ``df[i, 'a'] = x`` or ``extend`` copies first), so changing the
    result never changes the source.  The source itself, its read-only clone (a stand-in)
    and numpy arrays polars hands out (zero-copy views of its buffers) never qualify."""
    pl = sys.modules["polars"]
    tp = type(result)
    if result is source or (
        tp is not pl.DataFrame and tp is not pl.Series and tp is not pl.LazyFrame
    ):
        return False
    if tp is pl.Series:
        return _polars_plain_dtype(result.dtype)
    schema = result.collect_schema() if tp is pl.LazyFrame else result.schema
    return all(_polars_plain_dtype(d) for d in schema.values())


# -- the capsule's own containers leaving the membrane (membrane/derived.py exported_copy) -------
_PLAIN_NAMES = (str, int, float, bool, type(None))
#: Labels beyond this many are not walked one by one: such an index of Python objects leaves
#: as a reverse proxy (an exported copy is for data, not a search).
_LABELS_WALKED = 100_000


def _plain_name(name) -> bool:
    if type(name) is tuple:
        return all(type(n) in _PLAIN_NAMES for n in name)
    return type(name) in _PLAIN_NAMES


def _exact_str(values) -> bool:
    """Whether every label of an object-held index is an exact ``str`` (never a capsule
    subclass of it, whose ``__eq__``/``__hash__`` trusted code would call)."""
    return len(values) <= _LABELS_WALKED and all(type(v) is str for v in values)


def _data_dtype(dtype) -> bool:
    """Values of ``dtype`` are data no capsule class can be among: numpy without objects,
    pandas' own dtypes storing no Python objects (Arrow strings, masked numbers, dates...)."""
    np = sys.modules["numpy"]
    if isinstance(dtype, np.dtype):
        return not dtype.hasobject
    module = type.__dict__["__module__"].__get__(type(dtype))
    if type(module) is not str or module.partition(".")[0] != "pandas":
        return False
    if getattr(dtype, "storage", None) == "python":  # StringDtype holding Python strs
        return False
    arrow = getattr(dtype, "pyarrow_dtype", None)  # ArrowDtype: pyarrow's own types only
    if arrow is not None:
        module = type.__dict__["__module__"].__get__(type(arrow))
        if module != "pyarrow.lib" or isinstance(arrow, sys.modules["pyarrow"].ExtensionType):
            return False
    categories = getattr(dtype, "categories", None)
    if categories is not None:
        return _data_index(categories)
    subtype = getattr(dtype, "subtype", None)
    return subtype is None or not isinstance(subtype, np.dtype) or not subtype.hasobject


def _data_index(index) -> bool:
    levels = getattr(index, "levels", None)
    if levels is not None:
        return all(_data_index(level) for level in levels) and all(
            _plain_name(n) for n in index.names
        )
    if not _plain_name(index.name):
        return False
    if _data_dtype(index.dtype):
        return True
    return index.dtype == object and _exact_str(index)


def exported_copy(value):
    """A copy of a capsule-made numpy/pandas/polars container for trusted code, or None.
    The copy holds data only (no capsule object among its values, labels, names or attrs),
    so the library's own code can use it as its own (alignment, ``isinstance``)."""
    tp = type(value)
    np = sys.modules.get("numpy")
    if np is not None and tp is np.ndarray:
        return None if value.dtype.hasobject else value.copy()
    pd = sys.modules.get("pandas")
    if pd is not None and (tp is pd.DataFrame or tp is pd.Series or tp is pd.Index):
        if tp is not pd.Index and value.attrs:
            return None
        if tp is pd.Index:
            return value.copy(deep=True) if _data_index(value) else None
        if tp is pd.Series:
            ok = _plain_name(value.name) and _data_dtype(value.dtype)
        else:
            blocks = getattr(getattr(value, "_mgr", None), "blocks", None)
            dtypes = [b.dtype for b in blocks] if type(blocks) is tuple else value.dtypes.tolist()
            ok = _data_index(value.columns) and all(_data_dtype(d) for d in dtypes)
        return value.copy(deep=True) if ok and _data_index(value.index) else None
    pl = sys.modules.get("polars")
    if pl is not None and (tp is pl.DataFrame or tp is pl.Series):
        if tp is pl.Series:
            ok = _polars_plain_dtype(value.dtype)
        else:
            ok = all(_polars_plain_dtype(d) for d in value.schema.values())
        return value.clone() if ok else None
    return None
