"""The verbs, as Python functions: train, evaluate, predict, list and show models.

The CLI is a thin layer over these. Each reads tables from a workspace and models from the specml
home (``SPECML_HOME`` or ``~/.specml``); both can be given explicitly.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from specml.spec.errors import SpecError, SpecIssue

PREDICT_BATCH = 8192


@dataclass
class TrainResult:
    name: str
    directory: Path
    task: str
    rows: dict[str, int]
    history: dict[str, list[float]]
    best_epoch: int | None
    best: dict[str, float]
    final: dict[str, float]
    seconds: float
    notes: list[str] = field(default_factory=list)
    run_dir: Path | None = None


def _open_workspace(workspace: Any, read_only: bool = False):
    """The caller's Workspace, or one opened here (read-only when only reading: several processes,
    e.g. background jobs, can then read one workspace file at the same time)."""
    from specml.data.workspace import Workspace

    return workspace if hasattr(workspace, "read_columns") else Workspace(workspace, read_only=read_only)


def _done_with(ws: Any, workspace: Any) -> None:
    """Close a workspace this module opened (never the caller's)."""
    if ws is not workspace:
        ws.close()


def _read_text(path: str | Path | None) -> str | None:
    return None if path is None else Path(path).read_text(encoding="utf-8")


def resolve_specs(model_spec: str | Path, trainer_spec: str | Path | None):
    """The model spec (with its loss, from wherever it was written) and the trainer spec."""
    from specml.spec import load_spec, merge_loss

    model_file = load_spec(model_spec)
    if model_file.model is None:
        raise SpecError([SpecIssue((), "this file holds a trainer spec; pass it as --trainer-spec",
                                   None, str(model_spec))])
    trainer = model_file.trainer
    if trainer_spec is not None:
        trainer_file = load_spec(trainer_spec)
        if trainer_file.trainer is None:
            raise SpecError([SpecIssue((), "this file holds a model spec, not a trainer spec", None, str(trainer_spec))])
        if trainer is not None:
            raise SpecError([SpecIssue(("training",), "the model file has its own training section and a trainer "
                                                      "spec was given too", "use one of them", str(model_spec))])
        trainer = trainer_file.trainer
        try:
            model = merge_loss(model_file.model, trainer)
        except SpecError as err:
            raise err.with_file(str(trainer_spec)) from None
    else:
        model = model_file.model
    if trainer is None:
        raise SpecError([SpecIssue((), "no trainer spec: pass --trainer-spec, or add a training: section to the "
                                       "model file", None, str(model_spec))])
    return model, trainer


def train(model_spec: str | Path, trainer_spec: str | Path | None = None, *, table: str, name: str,
          target: str | None = None, workspace: Any = None, home: str | Path | None = None,
          verbose: bool = True, progress: bool | None = None, device: str | None = None, resume: bool = False,
          track: bool = True, callbacks: list | None = None, overrides: dict | None = None,
          model_spec_name: str | None = None, trainer_spec_name: str | None = None) -> TrainResult:
    """Train the model a spec describes on a workspace table; save it as ``models/<name>/``.

    Every run gets a directory ``runs/<timestamp>_<name>/`` (specs, facts, figures, TensorBoard files,
    checkpoints, log; ``track=False`` writes only the checkpoints there). ``resume=True`` continues the
    model's last run from its last checkpoint, refusing when the specs or data differ from that run's.
    """
    import torch

    from specml.artifact import ModelArtifact, library_versions, spec_hash
    from specml.data import tensors as T
    from specml.graph import build_model
    from specml.spec.load import merge_loss
    from specml.track.run import RegistryRecorder, point_model_to_run, trackers
    from specml.train.checkpoint import save_weights
    from specml.train.engine import EarlyStopping, TensorBatches, Trainer, TrainingError, seed_everything
    from specml.train.metrics import HIGHER_IS_BETTER, metric_of
    from specml.train.optim import build_optimizer, build_scheduler

    started = time.perf_counter()
    artifact = ModelArtifact.for_name(name, home)
    model_spec_obj, trainer = resolve_specs(model_spec, trainer_spec)
    cfg = trainer.config
    if cfg.distributed:
        raise TrainingError("config.distributed: multi-process training (torch DDP under torchrun) is not part of "
                            "this version yet; remove distributed/world_size/backend to train in one process")
    notes: list[str] = []
    ws = _open_workspace(workspace, read_only=True)
    try:
        ws.require_table(table)
        data, target_cols, losses = _read_training_data(ws, table, model_spec_obj, target)
    finally:
        _done_with(ws, workspace)
    target_col = target or (losses[0].inputs.target if len(losses) == 1 else None)
    if not losses:
        loss, said = T.infer_loss(model_spec_obj, data, target_col)
        notes.append(said)
        model_spec_obj = merge_loss(model_spec_obj, trainer.model_copy(update={"loss": loss}))

    losses = model_spec_obj.losses
    if losses[0].inputs.target is None:
        first = losses[0]
        losses[0] = first.model_copy(update={"inputs": first.inputs.model_copy(update={"target": target_col})})
    loss = losses[0]
    output_key = loss.inputs.input or next(iter(model_spec_obj.outputs))

    # the split: seeded, stratified by the first class target, never the global RNG
    split_seed = cfg.seed if cfg.seed is not None else 0
    strat = next((lo for lo in losses if T.task_of(lo.type) != "regression" and isinstance(lo.inputs.target, str)),
                 None)
    labels = None
    if strat is not None and not pa_is_list(data.schema.field(strat.inputs.target).type):
        labels = data.column(strat.inputs.target).to_numpy(zero_copy_only=False)
    train_rows, val_rows = T.validation_split(data.num_rows, cfg.validation_split, split_seed, labels)
    prep = T.fit(model_spec_obj, data, losses, train_rows)
    notes += prep.notes

    if cfg.seed is not None:
        seed_everything(cfg.seed)
    model = build_model(model_spec_obj, vocab_sizes=prep.vocab_sizes())
    _fit_sequence_lengths(model, prep, data)
    inputs, y = prep.transform(data)
    heads = _heads(prep, losses, cfg.metrics)
    first_y = y[heads[0].name] if isinstance(y, dict) else y  # imbalance options act on the first task
    if cfg.class_weights is not None:
        notes.append(_apply_class_weights(heads[0], losses[0], prep.target, first_y, train_rows, cfg.class_weights))
    if cfg.oversample:
        train_rows, said = _oversample(train_rows, first_y, prep.target, split_seed)
        notes.append(said)
    simple = len(heads) == 1 and heads[0].task != "sequence" and heads[0].center is None
    task = "multitask" if len(heads) > 1 else heads[0].task
    if simple:
        criterion = heads[0].criterion
    else:
        from specml.train.tasks import Heads

        criterion = Heads(heads)
        output_key = None
    optimizer = build_optimizer(trainer.optimizer, model.parameters())
    scheduler = build_scheduler(trainer.scheduler, optimizer) if trainer.scheduler else None

    def subset(rows: np.ndarray) -> tuple[dict, Any]:
        idx = torch.from_numpy(rows)
        return {k: v[idx] for k, v in inputs.items()}, ({k: v[idx] for k, v in y.items()} if isinstance(y, dict)
                                                        else y[idx])

    train_x, train_y = subset(train_rows)
    train_batches = TensorBatches(train_x, train_y, cfg.batch_size, shuffle=cfg.shuffle, seed=split_seed)
    val_batches = None
    if len(val_rows):
        val_x, val_y = subset(val_rows)
        val_batches = TensorBatches(val_x, val_y, max(cfg.batch_size, 1024), shuffle=False)

    monitor = cfg.early_stopping_monitor
    mode = cfg.early_stopping_mode
    if "early_stopping_mode" not in cfg.model_fields_set:  # unsaid: follow the metric (val_auc -> max)
        mode = "max" if HIGHER_IS_BETTER.get(metric_of(monitor), False) else "min"
    if cfg.early_stopping_patience is None and monitor == "val_loss" and val_batches is None:
        monitor = "train_loss"
    es = (EarlyStopping(cfg.early_stopping_patience, cfg.early_stopping_min_delta, monitor, mode)
          if cfg.early_stopping_patience else None)
    watched = [monitor, trainer.scheduler.monitor if trainer.scheduler else None]
    metrics = _metrics_with_monitors(task, cfg.metrics, watched) if simple else None
    if not simple:
        _add_watched_metrics(criterion, watched)
    sched_monitor = (trainer.scheduler.monitor if trainer.scheduler and trainer.scheduler.monitor else
                     ("val_loss" if val_batches is not None else "train_loss"))
    # the run: its directory, what it ran with (a resume must match it), its trackers
    model_text = _read_text(model_spec)
    trainer_text = _read_text(trainer_spec)
    run_info = {"model_spec": model_spec_obj.model_dump(mode="json"),
                "trainer_spec": trainer.model_dump(mode="json", exclude={"config": {"verbose", "device"}}),
                "table": table, "data": {"rows": data.num_rows, "sha256": _table_hash(data)},
                "target": target_cols}
    overrides = {k: v for k, v in {"target": target, "device": device, **(overrides or {})}.items() if v is not None}
    run, restore_from, resumed_from = _open_run(name, artifact, home, resume, run_info)
    if restore_from is None:
        run.write_specs(model_text, trainer_text, {"model": run_info["model_spec"], "trainer": run_info["trainer_spec"]},
                        overrides)
    point_model_to_run(artifact.directory, run, "running")
    run_meta = {"name": name, "task": task, "table": table, "seed": cfg.seed, "rows_train": int(len(train_rows)),
                "rows_validation": int(len(val_rows)), "spec_hashes": {"model": spec_hash(model_text),
                                                                       "trainer": spec_hash(trainer_text)
                                                                       if trainer_text else None}}
    if resumed_from is not None:
        run_meta["resumed_from_epoch"] = resumed_from
    callbacks = [*(trackers(run, metadata=run_meta, histogram_every=cfg.histogram_every,
                            figures_every=cfg.figures_every, tensorboard=cfg.tensorboard) if track else []),
                 *(callbacks or [])]
    engine = Trainer(
        model, train_batches, val_batches, device=device or cfg.device, callbacks=callbacks, run_info=run_info,
        checkpoint_dir=run.checkpoints, log_interval=cfg.log_every, output_key=output_key,
        task=task if simple else criterion, metrics=metrics, logits=heads[0].logits, monitor=monitor, mode=mode,
        early_stopping=es,
        gradient_clip_val=cfg.gradient_clip_val, gradient_clip_norm=cfg.gradient_clip_norm,
        accumulate_grad_batches=cfg.accumulate_grad_batches,
        scheduler_interval=trainer.scheduler.interval if trainer.scheduler else "epoch",
        scheduler_monitor=sched_monitor, pin_memory=cfg.pin_memory, mixed_precision=cfg.mixed_precision,
        verbose=verbose and cfg.verbose,
        progress=progress,
    )
    _place_data(engine, train_batches, val_batches, cfg.pin_memory)
    if restore_from is not None:
        engine.restore(restore_from, optimizer, scheduler)
        notes.append(f"resumed run {run.run_id} after epoch {resumed_from}")
    recorder = RegistryRecorder(home) if track else None
    if recorder is not None:
        recorder.start(name, run, model_spec_name=model_spec_name, trainer_spec_name=trainer_spec_name,
                       model_spec_hash=spec_hash(model_text),
                       trainer_spec_hash=spec_hash(trainer_text) if trainer_text else None, table_name=table,
                       data_rows=data.num_rows, data_hash=run_info["data"]["sha256"], epochs_total=cfg.epochs,
                       model_dir=str(artifact.directory))
    try:
        history = engine.train(cfg.epochs, optimizer, criterion, scheduler, save_every=cfg.checkpoint_every,
                               save_best=True, save_best_only=cfg.save_best_only)
    except BaseException as err:
        point_model_to_run(artifact.directory, run, "interrupted" if isinstance(err, KeyboardInterrupt) else "failed")
        if recorder is not None:
            recorder.finish("cancelled" if isinstance(err, KeyboardInterrupt) else "failed",
                            error=f"{type(err).__name__}: {err}", epochs_done=engine.epoch)
        raise

    # the artifact: best weights, the exact specs, what was learned from the data, the metrics
    best_epoch = engine.best.epoch
    if engine.best.state is not None:
        model.load_state_dict(engine.best.state)
    artifact.directory.mkdir(parents=True, exist_ok=True)
    save_weights(artifact.weights_path, model, {"name": name, "epoch": str(best_epoch)})
    artifact.write_specs(model_text, trainer_text)
    at = (best_epoch or len(history["train_loss"])) - 1
    best = {k: v[at] for k, v in history.items() if k.startswith(("train_", "val_"))}
    final = {k: v[-1] for k, v in history.items() if k.startswith(("train_", "val_"))}
    seconds = time.perf_counter() - started
    best, final = _finite(best), _finite(final)
    artifact.write_metadata({
        "name": name, "task": task, "table": table, "target": target_cols[0] if len(target_cols) == 1 else target_cols,
        "tasks": {h.name: {"task": h.task, "output": h.output, "target": prep.targets[h.name].column,
                           "weight": h.weight} for h in heads},
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "inputs": {k: v.columns or [] for k, v in model_spec_obj.inputs.items()},
        "output": output_key,
        "loss": loss.model_dump() if len(losses) == 1 else [lo.model_dump() for lo in losses],
        "rows": {"total": data.num_rows, "train": int(len(train_rows)), "validation": int(len(val_rows))},
        "preprocessing": prep.to_dict(),
        "monitor": monitor, "monitor_mode": mode,
        "best": {"metric": monitor, "value": best.get(monitor), "epoch": best_epoch},
        "metrics": {"best": best, "final": final, "best_epoch": best_epoch,
                    "higher_is_better": {k: HIGHER_IS_BETTER.get(metric_of(k), False) for k in best}},
        "epochs": {"run": len(history["train_loss"]), "planned": cfg.epochs,
                   "stopped_early": bool(es is not None and es.stopped_epoch is not None)},
        "seed": cfg.seed, "split_seed": split_seed,
        "spec_hashes": {"model": spec_hash(model_text), "trainer": spec_hash(trainer_text) if trainer_text else None},
        "versions": library_versions(),
        "device": str(engine.runtime.device),
        "timings": {"total_s": round(seconds, 3),
                    "epoch_mean_s": round(float(np.mean(history["epoch_time_s"])), 4)},
        "notes": notes,
        "run": {"run_id": run.run_id, "run_dir": str(run.path)},
        "lineage": {"model_spec": model_spec_name, "trainer_spec": trainer_spec_name, "table": table,
                    "data_sha256": run_info["data"]["sha256"]},
    })
    point_model_to_run(artifact.directory, run, "completed")
    if recorder is not None:
        recorder.finish("completed", epochs_done=len(history["train_loss"]), best_metric=monitor,
                        best_value=best.get(monitor))
    return TrainResult(name, artifact.directory, task, {"train": int(len(train_rows)), "validation": int(len(val_rows))},
                       history, best_epoch, best, final, seconds, notes, run.path)


def _read_training_data(ws, table: str, model_spec_obj, target: str | None):
    """The columns a training reads (features and targets), checked; and the spec's losses."""
    from specml.train.engine import TrainingError

    losses = model_spec_obj.losses
    if target is not None and len(losses) > 1:
        raise TrainingError("--target names one column, but the spec has several losses (multi-task); each loss "
                            "names its own target")
    if target is not None and losses and losses[0].inputs.target not in (None, target):
        raise TrainingError(f"--target {target} but the spec's loss reads column '{losses[0].inputs.target}'")
    target_col = target or (losses[0].inputs.target if len(losses) == 1 else None)
    if len(losses) > 1:
        missing = [i for i, lo in enumerate(losses) if lo.inputs.target is None]
        if missing:
            raise TrainingError(f"loss[{missing[0]}] names no target column; in a multi-task spec each loss "
                                "names its own (inputs.target)")
    elif target_col is None:
        raise TrainingError("no target: the spec names no loss target; pass --target COLUMN")
    target_cols = [c for lo in losses for c in lo.inputs.target_columns] if len(losses) > 1 else (
        [target_col] if isinstance(target_col, str) else list(target_col))
    feature_cols = [c for inp in model_spec_obj.inputs.values() for c in (inp.columns or [])]
    needed = list(dict.fromkeys([*feature_cols, *target_cols]))
    ws.require_columns(table, needed)
    data = ws.read_columns(table, needed)
    if data.num_rows == 0:
        from specml.data.workspace import DataError

        raise DataError(f"table '{table}' is empty: nothing to train on")
    return data, target_cols, losses


def _table_hash(data) -> str:
    """A fingerprint of the rows a run reads (the Arrow IPC stream of the columns, sha256)."""
    import hashlib

    import pyarrow as pa

    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, data.schema) as writer:
        writer.write_table(data)
    return hashlib.sha256(sink.getvalue()).hexdigest()


