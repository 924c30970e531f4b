"""The verbs, as Python functions: train, evaluate, predict, list and show models.

The CLI is a thin layer over these. Each reads tables from a workspace and models from the specml
home (``SPECML_HOME`` or ``~/.specml``); both can be given explicitly. The training recipe reads top to
bottom in :func:`train`; its pieces live where their concern does: :mod:`specml.train.prepare`
(split, preprocessing, model, heads), :mod:`specml.train.engine` (the loop),
:mod:`specml.track.lifecycle` (the run), :mod:`specml.artifact` (the saved model) and
:mod:`specml.predictions` (prediction tables, shared with classical models).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from specml.artifact import ModelArtifact, library_versions, spec_hash
from specml.artifact import list_models as _list_models
from specml.data.files import fingerprint
from specml.errors import DataError, TrainingError
from specml.predictions import kept_columns, prediction_table, task_columns, write_predictions
from specml.spec.errors import SpecError, SpecIssue


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


def train(model_spec: str | Path, trainer_spec: str | Path | None = None, *, table: str, name: str,
          target: str | None = None, workspace: Any = None, home: str | Path | None = None,
          verbose: bool = True, progress: bool | None = None, device: str | None = None, resume: bool = False,
          track: bool = True, callbacks: list | None = None, overrides: dict | list[str] | None = None,
          model_spec_name: str | None = None, trainer_spec_name: str | None = None) -> TrainResult:
    """Train the model a spec describes on a workspace table; save it as ``models/<name>/``.

    Every run gets a directory ``runs/<timestamp>_<name>/`` (specs, facts, figures, TensorBoard files,
    checkpoints, log; ``track=False`` writes only the checkpoints there). ``resume=True`` continues the
    model's last run from its last checkpoint, refusing when the specs or data differ from that run's.
    ``overrides``: Hydra-style ``path=value`` strings applied to the specs (:mod:`specml.spec.overrides`;
    ``+experiment=NAME`` merges a preset), recorded in the run's ``overrides.json``; a dict is only recorded.
    """
    started = time.perf_counter()
    edits = list(overrides) if isinstance(overrides, list | tuple) else None
    artifact = ModelArtifact.for_name(name, home)

    # 1. cheap checks first (no torch yet): the specs' kinds and fields, the table and its columns
    model_spec_obj, trainer = resolve_specs(model_spec, trainer_spec, check=False, overrides=edits)
    cfg = trainer.config
    if cfg.distributed:
        raise TrainingError("config.distributed: multi-process training (torch DDP under torchrun) is not part of "
                            "this version yet; remove distributed/world_size/backend to train in one process")
    columns, target_cols = training_columns(model_spec_obj, target)
    ws = _open_workspace(workspace, read_only=True)
    try:
        ws.require_table(table)
        ws.require_columns(table, columns)
        # 2. the deep checks (torch): the model builds and runs, the optimizer takes its settings
        model_spec_obj, trainer = resolve_specs(model_spec, trainer_spec, overrides=edits)
        data = ws.read_columns(table, columns)
        rows, data_hash = fingerprint(ws, table)
    finally:
        _done_with(ws, workspace)
    if data.num_rows == 0:
        raise DataError(f"table '{table}' is empty: nothing to train on")

    # 3. the split, the preprocessing fitted on the training rows, the model, its heads and batches
    from specml.track.lifecycle import RunLifecycle
    from specml.train.engine import Trainer
    from specml.train.optim import build_optimizer, build_scheduler
    from specml.train.prepare import place_data, prepare

    p = prepare(model_spec_obj, trainer, data, target_cols[0] if len(target_cols) == 1 else None)
    optimizer = build_optimizer(trainer.optimizer, p.model.parameters())
    scheduler = build_scheduler(trainer.scheduler, optimizer) if trainer.scheduler else None

    # 4. the run: its directory, what it trains with (a resume must match it), its trackers, the loop
    model_text = Path(model_spec).read_text(encoding="utf-8")
    trainer_text = Path(trainer_spec).read_text(encoding="utf-8") if trainer_spec is not None else None
    run_info = {"model_spec": p.model_spec.model_dump(mode="json"),
                "trainer_spec": trainer.model_dump(mode="json", exclude={"config": {"verbose", "device"}}),
                "table": table, "data": {"rows": rows, "fingerprint": data_hash}, "target": target_cols}
    recorded = {"overrides": edits} if edits else overrides if isinstance(overrides, dict) else {}
    said = {k: v for k, v in {"target": target, "device": device, **recorded}.items() if v is not None}
    hashes = {"model": spec_hash(model_text), "trainer": spec_hash(trainer_text) if trainer_text else None}
    lifecycle = RunLifecycle(name, artifact.directory, home, run_info=run_info, model_text=model_text,
                             trainer_text=trainer_text, overrides=said, resume=resume, track=track,
                             registry={"model_spec_name": model_spec_name, "trainer_spec_name": trainer_spec_name,
                                       "model_spec_hash": hashes["model"], "trainer_spec_hash": hashes["trainer"],
                                       "table_name": table, "data_rows": rows, "data_hash": data_hash,
                                       "epochs_total": cfg.epochs})
    with lifecycle as life:
        run_meta = {"name": name, "task": p.task, "table": table, "seed": cfg.seed,
                    "rows_train": int(len(p.train_rows)), "rows_validation": int(len(p.val_rows)),
                    "spec_hashes": hashes, **({"resumed_from_epoch": life.resumed_from} if life.resume else {})}
        engine = Trainer(
            p.model, p.train_batches, p.val_batches, device=device or cfg.device, run_info=run_info,
            callbacks=[*life.callbacks(run_meta, histogram_every=cfg.histogram_every,
                                       figures_every=cfg.figures_every, tensorboard=cfg.tensorboard),
                       *(callbacks or [])],
            checkpoint_dir=life.run.checkpoints, log_interval=cfg.log_every, output_key=p.output_key,
            task=p.task if p.simple else p.criterion, metrics=p.metrics, logits=p.heads[0].logits,
            monitor=p.monitor, mode=p.mode, early_stopping=p.early_stopping,
            gradient_clip_val=cfg.gradient_clip_val, gradient_clip_norm=cfg.gradient_clip_norm,
            accumulate_grad_batches=cfg.accumulate_grad_batches,
            scheduler_interval=trainer.scheduler.interval if trainer.scheduler else "epoch",
            scheduler_monitor=p.scheduler_monitor, pin_memory=cfg.pin_memory, mixed_precision=cfg.mixed_precision,
            verbose=verbose and cfg.verbose, progress=progress)
        place_data(p, engine.runtime.device, cfg.pin_memory)
        if life.restore_from is not None:
            engine.restore(life.restore_from, optimizer, scheduler)
            p.notes.append(f"resumed run {life.run.run_id} after epoch {life.resumed_from}")
        history = engine.train(cfg.epochs, optimizer, p.criterion, scheduler, save_every=cfg.checkpoint_every,
                               save_best=True, save_best_only=cfg.save_best_only)

        # 5. the artifact: the best weights, what was learned from the data, the metrics
        if engine.best.state is not None:
            p.model.load_state_dict(engine.best.state)
        at = (engine.best.epoch or len(history["train_loss"])) - 1
        best = _finite({k: v[at] for k, v in history.items() if k.startswith(("train_", "val_"))})
        final = _finite({k: v[-1] for k, v in history.items() if k.startswith(("train_", "val_"))})
        seconds = time.perf_counter() - started
        artifact.write_trained(p.model, _metadata(name, table, p, cfg, engine, history, best, final, seconds,
                                                  target_cols, hashes, life.run, model_spec_name,
                                                  trainer_spec_name, rows, data_hash))
        life.completed(epochs_done=len(history["train_loss"]), best_metric=p.monitor, best_value=best.get(p.monitor))
    return TrainResult(name, artifact.directory, p.task,
                       {"train": int(len(p.train_rows)), "validation": int(len(p.val_rows))},
                       history, engine.best.epoch, best, final, seconds, p.notes, life.run.path)


def resolve_specs(model_spec: str | Path, trainer_spec: str | Path | None, *, check: bool = True,
                  overrides: list[str] | None = None):
    """The model spec (with its loss, from wherever it was written) and the trainer spec.

    ``check=False`` stops after the fields and cross-field rules (no torch): the cheap pass. ``overrides``
    edit both files, read as one namespace (``model.*``, ``trainer.*``)."""
    from specml.spec import load_spec, merge_loss
    from specml.spec.overrides import Overrides

    edits = Overrides(overrides or [], files=[model_spec, trainer_spec])
    model_file = load_spec(model_spec, check=check, overrides=edits)
    if model_file.model is None:
        raise SpecError([SpecIssue((), "this file holds a trainer spec; pass it as --trainer-spec",
                                   None, str(model_spec))])
    trainer = model_file.trainer
    if trainer_spec is not None:
        trainer_file = load_spec(trainer_spec, check=check, overrides=edits)
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


def training_columns(model_spec, target: str | None) -> tuple[list[str], list[str]]:
    """(every column a training reads, the target columns), checked against the spec's losses."""
    losses = model_spec.losses
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
    features = [c for inp in model_spec.inputs.values() for c in (inp.columns or [])]
    return list(dict.fromkeys([*features, *target_cols])), target_cols


