"""The classical defaults: reweighting only for severe imbalance (a tuned threshold for moderate), and a
training table that is not split again for testing."""

from __future__ import annotations

import io
import json

import numpy as np
import pyarrow as pa
from rich.console import Console
from test_classical_helpers import load_tables, write_spec

from specml.classical.imbalance import MODERATE, SEVERE, detect, severity
from specml.classical.split import held_back_table, is_training_table
from specml.classical.train import train_estimator
from specml.data.workspace import Workspace

BASE = "estimator: {type: LogisticRegression, params: {max_iter: 500}}\ntarget: outcome\n"


def _run(spec, table, name, ws, home):
    out = io.StringIO()
    result = train_estimator(spec, table=table, name=name, workspace=ws, home=home,
                             console=Console(file=out, width=200, highlight=False, no_color=True))
    return result, out.getvalue()


def test_severity_levels():
    classes = [0, 1]
    assert severity(detect(np.array([0] * 55 + [1] * 45), classes, SEVERE)) == "none"
    assert severity(detect(np.array([0] * 76 + [1] * 24), classes, SEVERE)) == "moderate"  # the 24% case
    assert severity(detect(np.array([0] * 95 + [1] * 5), classes, SEVERE)) == "severe"
    assert MODERATE < SEVERE == 9.0


def test_moderate_imbalance_is_not_reweighted_but_gets_a_tuned_threshold(env, tmp_path):
    home, ws = env
    result, text = _run(write_spec(tmp_path, "lr", BASE), "pima", "moderate", ws, home)  # 35% positives
    assert result.imbalance["severity"] == "moderate" and result.imbalance["method"] is None
    assert "Moderate class imbalance" in text and "Class weights" not in text
    assert "Decision threshold tuned on the validation rows" in text
    meta = json.loads((home / "models" / "moderate" / "metadata.json").read_text())
    assert meta["threshold"]["chosen_on"] == "validation rows" and 0 < meta["threshold"]["value"] < 1
    assert meta["threshold"]["value"] == result.threshold["value"]


def test_severe_imbalance_is_reweighted(env, tmp_path):
    home, _ = env
    ws = Workspace(tmp_path / "rare.duckdb")  # its own: a table written after a training on the shared one
    rng = np.random.default_rng(0)
    n = 600
    x = rng.normal(size=n)
    y = (rng.random(n) < 0.05 + 0.05 * (x > 1)).astype(np.int64)  # about 6% positives
    ws.write_table("rare", pa.table({"x": x, "z": rng.normal(size=n), "outcome": y}), replace=True)
    result, text = _run(write_spec(tmp_path, "lr", BASE), "rare", "severe", ws, home)
    assert result.imbalance["severity"] == "severe" and result.imbalance["method"] == "class_weight"
    assert "Class weights: class_weight='balanced'" in text
    ws.close()


def test_training_table_names():
    assert is_training_table("adult_train") and is_training_table("TRAIN") and is_training_table("x-training")
    assert not is_training_table("trains") and not is_training_table("pima")
    tables = {"adult_test", "test"}
    assert held_back_table("adult_train", tables.__contains__) == "adult_test"
    assert held_back_table("train", tables.__contains__) == "test"
    assert held_back_table("other_train", tables.__contains__) is None


def test_a_split_table_is_not_split_again_for_testing(env, tmp_path):
    home, _ = env
    ws = Workspace(tmp_path / "split.duckdb")
    load_tables(ws)
    ws.split("pima", test_size=0.2, seed=1, replace=True)  # pima_train + pima_test, as `specml data split`
    spec = write_spec(tmp_path, "gbm", "estimator: {type: LGBMClassifier, params: {n_estimators: 30, n_jobs: 1, "
                                       "verbose: -1}}\ntarget: outcome\n")
    result, text = _run(spec, "pima_train", "no_double", ws, home)
    train_rows = ws.row_count("pima_train")
    assert result.rows["test"] == 0 and result.rows["train"] + result.rows["validation"] == train_rows
    assert "Test Performance" not in text
    assert "not split again for testing" in text and "specml evaluate no_double pima_test" in text
    assert "Validation Performance (rows used for early stopping; not a test)" in text
    meta = json.loads((home / "models" / "no_double" / "metadata.json").read_text())
    assert meta["split"]["test_size"] == 0.0 and "test" not in meta["metrics"]
    # said in the spec: the user's test_size wins
    said = write_spec(tmp_path, "said", BASE + "test_size: 0.25\n")
    result, text = _run(said, "pima_train", "said_split", ws, home)
    assert result.rows["test"] > 0 and "Test Performance" in text
    ws.close()
