"""What a study found: the leaderboard of trials, parameter importances, and PNG plots.

Written into the study directory: ``leaderboard.csv``, ``summary.json`` (best trial, importances,
counts), ``optimization_history.png`` (each trial's value and the best so far) and
``param_importances.png`` (Optuna's fANOVA importances, from two finished trials on). Plots are drawn
with matplotlib's Agg canvas, without pyplot (no display, no global state).
"""

from __future__ import annotations

import csv
import io
import json
import math
import warnings
from pathlib import Path
from typing import Any

from specml.search.trial import STATE_NAMES

_ORDER = {"complete": 0, "pruned": 1, "running": 2, "waiting": 3, "failed": 4}


def leaderboard(study: Any) -> list[dict[str, Any]]:
    """Every trial, best first: finished ones by value, then pruned (by their last value), then the rest."""
    maximize = study.direction.name == "MAXIMIZE"
    rows = []
    for t in study.get_trials(deepcopy=False):
        state = STATE_NAMES.get(t.state.name, t.state.name.lower())
        value = t.value if t.value is not None else (
            t.intermediate_values[max(t.intermediate_values)] if t.intermediate_values else None)
        rows.append({"trial": t.number, "state": state, "value": value,
                     "epochs": t.user_attrs.get("epochs"), "params": dict(t.params),
                     "model": t.user_attrs.get("model"), "run_id": t.user_attrs.get("run_id"),
                     "error": t.user_attrs.get("error") or t.user_attrs.get("pruned"),
                     "seconds": t.duration.total_seconds() if t.duration else None})

    def key(row: dict) -> tuple:
        v = row["value"]
        bad = v is None or (isinstance(v, float) and math.isnan(v))
        return (_ORDER.get(row["state"], 5), bad, 0.0 if bad else (-v if maximize else v), row["trial"])

    rows.sort(key=key)
    for rank, row in enumerate(rows, 1):
        row["rank"] = rank
    return rows


def importances(study: Any) -> dict[str, float]:
    """fANOVA parameter importances (seeded), or {} with fewer than two finished trials."""
    import optuna

    done = [t for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))]
    if len(done) < 2:
        return {}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
            return {k: float(v) for k, v in optuna.importance.get_param_importances(study, evaluator=evaluator).items()}
    except (RuntimeError, ValueError):   # one distinct value per parameter, or no common parameter
        return {}


def write_report(study: Any, directory: Path, metric: str | None) -> dict[str, Any]:
    """leaderboard.csv, summary.json and the plots; the summary."""
    from specml.data.files import atomic_write_json, atomic_write_text

    rows = leaderboard(study)
    found = importances(study)
    directory.mkdir(parents=True, exist_ok=True)
    atomic_write_text(directory / "leaderboard.csv", _csv(rows))
    plots = [p for p in (history_plot(study, rows, directory / "optimization_history.png", metric),
                         importance_plot(found, directory / "param_importances.png")) if p is not None]
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["state"]] = counts.get(row["state"], 0) + 1
    best = next((r for r in rows if r["state"] == "complete"), None)
    if best is not None:
        trial = next(t for t in study.get_trials(deepcopy=False) if t.number == best["trial"])
        best = {**best, "overrides": trial.user_attrs.get("overrides", [])}
    summary = {"study": study.study_name, "direction": study.direction.name.lower(), "metric": metric,
               "trials": len(rows), "states": counts, "best": best, "importances": found,
               "plots": [str(p) for p in plots]}
    atomic_write_json(directory / "summary.json", summary)
    return summary


def _csv(rows: list[dict]) -> str:
    out = io.StringIO()
    params = list(dict.fromkeys(k for r in rows for k in r["params"]))
    writer = csv.writer(out)
    writer.writerow(["rank", "trial", "state", "value", "epochs", *params, "model", "run_id", "seconds", "error"])
    for r in rows:
        writer.writerow([r["rank"], r["trial"], r["state"], r["value"], r["epochs"],
                         *(r["params"].get(p, "") for p in params), r["model"], r["run_id"],
                         None if r["seconds"] is None else round(r["seconds"], 3), r["error"]])
    return out.getvalue()


def _figure(width: float = 7.0, height: float = 4.0):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Any, path: Path) -> Path:
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, format="png", bbox_inches="tight")
    tmp.replace(path)
    return path


def history_plot(study: Any, rows: list[dict], path: Path, metric: str | None) -> Path | None:
    """Each finished trial's value by trial number, and the best value so far."""
    done = sorted((r["trial"], r["value"]) for r in rows if r["state"] == "complete" and r["value"] is not None)
    if not done:
        return None
    maximize = study.direction.name == "MAXIMIZE"
    fig = _figure()
    ax = fig.add_subplot(1, 1, 1)
    xs, ys = zip(*done)
    ax.scatter(xs, ys, s=18, label="trial", color="tab:blue")
    best, running = [], None
    for y in ys:
        running = y if running is None else (max(running, y) if maximize else min(running, y))
        best.append(running)
    ax.step(xs, best, where="post", color="tab:red", label="best so far")
    pruned = [(r["trial"], r["value"]) for r in rows if r["state"] == "pruned" and r["value"] is not None]
    if pruned:
        px, py = zip(*pruned)
        ax.scatter(px, py, s=14, marker="x", color="tab:gray", label="pruned (last value)")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("trial")
    ax.set_ylabel(metric or "value")
    ax.set_title(f"{study.study_name}: optimization history ({'max' if maximize else 'min'}imize)")
    ax.legend(loc="best")
    ax.grid(alpha=0.3)
    return _save(fig, path)


def importance_plot(found: dict[str, float], path: Path) -> Path | None:
    """Horizontal bars of parameter importances, the largest on top."""
    if not found:
        return None
    names = list(found)[::-1]
    fig = _figure(7.0, 1.2 + 0.45 * len(names))
    ax = fig.add_subplot(1, 1, 1)
    ax.barh(names, [found[n] for n in names], color="tab:blue")
    for y, n in enumerate(names):
        ax.text(found[n], y, f" {found[n]:.2f}", va="center")
    ax.set_xlabel("importance (fANOVA)")
    ax.set_xlim(0, max(1.0, max(found.values()) * 1.15))
    ax.set_title("parameter importances")
    return _save(fig, path)


def read_summary(directory: Path) -> dict[str, Any]:
    return json.loads((directory / "summary.json").read_text(encoding="utf-8"))
