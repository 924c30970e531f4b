"""Background jobs (``jobs``): one row per job, written by the CLI, the job runner and the training.

Starting, watching and cancelling the processes is :mod:`specml.track.jobs`; this module only
stores the rows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from specml.track.store import RegistryError, Row, Store, from_row, now, only, parse_time

ACTIVE = ("queued", "running")
FINAL = ("completed", "failed", "cancelled")
_IS_ACTIVE = f"status IN {ACTIVE!r}"  # SQL: status IN ('queued', 'running')


@dataclass(frozen=True)
class Job(Row):
    job_id: int
    name: str
    status: str
    argv: list[str]
    run_id: str | None
    log_path: str | None
    pid: int | None
    pid_started: int | None
    wrapper_pid: int | None
    wrapper_started: int | None
    created_at: str
    started_at: str | None
    ended_at: str | None
    heartbeat_at: str | None
    epoch: int | None
    total_epochs: int | None
    best_metric: str | None
    best_value: float | None
    exit_code: int | None
    error: str | None

    @property
    def finished(self) -> bool:
        return self.status in FINAL

    @property
    def duration_s(self) -> float | None:
        """Seconds from start (or creation) to the end, or to now while it runs."""
        start = parse_time(self.started_at or self.created_at)
        end = parse_time(self.ended_at) or (None if self.finished else datetime.now(UTC))
        return None if start is None or end is None else max((end - start).total_seconds(), 0.0)


_JOB_FIELDS = {f.name for f in fields(Job)} - {"job_id"}


class JobTable:
    def __init__(self, store: Store) -> None:
        self.store = store

    def create(self, name: str, argv: list[str], *, total_epochs: int | None = None,
               log_path: str | Path | None = None, run_id: str | None = None) -> Job:
        """A new job (status ``queued``); its log defaults to ``<home>/jobs/<id>/stdout.log``."""
        with self.store.write() as con:
            cur = con.execute("INSERT INTO jobs (name, status, argv, total_epochs, run_id, created_at) "
                              "VALUES (?, 'queued', ?, ?, ?, ?)",
                              (name, json.dumps([str(a) for a in argv]), total_epochs, run_id, now()))
            job_id = cur.lastrowid
            path = Path(log_path) if log_path else self.store.home / "jobs" / str(job_id) / "stdout.log"
            con.execute("UPDATE jobs SET log_path = ? WHERE job_id = ?", (str(path), job_id))
        return self.get(job_id)

    def update(self, job_id: int, *, only_active: bool = False, **values: Any) -> bool:
        """Set job fields; with ``only_active`` only while the job is queued or running. True if a row changed."""
        return self.store.update("jobs", "job_id", int(job_id), only(values, _JOB_FIELDS),
                                 _IS_ACTIVE if only_active else None)

    def finish(self, job_id: int, status: str, *, exit_code: int | None = None, error: str | None = None) -> bool:
        """End a job once: only a queued or running job changes (False otherwise).

        The exit code is recorded whenever none is yet (a cancelled job still gets its exit code);
        an error already recorded (by the training process) is kept.
        """
        if status not in FINAL:
            raise ValueError(f"a job ends as one of {', '.join(FINAL)}, not {status!r}")
        with self.store.write() as con:
            changed = con.execute("UPDATE jobs SET status = ?, ended_at = ?, error = COALESCE(error, ?) "
                                  f"WHERE job_id = ? AND {_IS_ACTIVE}", (status, now(), error, int(job_id))).rowcount
            if exit_code is not None:
                con.execute("UPDATE jobs SET exit_code = ? WHERE job_id = ? AND exit_code IS NULL",
                            (exit_code, int(job_id)))
        return bool(changed)

    def get(self, job_id: int | str) -> Job:
        try:
            key = int(job_id)
        except (TypeError, ValueError):
            raise RegistryError(f"'{job_id}' is not a job id (job ids are numbers: see specml jobs list)") from None
        rows = self.store.read("SELECT * FROM jobs WHERE job_id = ?", (key,))
        if not rows:
            ids = [str(r[0]) for r in self.store.read("SELECT job_id FROM jobs ORDER BY job_id DESC LIMIT 5")]
            known = f"the latest are {', '.join(reversed(ids))}" if ids else "there are no jobs yet"
            raise RegistryError(f"no job {key} ({known}; see specml jobs list)")
        return from_row(Job, rows[0], argv=json.loads)

    def list(self, *, active: bool = False, limit: int | None = None) -> list[Job]:
        """Jobs by id (the ``limit`` latest); ``active``: only queued and running ones."""
        where = f"WHERE {_IS_ACTIVE}" if active else ""
        query = f"SELECT * FROM jobs {where} ORDER BY job_id DESC" + (f" LIMIT {int(limit)}" if limit else "")
        return [from_row(Job, r, argv=json.loads) for r in reversed(self.store.read(query))]
