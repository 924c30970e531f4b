"""Arrow columns to numpy without pyarrow's pandas bridge: the same values and dtypes as pyarrow gives."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from specml.data.arrays import array_of, indices, to_numpy


@pytest.mark.parametrize("typ", [pa.int8(), pa.int16(), pa.int32(), pa.int64(), pa.uint8(), pa.uint32(),
                                 pa.uint64(), pa.float32(), pa.float64()], ids=str)
def test_numeric_columns_read_as_pyarrow_reads_them(typ):
    base = pa.array(list(range(50)), type=typ)
    one = pa.chunked_array([base])
    several = pa.chunked_array([base.slice(3, 10), pa.array([], type=typ), base.slice(20, 25)])  # offsets, empty
    for values in (base, base.slice(7, 11), one, several, pa.chunked_array([], type=typ)):
        got, ref = to_numpy(values), values.to_numpy(zero_copy_only=False)
        assert got.dtype == ref.dtype and np.array_equal(got, ref), (typ, values)
    assert not to_numpy(one).flags.writeable  # one chunk: a view, as pyarrow gives it
    assert to_numpy(several).flags.writeable  # several: joined into a new array


@pytest.mark.parametrize("values", [pa.chunked_array([[1, None, 3]]), pa.chunked_array([[True, False]]),
                                    pa.chunked_array([["a", "b"]]), pa.chunked_array([[1.5, None]])], ids=str)
def test_other_columns_go_to_pyarrow(values):
    got, ref = to_numpy(values), values.to_numpy(zero_copy_only=False)
    assert got.dtype == ref.dtype
    assert [str(v) for v in got] == [str(v) for v in ref]


def test_indices_take_the_rows_they_name():
    table = pa.table({"x": pa.array(np.arange(10.0) * 2)})
    rows = np.array([9, 0, 4, 4])
    assert table.column("x").take(indices(rows)).to_pylist() == [18.0, 0.0, 8.0, 8.0]
    assert indices(rows.astype(np.int32)).type == pa.int64()


@pytest.mark.parametrize(("values", "typ"), [([0, 1], pa.int32()), ([0, 1], pa.float64()), ([-3, 7, 2**40], pa.int64()),
                                             ([0.5, 2.0], pa.float32()), (["a", "b"], pa.string()),
                                             ([True, False], pa.bool_()), ([1, 2**40 + 1], pa.float32())], ids=str)
def test_array_of_is_pyarrows_array_cast(values, typ):
    try:
        ref = pa.array(values).cast(typ)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        ref = None
    if ref is None:
        with pytest.raises((pa.ArrowInvalid, pa.ArrowNotImplementedError)):
            array_of(values, typ)
    else:
        got = array_of(values, typ)
        assert got.type == ref.type and got.to_pylist() == ref.to_pylist()
