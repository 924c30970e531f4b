"""ML plans in the registry: ids, did-you-mean, the schema migration, concurrent writers."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest

from specml.track.registry import Registry, RegistryError, plan_key
from specml.track.store import MIGRATIONS, SCHEMA_VERSION


@pytest.fixture
def reg(tmp_path):
    r = Registry(home=tmp_path)
    yield r
    r.close()


def test_save_get_list(reg):
    assert reg.list_plans() == []
    first = reg.save_plan({"instruction": "predict diabetes", "table": "pima", "task": "binary",
                           "created_at": "2025-01-01T12:00:00+00:00", "plan_id": "ignored"})
    second = reg.save_plan({"instruction": "forecast sales", "table": "daily", "nested": {"a": [1, 2]}})
    assert (first, second) == ("plan-1", "plan-2")
    body = reg.get_plan("plan-1")
    assert body == {"instruction": "predict diabetes", "table": "pima", "task": "binary",
                    "created_at": "2025-01-01T12:00:00+00:00", "plan_id": "plan-1"}
    assert reg.get_plan(2)["nested"] == {"a": [1, 2]} and reg.get_plan(" Plan-2 ")["plan_id"] == "plan-2"
    entries = reg.list_plans()
    assert [(e.plan_id, e.instruction, e.table_name) for e in entries] == [
        ("plan-1", "predict diabetes", "pima"), ("plan-2", "forecast sales", "daily")]
    assert entries[0].created_at == "2025-01-01T12:00:00+00:00" and entries[1].created_at  # now, when not given


def test_unknown_ids_name_the_known_ones(reg):
    with pytest.raises(RegistryError, match=r"plan 'plan-1' not found \(there are no plans yet"):
        reg.get_plan("plan-1")
    for i in range(7):
        reg.save_plan({"instruction": f"goal {i}", "table": "t"})
    with pytest.raises(RegistryError, match=r"plan 'plan-9' not found \(the latest are plan-3, plan-4, plan-5, "
                                            r"plan-6, plan-7; see specml plan list\)"):
        reg.get_plan("plan-9")
    with pytest.raises(RegistryError, match=r"plan 'plam-5' not found \(did you mean 'plan-5'\?\)"):
        reg.get_plan("plam-5")


def test_plan_key():
    assert [plan_key(x) for x in ("plan-3", "3", 3, " PLAN-12 ", "plan-", "plan-x", "plan-20240101-000000-abcdef")] \
        == [3, 3, 3, 12, None, None, None]


def test_a_version_1_database_gains_the_plans_table_and_keeps_its_rows(tmp_path):
    path = tmp_path / "registry.sqlite"
    con = sqlite3.connect(path)
    for sql in MIGRATIONS[0]:
        con.execute(sql)
    con.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    con.execute("INSERT INTO schema_version VALUES (1)")
    con.execute("INSERT INTO jobs (name, status, argv, created_at) VALUES ('old', 'completed', '[\"train\"]', "
                "'2025-01-01T00:00:00.000+00:00')")
    con.commit()
    con.close()
    reg = Registry(path)
    assert [j.name for j in reg.list_jobs()] == ["old"]
    assert reg.save_plan({"instruction": "predict y", "table": "t"}) == "plan-1"
    reg.close()
    con = sqlite3.connect(path)
    assert con.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)] == [(4,)]
    con.close()


WRITER = textwrap.dedent("""
    import sys, time
    from specml.track.registry import Registry
    home, worker, count, start = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    while time.time() < start:
        time.sleep(0.001)
    reg = Registry(home=home)
    for i in range(count):
        print(reg.save_plan({"instruction": f"goal {worker}-{i}", "table": f"t{worker}", "worker": worker, "i": i}))
""")


@pytest.mark.slow  # four writer processes
def test_concurrent_saves_from_four_processes_keep_every_plan(tmp_path):
    Registry(home=tmp_path).close()  # created (and migrated) once, as the first CLI call would
    start = time.time() + 1.5
    count = 25
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), str(w), str(count), str(start)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for w in range(4)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, [err for _, err in outs]
    printed = [line for out, _ in outs for line in out.split()]
    assert len(printed) == len(set(printed)) == 4 * count
    reg = Registry(home=tmp_path)
    entries = reg.list_plans()
    assert sorted(e.plan_id for e in entries) == sorted(printed)
    assert [e.plan_id for e in entries] == [f"plan-{n}" for n in range(1, 4 * count + 1)]
    seen = set()
    for e in entries:
        body = reg.get_plan(e.plan_id)
        assert body["plan_id"] == e.plan_id and body["instruction"] == e.instruction == \
            f"goal {body['worker']}-{body['i']}" and e.table_name == f"t{body['worker']}"
        seen.add((body["worker"], body["i"]))
    assert seen == {(w, i) for w in range(4) for i in range(count)}
    assert reg.integrity_check() == "ok"
    assert json.loads(json.dumps([e.to_dict() for e in entries]))  # entries are plain data
    reg.close()
