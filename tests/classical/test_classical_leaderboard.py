"""The leaderboard: neural and classical models evaluated on the same table, ranked, with skips explained."""

from __future__ import annotations

import pytest
from test_classical_helpers import load_tables, write_spec
from threadpoolctl import threadpool_limits

from specml.classical.leaderboard import evaluate_any, leaderboard
from specml.classical.train import train_estimator
from specml.data.workspace import Workspace
from testkit import ROOT


@pytest.fixture(scope="module")
def board_env(tmp_path_factory):
    import torch

    from specml import api

    torch.set_num_threads(1)
    home = tmp_path_factory.mktemp("home")
    specs = tmp_path_factory.mktemp("specs")
    ws = Workspace(home / "ws.duckdb")
    load_tables(ws)
    trainer = (ROOT / "examples" / "pima_mlp" / "trainer.yaml").read_text().replace("epochs: 100", "epochs: 2")
    api.train(ROOT / "examples" / "pima_mlp" / "model.yaml", write_spec(specs, "trainer", trainer), table="pima",
              name="mlp", workspace=ws, home=home, verbose=False)
    for name, typ, target, table in (("lr", "LogisticRegression", "outcome", "pima"),
                                     ("xgb", "xgboost.XGBClassifier", "outcome", "pima"),
                                     ("ridge", "Ridge", "progression", "diabetes")):
        spec = write_spec(specs, name, f"estimator: {{type: {typ}}}\ntarget: {target}\nverbose: 0\n")
        train_estimator(spec, table=table, name=name, workspace=ws, home=home)
    yield home, ws
    ws.close()


@pytest.mark.slow  # trains a neural model and classical ones
def test_neural_and_classical_side_by_side(board_env):
    home, ws = board_env
    board = leaderboard("pima", workspace=ws, home=home)
    assert board["task"] == "binary" and board["target"] == "outcome" and board["metric"] == "auc"
    rows = board["rows"]
    assert {r["name"]: r["kind"] for r in rows} == {"mlp": "neural", "lr": "classical", "xgb": "classical"}
    values = [r["value"] for r in rows]
    assert values == sorted(values, reverse=True) and [r["rank"] for r in rows] == [1, 2, 3]
    for r in rows:
        assert r["size_bytes"] > 0 and r["fit_s"] > 0 and r["predict_s"] > 0 and r["rows"] == 768
        assert r["value"] == evaluate_any(r["name"], "pima", workspace=ws, home=home)["metrics"]["auc"]
    assert board["skipped"] == [{"name": "ridge", "reason": "table 'pima' lacks column(s) sex, bp, s1, s2, s3, s4, "
                                                            "s5, s6, progression"}]


def test_explicit_models_metric_and_task_mismatch(board_env):
    home, ws = board_env
    board = leaderboard("pima", ["lr", "xgb", "missing"], workspace=ws, home=home, metric="log_loss")
    assert board["metric"] == "log_loss" and board["higher_is_better"] is False
    assert [r["value"] for r in board["rows"]] == sorted(r["value"] for r in board["rows"])
    assert [s["name"] for s in board["skipped"]] == ["missing"]
    # a regression model on its own table: the binary ones there lack its columns
    board = leaderboard("diabetes", workspace=ws, home=home)
    assert [r["name"] for r in board["rows"]] == ["ridge"] and board["metric"] == "rmse"


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """One BLAS/OpenMP thread (HistGradientBoosting, LightGBM): fast and steady on a shared 2-core machine."""
    with threadpool_limits(1):
        yield
