"""Preparing a run: what the specs and the table become before the first epoch.

:func:`prepare` takes the resolved specs and the rows a training reads and returns a :class:`Prepared`
— a plain object holding the model, the split, the fitted preprocessing, the task heads and loss and
the batches. What the loop does with them (optimizer, monitors, early stopping, ...) the trainer spec
tells :meth:`specml.train.engine.Trainer.from_config`. Nothing here writes files or knows about runs,
the registry or the CLI; :func:`specml.api.train` wires it to the engine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from specml.data import tensors as T
from specml.data.arrays import to_numpy
from specml.data.files import is_list_type
from specml.graph import build_model
from specml.graph.allowlist import resolve_loss
from specml.graph.check import loss_params
from specml.spec.errors import suggestion
from specml.spec.load import merge_loss
from specml.train import distributed
from specml.train.engine import TensorBatches, seed_everything
from specml.train.errors import TrainingError
from specml.train.metrics import ALLOWED
from specml.train.tasks import Head, Heads

#: said (in the run's notes, printed by ``specml train``) when both imbalance corrections are on
DOUBLE_CORRECTION = ("warning: config.class_weights and config.oversample both correct the class imbalance, so the "
                     "minority class counts twice (weighted and repeated); keep one of them")


@dataclass
class Prepared:
    """Everything a run needs before its first epoch (see :func:`prepare`)."""

    model_spec: Any                 # the model spec with its loss(es), inferred when the specs said none
    model: torch.nn.Module
    preprocessor: T.Preprocessor
    heads: list[Head]
    criterion: Any                  # a plain loss (one simple task) or a Heads object
    task: str                       # binary | multiclass | regression | sequence | multitask
    simple: bool                    # one plain task: the engine's own metric path
    output_key: str | None          # the output the loss reads (None: the heads pick)
    train_rows: np.ndarray
    val_rows: np.ndarray
    train_batches: TensorBatches
    val_batches: TensorBatches | None
    split_seed: int
    notes: list[str] = field(default_factory=list)

    losses: list = field(default_factory=list)  # the spec's losses, each with its target column


def prepare(model_spec, trainer, data, target: str | None,
            rows: tuple[np.ndarray, np.ndarray] | None = None) -> Prepared:
    """Split (seeded, stratified by the first class target), fit the preprocessing on the training rows,
    build the model, the task heads and the batches, and settle what the run monitors. ``rows``:
    (training rows, validation rows) decided by the caller (a cross-validation fold) instead."""
    cfg = trainer.config
    notes: list[str] = []
    model_spec, losses, said = _with_loss(model_spec, trainer, data, target)
    notes += said

    # the split: seeded, stratified by the first class target, never the global RNG
    split_seed = cfg.seed if cfg.seed is not None else 0
    train_rows, val_rows = rows if rows is not None else T.validation_split(
        data.num_rows, cfg.validation_split, split_seed, _stratify_labels(data, losses))
    prep = T.fit(model_spec, data, losses, train_rows)
    notes += prep.notes

    if cfg.seed is not None:
        seed_everything(cfg.seed)
    model = build_model(model_spec, vocab_sizes=prep.vocab_sizes())
    _fit_sequence_lengths(model, prep, data)
    _, y = prep.transform(data, with_inputs=False)  # the targets, in table order (imbalance options read them)

    heads = _heads(prep, losses, cfg.metrics)
    first_y = y[heads[0].name] if isinstance(y, dict) else y  # imbalance options act on the first task
    if cfg.class_weights is not None:
        notes.append(_apply_class_weights(heads[0], losses[0], prep.target, first_y, train_rows, cfg.class_weights))
    if cfg.oversample:
        train_rows, said = _oversample(train_rows, first_y, prep.target, split_seed)
        notes.append(said)
    if cfg.class_weights is not None and cfg.oversample:
        notes.append(DOUBLE_CORRECTION)
    simple = len(heads) == 1 and heads[0].task != "sequence" and heads[0].center is None
    task = "multitask" if len(heads) > 1 else heads[0].task
    criterion = heads[0].criterion if simple else Heads(heads)
    output_key = (losses[0].inputs.input or next(iter(model_spec.outputs))) if simple else None

    # the inputs gathered once, training rows then validation rows (the table is not copied); the training
    # part is a view, the validation part a copy, so the training rows can be let go after training (and the
    # two row lists are views of the one order)
    n_train = len(train_rows)
    order = np.concatenate([train_rows, val_rows])
    inputs, _ = prep.transform(data, with_target=False, rows=order)
    if len(order) < 2**31:  # kept for the run's record: half the memory (gathered with int64, above)
        order = order.astype(np.int32)
    train_rows, val_rows = order[:n_train], order[n_train:]

    def subset(rows: np.ndarray, part: slice, copy: bool) -> tuple[dict, Any]:
        idx = torch.from_numpy(rows)
        xs = {k: v[part].clone() if copy else v[part] for k, v in inputs.items()}
        return xs, ({k: v[idx] for k, v in y.items()} if isinstance(y, dict) else y[idx])

    # under torchrun each rank reads its share of every global batch (docs/distributed.md)
    rank, world = distributed.placement()
    batch = cfg.batch_size * world if cfg.batch_size_per_device else cfg.batch_size
    if world > 1 and batch < world:
        raise TrainingError(f"config.batch_size: {cfg.batch_size} rows cannot be split across {world} processes; "
                            f"use batch_size >= {world} or batch_size_per_device: true")
    train_batches = TensorBatches(*subset(train_rows, slice(0, n_train), copy=False), batch, shuffle=cfg.shuffle,
                                  seed=split_seed, rank=rank, world_size=world)
    val_batches = (TensorBatches(*subset(val_rows, slice(n_train, None), copy=True), max(batch, 1024), shuffle=False,
                                 rank=rank, world_size=world)
                   if len(val_rows) else None)

    return Prepared(model_spec, model, prep, heads, criterion, task, simple, output_key, train_rows, val_rows,
                    train_batches, val_batches, split_seed, notes, losses)


def place_data(prepared: Prepared, device: torch.device, pin_memory: bool) -> None:
    """Move the batches to the device once when they fit (half the free memory), else pin them."""
    if device.type == "cpu":
        return
    batches = [b for b in (prepared.train_batches, prepared.val_batches) if b is not None]
    size = sum(t.numel() * t.element_size() for b in batches for t in [*b.inputs.values(), *_targets(b)])
    free = torch.cuda.mem_get_info(device)[0] if device.type == "cuda" else size * 4
    if size < free / 2:
        for b in batches:
            b.to(device)
    elif pin_memory:
        for b in batches:
            b.inputs = {k: v.pin_memory() for k, v in b.inputs.items()}
            b.target = ({k: v.pin_memory() for k, v in b.target.items()} if isinstance(b.target, dict)
                        else b.target.pin_memory())


def _targets(batches: TensorBatches) -> list[torch.Tensor]:
    t = batches.target
    return [] if t is None else list(t.values()) if isinstance(t, dict) else [t]


# ----------------------------------------------------------------------------------------------
# the loss and the task heads


def _with_loss(model_spec, trainer, data, target: str | None):
    """The model spec with a loss (inferred from the target's values when no spec names one), its
    losses with the target filled in, and what was said about the choice."""
    said = []
    if not model_spec.losses:
        loss, why = T.infer_loss(model_spec, data, target)
        said.append(why)
        model_spec = merge_loss(model_spec, trainer.model_copy(update={"loss": loss}))
    losses = list(model_spec.losses)
    if losses[0].inputs.target is None:
        first = losses[0]
        losses[0] = first.model_copy(update={"inputs": first.inputs.model_copy(update={"target": target})})
    return model_spec, losses, said


def stratify_labels(model_spec, trainer, data, target: str | None) -> np.ndarray | None:
    """The first class target's values (what the validation split and cross-validation folds stratify
    by), or None (regression, token sequences)."""
    return _stratify_labels(data, _with_loss(model_spec, trainer, data, target)[1])


def _stratify_labels(data, losses) -> np.ndarray | None:
    strat = next((lo for lo in losses if T.task_of(lo.type) != "regression" and isinstance(lo.inputs.target, str)),
                 None)
    if strat is None or is_list_type(data.schema.field(strat.inputs.target).type):
        return None
    return to_numpy(data.column(strat.inputs.target))


def criterion_of(loss_type: str, params: dict):
    """The loss as a callable: a torch.nn loss module, or a functional loss with its kwargs bound."""
    resolved = resolve_loss(loss_type)
    if resolved.kind == "module":
        return resolved.target(**params)
    fn = resolved.target

    def criterion(output, target):
        return fn(output, target, **params)

    return criterion


def _heads(prep, losses, requested_metrics) -> list[Head]:
    """One task head per loss: its criterion, task, metrics and (regression) target scaling."""
    heads = []
    for state, loss in zip(prep.targets.values(), losses, strict=True):
        criterion = criterion_of(loss.type, loss_params(loss.params))
        task = "sequence" if state.sequence else state.task
        metrics = [m for m in requested_metrics if m in ALLOWED[task]] if requested_metrics else None
        head = Head(state.name, task, state.output, criterion, weight=loss.weight, logits=state.logits,
                    metrics=metrics or None, pad=state.pad, pad_ignored=state.pad_ignored)
        if state.normalize != "none":
            head.center = torch.tensor(state.center, dtype=torch.float32)
            head.scale = torch.tensor(state.scale, dtype=torch.float32)
        heads.append(head)
    return heads


def _fit_sequence_lengths(model, prep, data) -> None:
    """A token-sequence target takes the length of the output it is compared with (a dry run on 2 rows)."""
    seq = [t for t in prep.targets.values() if t.sequence]
    if not seq:
        return
    import pyarrow.compute as pc

    inputs, _ = prep.transform(data.slice(0, 2), with_target=False)
    was = model.training
    model.eval()
    with torch.no_grad():
        out = model(**inputs)
    model.train(was)
    for t in seq:
        pred = out[t.output]
        if pred.dim() != 3:
            raise TrainingError(f"target '{t.column}' holds token sequences, so output '{t.output}' must be scores "
                                f"[B, L, vocabulary]; it is {list(pred.shape)}")
        longest = t.length
        t.length = int(pred.shape[1])
        most = int(pc.max(pc.list_value_length(data.column(t.columns[0]))).as_py() or 0)
        if most > t.length:
            raise TrainingError(f"target '{t.column}' holds sequences of up to {most} tokens (training rows: "
                                f"{longest}), but output '{t.output}' has {t.length} positions; lengthen the input "
                                "(shape [null, L]) so every target fits")


# ----------------------------------------------------------------------------------------------
# class imbalance (fitted on the training rows only)


def _class_counts(target, y, rows: np.ndarray) -> np.ndarray:
    if target.task not in ("binary", "multiclass") or target.sequence:
        raise TrainingError(f"class_weights/oversample need a classification target; '{target.column}' is "
                            f"{'a token sequence' if target.sequence else target.task}")
    ids = y.numpy()[rows].astype(np.int64)
    return np.bincount(ids, minlength=len(target.classes))


def _apply_class_weights(head, loss, target, y, train_rows: np.ndarray, setting) -> str:
    """Weights from the training rows: binary -> pos_weight, multiclass -> CrossEntropyLoss weight."""
    counts = _class_counts(target, y, train_rows)
    if setting == "auto":
        weights = counts.sum() / (len(counts) * np.maximum(counts, 1))
    else:
        by_name = {str(c): i for i, c in enumerate(target.classes)}
        unknown = [k for k in setting if k not in by_name]
        if unknown:
            hint = suggestion(unknown[0], list(by_name))
            raise TrainingError(f"config.class_weights: '{unknown[0]}' is not a class of '{target.column}' "
                                f"(classes: {list(by_name)})" + (f"; {hint}" if hint else ""))
        weights = np.ones(len(counts))
        for k, w in setting.items():
            weights[by_name[k]] = w
    short = loss.type.rsplit(".", 1)[-1]
    if short in ("BCEWithLogitsLoss", "binary_cross_entropy_with_logits"):
        key, value = "pos_weight", torch.tensor([weights[1] / weights[0]], dtype=torch.float32)
        what = f"pos_weight {weights[1] / weights[0]:.3f}"
    elif short in ("CrossEntropyLoss", "cross_entropy"):
        key, value = "weight", torch.tensor(weights, dtype=torch.float32)
        what = "weight [" + ", ".join(f"{w:.3f}" for w in weights) + "]"
    else:
        raise TrainingError(f"config.class_weights needs BCEWithLogitsLoss or CrossEntropyLoss (module or function); "
                            f"the loss is {loss.type}")
    if key in loss.params:
        raise TrainingError(f"config.class_weights and the loss's params.{key} both set the class weights; keep one")
    head.criterion = criterion_of(loss.type, {**loss_params(loss.params), key: value})
    counts_text = ", ".join(f"{c}: {n}" for c, n in zip(target.classes, counts, strict=True))
    return f"class weights from the training rows ({counts_text}): {what}"


def _oversample(train_rows: np.ndarray, y, target, seed: int) -> tuple[np.ndarray, str]:
    """Training rows with minority-class rows repeated (seeded) up to the majority count."""
    counts = _class_counts(target, y, train_rows)
    ids = y.numpy()[train_rows].astype(np.int64)
    rng = np.random.default_rng(seed)
    extra = [rng.choice(train_rows[ids == c], size=counts.max() - n, replace=True)
             for c, n in enumerate(counts) if 0 < n < counts.max()]
    rows = np.sort(np.concatenate([train_rows, *extra])) if extra else train_rows
    return rows, (f"oversampled the training rows from {len(train_rows)} to {len(rows)} "
                  f"(each class {counts.max()}); validation rows untouched")
