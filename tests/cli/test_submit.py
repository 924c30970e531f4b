"""specml submit: Slurm / HTCondor job scripts; the slow tests run them here with the environment the
scheduler would set (no scheduler on this machine), on CPU."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from specml.cli.app import app
from specml.cli.launch import free_port
from specml.cli.submit import _seconds, first_host

torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def test_first_host_of_a_slurm_node_list():
    assert first_host("a01,b02") == "a01"
    assert first_host("node[03-05,7]") == "node03"
    assert first_host("gpu[12],cpu1") == "gpu12"
    assert first_host("127.0.0.1") == "127.0.0.1"


def test_slurm_times_in_seconds():
    assert _seconds("30") == 1800 and _seconds("01:00:00") == 3600 and _seconds("1-02:00") == 93600


def test_dry_run_prints_the_slurm_script_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("SPECML_HOME", str(tmp_path / "home"))
    res = runner.invoke(app, ["submit", "--scheduler", "slurm", "--nodes", "3", "--gpus-per-node", "4", "--time",
                              "02:00:00", "--partition", "gpu", "--dry-run", "--", "train", "-n", "m", "-t", "t"])
    assert res.exit_code == 0, res.output
    for line in ("#SBATCH --nodes=3", "#SBATCH --gpus-per-node=4", "#SBATCH --time=02:00:00",
                 "#SBATCH --partition=gpu", "--nproc-per-node=4", '--node-rank="$SLURM_NODEID"',
                 '--nnodes="$SLURM_NNODES"', "srun --ntasks-per-node=1", "-m specml train -n m -t t"):
        assert line in res.output
    assert not (tmp_path / "home" / "submit").exists()


def test_dry_run_prints_the_htcondor_executable_and_submit_file(tmp_path, monkeypatch):
    monkeypatch.setenv("SPECML_HOME", str(tmp_path / "home"))
    res = runner.invoke(app, ["submit", "--scheduler", "htcondor", "--nodes", "2", "--gpus-per-node", "1",
                              "--time", "10", "--dry-run", "--", "train", "-n", "m"])
    assert res.exit_code == 0, res.output
    for line in ("universe = parallel", "machine_count = 2", "request_gpus = 1", "+MaxRuntime = 600",
                 '--node-rank="$rank"', "_CONDOR_PROCNO", "condor_chirp set_job_attr SpecmlRdzvHost"):
        assert line in res.output


@pytest.mark.parametrize("args, message", [
    (["--", "evaluate", "-n", "m"], "give the training command after --"),
    (["--", "train", "-n", "m", "--nproc", "2"], "--nproc: the job script sets"),
    (["--time", "soon", "--", "train"], "--time: expected HH:MM:SS"),
])
def test_bad_submissions_are_one_line_errors(tmp_path, monkeypatch, args, message):
    monkeypatch.setenv("SPECML_HOME", str(tmp_path / "home"))
    res = runner.invoke(app, ["submit", "--scheduler", "slurm", *args])
    assert res.exit_code == 1 and message in res.output and "Traceback" not in res.output


# ----------------------------------------------------------------------------------------------
# the written scripts, run here as the scheduler would run them


@pytest.fixture
def project(tmp_path, monkeypatch):
    from specml.data.workspace import Workspace

    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "TORCHELASTIC_RUN_ID", "SLURM_JOB_ID", "_CONDOR_PROCNO"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("SPECML_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PYTHONPATH", str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.chdir(tmp_path)
    ws = Workspace(tmp_path / "ws.duckdb")
    ws.load(ROOT / "src" / "specml" / "sample_data" / "pima_diabetes.csv", "pima")
    ws.close()
    config = {"epochs": 2, "batch_size": 64, "seed": 1, "tensorboard": False}
    (tmp_path / "trainer.yaml").write_text("optimizer: {type: adam, lr: 0.01}\nconfig: " + json.dumps(config))
    return tmp_path


def _submit(project: Path, scheduler: str, name: str, *options: str) -> Path:
    res = runner.invoke(app, ["submit", "--scheduler", scheduler, *options, "--port", str(free_port()), "--",
                              "train", "-m", str(ROOT / "examples" / "pima_mlp" / "model.yaml"), "-T", "trainer.yaml",
                              "-t", "pima", "-n", name, "--workspace", "ws.duckdb", "--no-tensorboard"])
    assert res.exit_code == 0, res.output
    assert "is not on the PATH here" in res.output  # no scheduler here: written, not submitted
    return next((project / "home" / "submit").glob(f"specml-{name}-*.sh"))


def _metadata(project: Path, name: str) -> dict:
    return json.loads((project / "home" / "models" / name / "metadata.json").read_text())


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("bash") is None or shutil.which("srun") is not None, reason="needs bash, no Slurm")
def test_the_slurm_script_trains_with_two_processes_on_one_node(project):
    script = _submit(project, "slurm", "sl", "--nodes", "1", "--nproc-per-node", "2")
    env = {**os.environ, "SLURM_JOB_ID": "4242", "SLURM_JOB_NODELIST": "127.0.0.1", "SLURM_NNODES": "1",
           "SLURM_NODEID": "0", "SLURM_PROCID": "0"}
    done = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert _metadata(project, "sl")["world_size"] == 2


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_the_htcondor_script_trains_across_two_nodes(project):
    script = _submit(project, "htcondor", "hc", "--nodes", "2")
    assert "machine_count = 2" in script.with_suffix(".sub").read_text()
    nodes = [subprocess.Popen(["bash", str(script)], env={**os.environ, "_CONDOR_PROCNO": str(r),
                                                           "_CONDOR_NPROCS": "2", "SPECML_RDZV_ID": "77",
                                                           "SPECML_RDZV_HOST": "127.0.0.1"},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for r in range(2)]
    outs = [n.communicate(timeout=300) for n in nodes]
    assert [n.returncode for n in nodes] == [0, 0], outs[0][1][-2000:] + outs[1][1][-2000:]
    assert _metadata(project, "hc")["world_size"] == 2
    assert sys.executable in script.read_text()
