"""Crash consistency through the real CLI: a training SIGKILLed at any point and resumed with ``--resume``
ends bitwise identical to a run that was never interrupted, with every epoch's facts logged once.

The kill points come from ``killpoint.py`` (the CLI in a subprocess that kills itself at a chosen point):
inside an epoch (before an optimizer step), between an epoch's facts and its checkpoint, inside the
write of ``best.safetensors`` / ``last.safetensors``, after the rename, and at every epoch boundary.
A sweep runs them as one chain: killed at the first point, resumed, killed at the next, ..., resumed to
the end; after every kill the checkpoint on disk must equal the uninterrupted run's checkpoint of the
same epoch (weights, optimizer, scheduler, RNG states, best weights, early-stopping counters). The fast
tier kills at one point (inside the epoch after an improving one: the flake this test once had); the
sweep (about 25 points) is ``slow``. ``tests/train/test_engine_resume.py`` interrupts the engine in
process after every epoch and between an epoch's facts and its checkpoint.

The points inside epochs are drawn from ``random.Random(SEED)``; ``SEED`` is ``$SPECML_TEST_SEED`` or a
fixed default, and every failure message starts with it and the points, so a failure replays with
``SPECML_TEST_SEED=<seed> pytest tests/cli/test_resume_kill.py``.
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from specml.track.facts import read_events, read_scalars
from testkit import PIMA_MLP, SEED, failed, invoke, load_pima, ok, specml, specml_env

KILLPOINT = Path(__file__).with_name("killpoint.py")
EPOCHS = 16
# patience 6 with the default min_delta: on Pima (seed 7) val_loss improves at epochs 1, 2 and 8, so the run
# stops early at 14; epoch 8 improves after five epochs without, so its early-stopping counters matter
TRAINER = f"""
optimizer: {{type: torch.optim.AdamW, lr: 0.01, params: {{weight_decay: 0.01}}}}
scheduler: {{type: StepLR, params: {{step_size: 5, gamma: 0.7}}}}
config: {{epochs: {EPOCHS}, batch_size: 16, seed: 7, early_stopping_patience: 6, tensorboard: false,
         checkpoint_every: 1, save_best_only: false}}
