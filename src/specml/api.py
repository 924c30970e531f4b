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

from specml import preflight
from specml.artifact import ModelArtifact, library_versions, spec_hash
from specml.artifact import list_models as _list_models
from specml.data.errors import DataError
from specml.data.files import fingerprint
from specml.evaluation import classification_details, seen_rows
from specml.memory import release_freed_memory
from specml.predictions import predict_rows, task_columns, threshold_of
from specml.spec.trainer import unsupported_settings
from specml.train.errors import TrainingError


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
          model_spec_name: str | None = None, trainer_spec_name: str | None = None,
          split_rows: tuple[np.ndarray, np.ndarray] | None = None) -> TrainResult:
    """Train the model a spec describes on a workspace table; save it as ``models/<name>/``.

    Every run gets a directory ``runs/<timestamp>_<name>/`` (specs, facts, figures, TensorBoard files,
    checkpoints, log; ``track=False`` writes only the checkpoints there). ``resume=True`` continues the
    model's last run from its last checkpoint, refusing when the specs or data differ from that run's.
    ``overrides``: Hydra-style ``path=value`` strings applied to the specs (:mod:`specml.spec.overrides`;
    ``+experiment=NAME`` merges a preset), recorded in the run's ``overrides.json``; a dict is only recorded.
    ``split_rows``: (training rows, validation rows) of the table decided by the caller (model families share
    one split) instead of the trainer spec's seeded ``validation_split``.
    """
    started = time.perf_counter()
    edits = list(overrides) if isinstance(overrides, list | tuple) else None
    artifact = ModelArtifact.for_name(name, home)

    # 1. cheap checks first (no torch yet): the specs' kinds and fields, model_ref, the table and its columns
    model_spec_obj, trainer = resolve_specs(model_spec, trainer_spec, check=False, overrides=edits)
    preflight.check_model_ref(model_spec_obj, trainer, model_file=model_spec, trainer_file=trainer_spec or model_spec,
                              registered=model_spec_name)
    cfg = trainer.config
    for path, why in unsupported_settings(cfg):  # before any run directory exists
        raise TrainingError(f"{path}: {why}")
    features, target_cols = preflight.training_columns(model_spec_obj, target)
    columns = list(dict.fromkeys([*features, *target_cols]))
    preflight.check_table(workspace, table, columns)
    # 2. the deep checks (torch): the model builds and runs, the optimizer takes its settings
    model_spec_obj, trainer = resolve_specs(model_spec, trainer_spec, overrides=edits)
    # 3. the rows, read in one short visit (the workspace is free for other processes while we train);
    #    a table larger than the memory budget is streamed in chunks instead (specml.train.streaming)
    from specml.train import streaming

    ws = _open_workspace(workspace, read_only=True)
    try:
        streamed, stream_note = streaming.plan(ws, table, columns, cfg, owned=ws is not workspace)
        data = None if streamed else ws.read_columns(table, columns)
        rows, data_hash = fingerprint(ws, table)
        where = workspace if ws is workspace else ws.path
    finally:
        _done_with(ws, workspace)
    if data is not None and data.num_rows == 0:
        raise DataError(f"table '{table}' is empty: nothing to train on")

    # 4. the split, the preprocessing fitted on the training rows, the model, its heads and batches
    from specml.track.lifecycle import FollowerLifecycle, RunLifecycle
    from specml.train import distributed
    from specml.train.engine import Runtime
    from specml.train.prepare import prepare

    one_target = target_cols[0] if len(target_cols) == 1 else None
    if streamed:
        if split_rows is not None:
            raise TrainingError("a streamed table is split by its rows' hash; a split given by the caller "
                                "(model families) needs the table in memory: set config.streaming: false")
        p = streaming.prepare_streaming(model_spec_obj, trainer, streaming.open_source(where, table, columns, cfg),
                                        one_target)
        p.notes.insert(0, stream_note)
    else:
        p = prepare(model_spec_obj, trainer, data, one_target, rows=split_rows)
    del data  # the tensors hold what the run reads
    release_freed_memory()  # the set-up's temporaries: no epoch carries their peak
    if device is not None:  # --device wins over config.device
        trainer = trainer.model_copy(update={"config": cfg.model_copy(update={"device": device})})
    # under torchrun: join the process group; only rank 0 writes the run, the registry and the model
    created = distributed.setup(Runtime.resolve(trainer.config.device).device, cfg.backend)
    main = distributed.rank() == 0
    if main and not resume and distributed.restarted() and RunLifecycle.resumable(artifact.directory):
        resume = True  # torchrun restarted the workers: continue from the last checkpoint

    # 5. the run: its directory, what it trains with (a resume must match it), its trackers, the loop
    model_text = Path(model_spec).read_text(encoding="utf-8")
    trainer_text = Path(trainer_spec).read_text(encoding="utf-8") if trainer_spec is not None else None
    run_info = {"model_spec": p.model_spec.model_dump(mode="json"),
                "trainer_spec": _comparable(trainer),
                "table": table, "data": {"rows": rows, "fingerprint": data_hash}, "target": target_cols,
                **({"streamed": True} if streamed else {})}  # another split: a resume must stream as well
    recorded = {"overrides": edits} if edits else overrides if isinstance(overrides, dict) else {}
    said = {k: v for k, v in {"target": target, "device": device, **recorded}.items() if v is not None}
    hashes = {"model": spec_hash(model_text), "trainer": spec_hash(trainer_text) if trainer_text else None}
    lifecycle = RunLifecycle(name, artifact.directory, home, run_info=run_info, model_text=model_text,
                             trainer_text=trainer_text, overrides=said, resume=resume, track=track,
                             registry={"model_spec_name": model_spec_name, "trainer_spec_name": trainer_spec_name,
                                       "model_spec_hash": hashes["model"], "trainer_spec_hash": hashes["trainer"],
                                       "table_name": table, "data_rows": rows, "data_hash": data_hash,
                                       "epochs_total": cfg.epochs, "overrides": edits or None}
                             ) if main else FollowerLifecycle()
    try:
        with lifecycle as life:
            if distributed.active():  # the other ranks learn rank 0's run and checkpoint
                life.adopt(distributed.broadcast(life.shared() if main else None))
            result = _train_run(life, main, name, table, p, trainer, cfg, run_info, hashes, verbose, progress,
                                callbacks, artifact, rows, data_hash, model_spec_name, trainer_spec_name, started)
        distributed.barrier()  # no rank leaves before rank 0 has written the model
    finally:
        if created:
            distributed.teardown()
    return result


