"""Classical runs tracked like neural ones: a run directory, facts, figures and lineage.

:func:`record_run` opens ``runs/<time>_<name>/`` (``specs/estimator.yaml``, ``facts/metrics.json`` and
``facts/events.jsonl``, ``figures/``: feature importance and the test split's evaluation figures),
points ``models/<name>/run.json`` at it, records the run in the registry and adds ``run`` and ``lineage``
to the model's metadata (the validation-chosen ``threshold`` is written by the training). Tracking trouble is a
warning: it never fails a trained model.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np


def importances(estimator: Any) -> np.ndarray | None:
    """The estimator's feature importances (trees) or absolute coefficients (linear models), else None."""
    values = getattr(estimator, "feature_importances_", None)
    if values is None and getattr(estimator, "coef_", None) is not None:
        coef = np.asarray(estimator.coef_, dtype=np.float64)
        values = np.abs(coef).mean(axis=0) if coef.ndim == 2 else np.abs(coef)
    return None if values is None else np.asarray(values, dtype=np.float64).reshape(-1)


def record_run(artifact: Any, home: Any, *, spec_text: str, table: str, fingerprint: tuple[int, str | None],
               task: str, classes: list | None, results: dict, scored: dict[str, tuple[np.ndarray, np.ndarray]],
               estimator: Any, feature_names: list[str], best: dict, spec_hash: str) -> Path | None:
    """Track a finished classical training run; the run directory, or None when it could not be written."""
    try:
        return _record(artifact, home, spec_text=spec_text, table=table, fingerprint=fingerprint, task=task,
                       classes=classes, results=results, scored=scored, estimator=estimator,
                       feature_names=feature_names, best=best, spec_hash=spec_hash)
    except Exception as err:  # noqa: BLE001 - tracking never fails a trained model
        warnings.warn(f"the run was not tracked: {err}", stacklevel=2)
        return None


def _record(artifact: Any, home: Any, *, spec_text: str, table: str, fingerprint: tuple[int, str | None], task: str,
            classes: list | None, results: dict, scored: dict, estimator: Any, feature_names: list[str],
            best: dict, spec_hash: str) -> Path:
    from specml.data.files import atomic_write_json, atomic_write_text
    from specml.track.figures import evaluation_figures, feature_importance, to_tensorboard
    from specml.track.run import RegistryRecorder, RunDir, point_model_to_run

    name = artifact.name
    run = RunDir.create(name, home)
    atomic_write_text(run.specs / "estimator.yaml", spec_text)
    atomic_write_json(run.facts / "metrics.json", results)
    events = [{"event": "split_metrics", "split": part, "metrics": values} for part, values in results.items()]
    atomic_write_text(run.facts / "events.jsonl", "".join(json.dumps(e, default=str) + "\n" for e in events))
    names = [str(c) for c in classes] if classes else None
    values = importances(estimator)
    if values is not None and len(values) == len(feature_names):
        feature_importance(feature_names, values, run.figures / "feature_importance.png",
                           title=f"{name}: feature importance (trained on {table})")
    if "test" in scored and task in ("binary", "multiclass", "regression"):
        y, s = scored["test"]
        evaluation_figures(task, y, s, run.figures / "test_split", class_names=names,
                           title=f"{name} on the test split of {table}")
    to_tensorboard(sorted(run.figures.rglob("*.png")), run.tensorboard, "training")
    recorder = RegistryRecorder(home)
    recorder.start(name, run, model_dir=str(artifact.directory), table_name=table, data_rows=fingerprint[0],
                   data_hash=fingerprint[1], model_spec_hash=spec_hash)
    recorder.finish("completed", best_metric=best.get("metric"), best_value=best.get("value"))
    point_model_to_run(artifact.directory, run, "completed")

    meta = artifact.read_metadata()
    meta["run"] = {"run_id": run.run_id, "run_dir": str(run.path)}
    meta["lineage"] = {"table": table, "data_fingerprint": fingerprint[1], "rows": fingerprint[0],
                       "split": meta.get("split")}
    artifact.write_metadata(meta)
    return run.path
