"""Tasks beyond binary, through the real verbs: multiclass with text labels, regression with a
standardized target, multi-output regression, multi-task, token sequences.

Data: scikit-learn's bundled wine / diabetes / linnerud, the Pima CSV, and a generated token table,
all in a real DuckDB workspace under a tmp specml home. Trainings are short.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import torch

from specml import api
from specml.data.workspace import DataError, Workspace
from specml.train.engine import TrainingError
from testkit import PIMA, ROOT

torch.set_num_threads(1)



def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def trainer(tmp: Path, epochs: int, lr: float = 0.01, batch: int = 32, extra: str = "") -> Path:
    return write(tmp / "trainer.yaml", f"optimizer: {{type: torch.optim.Adam, lr: {lr}}}\n"
                                       f"config: {{epochs: {epochs}, batch_size: {batch}, seed: 3{extra}}}\n")


@pytest.fixture()
def ws(specml_home):
    w = Workspace()
    yield w
    w.close()


def sklearn_table(loader, **rename) -> pa.Table:
    bunch = loader()
    cols = {f"f{i}": bunch.data[:, i] for i in range(bunch.data.shape[1])}
    target = bunch.target
    if target.ndim == 1:
        cols["y"] = target
    else:
        for j, name in enumerate(bunch.target_names):
            cols[name] = target[:, j]
    return pa.table(cols)


def mlp(n_in: int, n_out: int, target: str, loss: str, extra_loss: str = "") -> str:
    cols = ", ".join(f"f{i}" for i in range(n_in))
    return f"""
inputs:
  x: {{dtype: float32, shape: [null, {n_in}], columns: [{cols}], normalize: standard}}
graph:
  - {{name: h, type: torch.nn.Linear, params: {{in_features: {n_in}, out_features: 32}}, inputs: [x]}}
  - {{name: a, type: torch.nn.ReLU, inputs: [h]}}
  - {{name: out, type: torch.nn.Linear, params: {{in_features: 32, out_features: {n_out}}}, inputs: [a]}}
outputs: {{pred: out}}
loss: {{type: {loss}, inputs: {{input: pred, target: {target}}}{extra_loss}}}
"""


def test_multiclass_text_labels_through_stored_vocabulary(ws, tmp_path):
    from sklearn.datasets import load_wine

    t = sklearn_table(load_wine)
    names = np.array(["barolo", "grignolino", "barbera"])
    t = t.set_column(t.schema.get_field_index("y"), "y", pa.array(names[t.column("y").to_numpy()]))
    ws.write_table("wine", t)
    ws.split("wine", test_size=0.3, stratify="y", seed=1)
    spec = write(tmp_path / "m.yaml", mlp(13, 3, "y", "torch.nn.CrossEntropyLoss"))
    res = api.train(spec, trainer(tmp_path, 25), table="wine_train", name="wine", workspace=ws, verbose=False)
    assert res.task == "multiclass"
    report = api.evaluate("wine", "wine_test", workspace=ws)
    assert report["metrics"]["accuracy"] > 0.85  # majority class is ~0.40
    pred = api.predict("wine", "wine_test", workspace=ws)
    assert set(pred.column("prediction").to_pylist()) <= set(names)
    assert {"prob_barolo", "prob_grignolino", "prob_barbera"} <= set(pred.column_names)
    probs = np.column_stack([pred.column(f"prob_{n}").to_numpy() for n in sorted(names)])
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    # the stored vocabulary maps labels back: predictions agree with the truth as often as accuracy says
    truth = ws.read_columns("wine_test", ["y"]).column("y").to_numpy(zero_copy_only=False)
    assert np.mean(np.asarray(pred.column("prediction").to_pylist()) == truth) == pytest.approx(
        report["metrics"]["accuracy"])


@pytest.mark.slow  # > 3 s of CPU
def test_regression_target_standardized_and_inverted(ws, tmp_path):
    from sklearn.datasets import load_diabetes

    ws.write_table("dia", sklearn_table(load_diabetes))
    ws.split("dia", test_size=0.25, seed=2)
    spec = write(tmp_path / "m.yaml", mlp(10, 1, "y", "torch.nn.MSELoss", ", target_normalize: standard"))
    res = api.train(spec, trainer(tmp_path, 40, lr=0.005), table="dia_train", name="dia", workspace=ws, verbose=False)
    meta = api.show_model("dia")
    (state,) = meta["preprocessing"]["targets"].values()
    y_train = ws.read_columns("dia_train", ["y"]).column("y").to_numpy()
    # fitted on the training split only (80% of dia_train)
    assert state["normalize"] == "standard" and 100 < state["center"][0] < 200 and 50 < state["scale"][0] < 100
    # training metrics are in the target's units (rmse of tens), while the loss is on the standardized scale
    assert res.final["val_rmse"] > 20 and res.final["val_loss"] < 2
    pred = api.predict("dia", "dia_test", workspace=ws).column("prediction").to_numpy()
    assert 100 < pred.mean() < 200  # in the target's units, not z-scores
    y_test = ws.read_columns("dia_test", ["y"]).column("y").to_numpy()
    rmse = float(np.sqrt(np.mean((pred - y_test) ** 2)))
    report = api.evaluate("dia", "dia_test", workspace=ws)
    assert report["metrics"]["rmse"] == pytest.approx(rmse, rel=1e-5)
    mean_rmse = float(np.sqrt(np.mean((y_train.mean() - y_test) ** 2)))
    assert rmse < 0.9 * mean_rmse and report["metrics"]["r2"] > 0.2


def test_multi_output_regression(ws, tmp_path):
    from sklearn.datasets import load_linnerud

    ws.write_table("lin", sklearn_table(load_linnerud))
    spec = write(tmp_path / "m.yaml", mlp(3, 3, "[Weight, Waist, Pulse]", "torch.nn.MSELoss",
                                          ", target_normalize: standard"))
    res = api.train(spec, trainer(tmp_path, 30, batch=4, extra=", validation_split: 0.0"), table="lin",
                    name="lin", workspace=ws, verbose=False)
    assert res.task == "regression" and res.history["train_loss"][-1] < res.history["train_loss"][0]
    pred = api.predict("lin", "lin", workspace=ws)
    assert {"prediction_Weight", "prediction_Waist", "prediction_Pulse"} <= set(pred.column_names)
    assert 150 < np.mean(pred.column("prediction_Weight").to_numpy()) < 200  # pounds, not z-scores
    report = api.evaluate("lin", "lin", workspace=ws)
    assert set(report["metrics"]) == {"mse", "rmse", "mae", "r2"}


MULTITASK = """
inputs:
  x: {dtype: float32, shape: [null, 7], normalize: standard,
      columns: [pregnancies, glucose, blood_pressure, skin_thickness, insulin, diabetes_pedigree, age]}
