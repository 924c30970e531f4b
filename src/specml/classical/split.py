"""Train / validation / test rows: stratified for classification, time-ordered with a time column.

A time-ordered split sorts the rows by the time column (stable) and cuts them in sequence: every
training row is no later than every validation row, which is no later than every test row. It is
never shuffled. Without a time column the split is seeded (``random_state``) and, for classification
with ``stratify``, keeps each class's share in every part (to within a row per class).

The splitting itself is :func:`specml.data.split.three_way`, shared with the workspace and the
neural path; this module reports its refusals as :class:`ClassicalError`.
"""

from __future__ import annotations

import numpy as np

from specml.classical.errors import ClassicalError
from specml.data.split import Split, SplitError, three_way

__all__ = ["Split", "given_rows", "is_training_table", "split_rows", "held_back_table"]


def split_rows(n: int, *, test_size: float, validation_size: float, labels: np.ndarray | None = None,
               stratify: bool = True, shuffle: bool = True, seed: int | None = 0,
               order: np.ndarray | None = None) -> Split:
    """Split ``n`` rows. ``labels`` (classification) enable stratification; ``order`` (time values) makes
    the split time-ordered; ``shuffle=False`` cuts the rows in table order."""
    try:
        return three_way(n, test_size=test_size, validation_size=validation_size, labels=labels,
                         stratify=stratify, shuffle=shuffle, seed=seed, order=order)
    except SplitError as err:
        raise ClassicalError(str(err)) from None


_TRAIN_SUFFIXES = ("_train", "-train", "_training", "-training")


def is_training_table(table: str) -> bool:
    """Whether ``table`` is named as a training table: ``specml data split`` writes ``<table>_train``
    (and ``<table>_test``); ``train`` / ``training`` or a ``_train`` / ``-train`` suffix say the user has
    held the test rows back already. Such a table is not split again for testing."""
    low = table.lower()
    return low in ("train", "training") or low.endswith(_TRAIN_SUFFIXES)


def held_back_table(table: str, has_table) -> str | None:
    """The held-back table beside a training table (``adult_train`` -> ``adult_test``) when ``has_table``
    says it exists, else None."""
    low = table.lower()
    if low in ("train", "training"):
        candidates = ["test"]
    else:
        candidates = [table[: -len(s)] + s.replace("training", "test").replace("train", "test")
                      for s in _TRAIN_SUFFIXES if low.endswith(s)]
    return next((c for c in candidates if has_table(c)), None)


def given_rows(train: np.ndarray, validation: np.ndarray) -> Split:
    """A split decided by the caller (the model families share one): no test rows."""
    return Split(np.sort(np.asarray(train)), np.sort(np.asarray(validation)), np.empty(0, dtype=np.int64), "given")
