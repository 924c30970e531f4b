"""Exported models give ``specml predict``'s predictions without specml.

One module-scoped tiny training per family: a binary MLP with a categorical embedding (text values), a
multiclass network (text labels), a multi-task MMoE (binary + standardized regression) and LightGBM
with a text feature. Each export is run in onnxruntime / reloaded TorchScript / a reloaded
``torch.export`` program, fed through the written ``specml_preprocess.py`` (the numpy reference), and
compared with ``api.predict`` on the same table. Tolerance: atol 1e-5 on probabilities and values (float32
graphs; the labels must be equal).
"""

from __future__ import annotations

import importlib.util
import json
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import modelzoo

torch.set_num_threads(1)
ATOL = 1e-5
pytestmark = pytest.mark.slow  # trainings and exports take seconds each


@pytest.fixture(scope="module")
def zoo(pima_home):
    modelzoo.pima_zoo(pima_home)
    names = {"binary": modelzoo.train_binary(pima_home), "multiclass": modelzoo.train_multiclass(pima_home),
             "multitask": modelzoo.train_multitask(pima_home), "lightgbm": modelzoo.train_lightgbm(pima_home)}
    return pima_home, names, modelzoo.columns_of(pima_home)


def reference(directory: Path):
    """The ``specml_preprocess.py`` written beside the model, imported from there (leaving no ``__pycache__``
    in the export directory, whose listing another test checks)."""
    spec = importlib.util.spec_from_file_location(f"specml_preprocess_{directory.name}",
                                                  directory / "specml_preprocess.py")
    module = importlib.util.module_from_spec(spec)
    writes, sys.dont_write_bytecode = sys.dont_write_bytecode, True
    try:
        spec.loader.exec_module(module)
    finally:
        sys.dont_write_bytecode = writes
    return module


def run_onnx(directory: Path, feeds: dict) -> dict:
    import onnxruntime as ort

    session = ort.InferenceSession(str(directory / "model.onnx"), providers=["CPUExecutionProvider"])
    names = [t["output"] for t in json.loads((directory / "preprocessing.json").read_text())["tasks"].values()]
    wanted = {i.name for i in session.get_inputs()}
    return dict(zip(names, session.run(names, {k: v for k, v in feeds.items() if k in wanted}), strict=True))


def run_torch(module, directory: Path, feeds: dict, prep: dict, schema: dict) -> dict:
    outs = module(*[torch.from_numpy(feeds[name]) for name in prep["inputs"]])
    return {o["name"]: t.detach().numpy() for o, t in zip(schema["outputs"], outs, strict=True)}


def assert_same(decoded: dict, expected, what: str) -> None:
    for col, values in decoded.items():
        want = expected.column(col).to_pylist()
        if isinstance(values, np.ndarray) and values.dtype.kind == "f":
            np.testing.assert_allclose(values, np.asarray(want, dtype=np.float64), atol=ATOL, rtol=0,
                                       err_msg=f"{what}: {col}")
        else:
            got = [v.item() if hasattr(v, "item") else v for v in values]
            assert got == want, f"{what}: {col}"
    predicted = [c for c in expected.column_names if c.endswith(("prediction", "probability")) or "prob_" in c
                 or c.startswith("prediction_")]
    assert set(predicted) <= set(decoded), (predicted, list(decoded))


_EXPORTED: dict[tuple[str, str, str], Path] = {}


def export(home, name, fmt, tmp_path):
    """The export of ``name`` as ``fmt`` (each done once per home: the tests only read it)."""
    from specml.export import export_model

    key = (str(home), name, fmt)
    if key not in _EXPORTED:
        _EXPORTED[key] = export_model(name, fmt, tmp_path / f"{name}-{fmt}", home=home).directory
    return _EXPORTED[key]


@pytest.mark.parametrize("family", ["binary", "multiclass", "multitask"])
def test_network_onnx_and_torchscript_match_specml_predict(zoo, family, tmp_path):
    home, names, columns = zoo
    name = names[family]
    expected = modelzoo.predicted(home, name)
    for fmt in ("onnx", "torchscript"):
        directory = export(home, name, fmt, tmp_path)
        ref = reference(directory)
        prep = ref.load(directory)
        schema = json.loads((directory / "schema.json").read_text())
        feeds = ref.encode(prep, columns)
        if fmt == "onnx":
            outputs = run_onnx(directory, feeds)
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit.load points to torch.export
                loaded = torch.jit.load(str(directory / "model.torchscript.pt"))
            outputs = run_torch(loaded, directory, feeds, prep, schema)
        assert_same(ref.decode(prep, outputs), expected, f"{name} {fmt}")


def test_torch_export_program_matches_and_batch_is_dynamic(zoo, tmp_path):
    home, names, columns = zoo
    directory = export(home, names["binary"], "torch-export", tmp_path)
    ref = reference(directory)
    prep, schema = ref.load(directory), json.loads((directory / "schema.json").read_text())
    program = torch.export.load(str(directory / "model.pt2")).module()
    expected = modelzoo.predicted(home, names["binary"])
    for rows in (1, 7, len(columns["age"])):  # the batch axis is dynamic
        part = {k: v[:rows] for k, v in columns.items()}
        decoded = ref.decode(prep, run_torch(program, directory, ref.encode(prep, part), prep, schema))
        assert_same(decoded, expected.slice(0, rows), f"torch-export, {rows} rows")


