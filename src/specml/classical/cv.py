"""Cross-validation on the training split: k-fold, stratified, time-series (forward chaining) or
leave-one-out. Every fold fits its own preprocessing and imbalance handling on its own training
rows (no leakage) and is scored on its held-out rows; GBMs run their full ``n_estimators`` (the
validation split, which early stopping watches, is not part of a fold)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from specml.classical.errors import ClassicalError
from specml.classical.fit import fit_pipeline
from specml.classical.score import metrics, scores
from specml.spec.estimator import EstimatorInfo, EstimatorSpec


@dataclass
class CVResult:
    strategy: str
    folds: int
    scoring: str
    scores: list[float | None] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def mean(self) -> float | None:
        vals = [s for s in self.scores if s is not None]
        return float(np.mean(vals)) if vals else None

    @property
    def std(self) -> float | None:
        vals = [s for s in self.scores if s is not None]
        return float(np.std(vals)) if vals else None

    def to_dict(self) -> dict:
        return {"strategy": self.strategy, "folds": self.folds, "scoring": self.scoring, "scores": self.scores,
                "seconds": [round(s, 4) for s in self.seconds], "mean": self.mean, "std": self.std}


def splitter(strategy: str, folds: int, task: str, n: int, seed: int | None, shuffle: bool):
    from sklearn.model_selection import KFold, LeaveOneOut, StratifiedKFold, TimeSeriesSplit

    if strategy == "loo":
        return LeaveOneOut()
    if folds > n:
        raise ClassicalError(f"{folds} folds but only {n} training rows; use fewer folds or strategy loo")
    if strategy == "timeseries":
        return TimeSeriesSplit(n_splits=folds)
    rs = seed if shuffle else None
    if strategy == "stratified" and task != "regression":
        return StratifiedKFold(n_splits=folds, shuffle=shuffle, random_state=rs)
    return KFold(n_splits=folds, shuffle=shuffle, random_state=rs)


def run_cv(info: EstimatorInfo, spec: EstimatorSpec, plan: dict, columns, X: np.ndarray, y: np.ndarray, *,
           task: str, n_classes: int | None, strategy: str, folds: int, scoring: str,
           imbalance_method: str | None, on_fold: Callable[[int, int, float | None, float], None] | None = None,
           ) -> CVResult:
    """Score each fold on its held-out rows; ``X``/``y`` are the training split (time-ordered for timeseries)."""
    split = splitter(strategy, folds, task, len(y), spec.random_state, spec.shuffle)
    if strategy == "stratified" and task != "regression":
        smallest = int(np.bincount(y).min())
        if smallest < folds:
            raise ClassicalError(f"stratified {folds}-fold CV needs {folds} training rows of every class; the "
                                 f"smallest class has {smallest} (use fewer folds or strategy kfold)")
    pairs = list(split.split(X, y if task != "regression" else None))
    result = CVResult(strategy, len(pairs), scoring)
    loo_scores: list[np.ndarray] = []
    loo_truth: list[np.ndarray] = []
    for i, (tr, te) in enumerate(pairs, start=1):
        t0 = time.perf_counter()
        fitted = fit_pipeline(info, spec, plan, columns, X[tr], y[tr], task=task, imbalance_method=imbalance_method)
        from specml.classical.preprocess import transform

        s = scores(info.family, fitted.estimator, transform(fitted.preprocessor, X[te]), task)
        seconds = time.perf_counter() - t0
        if strategy == "loo":  # one row per fold: pool the predictions, score once at the end
            loo_scores.append(s)
            loo_truth.append(y[te])
            value = None
        else:
            value = metrics(task, y[te], s, n_classes).get(scoring)
        result.scores.append(value)
        result.seconds.append(seconds)
        if on_fold:
            on_fold(i, len(pairs), value, seconds)
    if strategy == "loo" and loo_scores:
        pooled = metrics(task, np.concatenate(loo_truth), np.concatenate(loo_scores), n_classes).get(scoring)
        result.scores = [pooled]
        result.notes.append(f"leave-one-out: {len(pairs)} fits, {scoring} of the pooled held-out predictions")
    return result
