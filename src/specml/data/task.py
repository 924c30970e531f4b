"""Which task a target column makes: binary, multiclass or regression. One rule, used by training
(a spec with no loss: :func:`specml.data.tensors.infer_loss`) and by the compiler
(:func:`specml.compile.target.decide_task`), so both pick the same task on the same column.

The rule, from the column's kind and its number of distinct values ``n``:

* ``n < 2``: refused (nothing to learn);
* ``n == 2``: binary (unless regression is asked for);
* text, booleans and other non-numeric values: multiclass, refused above :data:`MAX_CLASSES`;
* integers: multiclass up to :data:`MAX_INTEGER_CLASSES` values, regression above
  (``classification`` asked for: multiclass up to :data:`MAX_CLASSES`);
* floats: regression; dates and times: refused.

Why a cap on integers: scikit-learn's ``type_of_target`` calls any integer column "multiclass", but
a scikit-learn user then picks a classifier or a regressor; here the column alone decides. Up to 20
distinct integers is a code (a rating, a digit, a grade, a class id: wine's 3, digits' 10);
beyond that it is mostly a count, an age, a year: a quantity. ``classification`` in the words, or an
explicit loss, still trains a classifier on up to 50 classes.
"""

from __future__ import annotations

import pyarrow as pa

__all__ = ["MAX_CLASSES", "MAX_INTEGER_CLASSES", "TaskError", "arrow_kind", "infer_task"]

MAX_INTEGER_CLASSES = 20  # an integer target with at most this many distinct values is taken as classes
MAX_CLASSES = 50  # a target is never taken as more classes than this (text targets above it are refused)
#: what a request may ask for, beside nothing
HINTS = ("binary", "multiclass", "classification", "regression")


class TaskError(ValueError):
    """A target column no task fits; each caller reports it as its own error type."""


def arrow_kind(typ: pa.DataType) -> str:
    """integer | float | bool | string | temporal | other, from an Arrow type (the kinds of
    :func:`specml.compile.profile.column_kind`, which reads DuckDB type names)."""
    if pa.types.is_dictionary(typ):
        typ = typ.value_type
    if pa.types.is_boolean(typ):
        return "bool"
    if pa.types.is_integer(typ):
        return "integer"
    if pa.types.is_floating(typ) or pa.types.is_decimal(typ):
        return "float"
    if pa.types.is_string(typ) or pa.types.is_large_string(typ):
        return "string"
    if pa.types.is_temporal(typ):
        return "temporal"
    return "other"


def infer_task(kind: str, distinct: int, hint: str | None = None, *, what: str = "the target") -> tuple[str, str]:
    """``(task, why)`` for a target column of ``kind`` with ``distinct`` values; ``hint`` is what a
    request asked for (binary, multiclass, classification, regression) or None. ``what`` names the
    column in the reasons. :class:`TaskError` when no task fits."""
    n = distinct
    if n < 2:
        raise TaskError(f"target {what} has fewer than 2 values: there is nothing to learn")
    if n == 2 and hint != "regression":
        return "binary", f"{what}: two values -> binary classification"
    if n == 2:
        return "regression", f"{what}: regression as asked (it has only two values)"
    if kind in ("string", "bool", "other"):
        if n > MAX_CLASSES:
            raise TaskError(f"target {what} has more than {MAX_CLASSES} distinct values: too many classes "
                            "for a classifier; group them first (specml sql)")
        note = " (asked for binary: it has more than two)" if hint == "binary" else ""
        return "multiclass", f"{what}: few distinct text values -> multiclass{note}"
    if hint == "regression":
        return "regression", f"{what}: regression as asked"
    if kind == "integer" and n <= MAX_INTEGER_CLASSES:
        return "multiclass", f"{what}: few distinct integers -> multiclass"
    if hint in ("classification", "multiclass", "binary") and n <= MAX_CLASSES:
        return "multiclass", f"{what}: classification as asked ({n} classes)"
    if kind == "temporal":
        raise TaskError(f"target {what} is a date/time; predict a number or a class derived from it")
    return "regression", f"{what}: continuous -> regression"
