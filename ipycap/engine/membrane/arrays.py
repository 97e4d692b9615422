"""A protected object handed to numpy: its data as a copy (DESIGN.md, "user objects through
libraries give the same answers as without ipycap").

Without this, ``np.array(proxy_of_df)`` iterates the proxy (a DataFrame iterates its column
labels) and answers wrongly without an error.  numpy asks the proxy for ``__array__``; a
proxy answers only when its target has one, and the method it gives converts the target on
the trusted side and returns a **copy** owning its data: the capsule can keep, change and
pass it on without reaching the target's memory (a read-only protected object stays
unchanged; its buffers' owners never reach the capsule through ``.base``).  An object
array's items are trusted objects: they come back wrapped, as any value derived from the
target.  numpy's own conversion then proceeds as for any array.
"""

from __future__ import annotations

import sys

from ..errors import CapsuleAttributeError


def array_method(target, cap, wrap):
    """The ``__array__`` a proxy of ``target`` (capability ``cap``) gives, or AttributeError
    when the target is no array-like (numpy then converts the proxy as a sequence)."""
    np = sys.modules.get("numpy")
    if np is None or not (isinstance(target, np.ndarray) or hasattr(type(target), "__array__")):
        raise CapsuleAttributeError("'__array__' of a protected object that has none", "membrane")

    def __array__(dtype=None, copy=None):
        if cap.revoked:
            raise CapsuleAttributeError(f"'{cap.target}' was revoked", "membrane")
        arr = np.array(target, dtype=dtype, copy=True)
        if arr.base is not None:
            arr = arr.copy()
        if arr.dtype.hasobject:
            out = np.empty(arr.shape, dtype=arr.dtype)
            flat = out.reshape(-1)
            for i, item in enumerate(arr.reshape(-1).tolist()):
                flat[i] = wrap(item, cap, False)
            return out
        return arr

    return __array__
