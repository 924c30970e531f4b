"""specml.data.split: the one split module behind the workspace, the neural validation split and the
classical train / validation / test split. Pinned rows are what each path gave before they shared it."""

from __future__ import annotations

import itertools
import random

import numpy as np
import pyarrow as pa
import pytest

from specml.classical.errors import ClassicalError
from specml.classical.split import split_rows
from specml.data.split import SplitError, cut, holdout, part_size, stratify_problem, take, three_way
from specml.data.tensors import validation_split
from specml.data.workspace import DataError, Workspace


@pytest.fixture
def ws(tmp_path):
    with Workspace(tmp_path / "ws.duckdb") as w:
        yield w


# ----------------------------------------------------------------------------------------------
# the same seed gives the same rows as before the paths shared one module


def test_neural_validation_rows_are_unchanged():
    assert validation_split(37, 0.2, 42, np.arange(37) % 4)[1].tolist() == [6, 9, 12, 18, 19, 23, 24, 25]
    assert validation_split(37, 0.2, 42, None)[1].tolist() == [4, 6, 13, 17, 25, 26, 29, 35]


def test_classical_rows_are_unchanged():
    split = split_rows(37, test_size=0.2, validation_size=0.1, labels=np.arange(37) % 4, seed=7)
    assert split.method == "stratified" and split.notes == []
    assert split.validation.tolist() == [7, 9, 18, 28]
    assert split.test.tolist() == [10, 16, 24, 29, 30, 31, 33, 35]


def test_workspace_rows_are_unchanged_and_are_the_shared_draw(ws):
    ws.write_table("t", pa.table({"i": np.arange(57), "c": (np.arange(57) % 3).astype(np.int64)}))
    ws.split("t", test_size=0.2, stratify="c", seed=5)
    test = ws.sql("select i from t_test order by i").column(0).to_pylist()
    assert test == [5, 9, 22, 23, 34, 39, 42, 44, 45, 49, 50, 52]
    labels = (np.arange(57) % 3).astype(str).astype(object)
    assert take(np.arange(57), 0.2, 5, labels)[1].tolist() == test


def test_the_neural_split_is_the_shared_holdout():
    labels = np.arange(200) % 3
    for seed in (0, 1, 42):
        a, b = validation_split(200, 0.25, seed, labels), holdout(200, 0.25, seed, labels)
        assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])


# ----------------------------------------------------------------------------------------------
# the pieces


def test_part_size_is_scikit_learns_ceil():
    assert [part_size(10, f) for f in (0.0, 0.1, 0.25, 0.5, 0.99)] == [0, 1, 3, 5, 10]


def test_cut_keeps_order_and_puts_the_latest_rows_last():
    train, val, test = cut(np.arange(10), 2, 3)
    assert (train.tolist(), val.tolist(), test.tolist()) == ([0, 1, 2, 3, 4], [5, 6], [7, 8, 9])
    rest, last = cut(np.array([9, 3, 7]), 1)
    assert (rest.tolist(), last.tolist()) == ([9, 3], [7])


def test_stratify_problem():
    labels = np.array([0, 0, 1, 1, 1, 2, 2])
    assert stratify_problem(labels, [3, 4]) is None
    assert stratify_problem(labels, [3, 4], min_per_class=3) == "a class has only 2 row(s)"
    assert stratify_problem(labels, [2, 5]) == "a part of 2 row(s) cannot hold all 3 classes"


@pytest.mark.parametrize("seed", [0, 3, 11])
def test_holdout_is_seeded_stratified_and_leaves_the_global_rngs_alone(seed):
    labels = np.repeat([0, 1, 2, 3], [80, 60, 40, 20])
    state = (random.getstate(), np.random.get_state()[1].copy())
    train, val = holdout(200, 0.25, seed, labels)
    assert (random.getstate(), list(np.random.get_state()[1])) == (state[0], list(state[1]))
    assert sorted([*train, *val]) == list(range(200)) and len(val) == 50
    assert np.bincount(labels[val]).tolist() == [20, 15, 10, 5]
    assert np.array_equal(val, holdout(200, 0.25, seed, labels)[1])


def test_holdout_falls_back_to_random_when_a_part_cannot_hold_every_class():
    labels = np.arange(40) % 10  # 10 classes, 4 validation rows
    train, val = holdout(40, 0.1, 0, labels)
    assert len(val) == 4 and len(train) == 36


def test_a_holdout_of_every_row_is_refused():
    with pytest.raises(SplitError, match="leaves no training rows"):
        holdout(3, 0.9, 0)
    with pytest.raises(DataError, match="leaves no training rows"):
        validation_split(3, 0.9, 0, None)


