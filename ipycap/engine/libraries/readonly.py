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


def polars_frame(frame):
    return frame.clone()