def _train_run(life, main, name, table, p, trainer, cfg, run_info, hashes, verbose, progress, callbacks, artifact,
               rows, data_hash, model_spec_name, trainer_spec_name, started) -> TrainResult:
    """The loop and the artifact, inside the run's lifecycle (rank 0 writes; other ranks only train)."""
    from specml.train.callbacks import build_callbacks
    from specml.train.engine import Trainer
    from specml.train.prepare import place_data

    target_cols = run_info["target"]
    run_meta = {"name": name, "task": p.task, "table": table, "seed": cfg.seed,
                "rows_train": int(len(p.train_rows)), "rows_validation": int(len(p.val_rows)),
                "spec_hashes": hashes, **({"resumed_from_epoch": life.resumed_from} if life.resume else {})}
    engine = Trainer.from_config(
        trainer, p.model, p.train_batches, p.val_batches, task=p.task if p.simple else p.criterion,
        output_key=p.output_key, logits=p.heads[0].logits, run_info=run_info,
        checkpoint_dir=life.run.checkpoints if cfg.save_artifacts else None, verbose=verbose, progress=progress,
        callbacks=[*build_callbacks(trainer.callbacks),  # the spec's first: their logs reach the trackers
                   *life.callbacks(run_meta, histogram_every=cfg.histogram_every,
                                   figures_every=cfg.figures_every, tensorboard=cfg.tensorboard and
                                   cfg.save_artifacts, plots=cfg.make_plots and cfg.save_artifacts,
                                   keep_figures=cfg.keep_epoch_figures),
                   *(callbacks or [])])
    place_data(p, engine.runtime.device, cfg.pin_memory)
    if life.restore_from is not None:
        engine.restore(life.restore_from, engine.optimizer, engine.lr_scheduler)
        p.notes.append(f"resumed run {life.run.run_id} after epoch {life.resumed_from}")
    history = engine.train(criterion=p.criterion)
    engine.train_loader = p.train_batches = None  # the training rows: let go before the figures and the artifact

    # 7. the artifact: the best weights, what was learned from the data, the metrics
    if engine.best.state is not None:
        p.model.load_state_dict(engine.best.state)
    at = (engine.best.epoch or len(history["train_loss"])) - 1
    best = _finite({k: v[at] for k, v in history.items() if k.startswith(("train_", "val_"))})
    final = _finite({k: v[-1] for k, v in history.items() if k.startswith(("train_", "val_"))})
    seconds = time.perf_counter() - started
    if main:
        metadata = _metadata(name, table, p, cfg, engine, history, best, final, seconds, target_cols, hashes,
                             life.run, model_spec_name, trainer_spec_name, rows, data_hash)
        threshold = _validation_threshold(p)
        if threshold is not None:
            metadata["threshold"] = threshold
        artifact.write_trained(p.model, metadata)
    life.completed(epochs_done=len(history["train_loss"]), best_metric=engine.monitor,
                   best_value=best.get(engine.monitor))
    return TrainResult(name, artifact.directory, p.task,
                       {"train": int(len(p.train_rows)), "validation": int(len(p.val_rows))},
                       history, engine.best.epoch, best, final, seconds, p.notes, life.run.path)


