"""Bad data on the classical path: clean errors with counts, never a traceback or a silent answer."""

from __future__ import annotations

import pyarrow as pa
import pytest

from specml.classical.errors import ClassicalError
from specml.classical.frame import Features, target_values, to_matrix


def test_infinite_and_too_large_features_are_refused_with_their_count():
    data = pa.table({"a": [1.0, float("inf"), 3.0, 1e300], "b": [1.0, 2.0, float("nan"), 4.0]})
    with pytest.raises(ClassicalError, match=r"column 'a' has 2 infinite or too large value\(s\)"):
        to_matrix(data, Features(["a", "b"], ["a", "b"], []))
    ok = to_matrix(pa.table({"b": [1.0, float("nan")]}), Features(["b"], ["b"], []))  # NaN = missing: allowed
    assert ok.shape == (2, 1)


@pytest.mark.parametrize("column", [pa.array(["x", "y"]), pa.array([[1], [2]])])
def test_a_column_of_the_wrong_type_is_refused_by_name(column):
    with pytest.raises(ClassicalError, match="column 'a' holds"):
        to_matrix(pa.table({"a": column}), Features(["a"], ["a"], []))
    if pa.types.is_list(column.type):
        with pytest.raises(ClassicalError, match="column 'a' holds"):
            to_matrix(pa.table({"a": column}), Features(["a"], [], ["a"]))


def test_nan_targets_are_refused_with_their_count():
    col = pa.chunked_array([pa.array([0.0, 1.0, float("nan"), 1.0])])
    with pytest.raises(ClassicalError, match=r"target 'y' has 1 NaN value\(s\); a classifier"):
        target_values(col, estimator_kind="classifier", task=None, name="y")
    with pytest.raises(ClassicalError, match=r"target 'y' has 1 NaN value\(s\)"):
        target_values(col, estimator_kind="regressor", task=None, name="y")
