"""Refit a model-family member on all its rows (training + validation), as AutoGluon's ``refit_full`` does.

The families (:mod:`specml.families`) choose and weight their members on the validation rows, so each
member first trains without them. Once chosen, a member is trained again on training + validation rows
with what early stopping found: a GBM with its best number of rounds, a network with its best number of
epochs (the learning-rate schedule as in the first run), without early stopping; a linear model simply
again. The member keeps its name; the first fit moves under ``models/.replaced/`` (as ``--replace`` does)
and comes back when a refit cannot finish in the time left.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np

_VAL_MONITORS = ("val_",)


def estimator_spec(spec_path: Path, best_iteration: int | None, out: Path) -> tuple[Path, str]:
    """A copy of an estimator spec for the refit: ``n_estimators`` = the best round (a GBM stopped early),
    early stopping off. Returns (its path, what it does)."""
    import yaml

    spec = yaml.safe_load(Path(spec_path).read_text(encoding="utf-8"))
    said = "the same settings"
    if best_iteration is not None:
        spec["estimator"].setdefault("params", {})["n_estimators"] = int(best_iteration) + 1
        said = f"{int(best_iteration) + 1} rounds (early stopping's best)"
    spec["early_stopping"] = {"enabled": False}
    out.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return out, said


def trainer_spec(trainer_path: Path, epochs: int, out: Path) -> Path | None:
    """A copy of a trainer spec for the refit: ``epochs`` epochs, no validation, no early stopping; the
    scheduler as it was (a cosine ``T_max`` keeps its value, so the first ``epochs`` epochs follow the
    first run's learning rates). None when the scheduler watches a validation metric (nothing to refit with)."""
    import yaml

    trainer = yaml.safe_load(Path(trainer_path).read_text(encoding="utf-8"))
    sched = trainer.get("scheduler") or {}
    if str(sched.get("monitor") or "").startswith(_VAL_MONITORS) or "Plateau" in str(sched.get("type", "")):
        return None
    cfg = trainer.setdefault("config", {})
    cfg["epochs"] = int(epochs)
    cfg["validation_split"] = 0.0
    cfg["early_stopping_patience"] = None
    for key in ("early_stopping_monitor", "early_stopping_min_delta", "early_stopping_mode"):
        cfg.pop(key, None)
    out.write_text(yaml.safe_dump(trainer, sort_keys=False), encoding="utf-8")
    return out


def refit_classical(member: str, spec_path: Path, best_iteration: int | None, table: str, rows: np.ndarray,
                    workspace: Any, home: Any) -> str:
    """Train classical member ``member`` again on ``rows`` (every row it may see); what was done."""
    from specml.classical.train import train_estimator

    path, said = estimator_spec(spec_path, best_iteration, Path(spec_path).with_suffix(".refit.yaml"))
    first = _move_aside(member, home)
    try:
        train_estimator(path, table=table, name=member, workspace=workspace, home=home, verbose=False,
                        rows=(rows, np.empty(0, dtype=np.int64)))
    except BaseException:
        _put_back(member, home, first)
        raise
    return said


def refit_neural(member: str, model_spec: Path, trainer_path: Path, best_epoch: int, table: str, rows: np.ndarray,
                 workspace: Any, home: Any, callbacks: list | None = None) -> str | None:
    """Train network ``member`` again on ``rows`` for ``best_epoch`` epochs. None (and the first fit kept)
    when its scheduler needs validation rows or a callback (a time budget) ended it before the last epoch."""
    from specml import api

    path = trainer_spec(trainer_path, best_epoch, Path(trainer_path).with_name(Path(trainer_path).stem + ".refit.yaml"))
    if path is None:
        return None
    first = _move_aside(member, home)
    try:
        result = api.train(model_spec, path, table=table, name=member, workspace=workspace, home=home, verbose=False,
                           progress=False, split_rows=(rows, np.empty(0, dtype=np.int64)),
                           callbacks=callbacks)
    except BaseException:
        _put_back(member, home, first)
        raise
    if len(result.history.get("train_loss", [])) < best_epoch:  # cut short by the time limit
        _put_back(member, home, first)
        return None
    return f"{best_epoch} epochs (early stopping's best)"


def note(member: str, home: Any, what: str, rows: int, first: dict) -> None:
    """Record the refit in the member's metadata (``refit``), with the first fit's validation verdict."""
    from specml.artifact import ModelArtifact

    artifact = ModelArtifact.for_name(member, home)
    meta = artifact.read_metadata()
    meta["refit"] = {"rows": int(rows), "how": what, "on": "training + validation rows",
                     "validation_of_first_fit": first}
    artifact.write_metadata(meta)


def _move_aside(member: str, home: Any) -> Path | None:
    from specml.track.names import claim

    return claim(member, home, replace=True)


def _put_back(member: str, home: Any, first: Path | None) -> None:
    """The first fit back in place of a refit that did not finish."""
    from specml.artifact import ModelArtifact

    if first is None:
        return
    directory = ModelArtifact.for_name(member, home).directory
    if directory.exists():
        shutil.rmtree(directory)
    shutil.move(str(first), str(directory))
