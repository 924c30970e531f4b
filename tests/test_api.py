"""The Python verbs (``specml.api``) on the real Pima data: train, evaluate, predict, load, list, show.

One specml home per module (``SPECML_HOME`` -> a tmp folder) holds the workspace, with Pima loaded and
split 80/20 stratified on ``outcome`` (seed 42), and the models. Trainings are kept short (15 epochs).
"""

from __future__ import annotations

import hashlib
import json
import pickle
import zlib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
import torch
from safetensors.torch import load_file

from specml import api
from specml.artifact import ModelArtifact
from specml.data.tensors import validation_split
from specml.data.workspace import DataError, Workspace
from testkit import PIMA, PIMA_MLP, ROOT

torch.set_num_threads(1)

EXAMPLE = PIMA_MLP
VARIANTS = ROOT / "tests" / "fixtures" / "variants"
FEATURES = ["pregnancies", "glucose", "blood_pressure", "skin_thickness", "insulin", "bmi", "diabetes_pedigree", "age"]
EPOCHS = 15


def short_trainer(path: Path, epochs: int = EPOCHS, **replace: str) -> Path:
    """examples/pima_mlp/trainer.yaml with fewer epochs (and any other line replaced)."""
    text = (EXAMPLE / "trainer.yaml").read_text(encoding="utf-8")
    assert "epochs: 100" in text
    text = text.replace("epochs: 100", f"epochs: {epochs}")
    for old, new in replace.items():
        assert old in text, old
        text = text.replace(old, new)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """SPECML_HOME -> a fresh folder; its default workspace holds pima, pima_train, pima_test."""
    home = tmp_path_factory.mktemp("home")
    specs = tmp_path_factory.mktemp("specs")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SPECML_HOME", str(home))
        mp.delenv("SPECML_WORKSPACE", raising=False)
        ws = Workspace()
        assert Path(ws.path) == home / "workspace.duckdb"
        assert ws.load(PIMA, "pima") == 768
        assert ws.split("pima", test_size=0.2, stratify="outcome", seed=42) == ("pima_train", "pima_test", 614, 154)
        try:
            yield {"home": home, "specs": specs, "ws": ws}
        finally:
            ws.close()


@pytest.fixture(scope="module")
def m1(env):
    trainer = short_trainer(env["specs"] / "trainer.yaml")
    result = api.train(EXAMPLE / "model.yaml", trainer, table="pima_train", name="m1", workspace=env["ws"],
                       verbose=False)
    return {"result": result, "trainer": trainer, "dir": env["home"] / "models" / "m1"}


# ----------------------------------------------------------------------------------------------
# train


def test_train_writes_the_artifact(env, m1):
    d, result = m1["dir"], m1["result"]
    assert result.directory == d and result.name == "m1" and result.task == "binary"
    assert sorted(p.name for p in d.iterdir()) == ["metadata.json", "model.safetensors", "run.json"]
    # one home per fact: the specs, exactly as given, are in the run directory the model points to
    specs = result.run_dir / "specs"
    assert (specs / "model.yaml").read_bytes() == (EXAMPLE / "model.yaml").read_bytes()
    assert (specs / "trainer.yaml").read_bytes() == m1["trainer"].read_bytes()
    assert ModelArtifact(d).model_spec_path == specs / "model.yaml"
    assert len(result.history["train_loss"]) == EPOCHS and len(result.history["val_loss"]) == EPOCHS
    assert all(np.isfinite(result.history["train_loss"]))


