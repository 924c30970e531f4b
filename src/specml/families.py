"""Several model families on one split, a leaderboard, and the best model or a greedy ensemble.

``specml model ... --families nn,gbm,xgboost,linear [--time-limit S] [--ensemble]``: one seeded validation split
of the table (:func:`specml.data.split.holdout`, stratified by a class target, the trainer spec's
``validation_split`` and ``seed``) is shared by every family:

* ``nn``: the compiled neural specs, through :func:`specml.api.train` (as ``specml model`` trains them);
* ``gbm``: LightGBM with its default parameters, through the classical path (early stopping on the
  validation rows, as the classical path does);
* ``xgboost``: XGBoost with its default parameters, the same way (a second GBM library, as AutoGluon
  ensembles several: the two win on different tables);
* ``linear``: LogisticRegression / Ridge on standardised numbers and one-hot strings (classical path).

Each family is saved as ``models/<name>-<family>/`` and checked by the trivial-baseline guard
(:mod:`specml.guard`); a neural model worse than trivial is trained once more with safer settings
(learning rate x 0.1, robust scaling where the spec offers it). The families' validation metrics make a
leaderboard; ``models/<name>/`` becomes an ensemble model (:mod:`specml.ensemble`): the best family alone
(weight 1), or with ``ensemble=True`` the greedy selection (Caruana et al. 2004) over their validation
predictions. Members the guard flagged are left out unless every member was flagged.

Once chosen, the usable members are trained again on training + validation rows (:mod:`specml.refit`:
a GBM with its early-stopped number of rounds, a network with its best number of epochs) before the
ensemble is saved, as AutoGluon's ``refit_full`` does: the validation rows choose, then every row teaches.
``time_limit`` bounds the whole: a classical family that would start after it is skipped, the network
stops after the epoch that runs out of time, and a refit is done only in the time left.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from specml.errors import SpecmlError

FAMILIES = ("nn", "gbm", "xgboost", "linear")  # every family; --ensemble without --families trains them all
_ESTIMATORS = {("gbm", False): "lightgbm.LGBMClassifier", ("gbm", True): "lightgbm.LGBMRegressor",
               ("xgboost", False): "xgboost.XGBClassifier", ("xgboost", True): "xgboost.XGBRegressor",
               ("linear", False): "sklearn.linear_model.LogisticRegression",
               ("linear", True): "sklearn.linear_model.Ridge"}
_PARAMS = {"gbm": {"verbose": -1}, "xgboost": {}, "linear": {}}
_PARAMS_CLASSIFIER = {"linear": {"max_iter": 1000}}
_REGRESSION_LOSSES = {"MSELoss", "L1Loss", "HuberLoss", "SmoothL1Loss"}


class FamiliesError(SpecmlError, ValueError):
    """A --families list or setting that cannot be used."""


def parse_families(text: str | None) -> list[str]:
    """``"nn,gbm,xgboost,linear"`` -> the families in order; unknown names are an error with a suggestion."""
    from specml.spec.errors import suggestion

    names = [t.strip().lower() for t in (text or "").split(",") if t.strip()]
    if not names:
        raise FamiliesError(f"--families needs one or more of {', '.join(FAMILIES)}, comma-separated")
    for n in names:
        if n not in FAMILIES:
            hint = suggestion(n, list(FAMILIES))
            raise FamiliesError(f"--families: unknown family '{n}'" + (f" ({hint})" if hint else "")
                                + f"; one of {', '.join(FAMILIES)}")
    return list(dict.fromkeys(names))


def wants_ensemble(instruction: str) -> bool:
    """The words ask for an ensemble of model families ("... an ensemble ..."), not a TabM-style
    ensemble layer inside the network."""
    import re

    low = instruction.lower()
    return bool(re.search(r"\bensembl", low)) and not re.search(r"tabm|ensemble layer|batch ?ensemble", low)


@dataclass
class Member:
    family: str
    name: str
    kind: str                       # neural | classical
    seconds: float
    value: float | None = None      # the validation metric (the task's main one)
    metrics: dict = field(default_factory=dict)
    worse: bool | None = None       # the trivial-baseline guard's verdict
    scores: Any = None              # validation scores, in the ensemble's class order
    notes: list[str] = field(default_factory=list)
    best: int | None = None         # early stopping's best: epochs (nn, 1-based) or round (GBM, 0-based)
    spec: tuple = ()                # the spec file(s) it trained from (nn: model, trainer)
    refit: str | None = None        # how it was trained again on training + validation rows


@dataclass
class FamiliesResult:
    name: str
    task: str
    metric: str
    higher_is_better: bool
    rows: dict[str, int]
    members: list[Member]
    weights: dict[str, float]
    ensemble: bool
    value: float | None             # the saved model's validation metric
    trivial: float | None           # the trivial predictor's validation metric
    seconds: float
    notes: list[str] = field(default_factory=list)

    def board(self) -> list[dict]:
        """The leaderboard: every member and the saved model, best first."""
        rows = [{"model": m.name, "family": m.family, "value": m.value, "worse_than_trivial": m.worse,
                 "seconds": round(m.seconds, 2), "weight": self.weights.get(m.name, 0.0)} for m in self.members]
        rows.append({"model": self.name, "family": "ensemble" if self.ensemble else "best", "value": self.value,
                     "worse_than_trivial": None, "seconds": round(self.seconds, 2), "weight": None})
        sign = -1.0 if self.higher_is_better else 1.0
        return sorted(rows, key=lambda r: (r["value"] is None, sign * (r["value"] or 0.0)))


class TimeBudget:
    """A callback that ends a network's training after the epoch in which ``seconds`` ran out (the best
    weights so far are kept, as early stopping keeps them)."""

    def __init__(self, seconds: float) -> None:
        self.deadline = time.monotonic() + max(seconds, 0.0)
        self.stopped_epoch: int | None = None

    def on_epoch_end(self, trainer: Any, epoch: int, **_: Any) -> None:
        if time.monotonic() < self.deadline:  # past it, every training stops (a retry gets one epoch)
            return
        from specml.train.engine import EarlyStopping

        self.stopped_epoch = epoch
        if trainer.early_stopping is None:
            trainer.early_stopping = EarlyStopping(0, monitor=trainer.monitor, mode=trainer.mode)
        trainer.early_stopping.patience = 0  # the engine stops after this epoch


def train_families(name: str, model_spec: str | Path, trainer_spec: str | Path, *, table: str,
                   families: list[str] = FAMILIES, ensemble: bool = False, time_limit: float | None = None,
                   workspace: Any = None, home: str | Path | None = None, replace: bool = False,
                   threads: int | None = None, verbose: bool = False, refit: bool = True,
                   say: Callable[[str], None] | None = None) -> FamiliesResult:
    """Train ``families`` on one split of ``table`` and save ``models/<name>/`` (see the module docstring);
    ``refit``: train the usable members again on training + validation rows once chosen."""
    from specml import preflight
    from specml.artifact import validate_name
    from specml.classical.score import MAIN_METRIC
    from specml.data.split import holdout
    from specml.data.workspace import Workspace
    from specml.train.prepare import stratify_labels

    say = say or (lambda _text: None)
    started = time.perf_counter()
    deadline = None if time_limit is None else time.monotonic() + time_limit
    model_obj, trainer = preflight.check_spec_kinds(model_spec, trainer_spec, deep=False)
    features, targets = preflight.training_columns(model_obj, None)
    if len(targets) != 1:
        raise FamiliesError(f"--families needs a model of one target; this spec has {len(targets)}")
    target = targets[0]
    features = [c for c in features if c != target]
    members = {f: f"{name}-{f}" for f in families}
    for member in members.values():
        validate_name(member)
    _claim(members.values(), home, replace)

    ws = workspace if hasattr(workspace, "read_columns") else Workspace(workspace, read_only=True)
    try:
        data = ws.read_columns(table, list(dict.fromkeys([*features, target])))
    finally:
        if ws is not workspace:
            ws.close()
    labels = stratify_labels(model_obj, trainer, data, target)
    col = data.column(target).to_pylist()
    if labels is None:
        task, classes = "regression", None
        y = np.asarray(col, dtype=np.float64)
    else:
        classes = sorted(set(col), key=lambda v: (str(type(v)), v))
        task = "binary" if len(classes) == 2 else "multiclass"
        from specml.ensemble import class_ids

        y = class_ids(col, classes)
    cfg = trainer.config
    fraction = cfg.validation_split or 0.2
    seed = cfg.seed if cfg.seed is not None else 0
    train_rows, val_rows = holdout(data.num_rows, fraction, seed, labels)
    say(f"one split shared by {', '.join(families)}: {len(train_rows):,} training rows, {len(val_rows):,} "
        f"validation rows (seed {seed}, {'stratified' if labels is not None else 'random'})")
    main, higher = MAIN_METRIC[task]
    n_classes = len(classes) if classes else None

    trained: list[Member] = []
    skipped: list[str] = []
    for family in sorted(families, key=lambda f: f == "nn"):  # the fast classical families first
        member = members[family]
        t0 = time.perf_counter()
        if family != "nn" and deadline is not None and time.monotonic() >= deadline and (trained or "nn" in families):
            skipped.append(family)  # past the time limit: only the network still trains (its first epoch)
            say(f"skipped {family}: the time limit ran out before it started")
            continue
        if family == "nn":
            left = None if deadline is None else deadline - time.monotonic()
            m = _train_nn(member, model_spec, trainer_spec, table, (train_rows, val_rows), workspace, home, left,
                          verbose, say)
        else:
            m = _train_classical(family, member, task, target, features, table, (train_rows, val_rows),
                                 workspace, home, seed, threads, Path(model_spec).parent, say)
        m.seconds = time.perf_counter() - t0
        trained.append(m)

    from specml.classical.score import metrics
    from specml.ensemble import align, blend, greedy_selection, member_info

    for m in trained:
        info = member_info(m.name, home)
        if m.scores is None:
            import pyarrow as pa

            from specml.ensemble import member_scores

            m.scores = member_scores(m.name, m.kind, data.take(pa.array(val_rows)), home)
        m.scores = align(m.scores, task, info["classes"], classes)
        m.metrics = metrics(task, y[val_rows], m.scores, n_classes)
        m.value = m.metrics.get(main)
    usable = [m for m in trained if not m.worse] or trained
    notes = [f"skipped (the time limit ran out before they started): {', '.join(skipped)}"] if skipped else []
    if len(usable) < len(trained):
        notes.append("left out (worse than trivial): " + ", ".join(m.name for m in trained if m.worse))
    elif any(m.worse for m in trained):
        notes.append("every family was worse than the trivial predictor; choosing among them all the same")
    if ensemble:
        weights = greedy_selection({m.name: m.scores for m in usable}, y[val_rows], task)
    else:
        sign = 1.0 if higher else -1.0
        best = max(usable, key=lambda m: -np.inf if m.value is None else sign * m.value)
        weights = {best.name: 1.0}
    chosen = [m for m in usable if m.name in weights]
    blended = blend([m.scores for m in chosen], [weights[m.name] for m in chosen])
    value = metrics(task, y[val_rows], blended, n_classes).get(main)
    from specml.guard import check, trivial_scores

    trivial_value = metrics(task, y[val_rows], trivial_scores(task, y[train_rows], len(val_rows), n_classes),
                            n_classes).get(main)
    verdict = check(task, y[train_rows], y[val_rows], blended, n_classes)
    refitted = {}
    if refit:
        order = sorted(usable, key=lambda m: -weights.get(m.name, 0.0))  # the chosen members first
        refitted = _refit_members(order, table, np.concatenate([train_rows, val_rows]), workspace, home, deadline,
                                  main, say, notes)
    extra: dict[str, Any] = {"rows": {"total": int(data.num_rows), "train": int(len(train_rows)),
                                      "validation": int(len(val_rows))},
                             "best": {"metric": f"val_{main}", "value": value},
                             "split": {"method": "stratified" if labels is not None else "random",
                                       "validation_size": fraction, "seed": seed},
                             "leaderboard": [{"model": m.name, "family": m.family, f"val_{main}": m.value,
                                              "worse_than_trivial": m.worse, "seconds": round(m.seconds, 3)}
                                             for m in trained],
                             "timings": {"total_s": round(time.perf_counter() - started, 3)}}
    if refit:
        extra["refit"] = {"on": "training + validation rows", "rows": int(data.num_rows),
                          "members": refitted, "validation": "the metrics above are the first fits' (before "
                          "the refit), on rows the refit then trains on"}
    if verdict is not None:
        extra["guard"] = verdict.to_dict()
    if task == "binary":
        from specml.evaluation import choose_threshold

        yv = y[val_rows]
        extra["threshold"] = {"value": choose_threshold(yv, blended, "f1"), "method": "f1",
                              "youden": choose_threshold(yv, blended, "youden"), "chosen_on": "validation rows",
                              "rows": int(len(yv))}
    from specml.data.files import fingerprint

    ws = workspace if hasattr(workspace, "read_columns") else Workspace(workspace, read_only=True)
    try:
        extra["lineage"] = {"table": table, "data_fingerprint": fingerprint(ws, table)[1]}
    finally:
        if ws is not workspace:
            ws.close()
    from specml.ensemble import save_ensemble

    _claim([name], home, True)  # the specs written beside it stay; an older model is kept under .replaced/
    save_ensemble(name, weights, task=task, target=target, classes=classes, home=home, table=table,
                  selection={"method": "greedy (Caruana et al. 2004)" if ensemble else "best single family",
                             "rounds": 25 if ensemble else 1, "metric": "log_loss" if task != "regression"
                             else "rmse", "chosen_on": "validation rows", "families": list(families)},
                  extra=extra)
    return FamiliesResult(name, task, main, higher, {"train": int(len(train_rows)), "validation": int(len(val_rows))},
                          trained, weights, ensemble, value, trivial_value, time.perf_counter() - started, notes)


def _refit_members(members: list[Member], table: str, rows: np.ndarray, workspace, home, deadline: float | None,
                   metric: str, say, notes: list[str]) -> dict[str, str]:
    """Train each member again on ``rows`` (training + validation) with early stopping's best rounds or
    epochs (:mod:`specml.refit`); a network only when the time left allows about as long as its first fit.
    Member -> what was done, or why not."""
    from specml import refit

    done: dict[str, str] = {}
    for m in members:
        t0 = time.perf_counter()
        left = None if deadline is None else deadline - time.monotonic()
        if m.kind == "neural":
            if m.best is None:
                done[m.name] = "not refit: its first fit had no best epoch"
            elif left is not None and left < m.seconds * 1.25:
                done[m.name] = f"not refit: {max(left, 0.0):.0f} s left of the time limit"
            else:
                callbacks = [TimeBudget(left)] if left is not None else None
                how = refit.refit_neural(m.name, *m.spec, m.best, table, rows, workspace, home, callbacks)
                done[m.name] = how or "not refit: its scheduler needs validation rows, or the time ran out"
        elif left is not None and left <= 0:
            done[m.name] = "not refit: the time limit ran out"
        else:
            done[m.name] = refit.refit_classical(m.name, m.spec[0], m.best, table, rows, workspace, home)
        if not done[m.name].startswith("not refit"):
            m.refit, m.seconds = done[m.name], m.seconds + time.perf_counter() - t0
            refit.note(m.name, home, done[m.name], len(rows), {f"val_{metric}": m.value, "worse_than_trivial": m.worse})
    said = [f"{k}: {v}" for k, v in done.items()]
    if said:
        say(f"refit on training + validation rows ({len(rows):,}): " + "; ".join(said))
        notes.append(f"members trained again on training + validation rows ({len(rows):,}) after the choice: "
                     + "; ".join(said) + "; the validation metrics are the first fits'")
    return done


def _claim(names, home, replace: bool) -> None:
    """Make the member names free; with ``replace`` the old models move under ``models/.replaced/``.
    A model directory holding only specs (no metadata.json) is not a model and is left alone."""
    from specml.track.names import claim

    for n in names:
        claim(n, home, replace=replace)


def _train_classical(family: str, member: str, task: str, target: str, features: list[str], table: str,
                     rows, workspace, home, seed: int, threads: int | None, spec_dir: Path, say) -> Member:
    """GBM or linear model through the classical path, on the shared split."""
    import yaml

    from specml.classical.train import train_estimator

    regression = task == "regression"
    params = dict(_PARAMS[family])
    if not regression:
        params.update(_PARAMS_CLASSIFIER.get(family, {}))
    if threads is not None and family in ("gbm", "xgboost"):
        params["n_jobs"] = threads
    spec = {"estimator": {"type": _ESTIMATORS[(family, regression)], "params": params}, "target": target,
            "features": features, "random_state": seed, "verbose": 0,
            "imbalance_handling": {"method": "none"} if family == "linear" else {}}
    if not spec["imbalance_handling"]:
        del spec["imbalance_handling"]
    path = spec_dir / f"{family}.estimator.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    result = train_estimator(path, table=table, name=member, workspace=workspace, home=home, verbose=False,
                             rows=rows)
    from specml.artifact import ModelArtifact

    stopping = ModelArtifact.for_name(member, home).read_metadata().get("early_stopping") or {}
    m = Member(family, member, "classical", result.seconds, worse=None if result.guard is None
               else result.guard.worse, best=stopping.get("best_iteration"), spec=(path,))
    say(f"trained {family} ({spec['estimator']['type'].rsplit('.', 1)[-1]}) as '{member}' in {result.seconds:.1f} s")
    if m.worse:
        say(result.guard.message(member))
    return m


def _train_nn(member: str, model_spec, trainer_spec, table: str, rows, workspace, home, seconds: float | None,
              verbose: bool, say) -> Member:
    """The neural recipe on the shared split; once more with safer settings when worse than trivial."""
    from specml import api
    from specml.guard import check, neural_validation, record

    callbacks = [TimeBudget(seconds)] if seconds is not None else None
    result = api.train(model_spec, trainer_spec, table=table, name=member, workspace=workspace, home=home,
                       verbose=verbose, progress=False, split_rows=rows, callbacks=callbacks)
    say(f"trained nn as '{member}' in {result.seconds:.1f} s (best epoch {result.best_epoch})")
    verdict, scores = _nn_verdict(member, table, workspace, home, rows, check, neural_validation)
    m = Member("nn", member, "neural", result.seconds, worse=None if verdict is None else verdict.worse,
               scores=scores, best=result.best_epoch, spec=(Path(model_spec), Path(trainer_spec)))
    if verdict is None:
        return m
    record(verdict, member, home)
    if not verdict.worse:
        return m
    say(verdict.message(member))
    safer_model, safer_trainer, what = safer_specs(model_spec, trainer_spec)
    say(f"retrying '{member}' once with safer settings: {what}")
    from specml.track.names import claim

    claim(member, home, replace=True)
    result = api.train(safer_model, safer_trainer, table=table, name=member, workspace=workspace, home=home,
                       verbose=verbose, progress=False, split_rows=rows, callbacks=callbacks)
    verdict, scores = _nn_verdict(member, table, workspace, home, rows, check, neural_validation)
    m = Member("nn", member, "neural", result.seconds, worse=None if verdict is None else verdict.worse,
               scores=scores, notes=[f"retried with {what}"], best=result.best_epoch,
               spec=(safer_model, safer_trainer))
    if verdict is not None:
        record(verdict, member, home)
        say(verdict.message(member) + (" (after the retry)" if verdict.worse else " after the retry"))
    return m


def _nn_verdict(member, table, workspace, home, rows, check, neural_validation):
    try:
        got = neural_validation(member, table, workspace=workspace, home=home, rows=rows)
    except Exception as err:  # noqa: BLE001 - the check never fails a trained model
        import warnings

        warnings.warn(f"the trivial-baseline check of '{member}' could not run: {err}", stacklevel=2)
        return None, None
    if got is None:
        return None, None
    task, y_train, y_val, scores, n_classes = got
    return check(task, y_train, y_val, scores, n_classes), scores


def safer_specs(model_spec: str | Path, trainer_spec: str | Path) -> tuple[Path, Path, str]:
    """Copies of the specs with safer settings, written beside them (``*.safer.yaml``): the learning rate
    x 0.1, a regression target standardised (``target_normalize: standard``) when it was not, and robust
    scaling of numeric inputs where the model spec offers a ``robust`` normalize.
    Returns (model spec, trainer spec, what changed)."""
    import typing

    import yaml

    from specml.spec.model import InputSpec

    model_path, trainer_path = Path(model_spec), Path(trainer_spec)
    model = yaml.safe_load(model_path.read_text(encoding="utf-8"))
    trainer = yaml.safe_load(trainer_path.read_text(encoding="utf-8"))
    changed = []
    opt = trainer.get("optimizer") or {}
    for holder in (opt, opt.get("config") or {}, trainer.get("config") or {}):
        for key in ("lr", "learning_rate"):
            if isinstance(holder.get(key), int | float):
                holder[key] = float(holder[key]) * 0.1
                changed.append(f"learning rate {holder[key]:.3g} (x 0.1)")
    losses = model.get("loss")
    for loss in losses if isinstance(losses, list) else [losses]:
        if isinstance(loss, dict) and str(loss.get("type", "")).rsplit(".", 1)[-1] in _REGRESSION_LOSSES \
                and loss.get("target_normalize", "none") == "none":
            loss["target_normalize"] = "standard"
            changed.append("regression target standardised")
    allowed = typing.get_args(InputSpec.model_fields["normalize"].annotation)
    if "robust" in allowed:
        for spec in (model.get("inputs") or {}).values():
            if isinstance(spec, dict) and spec.get("normalize") not in (None, "none", "robust"):
                spec["normalize"] = "robust"
                if "robust scaling" not in changed:
                    changed.append("robust scaling")
    safer_model = model_path.with_name(model_path.stem + ".safer.yaml")
    safer_trainer = trainer_path.with_name(trainer_path.stem + ".safer.yaml")
    safer_model.write_text(yaml.safe_dump(model, sort_keys=False), encoding="utf-8")
    safer_trainer.write_text(yaml.safe_dump(trainer, sort_keys=False), encoding="utf-8")
    return safer_model, safer_trainer, ", ".join(changed) or "no setting to make safer was found"
