"""Cheap checks first: wrong spec kinds, missing tables and columns, a foreign model_ref, a missing model
are refused with the full path's message, and (in a fresh interpreter) before torch is imported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from specml import preflight
from specml.artifact import ArtifactError
from specml.data.errors import DataError
from specml.data.workspace import Workspace
from specml.spec.errors import SpecError
from specml.train.errors import TrainingError

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
MODEL, TRAINER = EXAMPLES / "pima_mlp" / "model.yaml", EXAMPLES / "pima_mlp" / "trainer.yaml"
ESTIMATOR = EXAMPLES / "classical" / "random_forest_pima.yaml"
VARIANTS = ROOT / "tests" / "fixtures" / "variants"
PIMA = ROOT / "src" / "specml" / "sample_data" / "pima_diabetes.csv"


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    """A specml home whose default workspace holds table pima, and a model 'fake' (metadata only)."""
    home = tmp_path_factory.mktemp("home")
    with Workspace(home / "workspace.duckdb") as ws:
        assert ws.load(PIMA, "pima") == 768
    fake = home / "models" / "fake"
    fake.mkdir(parents=True)
    (fake / "metadata.json").write_text(json.dumps({"name": "fake", "task": "binary", "target": "outcome",
                                                    "inputs": {"x": ["glucose", "glucoze"]}}), encoding="utf-8")
    return home


@pytest.fixture
def ws(home):
    with Workspace(home / "workspace.duckdb", read_only=True) as ws:
        yield ws


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# ----------------------------------------------------------------------------------------------
# spec kinds


@pytest.mark.parametrize("path, kind", [(MODEL, "model"), (TRAINER, "trainer"), (ESTIMATOR, "estimator"),
                                        (VARIANTS / "v2_training_section.yaml", "model+trainer"),
                                        (VARIANTS / "v9_nested_layout.yaml", "model+trainer")])
def test_spec_kind_from_the_keys(path, kind):
    assert preflight.spec_kind(path) == kind


def test_spec_kind_of_a_file_that_is_no_spec(tmp_path):
    with pytest.raises(SpecError, match="cannot tell whether this is a model spec or a trainer spec") as err:
        preflight.spec_kind(write(tmp_path / "x.yaml", "hello: world\n"))
    assert err.value.issues[0].file == str(tmp_path / "x.yaml")
    with pytest.raises(SpecError, match="file not found"):
        preflight.spec_kind(tmp_path / "missing.yaml")


def test_wrong_kinds_are_refused_naming_the_file():
    with pytest.raises(SpecError, match="this file holds a trainer spec; pass it as --trainer-spec") as err:
        preflight.check_spec_kinds(TRAINER, TRAINER)
    assert err.value.issues[0].file == str(TRAINER)
    with pytest.raises(SpecError, match="this file holds a model spec, not a trainer spec") as err:
        preflight.check_spec_kinds(MODEL, MODEL)
    assert err.value.issues[0].file == str(MODEL)
    with pytest.raises(SpecError, match="estimator spec; train it with --estimator-spec"):
        preflight.check_spec_kinds(ESTIMATOR, TRAINER)
    with pytest.raises(SpecError, match="no trainer spec"):
        preflight.check_spec_kinds(MODEL)


SEED000 = ROOT / "tests" / "fixtures" / "seed000"


def test_the_flag_decides_the_kind_of_seed000s_trainer_block():
    with pytest.raises(SpecError, match="cannot tell whether this is a model spec or a trainer spec"):
        preflight.spec_kind(SEED000 / "trainer.yaml")  # its keys alone leave it open
    assert preflight.spec_kind(SEED000 / "trainer.yaml", "trainer") == "trainer"
    model, trainer = preflight.check_spec_kinds(SEED000 / "graph.yaml", SEED000 / "trainer.yaml")  # -M ... -T ...
    assert (trainer.optimizer.lr, trainer.config.epochs, trainer.config.batch_size) == (0.001, 50, 32)
    assert model.losses[0].type == "torch.nn.BCELoss"
    with pytest.raises(SpecError, match="this file holds a model spec, not a trainer spec"):
        preflight.check_spec_kinds(SEED000 / "graph.yaml", SEED000 / "graph.yaml")  # a clear kind still wins


def test_the_loss_comes_from_the_trainer_spec_when_the_model_has_none():
    model, trainer = preflight.check_spec_kinds(VARIANTS / "v1_model_no_loss.yaml",
                                                VARIANTS / "v1_trainer_with_loss.yaml")
    assert model.losses[0].inputs.target == "churned" and trainer.model_ref == "churn-mlp"


# ----------------------------------------------------------------------------------------------
# model_ref


def test_model_ref_naming_another_model_is_refused_naming_both(tmp_path):
    other = write(tmp_path / "trainer.yaml", TRAINER.read_text(encoding="utf-8").replace("model_ref: pima-mlp",
                                                                                         "model_ref: wine-mlp"))
    model, trainer = preflight.check_spec_kinds(MODEL, other)
    with pytest.raises(SpecError) as err:
        preflight.check_model_ref(model, trainer, model_file=MODEL, trainer_file=other)
    issue = err.value.issues[0]
    assert (issue.file, issue.path, issue.line) == (str(other), "model_ref", 1)
    assert "'wine-mlp'" in issue.message and "'pima-mlp'" in issue.message and str(MODEL) in issue.message


def test_model_ref_may_name_the_spec_or_its_registered_name_or_be_absent(tmp_path):
    model, trainer = preflight.check_spec_kinds(MODEL, TRAINER)
    preflight.check_model_ref(model, trainer)  # pima-mlp == pima-mlp
    registered = trainer.model_copy(update={"model_ref": "pima"})
    preflight.check_model_ref(model, registered, registered="pima")
    with pytest.raises(SpecError, match="registered as 'pima'"):
        preflight.check_model_ref(model, trainer.model_copy(update={"model_ref": "pimaa"}), registered="pima")
    preflight.check_model_ref(model, trainer.model_copy(update={"model_ref": None}))
    preflight.check_model_ref(model.model_copy(update={"name": None}), trainer)  # nothing to compare


# ----------------------------------------------------------------------------------------------
# tables, targets, columns


def test_missing_table_says_did_you_mean(ws):
    with pytest.raises(DataError, match=r"table 'pimaa' not found \(did you mean 'pima'\?\)"):
        preflight.check_table(ws, "pimaa")
    preflight.check_table(ws, "PIMA", ["glucose", "outcome"])  # table names match case-insensitively
    with pytest.raises(DataError, match=r"table 'pima' has no column 'glucoze' \(did you mean 'glucose'\?\)"):
        preflight.check_table(ws, "pima", ["glucoze"])


def test_check_table_opens_a_workspace_path_read_only(home, tmp_path):
    preflight.check_table(home / "workspace.duckdb", "pima")
    with pytest.raises(DataError, match="does not exist"):
        preflight.check_table(tmp_path / "none.duckdb", "pima")
    assert not (tmp_path / "none.duckdb").exists()


def test_training_columns_and_target_rules():
    model, _ = preflight.check_spec_kinds(MODEL, TRAINER)
    features, targets = preflight.training_columns(model)
    assert targets == ["outcome"] and "glucose" in features and len(features) == 8
    with pytest.raises(TrainingError, match="--target age but the spec's loss reads column 'outcome'"):
        preflight.training_columns(model, "age")
    bare = model.model_copy(update={"loss": None})
    with pytest.raises(TrainingError, match="no target: the spec names no loss target; pass --target COLUMN"):
        preflight.training_columns(bare)
    assert preflight.training_columns(bare, "outcome")[1] == ["outcome"]


def test_check_training_in_order(home, ws, tmp_path):
    model, trainer = preflight.check_training(MODEL, TRAINER, table="pima", workspace=ws)
    assert model.name == "pima-mlp" and trainer.config.epochs == 100
    bad_target = write(tmp_path / "m.yaml", MODEL.read_text(encoding="utf-8").replace("target: outcome",
                                                                                      "target: outcom"))
    with pytest.raises(DataError, match=r"table 'pima' has no column 'outcom' \(did you mean 'outcome'\?\)"):
        preflight.check_training(bad_target, TRAINER, table="pima", workspace=ws)
    with pytest.raises(DataError, match="table 'nope' not found"):  # the table before the columns
        preflight.check_training(bad_target, TRAINER, table="nope", workspace=ws)


def test_check_estimator_training(ws, tmp_path):
    preflight.check_estimator_training(ESTIMATOR, table="pima", workspace=ws)
    with pytest.raises(SpecError, match="this file holds a model spec, not an estimator spec"):
        preflight.check_estimator_training(MODEL, table="pima", workspace=ws)
    typo = write(tmp_path / "e.yaml", "estimator: {type: LogisticRegression}\ntarget: outcom\n")
    with pytest.raises(DataError, match=r"has no column 'outcom' \(did you mean 'outcome'\?\)"):
        preflight.check_estimator_training(typo, table="pima", workspace=ws)
    invalid = write(tmp_path / "bad.yaml", "estimator: {type: LogisticRegression}\n")  # no target: the loader says
    preflight.check_estimator_training(invalid, table="nope", workspace=ws)


def test_check_scoring(home, ws):
    with pytest.raises(ArtifactError, match="model 'nope' not found"):
        preflight.check_scoring("nope", "pima", workspace=ws, home=home)
    with pytest.raises(DataError, match="table 'pimaa' not found"):
        preflight.check_scoring("fake", "pimaa", workspace=ws, home=home)
    with pytest.raises(DataError, match="has no column 'glucoze'"):
        preflight.check_scoring("fake", "pima", workspace=ws, home=home, targets=False)


# ----------------------------------------------------------------------------------------------
# the CLI refuses before torch, TensorBoard, matplotlib or even pyarrow is imported (a fresh interpreter)

PROBE = """
    import json, sys
    from typer.testing import CliRunner
    from specml.cli.app import app
    heavy = ("torch", "tensorboard", "matplotlib", "sklearn", "lightgbm", "xgboost", "pyarrow")
    out = []
    for args in json.loads(sys.argv[1]):
        result = CliRunner().invoke(app, args)
        out.append({"args": args, "exit_code": result.exit_code, "stderr": result.stderr,
                    "exception": None if result.exception is None or isinstance(result.exception, SystemExit)
                    else repr(result.exception),
                    "imported": [m for m in heavy if m in sys.modules]})
    print(json.dumps(out))
