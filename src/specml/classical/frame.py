"""Workspace columns -> the numpy matrix the estimators see, and the target -> labels.

Numeric columns (integers, floats, decimals, booleans) become float64 with NaN for NULL; string
columns stay strings, NULL becoming its own category ``(missing)``. With no string column the matrix
is float64; otherwise an object matrix that the preprocessing pipeline turns into numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from specml.classical.errors import ClassicalError

MISSING = "(missing)"


def column_kind(dtype: pa.DataType) -> str | None:
    """``numeric``, ``categorical``, or None for a type a classical model cannot take (dates, lists, ...)."""
    if pa.types.is_dictionary(dtype):
        dtype = dtype.value_type
    if pa.types.is_integer(dtype) or pa.types.is_floating(dtype) or pa.types.is_decimal(dtype) \
            or pa.types.is_boolean(dtype):
        return "numeric"
    if pa.types.is_string(dtype) or pa.types.is_large_string(dtype) or pa.types.is_string_view(dtype):
        return "categorical"
    return None


@dataclass
class Features:
    """The feature columns, in order, and which are numeric / categorical."""

    columns: list[str]
    numeric: list[str]
    categorical: list[str]

    def to_dict(self) -> dict:
        return {"columns": self.columns, "numeric": self.numeric, "categorical": self.categorical}

    @classmethod
    def from_dict(cls, d: dict) -> Features:
        return cls(list(d["columns"]), list(d["numeric"]), list(d["categorical"]))


def choose_features(schema: pa.Schema, *, target: str, time_column: str | None,
                    requested: list[str] | None) -> tuple[Features, list[str]]:
    """The features (``requested``, or every column but target and time column) and notes on what was left out."""
    notes: list[str] = []
    names = requested if requested is not None else [c for c in schema.names if c not in (target, time_column)]
    numeric, categorical, bad = [], [], []
    for name in names:
        kind = column_kind(schema.field(name).type)
        if kind == "numeric":
            numeric.append(name)
        elif kind == "categorical":
            categorical.append(name)
        else:
            bad.append(f"'{name}' ({schema.field(name).type})")
    if bad and requested is not None:
        raise ClassicalError(f"features {', '.join(bad)}: a classical model takes numbers, booleans and strings; "
                             "derive a number from these columns in SQL (specml sql) or leave them out")
    if bad:
        notes.append(f"left out of the features (not numbers or strings): {', '.join(bad)}")
    kept = [n for n in names if n in numeric or n in categorical]
    if not kept:
        raise ClassicalError("no feature columns: the table has no number or string column besides the target")
    return Features(kept, numeric, categorical), notes


def to_matrix(data: pa.Table, features: Features) -> np.ndarray:
    """The feature matrix, columns in ``features.columns`` order (float64, or object with strings)."""
    n = data.num_rows
    if not features.categorical:
        out = np.empty((n, len(features.columns)), dtype=np.float64)
        for j, name in enumerate(features.columns):
            out[:, j] = _numeric(data.column(name), name)
        return out
    out = np.empty((n, len(features.columns)), dtype=object)
    for j, name in enumerate(features.columns):
        col = data.column(name)
        if name in features.categorical:
            if column_kind(col.type) is None:
                raise ClassicalError(f"column '{name}' holds {col.type} values where the model was trained on "
                                     "text; cast it in SQL (specml sql)")
            if pa.types.is_dictionary(col.type):
                col = col.cast(col.type.value_type)
            out[:, j] = pc.fill_null(col.cast(pa.string()), MISSING).to_numpy(zero_copy_only=False)
        else:
            out[:, j] = _numeric(col, name)
    return out


FLOAT32_MAX = float(np.finfo(np.float32).max)  # XGBoost and LightGBM read features as float32


def _numeric(col: pa.ChunkedArray, name: str = "the column") -> np.ndarray:
    """A numeric feature as float64. NULL and NaN are missing values (the libraries and the imputer handle
    them); infinite values and values beyond float32 are refused with their count."""
    if column_kind(col.type) != "numeric":
        raise ClassicalError(f"column '{name}' holds {col.type} values where the model was trained on numbers; "
                             "cast it in SQL (specml sql) or use the training table's column")
    if pa.types.is_boolean(col.type) or pa.types.is_decimal(col.type) or pa.types.is_dictionary(col.type):
        col = col.cast(pa.float64())
    values = np.asarray(col.to_numpy(zero_copy_only=False), dtype=np.float64)
    with np.errstate(invalid="ignore"):
        bad = int(np.count_nonzero(np.abs(values) > FLOAT32_MAX))  # inf too; NaN compares False
    if bad:
        raise ClassicalError(f"column '{name}' has {bad} infinite or too large value(s) (beyond ±3.4e38) of "
                             f"{len(values)} rows; filter or clip them first (e.g. specml sql)")
    return values


@dataclass
class Target:
    """The task and, for classification, the classes in the order of the label ids."""

    task: str
    classes: list | None

    def to_dict(self) -> dict:
        return {"task": self.task, "classes": self.classes}


def target_values(col: pa.ChunkedArray, *, estimator_kind: str, task: str | None, name: str) -> tuple[np.ndarray, Target]:
    """Labels (class ids 0..C-1, classes sorted) or float values, and the task. NULL targets are refused."""
    if col.null_count:
        raise ClassicalError(f"target '{name}' has {col.null_count} NULL value(s); drop or fill those rows first "
                             f"(e.g. specml sql \"CREATE TABLE t2 AS SELECT * FROM t WHERE {name} IS NOT NULL\")")
    if estimator_kind == "regressor":
        kind = column_kind(col.type)
        if kind != "numeric":
            raise ClassicalError(f"target '{name}' is {col.type}: a regressor predicts numbers")
        values = _numeric(col, name)
        if nan := int(np.isnan(values).sum()):
            raise ClassicalError(f"target '{name}' has {nan} NaN value(s); drop those rows first")
        return values, Target("regression", None)
    if pa.types.is_floating(col.type):
        values = col.to_numpy(zero_copy_only=False)
        if nan := int(np.isnan(values).sum()):
            raise ClassicalError(f"target '{name}' has {nan} NaN value(s); a classifier needs a class in every row: "
                                 "drop those rows first")
        if not np.all(np.isfinite(values)) or not np.all(values == np.round(values)):
            raise ClassicalError(f"target '{name}' holds fractional numbers: a classifier needs classes "
                                 "(use a regressor, or cast the column to integers / strings)")
    if pa.types.is_dictionary(col.type):
        col = col.cast(col.type.value_type)
    values = col.to_numpy(zero_copy_only=False)
    classes, y = np.unique(values, return_inverse=True)
    if len(classes) < 2:
        raise ClassicalError(f"target '{name}' has a single class ({classes[0] if len(classes) else 'none'}): "
                             "nothing to classify")
    found = "binary" if len(classes) == 2 else "multiclass"
    if task not in (None, found):
        raise ClassicalError(f"task {task} but target '{name}' has {len(classes)} classes")
    return y.astype(np.int64), Target(found, [_plain(c) for c in classes])


def _plain(value):
    """A numpy scalar as the Python value JSON can hold."""
    return value.item() if hasattr(value, "item") else value
