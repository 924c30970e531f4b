"""The metrics catalogue: per task, the metrics it can report, its defaults, its main metric; per metric,
whether higher is better.

The one table read by the trainer spec, the engine, the classical path, the compiler and the planner.
Torch-free and scikit-learn-free: importing it costs nothing.

A run reports ``<split>_loss`` and ``<split>_<metric>`` for the splits in :data:`SPLITS`
(multi-task runs: ``<split>_<task>_<metric>``); those keys are the names monitors watch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from specml.spec.errors import suggestion

#: direction of improvement of every metric (and of ``loss``): early stopping, best checkpoints, leaderboards
HIGHER_IS_BETTER: dict[str, bool] = {
    "loss": False,
    "accuracy": True,
    "precision": True,
    "recall": True,
    "f1": True,
    "auc": True,
    "pr_auc": True,
    "log_loss": False,
    "mse": False,
    "rmse": False,
    "mae": False,
    "r2": True,
    "exact_match": True,
}

#: every metric a run can report, in the order messages list them
METRICS: tuple[str, ...] = tuple(m for m in HIGHER_IS_BETTER if m != "loss")
SPLITS = ("train", "val")


@dataclass(frozen=True)
class TaskMetrics:
    """What one task measures."""

    allowed: tuple[str, ...]   # the metrics that apply
    default: tuple[str, ...]   # reported when a trainer spec names no metrics
    main: str                  # ranks models of the task: leaderboards, cross-validation scoring, plans
    compiled: tuple[str, ...]  # what a trainer spec compiled from words asks for

    @property
    def main_higher_is_better(self) -> bool:
        return HIGHER_IS_BETTER[self.main]


CATALOGUE: dict[str, TaskMetrics] = {
    "binary": TaskMetrics(allowed=("accuracy", "precision", "recall", "f1", "auc", "pr_auc", "log_loss"),
                          default=("accuracy", "auc"), main="auc", compiled=("accuracy", "auc")),
    "multiclass": TaskMetrics(allowed=("accuracy", "precision", "recall", "f1", "auc", "log_loss"),
                              default=("accuracy",), main="accuracy", compiled=("accuracy", "f1")),
    "regression": TaskMetrics(allowed=("mse", "rmse", "mae", "r2"),
                              default=("rmse", "mae"), main="rmse", compiled=("rmse", "mae", "r2")),
    # token sequences (a list-column target): accuracy per token (padding ignored), exact_match per sequence
    "sequence": TaskMetrics(allowed=("accuracy", "exact_match"), default=("accuracy", "exact_match"),
                            main="accuracy", compiled=("accuracy", "exact_match")),
}

TASKS: tuple[str, ...] = tuple(CATALOGUE)
#: the tasks of one target column (a sequence is a multiclass target read per token)
TABLE_TASKS = ("binary", "multiclass", "regression")

#: the catalogue as plain lists (what older callers import)
ALLOWED: dict[str, list[str]] = {t: list(c.allowed) for t, c in CATALOGUE.items()}
DEFAULT_METRICS: dict[str, list[str]] = {t: list(c.default) for t, c in CATALOGUE.items()}

assert all(set(c.allowed) <= set(METRICS) and set(c.default) <= set(c.allowed) and c.main in c.allowed
           and set(c.compiled) <= set(c.allowed) for c in CATALOGUE.values())


def check_task(task: str) -> None:
    """ValueError naming the known tasks (with a "did you mean") unless ``task`` is one."""
    if task not in CATALOGUE:
        hint = suggestion(task, TASKS)
        raise ValueError(f"unknown task {task!r}; one of {', '.join(TASKS)}" + (f" ({hint})" if hint else ""))


def metrics_for(task: str, requested: Sequence[str] | str | None) -> list[str]:
    """The metrics a run of ``task`` reports: ``requested`` (checked, duplicates dropped) or the task's defaults."""
    check_task(task)
    if requested is None:
        return list(CATALOGUE[task].default)
    if isinstance(requested, str):
        requested = [requested]
    allowed = CATALOGUE[task].allowed
    out: list[str] = []
    for name in requested:
        if name not in METRICS:
            hint = suggestion(str(name), METRICS)
            raise ValueError(f"unknown metric {name!r}; one of {', '.join(METRICS)}"
                             + (f" ({hint})" if hint else ""))
        if name not in allowed:
            raise ValueError(f"metric {name!r} does not apply to a {task} task; "
                             f"a {task} task reports {', '.join(allowed)}")
        if name not in out:
            out.append(name)
    return out


def metric_of(key: str) -> str:
    """The metric a monitor key names: ``val_auc`` -> auc, ``val_diabetes_pr_auc`` -> pr_auc (task-prefixed)."""
    rest = key.split("_", 1)[1] if key.startswith(tuple(f"{s}_" for s in SPLITS)) else key
    for name in sorted(HIGHER_IS_BETTER, key=len, reverse=True):
        if rest == name or rest.endswith("_" + name):
            return name
    return rest


def higher_is_better(key: str) -> bool:
    """Whether a larger value of a metric or monitor key (``val_auc``, ``train_loss``) is better."""
    return HIGHER_IS_BETTER.get(metric_of(key), False)


def mode_of(key: str) -> str:
    """``max`` for a monitor whose metric improves upwards (val_auc), else ``min``."""
    return "max" if higher_is_better(key) else "min"


def main_metric(task: str) -> tuple[str, bool]:
    """The metric that ranks models of ``task``, and whether higher is better."""
    check_task(task)
    entry = CATALOGUE[task]
    return entry.main, entry.main_higher_is_better


def with_monitored(task: str, requested: Sequence[str] | None, monitors: Sequence[str | None]) -> list[str] | None:
    """The run's metrics plus any metric a monitor watches (early stopping on ``val_f1`` reports f1).

    ``requested`` comes back unchanged when it is not valid for ``task``: the engine reports that with its message.
    """
    try:
        names = metrics_for(task, requested)
    except ValueError:
        return list(requested) if requested is not None else None
    for key in monitors:
        metric = key.split("_", 1)[1] if key and "_" in key else None
        if metric in CATALOGUE[task].allowed and metric not in names:
            names.append(metric)
    return names


def check_monitor(name: str) -> str | None:
    """None if ``name`` is a key a run can report (``<split>_<loss|metric>``, multi-task
    ``<split>_<task>_<metric>``), else a hint."""
    split, _, rest = name.partition("_")
    known = ["loss", *METRICS]
    if split in SPLITS and (rest in known or any(rest.startswith(k + "_") or rest.endswith("_" + k) for k in known)):
        return None
    candidates = [f"{s}_{m}" for s in SPLITS for m in known]
    return suggestion(name, candidates) or f"write <split>_<metric>: {', '.join(candidates[:4])}, ..."