def _open_run(name: str, artifact, home, resume: bool, run_info: dict):
    """(run dir, checkpoint to restore or None, its epoch or None): a new run, or the model's last run."""
    from specml.track.run import RunDir, changes, model_run
    from specml.train.checkpoint import read_checkpoint_state
    from specml.train.engine import TrainingError

    if not resume:
        return RunDir.create(name, home), None, None
    run = model_run(artifact.directory)
    if run is None:
        raise TrainingError(f"--resume: model '{name}' has no run to resume under {artifact.directory}; "
                            "train it without --resume first")
    last = run.checkpoints / "last.safetensors"
    if not last.is_file():
        raise TrainingError(f"--resume: run {run.run_id} has no checkpoint (it stopped before its first epoch "
                            "ended); train again without --resume")
    state = read_checkpoint_state(last)
    before = state.get("run") or {}
    diff = changes(before, run_info)
    if diff:
        raise TrainingError(f"--resume: run {run.run_id} was trained with other specs or data; changed since its "
                            "checkpoint:\n  " + "\n  ".join(diff) + "\nresume with the run's own specs "
                            f"({run.specs}) or train a new model")
    return run, last, int(state["epoch"])


def pa_is_list(typ) -> bool:
    import pyarrow as pa

    return pa.types.is_list(typ) or pa.types.is_large_list(typ) or pa.types.is_fixed_size_list(typ)


