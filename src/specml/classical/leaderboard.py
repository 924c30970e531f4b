"""Models compared on one table: the task's main metric, fit time, scoring time, size on disk;
neural and classical side by side, with the trivial baseline (majority class / prior, or the mean).

Every model in the specml home (or the ones named) is ranked by its stored evaluation on the table
(``models/<name>/evaluations/``) while it is current (same table fingerprint, model not trained
since); otherwise, or with ``refresh=True``, it is evaluated now. A model is skipped, with the reason,
when the table lacks its columns, or when its task or target differs from the leaderboard's (the task
and target most of the evaluable models share).
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

from specml.artifact import ArtifactError, ModelArtifact, list_models
from specml.classical.score import MAIN_METRIC
from specml.guard import stored_verdict

_SKIP_DIRS = {"checkpoints"}


def evaluate_any(name: str, table: str, *, workspace: Any = None, home: str | Path | None = None) -> dict:
    """:func:`specml.api.evaluate` for a neural model, :func:`evaluate_classical` for a classical one,
    :func:`specml.ensemble.evaluate_ensemble` for an ensemble."""
    meta = ModelArtifact.for_name(name, home).read_metadata()
    if meta.get("kind") == "classical":
        from specml.classical.predict import evaluate_classical

        return evaluate_classical(name, table, workspace=workspace, home=home)
    if meta.get("kind") == "ensemble":
        from specml.ensemble import evaluate_ensemble

        return evaluate_ensemble(name, table, workspace=workspace, home=home)
    from specml import api

    return api.evaluate(name, table, workspace=workspace, home=home)


def _targets(meta: dict) -> list[str]:
    target = meta.get("target")
    return [target] if isinstance(target, str) else [str(t) for t in target or []]


def _key(meta: dict) -> tuple[str | None, tuple[str, ...]]:
    """(task, targets): what models must share to be compared (a multi-output target is a list)."""
    return meta.get("task"), tuple(_targets(meta))


def baseline(ws: Any, table: str, task: str, targets: list[str]) -> dict[str, Any] | None:
    """The trivial model's metrics on ``table``: the class frequencies as probabilities (classification)
    or the mean (regression). None for other tasks."""
    import numpy as np

    from specml.classical.score import metrics

    if task not in ("binary", "multiclass", "regression") or len(targets) != 1:
        return None
    col = ws.read_columns(table, targets).column(0).drop_null()
    if len(col) == 0:
        return None
    values = np.asarray(col.to_pylist(), dtype=object)
    if task == "regression":
        y = values.astype(np.float64)
        return metrics(task, y, np.full(len(y), y.mean()))
    classes, y = np.unique(values.astype(str), return_inverse=True)
    prior = np.bincount(y, minlength=len(classes)) / len(y)
    if task == "binary":
        if len(classes) != 2:
            return None
        return metrics(task, y, np.full(len(y), prior[1]))
    return metrics(task, y, np.tile(prior, (len(y), 1)), len(classes))


def _columns(meta: dict) -> list[str]:
    if meta.get("kind") in ("classical", "ensemble"):
        return list(meta.get("features", {}).get("columns", []))
    inputs = meta.get("inputs") or {}
    return [c for cols in inputs.values() for c in (cols or [])]


def model_size(directory: Path) -> int:
    """Bytes of what inference reads: every file of the model directory except training checkpoints."""
    total = 0
    for path in directory.rglob("*"):
        if path.is_file() and not (set(path.relative_to(directory).parts[:-1]) & _SKIP_DIRS):
            total += path.stat().st_size
    return total


def _fit_seconds(meta: dict) -> float | None:
    t = meta.get("timings") or {}
    value = t.get("fit_s", t.get("total_s"))
    return float(value) if isinstance(value, int | float) else None


def leaderboard(table: str, models: list[str] | None = None, *, workspace: Any = None,
                home: str | Path | None = None, metric: str | None = None, refresh: bool = False) -> dict:
    """``{"table", "task", "target", "metric", "higher_is_better", "rows": [...], "skipped": [...],
    "baseline"}``, rows best first. Each row: name, kind, type, metric, value, metrics, fit_s, predict_s,
    size_bytes, trained_on, stored (read from a stored evaluation, not evaluated now)."""
    from specml.data.files import fingerprint
    from specml.data.workspace import Workspace
    from specml.evaluation import stored_report

    ws = workspace if hasattr(workspace, "read_columns") else Workspace(workspace)
    ws.require_table(table)
    current = fingerprint(ws, table)[1]
    have = set(ws.columns(table))
    names = models if models is not None else [r["name"] for r in list_models(home) if r.get("error") is None]
    skipped: list[dict] = []
    candidates: list[tuple[str, dict]] = []
    for name in names:
        try:
            meta = ModelArtifact.for_name(name, home).read_metadata()
        except ArtifactError as exc:
            skipped.append({"name": name, "reason": str(exc)})
            continue
        missing = [c for c in [*_columns(meta), *_targets(meta)] if c and c not in have]
        if missing:
            skipped.append({"name": name, "reason": f"table '{table}' lacks column(s) {', '.join(missing)}"})
            continue
        candidates.append((name, meta))
    if not candidates:
        return {"table": table, "task": None, "target": None, "metric": metric, "higher_is_better": None,
                "rows": [], "skipped": skipped}
    (task, target_key), _ = Counter(_key(m) for _, m in candidates).most_common(1)[0]
    target = target_key[0] if len(target_key) == 1 else list(target_key)
    main, higher = MAIN_METRIC.get(task, (None, True))
    if metric is not None:
        from specml.spec.metrics import ALLOWED, HIGHER_IS_BETTER

        if metric not in ALLOWED.get(task, []):
            from specml.classical.errors import ClassicalError

            raise ClassicalError(f"metric '{metric}' is not a {task} metric (one of {', '.join(ALLOWED[task])})")
        main, higher = metric, HIGHER_IS_BETTER[metric]
    rows = []
    for name, meta in candidates:
        if _key(meta) != (task, target_key):
            skipped.append({"name": name, "reason": f"{meta.get('task')} model of '{meta.get('target')}'; the "
                                                    f"leaderboard compares {task} models of '{target}'"})
            continue
        directory = ModelArtifact.for_name(name, home).directory
        report = None if refresh else stored_report(directory, table, current, meta.get("updated_at"))
        t0 = time.perf_counter()
        if report is None:
            try:
                report = evaluate_any(name, table, workspace=ws, home=home)
            except Exception as exc:  # one broken model must not hide the others
                skipped.append({"name": name, "reason": f"evaluation failed: {exc}"})
                continue
            report["seconds"] = round(time.perf_counter() - t0, 4)
            stored = False
            _keep(directory, report, meta)
        else:
            stored = True
        seconds = report.get("seconds")
        kind = meta.get("kind") or "neural"
        rows.append({
            "name": name, "kind": kind, "type": _type(meta),
            "metric": main, "value": report["metrics"].get(main), "metrics": report["metrics"],
            "fit_s": _fit_seconds(meta), "predict_s": seconds,
            "size_bytes": model_size(ModelArtifact.for_name(name, home).directory),
            "trained_on": meta.get("table", (meta.get("data") or {}).get("table")), "rows": report["rows"],
            "stored": stored, "worse_than_trivial": stored_verdict(meta, home),
        })
    rows.sort(key=lambda r: (r["value"] is None, -(r["value"] or 0.0) if higher else (r["value"] or 0.0)))
    trivial = baseline(ws, table, task, list(target_key))
    base_value = None if trivial is None else trivial.get(main)
    for rank, row in enumerate(rows, start=1):
        row["rank"] = rank
        if base_value is not None and row["value"] is not None:  # worse than the trivial model on this table too
            row["below_baseline"] = row["value"] < base_value if higher else row["value"] > base_value
    return {"table": table, "task": task, "target": target, "metric": main, "higher_is_better": higher,
            "rows": rows, "skipped": skipped,
            "baseline": None if trivial is None else {"metric": main, "value": trivial.get(main), "metrics": trivial}}


def _type(meta: dict) -> str:
    kind = meta.get("kind")
    if kind == "classical":
        return str((meta.get("estimator") or {}).get("type")).rsplit(".", 1)[-1]
    if kind == "ensemble":
        members = meta.get("members") or []
        return " + ".join(f"{m.get('weight', 0):.2f} {m.get('name')}" for m in members) or "ensemble"
    return "model spec"


def _keep(directory: Path, report: dict, meta: dict) -> None:
    """Store a fresh evaluation (as ``specml evaluate`` does) so that the next leaderboard reads it."""
    from specml.evaluation import store_report

    try:
        store_report(directory, report, meta.get("updated_at"))
    except OSError:
        pass
