"""One workspace, eight processes at once — neural and classical training, evaluation, predictions written to
tables, a table loaded and a split written — and every one finishes: readers read and close, a classical fit
never holds the workspace, writers wait for each other with backoff."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PIMA = ROOT / "src" / "specml" / "sample_data" / "pima_diabetes.csv"
EXAMPLE = ROOT / "examples" / "pima_mlp"
TRAINER = "optimizer: {type: torch.optim.Adam, lr: 0.01}\nconfig: {epochs: 3, batch_size: 64, seed: 1, tensorboard: false}\n"
ESTIMATOR = """
estimator: {type: LogisticRegression, params: {max_iter: 200}}
target: outcome
test_size: 0.2
random_state: 1
"""


@pytest.mark.slow
def test_eight_mixed_jobs_on_one_workspace_all_finish(tmp_path):
    home = tmp_path / "home"
    env = {**os.environ, "SPECML_HOME": str(home), "CI": "1", "OMP_NUM_THREADS": "1", "NO_COLOR": "1"}
    env.pop("SPECML_WORKSPACE", None)

    def cmd(*args):
        return [sys.executable, "-m", "specml", *map(str, args)]

    (tmp_path / "trainer.yaml").write_text(TRAINER)
    (tmp_path / "lr.yaml").write_text(ESTIMATOR)
    for setup in (cmd("data", "load", PIMA, "--table", "pima"),
                  cmd("train", "--model-spec", EXAMPLE / "model.yaml", "--trainer-spec", tmp_path / "trainer.yaml",
                      "--table", "pima", "--name", "base", "--no-tensorboard")):
        done = subprocess.run(setup, env=env, capture_output=True, text=True, timeout=300, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
    jobs = {
        "neural-1": cmd("train", "--model-spec", EXAMPLE / "model.yaml", "--trainer-spec", tmp_path / "trainer.yaml",
                        "--table", "pima", "--name", "n1", "--no-tensorboard"),
        "neural-2": cmd("train", "--model-spec", EXAMPLE / "model.yaml", "--trainer-spec", tmp_path / "trainer.yaml",
                        "--table", "pima", "--name", "n2", "--no-tensorboard"),
        "classical": cmd("train", "--estimator-spec", tmp_path / "lr.yaml", "--table", "pima", "--name", "c1"),
        "evaluate": cmd("evaluate", "--model", "base", "--table", "pima"),
        "predict-1": cmd("predict", "--model", "base", "--table", "pima", "--output-table", "p1"),
        "predict-2": cmd("predict", "--model", "base", "--table", "pima", "--output-table", "p2"),
        "load": cmd("data", "load", PIMA, "--table", "pima_again"),
        "split": cmd("data", "split", "pima", "--test-size", "0.2", "--seed", "3"),
    }
    procs = {name: subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for name, argv in jobs.items()}
    failed = {}
    for name, proc in procs.items():
        out, _ = proc.communicate(timeout=600)
        if proc.returncode != 0:
            failed[name] = out[-2000:]
    assert not failed, failed
    tables = subprocess.run(cmd("data", "tables"), env=env, capture_output=True, text=True, timeout=120).stdout
    for table in ("p1", "p2", "pima_again", "pima_train", "pima_test"):
        assert table in tables


@pytest.mark.slow
def test_a_writer_gives_up_on_a_held_workspace_with_a_clear_message_and_gets_in_when_free(tmp_path, monkeypatch):
    from specml.data.workspace import DataError, Workspace

    path = tmp_path / "workspace.duckdb"
    hold = "import duckdb, sys, time; con = duckdb.connect(sys.argv[1]); print('held', flush=True); time.sleep(60)"
    holder = subprocess.Popen([sys.executable, "-c", hold, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        monkeypatch.setenv("SPECML_WORKSPACE_WAIT", "0.5")
        started = time.monotonic()
        with pytest.raises(DataError, match=r"is busy: another process is writing it; waited 0 s "
                                            r"\(SPECML_WORKSPACE_WAIT sets how long\)"):
            Workspace(path).tables()
        assert 0.4 < time.monotonic() - started < 10
        monkeypatch.setenv("SPECML_WORKSPACE_WAIT", "30")
        threading.Timer(0.5, holder.kill).start()  # the holder goes away while the next writer waits: it gets in
        with Workspace(path) as ws:
            ws.sql("CREATE TABLE t AS SELECT 1 AS x")
            assert ws.tables()[0].name == "t"
    finally:
        holder.kill()
        holder.wait()
