"""``specml train --estimator-spec``: a classical model from an estimator spec and a workspace table.

The run: read the table; choose features; split train / validation / test (stratified, or
time-ordered); detect class imbalance on the training rows; optionally cross-validate on the
training split; fit preprocessing + estimator on the training rows (early stopping on the
validation rows for GBMs); score every split; save ``models/<name>/`` without pickle.
"""

from __future__ import annotations

import importlib.metadata
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from specml.classical import persist, preprocess
from specml.classical.console import Report, metric_name
from specml.classical.cv import run_cv
from specml.classical.errors import ClassicalError
from specml.classical.fit import estimator_params, fit_pipeline
from specml.classical.frame import choose_features, target_values, to_matrix
from specml.classical.imbalance import decide, detect, severity
from specml.classical.score import MAIN_METRIC, metrics, scores
from specml.classical.split import given_rows, held_back_table, is_training_table, split_rows
from specml.spec.estimator import resolve_estimator

SMALL_DATASET = 50
_EXTRA_LIBRARIES = ("xgboost-cpu", "xgboost", "lightgbm", "catboost", "imbalanced-learn", "skops")
_PREFIX = {"train": "train", "validation": "val", "test": "test"}


@dataclass
class ClassicalResult:
    name: str
    directory: Path | None          # None when save_model is false
    task: str
    rows: dict[str, int]
    metrics: dict[str, dict]        # train / validation / test -> metric -> value
    cv: dict | None
    imbalance: dict | None
    seconds: float
    fit_s: float
    best: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    split: Any = None               # specml.classical.split.Split: row indices of each part
    fit_cpu_s: float | None = None
    guard: Any = None               # specml.guard.Verdict on the validation rows (None without them)
    threshold: dict | None = None   # binary: the decision threshold tuned on the validation rows


def _open_workspace(workspace: Any):
    """The caller's Workspace, or one opened read-only here (closed as soon as the rows are read, so a fit
    never holds the workspace: other processes load, write and train meanwhile)."""
    from specml.data.workspace import Workspace

    return workspace if hasattr(workspace, "read_columns") else Workspace(workspace, read_only=True)


def library_versions() -> dict[str, str]:
    from specml.artifact import library_versions as base

    out = base()
    for dist in _EXTRA_LIBRARIES:
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            pass
    return out


