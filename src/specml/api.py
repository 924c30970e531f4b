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


def _open_workspace(workspace: Any):
    from specml.data.workspace import Workspace

    return workspace if hasattr(workspace, "read_columns") else Workspace(workspace)


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
          verbose: bool = True, progress: bool | None = None, device: str | None = None) -> TrainResult:
    """Train the model a spec describes on a workspace table; save it as ``models/<name>/``."""
    import torch

    from specml.artifact import ModelArtifact, library_versions, spec_hash
    from specml.data import tensors as T
    from specml.graph import build_model
    from specml.spec.load import merge_loss
    from specml.train.checkpoint import save_weights
    from specml.train.engine import EarlyStopping, Trainer, TrainingError, TensorBatches, seed_everything
    from specml.train.metrics import HIGHER_IS_BETTER
    from specml.train.optim import build_optimizer, build_scheduler

    started = time.perf_counter()
    artifact = ModelArtifact.for_name(name, home)
    model_spec_obj, trainer = resolve_specs(model_spec, trainer_spec)
    cfg = trainer.config
    if cfg.distributed:
        raise TrainingError("config.distributed: multi-process training (torch DDP under torchrun) is not part of "
                            "this version yet; remove distributed/world_size/backend to train in one process")
    notes: list[str] = []
    ws = _open_workspace(workspace)
    ws.require_table(table)

    losses = model_spec_obj.losses
    if len(losses) > 1:
        raise TrainingError("several losses (multi-task) are not trained by this version yet")
    if target is not None and losses and losses[0].inputs.target not in (None, target):
        raise TrainingError(f"--target {target} but the spec's loss reads column '{losses[0].inputs.target}'")
    target_col = target or (losses[0].inputs.target if losses else None)
    if target_col is None:
        raise TrainingError("no target: the spec names no loss target; pass --target COLUMN")
    feature_cols = [c for inp in model_spec_obj.inputs.values() for c in (inp.columns or [])]
    needed = list(dict.fromkeys([*feature_cols, target_col]))
    ws.require_columns(table, needed)
    data = ws.read_columns(table, needed)
    if data.num_rows == 0:
        from specml.data.workspace import DataError

        raise DataError(f"table '{table}' is empty: nothing to train on")

    if not losses:
        loss, said = T.infer_loss(model_spec_obj, data, target_col)
        notes.append(said)
        model_spec_obj = merge_loss(model_spec_obj, trainer.model_copy(update={"loss": loss}))
    loss = model_spec_obj.losses[0]
    if loss.inputs.target is None:
        loss = loss.model_copy(update={"inputs": loss.inputs.model_copy(update={"target": target_col})})
    output_key = loss.inputs.input or next(iter(model_spec_obj.outputs))
    task = T.task_of(loss.type)

    # the split: seeded, stratified for classification, never the global RNG
    split_seed = cfg.seed if cfg.seed is not None else 0
    labels = data.column(target_col).to_numpy(zero_copy_only=False) if task != "regression" else None
    train_rows, val_rows = T.validation_split(data.num_rows, cfg.validation_split, split_seed, labels)
    prep = T.fit(model_spec_obj, data, loss, train_rows)
    inputs, y = prep.transform(data)

    if cfg.seed is not None:
        seed_everything(cfg.seed)
    model = build_model(model_spec_obj, vocab_sizes=prep.vocab_sizes())
    from specml.graph.check import loss_params
    from specml.graph.allowlist import resolve_loss

    resolved = resolve_loss(loss.type)
    criterion = resolved.target(**loss_params(loss.params)) if resolved.kind == "module" else \
        _functional_loss(resolved.target, loss_params(loss.params))
    optimizer = build_optimizer(trainer.optimizer, model.parameters())
    scheduler = build_scheduler(trainer.scheduler, optimizer) if trainer.scheduler else None

    def subset(rows: np.ndarray) -> tuple[dict, Any]:
        idx = torch.from_numpy(rows)
        return {k: v[idx] for k, v in inputs.items()}, y[idx]

    train_x, train_y = subset(train_rows)
    train_batches = TensorBatches(train_x, train_y, cfg.batch_size, shuffle=cfg.shuffle, seed=split_seed)
    val_batches = None
    if len(val_rows):
        val_x, val_y = subset(val_rows)
        val_batches = TensorBatches(val_x, val_y, max(cfg.batch_size, 1024), shuffle=False)

    monitor = cfg.early_stopping_monitor
    mode = cfg.early_stopping_mode
    if "early_stopping_mode" not in cfg.model_fields_set:  # unsaid: follow the metric (val_auc -> max)
        mode = "max" if HIGHER_IS_BETTER.get(monitor.split("_", 1)[1], False) else "min"
    if cfg.early_stopping_patience is None and monitor == "val_loss" and val_batches is None:
        monitor = "train_loss"
    es = (EarlyStopping(cfg.early_stopping_patience, cfg.early_stopping_min_delta, monitor, mode)
          if cfg.early_stopping_patience else None)
    metrics = _metrics_with_monitors(task, cfg.metrics, [monitor, trainer.scheduler.monitor if trainer.scheduler
                                                         else None])
    sched_monitor = (trainer.scheduler.monitor if trainer.scheduler and trainer.scheduler.monitor else
                     ("val_loss" if val_batches is not None else "train_loss"))
    engine = Trainer(
        model, train_batches, val_batches, device=device or cfg.device,
        checkpoint_dir=artifact.directory / "checkpoints", log_interval=cfg.log_every, output_key=output_key,
        task=task, metrics=metrics, logits=prep.target.logits, monitor=monitor, mode=mode, early_stopping=es,
        gradient_clip_val=cfg.gradient_clip_val, gradient_clip_norm=cfg.gradient_clip_norm,
        accumulate_grad_batches=cfg.accumulate_grad_batches,
        scheduler_interval=trainer.scheduler.interval if trainer.scheduler else "epoch",
        scheduler_monitor=sched_monitor, pin_memory=cfg.pin_memory, mixed_precision=cfg.mixed_precision,
        verbose=verbose and cfg.verbose,
        progress=progress,
    )
    _place_data(engine, train_batches, val_batches, cfg.pin_memory)
    history = engine.train(cfg.epochs, optimizer, criterion, scheduler, save_every=cfg.checkpoint_every,
                           save_best=True, save_best_only=cfg.save_best_only)

    # the artifact: best weights, the exact specs, what was learned from the data, the metrics
    best_epoch = engine.best.epoch
    if engine.best.state is not None:
        model.load_state_dict(engine.best.state)
    artifact.directory.mkdir(parents=True, exist_ok=True)
    save_weights(artifact.weights_path, model, {"name": name, "epoch": str(best_epoch)})
    model_text = _read_text(model_spec)
    trainer_text = _read_text(trainer_spec)
    artifact.write_specs(model_text, trainer_text)
    at = (best_epoch or len(history["train_loss"])) - 1
    best = {k: v[at] for k, v in history.items() if k.startswith(("train_", "val_"))}
    final = {k: v[-1] for k, v in history.items() if k.startswith(("train_", "val_"))}
    seconds = time.perf_counter() - started
    best, final = _finite(best), _finite(final)
    artifact.write_metadata({
        "name": name, "task": task, "table": table, "target": target_col,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "inputs": {k: v.columns or [] for k, v in model_spec_obj.inputs.items()},
        "output": output_key,
        "loss": loss.model_dump(),
        "rows": {"total": data.num_rows, "train": int(len(train_rows)), "validation": int(len(val_rows))},
        "preprocessing": prep.to_dict(),
        "monitor": monitor, "monitor_mode": mode,
        "best": {"metric": monitor, "value": best.get(monitor), "epoch": best_epoch},
        "metrics": {"best": best, "final": final, "best_epoch": best_epoch,
                    "higher_is_better": {k: HIGHER_IS_BETTER.get(k.split("_", 1)[1], False) for k in best}},
        "epochs": {"run": len(history["train_loss"]), "planned": cfg.epochs,
                   "stopped_early": bool(es is not None and es.stopped_epoch is not None)},
        "seed": cfg.seed, "split_seed": split_seed,
        "spec_hashes": {"model": spec_hash(model_text), "trainer": spec_hash(trainer_text) if trainer_text else None},
        "versions": library_versions(),
        "device": str(engine.runtime.device),
        "timings": {"total_s": round(seconds, 3),
                    "epoch_mean_s": round(float(np.mean(history["epoch_time_s"])), 4)},
        "notes": notes,
    })
    return TrainResult(name, artifact.directory, task, {"train": int(len(train_rows)), "validation": int(len(val_rows))},
                       history, best_epoch, best, final, seconds, notes)


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


