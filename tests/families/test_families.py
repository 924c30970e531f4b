"""Model families on one split: parsing, the words cue, and a small end-to-end run with an ensemble."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from specml.families import FamiliesError, parse_families, wants_ensemble
from testkit import PIMA_MLP


def test_parse_families_and_the_words_cue():
    assert parse_families("nn, GBM,linear,nn") == ["nn", "gbm", "linear"]
    assert parse_families("xgboost,nn") == ["xgboost", "nn"]
    with pytest.raises(FamiliesError, match="unknown family 'gmb'.*gbm"):
        parse_families("nn,gmb")
    with pytest.raises(FamiliesError, match="needs one or more"):
        parse_families(" , ")
    assert wants_ensemble("predict churn with an ensemble of models")
    assert wants_ensemble("Ensembling please")
    assert not wants_ensemble("an MLP with a TabM ensemble layer") and not wants_ensemble("predict churn")


@pytest.mark.slow
def test_families_share_one_split_and_save_an_ensemble(pima_home, tmp_path):
    import torch

    torch.set_num_threads(1)
    from specml import api
    from specml.families import train_families

    home = pima_home
    specs = tmp_path / "specs"
    specs.mkdir()
    model = specs / "model.yaml"
    model.write_text((PIMA_MLP / "model.yaml").read_text(), encoding="utf-8")
    trainer = yaml.safe_load((PIMA_MLP / "trainer.yaml").read_text())
    trainer["config"].update({"epochs": 3, "seed": 5, "tensorboard": False, "make_plots": False,
                              "validation_split": 0.25})
    trainer_path = specs / "trainer.yaml"
    trainer_path.write_text(yaml.safe_dump(trainer), encoding="utf-8")
    said = []
    result = train_families("fam", model, trainer_path, table="pima", families=["nn", "gbm", "linear"],
                            ensemble=True, workspace=home / "workspace.duckdb", home=home, threads=1, say=said.append,
                            refit=False)  # the first fits: every family on the same rows (the refit: test_refit.py)
    assert {m.family for m in result.members} == {"nn", "gbm", "linear"}
    assert abs(sum(result.weights.values()) - 1.0) < 1e-9 and result.value is not None
    assert result.rows == {"train": 576, "validation": 192}
    # every family trained on the same rows
    nn = json.loads((home / "models" / "fam-nn" / "metadata.json").read_text())
    gbm = json.loads((home / "models" / "fam-gbm" / "metadata.json").read_text())
    assert nn["rows"]["train"] == gbm["rows"]["train"] == 576 and gbm["rows"]["test"] == 0
    assert "guard" in nn and "guard" in gbm
    meta = json.loads((home / "models" / "fam" / "metadata.json").read_text())
    assert meta["kind"] == "ensemble" and meta["selection"]["method"].startswith("greedy")
    assert {r["family"] for r in meta["leaderboard"]} == {"nn", "gbm", "linear"}
    assert any("one split shared by" in s for s in said)
    board = result.board()
    assert board[0]["value"] >= board[-1]["value"]  # best first (auc: higher is better)
    report = api.evaluate("fam", "pima", workspace=home / "workspace.duckdb", home=home)
    assert 0.5 < report["metrics"]["auc"] <= 1.0 and np.isfinite(report["metrics"]["log_loss"])


def test_a_typo_in_families_is_a_one_line_error(pima_home, cli):
    ran = cli("model", "-n", "typo", "-i", "predict outcome", "-t", "pima", "--families", "nn,gmb", home=pima_home)
    assert ran.returncode == 1 and "unknown family 'gmb'" in ran.stderr and "did you mean" in ran.stderr.lower()
    assert "Traceback" not in ran.stdout + ran.stderr
    ran = cli("model", "-n", "bg", "-i", "predict outcome", "-t", "pima", "--ensemble", "--background",
              home=pima_home)
    assert ran.returncode == 1 and "in the foreground" in ran.stderr
