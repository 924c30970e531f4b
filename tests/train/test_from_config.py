"""Trainer.from_config: every loop setting of a trainer spec reaches the engine and changes what training does.

Specs are loaded through the public loader (torch checks on); models and data are real and tiny
(one weight trained on x=1 -> y=1, whose SGD path can be written down by hand), no mocks.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from specml.spec import SpecError, TrainerConfig, load_trainer_spec
from specml.spec.trainer import SchedulerSpec
from specml.train.engine import RUNTIME_KEYWORDS, EarlyStopping, Trainer, TrainingError

torch.set_num_threads(1)


def spec_of(config: dict | None = None, optimizer: dict | None = None, scheduler: dict | None = None, **top: Any):
    raw = {"optimizer": optimizer or {"type": "SGD", "lr": 0.125},
           "config": {"epochs": 4, "batch_size": 4, "device": "cpu", "verbose": False, **(config or {})}, **top}
    if scheduler is not None:
        raw["scheduler"] = scheduler
    return load_trainer_spec(copy.deepcopy(raw))


def scalar_model(w0: float = 0.0) -> nn.Linear:
    """y = w * x, one weight."""
    m = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        m.weight.fill_(w0)
    return m


def scalar_loaders(val_target: float = 0.5, rows: int = 4, batch: int | None = None):
    """Train on x=1 -> y=1 (one batch per epoch unless ``batch``), validate on x=1 -> y=val_target.

    Under SGD(lr=0.125) on MSE, w_t = 1 - 0.75^t; the val loss (w_t - 0.5)^2 is 0.0625, 0.0039, 0.0061,
    0.0339, ... (best: epoch 2, improving by 0.0586 on epoch 1).
    """
    ones = torch.ones(rows, 1)
    train = DataLoader(TensorDataset(ones, ones.clone()), batch_size=batch or rows)
    val = DataLoader(TensorDataset(ones, torch.full((rows, 1), val_target)), batch_size=rows)
    return train, val


class Batches:
    """A callback recording the batch hooks, and the learning rate after each reported batch."""

    def __init__(self) -> None:
        self.seen: list[tuple[int, int]] = []
        self.lrs: list[float] = []

    def on_batches(self, trainer, epoch, batch, loss_sum):
        self.seen.append((epoch, batch))
        self.lrs.append(trainer.optimizer.param_groups[0]["lr"])


# ----------------------------------------------------------------------------------------------
# one set of defaults


ENGINE_FROM_CONFIG = {  # engine attribute -> config field
    "device": "device", "log_interval": "log_every", "gradient_clip_val": "gradient_clip_val",
    "gradient_clip_norm": "gradient_clip_norm", "accumulate_grad_batches": "accumulate_grad_batches",
    "pin_memory": "pin_memory", "mixed_precision": "mixed_precision", "checkpoint_every": "checkpoint_every",
    "save_best_only": "save_best_only", "verbose": "verbose", "monitor": "early_stopping_monitor",
    "mode": "early_stopping_mode",
}


@pytest.mark.parametrize(("attr", "field"), ENGINE_FROM_CONFIG.items())
def test_engine_defaults_are_the_trainer_spec_defaults(attr, field):
    assert Trainer.__dataclass_fields__[attr].default == TrainerConfig.model_fields[field].default


def test_early_stopping_and_scheduler_defaults_are_the_spec_defaults():
    assert EarlyStopping(3).min_delta == TrainerConfig.model_fields["early_stopping_min_delta"].default == 0.001
    assert EarlyStopping(3).monitor == TrainerConfig.model_fields["early_stopping_monitor"].default
    assert EarlyStopping(3).mode == TrainerConfig.model_fields["early_stopping_mode"].default
    trainer = Trainer(scalar_model(), device="cpu", verbose=False)
    assert trainer.scheduler_interval == SchedulerSpec.model_fields["interval"].default
    assert trainer.scheduler_frequency == SchedulerSpec.model_fields["frequency"].default


def test_a_minimal_spec_gives_the_plain_trainer_settings():
    train, val = scalar_loaders()
    plain = Trainer(scalar_model(), train, val, device="cpu", verbose=False)
    built = Trainer.from_config(spec_of({"device": "auto"}), scalar_model(), train, val, verbose=False)
    for attr in [*ENGINE_FROM_CONFIG, "scheduler_interval", "scheduler_frequency", "scheduler_monitor"]:
        if attr != "device":
            assert getattr(built, attr) == getattr(plain, attr), attr
    assert built.early_stopping is None and built.epochs == 4


# ----------------------------------------------------------------------------------------------
# each setting reaches the engine


@pytest.mark.parametrize(("config", "attr", "value"), [
    ({"log_every": 3}, "log_interval", 3),
    ({"gradient_clip_val": 0.5}, "gradient_clip_val", 0.5),
    ({"gradient_clip_norm": 0.25}, "gradient_clip_norm", 0.25),
    ({"accumulate_grad_batches": 2}, "accumulate_grad_batches", 2),
    ({"pin_memory": True}, "pin_memory", True),
    ({"mixed_precision": True}, "mixed_precision", True),
    ({"checkpoint_every": 2}, "checkpoint_every", 2),
    ({"save_best_only": True}, "save_best_only", True),
    ({"epochs": 7}, "epochs", 7),
    ({"early_stopping_monitor": "val_accuracy", "early_stopping_mode": "min"}, "mode", "min"),
    ({"early_stopping_monitor": "train_loss"}, "monitor", "train_loss"),
])
def test_each_config_setting_reaches_the_engine(config, attr, value):
    train, val = scalar_loaders()
    trainer = Trainer.from_config(spec_of(config), scalar_model(), train, val)
    assert getattr(trainer, attr) == value


def test_early_stopping_settings_reach_the_engine():
    train, val = scalar_loaders()
    trainer = Trainer.from_config(spec_of({"early_stopping_patience": 3, "early_stopping_min_delta": 0.01,
                                           "early_stopping_monitor": "train_loss", "early_stopping_mode": "max"}),
                                  scalar_model(), train, val)
    es = trainer.early_stopping
    assert (es.patience, es.min_delta, es.monitor, es.mode) == (3, 0.01, "train_loss", "max")
    assert (trainer.monitor, trainer.mode) == ("train_loss", "max")


def test_unset_mode_follows_the_monitor_and_its_metric_is_reported():
    train, val = scalar_loaders()
    trainer = Trainer.from_config(spec_of({"early_stopping_patience": 2, "early_stopping_monitor": "val_f1"}),
                                  scalar_model(), train, val, task="binary")
    assert trainer.mode == "max" and trainer.early_stopping.mode == "max"
    assert trainer.metrics == ["accuracy", "auc", "f1"]  # the defaults, plus what the monitor watches


def test_spec_metrics_are_the_default_and_a_keyword_wins():
    train, val = scalar_loaders()
    spec = spec_of({"metrics": ["mae"]})
    assert Trainer.from_config(spec, scalar_model(), train, val, task="regression").metrics == ["mae"]
    assert Trainer.from_config(spec, scalar_model(), train, val, task="regression", metrics=["r2"]).metrics == ["r2"]


def test_without_validation_rows_the_best_epoch_watches_the_training_loss():
    train, _ = scalar_loaders()
    trainer = Trainer.from_config(spec_of(scheduler={"type": "ReduceLROnPlateau"}), scalar_model(), train, None)
    assert trainer.monitor == "train_loss" and trainer.scheduler_monitor == "train_loss"


def test_scheduler_settings_reach_the_engine():
    train, val = scalar_loaders()
    trainer = Trainer.from_config(
        spec_of(scheduler={"type": "StepLR", "params": {"step_size": 1}, "interval": "step", "frequency": 3}),
        scalar_model(), train, val)
    assert (trainer.scheduler_interval, trainer.scheduler_frequency) == ("step", 3)
    assert isinstance(trainer.lr_scheduler, torch.optim.lr_scheduler.StepLR)
    assert trainer.lr_scheduler.optimizer is trainer.optimizer


def test_the_optimizer_is_built_from_the_spec_over_the_model():
    model = scalar_model()
    train, val = scalar_loaders()
    trainer = Trainer.from_config(spec_of(optimizer={"type": "AdamW", "lr": 0.003, "params": {"weight_decay": 0.5}}),
                                  model, train, val)
    assert isinstance(trainer.optimizer, torch.optim.AdamW)
    assert trainer.optimizer.param_groups[0]["lr"] == 0.003 and trainer.optimizer.param_groups[0]["weight_decay"] == 0.5
    assert trainer.optimizer.param_groups[0]["params"][0] is model.weight
    assert trainer.lr_scheduler is None


def test_runtime_keywords_only():
    train, val = scalar_loaders()
    with pytest.raises(TypeError, match="log_interval"):
        Trainer.from_config(spec_of(), scalar_model(), train, val, log_interval=5)
    assert "callbacks" in RUNTIME_KEYWORDS and "device" not in RUNTIME_KEYWORDS


# ----------------------------------------------------------------------------------------------
# each setting changes what training does


def test_epochs_and_optimizer_from_the_spec_train_the_weight_by_hand():
    model = scalar_model()
    train, val = scalar_loaders()
    history = Trainer.from_config(spec_of({"epochs": 3}), model, train, val).train(criterion=nn.MSELoss())
    assert len(history["train_loss"]) == 3
    assert model.weight.item() == pytest.approx(1 - 0.75 ** 3)


@pytest.mark.parametrize(("min_delta", "best_epoch", "stopped"), [(0.0, 2, 4), (0.1, 1, 3)])
def test_min_delta_decides_what_counts_as_an_improvement(min_delta, best_epoch, stopped):
    model = scalar_model()
    train, val = scalar_loaders(val_target=0.5)
    trainer = Trainer.from_config(spec_of({"epochs": 10, "early_stopping_patience": 2,
                                           "early_stopping_min_delta": min_delta}), model, train, val)
    history = trainer.train(criterion=nn.MSELoss())
    assert len(history["val_loss"]) == stopped and trainer.best.epoch == best_epoch
    assert model.weight.item() == pytest.approx(1 - 0.75 ** best_epoch)  # the best weights restored


@pytest.mark.parametrize(("clip", "step"), [({}, 0.25), ({"gradient_clip_norm": 0.1}, 0.0125),
                                            ({"gradient_clip_val": 0.5}, 0.0625)])
def test_clipping_bounds_the_first_step(clip, step):
    # the first gradient is d/dw (w - 1)^2 = -2 at w = 0: SGD(0.125) moves w by 0.25, clipped by 0.125 * clip
    model = scalar_model()
    train, val = scalar_loaders()
    Trainer.from_config(spec_of({"epochs": 1, **clip}), model, train, val).train(criterion=nn.MSELoss())
    assert model.weight.item() == pytest.approx(step)


def test_accumulation_sets_the_number_of_optimizer_steps():
    train, val = scalar_loaders(rows=8, batch=2)  # 4 batches an epoch
    for accumulate, steps in ((1, 8), (2, 4), (4, 2)):
        trainer = Trainer.from_config(spec_of({"epochs": 2, "accumulate_grad_batches": accumulate}),
                                      scalar_model(), train, val)
        trainer.train(criterion=nn.MSELoss())
        assert trainer.global_step == steps


def test_scheduler_frequency_steps_every_n_epochs():
    train, val = scalar_loaders()
    lrs = {}
    for frequency in (1, 2):
        trainer = Trainer.from_config(spec_of({"epochs": 5}, scheduler={
            "type": "StepLR", "params": {"step_size": 1, "gamma": 0.5}, "frequency": frequency}),
            scalar_model(), train, val)
        lrs[frequency] = trainer.train(criterion=nn.MSELoss())["lr"]
    assert lrs[1] == pytest.approx([0.125, 0.0625, 0.03125, 0.015625, 0.0078125])
    assert lrs[2] == pytest.approx([0.125, 0.125, 0.0625, 0.0625, 0.03125])


def test_scheduler_frequency_steps_every_n_optimizer_steps():
    train, val = scalar_loaders(rows=8, batch=2)  # 4 optimizer steps an epoch, 8 in all
    record = Batches()
    trainer = Trainer.from_config(spec_of({"epochs": 2, "log_every": 1}, scheduler={
        "type": "StepLR", "params": {"step_size": 1, "gamma": 0.5}, "interval": "step", "frequency": 3}),
        scalar_model(), train, val, callbacks=[record])
    trainer.train(criterion=nn.MSELoss())
    g = 0.125  # the lr after each optimizer step: halved after steps 3 and 6
    assert record.lrs == pytest.approx([g, g, g / 2, g / 2, g / 2, g / 4, g / 4, g / 4])
    assert trainer.lr_scheduler.last_epoch == 2


@pytest.mark.parametrize(("monitor", "factors"), [(None, [1, 1, 0.5, 0.25]), ("train_loss", [1, 1, 1, 1])])
def test_plateau_scheduler_watches_the_spec_monitor(monitor, factors):
    train, val = scalar_loaders(val_target=-1.0)  # val loss rises every epoch, train loss falls
    sched = {"type": "ReduceLROnPlateau", "params": {"factor": 0.5, "patience": 0}}
    if monitor:
        sched["monitor"] = monitor
    history = Trainer.from_config(spec_of(scheduler=sched), scalar_model(), train, val).train(criterion=nn.MSELoss())
    assert history["lr"] == pytest.approx([0.125 * f for f in factors])


@pytest.mark.parametrize(("config", "files"), [
    ({}, []),
    ({"checkpoint_every": 1}, ["epoch-0001.safetensors", "epoch-0002.safetensors", "epoch-0003.safetensors"]),
    ({"checkpoint_every": 2}, ["epoch-0002.safetensors"]),
    ({"checkpoint_every": 1, "save_best_only": True}, ["epoch-0001.safetensors"]),
])
def test_checkpoint_every_and_save_best_only_decide_the_epoch_files(tmp_path, config, files):
    train, val = scalar_loaders(val_target=-1.0)  # only epoch 1 improves the val loss
    Trainer.from_config(spec_of({"epochs": 3, **config}), scalar_model(), train, val,
                        checkpoint_dir=tmp_path).train(criterion=nn.MSELoss())
    assert sorted(p.name for p in tmp_path.glob("epoch-*")) == files
    assert (tmp_path / "last.safetensors").exists()


def test_log_every_sets_the_batches_between_reports():
    train, val = scalar_loaders(rows=8, batch=1)  # 8 batches an epoch
    record = Batches()
    Trainer.from_config(spec_of({"epochs": 1, "log_every": 3}), scalar_model(), train, val,
                        callbacks=[record]).train(criterion=nn.MSELoss())
    assert record.seen == [(1, 3), (1, 6)]


def test_mixed_precision_runs_the_forward_under_autocast():
    class Recording(nn.Linear):
        dtypes: list = []

        def forward(self, x):
            out = super().forward(x)
            self.dtypes.append(out.dtype)
            return out

    train, val = scalar_loaders()
    for amp, dtype in ((False, torch.float32), (True, torch.bfloat16)):
        model = Recording(1, 1, bias=False)
        model.dtypes = []
        Trainer.from_config(spec_of({"epochs": 1, "mixed_precision": amp}), model, train, val).train(
            criterion=nn.MSELoss())
        assert set(model.dtypes) == {dtype}
        assert model.weight.dtype == torch.float32


def test_device_from_the_spec():
    train, val = scalar_loaders()
    assert Trainer.from_config(spec_of({"device": "cpu"}), scalar_model(), train, val).runtime.device.type == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(TrainingError, match="device: cuda"):
            Trainer.from_config(spec_of({"device": "cuda"}), scalar_model(), train, val)


@pytest.mark.parametrize(("spec_verbose", "keyword", "prints"), [(True, True, True), (False, True, False),
                                                                 (True, False, False)])
def test_verbose_is_the_spec_and_the_keyword(capsys, spec_verbose, keyword, prints):
    train, val = scalar_loaders()
    Trainer.from_config(spec_of({"epochs": 1, "verbose": spec_verbose}), scalar_model(), train, val,
                        verbose=keyword).train(criterion=nn.MSELoss())
    assert bool(capsys.readouterr().out) is prints


def test_reported_metrics_follow_the_spec():
    x = torch.linspace(-1, 1, 16).reshape(-1, 1)
    y = (x[:, 0] > 0).float()
    loader = DataLoader(TensorDataset(x, y), batch_size=8)
    history = Trainer.from_config(spec_of({"epochs": 1, "metrics": ["f1", "precision"]}), nn.Linear(1, 1), loader,
                                  loader, task="binary").train(criterion=nn.BCEWithLogitsLoss())
    assert {"val_f1", "val_precision"} <= set(history) and "val_auc" not in history


# ----------------------------------------------------------------------------------------------
# settings that cannot run are refused


def test_num_workers_is_refused_when_training_starts():
    spec = spec_of({"num_workers": 4})  # a seed 001 file: it reads fine
    train, val = scalar_loaders()
    with pytest.raises(TrainingError) as err:
        Trainer.from_config(spec, scalar_model(), train, val)
    assert str(err.value).startswith("config.num_workers: 4 DataLoader workers") and "num_workers: 0" in str(err.value)


def test_distributed_outside_torchrun_trains_in_one_process(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    train, val = scalar_loaders()
    trainer = Trainer.from_config(spec_of({"distributed": True, "backend": "gloo"}), scalar_model(), train, val)
    assert trainer.backend == "gloo" and trainer.runtime.world_size == 1


def test_an_amp_backend_other_than_native_is_refused_when_read():
    with pytest.raises(SpecError) as err:
        spec_of({"amp_backend": "apex"})
    assert [issue.loc for issue in err.value.issues] == [("config", "amp_backend")]
    assert "expected one of 'native'" in str(err.value)
