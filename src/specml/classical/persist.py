"""Saving and loading classical models without pickle.

=============  =====================  ==========================================================
family         file                   format
=============  =====================  ==========================================================
xgboost        ``model.json``         XGBoost's own JSON model format (``Booster.save_raw("json")``)
lightgbm       ``model.txt``          LightGBM's text model format (best iteration only)
catboost       ``model.cbm``          CatBoost's binary model format
sklearn        ``model.skops``        skops; loaded only when every type in it is trusted
(all)          ``preprocess.skops``   the fitted preprocessing ColumnTransformer, through skops
=============  =====================  ==========================================================

Loading checks, before any parser sees a file: the file is the one metadata.json names for the
family, its sha256 is the one recorded at save time, and it is not a Python pickle. skops files are
opened only when :func:`skops.io.get_untrusted_types` lists nothing outside :data:`TRUSTED_TYPES`.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from specml.artifact import ArtifactError
from specml.data.files import atomic_path, atomic_write_bytes, atomic_write_text

MODEL_FILES = {"xgboost": "model.json", "lightgbm": "model.txt", "catboost": "model.cbm", "sklearn": "model.skops"}
FORMATS = {"xgboost": "xgboost-json", "lightgbm": "lightgbm-text", "catboost": "catboost-cbm", "sklearn": "skops"}
PREPROCESS_FILE = "preprocess.skops"

#: the types beyond skops's defaults that a saved scikit-learn model or pipeline may hold; nothing else loads
TRUSTED_TYPES = frozenset({
    "numpy.dtype",
    "sklearn.tree._tree.Tree",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
    "sklearn.neighbors._kd_tree.KDTree",
    "sklearn.neighbors._ball_tree.BallTree",
    "sklearn.metrics._dist_metrics.EuclideanDistance64",
    "sklearn.metrics._dist_metrics.ManhattanDistance64",
    "sklearn.metrics._dist_metrics.ChebyshevDistance64",
    "sklearn.metrics._dist_metrics.MinkowskiDistance64",
    "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
    "sklearn.neural_network._stochastic_optimizers.SGDOptimizer",
    "sklearn._loss.loss.HalfTweedieLossIdentity",
    "sklearn._loss.loss.HalfTweedieLoss",
    "sklearn._loss.loss.HalfPoissonLoss",
    "sklearn._loss.loss.HalfGammaLoss",
    "sklearn._loss.loss.HalfSquaredError",
    "sklearn._loss.loss.AbsoluteError",
    "sklearn._loss.loss.PinballLoss",
    "sklearn._loss.loss.HuberLoss",
    "sklearn._loss.loss.HalfBinomialLoss",
    "sklearn._loss.loss.HalfMultinomialLoss",
    "sklearn._loss.loss.ExponentialLoss",
    "sklearn._loss.link.IdentityLink",
    "sklearn._loss.link.LogLink",
    "sklearn._loss.link.LogitLink",
    "sklearn._loss.link.MultinomialLogit",
})

_PICKLE_SUFFIXES = (".pkl", ".pickle", ".joblib", ".pk", ".p", ".sav", ".dill")


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _skops_bytes(obj: Any, what: str) -> bytes:
    import skops.io as sio

    data = sio.dumps(obj)
    untrusted = [t for t in sio.get_untrusted_types(data=data) if t not in TRUSTED_TYPES]
    if untrusted:
        raise ArtifactError(f"{what} holds types specml does not load ({', '.join(untrusted)}), so it cannot be "
                            "saved safely; choose another estimator")
    return data


def save_model(directory: Path, family: str, estimator: Any) -> dict:
    """Write the fitted estimator in its family's own format; ``{"file", "format", "sha256"}``."""
    path = Path(directory) / MODEL_FILES[family]
    if family == "xgboost":
        atomic_write_bytes(path, bytes(estimator.get_booster().save_raw(raw_format="json")))
    elif family == "lightgbm":
        atomic_write_text(path, estimator.booster_.model_to_string())
    elif family == "catboost":
        with atomic_path(path) as tmp:
            estimator.save_model(str(tmp), format="cbm")
    else:
        atomic_write_bytes(path, _skops_bytes(estimator, type(estimator).__name__))
    return {"file": path.name, "format": FORMATS[family], "sha256": sha256(path)}


