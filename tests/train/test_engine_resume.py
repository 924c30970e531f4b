"""Trainer.restore: a run stopped after any epoch and resumed ends bitwise identical to one that never stopped."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from specml.train.engine import EarlyStopping, TensorBatches, Trainer

torch.set_num_threads(1)


class Stop(Exception):
    pass


class StopAfter:
    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_epoch_end(self, trainer, epoch, logs, improved):
        if epoch == self.epoch:
            raise Stop


def data(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(200, 6, generator=g)
    y = (x[:, 0] - x[:, 1] + 0.3 * torch.randn(200, generator=g) > 0).float()
    return TensorBatches({"x": x[:160]}, y[:160], 16, shuffle=True, seed=5), TensorBatches({"x": x[160:]}, y[160:], 64)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 1))

    def forward(self, x):
        return {"logit": self.body(x)}


def build(tmp, opt_name, sched_name, callbacks=()):
    torch.manual_seed(11)
    model = Net()
    train, val = data()
    opt = {"adam": lambda p: torch.optim.Adam(p, lr=0.01), "sgd": lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9),
           "adamw": lambda p: torch.optim.AdamW(p, lr=0.01)}[opt_name](model.parameters())
    sched = {"step": lambda o: torch.optim.lr_scheduler.StepLR(o, 2, 0.5),
             "plateau": lambda o: torch.optim.lr_scheduler.ReduceLROnPlateau(o, patience=1),
             "none": lambda o: None}[sched_name](opt)
    trainer = Trainer(model, train, val, device="cpu", checkpoint_dir=tmp, output_key="logit", task="binary",
                      monitor="val_loss", early_stopping=EarlyStopping(3, monitor="val_loss"), verbose=False,
                      callbacks=list(callbacks), run_info={"spec": "x"})
    return trainer, opt, sched


@pytest.mark.parametrize("opt_name,sched_name,stop_at", [("adam", "step", 3), ("sgd", "plateau", 5),
                                                         ("adamw", "none", 1)])
def test_restore_continues_bitwise(tmp_path, opt_name, sched_name, stop_at):
    full, opt, sched = build(tmp_path / "full", opt_name, sched_name)
    history = full.train(8, opt, torch.nn.BCEWithLogitsLoss(), sched)

    cut, opt2, sched2 = build(tmp_path / "cut", opt_name, sched_name, [StopAfter(stop_at)])
    with pytest.raises(Stop):
        cut.train(8, opt2, torch.nn.BCEWithLogitsLoss(), sched2)
    # a new process would start from scratch: other RNG state, fresh objects
    torch.manual_seed(999)
    resumed, opt3, sched3 = build(tmp_path / "cut", opt_name, sched_name)
    state = resumed.restore(tmp_path / "cut" / "last.safetensors", opt3, sched3)
    assert state["epoch"] == stop_at and state["run"] == {"spec": "x"} and resumed.epoch == stop_at
    history2 = resumed.train(8, opt3, torch.nn.BCEWithLogitsLoss(), sched3)

    history.pop("epoch_time_s"), history2.pop("epoch_time_s")
    assert history2 == history  # every epoch's losses, metrics and lr, the resumed part included
    assert resumed.best.epoch == full.best.epoch and resumed.best.value == full.best.value
    for (k, a), (_, b) in zip(full.model.state_dict().items(), resumed.model.state_dict().items(), strict=True):
        assert torch.equal(a, b), k
    for k, v in full.best.state.items():
        assert torch.equal(v, resumed.best.state[k]), k
    assert opt3.state_dict()["param_groups"][0]["lr"] == opt.state_dict()["param_groups"][0]["lr"]
