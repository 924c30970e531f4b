"""``specml tune``: a hyperparameter search with Optuna, its trials normal tracked runs.

    result = tune(TuneSettings(study="pima", table="pima_train", space="space.yaml",
                               model_spec="model.yaml", trainer_spec="trainer.yaml", trials=50),
                  workers=4, retrain_best="pima_best")

The study lives in an Optuna storage (SQLite in the specml home by default; any SQLAlchemy URL, so
workers on several machines can share one study) and in ``<home>/studies/<study>/``. ``workers=N``
starts N processes (``python -m specml.search.tune``) on the one study; each takes trials until the
study has the asked number. ``resume=True`` continues a study after a crash or Ctrl-C: trials its dead
processes left running are marked failed (``interrupted``) and do not count. At the end: the
leaderboard, importances and plots (:mod:`specml.search.report`); ``retrain_best=NAME`` trains the
best configuration on the whole table (no validation rows, the best trial's number of epochs) as
model ``NAME``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from specml.search.space import Space, load_space
from specml.search.study import (
    SearchError,
    TuneSettings,
    counted,
    fail_interrupted,
    open_study,
    study_exists,
    taking,
)
from specml.search.trial import TrialOutcome, run_trial, write_estimator_spec


@dataclass
class TuneResult:
    study: str
    directory: Path
    storage: str
    metric: str | None
    direction: str
    summary: dict[str, Any]
    leaderboard: list[dict[str, Any]]
    retrained: Any = None
    notes: list[str] = field(default_factory=list)


def tune(settings: TuneSettings, *, workers: int = 1, resume: bool = False, retrain_best: str | None = None,
         echo: Callable[[str], None] | None = None) -> TuneResult:
    """Run (or resume) a study to ``settings.trials`` trials; report; optionally retrain the best."""
    import optuna

    echo = echo or (lambda _text: None)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if workers < 1:
        raise SearchError(f"--workers {workers}: at least 1")
    settings, space = prepare(settings, resume=resume)
    study = open_study(settings, space, create=not resume)
    notes = []
    if resume:
        stale = fail_interrupted(study, settings.home)
        if stale:
            notes.append(f"trial(s) {', '.join(map(str, stale))} were interrupted; they do not count")
    else:
        for params in space.enqueue:
            study.enqueue_trial(params, skip_if_exists=True)
    deadline = time.time() + settings.timeout if settings.timeout else None
    before = counted(study)
    echo(f"study '{settings.study}': {before} of {settings.trials} trial(s) done; {settings.metric} "
         f"({settings.direction}); storage {settings.storage_url}")
    if workers == 1:
        work(settings, space, deadline=deadline, echo=echo)
    else:
        _run_workers(settings, workers, deadline, echo)
    from specml.search.report import write_report

    study = open_study(settings, space)
    summary = write_report(study, settings.directory, settings.metric)
    from specml.search.report import leaderboard

    result = TuneResult(settings.study, settings.directory, settings.storage_url, settings.metric,
                        settings.direction or "minimize", summary, leaderboard(study), notes=notes)
    if retrain_best:
        result.retrained = retrain(settings, summary, retrain_best)
    return result


def prepare(settings: TuneSettings, *, resume: bool) -> tuple[TuneSettings, Space]:
    """Check the settings, the space and every searched path against the specs; record the study."""
    import shutil

    settings.check()
    recorded = settings.directory / "study.json"
    exists = study_exists(settings)
    if resume:
        if exists is None:
            raise SearchError(f"--resume: there is no study '{settings.study}' in {settings.storage_url}",
                              "start it without --resume")
        if recorded.is_file():
            before = TuneSettings.load(recorded)
            settings.metric, settings.direction = before.metric, before.direction
        space = load_space(settings.directory / "space.yaml") if (settings.directory / "space.yaml").is_file() \
            else load_space(settings.space)
    else:
        if exists is not None:
            raise SearchError(f"study '{settings.study}' already exists in {settings.storage_url} ({exists} "
                              "trial(s))", "continue it with --resume, or name a new one with --study")
        space = load_space(settings.space)
        _check_paths(settings, space)
        settings.metric, settings.direction = _objective(settings, space)
        settings.directory.mkdir(parents=True, exist_ok=True)
        if Path(settings.space).resolve() != (settings.directory / "space.yaml").resolve():
            shutil.copyfile(settings.space, settings.directory / "space.yaml")
    if settings.sampler == "grid":
        space.grid()   # every parameter has finitely many values
    for key in ("model_spec", "trainer_spec", "estimator_spec", "space"):
        value = getattr(settings, key)
        if value is not None:
            setattr(settings, key, str(Path(value).resolve()))
    settings.save()
    return settings, space


def _check_paths(settings: TuneSettings, space: Space) -> None:
    """Every searched path (with a sample value) and the fixed overrides, as a training would read them."""
    from specml.spec import load_spec
    from specml.spec.overrides import Overrides

    example = [p.override(v) for p, v in zip(space.params, space.example().values(), strict=True)]
    texts = [*settings.overrides, *example]
    if settings.classical:
        load_spec(settings.estimator_spec, check=False, overrides=Overrides(texts))
        return
    from specml.api import resolve_specs

    resolve_specs(settings.model_spec, settings.trainer_spec, check=False, overrides=texts)


def _objective(settings: TuneSettings, space: Space) -> tuple[str | None, str]:
    """(metric, direction): the space's, else the run's monitored metric and its direction."""
    from specml.train.metrics import HIGHER_IS_BETTER, metric_of

    metric = space.metric or settings.metric
    if settings.classical:
        from specml.spec import load_spec
        from specml.spec.estimator import resolve_estimator
        from specml.spec.overrides import Overrides

        spec = load_spec(settings.estimator_spec, check=False, overrides=Overrides(settings.overrides)).estimator
        kind = resolve_estimator(spec.estimator.type).kind
        default = "maximize" if kind == "classifier" else "minimize"
        direction = space.direction or (("maximize" if HIGHER_IS_BETTER.get(metric_of(metric), False) else "minimize")
                                        if metric else default)
        return metric, direction
    from specml.api import resolve_specs

    _, trainer = resolve_specs(settings.model_spec, settings.trainer_spec, check=False, overrides=settings.overrides)
    cfg = trainer.config
    if metric is None:
        metric = cfg.early_stopping_monitor
        if metric == "val_loss" and cfg.validation_split == 0:
            metric = "train_loss"
        mode = cfg.early_stopping_mode if "early_stopping_mode" in cfg.model_fields_set else None
    else:
        mode = None
    if space.direction:
        return metric, space.direction
    if mode is None:
        mode = "max" if HIGHER_IS_BETTER.get(metric_of(metric), False) else "min"
    return metric, "maximize" if mode == "max" else "minimize"


# ----------------------------------------------------------------------------------------------
# workers


def work(settings: TuneSettings, space: Space, *, worker: int = 0, deadline: float | None = None,
         echo: Callable[[str], None] | None = None) -> list[TrialOutcome]:
    """Take and run trials until the study has the asked number (or the deadline passed)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = open_study(settings, space, worker=worker)
    grid = settings.sampler == "grid"
    done: list[TrialOutcome] = []
    while deadline is None or time.time() < deadline:
        with taking(settings.directory):
            if counted(study) >= settings.trials or (grid and _grid_done(study, space)):
                break
            trial = study.ask()
        outcome = run_trial(study, trial, settings, space)
        done.append(outcome)
        if echo is not None:
            echo(describe(outcome, settings.metric))
    return done


