"""Which task a loss trains (torch-free: the spec checks and the CLI use it before torch is imported)."""

from __future__ import annotations

BINARY_LOSSES = {"BCELoss", "BCEWithLogitsLoss", "binary_cross_entropy", "binary_cross_entropy_with_logits"}
MULTICLASS_LOSSES = {"CrossEntropyLoss", "NLLLoss", "cross_entropy", "nll_loss"}
PROBABILITY_LOSSES = {"BCELoss", "binary_cross_entropy"}  # these read probabilities, not logits


def task_of(loss_type: str) -> str:
    """``binary``, ``multiclass`` or ``regression`` for a loss type name (short or full)."""
    short = loss_type.rsplit(".", 1)[-1]
    if short in BINARY_LOSSES:
        return "binary"
    if short in MULTICLASS_LOSSES:
        return "multiclass"
    return "regression"


def reads_logits(loss_type: str) -> bool:
    return loss_type.rsplit(".", 1)[-1] not in PROBABILITY_LOSSES