"""


def probe(home: Path, *cases: list[str]) -> list[dict]:
    env = {**os.environ, "SPECML_HOME": str(home), "NO_COLOR": "1", "COLUMNS": "200"}
    env.pop("SPECML_WORKSPACE", None)
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(PROBE), json.dumps([list(map(str, c))
                                                                                      for c in cases])],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_refusals_come_before_torch(home, tmp_path):
    foreign = write(tmp_path / "t.yaml", TRAINER.read_text(encoding="utf-8").replace("model_ref: pima-mlp",
                                                                                     "model_ref: wine-mlp"))
    no_column = write(tmp_path / "m.yaml", MODEL.read_text(encoding="utf-8").replace("target: outcome",
                                                                                     "target: diabetes"))
    train = ["train", "--name", "x", "--no-tensorboard"]
    cases = {
        "describe a trainer spec": (["describe", TRAINER], "this is a trainer spec; describe takes a model spec"),
        "missing table": ([*train, "-m", MODEL, "-T", TRAINER, "--table", "pimaa"],
                          "table 'pimaa' not found (did you mean 'pima'?)"),
        "missing column": ([*train, "-m", no_column, "-T", TRAINER, "--table", "pima"],
                           "table 'pima' has no column 'diabetes'"),
        "foreign model_ref": ([*train, "-m", MODEL, "-T", foreign, "--table", "pima"],
                              "model_ref 'wine-mlp' names another model than the model spec it trains ('pima-mlp'"),
        "trainer as model": ([*train, "-m", TRAINER, "-T", TRAINER, "--table", "pima"],
                             "this file holds a trainer spec; pass it as --trainer-spec"),
        "background, missing table": ([*train, "-m", MODEL, "-T", TRAINER, "--table", "pimaa", "--background"],
                                      "table 'pimaa' not found"),
        "estimator, missing table": ([*train, "-e", ESTIMATOR, "--table", "pimaa"], "table 'pimaa' not found"),
        "estimator, wrong kind": (["train-estimator", "-e", MODEL, "--table", "pima", "--name", "x"],
                                  "this file holds a model spec, not an estimator spec"),
        "evaluate, missing model": (["evaluate", "--model", "nope", "--table", "pima"], "model 'nope' not found"),
        "evaluate, missing table": (["evaluate", "--model", "fake", "--table", "pimaa"], "table 'pimaa' not found"),
        "predict, missing column": (["predict", "--model", "fake", "--table", "pima", "--output-table", "p"],
                                    "table 'pima' has no column 'glucoze'"),
    }
    results = probe(home, *(args for args, _ in cases.values()))
    for (what, (_, said)), got in zip(cases.items(), results, strict=True):
        assert got["exception"] is None, (what, got)
        assert got["exit_code"] == 1, (what, got)
        assert said in got["stderr"] and got["stderr"].startswith("error"), (what, got["stderr"])
        assert got["imported"] == [], f"{what}: imported {got['imported']} before refusing"
    assert not (home / "models" / "x").exists()


def test_the_probe_sees_torch_when_the_deep_check_runs(home):
    """Control for the test above: describing a model spec does import torch."""
    (got,) = probe(home, ["describe", MODEL])
    assert got["exit_code"] == 0 and "torch" in got["imported"], got
