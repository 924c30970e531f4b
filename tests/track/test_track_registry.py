"""The SQLite registry: specs, lineage, runs, jobs; WAL under many writer processes."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from specml.data.files import fingerprint as table_fingerprint
from specml.spec import SpecError
from specml.track.register import checked_model_spec, checked_trainer_spec
from specml.track.registry import (
    SCHEMA_VERSION,
    Registry,
    RegistryError,
    resolve_registered,
    text_hash,
)
from specml.track.tables.specs import NewModelSpec
from testkit import PIMA_MLP, ROOT

PIMA_MODEL = PIMA_MLP / "model.yaml"
PIMA_TRAINER = PIMA_MLP / "trainer.yaml"
VARIANTS = ROOT / "tests" / "fixtures" / "variants"


@pytest.fixture
def reg(specml_home) -> Registry:
    r = Registry()
    yield r
    r.close()


def no_loss_model(tmp_path: Path) -> Path:
    text = PIMA_MODEL.read_text(encoding="utf-8")
    path = tmp_path / "noloss.yaml"
    path.write_text(text[: text.index("\nloss:")] + "\n", encoding="utf-8")
    return path


def test_database_in_home_with_wal_and_schema_version(reg, tmp_path):
    assert reg.path == tmp_path / "home" / "registry.sqlite"
    assert reg.journal_mode() == "wal"
    reg.list_jobs()
    reg.close()
    again = Registry(reg.path)  # reopening applies nothing twice
    assert again.list_jobs() == []
    con = sqlite3.connect(reg.path)
    assert con.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]
    assert {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")} >= {
        "model_specs", "trainer_specs", "runs", "jobs", "evaluations", "spec_texts", "schema_version", "plans"}


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "r.sqlite"
    Registry(path).list_jobs()
    con = sqlite3.connect(path)
    con.execute("UPDATE schema_version SET version = 99")
    con.commit()
    con.close()
    with pytest.raises(RegistryError, match="newer specml"):
        Registry(path).list_jobs()


def test_register_model_and_trainer_by_model_ref(reg):
    m = reg.register_model_spec("pima", PIMA_MODEL)
    assert (m.name, m.spec_name, m.has_loss) == ("pima", "pima-mlp", True)
    assert m.spec_hash == text_hash(PIMA_MODEL.read_text(encoding="utf-8"))
    # model_ref: pima-mlp names the spec inside the registered model 'pima'
    t = reg.register_trainer_spec("pima_default", PIMA_TRAINER)
    assert t.model_ref == "pima" and not t.has_loss
    assert not (reg.home / "registry").exists()  # the database holds the texts; files are written to train
    model_path, trainer_path = resolve_registered("pima", "pima_default", reg)
    assert model_path.read_text(encoding="utf-8") == PIMA_MODEL.read_text(encoding="utf-8")
    assert trainer_path.read_text(encoding="utf-8") == PIMA_TRAINER.read_text(encoding="utf-8")
    assert model_path.is_relative_to(reg.home / "registry" / "specs")


def test_checking_and_storing_are_separate(reg):
    row = checked_model_spec("pima", PIMA_MODEL, check=False)  # reads and checks the file, stores nothing
    assert (row.spec_name, row.has_loss, row.text) == ("pima-mlp", True, PIMA_MODEL.read_text(encoding="utf-8"))
    assert reg.specs.find_model("pima") is None
    stored = reg.specs.add_model(NewModelSpec("m", "name: m\n", "m", "/nowhere/m.yaml", False))  # no file is read
    assert (stored.spec_text, stored.source_path, stored.has_loss) == ("name: m\n", "/nowhere/m.yaml", False)
    reg.specs.add_model(row)
    trainer = checked_trainer_spec(reg.specs, "fast", PIMA_TRAINER, check=False)  # model_ref: the spec's name
    assert trainer.model_ref == "pima" and reg.specs.find_trainer("fast") is None


def test_reregistering_needs_replace_and_keeps_old_text(reg, tmp_path):
    first = reg.register_model_spec("pima", PIMA_MODEL)
    assert reg.register_model_spec("pima", PIMA_MODEL).spec_hash == first.spec_hash  # same text: no-op
    changed = tmp_path / "m2.yaml"
    changed.write_text(PIMA_MODEL.read_text(encoding="utf-8").replace("out_features: 64", "out_features: 48")
                       .replace("in_features: 64", "in_features: 48"), encoding="utf-8")
    with pytest.raises(RegistryError, match="already registered.*--replace"):
        reg.register_model_spec("pima", changed)
    second = reg.register_model_spec("pima", changed, replace=True)
    assert second.spec_hash != first.spec_hash
    assert reg.spec_text(first.spec_hash) == PIMA_MODEL.read_text(encoding="utf-8")


def test_trainer_with_unknown_model_ref_says_did_you_mean(reg, tmp_path):
    reg.register_model_spec("pima", PIMA_MODEL)
    bad = tmp_path / "bad.yaml"
    bad.write_text(PIMA_TRAINER.read_text(encoding="utf-8").replace("model_ref: pima-mlp", "model_ref: pimaa"),
                   encoding="utf-8")
    with pytest.raises(SpecError) as err:
        reg.register_trainer_spec("t", bad)
    issue = err.value.issues[0]
    assert (issue.file, issue.path, issue.line) == (str(bad), "model_ref", 1)
    assert "did you mean 'pima'" in str(err.value)
    with pytest.raises(RegistryError, match="--spec-name 'pma'.*did you mean 'pima'"):
        reg.register_trainer_spec("t", PIMA_TRAINER, model="pma")
    assert reg.list_trainer_specs() == []


def test_model_ref_must_agree_with_model_option(reg):
    reg.register_model_spec("pima", PIMA_MODEL)
    reg.register_model_spec("other", PIMA_MODEL)
    assert reg.register_trainer_spec("t", PIMA_TRAINER, model="pima").model_ref == "pima"
    with pytest.raises(SpecError, match="several registered models.*--spec-name"):
        reg.register_trainer_spec("t2", PIMA_TRAINER)  # model_ref pima-mlp is the spec name of both


def test_a_loss_is_required_somewhere(reg, tmp_path):
    reg.register_model_spec("bare", no_loss_model(tmp_path))
    assert not reg.get_model_spec("bare").has_loss
    trainer = tmp_path / "t.yaml"
    trainer.write_text(PIMA_TRAINER.read_text(encoding="utf-8").replace("model_ref: pima-mlp\n", ""), encoding="utf-8")
    with pytest.raises(SpecError) as err:
        reg.register_trainer_spec("t", trainer, model="bare")
    assert err.value.issues[0].path == "loss" and "has no loss" in str(err.value)
    # the trainer may carry the loss; it must read an output the model has
    with_loss = tmp_path / "tl.yaml"
    with_loss.write_text(trainer.read_text(encoding="utf-8") + "loss:\n  type: torch.nn.BCEWithLogitsLoss\n"
                         "  inputs: {input: logits, target: outcome}\n", encoding="utf-8")
    entry = reg.register_trainer_spec("t", with_loss, model="bare")
    assert entry.has_loss and entry.model_ref == "bare"
    wrong = tmp_path / "tw.yaml"
    wrong.write_text(with_loss.read_text(encoding="utf-8").replace("input: logits", "input: logitz"), encoding="utf-8")
    with pytest.raises(SpecError, match="logitz"):
        reg.register_trainer_spec("t3", wrong, model="bare")


def test_conflicting_losses_and_wrong_kinds(reg, tmp_path):
    reg.register_model_spec("pima", PIMA_MODEL)
    conflict = tmp_path / "c.yaml"
    conflict.write_text(PIMA_TRAINER.read_text(encoding="utf-8") + "loss:\n  type: torch.nn.MSELoss\n"
                        "  inputs: {input: logits, target: outcome}\n", encoding="utf-8")
    with pytest.raises(SpecError, match="both define a loss"):
        reg.register_trainer_spec("c", conflict)
    with pytest.raises(SpecError, match="trainer spec, not a model spec"):
        reg.register_model_spec("x", PIMA_TRAINER)
    with pytest.raises(SpecError, match="not a trainer spec"):
        reg.register_trainer_spec("x", PIMA_MODEL, model="pima")
    with pytest.raises(RegistryError, match="not a valid name"):
        reg.register_model_spec("../evil", PIMA_MODEL)


def test_variant1_model_without_loss_and_trainer_with_loss(reg):
    reg.register_model_spec("churn", VARIANTS / "v1_model_no_loss.yaml")
    entry = reg.register_trainer_spec("churn_fast", VARIANTS / "v1_trainer_with_loss.yaml")
    assert entry.model_ref == "churn"


def test_resolve_checks_the_trainer_belongs_to_the_model(reg):
    reg.register_model_spec("pima", PIMA_MODEL)
    reg.register_model_spec("pima2", PIMA_MODEL)
    reg.register_trainer_spec("t", PIMA_TRAINER, model="pima")
    with pytest.raises(RegistryError, match="registered for model 'pima', not 'pima2'"):
        reg.resolve("pima2", "t")
    with pytest.raises(RegistryError, match="did you mean 'pima'"):
        reg.resolve("pimq", "t")
    assert reg.resolve("pima", None)[1] is None


def test_runs_lineage_and_evaluations(reg, tmp_path):
    reg.register_model_spec("pima", PIMA_MODEL)
    reg.register_trainer_spec("fast", PIMA_TRAINER)
    m, t = reg.get_model_spec("pima"), reg.get_trainer_spec("fast")
    job = reg.create_job("m1", ["train", "--name", "m1"], total_epochs=5)
    run_dir = tmp_path / "runs" / "20250101-120000_m1"
    run = reg.start_run("m1", run_dir=run_dir, model_spec_name="pima", model_spec_hash=m.spec_hash,
                        trainer_spec_name="fast", trainer_spec_hash=t.spec_hash, table_name="pima_train",
                        data_rows=614, data_hash="duckdb:00ff", epochs_total=5, job_id=job.job_id)
    assert run.run_id == "20250101-120000_m1" and run.status == "running"
    assert reg.get_job(job.job_id).run_id == run.run_id
    reg.update_run(run.run_id, epochs_done=3, best_metric="val_loss", best_value=float("nan"))
    assert reg.get_run(run.run_id).best_value is None  # NaN stored as null
    done = reg.finish_run(run.run_id, best_metric="val_loss", best_value=0.41, epochs_done=5, model_dir="/x/m1")
    assert done.status == "completed" and done.ended_at
    reg.add_evaluation("m1", "pima_test", {"accuracy": 0.75, "auc": 0.82, "f1": None}, rows=154)
    lin = reg.lineage("m1")
    (r,) = lin["runs"]
    assert (r["trainer_spec_name"], r["trainer_model_ref"], r["table_name"], r["data_rows"]) == \
        ("fast", "pima", "pima_train", 614)
    assert r["model_spec_current"] is True and r["trainer_spec_current"] is True
    assert lin["evaluations"][0]["metrics"] == {"accuracy": 0.75, "auc": 0.82, "f1": None}
    with pytest.raises(RegistryError, match="no runs recorded for model 'm1x'.*did you mean 'm1'"):
        reg.lineage("m1x")
    with pytest.raises(TypeError, match="unknown field"):
        reg.update_run(run.run_id, colour="red")
    with pytest.raises(ValueError):
        reg.finish_run(run.run_id, "running")


def test_finish_job_happens_once(reg):
    job = reg.create_job("j", ["train"])
    assert job.status == "queued" and job.log_path.endswith(f"jobs/{job.job_id}/stdout.log")
    assert reg.finish_job(job.job_id, "cancelled", error="cancelled by the user")
    assert not reg.finish_job(job.job_id, "completed", exit_code=-15)  # too late: stays cancelled
    got = reg.get_job(job.job_id)
    assert (got.status, got.exit_code, got.error) == ("cancelled", -15, "cancelled by the user")
    assert not reg.update_job(job.job_id, only_active=True, status="running")
    with pytest.raises(RegistryError, match="no job 999"):
        reg.get_job(999)
    with pytest.raises(RegistryError, match="not a job id"):
        reg.get_job("abc")


def test_table_fingerprint_ignores_order_and_sees_changes():
    import duckdb

    con = duckdb.connect()
    con.execute("CREATE TABLE a AS SELECT range AS x, range * 2 AS y FROM range(1000)")
    con.execute("CREATE TABLE b AS SELECT * FROM a ORDER BY random()")
    con.execute("CREATE TABLE c AS SELECT x, CASE WHEN x = 500 THEN -1 ELSE y END AS y FROM a")
    fa, fb, fc = (table_fingerprint(con, t) for t in "abc")
    assert fa == fb and fa[0] == 1000 and fa[1].startswith("duckdb:")
    assert fc[0] == 1000 and fc[1] != fa[1]


WRITER = textwrap.dedent("""
    import sys
    from specml.track.registry import Registry

    path, worker, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    reg = Registry(path)
    for i in range(n):
        name = f"w{worker}-{i}"
        job = reg.create_job(name, ["train", "--name", name], total_epochs=5)
        reg.update_job(job.job_id, status="running", pid=1000 + worker)
        run = reg.start_run(name, run_id=f"run-{name}", job_id=job.job_id, table_name="t", data_rows=i,
                            epochs_total=5)
        for epoch in range(1, 6):
            reg.update_job(job.job_id, epoch=epoch, best_metric="val_loss", best_value=1.0 / epoch)
            reg.update_run(run.run_id, epochs_done=epoch)
        reg.finish_run(run.run_id, best_metric="val_loss", best_value=0.2)
        reg.finish_job(job.job_id, "completed", exit_code=0)
        reg.add_evaluation(name, "t", {"accuracy": worker + i / 1000})
    print("ok", worker)