def _grid_done(study: Any, space: Space) -> bool:
    total = 1
    for values in space.grid().values():
        total *= len(values)
    return counted(study) >= total


def describe(outcome: TrialOutcome, metric: str | None) -> str:
    params = ", ".join(f"{k.rsplit('.', 1)[-1]}={_short(v)}" for k, v in outcome.params.items())
    value = "" if outcome.value is None else f" {metric} {outcome.value:.4f}"
    epochs = f" after {outcome.epochs} epoch(s)" if outcome.epochs and outcome.state != "complete" else ""
    error = f": {outcome.error}" if outcome.error else ""
    return f"trial {outcome.number} {outcome.state}{epochs}:{value} ({params}){error}"


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _run_workers(settings: TuneSettings, workers: int, deadline: float | None, echo: Callable[[str], None]) -> None:
    """Start ``workers`` processes on the study; print trials as they finish; stop them on Ctrl-C."""
    logs = settings.directory / "workers"
    logs.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "SPECML_HOME": str(settings.home) if settings.home else os.environ.get("SPECML_HOME", ""),
           "PYTHONUNBUFFERED": "1"}
    if not env["SPECML_HOME"]:
        env.pop("SPECML_HOME")
    procs = []
    for i in range(workers):
        command = [sys.executable, "-m", "specml.search.tune", str(settings.directory / "study.json"),
                   "--worker", str(i), *(["--deadline", str(deadline)] if deadline else [])]
        with open(logs / f"worker-{i}.log", "ab") as out:
            procs.append(subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                          env=env, start_new_session=True))
    seen: set[int] = set()
    try:
        while True:
            running = any(p.poll() is None for p in procs)
            _echo_finished(settings, seen, echo)
            if not running:
                break
            time.sleep(0.5)
    except KeyboardInterrupt:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            p.wait()
        raise
    failed = [i for i, p in enumerate(procs) if p.returncode]
    if failed:
        echo(f"worker(s) {', '.join(map(str, failed))} ended with an error; see {logs}")


