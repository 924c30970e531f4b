"""The estimator spec: a classical model (scikit-learn, XGBoost, LightGBM, CatBoost) and how to train it.

The keys and defaults are seed 003's configuration, flat at the top level (the seed nests nothing),
plus ``estimator: {type, params}``, ``target``, ``features``, ``time_column`` and ``preprocessing``.
A file is an estimator spec when it has an ``estimator:`` key.

``type`` comes from an allow-list: scikit-learn classifiers and regressors by class name
(``RandomForestClassifier`` or ``sklearn.ensemble.RandomForestClassifier``),
``xgboost.XGBClassifier`` / ``XGBRegressor``, ``lightgbm.LGBMClassifier`` / ``LGBMRegressor`` and
``catboost.CatBoostClassifier`` / ``CatBoostRegressor`` (with ``specml[catboost]`` installed).
``params`` are checked against the class's constructor. Importing this module imports no ML library;
:func:`check_estimator` imports the one library the spec names.
"""

from __future__ import annotations

import functools
import importlib
import inspect
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field, NonNegativeInt, model_validator

from specml.errors import SpecmlError
from specml.spec.base import StrictModel
from specml.spec.errors import IssueList, suggestion
from specml.spec.metrics import ALLOWED, CATALOGUE, METRICS

TASKS = ("binary", "multiclass", "regression")

#: the GBM libraries: (module, class) -> kind
_GBM = {
    "xgboost.XGBClassifier": ("xgboost", "classifier"),
    "xgboost.XGBRegressor": ("xgboost", "regressor"),
    "lightgbm.LGBMClassifier": ("lightgbm", "classifier"),
    "lightgbm.LGBMRegressor": ("lightgbm", "regressor"),
    "catboost.CatBoostClassifier": ("catboost", "classifier"),
    "catboost.CatBoostRegressor": ("catboost", "regressor"),
}
#: scikit-learn estimators that cannot be written in YAML (they take other estimators) or saved safely
_SKLEARN_EXCLUDED = {"CalibratedClassifierCV", "GaussianProcessClassifier", "GaussianProcessRegressor"}


class EstimatorDef(StrictModel):
    """Which estimator, and its constructor arguments."""

    type: str = Field(..., description="Estimator class: a scikit-learn class name (RandomForestClassifier, "
                                       "sklearn.linear_model.LogisticRegression), xgboost.XGBClassifier, "
                                       "lightgbm.LGBMRegressor, catboost.CatBoostClassifier, ...")
    params: dict[str, Any] = Field(default_factory=dict, description="Constructor arguments, checked against the class.")


class CrossValidation(StrictModel):
    enabled: bool = Field(False, description="Run k-fold cross-validation on the training split before the final fit.")
    folds: int = Field(5, ge=2, description="Number of folds (ignored by strategy loo).")
    strategy: Literal["kfold", "stratified", "timeseries", "loo"] = Field(
        "stratified", description="kfold, stratified (classification; kfold for regression), timeseries "
                                  "(forward chaining; the default with time_column), loo (leave-one-out).")
    scoring: str | None = Field(None, description="Metric scored per fold (default: the task's main metric, "
                                                  + ", ".join(f"{CATALOGUE[t].main} for {t}" for t in TASKS)
                                                  + f"). One of {', '.join(METRICS)}.")

    @model_validator(mode="after")
    def _known_metric(self) -> CrossValidation:
        if self.scoring is not None and self.scoring not in METRICS:
            hint = suggestion(self.scoring, METRICS)
            raise ValueError(f"unknown scoring metric '{self.scoring}'" + (f" ({hint})" if hint else
                                                                         f"; one of {', '.join(METRICS)}"))
        return self


