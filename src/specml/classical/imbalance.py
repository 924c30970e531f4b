"""Class imbalance: detected on the training rows, handled on the training rows only.

``smote`` / ``oversample`` / ``undersample`` resample the (preprocessed) training matrix with
imbalanced-learn; validation and test rows are never touched. ``class_weight`` asks the estimator
to weigh classes: ``class_weight="balanced"`` where the class takes it (scikit-learn, LightGBM),
``scale_pos_weight`` for binary XGBoost, ``auto_class_weights="Balanced"`` for CatBoost, and
balanced ``sample_weight`` for the rest (when their ``fit`` takes one).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field

import numpy as np

from specml.classical.errors import ClassicalError
from specml.spec.estimator import EstimatorInfo, ImbalanceHandling


@dataclass
class ImbalanceReport:
    counts: dict[str, int]          # class -> training rows
    ratio: float                    # largest / smallest class
    imbalanced: bool
    method: str | None = None       # what was applied (None: nothing)
    detail: str | None = None       # e.g. "class_weight='balanced'", "scale_pos_weight=1.87"
    after: dict[str, int] | None = None  # class counts after resampling
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"counts": self.counts, "ratio": round(self.ratio, 4), "imbalanced": self.imbalanced,
                "severity": severity(self), "method": self.method, "detail": self.detail, "after": self.after}


#: largest / smallest class from which a target counts as (moderately) imbalanced: reported, with a decision
#: threshold tuned on the validation rows, but not reweighted
MODERATE = 1.5
#: the default severe threshold (``imbalance_handling.threshold``): a minority share of 10% in a two-class target.
#: Only then does reweighting pay: below it weights mostly distort the probabilities (a 24%-positive target
#: lost 3-4 points of accuracy to class weights) while a tuned threshold gets the same recall trade-off.
SEVERE = 9.0


def detect(y: np.ndarray, classes: list, threshold: float) -> ImbalanceReport:
    """Class counts of the training rows; ``imbalanced`` (severe) when largest / smallest >= ``threshold``."""
    counts = np.bincount(y, minlength=len(classes))
    present = counts[counts > 0]
    ratio = float(present.max() / present.min()) if len(present) else 1.0
    return ImbalanceReport({str(c): int(n) for c, n in zip(classes, counts)}, ratio, ratio >= threshold)


def severity(report: ImbalanceReport) -> str:
    """``severe`` (the method applies), ``moderate`` (a tuned threshold is reported) or ``none``."""
    if report.imbalanced:
        return "severe"
    return "moderate" if report.ratio >= MODERATE else "none"


def decide(report: ImbalanceReport, settings: ImbalanceHandling) -> str | None:
    """The method to apply, or None."""
    if settings.method == "none":
        return None
    if settings.auto_detect and not report.imbalanced:
        return None
    return settings.method


def resample(X: np.ndarray, y: np.ndarray, method: str, seed: int | None) -> tuple[np.ndarray, np.ndarray]:
    """The training rows, resampled (imbalanced-learn); a new array, the input is unchanged."""
    from imblearn.over_sampling import SMOTE, RandomOverSampler
    from imblearn.under_sampling import RandomUnderSampler

    if method == "smote":
        smallest = int(np.bincount(y)[np.bincount(y) > 0].min())
        if smallest < 2:
            raise ClassicalError("SMOTE needs at least 2 training rows of every class; use oversample instead")
        sampler = SMOTE(random_state=seed, k_neighbors=min(5, smallest - 1))
    elif method == "oversample":
        sampler = RandomOverSampler(random_state=seed)
    else:
        sampler = RandomUnderSampler(random_state=seed)
    Xr, yr = sampler.fit_resample(X, y)
    return np.asarray(Xr, dtype=np.float64), np.asarray(yr, dtype=np.int64)


def class_weight_settings(info: EstimatorInfo, params: dict, y: np.ndarray, task: str,
                          fit_params: set[str]) -> tuple[dict, np.ndarray | None, str]:
    """(constructor updates, sample weights or None, what was done) for ``class_weight``."""
    if info.family == "xgboost":
        if task == "binary":
            counts = np.bincount(y, minlength=2)
            value = float(counts[0] / max(counts[1], 1))
            return {"scale_pos_weight": value}, None, f"scale_pos_weight={value:.3g}"
        return {}, _balanced(y), "balanced sample weights"
    if info.family == "catboost":
        return {"auto_class_weights": "Balanced"}, None, "auto_class_weights='Balanced'"
    if info.family == "lightgbm" or "class_weight" in params or _takes(info, "class_weight"):
        return {"class_weight": "balanced"}, None, "class_weight='balanced'"
    if "sample_weight" in fit_params:
        return {}, _balanced(y), "balanced sample weights"
    return {}, None, ""


def _takes(info: EstimatorInfo, name: str) -> bool:
    return name in inspect.signature(info.load().__init__).parameters


def _balanced(y: np.ndarray) -> np.ndarray:
    from sklearn.utils.class_weight import compute_sample_weight

    return compute_sample_weight("balanced", y)
