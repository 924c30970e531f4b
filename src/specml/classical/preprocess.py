"""The preprocessing pipeline, fitted on the training rows only: impute, scale, encode strings.

* numbers: median (or ``impute``) imputation, except for XGBoost / LightGBM / CatBoost /
  HistGradientBoosting, which handle missing values themselves; standard scaling for linear,
  kernel, distance-based and neural-network models (``scale: auto``);
* strings: one-hot (unknown categories ignored) for those same models, ordinal (unknown -> -1)
  for trees and GBMs (``encoding: auto``); NULL is a category of its own.
"""

from __future__ import annotations

from specml.spec.estimator import EstimatorInfo, Preprocessing

#: scikit-learn modules whose models want scaled inputs and one-hot categories
_SCALED_MODULES = ("sklearn.linear_model", "sklearn.svm", "sklearn.neighbors", "sklearn.neural_network",
                   "sklearn.kernel_ridge", "sklearn.gaussian_process", "sklearn.cross_decomposition",
                   "sklearn.discriminant_analysis", "sklearn.semi_supervised")
_NATIVE_MISSING = {"HistGradientBoostingClassifier", "HistGradientBoostingRegressor"}


def wants_scaling(info: EstimatorInfo) -> bool:
    return info.family == "sklearn" and info.module.startswith(_SCALED_MODULES)


def is_tree_model(info: EstimatorInfo) -> bool:
    return info.family != "sklearn" or info.module.startswith(("sklearn.tree", "sklearn.ensemble"))


def handles_missing(info: EstimatorInfo) -> bool:
    return info.family != "sklearn" or info.cls_name in _NATIVE_MISSING


def plan(info: EstimatorInfo, settings: Preprocessing) -> dict:
    """What the pipeline does for this estimator: ``{"scale", "encoding", "impute"}`` (impute None: kept)."""
    scale = wants_scaling(info) if settings.scale == "auto" else settings.scale == "standard"
    encoding = settings.encoding if settings.encoding != "auto" else ("ordinal" if is_tree_model(info) else "onehot")
    return {"scale": scale, "encoding": encoding, "impute": None if handles_missing(info) else settings.impute}


def build(numeric: list[int], categorical: list[int], steps: dict):
    """A ColumnTransformer over matrix column indices; dense float output."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

    parts = []
    if numeric:
        num_steps = []
        if steps["impute"]:
            num_steps.append(("impute", SimpleImputer(strategy=steps["impute"], keep_empty_features=True)))
        if steps["scale"]:
            num_steps.append(("scale", StandardScaler()))
        parts.append(("numeric", Pipeline(num_steps) if num_steps else "passthrough", numeric))
    if categorical:
        encoder = (OneHotEncoder(handle_unknown="ignore", sparse_output=False) if steps["encoding"] == "onehot"
                   else OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1, dtype=float))
        parts.append(("categorical", encoder, categorical))
    return ColumnTransformer(parts, remainder="drop", sparse_threshold=0.0)


def transform(preprocessor, X):
    """The fitted pipeline applied to ``X``, as a float64 array."""
    import numpy as np

    return np.asarray(preprocessor.transform(X), dtype=np.float64)
