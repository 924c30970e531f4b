"""The trainer spec (Trainer Spec v1.0 + its §7 extensions): how a model is trained.

Field names, defaults and rules follow seed 001 §2–§5. These models are the one place of every
training setting: the engine's defaults are read from them (:meth:`specml.train.engine.Trainer.from_config`)
and the settings tables in ``docs/trainer-spec.md`` are generated from them (:mod:`specml.spec.docs`).
Rules that need torch (the optimizer class exists, its params are accepted, the scheduler builds)
live in :func:`specml.train.optim.check_trainer`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import (
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    field_validator,
    model_validator,
)

from specml.spec.base import StrictModel, one_or_many
from specml.spec.errors import suggestion
from specml.spec.metrics import METRICS, SPLITS
from specml.spec.model import LossSpec

__all__ = ["BUILTIN_CALLBACKS", "CALLBACK_GROUP", "DEFAULT_MONITOR", "METRICS", "SPLITS", "CallbackSpec",
           "OptimizerSpec", "SchedulerSpec", "TrainerConfig", "TrainerSpec",
           "unsupported_settings"]

#: what early stopping, "best" and ReduceLROnPlateau watch unless told otherwise
DEFAULT_MONITOR = "val_loss"


class OptimizerSpec(StrictModel):
    """A ``torch.optim`` optimizer: class, learning rate, other constructor kwargs."""

    type: str = Field(..., description="torch.optim class, e.g. torch.optim.Adam (short names like Adam accepted); "
                                       "its params are checked against the constructor.")
    lr: PositiveFloat = Field(..., description="Learning rate (aliases: config.learning_rate, "
                                               "optimizer.config.learning_rate).")
    params: dict[str, Any] = Field(default_factory=dict, description="Other constructor kwargs (momentum, betas, ...). "
                                   "Without foreach or fused here, the fastest update torch has is used: fused=True "
                                   "where it has a fused kernel (Adam, AdamW, SGD, Adagrad on CPU and CUDA), else "
                                   "foreach=True; the same algorithm, rounded differently in the last bits; "
                                   "fused: false gives torch's default loop.")


class SchedulerSpec(StrictModel):
    """A ``torch.optim.lr_scheduler`` scheduler."""

    type: str = Field(..., description="torch.optim.lr_scheduler class, e.g. CosineAnnealingLR. LambdaLR, "
                                       "MultiplicativeLR, SequentialLR and ChainedScheduler need Python callables "
                                       "or other schedulers and are refused.")
    params: dict[str, Any] = Field(default_factory=dict, description="Constructor kwargs (T_max, step_size, ...).")
    monitor: str | None = Field(None, description=f"Metric ReduceLROnPlateau watches (null: {DEFAULT_MONITOR}, or "
                                                  "train_loss without a validation split); only ReduceLROnPlateau "
                                                  "takes one.")
    interval: Literal["epoch", "step"] = Field("epoch", description="Step the scheduler after every epoch, or after "
                                                                    "every optimizer step.")
    frequency: PositiveInt = Field(1, description="Step it every N intervals (epochs or optimizer steps), counted "
                                                  "from the start of the run.")


class TrainerConfig(StrictModel):
    """The training loop's settings."""

    # core
    epochs: PositiveInt = Field(..., description="Passes over the training rows.")
    batch_size: PositiveInt = Field(..., description="Rows per batch (validation batches: at least 1024).")
    validation_split: float = Field(0.2, ge=0.0, lt=1.0, description="Fraction of the rows held out (seeded; "
                                                                     "stratified by a class target) and evaluated "
                                                                     "after every epoch.")
    shuffle: bool = Field(True, description="Shuffle the training rows every epoch (a generator seeded by seed and "
                                            "epoch).")
    metrics: list[str] | None = Field(None, description="Metrics to report; null: the task's defaults (docs/tasks.md). "
                                                        "One of " + ", ".join(METRICS) + ".")
    # class imbalance (classification; fitted on the training rows only, never applied to validation rows)
    class_weights: Literal["auto"] | dict[str, PositiveFloat] | None = Field(
        None, description="auto: weights n / (classes * count) from the training rows (binary: the loss's "
                          "pos_weight = negatives / positives; multiclass: CrossEntropyLoss weight); or a map "
                          "class value -> weight. Needs BCEWithLogitsLoss or CrossEntropyLoss.")
    oversample: bool = Field(False, description="Repeat minority-class training rows (seeded) until the classes "
                                                "are balanced; validation rows are never resampled.")
    # early stopping
    early_stopping_patience: PositiveInt | None = Field(None, description="Stop after this many epochs without an "
                                                                          "improvement of the monitor, and restore "
                                                                          "the best weights; null = off.")
    early_stopping_min_delta: NonNegativeFloat = Field(
        0.001, description="Smallest change of the monitor that counts as an improvement (absolute, in the "
                           "monitor's units; it also decides the best epoch while early stopping is on).")
    early_stopping_monitor: str = Field(
        DEFAULT_MONITOR, description="What early stopping and the best epoch watch: <train|val>_<loss|metric>, "
                                     "multi-task <train|val>_<task>_<loss|metric>. A val_ monitor needs "
                                     "validation_split > 0; with neither early stopping nor validation rows, "
                                     "the best epoch watches train_loss.")
    early_stopping_mode: Literal["min", "max"] = Field(
        "min", description="min: lower is better; max: higher is better. Unset, it follows the monitor "
                           "(val_auc -> max).")
    # checkpoints
    checkpoint_every: PositiveInt | None = Field(None, description="Also keep checkpoints/epoch-NNNN.safetensors "
                                                                   "every N epochs; null = only last and best.")
    save_best_only: bool = Field(False, description="Keep an epoch-NNNN checkpoint only when that epoch improved the "
                                                    "monitor.")
    # hardware
    device: Literal["auto", "cpu", "cuda", "mps"] = Field(
        "auto", description="auto picks cuda, then mps, then cpu. The rows move to the device once when they fit "
                            "in half its free memory.")
    num_workers: NonNegativeInt = Field(0, description="Must be 0: rows are fed from memory, with no DataLoader "
                                                       "workers. Other values (some trainer specs write 4) are read, "
                                                       "and refused when training starts.")
    pin_memory: bool = Field(False, description="Rows that stay on the host are pinned and copied to the GPU "
                                                "asynchronously.")
    # advanced
    gradient_clip_val: PositiveFloat | None = Field(None, description="Clip each gradient element to [-v, v] "
                                                                      "before each optimizer step.")
    gradient_clip_norm: PositiveFloat | None = Field(None, description="Clip the total gradient norm to this value "
                                                                       "before each optimizer step.")
    accumulate_grad_batches: PositiveInt = Field(1, description="Gradients of N batches (each loss / N) per "
                                                                "optimizer step: one N-times larger batch.")
    mixed_precision: bool = Field(False, description="Forward and loss under torch.autocast: bf16 on CPU, fp16 with "
                                                     "loss scaling on CUDA; weights stay fp32.")
    amp_backend: Literal["native"] = Field("native", description="Only native (torch.amp); any other value (e.g. "
                                                                 "apex) is refused when the spec is read.")
    # distributed (torch DDP under torchrun)
    distributed: bool = Field(False, description="Train with torch DDP (docs/distributed.md): `specml train` "
                                                 "starts world_size processes through torchrun (with --nproc, "
                                                 "or under torchrun, DDP is used whatever this says).")
    world_size: PositiveInt | None = Field(None, description="Processes `specml train` starts on this machine when "
                                                             "distributed is true and no --nproc is given; needs "
                                                             "distributed.")
    batch_size_per_device: bool = Field(False, description="false: batch_size is the global batch, split across "
                                                           "the DDP processes; true: each process takes batch_size "
                                                           "rows (global batch = batch_size x processes).")
    backend: Literal["gloo", "nccl"] | None = Field(None, description="Process-group backend (null: nccl on CUDA, "
                                                                      "gloo otherwise).")
    # tables larger than memory (docs/training.md, "Streaming")
    streaming: bool | Literal["auto"] = Field("auto", description="Read the table in chunks through DuckDB instead "
                                                                  "of all at once: true, false, or auto (stream when "
                                                                  "rows x columns x 8 bytes exceed memory_budget_mb).")
    memory_budget_mb: PositiveInt | None = Field(None, description="Memory the rows may take (MB) before auto "
                                                                   "streams; streaming sizes its chunks to it (null: "
                                                                   "25% of physical memory).")
    # logging and tracking (docs/tracking.md)
    log_every: PositiveInt = Field(10, description="Batches between the host reads of the running loss (progress "
                                                   "bar, NaN check).")
    tensorboard: bool = Field(True, description="Write TensorBoard event files into the run directory.")
    histogram_every: NonNegativeInt = Field(0, description="Weight and gradient histograms in TensorBoard every N "
                                                           "epochs; 0 = off.")
    figures_every: NonNegativeInt = Field(0, description="Redraw the curve figures every N epochs (always at the "
                                                         "end); 0 = only at the end.")
    keep_epoch_figures: bool = Field(False, description="Keep each redraw as figures/<name>-eNNNN.png "
                                                        "instead of overwriting <name>.png; with figures_every 0, "
                                                        "every epoch is drawn and kept.")
    make_plots: bool = Field(True, description="Draw the training curves (figures/); false = no figures, which "
                                               "saves time on long runs.")
    save_artifacts: bool = Field(True, description="false = an ephemeral run: no checkpoints (so no "
                                                   "--resume), no TensorBoard files, no figures. Still written: the "
                                                   "run's specs, facts (events.jsonl, scalars.csv) and log, and the "
                                                   "trained model itself (models/<name>/).")
    verbose: bool = Field(True, description="Print per-epoch lines and, on a terminal, a progress bar.")
    # reproducibility
    seed: int | None = Field(None, description="Seeds python, numpy and torch (model init, dropout), the validation "
                                               "split and the shuffling (null: the split and shuffling use 0).")

    @field_validator("class_weights", mode="before")
    @classmethod
    def _auto_or_map(cls, value: Any) -> Any:
        if value is None or value == "auto" or isinstance(value, dict):
            return value
        raise ValueError(f"expected 'auto' or a map class -> weight (e.g. {{'0': 1.0, '1': 3.0}}), got {value!r}")

    @model_validator(mode="after")
    def _world_size_needs_distributed(self) -> TrainerConfig:
        if self.world_size is not None and not self.distributed:
            raise ValueError("world_size is set but distributed is false")
        return self


