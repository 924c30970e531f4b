"""The registry: a small SQLite database in the specml home (``<home>/registry.sqlite``).

It records registered model and trainer specs (their exact text and sha256), training runs with
their lineage (which specs, which table, which data fingerprint; a run's spec files live in its run
directory, the row holds their hashes), background jobs, evaluations and ML plans (``specml plan``,
ids ``plan-1``, ``plan-2``, ...)::

    reg = Registry()                                    # <SPECML_HOME>/registry.sqlite
    reg.register_model_spec("diabetes", "model.yaml")
    reg.register_trainer_spec("diabetes_fast", "fast.yaml", model="diabetes")
    model_path, trainer_path = reg.resolve("diabetes", "diabetes_fast")

:class:`Registry` is the front door; the work is done by :mod:`specml.track.store` (the SQLite file:
WAL, busy timeout, migrations, transactions), :mod:`specml.track.tables` (one class per table
family, also reachable as ``reg.specs``, ``reg.runs``, ``reg.jobs``, ``reg.plans``),
:mod:`specml.track.register` (checking a spec file before it is stored) and
:mod:`specml.track.lineage`. No torch here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Self

from specml.home import specml_home
from specml.track.lineage import lineage
from specml.track.register import checked_model_spec, checked_trainer_spec
from specml.track.store import SCHEMA_VERSION, RegistryError, Store, now, parse_time
from specml.track.tables.jobs import Job, JobTable
from specml.track.tables.plans import PlanEntry, PlanTable, plan_key
from specml.track.tables.runs import Evaluation, Run, RunTable
from specml.track.tables.specs import ModelSpecEntry, SpecTable, TrainerSpecEntry, text_hash

__all__ = [
    "SCHEMA_VERSION", "Evaluation", "Job", "ModelSpecEntry", "PlanEntry", "Registry", "RegistryError", "Run",
    "TrainerSpecEntry", "now", "parse_time", "plan_key", "resolve_registered", "text_hash",
]


class Registry:
    """The registry database. ``path`` defaults to ``<specml home>/registry.sqlite``.

    Safe to use from many processes at once; one instance may be shared by threads. The database is
    opened (and migrated) on first use.
    """

    def __init__(self, path: str | Path | None = None, *, home: str | Path | None = None,
                 timeout: float = 30.0) -> None:
        self.store = Store(Path(path) if path else specml_home(home) / "registry.sqlite", timeout)
        self.specs = SpecTable(self.store)
        self.runs = RunTable(self.store)
        self.jobs = JobTable(self.store)
        self.plans = PlanTable(self.store)

    @property
    def path(self) -> Path:
        return self.store.path

    @property
    def home(self) -> Path:
        return self.store.home

    def __repr__(self) -> str:
        return f"Registry({str(self.path)!r})"

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def journal_mode(self) -> str:
        return self.store.journal_mode()

    def integrity_check(self) -> str:
        return self.store.integrity_check()

    # -- specs -------------------------------------------------------------------------------------

    def register_model_spec(self, name: str, path: str | Path, *, replace: bool = False,
                            check: bool = True) -> ModelSpecEntry:
        """Check a model spec file and register it under ``name``.

        Registering the same text again is a no-op; a different text under a taken name needs
        ``replace=True`` (runs keep the hash of the version they used, and every version's text is kept).
        """
        return self.specs.add_model(checked_model_spec(name, path, check=check), replace=replace)

    def register_trainer_spec(self, name: str, path: str | Path, model: str | None = None, *,
                              replace: bool = False, check: bool = True) -> TrainerSpecEntry:
        """Check a trainer spec file and register it under ``name`` for a registered model spec
        (``model``, or the spec's ``model_ref``; see :func:`specml.track.register.checked_trainer_spec`)."""
        return self.specs.add_trainer(checked_trainer_spec(self.specs, name, path, model, check=check),
                                      replace=replace)

    def spec_text(self, spec_hash: str) -> str:
        return self.specs.text(spec_hash)

    def get_model_spec(self, name: str) -> ModelSpecEntry:
        return self.specs.get_model(name)

    def list_model_specs(self) -> list[ModelSpecEntry]:
        return self.specs.list_models()

    def get_trainer_spec(self, name: str) -> TrainerSpecEntry:
        return self.specs.get_trainer(name)

    def list_trainer_specs(self) -> list[TrainerSpecEntry]:
        return self.specs.list_trainers()

    def resolve(self, model: str, trainer: str | None) -> tuple[Path, Path | None]:
        """Spec files for ``specml train --spec-name M --trainer-name T`` (see :meth:`SpecTable.resolve`)."""
        return self.specs.resolve(model, trainer)

    # -- runs, evaluations, lineage ------------------------------------------------------------------

    def start_run(self, name: str, *, run_id: str | None = None, run_dir: str | Path | None = None,
                  **values: Any) -> Run:
        """Record a run that starts now (see :meth:`RunTable.start`)."""
        return self.runs.start(name, run_id=run_id, run_dir=run_dir, **values)

    def update_run(self, run_id: str, **values: Any) -> None:
        self.runs.update(run_id, **values)

    def finish_run(self, run_id: str, status: str = "completed", *, error: str | None = None, **values: Any) -> Run:
        return self.runs.finish(run_id, status, error=error, **values)

    def get_run(self, run_id: str) -> Run:
        self.runs.mark_dead()
        return self.runs.get(run_id)

    def list_runs(self, name: str | None = None) -> list[Run]:
        """The runs (of model ``name``); a running run whose process died is marked failed first."""
        self.runs.mark_dead()
        return self.runs.list(name)

    def add_evaluation(self, model_name: str, table_name: str, metrics: dict[str, Any], *,
                       rows: int | None = None, run_id: str | None = None) -> Evaluation:
        return self.runs.add_evaluation(model_name, table_name, metrics, rows=rows, run_id=run_id)

    def list_evaluations(self, model_name: str | None = None) -> list[Evaluation]:
        return self.runs.list_evaluations(model_name)

    def lineage(self, model_name: str) -> dict[str, Any]:
        """Which specs (names and hashes), table and data trained a model, run by run; its evaluations."""
        return lineage(self.runs, self.specs, model_name)

    # -- plans ---------------------------------------------------------------------------------------

    def save_plan(self, plan: dict[str, Any]) -> str:
        """Store a plan; its new id, ``plan-<n>`` (see :meth:`PlanTable.save`)."""
        return self.plans.save(plan)

    def get_plan(self, plan_id: int | str) -> dict[str, Any]:
        return self.plans.get(plan_id)

    def list_plans(self) -> list[PlanEntry]:
        return self.plans.list()

    # -- jobs ------------------------------------------------------------------------------------------

    def create_job(self, name: str, argv: list[str], *, total_epochs: int | None = None,
                   log_path: str | Path | None = None, run_id: str | None = None) -> Job:
        return self.jobs.create(name, argv, total_epochs=total_epochs, log_path=log_path, run_id=run_id)

    def update_job(self, job_id: int, *, only_active: bool = False, **values: Any) -> bool:
        return self.jobs.update(job_id, only_active=only_active, **values)

    def finish_job(self, job_id: int, status: str, *, exit_code: int | None = None,
                   error: str | None = None) -> bool:
        return self.jobs.finish(job_id, status, exit_code=exit_code, error=error)

    def get_job(self, job_id: int | str) -> Job:
        return self.jobs.get(job_id)

    def list_jobs(self, *, active: bool = False, limit: int | None = None) -> list[Job]:
        return self.jobs.list(active=active, limit=limit)


def resolve_registered(model_name: str, trainer_name: str | None,
                       registry: Registry | None = None) -> tuple[Path, Path | None]:
    """(model spec path, trainer spec path) for ``specml train --spec-name M --trainer-name T``."""
    return (registry or Registry()).resolve(model_name, trainer_name)