def _echo_finished(settings: TuneSettings, seen: set[int], echo: Callable[[str], None]) -> None:
    import optuna

    from specml.search.study import storage
    from specml.search.trial import STATE_NAMES

    try:
        study = optuna.load_study(study_name=settings.study, storage=storage(settings.storage_url))
        trials = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,
                                                          optuna.trial.TrialState.PRUNED,
                                                          optuna.trial.TrialState.FAIL))
    except Exception:  # noqa: BLE001 - progress lines are best effort
        return
    for t in trials:
        if t.number in seen:
            continue
        seen.add(t.number)
        value = t.value if t.value is not None else (
            t.intermediate_values[max(t.intermediate_values)] if t.intermediate_values else None)
        echo(describe(TrialOutcome(t.number, STATE_NAMES[t.state.name], value, dict(t.params),
                                   t.user_attrs.get("epochs"), error=t.user_attrs.get("error")), settings.metric))


# ----------------------------------------------------------------------------------------------
# retraining the best configuration


def retrain(settings: TuneSettings, summary: dict[str, Any], name: str) -> Any:
    """Train the best trial's configuration as model ``name``: on every row of the table (no validation
    split) for the best trial's number of epochs, when the trainer spec watches nothing on validation
    rows besides early stopping; otherwise exactly as the trial trained."""
    best = summary.get("best")
    if not best:
        raise SearchError(f"--retrain-best: study '{settings.study}' has no finished trial to retrain")
    overrides = list(best.get("overrides") or [])
    if settings.classical:
        from specml.classical.train import train_estimator

        spec = write_estimator_spec(settings, overrides, settings.directory / "best")
        return train_estimator(spec, table=settings.table, name=name, workspace=settings.workspace,
                               home=settings.home, verbose=False)
    from specml import api

    epochs = _best_epochs(settings, best)
    full = [*overrides, "++trainer.config.validation_split=0.0", "++trainer.config.early_stopping_patience=null",
            "++trainer.config.early_stopping_monitor=train_loss", "++trainer.config.early_stopping_mode=min",
            *([f"++trainer.config.epochs={epochs}"] if epochs else [])]
    _, trainer = api.resolve_specs(settings.model_spec, settings.trainer_spec, check=False, overrides=full)
    watched = [trainer.scheduler.monitor or "val_loss"] if trainer.scheduler is not None and \
        trainer.scheduler.type.rsplit(".", 1)[-1] == "ReduceLROnPlateau" else []
    kept = any(m.startswith("val_") for m in watched)
    result = api.train(settings.model_spec, settings.trainer_spec, table=settings.table, name=name,
                       target=settings.target, workspace=settings.workspace, home=settings.home, verbose=False,
                       progress=False, overrides=overrides if kept else full)
    if kept:
        result.notes.append(f"retrained as the best trial trained (with its validation rows): the scheduler watches "
                            f"{watched[0]}")
    return result


def _best_epochs(settings: TuneSettings, best: dict[str, Any]) -> int | None:
    import optuna

    from specml.search.study import storage

    study = optuna.load_study(study_name=settings.study, storage=storage(settings.storage_url))
    trial = next(t for t in study.get_trials(deepcopy=False) if t.number == best["trial"])
    return trial.user_attrs.get("best_epoch") or trial.user_attrs.get("epochs")


def resume_settings(study: str, home: str | Path | None = None, **changes: Any) -> TuneSettings:
    """The recorded settings of a study (its ``study.json``), with ``changes`` that are not None."""
    from specml.search.study import study_dir

    path = study_dir(study, home) / "study.json"
    if not path.is_file():
        raise SearchError(f"--resume: no study '{study}' under {path.parent.parent}",
                          "start it without --resume (or give --storage and the study's options)")
    settings = TuneSettings.load(path)
    for key, value in changes.items():
        if value is not None:
            setattr(settings, key, value)
    return settings


# ----------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """``python -m specml.search.tune STUDY_JSON [--worker I] [--deadline T]``: one worker process."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        print("usage: python -m specml.search.tune STUDY_JSON [--worker I] [--deadline UNIX_TIME]", file=sys.stderr)
        return 2
    worker = int(args[args.index("--worker") + 1]) if "--worker" in args else 0
    deadline = float(args[args.index("--deadline") + 1]) if "--deadline" in args else None

    def stop(_signum, _frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    settings = TuneSettings.load(args[0])
    space = load_space(settings.directory / "space.yaml")
    try:
        work(settings, space, worker=worker, deadline=deadline,
             echo=lambda text: print(f"[worker {worker}] {text}", flush=True))
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
