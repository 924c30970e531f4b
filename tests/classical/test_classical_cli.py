"""The classical commands through the real CLI: train-estimator with CV (the installed console script in a
subprocess, end to end), leaderboard, validate and schema for estimator specs, user mistakes without
tracebacks (in this process, typer's ``CliRunner``)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from test_classical_helpers import write_spec

from testkit import BOTH_WAYS, ROOT, invoke, no_traceback, ok, run_as


def run(args, home: Path):
    """``specml ARGS`` in this process (160 columns), in the repository root."""
    return invoke(*args, home=home, cwd=ROOT, env={"COLUMNS": "160"})


@pytest.fixture(scope="module")
def home(pima_home):
    return pima_home


@BOTH_WAYS
def test_train_with_cv_prints_each_fold_and_the_mean(home, tmp_path, how):
    rf, xgb_name = f"rf_cv_{how}", f"xgb_{how}"  # the module's home is shared by both ways
    spec = write_spec(tmp_path, "rf", "estimator: {type: RandomForestClassifier, params: {n_estimators: 15, "
                                      "n_jobs: 1}}\ntarget: outcome\ncross_validation: {scoring: f1}\n")
    result = ok(run_as(how, home, "train-estimator", "--estimator-spec", str(spec), "--table", "pima", "--name",
                       rf, "--cv", "4", cwd=ROOT, env={"COLUMNS": "160"}))
    out = result.stdout
    folds = re.findall(r"^Fold (\d): F1 = (0\.\d{4}) \(completed in [\d.]+s\)$", out, re.M)
    assert [f[0] for f in folds] == ["1", "2", "3", "4"], out
    mean = re.search(r"^Mean F1: (0\.\d{4}) ± (0\.\d{4})$", out, re.M)
    assert mean, out
    scores = [float(f[1]) for f in folds]
    assert abs(sum(scores) / 4 - float(mean.group(1))) < 1e-3
    for section in ("✓ Data split: 70% train (537), 10% validation (77), 20% test (154)",
                    "✓ Stratification applied", "Moderate class imbalance", "Decision threshold tuned",
                    "Training Performance:",
                    "Validation Performance:", "Test Performance:", "✓ Training completed in",
                    f"✓ Model saved to: {home / 'models' / rf}"):
        assert section in out, out
    meta = json.loads((home / "models" / rf / "metadata.json").read_text())
    assert meta["cv"]["folds"] == 4 and len(meta["cv"]["scores"]) == 4 and meta["cv"]["scoring"] == "f1"

    from specml.artifact import list_models
    from specml.classical.train import train_estimator

    row = next(r for r in list_models(home) if r["name"] == rf)
    assert row["best_metric"] == "val_auc" and row["task"] == "binary"

    xgb = write_spec(tmp_path, "xgb", "estimator: {type: XGBClassifier, params: {n_estimators: 20, n_jobs: 1}}\n"
                                      "target: outcome\nverbose: 0\n")
    train_estimator(xgb, table="pima", name=xgb_name, workspace=home / "workspace.duckdb", home=home)
    text = ok(run(["leaderboard", "--table", "pima", "--models", f"{xgb_name},{rf},nope"], home))
    lines = [line for line in text.stdout.splitlines() if "classical" in line]
    assert len(lines) == 2 and "XGBClassifier" in text.stdout and "RandomForestClassifier" in text.stdout
    assert "xgb" in text.stdout and "skipped nope" in text.stderr


def test_user_mistakes_are_errors_not_tracebacks(home, tmp_path):
    typo = write_spec(tmp_path, "typo", "estimator:\n  type: xgboost.XGBClassifier\n  params: {max_depht: 3}\n"
                                        "target: outcome\n")
    result = run(["train-estimator", "-e", str(typo), "-t", "pima", "-n", "m"], home)
    assert result.returncode == 1
    no_traceback(result)
    assert "estimator.params.max_depht" in result.stderr and "did you mean 'max_depth'?" in result.stderr


def test_validate_and_schema_know_estimator_specs(home, tmp_path):
    example = ROOT / "examples" / "classical" / "xgboost_pima.yaml"
    bad = write_spec(tmp_path, "bad", "estimator: {type: RandomForestClasifier}\ntarget: y\n")
    result = run(["validate", str(example), str(bad), "--json"], home)
    assert result.returncode == 1
    no_traceback(result)
    good, wrong = json.loads(result.stdout)
    assert good["valid"] and good["kind"] == "estimator"
    assert not wrong["valid"] and wrong["errors"][0]["path"] == "estimator.type"
    assert wrong["errors"][0]["hint"] == "did you mean 'RandomForestClassifier'?" and wrong["errors"][0]["line"] == 1
    schema = json.loads(ok(run(["schema", "estimator"], home)).stdout)
    assert schema["$id"].endswith("/estimator.json") and "estimator" in schema["required"]
