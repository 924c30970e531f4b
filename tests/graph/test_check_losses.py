"""The deep check runs each loss on the output it reads (issue 18): seed 000's literal
``loss: torch.nn.BCELoss`` on a ``[B, 64]`` output is refused by ``validate`` with the node, the loss and
both shapes at the loss's field path, and ``train`` refuses it as one line, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from specml import preflight
from specml.spec import SpecError, load_spec
from specml.train.engine import Trainer, TrainingError

torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parents[2]
SEED000 = ROOT / "tests" / "fixtures" / "seed000"


def test_validate_runs_the_loss_on_the_output_it_reads():
    with pytest.raises(SpecError) as info:
        load_spec(SEED000 / "model.yaml")  # the guide's model with its trainer block beside it
    issue = info.value.issues[0]
    assert issue.path == "trainer.loss" and issue.line == 28
    for part in ("torch.nn.BCELoss", "output 'prediction'", "node 'relu1'", "[B, 64]", "target [B]"):
        assert part in issue.message, issue.message
    assert "[B, 1]" in issue.hint


def test_the_same_from_a_separate_trainer_file_names_that_file():
    with pytest.raises(SpecError) as info:
        preflight.check_spec_kinds(SEED000 / "graph.yaml", SEED000 / "trainer.yaml", deep=True)
    issue = info.value.issues[0]
    assert (issue.file, issue.path, issue.line) == (str(SEED000 / "trainer.yaml"), "trainer.loss", 7)
    assert "node 'relu1'" in issue.message and "[B, 64]" in issue.message


def test_a_loss_that_fits_its_output_passes(tmp_path):
    text = (SEED000 / "model.yaml").read_text(encoding="utf-8").replace("out_features: 64", "out_features: 1")
    (tmp_path / "m.yaml").write_text(text.replace("torch.nn.ReLU", "torch.nn.Sigmoid"), encoding="utf-8")
    assert load_spec(tmp_path / "m.yaml").checked.output_shapes == {"prediction": "[B, 1]"}


@pytest.mark.slow
def test_cli_validate_and_train_say_it_in_one_line(tmp_path):
    pima = ROOT / "src" / "specml" / "sample_data" / "pima_diabetes.csv"
    env = {"SPECML_HOME": str(tmp_path), "PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"}

    def specml(*args):
        return subprocess.run([sys.executable, "-m", "specml", *map(str, args)], capture_output=True, text=True,
                              env=env, timeout=300)

    checked = specml("validate", SEED000 / "model.yaml")
    assert checked.returncode == 1 and "node 'relu1'" in checked.stdout + checked.stderr
    assert specml("data", "load", pima, "--table", "pima").returncode == 0
    trained = specml("train", "-m", SEED000 / "graph.yaml", "-T", SEED000 / "trainer.yaml", "--table", "pima",
                     "--name", "seed000", "--target", "outcome")
    said = trained.stdout + trained.stderr
    assert trained.returncode == 1 and "Traceback" not in said, said
    assert "BCELoss" in said and "[B, 64]" in said


def test_a_loss_that_fails_while_training_is_a_training_error():
    # BCELoss wants probabilities; a Linear's raw scores outside [0, 1] fail only on real values
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(16, 3, generator=g) * 10, torch.ones(16, 1)
    torch.manual_seed(0)
    model = nn.Linear(3, 1)
    loader = DataLoader(TensorDataset(x, y), batch_size=8)
    with pytest.raises(TrainingError, match=r"the loss failed on .*\[8, 1\] float32.*between 0 and 1"):
        Trainer(model, loader, loader, device="cpu", verbose=False).train(
            1, torch.optim.SGD(model.parameters(), lr=0.1), nn.BCELoss())
