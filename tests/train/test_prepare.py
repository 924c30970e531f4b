"""specml.train.prepare: what a run is given before its first epoch (issue 18: double imbalance correction)."""

from __future__ import annotations

from pathlib import Path

import pyarrow.csv as pacsv
import pytest
import torch

from specml.spec import load_model_spec, load_trainer_spec
from specml.train.prepare import DOUBLE_CORRECTION, prepare

torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parents[2]
PIMA = ROOT / "src" / "specml" / "sample_data" / "pima_diabetes.csv"
MODEL = ROOT / "examples" / "pima_mlp" / "model.yaml"


def trainer(**config):
    return load_trainer_spec({"optimizer": {"type": "torch.optim.Adam", "lr": 0.01},
                              "config": {"epochs": 1, "batch_size": 32, "seed": 3, **config}})


@pytest.mark.parametrize("config, warned", [({"class_weights": "auto", "oversample": True}, True),
                                            ({"class_weights": "auto"}, False), ({"oversample": True}, False)])
def test_class_weights_with_oversampling_warns_of_double_correction(config, warned):
    p = prepare(load_model_spec(MODEL), trainer(**config), pacsv.read_csv(PIMA), None)
    assert (DOUBLE_CORRECTION in p.notes) is warned
    assert "class_weights" in DOUBLE_CORRECTION and "oversample" in DOUBLE_CORRECTION