class ImbalanceHandling(StrictModel):
    auto_detect: bool = Field(True, description="Apply `method` only when the training rows are imbalanced; "
                                                "false: always apply it.")
    method: Literal["smote", "undersample", "oversample", "class_weight", "none"] = Field(
        "class_weight", description="smote / undersample / oversample (imbalanced-learn, training rows only), "
                                    "class_weight (class_weight / scale_pos_weight / sample weights), none.")
    threshold: float = Field(9.0, ge=1.0, description="Severely imbalanced (and `method` applied) when the largest "
                                                      "class has at least this many times the rows of the smallest: "
                                                      "9 = a minority share of 10% in a two-class target. Milder "
                                                      "imbalance is not reweighted (weights distort the probabilities "
                                                      "and buy little ranking); a decision threshold tuned on the "
                                                      "validation rows is reported instead.")


class EarlyStopping(StrictModel):
    enabled: bool = Field(True, description="Stop gradient boosting when the validation score stops improving.")
    rounds: int = Field(50, ge=1, description="Rounds without improvement before stopping.")


class Preprocessing(StrictModel):
    scale: Literal["auto", "standard", "none"] = Field(
        "auto", description="auto: standardise numeric columns for linear, kernel, distance and neural-net models.")
    encoding: Literal["auto", "onehot", "ordinal"] = Field(
        "auto", description="String columns: auto = ordinal for tree models and GBMs, one-hot otherwise.")
    impute: Literal["median", "mean", "most_frequent"] = Field(
        "median", description="Missing numbers (GBMs keep them: they handle missing values natively). "
                              "Missing strings become their own category.")


class EstimatorSpec(StrictModel):
    """A classical model and its training settings."""

    name: str | None = None
    description: str | None = None
    estimator: EstimatorDef
    target: str = Field(..., description="The column to predict.")
    features: list[str] | None = Field(None, description="Feature columns (default: every column but the target "
                                                         "and the time column).")
    time_column: str | None = Field(None, description="Order rows by this column: the split becomes time-ordered "
                                                      "(train before validation before test), never shuffled.")
    task: Literal["binary", "multiclass", "regression"] | None = Field(
        None, description="Default: regression for regressors; binary or multiclass from the target's classes.")
    test_size: float = Field(0.2, ge=0.0, lt=1.0, description="Fraction of rows held out for the test split.")
    validation_size: float = Field(0.1, ge=0.0, lt=1.0, description="Fraction of rows for the validation split.")
    stratify: bool = Field(True, description="Stratified splits for classification.")
    shuffle: bool = Field(True, description="Shuffle before splitting (false: table order; a time split never shuffles).")
    random_state: int | None = Field(42, description="Seeds the split, the folds, resampling and the estimator.")
    cross_validation: CrossValidation = Field(default_factory=CrossValidation)
    imbalance_handling: ImbalanceHandling = Field(default_factory=ImbalanceHandling)
    early_stopping: EarlyStopping = Field(default_factory=EarlyStopping)
    preprocessing: Preprocessing = Field(default_factory=Preprocessing)
    save_model: bool = Field(True, description="Save the model as <SPECML_HOME>/models/<name>/.")
    save_path: str | None = Field(None, description="Accepted (e.g. 'models/') and ignored: models always go "
                                                    "to <SPECML_HOME>/models/<name>/.")
    verbose: bool | NonNegativeInt = Field(1, description="0: quiet; 1: the summary and progress; 2: also the GBM's "
                                                          "own evaluation log.")

    @model_validator(mode="after")
    def _rules(self) -> EstimatorSpec:
        if self.test_size + self.validation_size >= 1.0:
            raise ValueError(f"test_size + validation_size must be below 1 (got {self.test_size} + "
                             f"{self.validation_size}): nothing would be left to train on")
        if self.save_path is not None and self.save_path.rstrip("/") != "models":
            raise ValueError(f"save_path '{self.save_path}': models are saved as <SPECML_HOME>/models/<name>/; "
                             "set SPECML_HOME to move them (or remove save_path)")
        if self.features is not None:
            if self.target in self.features:
                raise ValueError(f"the target '{self.target}' is also listed in features")
            dupes = sorted({f for f in self.features if self.features.count(f) > 1})
            if dupes:
                raise ValueError(f"features lists {', '.join(dupes)} more than once")
            if not self.features:
                raise ValueError("features is empty; leave it out to use every column but the target")
        if self.time_column is not None and self.time_column == self.target:
            raise ValueError("time_column is the target")
        return self

    @property
    def level(self) -> int:
        return int(self.verbose)