def _fit_sequence_lengths(model, prep, data) -> None:
    """A token-sequence target takes the length of the output it is compared with (a dry run on 2 rows)."""
    import torch

    seq = [t for t in prep.targets.values() if t.sequence]
    if not seq:
        return
    from specml.train.engine import TrainingError

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
        import pyarrow.compute as pc

        most = int(pc.max(pc.list_value_length(data.column(t.columns[0]))).as_py() or 0)
        if most > t.length:
            raise TrainingError(f"target '{t.column}' holds sequences of up to {most} tokens (training rows: "
                                f"{longest}), but output '{t.output}' has {t.length} positions; lengthen the input "
                                "(shape [null, L]) so every target fits")


def _criterion(loss_type: str, params: dict):
    """The loss as a callable: a torch.nn loss module, or a functional loss with its kwargs bound."""
    from specml.graph.allowlist import resolve_loss

    resolved = resolve_loss(loss_type)
    return resolved.target(**params) if resolved.kind == "module" else _functional_loss(resolved.target, params)


def _heads(prep, losses, requested_metrics):
    """One task head per loss: its criterion, task, metrics and (regression) target scaling."""
    import torch

    from specml.graph.check import loss_params
    from specml.train.metrics import ALLOWED
    from specml.train.tasks import Head

    heads = []
    for state, loss in zip(prep.targets.values(), losses, strict=True):
        criterion = _criterion(loss.type, loss_params(loss.params))
        task = "sequence" if state.sequence else state.task
        metrics = [m for m in requested_metrics if m in ALLOWED[task]] if requested_metrics else None
        head = Head(state.name, task, state.output, criterion, weight=loss.weight, logits=state.logits,
                    metrics=metrics or None, pad=state.pad, pad_ignored=state.pad_ignored)
        if state.normalize != "none":
            head.center = torch.tensor(state.center, dtype=torch.float32)
            head.scale = torch.tensor(state.scale, dtype=torch.float32)
        heads.append(head)
    return heads


