"""The registry's storage layer: migrations, WAL, the busy timeout, transactions."""

from __future__ import annotations

import hashlib
import sqlite3
import threading
import time

import pytest

from specml.track.registry import Registry
from specml.track.store import MIGRATIONS, SCHEMA_VERSION, RegistryError, Store

# sha256 (first 16 hex) of each published migration's statements: a database in a user's home was made
# by them, so they never change; a schema change is a new migration (and a test of it)
PUBLISHED = ["e045051c6edf4efd", "dd36a38069322c84"]


def test_published_migrations_never_change():
    assert [hashlib.sha256("\n".join(m).encode()).hexdigest()[:16] for m in MIGRATIONS[:len(PUBLISHED)]] == PUBLISHED
    assert SCHEMA_VERSION == len(MIGRATIONS) >= len(PUBLISHED)


def _database_at_version(path, version: int) -> None:
    """A database as specml wrote it at schema ``version`` (the migrations up to it, applied by hand)."""
    con = sqlite3.connect(path)
    for statements in MIGRATIONS[:version]:
        for sql in statements:
            con.execute(sql)
    con.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    con.execute("INSERT INTO schema_version VALUES (?)", (version,))
    con.commit()
    con.close()


def test_the_previous_version_is_migrated_and_keeps_its_rows(tmp_path):
    path = tmp_path / "registry.sqlite"
    _database_at_version(path, SCHEMA_VERSION - 1)
    con = sqlite3.connect(path)
    con.execute("INSERT INTO spec_texts VALUES ('ab', 'model', 'name: m', '2025-01-01T00:00:00.000+00:00')")
    con.execute("INSERT INTO model_specs VALUES ('m', 'ab', 'm', '/x/m.yaml', 1, '2025-01-01T00:00:00.000+00:00', "
                "'2025-01-01T00:00:00.000+00:00')")
    con.execute("INSERT INTO runs (run_id, name, run_dir, status, model_spec_name, model_spec_hash, started_at) "
                "VALUES ('r1', 'm1', '/h/runs/r1', 'completed', 'm', 'ab', '2025-01-01T00:00:00.000+00:00')")
    con.commit()
    con.close()
    with Registry(path) as reg:
        assert reg.get_model_spec("m").spec_text == "name: m"
        assert reg.get_run("r1").run_dir == "/h/runs/r1"
        assert reg.lineage("m1")["runs"][0]["model_spec_current"] is True
        assert reg.save_plan({"instruction": "x", "table": "t"}) == "plan-1"  # the newest tables exist
    con = sqlite3.connect(path)
    assert con.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]
    con.close()


def test_a_newer_database_is_refused_every_time(tmp_path):
    path = tmp_path / "registry.sqlite"
    _database_at_version(path, SCHEMA_VERSION)
    con = sqlite3.connect(path)
    con.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    con.commit()
    con.close()
    store = Store(path)
    for _ in range(2):  # no half-open connection is left behind by the refusal
        with pytest.raises(RegistryError, match=f"newer specml \\(registry schema {SCHEMA_VERSION + 1}"):
            store.read("SELECT 1")
    store.close()


def test_wal_and_a_failed_write_rolls_back(tmp_path):
    with Store(tmp_path / "r.sqlite") as store:
        assert store.journal_mode() == "wal"
        with store.write() as con:
            con.execute("INSERT INTO plans (instruction, table_name, created_at, plan) VALUES ('a', 't', 'x', '{}')")
        with pytest.raises(ZeroDivisionError), store.write() as con:
            con.execute("INSERT INTO plans (instruction, table_name, created_at, plan) VALUES ('b', 't', 'x', '{}')")
            1 / 0
        assert [r[0] for r in store.read("SELECT instruction FROM plans")] == ["a"]
        assert store.integrity_check() == "ok"


def _hold_write_lock(path, seconds: float, held: threading.Event) -> threading.Thread:
    """Another writer: takes the write lock, keeps it ``seconds``, then commits a row of its own."""
    def hold() -> None:
        con = sqlite3.connect(path, isolation_level=None, timeout=30)
        con.execute("BEGIN IMMEDIATE")
        con.execute("INSERT INTO plans (instruction, table_name, created_at, plan) VALUES ('other', 't', 'x', '{}')")
        held.set()
        time.sleep(seconds)
        con.execute("COMMIT")
        con.close()

    thread = threading.Thread(target=hold)
    thread.start()
    return thread


def test_a_writer_waits_for_the_lock_within_the_busy_timeout(tmp_path):
    reg = Registry(tmp_path / "r.sqlite", timeout=10)
    reg.list_plans()  # open (and migrated) before the other writer takes the lock
    held = threading.Event()
    thread = _hold_write_lock(reg.path, 0.6, held)
    assert held.wait(10)
    with reg:
        start = time.monotonic()
        assert reg.save_plan({"instruction": "mine", "table": "t"}) == "plan-2"  # after the other writer's row
        assert time.monotonic() - start > 0.3  # it waited for the lock instead of failing
    thread.join()


def test_a_writer_gives_up_after_the_busy_timeout(tmp_path):
    path = tmp_path / "r.sqlite"
    store = Store(path, timeout=0.2)
    store.journal_mode()  # open (and migrated) before the other writer takes the lock
    held = threading.Event()
    thread = _hold_write_lock(path, 2.0, held)
    assert held.wait(10)
    start = time.monotonic()
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        with store.write() as con:
            con.execute("INSERT INTO plans (instruction, table_name, created_at, plan) VALUES ('me', 't', 'x', '{}')")
    assert time.monotonic() - start < 1.8
    store.close()
    thread.join()
    with Store(path) as store:
        assert [r[0] for r in store.read("SELECT instruction FROM plans")] == ["other"]
