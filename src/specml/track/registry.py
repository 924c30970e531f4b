"""The registry: a small SQLite database in the specml home (``<home>/registry.sqlite``).

It records registered model and trainer specs (their exact text and sha256), training runs with
their lineage (which specs, which table, which data fingerprint), background jobs, evaluations and
ML plans (``specml plan``, ids ``plan-1``, ``plan-2``, ...)::

    reg = Registry()                                    # <SPECML_HOME>/registry.sqlite
    reg.register_model_spec("diabetes", "model.yaml")
    reg.register_trainer_spec("diabetes_fast", "fast.yaml", model="diabetes")
    model_path, trainer_path = reg.resolve("diabetes", "diabetes_fast")

Many processes may use it at once (background jobs, the CLI): the database runs in WAL mode with a
busy timeout, and every write is one short ``BEGIN IMMEDIATE`` transaction. The schema is versioned
(``schema_version``); opening a database applies the missing migrations. No torch here.
"""

from __future__ import annotations

import hashlib
import json
import math
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

from specml.errors import SpecmlError
from specml.home import specml_home
from specml.spec.errors import SpecError, SpecIssue, suggestion

ACTIVE = ("queued", "running")
FINAL = ("completed", "failed", "cancelled")
JOB_STATUSES = (*ACTIVE, *FINAL)