def train_estimator(spec_path: str | Path, *, table: str, name: str, workspace: Any = None,
                    home: str | Path | None = None, cv: int | None = None, verbose: bool = True,
                    console: Any = None, rows: tuple[np.ndarray, np.ndarray] | None = None) -> ClassicalResult:
    """Train the estimator an estimator spec describes on ``table``; save it as ``models/<name>/``.

    ``cv`` (k >= 2) turns cross-validation on with k folds (0 turns it off), overriding the spec.
    ``rows``: (training rows, validation rows) decided by the caller (model families share one split);
    there is then no test split. A training table (``<table>_train`` from ``specml data split``, or a
    table named ``train``) is not split again for testing: its validation rows serve early stopping only.
    """
    from specml.artifact import ModelArtifact, spec_hash
    from specml.home import home_folder
    from specml.spec.load import load_estimator_spec

    started = time.perf_counter()
    spec = load_estimator_spec(spec_path)
    spec_text = Path(spec_path).read_text(encoding="utf-8")
    artifact = ModelArtifact.for_name(name, home)
    home_folder("runs", home)  # a run folder that cannot be made is said before the fit, not after it
    report = Report(spec.level if verbose else 0, console)
    info = resolve_estimator(spec.estimator.type)
    notes: list[str] = []

    # the data
    ws = _open_workspace(workspace)
    try:
        ws.require_table(table)
        extra = [spec.target, *([spec.time_column] if spec.time_column else [])]
        wanted = list(dict.fromkeys([*(spec.features or ws.columns(table)), *extra]))
        ws.require_columns(table, wanted)
        data = ws.read_columns(table, wanted)
        held_back = held_back_table(table, ws.has_table) if is_training_table(table) else None
    finally:
        if ws is not workspace:
            ws.close()
    if data.num_rows == 0:
        raise ClassicalError(f"table '{table}' is empty: nothing to train on")
    from specml.data.files import fingerprint

    data_fingerprint = fingerprint(ws, table)
    features, said = choose_features(data.schema, target=spec.target, time_column=spec.time_column,
                                     requested=spec.features)
    notes += said
    y, target = target_values(data.column(spec.target), estimator_kind=info.kind, task=spec.task, name=spec.target)
    task = target.task
    X = to_matrix(data, features)
    order = None
    if spec.time_column:
        tcol = data.column(spec.time_column)
        if tcol.null_count:
            raise ClassicalError(f"time_column '{spec.time_column}' has {tcol.null_count} NULL value(s): a "
                                 "time-ordered split needs a time for every row")
        order = tcol.to_numpy(zero_copy_only=False)
    n = len(y)
    for note in notes:
        report.warn(note)
    if n < SMALL_DATASET:
        msg = (f"Only {n} rows: the splits are tiny and their scores noisy; consider cross_validation "
               "with strategy: loo (leave-one-out) and a smaller test_size")
        report.warn(msg)
        notes.append(msg)

    # the split: the caller's, or train / validation / test -- but a training table is not split for testing again
    classification = task != "regression"
    test_size = spec.test_size
    if rows is None and is_training_table(table) and "test_size" not in spec.model_fields_set and test_size:
        test_size = 0.0
        msg = (f"'{table}' is a training table: it is not split again for testing (validation rows for early "
               "stopping only); evaluate on the held-back rows with: specml evaluate "
               f"{name} {held_back or 'TEST_TABLE'}")
        report.ok(msg)
        notes.append(msg)
    if rows is not None:
        split = given_rows(*rows)
    else:
        split = split_rows(n, test_size=test_size, validation_size=spec.validation_size,
                           labels=y if classification else None, stratify=spec.stratify, shuffle=spec.shuffle,
                           seed=spec.random_state, order=order)
    report.split(split.sizes(), split.method, spec.time_column)
    for note in split.notes:
        report.warn(note)
    notes += split.notes

    # imbalance (training rows)
    imb = None
    method = None
    if classification:
        imb = detect(y[split.train], target.classes, spec.imbalance_handling.threshold)
        method = decide(imb, spec.imbalance_handling)
        if imb.imbalanced or report.level >= 2:
            report.imbalance(imb.counts, imb.ratio, imb.imbalanced)
        if imb.imbalanced and method is None:
            report.line("  (imbalance_handling.method is none: training on the rows as they are)")
        elif severity(imb) == "moderate":
            report.ok(f"Moderate class imbalance (largest/smallest {imb.ratio:.2f}, below the severe threshold "
                      f"{spec.imbalance_handling.threshold:g}): no reweighting; a decision threshold is tuned on "
                      "the validation rows instead")

    columns = ([features.columns.index(c) for c in features.numeric],
               [features.columns.index(c) for c in features.categorical])
    plan = preprocess.plan(info, spec.preprocessing)

    # cross-validation (training split)
    cv_result = None
    cv_s = 0.0
    cv_cfg = spec.cross_validation
    if cv is not None and cv == 1:
        raise ClassicalError("--cv 1: cross-validation needs at least 2 folds (0 turns it off)")
    cv_on = (cv_cfg.enabled if cv is None else cv >= 2)
    if cv_on:
        folds = cv if cv is not None else cv_cfg.folds
        strategy = cv_cfg.strategy
        if spec.time_column and "strategy" not in cv_cfg.model_fields_set:
            strategy = "timeseries"  # folds of a time-ordered split are forward chaining unless said otherwise
        scoring = cv_cfg.scoring or MAIN_METRIC[task][0]
        allowed = _task_metrics(task)
        if scoring not in allowed:
            raise ClassicalError(f"cross_validation.scoring '{scoring}' is not a {task} metric (one of "
                                 f"{', '.join(allowed)})")
        cv_result, cv_s = _cross_validate(report, info, spec, plan, columns, X[split.train], y[split.train],
                                          task=task, n_classes=len(target.classes or []) or None, folds=folds,
                                          strategy=strategy, scoring=scoring, method=method)

    # the final fit
    val_rows = split.validation

    def prepared(applied: dict | None) -> None:  # after preprocessing and resampling, before the fit
        if imb is not None and applied:
            imb.method = applied["method"]
            imb.detail = applied.get("detail")
            if "after" in applied:
                imb.after = {str(c): int(k) for c, k in zip(target.classes, applied["after"])}
                label = "SMOTE" if method == "smote" else f"random {method[:-6]}sampling"
                report.ok(f"Applying {label} to the training rows to balance classes...")
                report.line("  New distribution: " + " vs ".join(f"{v:,}" for v in imb.after.values()))
            elif imb.detail:
                report.ok(f"Class weights: {imb.detail}")
        report.ok(f"Training {info.short}{' with balanced data' if imb is not None and imb.after else ''}...")

    with report.progress(f"Training {info.short}", _planned_rounds(info, spec)) as update:
        fitted = fit_pipeline(info, spec, plan, columns, X[split.train], y[split.train], task=task,
                              imbalance_method=method, X_val=X[val_rows] if len(val_rows) else None,
                              y_val=y[val_rows] if len(val_rows) else None,
                              early_stopping=spec.early_stopping.enabled, on_iteration=update, on_prepared=prepared)
    for note in fitted.notes:
        report.warn(note)
    notes += fitted.notes
    stopped = ""
    if fitted.best_iteration is not None:
        stopped = f" (early stopping on the validation split: best round {fitted.best_iteration + 1}"
        stopped += f" of {fitted.iterations})" if fitted.iterations and fitted.iterations > fitted.best_iteration + 1 \
            else ")"
    elif info.family != "sklearn" and spec.early_stopping.enabled and not len(val_rows):
        notes.append("early stopping is off: there is no validation split (validation_size: 0)")
    report.ok(f"Training completed in {fitted.fit_s:.2f} seconds{stopped}")

    # scores on every split
    parts = {"train": split.train, "validation": split.validation, "test": split.test}
    results: dict[str, dict] = {}
    scored: dict[str, tuple] = {}  # split -> (y, scores): the run's figures and the validation threshold
    predict_s = None
    n_classes = len(target.classes) if target.classes else None
    for part, rows in parts.items():
        if not len(rows):
            continue
        t0 = time.perf_counter()
        s = scores(info.family, fitted.estimator, preprocess.transform(fitted.preprocessor, X[rows]), task)
        elapsed = time.perf_counter() - t0
        if part == "test" or predict_s is None:
            predict_s, predict_rows = elapsed, len(rows)
        results[part] = metrics(task, y[rows], s, n_classes)
        scored[part] = (y[rows], s)
    titles = {"train": "Training Performance", "validation": "Validation Performance", "test": "Test Performance"}
    if fitted.best_iteration is not None:  # the validation rows chose the number of rounds: not an unbiased score
        titles["validation"] = "Validation Performance (rows used for early stopping; not a test)"
    for part, values in results.items():
        report.metrics(titles[part], values, task)
    report.line()
    main, _ = MAIN_METRIC[task]
    shown = next(p for p in ("validation", "test", "train") if p in results)
    best = {"metric": f"{_PREFIX[shown]}_{main}", "value": results[shown].get(main)}
    threshold = None
    if task == "binary" and "validation" in scored:
        from specml.evaluation import choose_threshold

        yv, sv = scored["validation"]
        threshold = {"value": choose_threshold(yv, sv, "f1"), "method": "f1", "youden": choose_threshold(yv, sv,
                     "youden"), "chosen_on": "validation rows", "rows": int(len(yv))}
        if imb is not None and severity(imb) == "moderate":
            report.ok(f"Decision threshold tuned on the validation rows: {threshold['value']:.3f} (F1), "
                      f"{threshold['youden']:.3f} (Youden's J); use it with --threshold f1 (or youden) in "
                      "specml evaluate / predict")
    verdict = None
    if "validation" in scored:
        from specml.guard import check

        verdict = check(task, y[split.train], *scored["validation"], n_classes)
        if verdict is not None and verdict.worse:
            report.warn(verdict.message(name))
            notes.append(verdict.message(name))

    seconds = time.perf_counter() - started
    directory = None
    if spec.save_model:
        directory = artifact.directory
        directory.mkdir(parents=True, exist_ok=True)
        for family, fname in persist.MODEL_FILES.items():  # a model of another family saved under this name
            if family != info.family:
                (directory / fname).unlink(missing_ok=True)
        model_entry = persist.save_model(directory, info.family, fitted.estimator)
        pre_entry = persist.save_preprocessor(directory, fitted.preprocessor)
        from specml.data.files import atomic_write_text

        atomic_write_text(directory / "estimator.yaml", spec_text)
        seconds = time.perf_counter() - started
        artifact.write_metadata({
            "kind": "classical",
            "task": task, "table": table, "target": spec.target,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "classes": target.classes,
            "features": features.to_dict(),
            "estimator": {"type": info.name, "family": info.family, "params": _jsonable(spec.estimator.params),
                          "effective_params": _jsonable(estimator_params(info, spec))},
            "preprocessing": plan,
            "files": {"model": model_entry, "preprocessor": pre_entry, "spec": "estimator.yaml"},
            "rows": {"total": n, **split.sizes()},
            "split": {"method": split.method, "test_size": test_size if rows is None else 0.0,
                      "validation_size": spec.validation_size,
                      "random_state": spec.random_state, "time_column": spec.time_column, "shuffle": spec.shuffle},
            "imbalance": imb.to_dict() if imb is not None else None,
            "cv": cv_result.to_dict() if cv_result is not None else None,
            "early_stopping": {"enabled": spec.early_stopping.enabled, "rounds": spec.early_stopping.rounds,
                               "best_iteration": fitted.best_iteration, "iterations": fitted.iterations},
            "metrics": results,
            "best": best,
            **({"threshold": threshold} if threshold is not None else {}),
            **({"guard": verdict.to_dict()} if verdict is not None else {}),
            "timings": {"fit_s": round(fitted.fit_s, 4), "fit_cpu_s": round(fitted.fit_cpu_s or 0.0, 4),
                        "preprocess_s": round(fitted.prep_s, 4),
                        "predict_s": round(predict_s or 0.0, 4), "predict_rows": predict_rows,
                        "cv_s": round(cv_s, 4), "total_s": round(seconds, 3)},
            "seed": spec.random_state,
            "spec_hashes": {"estimator": spec_hash(spec_text)},
            "versions": library_versions(),
            "notes": notes,
        })
        from specml.classical.tracking import record_run

        run_path = record_run(artifact, home, spec_text=spec_text, table=table, fingerprint=data_fingerprint,
                              task=task, classes=target.classes, results=results, scored=scored,
                              estimator=fitted.estimator, feature_names=list(features.columns), best=best,
                              spec_hash=spec_hash(spec_text))
        if verdict is not None and run_path is not None:
            from specml.guard import record

            record(verdict, name, home)
        report.ok(f"Model saved to: {directory}" + (f" (run: {run_path})" if run_path else ""))
    else:
        report.line("Model not saved (save_model: false)")
    return ClassicalResult(name, directory, task, split.sizes(), results,
                           cv_result.to_dict() if cv_result is not None else None,
                           imb.to_dict() if imb is not None else None, seconds, fitted.fit_s, best, notes, split,
                           fitted.fit_cpu_s, verdict, threshold)