graph:
  - {name: trunk, type: torch.nn.Linear, params: {in_features: 7, out_features: 16}, inputs: [x]}
  - {name: act, type: torch.nn.ReLU, inputs: [trunk]}
  - {name: d_head, type: torch.nn.Linear, params: {in_features: 16, out_features: 1}, inputs: [act]}
  - {name: b_head, type: torch.nn.Linear, params: {in_features: 16, out_features: 1}, inputs: [act]}
outputs: {diabetes_logit: d_head, bmi_pred: b_head}
loss:
  - {name: diabetes, type: torch.nn.BCEWithLogitsLoss, inputs: {input: diabetes_logit, target: outcome}}
  - {name: bmi, type: torch.nn.MSELoss, inputs: {input: bmi_pred, target: bmi}, weight: 0.5,
     target_normalize: standard}
"""


@pytest.mark.slow  # > 3 s of CPU
def test_multi_task_weighted_losses_and_per_task_reports(ws, tmp_path):
    ws.load(PIMA, "pima")
    ws.split("pima", test_size=0.2, stratify="outcome", seed=4)
    spec = write(tmp_path / "m.yaml", MULTITASK)
    res = api.train(spec, trainer(tmp_path, 8, extra=", early_stopping_monitor: val_diabetes_auc, "
                                                  "early_stopping_patience: 20"),
                    table="pima_train", name="mt", workspace=ws, verbose=False)
    assert res.task == "multitask"
    h = res.history
    for key in ("train_loss", "train_diabetes_loss", "train_bmi_loss", "val_diabetes_auc", "val_bmi_rmse"):
        assert key in h, sorted(h)
    # the total is the weighted sum of the task losses, every epoch
    np.testing.assert_allclose(h["val_loss"], np.add(h["val_diabetes_loss"], 0.5 * np.asarray(h["val_bmi_loss"])),
                               rtol=1e-5)
    meta = api.show_model("mt")
    assert meta["monitor"] == "val_diabetes_auc" and meta["monitor_mode"] == "max"
    assert set(meta["tasks"]) == {"diabetes", "bmi"}
    report = api.evaluate("mt", "pima_test", workspace=ws)
    assert report["tasks"]["diabetes"]["auc"] > 0.75 and report["metrics"]["diabetes_auc"] == report["tasks"][
        "diabetes"]["auc"]
    bmi = ws.read_columns("pima_test", ["bmi"]).column("bmi").to_numpy()
    assert report["tasks"]["bmi"]["rmse"] < np.sqrt(np.mean((bmi - bmi.mean()) ** 2)) * 1.05
    pred = api.predict("mt", "pima_test", workspace=ws)
    assert {"diabetes_probability", "diabetes_prediction", "bmi_prediction"} <= set(pred.column_names)
    assert 20 < np.mean(pred.column("bmi_prediction").to_numpy()) < 45  # BMI units


def test_multi_task_loss_without_target_is_refused(ws, tmp_path):
    ws.load(PIMA, "pima")
    spec = write(tmp_path / "m.yaml", MULTITASK.replace("target: bmi}", "}"))
    with pytest.raises(TrainingError, match=r"loss\[1\] names no target"):
        api.train(spec, trainer(tmp_path, 1), table="pima", name="x", workspace=ws, verbose=False)


SEQ = """
inputs:
  tokens: {dtype: int64, shape: [null, 6], columns: [x], pad_id: 10}