def unsupported_settings(config: TrainerConfig) -> list[tuple[str, str]]:
    """Settings this version accepts in a file but cannot run: ``(field path, one-line reason)`` each.

    Checked when training starts (seed 001's own examples write ``num_workers: 4``, so reading them
    must still work); torch-free, so a run is refused before anything heavy is imported.
    """
    out = []
    if config.num_workers:
        out.append(("config.num_workers", f"{config.num_workers} DataLoader workers were asked for, but specml feeds "
                                          "rows from memory with no DataLoader workers; set num_workers: 0 "
                                          "(or remove it)"))
    return out


#: specml's callbacks (``type: specml.callbacks.<Name>``; seed 001 writes ``arc.callbacks.<Name>``): their
#: params, each (required?, description). Built by :mod:`specml.train.callbacks`; more come from plugins.
BUILTIN_CALLBACKS: dict[str, dict[str, tuple[bool, str]]] = {
    "EarlyStopping": {
        "patience": (True, "epochs without an improvement of the monitor before the run stops"),
        "monitor": (False, f"what to watch (default {DEFAULT_MONITOR})"),
        "min_delta": (False, "smallest change that counts as an improvement (default 0.0)"),
        "mode": (False, "min or max (default: follows the monitor, val_auc -> max)"),
    },
    "ModelCheckpoint": {
        "monitor": (False, f"what to watch (default {DEFAULT_MONITOR})"),
        "mode": (False, "min or max (default: follows the monitor)"),
        "filename": (False, "file in the run's checkpoints/ (default best-<monitor>.safetensors), rewritten "
                            "whenever the monitor improves"),
    },
    "LearningRateMonitor": {},
}
#: the entry-point group of user callbacks (docs/plugins.md): name -> a class taking the params as kwargs
CALLBACK_GROUP = "specml.callbacks"
_CALLBACK_PREFIXES = ("specml.callbacks.", "arc.callbacks.")