def _metadata(name, table, p, cfg, engine, history, best, final, seconds, target_cols, hashes, run,
              model_spec_name, trainer_spec_name, rows, data_hash) -> dict:
    """``metadata.json`` of a trained network: what it is, what it learned from the data, how it did."""
    from specml.train.metrics import HIGHER_IS_BETTER, metric_of

    losses = p.losses
    es = p.early_stopping
    return {
        "name": name, "task": p.task, "table": table,
        "target": target_cols[0] if len(target_cols) == 1 else target_cols,
        "tasks": {h.name: {"task": h.task, "output": h.output, "target": p.preprocessor.targets[h.name].column,
                           "weight": h.weight} for h in p.heads},
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "inputs": {k: v.columns or [] for k, v in p.model_spec.inputs.items()},
        "output": p.output_key,
        "loss": losses[0].model_dump() if len(losses) == 1 else [lo.model_dump() for lo in losses],
        "rows": {"total": rows, "train": int(len(p.train_rows)), "validation": int(len(p.val_rows))},
        "preprocessing": p.preprocessor.to_dict(),
        "monitor": p.monitor, "monitor_mode": p.mode,
        "best": {"metric": p.monitor, "value": best.get(p.monitor), "epoch": engine.best.epoch},
        "metrics": {"best": best, "final": final, "best_epoch": engine.best.epoch,
                    "higher_is_better": {k: HIGHER_IS_BETTER.get(metric_of(k), False) for k in best}},
        "epochs": {"run": len(history["train_loss"]), "planned": cfg.epochs,
                   "stopped_early": bool(es is not None and es.stopped_epoch is not None)},
        "seed": cfg.seed, "split_seed": p.split_seed,
        "spec_hashes": hashes,
        "versions": library_versions(),
        "device": str(engine.runtime.device),
        "timings": {"total_s": round(seconds, 3), "epoch_mean_s": round(float(np.mean(history["epoch_time_s"])), 4)},
        "notes": p.notes,
        "run": {"run_id": run.run_id, "run_dir": str(run.path)},
        "lineage": {"model_spec": model_spec_name, "trainer_spec": trainer_spec_name, "table": table,
                    "data_fingerprint": data_hash},
    }


