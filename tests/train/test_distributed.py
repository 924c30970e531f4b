"""torch DDP under torchrun on CPU (gloo): sharding, equality with one process, rank-0-only writes,
multi-node rendezvous on loopback, elastic restart, resume across world sizes.

The multi-process tests start real torchrun groups (``slow``: tens of seconds each on a busy 2-core
machine). Tolerance of "equal to one process": 1e-5 absolute on every weight and metric (DDP sums the
ranks' gradients in another order than one process sums the rows; seen: ~1e-7).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from specml.cli.launch import Launch, LaunchError, free_port
from specml.train.engine import TensorBatches

torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parents[2]
PIMA = ROOT / "src" / "specml" / "sample_data" / "pima_diabetes.csv"
TOL = 1e-5

MODEL = """\
version: 1
name: pima-ddp
inputs:
  x:
    dtype: float32
    shape: [null, 8]
    columns: [pregnancies, glucose, blood_pressure, skin_thickness, insulin, bmi, diabetes_pedigree, age]
    normalize: standard
graph:
  - {name: h, type: torch.nn.Linear, params: {in_features: 8, out_features: 16}, inputs: {input: x}}
  - {name: r, type: torch.nn.ReLU, inputs: {input: h.output}}
  - {name: o, type: torch.nn.Linear, params: {in_features: 16, out_features: 1}, inputs: {input: r.output}}
outputs:
  logits: o.output
loss:
  type: torch.nn.BCEWithLogitsLoss
  inputs: {input: logits, target: outcome}
"""


def trainer_yaml(epochs: int = 3, batch_size: int = 50, **extra) -> str:
    config = {"epochs": epochs, "batch_size": batch_size, "seed": 3, "metrics": ["auc", "accuracy"],
              "tensorboard": False, "checkpoint_every": 1, **extra}
    return "optimizer: {type: adam, lr: 0.01}\nconfig: " + json.dumps(config) + "\n"


# ----------------------------------------------------------------------------------------------
# the batch feeder and the launcher (one process, fast)


def test_ranks_share_each_global_batch_and_weights_make_the_global_mean():
    x = {"x": torch.arange(23, dtype=torch.float32)}
    one = [b["x"] for b, _ in TensorBatches(x, None, 5, shuffle=True, seed=7)]
    parts = [list(TensorBatches(x, None, 5, shuffle=True, seed=7, rank=r, world_size=3)) for r in range(3)]
    weights = [TensorBatches(x, None, 5, shuffle=True, seed=7, rank=r, world_size=3).batch_weights() for r in range(3)]
    assert len(one) == 5 and all(len(p) == 5 for p in parts)  # the same number of steps on every rank
    for i, batch in enumerate(one):
        shards = [p[i][0]["x"] for p in parts]
        assert sorted(torch.cat(shards).tolist()) == sorted(batch.tolist())
        # the mean of (weight x rank mean) over ranks is the global batch's mean
        got = sum(w[i] * s.mean() for w, s in zip(weights, shards)) / 3
        assert abs(got.item() - batch.mean().item()) < 1e-5


def test_a_training_tail_smaller_than_the_world_is_dropped_validation_keeps_every_row():
    x = {"x": torch.arange(11, dtype=torch.float32)}
    train = [TensorBatches(x, None, 5, shuffle=True, world_size=2, rank=r) for r in range(2)]
    assert [len(t) for t in train] == [2, 2]  # 5 + 5 + 1: the 1-row tail would leave rank 1 empty
    val = [TensorBatches(x, None, 5, world_size=2, rank=r) for r in range(2)]
    rows = sorted(v for b in val for inputs, _ in b for v in inputs["x"].tolist())
    assert rows == list(range(11))


def test_launch_options_are_checked_and_become_torchrun_options():
    args = Launch(2, rdzv_id="m").check().torchrun_args()
    assert "--nproc-per-node=2" in args and "--rdzv-backend=c10d" in args
    assert any(a.startswith("--rdzv-endpoint=127.0.0.1:") for a in args)
    multi = Launch(1, 2, 1, "10.0.0.1:29400").check().torchrun_args()
    assert "--nnodes=2" in multi and "--node-rank=1" in multi and "--rdzv-endpoint=10.0.0.1:29400" in multi
    with pytest.raises(LaunchError, match="--rdzv-endpoint"):
        Launch(1, 2).check()
    with pytest.raises(LaunchError, match="HOST:PORT"):
        Launch(1, 2, 0, "nohost").check()
    with pytest.raises(LaunchError, match="--node-rank must be in 0..1"):
        Launch(1, 2, 2, "h:1").check()


def test_a_resume_compares_specs_without_the_launch_settings():
    from specml.api import _comparable
    from specml.spec.trainer import TrainerSpec

    one = TrainerSpec.model_validate({"optimizer": {"type": "adam", "lr": 0.1}, "config": {"epochs": 1,
                                                                                           "batch_size": 8}})
    many = TrainerSpec.model_validate({"optimizer": {"type": "adam", "lr": 0.1},
                                       "config": {"epochs": 1, "batch_size": 8, "distributed": True,
                                                  "world_size": 4, "backend": "gloo"}})
    per_device = TrainerSpec.model_validate({"optimizer": {"type": "adam", "lr": 0.1},
                                             "config": {"epochs": 1, "batch_size": 8, "batch_size_per_device": True}})
    assert _comparable(one) == _comparable(many) != _comparable(per_device)


# ----------------------------------------------------------------------------------------------
# real torchrun groups


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A specml home, a workspace with the Pima table, the specs; the environment the children inherit."""
    from specml.data.workspace import Workspace

    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "TORCHELASTIC_RUN_ID", "TORCHELASTIC_RESTART_COUNT"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("SPECML_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("PYTHONPATH", str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""))
    ws = Workspace(tmp_path / "ws.duckdb")
    ws.load(PIMA, "pima")
    ws.close()
    (tmp_path / "model.yaml").write_text(MODEL)
    (tmp_path / "trainer.yaml").write_text(trainer_yaml())
    return tmp_path


def specml(project: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "specml", *args], cwd=project, capture_output=True, text=True,
                          timeout=timeout)