def _comparable(trainer) -> dict:
    """The trainer spec as a resume compares it: without the settings that may change between runs of one
    model (device, verbose, where the run is also tracked, and how many processes train it: a checkpoint
    resumes with any world size)."""
    launch = {"distributed": False, "world_size": None, "backend": None}
    config = trainer.config.model_copy(update=launch)
    # streaming: the choice itself is compared (run_info's "streamed"), not the settings that led to it
    exclude = {"verbose", "device", "streaming", "memory_budget_mb"} | (
        {"batch_size_per_device"} if not config.batch_size_per_device else set())
    return trainer.model_copy(update={"config": config}).model_dump(mode="json", exclude={"config": exclude,
                                                                                        "tracking": True})


def resolve_specs(model_spec: str | Path, trainer_spec: str | Path | None, *, check: bool = True,
                  overrides: list[str] | None = None):
    """The model spec (with its loss, from wherever it was written) and the trainer spec; each file's
    kind is read first. ``check=False`` stops after the torch-free rules (see :mod:`specml.preflight`).
    ``overrides`` edit both files, read as one namespace (``model.*``, ``trainer.*``)."""
    return preflight.check_spec_kinds(model_spec, trainer_spec, deep=check, overrides=overrides)


def _metadata(name, table, p, cfg, engine, history, best, final, seconds, target_cols, hashes, run,
              model_spec_name, trainer_spec_name, rows, data_hash) -> dict:
    """``metadata.json`` of a trained network: what it is, what it learned from the data, how it did."""
    from specml.train.metrics import HIGHER_IS_BETTER, metric_of

    losses = p.losses
    es = engine.early_stopping
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
        "monitor": engine.monitor, "monitor_mode": engine.mode,
        "best": {"metric": engine.monitor, "value": best.get(engine.monitor), "epoch": engine.best.epoch},
        "metrics": {"best": best, "final": final, "best_epoch": engine.best.epoch,
                    "higher_is_better": {k: HIGHER_IS_BETTER.get(metric_of(k), False) for k in best}},
        "epochs": {"run": len(history["train_loss"]), "planned": cfg.epochs,
                   "stopped_early": bool(es is not None and es.stopped_epoch is not None)},
        "seed": cfg.seed, "split_seed": p.split_seed,
        "spec_hashes": hashes,
        "versions": library_versions(),
        "device": str(engine.runtime.device),
        "world_size": engine.runtime.world_size,
        "timings": {"total_s": round(seconds, 3), "epoch_mean_s": round(float(np.mean(history["epoch_time_s"])), 4)},
        "notes": p.notes,
        "run": {"run_id": run.run_id, "run_dir": str(run.path)},
        "lineage": {"model_spec": model_spec_name, "trainer_spec": trainer_spec_name, "table": table,
                    "data_fingerprint": data_hash},
    }


