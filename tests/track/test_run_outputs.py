"""Seed 004's options for what a run writes: per-epoch figures kept, plots off, artifacts off (issue 18)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from specml import api
from specml.data.workspace import Workspace
from specml.track.facts import read_scalars
from specml.train.errors import TrainingError

torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parents[2]
PIMA = ROOT / "src" / "specml" / "sample_data" / "pima_diabetes.csv"
MODEL = ROOT / "examples" / "pima_mlp" / "model.yaml"


@pytest.fixture()
def ws(tmp_path, monkeypatch):
    monkeypatch.setenv("SPECML_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("SPECML_WORKSPACE", raising=False)
    with Workspace(tmp_path / "ws.duckdb") as ws:
        ws.load(PIMA, "pima")
        yield ws


def run(ws, tmp_path: Path, name: str, extra: str = "", **kw):
    spec = tmp_path / f"{name}.yaml"
    spec.write_text("optimizer: {type: torch.optim.Adam, lr: 0.01}\n"
                    f"config: {{epochs: 3, batch_size: 64, seed: 3, tensorboard: true{extra}}}\n", encoding="utf-8")
    return api.train(MODEL, spec, table="pima", name=name, workspace=ws, verbose=False, **kw)


def files(directory: Path) -> set[str]:
    return {p.name for p in directory.iterdir()} if directory.is_dir() else set()


@pytest.mark.slow
def test_keep_epoch_figures_keeps_each_epochs_figures(ws, tmp_path):
    kept = run(ws, tmp_path, "kept", ", keep_epoch_figures: true").run_dir / "figures"
    assert {"loss-e0001.png", "loss-e0002.png", "loss-e0003.png", "auc-e0002.png", "loss.png"} <= files(kept)
    plain = run(ws, tmp_path, "plain").run_dir / "figures"
    assert "loss.png" in files(plain) and not any("-e0" in f for f in files(plain))


def test_make_plots_false_draws_nothing(ws, tmp_path):
    result = run(ws, tmp_path, "noplots", ", make_plots: false")
    assert not any(f.endswith(".png") for f in files(result.run_dir / "figures"))
    assert files(result.run_dir / "checkpoints") >= {"last.safetensors", "best.safetensors"}


def test_save_artifacts_false_is_an_ephemeral_run(ws, tmp_path):
    result = run(ws, tmp_path, "ephemeral", ", save_artifacts: false")
    run_dir = result.run_dir
    assert files(run_dir / "checkpoints") == set() and files(run_dir / "figures") == set()
    assert files(run_dir / "tensorboard") == set()
    # still written: the specs, the facts, the log and the trained model
    assert len(read_scalars(run_dir / "facts")[1]) == 6 and (run_dir / "specs").is_dir()
    assert (result.directory / "metadata.json").is_file() and api.load_trained("ephemeral") is not None
    with pytest.raises(TrainingError, match="no checkpoint"):
        run(ws, tmp_path, "ephemeral", ", save_artifacts: false", resume=True)
