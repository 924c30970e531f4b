"""The training engine: one loop, readable top to bottom.

    trainer = Trainer(model, train_loader, val_loader, device="auto", checkpoint_dir="checkpoints")
    history = trainer.train(num_epochs=20, optimizer=opt, criterion=nn.CrossEntropyLoss(),
                            lr_scheduler=sched, save_every=5, save_best=True)

or, with every loop setting (and the optimizer and scheduler) from a trainer spec:

    trainer = Trainer.from_config(load_trainer_spec("trainer.yaml"), model, train_loader, val_loader)
    history = trainer.train(criterion=nn.CrossEntropyLoss())

The engine has no defaults of its own: each setting's default is the trainer spec's
(:mod:`specml.spec.trainer`).

Works for any ``nn.Module`` fed by ordinary DataLoaders (batches are ``(inputs, targets)``; inputs a
tensor or a dict of tensors), and for spec-built models fed by :class:`TensorBatches`, which permutes
an index and slices in-memory tensors (no per-row Python, no collation).

The hot path (``_fit_epoch``) never reads a tensor back to the host per step: losses and metrics
accumulate on the device and are read once per ``log_interval`` batches and at the end of an epoch.
Device and rank live in :class:`Runtime`. Under torchrun the engine joins the process group and trains
the model wrapped in DistributedDataParallel (:mod:`specml.train.distributed`): the batch feeder shards
each global batch by rank, metrics are computed on every rank's gathered outputs, every rank stops
together, and only rank 0 writes checkpoints and runs the callbacks.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from specml.spec.metrics import mode_of, with_monitored
from specml.spec.trainer import DEFAULT_MONITOR, SchedulerSpec, TrainerConfig, TrainerSpec, unsupported_settings
from specml.train import distributed
from specml.train.errors import TrainingError
from specml.train.optim import build_optimizer, build_scheduler, has_sparse_gradients
from specml.train.pairs import align


def _config_default(name: str) -> Any:
    """The trainer spec's default of ``config.<name>``."""
    return TrainerConfig.model_fields[name].default


def _scheduler_default(name: str) -> Any:
    """The trainer spec's default of ``scheduler.<name>``."""
    return SchedulerSpec.model_fields[name].default


# ----------------------------------------------------------------------------------------------
# where we run