def save_preprocessor(directory: Path, preprocessor: Any) -> dict:
    path = Path(directory) / PREPROCESS_FILE
    atomic_write_bytes(path, _skops_bytes(preprocessor, "the preprocessing pipeline"))
    return {"file": path.name, "format": "skops", "sha256": sha256(path)}


def _checked(directory: Path, entry: Any, expected: str, name: str) -> Path:
    """The file ``entry`` names, after the checks in the module docstring."""
    if not isinstance(entry, dict) or entry.get("file") != expected:
        got = entry.get("file") if isinstance(entry, dict) else entry
        raise ArtifactError(f"model '{name}': metadata.json names model file {got!r}, expected '{expected}'; "
                            "specml loads only its own formats (never pickle or joblib)")
    path = Path(directory) / expected
    if not path.is_file():
        strays = sorted(p.name for p in Path(directory).iterdir() if p.suffix.lower() in _PICKLE_SUFFIXES)
        extra = f" (found {', '.join(strays)}: pickle/joblib files are never loaded)" if strays else ""
        raise ArtifactError(f"model '{name}': {path} is missing{extra}")
    with open(path, "rb") as f:
        head = f.read(2)
    if len(head) == 2 and head[0] == 0x80 and head[1] <= 5:
        raise ArtifactError(f"model '{name}': {path} is a Python pickle; specml never loads pickles "
                            "(they can run arbitrary code). Retrain the model with specml.")
    digest = entry.get("sha256")
    if digest is not None and sha256(path) != digest:
        raise ArtifactError(f"model '{name}': {path} has changed since it was saved (sha256 differs from "
                            "metadata.json); refusing to load it")
    return path


def _load_skops(path: Path, name: str) -> Any:
    import skops.io as sio

    try:
        untrusted = sio.get_untrusted_types(file=path)
    except Exception as exc:  # not a zip / not a skops file
        raise ArtifactError(f"model '{name}': {path} is not a skops file ({type(exc).__name__}: {exc}); "
                            "refusing to load it") from None
    bad = [t for t in untrusted if t not in TRUSTED_TYPES]
    if bad:
        raise ArtifactError(f"model '{name}': {path} holds untrusted types ({', '.join(bad)}); refusing to load it")
    return sio.load(path, trusted=untrusted)


def load_model(directory: Path, family: str, info_cls: type, entry: Any, name: str) -> Any:
    """The estimator saved by :func:`save_model` (LightGBM: a ``lightgbm.Booster``)."""
    path = _checked(directory, entry, MODEL_FILES[family], name)
    try:
        if family == "xgboost":
            model = info_cls()
            model.load_model(str(path))
            return model
        if family == "lightgbm":
            import lightgbm

            return lightgbm.Booster(model_file=str(path))
        if family == "catboost":
            model = info_cls()
            model.load_model(str(path), format="cbm")
            return model
    except ArtifactError:
        raise
    except Exception as exc:
        raise ArtifactError(f"model '{name}': {path} cannot be read as a {FORMATS[family]} model: {exc}") from None
    model = _load_skops(path, name)
    if not isinstance(model, info_cls):
        raise ArtifactError(f"model '{name}': {path} holds a {type(model).__name__}, expected {info_cls.__name__}")
    return model


def load_preprocessor(directory: Path, entry: Any, name: str) -> Any:
    from sklearn.compose import ColumnTransformer

    path = _checked(directory, entry, PREPROCESS_FILE, name)
    pre = _load_skops(path, name)
    if not isinstance(pre, ColumnTransformer):
        raise ArtifactError(f"model '{name}': {path} holds a {type(pre).__name__}, expected a ColumnTransformer")
    return pre