def _class_counts(target, y, rows: np.ndarray) -> np.ndarray:
    if target.task not in ("binary", "multiclass") or target.sequence:
        from specml.train.engine import TrainingError

        raise TrainingError(f"class_weights/oversample need a classification target; '{target.column}' is "
                            f"{'a token sequence' if target.sequence else target.task}")
    ids = y.numpy()[rows].astype(np.int64)
    return np.bincount(ids, minlength=len(target.classes))


def _apply_class_weights(head, loss, target, y, train_rows: np.ndarray, setting) -> str:
    """Weights from the training rows: binary -> pos_weight, multiclass -> CrossEntropyLoss weight."""
    import torch

    from specml.train.engine import TrainingError

    counts = _class_counts(target, y, train_rows)
    if setting == "auto":
        weights = counts.sum() / (len(counts) * np.maximum(counts, 1))
    else:
        by_name = {str(c): i for i, c in enumerate(target.classes)}
        unknown = [k for k in setting if k not in by_name]
        if unknown:
            from specml.spec.errors import suggestion

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
    from specml.graph.check import loss_params

    head.criterion = _criterion(loss.type, {**loss_params(loss.params), key: value})
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


def _add_watched_metrics(heads, watched: list[str | None]) -> None:
    """A monitor on a metric a head does not report by default (val_diabetes_auc) turns it on."""
    from specml.train.metrics import ALLOWED, metric_of

    for key in watched:
        if not key:
            continue
        metric = metric_of(key)
        rest = key.split("_", 1)[1] if "_" in key else key
        for head in heads.heads:
            prefix = f"{head.name}_" if heads.multi else ""
            if rest == prefix + metric and metric in ALLOWED[head.task] and metric not in head.names():
                head.metrics = [*head.names(), metric]


