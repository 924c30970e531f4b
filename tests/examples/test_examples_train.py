"""Every example trains a few epochs through ``specml.api.train`` on its real table and beats the trivial
baseline (majority class / training mean) on held-back rows, evaluated with ``specml.api.evaluate``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from specml import api
from specml.data import builtin
from specml.data.collatz import PAD, collatz_table
from specml.data.workspace import Workspace
from testkit import EXAMPLES

pytestmark = pytest.mark.slow  # each example trains for real (the collatz transformer for minutes)


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(1)


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("SPECML_HOME", str(tmp_path))
    monkeypatch.delenv("SPECML_WORKSPACE", raising=False)
    with Workspace(tmp_path / "workspace.duckdb") as ws:
        yield tmp_path, ws


def short_trainer(home: Path, example: str, epochs: int, **config) -> Path:
    """The example's trainer spec with fewer epochs (and any other config override), written to tmp."""
    spec = yaml.safe_load((EXAMPLES / example / "trainer.yaml").read_text())
    spec["config"].update({"epochs": epochs, "verbose": False, **config})
    if "scheduler" in spec and "T_max" in spec["scheduler"].get("params", {}):
        spec["scheduler"]["params"]["T_max"] = epochs
    path = home / f"{example}.trainer.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def train_eval(home: Path, ws: Workspace, example: str, train: str, test: str, epochs: int, **config) -> dict:
    result = api.train(EXAMPLES / example / "model.yaml", short_trainer(home, example, epochs, **config),
                       table=train, name=example, workspace=ws, home=home, verbose=False, progress=False)
    assert result.history["train_loss"], result
    report = api.evaluate(example, test, workspace=ws, home=home)
    assert report["rows"] == ws.row_count(test)
    return report["metrics"]


def column(ws: Workspace, table: str, col: str) -> np.ndarray:
    return np.asarray(ws.read_columns(table, [col]).column(col).to_pylist())


def majority_accuracy(ws: Workspace, train: str, test: str, target: str) -> float:
    values, counts = np.unique(column(ws, train, target), return_counts=True)
    return float(np.mean(column(ws, test, target) == values[np.argmax(counts)]))


def mean_rmse(ws: Workspace, train: str, test: str, target: str) -> float:
    return float(np.sqrt(np.mean((column(ws, test, target) - column(ws, train, target).mean()) ** 2)))


def load_split(ws: Workspace, name: str, table: str | None = None, *, stratify: str | None = None,
               test_size: float = 0.25, seed: int = 0) -> tuple[str, str]:
    table = table or name
    if not ws.has_table(table):
        ws.write_table(table, builtin.load(name))
    train, test, _, _ = ws.split(table, test_size=test_size, stratify=stratify, seed=seed)
    return train, test


def test_pima_mlp_beats_the_majority_class(env):
    home, ws = env
    train, test = load_split(ws, "pima", stratify="outcome", test_size=0.2, seed=42)
    metrics = train_eval(home, ws, "pima_mlp", train, test, epochs=15)
    baseline = majority_accuracy(ws, train, test, "outcome")   # 0.649
    assert metrics["accuracy"] > baseline + 0.03, (metrics, baseline)
    assert metrics["auc"] > 0.75


def test_wine_beats_the_majority_class(env):
    home, ws = env
    train, test = load_split(ws, "wine", stratify="class")
    metrics = train_eval(home, ws, "wine_multiclass", train, test, epochs=20)
    baseline = majority_accuracy(ws, train, test, "class")     # 0.400
    assert metrics["accuracy"] > baseline + 0.3, (metrics, baseline)


def test_diabetes_regression_beats_the_mean_and_predicts_in_target_units(env):
    home, ws = env
    train, test = load_split(ws, "diabetes", test_size=0.2)
    metrics = train_eval(home, ws, "diabetes_regression", train, test, epochs=40)
    baseline = mean_rmse(ws, train, test, "progression")      # about 73
    assert metrics["rmse"] < 0.9 * baseline, (metrics, baseline)
    assert metrics["r2"] > 0.2
    # target_normalize is inverted at predict time: predictions are in the target's units, not z-scores
    predictions = np.asarray(api.predict("diabetes_regression", test, workspace=ws, home=home)
                             .column("prediction").to_pylist(), dtype=float)
    assert 80 < predictions.mean() < 220 and predictions.std() > 20


