"""The trivial-baseline guard: its rules, a diverging run that fires it, and the flag in the leaderboard."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest
import yaml

from specml.guard import check, loss, trivial_scores
from testkit import EXAMPLES


def test_rules_of_the_guard():
    rng = np.random.default_rng(1)
    y_train, y_val = rng.normal(5, 2, 300), rng.normal(5, 2, 100)
    assert check("regression", y_train, y_val, y_val + rng.normal(0, 0.5, 100)).worse is False
    far = check("regression", y_train, y_val, y_val + 40.0)
    assert far.worse and far.value > far.trivial and far.metric == "rmse"
    assert check("regression", y_train, y_val, np.full(100, np.nan)).worse  # not finite: always worse
    labels = (rng.random(200) < 0.3).astype(int)
    assert np.allclose(trivial_scores("binary", labels[:100], 3), labels[:100].mean())
    # sharp but mostly right (a 1-NN): poor log loss, better accuracy than the majority class -> not flagged
    sharp = np.where(rng.random(100) < 0.9, labels[100:], 1 - labels[100:]).astype(float)
    verdict = check("binary", labels[:100], labels[100:], sharp)
    assert verdict.value > verdict.trivial and not verdict.worse
    # confidently wrong: flagged
    assert check("binary", labels[:100], labels[100:], 1.0 - labels[100:]).worse
    probs = np.tile([0.2, 0.3, 0.5], (4, 1))
    assert loss("multiclass", np.array([2, 2, 1, 0]), probs) == pytest.approx(-np.mean(np.log([.5, .5, .3, .2])))


@pytest.mark.slow
def test_a_diverging_run_fires_the_guard_and_the_leaderboard_flags_it(tmp_path, cli):
    import torch

    torch.set_num_threads(1)
    from sklearn.datasets import load_diabetes

    from specml import api
    from specml.classical.leaderboard import leaderboard
    from specml.data.workspace import Workspace
    from specml.guard import check, neural_validation, record
    from specml.track.registry import Registry

    home = tmp_path / "home"
    with Workspace(home / "workspace.duckdb") as ws:
        d = load_diabetes()
        cols = {n: d.data[:, i] for i, n in enumerate(d.feature_names)}
        cols["progression"] = d.target
        ws.write_table("diabetes", pa.table(cols))
    spec = EXAMPLES / "diabetes_regression" / "model.yaml"
    for name, lr in (("diverged", 10.0), ("fine", 0.01)):
        trainer = tmp_path / f"{name}.yaml"
        trainer.write_text(yaml.safe_dump({
            "model_ref": "diabetes-progression-mlp", "optimizer": {"type": "torch.optim.Adam", "lr": lr},
            "config": {"epochs": 3, "batch_size": 32, "validation_split": 0.2, "seed": 3, "tensorboard": False,
                       "make_plots": False}}), encoding="utf-8")
        api.train(spec, trainer, table="diabetes", name=name, workspace=home / "workspace.duckdb", home=home,
                  verbose=False, progress=False)
        task, y_train, y_val, scores, classes = neural_validation(name, "diabetes", workspace=home / "workspace.duckdb",
                                                                  home=home)
        verdict = check(task, y_train, y_val, scores, classes)
        assert verdict.worse is (name == "diverged"), verdict
        record(verdict, name, home)
    meta = json.loads((home / "models" / "diverged" / "metadata.json").read_text())
    assert meta["guard"]["worse_than_trivial"] is True and meta["guard"]["metric"] == "rmse"
    run = Registry(home=home).runs.get(meta["run"]["run_id"])
    assert run.worse_than_trivial == 1 and run.trivial_value == pytest.approx(meta["guard"]["trivial"])
    board = leaderboard("diabetes", workspace=home / "workspace.duckdb", home=home)
    flags = {r["name"]: r["worse_than_trivial"] for r in board["rows"]}
    assert flags == {"diverged": True, "fine": False}
    shown = cli("leaderboard", "--table", "diabetes", home=home)
    line = next(x for x in shown.stdout.splitlines() if "diverged" in x)
    assert "WORSE THAN TRIVIAL" in line
    assert "WORSE THAN TRIVIAL" not in next(x for x in shown.stdout.splitlines() if " fine " in x)


def test_safer_specs_lower_the_learning_rate(tmp_path):
    from specml.families import safer_specs

    model = tmp_path / "model.yaml"
    spec = yaml.safe_load((EXAMPLES / "diabetes_regression" / "model.yaml").read_text())
    del spec["loss"]["target_normalize"]  # a raw regression target, as the words path may write it
    model.write_text(yaml.safe_dump(spec), encoding="utf-8")
    trainer = tmp_path / "trainer.yaml"
    trainer.write_text("model_ref: m\noptimizer: {type: torch.optim.Adam, lr: 0.5}\nconfig: {epochs: 1, "
                       "batch_size: 8}\n", encoding="utf-8")
    safer_model, safer_trainer, what = safer_specs(model, trainer)
    assert yaml.safe_load(safer_trainer.read_text())["optimizer"]["lr"] == pytest.approx(0.05)
    assert yaml.safe_load(safer_model.read_text())["loss"]["target_normalize"] == "standard"
    assert "learning rate 0.05 (x 0.1)" in what and "regression target standardised" in what
    assert yaml.safe_load(trainer.read_text())["optimizer"]["lr"] == 0.5  # the reviewed specs are untouched


def test_a_version_3_registry_gains_the_guard_columns_and_keeps_its_runs(tmp_path):
    import sqlite3

    from specml.track.registry import Registry
    from specml.track.store import MIGRATIONS

    path = tmp_path / "registry.sqlite"
    con = sqlite3.connect(path)
    for statements in MIGRATIONS[:3]:
        for sql in statements:
            con.execute(sql)
    con.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    con.execute("INSERT INTO schema_version VALUES (3)")
    con.execute("INSERT INTO runs (run_id, name, status, started_at) VALUES ('r1', 'm', 'completed', '2026-01-01')")
    con.commit()
    con.close()
    with Registry(path) as reg:
        assert reg.runs.get("r1").worse_than_trivial is None
        reg.runs.flag_trivial("r1", True, 1.5)
        run = reg.runs.get("r1")
        assert run.worse_than_trivial == 1 and run.trivial_value == 1.5


@pytest.mark.slow
def test_specml_model_retries_a_diverged_network_once_with_safer_settings(specml_home, tmp_path, capsys):
    import torch

    torch.set_num_threads(1)
    from sklearn.datasets import load_diabetes

    from specml import api
    from specml.cli.compile import _guard
    from specml.data.workspace import Workspace

    with Workspace(specml_home / "workspace.duckdb") as ws:
        d = load_diabetes()
        cols = {n: d.data[:, i] for i, n in enumerate(d.feature_names)}
        cols["progression"] = d.target
        ws.write_table("diabetes", pa.table(cols))
    model = tmp_path / "model.yaml"
    model.write_text((EXAMPLES / "diabetes_regression" / "model.yaml").read_text(), encoding="utf-8")
    trainer = tmp_path / "trainer.yaml"
    trainer.write_text(yaml.safe_dump({
        "model_ref": "diabetes-progression-mlp", "optimizer": {"type": "torch.optim.Adam", "lr": 30.0},
        "config": {"epochs": 2, "batch_size": 32, "validation_split": 0.2, "seed": 3, "tensorboard": False,
                   "make_plots": False}}), encoding="utf-8")
    api.train(model, trainer, table="diabetes", name="div", verbose=False, progress=False)
    _guard("div", model, trainer, "diabetes", None)
    said = capsys.readouterr()
    text = said.out + said.err
    assert "WORSE THAN TRIVIAL" in text and "retrying once with safer settings" in text and "learning rate 3" in text
    assert (tmp_path / "trainer.safer.yaml").is_file()
    assert list((specml_home / "models" / ".replaced" / "div").iterdir())  # the diverged model is kept
    meta = json.loads((specml_home / "models" / "div" / "metadata.json").read_text())
    assert meta["guard"]["worse_than_trivial"] == ("also after the retry" in text)
