"""``specml train --cv K`` on a neural spec (issue 18): K trainings on K folds, mean ± std of each
validation metric in the classical path's report form, then the final model trained as usual."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.csv as pacsv
import pytest
import torch

from specml.data.split import SplitError, folds
from specml.data.workspace import Workspace
from specml.train.cv import cross_validate

torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parents[2]
PIMA = ROOT / "src" / "specml" / "sample_data" / "pima_diabetes.csv"
MODEL = ROOT / "examples" / "pima_mlp" / "model.yaml"
TRAINER = "optimizer: {type: torch.optim.Adam, lr: 0.01}\nconfig: {epochs: 2, batch_size: 64, seed: 3}\n"


def test_folds_hold_out_every_row_once_stratified():
    labels = pacsv.read_csv(PIMA).column("outcome").to_numpy()
    pairs, method = folds(len(labels), 3, 0, labels)
    assert method == "stratified" and len(pairs) == 3
    held = np.concatenate([te for _, te in pairs])
    assert sorted(held.tolist()) == list(range(len(labels)))
    for tr, te in pairs:
        assert not set(tr) & set(te)
        assert abs(labels[te].mean() - labels.mean()) < 0.01  # each fold keeps the class share
    assert folds(10, 2, 0, np.array([0] * 9 + [1]))[1] == "random"  # a class smaller than k: not stratified
    with pytest.raises(SplitError, match="needs 2 to 10 folds"):
        folds(10, 11, 0)


def test_cross_validate_trains_k_times_and_reports_mean_and_std(tmp_path):
    trainer = tmp_path / "t.yaml"
    trainer.write_text(TRAINER, encoding="utf-8")
    with Workspace(tmp_path / "ws.duckdb") as ws:
        ws.load(PIMA, "pima")
        seen = []
        result = cross_validate(MODEL, trainer, table="pima", k=3, workspace=ws,
                                on_fold=lambda i, k, main, scores, s: seen.append((i, k, main)))
    assert seen == [(1, 3, "val_auc"), (2, 3, "val_auc"), (3, 3, "val_auc")]
    assert result.method == "stratified" and len(result.scores) == 3
    aucs = [s["val_auc"] for s in result.scores]
    assert len(set(aucs)) == 3 and all(0.5 < a <= 1 for a in aucs)  # three different trainings
    summary = result.summary()
    assert summary["val_auc"]["mean"] == pytest.approx(np.mean(aucs))
    assert summary["val_auc"]["std"] == pytest.approx(np.std(aucs))
    assert set(summary) == {"val_loss", "val_accuracy", "val_auc"}
    assert f"Mean val_auc: {np.mean(aucs):.4f} ± {np.std(aucs):.4f}" in result.lines()


@pytest.mark.slow
def test_cli_cv_reports_folds_then_trains_the_final_model(tmp_path):
    env = {**os.environ, "SPECML_HOME": str(tmp_path), "NO_COLOR": "1", "COLUMNS": "200"}
    env.pop("SPECML_WORKSPACE", None)
    trainer = tmp_path / "t.yaml"
    trainer.write_text(TRAINER.replace("epochs: 2", "epochs: 1"), encoding="utf-8")

    def specml(*args):
        return subprocess.run([sys.executable, "-m", "specml", *map(str, args)], capture_output=True, text=True,
                              env=env, cwd=tmp_path, timeout=300)

    assert specml("data", "load", PIMA, "--table", "pima").returncode == 0
    base = ["train", "-m", MODEL, "-T", trainer, "--table", "pima", "--name", "cvm", "--no-tensorboard"]
    refused = specml(*base, "--cv", "1")
    assert refused.returncode == 1 and "at least 2 folds" in refused.stderr
    done = specml(*base, "--cv", "2")
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    assert "Fold 1: val_auc = " in out and "Fold 2: val_auc = " in out and "Mean val_auc: " in out and " ± " in out
    assert "trained 'cvm' (binary)" in out
    (run,) = (tmp_path / "runs").iterdir()
    kept = json.loads((run / "facts" / "cv.json").read_text())
    assert kept["folds"] == 2 and len(kept["scores"]) == 2 and "val_auc" in kept["summary"]
