"""Ensemble models: saved models blended by weights, chosen by greedy selection on validation predictions.

:func:`greedy_selection` is Caruana et al. (2004), "Ensemble selection from libraries of models": start
from nothing and, for a fixed number of rounds, add (with replacement) the member whose addition gives
the blend with the lowest validation loss (log loss for classification, RMSE for regression: see
:func:`specml.guard.loss`); a member's weight is the share of rounds that chose it.

An ensemble is saved as ``models/<name>/metadata.json`` with ``kind: "ensemble"``: its members by
reference (model names, each with its weight, kind, classes and the sha256 of its model files), the task,
target and
classes; JSON only, no pickle. Scoring a table blends the members' scores (class probabilities, or
values) with the weights; a member replaced or retrained since the ensemble was built is refused.
:func:`evaluate_ensemble` and :func:`predict_ensemble` answer as :mod:`specml.classical.predict` does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from specml.artifact import ArtifactError, ModelArtifact, TrainedModel
from specml.guard import loss

KIND = "ensemble"
ROUNDS = 25  # selection rounds (with replacement): weights in steps of 1/25


def greedy_selection(predictions: dict[str, np.ndarray], y: np.ndarray, task: str, rounds: int = ROUNDS
                     ) -> dict[str, float]:
    """Member -> weight (summing to 1) chosen on the validation rows ``y`` by greedy selection with
    replacement. Ties go to the member listed first."""
    if not predictions:
        raise ValueError("greedy selection needs at least one member's predictions")
    names = list(predictions)
    preds = {k: np.asarray(v, dtype=np.float64) for k, v in predictions.items()}
    counts = dict.fromkeys(names, 0)
    total = None
    for step in range(1, rounds + 1):
        best, best_loss = None, np.inf
        for name in names:
            blend = preds[name] if total is None else (total + preds[name])
            value = loss(task, y, blend / step)
            if value is not None and value < best_loss - 1e-12:
                best, best_loss = name, value
        if best is None:  # every blend is non-finite
            break
        counts[best] += 1
        total = preds[best].copy() if total is None else total + preds[best]
    chosen = sum(counts.values())
    if not chosen:
        raise ValueError("greedy selection: no member has finite predictions")
    return {k: c / chosen for k, c in counts.items() if c}


def blend(scores: list[np.ndarray], weights: list[float]) -> np.ndarray:
    """The weighted average of the members' scores."""
    total = sum(weights)
    out = sum(w * np.asarray(s, dtype=np.float64) for s, w in zip(scores, weights, strict=True))
    return out / total


def _as_strings(classes: list | None) -> list[str] | None:
    return None if classes is None else [str(c) for c in classes]


def align(scores: np.ndarray, task: str, member_classes: list | None, classes: list | None) -> np.ndarray:
    """A member's classification scores in the ensemble's class order (regression: as they are)."""
    if task == "regression" or member_classes is None or classes is None:
        return np.asarray(scores, dtype=np.float64)
    mine, theirs = _as_strings(member_classes), _as_strings(classes)
    if mine == theirs:
        return np.asarray(scores, dtype=np.float64)
    if sorted(mine) != sorted(theirs):
        raise ArtifactError(f"an ensemble member has classes {mine}, the ensemble {theirs}")
    s = np.asarray(scores, dtype=np.float64)
    matrix = np.stack([1.0 - s.reshape(-1), s.reshape(-1)], axis=1) if task == "binary" else s
    matrix = matrix[:, [mine.index(c) for c in theirs]]
    return matrix[:, 1] if task == "binary" else matrix


# ----------------------------------------------------------------------------------------------
# members


def member_info(name: str, home: str | Path | None = None) -> dict:
    """What the ensemble keeps about a member: kind, classes, features, created_at."""
    meta = ModelArtifact.for_name(name, home).read_metadata()
    kind = meta.get("kind") or "neural"
    if kind == KIND:
        raise ArtifactError(f"model '{name}' is an ensemble; an ensemble's members are single models")
    if kind == "classical":
        classes = meta.get("classes")
        features = list((meta.get("features") or {}).get("columns", []))
    else:
        tasks = meta.get("tasks") or {}
        if len(tasks) > 1:
            raise ArtifactError(f"model '{name}' has {len(tasks)} tasks; an ensemble blends single-task models")
        classes = _neural_classes(meta)
        features = list(dict.fromkeys(c for cols in (meta.get("inputs") or {}).values() for c in (cols or [])))
    return {"name": name, "kind": kind, "classes": classes, "features": features,
            "created_at": meta.get("created_at"), "task": meta.get("task"), "target": meta.get("target"),
            "sha256": stamp(name, home)}