def test_schema_names_columns_types_and_categories(zoo, tmp_path):
    home, names, _ = zoo
    directory = export(home, names["binary"], "onnx", tmp_path)
    assert sorted(p.name for p in directory.iterdir()) == ["model.onnx", "preprocessing.json", "schema.json",
                                                           "specml_preprocess.py"]
    schema = json.loads((directory / "schema.json").read_text())
    by_name = {c["name"]: c for c in schema["columns"]}
    assert set(by_name) == {*modelzoo.NUMERIC, "age_band"}
    assert by_name["glucose"]["type"] == "number"
    assert by_name["age_band"] == {"name": "age_band", "input": "age_band", "type": "categorical",
                                   "categories": ["middle", "senior", "young"]}
    assert [i["shape"] for i in schema["inputs"]] == [["batch", 8], ["batch"]]
    assert schema["outputs"][0]["kind"] == "binary"
    import onnx

    graph = onnx.load(str(directory / "model.onnx")).graph
    assert graph.input[0].type.tensor_type.shape.dim[0].dim_param  # a named, dynamic batch axis


def test_unknown_category_maps_to_id_zero_as_specml_does(zoo, tmp_path):
    home, names, columns = zoo
    directory = export(home, names["binary"], "onnx", tmp_path)
    ref = reference(directory)
    prep = ref.load(directory)
    row = {k: v[:2] for k, v in columns.items()}
    row["age_band"] = ["centenarian", None]
    assert ref.encode(prep, row)["age_band"].tolist() == [0, 0]


def test_lightgbm_onnx_and_native_match_specml_predict(zoo, tmp_path):
    import lightgbm

    home, names, columns = zoo
    expected = modelzoo.predicted(home, names["lightgbm"])
    directory = export(home, names["lightgbm"], "onnx", tmp_path)
    ref = reference(directory)
    prep = ref.load(directory)
    feeds = ref.encode(prep, columns)
    assert feeds["input"].dtype == np.float32 and feeds["input"].shape == (len(columns["age"]), 8)
    assert_same(ref.decode(prep, run_onnx(directory, feeds)), expected, "lightgbm onnx")
    native = export(home, names["lightgbm"], "native", tmp_path)
    booster = lightgbm.Booster(model_file=str(native / "model.txt"))
    matrix = ref.encode(ref.load(native), columns)["input"]
    assert matrix.dtype == np.float64  # the native model reads what specml feeds it
    p = booster.predict(matrix)
    np.testing.assert_allclose(p, expected.column("probability").to_numpy(), atol=ATOL, rtol=0)


@pytest.mark.parametrize(("name", "spec"), [
    ("xgb", "estimator: {type: xgboost.XGBClassifier, params: {n_estimators: 20, max_depth: 3, n_jobs: 1}}\n"
            "target: outcome\nverbose: 0\nfeatures: [glucose, bmi, age, age_band]\n"),
    # scaling, median imputation and one-hot categories in the reference; a regression target
    ("ridge", "estimator: {type: sklearn.linear_model.Ridge}\ntarget: bmi\nverbose: 0\n"
              "features: [glucose, age, insulin, age_band]\n"),
])
def test_other_classical_families_onnx(zoo, tmp_path, name, spec):
    from specml.classical.train import train_estimator

    home, _, columns = zoo
    path = tmp_path / f"{name}.yaml"
    path.write_text(spec)
    train_estimator(path, table=modelzoo.TABLE, name=name, home=home, workspace=home / "workspace.duckdb",
                    verbose=False)
    directory = export(home, name, "onnx", tmp_path)
    ref = reference(directory)
    prep = ref.load(directory)
    assert_same(ref.decode(prep, run_onnx(directory, ref.encode(prep, columns))), modelzoo.predicted(home, name),
                f"{name} onnx")


def test_cli_export_writes_the_directory(zoo, cli, tmp_path):
    home, names, _ = zoo
    out = tmp_path / "cli"
    done = cli("export", "--model", names["multiclass"], "--format", "torchscript", "--output", out, home=home)
    assert done.returncode == 0, done.stderr
    assert "exported 'multi' as torchscript" in done.stdout
    assert (out / "model.torchscript.pt").is_file() and (out / "specml_preprocess.py").is_file()
    again = cli("export", "--model", names["multiclass"], "--format", "torchscript", "--output", out, home=home)
    assert again.returncode == 1 and "not empty" in again.stderr
    (out / "mine.txt").write_text("kept")
    assert cli("export", "--model", names["multiclass"], "--format", "torch-export", "--output", out, "--replace",
               home=home).returncode == 0
    assert sorted(p.name for p in out.iterdir()) == ["mine.txt", "model.pt2", "preprocessing.json", "schema.json",
                                                     "specml_preprocess.py"]  # the earlier export's model is gone
