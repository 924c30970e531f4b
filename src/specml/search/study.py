"""A study: its settings, its directory and its Optuna storage.

    <SPECML_HOME>/studies/optuna.sqlite        the default storage (every study; any SQLAlchemy URL works)
    <SPECML_HOME>/studies/<study>/study.json   the settings every worker and ``--resume`` read
    <SPECML_HOME>/studies/<study>/space.yaml   the search space, as it was when the study started
    <SPECML_HOME>/studies/<study>/...          leaderboard.csv, summary.json, the PNG plots,
                                               tensorboard/ (hparams of every trial), workers/*.log

How many trials a study has done counts every trial except the ones a crash or Ctrl-C interrupted
(marked failed with ``interrupted`` on ``--resume``), so a resumed study runs to the asked number.
Local workers take trials under a file lock, so they never start more than asked; workers on other
machines (a shared PostgreSQL/MySQL URL) may overshoot by at most one trial each.
"""

from __future__ import annotations

import json
import os
import re
import socket
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from specml.errors import SpecmlError
from specml.home import specml_home

SAMPLERS = ("tpe", "random", "grid")
PRUNERS = ("median", "halving", "none")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")


class SearchError(SpecmlError):
    """A study that cannot run as asked (a name taken, a study to resume that is not there, ...)."""


@dataclass
class TuneSettings:
    """What a study trains and how it searches; recorded in ``study.json``."""

    study: str
    table: str
    space: str
    model_spec: str | None = None
    trainer_spec: str | None = None
    estimator_spec: str | None = None
    target: str | None = None
    workspace: str | None = None
    storage: str | None = None
    trials: int = 20
    timeout: float | None = None
    sampler: str = "tpe"
    pruner: str = "median"
    seed: int | None = None
    overrides: list[str] = field(default_factory=list)
    metric: str | None = None
    direction: str | None = None
    home: str | None = None

    @property
    def classical(self) -> bool:
        return self.estimator_spec is not None

    def check(self) -> None:
        if not _NAME.match(self.study):
            raise SearchError(f"--study '{self.study}': use letters, digits, '.', '_' and '-'")
        if self.trials < 1:
            raise SearchError(f"--trials {self.trials}: at least 1")
        if self.sampler not in SAMPLERS:
            raise SearchError(f"--sampler {self.sampler}: one of {', '.join(SAMPLERS)}")
        if self.pruner not in PRUNERS:
            raise SearchError(f"--pruner {self.pruner}: one of {', '.join(PRUNERS)}")
        if (self.model_spec is None) == (self.estimator_spec is None):
            raise SearchError("give --model-spec (with --trainer-spec) or --estimator-spec")

    @property
    def directory(self) -> Path:
        return study_dir(self.study, self.home)

    @property
    def storage_url(self) -> str:
        return self.storage or default_storage(self.home)

    def save(self) -> Path:
        from specml.data.files import atomic_write_json

        path = self.directory / "study.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(path, asdict(self))
        return path

    @classmethod
    def load(cls, path: str | Path) -> TuneSettings:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def studies_dir(home: str | Path | None = None) -> Path:
    return specml_home(home) / "studies"


def study_dir(name: str, home: str | Path | None = None) -> Path:
    return studies_dir(home) / name


def default_storage(home: str | Path | None = None) -> str:
    path = studies_dir(home) / "optuna.sqlite"
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def storage(url: str):
    """An Optuna RDB storage. SQLite waits for a busy database instead of failing (several workers) and
    runs in WAL mode with ``synchronous=NORMAL``: a commit (a trial's report each epoch) is not an fsync;
    a crash of the process loses nothing, a power cut at most the last commits."""
    import optuna

    sqlite = url.startswith("sqlite")
    kwargs: dict[str, Any] = {"connect_args": {"timeout": 60}} if sqlite else {"pool_pre_ping": True}
    try:
        store = optuna.storages.RDBStorage(url, engine_kwargs=kwargs)
    except Exception as err:  # noqa: BLE001 - a bad URL, a missing driver, a server that is not there
        raise SearchError(f"--storage {url}: cannot open it: {str(err).splitlines()[0]}",
                          "a SQLAlchemy URL: sqlite:///path.db, postgresql://user@host/db, mysql://...") from None
    if sqlite:
        from sqlalchemy import event

        def pragmas(connection, _record) -> None:
            cursor = connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        event.listen(store.engine, "connect", pragmas)
        store.engine.dispose()   # the connection made while opening gets the pragmas too, when made again
    return store