def scores(trained: Trained, data) -> np.ndarray:
    """Positive-class probabilities (binary), class probabilities (multiclass) or values (regression)."""
    import torch

    inputs, _ = trained.preprocessor.transform(data, with_target=False)
    key, task = trained.metadata["output"], trained.metadata["task"]
    logits = trained.preprocessor.target.logits
    out = []
    with torch.inference_mode():
        for start in range(0, data.num_rows, PREDICT_BATCH):
            batch = {k: v[start:start + PREDICT_BATCH] for k, v in inputs.items()}
            y = trained.model(**batch)[key].float()
            if task == "binary":
                y = (torch.sigmoid(y) if logits else y).reshape(-1)
            elif task == "multiclass":
                y = torch.softmax(y, dim=-1) if logits else y
            elif y.dim() == 2 and y.shape[1] == 1:
                y = y[:, 0]
            out.append(y.numpy())
    return np.concatenate(out) if out else np.empty(0)


def evaluate(name: str, table: str, *, workspace: Any = None, home: str | Path | None = None) -> dict:
    """Metrics of a trained model on a table that holds the target (scikit-learn metrics)."""
    from specml.train.metrics import evaluate_predictions

    trained = load_trained(name, home)
    ws = _open_workspace(workspace)
    meta = trained.metadata
    columns = list(dict.fromkeys([*[c for cols in meta["inputs"].values() for c in cols], meta["target"]]))
    ws.require_table(table)
    ws.require_columns(table, columns)
    data = ws.read_columns(table, columns)
    if data.num_rows == 0:
        from specml.data.workspace import DataError

        raise DataError(f"table '{table}' is empty")
    _, y = trained.preprocessor.transform(data)
    s = scores(trained, data)
    y_true = y.numpy() if meta["task"] == "regression" else y.numpy().astype(np.int64)  # class ids, as `s` is
    metrics = evaluate_predictions(meta["task"], y_true, s)
    return {"model": name, "table": table, "rows": data.num_rows, "task": meta["task"],
            "metrics": {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in metrics.items()}}