graph:
  - {name: emb, type: torch.nn.Embedding, params: {num_embeddings: 11, embedding_dim: 16}, inputs: [tokens]}
  - {name: h, type: torch.nn.Linear, params: {in_features: 16, out_features: 32}, inputs: [emb]}
  - {name: a, type: torch.nn.ReLU, inputs: [h]}
  - {name: head, type: torch.nn.Linear, params: {in_features: 32, out_features: 11}, inputs: [a]}
outputs: {logits: head}
loss: {type: torch.nn.CrossEntropyLoss, inputs: {input: logits, target: y}LOSS_PARAMS}
"""


def seq_table(ws, n=600, seed=0):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(2, 6, size=n)
    xs = [rng.integers(0, 10, size=k).tolist() for k in lengths]
    ys = [[(v + 1) % 10 for v in x] for x in xs]  # a per-token rule a position-wise MLP learns exactly
    ws.write_table("seqs", pa.table({"x": pa.array(xs, pa.list_(pa.int32())), "y": pa.array(ys, pa.list_(pa.int32()))}))


@pytest.mark.parametrize("ignored", [False, pytest.param(True, marks=pytest.mark.slow)])
def test_token_sequences_pad_is_never_a_digit_and_exact_match(ws, tmp_path, ignored):
    seq_table(ws)
    spec = write(tmp_path / "m.yaml", SEQ.replace("LOSS_PARAMS", ", params: {ignore_index: 10}" if ignored else ""))
    res = api.train(spec, trainer(tmp_path, 25, lr=0.01), table="seqs", name="seq", workspace=ws, verbose=False)
    assert res.task == "sequence"
    assert res.final["val_exact_match"] > 0.9 and res.final["val_accuracy"] > 0.95
    report = api.evaluate("seq", "seqs", workspace=ws)
    assert set(report["metrics"]) == {"accuracy", "exact_match"} and report["metrics"]["exact_match"] > 0.9
    pred = api.predict("seq", "seqs", workspace=ws)
    got, want = pred.column("prediction").to_pylist(), ws.read_columns("seqs", ["y"]).column("y").to_pylist()
    if not ignored:  # the model learned to emit pad after the end: predictions are cut there, lengths match
        assert np.mean([g == w for g, w in zip(got, want, strict=True)]) == pytest.approx(
            report["metrics"]["exact_match"])
    else:  # pad is not learned: the prediction's first len(y) tokens are the answer
        assert np.mean([g[:len(w)] == w for g, w in zip(got, want, strict=True)]) > 0.9


def test_sequence_metrics_do_not_count_padding():
    from specml.train.metrics import SequenceMetrics, sequence_metrics

    y = np.array([[1, 2, 9, 9], [3, 9, 9, 9]])
    pred_all_pad = np.full_like(y, 9)
    m = sequence_metrics(y, pred_all_pad, pad=9)
    assert m["accuracy"] == 0.0 and m["exact_match"] == 0.0  # predicting padding everywhere scores nothing
    pred = np.array([[1, 2, 9, 9], [3, 4, 9, 9]])
    assert sequence_metrics(y, pred, pad=9) == {"accuracy": 1.0, "exact_match": 0.5}  # row 2 runs on past its end
    assert sequence_metrics(y, pred, pad=9, pad_ignored=True) == {"accuracy": 1.0, "exact_match": 1.0}
    # the streaming meter agrees with the numpy reference
    scores = torch.nn.functional.one_hot(torch.from_numpy(pred), 10).float()
    meter = SequenceMetrics(["accuracy", "exact_match"], pad=9, device="cpu")
    meter.update(torch.tensor(0.5), scores[:1], torch.from_numpy(y[:1]))
    meter.update(torch.tensor(0.5), scores[1:], torch.from_numpy(y[1:]))
    got = meter.compute()
    assert got["accuracy"] == 1.0 and got["exact_match"] == 0.5 and got["loss"] == pytest.approx(0.5)


def test_sequence_target_longer_than_the_output_is_refused(ws, tmp_path):
    ws.write_table("seqs", pa.table({"x": pa.array([[1, 2]] * 20, pa.list_(pa.int32())),
                                     "y": pa.array([[1, 2, 3, 4, 5, 6, 7]] * 20, pa.list_(pa.int32()))}))
    spec = write(tmp_path / "m.yaml", SEQ.replace("LOSS_PARAMS", ""))
    with pytest.raises(TrainingError, match="up to 7 tokens.*6 positions"):
        api.train(spec, trainer(tmp_path, 1), table="seqs", name="s", workspace=ws, verbose=False)


def test_sequence_input_reads_lists_and_cuts_with_a_note(ws, tmp_path):
    from specml.data.tensors import fit
    from specml.spec import load_model_spec

    ws.write_table("seqs", pa.table({"x": pa.array([[1, 0, 3], [4, 5, 6, 7, 8, 9, 1, 2], []], pa.list_(pa.int32())),
                                     "y": pa.array([[1]] * 3, pa.list_(pa.int32()))}))
    spec = load_model_spec(write(tmp_path / "m.yaml", SEQ.replace("LOSS_PARAMS", "")), check=False)
    data = ws.read_columns("seqs", ["x", "y"])
    prep = fit(spec, data, spec.losses, np.arange(3))
    inputs, _ = prep.transform(data, with_target=False)
    assert inputs["tokens"].tolist() == [[1, 0, 3, 10, 10, 10], [4, 5, 6, 7, 8, 9], [10] * 6]
    assert any("longer than L=6" in n for n in prep.notes)
    # a [null, L] input over a plain integer column is a clear error
    ws.write_table("flat", pa.table({"x": pa.array([1, 2, 3]), "y": pa.array([[1]] * 3, pa.list_(pa.int32()))}))
    with pytest.raises(DataError, match=r"a \[null, L\] input reads a list column"):
        fit(spec, ws.read_columns("flat", ["x", "y"]), spec.losses, np.arange(3))


PIMA_SPEC = ROOT / "examples" / "pima_mlp" / "model.yaml"


def test_class_weights_auto_from_training_rows_only(ws, tmp_path):
    ws.load(PIMA, "pima")
    res = api.train(PIMA_SPEC, trainer(tmp_path, 2, extra=", class_weights: auto"), table="pima", name="cw",
                    workspace=ws, verbose=False)
    (note,) = [n for n in res.notes if n.startswith("class weights")]
    # 80% of 500 negatives and 268 positives, stratified: 400 and 214 -> pos_weight 400/214
    assert "0: 400, 1: 214" in note and "pos_weight 1.869" in note


def test_class_weights_map_and_typo(ws, tmp_path):
    ws.load(PIMA, "pima")
    res = api.train(PIMA_SPEC, trainer(tmp_path, 1, extra=", class_weights: {'0': 1.0, '1': 3.0}"), table="pima",
                    name="cw2", workspace=ws, verbose=False)
    assert any("pos_weight 3.000" in n for n in res.notes)
    with pytest.raises(TrainingError, match="'2' is not a class of 'outcome'"):
        api.train(PIMA_SPEC, trainer(tmp_path, 1, extra=", class_weights: {'2': 3.0}"), table="pima", name="cw3",
                  workspace=ws, verbose=False)


def test_oversampling_touches_training_rows_only(ws, tmp_path):
    ws.load(PIMA, "pima")
    plain = api.train(PIMA_SPEC, trainer(tmp_path, 1), table="pima", name="o1", workspace=ws, verbose=False)
    over = api.train(PIMA_SPEC, trainer(tmp_path, 1, extra=", oversample: true"), table="pima", name="o2",
                     workspace=ws, verbose=False)
    assert plain.rows == {"train": 614, "validation": 154}
    assert over.rows == {"train": 800, "validation": 154}  # 400 + 400: the 214 positives repeated up to 400
    assert any("from 614 to 800" in n for n in over.notes)
    # the same validation rows: identical validation metrics at the start are not guaranteed, the row set is
    assert api.show_model("o1")["rows"]["validation"] == api.show_model("o2")["rows"]["validation"] == 154
