"""One rule for taken model names, and files written as open() would make them."""

from __future__ import annotations

import json
import os
import stat

import pyarrow as pa
import pytest
from typer.testing import CliRunner

from specml.artifact import ArtifactError, ModelArtifact
from specml.cli.app import app
from specml.data.files import atomic_write_text
from specml.data.workspace import Workspace
from specml.track.names import claim, free_name


def _fake_model(home, name: str) -> ModelArtifact:
    artifact = ModelArtifact.for_name(name, home)
    artifact.write_metadata({"task": "binary", "table": "t"})
    return artifact


def test_a_taken_name_needs_replace_and_the_old_model_is_kept(tmp_path):
    old = _fake_model(tmp_path, "m")
    _fake_model(tmp_path, "m_2")
    assert free_name("m", tmp_path) == "m_3"
    with pytest.raises(ArtifactError, match=r"model 'm' already exists .*pass --replace .*e\.g\. m_3"):
        claim("m", tmp_path)
    assert claim("m", tmp_path, resume=True) is None  # a resume continues the model
    kept = claim("m", tmp_path, replace=True)
    assert not old.exists() and json.loads((kept / "metadata.json").read_text())["table"] == "t"
    assert kept.parent == tmp_path / "models" / ".replaced" / "m"
    assert claim("m", tmp_path) is None  # free now


@pytest.mark.parametrize("argv", [
    ["train", "--model-spec", "examples/pima_mlp/model.yaml", "--trainer-spec", "examples/pima_mlp/trainer.yaml",
     "--table", "pima", "--name", "m"],
    ["train-estimator", "--estimator-spec", "examples/classical/xgboost_pima.yaml", "--table", "pima", "--name", "m"],
    ["train", "--estimator-spec", "examples/classical/xgboost_pima.yaml", "--table", "pima", "--name", "m"],
    ["model", "--name", "m", "--instruction", "predict outcome", "--table", "pima"],
])
def test_every_training_verb_refuses_a_taken_name(tmp_path, monkeypatch, argv):
    from pathlib import Path

    monkeypatch.setenv("SPECML_HOME", str(tmp_path))
    monkeypatch.delenv("SPECML_WORKSPACE", raising=False)
    monkeypatch.chdir(Path(__file__).resolve().parents[1])
    from specml.demo import sample_path

    with Workspace() as ws:
        ws.load(sample_path("pima_diabetes.csv"), "pima")
    _fake_model(tmp_path, "m")
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 1 and "error: model 'm' already exists" in result.stderr, result.output


def test_written_files_follow_the_umask(tmp_path):
    previous = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "a.txt", "x")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == 0o644


def test_the_leaderboard_baseline():
    from specml.classical.leaderboard import baseline

    with Workspace(":memory:") as ws:
        ws.write_table("t", pa.table({"y": [0, 0, 0, 1], "v": [1.0, 2.0, 3.0, 6.0], "c": ["a", "b", "b", "c"]}))
        binary = baseline(ws, "t", "binary", ["y"])
        assert binary["accuracy"] == 0.75 and binary["auc"] == 0.5
        assert baseline(ws, "t", "regression", ["v"])["rmse"] == pytest.approx(1.8708287, rel=1e-6)
        assert baseline(ws, "t", "multiclass", ["c"])["accuracy"] == 0.5
        assert baseline(ws, "t", "sequence", ["y"]) is None