def callback_plugins() -> list[str]:
    """Names registered under the ``specml.callbacks`` entry-point group (read, not loaded)."""
    from importlib.metadata import entry_points

    return [ep.name for ep in entry_points(group=CALLBACK_GROUP)]


def builtin_callback(type_name: str) -> str | None:
    """The built-in callback ``type_name`` names (``specml.callbacks.X``, ``arc.callbacks.X`` or ``X``)."""
    for prefix in ("", *_CALLBACK_PREFIXES):
        if type_name.startswith(prefix) and type_name[len(prefix):] in BUILTIN_CALLBACKS:
            return type_name[len(prefix):]
    return None


class CallbackSpec(StrictModel):
    """One callback of the run: a specml callback or a registered plugin, with its params."""

    type: str = Field(..., description="specml.callbacks.EarlyStopping | ModelCheckpoint | LearningRateMonitor "
                                       "(arc.callbacks.<Name> accepted), or a name from the specml.callbacks "
                                       "entry-point group.")
    params: dict[str, Any] = Field(default_factory=dict, description="Keyword arguments of the callback.")

    @model_validator(mode="after")
    def _known(self) -> CallbackSpec:
        name = builtin_callback(self.type)
        if name is None:
            plugins = callback_plugins()
            if self.type in plugins:
                return self
            known = [f"specml.callbacks.{n}" for n in BUILTIN_CALLBACKS] + plugins
            short = self.type.rsplit(".", 1)[-1]
            hint = suggestion(self.type, known) or suggestion(f"specml.callbacks.{short}", known)
            raise ValueError(f"unknown callback '{self.type}' (known: {', '.join(known)})"
                             + (f"; {hint}" if hint else ""))
        allowed = BUILTIN_CALLBACKS[name]
        for key in self.params:
            if key not in allowed:
                hint = suggestion(key, list(allowed))
                raise ValueError(f"specml.callbacks.{name} has no parameter '{key}' (parameters: "
                                 f"{', '.join(allowed) or 'none'})" + (f"; {hint}" if hint else ""))
        missing = [k for k, (required, _) in allowed.items() if required and k not in self.params]
        if missing:
            raise ValueError(f"specml.callbacks.{name} needs params.{missing[0]}")
        return self


