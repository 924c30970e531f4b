"""Models compared on one table: the task's main metric, fit time, scoring time, size on disk;
neural and classical side by side.

Every model in the specml home (or the ones named) is evaluated on the table. A model is skipped,
with the reason, when the table lacks its columns, or when its task or target differs from the
leaderboard's (the task and target most of the evaluable models share).
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

from specml.artifact import ArtifactError, ModelArtifact, list_models
from specml.classical.score import MAIN_METRIC

_SKIP_DIRS = {"checkpoints"}


def evaluate_any(name: str, table: str, *, workspace: Any = None, home: str | Path | None = None) -> dict:
    """:func:`specml.api.evaluate` for a neural model, :func:`evaluate_classical` for a classical one."""
    meta = ModelArtifact.for_name(name, home).read_metadata()
    if meta.get("kind") == "classical":
        from specml.classical.predict import evaluate_classical

        return evaluate_classical(name, table, workspace=workspace, home=home)
    from specml import api

    return api.evaluate(name, table, workspace=workspace, home=home)


def _columns(meta: dict) -> list[str]:
    if meta.get("kind") == "classical":
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
                home: str | Path | None = None, metric: str | None = None) -> dict:
    """``{"table", "task", "target", "metric", "higher_is_better", "rows": [...], "skipped": [...]}``, rows best
    first. Each row: name, kind, type, metric, value, metrics, fit_s, predict_s, size_bytes, trained_on."""
    from specml.data.workspace import Workspace

    ws = workspace if hasattr(workspace, "read_columns") else Workspace(workspace)
    ws.require_table(table)
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
        missing = [c for c in [*_columns(meta), meta.get("target")] if c and c not in have]
        if missing:
            skipped.append({"name": name, "reason": f"table '{table}' lacks column(s) {', '.join(missing)}"})
            continue
        candidates.append((name, meta))
    if not candidates:
        return {"table": table, "task": None, "target": None, "metric": metric, "higher_is_better": None,
                "rows": [], "skipped": skipped}
    (task, target), _ = Counter((m.get("task"), m.get("target")) for _, m in candidates).most_common(1)[0]
    main, higher = MAIN_METRIC.get(task, (None, True))
    if metric is not None:
        from specml.spec.metrics import ALLOWED, HIGHER_IS_BETTER

        if metric not in ALLOWED.get(task, []):
            from specml.classical.errors import ClassicalError

            raise ClassicalError(f"metric '{metric}' is not a {task} metric (one of {', '.join(ALLOWED[task])})")
        main, higher = metric, HIGHER_IS_BETTER[metric]
    rows = []
    for name, meta in candidates:
        if (meta.get("task"), meta.get("target")) != (task, target):
            skipped.append({"name": name, "reason": f"{meta.get('task')} model of '{meta.get('target')}'; the "
                                                    f"leaderboard compares {task} models of '{target}'"})
            continue
        t0 = time.perf_counter()
        try:
            report = evaluate_any(name, table, workspace=ws, home=home)
        except Exception as exc:  # one broken model must not hide the others
            skipped.append({"name": name, "reason": f"evaluation failed: {exc}"})
            continue
        seconds = time.perf_counter() - t0
        classical = meta.get("kind") == "classical"
        rows.append({
            "name": name, "kind": "classical" if classical else "neural",
            "type": str((meta.get("estimator") or {}).get("type")).rsplit(".", 1)[-1] if classical else "model spec",
            "metric": main, "value": report["metrics"].get(main), "metrics": report["metrics"],
            "fit_s": _fit_seconds(meta), "predict_s": round(seconds, 4),
            "size_bytes": model_size(ModelArtifact.for_name(name, home).directory),
            "trained_on": meta.get("table", (meta.get("data") or {}).get("table")), "rows": report["rows"],
        })
    rows.sort(key=lambda r: (r["value"] is None, -(r["value"] or 0.0) if higher else (r["value"] or 0.0)))
    for rank, row in enumerate(rows, start=1):
        row["rank"] = rank
    return {"table": table, "task": task, "target": target, "metric": main, "higher_is_better": higher,
            "rows": rows, "skipped": skipped}
