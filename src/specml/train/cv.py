"""k-fold cross-validation of a neural spec (``specml train --cv K``).

K trainings, each on K-1 folds of the table, validated on the fold it leaves out: the folds come
from :func:`specml.data.split.folds` (stratified by a class target, seeded by ``config.seed``); each
fold fits its own preprocessing and imbalance handling on its own training rows (no leakage) and
trains as the trainer spec says (epochs, early stopping, ...), without a run directory. Each
validation metric at the fold's best epoch is reported per fold and as mean ± std, in the form of
the classical path's cross-validation. The final model is then trained as usual by the caller.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from specml import preflight
from specml.data.errors import DataError
from specml.data.split import SplitError, folds
from specml.spec.metrics import main_metric


@dataclass
class NeuralCV:
    """Per-fold validation metrics (at each fold's best epoch) and their mean and std."""

    folds: int
    method: str                     # stratified | random
    main: str                       # the metric each fold's line shows (val_<task's main metric>)
    scores: list[dict[str, float | None]] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    best_epochs: list[int | None] = field(default_factory=list)

    def summary(self) -> dict[str, dict[str, float | None]]:
        """metric -> {mean, std} over the folds that report it (NaN and None left out)."""
        out = {}
        for key in dict.fromkeys(k for s in self.scores for k in s):
            vals = [s[key] for s in self.scores if isinstance(s.get(key), float) and np.isfinite(s[key])]
            out[key] = {"mean": float(np.mean(vals)) if vals else None, "std": float(np.std(vals)) if vals else None}
        return out

    def to_dict(self) -> dict:
        return {"folds": self.folds, "method": self.method, "main": self.main, "scores": self.scores,
                "best_epochs": self.best_epochs, "seconds": [round(s, 3) for s in self.seconds],
                "summary": self.summary()}

    def lines(self) -> list[str]:
        """The report: one line per metric, ``Mean <metric>: m ± s`` (the classical path's form)."""
        out = []
        for key, v in self.summary().items():
            out.append(f"Mean {key}: n/a" if v["mean"] is None else f"Mean {key}: {v['mean']:.4f} ± {v['std']:.4f}")
        return out


def cross_validate(model_spec: Any, trainer_spec: Any, *, table: str, k: int, target: str | None = None,
                   workspace: Any = None, device: str | None = None, overrides: list[str] | None = None,
                   on_fold: Callable[[int, int, str, dict, float], None] | None = None) -> NeuralCV:
    """Train ``k`` times on ``k`` folds of ``table`` (see the module docstring); :class:`DataError` when
    the table cannot be cut into ``k`` folds. ``on_fold(i, k, main metric, scores, seconds)`` after each.
    ``overrides``: Hydra-style edits of the specs (:mod:`specml.spec.overrides`), as for a training."""
    from specml.data.workspace import Workspace
    from specml.train.engine import Trainer
    from specml.train.prepare import prepare, stratify_labels

    model, trainer = preflight.check_spec_kinds(model_spec, trainer_spec, deep=True, overrides=overrides)
    if device is not None:
        trainer = trainer.model_copy(update={"config": trainer.config.model_copy(update={"device": device})})
    features, target_cols = preflight.training_columns(model, target)
    columns = list(dict.fromkeys([*features, *target_cols]))
    ws = workspace if hasattr(workspace, "read_columns") else Workspace(workspace, read_only=True)
    try:
        ws.require_table(table)
        ws.require_columns(table, columns)
        data = ws.read_columns(table, columns)
    finally:
        if ws is not workspace:
            ws.close()
    one_target = target_cols[0] if len(target_cols) == 1 else None
    seed = trainer.config.seed if trainer.config.seed is not None else 0
    try:
        pairs, method = folds(data.num_rows, k, seed, stratify_labels(model, trainer, data, one_target))
    except SplitError as err:
        raise DataError(f"--cv {k}: {err}") from None
    result: NeuralCV | None = None
    for i, rows in enumerate(pairs, start=1):
        started = time.perf_counter()
        p = prepare(model, trainer, data, one_target, rows=rows)
        if result is None:
            result = NeuralCV(len(pairs), method, f"val_{main_metric(p.task)[0]}" if p.simple else "val_loss")
        engine = Trainer.from_config(trainer, p.model, p.train_batches, p.val_batches,
                                     task=p.task if p.simple else p.criterion, output_key=p.output_key,
                                     logits=p.heads[0].logits, verbose=False)
        history = engine.train(criterion=p.criterion)
        at = (engine.best.epoch or len(history["val_loss"])) - 1
        scores = {key: float(values[at]) for key, values in history.items() if key.startswith("val_")}
        seconds = time.perf_counter() - started
        if result.main not in scores:
            result.main = "val_loss"
        result.scores.append(scores)
        result.seconds.append(seconds)
        result.best_epochs.append(engine.best.epoch)
        if on_fold is not None:
            on_fold(i, len(pairs), result.main, scores, seconds)
    return result