""")


@pytest.mark.slow  # eight writer processes
def test_eight_writer_processes_lose_nothing(tmp_path):
    path = tmp_path / "registry.sqlite"
    script = tmp_path / "writer.py"
    script.write_text(WRITER, encoding="utf-8")
    workers, n = 8, 25
    procs = [subprocess.Popen([sys.executable, str(script), str(path), str(w), str(n)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for w in range(workers)]
    for w, p in enumerate(procs):
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0 and out.strip() == f"ok {w}", err
    reg = Registry(path)
    assert reg.journal_mode() == "wal"
    assert reg.integrity_check() == "ok"
    jobs = reg.list_jobs()
    assert len(jobs) == workers * n and len({j.job_id for j in jobs}) == workers * n
    assert all(j.status == "completed" and j.exit_code == 0 and j.epoch == 5 and j.best_value == pytest.approx(0.2)
               and j.run_id == f"run-{j.name}" for j in jobs)
    runs = reg.list_runs()
    assert len(runs) == workers * n
    assert all(r.status == "completed" and r.epochs_done == 5 and r.job_id is not None for r in runs)
    assert sorted(r.name for r in runs) == sorted(j.name for j in jobs)
    evals = reg.list_evaluations()
    assert sorted(json.dumps(e.metrics) for e in evals) == sorted(
        json.dumps({"accuracy": w + i / 1000}) for w in range(workers) for i in range(n))
