"""A trained classical model out of specml: ONNX (skl2onnx, onnxmltools for XGBoost and LightGBM) or the
library's own format (XGBoost JSON, LightGBM text).

The ONNX graph takes the preprocessed float32 matrix ``input`` [batch, features]; the fitted imputation,
scaling and category encoding are written to ``preprocessing.json`` and applied by the numpy reference
``specml_preprocess.py`` (a scikit-learn ColumnTransformer of strings does not convert to one graph for
the GBM converters). Its output ``probabilities`` (classifiers) or ``variable`` (regressors) are the scores
``specml predict`` turns into columns.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np

from specml.export.errors import ExportError
from specml.export.schema import FORMAT_VERSION

NATIVE_SUFFIX = {"xgboost": "json", "lightgbm": "txt"}


def preprocessing(model, fmt: str = "onnx") -> dict[str, Any]:
    """``preprocessing.json`` of a classical model (:class:`specml.classical.predict.Classical`); the matrix is
    float32 for ONNX (what its tree ensembles read), float64 for the native formats (what specml feeds them)."""
    names = model.features.columns
    numeric: dict[str, Any] = {"columns": [], "impute": None, "mean": None, "scale": None}
    categorical: dict[str, Any] = {"columns": [], "categories": [], "encoding": None}
    for kind, step, cols in model.preprocessor.transformers_:
        if kind == "numeric":
            numeric["columns"] = [names[i] for i in cols]
            steps = dict(step.steps) if hasattr(step, "steps") else {}
            if "impute" in steps:
                numeric["impute"] = [float(v) for v in steps["impute"].statistics_]
            if "scale" in steps:
                numeric["mean"] = [float(v) for v in steps["scale"].mean_]
                numeric["scale"] = [float(v) for v in steps["scale"].scale_]
        elif kind == "categorical":
            categorical["columns"] = [names[i] for i in cols]
            categorical["categories"] = [[str(v) for v in c] for c in step.categories_]
            categorical["encoding"] = "onehot" if type(step).__name__ == "OneHotEncoder" else "ordinal"
    task = model.task
    output = "variable" if task == "regression" else "probabilities"
    target = model.metadata.get("target") or "target"
    return {"format_version": FORMAT_VERSION, "kind": "classical", "input_dtype": "float32" if fmt == "onnx" else
            "float64", "numeric": numeric, "categorical": categorical,
            "tasks": {target: {"output": output, "kind": task, "classes": model.classes, "columns": None,
                               "pad": None}},
            "multi_task": False}


def schema(model, fmt: str, model_file: str, width: int) -> dict[str, Any]:
    cats = model.features.categorical
    columns = [{"name": c, "type": "categorical" if c in cats else "number",
                **({"dtype": "float64"} if c not in cats else {})} for c in model.features.columns]
    return {"format_version": FORMAT_VERSION, "model": model.name, "kind": "classical", "task": model.task,
            "family": model.family, "format": fmt, "file": model_file, "columns": columns,
            "inputs": [{"name": "input", "dtype": "float32", "shape": ["batch", width]}],
            "outputs": [{"name": "variable" if model.task == "regression" else "probabilities",
                         "dtype": "float32", "shape": ["batch"] if model.task == "regression" else
                         ["batch", len(model.classes or [])]}],
            "batch_axis": "dynamic (axis 0)"}


def width(model) -> int:
    """How many columns the preprocessed matrix has."""
    import pyarrow as pa

    from specml.classical.frame import to_matrix

    row = {c: pa.array([None], type=pa.string() if c in model.features.categorical else pa.float64())
           for c in model.features.columns}
    return int(model.preprocessor.transform(to_matrix(pa.table(row), model.features)).shape[1])


def to_onnx(model, n_features: int):
    """The estimator as an ONNX ModelProto, or :class:`ExportError` saying why it cannot be."""
    try:
        from onnxmltools.convert.common.data_types import FloatTensorType
    except ImportError:
        raise ExportError("--format onnx needs the onnx packages: pip install 'specml[export]'") from None
    inputs = [("input", FloatTensorType([None, n_features]))]
    est, family = model.estimator, model.family
    try:
        if family == "lightgbm":
            from onnxmltools import convert_lightgbm

            return convert_lightgbm(est, initial_types=inputs, zipmap=False)
        if family == "xgboost":
            from onnxmltools import convert_xgboost

            return convert_xgboost(est, initial_types=inputs)
        if family == "sklearn":
            from skl2onnx import convert_sklearn
            from skl2onnx.common.data_types import FloatTensorType as SklFloat

            options = {id(est): {"zipmap": False}} if model.task != "regression" else None
            return convert_sklearn(est, initial_types=[("input", SklFloat([None, n_features]))], options=options)
    except Exception as err:  # noqa: BLE001 - the converter's reason, in one line
        first = next((line for line in str(err).splitlines() if line.strip()), type(err).__name__)
        raise ExportError(f"model '{model.name}' ({type(est).__name__}) cannot be converted to ONNX: {first[:300]}"
                          + (f"; use --format native ({NATIVE_SUFFIX[family]})" if family in NATIVE_SUFFIX else ""))
    raise ExportError(f"model '{model.name}': {family} models have no ONNX converter here; "
                      "CatBoost exports ONNX through catboost's own save_model(format='onnx')")


def export_classical(model, fmt: str, out: Path, source: Path) -> tuple[Path, dict]:
    """Write ``model`` as ``fmt`` (onnx or native) under ``out``; (the model file, schema.json)."""
    n = width(model)
    if fmt == "native":
        if model.family not in NATIVE_SUFFIX:
            raise ExportError(f"model '{model.name}': --format native is for XGBoost (JSON) and LightGBM (text) "
                              f"models; a {model.family} model exports with --format onnx")
        stored = model.metadata["files"]["model"]["file"]
        path = out / f"model.{NATIVE_SUFFIX[model.family]}"
        shutil.copyfile(source / stored, path)
        return path, schema(model, fmt, path.name, n)
    proto = to_onnx(model, n)
    _check_outputs(model, proto)
    path = out / "model.onnx"
    path.write_bytes(proto.SerializeToString())
    return path, schema(model, fmt, path.name, n)


def _check_outputs(model, proto) -> None:
    names = [o.name for o in proto.graph.output]
    want = "variable" if model.task == "regression" else "probabilities"
    if want not in names:
        raise ExportError(f"model '{model.name}': its ONNX graph has outputs {names}, not '{want}'; "
                          "this estimator is not supported by specml export")


def scores(model, outputs: dict[str, np.ndarray]) -> np.ndarray:
    """specml's scores from the ONNX outputs: positive-class probability (binary), class probabilities."""
    if model.task == "regression":
        return np.asarray(outputs["variable"], dtype=np.float64).reshape(-1)
    p = np.asarray(outputs["probabilities"], dtype=np.float64)
    return p[:, 1] if model.task == "binary" else p
