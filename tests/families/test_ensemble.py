"""Ensemble models: greedy selection, and a saved ensemble that predicts its members' weighted average."""

from __future__ import annotations

import json

import numpy as np
import pytest

from specml import api
from specml.artifact import ArtifactError
from specml.classical.leaderboard import leaderboard
from specml.classical.train import train_estimator
from specml.data.split import holdout
from specml.ensemble import class_ids, greedy_selection, load_ensemble, save_ensemble


def test_greedy_selection_weights_the_better_member():
    rng = np.random.default_rng(0)
    y = rng.normal(size=400)
    good = y + rng.normal(scale=0.3, size=400)
    bad = y + rng.normal(scale=3.0, size=400)
    other = y + rng.normal(scale=0.3, size=400)  # errors independent of good's: blending the two helps
    weights = greedy_selection({"bad": bad, "good": good, "other": other}, y, "regression")
    assert abs(sum(weights.values()) - 1.0) < 1e-12
    assert "bad" not in weights and weights["good"] > 0.2 and weights["other"] > 0.2
    alone = greedy_selection({"bad": bad, "good": good}, y, "regression")
    assert alone == {"good": 1.0}
    p = np.clip(y > 0, 0.1, 0.9).astype(float)  # classification: log loss decides
    labels = (y > 0).astype(int)
    assert greedy_selection({"flat": np.full(400, 0.5), "sharp": p}, labels, "binary") == {"sharp": 1.0}


def test_class_ids_match_as_text():
    assert class_ids([1, 0, "1"], [0, 1]).tolist() == [1, 0, 1]
    with pytest.raises(Exception, match="class the ensemble was not trained on"):
        class_ids([2], [0, 1])


def _member(tmp_path, home, name, estimator, rows):
    spec = tmp_path / f"{name}.yaml"
    spec.write_text(f"estimator: {estimator}\ntarget: outcome\nverbose: 0\n", encoding="utf-8")
    return train_estimator(spec, table="pima", name=name, workspace=home / "workspace.duckdb", home=home,
                           verbose=False, rows=rows)


@pytest.mark.slow
def test_ensemble_round_trip_equals_the_weighted_members(pima_home, tmp_path):
    home = pima_home
    ws_path = home / "workspace.duckdb"
    y = np.asarray(api._open_workspace(str(ws_path), read_only=True).read_columns("pima", ["outcome"])
                   .column(0).to_pylist())
    rows = holdout(len(y), 0.2, 7, y)
    a = _member(tmp_path, home, "ens_lr", "{type: LogisticRegression, params: {max_iter: 500}}", rows)
    b = _member(tmp_path, home, "ens_gbm", "{type: LGBMClassifier, params: {n_estimators: 20, n_jobs: 1, "
                                           "verbose: -1}}", rows)
    assert a.rows == b.rows == {"train": len(rows[0]), "validation": len(rows[1]), "test": 0}
    save_ensemble("ens", {"ens_lr": 0.25, "ens_gbm": 0.75}, task="binary", target="outcome", classes=[0, 1],
                  home=home, table="pima")
    meta = json.loads((home / "models" / "ens" / "metadata.json").read_text())
    assert meta["kind"] == "ensemble" and [m["weight"] for m in meta["members"]] == [0.25, 0.75]
    assert not list((home / "models" / "ens").glob("*.pkl"))  # JSON only

    got = api.predict("ens", "pima", workspace=ws_path, home=home)
    p_lr = api.predict("ens_lr", "pima", workspace=ws_path, home=home).column("probability").to_numpy()
    p_gbm = api.predict("ens_gbm", "pima", workspace=ws_path, home=home).column("probability").to_numpy()
    assert np.allclose(got.column("probability").to_numpy(), 0.25 * p_lr + 0.75 * p_gbm)
    assert got.column("prediction").to_pylist() == [int(p > 0.5) for p in 0.25 * p_lr + 0.75 * p_gbm]

    report = api.evaluate("ens", "pima", workspace=ws_path, home=home)
    assert report["task"] == "binary" and 0.5 < report["metrics"]["auc"] <= 1.0
    board = leaderboard("pima", ["ens", "ens_lr", "ens_gbm"], workspace=ws_path, home=home)
    kinds = {r["name"]: r["kind"] for r in board["rows"]}
    assert kinds == {"ens": "ensemble", "ens_lr": "classical", "ens_gbm": "classical"}

    # a member trained again after the ensemble was built is refused, not silently blended
    from specml.track.names import claim

    claim("ens_lr", home, replace=True)
    _member(tmp_path, home, "ens_lr", "{type: LogisticRegression, params: {max_iter: 500, C: 0.01}}", rows)
    with pytest.raises(ArtifactError, match="trained again after the ensemble was built"):
        load_ensemble("ens", home)