def predict(name: str, table: str, *, output_table: str | None = None, output: str | Path | None = None,
            keep: list[str] | None = None, workspace: Any = None, home: str | Path | None = None):
    """Predictions for every row of ``table``: the key columns plus ``prediction`` (and probabilities).

    ``keep`` names the columns copied from the input (default: every column that is not a feature).
    Writes a workspace table (``output_table``) and/or a CSV/Parquet file (``output``); returns the
    result as a pyarrow Table.
    """
    import pyarrow as pa

    trained = load_trained(name, home)
    ws = _open_workspace(workspace)
    meta = trained.metadata
    ws.require_table(table)
    features = list(dict.fromkeys(c for cols in meta["inputs"].values() for c in cols))
    ws.require_columns(table, features)
    all_columns = list(ws.columns(table))
    keep = keep if keep is not None else [c for c in all_columns if c not in features]
    ws.require_columns(table, keep)
    data = ws.read_columns(table, list(dict.fromkeys([*features, *keep])))
    s = scores(trained, data)
    target = trained.preprocessor.target
    cols: dict[str, Any] = {"row_number": pa.array(np.arange(data.num_rows, dtype=np.int64))}
    for c in keep:
        cols[c if c not in ("prediction", "probability") else f"input_{c}"] = data.column(c)
    if meta["task"] == "binary":
        cols["probability"] = pa.array(s.astype(np.float64))
        cols["prediction"] = pa.array([target.classes[int(i)] for i in (s > 0.5)])  # as the metrics count it
    elif meta["task"] == "multiclass":
        best = s.argmax(axis=1)
        cols["prediction"] = pa.array([target.classes[int(i)] for i in best])
        cols["probability"] = pa.array(s.max(axis=1).astype(np.float64))
        for j, cls in enumerate(target.classes):
            cols[f"prob_{cls}"] = pa.array(s[:, j].astype(np.float64))
    else:
        cols["prediction"] = pa.array(s.astype(np.float64) if s.ndim == 1 else s.tolist())
    result = pa.table(cols)
    if output_table:
        ws.write_table(output_table, result, replace=True)
    if output:
        _write_file(result, Path(output))
    return result


def _write_file(table, path: Path) -> None:
    import os
    import tempfile

    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        from specml.data.workspace import DataError

        raise DataError(f"--output {path}: write .csv or .parquet")
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