def sampler(settings: TuneSettings, space, worker: int = 0, done: int = 0):
    """The sampler of one worker; seeded with ``seed + worker``, moved on by the trials already ``done`` (a
    resumed study does not replay its first trials)."""
    import optuna

    seed = None if settings.seed is None else settings.seed + worker + 7919 * done
    if settings.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if settings.sampler == "grid":
        class Grid(optuna.samplers.GridSampler):
            """Without its ``study.stop()`` when the grid is done (that works only inside ``study.optimize``;
            specml's workers stop at the grid's size themselves)."""

            def after_trial(self, study, trial, state, values) -> None:
                return None

        return Grid(space.grid(), seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def pruner(settings: TuneSettings):
    import optuna

    if settings.pruner == "halving":
        return optuna.pruners.SuccessiveHalvingPruner()
    if settings.pruner == "none":
        return optuna.pruners.NopPruner()
    return optuna.pruners.MedianPruner(n_startup_trials=MEDIAN_STARTUP, n_warmup_steps=MEDIAN_WARMUP)


#: the median pruner prunes once this many trials finished, from this epoch on
MEDIAN_STARTUP, MEDIAN_WARMUP = 2, 1


def first_prunable_epoch(settings: TuneSettings, study) -> int | None:
    """The first epoch at which this trial's pruner can stop it (None: never), asked once per trial so
    that epochs where no pruning can happen cost one report, not a pruning query too."""
    import optuna

    if settings.pruner == "none":
        return None
    if settings.pruner == "median":
        done = len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)))
        return MEDIAN_WARMUP if done >= MEDIAN_STARTUP else None
    return 1


def open_study(settings: TuneSettings, space, *, worker: int = 0, create: bool = False):
    """The study in its storage (created when ``create``), with this worker's sampler and the pruner."""
    import optuna

    store = storage(settings.storage_url)
    if create:
        return optuna.create_study(storage=store, study_name=settings.study, direction=settings.direction,
                                   sampler=sampler(settings, space, worker), pruner=pruner(settings))
    done = study_exists(settings, store)
    if done is None:
        raise SearchError(f"no study '{settings.study}' in {settings.storage_url}")
    return optuna.load_study(study_name=settings.study, storage=store, sampler=sampler(settings, space, worker, done),
                             pruner=pruner(settings))


def study_exists(settings: TuneSettings, store=None) -> int | None:
    """The number of trials of the study when it exists in the storage, else None."""
    import optuna

    try:
        summaries = optuna.get_all_study_summaries(store or storage(settings.storage_url), include_best_trial=False)
    except Exception:  # noqa: BLE001 - an empty database has no tables yet
        return None
    return next((s.n_trials for s in summaries if s.study_name == settings.study), None)


# ----------------------------------------------------------------------------------------------
# counting and taking trials


def counted(study) -> int:
    """Trials that count toward the asked number: all taken ones but those an interruption failed (an
    enqueued trial counts once a worker takes it)."""
    return sum(1 for t in study.get_trials(deepcopy=False)
               if t.state.name != "WAITING" and not t.user_attrs.get("interrupted"))


@contextmanager
def taking(directory: Path):
    """A lock over taking a trial (local workers never start more trials than asked)."""
    import fcntl

    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def owner() -> dict[str, Any]:
    """Who runs a trial: this machine and process (to find trials a crash left running)."""
    from specml.track.jobs import process_start_time

    pid = os.getpid()
    return {"host": socket.gethostname(), "pid": pid, "pid_started": process_start_time(pid)}


def fail_interrupted(study, home: str | Path | None = None) -> list[int]:
    """Mark failed (``interrupted``) the running trials of this machine whose process is gone."""
    import optuna

    from specml.track.jobs import process_alive

    host = socket.gethostname()
    done = []
    store = study._storage
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        who = t.user_attrs.get("owner") or {}
        if who.get("host") != host or process_alive(who.get("pid"), who.get("pid_started")):
            continue
        store.set_trial_user_attr(t._trial_id, "interrupted", True)
        store.set_trial_user_attr(t._trial_id, "error", "interrupted: its process ended without a result")
        store.set_trial_state_values(t._trial_id, optuna.trial.TrialState.FAIL)
        done.append(t.number)
        _close_run(t.user_attrs.get("model"), home)
    return done


def _close_run(name: str | None, home: str | Path | None) -> None:
    """The registry row of an interrupted trial's run: ``cancelled`` instead of ``running`` forever."""
    if not name:
        return
    from specml.track.registry import Registry

    try:
        reg = Registry(home=home)
        for run in reg.list_runs(name):
            if run.status == "running":
                reg.finish_run(run.run_id, "cancelled", error="interrupted: its process ended (specml tune --resume)")
    except Exception:  # noqa: BLE001 - the registry is a record, not a reason to stop the study
        pass
