"""``specml create-model | create-trainer | registry list | registry lineage`` and ``jobs`` errors, as a user
runs them (in this process: typer's ``CliRunner``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from testkit import FIXTURES, PIMA_MLP, failed, invoke, ok

EXAMPLE = PIMA_MLP
VARIANTS = FIXTURES / "variants"


def specml(home: Path, *args):
    return invoke(*args, home=home)


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    """A home with model spec 'pima' and a model without a loss ('bare') registered."""
    home = tmp_path_factory.mktemp("registry_home")
    out = ok(specml(home, "create-model", "--name", "pima", "--model-spec", EXAMPLE / "model.yaml")).stdout
    assert "registered model spec 'pima' (pima-mlp, has a loss, sha256 " in out
    text = (EXAMPLE / "model.yaml").read_text(encoding="utf-8")
    (home / "bare.yaml").write_text(text[: text.index("\nloss:")].replace("name: pima-mlp", "name: pima-bare") + "\n",
                                    encoding="utf-8")
    out = ok(specml(home, "create-model", "--name", "bare", "--model-spec", home / "bare.yaml")).stdout
    assert "no loss" in out
    trainer = (EXAMPLE / "trainer.yaml").read_text(encoding="utf-8")
    (home / "no_ref.yaml").write_text(trainer.replace("model_ref: pima-mlp\n", ""), encoding="utf-8")
    (home / "typo_ref.yaml").write_text(trainer.replace("model_ref: pima-mlp", "model_ref: pimma"), encoding="utf-8")
    (home / "with_loss.yaml").write_text(trainer.replace("model_ref: pima-mlp\n", "") +
                                         "loss:\n  type: torch.nn.BCEWithLogitsLoss\n"
                                         "  inputs: {input: logits, target: outcome}\n", encoding="utf-8")
    return home


def test_create_trainer_and_its_errors(home):
    out = ok(specml(home, "create-trainer", "--name", "pima_default", "--trainer-spec",
                    EXAMPLE / "trainer.yaml")).stdout
    assert "registered trainer spec 'pima_default' for model 'pima'" in out  # model_ref: pima-mlp, the spec name
    # an old spelling (--schema: a hidden, deprecated alias); the loss brought by the trainer
    out = ok(specml(home, "create-trainer", "--name", "bare_fit", "--schema", home / "with_loss.yaml",
                    "--spec-name", "bare")).stdout
    assert "for model 'bare'" in out
    # wrong model_ref / --model: exit 1, file, field, did-you-mean, no traceback (no torch needed either)
    err = failed(specml(home, "create-trainer", "--name", "t", "--trainer-spec", home / "typo_ref.yaml"))
    assert "typo_ref.yaml:1: model_ref: model_ref 'pimma' is not a registered model spec" in err
    assert "did you mean 'pima'?" in err
    err = failed(specml(home, "create-trainer", "--name", "t", "--trainer-spec", home / "no_ref.yaml",
                        "--spec-name", "pmia"))
    assert "--spec-name 'pmia'" in err and "did you mean 'pima'?" in err
    # no loss anywhere
    err = failed(specml(home, "create-trainer", "--name", "t", "--trainer-spec", home / "no_ref.yaml",
                        "--spec-name", "bare"))
    assert "no_ref.yaml" in err and ": loss: model 'bare' has no loss" in err and "this trainer spec has none" in err


def test_bad_model_spec_files(home):
    err = failed(specml(home, "create-model", "--name", "x", "--model-spec", EXAMPLE / "trainer.yaml"))
    assert "trainer spec, not a model spec" in err
    broken = home / "broken.yaml"
    broken.write_text((EXAMPLE / "model.yaml").read_text(encoding="utf-8").replace("in_features: 8", "in_feature: 8"),
                      encoding="utf-8")
    err = failed(specml(home, "create-model", "--name", "x", "--model-spec", broken))
    assert "broken.yaml:16: graph[0].params.in_feature" in err and "did you mean 'in_features'" in err


def test_registry_list(home):
    out = ok(specml(home, "registry", "list")).stdout
    assert "model specs" in out and "trainer specs" in out and "pima-mlp" in out
    data = json.loads(ok(specml(home, "registry", "list", "--json")).stdout)
    assert {m["name"] for m in data["models"]} == {"pima", "bare"}
    assert {t["name"]: t["model_ref"] for t in data["trainers"]}["bare_fit"] == "bare"


def test_lineage(home):
    from specml.track.registry import Registry

    err = failed(specml(home, "registry", "lineage", "nothing"))
    assert "no runs recorded for model 'nothing'" in err
    reg = Registry(home / "registry.sqlite")
    m, t = reg.get_model_spec("pima"), reg.get_trainer_spec("pima_default")
    run = reg.start_run("m1", run_dir=home / "runs" / "20250101-000000_m1", model_spec_name="pima",
                        model_spec_hash=m.spec_hash, trainer_spec_name="pima_default", trainer_spec_hash=t.spec_hash,
                        table_name="pima_train", data_rows=614, data_hash="duckdb:00000000000000ff", epochs_total=8)
    reg.finish_run(run.run_id, best_metric="val_loss", best_value=0.4321, epochs_done=8,
                   model_dir=str(home / "models" / "m1"))
    reg.add_evaluation("m1", "pima_test", {"accuracy": 0.75, "auc": 0.8123}, rows=154)
    out = ok(specml(home, "registry", "lineage", "m1")).stdout
    assert "m1: 1 run(s), 1 evaluation(s)" in out
    assert f"model spec:   pima sha256 {m.spec_hash[:12]}" in out
    assert f"trainer spec: pima_default sha256 {t.spec_hash[:12]}" in out
    assert "data:         pima_train (614 rows, duckdb:00000000000000ff)" in out
    assert "best:         val_loss 0.4321 (8/8 epochs)" in out
    assert "evaluated on pima_test" in out and "auc 0.8123" in out
    data = json.loads(ok(specml(home, "registry", "lineage", "m1", "--json")).stdout)
    assert data["runs"][0]["trainer_model_ref"] == "pima"


def test_jobs_commands_with_no_jobs(home):
    assert "no jobs yet" in ok(specml(home, "jobs", "list")).stdout
    err = failed(specml(home, "jobs", "status", "3"))
    assert "no job 3" in err and "no jobs yet" in err
    err = failed(specml(home, "jobs", "logs", "x1"))
    assert "'x1' is not a job id" in err
    assert "error" in failed(specml(home, "jobs", "cancel", "3"))
