"""Using a trained classical model: load it (no pickle), evaluate it on a table, predict a table.

:func:`evaluate_classical` and :func:`predict_classical` return what :func:`specml.api.evaluate` and
:func:`specml.api.predict` return for neural models: ``{"model", "table", "rows", "task", "metrics"}``,
and a pyarrow Table laid out by :mod:`specml.predictions` as for neural models.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from specml.artifact import ArtifactError, ModelArtifact, TrainedModel
from specml.classical import persist, preprocess
from specml.classical.frame import Features, to_matrix
from specml.classical.score import metrics, scores
from specml.spec.estimator import EstimatorTypeError, resolve_estimator

PREDICT_BATCH = 262_144


@dataclass
class Classical(TrainedModel):
    name: str
    metadata: dict
    preprocessor: Any
    estimator: Any
    family: str
    features: Features


    def scores(self, data) -> np.ndarray:
        """Scores of every row of an Arrow table holding the features (in batches)."""
        out = []
        for start in range(0, data.num_rows, PREDICT_BATCH):
            X = to_matrix(data.slice(start, PREDICT_BATCH), self.features)
            out.append(scores(self.family, self.estimator, preprocess.transform(self.preprocessor, X), self.task))
        if not out:
            width = len(self.classes or []) if self.task == "multiclass" else 0
            return np.empty((0, width)) if width else np.empty(0)
        return np.concatenate(out)


def is_classical(metadata: dict) -> bool:
    return metadata.get("kind") == "classical"


def load_classical(name: str, home: str | Path | None = None) -> Classical:
    """The model saved as ``models/<name>/`` by :func:`specml.classical.train.train_estimator`."""
    artifact = ModelArtifact.for_name(name, home)
    meta = artifact.read_metadata()
    if not is_classical(meta):
        raise ArtifactError(f"model '{name}' is not a classical model (metadata.json kind is {meta.get('kind')!r})")
    try:
        est = meta["estimator"]
        info = resolve_estimator(est["type"])
        files = meta["files"]
        features = Features.from_dict(meta["features"])
        task = meta["task"]
    except (KeyError, TypeError) as exc:
        raise ArtifactError(f"model '{name}': metadata.json lacks {exc}") from None
    except EstimatorTypeError as exc:
        raise ArtifactError(f"model '{name}': {exc}") from None
    if info.family != est.get("family"):
        raise ArtifactError(f"model '{name}': metadata.json says family {est.get('family')!r} for {info.name}")
    if task not in ("binary", "multiclass", "regression"):
        raise ArtifactError(f"model '{name}': unknown task {task!r} in metadata.json")
    pre = persist.load_preprocessor(artifact.directory, files.get("preprocessor"), name)
    model = persist.load_model(artifact.directory, info.family, info.load(), files.get("model"), name)
    return Classical(name, meta, pre, model, info.family, features)


def _open_workspace(workspace: Any, read_only: bool = True):
    from specml.data.workspace import Workspace

    return workspace if hasattr(workspace, "read_columns") else Workspace(workspace, read_only=read_only)


def _labels(model: Classical, column) -> np.ndarray:
    """The target column as class ids of the model's classes (regression: floats)."""
    from specml.classical.errors import ClassicalError

    if model.task == "regression":
        return np.asarray(column.to_numpy(zero_copy_only=False), dtype=np.float64)
    values = column.to_numpy(zero_copy_only=False)
    classes = model.classes
    lookup = {c: i for i, c in enumerate(classes)}
    try:
        return np.fromiter((lookup[v.item() if hasattr(v, "item") else v] for v in values), dtype=np.int64,
                           count=len(values))
    except KeyError as exc:
        raise ClassicalError(f"target '{model.metadata['target']}' holds {exc.args[0]!r}, a class model "
                             f"'{model.name}' was not trained on (its classes: {classes})") from None


def _class_ids(model: Classical, column) -> np.ndarray:
    """Vectorised class-id lookup (the classes are sorted: searchsorted, then an exact check)."""
    values = column.to_numpy(zero_copy_only=False)
    classes = np.asarray(model.classes)
    try:
        idx = np.searchsorted(classes, values)
        idx = np.clip(idx, 0, len(classes) - 1)
        if np.all(classes[idx] == values):
            return idx.astype(np.int64)
    except TypeError:
        pass
    return _labels(model, column)