# ----------------------------------------------------------------------------------------------
# the allow-list


@dataclass(frozen=True)
class EstimatorInfo:
    """An allowed estimator class: canonical name, library family, classifier or regressor."""

    name: str
    family: str  # sklearn | xgboost | lightgbm | catboost
    kind: str    # classifier | regressor
    module: str
    cls_name: str

    def load(self) -> type:
        try:
            module = importlib.import_module(self.module)
        except ImportError:
            extra = f"install specml[{self.family}]" if self.family == "catboost" else f"pip install {self.family}"
            raise EstimatorTypeError(f"{self.name} needs the {self.family} package, which is not installed",
                                     extra) from None
        return getattr(module, self.cls_name)

    @property
    def short(self) -> str:
        return self.cls_name


class EstimatorTypeError(SpecmlError, ValueError):
    """An estimator type that is not allowed, or whose library is missing."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message + (f" ({hint})" if hint else ""))
        self.message, self.hint = message, hint


#: the scikit-learn modules that hold its classifiers and regressors (the set `all_estimators` finds, without
#: importing every sklearn module: some of those import torch, and `specml validate --no-deep` must not)
_SKLEARN_MODULES = ("ensemble", "linear_model", "tree", "svm", "neighbors", "naive_bayes", "neural_network",
                    "discriminant_analysis", "kernel_ridge", "gaussian_process", "cross_decomposition",
                    "semi_supervised", "isotonic", "dummy", "calibration", "multiclass", "multioutput", "compose",
                    "model_selection", "frozen")


@functools.lru_cache(maxsize=1)
def sklearn_estimators() -> dict[str, EstimatorInfo]:
    """scikit-learn classifiers and regressors that YAML can construct: class name -> info."""
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin

    out: dict[str, EstimatorInfo] = {}
    for short in _SKLEARN_MODULES:
        try:
            module = importlib.import_module(f"sklearn.{short}")
        except ImportError:
            continue
        for name, cls in inspect.getmembers(module, inspect.isclass):
            if (name.startswith("_") or name in _SKLEARN_EXCLUDED or name in out or inspect.isabstract(cls)
                    or not issubclass(cls, BaseEstimator)):
                continue
            kind = "classifier" if issubclass(cls, ClassifierMixin) else \
                "regressor" if issubclass(cls, RegressorMixin) else None
            if kind is None:
                continue
            required = [p for p in inspect.signature(cls.__init__).parameters.values()
                        if p.name != "self" and p.default is inspect.Parameter.empty
                        and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
            if required:  # meta-estimators (Stacking, Voting, OneVsRest, ...) take estimators as arguments
                continue
            public = ".".join(p for p in cls.__module__.split(".") if not p.startswith("_"))
            out[name] = EstimatorInfo(f"{public}.{name}", "sklearn", kind, cls.__module__, name)
    return out


def allowed_types() -> list[str]:
    """Every allowed type name, canonical form (for messages and docs)."""
    return [*_GBM, *(i.name for i in sklearn_estimators().values())]


def resolve_estimator(type_name: str) -> EstimatorInfo:
    """The allowed estimator ``type_name`` names; :class:`EstimatorTypeError` with a did-you-mean if none."""
    if type_name in _GBM:
        family, kind = _GBM[type_name]
        return EstimatorInfo(type_name, family, kind, family, type_name.split(".", 1)[1])
    if type_name.startswith(("xgboost.", "lightgbm.", "catboost.")):
        short = {k.split(".", 1)[1]: k for k in _GBM}
        if type_name.split(".", 1)[1] in short:
            return resolve_estimator(short[type_name.split(".", 1)[1]])
    else:
        gbm_short = {k.split(".", 1)[1]: k for k in _GBM}
        if type_name in gbm_short:  # XGBClassifier without its module
            return resolve_estimator(gbm_short[type_name])
        known = sklearn_estimators()
        short = type_name.rsplit(".", 1)[-1]
        info = known.get(short)
        if info is not None and (type_name == short or type_name == info.name
                                 or (type_name.startswith("sklearn.") and _same_class(type_name, info))):
            return info
    names = allowed_types()
    pool = names + [n.rsplit(".", 1)[-1] for n in names]
    hint = suggestion(type_name, pool) or suggestion(type_name.rsplit(".", 1)[-1], pool)
    raise EstimatorTypeError(f"estimator type '{type_name}' is not allowed", hint or (
        "allowed: scikit-learn classifiers and regressors by class name, xgboost.XGBClassifier, "
        "xgboost.XGBRegressor, lightgbm.LGBMClassifier, lightgbm.LGBMRegressor, catboost.CatBoostClassifier, "
        "catboost.CatBoostRegressor"))


def _same_class(dotted: str, info: EstimatorInfo) -> bool:
    """``sklearn.linear_model._logistic.LogisticRegression`` names the same class as the public path."""
    module = dotted.rsplit(".", 1)[0]
    try:
        return getattr(importlib.import_module(module), info.cls_name, None) is info.load()
    except ImportError:
        return False


def _signature(cls: type) -> list[str]:
    return [p.name for p in inspect.signature(cls.__init__).parameters.values()
            if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


def allowed_params(info: EstimatorInfo) -> list[str]:
    """The parameter names ``info``'s class takes: its constructor's (XGBoost and LightGBM also pass the
    booster parameters in ``_PASSTHROUGH`` through their ``**kwargs``)."""
    cls = info.load()
    if info.family == "xgboost":
        import xgboost

        return list(dict.fromkeys([*_signature(xgboost.XGBModel), *_signature(cls)]))
    return _signature(cls)


#: booster parameters XGBoost / LightGBM take through **kwargs, beyond their sklearn signature
_PASSTHROUGH = {
    "xgboost": {"eta", "lambda", "alpha", "max_bin", "tree_method", "grow_policy", "max_leaves", "nthread",
                "seed", "sampling_method", "monotone_constraints", "interaction_constraints", "eval_metric",
                "min_split_loss", "device", "multi_strategy", "max_cat_to_onehot", "enable_categorical"},
    "lightgbm": {"max_bin", "min_data_in_leaf", "min_sum_hessian_in_leaf", "bagging_fraction", "bagging_freq",
                 "feature_fraction", "lambda_l1", "lambda_l2", "num_threads", "seed", "verbosity", "verbose",
                 "metric", "max_cat_to_onehot", "extra_trees", "path_smooth", "linear_tree", "force_col_wise",
                 "force_row_wise", "deterministic", "min_gain_to_split", "num_iterations", "bagging_seed",
                 "feature_fraction_seed", "is_unbalance", "scale_pos_weight", "cat_smooth", "cat_l2"},
}


def check_estimator(spec: EstimatorSpec, issues: IssueList | None = None) -> IssueList:
    """The estimator type is allowed and installed; every param is one the class takes (did-you-mean)."""
    issues = IssueList() if issues is None else issues
    try:
        info = resolve_estimator(spec.estimator.type)
        names = allowed_params(info)
    except EstimatorTypeError as exc:
        issues.add(("estimator", "type"), exc.message, exc.hint)
        return issues
    extra = _PASSTHROUGH.get(info.family, set())
    for key in spec.estimator.params:
        if key not in names and key not in extra:
            hint = suggestion(key, [*names, *extra]) or f"see the {info.short} documentation for its parameters"
            issues.add(("estimator", "params", key), f"{info.short} has no parameter '{key}'", hint)
    if spec.task is not None and (spec.task == "regression") != (info.kind == "regressor"):
        issues.add(("task",), f"task {spec.task} does not fit {info.short}, a {info.kind}",
                   "use a regressor for regression and a classifier for binary/multiclass")
    if spec.cross_validation.scoring is not None and spec.task is not None:
        from_task = ALLOWED[spec.task]
        if spec.cross_validation.scoring not in from_task:
            issues.add(("cross_validation", "scoring"), f"'{spec.cross_validation.scoring}' is not a "
                       f"{spec.task} metric", f"one of {', '.join(from_task)}")
    return issues

