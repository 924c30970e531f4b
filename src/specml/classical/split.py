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

__all__ = ["Split", "split_rows"]


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