def test_train_metadata(env, m1):
    meta = json.loads((m1["dir"] / "metadata.json").read_text())
    assert meta["name"] == "m1" and meta["task"] == "binary"
    assert meta["table"] == "pima_train" and meta["target"] == "outcome"
    assert meta["rows"] == {"total": 614, "train": 491, "validation": 123}
    assert meta["inputs"] == {"patient_data": FEATURES}
    assert meta["epochs"] == {"run": EPOCHS, "planned": EPOCHS, "stopped_early": False}
    assert meta["seed"] == 42
    # the metrics of the best epoch and the last one
    best, final = meta["metrics"]["best"], meta["metrics"]["final"]
    for key in ("train_loss", "val_loss", "val_accuracy", "val_auc"):
        assert isinstance(best[key], float) and isinstance(final[key], float), key
    assert 1 <= meta["metrics"]["best_epoch"] <= EPOCHS
    assert meta["best"]["metric"] == "val_loss" and meta["best"]["value"] == pytest.approx(best["val_loss"])
    assert best["val_loss"] == pytest.approx(min(m1["result"].history["val_loss"]))
    # the spec hashes are of the exact files
    assert meta["spec_hashes"] == {"model": hashlib.sha256((EXAMPLE / "model.yaml").read_bytes()).hexdigest(),
                                   "trainer": hashlib.sha256(m1["trainer"].read_bytes()).hexdigest()}
    assert meta["versions"]["torch"] == torch.__version__ and "numpy" in meta["versions"]
    # preprocessing: the target's classes, and standardisation fitted on the training rows only
    prep = meta["preprocessing"]
    (target,) = prep["targets"].values()
    assert target["column"] == "outcome" and target["task"] == "binary"
    assert target["classes"] == [0, 1]
    state = prep["inputs"]["patient_data"]
    assert state["columns"] == FEATURES and state["normalize"] == "standard"
    data = env["ws"].read_columns("pima_train", [*FEATURES, "outcome"])
    labels = data.column("outcome").to_numpy()
    train_rows, val_rows = validation_split(614, 0.2, 42, labels)
    assert len(train_rows) == 491 and len(val_rows) == 123
    x = np.column_stack([data.column(c).to_numpy().astype(np.float64) for c in FEATURES])
    np.testing.assert_allclose(state["center"], x[train_rows].mean(axis=0), rtol=1e-9)
    np.testing.assert_allclose(state["scale"], x[train_rows].std(axis=0), rtol=1e-9)
    assert not np.allclose(state["center"], x.mean(axis=0), rtol=1e-6)  # the validation rows were left out


def test_same_seed_trains_identical_weights(env, m1):
    again = api.train(EXAMPLE / "model.yaml", m1["trainer"], table="pima_train", name="m1_again",
                      workspace=env["ws"], verbose=False)
    a = load_file(str(m1["dir"] / "model.safetensors"))
    b = load_file(str(again.directory / "model.safetensors"))
    assert a.keys() == b.keys() and len(a) == 6
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert again.history["val_loss"] == m1["result"].history["val_loss"]


# ----------------------------------------------------------------------------------------------
# evaluate, predict


def test_evaluate_on_the_test_table(env, m1):
    report = api.evaluate("m1", "pima_test", workspace=env["ws"])
    assert report["model"] == "m1" and report["table"] == "pima_test" and report["rows"] == 154
    assert report["task"] == "binary"
    metrics = report["metrics"]
    for key in ("accuracy", "precision", "recall", "f1", "auc", "log_loss"):
        assert isinstance(metrics[key], float), key
    assert metrics["auc"] > 0.75
    assert 0.6 < metrics["accuracy"] <= 1.0 and 0 < metrics["log_loss"] < 1.0
    # the same numbers as scikit-learn on predict's probabilities
    from sklearn.metrics import accuracy_score, roc_auc_score

    preds = api.predict("m1", "pima_test", workspace=env["ws"])
    y = np.asarray(preds.column("outcome").to_pylist())
    p = np.asarray(preds.column("probability").to_pylist())
    assert metrics["auc"] == pytest.approx(roc_auc_score(y, p), abs=1e-6)
    assert metrics["accuracy"] == pytest.approx(accuracy_score(y, p > 0.5), abs=1e-9)