def _task_metrics(task: str) -> list[str]:
    from specml.spec.metrics import ALLOWED

    return ALLOWED[task]


def _planned_rounds(info, spec) -> int | None:
    if info.family in ("xgboost", "lightgbm"):
        return int(spec.estimator.params.get("n_estimators") or 100)
    return None


def _cross_validate(report: Report, info, spec, plan, columns, X, y, *, task, n_classes, folds, strategy, scoring,
                    method):
    label = "leave-one-out" if strategy == "loo" else f"{folds}-fold cross-validation ({strategy})"
    report.ok(f"{label[0].upper() + label[1:]} on the training split ({len(y):,} rows)")
    report.line()
    lines: list[str] = []
    t0 = time.perf_counter()
    with report.progress("Cross-validation", len(y) if strategy == "loo" else folds) as update:
        def on_fold(i: int, total: int, value: float | None, seconds: float) -> None:
            if update:
                update(i, total)
            if strategy != "loo":
                shown = "n/a" if value is None else f"{value:.4f}"
                text = f"Fold {i}: {metric_name(scoring)} = {shown} (completed in {seconds:.2f}s)"
                if update is None:
                    report.line(text)
                else:
                    lines.append(text)

        result = run_cv(info, spec, plan, columns, X, y, task=task, n_classes=n_classes, strategy=strategy,
                        folds=folds, scoring=scoring, imbalance_method=method, on_fold=on_fold)
    for text in lines:
        report.line(text)
    cv_s = time.perf_counter() - t0
    report.line()
    for note in result.notes:
        report.line(f"  {note}")
    if result.mean is None:
        report.line(f"Mean {metric_name(scoring)}: n/a")
    elif strategy == "loo":
        report.line(f"Leave-one-out {metric_name(scoring)}: {result.mean:.4f}")
    else:
        report.line(f"Mean {metric_name(scoring)}: {result.mean:.4f} ± {result.std:.4f}")
    report.line()
    report.ok("Training the final model on the full training split")
    return result, cv_s


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, float) and not np.isfinite(obj):
        return str(obj)
    if obj is None or isinstance(obj, str | int | float | bool):
        return obj
    return str(obj)