def test_three_way_time_order_and_table_order():
    order = np.array([5, 1, 4, 2, 3, 0, 9, 8, 7, 6])
    split = three_way(10, test_size=0.2, validation_size=0.2, order=order)
    assert split.method == "time"
    assert order[split.train].max() <= order[split.validation].min() <= order[split.test].min()
    seq = three_way(10, test_size=0.2, validation_size=0.1, shuffle=False, labels=np.arange(10) % 2)
    assert (seq.train.tolist(), seq.validation.tolist(), seq.test.tolist()) == (list(range(7)), [7], [8, 9])
    assert seq.notes == ["shuffle is false: the split follows table order (not stratified)"]


def test_three_way_that_cannot_be_stratified_is_random_with_a_note():
    # 30 classes, a test part of 20 rows: scikit-learn refuses to stratify (this used to be a traceback)
    split = split_rows(200, test_size=0.1, validation_size=0.1, labels=np.arange(200) % 30, seed=0)
    assert split.method == "random"
    assert split.notes == ["a part of 20 row(s) cannot hold all 30 classes: the split is random, not stratified"]
    assert sorted([*split.train, *split.validation, *split.test]) == list(range(200))


def test_three_way_refusals_are_classical_errors():
    with pytest.raises(ClassicalError, match="still leave a training row"):
        split_rows(3, test_size=0.5, validation_size=0.5)


@pytest.mark.parametrize("kind", [None, "int", "str", "object", "float", "bool", "int8", "sparse", "many"])
def test_numpy_draws_are_scikit_learns(kind):
    """The split drawn in numpy (no scikit-learn import in a training) is train_test_split's, row for row."""
    from sklearn.model_selection import train_test_split

    from specml.data.split import _shuffle_split

    rng = np.random.default_rng(7)
    checked = 0
    for n, size, seed, k in itertools.product([10, 37, 768, 5000], [0.1, 0.25, 0.33, 3, 50], [0, 42], [2, 3, 7]):
        ids = rng.integers(0, k, n)
        labels = {None: None, "int": ids, "str": np.array([f"c{v}" for v in ids]),
                  "object": np.array([f"c{v}" for v in ids], dtype=object),
                  "float": ids.astype(np.float32) - 1.0,  # class ids as floats, one negative (counted path)
                  "bool": ids % 2 == 0, "int8": (ids - 3).astype(np.int8),
                  "sparse": ids * 10**7,  # a range too wide to count: sorted instead
                  "many": ids * 5 + (np.arange(n) % 40)}[kind]  # more classes than the one-pass-per-class path
        fast = _shuffle_split(n, size, seed, labels)
        if fast is None:  # scikit-learn refuses it: it says why itself
            with pytest.raises(ValueError):
                train_test_split(np.arange(n), test_size=size, random_state=seed, shuffle=True, stratify=labels)
            continue
        ref = train_test_split(np.arange(n), test_size=size, random_state=seed, shuffle=True, stratify=labels)
        assert np.array_equal(fast[0], ref[0]) and np.array_equal(fast[1], ref[1]), (n, size, seed, k)
        checked += 1
    assert checked > 30


@pytest.mark.parametrize("labels", [
    np.array([0.0, 1.0, 1.0, 0.0, 2.0]), np.array([0.5, 1.5, 0.5, 2.0]), np.array([3, -2, 3, 7], dtype=np.int8),
    np.array([True, False, True]), np.array([np.nan, 1.0, 1.0]), np.array([-(2**63), 0, 2**63 - 1]),
    np.array([2**40, 2**40 + 1, 2**40]), np.array(["b", "a", "b"])], ids=str)
def test_class_counts_are_numpys_unique(labels):
    """The linear-time class count (integer-valued labels) gives np.unique's inverse and counts exactly."""
    from specml.data.split import _classes

    inverse, counts = _classes(labels)
    _, ref_inverse, ref_counts = np.unique(labels, return_inverse=True, return_counts=True)
    assert np.array_equal(inverse, ref_inverse.reshape(-1)) and np.array_equal(counts, ref_counts)


def test_take_sorts_both_parts_of_rows_that_are_not_a_range():
    rows = np.array([3, 9, 20, 21, 40, 41, 50, 77])
    rest, part = take(rows, 0.25, 0, np.array([0, 1] * 4))
    assert sorted([*rest, *part]) == list(rows) and list(rest) == sorted(rest) and list(part) == sorted(part)
    shuffled = rows[::-1].copy()  # not increasing: the parts are sorted values all the same
    rest2, part2 = take(shuffled, 0.25, 0)
    assert list(rest2) == sorted(rest2) and list(part2) == sorted(part2)
