"""Cheap checks first: what can be refused before torch, TensorBoard or matplotlib is imported.

A wrong spec kind, a table or column that does not exist, a trainer spec written for another model,
a trained model that is not there: each is found here in well under a second (YAML, pydantic and
DuckDB only), with the same message the full path would give after seconds of imports.

    model, trainer = check_training("model.yaml", "trainer.yaml", table="pima", workspace=None)

The CLI calls these before :mod:`specml.api`; ``api.train`` may call them too (they are idempotent).
Nothing here imports torch, at module level or in a function.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from specml.spec import ModelSpec, TrainerSpec

SpecPath = str | Path

#: what to say when a file of one kind is given where another is expected (api.resolve_specs says the same)
_NOT_A_MODEL = {
    "trainer": "this file holds a trainer spec; pass it as --trainer-spec",
    "estimator": "this file holds an estimator spec; train it with --estimator-spec",
}
_NOT_A_TRAINER = {
    "model": "this file holds a model spec, not a trainer spec",
    "estimator": "this file holds an estimator spec, not a trainer spec",
}


# ----------------------------------------------------------------------------------------------
# specs


def spec_kind(path: SpecPath, as_kind: str | None = None) -> str:
    """What a spec file holds, from its keys (read, not validated): ``model``, ``trainer``,
    ``model+trainer`` or ``estimator``. A file that is no spec (missing, not YAML, unrelated keys) is
    a :class:`~specml.spec.SpecError` naming the file. ``as_kind`` (the ``-M``/``-T`` flag) decides a
    file whose keys leave its kind open."""
    from specml.spec.errors import SpecError
    from specml.spec.normalize import split_file
    from specml.spec.yaml_io import read_yaml

    raw, lines = read_yaml(path)
    if isinstance(raw, dict) and "estimator" in raw:
        return "estimator"
    model, trainer, issues = split_file(raw, as_kind)
    if model is None and trainer is None:
        raise SpecError(list(issues)).with_file(str(path), lines)
    return "+".join(k for k, part in (("model", model), ("trainer", trainer)) if part is not None)


def check_spec_kinds(model_spec: SpecPath, trainer_spec: SpecPath | None = None, *,
                     deep: bool = False, overrides: list[str] | None = None) -> tuple[ModelSpec, TrainerSpec]:
    """The model spec (with its loss, from wherever it was written) and the trainer spec.

    Each file's kind is read first, so a trainer spec passed as the model spec is refused before
    anything is validated. ``deep=False`` stops after the torch-free rules; ``deep=True`` also builds
    the model and the optimizer (imports torch). :class:`~specml.spec.SpecError` for every mistake.
    ``overrides``: Hydra-style edits of both files, read as one namespace (``model.*``, ``trainer.*``).
    """
    from specml.spec import load_spec, merge_loss
    from specml.spec.errors import SpecError, SpecIssue
    from specml.spec.overrides import Overrides

    kind = spec_kind(model_spec, "model").split("+")
    if "model" not in kind:
        raise SpecError([SpecIssue((), _NOT_A_MODEL[kind[0]], None, str(model_spec))])
    if trainer_spec is not None:
        other = spec_kind(trainer_spec, "trainer").split("+")
        if "trainer" not in other:
            raise SpecError([SpecIssue((), _NOT_A_TRAINER[other[0]], None, str(trainer_spec))])

    edits = Overrides(overrides or [], files=[model_spec, trainer_spec])  # also ${...} across the two files
    model_file = load_spec(model_spec, check=deep, as_kind="model", overrides=edits)
    trainer = model_file.trainer
    model = model_file.model
    if trainer_spec is not None:
        if trainer is not None:
            raise SpecError([SpecIssue(("training",), "the model file has its own training section and a trainer "
                                                      "spec was given too", "use one of them", str(model_spec))])
        trainer = load_spec(trainer_spec, check=deep, as_kind="trainer", overrides=edits).trainer
        try:
            model = merge_loss(model, trainer)
        except SpecError as err:
            raise err.with_file(str(trainer_spec)) from None
        if deep:  # the trainer's loss on the model's dry-pass output
            from specml.spec.load import check_loss_on_model

            check_loss_on_model(model_file, trainer, trainer_spec)
    if trainer is None:
        raise SpecError([SpecIssue((), "no trainer spec: pass --trainer-spec, or add a training: section to the "
                                       "model file", None, str(model_spec))])
    return model, trainer


def check_model_ref(model: ModelSpec, trainer: TrainerSpec, *, model_file: SpecPath | None = None,
                    trainer_file: SpecPath | None = None, registered: str | None = None) -> None:
    """Refuse a trainer spec whose ``model_ref`` names another model than the one it trains.

    ``model_ref`` may be the model spec's ``name`` or the name it is registered under (``registered``);
    with neither known (an unnamed model) there is nothing to compare, and no ``model_ref`` is fine.
    """
    ref = trainer.model_ref
    known = [n for n in (model.name, registered) if n]
    if ref is None or not known or ref in known:
        return
    from specml.spec.errors import SpecError, SpecIssue

    named = f"'{model.name}'" if model.name else "unnamed"
    where = f" in {model_file}" if model_file is not None else ""
    also = f", registered as '{registered}'" if registered else ""
    file = str(trainer_file) if trainer_file is not None else None
    raise SpecError([SpecIssue(("model_ref",), f"model_ref '{ref}' names another model than the model spec it "
                                               f"trains ({named}{also}{where})",
                               "make them agree, or remove model_ref", file, _line_of(file, "model_ref"))])


def _line_of(file: str | None, key: str) -> int | None:
    """The line of the first mapping key ``key`` (at any depth) in a YAML file, if known."""
    if file is None:
        return None
    from specml.spec.yaml_io import read_yaml

    _, lines = read_yaml(file)
    return next((line for loc, line in lines.items() if loc and loc[-1] == key), None)


def training_columns(model: ModelSpec, target: str | None = None) -> tuple[list[str], list[str]]:
    """(feature columns, target columns) a training of ``model`` reads; ``target`` is ``--target``.
    :class:`~specml.train.errors.TrainingError` when the target is not decided or contradicts the spec."""
    from specml.train.errors import TrainingError

    losses = model.losses
    if target is not None and len(losses) > 1:
        raise TrainingError("--target names one column, but the spec has several losses (multi-task); each loss "
                            "names its own target")
    if target is not None and losses and losses[0].inputs.target not in (None, target):
        raise TrainingError(f"--target {target} but the spec's loss reads column '{losses[0].inputs.target}'")
    target_col = target or (losses[0].inputs.target if len(losses) == 1 else None)
    if len(losses) > 1:
        missing = [i for i, lo in enumerate(losses) if lo.inputs.target is None]
        if missing:
            raise TrainingError(f"loss[{missing[0]}] names no target column; in a multi-task spec each loss "
                                "names its own (inputs.target)")
    elif target_col is None:
        raise TrainingError("no target: the spec names no loss target; pass --target COLUMN")
    targets = [c for lo in losses for c in lo.inputs.target_columns] if len(losses) > 1 else (
        [target_col] if isinstance(target_col, str) else list(target_col))
    features = [c for inp in model.inputs.values() for c in (inp.columns or [])]
    return features, targets


# ----------------------------------------------------------------------------------------------
# tables


def check_table(workspace: Any, table: str, columns: list[str] | None = None) -> None:
    """Refuse a table (or any of ``columns``) that the workspace lacks, with "did you mean".

    ``workspace`` is a path, None (the default workspace) or an open Workspace (left open).
    :class:`~specml.data.errors.DataError` otherwise.
    """
    with _opened(workspace) as ws:
        ws.require_table(table)
        if columns:
            ws.require_columns(table, columns)


@contextmanager
def _opened(workspace: Any) -> Iterator[Any]:
    """The caller's open Workspace, or one opened read-only here and closed after."""
    if hasattr(workspace, "require_columns"):
        yield workspace
        return
    from specml.data.workspace import Workspace

    with Workspace(workspace, read_only=True) as ws:
        yield ws


