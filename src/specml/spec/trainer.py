"""The trainer spec (Trainer Spec v1.0 + its §7 extensions): how a model is trained.

Field names, defaults and rules follow seed 001 §2–§5. Rules that need torch (the optimizer class
exists, its params are accepted, the scheduler builds) live in :mod:`specml.spec.torch_check`.
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
from specml.spec.model import LossSpec

#: Metrics a run can report; `<split>_<metric>` names are valid monitors (e.g. val_accuracy).
METRICS = ("accuracy", "precision", "recall", "f1", "auc", "pr_auc", "log_loss",
           "mse", "rmse", "mae", "r2", "exact_match")
SPLITS = ("train", "val")


class OptimizerSpec(StrictModel):
    """A ``torch.optim`` optimizer: class, learning rate, other constructor kwargs."""

    type: str = Field(..., description="torch.optim class, e.g. torch.optim.Adam (short names like Adam accepted).")
    lr: PositiveFloat = Field(..., description="Learning rate (aliases: config.learning_rate, optimizer.config.learning_rate).")
    params: dict[str, Any] = Field(default_factory=dict, description="Other constructor kwargs (momentum, betas, ...).")


class SchedulerSpec(StrictModel):
    """A ``torch.optim.lr_scheduler`` scheduler (seed 001 §7)."""

    type: str = Field(..., description="torch.optim.lr_scheduler class, e.g. CosineAnnealingLR.")
    params: dict[str, Any] = Field(default_factory=dict, description="Constructor kwargs (T_max, step_size, ...).")
    monitor: str | None = Field(None, description="Metric ReduceLROnPlateau watches (default val_loss).")
    interval: Literal["epoch", "step"] = Field("epoch", description="Step the scheduler every epoch or every optimizer step.")
    frequency: PositiveInt = Field(1, description="Step it every N intervals.")


class TrainerConfig(StrictModel):
    """The training loop's settings (seed 001 §3.3 and §7)."""

    # core
    epochs: PositiveInt = Field(..., description="Number of passes over the training data.")
    batch_size: PositiveInt = Field(..., description="Samples per batch.")
    validation_split: float = Field(0.2, ge=0.0, lt=1.0, description="Fraction of rows held out for validation, 0 <= x < 1.")
    shuffle: bool = Field(True, description="Shuffle the training rows every epoch.")
    metrics: list[str] | None = Field(None, description=f"Metrics to report (default: by task). One of {', '.join(METRICS)}.")
    # class imbalance (classification; fitted on the training rows only, never applied to validation rows)
    class_weights: Literal["auto"] | dict[str, PositiveFloat] | None = Field(
        None, description="auto: weights n / (classes * count) from the training rows (binary: the loss's "
                          "pos_weight = negatives / positives; multiclass: CrossEntropyLoss weight); or a map "
                          "class value -> weight. Needs BCEWithLogitsLoss or CrossEntropyLoss.")
    oversample: bool = Field(False, description="Repeat minority-class training rows (seeded) until the classes "
                                                "are balanced; validation rows are never resampled.")
    # early stopping
    early_stopping_patience: PositiveInt | None = Field(None, description="Epochs without improvement before stopping; null = off.")
    early_stopping_min_delta: NonNegativeFloat = Field(0.001, description="Smallest change that counts as an improvement.")
    early_stopping_monitor: str = Field("val_loss", description="<split>_<loss|metric>, e.g. val_loss, val_accuracy.")
    early_stopping_mode: Literal["min", "max"] = Field("min", description="min: lower is better; max: higher is better.")
    # checkpoints
    checkpoint_every: PositiveInt | None = Field(None, description="Save a checkpoint every N epochs; null = only best/last.")
    save_best_only: bool = Field(True, description="Keep only checkpoints that improve the monitored metric.")
    # hardware
    device: Literal["auto", "cpu", "cuda", "mps"] = Field("auto", description="auto picks cuda, then mps, then cpu.")
    num_workers: NonNegativeInt = Field(0, description="DataLoader workers (only for user-supplied DataLoaders).")
    pin_memory: bool = Field(False, description="Pin host memory for faster transfer to a GPU.")
    # advanced
    gradient_clip_val: PositiveFloat | None = Field(None, description="Clip each gradient element to [-v, v].")
    gradient_clip_norm: PositiveFloat | None = Field(None, description="Clip the total gradient norm to this value.")
    accumulate_grad_batches: PositiveInt = Field(1, description="Accumulate gradients over N batches per optimizer step.")
    mixed_precision: bool = Field(False, description="Automatic mixed precision (torch.autocast; bf16 on CPU, fp16 on CUDA).")
    amp_backend: Literal["native"] = Field("native", description="Only torch's native AMP is supported.")
    # distributed (torch DDP under torchrun)
    distributed: bool = Field(False, description="Train with torch DDP (launch under torchrun).")
    world_size: PositiveInt | None = Field(None, description="Expected number of processes; checked against torchrun's.")
    backend: Literal["gloo", "nccl"] | None = Field(None, description="Process-group backend (default: nccl on CUDA, gloo otherwise).")
    # logging and tracking (docs/tracking.md)
    log_every: PositiveInt = Field(10, description="Log metrics every N batches.")
    tensorboard: bool = Field(True, description="Write TensorBoard event files into the run directory.")
    histogram_every: NonNegativeInt = Field(0, description="Weight and gradient histograms in TensorBoard every N "
                                                           "epochs; 0 = off.")
    figures_every: NonNegativeInt = Field(0, description="Redraw the curve figures every N epochs (always at the "
                                                         "end); 0 = only at the end.")
    verbose: bool = Field(True, description="Print per-epoch progress.")
    # reproducibility
    seed: int | None = Field(None, description="Seeds python, numpy, torch and the validation split.")

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
