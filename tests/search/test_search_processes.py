"""Sweeps and studies across processes: ``specml train --multirun --jobs 2``, ``specml tune --workers 2`` on
one SQLite study, and a study killed mid-way that resumes. These start several Python processes (slow)."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time

import optuna
import pytest
import torch
from searchtools import env_for

from specml.search.study import TuneSettings, default_storage, study_dir
from specml.search.tune import resume_settings, tune
from specml.track.registry import Registry

torch.set_num_threads(1)

pytestmark = pytest.mark.slow


def specml(home, *args, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "specml", *map(str, args)], cwd=home, capture_output=True,
                          text=True, env=env_for(home), timeout=timeout)


def no_traceback(result: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in result.stdout + result.stderr, result.stdout + result.stderr


def test_multirun_of_four_points_two_at_a_time_with_one_failing(home, specs):
    result = specml(home, "train", "-m", specs["model"], "-T", specs["trainer"], "-t", "pima_train", "-n", "lrgrid",
                    "--multirun", "trainer.optimizer.lr=0.03,0.01,0.003,1e30", "trainer.config.epochs=3",
                    "--jobs", "2")
    out = result.stdout
    assert result.returncode == 1, out + result.stderr        # a point failed: the sweep says so at the end
    no_traceback(result)
    assert "sweep " in out and "4 point(s), 2 at a time" in out
    assert "point 3 failed: TrainingError: the training loss became NaN or infinite" in out

    sweep_dirs = sorted((home / "sweeps").glob("*_lrgrid"))
    assert len(sweep_dirs) == 1
    sweep = json.loads((sweep_dirs[0] / "sweep.json").read_text())
    points = {p["index"]: p for p in sweep["points"]}
    assert [points[i]["status"] for i in range(4)] == ["completed"] * 3 + ["failed"]
    assert sweep["axes"] == {"trainer.optimizer.lr": ["trainer.optimizer.lr=0.03", "trainer.optimizer.lr=0.01",
                                                      "trainer.optimizer.lr=0.003", "trainer.optimizer.lr=1e+30"]}
    assert points[3]["overrides"] == ["trainer.optimizer.lr=1e+30", "trainer.config.epochs=3"]

    # one run directory and one registry row per point; each run recorded its overrides
    runs = {r.name: r for r in Registry(home=home).list_runs() if r.name.startswith("lrgrid-")}
    assert sorted(runs) == ["lrgrid-0", "lrgrid-1", "lrgrid-2", "lrgrid-3"]
    assert [runs[f"lrgrid-{i}"].status for i in range(4)] == ["completed"] * 3 + ["failed"]
    for i in range(4):
        run_dir = home / "runs" / runs[f"lrgrid-{i}"].run_id
        assert run_dir.is_dir() and points[i]["run_id"] == run_dir.name
        assert json.loads((run_dir / "overrides.json").read_text())["overrides"] == points[i]["overrides"]

    # the summary ranks the completed points by val_loss (lower first), the failed one last
    rows = list(csv.DictReader((sweep_dirs[0] / "summary.csv").open()))
    values = [float(r["value"]) for r in rows[:3]]
    assert values == sorted(values) and [r["rank"] for r in rows] == ["1", "2", "3", ""]
    assert rows[3]["status"] == "failed" and rows[3]["point"] == "3"
    assert values[0] == min(runs[f"lrgrid-{i}"].best_value for i in range(3))

    shown = specml(home, "sweeps", "show", sweep_dirs[0].name)
    assert shown.returncode == 0, shown.stderr
    assert "3 of 4 point(s) completed" in shown.stdout and "point 3 failed" in shown.stdout
    missing = specml(home, "sweeps", "show", "nope")
    assert missing.returncode == 1 and missing.stderr.startswith("error: no sweep 'nope'")


def test_train_cli_with_a_preset_and_overrides(home, specs):
    result = specml(home, "train", "-m", specs["model"], "-T", specs["trainer"], "-t", "pima_train", "-n",
                    "cli_quick", "--preset", "quick", "model.graph.h1.params.out_features=4", "--no-tensorboard")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Epoch 2/2" in result.stdout and "Epoch 3/" not in result.stdout
    run = Registry(home=home).list_runs("cli_quick")[-1]
    assert json.loads((home / "runs" / run.run_id / "overrides.json").read_text()) == {
        "overrides": ["+experiment=quick", "model.graph.h1.params.out_features=4"]}
    typo = specml(home, "train", "-m", specs["model"], "-T", specs["trainer"], "-t", "pima_train", "-n", "x",
                  "trainer.config.epohcs=3")
    assert typo.returncode == 1 and "Traceback" not in typo.stderr
    assert typo.stderr.strip() == ("error override 'trainer.config.epohcs=3': trainer.config.epohcs: unknown key "
                                   "'epohcs' (did you mean 'epochs'?)")


def lr_space(tmp_path):
    space = tmp_path / "space.yaml"
    space.write_text("params:\n  trainer.optimizer.lr: {type: float, low: 1.0e-3, high: 5.0e-2, log: true}\n"
                     "  model.graph.h1.params.out_features: [4, 8]\n")
    return space


def test_two_workers_share_one_sqlite_study(home, specs, tmp_path):
    settings = TuneSettings(study="shared", table="pima_train", space=str(lr_space(tmp_path)),
                            model_spec=str(specs["model"]), trainer_spec=str(specs["trainer"]), trials=6, seed=1,
                            pruner="none", overrides=["trainer.config.epochs=2"])
    result = tune(settings, workers=2)
    assert settings.storage_url == default_storage(home) and settings.storage_url.startswith("sqlite:///")
    study = optuna.load_study(study_name="shared", storage=result.storage)
    trials = study.get_trials()
    assert sorted(t.number for t in trials) == list(range(6))                 # none lost, none extra
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    assert len({t.user_attrs["run_id"] for t in trials}) == 6                   # one run each, none twice
    pids = {t.user_attrs["owner"]["pid"] for t in trials}
    assert os.getpid() not in pids and 1 <= len(pids) <= 2                     # the workers ran them
    runs = [r for r in Registry(home=home).list_runs() if r.name.startswith("shared-")]
    assert len(runs) == 6 and all(r.status == "completed" for r in runs)
    logs = sorted(p.name for p in (study_dir("shared", home) / "workers").iterdir())
    assert logs == ["worker-0.log", "worker-1.log"]


def test_a_killed_study_resumes_to_the_asked_number_of_trials(home, specs, tmp_path):
    command = [sys.executable, "-m", "specml", "tune", "-m", str(specs["model"]), "-T", str(specs["trainer"]),
               "-t", "pima_train", "--space", str(lr_space(tmp_path)), "--trials", "4", "--study", "killed",
               "--seed", "2", "--pruner", "none", "trainer.config.epochs=3"]
    proc = subprocess.Popen(command, cwd=home, env=env_for(home), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    storage = default_storage(home)
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline:   # kill it after one trial finished, while the next one trains
            try:
                trials = optuna.load_study(study_name="killed", storage=storage).trials
            except KeyError:
                trials = []
            running = [t.number for t in trials if t.state.name == "RUNNING"]
            if any(t.state.name == "COMPLETE" for t in trials) and running and \
                    Registry(home=home).list_runs(f"killed-{running[0]:04d}"):
                break
            assert proc.poll() is None, "the study ended before it could be killed"
            time.sleep(0.1)
        else:
            pytest.fail("no trial finished in time")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    running = [t.number for t in optuna.load_study(study_name="killed", storage=storage).trials
               if t.state.name == "RUNNING"]
    assert running

    result = tune(resume_settings("killed", home), resume=True)
    study = optuna.load_study(study_name="killed", storage=storage)
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    interrupted = [t for t in study.trials if t.user_attrs.get("interrupted")]
    assert len(done) == 4                                                     # the asked number
    assert [t.number for t in interrupted] == running
    assert all(t.state == optuna.trial.TrialState.FAIL for t in interrupted)
    assert f"trial(s) {running[0]} were interrupted" in result.notes[0]
    rows = {r.name: r for r in Registry(home=home).list_runs() if r.name.startswith("killed-")}
    killed = rows[f"killed-{running[0]:04d}"]  # its process died: the registry says so when it is read
    assert killed.status == "failed" and "process died" in killed.error, (killed.status, killed.error)
