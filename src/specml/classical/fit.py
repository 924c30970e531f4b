"""Fit one pipeline on given rows: preprocessing (training rows only), imbalance handling, the estimator
(with early stopping on the validation rows for GBMs). Used by the final fit and by every CV fold."""

from __future__ import annotations

import inspect
import re
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from specml.classical import imbalance, preprocess
from specml.classical.errors import ClassicalError
from specml.spec.estimator import EstimatorInfo, EstimatorSpec


@dataclass
class Fitted:
    preprocessor: Any
    estimator: Any
    fit_s: float                       # estimator.fit only (wall)
    prep_s: float                      # preprocessing fit + transform + resampling
    imbalance: dict | None = None      # what was applied
    best_iteration: int | None = None
    iterations: int | None = None
    notes: list[str] = field(default_factory=list)
    fit_cpu_s: float | None = None     # estimator.fit only (process CPU time, all threads)


def estimator_params(info: EstimatorInfo, spec: EstimatorSpec) -> dict:
    """The user's params plus specml's defaults where the user said nothing (seed, quiet logs)."""
    params = dict(spec.estimator.params)
    sig = inspect.signature(info.load().__init__).parameters
    seed = spec.random_state
    if seed is not None:
        if info.family == "catboost":
            if "random_seed" not in params and "random_state" not in params:
                params["random_seed"] = seed
        elif ("random_state" in sig or info.family in ("xgboost", "lightgbm")) and "random_state" not in params \
                and "seed" not in params:
            params["random_state"] = seed
    if info.family == "lightgbm" and "verbose" not in params and "verbosity" not in params:
        params["verbose"] = -1
    if info.family == "catboost":
        params.setdefault("allow_writing_files", False)
        if not any(k in params for k in ("verbose", "logging_level", "silent", "verbose_eval")):
            params["verbose"] = spec.level >= 2
    return params


def fit_pipeline(info: EstimatorInfo, spec: EstimatorSpec, plan: dict, columns: tuple[list[int], list[int]],
                 X: np.ndarray, y: np.ndarray, *, task: str, imbalance_method: str | None,
                 X_val: np.ndarray | None = None, y_val: np.ndarray | None = None, early_stopping: bool = False,
                 on_iteration: Callable[[int, int], None] | None = None,
                 on_prepared: Callable[[dict | None], None] | None = None) -> Fitted:
    """Fit preprocessing on ``X`` (training rows), handle imbalance on them, fit the estimator."""
    notes: list[str] = []
    t0 = time.perf_counter()
    pre = preprocess.build(columns[0], columns[1], plan)
    Xt = np.asarray(pre.fit_transform(X), dtype=np.float64)
    Xv = preprocess.transform(pre, X_val) if X_val is not None and len(X_val) else None
    params = estimator_params(info, spec)
    fit_kwargs: dict[str, Any] = {}
    applied = None
    if imbalance_method in ("smote", "oversample", "undersample"):
        before = np.bincount(y)
        Xt, y = imbalance.resample(Xt, y, imbalance_method, spec.random_state)
        applied = {"method": imbalance_method, "before": before.tolist(), "after": np.bincount(y).tolist()}
    elif imbalance_method == "class_weight":
        fit_sig = inspect.signature(info.load().fit).parameters
        updates, weights, detail = imbalance.class_weight_settings(info, params, y, task, set(fit_sig))
        for k, v in updates.items():
            params.setdefault(k, v)
        if weights is not None:
            fit_kwargs["sample_weight"] = weights
        applied = {"method": "class_weight", "detail": detail or None}
        if not detail:
            notes.append(f"{info.short} takes neither class weights nor sample weights: class_weight not applied")
    prep_s = time.perf_counter() - t0
    if on_prepared is not None:
        on_prepared(applied)

    stop = early_stopping and info.family != "sklearn" and Xv is not None
    rounds = spec.early_stopping.rounds
    if stop:
        if info.family == "xgboost":
            params.setdefault("early_stopping_rounds", rounds)
            fit_kwargs.update(eval_set=[(Xv, y_val)], verbose=spec.level >= 2)
        elif info.family == "lightgbm":
            import lightgbm

            takes = inspect.signature(info.load().fit).parameters
            fit_kwargs.update({"eval_X": (Xv,), "eval_y": (y_val,)} if "eval_X" in takes else
                              {"eval_set": [(Xv, y_val)]})
            fit_kwargs["callbacks"] = [lightgbm.early_stopping(rounds, verbose=spec.level >= 2)]
        else:
            fit_kwargs.update(eval_set=(Xv, y_val), early_stopping_rounds=rounds)
    progress_cb = _progress_callback(info, on_iteration, params) if on_iteration else None
    if progress_cb is not None:
        if info.family == "xgboost":
            params["callbacks"] = [progress_cb]
        elif info.family == "lightgbm":
            fit_kwargs["callbacks"] = [*fit_kwargs.get("callbacks", []), progress_cb]

    refused = (TypeError, ValueError, *_library_errors(info))
    try:
        estimator = info.load()(**params)
    except refused as exc:
        raise ClassicalError(f"estimator.params: {info.short}({_show(params)}) failed: {exc}") from None
    t1 = time.perf_counter()
    c1 = time.process_time()
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=UserWarning, module="lightgbm")
            estimator.fit(Xt, y, **fit_kwargs)
    except refused as exc:
        raise ClassicalError(f"fitting {info.short} failed: {_one_line(exc)}") from None
    fit_s = time.perf_counter() - t1
    fit_cpu_s = time.process_time() - c1
    if info.family == "xgboost" and progress_cb is not None:
        estimator.set_params(callbacks=None)
    best, total = _iterations(info, estimator)
    return Fitted(pre, estimator, fit_s, prep_s, applied, best, total, notes, fit_cpu_s)


