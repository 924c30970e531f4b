"""Each estimator family trains, evaluates, predicts and reloads, on Pima and scikit-learn's bundled data."""

from __future__ import annotations

import numpy as np
import pytest
from test_classical_helpers import write_spec
from threadpoolctl import threadpool_limits

from specml.artifact import ModelArtifact
from specml.classical.predict import evaluate_classical, load_classical, predict_classical
from specml.classical.train import train_estimator

CASES = [
    # (model name, table, target, estimator type, params, task)
    ("logreg", "pima", "outcome", "LogisticRegression", {"max_iter": 500}, "binary"),
    ("rf_reg", "diabetes", "progression", "RandomForestRegressor", {"n_estimators": 20, "n_jobs": 1}, "regression"),
    ("xgb_wine", "wine", "cultivar", "xgboost.XGBClassifier", {"n_estimators": 30, "max_depth": 3, "n_jobs": 1},
     "multiclass"),
    ("xgb_reg", "diabetes", "progression", "xgboost.XGBRegressor", {"n_estimators": 40, "n_jobs": 1}, "regression"),
    ("lgbm_pima", "pima", "outcome", "lightgbm.LGBMClassifier", {"n_estimators": 40, "n_jobs": 1}, "binary"),
    ("lgbm_reg", "diabetes", "progression", "lightgbm.LGBMRegressor", {"n_estimators": 40, "n_jobs": 1},
     "regression"),
    ("logreg_churn", "churn", "churned", "LogisticRegression", {}, "binary"),   # strings + NULLs: one-hot
    ("hgb_churn", "churn", "churned", "HistGradientBoostingClassifier", {"max_iter": 20}, "binary"),  # ordinal
    ("cat_wine", "wine", "cultivar", "catboost.CatBoostClassifier", {"iterations": 30, "depth": 3,
                                                                      "thread_count": 1}, "multiclass"),
]




@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_family_trains_evaluates_predicts_and_reloads(env, tmp_path, case):
    name, table, target, typ, params, task = case
    if typ.startswith("catboost."):
        pytest.importorskip("catboost")
    home, ws = env
    features = "" if table != "churn" else "features: [usage, plan]\n"
    spec = write_spec(tmp_path, name, f"estimator: {{type: {typ}, params: {params}}}\ntarget: {target}\n{features}"
                                      "verbose: 0\n")
    result = train_estimator(spec, table=table, name=name, workspace=ws, home=home)
    assert result.task == task
    meta = ModelArtifact.for_name(name, home).read_metadata()
    assert meta["kind"] == "classical" and meta["task"] == task and meta["best"]["value"] is not None
    assert set(meta["metrics"]) == {"train", "validation", "test"}
    assert meta["timings"]["fit_s"] > 0 and meta["files"]["model"]["format"] != "pickle"

    # a fresh load scores the test rows exactly as the trained model did
    data = ws.read_columns(table, ws.columns(table))
    ws.write_table(f"{name}_test", data.take(result.split.test))
    report = evaluate_classical(name, f"{name}_test", workspace=ws, home=home)
    assert report["rows"] == len(result.split.test) and report["task"] == task
    for key, value in meta["metrics"]["test"].items():
        assert report["metrics"][key] == pytest.approx(value, rel=1e-9, abs=1e-12), key

    out = predict_classical(name, f"{name}_test", workspace=ws, home=home, output_table=f"{name}_pred")
    assert out.column_names[0] == "row_number" and "prediction" in out.column_names
    assert target in out.column_names  # non-feature columns are kept by default
    assert ws.row_count(f"{name}_pred") == len(result.split.test)
    model = load_classical(name, home)
    s = model.scores(data.take(result.split.test))
    if task == "binary":
        assert "probability" in out.column_names
        assert np.allclose(out.column("probability").to_numpy(), s)
    elif task == "multiclass":
        assert {"prob_a", "prob_b", "prob_c", "probability"} <= set(out.column_names)
        assert out.column("prediction").to_pylist() == [["a", "b", "c"][i] for i in s.argmax(axis=1)]
        assert report["metrics"]["accuracy"] > 0.8
    else:
        assert np.allclose(out.column("prediction").to_numpy(), s)
        assert report["metrics"]["r2"] > 0.1
    if task == "binary" and table == "pima":
        assert report["metrics"]["auc"] > 0.7


def test_gbm_early_stopping_uses_the_validation_split(env, tmp_path):
    home, ws = env
    spec = write_spec(tmp_path, "es", "estimator:\n  type: xgboost.XGBClassifier\n  params: {n_estimators: 2000, "
                                      "learning_rate: 0.3, n_jobs: 1}\ntarget: outcome\nearly_stopping: {rounds: 5}\n"
                                      "verbose: 0\n")
    train_estimator(spec, table="pima", name="es", workspace=ws, home=home)
    meta = ModelArtifact.for_name("es", home).read_metadata()
    es = meta["early_stopping"]
    assert es["best_iteration"] is not None and es["iterations"] < 2000
    assert es["iterations"] == es["best_iteration"] + 1 + 5  # stopped 5 rounds after the best


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """One BLAS/OpenMP thread (HistGradientBoosting, LightGBM): fast and steady on a shared 2-core machine."""
    with threadpool_limits(1):
        yield
