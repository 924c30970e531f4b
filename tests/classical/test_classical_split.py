"""Splits (stratified, time-ordered) and imbalance handling that touches only the training rows."""

from __future__ import annotations

import numpy as np
import pytest
from test_classical_helpers import write_spec
from threadpoolctl import threadpool_limits

from specml.artifact import ModelArtifact
from specml.classical.split import split_rows
from specml.classical.train import train_estimator


@pytest.mark.parametrize("counts", [(500, 268), (900, 100), (59, 71, 48), (40, 7)])
def test_stratification_keeps_class_ratios(counts):
    labels = np.repeat(np.arange(len(counts)), counts)
    np.random.default_rng(1).shuffle(labels)
    n = len(labels)
    split = split_rows(n, test_size=0.2, validation_size=0.1, labels=labels, seed=3)
    assert split.method == "stratified"
    parts = [split.train, split.validation, split.test]
    assert sorted(np.concatenate(parts).tolist()) == list(range(n))  # a partition of the rows
    for rows in parts:
        for cls, total in enumerate(counts):
            expected = total * len(rows) / n
            assert abs(np.sum(labels[rows] == cls) - expected) <= 1.0, (cls, len(rows))


def test_time_split_never_puts_a_later_row_in_training():
    rng = np.random.default_rng(0)
    times = rng.integers(0, 50, 1000)  # many ties
    split = split_rows(1000, test_size=0.2, validation_size=0.15, labels=rng.integers(0, 2, 1000),
                       seed=0, order=times)
    assert split.method == "time"
    tr, va, te = times[split.train], times[split.validation], times[split.test]
    assert tr.max() <= va.min() <= va.max() <= te.min()
    assert split.sizes() == {"train": 650, "validation": 150, "test": 200}


def test_time_column_orders_a_real_training_run(env, tmp_path):
    home, ws = env
    spec = write_spec(tmp_path, "t", "estimator: {type: LogisticRegression}\ntarget: churned\ntime_column: day\n"
                                     "verbose: 0\n")
    result = train_estimator(spec, table="churn", name="time_lr", workspace=ws, home=home)
    days = ws.read_columns("churn", ["day"]).column("day").to_numpy(zero_copy_only=False)
    tr, va, te = (days[result.split.train], days[result.split.validation], days[result.split.test])
    assert tr.max() <= va.min() <= va.max() <= te.min()
    meta = ModelArtifact.for_name("time_lr", home).read_metadata()
    assert meta["split"]["method"] == "time" and "day" not in meta["features"]["columns"]


def test_smote_changes_only_training_rows(env, tmp_path):
    home, ws = env
    base = "estimator: {type: RandomForestClassifier, params: {n_estimators: 10, n_jobs: 1}}\ntarget: outcome\n" \
           "verbose: 0\n"
    plain = train_estimator(write_spec(tmp_path, "plain", base + "imbalance_handling: {method: none}\n"),
                            table="pima", name="plain", workspace=ws, home=home)
    smote_spec = write_spec(tmp_path, "smote", base + "imbalance_handling: {method: smote, threshold: 1.5}\n")
    smote = train_estimator(smote_spec, table="pima", name="smote", workspace=ws, home=home)
    for part in ("train", "validation", "test"):
        assert np.array_equal(getattr(plain.split, part), getattr(smote.split, part))
    imb = smote.imbalance
    assert imb["imbalanced"] and imb["method"] == "smote"
    before, after = imb["counts"], imb["after"]
    assert sum(before.values()) == plain.rows["train"]
    assert after["0"] == after["1"] == max(before.values())  # the minority grows to the majority's size
    assert sum(after.values()) > plain.rows["train"]
    assert plain.imbalance["method"] is None and plain.imbalance["after"] is None
    # validation and test metrics are computed on the same untouched rows
    meta = ModelArtifact.for_name("smote", home).read_metadata()
    assert meta["rows"]["validation"] == plain.rows["validation"] and meta["rows"]["test"] == plain.rows["test"]


@pytest.mark.parametrize("estimator, detail", [
    ("xgboost.XGBClassifier", "scale_pos_weight"),
    ("LogisticRegression", "class_weight='balanced'"),
    ("GradientBoostingClassifier", "balanced sample weights"),
])
def test_class_weight_goes_where_the_estimator_takes_it(env, tmp_path, estimator, detail):
    home, ws = env
    params = "{n_estimators: 10, n_jobs: 1}" if "XGB" in estimator else \
        "{n_estimators: 10}" if "Gradient" in estimator else "{max_iter: 300}"
    spec = write_spec(tmp_path, "cw", f"estimator: {{type: {estimator}, params: {params}}}\ntarget: outcome\n"
                                      "imbalance_handling: {method: class_weight, threshold: 1.2}\nverbose: 0\n")
    result = train_estimator(spec, table="pima", name="cw", workspace=ws, home=home)
    assert result.imbalance["method"] == "class_weight" and detail in result.imbalance["detail"]


def test_balanced_data_is_left_alone(env, tmp_path):
    home, ws = env
    spec = write_spec(tmp_path, "b", "estimator: {type: LogisticRegression}\ntarget: outcome\n"
                                     "imbalance_handling: {threshold: 3.0, method: smote}\nverbose: 0\n")
    result = train_estimator(spec, table="pima", name="balanced", workspace=ws, home=home)
    assert result.imbalance["imbalanced"] is False and result.imbalance["method"] is None


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """One BLAS/OpenMP thread (HistGradientBoosting, LightGBM): fast and steady on a shared 2-core machine."""
    with threadpool_limits(1):
        yield