def stamp(name: str, home: str | Path | None = None) -> str:
    """sha256 of what scores a member: a network's weights file, a classical model's model and
    preprocessor files (a member trained again gets another stamp)."""
    import hashlib

    artifact = ModelArtifact.for_name(name, home)
    meta = artifact.read_metadata()
    if meta.get("kind") == "classical":
        files = meta.get("files") or {}
        paths = [artifact.directory / str((files.get(k) or {}).get("file")) for k in ("model", "preprocessor")]
    else:
        paths = [artifact.weights_path]
    digest = hashlib.sha256()
    for path in paths:
        try:
            digest.update(path.read_bytes())
        except OSError as err:
            raise ArtifactError(f"model '{name}': {path} cannot be read ({err})") from None
    return digest.hexdigest()


def _neural_classes(meta: dict) -> list | None:
    targets = (meta.get("preprocessing") or {}).get("targets") or {}
    first = next(iter(targets.values()), {}) if isinstance(targets, dict) else {}
    return first.get("classes") if isinstance(first, dict) else None


def member_scores(name: str, kind: str, data, home: str | Path | None = None) -> np.ndarray:
    """One member's scores of every row of ``data`` (an Arrow table holding its features)."""
    if kind == "classical":
        from specml.classical.predict import load_classical

        return load_classical(name, home).scores(data)
    from specml.train.inference import load_trained, task_scores

    return next(iter(task_scores(load_trained(name, home), data).values()))


# ----------------------------------------------------------------------------------------------
# the saved ensemble


def save_ensemble(name: str, weights: dict[str, float], *, task: str, target: str, classes: list | None,
                  home: str | Path | None = None, table: str | None = None, selection: dict | None = None,
                  extra: dict | None = None) -> Path:
    """Write ``models/<name>/metadata.json`` for an ensemble of saved models (``weights``: member -> weight)."""
    members = []
    features: list[str] = []
    for member, weight in weights.items():
        info = member_info(member, home)
        if info["task"] != task:
            raise ArtifactError(f"ensemble member '{member}' is a {info['task']} model; the ensemble is {task}")
        align(np.zeros((1, len(classes))) if task == "multiclass" else np.zeros(1), task, info["classes"], classes)
        members.append({**info, "weight": float(weight)})
        features += info["features"]
    artifact = ModelArtifact.for_name(name, home)
    artifact.directory.mkdir(parents=True, exist_ok=True)
    artifact.write_metadata({
        "kind": KIND, "task": task, "table": table, "target": target, "classes": classes,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "features": {"columns": list(dict.fromkeys(features))},
        "members": members, "selection": selection or {}, **(extra or {}),
    })
    return artifact.directory


@dataclass
class Ensemble(TrainedModel):
    name: str
    metadata: dict

    @property
    def features(self) -> list[str]:
        return list(self.metadata["features"]["columns"])

    def scores(self, data, home: str | Path | None = None) -> np.ndarray:
        """The weighted blend of the members' scores of every row of ``data``."""
        parts, weights = [], []
        for m in self.metadata["members"]:
            s = member_scores(m["name"], m["kind"], data, home)
            parts.append(align(s, self.task, m.get("classes"), self.classes))
            weights.append(float(m["weight"]))
        return blend(parts, weights)


