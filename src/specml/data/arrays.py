"""Arrow columns as numpy arrays, without pyarrow's detour through pandas.

``pyarrow.Array.to_numpy`` converts through its pandas bridge, which imports pandas on first use when it
is installed (about 0.4 s of a training's start-up, for columns that are plain numbers). A numeric column
without NULLs is already a numpy buffer per chunk: :func:`to_numpy` views those buffers (one chunk: no copy,
read-only, as pyarrow gives it) or joins them (several chunks: one copy, writable). Anything else (NULLs,
booleans, decimals, strings, lists) goes to pyarrow's own conversion. The other way, ``pa.array`` imports
pandas too (to ask whether its argument is a Series): :func:`indices` and :func:`array_of` build numeric
arrays from numpy buffers instead.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

__all__ = ["array_of", "indices", "to_numpy"]


def _numpy_dtype(typ: pa.DataType) -> np.dtype | None:
    """The numpy dtype whose buffer layout equals ``typ``'s, for fixed-width integers and floats."""
    if pa.types.is_integer(typ):
        return np.dtype(f"{'i' if pa.types.is_signed_integer(typ) else 'u'}{typ.bit_width // 8}")
    if pa.types.is_floating(typ) and typ.bit_width in (32, 64):
        return np.dtype(f"f{typ.bit_width // 8}")
    return None


def to_numpy(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """``values.to_numpy(zero_copy_only=False)``, the same values and dtype, read from the Arrow buffers
    directly when the column is integer or floating point without NULLs."""
    dtype = _numpy_dtype(values.type)
    if dtype is None or values.null_count:
        return values.to_numpy(zero_copy_only=False)
    chunks = values.chunks if isinstance(values, pa.ChunkedArray) else [values]
    parts = [np.frombuffer(c.buffers()[1], dtype=dtype, count=len(c), offset=c.offset * dtype.itemsize)
             for c in chunks if len(c)]
    if not parts:
        return np.empty(0, dtype=dtype)
    if len(parts) > 1:
        return np.concatenate(parts)
    parts[0].flags.writeable = False  # a view of the Arrow memory: never written through
    return parts[0]


def indices(rows: np.ndarray) -> pa.Array:
    """Row positions as an Arrow int64 array (for ``take``), over the same memory: ``pa.array`` on a numpy
    array imports pandas to ask whether it is a Series."""
    rows = np.ascontiguousarray(rows, dtype=np.int64)
    return pa.Array.from_buffers(pa.int64(), len(rows), [None, pa.py_buffer(rows)])


def array_of(values: list, typ: pa.DataType) -> pa.Array:
    """``pa.array(values).cast(typ)`` for a few values (a vocabulary, the classes), built from a numpy buffer
    when ``typ`` is an integer or floating type and every value is a number it holds exactly."""
    dtype = _numpy_dtype(typ)
    if dtype is not None and all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        try:
            numbers = np.asarray(values, dtype=dtype)
        except (OverflowError, ValueError):
            numbers = None
        if numbers is not None and numbers.tolist() == list(values):  # nothing rounded, wrapped or cut
            return pa.Array.from_buffers(typ, len(numbers), [None, pa.py_buffer(numbers)])
    return pa.array(values).cast(typ)
