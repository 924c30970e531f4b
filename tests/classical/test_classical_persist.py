"""Classical models are saved in their libraries' own formats or skops; pickles are never loaded."""

from __future__ import annotations

import json
import pickle

import pytest
from test_classical_helpers import write_spec
from threadpoolctl import threadpool_limits

from specml.artifact import ArtifactError, ModelArtifact
from specml.classical import persist
from specml.classical.predict import evaluate_classical, load_classical
from specml.classical.train import train_estimator
from specml.data.workspace import Workspace
from testkit import PIMA


class Boom:
    def __reduce__(self):
        return (print, ("pickle code ran",))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    ws = Workspace(home / "ws.duckdb")
    ws.load(PIMA, "pima")
    spec_dir = tmp_path_factory.mktemp("specs")
    for name, typ in (("rf", "RandomForestClassifier"), ("xgb", "xgboost.XGBClassifier"),
                      ("lgbm", "lightgbm.LGBMClassifier")):
        spec = write_spec(spec_dir, name, f"estimator: {{type: {typ}, params: {{n_estimators: 10, n_jobs: 1}}}}\n"
                                          "target: outcome\nverbose: 0\n")
        train_estimator(spec, table="pima", name=name, workspace=ws, home=home)
    yield home, ws
    ws.close()


@pytest.mark.parametrize("name, file, fmt", [("rf", "model.skops", "skops"), ("xgb", "model.json", "xgboost-json"),
                                             ("lgbm", "model.txt", "lightgbm-text")])
def test_native_formats(trained, name, file, fmt):
    home, _ = trained
    directory = ModelArtifact.for_name(name, home).directory
    meta = json.loads((directory / "metadata.json").read_text())
    assert meta["files"]["model"] == {"file": file, "format": fmt, "sha256": persist.sha256(directory / file)}
    assert meta["files"]["preprocessor"]["file"] == "preprocess.skops"
    assert not [p for p in directory.iterdir() if p.suffix in (".pkl", ".joblib", ".pickle")]
    if fmt == "xgboost-json":
        json.loads((directory / file).read_text())  # real JSON
    if fmt == "lightgbm-text":
        assert (directory / file).read_text().startswith("tree")


@pytest.mark.parametrize("name, file", [("rf", "model.skops"), ("xgb", "model.json"), ("lgbm", "model.txt"),
                                        ("rf", "preprocess.skops")])
def test_a_pickle_placed_as_the_model_file_is_refused(trained, tmp_path, capfd, name, file):
    home, ws = trained
    directory = ModelArtifact.for_name(name, home).directory
    original = (directory / file).read_bytes()
    try:
        (directory / file).write_bytes(pickle.dumps(Boom()))
        with pytest.raises(ArtifactError, match="is a Python pickle; specml never loads pickles"):
            load_classical(name, home)
        with pytest.raises(ArtifactError, match="pickle"):
            evaluate_classical(name, "pima", workspace=ws, home=home)
        assert "pickle code ran" not in capfd.readouterr().out
    finally:
        (directory / file).write_bytes(original)
    load_classical(name, home)  # restored: loads again


def test_metadata_pointing_at_a_pickle_file_is_refused(trained):
    home, _ = trained
    artifact = ModelArtifact.for_name("rf", home)
    meta = artifact.read_metadata()
    (artifact.directory / "model.pkl").write_bytes(pickle.dumps(Boom()))
    bad = json.loads(json.dumps(meta))
    bad["files"]["model"]["file"] = "model.pkl"
    artifact.write_metadata(bad)
    try:
        with pytest.raises(ArtifactError, match="never pickle or joblib"):
            load_classical("rf", home)
    finally:
        artifact.write_metadata(meta)
        (artifact.directory / "model.pkl").unlink()


def test_a_changed_model_file_is_refused(trained):
    home, _ = trained
    path = ModelArtifact.for_name("xgb", home).directory / "model.json"
    original = path.read_bytes()
    try:
        path.write_bytes(original + b" ")
        with pytest.raises(ArtifactError, match="has changed since it was saved"):
            load_classical("xgb", home)
    finally:
        path.write_bytes(original)


def test_untrusted_types_are_refused_on_save(tmp_path):
    import numpy as np
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.linear_model import LogisticRegression

    X = np.random.default_rng(0).normal(size=(60, 3))
    model = CalibratedClassifierCV(LogisticRegression(), cv=3).fit(X, (X[:, 0] > 0).astype(int))
    with pytest.raises(ArtifactError, match="does not load"):
        persist.save_model(tmp_path, "sklearn", model)
    assert not (tmp_path / "model.skops").exists()


def test_a_neural_model_is_not_loaded_as_classical(tmp_path):
    artifact = ModelArtifact.for_name("neural", tmp_path)
    artifact.directory.mkdir(parents=True)
    artifact.write_metadata({"task": "binary"})
    with pytest.raises(ArtifactError, match="not a classical model"):
        load_classical("neural", tmp_path)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """One BLAS/OpenMP thread (HistGradientBoosting, LightGBM): fast and steady on a shared 2-core machine."""
    with threadpool_limits(1):
        yield
