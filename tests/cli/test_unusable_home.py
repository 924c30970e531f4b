"""An unusable specml home — a file instead of a folder, a corrupt registry — is a one-line error, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


def specml(home, *args):
    env = {**os.environ, "SPECML_HOME": str(home), "NO_COLOR": "1"}
    return subprocess.run([sys.executable, "-m", "specml", *args], env=env, capture_output=True, text=True,
                          timeout=120, check=False)


@pytest.mark.parametrize("command", [("models", "list"), ("data", "tables"), ("jobs", "list")])
def test_a_home_that_is_a_file(tmp_path, command):
    home = tmp_path / "home"
    home.write_text("not a folder")
    result = specml(home, *command)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"error: the specml home {home} is a file, not a folder" in result.stderr


def test_a_corrupt_registry(tmp_path):
    (tmp_path / "registry.sqlite").write_text("junk " * 100)
    result = specml(tmp_path, "jobs", "list")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "registry.sqlite is not a usable registry" in result.stderr and "move it aside" in result.stderr


@pytest.mark.parametrize("folder", ["models", "runs"])
def test_models_or_runs_being_a_file_is_said_before_any_training(pima_home, tmp_path, folder):
    from testkit import PIMA_MLP, failed, invoke

    (pima_home / folder).write_text("not a folder")
    try:
        spec = tmp_path / "lr.yaml"
        spec.write_text("estimator: {type: LogisticRegression}\ntarget: outcome\n", encoding="utf-8")
        commands = [("train-estimator", "-e", spec, "-t", "pima", "-n", "c"),
                    ("train", "-m", PIMA_MLP / "model.yaml", "-T", PIMA_MLP / "trainer.yaml", "-t", "pima", "-n", "m")]
        if folder == "models":
            commands += [("models", "list"), ("evaluate", "--model", "c", "--table", "pima")]
        for command in commands:
            said = failed(invoke(*command, home=pima_home))
            assert said.startswith(f"error: {pima_home / folder} is a file, not a folder"), (command, said)
            assert f"hint: move it aside; specml keeps its {folder} there" in said
    finally:
        (pima_home / folder).unlink()
