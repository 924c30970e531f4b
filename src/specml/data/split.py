"""Row splits, one implementation: seeded random, stratified, time-ordered, or in table order.

Used by the workspace (``specml data split``), the neural path's validation split
(:func:`specml.data.tensors.validation_split`) and the classical path's train / validation / test
split (:mod:`specml.classical.split`).

* A part of ``fraction`` of ``n`` rows has ``ceil(n * fraction)`` rows, as scikit-learn counts a float
  ``test_size``.
* Random parts are scikit-learn's ``train_test_split`` with its own ``random_state``: the global RNGs
  are never touched, and the same seed gives the same rows. With an integer seed and a split that can be
  made, the same draws are done here in numpy (:func:`_shuffle_split`, the same rows in the same order),
  so a training does not import scikit-learn (over a second); anything else goes to scikit-learn itself.
* Stratified parts keep each class's share (to within a row per class); a split that cannot be
  stratified (a class too small, a part smaller than the number of classes) is random, with a note.
* Time-ordered and table-order splits are never shuffled: they cut rows in sequence, the latest last.

Row indices come back sorted. Torch-free (numpy and scikit-learn).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

__all__ = ["Split", "SplitError", "cut", "folds", "holdout", "part_size", "stratify_problem", "take", "three_way"]


class SplitError(ValueError):
    """A split that cannot be made; each caller reports it as its own error type."""


@dataclass
class Split:
    """Row indices (ascending) of each part, and how they were chosen."""

    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray
    method: str                 # stratified | random | sequential | time
    notes: list[str] = field(default_factory=list)

    def sizes(self) -> dict[str, int]:
        return {"train": int(len(self.train)), "validation": int(len(self.validation)), "test": int(len(self.test))}


def part_size(n: int, fraction: float) -> int:
    """Rows in a part of ``fraction`` of ``n`` rows: ``ceil(n * fraction)`` (0 for 0)."""
    return math.ceil(n * fraction) if fraction else 0


def stratify_problem(labels: np.ndarray, sizes: Sequence[int], min_per_class: int = 2) -> str | None:
    """None when ``labels`` can be stratified into parts of ``sizes`` rows, else why not (one phrase).

    scikit-learn needs every class to have 2+ rows and every part to hold a row of every class;
    ``min_per_class`` asks for more (a split cut twice needs 3).
    """
    _, counts = _classes(np.asarray(labels))
    if counts.min() < min_per_class:
        return f"a class has only {counts.min()} row(s)"
    small = min(sizes)
    if small < len(counts):
        return f"a part of {small} row(s) cannot hold all {len(counts)} classes"
    return None


def take(rows: np.ndarray, size: int | float, seed: int | None, labels: np.ndarray | None = None
         ) -> tuple[np.ndarray, np.ndarray]:
    """``(rest, part)``: ``size`` rows (a count, or a fraction) of ``rows`` drawn at random with ``seed``,
    stratified by ``labels`` (one per row) when given. scikit-learn's refusals come as :class:`SplitError`."""
    drawn = _shuffle_split(len(rows), size, seed, labels)
    if drawn is not None and len(drawn[0]) + len(drawn[1]) == len(rows) and _increasing(rows):
        part = np.zeros(len(rows), dtype=bool)  # the two parts cover every row: sort both in one pass
        part[drawn[1]] = True
        return rows[~part], rows[part]
    rest, part = _draw(rows, size, seed, labels)
    return np.sort(rest), np.sort(part)


def _increasing(rows: np.ndarray) -> bool:
    return bool(len(rows) < 2 or (rows[1:] > rows[:-1]).all())


def _draw(rows: np.ndarray, size: int | float, seed: int | None, labels: np.ndarray | None
          ) -> tuple[np.ndarray, np.ndarray]:
    """:func:`take` with both parts in scikit-learn's (shuffled) order."""
    drawn = _shuffle_split(len(rows), size, seed, labels)
    if drawn is not None:
        return rows[drawn[0]], rows[drawn[1]]
    from sklearn.model_selection import train_test_split

    try:
        return tuple(train_test_split(rows, test_size=size, random_state=seed, shuffle=True, stratify=labels))
    except ValueError as err:
        raise SplitError(str(err)) from None


