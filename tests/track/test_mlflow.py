"""MLflow tracking of real trainings into a local SQLite store, read back with MLflow's own client.

``tracking: {mlflow: ...}`` in a trainer spec and ``specml train --mlflow URI`` log the resolved specs as
parameters, per-epoch metrics, the run and model directories, and a pyfunc model whose predictions are
``specml predict``'s. Without MLflow, asking for it is a one-line error.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

import modelzoo
from testkit import PIMA_MLP, failed, ok

torch.set_num_threads(1)

TRAINER = ("optimizer: {type: torch.optim.Adam, lr: 0.01}\n"
           "config: {epochs: 3, batch_size: 64, seed: 3, verbose: false, make_plots: false, tensorboard: false}\n")


def client(uri: str):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def only_run(uri: str, experiment: str):
    c = client(uri)
    exp = c.get_experiment_by_name(experiment)
    (run,) = c.search_runs([exp.experiment_id])
    return c, c.get_run(run.info.run_id)


@pytest.mark.slow  # a training and an MLflow store
def test_trainer_spec_tracking_logs_params_metrics_artifacts_and_pyfunc(cli, pima_home, tmp_path):
    pytest.importorskip("mlflow")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    trainer = tmp_path / "trainer.yaml"
    trainer.write_text(TRAINER + f"tracking: {{mlflow: {{uri: '{uri}', experiment: pima-exp}}}}\n")
    out = ok(cli("train", "--model-spec", PIMA_MLP / "model.yaml", "--trainer-spec", trainer, "--table", "pima",
                 "--name", "tracked", home=pima_home))
    assert f"logged to MLflow {uri}" in out.stdout
    c, run = only_run(uri, "pima-exp")
    params = run.data.params
    assert params["trainer_spec.config.epochs"] == "3" and params["table"] == "pima"
    assert "glucose" in params["model_spec.inputs.patient_data.columns"]
    assert "trainer_spec.tracking.mlflow.uri" not in params  # where a run is tracked is not a setting of it
    history = c.get_metric_history(run.info.run_id, "train_loss")
    assert [m.step for m in history] == [1, 2, 3]
    assert {"val_auc", "best_val_loss"} <= set(run.data.metrics)
    top = {a.path for a in c.list_artifacts(run.info.run_id)}
    assert {"model", "specml_model", "specml_run"} <= top
    assert "metadata.json" in {a.path.split("/")[-1] for a in c.list_artifacts(run.info.run_id, "specml_model")}
    assert run.info.status == "FINISHED"

    import mlflow.pyfunc
    import pyarrow.csv

    from testkit import PIMA

    loaded = mlflow.pyfunc.load_model(f"{run.info.artifact_uri}/model")
    frame = pyarrow.csv.read_csv(PIMA).to_pandas()
    got = loaded.predict(frame)
    want = modelzoo.predicted(pima_home, "tracked", "pima")
    assert list(got.columns) == want.column_names
    np.testing.assert_allclose(got["probability"].to_numpy(), want.column("probability").to_numpy(), atol=1e-12)
    assert got["prediction"].tolist() == want.column("prediction").to_pylist()


@pytest.mark.slow  # LightGBM's import and a fit
def test_mlflow_option_logs_a_classical_model(cli, pima_home, tmp_path):
    pytest.importorskip("mlflow")
    modelzoo.pima_zoo(pima_home)
    spec = tmp_path / "lgbm.yaml"
    spec.write_text(modelzoo.LIGHTGBM)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    ok(cli("train", "--estimator-spec", spec, "--table", modelzoo.TABLE, "--name", "gbm", "--mlflow", uri,
           home=pima_home))
    c, run = only_run(uri, "specml")
    assert run.data.params["estimator_spec.estimator.type"] == "lightgbm.LGBMClassifier"
    assert "test_auc" in run.data.metrics
    import mlflow.pyfunc

    frame = modelzoo.predicted(pima_home, "gbm")  # the same rows, specml's answer
    table = pytest.importorskip("pyarrow").table(modelzoo.columns_of(pima_home)).to_pandas()
    got = mlflow.pyfunc.load_model(f"{run.info.artifact_uri}/model").predict(table)
    np.testing.assert_allclose(got["probability"].to_numpy(), frame.column("probability").to_numpy(), atol=1e-12)


def test_without_mlflow_the_option_is_a_clear_error(cli, pima_home, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "mlflow", None)  # as if the extra were not installed
    trainer = tmp_path / "trainer.yaml"
    trainer.write_text(TRAINER)
    message = failed(cli("train", "--model-spec", PIMA_MLP / "model.yaml", "--trainer-spec", trainer, "--table",
                         "pima", "--name", "never", "--mlflow", f"sqlite:///{tmp_path / 'x.db'}", home=pima_home))
    assert "pip install 'specml[mlflow]'" in message
    assert not (pima_home / "models" / "never").exists()


def test_a_uri_mlflow_cannot_use_is_a_clear_error(cli, pima_home, tmp_path):
    pytest.importorskip("mlflow")
    trainer = tmp_path / "trainer.yaml"
    trainer.write_text(TRAINER)
    message = failed(cli("train", "--model-spec", PIMA_MLP / "model.yaml", "--trainer-spec", trainer, "--table",
                         "pima", "--name", "never", "--mlflow", "nosuchscheme://somewhere", home=pima_home))
    assert "MLflow tracking URI 'nosuchscheme://somewhere'" in message


def test_flatten_keys_and_limits():
    from specml.track.mlflow import flatten

    flat = flatten({"a": {"b": [1, 2], "c": [{"d": None}]}, "e": "x" * 7000})
    assert flat == {"a.b": "[1, 2]", "a.c.0.d": "null", "e": "x" * 6000}


@pytest.mark.slow  # MLflow's import and a fresh SQLite store
def test_params_past_mlflows_batch_limit_are_all_logged(tmp_path):
    pytest.importorskip("mlflow")
    from specml.track.mlflow import MlflowTracker

    tracker = MlflowTracker(f"sqlite:///{tmp_path / 'p.db'}", "many", run_name="many")
    tracker._open({f"k{i}": str(i) for i in range(250)})  # MLflow takes at most 100 per call
    tracker.log_metrics({"a": 1.0, "nan": float("nan"), "flag": True, "text": "x"}, 1)
    run = tracker.client.get_run(tracker.run_id)
    assert len(run.data.params) == 250 and run.data.params["k249"] == "249"
    assert run.data.metrics == {"a": 1.0}  # NaN, switches and text are not metrics
