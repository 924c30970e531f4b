"""The registry's storage: one SQLite file, shared by many processes.

The database runs in WAL mode with a busy timeout; every write is one short ``BEGIN IMMEDIATE``
transaction (the write lock is taken at the start, so two writers never deadlock upgrading a read
lock). The schema is versioned (table ``schema_version``); opening a database applies the
migrations it is missing and refuses one written by a newer specml. What the tables mean lives in
:mod:`specml.track.tables`; this module knows only SQL, rows and time stamps. No torch here.
"""

from __future__ import annotations

import json
import math
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self, TypeVar

from specml.errors import SpecmlError

MIGRATIONS: list[list[str]] = [
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
    [  # 3: the process training a run, so a run whose process died (kill -9) is marked failed when read
        "ALTER TABLE runs ADD COLUMN pid INTEGER",
        "ALTER TABLE runs ADD COLUMN pid_started INTEGER",
    ],
    [  # 4: the overrides a run was trained with (a JSON list of Hydra-style path=value strings)
        "ALTER TABLE runs ADD COLUMN overrides TEXT",
    ],
    [  # 5: the trivial-baseline guard (specml.guard): 1 when the model did worse than the trivial predictor on
        # its validation rows, 0 when not, NULL when not checked; and the trivial predictor's value it was compared to
        "ALTER TABLE runs ADD COLUMN worse_than_trivial INTEGER",
        "ALTER TABLE runs ADD COLUMN trivial_value REAL",
    ],
]
SCHEMA_VERSION = len(MIGRATIONS)


class RegistryError(SpecmlError, ValueError):
    """A name that is not registered, a name taken by a different spec, a job that cannot be changed."""


def now() -> str:
    """The current UTC time as ISO 8601 with milliseconds (how the registry stores times)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def parse_time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


# ----------------------------------------------------------------------------------------------
# rows <-> Python values


class Row:
    """Base of the frozen dataclasses the tables return."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


R = TypeVar("R")


def from_row(cls: type[R], row: sqlite3.Row | None, **convert: Callable[[Any], Any]) -> R | None:
    """``cls`` built from the row's columns that are its fields; ``convert`` maps a field's stored value."""
    if row is None:
        return None
    keys = row.keys()
    values = {f.name: row[f.name] for f in fields(cls) if f.name in keys}
    for key, fn in convert.items():
        values[key] = fn(values[key])
    return cls(**values)


def plain(value: Any) -> Any:
    """A value SQLite stores: lists/dicts as JSON, NaN/inf as NULL, numpy scalars as Python numbers."""
    if isinstance(value, list | tuple | dict):
        return json.dumps(value)
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def only(values: dict[str, Any], allowed: set[str]) -> dict[str, Any]:
    """``values`` when every key is a known column; TypeError naming the unknown ones otherwise."""
    unknown = sorted(set(values) - allowed)
    if unknown:
        raise TypeError(f"unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(allowed))}")
    return values


# ----------------------------------------------------------------------------------------------


class Store:
    """One SQLite database file, opened on first use and migrated to :data:`SCHEMA_VERSION`.

    Safe to use from many processes at once; one instance may be shared by threads.
    """

    def __init__(self, path: str | Path, timeout: float = 30.0) -> None:
        self.path = Path(path).expanduser()
        self.timeout = timeout
        self._con: sqlite3.Connection | None = None
        self._lock = threading.RLock()

    @property
    def home(self) -> Path:
        """The folder holding the database (files the tables write go under it)."""
        return self.path.parent

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r})"

    @property
    def con(self) -> sqlite3.Connection:
        if self._con is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                con = sqlite3.connect(str(self.path), timeout=self.timeout, isolation_level=None,
                                      check_same_thread=False)
            except (OSError, sqlite3.Error) as err:
                raise RegistryError(f"the registry {self.path} cannot be opened ({err}); check that "
                                    f"{self.path.parent} is a writable folder (SPECML_HOME)") from None
            try:
                con.row_factory = sqlite3.Row
                con.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")
                self._retry(lambda: con.execute("PRAGMA journal_mode = WAL").fetchone())
                con.execute("PRAGMA synchronous = NORMAL")  # in WAL mode: durable across crashes of the process
                con.execute("PRAGMA foreign_keys = ON")
                self._migrate(con)
            except sqlite3.DatabaseError as err:
                con.close()
                raise RegistryError(f"{self.path} is not a usable registry ({err}); move it aside and specml "
                                    "starts a new one (trained models and runs stay on disk)") from None
            except BaseException:
                con.close()
                raise
            self._con = con
        return self._con

    def close(self) -> None:
        with self._lock:
            if self._con is not None:
                self._con.close()
                self._con = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

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

    @contextmanager
    def _transaction(self, con: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
        self._retry(lambda: con.execute("BEGIN IMMEDIATE"))
        try:
            yield con
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One short write transaction: committed at the end of the block, rolled back on an exception."""
        with self._lock, self._transaction(self.con) as con:
            yield con

    def read(self, query: str, params: tuple = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self.con.execute(query, params).fetchall()

    def update(self, table: str, key: str, value: Any, values: dict[str, Any], condition: str | None = None) -> bool:
        """``UPDATE table SET values WHERE key = value [AND condition]``; True if a row changed.

        Without a condition, no such row is a :class:`RegistryError`.
        """
        if not values:
            return False
        sets = ", ".join(f"{k} = ?" for k in values)
        where = f"{key} = ?" + (f" AND {condition}" if condition else "")
        with self.write() as con:
            changed = con.execute(f"UPDATE {table} SET {sets} WHERE {where}",
                                  (*map(plain, values.values()), value)).rowcount
        if not changed and condition is None:
            raise RegistryError(f"no {table[:-1]} '{value}'")
        return bool(changed)

    def _migrate(self, con: sqlite3.Connection) -> None:
        with self._transaction(con):
            con.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = con.execute("SELECT version FROM schema_version").fetchone()
            version = row[0] if row else 0
            if version > SCHEMA_VERSION:
                raise RegistryError(f"{self.path} was written by a newer specml (registry schema {version}; "
                                    f"this version reads up to {SCHEMA_VERSION})")
            for statements in MIGRATIONS[version:]:
                for sql in statements:
                    con.execute(sql)
            if row is None:
                con.execute("INSERT INTO schema_version VALUES (?)", (SCHEMA_VERSION,))
            elif version < SCHEMA_VERSION:
                con.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION,))

    def journal_mode(self) -> str:
        return self.read("PRAGMA journal_mode")[0][0]

    def integrity_check(self) -> str:
        return "; ".join(r[0] for r in self.read("PRAGMA integrity_check"))