def train_args(project: Path, name: str, trainer: str = "trainer.yaml") -> list[str]:
    return ["train", "-m", str(project / "model.yaml"), "-T", str(project / trainer), "-t", "pima", "-n", name,
            "--workspace", str(project / "ws.duckdb"), "--no-tensorboard"]


def weights(project: Path, name: str) -> dict[str, torch.Tensor]:
    return load_file(project / "home" / "models" / name / "model.safetensors")


def metadata(project: Path, name: str) -> dict:
    return json.loads((project / "home" / "models" / name / "metadata.json").read_text())


def assert_close(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], tol: float = TOL) -> None:
    assert a.keys() == b.keys()
    worst = max((a[k] - b[k]).abs().max().item() for k in a)
    assert worst <= tol, f"largest weight difference {worst}"


@pytest.mark.slow
def test_two_processes_train_the_model_one_process_trains_and_only_rank_0_writes(project):
    from specml import api
    from specml.track.registry import Registry

    api.train(project / "model.yaml", project / "trainer.yaml", table="pima", name="one",
              workspace=project / "ws.duckdb", verbose=False)
    done = specml(project, *train_args(project, "two"), "--nproc", "2")
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("trained 'two'") == 1  # rank 1 prints nothing

    assert_close(weights(project, "one"), weights(project, "two"))
    one, two = metadata(project, "one"), metadata(project, "two")
    assert two["world_size"] == 2 and one["world_size"] == 1
    for key, value in one["metrics"]["final"].items():
        assert abs(two["metrics"]["final"][key] - value) <= TOL, key
    # rank 0 alone wrote: one run directory, one registry row, one set of checkpoints
    runs = sorted(p.name for p in (project / "home" / "runs").iterdir())
    assert len(runs) == 2 and sum(r.endswith("_two") for r in runs) == 1
    rows = Registry(home=project / "home").list_runs("two")
    assert len(rows) == 1 and rows[0].status == "completed"
    run_dir = next((project / "home" / "runs").glob("*_two"))
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == [
        "best.safetensors", "epoch-0001.safetensors", "epoch-0002.safetensors", "epoch-0003.safetensors",
        "last.safetensors"]


