"""Scores of a fitted estimator on a preprocessed matrix, in specml's conventions (as neural models):
positive-class probability [N] (binary), class probabilities [N, C] (multiclass), values [N] (regression).

Classifiers without ``predict_proba`` (SVC without probability, RidgeClassifier, ...) are scored
with their ``decision_function`` through a sigmoid / softmax: the ranking (auc) and the 0.5 threshold
match their ``predict``, the probabilities are not calibrated.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from specml.spec.metrics import CATALOGUE, TABLE_TASKS


def scores(family: str, estimator: Any, X: np.ndarray, task: str) -> np.ndarray:
    if family == "lightgbm" and not hasattr(estimator, "predict_proba"):  # a loaded lightgbm.Booster
        out = np.asarray(estimator.predict(X), dtype=np.float64)
        return out
    if task == "regression":
        return np.asarray(estimator.predict(X), dtype=np.float64).reshape(-1)
    if hasattr(estimator, "predict_proba"):
        try:
            p = np.asarray(estimator.predict_proba(X), dtype=np.float64)
            return p[:, 1] if task == "binary" else p
        except AttributeError:  # e.g. SVC(probability=False) exposes the method but refuses it
            pass
    if hasattr(estimator, "decision_function"):
        d = np.asarray(estimator.decision_function(X), dtype=np.float64)
        if task == "binary":
            return 0.5 * (1.0 + np.tanh(0.5 * d.reshape(-1)))
        e = np.exp(d - d.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    pred = np.asarray(estimator.predict(X)).astype(np.int64)
    if task == "binary":
        return pred.astype(np.float64)
    onehot = np.zeros((len(pred), int(pred.max(initial=0)) + 1))
    onehot[np.arange(len(pred)), pred] = 1.0
    return onehot


def metrics(task: str, y: np.ndarray, s: np.ndarray, n_classes: int | None = None) -> dict[str, float | None]:
    """:func:`specml.train.metrics.evaluate_predictions`, NaN as None."""
    import math

    from specml.train.metrics import evaluate_predictions

    if task == "multiclass" and n_classes is not None and s.ndim == 2 and s.shape[1] < n_classes:
        s = np.pad(s, ((0, 0), (0, n_classes - s.shape[1])))
    values = evaluate_predictions(task, y, s)
    return {k: (None if isinstance(v, float) and math.isnan(v) else float(v)) for k, v in values.items()}


#: the metric each task's models are ranked by, and whether higher is better (the catalogue's main metric)
MAIN_METRIC = {task: (CATALOGUE[task].main, CATALOGUE[task].main_higher_is_better) for task in TABLE_TASKS}