def _check_predictions(table: pa.Table, truth: list[int]) -> None:
    assert table.num_rows == 154
    assert table.column_names[0] == "row_number"
    assert {"row_number", "outcome", "probability", "prediction"} <= set(table.column_names)
    assert not set(FEATURES) & set(table.column_names)  # features are not copied by default
    assert table.column("row_number").to_pylist() == list(range(154))
    assert table.column("outcome").to_pylist() == truth
    prob = np.asarray(table.column("probability").to_pylist(), dtype=np.float64)
    pred = np.asarray(table.column("prediction").to_pylist())
    assert np.isfinite(prob).all() and ((prob >= 0) & (prob <= 1)).all()
    assert set(pred.tolist()) <= {0, 1} and len(set(pred.tolist())) == 2
    assert np.array_equal(pred, (prob >= 0.5).astype(int))
    assert 0 < prob.std()  # not a constant


def test_predict_writes_a_table_and_files(env, m1, tmp_path):
    ws = env["ws"]
    truth = ws.read_columns("pima_test", ["outcome"]).column("outcome").to_pylist()
    result = api.predict("m1", "pima_test", output_table="preds", output=tmp_path / "out" / "preds.csv",
                         workspace=ws)
    _check_predictions(result, truth)
    _check_predictions(ws.sql("SELECT * FROM preds ORDER BY row_number"), truth)
    _check_predictions(pacsv.read_csv(tmp_path / "out" / "preds.csv"), truth)
    api.predict("m1", "pima_test", output=tmp_path / "preds.parquet", workspace=ws)
    from_parquet = pq.read_table(tmp_path / "preds.parquet")
    _check_predictions(from_parquet, truth)
    np.testing.assert_allclose(from_parquet.column("probability").to_numpy(),
                               result.column("probability").to_numpy(), rtol=0, atol=1e-7)
    assert not list(tmp_path.rglob("*.tmp"))
    with pytest.raises(DataError, match=r"\.csv or \.parquet"):
        api.predict("m1", "pima_test", output=tmp_path / "preds.xlsx", workspace=ws)


def test_predict_never_replaces_a_table_or_file_without_replace(env, m1, tmp_path):
    ws = env["ws"]
    before = ws.read_columns("pima_test", ["outcome"]).num_rows
    with pytest.raises(DataError, match="'pima_test' already exists; pass --replace"):
        api.predict("m1", "pima_test", output_table="pima_test", workspace=ws)
    assert "prediction" not in ws.columns("pima_test") and ws.read_columns("pima_test", ["outcome"]).num_rows == before
    out = tmp_path / "p.csv"
    out.write_text("keep me\n")
    with pytest.raises(DataError, match="already exists; pass --replace"):
        api.predict("m1", "pima_test", output=out, workspace=ws)
    assert out.read_text() == "keep me\n"
    with pytest.raises(DataError, match="is a directory"):
        api.predict("m1", "pima_test", output=tmp_path, workspace=ws)
    api.predict("m1", "pima_test", output_table="twice", workspace=ws)
    api.predict("m1", "pima_test", output_table="twice", output=out, workspace=ws, replace=True)
    assert out.read_text().startswith('"row_number"')


def test_evaluate_figures_stay_home_whatever_the_table_is_called(env, m1):
    ws = env["ws"]
    ws.sql('CREATE TABLE "../../../outside/x" AS SELECT * FROM pima_test')
    report = api.evaluate("m1", "../../../outside/x", workspace=ws)
    home = env["home"].resolve()
    assert report["figures"] and all(home in Path(f).resolve().parents for f in report["figures"])
    assert not (home.parent / "outside").exists()


def test_a_one_row_table_is_scored_but_not_trained_on(env, m1):
    ws = env["ws"]
    ws.sql("CREATE TABLE pima_one AS SELECT * FROM pima_test LIMIT 1")
    assert api.evaluate("m1", "pima_one", workspace=ws)["rows"] == 1
    assert api.predict("m1", "pima_one", workspace=ws).num_rows == 1
    with pytest.raises(DataError, match="validation_split 0.2 leaves no training rows out of 1"):
        api.train(EXAMPLE / "model.yaml", m1["trainer"], table="pima_one", name="one", workspace=ws, verbose=False)


def test_predict_keeps_named_columns(env, m1):
    result = api.predict("m1", "pima_test", keep=["age", "outcome"], workspace=env["ws"])
    assert result.column_names == ["row_number", "age", "outcome", "probability", "prediction", "prob_0", "prob_1"]