@pytest.mark.slow
def test_a_checkpoint_resumes_with_another_world_size_and_bitwise_with_the_same(project):
    from specml import api

    (project / "t4.yaml").write_text(trainer_yaml(epochs=4))
    done = specml(project, *train_args(project, "m", "t4.yaml"), "--nproc", "2")
    assert done.returncode == 0, done.stderr[-3000:]
    uninterrupted = weights(project, "m")
    run_dir = next((project / "home" / "runs").glob("*_m"))
    ckpt = run_dir / "checkpoints"
    kept = project / "epoch-0002.safetensors"
    shutil.copy(ckpt / "epoch-0002.safetensors", kept)

    # as if the 2-process run had stopped after epoch 2: resume it with 2 processes -> bitwise
    shutil.copy(kept, ckpt / "last.safetensors")
    done = specml(project, *train_args(project, "m", "t4.yaml"), "--nproc", "2", "--resume")
    assert done.returncode == 0, done.stderr[-3000:]
    same = weights(project, "m")
    assert all(torch.equal(same[k], uninterrupted[k]) for k in same)
    assert metadata(project, "m")["epochs"]["run"] == 4

    # ... and with 1 process: the same global batches, so equal to float tolerance
    shutil.copy(kept, ckpt / "last.safetensors")
    result = api.train(project / "model.yaml", project / "t4.yaml", table="pima", name="m",
                       workspace=project / "ws.duckdb", verbose=False, resume=True)
    assert any("resumed run" in n for n in result.notes)
    assert_close(weights(project, "m"), uninterrupted)


@pytest.mark.slow
def test_two_nodes_meet_at_one_rendezvous_on_loopback(project):
    endpoint = f"127.0.0.1:{free_port()}"
    nodes = [subprocess.Popen([sys.executable, "-m", "specml", *train_args(project, "nodes"), "--nproc", "1",
                               "--nnodes", "2", "--node-rank", str(r), "--rdzv-endpoint", endpoint],
                              cwd=project, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for r in range(2)]
    outs = [n.communicate(timeout=300) for n in nodes]
    assert [n.returncode for n in nodes] == [0, 0], outs[0][1][-2000:] + outs[1][1][-2000:]
    assert metadata(project, "nodes")["world_size"] == 2
    assert sum("trained 'nodes'" in out for out, _ in outs) == 1  # global rank 0 lives on one of the nodes


def _worker_pids(parent: int) -> dict[int, int]:
    """{RANK: pid} of the live processes below ``parent`` that torchrun started as workers."""
    found: dict[int, int] = {}
    todo = [parent]
    while todo:
        pid = todo.pop()
        try:
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            continue
        for child in map(int, children):
            todo.append(child)
            try:
                env = dict(e.split("=", 1) for e in Path(f"/proc/{child}/environ").read_text().split("\0") if "=" in e)
            except OSError:
                continue
            if "RANK" in env and "TORCHELASTIC_RUN_ID" in env:
                found[int(env["RANK"])] = child
    return found


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="finds the workers through /proc (Linux)")
def test_a_killed_worker_restarts_the_group_which_resumes_and_ends_with_a_model(project):
    (project / "long.yaml").write_text(trainer_yaml(epochs=8, batch_size=16))
    proc = subprocess.Popen([sys.executable, "-m", "specml", *train_args(project, "elastic", "long.yaml"),
                             "--nproc", "2", "--max-restarts", "1"], cwd=project, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        last = None
        while time.monotonic() < deadline and last is None:
            last = next((p for p in (project / "home" / "runs").glob("*_elastic/checkpoints/epoch-0001.safetensors")),
                        None) if (project / "home" / "runs").is_dir() else None
            time.sleep(0.2)
        assert last is not None, "no checkpoint appeared"
        workers = _worker_pids(proc.pid)
        assert set(workers) == {0, 1}
        os.kill(workers[1], signal.SIGKILL)
        out, err = proc.communicate(timeout=400)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)  # the launcher, torchrun and its workers
    assert proc.returncode == 0, err[-3000:]
    meta = metadata(project, "elastic")
    assert meta["epochs"]["run"] == 8
    assert any("resumed run" in n for n in meta["notes"])
    assert len(list((project / "home" / "runs").glob("*_elastic"))) == 1  # the restart continued the same run
