"""specml's callbacks, and the trainer spec's ``callbacks:`` list built into them.

The same objects work from Python (``api.train(callbacks=[EarlyStopping(patience=3)])``) and from a
trainer spec (``callbacks: [{type: specml.callbacks.EarlyStopping, params: {patience: 3}}]``). A callback
is any object with some of the engine's hooks (``on_train_start``, ``on_epoch_start``, ``on_batches``,
``on_epoch_end``, ``on_early_stop``, ``on_train_end``, ``on_exception``), each called as
``hook(trainer, **kwargs)``. User callbacks come from the ``specml.callbacks`` entry-point group
(docs/plugins.md).
"""

from __future__ import annotations

import inspect
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from specml.spec.errors import suggestion
from specml.spec.metrics import mode_of
from specml.spec.trainer import CALLBACK_GROUP, DEFAULT_MONITOR, CallbackSpec, builtin_callback
from specml.train.errors import TrainingError


def _known_key(monitor: str, keys: Any, what: str) -> None:
    if keys and monitor not in keys:
        hint = suggestion(monitor, list(keys))
        raise TrainingError(f"callbacks: {what} watches '{monitor}', which this run does not report (it reports "
                            f"{', '.join(keys)})" + (f"; {hint}" if hint else ""))


class EarlyStopping:
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs, and keep the best
    weights: the engine's own early stopping (``config.early_stopping_*``), set up by a callback."""

    def __init__(self, patience: int, monitor: str = DEFAULT_MONITOR, min_delta: float = 0.0,
                 mode: str | None = None) -> None:
        if not isinstance(patience, int) or patience < 1:
            raise TrainingError(f"callbacks: EarlyStopping patience must be a positive integer, got {patience!r}")
        self.patience, self.monitor, self.min_delta = patience, monitor, float(min_delta)
        self.mode = mode or mode_of(monitor)

    def on_train_start(self, trainer: Any, keys: Any = (), **_: Any) -> None:
        from specml.train.engine import EarlyStopping as Stopping

        _known_key(self.monitor, keys, "EarlyStopping")
        if trainer.early_stopping is not None and trainer.epoch == 0:
            raise TrainingError("callbacks: EarlyStopping and config.early_stopping_patience both stop the run "
                                "early; keep one of them")
        if trainer.early_stopping is None:
            trainer.early_stopping = Stopping(self.patience, self.min_delta, self.monitor, self.mode)


class ModelCheckpoint:
    """Write the weights to ``checkpoints/<filename>`` whenever ``monitor`` improves (a best-of-its-own
    beside the run's best.safetensors, which follows the run's monitor)."""

    def __init__(self, monitor: str = DEFAULT_MONITOR, mode: str | None = None, filename: str | None = None) -> None:
        self.monitor, self.mode = monitor, mode or mode_of(monitor)
        self.filename = filename or f"best-{monitor}.safetensors"
        if Path(self.filename).name != self.filename:
            raise TrainingError(f"callbacks: ModelCheckpoint filename must be a file name, got {self.filename!r}")
        self.best: float | None = None
        self.path: Path | None = None

    def on_train_start(self, trainer: Any, keys: Any = (), **_: Any) -> None:
        _known_key(self.monitor, keys, "ModelCheckpoint")
        if trainer.checkpoint_dir is None:
            raise TrainingError("callbacks: ModelCheckpoint needs a checkpoint directory (a run with "
                                "config.save_artifacts: false has none)")
        self.path = Path(trainer.checkpoint_dir) / self.filename

    def on_epoch_end(self, trainer: Any, epoch: int, logs: dict, **_: Any) -> None:
        value = logs.get(self.monitor)
        if value is None or value != value:  # NaN never improves
            return
        if self.best is None or (value < self.best if self.mode == "min" else value > self.best):
            from specml.train.checkpoint import save_weights

            self.best = value
            self.path.parent.mkdir(parents=True, exist_ok=True)
            save_weights(self.path, trainer.model, {"epoch": str(epoch), "monitor": self.monitor,
                                                    "value": repr(value)})


class LearningRateMonitor:
    """Report every parameter group's learning rate per epoch as ``lr_<group>`` (history, facts, TensorBoard)."""

    def on_epoch_end(self, trainer: Any, logs: dict, **_: Any) -> None:
        optimizer = trainer.optimizer
        if optimizer is None:
            return
        for i, group in enumerate(optimizer.param_groups):
            logs[f"lr_{i}"] = float(group["lr"])
            trainer.history.setdefault(f"lr_{i}", []).append(float(group["lr"]))


BUILTINS = {"EarlyStopping": EarlyStopping, "ModelCheckpoint": ModelCheckpoint,
            "LearningRateMonitor": LearningRateMonitor}


def _plugin(name: str) -> Any:
    for ep in entry_points(group=CALLBACK_GROUP):
        if ep.name == name:
            return ep.load()
    raise TrainingError(f"callbacks: '{name}' is not registered under the {CALLBACK_GROUP} entry-point group")


def build_callbacks(specs: list[CallbackSpec]) -> list[Any]:
    """The callback objects a trainer spec's ``callbacks:`` list names, in order. :class:`TrainingError`
    (with the list index) when one cannot be built from its params."""
    out = []
    for i, spec in enumerate(specs):
        name = builtin_callback(spec.type)
        cls = BUILTINS[name] if name is not None else _plugin(spec.type)
        try:
            inspect.signature(cls).bind(**spec.params)
        except (TypeError, ValueError) as exc:
            raise TrainingError(f"callbacks[{i}] ({spec.type}): {exc}") from None
        try:
            out.append(cls(**spec.params))
        except TrainingError:
            raise
        except Exception as exc:  # noqa: BLE001 - a plugin's own refusal, as one line
            raise TrainingError(f"callbacks[{i}] ({spec.type}) could not be built: {exc}") from None
    return out
