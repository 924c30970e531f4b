"""Family members trained again on training + validation rows once chosen (specml.refit), and the time limit."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from specml.refit import estimator_spec, trainer_spec
from testkit import PIMA_MLP


def test_the_refit_specs_keep_early_stoppings_best_and_drop_validation(tmp_path):
    est = tmp_path / "gbm.estimator.yaml"
    est.write_text(yaml.safe_dump({"estimator": {"type": "lightgbm.LGBMRegressor", "params": {"verbose": -1}},
                                   "target": "y"}), encoding="utf-8")
    path, said = estimator_spec(est, 36, tmp_path / "gbm.refit.yaml")
    spec = yaml.safe_load(path.read_text())
    assert spec["estimator"]["params"] == {"verbose": -1, "n_estimators": 37} and "37 rounds" in said
    assert spec["early_stopping"] == {"enabled": False}
    _, said = estimator_spec(est, None, tmp_path / "linear.refit.yaml")  # no early stopping: the same settings
    assert said == "the same settings"

    trainer = {"model_ref": "m", "optimizer": {"type": "torch.optim.AdamW", "lr": 1e-3},
               "scheduler": {"type": "CosineAnnealingLR", "params": {"T_max": 200}, "interval": "epoch"},
               "config": {"epochs": 200, "validation_split": 0.2, "early_stopping_patience": 16,
                          "early_stopping_monitor": "val_loss", "early_stopping_min_delta": 0.0}}
    src = tmp_path / "trainer.yaml"
    src.write_text(yaml.safe_dump(trainer), encoding="utf-8")
    refit = yaml.safe_load(trainer_spec(src, 41, tmp_path / "trainer.refit.yaml").read_text())
    assert refit["config"] == {"epochs": 41, "validation_split": 0.0, "early_stopping_patience": None}
    assert refit["scheduler"]["params"] == {"T_max": 200}  # the first run's learning rates, epoch by epoch
    trainer["scheduler"] = {"type": "ReduceLROnPlateau", "monitor": "val_loss"}
    src.write_text(yaml.safe_dump(trainer), encoding="utf-8")
    assert trainer_spec(src, 41, tmp_path / "plateau.refit.yaml") is None  # it needs validation rows


def _specs(tmp_path, **config):
    specs = tmp_path / "specs"
    specs.mkdir(exist_ok=True)
    model = specs / "model.yaml"
    model.write_text((PIMA_MLP / "model.yaml").read_text(), encoding="utf-8")
    trainer = yaml.safe_load((PIMA_MLP / "trainer.yaml").read_text())
    trainer["scheduler"] = {"type": "CosineAnnealingLR", "params": {"T_max": 8}, "interval": "epoch"}
    trainer["config"].update({"epochs": 8, "seed": 5, "tensorboard": False, "make_plots": False,
                              "validation_split": 0.25, "early_stopping_patience": 2, **config})
    path = specs / "trainer.yaml"
    path.write_text(yaml.safe_dump(trainer), encoding="utf-8")
    return model, path


def _scores(name, home, ws_path):
    from specml.data.workspace import Workspace
    from specml.ensemble import member_info, member_scores

    info = member_info(name, home)
    with Workspace(ws_path, read_only=True) as ws:
        data = ws.read_columns("pima", info["features"])
    return member_scores(name, info["kind"], data, home)


@pytest.mark.slow
def test_classical_members_are_refit_with_their_best_rounds_and_the_ensemble_round_trips(pima_home, tmp_path):
    from specml import api
    from specml.families import train_families

    home, ws_path = pima_home, pima_home / "workspace.duckdb"
    model, trainer = _specs(tmp_path)
    common = dict(table="pima", families=["gbm", "xgboost", "linear"], ensemble=True, workspace=ws_path, home=home, threads=1)
    first = train_families("first", model, trainer, refit=False, **common)
    said = []
    again = train_families("again", model, trainer, say=said.append, **common)
    for gbm in ("gbm", "xgboost"):  # LightGBM and XGBoost: refit with early stopping's best number of rounds
        before = json.loads((home / "models" / f"first-{gbm}" / "metadata.json").read_text())
        after = json.loads((home / "models" / f"again-{gbm}" / "metadata.json").read_text())
        assert before["rows"]["train"] == 576 and after["rows"]["train"] == 768 and after["rows"]["validation"] == 0
        best = before["early_stopping"]["best_iteration"]
        assert best is not None and after["estimator"]["params"]["n_estimators"] == best + 1, gbm
        assert after["refit"]["rows"] == 768 and "rounds" in after["refit"]["how"]
        assert not after["early_stopping"]["enabled"]
    after = json.loads((home / "models" / "again-gbm" / "metadata.json").read_text())
    assert after["refit"]["validation_of_first_fit"]["val_auc"] == pytest.approx(
        next(m.value for m in first.members if m.family == "gbm"))
    # the same split and choice, but members that learned from every row: other predictions
    assert not np.allclose(_scores("first-gbm", home, ws_path), _scores("again-gbm", home, ws_path))
    assert not np.allclose(_scores("first-linear", home, ws_path), _scores("again-linear", home, ws_path))
    meta = json.loads((home / "models" / "again" / "metadata.json").read_text())
    assert set(meta["refit"]["members"]) == {"again-gbm", "again-xgboost", "again-linear"}
    assert any("refit on training + validation rows (768)" in s for s in said)
    # the saved ensemble predicts the weighted blend of its refit members
    from specml.data.workspace import Workspace
    from specml.ensemble import load_ensemble

    blend = sum(w * _scores(m, home, ws_path) for m, w in again.weights.items())

    ensemble = load_ensemble("again", home)
    with Workspace(ws_path, read_only=True) as ws:
        data = ws.read_columns("pima", ensemble.features)
    assert np.allclose(ensemble.scores(data, home), blend)
    report = api.evaluate("again", "pima", workspace=ws_path, home=home)
    assert 0.5 < report["metrics"]["auc"] <= 1.0


@pytest.mark.slow
def test_the_network_is_refit_for_its_best_epochs(pima_home, tmp_path):
    import torch

    torch.set_num_threads(1)
    from specml.families import train_families

    home, ws_path = pima_home, pima_home / "workspace.duckdb"
    model, trainer = _specs(tmp_path)
    common = dict(table="pima", families=["nn"], workspace=ws_path, home=home, threads=1)
    first = train_families("nnfirst", model, trainer, refit=False, **common)
    result = train_families("nnrefit", model, trainer, **common)
    nn = result.members[0]
    assert nn.best == first.members[0].best  # the same first fit (seeded)
    meta = json.loads((home / "models" / "nnrefit-nn" / "metadata.json").read_text())
    assert nn.best is not None and meta["refit"]["how"] == f"{nn.best} epochs (early stopping's best)"
    assert meta["rows"]["train"] == 768 and meta["rows"]["validation"] == 0
    refit_trainer = yaml.safe_load(trainer.with_name("trainer.refit.yaml").read_text())
    assert refit_trainer["config"]["epochs"] == nn.best and refit_trainer["scheduler"]["params"]["T_max"] == 8
    assert not np.allclose(_scores("nnfirst-nn", home, ws_path), _scores("nnrefit-nn", home, ws_path))


@pytest.mark.slow
def test_the_time_limit_skips_classical_families_and_refits_that_do_not_fit(pima_home, tmp_path):
    import torch

    torch.set_num_threads(1)
    from specml.families import train_families

    home = pima_home
    model, trainer = _specs(tmp_path)
    said = []
    result = train_families("hurry", model, trainer, table="pima", families=["gbm", "linear", "nn"],
                            time_limit=1e-3, workspace=home / "workspace.duckdb", home=home, threads=1,
                            say=said.append)
    assert [m.family for m in result.members] == ["nn"]
    assert any("skipped gbm" in s for s in said) and any("skipped linear" in s for s in said)
    assert any("skipped (the time limit ran out" in n for n in result.notes)
    meta = json.loads((home / "models" / "hurry" / "metadata.json").read_text())
    assert meta["refit"]["members"]["hurry-nn"].startswith("not refit")
    nn = json.loads((home / "models" / "hurry-nn" / "metadata.json").read_text())
    assert "refit" not in nn and nn["rows"]["train"] == 576  # the first fit stays