def test_linnerud_multioutput_beats_the_mean_on_waist(env):
    """20 rows: the exercises carry little about Weight and Pulse (see the example's README), but sit-ups
    predict Waist. The [B, 3] target is fitted jointly; predictions come back per target, in its units."""
    home, ws = env
    train, test = load_split(ws, "linnerud")
    metrics = train_eval(home, ws, "linnerud_multioutput", train, test, epochs=60)
    assert set(metrics) >= {"rmse", "r2"} and np.isfinite(metrics["rmse"])
    predictions = api.predict("linnerud_multioutput", test, workspace=ws, home=home)
    for target in ("Weight", "Waist", "Pulse"):
        assert f"prediction_{target}" in predictions.column_names, predictions.column_names
    waist = column(ws, test, "Waist")
    model_rmse = float(np.sqrt(np.mean((np.asarray(predictions.column("prediction_Waist").to_pylist()) - waist) ** 2)))
    mean_rmse_waist = float(np.sqrt(np.mean((column(ws, train, "Waist").mean() - waist) ** 2)))   # 3.10
    assert model_rmse < mean_rmse_waist, (model_rmse, mean_rmse_waist)


def test_dcn_v2_on_numeric_and_categorical_columns(env):
    home, ws = env
    train, test = load_split(ws, "pima_categorical", stratify="outcome", test_size=0.2, seed=42)
    metrics = train_eval(home, ws, "dcn_v2", train, test, epochs=15)
    baseline = majority_accuracy(ws, train, test, "outcome")
    assert metrics["accuracy"] > baseline + 0.03, (metrics, baseline)
    assert metrics["auc"] > 0.75


def test_mmoe_two_tasks_beat_their_baselines(env):
    home, ws = env
    ws.write_table("pima", builtin.load("pima"))
    ws.sql("CREATE TABLE pima_bmi AS SELECT * FROM pima WHERE bmi > 0")  # BMI 0 = not measured
    train, test = load_split(ws, "pima_bmi", stratify="outcome", test_size=0.2, seed=42)
    metrics = train_eval(home, ws, "mmoe_two_tasks", train, test, epochs=25)
    assert metrics["diabetes_accuracy"] > majority_accuracy(ws, train, test, "outcome") + 0.03, metrics
    assert metrics["bmi_rmse"] < 0.95 * mean_rmse(ws, train, test, "bmi"), metrics


def test_collatz_transformer_beats_per_position_majority(env):
    home, ws = env
    train_t, test_t = collatz_table(3000, 500, seed=0)
    ws.write_table("collatz_train", train_t)
    ws.write_table("collatz_test", test_t)
    metrics = train_eval(home, ws, "collatz_transformer", "collatz_train", "collatz_test", epochs=4,
                         validation_split=0.0, batch_size=64)
    # the trivial baseline: at each position, the training rows' most common digit of kappa(n)
    L = 8
    def matrix(table):
        out = np.full((table.num_rows, L), PAD)
        for i, digits in enumerate(table.column("kappa_digits").to_pylist()):
            out[i, :len(digits)] = digits[:L]
        return out
    tr, te = matrix(train_t), matrix(test_t)
    guess = np.array([np.bincount(tr[:, j][tr[:, j] != PAD], minlength=24).argmax() for j in range(L)])
    real = te != PAD
    token_baseline = float(((te == guess) & real).sum() / real.sum())
    exact_baseline = float(np.mean(np.all((te == guess) | ~real, axis=1)))
    assert metrics["accuracy"] > token_baseline + 0.02, (metrics, token_baseline)
    assert metrics["exact_match"] >= exact_baseline, (metrics, exact_baseline)