def _library_errors(info: EstimatorInfo) -> tuple[type[BaseException], ...]:
    """The error type a GBM library raises for a parameter it refuses (an unknown objective), e.g. LightGBMError."""
    if info.family == "lightgbm":
        from lightgbm.basic import LightGBMError

        return (LightGBMError,)
    if info.family == "xgboost":
        from xgboost.core import XGBoostError

        return (XGBoostError,)
    if info.family == "catboost":
        from catboost import CatBoostError

        return (CatBoostError,)
    return ()


def _one_line(exc: BaseException) -> str:
    """A library's message on one line, without a native stack trace or a source-file prefix (XGBoost's)."""
    text = " ".join(str(exc).split()).split(" Stack trace:")[0]
    text = re.sub(r"^\[[0-9:]+\] \S+:\d+: ", "", text)
    candidates = re.findall(r"Objective candidate: (\S+)", text)
    if candidates:
        text = text.split(" Objective candidate:")[0] + f" (known: {', '.join(sorted(candidates))})"
    return text


def _show(params: dict) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in params.items())


def _iterations(info: EstimatorInfo, est: Any) -> tuple[int | None, int | None]:
    """(best iteration, 0-based; rounds run) of a GBM, or (None, None)."""
    try:
        if info.family == "xgboost":
            booster = est.get_booster()
            best = getattr(est, "best_iteration", None) if booster.attr("best_iteration") is not None else None
            return best, booster.num_boosted_rounds()
        if info.family == "lightgbm":
            best = est.best_iteration_ or None
            return (best - 1 if best else None), est.booster_.current_iteration()
        if info.family == "catboost":
            return est.get_best_iteration(), est.tree_count_
    except Exception:  # attributes differ across versions; the numbers are informative only
        return None, None
    return None, None


def _progress_callback(info: EstimatorInfo, on_iteration: Callable[[int, int], None], params: dict):
    """A per-round callback reporting (round, planned rounds) for XGBoost and LightGBM."""
    total = int(params.get("n_estimators") or 100)
    if info.family == "xgboost":
        import xgboost

        class _Progress(xgboost.callback.TrainingCallback):
            def after_iteration(self, model, epoch, evals_log):
                on_iteration(epoch + 1, total)
                return False

        return _Progress()
    if info.family == "lightgbm":
        def _lgb(env):
            on_iteration(env.iteration + 1, env.end_iteration)

        _lgb.order = 100
        return _lgb
    return None
