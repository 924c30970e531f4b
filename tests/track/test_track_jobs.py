"""Background jobs, for real: `specml train` processes started by start_background, killed, cancelled
(those tests are slow: each trains in subprocesses).

Each job trains on its own copy of the workspace: DuckDB lets one process at a time open a database
file for writing, and `specml train` opens it read-write (see the report on api.train).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from specml.track.jobs import (
    JobReporter,
    cancel,
    follow,
    process_alive,
    process_start_time,
    refresh,
    start_background,
    tail,
)
from specml.track.registry import Registry
from specml.train.errors import TrainingError
from testkit import PIMA_MLP, SPECML, specml, specml_env

EXAMPLE = PIMA_MLP


def trainer_spec(path: Path, epochs: int) -> Path:
    text = (EXAMPLE / "trainer.yaml").read_text(encoding="utf-8")
    text = text.replace("epochs: 100", f"epochs: {epochs}").replace("early_stopping_patience: 15",
                                                                   "early_stopping_patience: null")
    path.write_text(text, encoding="utf-8")
    return path


def wait_for(predicate, timeout: float = 120.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def home(pima_home) -> Path:
    home = pima_home
    trainer_spec(home / "short.yaml", 2)
    trainer_spec(home / "long.yaml", 100000)
    return home


@pytest.fixture
def env_home(home, monkeypatch):
    monkeypatch.setenv("SPECML_HOME", str(home))
    monkeypatch.delenv("SPECML_WORKSPACE", raising=False)
    return home


#: one thread per training process: many run at once on a small machine
JOB_ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def train_argv(home: Path, name: str, trainer: str) -> list[str]:
    workspace = home / f"ws_{name}.duckdb"
    shutil.copy(home / "workspace.duckdb", workspace)
    return ["train", "--model-spec", str(EXAMPLE / "model.yaml"), "--trainer-spec", str(home / trainer),
            "--table", "pima", "--name", name, "--workspace", str(workspace)]


def finished(reg: Registry, job_id: int):
    refresh(reg)
    job = reg.get_job(job_id)
    return job if job.finished else None


@pytest.mark.slow
def test_eight_background_jobs_complete(env_home):
    reg = Registry()
    ids = [start_background(train_argv(env_home, f"bg{i}", "short.yaml"), f"bg{i}", env_home, total_epochs=2,
                            env=JOB_ENV)
           for i in range(8)]
    assert len(set(ids)) == 8
    assert all(reg.get_job(i).wrapper_pid for i in ids)  # returned at once, running in the background
    jobs = [wait_for(lambda i=i: finished(reg, i), 240, f"job {i}") for i in ids]
    for job in jobs:
        log = Path(job.log_path).read_text(encoding="utf-8")
        assert (job.status, job.exit_code, job.error) == ("completed", 0, None), log
        assert "Epoch 2/2" in log and f"trained '{job.name}'" in log
        assert (env_home / "models" / job.name / "metadata.json").is_file()
        assert job.started_at and job.ended_at and job.pid and job.duration_s > 0
    assert reg.integrity_check() == "ok"


@pytest.fixture(scope="module")
def long_jobs(home):
    """Four long trainings running at once (killed or cancelled by the tests below)."""
    reg = Registry(home / "registry.sqlite")
    names = ("kill_child", "kill_group", "kill_runner", "cancel_me")
    old = os.environ.get("SPECML_HOME")
    ids = {n: start_background(train_argv(home, n, "long.yaml"), n, home, env=JOB_ENV) for n in names}
    assert os.environ.get("SPECML_HOME") == old

    def running(job_id):
        job = reg.get_job(job_id)
        return job.status == "running" and job.pid and "Epoch 2/" in Path(job.log_path).read_text(encoding="utf-8")

    for job_id in ids.values():
        wait_for(lambda j=job_id: running(j), 120, f"job {job_id} to train")
    yield reg, ids
    for job_id in ids.values():  # whatever a failed test left behind
        job = reg.get_job(job_id)
        for pid in (job.wrapper_pid, job.pid):
            if process_alive(pid):
                os.kill(pid, signal.SIGKILL)


@pytest.mark.slow
def test_killed_training_process_shows_failed(long_jobs):
    reg, ids = long_jobs
    job = reg.get_job(ids["kill_child"])
    assert job.status == "running"
    os.kill(job.pid, signal.SIGKILL)
    job = wait_for(lambda: finished(reg, job.job_id), 60, "the runner to record the end")
    assert (job.status, job.exit_code) == ("failed", -signal.SIGKILL)
    assert "SIGKILL" in job.error


@pytest.mark.slow
def test_job_whose_processes_all_died_shows_failed(long_jobs):
    reg, ids = long_jobs
    job = reg.get_job(ids["kill_group"])
    os.killpg(job.wrapper_pid, signal.SIGKILL)  # runner and training at once: nobody records the end
    wait_for(lambda: not process_alive(job.pid, job.pid_started), 30, "the training process to go")
    job = wait_for(lambda: finished(reg, job.job_id), 30, "refresh to notice")
    assert job.status == "failed" and "died" in job.error and job.exit_code is None


@pytest.mark.slow
def test_killed_runner_takes_the_training_with_it(long_jobs):
    reg, ids = long_jobs
    job = reg.get_job(ids["kill_runner"])
    os.kill(job.wrapper_pid, signal.SIGKILL)
    wait_for(lambda: not process_alive(job.pid, job.pid_started), 30, "the orphaned training to stop")
    job = wait_for(lambda: finished(reg, job.job_id), 30, "refresh to notice")
    assert job.status == "failed"


@pytest.mark.slow
def test_cli_logs_status_cancel_and_list(long_jobs, home):
    reg, ids = long_jobs
    job_id = ids["cancel_me"]
    logs = specml(home, "jobs", "logs", job_id)
    assert logs.returncode == 0 and "Epoch 1/100000" in logs.stdout and "Train Loss" in logs.stdout
    status = specml(home, "jobs", "status", job_id, "--lines", "3")
    assert status.returncode == 0 and "running" in status.stdout and "last 3 log line(s)" in status.stdout
    job = reg.get_job(job_id)
    follower = subprocess.Popen([str(SPECML), "jobs", "logs", str(job_id), "--follow"], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=specml_env(home))
    done = specml(home, "jobs", "cancel", job_id, "--grace", "5")
    assert done.returncode == 0 and "cancelled" in done.stdout, done.stderr
    followed, err = follower.communicate(timeout=60)  # --follow ends with the job
    assert follower.returncode == 0, err
    assert "Epoch 1/100000" in followed and followed.count("Train Loss") >= 2
    assert not process_alive(job.pid, job.pid_started) and not process_alive(job.wrapper_pid, job.wrapper_started)
    job = reg.get_job(job_id)
    assert job.status == "cancelled" and job.ended_at
    again = specml(home, "jobs", "cancel", job_id)
    assert again.returncode == 1 and "already ended: cancelled" in again.stderr and "Traceback" not in again.stderr
    listed = specml(home, "jobs", "list")
    assert listed.returncode == 0
    rows = {line.split("│")[1].strip(): line for line in listed.stdout.splitlines() if line.startswith("│")}
    assert "cancelled" in rows[str(job_id)] and "cancel_me" in rows[str(job_id)]
    assert "failed" in rows[str(ids["kill_child"])]
    missing = specml(home, "jobs", "status", "424242")
    assert missing.returncode == 1 and "no job 424242" in missing.stderr and "Traceback" not in missing.stderr


def test_failing_command_records_its_error(env_home):
    reg = Registry()
    job_id = start_background(["data", "describe", "no_such_table"], "describe", env_home)
    job = wait_for(lambda: finished(reg, job_id), 60, "the job to fail")
    assert (job.status, job.exit_code) == ("failed", 1)
    assert "no_such_table" in job.error and job.error.startswith("error")
    assert "[specml job" in Path(job.log_path).read_text(encoding="utf-8")


def test_dead_or_reused_pids_and_jobs_that_never_started(env_home):
    reg = Registry()
    me = os.getpid()
    assert process_alive(me, process_start_time(me)) and not process_alive(me, process_start_time(me) + 1)
    reused = reg.create_job("reused", ["train"])
    reg.update_job(reused.job_id, status="running", pid=me, pid_started=process_start_time(me) + 1)
    never = reg.create_job("never", ["train"])
    reg.update_job(never.job_id, created_at="2000-01-01T00:00:00.000+00:00")
    fresh = reg.create_job("fresh", ["train"])
    died = refresh(reg)
    assert reused.job_id in died and never.job_id in died and fresh.job_id not in died
    assert reg.get_job(fresh.job_id).status == "queued"
    reg.finish_job(fresh.job_id, "cancelled")


def test_cancel_of_a_queued_job(env_home):
    reg = Registry()
    job = reg.create_job("q", ["train"])
    assert cancel(job.job_id, reg, grace=0.1).status == "cancelled"
    with pytest.raises(Exception, match="already ended"):
        cancel(job.job_id, reg)


def test_reporter_on_a_real_trainer(tmp_path):
    import torch
    from torch import nn

    from specml.train.engine import TensorBatches, Trainer

    torch.set_num_threads(1)
    torch.manual_seed(0)
    reg = Registry(tmp_path / "r.sqlite")
    x = torch.randn(64, 3)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5]])

    def trainer(reporter, criterion=None):
        t = Trainer(nn.Linear(3, 1), TensorBatches({"input": x[:48]}, y[:48], 16),
                    TensorBatches({"input": x[48:]}, y[48:], 16), device="cpu", verbose=False, callbacks=[reporter])
        return t, criterion or nn.MSELoss()

    job = reg.create_job("direct", ["train"])
    t, loss = trainer(JobReporter(job.job_id, reg, min_interval_s=0))
    t.train(4, torch.optim.SGD(t.model.parameters(), lr=0.05), loss)
    got = reg.get_job(job.job_id)
    assert (got.status, got.epoch, got.total_epochs, got.best_metric) == ("completed", 4, 4, "val_loss")
    assert got.best_value == pytest.approx(t.best.value) and got.pid == os.getpid() and got.heartbeat_at

    # under the job runner the reporter leaves the end to the runner, but records the error
    job = reg.create_job("wrapped", ["train"])

    def broken(output, target):
        raise ValueError("the loss broke")

    t, loss = trainer(JobReporter(job.job_id, reg, final=False), broken)
    with pytest.raises(TrainingError, match="the loss broke"):  # a failing loss is a TrainingError naming it
        t.train(2, torch.optim.SGD(t.model.parameters(), lr=0.05), loss)
    got = reg.get_job(job.job_id)
    assert got.status == "running" and got.error.startswith("TrainingError: ") and "the loss broke" in got.error

    job = reg.create_job("failing", ["train"])
    t, loss = trainer(JobReporter(job.job_id, reg), broken)
    with pytest.raises(TrainingError):
        t.train(2, torch.optim.SGD(t.model.parameters(), lr=0.05), loss)
    assert reg.get_job(job.job_id).status == "failed"


def test_reporter_from_env(tmp_path, monkeypatch):
    monkeypatch.delenv("SPECML_JOB_ID", raising=False)
    assert JobReporter.from_env() is None
    reg = Registry(tmp_path / "r.sqlite")
    monkeypatch.setenv("SPECML_JOB_ID", "7")
    monkeypatch.setenv("SPECML_JOB_REGISTRY", str(reg.path))
    monkeypatch.setenv("SPECML_JOB_WRAPPED", "1")
    reporter = JobReporter.from_env()
    assert reporter.job_id == 7 and reporter.registry.path == reg.path and reporter.final is False


def test_tail_and_follow(tmp_path):
    path = tmp_path / "log.txt"
    assert tail(path, 5) == []
    path.write_text("".join(f"line {i}\n" for i in range(100000)), encoding="utf-8")
    assert tail(path, 3) == ["line 99997", "line 99998", "line 99999"]
    path.write_text("a\nb\npartial", encoding="utf-8")
    assert list(follow(path, lambda: True, poll=0.01)) == ["a", "b", "partial"]
    assert list(follow(path, lambda: True, start=2, poll=0.01)) == ["b", "partial"]
