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
    return base is None or (type(base) is np.ndarray and local(base))


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