@dataclass(frozen=True)
class Runtime:
    """Device and process rank, decided in one place."""

    device: torch.device
    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @staticmethod
    def resolve(device: str | torch.device | None = "auto") -> Runtime:
        """``auto`` picks cuda, then mps, then cpu; rank/world size come from torchrun's environment."""
        if isinstance(device, torch.device):
            chosen = device
        elif device in (None, "auto"):
            if torch.cuda.is_available():
                chosen = torch.device("cuda")
            elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
                chosen = torch.device("mps")
            else:
                chosen = torch.device("cpu")
        else:
            if device == "cuda" and not torch.cuda.is_available():
                raise TrainingError("device: cuda was asked for, but no CUDA device is available (use auto or cpu)")
            if device == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
                raise TrainingError("device: mps was asked for, but MPS is not available (use auto or cpu)")
            chosen = torch.device(device)
        rank = int(os.environ.get("RANK", "0"))
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if chosen.type == "cuda" and world > 1:
            chosen = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        return Runtime(chosen, rank, world)


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (model initialisation, dropout)."""
    import random

    import numpy as np

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


# ----------------------------------------------------------------------------------------------
# the batch feeder


class TensorBatches:
    """Batches by index over in-memory tensors: permute an index each epoch, slice, gather.

    ``inputs`` is a dict of tensors with the same first dimension, ``target`` a tensor, a dict of
    tensors (multi-task), or None.
    Shuffling uses its own generator seeded with ``(seed, epoch)``: never the global RNG. With
    ``world_size > 1`` (DDP) ``batch_size`` is the global batch: each rank takes every ``world_size``-th
    row of each global batch of the shared permutation, so the global batches do not depend on the
    number of ranks; a shuffled epoch's last batch is dropped when it has fewer rows than ranks.
    """

    def __init__(self, inputs: Mapping[str, torch.Tensor], target: torch.Tensor | Mapping[str, torch.Tensor] | None,
                 batch_size: int, *,
                 shuffle: bool = False, seed: int = 0, drop_last: bool = False, rank: int = 0,
                 world_size: int = 1) -> None:
        self.inputs = dict(inputs)
        self.target = target
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.drop_last = drop_last
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0
        self.rows = len(next(iter(self.inputs.values())))

    @property
    def device(self) -> torch.device:
        return next(iter(self.inputs.values())).device

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def to(self, device: torch.device, non_blocking: bool = False) -> TensorBatches:
        """Move the data to ``device`` once (the caller decides whether it fits)."""
        self.inputs = {k: v.to(device, non_blocking=non_blocking) for k, v in self.inputs.items()}
        if self.target is not None:
            self.target = _to_device(self.target, device, non_blocking)
        return self

    def _spans(self) -> list[tuple[int, int]]:
        """(start, end) of each global batch in the epoch's order."""
        n, bs = self.rows, self.batch_size
        end = n - n % bs if self.drop_last else n
        spans = [(s, min(s + bs, n)) for s in range(0, end, bs)]
        if self.world_size > 1 and spans and self.shuffle and spans[-1][1] - spans[-1][0] < self.world_size:
            spans.pop()  # a training tail smaller than the world would leave a rank without rows
        return spans

    def __len__(self) -> int:
        return len(self._spans())

    def _local_rows(self) -> int:
        """Rows this rank reads in one epoch."""
        return sum(len(range(s + self.rank, e, self.world_size)) for s, e in self._spans())

    def batch_weights(self) -> list[float]:
        """Per batch, this rank's rows x world size / the global batch's rows: the factor that makes DDP's
        average of per-rank mean losses the mean over the global batch (1.0 in one process)."""
        w = self.world_size
        return [len(range(s + self.rank, e, w)) * w / (e - s) for s, e in self._spans()]

    def __iter__(self) -> Iterator[tuple[dict[str, torch.Tensor], torch.Tensor | None]]:
        device = next(iter(self.inputs.values())).device
        if self.shuffle:
            gen = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
            order = torch.randperm(self.rows, generator=gen).to(device)
        elif self.world_size > 1:
            order = torch.arange(self.rows, device=device)
        else:
            order = None  # contiguous slices: views, no copy
        target, keyed = self.target, isinstance(self.target, Mapping)
        for start, end in self._spans():
            if order is None:
                sl = slice(start, end)
                yield {k: v[sl] for k, v in self.inputs.items()}, (
                    None if target is None else {k: v[sl] for k, v in target.items()} if keyed else target[sl])
            else:
                # a rank takes every world_size-th row of each global batch: the global batches (and so
                # the training) do not depend on the number of ranks
                idx = order[start + self.rank:end:self.world_size]
                # index_select: a plain row gather, cheaper than v[idx]
                yield ({k: v.index_select(0, idx) for k, v in self.inputs.items()},
                       None if target is None else {k: v.index_select(0, idx) for k, v in target.items()} if keyed
                       else target.index_select(0, idx))


# ----------------------------------------------------------------------------------------------
# small pieces of the loop