def _metrics_with_monitors(task: str, requested: list[str] | None, monitors: list[str | None]) -> list[str] | None:
    """The run's metrics, plus any metric a monitor watches (early stopping on val_f1 reports f1)."""
    from specml.train.metrics import ALLOWED, metrics_for

    try:
        names = metrics_for(task, requested)
    except ValueError:
        return requested  # reported with its message by the engine's check
    for key in monitors:
        metric = key.split("_", 1)[1] if key and "_" in key else None
        if metric in ALLOWED[task] and metric not in names:
            names.append(metric)
    return names


def _finite(metrics: dict[str, float]) -> dict[str, float | None]:
    """Undefined metrics (NaN, e.g. precision with no positive prediction) are stored as null."""
    return {k: (v if isinstance(v, float) and math.isfinite(v) else None) for k, v in metrics.items()}


def _functional_loss(fn, params: dict):
    def criterion(output, target):
        return fn(output, target, **params)

    return criterion


def _place_data(engine, train_batches, val_batches, pin_memory: bool) -> None:
    """Move the tensors to the device once when they fit (half the free memory), else pin them."""
    import torch

    device = engine.runtime.device
    if device.type == "cpu":
        return
    batches = [b for b in (train_batches, val_batches) if b is not None]
    size = sum(t.numel() * t.element_size() for b in batches for t in [*b.inputs.values(), b.target])
    free = torch.cuda.mem_get_info(device)[0] if device.type == "cuda" else size * 4
    if size < free / 2:
        for b in batches:
            b.to(device)
    elif pin_memory:
        for b in batches:
            b.inputs = {k: v.pin_memory() for k, v in b.inputs.items()}
            b.target = b.target.pin_memory()


