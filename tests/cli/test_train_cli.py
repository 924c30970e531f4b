"""``specml train | evaluate | predict | models | demo`` end to end.

Each module run gets its own specml home: the Pima CSV is loaded and split with ``specml data``, a short
training runs once, and the other verbs use that model. The commands run in this process (typer's
``CliRunner``); the demo runs the installed console script in a subprocess. Output is read as a user
sees it (no colour, 200 columns).
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest
import torch

from testkit import PIMA, PIMA_MLP, failed, invoke, ok
from testkit import specml as specml_process

torch.set_num_threads(1)

EXAMPLE = PIMA_MLP
EPOCHS = 8


def specml(home: Path, *args: str | Path):
    """``specml ARGS`` in this process, with ``SPECML_HOME=home``, in ``home``."""
    return invoke(*args, home=home)


def short_trainer(path: Path, epochs: int = EPOCHS) -> Path:
    text = (EXAMPLE / "trainer.yaml").read_text(encoding="utf-8")
    assert "epochs: 100" in text
    path.write_text(text.replace("epochs: 100", f"epochs: {epochs}"), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    """A specml home with pima, pima_train (614 rows), pima_test (154 rows) and model m1 trained by the CLI."""
    home = tmp_path_factory.mktemp("home")
    loaded = ok(specml(home, "data", "load", PIMA, "--table", "pima"))
    assert "768" in loaded.stdout
    split = ok(specml(home, "data", "split", "pima", "--test-size", "0.2", "--stratify", "outcome", "--seed", "42"))
    assert "pima_train" in split.stdout and "pima_test" in split.stdout
    trainer = short_trainer(home / "short_trainer.yaml")
    trained = specml(home, "train", "--model-spec", EXAMPLE / "model.yaml", "--trainer-spec", trainer,
                     "--table", "pima_train", "--name", "m1")
    (home / "train.stdout").write_text(trained.stdout)
    ok(trained)
    return home


def test_train_prints_each_epoch(home):
    out = (home / "train.stdout").read_text()
    assert f"Epoch 1/{EPOCHS}:" in out and f"Epoch {EPOCHS}/{EPOCHS}:" in out
    assert len(re.findall(r"^Epoch \d+/\d+:", out, re.M)) == EPOCHS
    train_lines = re.findall(r"^\s+Train Loss:\s+(\d+\.\d{4})", out, re.M)
    val_lines = re.findall(r"^\s+Val Loss:\s+(\d+\.\d{4})", out, re.M)
    assert len(train_lines) == EPOCHS and len(val_lines) == EPOCHS
    assert "Val AUC:" in out and "Train Acc:" in out
    assert "trained 'm1' (binary) on 491 rows, validated on 123" in out
    model_dir = home / "models" / "m1"
    assert f"saved to {model_dir}" in out
    for f in ("model.safetensors", "run.json", "metadata.json"):
        assert (model_dir / f).is_file(), f
    run_dir = Path(json.loads((model_dir / "run.json").read_text())["run_dir"])
    assert (run_dir / "specs" / "trainer.yaml").read_bytes() == (home / "short_trainer.yaml").read_bytes()


def test_train_draws_the_curves_after_saving_the_model(home):
    """The same figure files as always, drawn once the result is saved (in the background, waited for)."""
    model_dir = home / "models" / "m1"
    run_dir = Path(json.loads((model_dir / "run.json").read_text())["run_dir"])
    figures = sorted((run_dir / "figures").iterdir())
    assert [p.name for p in figures] == ["accuracy.png", "auc.png", "loss.png", "lr.png"]
    saved = max((model_dir / f).stat().st_mtime_ns for f in ("model.safetensors", "metadata.json"))
    assert all(p.stat().st_mtime_ns >= saved for p in figures)
    assert json.loads((model_dir / "run.json").read_text())["status"] == "completed"


def test_evaluate_json(home):
    result = ok(specml(home, "evaluate", "--model", "m1", "--table", "pima_test", "--json"))
    report = json.loads(result.stdout)
    assert report["model"] == "m1" and report["table"] == "pima_test" and report["rows"] == 154
    assert report["task"] == "binary"
    auc = report["metrics"]["auc"]
    assert isinstance(auc, float) and 0.5 < auc <= 1.0
    for key in ("accuracy", "precision", "recall", "f1", "log_loss"):
        assert key in report["metrics"], key


def test_predict_to_a_table_then_sql(home):
    result = ok(specml(home, "predict", "--model", "m1", "--table", "pima_test", "--output-table", "preds"))
    assert "154 predictions" in result.stdout and "table 'preds'" in result.stdout
    counted = ok(specml(home, "sql", "select count(*) as n from preds", "--json"))
    assert json.loads(counted.stdout) == [{"n": 154}]
    rows = json.loads(ok(specml(home, "sql", "select * from preds order by row_number limit 3", "--json")).stdout)
    assert list(rows[0]) == ["row_number", "outcome", "probability", "prediction", "prob_0", "prob_1"]
    assert [r["row_number"] for r in rows] == [0, 1, 2]


def test_predict_to_a_csv_file(home):
    out = home / "out.csv"
    result = ok(specml(home, "predict", "--model", "m1", "--table", "pima_test", "--output", out))
    assert "154 predictions" in result.stdout and "out.csv" in result.stdout
    with out.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 154
    assert list(rows[0]) == ["row_number", "outcome", "probability", "prediction", "prob_0", "prob_1"]
    assert [int(r["row_number"]) for r in rows] == list(range(154))
    for r in rows:
        p = float(r["probability"])
        assert 0.0 <= p <= 1.0
        assert int(r["prediction"]) == int(p >= 0.5)
        assert r["outcome"] in ("0", "1")


def test_models_list_and_show(home):
    listed = ok(specml(home, "models", "list"))
    assert re.search(r"m1\s.*binary.*pima_train.*val_loss", listed.stdout), listed.stdout
    as_json = json.loads(ok(specml(home, "models", "list", "--json")).stdout)
    assert "m1" in [r["name"] for r in as_json]
    shown = ok(specml(home, "models", "show", "m1"))
    assert shown.stdout.startswith("m1") and str(home / "models" / "m1") in shown.stdout
    assert 'task: "binary"' in shown.stdout and 'table: "pima_train"' in shown.stdout
    assert '"stopped_early": false' in shown.stdout


# ----------------------------------------------------------------------------------------------
# mistakes: exit 1, a message, no traceback


def test_train_on_a_missing_table(home):
    err = failed(specml(home, "train", "--model-spec", EXAMPLE / "model.yaml", "--trainer-spec",
                        home / "short_trainer.yaml", "--table", "pima_trian", "--name", "typo"))
    assert "pima_trian" in err and "did you mean 'pima_train'" in err
    assert not (home / "models" / "typo").exists()


def test_train_with_a_target_column_that_does_not_exist(home):
    spec = home / "bad_target.yaml"
    spec.write_text((EXAMPLE / "model.yaml").read_text().replace("target: outcome", "target: diabetes"))
    err = failed(specml(home, "train", "--model-spec", spec, "--trainer-spec", home / "short_trainer.yaml",
                        "--table", "pima_train", "--name", "badtarget"))
    assert "'diabetes'" in err and "pima_train" in err
    assert not (home / "models" / "badtarget").exists()


def test_predict_needs_an_output(home):
    err = failed(specml(home, "predict", "--model", "m1", "--table", "pima_test"))
    assert "--output-table" in err and "--output" in err


def test_evaluate_an_unknown_model(home):
    err = failed(specml(home, "evaluate", "--model", "nope", "--table", "pima_test"))
    assert "'nope'" in err and "not found" in err


# ----------------------------------------------------------------------------------------------
# the demo


@pytest.mark.slow
def test_demo_runs_end_to_end(tmp_path):
    result = ok(specml_process(tmp_path, "demo", timeout=300))  # the installed console script
    out = result.stdout
    assert "2. loaded 768 rows into table 'pima'" in out
    assert "'pima_train' (614 rows) / 'pima_test' (154 rows)" in out
    assert "Epoch 1/" in out and "Val Loss:" in out
    evaluate = next(line for line in out.splitlines() if line.startswith("5. evaluate"))
    auc = re.search(r"\bauc (\d\.\d+)", evaluate)
    assert auc and float(auc.group(1)) > 0.75, evaluate
    assert "6. predict 154 rows -> table 'pima_predictions'" in out
    assert (tmp_path / "models" / "pima_mlp" / "metadata.json").is_file()
    assert (tmp_path / "workspace.duckdb").is_file()
