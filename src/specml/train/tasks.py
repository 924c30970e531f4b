"""Task heads: one loss per task, summed with weights, and per-task metrics.

A plain single-task run hands the engine a criterion and a task name. Runs that need more go through
:class:`Heads`, which is both the criterion (``heads(output, target)`` -> the weighted sum) and the
metric source (``heads.meter(...)``):

* multi-task: several outputs, several targets (a dict keyed by task name), one loss each;
  reported as ``<split>_loss`` (the weighted sum) and ``<split>_<task>_loss`` / ``<split>_<task>_<metric>``;
* a token-sequence target: scores ``[B, L, V]`` against ids ``[B, L]``, padding ignored, plus ``exact_match``;
* a standardized regression target: the loss sees standardized values, the metrics the target's own units.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from specml.spec.metrics import ALLOWED, metric_of, metrics_for
from specml.train.engine import align
from specml.train.metrics import STREAMED, LossSum, SequenceMetrics, StreamingMetrics


@dataclass
class Head:
    """One task: which output it reads, its loss, and how it is measured."""

    name: str
    task: str                       # binary | multiclass | regression | sequence
    output: str                     # the model output the loss reads
    criterion: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    weight: float = 1.0
    logits: bool = True
    metrics: Sequence[str] | None = None
    pad: int | None = None          # sequence: the target's pad id
    pad_ignored: bool = False       # sequence: the pad is the loss's ignore_index (not learned)
    center: torch.Tensor | None = None  # regression with a standardized target: y = y_std * scale + center
    scale: torch.Tensor | None = None

    def names(self) -> list[str]:
        return metrics_for(self.task, list(self.metrics) if self.metrics else None)

    def pair(self, output: Any, target: Any, keyed: bool) -> tuple[torch.Tensor, torch.Tensor]:
        pred = output[self.output] if isinstance(output, dict) else output
        tgt = target[self.name] if keyed else target
        if self.task == "sequence":
            return pred, tgt
        return align(pred, tgt)

    def loss(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.task == "sequence":  # [B, L, V] vs [B, L]: the loss sees tokens as rows
            return self.criterion(pred.reshape(-1, pred.shape[-1]), target.reshape(-1))
        return self.criterion(pred, target)

    def denormalize(self, y: torch.Tensor) -> torch.Tensor:
        """Standardized values -> the target's units (per column for [B, k]; [B] and [B, 1] use column 0)."""
        if y.dim() > 1 and y.shape[-1] == self.scale.numel():
            return y * self.scale + self.center
        return y * self.scale[0] + self.center[0]

    def to(self, device: torch.device) -> Head:
        if self.center is not None:
            self.center, self.scale = self.center.to(device), self.scale.to(device)
        return self


class Heads:
    """The criterion and the metric source of a run with one or more task heads."""

    def __init__(self, heads: Sequence[Head]) -> None:
        if not heads:
            raise ValueError("no task heads")
        self.heads = list(heads)
        self.multi = len(self.heads) > 1
        self.last: dict[str, torch.Tensor] = {}

    # -- the criterion ---------------------------------------------------------------------------

    def __call__(self, output: Any, target: Any) -> torch.Tensor:
        keyed = isinstance(target, dict)
        total = None
        self.last = {}
        for head in self.heads:
            part = head.loss(*head.pair(output, target, keyed))
            self.last[head.name] = part.detach()
            weighted = part * head.weight if head.weight != 1.0 else part
            total = weighted if total is None else total + weighted
        return total

    # -- metrics -----------------------------------------------------------------------------------

    def metric_names(self, split: str, watched: set[str] | frozenset = frozenset()) -> list[str]:
        """Names reported for ``split`` without the split prefix (``auc``; multi-task: ``diabetes_auc``)."""
        out: list[str] = []
        for head in self.heads:
            prefix = f"{head.name}_" if self.multi else ""
            names = head.names()
            if split == "train":
                names = [m for m in names if m in STREAMED or f"train_{prefix}{m}" in watched]
            if self.multi:
                out.append(f"{prefix}loss")
            out += [prefix + m for m in names]
        return out

    def watch(self, keys: Sequence[str | None]) -> None:
        """Monitors on metrics a head does not report by default (``val_diabetes_auc``) turn them on."""
        for key in keys:
            if not key:
                continue
            metric = metric_of(key)
            rest = key.split("_", 1)[1] if "_" in key else key
            for head in self.heads:
                prefix = f"{head.name}_" if self.multi else ""
                if rest == prefix + metric and metric in ALLOWED[head.task] and metric not in head.names():
                    head.metrics = [*head.names(), metric]

    def meter(self, names: Sequence[str], device: torch.device) -> HeadsMeter:
        return HeadsMeter(self, set(names), device)

    def to(self, device: torch.device) -> Heads:
        for head in self.heads:
            head.to(device)
        return self


class HeadsMeter:
    """Per-head streaming meters behind the engine's meter interface (update / compute / loss_sum_tensor)."""

    def __init__(self, heads: Heads, names: set[str], device: torch.device) -> None:
        self.heads = heads
        self.device = device
        self.meters = {}
        for head in heads.heads:
            prefix = f"{head.name}_" if heads.multi else ""
            wanted = [m for m in head.names() if prefix + m in names]
            if head.task == "sequence":
                self.meters[head.name] = SequenceMetrics(wanted, pad=head.pad, device=device,
                                                         pad_ignored=head.pad_ignored)
            else:
                wanted = [m for m in wanted if m in ALLOWED[head.task]]
                self.meters[head.name] = StreamingMetrics(head.task, wanted, logits=head.logits, device=device)
        self.reset()

    def reset(self) -> None:
        self._loss = LossSum(self.device)
        for m in self.meters.values():
            m.reset()

    @property
    def count(self) -> int:
        return self._loss.count

    def loss_sum_tensor(self) -> torch.Tensor:
        return self._loss.tensor()

    def update(self, loss: torch.Tensor, output: Any, target: Any) -> None:
        keyed = isinstance(target, dict)
        n = None
        for head in self.heads.heads:
            pred, tgt = head.pair(output, target, keyed)
            pred = pred.detach()
            if head.center is not None:  # metrics in the target's own units
                pred, tgt = head.denormalize(pred), head.denormalize(tgt)
            part = self.heads.last.get(head.name, loss)
            self.meters[head.name].update(part, pred, tgt)
            n = n or (tgt.shape[0] if tgt.dim() else 1)
        self._loss.add(loss, n or 0)

    def compute(self) -> dict[str, float]:
        res = {"loss": self._loss.mean()}
        for head in self.heads.heads:
            values = self.meters[head.name].compute()
            if self.heads.multi:
                res.update({f"{head.name}_{k}": v for k, v in values.items()})
            else:
                res.update({k: v for k, v in values.items() if k != "loss"})
        return res
