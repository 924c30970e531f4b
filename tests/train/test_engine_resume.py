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
    """Interrupt the run once epoch ``epoch`` is committed (checkpoint written): as the next one starts."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_epoch_start(self, trainer, epoch, num_epochs, batches):
        if epoch == self.epoch + 1:
            raise Stop

    def on_train_end(self, trainer, history, best_epoch, best_value):
        if trainer.epoch == self.epoch:  # the run's last epoch (it stopped early): after its checkpoint
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


def build(tmp, opt_name, sched_name, callbacks=(), min_delta=0.0):
    torch.manual_seed(11)
    model = Net()
    train, val = data()
    opt = {"adam": lambda p: torch.optim.Adam(p, lr=0.01), "sgd": lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9),
           "adamw": lambda p: torch.optim.AdamW(p, lr=0.01)}[opt_name](model.parameters())
    sched = {"step": lambda o: torch.optim.lr_scheduler.StepLR(o, 2, 0.5),
             "plateau": lambda o: torch.optim.lr_scheduler.ReduceLROnPlateau(o, patience=1),
             "none": lambda o: None}[sched_name](opt)
    trainer = Trainer(model, train, val, device="cpu", checkpoint_dir=tmp, output_key="logit", task="binary",
                      monitor="val_loss", early_stopping=EarlyStopping(3, min_delta, monitor="val_loss"), verbose=False,
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


def assert_same_run(full, resumed, history, history2):
    history, history2 = dict(history), dict(history2)
    history.pop("epoch_time_s"), history2.pop("epoch_time_s")
    assert history2 == history
    assert resumed.best.epoch == full.best.epoch and resumed.best.value == full.best.value
    assert resumed.early_stopping.stopped_epoch == full.early_stopping.stopped_epoch
    for (k, a), (_, b) in zip(full.model.state_dict().items(), resumed.model.state_dict().items(), strict=True):
        assert torch.equal(a, b), k


def resume_after(tmp_path, cut_callbacks, min_delta=0.0, start_callbacks=()):
    """A full run, a run the callbacks interrupt, and that run resumed from its last checkpoint."""
    full, opt, sched = build(tmp_path / "full", "adam", "step", start_callbacks, min_delta)
    history = full.train(20, opt, torch.nn.BCEWithLogitsLoss(), sched)
    cut, opt2, sched2 = build(tmp_path / "cut", "adam", "step", cut_callbacks, min_delta)
    with pytest.raises(Stop):
        cut.train(20, opt2, torch.nn.BCEWithLogitsLoss(), sched2)
    torch.manual_seed(999)
    resumed, opt3, sched3 = build(tmp_path / "cut", "adam", "step", start_callbacks, min_delta)
    state = resumed.restore(tmp_path / "cut" / "last.safetensors", opt3, sched3)
    history2 = resumed.train(20, opt3, torch.nn.BCEWithLogitsLoss(), sched3)
    return full, history, resumed, history2, state


# with min_delta 0.02 this run improves at epochs 1-5 and 7, stops at 10 (patience 3): the early-stopping
# counters of every epoch matter, and the last checkpoints are those of a run that has stopped
@pytest.mark.parametrize("stop_at", range(1, 11))
def test_resume_after_any_epoch_keeps_the_early_stopping_counters(tmp_path, stop_at):
    full, history, resumed, history2, _ = resume_after(tmp_path, [StopAfter(stop_at)], min_delta=0.02)
    assert full.early_stopping.stopped_epoch == 10, "the setting this test relies on changed"
    assert_same_run(full, resumed, history, history2)


class StopInEpochEnd:
    """Interrupt the run between the facts of epoch ``epoch`` (on_epoch_end) and its checkpoint."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_epoch_end(self, trainer, epoch, logs, improved):
        if epoch == self.epoch:
            raise Stop


def test_an_epoch_interrupted_after_its_facts_is_trained_again(tmp_path):
    full, history, resumed, history2, state = resume_after(tmp_path, [StopInEpochEnd(4)])
    assert state["epoch"] == 3  # the checkpoint of epoch 4 was never written
    assert_same_run(full, resumed, history, history2)


class DrawsAtStart:
    """A callback that draws from the global RNGs (dropout's) as training starts."""

    def on_train_start(self, trainer, keys, num_epochs):
        torch.rand(3)


def test_rng_drawn_by_callbacks_at_train_start_does_not_shift_a_resumed_run(tmp_path):
    full, history, resumed, history2, _ = resume_after(tmp_path, [DrawsAtStart(), StopAfter(3)],
                                                       start_callbacks=[DrawsAtStart()])
    assert_same_run(full, resumed, history, history2)