def _shuffle_split(n: int, size: int | float, seed: int | None, labels: np.ndarray | None
                   ) -> tuple[np.ndarray, np.ndarray] | None:
    """(train, test) positions as ``train_test_split(range(n), test_size=size, random_state=seed,
    stratify=labels)`` draws them (its ``ShuffleSplit`` / ``StratifiedShuffleSplit``, scikit-learn 1.x),
    or None where scikit-learn should answer (no integer seed, an impossible split: its own errors)."""
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or isinstance(size, bool):
        return None
    if isinstance(size, int | np.integer):
        n_test = int(size)
    elif isinstance(size, float) and 0 < size < 1:
        n_test = math.ceil(size * n)
    else:
        return None
    n_train = n - n_test
    if n_test <= 0 or n_train <= 0:
        return None
    rng = np.random.RandomState(int(seed))
    if labels is None:
        permutation = rng.permutation(n)
        return permutation[n_test:], permutation[:n_test]
    labels = np.asarray(labels)
    if labels.ndim != 1 or len(labels) != n:
        return None
    try:
        y_indices, class_counts = _classes(labels)
    except TypeError:  # mixed types: scikit-learn says what is wrong
        return None
    if class_counts.min() < 2 or n_train < len(class_counts) or n_test < len(class_counts):
        return None
    if len(class_counts) <= _FEW:  # each class's rows in ascending order, as a stable argsort gives them
        class_indices = [np.flatnonzero(y_indices == i) for i in range(len(class_counts))]
    else:
        class_indices = np.split(np.argsort(y_indices, kind="stable"), np.cumsum(class_counts)[:-1])
    n_i = _approximate_mode(class_counts, n_train, rng)
    t_i = _approximate_mode(class_counts - n_i, n_test, rng)
    train, test = [], []
    for i in range(len(class_counts)):
        mine = class_indices[i].take(rng.permutation(class_counts[i]), mode="clip")
        train.append(mine[:n_i[i]])
        test.append(mine[n_i[i]:n_i[i] + t_i[i]])
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))


_FEW = 32  # classes up to which one pass per class beats sorting the rows
_RANGE = 1_000_000  # integer labels spanning fewer values are counted, not sorted


def _classes(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's class index (classes in ascending order) and each class's count: what
    ``np.unique(labels, return_inverse=True, return_counts=True)`` gives, in linear time for integer-valued
    labels over a small range (0/1, class ids) instead of a sort."""
    if labels.ndim == 1 and labels.dtype.kind in "biuf" and len(labels):
        low, high = labels.min(), labels.max()
        if labels.dtype.kind in "biu" and int(high) - int(low) < _RANGE:
            codes = labels.astype(np.int64) - int(low)
        elif labels.dtype.kind == "f" and np.isfinite(low) and np.isfinite(high) and high - low < _RANGE:
            shifted = labels.astype(np.float64) - float(low)
            codes = shifted.astype(np.int64)
            codes = codes if np.array_equal(codes, shifted) else None  # a fraction: not class ids
        else:
            codes = None
        if codes is not None:
            counts = np.bincount(codes)
            present = counts > 0
            index = np.cumsum(present) - 1  # a code -> the rank of its class among the classes present
            return index[codes], counts[present]
    _, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    return inverse.reshape(-1), counts


def _approximate_mode(class_counts: np.ndarray, n_draws: int, rng: np.random.RandomState) -> np.ndarray:
    """Rows per class for ``n_draws`` rows: scikit-learn's ``utils.extmath._approximate_mode``."""
    continuous = class_counts / class_counts.sum() * n_draws
    floored = np.floor(continuous)
    need_to_add = int(n_draws - floored.sum())
    if need_to_add > 0:
        remainder = continuous - floored
        for value in np.sort(np.unique(remainder))[::-1]:
            (inds,) = np.where(remainder == value)
            add_now = min(len(inds), need_to_add)
            floored[rng.choice(inds, size=add_now, replace=False)] += 1
            need_to_add -= add_now
            if need_to_add == 0:
                break
    return floored.astype(int)


def cut(ordered: np.ndarray, *sizes: int) -> tuple[np.ndarray, ...]:
    """Cut rows already in order into a first part and then parts of ``sizes`` rows, in sequence:
    ``cut(rows, n_val, n_test)`` -> ``(train, validation, test)`` with the latest rows in ``test``."""
    parts, end = [], len(ordered)
    for size in reversed(sizes):
        parts.append(ordered[end - size:end])
        end -= size
    return (ordered[:end], *reversed(parts))


def folds(n: int, k: int, seed: int, labels: np.ndarray | None = None
          ) -> tuple[list[tuple[np.ndarray, np.ndarray]], str]:
    """``k`` (training rows, held-out rows) pairs that hold out every row once, and the method:
    ``stratified`` by ``labels`` when every class has ``k``+ rows, else ``random`` (shuffled, seeded)."""
    from sklearn.model_selection import KFold, StratifiedKFold

    if k < 2 or k > n:
        raise SplitError(f"{k} folds of {n} rows: cross-validation needs 2 to {n} folds")
    if labels is not None and len(np.unique(labels)) > 1 and np.unique(labels, return_counts=True)[1].min() >= k:
        pairs = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed).split(np.zeros(n), labels)
        method = "stratified"
    else:
        pairs = KFold(n_splits=k, shuffle=True, random_state=seed).split(np.zeros(n))
        method = "random"
    return [(np.sort(tr), np.sort(te)) for tr, te in pairs], method