"""
# the order of the points of one epoch: its optimizer steps, then (at its end) these
AT_EPOCH_END = ("best", "facts", "last", "renamed", "epoch")
# the checkpoint a kill at each point leaves: the epoch before (0) or the epoch itself (1)
COMMITTED = {"step": 0, "best": 0, "facts": 0, "last": 0, "renamed": 1, "epoch": 1}


@dataclass
class Full:
    """The uninterrupted run, and what the kill points are planned from."""

    home: Path
    specs: Path
    run: Path
    batches: int  # optimizer steps per epoch
    epochs_run: int
    improved: list[int]  # epochs that improved the monitored value
    stopped: int | None  # the early-stopping epoch


def run_dir(home: Path, name: str) -> Path:
    return Path(json.loads((home / "models" / name / "run.json").read_text(encoding="utf-8"))["run_dir"])


def train_args(specs: Path, name: str) -> list[str]:
    return ["train", "--model-spec", str(PIMA_MLP / "model.yaml"), "--trainer-spec", str(specs / "trainer.yaml"),
            "--table", "pima", "--name", name, "--no-tensorboard"]


@pytest.fixture(scope="module")
def full(tmp_path_factory) -> Full:
    home, specs = tmp_path_factory.mktemp("home"), tmp_path_factory.mktemp("specs")
    load_pima(home)
    (specs / "trainer.yaml").write_text(TRAINER, encoding="utf-8")
    # the uninterrupted run, in this process (one thread, as the subprocesses): a process start saved
    torch.set_num_threads(1)
    ok(invoke(*train_args(specs, "full"), home=home))
    run = run_dir(home, "full")
    ends = [e for e in read_events(run / "facts") if e["event"] == "on_epoch_end"]
    stops = [e["epoch"] for e in read_events(run / "facts") if e["event"] == "on_early_stop"]
    return Full(home, specs, run, ends[0]["step"], len(ends), [e["epoch"] for e in ends if e["improved"]],
                stops[0] if stops else None)


# ----------------------------------------------------------------------------------------------
# kill points


def position(point: str, batches: int) -> tuple[int, int, int]:
    """Where a point falls in the run: (epoch, place within the epoch, step)."""
    kind, n = point.split(":")
    n = int(n)
    if kind == "step":
        return math.ceil(n / batches), 0, n
    return n, 1 + AT_EPOCH_END.index(kind), 0


def checkpoint_left(point: str, batches: int) -> int:
    """The epoch of the checkpoint a kill at ``point`` leaves on disk."""
    epoch = position(point, batches)[0]
    return epoch - 1 + COMMITTED[point.split(":")[0]]


def plan(full: Full, rng: random.Random, *, sweep: bool) -> list[str]:
    """Kill points after the first checkpoint (a resume needs one), in the order the run meets them.

    Not the sweep: a step inside the epoch after the first one that improves after a non-improving epoch
    (its early-stopping counters must survive: the kill point of the flake this test once had). The sweep:
    epoch boundaries (after the rename of ``last.safetensors``, or once the epoch is done) at the first
    epoch and three drawn ones, steps inside two drawn epochs and the first step after the late improving
    epoch, between facts and checkpoint, inside the write of ``last.safetensors`` and of each improving
    epoch's ``best.safetensors``. Every epoch boundary is also interrupted in process, without a process
    start each, by ``tests/train/test_engine_resume.py``."""
    epochs = list(range(2, full.epochs_run + 1))
    late = [e for e in full.improved if e > 1 and e - 1 not in full.improved]
    assert late, f"{context(SEED, [])}: no epoch improves after one that did not (improved: {full.improved})"
    if not sweep:
        e = late[0] + 1
        points = [f"step:{(e - 1) * full.batches + rng.randint(1, full.batches)}"]
    else:
        boundaries = rng.sample(epochs, 4)  # a seeded few of the boundaries: every seed meets other ones
        points = [f"renamed:{boundaries[0]}", *(f"epoch:{e}" for e in [1, *boundaries[1:]])]
        points += [f"step:{(e - 1) * full.batches + rng.randint(1, full.batches)}" for e in rng.sample(epochs, 2)]
        points += [f"step:{late[0] * full.batches + 1}"]  # the first step after the improving epoch
        points += [f"{kind}:{rng.choice(epochs)}" for kind in ("facts", "last")]
        points += [f"best:{e}" for e in full.improved if e > 1]
    chain: list[str] = []
    for point in sorted(set(points), key=lambda p: position(p, full.batches)):
        # a resume starts after the checkpoint the last kill left: points in that epoch do not come again
        if not chain or position(point, full.batches)[0] > checkpoint_left(chain[-1], full.batches):
            chain.append(point)
    return chain


def context(seed: int, points: list[str]) -> str:
    return f"SPECML_TEST_SEED={seed} kill points {points}"


# ----------------------------------------------------------------------------------------------
# comparing runs


def tensors_and_state(path: Path) -> tuple[dict[str, torch.Tensor], dict, dict]:
    """A checkpoint's tensors, its ``state`` and the rest of its JSON (optimizer, scheduler, RNG states)."""
    with safe_open(str(path), framework="pt") as f:
        metadata = f.metadata()
        return ({k: f.get_tensor(k) for k in f.keys()}, json.loads(metadata["specml.state"]),
                {k: _without_python_rng(json.loads(metadata[k])) for k in ("specml.optimizer", "specml.scheduler",
                                                                              "specml.rng")})


