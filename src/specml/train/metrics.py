"""Metrics: streaming accumulation during training, and evaluation of finished predictions.

Which metrics apply to which task, their defaults and directions are the catalogue's
(:mod:`specml.spec.metrics`, re-exported here); a run reports ``<split>_loss`` and
``<split>_<metric>`` for the splits ``train`` and (with validation data) ``val``.

:class:`StreamingMetrics` keeps its running sums on the training device so that a batch costs no host
synchronisation; :meth:`StreamingMetrics.compute` makes one transfer per epoch. Everything beyond the
loss, accuracy, mse/rmse and mae is computed by :mod:`sklearn.metrics`.

Undefined values (auc with one class in ``y_true``, precision with no predicted positive, r2 of a
constant target, any metric of an empty epoch) are ``nan``, never an exception.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from specml.spec.metrics import (
    ALLOWED,
    DEFAULT_METRICS,
    HIGHER_IS_BETTER,
    METRICS,
    TASKS,
    check_task,
    metric_of,
    metrics_for,
)

__all__ = ["ALLOWED", "DEFAULT_METRICS", "HIGHER_IS_BETTER", "METRICS", "STREAMED", "TASKS", "LossSum",
           "SequenceMetrics", "StreamingMetrics", "evaluate_predictions", "metric_of", "metrics_for",
           "monitor_names", "sequence_metrics"]

#: metrics computed from running sums on the device; the others need every prediction
_STREAMED = {"accuracy", "mse", "rmse", "mae", "exact_match"}
#: metrics cheap to keep for every training batch; the others (auc, f1, ...) sort or count over every
#: prediction, so a run computes them on the validation split (and on the training split only when watched)
STREAMED = frozenset(_STREAMED)

_NAN = float("nan")

#: outputs a training meter holds before folding them into its running sums (bounded memory per epoch)
FOLD_VALUES = 1 << 16


def monitor_names(task: str, metrics: Sequence[str] | None, has_validation: bool) -> list[str]:
    """Every key a run reports: train_loss, val_loss (with validation), train_<m>, val_<m>."""
    names = metrics_for(task, metrics)
    splits = ("train", "val") if has_validation else ("train",)
    return [f"{s}_loss" for s in splits] + [f"{s}_{m}" for s in splits for m in names]


# --------------------------------------------------------------------------------------------- sklearn


class _LazySklearn:
    """``sklearn.metrics``, imported on first use (about a second): a run whose metrics are all computed
    here (loss, accuracy, binary AUC, mse/rmse/mae) never imports scikit-learn."""

    def __getattr__(self, name: str) -> Any:
        from sklearn import metrics

        return getattr(metrics, name)


skm = _LazySklearn()


def binary_auc(y_true: np.ndarray, prob: np.ndarray) -> float:
    """ROC AUC of 0/1 labels (both present): the Mann-Whitney statistic with tied scores sharing their
    mean rank, which is the area under sklearn's ``roc_curve`` (``roc_auc_score``). One sort and arrays of
    the tie groups (an epoch's validation computes it over every score: few temporaries)."""
    y = np.asarray(y_true).reshape(-1) > 0
    s = np.asarray(prob, dtype=np.float64).reshape(-1)
    order = np.argsort(s, kind="stable")
    ys, s = y[order], s[order]
    del order
    first = np.empty(s.size, dtype=bool)  # where each tie group starts, in sorted order
    first[:1] = True
    np.not_equal(s[1:], s[:-1], out=first[1:])
    del s
    starts = np.flatnonzero(first)
    positives = np.add.reduceat(ys, starts, dtype=np.int64) if starts.size else np.zeros(0, dtype=np.int64)
    ends = np.append(starts[1:], ys.size)
    # a tie group in sorted places [start, end) shares the mean rank (start + 1 + end) / 2 (exact: halves)
    rank_sum = float(np.dot(positives, (starts + 1 + ends) / 2.0))
    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    return float((rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def _quiet(fn: Callable[[], Any]) -> float:
    """``fn()`` as a float; sklearn's warnings silenced, a ValueError (undefined metric) -> nan."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            value = float(fn())
        except ValueError:
            return _NAN
    return value if math.isfinite(value) else _NAN


def _binary_metrics(wanted: Sequence[str], y_true: np.ndarray, prob: np.ndarray,
                    y_pred: np.ndarray | None) -> dict[str, float]:
    """``y_true``/``y_pred`` 0/1 ints, ``prob`` the positive-class probability (``y_pred`` may be None when no
    metric in ``wanted`` counts predictions)."""
    if y_true.size == 0:
        return {m: _NAN for m in wanted}
    both = np.unique(y_true).size == 2
    has_pos = bool(y_true.any())
    fns: dict[str, Callable[[], Any]] = {
        "accuracy": lambda: skm.accuracy_score(y_true, y_pred),
        "precision": lambda: skm.precision_score(y_true, y_pred, zero_division=np.nan),
        "recall": lambda: skm.recall_score(y_true, y_pred, zero_division=np.nan),
        "f1": lambda: skm.f1_score(y_true, y_pred, zero_division=np.nan),
        "auc": lambda: binary_auc(y_true, prob) if both else _NAN,
        "pr_auc": lambda: skm.average_precision_score(y_true, prob) if has_pos else _NAN,
        "log_loss": lambda: skm.log_loss(y_true, prob, labels=[0, 1]),
    }
    return {m: _quiet(fns[m]) for m in wanted}


def _multiclass_metrics(wanted: Sequence[str], y_true: np.ndarray, prob: np.ndarray, y_pred: np.ndarray,
                        labels: Sequence[Any]) -> dict[str, float]:
    """``prob`` [N, C] rows summing to 1, columns in the order of ``labels``."""
    if y_true.size == 0:
        return {m: _NAN for m in wanted}
    labels = list(labels)
    all_present = set(np.unique(y_true).tolist()) == set(labels)

    def auc() -> float:
        if not all_present:
            return _NAN
        if len(labels) == 2:   # sklearn treats two classes as binary: score the second column
            return skm.roc_auc_score((y_true == labels[1]).astype(np.int64), prob[:, 1])
        return skm.roc_auc_score(y_true, prob, multi_class="ovr", average="macro", labels=labels)

    fns: dict[str, Callable[[], Any]] = {
        "accuracy": lambda: skm.accuracy_score(y_true, y_pred),
        "precision": lambda: skm.precision_score(y_true, y_pred, average="macro", zero_division=np.nan),
        "recall": lambda: skm.recall_score(y_true, y_pred, average="macro", zero_division=np.nan),
        "f1": lambda: skm.f1_score(y_true, y_pred, average="macro", zero_division=np.nan),
        "log_loss": lambda: skm.log_loss(y_true, prob, labels=labels),
        "auc": auc,
    }
    return {m: _quiet(fns[m]) for m in wanted}


def _regression_metrics(wanted: Sequence[str], y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """``y_true``/``y_pred`` [N] or [N, k]; multi-output metrics are averaged uniformly over outputs."""
    if y_true.shape[0] == 0:
        return {m: _NAN for m in wanted}
    fns: dict[str, Callable[[], Any]] = {
        "mse": lambda: skm.mean_squared_error(y_true, y_pred),
        "rmse": lambda: skm.root_mean_squared_error(y_true, y_pred),
        "mae": lambda: skm.mean_absolute_error(y_true, y_pred),
        "r2": lambda: skm.r2_score(y_true, y_pred, force_finite=False),
    }
    return {m: _quiet(fns[m]) for m in wanted}


def _sigmoid(x: np.ndarray) -> np.ndarray:
    """The overflow-free logistic 0.5 * (1 + tanh(0.5 * x)), in one new array (the same operations in place)."""
    p = np.multiply(x, 0.5)
    np.tanh(p, out=p)
    p += 1.0
    p *= 0.5
    return p


def _softmax(x: np.ndarray) -> np.ndarray:
    if x.size == 0:
        return x
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _normalize_rows(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), 0.0, None)
    s = p.sum(axis=1, keepdims=True)
    s[s == 0] = 1.0
    return p / s


def evaluate_predictions(task: str, y_true: np.ndarray, y_score: np.ndarray, *,
                         classes: list | None = None) -> dict[str, float]:
    """Metrics of finished predictions (``specml evaluate``), all from :mod:`sklearn.metrics`.

    * binary: ``y_score`` is the positive-class probability ([N], or [N, 2] whose column 1 is used),
      thresholded at 0.5 (positive when > 0.5); ``y_true`` 0/1, or labels with ``classes=[neg, pos]``.
      Reports accuracy, precision, recall, f1, auc, pr_auc, log_loss.
    * multiclass: ``y_score`` [N, C] probabilities, columns in the order of ``classes`` (default
      0..C-1). Reports accuracy, precision/recall/f1 (macro), log_loss, auc (one-vs-rest macro,
      nan unless every class is present in ``y_true``).
    * regression: ``y_score`` the predictions, same number of values as ``y_true``. Reports mse,
      rmse, mae, r2 (multi-output: uniform average over outputs).
    """
    check_task(task)
    y_true = np.asarray(y_true)
    y_score = np.asarray(y_score)
    if task == "sequence":
        raise ValueError("token sequences are evaluated by sequence_metrics")
    if task == "regression":
        y_score = y_score.astype(np.float64)
        if y_score.ndim > 1 and y_score.shape[1:] != (1,):
            y_score = y_score.reshape(y_score.shape[0], -1)
        else:
            y_score = y_score.reshape(-1)
        if y_true.size != y_score.size:
            raise ValueError(f"y_true has {y_true.size} values, y_score {y_score.size}")
        y_true = y_true.astype(np.float64).reshape(y_score.shape)
        return _regression_metrics(ALLOWED["regression"], y_true, y_score)

    if task == "binary":
        if y_score.ndim == 2 and y_score.shape[1] == 2:
            y_score = y_score[:, 1]
        prob = y_score.astype(np.float64).reshape(-1)
        if classes is not None:
            if len(classes) != 2:
                raise ValueError(f"a binary task has 2 classes, got {len(classes)}: {classes!r}")
            y = (y_true.reshape(-1) == classes[1]).astype(np.int64)
        else:
            y = (y_true.astype(np.float64).reshape(-1) > 0.5).astype(np.int64)
        if y.size != prob.size:
            raise ValueError(f"y_true has {y.size} values, y_score {prob.size}")
        return _binary_metrics(ALLOWED["binary"], y, prob, (prob > 0.5).astype(np.int64))

    # multiclass
    if y_score.ndim != 2:
        raise ValueError(f"multiclass y_score must be [N, C] probabilities, got shape {y_score.shape}")
    n_classes = y_score.shape[1]
    labels = list(range(n_classes)) if classes is None else list(classes)
    if len(labels) != n_classes:
        raise ValueError(f"{len(labels)} classes but y_score has {n_classes} columns")
    y = y_true.reshape(-1)
    if y.size != y_score.shape[0]:
        raise ValueError(f"y_true has {y.size} values, y_score {y_score.shape[0]} rows")
    prob = _normalize_rows(y_score)
    y_pred = np.asarray(labels)[prob.argmax(axis=1)] if y.size else y
    return _multiclass_metrics(ALLOWED["multiclass"], y, prob, y_pred, labels)


# ------------------------------------------------------------------------------------------ streaming


def _cat_flat(parts: list[torch.Tensor]) -> torch.Tensor:
    if len({p.dtype for p in parts}) > 1:
        parts = [p.to(torch.float64) for p in parts]
    if len({p.shape[1:] for p in parts}) > 1:  # e.g. [B] and [B, 1] batches mixed
        parts = [p.reshape(-1) for p in parts]
    return torch.cat(parts).reshape(-1)  # one reshape, not one per batch


class StreamingMetrics:
    """Accumulates, on the device, what a run needs per epoch, with no host sync per batch.

    Running sums: the loss weighted by batch size, the sample count (a Python int, from shapes), the
    number of correct predictions (classification), the per-output squared and absolute errors
    (regression). A batch adds references to its detached outputs and targets (no kernel); once they hold
    :data:`FOLD_VALUES` values they are folded into the sums with a few kernels, so the memory a training
    epoch holds does not grow with its rows. For metrics that need every prediction (auc, pr_auc, f1,
    precision, recall, log_loss, r2) the outputs and targets are kept instead and concatenated at
    :meth:`compute`, which moves everything to the host in one transfer.

    ``logits=True``: outputs are logits (sigmoid / softmax give probabilities; a binary output is
    positive when the logit is > 0); otherwise they are probabilities (positive when > 0.5).
    """

    def __init__(self, task: str, metrics: Sequence[str], *, logits: bool, device: Any) -> None:
        check_task(task)
        if task == "sequence":
            raise ValueError("token sequences are measured by SequenceMetrics")
        self.task = task
        self.metrics = metrics_for(task, list(metrics))
        self.logits = bool(logits)
        self.device = torch.device(device)
        # float64 sums, except where the device has none
        self._dtype = torch.float32 if self.device.type == "mps" else torch.float64
        # keep every output only when a metric needs them all; otherwise fold them into running sums
        self._keep = any(m not in _STREAMED for m in self.metrics)
        # what the folds compute (nothing: only the loss is reported)
        self._folds = self.task == "regression" or "accuracy" in self.metrics
        self.reset()

    def reset(self) -> None:
        self._loss = LossSum(self.device, self._dtype)  # the batch-size-weighted loss and the sample count
        self._n_values = 0         # predictions counted for accuracy (binary: every element)
        self._correct = torch.zeros((), dtype=torch.int64, device=self.device)
        self._sse: torch.Tensor | None = None   # [k] regression
        self._sae: torch.Tensor | None = None
        self._outputs: list[torch.Tensor] = []  # kept (every batch) or pending (until the next fold)
        self._targets: list[torch.Tensor] = []
        self._pending = 0                       # values in the pending outputs
        self._n_outputs: int | None = None      # regression k / multiclass C, fixed by the first batch

    @property
    def count(self) -> int:
        """Samples seen since the last reset."""
        return self._loss.count

    def loss_sum_tensor(self) -> torch.Tensor:
        """The summed (batch-size-weighted) loss, a device tensor: read it only when logging."""
        return self._loss.tensor()

    # ---------------------------------------------------------------------------------- update

    def update(self, loss: torch.Tensor, output: torch.Tensor, target: torch.Tensor) -> None:
        """Add one batch. Only device ops and shape arithmetic: no ``.item()``, no ``.cpu()``."""
        if output.requires_grad:
            output = output.detach()
        if target.requires_grad:
            target = target.detach()
        shape = output.shape
        n = shape[0] if shape else 1
        if n == 0:
            return
        self._loss.add(loss if isinstance(loss, torch.Tensor) else torch.as_tensor(loss), n)
        if self.task == "binary":
            output, target = self._check_binary(output, target)
        elif self.task == "multiclass":
            output, target = self._check_multiclass(output, target, n)
        else:
            output, target = self._check_regression(output, target, n)
        if self._keep or self._folds:
            self._outputs.append(output)
            self._targets.append(target)
        if not self._keep and self._folds:
            self._pending += output.numel()
            if self._pending >= FOLD_VALUES:
                self._fold()

    def _check_binary(self, output: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # kept as they come ([B] or [B, 1]); flattened when folded or computed
        if output.numel() != target.numel():
            raise ValueError(f"binary output has {output.numel()} values, target {target.numel()}")
        self._n_values += output.numel()
        return output, target

    def _check_multiclass(self, output: torch.Tensor, target: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        if output.dim() != 2:
            raise ValueError(f"multiclass output must be [B, C], got shape {tuple(output.shape)}")
        tgt = target.reshape(-1)
        if tgt.numel() != n:
            raise ValueError(f"multiclass target must be [B] class ids, got shape {tuple(target.shape)} for B={n}")
        if self._n_outputs is None:
            self._n_outputs = int(output.shape[1])
        elif output.shape[1] != self._n_outputs:
            raise ValueError(f"output has {output.shape[1]} classes, earlier batches {self._n_outputs}")
        self._n_values += n
        return output, tgt

    def _check_regression(self, output: torch.Tensor, target: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        out = output.reshape(n, -1)
        if target.numel() != out.numel():
            raise ValueError(f"regression output has {out.numel()} values, target {target.numel()}")
        k = int(out.shape[1])
        if self._n_outputs is None:
            self._n_outputs = k
        elif k != self._n_outputs:
            raise ValueError(f"output has {k} values per row, earlier batches {self._n_outputs}")
        return out, target.reshape(out.shape)

    def _fold(self) -> None:
        """Fold the pending outputs into the running sums (a few kernels for many batches) and let them go."""
        if not self._outputs:
            return
        if self.task == "binary":
            out, tgt = _cat_flat(self._outputs), _cat_flat(self._targets)
            self._correct += ((out > 0 if self.logits else out > 0.5) == (tgt > 0.5)).sum()
        elif self.task == "multiclass":
            self._correct += (torch.cat(self._outputs).argmax(dim=1) == torch.cat(self._targets).long()).sum()
        else:
            diff = torch.cat(self._outputs).to(self._dtype) - torch.cat(self._targets).to(self._dtype)
            sse, sae = (diff * diff).sum(dim=0), diff.abs().sum(dim=0)
            self._sse = sse if self._sse is None else self._sse + sse
            self._sae = sae if self._sae is None else self._sae + sae
        self._outputs, self._targets, self._pending = [], [], 0

    # --------------------------------------------------------------------------------- compute

    def compute(self) -> dict[str, float]:
        """``{"loss": mean loss, "<metric>": value, ...}`` for the samples since the last reset (one host transfer)."""
        if not self._keep:
            self._fold()
        k = self._n_outputs or 0
        parts = [self.loss_sum_tensor().reshape(1), self._correct.to(self._dtype).reshape(1)]
        if self._sse is not None:
            parts += [self._sse, self._sae]
        n_out = n_tgt = 0
        if self._outputs:
            outs = _cat_flat(self._outputs).to(self._dtype)  # one cast per epoch, not one per batch
            tgts = _cat_flat(self._targets).to(self._dtype)
            n_out, n_tgt = outs.numel(), tgts.numel()
            parts += [outs, tgts]
        host = np.asarray(torch.cat(parts).cpu().numpy(), dtype=np.float64)   # the one transfer (no copy)

        n = self._loss.count
        res: dict[str, float] = {"loss": float(host[0]) / n if n else _NAN}
        correct = float(host[1])
        pos = 2
        sse = sae = None
        if self._sse is not None:
            sse, sae = host[pos:pos + k], host[pos + k:pos + 2 * k]
            pos += 2 * k
        outs_np = host[pos:pos + n_out]
        tgts_np = host[pos + n_out:pos + n_out + n_tgt]

        values: dict[str, float] = {}
        if "accuracy" in self.metrics and not self._keep:
            values["accuracy"] = correct / self._n_values if self._n_values else _NAN
        if sse is not None and n:
            per_mse = sse / n
            values["mse"] = float(per_mse.mean())
            values["rmse"] = float(np.sqrt(per_mse).mean())
            values["mae"] = float((sae / n).mean())
        if self._keep and n_out:
            values.update(self._vectorized(outs_np, tgts_np, k))
        rest = [m for m in self.metrics if m not in values]
        if rest:
            values.update(self._sklearn(rest, outs_np, tgts_np, k))
        for m in self.metrics:
            res[m] = float(values.get(m, _NAN))
        return res

    def _vectorized(self, outs: np.ndarray, tgts: np.ndarray, k: int) -> dict[str, float]:
        """The simple metrics straight from the kept arrays (one numpy pass; same values as sklearn's)."""
        values: dict[str, float] = {}
        if self.task == "binary" and "accuracy" in self.metrics:
            pred = outs > 0 if self.logits else outs > 0.5
            values["accuracy"] = float(np.mean(pred == (tgts > 0.5)))
        elif self.task == "regression" and self._n_outputs:
            diff = (outs - tgts).reshape(-1, self._n_outputs)
            per_mse = np.mean(diff * diff, axis=0)
            wanted = {"mse": lambda: per_mse.mean(), "rmse": lambda: np.sqrt(per_mse).mean(),
                      "mae": lambda: np.abs(diff).mean(axis=0).mean()}
            values.update({m: float(f()) for m, f in wanted.items() if m in self.metrics})
        return values

    def _sklearn(self, wanted: list[str], outs: np.ndarray, tgts: np.ndarray, k: int) -> dict[str, float]:
        if self.task == "binary":
            y = (tgts > 0.5).astype(np.int64)
            prob = _sigmoid(outs) if self.logits else np.clip(outs, 0.0, 1.0)
            # the 0/1 predictions only for the metrics that count them (an epoch's validation: auc alone)
            pred = ((outs > 0 if self.logits else outs > 0.5).astype(np.int64)
                    if {"accuracy", "precision", "recall", "f1"} & set(wanted) else None)
            return _binary_metrics(wanted, y, prob, pred)
        if self.task == "multiclass":
            scores = outs.reshape(-1, k) if k else outs.reshape(0, 0)
            y = tgts.astype(np.int64)
            prob = _softmax(scores) if self.logits else _normalize_rows(scores)
            pred = scores.argmax(axis=1) if scores.size else y
            return _multiclass_metrics(wanted, y, prob, pred, list(range(k)))
        shape = (-1, k) if k > 1 else (-1,)
        return _regression_metrics(wanted, tgts.reshape(shape), outs.reshape(shape))


# ------------------------------------------------------------------------------------------ loss sums


class LossSum:
    """The batch-size-weighted sum of per-batch mean losses, kept on the device: each batch adds a
    reference (no kernel, no sync); :meth:`tensor` folds in the batches since the last read and lets them go."""

    def __init__(self, device: Any, dtype: torch.dtype = torch.float64) -> None:
        self.device = torch.device(device)
        self.dtype = dtype
        self.reset()

    def reset(self) -> None:
        self._losses: list[torch.Tensor] = []
        self._sizes: list[int] = []
        self._total = torch.zeros((), dtype=self.dtype, device=self.device)
        self.count = 0

    def add(self, loss: torch.Tensor, n: int) -> None:
        self._losses.append(loss.detach().reshape(()))
        self._sizes.append(n)
        self.count += n

    def tensor(self) -> torch.Tensor:
        if self._losses:
            sizes = torch.tensor(self._sizes, dtype=self.dtype).to(self.device)
            self._total = self._total + (torch.stack(self._losses).to(self.dtype) * sizes).sum()
            self._losses, self._sizes = [], []
        return self._total

    def mean(self) -> float:
        """The mean loss per sample (one host read)."""
        return float(self.tensor().item()) / self.count if self.count else _NAN


# ------------------------------------------------------------------------------------------ sequences


def sequence_metrics(y_true: np.ndarray, y_pred: np.ndarray, pad: int, pad_ignored: bool = False) -> dict[str, float]:
    """Token accuracy and exact match of predicted token ids ``[N, L]`` against targets ``[N, L]``.

    Token accuracy counts only positions where the target is a real token (never ``pad``: padding
    that is easy to predict must not inflate it). Exact match: the whole row right, the padding
    after the end included (the predicted sequence ends where the target does), unless ``pad`` is
    the loss's ignore_index (``pad_ignored``): then only the real positions count.
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    real = y_true != pad
    right = (y_pred == y_true) | (~real if pad_ignored else False)
    tokens = int(real.sum())
    return {"accuracy": float((right & real).sum() / tokens) if tokens else _NAN,
            "exact_match": float(right.all(axis=1).mean()) if len(y_true) else _NAN}


class SequenceMetrics:
    """Streaming metrics of a token-sequence task: scores ``[B, L, V]`` against ids ``[B, L]``.

    ``accuracy`` counts the non-pad target positions predicted right (padding never inflates it);
    ``exact_match`` the rows predicted right at every position, padding included (the sequence
    must end where the target ends) unless the pad is the loss's ignore_index. Sums stay on the device.
    """

    def __init__(self, metrics: Sequence[str], *, pad: int, device: Any, pad_ignored: bool = False) -> None:
        self.metrics = metrics_for("sequence", list(metrics))
        self.pad = pad
        self.pad_ignored = pad_ignored
        self.device = torch.device(device)
        self.reset()

    def reset(self) -> None:
        self._loss = LossSum(self.device)
        self._sums = torch.zeros(3, dtype=torch.int64, device=self.device)  # right tokens, tokens, exact rows

    @property
    def count(self) -> int:
        return self._loss.count

    def loss_sum_tensor(self) -> torch.Tensor:
        return self._loss.tensor()

    def update(self, loss: torch.Tensor, output: torch.Tensor, target: torch.Tensor) -> None:
        output, target = output.detach(), target.detach()
        if output.dim() != 3 or target.dim() != 2 or output.shape[:2] != target.shape:
            raise ValueError(f"a token-sequence task needs scores [B, L, V] and targets [B, L]; got "
                             f"{tuple(output.shape)} and {tuple(target.shape)}")
        self._loss.add(loss, target.shape[0])
        real = target != self.pad
        right = output.argmax(dim=-1) == target
        if self.pad_ignored:
            right = right | ~real
        self._sums += torch.stack([(right & real).sum(), real.sum(), right.all(dim=1).sum()])

    def compute(self) -> dict[str, float]:
        host = self._sums.cpu().tolist()
        n = self._loss.count
        res = {"loss": self._loss.mean()}
        values = {"accuracy": host[0] / host[1] if host[1] else _NAN, "exact_match": host[2] / n if n else _NAN}
        res.update({m: float(values[m]) for m in self.metrics})
        return res