def holdout(n: int, fraction: float, seed: int, labels: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(train, validation)`` rows of ``n``: ``fraction`` held out at random (seeded), stratified by
    ``labels`` when every class has 2+ rows and both parts can hold every class."""
    rows = np.arange(n)
    if fraction <= 0:
        return rows, rows[:0]
    n_val = part_size(n, fraction)
    if n_val >= n:
        raise SplitError(f"validation_split {fraction} leaves no training rows out of {n}")
    stratify = labels if labels is not None and stratify_problem(labels, [n_val, n - n_val]) is None else None
    return take(rows, fraction, seed, stratify)


def three_way(n: int, *, test_size: float, validation_size: float, labels: np.ndarray | None = None,
              stratify: bool = True, shuffle: bool = True, seed: int | None = 0,
              order: np.ndarray | None = None) -> Split:
    """Train / validation / test rows of ``n``. ``labels`` (classification) enable stratification;
    ``order`` (time values) makes the split time-ordered; ``shuffle=False`` cuts the rows in table order.

    A stratified split is cut twice (test, then validation from the rest), so it needs 3+ rows a class.
    """
    n_test, n_val = part_size(n, test_size), part_size(n, validation_size)
    if n - n_test - n_val < 1:
        raise SplitError(f"{n} rows cannot be split into test ({test_size}) and validation ({validation_size}) "
                         "parts and still leave a training row")
    if order is not None:
        return Split(*cut(np.argsort(order, kind="stable"), n_val, n_test), "time")
    if not shuffle:
        notes = ["shuffle is false: the split follows table order (not stratified)"] \
            if labels is not None and stratify else []
        return Split(*cut(np.arange(n), n_val, n_test), "sequential", notes)

    rows = np.arange(n)
    notes: list[str] = []
    strat = labels if (labels is not None and stratify) else None
    if strat is not None and (n_test or n_val):
        problem = stratify_problem(strat, [s for s in (n_test, n_val, n - n_test - n_val) if s], min_per_class=3)
        if problem:
            notes.append(f"{problem}: the split is random, not stratified")
            strat = None
    method = "stratified" if strat is not None else "random"
    # the validation rows are drawn from the rest in scikit-learn's order (as this split always has)
    rest, test = _draw(rows, n_test, seed, strat) if n_test else (rows, rows[:0])
    if n_val:
        rest_labels = strat[rest] if strat is not None else None
        if rest_labels is not None and stratify_problem(rest_labels, [n_val, len(rest) - n_val]):
            notes.append(f"the validation part is random, not stratified: "
                         f"{stratify_problem(rest_labels, [n_val, len(rest) - n_val])} after the test rows")
            rest_labels = None
        train, val = _draw(rest, n_val, seed, rest_labels)
    else:
        train, val = rest, rest[:0]
    return Split(np.sort(train), np.sort(val), np.sort(test), method, notes)
