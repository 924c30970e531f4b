"""A spec generated from "predict diabetes" trains on Pima as well as the hand-written example."""

from __future__ import annotations

import pytest
import yaml

from specml import api
from specml.compile.build import compile_spec
from specml.compile.profile import profile_table
from specml.data.workspace import Workspace
from testkit import PIMA, PIMA_MLP

EXAMPLE = PIMA_MLP
EPOCHS = 30


def _short(trainer: dict) -> dict:
    """The same short settings for both runs."""
    cfg = trainer["config"]
    cfg.update(epochs=EPOCHS, batch_size=32, validation_split=0.2, seed=42, early_stopping_patience=10,
               metrics=["accuracy", "auc"], verbose=False)
    trainer.pop("scheduler", None)
    return trainer


@pytest.mark.slow  # trains two models
def test_generated_spec_matches_the_hand_written_example(tmp_path, monkeypatch):
    import torch

    torch.set_num_threads(1)
    monkeypatch.setenv("SPECML_HOME", str(tmp_path / "home"))
    ws = Workspace(tmp_path / "ws.duckdb")
    ws.load(PIMA, "pima")

    compiled = compile_spec("predict diabetes", profile_table(ws, "pima"), name="generated")
    assert compiled.target == "outcome" and compiled.task == "binary"
    gen_dir = tmp_path / "generated"
    model_path, trainer_path = compiled.write(gen_dir)
    trainer_path.write_text(yaml.safe_dump(_short(yaml.safe_load(trainer_path.read_text()))))

    hand_dir = tmp_path / "hand"
    hand_dir.mkdir()
    (hand_dir / "model.yaml").write_text((EXAMPLE / "model.yaml").read_text())
    hand_trainer = _short(yaml.safe_load((EXAMPLE / "trainer.yaml").read_text()))
    (hand_dir / "trainer.yaml").write_text(yaml.safe_dump(hand_trainer))

    generated = api.train(model_path, trainer_path, table="pima", name="generated", workspace=ws, verbose=False,
                          progress=False)
    hand = api.train(hand_dir / "model.yaml", hand_dir / "trainer.yaml", table="pima", name="hand", workspace=ws,
                     verbose=False, progress=False)
    ws.close()
    gen_auc, hand_auc = generated.best["val_auc"], hand.best["val_auc"]
    print(f"val AUC generated {gen_auc:.4f}, hand-written {hand_auc:.4f}")
    assert gen_auc >= 0.75, gen_auc
    assert gen_auc >= hand_auc - 0.05, (gen_auc, hand_auc)
    assert generated.rows == hand.rows  # the same validation rows (same seed, same stratified split)
