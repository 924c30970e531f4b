"""The trivial-baseline guard: is a trained model worse than predicting the mean or the class prior?

After a training (neural or classical) the model's validation predictions are compared with the
trivial predictor's, fitted on the same training rows: the mean (regression) or the class shares
(classification). The comparison uses the loss the runs monitor: RMSE for regression (the root of
the MSE a network's ``val_loss`` is), log loss for classification. A classifier counts as worse only
when its log loss is worse *and* its accuracy is no better than always answering the majority class:
a sharp but mostly right classifier (a tree, a 1-NN) can have a poor log loss and still be useful.
Predictions that are not finite (a diverged network) are always worse.

:func:`record` writes the verdict into the model's ``metadata.json`` (``guard``) and the registry
(``runs.worse_than_trivial``, shown by ``specml leaderboard``). Nothing here imports torch.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

_EPS = 1e-15


@dataclass
class Verdict:
    """The guard's comparison on the validation rows."""

    worse: bool
    metric: str                 # rmse | log_loss
    value: float | None         # the model's (None: not finite)
    trivial: float              # the trivial predictor's
    rows: int
    trivial_name: str           # "the mean" | "the class prior"

    def to_dict(self) -> dict:
        return {"worse_than_trivial": self.worse, "metric": self.metric, "value": self.value,
                "trivial": self.trivial, "trivial_predictor": self.trivial_name, "rows": self.rows,
                "chosen_on": "validation rows"}

    def message(self, name: str) -> str:
        shown = "not finite" if self.value is None else f"{self.value:.4g}"
        if self.worse:
            return (f"WORSE THAN TRIVIAL: model '{name}' has validation {self.metric} {shown}, worse than "
                    f"{self.trivial_name} ({self.trivial:.4g}) on the same {self.rows:,} validation rows: it "
                    "learned nothing useful (diverged, or the settings do not fit this data)")
        return f"model '{name}': validation {self.metric} {shown} beats {self.trivial_name} ({self.trivial:.4g})"


def trivial_scores(task: str, y_train: np.ndarray, n: int, n_classes: int | None = None) -> np.ndarray:
    """The trivial predictor's scores for ``n`` rows: the training mean, or the training class shares
    (binary: the positive share; multiclass: ``[n, n_classes]``)."""
    y = np.asarray(y_train)
    if task == "regression":
        mean = y.astype(np.float64).mean(axis=0)
        return np.broadcast_to(mean, (n, *np.shape(mean))).copy()
    counts = np.bincount(y.astype(np.int64).reshape(-1), minlength=n_classes or 2).astype(np.float64)
    shares = counts / max(counts.sum(), 1.0)
    if task == "binary":
        return np.full(n, shares[1] if len(shares) > 1 else 0.0)
    return np.tile(shares, (n, 1))


def loss(task: str, y: np.ndarray, scores: np.ndarray) -> float | None:
    """RMSE (regression) or log loss (classification, probabilities clipped to [1e-15, 1 - 1e-15]);
    None when the scores are not all finite."""
    s = np.asarray(scores, dtype=np.float64)
    if not np.all(np.isfinite(s)):
        return None
    if task == "regression":
        y = np.asarray(y, dtype=np.float64).reshape(s.shape)
        return float(np.sqrt(np.mean((s - y) ** 2)))
    y = np.asarray(y).astype(np.int64).reshape(-1)
    if task == "binary":
        p = np.clip(s.reshape(-1), _EPS, 1 - _EPS)
        return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))
    p = np.clip(s.reshape(len(y), -1), _EPS, 1.0)
    p = p / p.sum(axis=1, keepdims=True)
    return float(-np.mean(np.log(p[np.arange(len(y)), y])))


def _accuracy(task: str, y: np.ndarray, scores: np.ndarray) -> float:
    y = np.asarray(y).astype(np.int64).reshape(-1)
    s = np.asarray(scores, dtype=np.float64)
    pred = (s.reshape(-1) > 0.5).astype(np.int64) if task == "binary" else s.reshape(len(y), -1).argmax(axis=1)
    return float(np.mean(pred == y)) if len(y) else math.nan