# ----------------------------------------------------------------------------------------------
# using a trained model


@dataclass
class Trained:
    name: str
    model: Any
    preprocessor: Any
    metadata: dict
    spec: Any


def load_trained(name: str, home: str | Path | None = None) -> Trained:
    """A trained model from ``models/<name>/``: weights (safetensors, no pickle), specs, preprocessing."""
    from specml.artifact import ModelArtifact
    from specml.data.tensors import Preprocessor
    from specml.graph import build_model
    from specml.spec import load_model_spec
    from specml.train.checkpoint import load_weights

    artifact = ModelArtifact.for_name(name, home)
    meta = artifact.read_metadata()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        spec = load_model_spec(artifact.model_spec_path, check=False)
    prep = Preprocessor.from_dict(meta["preprocessing"])
    model = build_model(spec, vocab_sizes=prep.vocab_sizes())
    load_weights(artifact.weights_path, model)
    model.eval()
    return Trained(name, model, prep, meta, spec)


def task_scores(trained: Trained, data) -> dict[str, np.ndarray]:
    """Per task: positive-class probabilities (binary), class probabilities (multiclass), values in the
    target's units (regression, [N] or [N, k]) or predicted token ids [N, L] (sequences)."""
    import torch

    inputs, _ = trained.preprocessor.transform(data, with_target=False)
    targets = trained.preprocessor.targets
    parts: dict[str, list[np.ndarray]] = {name: [] for name in targets}
    with torch.inference_mode():
        for start in range(0, data.num_rows, PREDICT_BATCH):
            batch = {k: v[start:start + PREDICT_BATCH] for k, v in inputs.items()}
            out = trained.model(**batch)
            for name, t in targets.items():
                y = out[t.output].float()
                if t.sequence:
                    y = y.argmax(dim=-1)
                elif t.task == "binary":
                    y = (torch.sigmoid(y) if t.logits else y).reshape(-1)
                elif t.task == "multiclass":
                    y = torch.softmax(y, dim=-1) if t.logits else y
                elif y.dim() == 2 and y.shape[1] == 1 and isinstance(t.column, str):
                    y = y[:, 0]
                parts[name].append(y.numpy())
    result = {}
    for name, t in targets.items():
        values = np.concatenate(parts[name]) if parts[name] else np.empty(0)
        result[name] = t.denormalize(values) if t.task == "regression" and not t.sequence else values
    return result


def scores(trained: Trained, data) -> np.ndarray:
    """The scores of a single-task model (the first task of a multi-task one); see :func:`task_scores`."""
    return next(iter(task_scores(trained, data).values()))


def _columns_of(meta: dict) -> tuple[list[str], list[str]]:
    features = list(dict.fromkeys(c for cols in meta["inputs"].values() for c in cols))
    target = meta["target"]
    return features, [target] if isinstance(target, str) else list(target)