_MIGRATIONS: list[list[str]] = [
    [  # 1: the first schema
        """CREATE TABLE IF NOT EXISTS spec_texts (
            hash TEXT PRIMARY KEY, kind TEXT NOT NULL, text TEXT NOT NULL, created_at TEXT NOT NULL)""",
        """CREATE TABLE IF NOT EXISTS model_specs (
            name TEXT PRIMARY KEY, spec_hash TEXT NOT NULL REFERENCES spec_texts(hash), spec_name TEXT,
            source_path TEXT, has_loss INTEGER NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL)""",
        """CREATE TABLE IF NOT EXISTS trainer_specs (
            name TEXT PRIMARY KEY, spec_hash TEXT NOT NULL REFERENCES spec_texts(hash),
            model_ref TEXT NOT NULL REFERENCES model_specs(name), source_path TEXT, has_loss INTEGER NOT NULL,
            created_at TEXT NOT NULL, updated_at TEXT NOT NULL)""",
        """CREATE TABLE IF NOT EXISTS runs (
            run_id TEXT PRIMARY KEY, name TEXT NOT NULL, run_dir TEXT, status TEXT NOT NULL,
            model_spec_name TEXT, model_spec_hash TEXT, trainer_spec_name TEXT, trainer_spec_hash TEXT,
            table_name TEXT, data_rows INTEGER, data_hash TEXT, job_id INTEGER,
            started_at TEXT NOT NULL, ended_at TEXT, epochs_done INTEGER, epochs_total INTEGER,
            best_metric TEXT, best_value REAL, model_dir TEXT, error TEXT)""",
        "CREATE INDEX IF NOT EXISTS runs_by_name ON runs(name)",
        """CREATE TABLE IF NOT EXISTS jobs (
            job_id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, status TEXT NOT NULL,
            argv TEXT NOT NULL, run_id TEXT, log_path TEXT,
            pid INTEGER, pid_started INTEGER, wrapper_pid INTEGER, wrapper_started INTEGER,
            created_at TEXT NOT NULL, started_at TEXT, ended_at TEXT, heartbeat_at TEXT,
            epoch INTEGER, total_epochs INTEGER, best_metric TEXT, best_value REAL,
            exit_code INTEGER, error TEXT)""",
        "CREATE INDEX IF NOT EXISTS jobs_by_status ON jobs(status)",
        """CREATE TABLE IF NOT EXISTS evaluations (
            id INTEGER PRIMARY KEY AUTOINCREMENT, model_name TEXT NOT NULL, table_name TEXT NOT NULL,
            rows INTEGER, metrics TEXT NOT NULL, run_id TEXT, created_at TEXT NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS evaluations_by_model ON evaluations(model_name)",
    ],
    [  # 2: ML plans (specml plan); the id shown to users is "plan-<id>"
        """CREATE TABLE IF NOT EXISTS plans (
            id INTEGER PRIMARY KEY AUTOINCREMENT, instruction TEXT NOT NULL, table_name TEXT NOT NULL,
            created_at TEXT NOT NULL, plan TEXT NOT NULL)""",
    ],
]
SCHEMA_VERSION = len(_MIGRATIONS)


class RegistryError(SpecmlError, ValueError):
    """A name that is not registered, a name taken by a different spec, a job that cannot be changed."""


def now() -> str:
    """The current UTC time as ISO 8601 with milliseconds (how the registry stores times)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def parse_time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def text_hash(text: str) -> str:
    """sha256 (hex) of a spec's exact text (as :func:`specml.artifact.spec_hash`)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# ----------------------------------------------------------------------------------------------
# rows


def _from_row(cls, row: sqlite3.Row | None, **convert):
    if row is None:
        return None
    keys = row.keys()
    values = {f.name: row[f.name] for f in fields(cls) if f.name in keys}
    for key, fn in convert.items():
        values[key] = fn(values[key])
    return cls(**values)


class _Row:
    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ModelSpecEntry(_Row):
    name: str
    spec_hash: str
    spec_name: str | None
    source_path: str | None
    has_loss: bool
    created_at: str
    updated_at: str
    spec_text: str = ""


@dataclass(frozen=True)
class TrainerSpecEntry(_Row):
    name: str
    spec_hash: str
    model_ref: str
    source_path: str | None
    has_loss: bool
    created_at: str
    updated_at: str
    spec_text: str = ""


@dataclass(frozen=True)
class Run(_Row):
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


@dataclass(frozen=True)
class Job(_Row):
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


@dataclass(frozen=True)
class Evaluation(_Row):
    id: int
    model_name: str
    table_name: str
    rows: int | None
    metrics: dict[str, Any]
    run_id: str | None
    created_at: str


@dataclass(frozen=True)
class PlanEntry(_Row):
    """A stored plan without its body (:meth:`Registry.get_plan` returns the body)."""

    plan_id: str
    instruction: str
    table_name: str
    created_at: str


PLAN_PREFIX = "plan-"


def plan_key(plan_id: int | str) -> int | None:
    """The row id of ``plan-3``, ``3`` or ``Plan-3 ``; None when it is not a plan id of that form."""
    text = str(plan_id).strip().lower()
    text = text.removeprefix(PLAN_PREFIX)
    return int(text) if text.isdigit() else None


_RUN_FIELDS = {f.name for f in fields(Run)} - {"run_id"}
_JOB_FIELDS = {f.name for f in fields(Job)} - {"job_id"}


def _plain(value: Any) -> Any:
    """A value SQLite stores: lists/dicts as JSON, NaN/inf as NULL, numpy scalars as Python numbers."""
    if isinstance(value, list | tuple | dict):
        return json.dumps(value)
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# ----------------------------------------------------------------------------------------------


class Registry:
    """The registry database. ``path`` defaults to ``<specml home>/registry.sqlite``.

    Safe to use from many processes at once; one instance may be shared by threads. Stored spec
    texts are written out as files under ``<dir of the database>/registry/specs/`` for training.
    """

    def __init__(self, path: str | Path | None = None, *, home: str | Path | None = None,
                 timeout: float = 30.0) -> None:
        self.path = Path(path).expanduser() if path else specml_home(home) / "registry.sqlite"
        self.home = self.path.parent
        self.timeout = timeout
        self._con: sqlite3.Connection | None = None
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        return f"Registry({str(self.path)!r})"

    # -- connection ----------------------------------------------------------------------------

    @property
    def con(self) -> sqlite3.Connection:
        if self._con is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            con = sqlite3.connect(str(self.path), timeout=self.timeout, isolation_level=None,
                                  check_same_thread=False)
            con.row_factory = sqlite3.Row
            con.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")
            self._retry(lambda: con.execute("PRAGMA journal_mode = WAL").fetchone())
            con.execute("PRAGMA synchronous = NORMAL")  # in WAL mode: durable across crashes of the process
            con.execute("PRAGMA foreign_keys = ON")
            self._con = con
            self._migrate()
        return self._con

    def _retry(self, fn):
        """Run ``fn``, retrying while the database is locked (switching to WAL needs a moment alone)."""
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                return fn()
            except sqlite3.OperationalError as err:
                if "locked" not in str(err) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def close(self) -> None:
        with self._lock:
            if self._con is not None:
                self._con.close()
                self._con = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One short write transaction; the write lock is taken at BEGIN (no upgrade deadlocks)."""
        with self._lock:
            con = self.con
            self._retry(lambda: con.execute("BEGIN IMMEDIATE"))
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")

    def _read(self, query: str, params: tuple = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self.con.execute(query, params).fetchall()

    def _migrate(self) -> None:
        con = self._con
        self._retry(lambda: con.execute("BEGIN IMMEDIATE"))
        try:
            con.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = con.execute("SELECT version FROM schema_version").fetchone()
            version = row[0] if row else 0
            if version > SCHEMA_VERSION:
                raise RegistryError(f"{self.path} was written by a newer specml (registry schema {version}; "
                                    f"this version reads up to {SCHEMA_VERSION})")
            for statements in _MIGRATIONS[version:]:
                for sql in statements:
                    con.execute(sql)
            if row is None:
                con.execute("INSERT INTO schema_version VALUES (?)", (SCHEMA_VERSION,))
            elif version < SCHEMA_VERSION:
                con.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION,))
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")

    def journal_mode(self) -> str:
        return self._read("PRAGMA journal_mode")[0][0]

    def integrity_check(self) -> str:
        return "; ".join(r[0] for r in self._read("PRAGMA integrity_check"))

    # -- spec texts ------------------------------------------------------------------------------

    def spec_text(self, spec_hash: str) -> str:
        rows = self._read("SELECT text FROM spec_texts WHERE hash = ?", (spec_hash,))
        if not rows:
            raise RegistryError(f"no stored spec with hash {spec_hash[:12]}")
        return rows[0][0]

    def spec_file(self, kind: str, name: str, spec_hash: str) -> Path:
        """The stored spec text as a file (``registry/specs/<kind>/<name>.<hash12>.yaml``), written if missing."""
        from specml.data.files import atomic_write_text

        path = self.home / "registry" / "specs" / kind / f"{name}.{spec_hash[:12]}.yaml"
        if not path.exists() or text_hash(path.read_text(encoding="utf-8")) != spec_hash:
            atomic_write_text(path, self.spec_text(spec_hash))
        return path

    def _store_text(self, con: sqlite3.Connection, kind: str, text: str) -> str:
        h = text_hash(text)
        con.execute("INSERT OR IGNORE INTO spec_texts VALUES (?, ?, ?, ?)", (h, kind, text, now()))
        return h

    # -- model specs -------------------------------------------------------------------------------

    def register_model_spec(self, name: str, path: str | Path, *, replace: bool = False,
                            check: bool = True) -> ModelSpecEntry:
        """Validate a model spec file and register it under ``name``.

        Registering the same text again is a no-op; a different text under a taken name needs
        ``replace=True`` (runs keep the hash of the version they used, and every version's text is kept).
        """
        from specml.artifact import validate_name
        from specml.spec import load_spec

        _valid_name(validate_name, name)
        loaded = load_spec(path, check=False)
        if loaded.model is None:
            raise SpecError([SpecIssue((), "this file holds a trainer spec, not a model spec",
                                       "register it with: specml create-trainer --name NAME --spec FILE --model MODEL",
                                       str(path))])
        if check:
            loaded = load_spec(path, check=True)  # builds the model, runs a dummy batch
        text = Path(path).read_text(encoding="utf-8")
        has_loss = bool(loaded.model.losses)
        with self._write() as con:
            old = con.execute("SELECT spec_hash, source_path FROM model_specs WHERE name = ?", (name,)).fetchone()
            h = self._store_text(con, "model", text)
            stamp = now()
            if old is None:
                con.execute("INSERT INTO model_specs VALUES (?, ?, ?, ?, ?, ?, ?)",
                            (name, h, loaded.model.name, str(Path(path).resolve()), int(has_loss), stamp, stamp))
            elif old["spec_hash"] != h:
                if not replace:
                    raise RegistryError(f"model spec '{name}' is already registered (from {old['source_path']}, "
                                        f"sha256 {old['spec_hash'][:12]}) with a different text; pass --replace to "
                                        "register this version instead")
                con.execute("UPDATE model_specs SET spec_hash = ?, spec_name = ?, source_path = ?, has_loss = ?, "
                            "updated_at = ? WHERE name = ?",
                            (h, loaded.model.name, str(Path(path).resolve()), int(has_loss), stamp, name))
        self.spec_file("model", name, h)
        return self.get_model_spec(name)

    def find_model_spec(self, name: str) -> ModelSpecEntry | None:
        rows = self._read("SELECT m.*, t.text AS spec_text FROM model_specs m JOIN spec_texts t ON t.hash = m.spec_hash "
                          "WHERE m.name = ?", (name,))
        return _from_row(ModelSpecEntry, rows[0] if rows else None, has_loss=bool)

    def get_model_spec(self, name: str) -> ModelSpecEntry:
        found = self.find_model_spec(name)
        if found is None:
            raise RegistryError(_unknown("model spec", name, self.model_spec_names(),
                                         "register one with: specml create-model --name NAME --spec MODEL.yaml"))
        return found

    def model_spec_names(self) -> list[str]:
        return [r[0] for r in self._read("SELECT name FROM model_specs ORDER BY name")]

    def list_model_specs(self) -> list[ModelSpecEntry]:
        rows = self._read("SELECT m.*, '' AS spec_text FROM model_specs m ORDER BY name")
        return [_from_row(ModelSpecEntry, r, has_loss=bool) for r in rows]

    # -- trainer specs ---------------------------------------------------------------------------

    def register_trainer_spec(self, name: str, path: str | Path, model: str | None = None, *,
                              replace: bool = False, check: bool = True) -> TrainerSpecEntry:
        """Validate a trainer spec file and register it under ``name`` for a registered model spec.

        The model is ``model`` or the spec's ``model_ref`` (which may name the registered model or the
        ``name:`` inside its spec); when both are given they must agree. The model must have a loss, in
        its own spec or in this trainer spec's ``loss:`` (and the two must not disagree).
        """
        from specml.artifact import validate_name
        from specml.spec import load_spec
        from specml.spec.yaml_io import read_yaml

        _valid_name(validate_name, name)
        loaded = load_spec(path, check=False)  # the registry's checks first: they need no torch
        file = str(path)
        if loaded.trainer is None or loaded.model is not None:
            what = "a model spec" if loaded.trainer is None else "a model spec with its training section"
            raise SpecError([SpecIssue((), f"this file holds {what}, not a trainer spec",
                                       "register it with: specml create-model --name NAME --spec FILE", file)])
        trainer = loaded.trainer
        _, lines = read_yaml(path)
        entry = self._model_for_trainer(model, trainer.model_ref, file, lines)
        self._check_loss(entry, loaded.trainer, file, lines)
        if check:
            load_spec(path, check=True)  # optimizer and scheduler build
        text = Path(path).read_text(encoding="utf-8")
        with self._write() as con:
            old = con.execute("SELECT spec_hash, model_ref, source_path FROM trainer_specs WHERE name = ?",
                              (name,)).fetchone()
            h = self._store_text(con, "trainer", text)
            stamp = now()
            values = (h, entry.name, str(Path(path).resolve()), int(trainer.loss is not None))
            if old is None:
                con.execute("INSERT INTO trainer_specs VALUES (?, ?, ?, ?, ?, ?, ?)", (name, *values, stamp, stamp))
            elif (old["spec_hash"], old["model_ref"]) != (h, entry.name):
                if not replace:
                    raise RegistryError(f"trainer spec '{name}' is already registered (for model '{old['model_ref']}', "
                                        f"from {old['source_path']}, sha256 {old['spec_hash'][:12]}); pass --replace "
                                        "to register this version instead")
                con.execute("UPDATE trainer_specs SET spec_hash = ?, model_ref = ?, source_path = ?, has_loss = ?, "
                            "updated_at = ? WHERE name = ?", (*values, stamp, name))
        self.spec_file("trainer", name, h)
        return self.get_trainer_spec(name)

    def _model_for_trainer(self, model: str | None, model_ref: str | None, file: str, lines) -> ModelSpecEntry:
        names = self.model_spec_names()
        if model is not None:
            entry = self.find_model_spec(model)
            if entry is None:
                raise RegistryError(_unknown("model spec", model, names,
                                             f"register it first: specml create-model --name {model} --spec MODEL.yaml",
                                             prefix="--model "))
            if model_ref is not None and model_ref not in (entry.name, entry.spec_name):
                raise SpecError([SpecIssue(("model_ref",), f"model_ref is '{model_ref}' but --model is '{model}' "
                                           f"(whose spec is named '{entry.spec_name}')",
                                           "make them agree, or remove model_ref", file)]).with_file(file, lines)
            return entry
        if model_ref is None:
            raise RegistryError(f"{file}: no model to register this trainer for: pass --model NAME "
                                "(a registered model spec) or set model_ref in the trainer spec")
        entry = self.find_model_spec(model_ref)
        if entry is None:  # model_ref may also name the spec inside a registered model (its name: field)
            by_spec_name = [m for m in self.list_model_specs() if m.spec_name == model_ref]
            if len(by_spec_name) == 1:
                return self.get_model_spec(by_spec_name[0].name)
            listed = f"registered: {', '.join(names)}" if names and len(names) <= 10 else None
            if by_spec_name:
                raise SpecError([SpecIssue(("model_ref",), f"model_ref '{model_ref}' is the spec name of several "
                                           f"registered models ({', '.join(m.name for m in by_spec_name)})",
                                           "say which with --model", file)]).with_file(file, lines)
            hint = suggestion(model_ref, names) or listed or \
                f"register it first: specml create-model --name {model_ref} --spec MODEL.yaml"
            raise SpecError([SpecIssue(("model_ref",), f"model_ref '{model_ref}' is not a registered model spec",
                                       hint, file)]).with_file(file, lines)
        return entry

    def _check_loss(self, entry: ModelSpecEntry, trainer, file: str, lines) -> None:
        from specml.spec import load_spec, merge_loss
        from specml.spec.check import check_model

        if not entry.has_loss and trainer.loss is None:
            raise SpecError([SpecIssue(("loss",), f"model '{entry.name}' has no loss (in {entry.source_path}) and "
                                       "this trainer spec has none either",
                                       "add a loss: section to the model spec (its canonical place) and register it "
                                       "again with --replace, or add loss: here", file)]).with_file(file, lines)
        if trainer.loss is None:
            return
        model = load_spec(self.spec_file("model", entry.name, entry.spec_hash), check=False).model
        try:
            merged = merge_loss(model, trainer)
        except SpecError as err:
            raise err.with_file(file, lines) from None
        issues = [i for i in check_model(merged) if i.loc[:1] == ("loss",)]
        if issues:
            raise SpecError(issues).with_file(file, lines)

    def find_trainer_spec(self, name: str) -> TrainerSpecEntry | None:
        rows = self._read("SELECT s.*, t.text AS spec_text FROM trainer_specs s JOIN spec_texts t ON t.hash = s.spec_hash "
                          "WHERE s.name = ?", (name,))
        return _from_row(TrainerSpecEntry, rows[0] if rows else None, has_loss=bool)

    def get_trainer_spec(self, name: str) -> TrainerSpecEntry:
        found = self.find_trainer_spec(name)
        if found is None:
            names = [r[0] for r in self._read("SELECT name FROM trainer_specs ORDER BY name")]
            raise RegistryError(_unknown("trainer spec", name, names, "register one with: specml create-trainer "
                                         "--name NAME --spec TRAINER.yaml --model MODEL"))
        return found

    def list_trainer_specs(self) -> list[TrainerSpecEntry]:
        rows = self._read("SELECT s.*, '' AS spec_text FROM trainer_specs s ORDER BY name")
        return [_from_row(TrainerSpecEntry, r, has_loss=bool) for r in rows]

    def resolve(self, model: str, trainer: str | None) -> tuple[Path, Path | None]:
        """Spec files for ``specml train --model M --trainer T``: the stored texts, written under the home.

        The trainer must be registered for that model. Without a trainer the model spec must carry its
        own ``training:`` section (checked by the training itself).
        """
        entry = self.get_model_spec(model)
        model_path = self.spec_file("model", entry.name, entry.spec_hash)
        if trainer is None:
            return model_path, None
        t = self.get_trainer_spec(trainer)
        if t.model_ref != entry.name:
            raise RegistryError(f"trainer '{trainer}' is registered for model '{t.model_ref}', not '{model}' "
                                f"(register it for '{model}' too: specml create-trainer --name NAME --spec "
                                f"{t.source_path} --model {model})")
        return model_path, self.spec_file("trainer", t.name, t.spec_hash)

    # -- runs --------------------------------------------------------------------------------------

    def start_run(self, name: str, *, run_id: str | None = None, run_dir: str | Path | None = None,
                  **values: Any) -> Run:
        """Record a run that starts now (status ``running``). ``run_id`` defaults to the run dir's name.

        ``values`` are Run fields: model_spec_name/hash, trainer_spec_name/hash, table_name, data_rows,
        data_hash, epochs_total, job_id (the job is linked to the run), ...
        """
        run_id = run_id or (Path(run_dir).name if run_dir else f"{datetime.now(UTC):%Y%m%d-%H%M%S-%f}_{name}")
        row = {"name": name, "run_dir": str(run_dir) if run_dir else None, "status": "running",
               "started_at": now(), **_only(values, _RUN_FIELDS)}
        with self._write() as con:
            cols = ", ".join(["run_id", *row])
            con.execute(f"INSERT INTO runs ({cols}) VALUES ({', '.join('?' * (len(row) + 1))})",
                        (run_id, *map(_plain, row.values())))
            if row.get("job_id") is not None:
                con.execute("UPDATE jobs SET run_id = ? WHERE job_id = ?", (run_id, row["job_id"]))
        return self.get_run(run_id)

    def update_run(self, run_id: str, **values: Any) -> None:
        self._update("runs", "run_id", run_id, _only(values, _RUN_FIELDS))

    def finish_run(self, run_id: str, status: str = "completed", *, error: str | None = None, **values: Any) -> Run:
        """End a run: ``completed``, ``failed`` or ``cancelled``, with the best metric, model dir, error."""
        if status not in FINAL:
            raise ValueError(f"a run ends as one of {', '.join(FINAL)}, not {status!r}")
        self._update("runs", "run_id", run_id, {**_only(values, _RUN_FIELDS), "status": status, "error": error,
                                                "ended_at": now()})
        return self.get_run(run_id)

    def get_run(self, run_id: str) -> Run:
        rows = self._read("SELECT * FROM runs WHERE run_id = ?", (run_id,))
        if not rows:
            raise RegistryError(f"no run '{run_id}'")
        return _from_row(Run, rows[0])

    def list_runs(self, name: str | None = None) -> list[Run]:
        rows = (self._read("SELECT * FROM runs WHERE name = ? ORDER BY started_at, run_id", (name,)) if name
                else self._read("SELECT * FROM runs ORDER BY started_at, run_id"))
        return [_from_row(Run, r) for r in rows]

    # -- evaluations ---------------------------------------------------------------------------------

    def add_evaluation(self, model_name: str, table_name: str, metrics: dict[str, Any], *,
                       rows: int | None = None, run_id: str | None = None) -> Evaluation:
        clean = {k: _plain(v) for k, v in metrics.items()}
        with self._write() as con:
            cur = con.execute("INSERT INTO evaluations (model_name, table_name, rows, metrics, run_id, created_at) "
                              "VALUES (?, ?, ?, ?, ?, ?)", (model_name, table_name, rows, json.dumps(clean),
                                                            run_id, now()))
            new_id = cur.lastrowid
        return self.list_evaluations(model_name, _id=new_id)[0]

    def list_evaluations(self, model_name: str | None = None, *, _id: int | None = None) -> list[Evaluation]:
        where, params = ("WHERE id = ?", (_id,)) if _id is not None else \
            ("WHERE model_name = ?", (model_name,)) if model_name else ("", ())
        rows = self._read(f"SELECT * FROM evaluations {where} ORDER BY id", params)
        return [_from_row(Evaluation, r, metrics=json.loads) for r in rows]

    # -- lineage ---------------------------------------------------------------------------------------

    def lineage(self, model_name: str) -> dict[str, Any]:
        """Which specs (names and hashes), table and data trained a model, run by run; its evaluations.

        ``current`` says whether a run's spec hash is still the registered version of that name.
        """
        runs = self.list_runs(model_name)
        evaluations = self.list_evaluations(model_name)
        if not runs and not evaluations:
            names = [r[0] for r in self._read("SELECT DISTINCT name FROM runs ORDER BY name")]
            hint = suggestion(model_name, names) or (f"models with runs: {', '.join(names)}" if names and
                                                     len(names) <= 10 else "runs are recorded by specml train")
            raise RegistryError(f"no runs recorded for model '{model_name}' ({hint})")
        out = []
        for run in runs:
            item = run.to_dict()
            m = self.find_model_spec(run.model_spec_name) if run.model_spec_name else None
            t = self.find_trainer_spec(run.trainer_spec_name) if run.trainer_spec_name else None
            item["model_spec_current"] = None if m is None else m.spec_hash == run.model_spec_hash
            item["trainer_spec_current"] = None if t is None else t.spec_hash == run.trainer_spec_hash
            item["trainer_model_ref"] = None if t is None else t.model_ref
            out.append(item)
        return {"model": model_name, "runs": out, "evaluations": [e.to_dict() for e in evaluations]}

    # -- plans --------------------------------------------------------------------------------------

    def save_plan(self, plan: dict[str, Any]) -> str:
        """Store a plan (a JSON-able dict with ``instruction`` and ``table``); its new id, ``plan-<n>``.

        The stored body carries the id as ``plan_id``; ``created_at`` is kept when given, else now.
        """
        body = dict(plan)
        created = str(body.get("created_at") or now())
        body["created_at"] = created
        with self._write() as con:
            cur = con.execute("INSERT INTO plans (instruction, table_name, created_at, plan) VALUES (?, ?, ?, '{}')",
                              (str(body.get("instruction", "")), str(body.get("table", "")), created))
            plan_id = f"{PLAN_PREFIX}{cur.lastrowid}"
            body["plan_id"] = plan_id
            con.execute("UPDATE plans SET plan = ? WHERE id = ?", (json.dumps(body, default=str), cur.lastrowid))
        return plan_id

    def get_plan(self, plan_id: int | str) -> dict[str, Any]:
        """The stored plan ``plan_id`` (``plan-3`` or ``3``); RegistryError naming known ids if absent."""
        key = plan_key(plan_id)
        rows = self._read("SELECT plan FROM plans WHERE id = ?", (key,)) if key is not None else []
        if not rows:
            ids = [e.plan_id for e in self.list_plans()]
            hint = suggestion(str(plan_id).strip(), ids) if ids and key is None else None  # a typo, not a number
            if hint is None:
                hint = (f"the latest are {', '.join(ids[-5:])}; see specml plan list" if ids else
                        "there are no plans yet: specml plan --instruction \"...\" --data-table TABLE")
            raise RegistryError(f"plan '{plan_id}' not found ({hint})")
        return json.loads(rows[0][0])

    def list_plans(self) -> list[PlanEntry]:
        """Every stored plan, oldest first."""
        rows = self._read("SELECT id, instruction, table_name, created_at FROM plans ORDER BY id")
        return [PlanEntry(f"{PLAN_PREFIX}{r['id']}", r["instruction"], r["table_name"], r["created_at"]) for r in rows]

    # -- jobs -----------------------------------------------------------------------------------------

    def create_job(self, name: str, argv: list[str], *, total_epochs: int | None = None,
                   log_path: str | Path | None = None, run_id: str | None = None) -> Job:
        """A new job (status ``queued``); its log defaults to ``<home>/jobs/<id>/stdout.log``."""
        with self._write() as con:
            cur = con.execute("INSERT INTO jobs (name, status, argv, total_epochs, run_id, created_at) "
                              "VALUES (?, 'queued', ?, ?, ?, ?)",
                              (name, json.dumps([str(a) for a in argv]), total_epochs, run_id, now()))
            job_id = cur.lastrowid
            path = Path(log_path) if log_path else self.home / "jobs" / str(job_id) / "stdout.log"
            con.execute("UPDATE jobs SET log_path = ? WHERE job_id = ?", (str(path), job_id))
        return self.get_job(job_id)

    def update_job(self, job_id: int, *, only_active: bool = False, **values: Any) -> bool:
        """Set job fields; with ``only_active`` only while the job is queued or running. True if a row changed."""
        return self._update("jobs", "job_id", int(job_id), _only(values, _JOB_FIELDS),
                            "status IN ('queued', 'running')" if only_active else None)

    def finish_job(self, job_id: int, status: str, *, exit_code: int | None = None,
                   error: str | None = None) -> bool:
        """End a job once: only a queued or running job changes (False otherwise).

        The exit code is recorded whenever none is yet (a cancelled job still gets its exit code);
        an error already recorded (by the training process) is kept.
        """
        if status not in FINAL:
            raise ValueError(f"a job ends as one of {', '.join(FINAL)}, not {status!r}")
        with self._write() as con:
            changed = con.execute("UPDATE jobs SET status = ?, ended_at = ?, error = COALESCE(error, ?) "
                                  "WHERE job_id = ? AND status IN ('queued', 'running')",
                                  (status, now(), error, int(job_id))).rowcount
            if exit_code is not None:
                con.execute("UPDATE jobs SET exit_code = ? WHERE job_id = ? AND exit_code IS NULL",
                            (exit_code, int(job_id)))
        return bool(changed)

    def get_job(self, job_id: int | str) -> Job:
        try:
            key = int(job_id)
        except (TypeError, ValueError):
            raise RegistryError(f"'{job_id}' is not a job id (job ids are numbers: see specml jobs list)") from None
        rows = self._read("SELECT * FROM jobs WHERE job_id = ?", (key,))
        if not rows:
            ids = [str(r[0]) for r in self._read("SELECT job_id FROM jobs ORDER BY job_id DESC LIMIT 5")]
            known = f"the latest are {', '.join(reversed(ids))}" if ids else "there are no jobs yet"
            raise RegistryError(f"no job {key} ({known}; see specml jobs list)")
        return _from_row(Job, rows[0], argv=json.loads)

    def list_jobs(self, *, active: bool = False, limit: int | None = None) -> list[Job]:
        """Jobs by id (the ``limit`` latest); ``active``: only queued and running ones."""
        where = "WHERE status IN ('queued', 'running')" if active else ""
        query = f"SELECT * FROM jobs {where} ORDER BY job_id DESC" + (f" LIMIT {int(limit)}" if limit else "")
        return [_from_row(Job, r, argv=json.loads) for r in reversed(self._read(query))]

    # -- helpers -----------------------------------------------------------------------------------------

    def _update(self, table: str, key: str, value: Any, values: dict[str, Any], condition: str | None = None) -> bool:
        if not values:
            return False
        sets = ", ".join(f"{k} = ?" for k in values)
        where = f"{key} = ?" + (f" AND {condition}" if condition else "")
        with self._write() as con:
            changed = con.execute(f"UPDATE {table} SET {sets} WHERE {where}",
                                  (*map(_plain, values.values()), value)).rowcount
        if not changed and condition is None:
            raise RegistryError(f"no {table[:-1]} '{value}'")
        return bool(changed)


def _only(values: dict[str, Any], allowed: set[str]) -> dict[str, Any]:
    unknown = sorted(set(values) - allowed)
    if unknown:
        raise TypeError(f"unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(allowed))}")
    return values


def _unknown(what: str, name: str, names: list[str], otherwise: str, prefix: str = "") -> str:
    hint = suggestion(name, names)
    if hint:
        return f"{prefix}'{name}': no {what} by that name ({hint})"
    listed = f"registered: {', '.join(names)}" if names and len(names) <= 10 else otherwise
    return f"{prefix}'{name}': no {what} by that name ({listed})"


def _valid_name(validate, name: str) -> None:
    try:
        validate(name)
    except ValueError as err:
        raise RegistryError(str(err).replace("model name", "name")) from None


def resolve_registered(model_name: str, trainer_name: str | None,
                       registry: Registry | None = None) -> tuple[Path, Path | None]:
    """(model spec path, trainer spec path) for ``specml train --model M --trainer T``."""
    return (registry or Registry()).resolve(model_name, trainer_name)