def evaluate_classical(name: str, table: str, *, workspace: Any = None, home: str | Path | None = None,
                       model: Classical | None = None, threshold: float | str | None = None) -> dict:
    """Metrics of a classical model on a table holding the features and the target."""
    from specml.classical.errors import ClassicalError

    model = model or load_classical(name, home)
    ws = _open_workspace(workspace)
    target = model.metadata["target"]
    columns = list(dict.fromkeys([*model.features.columns, target]))
    try:
        ws.require_table(table)
        ws.require_columns(table, columns)
        data = ws.read_columns(table, columns)
    finally:
        if ws is not workspace:
            ws.close()
    if data.num_rows == 0:
        raise ClassicalError(f"table '{table}' is empty")
    from specml.evaluation import classification_details, seen_rows
    from specml.predictions import threshold_of

    seen = seen_rows(ws, table, model.metadata.get("table"), columns,
                     (model.metadata.get("lineage") or {}).get("data_fingerprint"))
    from specml.data.files import fingerprint

    rows, digest = fingerprint(ws, table)
    col = data.column(target)
    if col.null_count:
        raise ClassicalError(f"target '{target}' has {col.null_count} NULL value(s) in table '{table}'")
    y = np.asarray(col.to_numpy(zero_copy_only=False), dtype=np.float64) if model.task == "regression" \
        else _class_ids(model, col)
    s = model.scores(data)
    values = metrics(model.task, y, s, len(model.classes) if model.classes else None)
    cut = threshold_of(model.metadata, threshold)
    details = classification_details(model.task, y, s, model.classes, cut)
    report = {"model": name, "table": table, "rows": data.num_rows, "task": model.task, "metrics": values,
              **details, "seen": seen, "data": {"rows": rows, "fingerprint": digest}}
    stored = model.metadata.get("threshold")
    if isinstance(stored, dict) and report.get("threshold") is not None:
        report["chosen_threshold"] = {"f1": stored.get("value"), "youden": stored.get("youden")}
    figures = _figures(name, home, table, model, y, s, cut)
    if figures:
        report["figures"] = figures
    return report


def _figures(name: str, home: Any, table: str, model: Classical, y: np.ndarray, s: np.ndarray, cut: float) -> list[str]:
    """The evaluation figures, under the model's run (``figures/evaluate_<table>/``); a failure is a warning."""
    import warnings

    from specml.home import inside, slug, specml_home

    artifact = ModelArtifact.for_name(name, home)
    run_dir = artifact.run_dir
    base = (run_dir / "figures" if run_dir is not None else artifact.directory / "figures") / f"evaluate_{slug(table)}"
    try:
        base = inside(base, specml_home(home))
        from specml.track.figures import evaluation_figures

        names = [str(c) for c in model.classes] if model.classes else None
        paths = evaluation_figures(model.task, y, s, base, class_names=names, title=f"{name} on {table}",
                                   threshold=cut)
        if run_dir is not None:
            from specml.track.figures import to_tensorboard

            to_tensorboard(paths, run_dir / "tensorboard", f"evaluate/{slug(table)}")
        return [str(p) for p in paths]
    except Exception as err:  # noqa: BLE001 - a figure is worth less than the metrics
        warnings.warn(f"evaluation figures were not written: {err}", stacklevel=2)
        return []


def predict_classical(name: str, table: str, *, output_table: str | None = None, output: str | Path | None = None,
                      keep: list[str] | None = None, workspace: Any = None, home: str | Path | None = None,
                      model: Classical | None = None, replace: bool = False, keep_all: bool = False,
                      threshold: float | str | None = None):
    """Predictions for every row of ``table`` (see the module docstring); written to ``output_table``
    and/or ``output`` (.csv / .parquet) when given; returned as a pyarrow Table."""
    from specml.predictions import predict_rows, task_columns

    model = model or load_classical(name, home)

    def score(data, cut):
        columns = task_columns(model.task, model.scores(data), classes=model.classes, threshold=cut)
        return {model.metadata.get("target") or "target": columns}

    return predict_rows(workspace, table, model.features.columns, model.metadata, score, output_table=output_table,
                        output=output, keep=keep, keep_all=keep_all, replace=replace, threshold=threshold)
