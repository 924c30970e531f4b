"""A tampered checkpoint is a CheckpointError naming what is wrong — never a traceback from deep inside torch."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from specml.train.checkpoint import (
    CheckpointError,
    check_training_state,
    load_checkpoint,
    read_checkpoint_state,
    save_checkpoint,
)

torch.set_num_threads(1)


def _fresh():
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    model(torch.randn(4, 3)).sum().backward()
    opt.step()
    return model, opt


def _rewrite(path, tensors=None, metadata=None):
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = dict(f.metadata())
    data = load_file(str(path))
    if tensors:
        tensors(data)
    if metadata:
        metadata(meta)
    save_file(data, str(path), metadata=meta)


def _state(meta, change):
    state = json.loads(meta["specml.state"])
    change(state)
    meta["specml.state"] = json.dumps(state)


@pytest.mark.parametrize("tamper, message", [
    (dict(metadata=lambda m: _state(m, lambda s: s.pop("epoch"))), r"state\.epoch is None"),
    (dict(metadata=lambda m: _state(m, lambda s: s.update(epoch="7"))), r"state\.epoch is '7'"),
    (dict(metadata=lambda m: _state(m, lambda s: s.update(history=[1]))), "history is not a map"),
    (dict(metadata=lambda m: m.update({"specml.optimizer": json.dumps({"state": {}, "param_groups": 5})})),
     "optimizer state does not fit"),
    (dict(tensors=lambda t: t.update({"rng.torch": torch.zeros(3, dtype=torch.uint8)})), "RNG state is broken"),
])
def test_a_tampered_checkpoint_is_a_clean_error(tmp_path, tamper, message):
    model, opt = _fresh()
    path = tmp_path / "last.safetensors"
    save_checkpoint(path, model=model, optimizer=opt, state={"epoch": 3, "global_step": 12, "history": {"a": [1.0]}})
    _rewrite(path, **tamper)
    model2, opt2 = _fresh()
    rng = torch.get_rng_state()
    with pytest.raises(CheckpointError, match=message):  # what the engine's restore does
        check_training_state(load_checkpoint(path, model=model2, optimizer=opt2), path)
    if "state." in message or "history" in message:
        with pytest.raises(CheckpointError, match=message):  # what a resume reads first
            check_training_state(read_checkpoint_state(path), path)
    assert torch.equal(torch.get_rng_state(), rng) or "RNG" in message