def _validation_threshold(p) -> dict | None:
    """A binary model's decision threshold chosen on its validation rows (F1; Youden's J beside it), from
    the trained network and the validation batches already in memory; None for other tasks."""
    import warnings

    import torch

    from specml.evaluation import choose_threshold

    if p.task != "binary" or not p.simple or p.val_batches is None:
        return None
    try:
        scores, truth = [], []
        p.model.eval()
        with torch.inference_mode():
            for inputs, target in p.val_batches:
                out = p.model(**inputs)
                out = out[p.output_key] if isinstance(out, dict) else out
                out = out.float().reshape(-1)
                scores.append((torch.sigmoid(out) if p.heads[0].logits else out).cpu().numpy())
                truth.append(target.reshape(-1).cpu().numpy())
        s, y = np.concatenate(scores), np.concatenate(truth).astype(np.int64)
        return {"value": choose_threshold(y, s, "f1"), "method": "f1", "youden": choose_threshold(y, s, "youden"),
                "chosen_on": "validation rows", "rows": int(len(y))}
    except Exception as err:  # noqa: BLE001 - a threshold is worth less than the trained model
        warnings.warn(f"no decision threshold was chosen on the validation rows: {err}", stacklevel=2)
        return None


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


def _kind(name: str, home) -> str:
    """``classical``, ``ensemble`` or ``neural``: which module scores the model."""
    return ModelArtifact.for_name(name, home).read_metadata().get("kind") or "neural"


def _is_classical(name: str, home) -> bool:
    return _kind(name, home) == "classical"


def evaluate(name: str, table: str, *, workspace: Any = None, home: str | Path | None = None,
             figures: bool = True, threshold: float | str | None = None) -> dict:
    """Metrics of a trained model on a table that holds the target(s) (scikit-learn metrics).

    Classifiers also get ``confusion_matrix``, ``support`` and (binary) the ``threshold`` used (a number, or
    ``"f1"`` / ``"youden"``: chosen on the validation rows at training; default 0.5) with the metrics at it,
    and ``chosen_threshold`` when the model stored one; ``seen`` counts the rows the
    model trained or validated on (see :func:`specml.evaluation.seen_rows`).

    Multi-task models report ``<task>_<metric>`` for each task, and the same per task under ``tasks``.
    ``figures``: a confusion matrix, ROC and PR curves (classification) or residual plots (regression)
    in the model's run directory (``figures/evaluate_<table>/``). The evaluation is recorded in the registry.
    Classical models (``specml train --estimator-spec``) are evaluated by :mod:`specml.classical`.
    """
    kind = _kind(name, home)
    if kind in ("classical", "ensemble"):
        if kind == "classical":
            from specml.classical.predict import evaluate_classical as evaluate_other
        else:
            from specml.ensemble import evaluate_ensemble as evaluate_other

        report = evaluate_other(name, table, workspace=workspace, home=home, threshold=threshold)
        _record_evaluation(name, table, report, home)
        return report
    from specml.train.inference import load_trained as _load
    from specml.train.inference import task_scores
    from specml.train.metrics import evaluate_predictions, sequence_metrics

    trained = _load(name, home)
    meta = trained.metadata
    features, targets = _columns_of(meta)
    cut = threshold_of(meta, threshold)
    ws = _open_workspace(workspace, read_only=True)
    try:
        ws.require_table(table)
        ws.require_columns(table, list(dict.fromkeys([*features, *targets])))
        data = ws.read_columns(table, list(dict.fromkeys([*features, *targets])))
        seen = seen_rows(ws, table, meta.get("table"), list(dict.fromkeys([*features, *targets])),
                         (meta.get("lineage") or {}).get("data_fingerprint"))
        evaluated = fingerprint(ws, table)
    finally:
        _done_with(ws, workspace)
    if data.num_rows == 0:
        raise DataError(f"table '{table}' is empty")
    _, y = trained.preprocessor.transform(data, normalized=False)
    ys = y if isinstance(y, dict) else {next(iter(trained.preprocessor.targets)): y}
    per_task: dict[str, dict] = {}
    details: dict[str, dict] = {}
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
            details[task_name] = classification_details(t.task, y_true, s, t.classes, cut)
            if figures:
                written += _evaluation_figures(name, home, table, task_name if multi else None, t, y_true, s, cut)
        per_task[task_name] = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in metrics.items()}
    flat = ({f"{n}_{k}": v for n, m in per_task.items() for k, v in m.items()} if multi
            else next(iter(per_task.values())))
    report = {"model": name, "table": table, "rows": data.num_rows, "task": meta["task"], "metrics": flat,
              "data": {"rows": evaluated[0], "fingerprint": evaluated[1]}}
    if multi:
        report["tasks"] = per_task
        report["details"] = details
    else:
        report.update(next(iter(details.values()), {}))
    stored = meta.get("threshold")
    if isinstance(stored, dict) and report.get("threshold") is not None:
        report["chosen_threshold"] = {"f1": stored.get("value"), "youden": stored.get("youden")}
    report["seen"] = seen
    if written:
        report["figures"] = written
    _record_evaluation(name, table, report, home)
    return report