def _finite(metrics: dict[str, float]) -> dict[str, float | None]:
    """Undefined metrics (NaN, e.g. precision with no positive prediction) are stored as null."""
    return {k: (v if isinstance(v, float) and math.isfinite(v) else None) for k, v in metrics.items()}


# ----------------------------------------------------------------------------------------------
# using a trained model


def load_trained(name: str, home: str | Path | None = None):
    """A trained network (see :func:`specml.train.inference.load_trained`)."""
    from specml.train.inference import load_trained as _load

    return _load(name, home)


def scores(trained, data) -> np.ndarray:
    """The scores of a single-task model (the first task of a multi-task one); see
    :func:`specml.train.inference.task_scores`."""
    from specml.train.inference import task_scores

    return next(iter(task_scores(trained, data).values()))


def _is_classical(name: str, home) -> bool:
    return ModelArtifact.for_name(name, home).read_metadata().get("kind") == "classical"


def evaluate(name: str, table: str, *, workspace: Any = None, home: str | Path | None = None,
             figures: bool = True) -> dict:
    """Metrics of a trained model on a table that holds the target(s) (scikit-learn metrics).

    Multi-task models report ``<task>_<metric>`` for each task, and the same per task under ``tasks``.
    ``figures``: a confusion matrix, ROC and PR curves (classification) or residual plots (regression)
    in the model's run directory (``figures/evaluate_<table>/``). The evaluation is recorded in the registry.
    Classical models (``specml train --estimator-spec``) are evaluated by :mod:`specml.classical`.
    """
    if _is_classical(name, home):
        from specml.classical.predict import evaluate_classical

        report = evaluate_classical(name, table, workspace=workspace, home=home)
        _record_evaluation(name, table, report, home)
        return report
    from specml.train.inference import load_trained as _load
    from specml.train.inference import task_scores
    from specml.train.metrics import evaluate_predictions, sequence_metrics

    trained = _load(name, home)
    meta = trained.metadata
    features, targets = _columns_of(meta)
    ws = _open_workspace(workspace, read_only=True)
    try:
        ws.require_table(table)
        ws.require_columns(table, list(dict.fromkeys([*features, *targets])))
        data = ws.read_columns(table, list(dict.fromkeys([*features, *targets])))
    finally:
        _done_with(ws, workspace)
    if data.num_rows == 0:
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
    import warnings

    artifact = ModelArtifact.for_name(name, home)
    run_dir = artifact.run_dir
    base = (run_dir / "figures" if run_dir is not None and run_dir.is_dir() else
            artifact.directory / "figures") / f"evaluate_{table}"
    try:
        from specml.track.figures import evaluation_figures

        names = [str(c) for c in t.classes] if t.classes else None
        return [str(p) for p in evaluation_figures(t.task, y_true, s, base / task_name if task_name else base,
                                                   class_names=names)]
    except Exception as err:  # noqa: BLE001 - a figure is worth less than the metrics
        warnings.warn(f"evaluation figures were not written: {err}", stacklevel=2)
        return []


