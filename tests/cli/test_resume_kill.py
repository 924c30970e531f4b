"""Exact resume through the real CLI: a training killed with SIGKILL at a random point and resumed with
``--resume`` ends with weights bitwise identical to a run that was never interrupted."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from clitools import no_traceback, ok
from safetensors.torch import load_file

ROOT = Path(__file__).resolve().parents[2]
PIMA = ROOT / "src" / "specml" / "sample_data" / "pima_diabetes.csv"
SPECML = [sys.executable, "-m", "specml"]

TRAINER = """
optimizer: {type: torch.optim.AdamW, lr: 0.01, params: {weight_decay: 0.01}}
scheduler: {type: StepLR, params: {step_size: 5, gamma: 0.7}}
config: {epochs: 30, batch_size: 16, seed: 7, early_stopping_patience: 25, tensorboard: false}
"""


def env(home: Path) -> dict:
    return {**os.environ, "SPECML_HOME": str(home), "CI": "1", "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}


def run(home: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([*SPECML, *args], env=env(home), capture_output=True, text=True, timeout=600)
    return ok(result) if check else result


def epochs_done(run_dir: Path) -> int:
    events = run_dir / "facts" / "events.jsonl"
    if not events.exists():
        return 0
    lines = events.read_text(encoding="utf-8").splitlines()
    return sum(1 for line in lines if line.endswith("}") and json.loads(line)["event"] == "on_epoch_end")





@pytest.fixture(scope="module")
def home(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    run(home, "data", "load", str(PIMA), "--table", "pima")
    spec_dir = tmp_path_factory.mktemp("specs")
    (spec_dir / "trainer.yaml").write_text(TRAINER, encoding="utf-8")
    return home, spec_dir


def train_args(spec_dir: Path, name: str) -> list[str]:
    return ["train", "--model-spec", str(ROOT / "examples" / "pima_mlp" / "model.yaml"), "--trainer-spec",
            str(spec_dir / "trainer.yaml"), "--table", "pima", "--name", name, "--no-tensorboard"]


def test_sigkill_then_resume_is_bitwise_identical(home):
    home, spec_dir = home
    run(home, *train_args(spec_dir, "full"))
    full_run = Path(json.loads((home / "models" / "full" / "run.json").read_text())["run_dir"])

    rng = random.Random()
    kill_after = rng.randint(2, 20)
    proc = subprocess.Popen([*SPECML, *train_args(spec_dir, "cut")], env=env(home), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    pointer = home / "models" / "cut" / "run.json"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if pointer.exists():
            cut_run = Path(json.loads(pointer.read_text())["run_dir"])
            if epochs_done(cut_run) >= kill_after:
                time.sleep(rng.uniform(0, 0.05))  # somewhere inside the next epoch (or its checkpoint write)
                break
        time.sleep(0.005)
    assert proc.poll() is None, f"the run ended before it could be killed:\n{proc.stdout.read()}"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    done = epochs_done(cut_run)
    assert done < 30 and not (home / "models" / "cut" / "metadata.json").exists()

    resumed = run(home, *train_args(spec_dir, "cut"), "--resume")
    assert "resumed run" in resumed.stdout
    cut_run_after = Path(json.loads(pointer.read_text())["run_dir"])
    assert cut_run_after == cut_run  # the same run continues

    a, b = load_file(str(full_run / "checkpoints" / "last.safetensors")), load_file(
        str(cut_run / "checkpoints" / "last.safetensors"))
    weights = [k for k in a if k.startswith("model.")]
    assert weights and all(torch.equal(a[k], b[k]) for k in weights), f"killed after epoch {done}"
    optim = [k for k in a if k.startswith("optim.")]
    assert optim and all(torch.equal(a[k], b[k]) for k in optim)
    best_a = load_file(str(home / "models" / "full" / "model.safetensors"))
    best_b = load_file(str(home / "models" / "cut" / "model.safetensors"))
    assert best_a.keys() == best_b.keys() and all(torch.equal(best_a[k], best_b[k]) for k in best_a)
    meta_a = json.loads((home / "models" / "full" / "metadata.json").read_text())
    meta_b = json.loads((home / "models" / "cut" / "metadata.json").read_text())
    assert meta_a["metrics"]["best"] == meta_b["metrics"]["best"] and meta_a["epochs"] == meta_b["epochs"]
    # the facts of the resumed run: one header, every epoch once after the resume point
    scalars = (cut_run / "facts" / "scalars.csv").read_text().splitlines()
    assert sum(line.startswith("epoch,") for line in scalars) == 1


def test_resume_with_changed_specs_is_refused_naming_the_change(home, tmp_path):
    home, spec_dir = home
    run(home, *train_args(spec_dir, "small"))
    changed = tmp_path / "trainer.yaml"
    changed.write_text(TRAINER.replace("lr: 0.01", "lr: 0.02"), encoding="utf-8")
    args = train_args(spec_dir, "small")
    args[args.index("--trainer-spec") + 1] = str(changed)
    result = run(home, *args, "--resume", check=False)
    assert result.returncode == 1
    no_traceback(result)
    assert "trainer_spec.optimizer.lr: 0.01 -> 0.02" in result.stderr


def test_resume_without_a_run_is_a_clear_error(home):
    home, spec_dir = home
    result = run(home, *train_args(spec_dir, "never"), "--resume", check=False)
    assert result.returncode == 1 and "no run to resume" in result.stderr
    no_traceback(result)


def wait_for(predicate, timeout: float = 300, poll: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError("timed out")


def test_background_job_killed_shows_failed_and_jobs_resume_finishes_it(home):
    from specml.track.registry import Registry

    home, spec_dir = home
    started = run(home, *train_args(spec_dir, "bg"), "--background")
    job_id = int(re.search(r"started job (\d+)", started.stdout).group(1))
    reg = Registry(home=home)
    # wait until the training process reports epoch 3, then kill the training process itself
    job = wait_for(lambda: (j := reg.get_job(job_id)).pid and (j.epoch or 0) >= 3 and j)
    os.kill(job.pid, signal.SIGKILL)
    listed = wait_for(lambda: "failed" in (r := run(home, "jobs", "list")).stdout and r)
    assert str(job_id) in listed.stdout
    resumed = run(home, "jobs", "resume", str(job_id))
    new_id = int(re.search(r"resumes as job (\d+)", resumed.stdout).group(1))
    final = wait_for(lambda: (j := reg.get_job(new_id)).status in ("completed", "failed") and j)
    assert final.status == "completed", run(home, "jobs", "logs", str(new_id)).stdout
    assert "resumed run" in run(home, "jobs", "logs", str(new_id)).stdout
    # the same weights as the run that was never stopped (trained by the first test in this module, or now)
    if not (home / "models" / "full" / "model.safetensors").exists():
        run(home, *train_args(spec_dir, "full"))
    a = load_file(str(home / "models" / "full" / "model.safetensors"))
    b = load_file(str(home / "models" / "bg" / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)
