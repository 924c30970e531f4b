"""Train / validation / test rows: stratified for classification, time-ordered with a time column.

A time-ordered split sorts the rows by the time column (stable) and cuts them in sequence: every
training row is no later than every validation row, which is no later than every test row. It is
never shuffled. Without a time column the split is seeded (``random_state``) and, for classification
with ``stratify``, keeps each class's share in every part (to within a row per class).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from specml.classical.errors import ClassicalError


@dataclass
class Split:
    """Row indices (into the table as read, ascending) of each part, and how they were chosen."""

    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray
    method: str                 # stratified | random | sequential | time
    notes: list[str] = field(default_factory=list)

    def sizes(self) -> dict[str, int]:
        return {"train": int(len(self.train)), "validation": int(len(self.validation)), "test": int(len(self.test))}


def _counts(n: int, test_size: float, validation_size: float) -> tuple[int, int]:
    n_test = math.ceil(n * test_size) if test_size else 0
    n_val = math.ceil(n * validation_size) if validation_size else 0
    if n - n_test - n_val < 1:
        raise ClassicalError(f"{n} rows cannot be split into test ({test_size}) and validation ({validation_size}) "
                             "parts and still leave a training row")
    return n_test, n_val


def split_rows(n: int, *, test_size: float, validation_size: float, labels: np.ndarray | None = None,
               stratify: bool = True, shuffle: bool = True, seed: int | None = 0,
               order: np.ndarray | None = None) -> Split:
    """Split ``n`` rows. ``labels`` (classification) enable stratification; ``order`` (time values) makes
    the split time-ordered; ``shuffle=False`` cuts the rows in table order."""
    n_test, n_val = _counts(n, test_size, validation_size)
    if order is not None:
        idx = np.argsort(order, kind="stable")
        return _cut(idx, n_test, n_val, "time")
    if not shuffle:
        notes = ["shuffle is false: the split follows table order (not stratified)"] \
            if labels is not None and stratify else []
        split = _cut(np.arange(n), n_test, n_val, "sequential")
        split.notes += notes
        return split

    from sklearn.model_selection import train_test_split

    rows = np.arange(n)
    notes: list[str] = []
    strat = labels if (labels is not None and stratify) else None
    if strat is not None:
        counts = np.bincount(strat)
        if counts.min() < 3 and (n_test or n_val):
            notes.append(f"a class has only {counts.min()} row(s): the split is random, not stratified")
            strat = None
    method = "stratified" if strat is not None else "random"
    rest, test = (train_test_split(rows, test_size=n_test, random_state=seed, stratify=strat)
                  if n_test else (rows, rows[:0]))
    if n_val:
        train, val = train_test_split(rest, test_size=n_val, random_state=seed,
                                      stratify=strat[rest] if strat is not None else None)
    else:
        train, val = rest, rest[:0]
    return Split(np.sort(train), np.sort(val), np.sort(test), method, notes)


def _cut(idx: np.ndarray, n_test: int, n_val: int, method: str) -> Split:
    n_train = len(idx) - n_test - n_val
    train, val, test = idx[:n_train], idx[n_train:n_train + n_val], idx[n_train + n_val:]
    return Split(train, val, test, method)
