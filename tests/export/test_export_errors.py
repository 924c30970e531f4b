"""What cannot be exported is refused in one line, before any work (no training needed for most)."""

from __future__ import annotations

import json

import pytest

from specml.export import ExportError, export_model
from testkit import failed


def fake_classical(home, name="gbm"):
    """A model directory that says it is classical (the refusal reads metadata.json only)."""
    directory = home / "models" / name
    directory.mkdir(parents=True)
    (directory / "metadata.json").write_text(json.dumps({"kind": "classical", "task": "binary",
                                                         "estimator": {"family": "lightgbm"}}))
    return name


def test_unknown_format_says_did_you_mean(specml_home, tmp_path):
    with pytest.raises(ExportError, match=r"--format 'onxx' is not a format.*did you mean 'onnx'"):
        export_model("any", "onxx", tmp_path / "out")


def test_classical_model_has_no_torch_graph(specml_home, tmp_path):
    name = fake_classical(specml_home)
    with pytest.raises(ExportError, match="classical .*lightgbm.* no torch graph for --format torchscript"):
        export_model(name, "torchscript", tmp_path / "out")
    assert not (tmp_path / "out").exists()  # refused before anything was written


def test_missing_model_and_non_empty_out_dir(specml_home, tmp_path):
    from specml.artifact import ArtifactError

    with pytest.raises(ArtifactError, match="model 'nope' not found"):
        export_model("nope", "onnx", tmp_path / "out")
    name = fake_classical(specml_home)
    out = tmp_path / "full"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(ExportError, match="is not empty; pass --replace"):
        export_model(name, "onnx", out)


def test_cli_export_error_is_one_line(cli, specml_home, tmp_path):
    name = fake_classical(specml_home)
    message = failed(cli("export", "--model", name, "--format", "torch-export", "--output", str(tmp_path / "o"),
                         home=specml_home))
    assert "no torch graph" in message and len(message.strip().splitlines()) == 1
