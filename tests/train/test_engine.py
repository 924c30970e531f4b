"""specml.train.engine: the Trainer loop, TensorBatches, early stopping, alignment, seeding.

Real models and real data, no mocks: every test runs the engine and checks that a setting changes
what training does (weights, history, files, output). Callbacks and the recording optimizer below
are ordinary duck-typed objects / a torch.optim.SGD subclass, the same extension points a user has.
"""

from __future__ import annotations

import copy
import json
import math
import re

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from specml.train.engine import (
    EarlyStopping,
    Runtime,
    TensorBatches,
    Trainer,
    TrainingError,
    align,
    seed_everything,
)

torch.set_num_threads(1)


# ----------------------------------------------------------------------------------------------
# helpers: models, data, recorders


class TinySeq(nn.Module):
    """Embedding -> TransformerEncoderLayer(batch_first) -> Linear over the vocab: [B, L] -> [B, L, V]."""

    def __init__(self, vocab: int = 12, d: int = 32) -> None:
        super().__init__()
        self.emb = nn.Embedding(vocab, d, padding_idx=0)
        self.enc = nn.TransformerEncoderLayer(d, nhead=4, dim_feedforward=64, dropout=0.0, batch_first=True)
        self.out = nn.Linear(d, vocab)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.enc(self.emb(x)))