def _without_python_rng(obj: dict) -> dict:
    """The RNG JSON without Python's ``random`` state: training never draws from it (torch and numpy do, and are
    compared), and the in-process reference run's test fixture touches it. See the stop-10 notes."""
    return {k: v for k, v in obj.items() if k != "python"} if isinstance(obj, dict) else obj


COUNTERS = ("epoch", "global_step", "best_value", "best_epoch", "early_stopping_wait", "early_stopping_best",
            "early_stopping_stopped_epoch")


def assert_same_checkpoint(a: Path, b: Path, why: str) -> None:
    """The same training state: every tensor (model, optimizer, scheduler, RNG, best weights) bitwise, the
    optimizer's, scheduler's and RNGs' JSON, and the counters; the history's timings may differ."""
    ta, sa, ja = tensors_and_state(a)
    tb, sb, jb = tensors_and_state(b)
    assert ja == jb, f"{why}: {[k for k in ja if ja[k] != jb[k]]} differ"
    assert ta.keys() == tb.keys(), f"{why}: {sorted(ta.keys() ^ tb.keys())[:5]}"
    differ = [k for k in ta if not torch.equal(ta[k], tb[k])]
    assert not differ, f"{why}: tensors differ: {differ[:8]}"
    assert {k: sa.get(k) for k in COUNTERS} == {k: sb.get(k) for k in COUNTERS}, why
    for key in sa["history"]:
        if key != "epoch_time_s":
            assert sa["history"][key] == sb["history"][key], f"{why}: history {key}"


def epoch_facts(run: Path) -> tuple[list, list]:
    """Every epoch's logged values, without timings: (on_epoch_end and on_early_stop events, scalars rows)."""
    events = [{k: e[k] for k in ("event", "epoch", "step", "losses", "metrics", "lr")}
              for e in read_events(run / "facts") if e["event"] in ("on_epoch_end", "on_early_stop")]
    header, rows = read_scalars(run / "facts")
    timings = {"epoch_time_s", "throughput", "max_memory_mib"}  # measurements, not what was learned
    return events, [{k: v for k, v in r.items() if k not in timings} for r in rows]


# ----------------------------------------------------------------------------------------------
# the chain


def kill_at(home: Path, point: str, args: list[str]) -> subprocess.CompletedProcess:
    cmd = [sys.executable, str(KILLPOINT), point, *args]
    return subprocess.run(cmd, env=specml_env(home), capture_output=True, text=True, timeout=600, check=False)


def sweep(full: Full, name: str, points: list[str]) -> None:
    why = context(SEED, points)
    args = train_args(full.specs, name)
    resume: list[str] = []
    for point in points:
        killed = kill_at(full.home, point, args + resume)
        assert killed.returncode == -signal.SIGKILL, f"{why}: not killed at {point}:\n{killed.stdout}{killed.stderr}"
        epoch = checkpoint_left(point, full.batches)
        last = run_dir(full.home, name) / "checkpoints" / "last.safetensors"
        assert_same_checkpoint(full.run / "checkpoints" / f"epoch-{epoch:04d}.safetensors", last,
                               f"{why}: the checkpoint left by the kill at {point}")
        assert not (full.home / "models" / name / "metadata.json").exists()
        resume = ["--resume"]
    resumed = ok(specml(full.home, *args, "--resume"))
    assert "resumed run" in resumed.stdout, why
    cut = run_dir(full.home, name)
    assert len({p.parent for p in cut.parent.glob(f"*_{name}/checkpoints")}) == 1, f"{why}: one run continued"

    assert_same_checkpoint(full.run / "checkpoints" / "last.safetensors", cut / "checkpoints" / "last.safetensors",
                           f"{why}: the last checkpoints")
    best_a = weights(full.home / "models" / "full" / "model.safetensors")
    best_b = weights(full.home / "models" / name / "model.safetensors")
    assert best_a.keys() == best_b.keys() and all(torch.equal(best_a[k], best_b[k]) for k in best_a), why
    meta_a = json.loads((full.home / "models" / "full" / "metadata.json").read_text())
    meta_b = json.loads((full.home / "models" / name / "metadata.json").read_text())
    assert (meta_a["metrics"]["best"], meta_a["epochs"]) == (meta_b["metrics"]["best"], meta_b["epochs"]), why
    # the facts: every epoch once, with the values of the uninterrupted run; one header; a start per process
    assert epoch_facts(cut) == epoch_facts(full.run), f"{why}: the logged epochs differ"
    assert (cut / "facts" / "scalars.csv").read_text().count("epoch,split") == 1, why
    starts = [e for e in read_events(cut / "facts") if e["event"] == "on_start"]
    assert len(starts) == len(points) + 1, why