def _to_device(x: Any, device: torch.device, non_blocking: bool) -> Any:
    if isinstance(x, torch.Tensor):
        return x.to(device, non_blocking=non_blocking)
    if isinstance(x, Mapping):
        return {k: _to_device(v, device, non_blocking) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return type(x)(_to_device(v, device, non_blocking) for v in x)
    return x


def _forward(model: nn.Module, inputs: Any) -> Any:
    if type(inputs) is dict or isinstance(inputs, Mapping):  # the exact-type test first: it is the hot path
        return model(**inputs)
    return model(inputs)


class _LossOnly:
    """The metric accumulator for runs with no task: the mean loss, on the device."""

    def __init__(self, device: torch.device) -> None:
        from specml.train.metrics import LossSum

        self._loss = LossSum(device)

    def reset(self) -> None:
        self._loss.reset()

    def update(self, loss: torch.Tensor, output: torch.Tensor, target: torch.Tensor) -> None:
        self._loss.add(loss, output.shape[0] if output.dim() else 1)

    def loss_sum_tensor(self) -> torch.Tensor:
        return self._loss.tensor()

    def compute(self) -> dict[str, float]:
        return {"loss": self._loss.tensor().item() / max(self._loss.count, 1)}


@dataclass
class EarlyStopping:
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs."""

    patience: int
    min_delta: float = _config_default("early_stopping_min_delta")
    monitor: str = _config_default("early_stopping_monitor")
    mode: str = _config_default("early_stopping_mode")
    wait: int = 0
    best: float | None = None
    stopped_epoch: int | None = None

    def step(self, value: float) -> bool:
        """Record this epoch's value; True when the run should stop."""
        if _Best(self.best).improved(value, self.mode, self.min_delta):
            self.best, self.wait = value, 0
        else:
            self.wait += 1
        return self.wait >= self.patience


@dataclass
class _Best:
    value: float | None = None
    epoch: int | None = None
    state: dict[str, torch.Tensor] | None = None

    def improved(self, value: float, mode: str, min_delta: float) -> bool:
        if self.value is None or math.isnan(self.value):
            return not math.isnan(value)
        return value < self.value - min_delta if mode == "min" else value > self.value + min_delta


# ----------------------------------------------------------------------------------------------
# the trainer


#: what :meth:`Trainer.from_config` takes as keywords: what a run has beside its spec
RUNTIME_KEYWORDS = ("callbacks", "run_info", "checkpoint_dir", "task", "metrics", "output_key", "logits", "verbose",
                    "progress")


@dataclass
class Trainer:
    """Train any ``nn.Module``; seed 002's API plus the trainer spec's settings as keyword arguments
    (or all of them from a spec: :meth:`from_config`). Every setting's default is the spec's.

    ``train_loader`` / ``val_loader``: DataLoaders (or :class:`TensorBatches`) yielding
    ``(inputs, targets)``. ``output_key`` picks the output the loss reads when the model returns a dict.
    ``task`` (binary, multiclass, regression) turns on metrics; a :class:`specml.train.tasks.Heads`
    (several tasks, token sequences) is both the ``criterion`` and the ``task``, with ``output_key=None``.
    ``monitor`` / ``mode`` decide "best". Spec field -> engine name: ``log_every`` -> ``log_interval``
    (seed 002's name), ``scheduler.interval`` / ``frequency`` / ``monitor`` -> ``scheduler_*``.
    """

    model: nn.Module
    train_loader: Iterable | None = None
    val_loader: Iterable | None = None
    device: str | torch.device | None = _config_default("device")
    checkpoint_dir: str | Path | None = None
    log_interval: int = _config_default("log_every")
    output_key: str | None = None
    task: Any = None
    metrics: Sequence[str] | None = None
    logits: bool = True
    monitor: str = _config_default("early_stopping_monitor")
    mode: str = _config_default("early_stopping_mode")
    early_stopping: EarlyStopping | None = None
    gradient_clip_val: float | None = _config_default("gradient_clip_val")
    gradient_clip_norm: float | None = _config_default("gradient_clip_norm")
    accumulate_grad_batches: int = _config_default("accumulate_grad_batches")
    scheduler_interval: str = _scheduler_default("interval")
    scheduler_monitor: str = DEFAULT_MONITOR
    pin_memory: bool = _config_default("pin_memory")
    mixed_precision: bool = _config_default("mixed_precision")
    verbose: bool = _config_default("verbose")
    progress: bool | None = None
    callbacks: list = field(default_factory=list)
    run_info: dict = field(default_factory=dict)  # stored in every checkpoint (specs, data): resume checks it
    scheduler_frequency: int = _scheduler_default("frequency")
    checkpoint_every: int | None = _config_default("checkpoint_every")  # train()'s save_every when not given
    save_best_only: bool = _config_default("save_best_only")
    epochs: int | None = None           # train()'s num_epochs when not given (from_config: config.epochs)
    optimizer: Any = None               # train()'s optimizer and scheduler when not given (from_config builds them)
    lr_scheduler: Any = None
    backend: str | None = _config_default("backend")  # DDP process group (null: nccl on CUDA, gloo otherwise)

    @classmethod
    def from_config(cls, spec: TrainerSpec, model: nn.Module, train_loader: Iterable | None,
                    val_loader: Iterable | None = None, **runtime: Any) -> Trainer:
        """A Trainer whose loop settings all come from ``spec``, with its optimizer and scheduler built
        over ``model``; keywords are only what a spec cannot say (:data:`RUNTIME_KEYWORDS`).

            from specml.spec import load_trainer_spec
            spec = load_trainer_spec("trainer.yaml")
            trainer = Trainer.from_config(spec, model, train_batches, val_batches, task="binary",
                                          output_key="logits", checkpoint_dir="run/checkpoints")
            history = trainer.train(criterion=nn.BCEWithLogitsLoss())   # config.epochs epochs

        From the spec: ``epochs``; the optimizer and scheduler; early stopping (patience, min_delta,
        monitor, mode: unset, the mode follows the monitor, ``val_auc`` -> max); the monitor of the best
        epoch (``train_loss`` when there is no validation data and no early stopping); the scheduler's
        interval, frequency and monitor; clipping; accumulation; mixed precision; ``pin_memory``;
        ``device``; ``log_every``; ``checkpoint_every``; ``save_best_only``; ``verbose`` (and-ed with the
        keyword); ``metrics`` (unless given), plus any metric a monitor watches. The data settings
        (batch_size, shuffle, validation_split, seed, class_weights, oversample) shape the loaders and
        the tracking settings the callbacks: they are the caller's. A setting this version cannot run
        (``num_workers`` > 0) is a :class:`TrainingError`. Under torchrun the process group uses
        ``config.backend``.
        """
        unknown = sorted(set(runtime) - set(RUNTIME_KEYWORDS))
        if unknown:
            raise TypeError(f"Trainer.from_config() takes only runtime keywords ({', '.join(RUNTIME_KEYWORDS)}); "
                            f"{', '.join(unknown)} come(s) from the spec")
        refused = unsupported_settings(spec.config)
        if refused:
            path, why = refused[0]
            raise TrainingError(f"{path}: {why}")
        cfg, sched = spec.config, spec.scheduler
        has_val = val_loader is not None
        monitor = cfg.early_stopping_monitor
        mode = cfg.early_stopping_mode if "early_stopping_mode" in cfg.model_fields_set else mode_of(monitor)
        if cfg.early_stopping_patience is None and monitor == DEFAULT_MONITOR and not has_val:
            monitor = "train_loss"
        stopping = (EarlyStopping(cfg.early_stopping_patience, cfg.early_stopping_min_delta, monitor, mode)
                    if cfg.early_stopping_patience else None)
        watched = [monitor, sched.monitor if sched else None]
        task = runtime.get("task")
        if isinstance(task, str):
            runtime["metrics"] = with_monitored(task, runtime.get("metrics", cfg.metrics), watched)
        elif hasattr(task, "watch"):  # task heads: each head reports what a monitor watches
            task.watch(watched)
        runtime["verbose"] = runtime.get("verbose", True) and cfg.verbose
        trainer = cls(
            model, train_loader, val_loader, device=cfg.device, log_interval=cfg.log_every,
            monitor=monitor, mode=mode, early_stopping=stopping,
            gradient_clip_val=cfg.gradient_clip_val, gradient_clip_norm=cfg.gradient_clip_norm,
            accumulate_grad_batches=cfg.accumulate_grad_batches,
            scheduler_interval=sched.interval if sched else _scheduler_default("interval"),
            scheduler_frequency=sched.frequency if sched else _scheduler_default("frequency"),
            scheduler_monitor=(sched.monitor if sched and sched.monitor else
                               DEFAULT_MONITOR if has_val else "train_loss"),
            pin_memory=cfg.pin_memory, mixed_precision=cfg.mixed_precision,
            checkpoint_every=cfg.checkpoint_every, save_best_only=cfg.save_best_only, epochs=cfg.epochs,
            backend=cfg.backend, **runtime)
        trainer.optimizer = build_optimizer(spec.optimizer, trainer.model.parameters(),
                                            fuse=not has_sparse_gradients(trainer.model))
        trainer.lr_scheduler = build_scheduler(sched, trainer.optimizer) if sched else None
        return trainer

    def __post_init__(self) -> None:
        self.runtime = Runtime.resolve(self.device)
        distributed.setup(self.runtime.device, self.backend)  # under torchrun: join the process group
        self._net: nn.Module = self.model  # what the training forward runs: the model, or its DDP wrapper
        self.history: dict[str, list[float]] = {}
        self.best = _Best()
        self.epoch = 0
        self.global_step = 0
        self._resume_rng: tuple | None = None  # RNG states of a restored checkpoint, set again by train()
        self._restored_stopped = False  # the restored checkpoint is of a run that had stopped early
        self.model.to(self.runtime.device)
        # mixed precision: autocast to bf16 (cpu) or fp16 (cuda, mps); fp16 gradients are loss-scaled
        device_type = self.runtime.device.type
        self._amp_dtype = torch.bfloat16 if device_type == "cpu" else torch.float16
        self._scaler = (torch.amp.GradScaler("cuda") if self.mixed_precision and device_type == "cuda" else None)
        if self.verbose:
            from specml.train.console import ConsoleLogger

            self.callbacks = [ConsoleLogger(progress=self.progress), *self.callbacks]

    # -- the public verb ------------------------------------------------------------------------

    def train(self, num_epochs: int | None = None, optimizer: torch.optim.Optimizer | None = None,
              criterion: Any = None, lr_scheduler: Any = None, save_every: int | None = None, save_best: bool = True,
              save_best_only: bool | None = None) -> dict[str, list]:
        """Run ``num_epochs`` epochs; return the history (``train_loss``, ``val_loss``, metrics, ``lr``).

        Left out, ``num_epochs``, ``optimizer`` (with ``lr_scheduler``), ``save_every`` and ``save_best_only``
        are the engine's (``epochs``, ``optimizer``, ``lr_scheduler``, ``checkpoint_every``, ``save_best_only``).
        """
        if num_epochs is None:
            num_epochs = self.epochs
        if optimizer is None:
            optimizer, lr_scheduler = self.optimizer, lr_scheduler if lr_scheduler is not None else self.lr_scheduler
        save_every = self.checkpoint_every if save_every is None else save_every
        save_best_only = self.save_best_only if save_best_only is None else save_best_only
        missing = [n for n, v in (("num_epochs", num_epochs), ("optimizer", optimizer), ("criterion", criterion))
                   if v is None]
        if missing:
            raise TrainingError(f"train() needs {', '.join(missing)} (or a Trainer built by from_config)")
        if self.train_loader is None:
            raise TrainingError("no training data: pass train_loader")
        keys = self._check_monitors(lr_scheduler)
        self._num_epochs = num_epochs
        if distributed.active() and self._net is self.model:
            # wrapped after a restore: DDP starts every rank from rank 0's weights
            from torch.nn.parallel import DistributedDataParallel

            cuda = self.runtime.device.type == "cuda"
            self._net = DistributedDataParallel(self.model, device_ids=[self.runtime.device] if cuda else None)
        train_meter, val_meter = self._meter("train"), self._meter("val")
        self._call("on_train_start", keys=keys, num_epochs=num_epochs)
        if self._resume_rng is not None:  # a resumed run: what the callbacks drew from the RNGs is undone
            from specml.train.checkpoint import restore_rng_state

            restore_rng_state(*self._resume_rng)
            self._resume_rng = None
        last_epoch = self.epoch if self._restored_stopped else num_epochs  # restored after it stopped early: done
        try:
            for epoch in range(self.epoch + 1, last_epoch + 1):
                self.epoch = epoch
                started = time.perf_counter()
                for loader in (self.train_loader, self.val_loader):
                    if hasattr(loader, "set_epoch"):
                        loader.set_epoch(epoch)
                train_stats = self._fit_epoch(optimizer, criterion, lr_scheduler, train_meter, num_epochs)
                val_stats = self._evaluate(criterion, val_meter) if self.val_loader is not None else {}
                logs = {f"train_{k}": v for k, v in train_stats.items()}
                logs.update({f"val_{k}": v for k, v in val_stats.items()})
                logs["lr"] = optimizer.param_groups[0]["lr"]
                logs["epoch_time_s"] = time.perf_counter() - started
                self._check_finite(logs, epoch)
                self._check_finite_weights(epoch)
                for key, value in logs.items():
                    self.history.setdefault(key, []).append(value)

                if (lr_scheduler is not None and self.scheduler_interval == "epoch"
                        and epoch % self.scheduler_frequency == 0):
                    if isinstance(lr_scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                        lr_scheduler.step(logs[self.scheduler_monitor])
                    else:
                        lr_scheduler.step()

                improved = self.best.improved(logs[self.monitor], self.mode,
                                              self.early_stopping.min_delta if self.early_stopping else 0.0)
                if improved:
                    self.best = _Best(logs[self.monitor], epoch, _clone_state(self.model))
                    if save_best:
                        self._save_weights("best.safetensors")
                # the epoch's facts and early-stopping counters first, then the checkpoint that commits the
                # epoch: a kill before it redoes the epoch; a kill after it loses nothing
                self._call("on_epoch_end", epoch=epoch, logs=logs, improved=improved)
                stop = self._should_stop(logs, epoch)
                self._save_checkpoints(epoch, optimizer, lr_scheduler, save_every, save_best_only, improved)
                if stop:
                    break
        except BaseException as exc:
            self._call("on_exception", error=exc)
            raise
        if self.early_stopping is not None and self.best.state is not None:
            self.model.load_state_dict(self.best.state)  # the best weights, not the last
        self._call("on_train_end", history=self.history, best_epoch=self.best.epoch, best_value=self.best.value)
        return self.history

    def restore(self, path: str | Path, optimizer: torch.optim.Optimizer, lr_scheduler: Any = None) -> dict:
        """Continue from a checkpoint this engine wrote: weights, optimizer, scheduler, RNG states, epoch,
        step, best-so-far (value, epoch, weights), early-stopping counters and history. Returns its state.

        Call it on a Trainer built exactly as the interrupted one; :meth:`train` then runs the epochs
        after the checkpoint's, and on CPU ends bitwise identical to an uninterrupted run (it sets the RNG
        states again after its ``on_train_start`` callbacks, so what they draw does not shift the run).
        """
        from specml.train.checkpoint import check_training_state, load_checkpoint

        state = load_checkpoint(path, model=self.model, optimizer=optimizer, scheduler=lr_scheduler,
                                map_location=self.runtime.device)
        check_training_state(state, Path(path))
        self.epoch, self.global_step = int(state["epoch"]), int(state["global_step"])
        self.history = {k: list(v) for k, v in (state.get("history") or {}).items()}
        self.best = _Best(state.get("best_value"), state.get("best_epoch"), state.get("best_state"))
        if self.early_stopping is not None:
            self.early_stopping.wait = int(state.get("early_stopping_wait") or 0)
            self.early_stopping.best = state.get("early_stopping_best")
            self.early_stopping.stopped_epoch = state.get("early_stopping_stopped_epoch")
            self._restored_stopped = self.early_stopping.stopped_epoch is not None
        from specml.train.checkpoint import capture_rng_state

        self._resume_rng = capture_rng_state()  # set again by train() after its on_train_start callbacks
        return state

    # -- one epoch --------------------------------------------------------------------------------

    def _fit_epoch(self, optimizer, criterion, lr_scheduler, meter, num_epochs) -> dict[str, float]:
        model, device, accum = self.model, self.runtime.device, self.accumulate_grad_batches
        non_blocking = self.pin_memory and device.type == "cuda"
        model.train()
        meter.reset()
        n_batches = len(self.train_loader) if hasattr(self.train_loader, "__len__") else None
        self._call("on_epoch_start", epoch=self.epoch, num_epochs=num_epochs, batches=n_batches)
        optimizer.zero_grad(set_to_none=True)
        i = -1
        move = not (isinstance(self.train_loader, TensorBatches) and self.train_loader.device == device)
        ddp = self._net is not self.model
        # DDP averages the ranks' gradients; each rank's loss is weighted by its share of the global batch
        weights = self.train_loader.batch_weights() if ddp and hasattr(self.train_loader, "batch_weights") else None
        for i, (inputs, target) in enumerate(self.train_loader):
            if move:
                inputs, target = _to_device(inputs, device, non_blocking), _to_device(target, device, non_blocking)
            stepping = (i + 1) % accum == 0 or (n_batches is not None and i + 1 == n_batches)
            with self._net.no_sync() if ddp and not stepping else contextlib.nullcontext():
                pred, target, loss = self._loss(inputs, target, criterion, self._net)
                scaled = loss * weights[i] if weights is not None and weights[i] != 1.0 else loss
                scaled = scaled / accum if accum > 1 else scaled
                (self._scaler.scale(scaled) if self._scaler is not None else scaled).backward()
            if stepping:
                self._optimizer_step(optimizer, lr_scheduler)
            meter.update(loss.detach(), pred.detach() if type(pred) is torch.Tensor else pred, target)
            if (i + 1) % self.log_interval == 0:  # the one host read per interval
                loss_sum = meter.loss_sum_tensor()
                # a NaN/inf batch loss poisons the sum; every rank stops when one does
                if not distributed.all_true(bool(torch.isfinite(loss_sum).item()), device):
                    raise self._diverged(i + 1)
                self._call("on_batches", epoch=self.epoch, batch=i + 1, loss_sum=loss_sum)
        if i < 0:
            raise TrainingError("the training data yielded no batches")
        if n_batches is None and (i + 1) % accum != 0:  # a loader without len: step the leftover gradients
            self._optimizer_step(optimizer, lr_scheduler)
        if not distributed.all_true(bool(torch.isfinite(meter.loss_sum_tensor()).item()), device):
            raise self._diverged(i + 1)
        return meter.compute()

    def _loss(self, inputs: Any, target: Any, criterion: Any,
              net: nn.Module | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Forward (through ``net``, default the model), pick the output the loss reads, align shapes, compute
        the loss (under autocast if asked)."""
        with (torch.autocast(self.runtime.device.type, dtype=self._amp_dtype) if self.mixed_precision
              else contextlib.nullcontext()):  # entering a disabled autocast costs a few µs a step
            output = _forward(net if net is not None else self.model, inputs)
            pred = output[self.output_key] if self.output_key is not None else output
            if type(pred) is torch.Tensor:  # task heads (multi-task) shape their own pairs
                pred, target = align(pred, target)
            try:
                return pred, target, criterion(pred, target)
            except (RuntimeError, ValueError, IndexError) as exc:  # shapes, dtypes, values the loss refuses
                if isinstance(exc, torch.cuda.OutOfMemoryError):
                    raise
                raise self._loss_failed(pred, target, exc) from exc

    def _loss_failed(self, pred: Any, target: Any, exc: Exception) -> TrainingError:
        """A loss that refuses the output and target training feeds it, as one line (never a traceback)."""
        def shape(x: Any) -> str:
            return f"{list(x.shape)} {str(x.dtype).removeprefix('torch.')}" if isinstance(x, torch.Tensor) else \
                type(x).__name__
        what = f"output '{self.output_key}'" if self.output_key else "the model's outputs"
        text = " ".join(str(exc).split())
        return TrainingError(f"the loss failed on {what} {shape(pred)} against the target {shape(target)}: "
                             f"{text[:300]}")

    def _optimizer_step(self, optimizer, lr_scheduler) -> None:
        scaler = self._scaler
        if scaler is not None:
            scaler.unscale_(optimizer)  # clip the true gradients
        if self.gradient_clip_val is not None or self.gradient_clip_norm is not None:
            params = [p for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
            if self.gradient_clip_val is not None:
                torch.nn.utils.clip_grad_value_(params, self.gradient_clip_val)
            if self.gradient_clip_norm is not None:
                torch.nn.utils.clip_grad_norm_(params, self.gradient_clip_norm)
        if scaler is not None:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        self.global_step += 1
        if (lr_scheduler is not None and self.scheduler_interval == "step"
                and self.global_step % self.scheduler_frequency == 0):
            lr_scheduler.step()

    @torch.no_grad()
    def _evaluate(self, criterion, meter) -> dict[str, float]:
        model, device = self.model, self.runtime.device
        model.eval()
        meter.reset()
        move = not (isinstance(self.val_loader, TensorBatches) and self.val_loader.device == device)
        for inputs, target in self.val_loader:
            if move:
                inputs, target = _to_device(inputs, device, False), _to_device(target, device, False)
            pred, target, loss = self._loss(inputs, target, criterion)
            meter.update(loss, pred, target)
        return meter.compute()

    # -- bookkeeping ------------------------------------------------------------------------------

    def _metric_names(self, split: str) -> list[str]:
        """Metrics reported for ``split``: all of them on validation; on training only the cheap ones
        (loss-like, accuracy), unless a monitor watches another (``train_auc``)."""
        if self.task is None:
            return []
        watched = {self.monitor, self.scheduler_monitor, self.early_stopping.monitor if self.early_stopping else None}
        if not isinstance(self.task, str):  # task heads (multi-task, sequences)
            return self.task.metric_names(split, watched)
        from specml.train.metrics import STREAMED, metrics_for

        try:
            names = metrics_for(self.task, list(self.metrics) if self.metrics else None)
        except ValueError as exc:
            raise TrainingError(f"metrics: {exc}") from None
        if split == "train":
            names = [m for m in names if m in STREAMED or f"train_{m}" in watched]
        return names

    def _meter(self, split: str):
        if self.runtime.world_size > 1:  # metrics over every rank's rows
            return distributed.GatheredMeter(lambda: self._local_meter(split))
        return self._local_meter(split)

    def _local_meter(self, split: str):
        if self.task is None:
            return _LossOnly(self.runtime.device)
        if not isinstance(self.task, str):
            return self.task.to(self.runtime.device).meter(self._metric_names(split), self.runtime.device)
        from specml.train.metrics import StreamingMetrics

        return StreamingMetrics(self.task, self._metric_names(split), logits=self.logits, device=self.runtime.device)

    def available_monitors(self) -> list[str]:
        from specml.train.metrics import metrics_for

        keys = []
        for split in ["train"] + (["val"] if self.val_loader is not None else []):
            names = ["loss", *self._metric_names(split)]
            if split == "train" and self.task is not None:  # any metric may be watched on train
                every = (self.task.metric_names("val") if not isinstance(self.task, str) else
                         metrics_for(self.task, list(self.metrics) if self.metrics else None))
                names += [m for m in every if m not in names]
            keys += [f"{split}_{n}" for n in names]
        return keys

    def _check_monitors(self, lr_scheduler: Any = None) -> list[str]:
        """Every monitored key must be one this run reports, known before the first epoch."""
        keys = self.available_monitors()
        watched = {"monitor": self.monitor}
        if isinstance(lr_scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            watched["scheduler monitor"] = self.scheduler_monitor
        if self.early_stopping is not None:
            watched["early_stopping_monitor"] = self.early_stopping.monitor
        for what, key in watched.items():
            if key not in keys:
                from specml.spec.errors import suggestion

                hint = suggestion(key, keys)
                extra = " (there is no validation split)" if key.startswith("val_") and self.val_loader is None else ""
                raise TrainingError(f"{what} '{key}' is not reported by this run{extra}; it reports: "
                                    f"{', '.join(keys)}" + (f" — {hint}" if hint else ""))
        return keys

    def _check_finite(self, logs: dict[str, float], epoch: int) -> None:
        for key in ("train_loss", "val_loss"):
            if key in logs and not math.isfinite(logs[key]):
                raise self._diverged(None, f"{key} is {logs[key]} at the end of epoch {epoch}")

    def _diverged(self, batch: int | None, what: str | None = None) -> TrainingError:
        where = what or f"the training loss became NaN or infinite in epoch {self.epoch} (by batch {batch})"
        last = self._path("last.safetensors")
        kept = f"; the last good checkpoint is {last}" if last is not None and last.exists() else ""
        return TrainingError(f"{where}: training stopped{kept}. Try a lower learning rate, gradient clipping "
                             "(gradient_clip_norm), or normalizing the inputs.")

    def _check_finite_weights(self, epoch: int) -> None:
        """Weights an overflowing last step made infinite are never saved as a good checkpoint."""
        params = [p.detach() for p in self.model.parameters()]
        finite = not params or bool(torch.stack([torch.isfinite(p).all() for p in params]).all().item())
        if not distributed.all_true(finite, self.runtime.device):
            raise self._diverged(None, f"the weights became NaN or infinite in epoch {epoch}")

    def _should_stop(self, logs: dict[str, float], epoch: int) -> bool:
        es = self.early_stopping
        if es is None:
            return False
        # every rank sees the same (gathered) metrics; rank 0's decision is broadcast all the same
        if distributed.broadcast(es.step(logs[es.monitor])):
            es.stopped_epoch = epoch
            self._call("on_early_stop", epoch=epoch, best_epoch=self.best.epoch, best_value=self.best.value)
            return True
        return False

    def _path(self, name: str) -> Path | None:
        return None if self.checkpoint_dir is None else Path(self.checkpoint_dir) / name

    def _save_weights(self, name: str) -> None:
        path = self._path(name)
        if path is None or not self.runtime.is_main:
            return
        from specml.train.checkpoint import save_weights

        path.parent.mkdir(parents=True, exist_ok=True)
        save_weights(path, self.model, {"epoch": str(self.epoch)})

    def _save_checkpoints(self, epoch, optimizer, lr_scheduler, save_every, save_best_only, improved) -> None:
        if self.checkpoint_dir is None or not self.runtime.is_main:
            return
        from specml.train.checkpoint import save_checkpoint

        state = {"epoch": epoch, "global_step": self.global_step, "best_value": self.best.value,
                 "best_epoch": self.best.epoch, "monitor": self.monitor, "mode": self.mode,
                 "early_stopping_wait": self.early_stopping.wait if self.early_stopping else None,
                 "early_stopping_best": self.early_stopping.best if self.early_stopping else None,
                 "early_stopping_stopped_epoch": self.early_stopping.stopped_epoch if self.early_stopping else None,
                 "history": self.history, "run": self.run_info,
                 # the best weights so far travel with the checkpoint: a resume restores them exactly
                 "best_state": self.best.state}
        Path(self.checkpoint_dir).mkdir(parents=True, exist_ok=True)
        if save_every and epoch % save_every == 0 and (improved or not save_best_only):
            save_checkpoint(self._path(f"epoch-{epoch:04d}.safetensors"), model=self.model, optimizer=optimizer,
                            scheduler=lr_scheduler, state=state)
        # last: what a resume reads, so it is written after everything else of the epoch
        save_checkpoint(self._path("last.safetensors"), model=self.model, optimizer=optimizer,
                        scheduler=lr_scheduler, state=state)

    def _call(self, hook: str, **kwargs: Any) -> None:
        if not self.runtime.is_main:
            return
        for cb in self.callbacks:
            fn = getattr(cb, hook, None)
            if fn is not None:
                fn(self, **kwargs)


def _clone_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}