def _copy_task(n: int, length: int = 8, vocab: int = 12, seed: int = 0) -> TensorDataset:
    """Sequences of ids 1..vocab-1, right-padded with 0; the target is the sequence itself (0 = ignored)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(1, vocab, (n, length), generator=g)
    lengths = torch.randint(length // 2, length + 1, (n,), generator=g)
    x[torch.arange(length)[None, :] >= lengths[:, None]] = 0
    return TensorDataset(x, x.clone())


def _regression(n: int = 32, d: int = 5, seed: int = 0, scale: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    w = torch.randn(d, 1, generator=g)
    return x, (x @ w + 0.1 * torch.randn(n, 1, generator=g)) * scale


def _linear(d: int = 5, seed: int = 0) -> nn.Linear:
    torch.manual_seed(seed)
    return nn.Linear(d, 1)


def _scalar_model(w0: float = 0.0) -> nn.Linear:
    """y = w * x, one weight: its training path under SGD can be written down by hand."""
    m = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        m.weight.fill_(w0)
    return m


def _scalar_loaders(val_target: float, rows: int = 4):
    """Train on x=1 -> y=1 (one batch per epoch), validate on x=1 -> y=val_target."""
    ones = torch.ones(rows, 1)
    train = DataLoader(TensorDataset(ones, ones.clone()), batch_size=rows)
    val = DataLoader(TensorDataset(ones, torch.full((rows, 1), val_target)), batch_size=rows)
    return train, val


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _same_state(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


class EpochRecorder:
    """A duck-typed callback: the weights and logs at the end of every epoch, and the batch hooks seen."""

    def __init__(self) -> None:
        self.states: dict[int, dict[str, torch.Tensor]] = {}
        self.logs: dict[int, dict] = {}
        self.batches: list[tuple[int, int, float]] = []
        self.exceptions: list[BaseException] = []

    def on_epoch_end(self, trainer, epoch, logs, improved):
        self.states[epoch] = _state(trainer.model)
        self.logs[epoch] = dict(logs)

    def on_batches(self, trainer, epoch, batch, loss_sum):
        self.batches.append((epoch, batch, float(loss_sum)))

    def on_exception(self, trainer, error):
        self.exceptions.append(error)


class RecordingSGD(torch.optim.SGD):
    """Plain SGD that records, at every step, the total gradient norm and the largest gradient element."""

    def __init__(self, params, lr: float) -> None:
        super().__init__(params, lr=lr)
        self.norms: list[float] = []
        self.max_abs: list[float] = []

    @torch.no_grad()
    def step(self, closure=None):
        grads = [p.grad for group in self.param_groups for p in group["params"] if p.grad is not None]
        self.norms.append(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads])).item())
        self.max_abs.append(max(g.abs().max().item() for g in grads))
        return super().step(closure)


class NoLen:
    """An iterable of batches without ``__len__`` (a generator-like loader)."""

    def __init__(self, loader) -> None:
        self.loader = loader

    def __iter__(self):
        yield from self.loader


class PoisonFrom:
    """A loader whose inputs become infinite from epoch ``bad`` on (the trainer calls ``set_epoch``)."""

    def __init__(self, loader, bad: int) -> None:
        self.loader, self.bad, self.epoch = loader, bad, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        for x, y in self.loader:
            yield (x * math.inf if self.epoch >= self.bad else x), y


def _trainer(model, train, val=None, **kw) -> Trainer:
    kw.setdefault("device", "cpu")
    kw.setdefault("verbose", False)
    return Trainer(model, train, val, **kw)


# ----------------------------------------------------------------------------------------------
# seed 002's API on a token-sequence model


def test_seed002_api_trains_a_sequence_model_and_writes_checkpoints(tmp_path):
    torch.manual_seed(0)
    model = TinySeq()
    train_loader = DataLoader(_copy_task(256, seed=1), batch_size=32, shuffle=True)
    val_loader = DataLoader(_copy_task(64, seed=2), batch_size=32)
    criterion = nn.CrossEntropyLoss(ignore_index=0)

    def val_loss() -> float:
        model.eval()
        with torch.no_grad():
            losses = [criterion(*align(model(x), y)).item() for x, y in val_loader]
        return sum(losses) / len(losses)

    before = val_loss()
    trainer = Trainer(model, train_loader, val_loader, device="cpu", checkpoint_dir=tmp_path, log_interval=3,
                      verbose=False)
    history = trainer.train(num_epochs=3, optimizer=torch.optim.Adam(model.parameters(), lr=3e-3),
                            criterion=criterion, save_every=2, save_best=True)

    assert history is trainer.history
    for key in ("train_loss", "val_loss", "lr"):
        assert len(history[key]) == 3, key
    assert history["train_loss"][-1] < history["train_loss"][0]
    assert history["val_loss"][-1] < 0.5 * before  # the copy task is learned, not just nudged
    assert val_loss() == pytest.approx(history["val_loss"][-1], rel=1e-4)

    files = sorted(p.name for p in tmp_path.iterdir())
    assert "epoch-0002.safetensors" in files
    assert "epoch-0001.safetensors" not in files and "epoch-0003.safetensors" not in files
    assert {"best.safetensors", "last.safetensors"} <= set(files)

    best = load_file(tmp_path / "best.safetensors")
    assert _same_state(best, trainer.best.state)
    last = {k[len("model."):]: v for k, v in load_file(tmp_path / "last.safetensors").items()
            if k.startswith("model.")}
    assert _same_state(last, _state(model))


def test_save_best_false_writes_no_best_file_and_no_dir_writes_nothing(tmp_path):
    x, y = _regression()
    loader = DataLoader(TensorDataset(x, y), batch_size=8)
    model = _linear()
    _trainer(model, loader, loader, checkpoint_dir=tmp_path / "a").train(
        2, torch.optim.SGD(model.parameters(), lr=0.05), nn.MSELoss(), save_best=False)
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["last.safetensors"]

    model = _linear()
    _trainer(model, loader, loader, checkpoint_dir=None).train(
        2, torch.optim.SGD(model.parameters(), lr=0.05), nn.MSELoss(), save_every=1)
    assert list(tmp_path.iterdir()) == [tmp_path / "a"]


def test_save_best_only_keeps_epoch_files_of_improving_epochs_only(tmp_path):
    # val target -1 while training moves w from 0 towards +1: val loss (w + 1)^2 rises every epoch
    train, val = _scalar_loaders(val_target=-1.0)
    for only, expected in ((True, ["epoch-0001.safetensors"]),
                           (False, ["epoch-0001.safetensors", "epoch-0002.safetensors", "epoch-0003.safetensors"])):
        out = tmp_path / str(only)
        model = _scalar_model()
        _trainer(model, train, val, checkpoint_dir=out).train(
            3, torch.optim.SGD(model.parameters(), lr=0.125), nn.MSELoss(), save_every=1, save_best_only=only)
        assert sorted(p.name for p in out.glob("epoch-*")) == expected


def test_output_key_picks_the_output_the_loss_reads():
    class TwoHeads(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(5, 1)

        def forward(self, x):
            out = self.lin(x)
            return {"aux": out.detach() * 0, "pred": out}

    x, y = _regression()
    loader = DataLoader(TensorDataset(x, y), batch_size=8)
    torch.manual_seed(0)
    model = TwoHeads()
    hist = _trainer(model, loader, loader, output_key="pred").train(
        5, torch.optim.SGD(model.parameters(), lr=0.05), nn.MSELoss())
    assert hist["train_loss"][-1] < hist["train_loss"][0]
    other = TwoHeads()
    with pytest.raises((TypeError, AttributeError)):  # without output_key the loss is handed the dict
        _trainer(other, loader, loader).train(1, torch.optim.SGD(other.parameters(), lr=0.05), nn.MSELoss())


def test_log_interval_sets_how_often_the_running_loss_is_reported():
    x, y = _regression(n=64)
    loader = DataLoader(TensorDataset(x, y), batch_size=8)  # 8 batches an epoch
    for interval, expected in ((3, [3, 6]), (2, [2, 4, 6, 8]), (10, [])):
        rec = EpochRecorder()
        model = _linear()
        _trainer(model, loader, log_interval=interval, monitor="train_loss", scheduler_monitor="train_loss",
                 callbacks=[rec]).train(2, torch.optim.SGD(model.parameters(), lr=0.01), nn.MSELoss())
        assert [b for e, b, _ in rec.batches if e == 1] == expected
        assert [b for e, b, _ in rec.batches if e == 2] == expected
        assert all(s > 0 for _, _, s in rec.batches)


# ----------------------------------------------------------------------------------------------
# TensorBatches


def _rows(n: int = 50) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    return {"x": torch.arange(n), "x2": torch.arange(n) * 2.0}, torch.arange(n) * 10


def _order(tb: TensorBatches) -> list[int]:
    return [int(v) for inputs, _ in tb for v in inputs["x"]]


def test_tensor_batches_shuffle_covers_every_row_once_and_keeps_rows_together():
    inputs, target = _rows(50)
    tb = TensorBatches(inputs, target, 8, shuffle=True, seed=3)
    batches = list(tb)
    assert len(batches) == len(tb) == 7
    assert [len(b["x"]) for b, _ in batches] == [8] * 6 + [2]
    seen = torch.cat([b["x"] for b, _ in batches])
    assert sorted(seen.tolist()) == list(range(50))
    assert seen.tolist() != list(range(50))  # it did shuffle
    for b, t in batches:  # inputs and target gathered with the same index
        assert torch.equal(t, b["x"] * 10) and torch.equal(b["x2"], b["x"] * 2.0)


def test_tensor_batches_order_depends_on_seed_and_epoch_only():
    inputs, target = _rows(50)
    a = TensorBatches(inputs, target, 8, shuffle=True, seed=3)
    b = TensorBatches(inputs, target, 8, shuffle=True, seed=3)
    a.set_epoch(1)
    b.set_epoch(1)
    first = _order(a)
    assert first == _order(b) == _order(a)  # same seed + epoch: same order, every time
    a.set_epoch(2)
    assert _order(a) != first
    assert sorted(_order(a)) == list(range(50))
    c = TensorBatches(inputs, target, 8, shuffle=True, seed=4)
    c.set_epoch(1)
    assert _order(c) != first


def test_tensor_batches_without_shuffle_are_contiguous_views_in_order():
    inputs, target = _rows(50)
    tb = TensorBatches(inputs, target, 8, shuffle=False)
    batches = list(tb)
    for i, (b, t) in enumerate(batches):
        sl = slice(8 * i, min(8 * i + 8, 50))
        assert torch.equal(b["x"], inputs["x"][sl]) and torch.equal(t, target[sl])
        assert b["x"].untyped_storage().data_ptr() == inputs["x"].untyped_storage().data_ptr()  # no copy
    tb.set_epoch(5)
    assert _order(tb) == list(range(50))


@pytest.mark.parametrize("shuffle", [False, True])
def test_tensor_batches_drop_last(shuffle):
    inputs, target = _rows(50)
    tb = TensorBatches(inputs, target, 8, shuffle=shuffle, drop_last=True, seed=1)
    sizes = [len(b["x"]) for b, _ in tb]
    assert sizes == [8] * 6 and len(tb) == 6
    assert len(set(_order(tb))) == 48
    keep = TensorBatches(inputs, target, 8, shuffle=shuffle, drop_last=False, seed=1)
    assert [len(b["x"]) for b, _ in keep] == [8] * 6 + [2] and len(keep) == 7


@pytest.mark.parametrize("shuffle", [False, True])
def test_tensor_batches_ranks_are_disjoint_and_cover_all_rows(shuffle):
    inputs, target = _rows(51)
    ranks = [TensorBatches(inputs, target, 8, shuffle=shuffle, seed=7, rank=r, world_size=2) for r in (0, 1)]
    for tb in ranks:
        tb.set_epoch(3)
    orders = [_order(tb) for tb in ranks]
    assert len(orders[0]) == 26 and len(orders[1]) == 25
    assert not set(orders[0]) & set(orders[1])
    assert sorted(orders[0] + orders[1]) == list(range(51))
    assert [len(tb) for tb in ranks] == [7, 7]  # batch_size is the global batch: 7 global batches of 51 rows
    for tb in ranks:
        for b, t in tb:
            assert torch.equal(t, b["x"] * 10)


def test_tensor_batches_leave_the_global_rng_alone():
    inputs, target = _rows(50)
    torch.manual_seed(123)
    before = torch.get_rng_state()
    for seed, world, rank in ((0, 1, 0), (5, 2, 1)):
        tb = TensorBatches(inputs, target, 8, shuffle=True, seed=seed, rank=rank, world_size=world)
        for epoch in (1, 2):
            tb.set_epoch(epoch)
            list(tb)
    assert torch.equal(torch.get_rng_state(), before)


def test_tensor_batches_without_target_yield_none():
    tb = TensorBatches({"x": torch.arange(10)}, None, 4, shuffle=True)
    assert [t for _, t in tb] == [None, None, None]


# ----------------------------------------------------------------------------------------------
# early stopping, monitor and mode
#
# Scalar model y = w * x, w0 = 0, trained on x = 1 -> y = 1 with MSE, SGD lr 0.125, one batch an epoch:
# w_t = 1 - 0.75^t = 0.25, 0.4375, 0.578, 0.684, 0.763, 0.822, ...  (train loss falls every epoch).
# Validated on y = 0.5: val loss (w_t - 0.5)^2 = 0.0625, 0.0039, 0.0061, 0.0339, 0.0690, ... (best: epoch 2).


@pytest.mark.parametrize(("patience", "min_delta", "best_epoch", "stopped"), [
    (2, 0.0, 2, 4),
    (3, 0.0, 2, 5),
    (2, 0.1, 1, 3),  # epoch 2 improves by 0.0586 < min_delta: not an improvement
])
def test_early_stopping_stops_at_best_plus_patience_and_restores_the_best_weights(
        tmp_path, patience, min_delta, best_epoch, stopped):
    train, val = _scalar_loaders(val_target=0.5)
    model = _scalar_model()
    rec = EpochRecorder()
    es = EarlyStopping(patience=patience, min_delta=min_delta)
    trainer = _trainer(model, train, val, early_stopping=es, callbacks=[rec], checkpoint_dir=tmp_path)
    history = trainer.train(10, torch.optim.SGD(model.parameters(), lr=0.125), nn.MSELoss())

    assert es.stopped_epoch == stopped
    assert len(history["val_loss"]) == len(history["train_loss"]) == stopped
    assert trainer.best.epoch == best_epoch
    assert trainer.best.value == pytest.approx(history["val_loss"][best_epoch - 1])
    assert model.weight.item() == pytest.approx(1 - 0.75 ** best_epoch, abs=1e-6)
    assert _same_state(_state(model), trainer.best.state)
    assert _same_state(_state(model), rec.states[best_epoch])
    assert not _same_state(_state(model), rec.states[stopped])  # not the last epoch's weights
    assert _same_state(load_file(tmp_path / "best.safetensors"), trainer.best.state)


def test_without_early_stopping_all_epochs_run_and_the_last_weights_stay():
    train, val = _scalar_loaders(val_target=0.5)
    model = _scalar_model()
    trainer = _trainer(model, train, val)
    history = trainer.train(6, torch.optim.SGD(model.parameters(), lr=0.125), nn.MSELoss())
    assert len(history["val_loss"]) == 6
    assert trainer.best.epoch == 2
    assert model.weight.item() == pytest.approx(1 - 0.75 ** 6, abs=1e-6)


def test_early_stopping_watches_its_own_monitor():
    # train_loss improves every epoch, val_loss only until epoch 2: watching train_loss never stops
    train, val = _scalar_loaders(val_target=0.5)
    model = _scalar_model()
    es = EarlyStopping(patience=2, monitor="train_loss")
    history = _trainer(model, train, val, early_stopping=es).train(
        6, torch.optim.SGD(model.parameters(), lr=0.125), nn.MSELoss())
    assert es.stopped_epoch is None
    assert len(history["train_loss"]) == 6


@pytest.mark.parametrize(("mode", "best_epoch"), [("min", 1), ("max", 4)])
def test_mode_decides_which_epoch_is_best(mode, best_epoch):
    train, val = _scalar_loaders(val_target=-1.0)  # val loss (w + 1)^2 rises every epoch
    model = _scalar_model()
    trainer = _trainer(model, train, val, mode=mode)
    history = trainer.train(4, torch.optim.SGD(model.parameters(), lr=0.125), nn.MSELoss())
    assert history["val_loss"] == sorted(history["val_loss"])
    assert trainer.best.epoch == best_epoch


def test_task_metrics_are_reported_and_can_be_monitored():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(96, 4, generator=g)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0).long()  # 3 classes
    loader = DataLoader(TensorDataset(x, y), batch_size=16)
    torch.manual_seed(0)
    model = nn.Linear(4, 3)
    trainer = _trainer(model, loader, loader, task="multiclass", monitor="val_accuracy", mode="max")
    history = trainer.train(4, torch.optim.Adam(model.parameters(), lr=0.05), nn.CrossEntropyLoss())
    for key in ("train_loss", "val_loss", "train_accuracy", "val_accuracy"):
        assert len(history[key]) == 4, key
    acc = history["val_accuracy"]
    assert all(0.0 <= a <= 1.0 for a in acc) and acc[-1] > acc[0]
    model.eval()
    with torch.no_grad():
        assert (model(x).argmax(1) == y).float().mean().item() == pytest.approx(acc[-1])
    assert trainer.best.epoch == acc.index(max(acc)) + 1


# ----------------------------------------------------------------------------------------------
# gradient accumulation and clipping


@pytest.mark.parametrize("feeder", ["DataLoader", "TensorBatches"])
def test_accumulating_four_batches_of_eight_equals_one_batch_of_thirty_two(feeder):
    x, y = _regression(n=32)
    base = _linear()

    def run(batch_size: int, accum: int) -> tuple[dict, Trainer]:
        model = copy.deepcopy(base)
        if feeder == "DataLoader":
            loader = DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=False)
        else:  # nn.Linear.forward(input): dict inputs are passed as keyword arguments
            loader = TensorBatches({"input": x}, y, batch_size, shuffle=False)
        trainer = _trainer(model, loader, accumulate_grad_batches=accum, monitor="train_loss",
                           scheduler_monitor="train_loss")
        trainer.train(1, torch.optim.SGD(model.parameters(), lr=0.1), nn.MSELoss())
        return _state(model), trainer

    accumulated, t_acc = run(8, 4)
    whole, t_whole = run(32, 1)
    stepwise, t_step = run(8, 1)
    assert t_acc.global_step == t_whole.global_step == 1
    assert t_step.global_step == 4
    for k in whole:
        assert torch.allclose(accumulated[k], whole[k], atol=1e-6), k
    assert not all(torch.allclose(stepwise[k], whole[k], atol=1e-6) for k in whole)  # the control differs


@pytest.mark.parametrize("wrap", [lambda dl: dl, NoLen], ids=["len", "no-len"])
def test_accumulation_steps_the_leftover_batches_at_the_end_of_an_epoch(wrap):
    x, y = _regression(n=40)
    loader = wrap(DataLoader(TensorDataset(x, y), batch_size=8))  # 5 batches: 4 accumulated + 1 left over
    model = _linear()
    opt = RecordingSGD(model.parameters(), lr=0.05)
    trainer = _trainer(model, loader, accumulate_grad_batches=4, monitor="train_loss",
                       scheduler_monitor="train_loss")
    trainer.train(2, opt, nn.MSELoss())
    assert trainer.global_step == 4 and len(opt.norms) == 4


def test_gradient_clip_norm_bounds_the_total_norm_at_each_step():
    x, y = _regression(n=64, scale=50.0)
    loader = DataLoader(TensorDataset(x, y), batch_size=8)
    norms = {}
    for clip in (None, 0.5):
        model = _linear()
        opt = RecordingSGD(model.parameters(), lr=1e-3)
        _trainer(model, loader, gradient_clip_norm=clip, accumulate_grad_batches=2, monitor="train_loss",
                 scheduler_monitor="train_loss").train(2, opt, nn.MSELoss())
        assert len(opt.norms) == 8
        norms[clip] = opt.norms
    assert max(norms[None]) > 5.0  # the control: unclipped gradients are large
    assert max(norms[0.5]) <= 0.5 * (1 + 1e-5)
    assert min(norms[0.5]) > 0.45  # clipped to the bound, not zeroed


def test_gradient_clip_val_bounds_every_gradient_element():
    x, y = _regression(n=64, scale=50.0)
    loader = DataLoader(TensorDataset(x, y), batch_size=8)
    biggest = {}
    for clip in (None, 0.01):
        model = _linear()
        opt = RecordingSGD(model.parameters(), lr=1e-3)
        _trainer(model, loader, gradient_clip_val=clip, monitor="train_loss",
                 scheduler_monitor="train_loss").train(2, opt, nn.MSELoss())
        biggest[clip] = max(opt.max_abs)
    assert biggest[None] > 1.0
    assert biggest[0.01] <= 0.01 + 1e-7
    assert biggest[0.01] == pytest.approx(0.01)


# ----------------------------------------------------------------------------------------------
# learning-rate schedulers


def test_step_lr_changes_the_recorded_lr_at_the_right_epochs():
    x, y = _regression()
    loader = DataLoader(TensorDataset(x, y), batch_size=8)
    model = _linear()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.1)
    history = _trainer(model, loader, loader).train(5, opt, nn.MSELoss(), lr_scheduler=sched)
    assert history["lr"] == pytest.approx([0.1, 0.1, 0.01, 0.01, 0.001])
    assert sched.last_epoch == 5


@pytest.mark.parametrize(("monitor", "factors"), [("train_loss", [1, 1, 1, 1]), ("val_loss", [1, 1, 0.5, 0.25])])
def test_reduce_lr_on_plateau_watches_the_scheduler_monitor(monitor, factors):
    # train loss falls every epoch; val loss (target -1) rises every epoch
    train, val = _scalar_loaders(val_target=-1.0)
    model = _scalar_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.125)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="min", factor=0.5, patience=0)
    history = _trainer(model, train, val, scheduler_monitor=monitor).train(4, opt, nn.MSELoss(), lr_scheduler=sched)
    assert history["lr"] == pytest.approx([0.125 * f for f in factors])


def test_scheduler_monitor_must_be_reported():
    train, val = _scalar_loaders(val_target=0.5)
    model = _scalar_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.125)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt)
    with pytest.raises(TrainingError, match="val_auc"):
        _trainer(model, train, val, scheduler_monitor="val_auc").train(2, opt, nn.MSELoss(), lr_scheduler=sched)
    assert model.weight.item() == 0.0


@pytest.mark.parametrize(("interval", "steps"), [("step", 8), ("epoch", 2)])
def test_scheduler_interval(interval, steps):
    x, y = _regression(n=64)
    loader = DataLoader(TensorDataset(x, y), batch_size=8)  # 8 batches, 2 accumulated: 4 steps an epoch
    model = _linear()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    trainer = _trainer(model, loader, loader, accumulate_grad_batches=2, scheduler_interval=interval)
    trainer.train(2, opt, nn.MSELoss(), lr_scheduler=sched)
    assert trainer.global_step == 8
    assert sched.last_epoch == steps
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1 * 0.5 ** steps)


# ----------------------------------------------------------------------------------------------
# monitors are checked before the first step


def test_unreported_monitor_fails_before_any_training(tmp_path):
    train, val = _scalar_loaders(val_target=0.5)
    model = _scalar_model(0.3)
    with pytest.raises(TrainingError) as err:
        _trainer(model, train, val, monitor="val_accuracy", checkpoint_dir=tmp_path).train(
            3, torch.optim.SGD(model.parameters(), lr=0.125), nn.MSELoss())
    msg = str(err.value)
    assert "val_accuracy" in msg and "train_loss" in msg and "val_loss" in msg
    assert model.weight.item() == pytest.approx(0.3)
    assert list(tmp_path.iterdir()) == []


def test_val_monitor_without_a_validation_split_fails_before_any_training():
    train, _ = _scalar_loaders(val_target=0.5)
    model = _scalar_model(0.3)
    trainer = _trainer(model, train, None)
    with pytest.raises(TrainingError, match="no validation split"):
        trainer.train(3, torch.optim.SGD(model.parameters(), lr=0.125), nn.MSELoss())
    assert model.weight.item() == pytest.approx(0.3)
    assert trainer.history == {} and trainer.global_step == 0


def test_unreported_early_stopping_monitor_fails_before_any_training():
    train, val = _scalar_loaders(val_target=0.5)
    model = _scalar_model(0.3)
    with pytest.raises(TrainingError, match="val_f1"):
        _trainer(model, train, val, early_stopping=EarlyStopping(2, monitor="val_f1")).train(
            3, torch.optim.SGD(model.parameters(), lr=0.125), nn.MSELoss())
    assert model.weight.item() == pytest.approx(0.3)


def test_metrics_that_do_not_fit_the_task_fail_before_any_training():
    train, val = _scalar_loaders(val_target=0.5)
    model = _scalar_model(0.3)
    with pytest.raises(TrainingError, match="accuracy"):
        _trainer(model, train, val, task="regression", metrics=["accuracy"]).train(
            3, torch.optim.SGD(model.parameters(), lr=0.125), nn.MSELoss())
    assert model.weight.item() == pytest.approx(0.3)


def test_training_without_validation_needs_only_a_train_monitor():
    # no scheduler at all: scheduler_monitor (default val_loss) watches nothing and must not block the run
    train, _ = _scalar_loaders(val_target=0.5)
    model = _scalar_model()
    history = _trainer(model, train, None, monitor="train_loss").train(
        3, torch.optim.SGD(model.parameters(), lr=0.125), nn.MSELoss())
    assert len(history["train_loss"]) == 3 and "val_loss" not in history


# ----------------------------------------------------------------------------------------------
# divergence


def test_a_blown_up_loss_is_a_training_error():
    x, y = _regression(n=64)
    loader = DataLoader(TensorDataset(x, y), batch_size=8)
    model = _linear()
    rec = EpochRecorder()
    with pytest.raises(TrainingError) as err:
        _trainer(model, loader, loader, callbacks=[rec]).train(
            5, torch.optim.SGD(model.parameters(), lr=1e10), nn.MSELoss())
    msg = str(err.value)
    assert re.search(r"nan|infinite|inf\b", msg, re.I)
    assert "last good checkpoint" not in msg  # no checkpoint_dir: none to point to
    assert rec.exceptions and rec.exceptions[0] is err.value


def test_a_non_finite_validation_loss_is_a_training_error(tmp_path):
    x, y = _regression(n=32)
    train = DataLoader(TensorDataset(x, y), batch_size=8)
    val = DataLoader(TensorDataset(x * math.inf, y), batch_size=8)  # training is fine, validation is not
    model = _linear()
    trainer = _trainer(model, train, val, checkpoint_dir=tmp_path)
    with pytest.raises(TrainingError, match=r"val_loss is (nan|inf).*epoch 1"):
        trainer.train(3, torch.optim.SGD(model.parameters(), lr=0.01), nn.MSELoss())
    assert trainer.history == {}  # the bad epoch is not recorded
    assert not (tmp_path / "last.safetensors").exists() and not (tmp_path / "best.safetensors").exists()


@pytest.mark.parametrize(("log_interval", "steps_in_bad_epoch"), [(1, 1), (3, 3), (100, 4)])
def test_divergence_points_to_the_last_good_checkpoint(tmp_path, log_interval, steps_in_bad_epoch):
    x, y = _regression(n=32)
    loader = PoisonFrom(DataLoader(TensorDataset(x, y), batch_size=8), bad=2)  # 4 batches; epoch 2 is inf
    model = _linear()
    rec = EpochRecorder()
    trainer = _trainer(model, loader, DataLoader(TensorDataset(x, y), batch_size=8), checkpoint_dir=tmp_path,
                       log_interval=log_interval, callbacks=[rec])
    with pytest.raises(TrainingError) as err:
        trainer.train(3, torch.optim.SGD(model.parameters(), lr=0.01), nn.MSELoss())
    msg = str(err.value)
    last = tmp_path / "last.safetensors"
    assert re.search(r"nan|infinite", msg, re.I)
    assert "last good checkpoint" in msg and str(last) in msg
    # the divergence is found at the first log_interval boundary (or the epoch's end)
    assert trainer.global_step == 4 + steps_in_bad_epoch
    assert list(rec.states) == [1]

    tensors = load_file(last)
    assert all(torch.isfinite(t).all() for t in tensors.values() if t.is_floating_point())
    weights = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    assert _same_state(weights, rec.states[1])
    with safe_open(str(last), framework="pt") as f:
        assert json.loads(f.metadata()["specml.state"])["epoch"] == 1


def test_last_good_checkpoint_is_finite_when_only_the_last_step_overflows(tmp_path):
    # no validation: epoch 1's loss (1e30) is finite, but its one SGD step overflows the weight to inf;
    # epoch 2's loss is inf. The checkpoint the error points to must not hold the overflowed weight.
    x = torch.full((2, 1), 1e15)
    loader = DataLoader(TensorDataset(x, x.clone()), batch_size=2)
    model = _scalar_model()
    trainer = _trainer(model, loader, None, monitor="train_loss", scheduler_monitor="train_loss",
                       checkpoint_dir=tmp_path)
    with pytest.raises(TrainingError) as err:
        trainer.train(3, torch.optim.SGD(model.parameters(), lr=1e10), nn.MSELoss())
    last = tmp_path / "last.safetensors"
    if "last good checkpoint" in str(err.value):
        assert all(torch.isfinite(t).all() for t in load_file(last).values() if t.is_floating_point())
    if (tmp_path / "best.safetensors").exists():
        assert all(torch.isfinite(t).all() for t in load_file(tmp_path / "best.safetensors").values())


# ----------------------------------------------------------------------------------------------
# reproducibility


class DropoutNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 1))

    def forward(self, x):
        return self.net(x)


def _seeded_run(seed: int, batch_seed: int | None = None) -> dict[str, torch.Tensor]:
    x, y = _regression(n=48)
    seed_everything(seed)
    model = DropoutNet()
    batches = TensorBatches({"x": x}, y, 8, shuffle=True, seed=seed if batch_seed is None else batch_seed)
    _trainer(model, batches, monitor="train_loss", scheduler_monitor="train_loss").train(
        2, torch.optim.SGD(model.parameters(), lr=0.05), nn.MSELoss())
    return _state(model)


def test_same_seed_gives_identical_weights_and_another_seed_does_not():
    a, b = _seeded_run(11), _seeded_run(11)
    assert _same_state(a, b)
    assert not _same_state(a, _seeded_run(12))
    assert not _same_state(a, _seeded_run(11, batch_seed=99))  # the batch order alone changes the result


def test_seed_everything_seeds_python_numpy_and_torch():
    import random

    import numpy as np

    seed_everything(5)
    first = (random.random(), np.random.rand(), torch.rand(1).item())
    seed_everything(5)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == first
    seed_everything(6)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) != first


def test_tensor_batches_set_epoch_is_called_by_the_trainer():
    x, y = _regression(n=16)
    seen = []

    class Spy(TensorBatches):
        def set_epoch(self, epoch):
            seen.append(epoch)
            super().set_epoch(epoch)

    model = _linear()
    _trainer(model, Spy({"input": x}, y, 4, shuffle=True), monitor="train_loss", scheduler_monitor="train_loss").train(
        3, torch.optim.SGD(model.parameters(), lr=0.01), nn.MSELoss())
    assert seen == [1, 2, 3]


# ----------------------------------------------------------------------------------------------
# console output, ranks, devices


def test_verbose_prints_seed000_epoch_lines(capsys):
    x, y = _regression()
    loader = DataLoader(TensorDataset(x, y), batch_size=8)
    model = _linear()
    Trainer(model, loader, loader, device="cpu", verbose=True).train(
        3, torch.optim.SGD(model.parameters(), lr=0.05), nn.MSELoss())
    out = capsys.readouterr().out
    for epoch in (1, 2, 3):
        assert f"Epoch {epoch}/3:" in out
    assert out.count("Train Loss:") == 3 and out.count("Val Loss:") == 3
    assert re.search(r"Train Loss:\s*\d+\.\d{4}", out) and re.search(r"Val Loss:\s*\d+\.\d{4}", out)


def test_verbose_false_prints_nothing(capsys):
    x, y = _regression()
    loader = DataLoader(TensorDataset(x, y), batch_size=8)
    model = _linear()
    Trainer(model, loader, loader, device="cpu", verbose=False, early_stopping=EarlyStopping(1)).train(
        3, torch.optim.SGD(model.parameters(), lr=0.05), nn.MSELoss())
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_only_rank_zero_prints_and_writes(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    rt = Runtime.resolve("cpu")
    assert (rt.rank, rt.world_size, rt.is_main) == (1, 2, False)
    x, y = _regression()
    loader = DataLoader(TensorDataset(x, y), batch_size=8)
    model = _linear()
    history = Trainer(model, loader, loader, device="cpu", verbose=True, checkpoint_dir=tmp_path).train(
        2, torch.optim.SGD(model.parameters(), lr=0.05), nn.MSELoss(), save_every=1)
    assert len(history["train_loss"]) == 2  # it trains
    assert list(tmp_path.iterdir()) == []
    assert capsys.readouterr().out == ""


def test_runtime_resolve():
    assert Runtime.resolve("cpu").device == torch.device("cpu")
    assert Runtime.resolve(torch.device("cpu")).device.type == "cpu"
    rt = Runtime.resolve("auto")
    assert rt.is_main and rt.world_size == 1
    if not torch.cuda.is_available():
        assert rt.device.type in ("cpu", "mps")
        with pytest.raises(TrainingError, match="cuda"):
            Runtime.resolve("cuda")
        with pytest.raises(TrainingError, match="cuda"):
            Trainer(_linear(), device="cuda")


def test_empty_training_data_is_an_error():
    model = _linear()
    empty = DataLoader(TensorDataset(torch.zeros(0, 5), torch.zeros(0, 1)), batch_size=4)
    with pytest.raises(TrainingError, match="no batches"):
        _trainer(model, empty, monitor="train_loss", scheduler_monitor="train_loss").train(
            1, torch.optim.SGD(model.parameters(), lr=0.1), nn.MSELoss())
    with pytest.raises(TrainingError, match="train_loader"):
        _trainer(model, None).train(1, torch.optim.SGD(model.parameters(), lr=0.1), nn.MSELoss())


# ----------------------------------------------------------------------------------------------
# align


def test_align_flattens_sequence_scores_against_integer_ids():
    out, tgt = align(torch.randn(2, 7, 11), torch.randint(0, 11, (2, 7)))
    assert out.shape == (14, 11) and tgt.shape == (14,)
    out, tgt = align(torch.randn(2, 3, 4, 5), torch.randint(0, 5, (2, 3, 4)))
    assert out.shape == (24, 5) and tgt.shape == (24,)


def test_align_keeps_rows_paired_when_flattening():
    scores = torch.arange(2 * 3 * 4, dtype=torch.float32).view(2, 3, 4)
    ids = torch.tensor([[0, 1, 2], [3, 0, 1]])
    out, tgt = align(scores, ids)
    assert torch.equal(out[4], scores[1, 1]) and tgt[4] == ids[1, 1]


def test_align_views_a_float_target_as_the_output():
    out, tgt = align(torch.randn(6, 1), torch.randn(6))
    assert tgt.shape == (6, 1)
    out, tgt = align(torch.randn(6), torch.randn(6, 1))
    assert tgt.shape == (6,)


@pytest.mark.parametrize(("out_shape", "target"), [
    ((6, 4), torch.randint(0, 4, (6,))),          # ordinary [B, C] vs [B]
    ((6, 3), torch.randn(6, 3)),                  # same shape
    ((6, 2), torch.randn(6)),                     # float, different numel: left for the loss to reject
    ((2, 7, 11), torch.randint(0, 11, (2, 6))),   # sequence lengths differ: not flattened
])
def test_align_leaves_other_pairs_alone(out_shape, target):
    output = torch.randn(*out_shape)
    out, tgt = align(output, target)
    assert out is output and tgt is target


def test_align_feeds_cross_entropy_on_sequences():
    scores = torch.randn(3, 5, 7)
    ids = torch.randint(1, 7, (3, 5))
    ids[:, -1] = 0
    loss = nn.CrossEntropyLoss(ignore_index=0)(*align(scores, ids))
    expected = nn.functional.cross_entropy(scores.transpose(1, 2), ids, ignore_index=0)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