def check(task: str, y_train: np.ndarray, y_val: np.ndarray, scores_val: np.ndarray,
          n_classes: int | None = None) -> Verdict | None:
    """The verdict on one model's validation predictions (None without validation rows or for tasks the
    guard does not cover)."""
    if task not in ("binary", "multiclass", "regression") or len(y_val) == 0 or len(y_train) == 0:
        return None
    trivial = trivial_scores(task, y_train, len(y_val), n_classes)
    base = loss(task, y_val, trivial)
    value = loss(task, y_val, scores_val)
    if value is None:
        worse = True
    elif task == "regression":
        worse = value > base
    else:
        worse = value > base and _accuracy(task, y_val, scores_val) <= _accuracy(task, y_val, trivial)
    return Verdict(bool(worse), "rmse" if task == "regression" else "log_loss", value, float(base), len(y_val),
                   "the mean" if task == "regression" else "the class prior")


def record(verdict: Verdict, name: str, home: str | Path | None = None) -> None:
    """Write the verdict into ``models/<name>/metadata.json`` (``guard``) and flag the model's run in the
    registry. Trouble here is a warning: it never fails a trained model."""
    from specml.artifact import ModelArtifact

    try:
        artifact = ModelArtifact.for_name(name, home)
        meta = artifact.read_metadata()
        meta["guard"] = verdict.to_dict()
        artifact.write_metadata(meta)
        run_id = (meta.get("run") or {}).get("run_id")
    except Exception as err:  # noqa: BLE001
        warnings.warn(f"the trivial-baseline verdict was not stored with model '{name}': {err}", stacklevel=2)
        return
    if not run_id:
        return
    try:
        from specml.track.registry import Registry

        with Registry(home=home) as reg:
            reg.runs.flag_trivial(run_id, verdict.worse, verdict.trivial)
    except Exception as err:  # noqa: BLE001
        warnings.warn(f"the trivial-baseline verdict was not recorded in the registry: {err}", stacklevel=2)


def stored_verdict(meta: dict, home: str | Path | None = None) -> bool | None:
    """Whether a saved model was flagged worse than trivial: the registry's run row, else its metadata."""
    run_id = (meta.get("run") or {}).get("run_id")
    if run_id:
        try:
            from specml.track.registry import Registry

            with Registry(home=home) as reg:
                flag = reg.runs.get(run_id).worse_than_trivial
            if flag is not None:
                return bool(flag)
        except Exception:  # noqa: BLE001 - a missing registry row falls back to the metadata
            pass
    guard = meta.get("guard")
    return bool(guard.get("worse_than_trivial")) if isinstance(guard, dict) else None


def neural_validation(name: str, table: str, *, workspace: Any = None, home: str | Path | None = None,
                      rows: tuple[np.ndarray, np.ndarray] | None = None
                      ) -> tuple[str, np.ndarray, np.ndarray, np.ndarray, int | None] | None:
    """(task, training targets, validation targets, validation scores, classes) of a trained single-task
    network on ``table``: the validation rows are ``rows`` or the ones its training held out (the same
    seeded split, from the specs in its run directory). None for multi-task or sequence models. Imports torch."""
    from specml import preflight
    from specml.artifact import ModelArtifact
    from specml.data.split import holdout
    from specml.data.workspace import Workspace
    from specml.train.inference import load_trained, task_scores
    from specml.train.prepare import stratify_labels

    trained = load_trained(name, home)
    meta = trained.metadata
    if len(trained.preprocessor.targets) != 1:
        return None
    t = next(iter(trained.preprocessor.targets.values()))
    if t.sequence or t.task not in ("binary", "multiclass", "regression"):
        return None
    features = list(dict.fromkeys(c for cols in meta["inputs"].values() for c in cols))
    target = meta["target"]
    targets = [target] if isinstance(target, str) else list(target)
    ws = workspace if hasattr(workspace, "read_columns") else Workspace(workspace, read_only=True)
    try:
        data = ws.read_columns(table, list(dict.fromkeys([*features, *targets])))
    finally:
        if ws is not workspace:
            ws.close()
    if rows is None:
        artifact = ModelArtifact.for_name(name, home)
        model_spec, trainer = preflight.check_spec_kinds(artifact.model_spec_path, artifact.trainer_spec_path,
                                                          deep=True)
        cfg = trainer.config
        labels = stratify_labels(model_spec, trainer, data, targets[0] if len(targets) == 1 else None)
        rows = holdout(data.num_rows, cfg.validation_split, cfg.seed if cfg.seed is not None else 0, labels)
    train_rows, val_rows = rows
    _, y = trained.preprocessor.transform(data, normalized=False)
    y = (next(iter(y.values())) if isinstance(y, dict) else y).numpy()
    import pyarrow as pa

    scores = next(iter(task_scores(trained, data.take(pa.array(val_rows))).values()))
    classes = len(t.classes) if t.classes else None
    return t.task, y[train_rows], y[val_rows], scores, classes
