"""``specml tune`` in one process (specml.search.tune): trials as tracked runs, pruning from the engine's
per-epoch validation metric, the report, retraining the best configuration; classical estimator specs."""

from __future__ import annotations

import csv
import json

import optuna
import pytest
import torch

from specml import api
from specml.search.study import SearchError, TuneSettings, study_dir
from specml.search.tune import resume_settings, tune
from specml.spec import SpecError
from specml.track.registry import Registry

torch.set_num_threads(1)

HOPELESS = 1.0e-7


def settings(specs, study: str, space, **more) -> TuneSettings:
    return TuneSettings(study=study, table="pima_train", space=str(space), model_spec=str(specs["model"]),
                        trainer_spec=str(specs["trainer"]), **more)


@pytest.mark.slow
def test_pruning_report_and_retrained_best(home, specs, tmp_path):
    space = tmp_path / "lr_space.yaml"
    space.write_text(f"""
params:
  trainer.optimizer.lr: [0.03, 0.02, {HOPELESS}]
enqueue:            # two good trials first, then the hopeless one the median pruner must stop
  - {{trainer.optimizer.lr: 0.03}}
  - {{trainer.optimizer.lr: 0.02}}
  - {{trainer.optimizer.lr: {HOPELESS}}}
""")
    said: list[str] = []
    result = tune(settings(specs, "prune", space, trials=3, seed=0), retrain_best="prune_best", echo=said.append)

    study = optuna.load_study(study_name="prune", storage=result.storage)
    trials = sorted(study.trials, key=lambda t: t.number)
    assert [t.state.name for t in trials] == ["COMPLETE", "COMPLETE", "PRUNED"]
    hopeless = trials[2]
    assert hopeless.params == {"trainer.optimizer.lr": HOPELESS}
    assert hopeless.user_attrs["epochs"] < 6          # planned: 6 epochs
    assert max(hopeless.intermediate_values) == hopeless.user_attrs["epochs"]
    assert all(len(t.intermediate_values) == 6 for t in trials[:2])
    assert any(line.startswith("trial 2 pruned after") for line in said)

    # every trial is a normal tracked run: a run directory and a registry row with its overrides
    runs = {r.name: r for r in Registry(home=home).list_runs() if r.name.startswith("prune-")}
    assert sorted(runs) == ["prune-0000", "prune-0001", "prune-0002"]
    assert runs["prune-0000"].status == "completed" and runs["prune-0002"].status == "failed"
    assert "pruned after epoch" in runs["prune-0002"].error
    for t in trials:
        overrides = json.loads((home / "runs" / runs[f"prune-{t.number:04d}"].run_id / "overrides.json").read_text())
        assert overrides == {"overrides": t.user_attrs["overrides"]}

    # the report: leaderboard best first, summary, plots, TensorBoard hparams per trial
    folder = study_dir("prune", home)
    rows = list(csv.DictReader((folder / "leaderboard.csv").open()))
    assert [r["state"] for r in rows] == ["complete", "complete", "pruned"]
    assert float(rows[0]["value"]) <= float(rows[1]["value"])
    assert result.summary["best"]["trial"] == int(rows[0]["trial"])
    assert result.summary["states"] == {"complete": 2, "pruned": 1}
    assert (folder / "optimization_history.png").stat().st_size > 1000
    for n in range(3):
        events = list((folder / "tensorboard" / f"trial-{n:04d}").glob("events.out.tfevents.*"))
        assert events and b"hparams" in events[0].read_bytes()

    # the best configuration, retrained on the whole table, evaluates
    retrained = result.retrained
    assert retrained.rows == {"train": 614, "validation": 0}
    best_trial = trials[result.summary["best"]["trial"]]
    assert len(retrained.history["train_loss"]) == best_trial.user_attrs["best_epoch"]
    report = api.evaluate("prune_best", "pima_test")
    assert report["rows"] == 154 and report["metrics"]["auc"] > 0.6


