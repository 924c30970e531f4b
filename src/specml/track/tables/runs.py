"""Training runs (``runs``) and evaluations (``evaluations``).

A run row points to its run directory (the home of the exact specs, facts, checkpoints: see
:mod:`specml.track.run`) and to its model directory, and holds the specs' names and sha256, the
table and the data fingerprint; it holds no spec text.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from specml.track.process import process_alive
from specml.track.store import RegistryError, Row, Store, from_row, now, only, plain
from specml.track.tables.jobs import FINAL


@dataclass(frozen=True)
class Run(Row):
    run_id: str
    name: str
    run_dir: str | None
    status: str
    model_spec_name: str | None
    model_spec_hash: str | None
    trainer_spec_name: str | None
    trainer_spec_hash: str | None
    table_name: str | None
    data_rows: int | None
    data_hash: str | None
    job_id: int | None
    started_at: str
    ended_at: str | None
    epochs_done: int | None
    epochs_total: int | None
    best_metric: str | None
    best_value: float | None
    model_dir: str | None
    error: str | None
    pid: int | None = None            # the process training the run, and its start time
    pid_started: int | None = None
    overrides: list[str] | None = None  # Hydra-style path=value edits of the specs (specml.spec.overrides)
    worse_than_trivial: int | None = None  # the trivial-baseline guard: 1 worse, 0 not, None not checked
    trivial_value: float | None = None     # the trivial predictor's validation loss it was compared with


@dataclass(frozen=True)
class Evaluation(Row):
    id: int
    model_name: str
    table_name: str
    rows: int | None
    metrics: dict[str, Any]
    run_id: str | None
    created_at: str


_RUN_FIELDS = {f.name for f in fields(Run)} - {"run_id"}


def _run(row: Any) -> Run:
    return from_row(Run, row, overrides=lambda text: json.loads(text) if text else None)


class RunTable:
    def __init__(self, store: Store) -> None:
        self.store = store

    def start(self, name: str, *, run_id: str | None = None, run_dir: str | Path | None = None,
              **values: Any) -> Run:
        """Record a run that starts now (status ``running``). ``run_id`` defaults to the run dir's name.

        ``values`` are Run fields: model_spec_name/hash, trainer_spec_name/hash, table_name, data_rows,
        data_hash, epochs_total, job_id (the job is linked to the run), ...
        """
        run_id = run_id or (Path(run_dir).name if run_dir else f"{datetime.now(UTC):%Y%m%d-%H%M%S-%f}_{name}")
        row = {"name": name, "run_dir": str(run_dir) if run_dir else None, "status": "running",
               "started_at": now(), **only(values, _RUN_FIELDS)}
        with self.store.write() as con:
            cols = ", ".join(["run_id", *row])
            con.execute(f"INSERT INTO runs ({cols}) VALUES ({', '.join('?' * (len(row) + 1))})",
                        (run_id, *map(plain, row.values())))
            if row.get("job_id") is not None:  # the job's row points back to its run, in the same transaction
                con.execute("UPDATE jobs SET run_id = ? WHERE job_id = ?", (run_id, row["job_id"]))
        return self.get(run_id)

    def update(self, run_id: str, **values: Any) -> None:
        self.store.update("runs", "run_id", run_id, only(values, _RUN_FIELDS))

    def finish(self, run_id: str, status: str = "completed", *, error: str | None = None, **values: Any) -> Run:
        """End a run: ``completed``, ``failed`` or ``cancelled``, with the best metric, model dir, error."""
        if status not in FINAL:
            raise ValueError(f"a run ends as one of {', '.join(FINAL)}, not {status!r}")
        self.store.update("runs", "run_id", run_id, {**only(values, _RUN_FIELDS), "status": status, "error": error,
                                                     "ended_at": now()})
        return self.get(run_id)

    def mark_dead(self) -> list[str]:
        """Mark ``failed`` every running run whose process is gone (killed with -9, or the machine restarted)."""
        died = []
        for row in self.store.read("SELECT run_id, pid, pid_started FROM runs WHERE status = 'running' AND pid "
                                   "IS NOT NULL"):
            if process_alive(row["pid"], row["pid_started"]):
                continue
            with self.store.write() as con:
                cur = con.execute("UPDATE runs SET status = 'failed', ended_at = ?, error = ? WHERE run_id = ? AND "
                                  "status = 'running'", (now(), "the training process died without recording an "
                                                         "end (killed, or the machine restarted)", row["run_id"]))
            if cur.rowcount:
                died.append(row["run_id"])
        return died

    def flag_trivial(self, run_id: str, worse: bool, trivial_value: float | None) -> None:
        """Record the trivial-baseline guard's verdict on a run (see :mod:`specml.guard`)."""
        self.update(run_id, worse_than_trivial=int(bool(worse)), trivial_value=trivial_value)

    def get(self, run_id: str) -> Run:
        rows = self.store.read("SELECT * FROM runs WHERE run_id = ?", (run_id,))
        if not rows:
            raise RegistryError(f"no run '{run_id}'")
        return _run(rows[0])

    def list(self, name: str | None = None) -> list[Run]:
        rows = (self.store.read("SELECT * FROM runs WHERE name = ? ORDER BY started_at, run_id", (name,)) if name
                else self.store.read("SELECT * FROM runs ORDER BY started_at, run_id"))
        return [_run(r) for r in rows]

    def names(self) -> list[str]:
        """The model names that have runs."""
        return [r[0] for r in self.store.read("SELECT DISTINCT name FROM runs ORDER BY name")]

    # -- evaluations -------------------------------------------------------------------------------

    def add_evaluation(self, model_name: str, table_name: str, metrics: dict[str, Any], *,
                       rows: int | None = None, run_id: str | None = None) -> Evaluation:
        clean = {k: plain(v) for k, v in metrics.items()}
        with self.store.write() as con:
            cur = con.execute("INSERT INTO evaluations (model_name, table_name, rows, metrics, run_id, created_at) "
                              "VALUES (?, ?, ?, ?, ?, ?)", (model_name, table_name, rows, json.dumps(clean),
                                                            run_id, now()))
            new_id = cur.lastrowid
        row = self.store.read("SELECT * FROM evaluations WHERE id = ?", (new_id,))[0]
        return from_row(Evaluation, row, metrics=json.loads)

    def list_evaluations(self, model_name: str | None = None) -> list[Evaluation]:
        where, params = ("WHERE model_name = ?", (model_name,)) if model_name else ("", ())
        rows = self.store.read(f"SELECT * FROM evaluations {where} ORDER BY id", params)
        return [from_row(Evaluation, r, metrics=json.loads) for r in rows]
