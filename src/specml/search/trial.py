"""One trial of a study: sample the space, train (a normal tracked run), report, prune.

A neural trial is :func:`specml.api.train` with the trial's overrides and one more engine callback,
:class:`PruningCallback`: after every epoch it reports the watched validation metric to Optuna and,
when the pruner says the trial is hopeless, stops the run (it raises ``optuna.TrialPruned``; the run
is recorded as stopped, its model is not saved). A classical trial trains the estimator spec with the
trial's overrides written into ``<study>/trials/<n>/estimator.yaml``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from specml.search.study import TuneSettings

STATE_NAMES = {"COMPLETE": "complete", "PRUNED": "pruned", "FAIL": "failed", "RUNNING": "running",
               "WAITING": "waiting"}


class PruningCallback:
    """Engine callback: report ``metric`` to the trial each epoch; stop the run when the pruner says so."""

    def __init__(self, trial: Any, metric: str, first_prunable: int | None = 1) -> None:
        self.trial = trial
        self.metric = metric
        self.first_prunable = first_prunable   # None: this trial's pruner cannot stop it (asked only then)
        self.epochs = 0
        self.last: float | None = None

    def on_epoch_end(self, trainer: Any, epoch: int, logs: dict | None = None, **_: Any) -> None:
        import optuna

        from specml.train.errors import TrainingError

        logs = logs or {}
        if self.metric not in logs:
            reported = ", ".join(sorted(k for k in logs if k.startswith(("train_", "val_"))))
            raise TrainingError(f"the study's metric '{self.metric}' is not reported by this run (it reports "
                                f"{reported})", "set metric: in the search space")
        self.epochs = epoch
        self.last = float(logs[self.metric])
        self.trial.report(self.last, epoch)
        if self.first_prunable is not None and epoch >= self.first_prunable and self.trial.should_prune():
            raise optuna.TrialPruned(f"pruned after epoch {epoch}: {self.metric} {self.last:.4g}")


@dataclass
class TrialOutcome:
    number: int
    state: str
    value: float | None
    params: dict[str, Any]
    epochs: int | None = None
    model: str | None = None
    run_dir: str | None = None
    error: str | None = None
    attrs: dict[str, Any] = field(default_factory=dict)


def trial_name(settings: TuneSettings, number: int) -> str:
    return f"{settings.study}-{number:04d}"


def run_trial(study: Any, trial: Any, settings: TuneSettings, space: Any) -> TrialOutcome:
    """Sample, train and tell Optuna the result (complete, pruned or failed); never raises for a bad trial."""
    import optuna

    from specml.search.study import first_prunable_epoch, owner

    State = optuna.trial.TrialState
    trial.set_user_attr("owner", owner())
    name = trial_name(settings, trial.number)
    values: dict[str, Any] = {}
    pruning = PruningCallback(trial, settings.metric or "val_loss", first_prunable_epoch(settings, study))
    outcome = TrialOutcome(trial.number, "failed", None, values, model=name)
    state = State.FAIL
    try:
        values.update(space.sample(trial))
        overrides = [*settings.overrides, *space.overrides(values)]
        trial.set_user_attr("overrides", overrides)
        trial.set_user_attr("model", name)
        if settings.classical:
            value, attrs = _classical(settings, trial.number, name, overrides)
        else:
            value, attrs = _neural(settings, name, overrides, pruning)
        for key, item in attrs.items():
            trial.set_user_attr(key, item)
        outcome.attrs, outcome.epochs, outcome.run_dir = attrs, attrs.get("epochs"), attrs.get("run_dir")
        if value is None or not math.isfinite(value):
            raise _NoValue(f"the run reported no finite {settings.metric or 'metric'} ({value})")
        state, outcome.state, outcome.value = State.COMPLETE, "complete", value
    except optuna.TrialPruned as err:
        trial.set_user_attr("epochs", pruning.epochs)
        trial.set_user_attr("pruned", str(err))
        state, outcome.state, outcome.epochs, outcome.value = State.PRUNED, "pruned", pruning.epochs, pruning.last
    except KeyboardInterrupt:
        trial.set_user_attr("interrupted", True)
        trial.set_user_attr("error", "interrupted")
        study.tell(trial, state=State.FAIL)
        raise
    except Exception as err:  # noqa: BLE001 - a failed trial is recorded; the study goes on
        text = f"{type(err).__name__}: {err}".strip().splitlines()[0][:500]
        trial.set_user_attr("error", text)
        if pruning.epochs:
            trial.set_user_attr("epochs", pruning.epochs)
        outcome.error, outcome.epochs = text, pruning.epochs or None
    study.tell(trial, outcome.value if state == State.COMPLETE else None, state=state)
    try:
        write_hparams(settings, outcome, space)
    except Exception as err:  # noqa: BLE001 - the HParams view is worth less than the study
        import warnings

        warnings.warn(f"trial {trial.number}: could not write its TensorBoard hparams: {err}", stacklevel=2)
    return outcome


class _NoValue(RuntimeError):
    pass


def _neural(settings: TuneSettings, name: str, overrides: list[str], pruning: PruningCallback
            ) -> tuple[float | None, dict]:
    from specml import api
    from specml.track.mlflow import tracker_for

    # a trial is a run like any other: logged to MLflow too when the trainer spec's tracking.mlflow asks
    tracker = tracker_for(None, settings.model_spec, settings.trainer_spec, name, overrides)
    result = api.train(settings.model_spec, settings.trainer_spec, table=settings.table, name=name,
                       target=settings.target, workspace=settings.workspace, home=settings.home, verbose=False,
                       progress=False, callbacks=[pruning, *([tracker] if tracker else [])], overrides=overrides)
    if tracker is not None:
        tracker.finish(result.name, result.directory, result.run_dir, best=result.best)
    values = [v for v in result.history.get(settings.metric, []) if v is not None and math.isfinite(v)]
    best = (max if settings.direction == "maximize" else min)(values) if values else None
    epochs = len(result.history.get("train_loss", []))
    return best, {"epochs": epochs, "best_epoch": result.best_epoch, "run_dir": str(result.run_dir),
                  "run_id": Path(result.run_dir).name if result.run_dir else None}


def _classical(settings: TuneSettings, number: int, name: str, overrides: list[str]) -> tuple[float | None, dict]:
    from specml.classical.train import train_estimator

    spec = write_estimator_spec(settings, overrides, settings.directory / "trials" / f"{number:04d}")
    result = train_estimator(spec, table=settings.table, name=name, workspace=settings.workspace,
                             home=settings.home, verbose=False)
    metric = settings.metric or result.best["metric"]
    split, _, key = metric.partition("_")
    part = {"val": "validation", "train": "train", "test": "test"}.get(split, split)
    value = (result.metrics.get(part) or {}).get(key)
    return (float(value) if value is not None else None), {"metric": metric, "spec": str(spec)}


def write_estimator_spec(settings: TuneSettings, overrides: list[str], directory: Path) -> Path:
    """The estimator spec with ``overrides`` applied, as a file (what the classical trainer reads)."""
    from specml.data.files import atomic_write_text
    from specml.spec.overrides import Overrides, resolved_namespace
    from specml.spec.yaml_io import dump_yaml

    data = resolved_namespace([settings.estimator_spec], Overrides(overrides))
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "estimator.yaml"
    atomic_write_text(path, f"# {settings.estimator_spec} with: {' '.join(overrides) or '(no overrides)'}\n"
                            + dump_yaml(data))
    return path


# ----------------------------------------------------------------------------------------------
# TensorBoard's hparams plugin: one run per trial, its parameters beside its result


def write_hparams(settings: TuneSettings, outcome: TrialOutcome, space: Any) -> None:
    """``<study>/tensorboard/trial-<n>/``: the trial's parameters, state and metric for the HParams tab."""
    try:
        from torch.utils.tensorboard import SummaryWriter
        from torch.utils.tensorboard.summary import hparams
    except ImportError:  # pragma: no cover - tensorboard is a dependency
        return
    params = {k: _hparam_value(v) for k, v in outcome.params.items()}
    params["state"] = outcome.state
    metric = settings.metric or "value"
    results = {f"hparam/{metric}": float(outcome.value) if outcome.value is not None else float("nan")}
    if outcome.epochs is not None:
        results["hparam/epochs"] = float(outcome.epochs)
    domains = {p.path: list(p.choices) for p in space.params
               if p.kind == "categorical" and all(isinstance(c, str | int | float | bool) for c in p.choices)}
    domains["state"] = ["complete", "pruned", "failed"]
    exp, ssi, sei = hparams(params, results, hparam_domain_discrete={k: v for k, v in domains.items() if k in params})
    with SummaryWriter(log_dir=str(settings.directory / "tensorboard" / f"trial-{outcome.number:04d}")) as writer:
        for summary in (exp, ssi, sei):
            writer.file_writer.add_summary(summary)
        for key, value in results.items():
            writer.add_scalar(key, value)


def _hparam_value(value: Any) -> Any:
    if isinstance(value, bool | int | float | str):
        return value
    return "null" if value is None else str(value)