def evaluate(name: str, table: str, *, workspace: Any = None, home: str | Path | None = None,
             figures: bool = True) -> dict:
    """Metrics of a trained model on a table that holds the target(s) (scikit-learn metrics).

    Multi-task models report ``<task>_<metric>`` for each task, and the same per task under ``tasks``.
    ``figures``: a confusion matrix, ROC and PR curves (classification) or residual plots (regression)
    in the model's run directory (``figures/evaluate_<table>/``). The evaluation is recorded in the registry.
    Classical models (``specml train --estimator-spec``) are evaluated by :mod:`specml.classical`.
    """
    from specml.artifact import ModelArtifact

    if ModelArtifact.for_name(name, home).read_metadata().get("kind") == "classical":
        from specml.classical.predict import evaluate_classical

        report = evaluate_classical(name, table, workspace=workspace, home=home)
        _record_evaluation(name, table, report, home)
        return report
    from specml.train.metrics import evaluate_predictions, sequence_metrics

    trained = load_trained(name, home)
    ws = _open_workspace(workspace, read_only=True)
    meta = trained.metadata
    features, targets = _columns_of(meta)
    try:
        ws.require_table(table)
        ws.require_columns(table, list(dict.fromkeys([*features, *targets])))
        data = ws.read_columns(table, list(dict.fromkeys([*features, *targets])))
    finally:
        _done_with(ws, workspace)
    if data.num_rows == 0:
        from specml.data.workspace import DataError

        raise DataError(f"table '{table}' is empty")
    _, y = trained.preprocessor.transform(data, normalized=False)
    ys = y if isinstance(y, dict) else {next(iter(trained.preprocessor.targets)): y}
    per_task: dict[str, dict] = {}
    written: list[str] = []
    multi = len(trained.preprocessor.targets) > 1
    for task_name, s in task_scores(trained, data).items():
        t = trained.preprocessor.targets[task_name]
        y_true = ys[task_name].numpy()
        if t.sequence:
            metrics = sequence_metrics(y_true, s, t.pad, t.pad_ignored)
        else:
            y_true = y_true if t.task == "regression" else y_true.astype(np.int64)  # class ids, as `s` is
            metrics = evaluate_predictions(t.task, y_true, s)
            if figures:
                written += _evaluation_figures(name, home, table, task_name if multi else None, t, y_true, s)
        per_task[task_name] = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in metrics.items()}
    flat = ({f"{n}_{k}": v for n, m in per_task.items() for k, v in m.items()} if multi
            else next(iter(per_task.values())))
    report = {"model": name, "table": table, "rows": data.num_rows, "task": meta["task"], "metrics": flat}
    if multi:
        report["tasks"] = per_task
    if written:
        report["figures"] = written
    _record_evaluation(name, table, report, home)
    return report


def _evaluation_figures(name, home, table: str, task_name: str | None, t, y_true, s) -> list[str]:
    """Confusion matrix / ROC / PR (classification) or residual plots, under the model's run."""
    import warnings as _w

    from specml.artifact import ModelArtifact
    from specml.track.run import model_run

    artifact = ModelArtifact.for_name(name, home)
    run = model_run(artifact.directory)
    base = (run.figures if run is not None else artifact.directory / "figures") / f"evaluate_{table}"
    try:
        from specml.track.figures import evaluation_figures

        names = [str(c) for c in t.classes] if t.classes else None
        return [str(p) for p in evaluation_figures(t.task, y_true, s, base / task_name if task_name else base,
                                                   class_names=names)]
    except Exception as err:  # noqa: BLE001 - a figure is worth less than the metrics
        _w.warn(f"evaluation figures were not written: {err}", stacklevel=2)
        return []


def _record_evaluation(name: str, table: str, report: dict, home) -> None:
    import warnings as _w

    try:
        from specml.track.registry import Registry

        Registry(home=home).add_evaluation(name, table, report["metrics"], rows=report.get("rows"))
    except Exception as err:  # noqa: BLE001 - the registry never fails an evaluation
        _w.warn(f"the evaluation was not recorded in the registry: {err}", stacklevel=2)


def predict(name: str, table: str, *, output_table: str | None = None, output: str | Path | None = None,
            keep: list[str] | None = None, workspace: Any = None, home: str | Path | None = None):
    """Predictions for every row of ``table``: the key columns plus ``prediction`` (and probabilities).

    ``keep`` names the columns copied from the input (default: every column that is not a feature).
    Multi-task models write ``<task>_prediction`` (and ``<task>_probability``...) per task. Writes a
    workspace table (``output_table``) and/or a CSV/Parquet file (``output``); returns a pyarrow Table.
    """
    from specml.artifact import ModelArtifact

    if ModelArtifact.for_name(name, home).read_metadata().get("kind") == "classical":
        from specml.classical.predict import predict_classical

        return predict_classical(name, table, output_table=output_table, output=output, keep=keep,
                                 workspace=workspace, home=home)
    trained = load_trained(name, home)
    ws = _open_workspace(workspace, read_only=output_table is None)
    try:
        return _predict(trained, ws, table, output_table, output, keep)
    finally:
        _done_with(ws, workspace)