def test_evaluate_says_what_it_measured_and_on_which_rows(env, m1):
    """The validation-chosen threshold is stored at training; evaluate reports the confusion matrix, support and
    threshold, applies ``f1`` / ``youden``, and counts the rows the model trained or validated on."""
    chosen = json.loads((m1["dir"] / "metadata.json").read_text())["threshold"]
    assert chosen["method"] == "f1" and 0 < chosen["value"] < 1 and 0 < chosen["youden"] < 1
    test = api.evaluate("m1", "pima_test", workspace=env["ws"], figures=False)
    assert test["threshold"] == 0.5 and test["seen"]["seen"] == 0
    assert test["chosen_threshold"] == {"f1": chosen["value"], "youden": chosen["youden"]}
    assert test["support"] == {"0": 100, "1": 54} and np.sum(test["confusion_matrix"]) == 154
    at_f1 = api.evaluate("m1", "pima_test", workspace=env["ws"], figures=False, threshold="f1")
    assert at_f1["threshold"] == chosen["value"] and at_f1["metrics"]["auc"] == test["metrics"]["auc"]
    preds = api.predict("m1", "pima_test", workspace=env["ws"], threshold="f1")
    prob = preds.column("probability").to_numpy()
    assert np.array_equal(preds.column("prediction").to_numpy(), (prob > chosen["value"]).astype(int))
    whole = api.evaluate("m1", "pima", workspace=env["ws"], figures=False)
    assert whole["seen"] == {"rows": 768, "seen": 614, "training_table": "pima_train", "changed": False}