def load_ensemble(name: str, home: str | Path | None = None) -> Ensemble:
    """The ensemble saved as ``models/<name>/``; its members must be the models it was built from."""
    meta = ModelArtifact.for_name(name, home).read_metadata()
    if meta.get("kind") != KIND:
        raise ArtifactError(f"model '{name}' is not an ensemble (metadata.json kind is {meta.get('kind')!r})")
    try:
        members = meta["members"]
        if meta["task"] not in ("binary", "multiclass", "regression") or not members:
            raise ValueError("a task and members")
        for m in members:
            if float(m["weight"]) <= 0 or not isinstance(m["name"], str):
                raise ValueError(f"member {m.get('name')!r}: a name and a positive weight")
        _ = meta["features"]["columns"]
    except (KeyError, TypeError, ValueError) as exc:
        raise ArtifactError(f"model '{name}': metadata.json of an ensemble needs {exc}") from None
    for m in members:
        now = ModelArtifact.for_name(m["name"], home)
        if not now.exists():
            raise ArtifactError(f"ensemble '{name}': its member '{m['name']}' is gone ({now.directory})")
        if stamp(m["name"], home) != m.get("sha256"):
            raise ArtifactError(f"ensemble '{name}': its member '{m['name']}' was trained again after the ensemble "
                                "was built; build the ensemble again (specml model ... --ensemble)")
    return Ensemble(name, meta)


def _open_workspace(workspace: Any, read_only: bool = True):
    from specml.data.workspace import Workspace

    return workspace if hasattr(workspace, "read_columns") else Workspace(workspace, read_only=read_only)


def class_ids(values, classes: list) -> np.ndarray:
    """Target values as ids of ``classes`` (matched as text: 1 and "1" are one class)."""
    from specml.data.errors import DataError

    lookup = {c: i for i, c in enumerate(_as_strings(classes))}
    try:
        return np.fromiter((lookup[str(v)] for v in values), dtype=np.int64, count=len(values))
    except KeyError as exc:
        raise DataError(f"the target holds {exc.args[0]!r}, a class the ensemble was not trained on "
                        f"(its classes: {classes})") from None


def evaluate_ensemble(name: str, table: str, *, workspace: Any = None, home: str | Path | None = None,
                      threshold: float | str | None = None) -> dict:
    """Metrics of an ensemble on a table holding its members' features and the target."""
    from specml.classical.score import metrics
    from specml.data.errors import DataError
    from specml.data.files import fingerprint
    from specml.evaluation import classification_details, seen_rows
    from specml.predictions import threshold_of

    model = load_ensemble(name, home)
    target = model.metadata["target"]
    columns = list(dict.fromkeys([*model.features, target]))
    ws = _open_workspace(workspace)
    try:
        ws.require_table(table)
        ws.require_columns(table, columns)
        data = ws.read_columns(table, columns)
        seen = seen_rows(ws, table, model.metadata.get("table"), columns, None)
        rows, digest = fingerprint(ws, table)
    finally:
        if ws is not workspace:
            ws.close()
    if data.num_rows == 0:
        raise DataError(f"table '{table}' is empty")
    col = data.column(target)
    if col.null_count:
        raise DataError(f"target '{target}' has {col.null_count} NULL value(s) in table '{table}'")
    values = col.to_pylist()
    y = np.asarray(values, dtype=np.float64) if model.task == "regression" else class_ids(values, model.classes)
    s = model.scores(data, home)
    n_classes = len(model.classes) if model.classes else None
    cut = threshold_of(model.metadata, threshold)
    report = {"model": name, "table": table, "rows": data.num_rows, "task": model.task,
              "metrics": metrics(model.task, y, s, n_classes),
              **classification_details(model.task, y, s, model.classes, cut), "seen": seen,
              "data": {"rows": rows, "fingerprint": digest}}
    stored = model.metadata.get("threshold")
    if isinstance(stored, dict) and report.get("threshold") is not None:
        report["chosen_threshold"] = {"f1": stored.get("value"), "youden": stored.get("youden")}
    return report


def predict_ensemble(name: str, table: str, *, output_table: str | None = None, output: str | Path | None = None,
                     keep: list[str] | None = None, workspace: Any = None, home: str | Path | None = None,
                     replace: bool = False, keep_all: bool = False, threshold: float | str | None = None):
    """Predictions of an ensemble for every row of ``table``, laid out as every model's
    (:mod:`specml.predictions`); written to ``output_table`` and/or ``output`` when given."""
    from specml.predictions import predict_rows, task_columns

    model = load_ensemble(name, home)

    def score(data, cut):
        columns = task_columns(model.task, model.scores(data, home), classes=model.classes, threshold=cut)
        return {model.metadata.get("target") or "target": columns}

    return predict_rows(workspace, table, model.features, model.metadata, score, output_table=output_table,
                        output=output, keep=keep, keep_all=keep_all, replace=replace, threshold=threshold)
