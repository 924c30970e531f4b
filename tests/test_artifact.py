"""A trained model's directory: layout, specs and metadata, names, listing."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from datetime import UTC, datetime

import pytest

from specml.artifact import ArtifactError, ModelArtifact, library_versions, list_models, spec_hash


def test_layout(tmp_path):
    art = ModelArtifact.for_name("pima-mlp_v2.1", home=tmp_path)
    d = tmp_path / "models" / "pima-mlp_v2.1"
    assert art.directory == d and art.name == "pima-mlp_v2.1"
    assert art.weights_path == d / "model.safetensors"
    assert art.last_path == d / "checkpoints" / "last.safetensors"
    assert art.checkpoint_path(5) == d / "checkpoints" / "epoch-0005.safetensors"
    assert art.checkpoint_path(12345).name == "epoch-12345.safetensors"
    with pytest.raises(ArtifactError, match="does not name a run under"):  # specs live in the model's run
        art.model_spec_path  # noqa: B018
    assert art.trainer_spec_path is None and art.run_dir is None
    assert art.metadata_path == d / "metadata.json"
    assert not tmp_path.joinpath("models").exists()  # no I/O until something is written
    assert not art.exists() and art.list_checkpoints() == []
    with pytest.raises(ValueError, match="whole number"):
        art.checkpoint_path(-1)


def test_home_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("SPECML_HOME", str(tmp_path / "h"))
    assert ModelArtifact.for_name("m").directory == tmp_path / "h" / "models" / "m"


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "../evil", "a\\b", "/abs", "has space", ".hidden", "-x",
                                  "naïve", "x" * 129, "a\nb"])
def test_bad_names_are_refused(tmp_path, name):
    with pytest.raises(ArtifactError, match="not a valid model name") as info:
        ModelArtifact.for_name(name, home=tmp_path)
    assert isinstance(info.value, ValueError)
    assert not (tmp_path / "models").exists()


def test_specs_are_read_from_the_models_run(tmp_path):
    from specml.track.run import RunDir, point_model_to_run

    art = ModelArtifact.for_name("m", home=tmp_path)
    model_text = "name: m  # ü\r\ninputs: {}\n"
    run = RunDir.create("m", tmp_path)
    run.write_specs(model_text, "optimizer: {type: Adam}\n", {}, {})
    point_model_to_run(art.directory, run, "running")
    assert art.run_dir == run.path and art.checkpoints_dir == run.checkpoints
    assert art.model_spec_path.read_bytes() == model_text.encode("utf-8")
    assert art.trainer_spec_path.read_text() == "optimizer: {type: Adam}\n"
    (run.specs / "trainer.yaml").unlink()  # a single-file spec has no trainer file
    assert art.trainer_spec_path is None
    assert sorted(p.name for p in art.directory.iterdir()) == ["run.json"]
    assert spec_hash(model_text) == hashlib.sha256(model_text.encode()).hexdigest()
    assert spec_hash(model_text) != spec_hash(model_text.replace("\r\n", "\n"))


def test_metadata_round_trip(tmp_path):
    art = ModelArtifact.for_name("m", home=tmp_path)
    art.write_metadata({"task": "binary", "table": "pima", "best": {"metric": "val_auc", "value": 0.83}})
    assert art.exists()
    first = art.read_metadata()
    assert first["schema_version"] == 1 and first["name"] == "m"
    assert first["task"] == "binary" and first["best"] == {"metric": "val_auc", "value": 0.83}
    updated = datetime.fromisoformat(first["updated_at"])
    assert updated.tzinfo is not None and updated.utcoffset().total_seconds() == 0
    assert abs((datetime.now(UTC) - updated).total_seconds()) < 60

    art.write_metadata({"task": "binary", "epochs_run": 7})
    second = art.read_metadata()
    assert second["created_at"] == first["created_at"] and second["epochs_run"] == 7 and "best" not in second
    assert sorted(p.name for p in art.directory.iterdir()) == ["metadata.json"]  # no temp files


def test_read_metadata_errors_name_the_model(tmp_path):
    art = ModelArtifact.for_name("ghost", home=tmp_path)
    with pytest.raises(ArtifactError, match="model 'ghost' not found"):
        art.read_metadata()
    art.directory.mkdir(parents=True)
    art.metadata_path.write_text("{not json")
    with pytest.raises(ArtifactError, match="model 'ghost'.*cannot be read"):
        art.read_metadata()
    art.metadata_path.write_text("[1, 2]")
    with pytest.raises(ArtifactError, match="model 'ghost'.*not hold a JSON object"):
        art.read_metadata()


def test_list_checkpoints_by_epoch(tmp_path):
    art = ModelArtifact.for_name("m", home=tmp_path)
    for epoch in (10, 2, 10000):
        art.checkpoint_path(epoch).parent.mkdir(parents=True, exist_ok=True)
        art.checkpoint_path(epoch).write_bytes(b"")
    art.last_path.write_bytes(b"")
    (art.checkpoints_dir / ".epoch-0003.safetensors.abc.tmp").write_bytes(b"")
    assert [p.name for p in art.list_checkpoints()] == [
        "epoch-0002.safetensors", "epoch-0010.safetensors", "epoch-10000.safetensors"]


def test_list_models(tmp_path):
    assert list_models(tmp_path) == []  # no models directory yet
    ModelArtifact.for_name("zeta", home=tmp_path).write_metadata({"task": "regression", "data": {"table": "t2"}})
    ModelArtifact.for_name("alpha", home=tmp_path).write_metadata(
        {"task": "binary", "table": "pima", "best": {"metric": "val_loss", "value": 0.41}})
    unfinished = ModelArtifact.for_name("mid", home=tmp_path)
    unfinished.directory.mkdir(parents=True)  # a run that never wrote its metadata
    (unfinished.directory / "run.json").write_text("{}")
    broken = ModelArtifact.for_name("broken", home=tmp_path)
    broken.directory.mkdir()
    broken.metadata_path.write_text("{")
    (tmp_path / "models" / "stray.txt").write_text("not a model")

    rows = list_models(tmp_path)
    assert [r["name"] for r in rows] == ["alpha", "broken", "zeta"]
    alpha, broken_row, zeta = rows
    assert alpha["task"] == "binary" and alpha["table"] == "pima"
    assert alpha["best_metric"] == "val_loss" and alpha["best_value"] == 0.41
    assert alpha["path"] == str(tmp_path / "models" / "alpha") and alpha["error"] is None
    assert alpha["created_at"] and alpha["updated_at"]
    assert zeta["table"] == "t2" and zeta["best_metric"] is None
    assert "model 'broken'" in broken_row["error"] and broken_row["task"] is None


def test_library_versions():
    versions = library_versions()
    assert set(versions) == {"python", "torch", "numpy", "duckdb", "pyarrow", "scikit-learn", "safetensors", "specml"}
    assert versions["python"] == ".".join(map(str, sys.version_info[:3]))
    assert versions["torch"].startswith("2.") and versions["specml"] != "missing"
    json.dumps(versions)


def test_importing_artifact_does_not_import_torch():
    code = "import sys, specml.artifact; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_a_moved_home_keeps_its_models_runs_and_a_tampered_run_id_stays_home(tmp_path):
    import json
    import shutil

    from specml.track.run import RunDir, point_model_to_run

    old = tmp_path / "old"
    run = RunDir.create("m", old)
    point_model_to_run(ModelArtifact.for_name("m", home=old).directory, run, "completed")
    shutil.copytree(old, tmp_path / "new")
    shutil.rmtree(old)
    moved = ModelArtifact.for_name("m", home=tmp_path / "new")
    assert moved.run_dir == tmp_path / "new" / "runs" / run.run_id  # found by its id under the new home
    (tmp_path / "elsewhere").mkdir()
    for run_id in ("../../elsewhere", "..", "/tmp", 7):
        pointer = {"run_id": run_id, "run_dir": str(tmp_path / "elsewhere")}
        (moved.directory / "run.json").write_text(json.dumps(pointer))
        assert moved.run_dir is None, run_id
