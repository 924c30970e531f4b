"""Table -> tensors (``specml.data.tensors``): fitting on training rows, transforming, checking bad input.

Small Arrow tables are built here with pyarrow, or read back from a DuckDB workspace in ``tmp_path`` so
that the column types are the ones a user's table has (VARCHAR, BIGINT, DOUBLE with NULLs).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import torch

from specml.data import tensors as T
from specml.data.tensors import Preprocessor, fit, infer_loss, task_of, validation_split
from specml.data.workspace import DataError, Workspace
from specml.spec.model import LossSpec, ModelSpec
from testkit import PIMA, PIMA_MLP

torch.set_num_threads(1)



def make_spec(inputs: dict, outputs: tuple[str, ...] = ("logits",)) -> ModelSpec:
    """A model spec with ``inputs`` (name -> InputSpec fields) and an Identity node per output."""
    first = next(iter(inputs))
    graph = [{"name": f"node_{o}", "type": "torch.nn.Identity", "inputs": {"input": first}} for o in outputs]
    return ModelSpec.model_validate({"inputs": inputs, "graph": graph,
                                     "outputs": {o: f"node_{o}.output" for o in outputs}})


def float_input(columns, **extra) -> dict:
    return {"dtype": "float32", "shape": [None, len(columns)], "columns": list(columns), **extra}


def bce(target: str = "y") -> LossSpec:
    return LossSpec(type="torch.nn.BCEWithLogitsLoss", inputs={"input": "logits", "target": target})


def ce(target: str = "y") -> LossSpec:
    return LossSpec(type="torch.nn.CrossEntropyLoss", inputs={"input": "logits", "target": target})


def mse(target: str = "y") -> LossSpec:
    return LossSpec(type="torch.nn.MSELoss", inputs={"input": "logits", "target": target})


def all_rows(table: pa.Table) -> np.ndarray:
    return np.arange(table.num_rows)


@pytest.fixture
def ws(tmp_path):
    with Workspace(tmp_path / "ws.duckdb") as w:
        yield w


# ----------------------------------------------------------------------------------------------
# bad input: a DataError that counts


def test_nulls_in_a_float_column_are_counted(ws):
    ws.sql("CREATE TABLE t AS SELECT * FROM (VALUES (1.0, 0), (NULL, 1), (2.5, 0), (NULL, 1), (NULL, 0), (4.0, 1)) "
           "v(x, y)")
    table = ws.read_columns("t", ["x", "y"])
    spec = make_spec({"f": float_input(["x"])})
    with pytest.raises(DataError, match=r"column 'x'.*has 3 NULL value\(s\) of 6 rows"):
        fit(spec, table, bce(), all_rows(table))


def test_nulls_at_transform_time_are_counted(ws):
    """A preprocessor fitted on clean rows refuses a later table with NULLs, counting them."""
    clean = pa.table({"x": [1.0, 2.0, 3.0], "y": [0, 1, 0]})
    prep = fit(make_spec({"f": float_input(["x"], normalize="standard")}), clean, bce(), all_rows(clean))
    ws.sql("CREATE TABLE later AS SELECT * FROM (VALUES (1.0, 0), (NULL, 1), (NULL, 0)) v(x, y)")
    with pytest.raises(DataError, match=r"has 2 NULL value\(s\) of 3 rows"):
        prep.transform(ws.read_columns("later", ["x", "y"]))


def test_nulls_in_an_integer_input_are_counted_too():
    spec = make_spec({"n": {"dtype": "int64", "shape": [None, 1], "columns": ["n"]}})
    table = pa.table({"n": pa.array([1, None, 3, None], pa.int64()), "y": [0, 1, 0, 1]})
    with pytest.raises(DataError, match=r"has 2 NULL value\(s\)"):
        prep = fit(spec, table, bce(), all_rows(table))
        prep.transform(table)


def test_varchar_column_fed_to_a_float_input(ws):
    ws.sql("CREATE TABLE t AS SELECT * FROM (VALUES ('a', 1.0, 0), ('b', 2.0, 1)) v(name, x, y)")
    table = ws.read_columns("t", ["name", "x", "y"])
    spec = make_spec({"f": float_input(["x", "name"])})
    with pytest.raises(DataError, match=r"column 'name' holds string values.*numeric.*categorical: true"):
        fit(spec, table, bce(), all_rows(table))


def test_null_targets_are_counted(ws):
    ws.sql("CREATE TABLE t AS SELECT * FROM (VALUES (1.0, 0), (2.0, NULL), (3.0, 1), (4.0, NULL)) v(x, y)")
    table = ws.read_columns("t", ["x", "y"])
    spec = make_spec({"f": float_input(["x"])})
    with pytest.raises(DataError, match=r"target column 'y' has 2 NULL value\(s\)"):
        fit(spec, table, bce(), all_rows(table))
    # fitted on rows without NULLs, the preprocessor still refuses them at transform time, with the count
    prep = fit(spec, table, bce(), np.array([0, 2]))
    with pytest.raises(DataError, match=r"target column 'y' has 2 NULL value\(s\) of 4 rows"):
        prep.transform(table)


def test_empty_table():
    table = pa.table({"x": pa.array([], pa.float64()), "y": pa.array([], pa.int64())})
    with pytest.raises(DataError, match="empty"):
        fit(make_spec({"f": float_input(["x"])}), table, bce(), all_rows(table))


def test_binary_loss_on_a_three_class_target():
    table = pa.table({"x": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], "y": [0, 1, 2, 0, 1, 2]})
    with pytest.raises(DataError, match=r"binary loss.*'y' has 3 distinct value\(s\).*\[0, 1, 2\].*CrossEntropyLoss"):
        fit(make_spec({"f": float_input(["x"])}), table, bce(), all_rows(table))


def test_a_single_class_target_is_refused():
    table = pa.table({"x": [1.0, 2.0, 3.0], "y": [1, 1, 1]})
    with pytest.raises(DataError, match=r"1 distinct value"):
        fit(make_spec({"f": float_input(["x"])}), table, bce(), all_rows(table))
    with pytest.raises(DataError, match="only one class"):
        fit(make_spec({"f": float_input(["x"])}), table, ce(), all_rows(table))


def test_vocab_size_too_small():
    table = pa.table({"c": ["a", "b", "c", "a"], "y": [0, 1, 0, 1]})
    cat = {"dtype": "int64", "shape": [None], "columns": ["c"], "categorical": True}
    with pytest.raises(DataError, match=r"vocab_size is 3.*3 distinct values \(\+1 for unknown\)"):
        fit(make_spec({"c": {**cat, "vocab_size": 3}}), table, bce(), all_rows(table))
    prep = fit(make_spec({"c": {**cat, "vocab_size": 4}}), table, bce(), all_rows(table))  # 3 values + id 0: fits
    assert prep.vocab_sizes() == {"c": 4}


# -- through api.train: the workspace checks come first


def _pima_specs(tmp_path: Path, target: str) -> tuple[Path, Path]:
    model = tmp_path / "model.yaml"
    model.write_text((PIMA_MLP / "model.yaml").read_text().replace("target: outcome", f"target: {target}"))
    trainer = tmp_path / "trainer.yaml"
    trainer.write_text((PIMA_MLP / "trainer.yaml").read_text().replace("epochs: 100", "epochs: 1"))
    return model, trainer


def test_missing_target_column_through_api_train(tmp_path, ws):
    from specml import api

    ws.load(PIMA, "pima")
    model, trainer = _pima_specs(tmp_path, "outcom")
    with pytest.raises(DataError, match=r"table 'pima' has no column 'outcom' \(did you mean 'outcome'\?\)"):
        api.train(model, trainer, table="pima", name="m", workspace=ws, home=tmp_path / "home", verbose=False)
    assert not (tmp_path / "home" / "models" / "m").exists()


def test_empty_table_through_api_train(tmp_path, ws):
    from specml import api

    ws.load(PIMA, "pima")
    ws.sql("CREATE TABLE pima_empty AS SELECT * FROM pima LIMIT 0")
    model, trainer = _pima_specs(tmp_path, "outcome")
    with pytest.raises(DataError, match="empty"):
        api.train(model, trainer, table="pima_empty", name="m", workspace=ws, home=tmp_path / "home",
                  verbose=False)


# ----------------------------------------------------------------------------------------------
# categorical inputs


def test_categorical_vocabulary_comes_from_training_rows_only():
    table = pa.table({"c": ["red", "blue", None, "green", "blue", "violet", "red", None],
                      "y": [0, 1, 0, 1, 0, 1, 0, 1]})
    train_rows = np.array([0, 1, 2, 3, 4])  # 'violet' only appears in the held-out rows
    spec = make_spec({"colour": {"dtype": "int64", "shape": [None], "columns": ["c"], "categorical": True}})
    prep = fit(spec, table, bce(), train_rows)
    state = prep.inputs["colour"]
    assert state.categorical and state.vocab == ["blue", "green", "red"]  # sorted, NULL left out
    assert prep.vocab_sizes() == {"colour": 4}
    inputs, _ = prep.transform(table)
    ids = inputs["colour"]
    assert ids.dtype == torch.int64 and ids.shape == (8,)
    # ids start at 1 in vocabulary order; NULL and the unseen 'violet' are 0
    assert ids.tolist() == [3, 1, 0, 2, 1, 0, 3, 0]


def test_categorical_integer_codes_and_several_columns():
    table = pa.table({"a": pa.array([10, 20, 30, 10], pa.int32()), "b": pa.array([30, 40, None, 99], pa.int32()),
                      "y": [0, 1, 0, 1]})
    spec = make_spec({"codes": {"dtype": "int64", "shape": [None, 2], "columns": ["a", "b"], "categorical": True}})
    prep = fit(spec, table, bce(), np.array([0, 1, 2]))  # 99 only in row 3
    assert prep.inputs["codes"].vocab == [10, 20, 30, 40]
    ids, _ = prep.transform(table)
    assert ids["codes"].shape == (4, 2) and ids["codes"].is_contiguous()
    assert ids["codes"].tolist() == [[1, 3], [2, 4], [3, 0], [1, 0]]


def test_preprocessor_round_trip_gives_identical_tensors():
    rng = np.random.default_rng(0)
    n = 40
    table = pa.table({
        "x1": rng.normal(5, 2, n), "x2": rng.uniform(-1, 3, n),
        "c": pa.array(rng.choice(["a", "b", "c", None], n).tolist()),
        "y": rng.choice(["no", "yes"], n),
    })
    spec = make_spec({
        "num": float_input(["x1", "x2"], normalize="standard"),
        "mm": float_input(["x2"], normalize="minmax"),
        "cat": {"dtype": "int64", "shape": [None], "columns": ["c"], "categorical": True},
    })
    train_rows = np.arange(0, n, 2)
    prep = fit(spec, table, bce(), train_rows)
    stored = json.loads(json.dumps(prep.to_dict()))  # what metadata.json holds
    again = Preprocessor.from_dict(stored)
    assert again == prep
    (x, y), (x2, y2) = prep.transform(table), again.transform(table)
    assert x.keys() == x2.keys()
    for k in x:
        assert x[k].dtype == x2[k].dtype and torch.equal(x[k], x2[k]), k
    assert torch.equal(y, y2)
    # a new table with an unseen category still maps through the stored vocabulary
    new = pa.table({"x1": [5.0], "x2": [0.0], "c": ["zzz"], "y": ["yes"]})
    assert again.transform(new)[0]["cat"].tolist() == [0]


# ----------------------------------------------------------------------------------------------
# normalisation: statistics from the training rows, applied to every row


def _split_table(seed: int = 3, n: int = 60):
    rng = np.random.default_rng(seed)
    x = np.column_stack([rng.normal(10, 3, n), rng.exponential(2, n)])
    x[n // 2:] += 100.0  # the held-out half is far away: stats that saw it would be very different
    table = pa.table({"a": x[:, 0], "b": x[:, 1], "y": rng.integers(0, 2, n)})
    train_rows = np.arange(n // 2)
    return table, x, train_rows, np.arange(n // 2, n)


def test_standard_normalisation_uses_training_rows_only():
    table, x, train_rows, val_rows = _split_table()
    prep = fit(make_spec({"f": float_input(["a", "b"], normalize="standard")}), table, bce(), train_rows)
    mean, std = x[train_rows].mean(axis=0), x[train_rows].std(axis=0)
    np.testing.assert_allclose(prep.inputs["f"].center, mean, rtol=1e-12)
    np.testing.assert_allclose(prep.inputs["f"].scale, std, rtol=1e-12)
    out = prep.transform(table)[0]["f"].numpy()
    assert out.dtype == np.float32
    np.testing.assert_allclose(out[train_rows].mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(out[train_rows].std(axis=0), 1.0, atol=1e-5)
    np.testing.assert_allclose(out[val_rows], (x[val_rows] - mean) / std, rtol=1e-5)
    assert out[val_rows].mean() > 10  # shifted rows stay shifted: not re-standardised on their own


def test_minmax_normalisation_uses_training_rows_only():
    table, x, train_rows, val_rows = _split_table(seed=4)
    prep = fit(make_spec({"f": float_input(["a", "b"], normalize="minmax")}), table, bce(), train_rows)
    lo, hi = x[train_rows].min(axis=0), x[train_rows].max(axis=0)
    np.testing.assert_allclose(prep.inputs["f"].center, lo)
    np.testing.assert_allclose(prep.inputs["f"].scale, hi - lo)
    out = prep.transform(table)[0]["f"].numpy()
    np.testing.assert_allclose(out[train_rows].min(axis=0), 0.0, atol=1e-6)
    np.testing.assert_allclose(out[train_rows].max(axis=0), 1.0, atol=1e-6)
    np.testing.assert_allclose(out[val_rows], (x[val_rows] - lo) / (hi - lo), rtol=1e-5)
    assert (out[val_rows] > 1.0).all()


def test_constant_column_is_not_divided_by_zero():
    table = pa.table({"a": [2.0, 2.0, 2.0, 5.0], "y": [0, 1, 0, 1]})
    for how in ("standard", "minmax", "robust", "quantile"):
        prep = fit(make_spec({"f": float_input(["a"], normalize=how)}), table, bce(), np.array([0, 1, 2]))
        out = prep.transform(table)[0]["f"]
        assert torch.isfinite(out).all(), how
        assert out[:3].abs().max().item() == 0.0, how


def test_quantile_normalisation_is_bounded_and_fitted_on_training_rows():
    rng = np.random.default_rng(5)
    x = np.exp(rng.normal(0.0, 3.0, size=400))  # heavy tail: the largest is thousands of stds away
    table = pa.table({"a": x, "y": rng.integers(0, 2, 400)})
    train_rows = np.arange(300)
    prep = fit(make_spec({"f": float_input(["a"], normalize="quantile")}), table, bce(), train_rows)
    state = prep.inputs["f"]
    assert state.center is None and len(state.quantiles[0]) == 300  # one quantile per training row
    out = prep.transform(table)[0]["f"][:, 0].numpy()
    assert np.abs(out).max() <= 5.3  # the normal quantiles of 1e-7 and 1 - 1e-7
    train = out[train_rows]
    assert abs(train.mean()) < 0.05 and abs(train.std() - 1.0) < 0.1
    assert (np.argsort(np.argsort(train)) == np.argsort(np.argsort(x[train_rows]))).all()  # order kept
    beyond = pa.table({"a": [x[train_rows].max() * 100.0, -1.0], "y": [0, 1]})
    far = prep.transform(beyond)[0]["f"][:, 0].numpy()
    np.testing.assert_allclose(far, [5.199, -5.199], atol=1e-3)  # unseen extremes land at the bounds
    # the state is plain numbers: a JSON round trip gives the same transform
    again = Preprocessor.from_dict(json.loads(json.dumps(prep.to_dict())))
    np.testing.assert_array_equal(again.transform(table)[0]["f"].numpy(), prep.transform(table)[0]["f"].numpy())


def test_quantile_normalisation_of_a_few_repeated_values_maps_ties_to_one_value():
    table = pa.table({"a": [0.0, 0.0, 0.0, 1.0, 1.0, 2.0], "y": [0, 1, 0, 1, 0, 1]})
    prep = fit(make_spec({"f": float_input(["a"], normalize="quantile")}), table, bce(), all_rows(table))
    out = prep.transform(table)[0]["f"][:, 0].tolist()
    assert out[0] == out[1] == out[2] < out[3] == out[4] < out[5]


def test_robust_normalisation_uses_median_and_iqr_and_clips_smoothly():
    table, x, train_rows, val_rows = _split_table(seed=6)
    prep = fit(make_spec({"f": float_input(["a", "b"], normalize="robust")}), table, bce(), train_rows)
    med = np.median(x[train_rows], axis=0)
    q25, q75 = np.quantile(x[train_rows], [0.25, 0.75], axis=0)
    np.testing.assert_allclose(prep.inputs["f"].center, med)
    np.testing.assert_allclose(prep.inputs["f"].scale, q75 - q25)
    out = prep.transform(table)[0]["f"].numpy()
    z = (x - med) / (q75 - q25)
    np.testing.assert_allclose(out, z / np.sqrt(1 + (z / 3) ** 2), rtol=1e-5, atol=1e-6)
    assert np.abs(out).max() < 3.0  # the shifted validation rows too
    assert (np.abs(out[val_rows]) > 2.5).all()


def test_scaling_normal_quantiles_match_known_values():
    from specml.data.scaling import normal_ppf

    p = np.array([1e-7, 0.001, 0.025, 0.5, 0.8413447460685429, 0.975, 1 - 1e-7])
    np.testing.assert_allclose(normal_ppf(p), [-5.199337582, -3.090232306, -1.959963985, 0.0, 1.0, 1.959963985,
                                               5.199337582], atol=1e-7)


def test_no_normalisation_passes_values_through():
    table = pa.table({"a": [1.5, -2.0, 3.25], "y": [0, 1, 0]})
    prep = fit(make_spec({"f": float_input(["a"])}), table, bce(), all_rows(table))
    assert prep.inputs["f"].center is None
    assert prep.transform(table)[0]["f"][:, 0].tolist() == [1.5, -2.0, 3.25]


# ----------------------------------------------------------------------------------------------
# shapes and dtypes


def test_shape_null_gives_a_1d_tensor():
    table = pa.table({"a": [1.0, 2.0, 3.0], "b": pa.array([4, 5, 6], pa.int32()), "y": [0, 1, 0]})
    spec = make_spec({
        "a1": {"dtype": "float32", "shape": [None], "columns": ["a"]},
        "b1": {"dtype": "long", "shape": [None], "columns": ["b"]},
    })
    inputs, _ = fit(spec, table, bce(), all_rows(table)).transform(table)
    assert inputs["a1"].shape == (3,) and inputs["a1"].dtype == torch.float32 and inputs["a1"].is_contiguous()
    assert inputs["b1"].shape == (3,) and inputs["b1"].dtype == torch.int64 and inputs["b1"].is_contiguous()
    assert inputs["a1"].tolist() == [1.0, 2.0, 3.0] and inputs["b1"].tolist() == [4, 5, 6]


@pytest.mark.parametrize("dtype, torch_dtype", [("float32", torch.float32), ("float64", torch.float64),
                                                ("double", torch.float64), ("int64", torch.int64),
                                                ("int32", torch.int32)])
def test_shape_null_k_gives_n_by_k_with_the_spec_dtype(dtype, torch_dtype):
    n, k = 7, 3
    cols = {f"c{j}": pa.array(np.arange(n) * (j + 1), pa.int64()) for j in range(k)}
    table = pa.table({**cols, "y": [0, 1] * 3 + [0]})
    spec = make_spec({"x": {"dtype": dtype, "shape": [None, k], "columns": list(cols)}})
    x = fit(spec, table, bce(), all_rows(table)).transform(table)[0]["x"]
    assert x.shape == (n, k) and x.dtype == torch_dtype and x.is_contiguous()
    expected = np.column_stack([np.arange(n) * (j + 1) for j in range(k)])
    assert np.array_equal(x.numpy().astype(np.int64), expected)  # columns in the spec's order


def test_pima_through_the_workspace_has_the_expected_tensors(ws):
    ws.load(PIMA, "pima")
    columns = ["pregnancies", "glucose", "blood_pressure", "skin_thickness", "insulin", "bmi",
               "diabetes_pedigree", "age"]
    table = ws.read_columns("pima", [*columns, "outcome"])
    spec = make_spec({"patient_data": float_input(columns, normalize="standard")})
    inputs, y = fit(spec, table, bce("outcome"), all_rows(table)).transform(table)
    assert inputs["patient_data"].shape == (768, 8) and inputs["patient_data"].dtype == torch.float32
    assert y.shape == (768,) and y.dtype == torch.float32
    assert set(y.unique().tolist()) == {0.0, 1.0} and int(y.sum()) == 268


# ----------------------------------------------------------------------------------------------
# targets


def test_binary_string_target_maps_to_float_0_1_in_sorted_order():
    table = pa.table({"x": [1.0, 2.0, 3.0, 4.0], "y": ["yes", "no", "no", "yes"]})
    prep = fit(make_spec({"f": float_input(["x"])}), table, bce(), all_rows(table))
    assert prep.target.task == "binary" and prep.target.classes == ["no", "yes"] and prep.target.logits
    _, y = prep.transform(table)
    assert y.dtype == torch.float32 and y.tolist() == [1.0, 0.0, 0.0, 1.0]


def test_binary_integer_target_and_probability_loss():
    table = pa.table({"x": [1.0, 2.0, 3.0, 4.0], "y": pa.array([1, 0, 1, 1], pa.int32())})
    loss = LossSpec(type="torch.nn.BCELoss", inputs={"input": "prediction", "target": "y"})
    prep = fit(make_spec({"f": float_input(["x"])}, outputs=("prediction",)), table, loss, all_rows(table))
    assert prep.target.classes == [0, 1] and prep.target.logits is False
    assert prep.transform(table)[1].tolist() == [1.0, 0.0, 1.0, 1.0]


def test_a_value_unseen_in_training_is_refused_at_transform_time():
    table = pa.table({"x": [1.0, 2.0, 3.0, 4.0], "y": ["a", "b", "c", "d"]})
    prep = fit(make_spec({"f": float_input(["x"])}), table, ce(), np.array([0, 1, 2]))
    with pytest.raises(DataError, match=r"not trained on: \['d'\]"):
        prep.transform(table)


def test_multiclass_target_maps_to_int64_ids():
    table = pa.table({"x": [1.0, 2.0, 3.0, 4.0, 5.0], "y": [7, 3, 5, 3, 7]})
    prep = fit(make_spec({"f": float_input(["x"])}), table, ce(), all_rows(table))
    assert prep.target.task == "multiclass" and prep.target.classes == [3, 5, 7]
    _, y = prep.transform(table)
    assert y.dtype == torch.int64 and y.tolist() == [2, 0, 1, 0, 2]
    strings = pa.table({"x": [1.0, 2.0, 3.0], "y": ["dog", "cat", "emu"]})
    prep = fit(make_spec({"f": float_input(["x"])}), strings, ce(), all_rows(strings))
    assert prep.target.classes == ["cat", "dog", "emu"]
    assert prep.transform(strings)[1].tolist() == [1, 0, 2]


def test_regression_target_is_float32_values():
    table = pa.table({"x": [1.0, 2.0, 3.0], "y": pa.array([1.5, -2, 10], pa.float64())})
    prep = fit(make_spec({"f": float_input(["x"])}), table, mse(), all_rows(table))
    assert prep.target.task == "regression" and prep.target.classes is None
    _, y = prep.transform(table)
    assert y.dtype == torch.float32 and y.tolist() == [1.5, -2.0, 10.0]


def test_transform_without_target_needs_no_target_column():
    table = pa.table({"x": [1.0, 2.0], "y": [0, 1]})
    prep = fit(make_spec({"f": float_input(["x"])}), table, bce(), all_rows(table))
    inputs, y = prep.transform(table.drop(["y"]), with_target=False)
    assert y is None and inputs["f"].shape == (2, 1)
    with pytest.raises(DataError, match="target column 'y' is not in the table"):
        prep.transform(table.drop(["y"]))


@pytest.mark.parametrize("loss, task", [("torch.nn.BCEWithLogitsLoss", "binary"),
                                        ("torch.nn.functional.binary_cross_entropy_with_logits", "binary"),
                                        ("BCELoss", "binary"), ("torch.nn.CrossEntropyLoss", "multiclass"),
                                        ("torch.nn.functional.nll_loss", "multiclass"),
                                        ("torch.nn.MSELoss", "regression"), ("torch.nn.L1Loss", "regression")])
def test_task_of(loss, task):
    assert task_of(loss) == task


# ----------------------------------------------------------------------------------------------
# the validation split


def _labels(n: int = 200, positive: float = 0.3) -> np.ndarray:
    labels = np.zeros(n, dtype=np.int64)
    labels[: int(n * positive)] = 1
    return np.random.default_rng(9).permutation(labels)


def test_validation_split_is_seeded():
    labels = _labels()
    a_train, a_val = validation_split(200, 0.25, 42, labels)
    b_train, b_val = validation_split(200, 0.25, 42, labels)
    c_train, c_val = validation_split(200, 0.25, 43, labels)
    assert np.array_equal(a_train, b_train) and np.array_equal(a_val, b_val)
    assert not np.array_equal(a_val, c_val)
    for train, val in ((a_train, a_val), (c_train, c_val)):
        assert len(val) == 50 and len(train) == 150
        assert np.intersect1d(train, val).size == 0
        assert np.array_equal(np.sort(np.concatenate([train, val])), np.arange(200))
        assert np.array_equal(train, np.sort(train)) and np.array_equal(val, np.sort(val))
    # unstratified (regression) splits are seeded too
    u1, u2 = validation_split(200, 0.25, 5, None), validation_split(200, 0.25, 5, None)
    assert np.array_equal(u1[1], u2[1]) and not np.array_equal(u1[1], validation_split(200, 0.25, 6, None)[1])


@pytest.mark.parametrize("seed", [0, 1, 42, 1234])
def test_validation_split_is_stratified(seed):
    labels = _labels(200, 0.3)
    train, val = validation_split(200, 0.25, seed, labels)
    ratio = labels.mean()
    assert abs(labels[val].sum() - ratio * len(val)) <= 1
    assert abs(labels[train].sum() - ratio * len(train)) <= 1
    # string classes with three values
    words = np.array(["a"] * 50 + ["b"] * 30 + ["c"] * 20, dtype=object)
    words = words[np.random.default_rng(seed).permutation(100)]
    train, val = validation_split(100, 0.2, seed, words)
    for cls, count in (("a", 50), ("b", 30), ("c", 20)):
        assert abs((words[val] == cls).sum() - count * 0.2) <= 1


def test_validation_split_leaves_the_global_rngs_alone():
    random.seed(123)
    np.random.seed(123)
    torch.manual_seed(123)
    np_state, torch_state, py_state = np.random.get_state(), torch.get_rng_state(), random.getstate()
    validation_split(200, 0.25, 7, _labels())
    validation_split(200, 0.25, 7, None)
    after = np.random.get_state()
    assert after[0] == np_state[0] and np.array_equal(after[1], np_state[1]) and after[2:] == np_state[2:]
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert random.getstate() == py_state


def test_validation_split_zero_keeps_every_row():
    train, val = validation_split(10, 0.0, 0, None)
    assert train.tolist() == list(range(10)) and val.size == 0


# ----------------------------------------------------------------------------------------------
# inferring a loss (variant 3)


def test_infer_loss_binary_with_logits_output():
    spec = make_spec({"f": float_input(["x"])}, outputs=("logits",))
    table = pa.table({"x": [1.0, 2.0, 3.0, 4.0], "outcome": [0, 1, 1, 0]})
    loss, why = infer_loss(spec, table, "outcome")
    assert loss.type == "torch.nn.BCEWithLogitsLoss"
    assert loss.inputs.input == "logits" and loss.inputs.target == "outcome"
    assert "BCEWithLogitsLoss" in why and "'outcome' has 2 values" in why and "'logits'" in why
    assert task_of(loss.type) == "binary"


def test_infer_loss_binary_with_a_probability_output():
    spec = make_spec({"f": float_input(["x"])}, outputs=("prediction",))
    table = pa.table({"x": [1.0, 2.0], "label": ["no", "yes"]})
    loss, why = infer_loss(spec, table, "label")
    assert loss.type == "torch.nn.BCELoss" and loss.inputs.input == "prediction" and "2 values" in why
    # fitting with the inferred loss reads probabilities, not logits
    assert fit(spec, table, loss, all_rows(table)).target.logits is False


def test_infer_loss_a_few_integer_classes():
    spec = make_spec({"f": float_input(["x"])})
    table = pa.table({"x": np.arange(9, dtype=np.float64), "k": pa.array([0, 1, 2] * 3, pa.int64())})
    loss, why = infer_loss(spec, table, "k")
    assert loss.type == "torch.nn.CrossEntropyLoss" and loss.inputs.target == "k"
    assert "3 distinct" in why and "CrossEntropyLoss" in why
    assert task_of(loss.type) == "multiclass"


def test_infer_loss_continuous_target():
    spec = make_spec({"f": float_input(["x"])})
    table = pa.table({"x": np.arange(20, dtype=np.float64), "price": np.linspace(0.5, 99.5, 20)})
    loss, why = infer_loss(spec, table, "price")
    assert loss.type == "torch.nn.MSELoss" and "continuous" in why and "20 distinct" in why
    assert task_of(loss.type) == "regression"


def test_infer_loss_many_integer_values_is_regression():
    spec = make_spec({"f": float_input(["x"])})
    table = pa.table({"x": np.arange(200, dtype=np.float64), "n": np.arange(200, dtype=np.int64)})
    loss, why = infer_loss(spec, table, "n")
    assert loss.type == "torch.nn.MSELoss" and "continuous" in why


def test_infer_loss_with_several_outputs_and_no_logits_asks_for_a_loss():
    spec = make_spec({"f": float_input(["x"])}, outputs=("a", "b"))
    table = pa.table({"x": [1.0, 2.0], "y": [0, 1]})
    with pytest.raises(DataError, match="several outputs"):
        infer_loss(spec, table, "y")


def test_module_constants_agree():
    assert T.MAX_CLASSES >= 3
    assert T.reads_logits("torch.nn.BCEWithLogitsLoss") and not T.reads_logits("torch.nn.BCELoss")