def callbacks_table() -> str:
    """The built-in callbacks and their params as a Markdown table (docs/trainer-spec.md)."""
    rows = ["| type | params |", "|---|---|"]
    for name, params in BUILTIN_CALLBACKS.items():
        text = "; ".join(f"`{k}`{' (required)' if req else ''}: {why}" for k, (req, why) in params.items())
        rows.append(f"| specml.callbacks.{name} | {text or 'none'} |")
    return "\n".join(rows) + "\n"


class MlflowSpec(StrictModel):
    """Where an MLflow tracker logs: a tracking URI (``file:./mlruns``, ``sqlite:///mlflow.db``, ``http://...``)."""

    uri: str = Field(description="MLflow tracking URI.")
    experiment: str = Field("specml", description="MLflow experiment name (created when missing).")


class TrackingSpec(StrictModel):
    mlflow: MlflowSpec | None = Field(None, description="Log the run to MLflow.")


class TrainerSpec(StrictModel):
    """A training recipe: optimizer + loop settings, paired with a model spec."""

    model_ref: str | None = Field(None, description="Name of the model this trainer is for (registry id).")
    name: str | None = None
    description: str | None = None
    version: str | int | float | None = None
    optimizer: OptimizerSpec
    config: TrainerConfig
    scheduler: SchedulerSpec | None = None
    loss: one_or_many(LossSpec) | None = Field(
        None, description="Accepted for files that keep the loss here; the model spec is its canonical place.",
    )
    callbacks: list[CallbackSpec] = Field(
        default_factory=list, description="Callbacks of the run, in order; the same objects as "
                                          "api.train(callbacks=[...]) (docs/training.md).")
    tracking: TrackingSpec | None = Field(None, description="External trackers of the run: mlflow: {uri, "
                                                            "experiment} logs params, per-epoch metrics, the run "
                                                            "directory and a pyfunc model (pip install "
                                                            "'specml[mlflow]'; same as specml train --mlflow URI).")