def _evaluation_figures(name, home, table: str, task_name: str | None, t, y_true, s, cut: float = 0.5) -> list[str]:
    """Confusion matrix / ROC / PR (classification) or residual plots, under the model's run."""
    import warnings

    from specml.home import inside, slug, specml_home

    artifact = ModelArtifact.for_name(name, home)
    run_dir = artifact.run_dir
    base = (run_dir / "figures" if run_dir is not None and run_dir.is_dir() else
            artifact.directory / "figures") / f"evaluate_{slug(table)}"
    try:
        base = inside(base, specml_home(home))  # a tampered run.json cannot send figures elsewhere
        from specml.track.figures import evaluation_figures

        names = [str(c) for c in t.classes] if t.classes else None
        title = f"{name} on {table}" + (f" ({task_name})" if task_name else "")
        paths = evaluation_figures(t.task, y_true, s, base / task_name if task_name else base, class_names=names,
                                   title=title, threshold=cut)
        if run_dir is not None:
            from specml.track.figures import to_tensorboard

            to_tensorboard(paths, run_dir / "tensorboard", f"evaluate/{slug(table)}" + (f"/{task_name}" if task_name
                                                                                         else ""))
        return [str(p) for p in paths]
    except Exception as err:  # noqa: BLE001 - a figure is worth less than the metrics
        warnings.warn(f"evaluation figures were not written: {err}", stacklevel=2)
        return []


def _record_evaluation(name: str, table: str, report: dict, home) -> None:
    import warnings

    from specml.evaluation import store_report

    try:
        artifact = ModelArtifact.for_name(name, home)
        store_report(artifact.directory, report, artifact.read_metadata().get("updated_at"))
    except Exception as err:  # noqa: BLE001 - keeping the report never fails an evaluation
        warnings.warn(f"the evaluation was not stored beside the model: {err}", stacklevel=2)
    try:
        from specml.track.registry import Registry

        Registry(home=home).add_evaluation(name, table, report["metrics"], rows=report.get("rows"))
    except Exception as err:  # noqa: BLE001 - the registry never fails an evaluation
        warnings.warn(f"the evaluation was not recorded in the registry: {err}", stacklevel=2)


def predict(name: str, table: str, *, output_table: str | None = None, output: str | Path | None = None,
            keep: list[str] | None = None, workspace: Any = None, home: str | Path | None = None,
            replace: bool = False, keep_all: bool = False, threshold: float | str | None = None):
    """Predictions for every row of ``table``: the key columns plus ``prediction`` (and probabilities).

    ``keep`` names the columns copied from the input (default: every column that is not a feature;
    ``keep_all``: every column). ``threshold``: a binary model's decision threshold: a number, or
    ``"f1"`` / ``"youden"`` for the one chosen on its validation rows at training (default: 0.5).
    Multi-task models write ``<task>_prediction`` (and ``<task>_probability``...) per task. Writes a
    workspace table (``output_table``) and/or a CSV/Parquet file (``output``); returns a pyarrow Table.
    An existing table or file is overwritten only with ``replace=True``.
    """
    kind = _kind(name, home)
    if kind in ("classical", "ensemble"):
        if kind == "classical":
            from specml.classical.predict import predict_classical as predict_other
        else:
            from specml.ensemble import predict_ensemble as predict_other

        return predict_other(name, table, output_table=output_table, output=output, keep=keep,
                                 workspace=workspace, home=home, replace=replace, keep_all=keep_all,
                                 threshold=threshold)
    from specml.train.inference import load_trained as _load
    from specml.train.inference import task_scores

    trained = _load(name, home)
    features, _ = _columns_of(trained.metadata)

    def score(data, cut):
        per_task = {}
        for task_name, s in task_scores(trained, data).items():
            t = trained.preprocessor.targets[task_name]
            per_task[task_name] = task_columns("sequence" if t.sequence else t.task, s, classes=t.classes,
                                               columns=t.columns, pad=t.pad, threshold=cut)
        return per_task

    return predict_rows(workspace, table, features, trained.metadata, score, output_table=output_table,
                        output=output, keep=keep, keep_all=keep_all, replace=replace, threshold=threshold)


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