def test_load_trained_without_pickle(env, m1, monkeypatch):
    files = [p.name for p in m1["dir"].rglob("*") if p.is_file()]
    assert not [f for f in files if f.endswith((".pt", ".pth", ".pkl", ".pickle", ".bin", ".ckpt"))], files

    def refuse(*a, **k):
        raise AssertionError("pickle was used to load a trained model")

    monkeypatch.setattr(torch, "load", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    trained = api.load_trained("m1")
    assert trained.name == "m1" and trained.metadata["task"] == "binary"
    assert not trained.model.training
    stored = load_file(str(m1["dir"] / "model.safetensors"))
    state = trained.model.state_dict()
    assert stored.keys() == state.keys()
    for k, v in stored.items():
        assert torch.equal(state[k], v), k
    assert trained.preprocessor.target.classes == [0, 1]


def test_list_and_show(env, m1):
    rows = {r["name"]: r for r in api.list_models()}
    assert "m1" in rows
    assert rows["m1"]["task"] == "binary" and rows["m1"]["table"] == "pima_train"
    assert rows["m1"]["best_metric"] == "val_loss" and isinstance(rows["m1"]["best_value"], float)
    shown = api.show_model("m1")
    assert shown["directory"] == str(m1["dir"]) and shown["task"] == "binary"
    assert isinstance(shown["checkpoints"], list)


def test_unknown_model(env):
    from specml.artifact import ArtifactError

    with pytest.raises(ArtifactError, match="'nope' not found"):
        api.evaluate("nope", "pima_test", workspace=env["ws"])
    with pytest.raises(ArtifactError, match="not found"):
        api.show_model("nope")


# ----------------------------------------------------------------------------------------------
# spec variants


def test_single_file_spec_trains_without_a_trainer_spec(env, tmp_path):
    text = (VARIANTS / "v2_training_section.yaml").read_text()
    assert "epochs: 30" in text
    spec = tmp_path / "single.yaml"
    spec.write_text(text.replace("epochs: 30", "epochs: 6"))
    result = api.train(spec, table="pima_train", name="single", workspace=env["ws"], verbose=False)
    d = result.directory
    assert (result.run_dir / "specs" / "model.yaml").read_bytes() == spec.read_bytes()
    assert not (result.run_dir / "specs" / "trainer.yaml").exists()
    assert ModelArtifact(d).trainer_spec_path is None
    meta = json.loads((d / "metadata.json").read_text())
    assert meta["epochs"]["run"] == 6 and meta["spec_hashes"]["trainer"] is None
    assert meta["rows"]["validation"] == round(614 * 0.25)  # the section's validation_split
    assert meta["loss"]["type"] == "torch.nn.functional.binary_cross_entropy_with_logits"
    report = api.evaluate("single", "pima_test", workspace=env["ws"])
    assert report["rows"] == 154 and isinstance(report["metrics"]["auc"], float)  # unscaled inputs: no bar


def test_no_loss_spec_infers_one_from_the_target(env, tmp_path):
    trainer = short_trainer(tmp_path / "trainer.yaml", epochs=5, **{"model_ref: pima-mlp\n": ""})
    result = api.train(VARIANTS / "v3_no_loss.yaml", trainer, table="pima_train", name="noloss",
                       target="outcome", workspace=env["ws"], verbose=False)
    assert result.task == "binary"
    assert len(result.notes) == 1
    note = result.notes[0]
    assert "BCEWithLogitsLoss" in note and "'logits'" in note and "'outcome' has 2 values" in note
    meta = json.loads((result.directory / "metadata.json").read_text())
    assert meta["loss"]["type"] == "torch.nn.BCEWithLogitsLoss" and meta["loss"]["inputs"]["target"] == "outcome"
    assert meta["notes"] == [note]
    assert (result.run_dir / "specs" / "model.yaml").read_bytes() == (VARIANTS / "v3_no_loss.yaml").read_bytes()


def test_a_trainer_for_another_model_is_refused_naming_both(env, tmp_path):
    from specml.spec import SpecError

    trainer = short_trainer(tmp_path / "trainer.yaml", epochs=1)  # model_ref: pima-mlp
    with pytest.raises(SpecError, match="model_ref 'pima-mlp' names another model than the model spec it trains "
                                        "\\('pima-no-loss'"):
        api.train(VARIANTS / "v3_no_loss.yaml", trainer, table="pima_train", name="mismatch", target="outcome",
                  workspace=env["ws"], verbose=False)
    assert not (env["home"] / "models" / "mismatch").exists()


def test_no_loss_and_no_target_is_refused(env, tmp_path):
    from specml.train.engine import TrainingError

    trainer = short_trainer(tmp_path / "trainer.yaml", epochs=1, **{"model_ref: pima-mlp\n": ""})
    with pytest.raises(TrainingError, match="--target"):
        api.train(VARIANTS / "v3_no_loss.yaml", trainer, table="pima_train", name="notarget", workspace=env["ws"],
                  verbose=False)


def test_early_stopping_stops_before_epochs(env, tmp_path):
    trainer = short_trainer(tmp_path / "trainer.yaml", epochs=EPOCHS, **{
        "early_stopping_patience: 15": "early_stopping_patience: 2\n  early_stopping_min_delta: 100.0"})
    result = api.train(EXAMPLE / "model.yaml", trainer, table="pima_train", name="early", workspace=env["ws"],
                       verbose=False)
    meta = json.loads((result.directory / "metadata.json").read_text())
    assert meta["epochs"]["stopped_early"] is True
    assert meta["epochs"]["planned"] == EPOCHS and meta["epochs"]["run"] == 3 < EPOCHS
    assert len(result.history["train_loss"]) == 3
    assert result.best_epoch == 1 and meta["metrics"]["best_epoch"] == 1
    # the saved weights are the best epoch's
    assert meta["metrics"]["best"]["val_loss"] == pytest.approx(result.history["val_loss"][0])


def test_missing_table_says_did_you_mean(env, m1):
    with pytest.raises(DataError, match=r"table 'pima_trian' not found \(did you mean 'pima_train'\?\)"):
        api.train(EXAMPLE / "model.yaml", m1["trainer"], table="pima_trian", name="typo", workspace=env["ws"],
                  verbose=False)
    assert not (env["home"] / "models" / "typo").exists()


# ----------------------------------------------------------------------------------------------
# class labels that are not 0/1 or 0..C-1: evaluate must agree with predict


LINEAR = """
inputs:
  f: {{dtype: float32, shape: [null, 2], columns: [a, b]}}
graph:
  - {{name: lin, type: torch.nn.Linear, params: {{in_features: 2, out_features: {out}}}, inputs: {{input: f}}}}
outputs:
  logits: lin.output
"""
FAST = """
optimizer: {type: torch.optim.Adam, lr: 0.05}
config: {epochs: 15, batch_size: 32, validation_split: 0.2, seed: 1}
"""


@pytest.fixture(scope="module")
def labelled(env):
    rng = np.random.default_rng(0)
    n = 300
    x = rng.normal(size=(n, 2))
    yes_no = np.where(x[:, 0] + 0.3 * rng.normal(size=n) > 0, "yes", "no")
    band = np.digitize(x[:, 1], [-0.5, 0.5])
    env["ws"].write_table("labelled", pa.table({"a": x[:, 0], "b": x[:, 1], "yes_no": yes_no,
                                                "kind": np.array(["cat", "dog", "emu"])[band],
                                                "code": (band * 3 + 4).astype(np.int64)}))
    return env


@pytest.mark.parametrize("target, outputs, task", [("yes_no", 1, "binary"), ("kind", 3, "multiclass"),
                                                   ("code", 3, "multiclass")])
def test_evaluate_agrees_with_predict_for_labelled_classes(labelled, tmp_path, target, outputs, task):
    ws = labelled["ws"]
    model = tmp_path / "model.yaml"
    model.write_text(LINEAR.format(out=outputs))
    trainer = tmp_path / "trainer.yaml"
    trainer.write_text(FAST)
    name = f"labelled_{target}"
    result = api.train(model, trainer, table="labelled", name=name, target=target, workspace=ws, verbose=False)
    assert result.task == task
    preds = api.predict(name, "labelled", workspace=ws)
    truth = np.asarray(preds.column(target).to_pylist())
    predicted = np.asarray(preds.column("prediction").to_pylist())
    accuracy = float((truth == predicted).mean())
    assert accuracy > 0.8  # an easy problem: the model learned it
    report = api.evaluate(name, "labelled", workspace=ws)
    assert report["metrics"]["accuracy"] == pytest.approx(accuracy, abs=0.01)
    if task == "binary":
        assert report["metrics"]["auc"] is not None and report["metrics"]["auc"] > 0.9


# ----------------------------------------------------------------------------------------------
# tampered artifacts: clean errors, nothing written outside the home


def _copy_model(env, name: str) -> Path:
    import shutil

    target = env["home"] / "models" / name
    shutil.copytree(env["home"] / "models" / "m1", target)
    return target


@pytest.mark.parametrize("tamper, message", [
    (lambda m: m["preprocessing"]["inputs"]["patient_data"].update(dtype="__class__"), "is not a dtype"),
    (lambda m: m.pop("preprocessing"), "preprocessing: Field required"),
    (lambda m: m.update(inputs=["not", "a", "map"]), "inputs"),
    (lambda m: m["preprocessing"].update(inputs={"patient_data": {"nope": 1}}), "is damaged: preprocessing"),
])
def test_a_tampered_metadata_file_is_a_clean_error(env, m1, tamper, message):
    from specml.artifact import ArtifactError

    d = _copy_model(env, f"tampered_{zlib.crc32(message.encode())}")
    meta = json.loads((d / "metadata.json").read_text())
    tamper(meta)
    (d / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(ArtifactError, match=message):
        api.predict(d.name, "pima_test", workspace=env["ws"])


@pytest.mark.parametrize("pointer", [[1, 2], {"run_dir": "/tmp/specml-elsewhere"}, {"run_dir": 7}])
def test_a_tampered_run_pointer_sends_nothing_outside_the_home(env, m1, pointer, tmp_path):
    from specml.artifact import ArtifactError

    d = _copy_model(env, f"pointer_{zlib.crc32(json.dumps(pointer).encode())}")
    (d / "run.json").write_text(json.dumps(pointer))
    with pytest.raises(ArtifactError, match="does not name a run under"):
        api.evaluate(d.name, "pima_test", workspace=env["ws"])
    assert not Path("/tmp/specml-elsewhere").exists()
