"""A foreground run killed with -9 does not stay ``running`` forever: the next read of the registry
finds its process gone (pid + start time) and marks it failed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from specml.track.registry import Registry

ROOT = Path(__file__).resolve().parents[2]
PIMA = ROOT / "src" / "specml" / "sample_data" / "pima_diabetes.csv"

TRAINER = """
optimizer: {type: torch.optim.Adam, lr: 0.001}
config: {epochs: 100000, batch_size: 64, seed: 1, tensorboard: false}
"""


@pytest.mark.slow
def test_a_killed_foreground_run_is_marked_failed_when_the_registry_is_read(tmp_path):
    home = tmp_path / "home"
    env = {**os.environ, "SPECML_HOME": str(home), "CI": "1", "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, "-m", "specml", "data", "load", str(PIMA), "--table", "pima"], env=env,
                   check=True, capture_output=True, timeout=120)
    trainer = tmp_path / "trainer.yaml"
    trainer.write_text(TRAINER)
    proc = subprocess.Popen([sys.executable, "-m", "specml", "train", "--model-spec",
                             str(ROOT / "examples" / "pima_mlp" / "model.yaml"), "--trainer-spec", str(trainer),
                             "--table", "pima", "--name", "doomed", "--no-tensorboard"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        reg = Registry(home=home)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not reg.runs.list("doomed"):
            assert proc.poll() is None, "the training ended before it could be killed"
            time.sleep(0.05)
        (run,) = reg.list_runs("doomed")
        assert run.status == "running" and run.pid == proc.pid
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    (run,) = Registry(home=home).list_runs("doomed")
    assert run.status == "failed" and "died" in run.error and run.ended_at