def weights(path: Path) -> dict[str, torch.Tensor]:
    with safe_open(str(path), framework="pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}


def test_the_run_the_kill_points_rely_on(full):
    assert full.stopped == full.epochs_run < EPOCHS, f"the run no longer stops early: {full}"
    assert full.batches == 39, full


@pytest.mark.slow
def test_sigkill_inside_an_epoch_then_resume_is_bitwise_identical(full):
    sweep(full, "cut", plan(full, random.Random(SEED), sweep=False))


@pytest.mark.slow
def test_sigkill_sweep_over_kill_points_then_resume_is_bitwise_identical(full):
    sweep(full, "sweep", plan(full, random.Random(SEED), sweep=True))


# ----------------------------------------------------------------------------------------------
# resume refusals, in process


def test_resume_with_changed_specs_is_refused_naming_the_change(full, tmp_path):
    changed = tmp_path / "trainer.yaml"
    changed.write_text(TRAINER.replace("lr: 0.01", "lr: 0.02"), encoding="utf-8")
    args = train_args(full.specs, "full")
    args[args.index("--trainer-spec") + 1] = str(changed)
    err = failed(invoke(*args, "--resume", home=full.home))
    assert "trainer_spec.optimizer.lr: 0.01 -> 0.02" in err


def test_resume_without_a_run_is_a_clear_error(full):
    err = failed(invoke(*train_args(full.specs, "never"), "--resume", home=full.home))
    assert "no run to resume" in err


# ----------------------------------------------------------------------------------------------
# a background job killed, then resumed by `specml jobs resume`


def wait_for(predicate, timeout: float = 300, poll: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError("timed out")


@pytest.mark.slow
def test_background_job_killed_shows_failed_and_jobs_resume_finishes_it(full):
    from specml.track.registry import Registry

    home = full.home
    started = ok(specml(home, *train_args(full.specs, "bg"), "--background"))
    job_id = int(re.search(r"started job (\d+)", started.stdout).group(1))
    reg = Registry(home=home)
    # wait until the training process reports epoch 3, then kill the training process itself
    def at_epoch_3():
        j = reg.get_job(job_id)
        assert j.status not in ("completed", "failed"), ok(specml(home, "jobs", "logs", str(job_id))).stdout
        return j.pid and (j.epoch or 0) >= 3 and j

    job = wait_for(at_epoch_3)
    os.kill(job.pid, signal.SIGKILL)
    listed = wait_for(lambda: "failed" in (r := ok(specml(home, "jobs", "list"))).stdout and r)
    assert str(job_id) in listed.stdout
    resumed = ok(specml(home, "jobs", "resume", str(job_id)))
    new_id = int(re.search(r"resumes as job (\d+)", resumed.stdout).group(1))
    final = wait_for(lambda: (j := reg.get_job(new_id)).status in ("completed", "failed") and j)
    logs = ok(specml(home, "jobs", "logs", str(new_id))).stdout
    assert final.status == "completed", logs
    assert "resumed run" in logs
    # the same weights as the run that was never stopped
    a = weights(home / "models" / "full" / "model.safetensors")
    b = weights(home / "models" / "bg" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
