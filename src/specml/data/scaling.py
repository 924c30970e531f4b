"""Per-column scaling of numeric inputs (``normalize:`` of a model input), fitted on the training rows.

Every statistic is a plain list of numbers (stored with the model as JSON, applied again at predict time):

* ``standard``: ``(x - mean) / std``;
* ``minmax``: ``(x - min) / (max - min)``;
* ``robust``: ``z = (x - median) / IQR``, then the smooth clip ``z / sqrt(1 + (z / 3)^2)`` (RealMLP-style,
  Holzmüller et al. 2024): about ``z`` near the median, never beyond ±3, so a heavy tail cannot blow up a
  layer. A zero IQR falls back to ``(max - min) / 2``, then to 1;
* ``quantile``: the empirical CDF of the training values (:data:`QUANTILES` quantiles, linearly
  interpolated, ties averaged as scikit-learn's QuantileTransformer does), mapped to a standard normal
  and clipped at the 1e-7 / 1 - 1e-7 quantiles (about ±5.2).

NumPy only (no torch, no scipy): the normal quantile function is Acklam's rational approximation
(relative error below 1.2e-9).
"""

from __future__ import annotations

import numpy as np

__all__ = ["KINDS", "QUANTILES", "apply", "fit", "normal_ppf"]

KINDS = ("standard", "minmax", "robust", "quantile")
QUANTILES = 512  # at most; fewer training rows give one quantile per row
CLIP = 3.0  # robust: the soft clip's bound
BOUND = 1e-7  # quantile: the CDF is clipped to [BOUND, 1 - BOUND]

_A = (-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02, 1.383577518672690e+02,
      -3.066479806614716e+01, 2.506628277459239e+00)
_B = (-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02, 6.680131188771972e+01,
      -1.328068155288572e+01)
_C = (-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00, -2.549732539343734e+00,
      4.374664141464968e+00, 2.938163982698783e+00)
_D = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00, 3.754408661907416e+00)


def normal_ppf(p: np.ndarray) -> np.ndarray:
    """The standard normal quantile function for ``p`` in (0, 1) (Acklam's approximation)."""
    p = np.asarray(p, dtype=np.float64)
    out = np.empty_like(p)
    low, high = p < 0.02425, p > 1 - 0.02425
    mid = ~(low | high)
    q = p[mid] - 0.5
    r = q * q
    num = ((((_A[0] * r + _A[1]) * r + _A[2]) * r + _A[3]) * r + _A[4]) * r + _A[5]
    den = ((((_B[0] * r + _B[1]) * r + _B[2]) * r + _B[3]) * r + _B[4]) * r + 1
    out[mid] = q * num / den
    for mask, sign, tail in ((low, 1.0, p[low]), (high, -1.0, 1 - p[high])):
        q = np.sqrt(-2 * np.log(tail))
        num = ((((_C[0] * q + _C[1]) * q + _C[2]) * q + _C[3]) * q + _C[4]) * q + _C[5]
        den = (((_D[0] * q + _D[1]) * q + _D[2]) * q + _D[3]) * q + 1
        out[mask] = sign * num / den
    return out


def fit(kind: str, matrix: np.ndarray) -> tuple[list[float] | None, list[float] | None, list[list[float]] | None]:
    """``(center, scale, quantiles)`` of each column of ``matrix`` (NaN = not counted)."""
    matrix = np.asarray(matrix, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):  # 1e308 overflows: refused at transform
        if kind == "standard":
            std = np.nan_to_num(np.nanstd(matrix, axis=0))
            return np.nan_to_num(np.nanmean(matrix, axis=0)).tolist(), np.where(std > 0, std, 1.0).tolist(), None
        if kind == "minmax":
            lo, hi = np.nan_to_num(np.nanmin(matrix, axis=0)), np.nan_to_num(np.nanmax(matrix, axis=0))
            return lo.tolist(), np.where(hi > lo, hi - lo, 1.0).tolist(), None
        if kind == "robust":
            q25, med, q75 = np.nan_to_num(np.nanquantile(matrix, [0.25, 0.5, 0.75], axis=0))
            lo, hi = np.nan_to_num(np.nanmin(matrix, axis=0)), np.nan_to_num(np.nanmax(matrix, axis=0))
            iqr, half_range = q75 - q25, (hi - lo) / 2
            scale = np.where(iqr > 0, iqr, np.where(half_range > 0, half_range, 1.0))
            return med.tolist(), scale.tolist(), None
        if kind == "quantile":
            n = max(2, min(QUANTILES, len(matrix)))
            levels = np.linspace(0.0, 1.0, n)
            quantiles = np.nan_to_num(np.nanquantile(matrix, levels, axis=0)) if len(matrix) else \
                np.zeros((n, matrix.shape[1]))
            return None, None, quantiles.T.tolist()
    raise ValueError(f"unknown normalize {kind!r}; expected one of {', '.join(KINDS)}")


def apply(kind: str, matrix: np.ndarray, center: list[float] | None, scale: list[float] | None,
          quantiles: list[list[float]] | None) -> np.ndarray:
    """``matrix`` (rows x columns) scaled with the fitted statistics."""
    if kind in ("standard", "minmax"):
        return (matrix - np.asarray(center)) / np.asarray(scale)
    if kind == "robust":
        z = (matrix - np.asarray(center)) / np.asarray(scale)
        return z / np.sqrt(1.0 + (z / CLIP) ** 2)
    if kind == "quantile":
        out = np.empty(matrix.shape, dtype=np.float64)
        for j, q in enumerate(quantiles):
            ref = np.asarray(q, dtype=np.float64)
            levels = np.linspace(0.0, 1.0, len(ref))
            x = matrix[:, j].astype(np.float64)
            # ties: the mean of the interpolation from below and from above (scikit-learn's rule)
            up = np.interp(x, ref, levels)
            down = -np.interp(-x, -ref[::-1], -levels[::-1])
            out[:, j] = normal_ppf(np.clip(0.5 * (up + down), BOUND, 1 - BOUND))
        return out
    raise ValueError(f"unknown normalize {kind!r}; expected one of {', '.join(KINDS)}")