def _record_evaluation(name: str, table: str, report: dict, home) -> None:
    import warnings

    try:
        from specml.track.registry import Registry

        Registry(home=home).add_evaluation(name, table, report["metrics"], rows=report.get("rows"))
    except Exception as err:  # noqa: BLE001 - the registry never fails an evaluation
        warnings.warn(f"the evaluation was not recorded in the registry: {err}", stacklevel=2)


def predict(name: str, table: str, *, output_table: str | None = None, output: str | Path | None = None,
            keep: list[str] | None = None, workspace: Any = None, home: str | Path | None = None):
    """Predictions for every row of ``table``: the key columns plus ``prediction`` (and probabilities).

    ``keep`` names the columns copied from the input (default: every column that is not a feature).
    Multi-task models write ``<task>_prediction`` (and ``<task>_probability``...) per task. Writes a
    workspace table (``output_table``) and/or a CSV/Parquet file (``output``); returns a pyarrow Table.
    """
    if _is_classical(name, home):
        from specml.classical.predict import predict_classical

        return predict_classical(name, table, output_table=output_table, output=output, keep=keep,
                                 workspace=workspace, home=home)
    from specml.train.inference import load_trained as _load
    from specml.train.inference import task_scores

    trained = _load(name, home)
    features, _ = _columns_of(trained.metadata)
    ws = _open_workspace(workspace, read_only=output_table is None)
    try:
        ws.require_table(table)
        ws.require_columns(table, features)
        keep = kept_columns(list(ws.columns(table)), features, keep)
        ws.require_columns(table, keep)
        data = ws.read_columns(table, list(dict.fromkeys([*features, *keep])))
        per_task = {}
        for task_name, s in task_scores(trained, data).items():
            t = trained.preprocessor.targets[task_name]
            per_task[task_name] = task_columns("sequence" if t.sequence else t.task, s, classes=t.classes,
                                               columns=t.columns, pad=t.pad)
        result = prediction_table(data, keep, per_task)
        write_predictions(ws, result, output_table, output)
    finally:
        _done_with(ws, workspace)
    return result


def _columns_of(meta: dict) -> tuple[list[str], list[str]]:
    features = list(dict.fromkeys(c for cols in meta["inputs"].values() for c in cols))
    target = meta["target"]
    return features, [target] if isinstance(target, str) else list(target)


def list_models(home: str | Path | None = None) -> list[dict]:
    return _list_models(home)


def show_model(name: str, home: str | Path | None = None) -> dict:
    artifact = ModelArtifact.for_name(name, home)
    meta = artifact.read_metadata()
    meta["directory"] = str(artifact.directory)
    meta["checkpoints"] = [str(p) for p in artifact.list_checkpoints()]
    return meta


# ----------------------------------------------------------------------------------------------
# the workspace a verb reads


def _open_workspace(workspace: Any, read_only: bool = False):
    """The caller's Workspace, or one opened here (read-only when only reading: several processes,
    e.g. background jobs, can then read one workspace file at the same time)."""
    from specml.data.workspace import Workspace

    return workspace if hasattr(workspace, "read_columns") else Workspace(workspace, read_only=read_only)


def _done_with(ws: Any, workspace: Any) -> None:
    """Close a workspace this module opened (never the caller's)."""
    if ws is not workspace:
        ws.close()
