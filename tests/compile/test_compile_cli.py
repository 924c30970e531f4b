"""``specml model`` and ``specml plan`` as a user runs them: in this process (typer's ``CliRunner``), the
first one through the installed console script, and the review on a real terminal (pexpect, slow)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from specml.data.workspace import Workspace
from testkit import BOTH_WAYS, SPECML, invoke, no_traceback, run_as, specml_env


@pytest.fixture(scope="module")
def home(pima_home) -> Path:
    with Workspace(pima_home / "workspace.duckdb") as ws:
        ws.sql("CREATE TABLE prices AS SELECT i * 10 AS sqft, 1000.5 * i AS sale_price, 990.5 * i AS list_price "
               "FROM range(50) t(i)")
    return pima_home


def run(home: Path, cwd: Path, *args: str, stdin: str | None = None):
    """``specml ARGS`` in this process, in ``cwd``, with no LLM configured."""
    return invoke(*args, home=home, cwd=cwd, input=stdin if stdin is not None else "",
                  env={"SPECML_LLM_BASE_URL": None})


@BOTH_WAYS
def test_model_dry_run_writes_under_home_and_prints(home, tmp_path, how):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    result = run_as(how, home, "model", "--name", "dia", "--instruction",
                    "Build a binary classifier to predict diabetes, use mixup augmentation", "--table", "pima",
                    "--dry-run", cwd=cwd, env={"SPECML_LLM_BASE_URL": None}, input="")
    assert result.returncode == 0, result.stdout + result.stderr
    no_traceback(result)
    assert list(cwd.iterdir()) == []  # never the current directory
    model_path = home / "models" / "dia" / "model.yaml"
    trainer_path = home / "models" / "dia" / "trainer.yaml"
    model = yaml.safe_load(model_path.read_text())
    trainer = yaml.safe_load(trainer_path.read_text())
    assert model["loss"]["inputs"]["target"] == "outcome"
    assert trainer["config"]["epochs"] == 300  # ~10,000 steps of 20 batches: the 300-epoch cap
    assert trainer["scheduler"] == {"type": "CosineAnnealingLR", "params": {"T_max": 300}, "interval": "epoch"}
    out = result.stdout
    assert "torch.nn.BCEWithLogitsLoss" in out and "model_ref: dia" in out  # both files shown
    assert "Target 'outcome'" in out  # the rationale
    assert "ignored: 'use mixup augmentation'" in out
    assert "dry run: not trained" in out
    assert not (home / "models" / "dia" / "metadata.json").exists()


def test_model_out_dir(home, tmp_path):
    out = tmp_path / "specs"
    result = run(home, tmp_path, "model", "-n", "dia2", "-i", "predict outcome with 2 hidden layers (16, 8)",
                 "-t", "pima", "--output", str(out), "--dry-run")
    assert result.returncode == 0, result.stderr
    model = yaml.safe_load((out / "model.yaml").read_text())
    assert [n["params"]["out_features"] for n in model["graph"] if n["name"].startswith("hidden")] == [16, 8]
    assert not (home / "models" / "dia2").exists()
    again = run(home, tmp_path, "model", "-n", "dia2", "-i", "predict outcome", "-t", "pima", "--output", str(out),
                "--dry-run")  # the specs written there are the user's now: kept unless --replace
    assert again.returncode == 1 and again.stderr.startswith(f"error: {out / 'model.yaml'} and {out / 'trainer.yaml'} "
                                                             "already exist; pass --replace to overwrite")
    assert [n["params"]["out_features"] for n in yaml.safe_load((out / "model.yaml").read_text())["graph"]
            if n["name"].startswith("hidden")] == [16, 8]
    assert run(home, tmp_path, "model", "-n", "dia2", "-i", "predict outcome", "-t", "pima", "--output", str(out),
               "--dry-run", "--replace").returncode == 0


def test_ambiguous_target_exits_1_with_candidates(home, tmp_path):
    result = run(home, tmp_path, "model", "-n", "p", "-i", "predict house prices", "-t", "prices", "--dry-run")
    assert result.returncode == 1
    no_traceback(result)
    assert result.stderr.startswith("error")
    assert "sale_price" in result.stderr and "list_price" in result.stderr
    assert not (home / "models" / "p").exists()


def test_user_mistakes_are_one_line_errors(home, tmp_path):
    missing = run(home, tmp_path, "model", "-n", "m", "-i", "predict diabetes", "-t", "pimaa", "--dry-run")
    assert missing.returncode == 1 and "did you mean 'pima'" in missing.stderr
    no_traceback(missing)
    review = run(home, tmp_path, "model", "-n", "m", "-i", "predict diabetes", "-t", "pima", "--review")
    assert review.returncode == 1 and "needs a terminal" in review.stderr
    no_traceback(review)
    bad_plan = run(home, tmp_path, "plan", "show", "plan-20990101-000000-abcdef")
    assert bad_plan.returncode == 1 and "not found" in bad_plan.stderr
    no_traceback(bad_plan)


def test_plan_then_model_from_plan(home, tmp_path):
    made = run(home, tmp_path, "plan", "--instruction", "Build a binary classifier to predict diabetes with "
                                                         "2 hidden layers (32, 16)", "--table", "pima")
    assert made.returncode == 0, made.stdout + made.stderr
    plan_id = re.search(r"saved plan (plan-[0-9]+)", made.stdout).group(1)
    assert plan_id in run(home, tmp_path, "plan", "list").stdout
    assert "balance of outcome: 0: 500, 1: 268" in made.stdout
    assert "--stratify outcome" in made.stdout
    shown = run(home, tmp_path, "plan", "show", plan_id)
    assert shown.returncode == 0 and plan_id in shown.stdout and "estimated training time" in shown.stdout
    built = run(home, tmp_path, "model", "--name", "from_plan", "--instruction",
                "Build the model according to the plan", "--table", "pima", "--plan-id", plan_id, "--dry-run")
    assert built.returncode == 0, built.stdout + built.stderr
    model = yaml.safe_load((home / "models" / "from_plan" / "model.yaml").read_text())
    assert [n["params"]["out_features"] for n in model["graph"] if n["name"].startswith("hidden")] == [32, 16]
    assert f"specs from plan {plan_id}" in built.stdout


def _spawn(home: Path, cwd: Path, *args: str):
    pexpect = pytest.importorskip("pexpect")
    # the "editor" edits the trainer spec the way a user would: 2 epochs -> 1
    env = specml_env(home, EDITOR="sed -i 's/epochs: 2$/epochs: 1/'")
    for key in ("SPECML_LLM_BASE_URL", "VISUAL"):
        env.pop(key, None)
    return pexpect.spawn(str(SPECML), list(args), cwd=str(cwd), env=env, encoding="utf-8", timeout=180,
                         dimensions=(50, 200))


@pytest.mark.slow
def test_review_on_a_terminal_asks_then_trains(home, tmp_path):
    yes = _spawn(home, tmp_path, "model", "-n", "reviewed_yes", "-i", "predict diabetes, train for 2 epochs",
                 "-t", "pima", "--review")
    yes.expect(r"Train with these specs\? \[y/N/e\(dit\)\]")
    yes.sendline("e")
    yes.expect(r"epochs: 1")  # the edited spec, shown again after it validated
    yes.expect(r"Train with these specs\?")
    yes.sendline("y")
    yes.expect(pexpect_eof())
    output = yes.before or ""
    yes.close()
    assert "trained 'reviewed_yes' (binary)" in output, output[-3000:]
    assert "Epoch 1/1" in output and "Epoch 2/" not in output
    assert yes.exitstatus == 0, output[-3000:]
    assert (home / "models" / "reviewed_yes" / "metadata.json").is_file()
    assert "Traceback" not in output


def pexpect_eof():
    import pexpect

    return pexpect.EOF