def test_a_study_is_not_silently_reused_or_invented(home, specs, tmp_path):
    space = tmp_path / "space.yaml"
    space.write_text("params:\n  trainer.optimizer.lr: [0.03]\n")
    tune(settings(specs, "once", space, trials=1))
    with pytest.raises(SearchError, match="study 'once' already exists .* \\(1 trial\\(s\\)\\)"):
        tune(settings(specs, "once", space, trials=2))
    with pytest.raises(SearchError, match="no study 'never'"):
        resume_settings("never", home)


def test_a_typo_in_the_space_stops_before_any_trial(home, specs, tmp_path):
    space = tmp_path / "space.yaml"
    space.write_text("params:\n  trainer.optimizer.lrr: [0.03]\n")
    with pytest.raises(SpecError, match=r"unknown key 'lrr' \(did you mean 'lr'\?\)"):
        tune(settings(specs, "typo", space, trials=1))
    assert not (study_dir("typo", home) / "study.json").exists()


def test_a_timeout_starts_no_trial_after_it(home, specs, tmp_path):
    space = tmp_path / "space.yaml"
    space.write_text("params:\n  trainer.optimizer.lr: [0.03]\n")
    result = tune(settings(specs, "late", space, trials=3, timeout=1e-9))
    assert result.summary["trials"] == 0 and result.summary["best"] is None
    assert (study_dir("late", home) / "leaderboard.csv").read_text().startswith("rank,trial,state")


def test_grid_sampler_runs_the_grid_once(home, specs, tmp_path):
    space = tmp_path / "space.yaml"
    space.write_text("params:\n  model.graph.h1.params.out_features: [2, 4]\n")
    result = tune(settings(specs, "grid", space, trials=5, sampler="grid", pruner="none", seed=0,
                           overrides=["trainer.config.epochs=1"]))
    assert result.summary["trials"] == 2
    assert sorted(r["params"]["model.graph.h1.params.out_features"] for r in result.leaderboard) == [2, 4]


@pytest.mark.slow
def test_classical_estimator_spec_with_its_own_space(home, specs):
    result = tune(TuneSettings(study="forest", table="pima_train", space=str(specs["estimator_space"]),
                               estimator_spec=str(specs["estimator"]), trials=3, sampler="random", seed=0),
                  retrain_best="forest_best")
    assert result.metric == "val_auc" and result.direction == "maximize"
    assert result.summary["states"] == {"complete": 3}
    values = [r["value"] for r in result.leaderboard]
    assert values == sorted(values, reverse=True) and 0.6 < values[0] <= 1.0
    best = result.summary["best"]["params"]
    meta = api.show_model("forest_best")
    assert meta["estimator"]["params"]["max_depth"] == best["estimator.params.max_depth"]
    assert api.evaluate("forest_best", "pima_test")["metrics"]["auc"] > 0.6


@pytest.mark.slow
def test_trials_are_logged_to_mlflow_when_the_trainer_spec_asks(home, specs, tmp_path):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    space = tmp_path / "space.yaml"
    space.write_text("params:\n  trainer.optimizer.lr: [0.01, 0.02]\n")
    tune(settings(specs, "logged", space, trials=2, sampler="grid", pruner="none", seed=0,
                  overrides=["trainer.config.epochs=1", f"+trainer.tracking={{mlflow: {{uri: '{uri}', "
                                                                        "experiment: tuned}}"]))
    client = MlflowClient(tracking_uri=uri)
    runs = client.search_runs([client.get_experiment_by_name("tuned").experiment_id])
    assert sorted(r.info.run_name for r in runs) == ["logged-0000", "logged-0001"]
    assert {r.data.params["trainer_spec.optimizer.lr"] for r in runs} == {"0.01", "0.02"}
    assert all(r.info.status == "FINISHED" and "val_loss" in r.data.metrics for r in runs)