def _predict(trained, ws, table, output_table, output, keep):
    import pyarrow as pa

    meta = trained.metadata
    ws.require_table(table)
    features, _ = _columns_of(meta)
    ws.require_columns(table, features)
    all_columns = list(ws.columns(table))
    keep = keep if keep is not None else [c for c in all_columns if c not in features]
    ws.require_columns(table, keep)
    data = ws.read_columns(table, list(dict.fromkeys([*features, *keep])))
    per_task = task_scores(trained, data)
    multi = len(per_task) > 1
    cols: dict[str, Any] = {"row_number": pa.array(np.arange(data.num_rows, dtype=np.int64))}
    reserved = {"row_number"}
    for task_name, s in per_task.items():
        t = trained.preprocessor.targets[task_name]
        prefix = f"{task_name}_" if multi else ""
        for key, values in _prediction_columns(t, s).items():
            cols[prefix + key] = values
            reserved.add(prefix + key)
    for c in keep:
        cols[c if c not in reserved else f"input_{c}"] = data.column(c)
    # the key columns first, as the user knows them
    order = ["row_number", *[c if c not in reserved else f"input_{c}" for c in keep]]
    result = pa.table({k: cols[k] for k in order + [k for k in cols if k not in order]})
    if output_table:
        ws.write_table(output_table, result, replace=True)
    if output:
        _write_file(result, Path(output))
    return result


def _prediction_columns(t, s: np.ndarray) -> dict[str, Any]:
    """The columns one task adds to a prediction table."""
    import pyarrow as pa

    if t.sequence:  # predicted token ids up to the first pad, as a list column
        ids = s.astype(np.int64)
        stop = np.where((ids == t.pad).any(axis=1), (ids == t.pad).argmax(axis=1), ids.shape[1])
        mask = np.arange(ids.shape[1])[None, :] < stop[:, None]
        offsets = np.concatenate([[0], np.cumsum(stop)]).astype(np.int32)
        return {"prediction": pa.ListArray.from_arrays(pa.array(offsets), pa.array(ids[mask]))}
    if t.task == "binary":
        positive = s > 0.5  # as the metrics count it
        classes = pa.array(t.classes)
        return {"probability": pa.array(s.astype(np.float64)),
                "prediction": classes.take(pa.array(positive.astype(np.int64)))}
    if t.task == "multiclass":
        out = {"prediction": pa.array(t.classes).take(pa.array(s.argmax(axis=1))),
               "probability": pa.array(s.max(axis=1).astype(np.float64))}
        for j, cls in enumerate(t.classes):
            out[f"prob_{cls}"] = pa.array(s[:, j].astype(np.float64))
        return out
    if s.ndim == 2:  # multi-output regression: one column per target
        return {f"prediction_{c}": pa.array(s[:, j].astype(np.float64)) for j, c in enumerate(t.columns)}
    return {"prediction": pa.array(s.astype(np.float64))}


def _write_file(table, path: Path) -> None:
    import os
    import tempfile

    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        from specml.data.workspace import DataError

        raise DataError(f"--output {path}: write .csv or .parquet")
    if suffix == ".csv":  # CSV has no lists: token sequences are written as "[3, 1, 4]"
        import pyarrow as pa

        for i, fld in enumerate(table.schema):
            if pa_is_list(fld.type):
                text = pa.array([None if v is None else "[" + ", ".join(map(str, v)) + "]"
                                 for v in table.column(i).to_pylist()], pa.string())
                table = table.set_column(i, fld.name, text)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        (pacsv.write_csv if suffix == ".csv" else pq.write_table)(table, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def list_models(home: str | Path | None = None) -> list[dict]:
    from specml.artifact import list_models as _list

    return _list(home)


def show_model(name: str, home: str | Path | None = None) -> dict:
    from specml.artifact import ModelArtifact

    artifact = ModelArtifact.for_name(name, home)
    meta = artifact.read_metadata()
    meta["directory"] = str(artifact.directory)
    meta["checkpoints"] = [str(p) for p in artifact.list_checkpoints()]
    return meta
