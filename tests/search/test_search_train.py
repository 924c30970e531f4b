"""Overrides change what a training does, and the run records them (specml.api.train(overrides=[...]))."""

from __future__ import annotations

import json
import math

import pytest
import torch

from specml import api
from specml.track.registry import Registry
from testkit import invoke, no_traceback

torch.set_num_threads(1)


def test_epochs_override_runs_that_many_epochs_and_the_schedule_follows(home, specs):
    result = api.train(specs["model"], specs["trainer"], table="pima_train", name="ov_epochs", verbose=False,
                       overrides=["trainer.config.epochs=3", "model.graph.h1.params.out_features=5"])
    assert len(result.history["train_loss"]) == 3
    run = result.run_dir
    assert json.loads((run / "overrides.json").read_text()) == {
        "overrides": ["trainer.config.epochs=3", "model.graph.h1.params.out_features=5"]}
    resolved = json.loads((run / "specs" / "resolved.json").read_text())
    assert resolved["trainer"]["config"]["epochs"] == 3
    assert resolved["trainer"]["scheduler"]["params"]["T_max"] == 3             # ${trainer.config.epochs}
    assert resolved["model"]["graph"][2]["params"]["in_features"] == 5          # ${model.graph.h1.params...}
    # the exact files are kept as written: the overrides are the difference
    assert "epochs: 6" in (run / "specs" / "trainer.yaml").read_text()
    meta = json.loads((result.directory / "metadata.json").read_text())
    assert meta["epochs"] == {"run": 3, "planned": 3, "stopped_early": False}
    row = Registry(home=home).get_run(run.name)
    assert (row.status, row.epochs_total, row.epochs_done) == ("completed", 3, 3)
    assert row.overrides == ["trainer.config.epochs=3", "model.graph.h1.params.out_features=5"]
    # the scheduler really annealed over 3 epochs: the lr of the last epoch is cosine's value at 2/3
    assert result.history["lr"][-1] == pytest.approx(0.01 * (1 + math.cos(math.pi * 2 / 3)) / 2, rel=1e-6)


def test_a_preset_through_the_api(home, specs):
    result = api.train(specs["model"], specs["trainer"], table="pima_train", name="ov_quick", verbose=False,
                       overrides=["+experiment=quick"])
    assert len(result.history["train_loss"]) == 2
    assert not (result.run_dir / "tensorboard").exists()
    assert json.loads((result.run_dir / "overrides.json").read_text()) == {"overrides": ["+experiment=quick"]}


def test_a_recorded_dict_still_works(home, specs):
    result = api.train(specs["model"], specs["trainer"], table="pima_train", name="ov_dict", verbose=False,
                       overrides={"note": "kept"}, device="cpu")
    assert len(result.history["train_loss"]) == 6
    assert json.loads((result.run_dir / "overrides.json").read_text()) == {"device": "cpu", "note": "kept"}


def test_specml_model_writes_the_overrides_into_the_specs_it_builds(home, tmp_path):
    out = tmp_path / "built"
    ran = invoke("model", "-n", "words_ov", "-i", "predict outcome with 2 hidden layers 16 and 8", "-t", "pima_train",
                 "--dry-run", "-o", out, "--preset", "quick", "trainer.optimizer.lr=0.02",
                 "model.graph.hidden1.params.out_features=12", home=home)
    assert ran.returncode == 0, ran.stdout + ran.stderr + ran.traceback
    from specml.spec.yaml_io import read_yaml

    trainer, model = read_yaml(out / "trainer.yaml")[0], read_yaml(out / "model.yaml")[0]
    assert trainer["optimizer"]["lr"] == 0.02 and trainer["config"]["epochs"] == 2      # the quick preset
    assert next(n for n in model["graph"] if n["name"] == "hidden1")["params"]["out_features"] == 12  # by name
    assert "overrides applied to the built specs" in ran.stdout

    typo = invoke("model", "-n", "words_typo", "-i", "predict outcome", "-t", "pima_train", "--dry-run", "-o",
                  tmp_path / "typo", "trainer.config.epoch=3", home=home)
    no_traceback(typo)
    assert typo.returncode == 1 and "did you mean 'epochs'" in typo.stderr