# ----------------------------------------------------------------------------------------------
# the commands' checks, in the order the full path would find the mistakes


def check_home_folders(home: SpecPath | None = None) -> None:
    """The home's ``models`` and ``runs`` are folders (or not there yet): a training says so before it starts."""
    from specml.home import home_folder

    for name in ("models", "runs"):
        home_folder(name, home)


def check_training(model_spec: SpecPath, trainer_spec: SpecPath | None = None, *, table: str,
                   workspace: Any = None, target: str | None = None,
                   registered_model: str | None = None,
                   overrides: list[str] | None = None) -> tuple[ModelSpec, TrainerSpec]:
    """Everything ``specml train`` can refuse before torch: the spec kinds and their torch-free rules (after
    ``overrides``), ``model_ref``, the table, the target, the columns. Returns (model spec, trainer spec)."""
    check_home_folders()
    model, trainer = check_spec_kinds(model_spec, trainer_spec, overrides=overrides)
    check_model_ref(model, trainer, model_file=model_spec, trainer_file=trainer_spec or model_spec,
                    registered=registered_model)
    with _opened(workspace) as ws:
        ws.require_table(table)
        features, targets = training_columns(model, target)
        ws.require_columns(table, list(dict.fromkeys([*features, *targets])))
    return model, trainer


def check_estimator_training(spec_path: SpecPath, *, table: str, workspace: Any = None) -> None:
    """What ``specml train --estimator-spec`` can refuse before scikit-learn or torch: the file's kind,
    the table, and the target, time and feature columns. A spec that does not validate is left to the
    full loader, which reports every issue with its line."""
    from pydantic import ValidationError

    from specml.spec.errors import SpecError, SpecIssue
    from specml.spec.estimator import EstimatorSpec
    from specml.spec.yaml_io import read_yaml

    check_home_folders()
    kind = spec_kind(spec_path)
    if kind != "estimator":
        raise SpecError([SpecIssue((), f"this file holds a {kind} spec, not an estimator spec",
                                   "an estimator spec has estimator: {type, params} and target", str(spec_path))])
    try:
        spec = EstimatorSpec.model_validate(read_yaml(spec_path)[0])
    except ValidationError:
        return
    wanted = [*(spec.features or []), spec.target, *([spec.time_column] if spec.time_column else [])]
    check_table(workspace, table, list(dict.fromkeys(wanted)))


def check_trained_model(name: str, home: SpecPath | None = None) -> dict:
    """The metadata of trained model ``name``; :class:`~specml.artifact.ArtifactError` when it is not there."""
    from specml.artifact import ModelArtifact

    return ModelArtifact.for_name(name, home).read_metadata()


def check_scoring(name: str, table: str, *, workspace: Any = None, home: SpecPath | None = None,
                  targets: bool = True) -> None:
    """What ``specml evaluate`` (``targets=True``) and ``specml predict`` can refuse before torch: the
    model, the table, and (neural models) the feature and target columns."""
    meta = check_trained_model(name, home)
    wanted: list[str] = []
    inputs = meta.get("inputs")
    if meta.get("kind") != "classical" and isinstance(inputs, dict):
        wanted = [c for cols in inputs.values() for c in (cols or [])]
        target = meta.get("target")
        if targets and target is not None:
            wanted += [target] if isinstance(target, str) else list(target)
    check_table(workspace, table, list(dict.fromkeys(wanted)))
