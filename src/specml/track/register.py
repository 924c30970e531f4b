"""Checking a spec file before it is registered (``specml create-model`` / ``create-trainer``).

The registry stores rows; these functions read a spec file, check it and return the row to store::

    specs.add_model(checked_model_spec("diabetes", "model.yaml"))
    specs.add_trainer(checked_trainer_spec(specs, "diabetes_fast", "fast.yaml", model="diabetes"))

The registry's own checks (the file's kind, which model a trainer is for, a loss somewhere) need no
torch and run first; ``check=True`` then runs the full checks of ``specml validate`` (building the
model and the optimizer).
"""

from __future__ import annotations

import warnings
from pathlib import Path

from specml.artifact import validate_name
from specml.spec import SpecError, SpecIssue, TrainerSpec, load_spec, merge_loss
from specml.spec.check import check_model
from specml.spec.errors import suggestion
from specml.spec.yaml_io import parse_yaml, read_yaml
from specml.track.store import RegistryError
from specml.track.tables.specs import ModelSpecEntry, NewModelSpec, NewTrainerSpec, SpecTable, not_registered


def checked_model_spec(name: str, path: str | Path, *, check: bool = True) -> NewModelSpec:
    """The model spec in ``path``, checked, as a row to register under ``name``."""
    _valid_name(name)
    loaded = load_spec(path, check=False, as_kind="model")
    if loaded.model is None:
        raise SpecError([SpecIssue((), "this file holds a trainer spec, not a model spec",
                                   "register it with: specml create-trainer --name NAME --trainer-spec FILE "
                                   "--spec-name MODEL",
                                   str(path))])
    if check:
        loaded = load_spec(path, check=True, as_kind="model")  # builds the model, runs a dummy batch
    return NewModelSpec(name, Path(path).read_text(encoding="utf-8"), loaded.model.name, str(Path(path).resolve()),
                        bool(loaded.model.losses))


def checked_trainer_spec(specs: SpecTable, name: str, path: str | Path, model: str | None = None, *,
                         check: bool = True) -> NewTrainerSpec:
    """The trainer spec in ``path``, checked against the registered model it trains, as a row for ``name``.

    The model is ``model`` or the spec's ``model_ref`` (which may name the registered model or the
    ``name:`` inside its spec); when both are given they must agree. The model must have a loss, in
    its own spec or in this trainer spec's ``loss:`` (and the two must not disagree).
    """
    _valid_name(name)
    loaded = load_spec(path, check=False, as_kind="trainer")  # the registry's checks first: they need no torch
    file = str(path)
    if loaded.trainer is None or loaded.model is not None:
        what = "a model spec" if loaded.trainer is None else "a model spec with its training section"
        raise SpecError([SpecIssue((), f"this file holds {what}, not a trainer spec",
                                   "register it with: specml create-model --name NAME --model-spec FILE", file)])
    trainer = loaded.trainer
    _, lines = read_yaml(path)
    entry = _model_for_trainer(specs, model, trainer.model_ref, file, lines)
    _check_loss(entry, trainer, file, lines)
    if check:
        load_spec(path, check=True, as_kind="trainer")  # optimizer and scheduler build
    return NewTrainerSpec(name, Path(path).read_text(encoding="utf-8"), entry.name, str(Path(path).resolve()),
                          trainer.loss is not None)


def _valid_name(name: str) -> None:
    try:
        validate_name(name)
    except ValueError as err:
        raise RegistryError(str(err).replace("model name", "name")) from None


def _model_for_trainer(specs: SpecTable, model: str | None, model_ref: str | None, file: str,
                       lines) -> ModelSpecEntry:
    names = specs.model_names()
    if model is not None:
        entry = specs.find_model(model)
        if entry is None:
            raise RegistryError(not_registered("model spec", model, names,
                                               f"register it first: specml create-model --name {model} "
                                               "--model-spec MODEL.yaml", prefix="--spec-name "))
        if model_ref is not None and model_ref not in (entry.name, entry.spec_name):
            raise SpecError([SpecIssue(("model_ref",), f"model_ref is '{model_ref}' but --spec-name is '{model}' "
                                       f"(whose spec is named '{entry.spec_name}')",
                                       "make them agree, or remove model_ref", file)]).with_file(file, lines)
        return entry
    if model_ref is None:
        raise RegistryError(f"{file}: no model to register this trainer for: pass --spec-name NAME "
                            "(a registered model spec) or set model_ref in the trainer spec")
    entry = specs.find_model(model_ref)
    if entry is not None:
        return entry
    by_spec_name = [m for m in specs.list_models() if m.spec_name == model_ref]  # the name: inside a registered spec
    if len(by_spec_name) == 1:
        return specs.get_model(by_spec_name[0].name)
    if by_spec_name:
        raise SpecError([SpecIssue(("model_ref",), f"model_ref '{model_ref}' is the spec name of several "
                                   f"registered models ({', '.join(m.name for m in by_spec_name)})",
                                   "say which with --spec-name", file)]).with_file(file, lines)
    listed = f"registered: {', '.join(names)}" if names and len(names) <= 10 else None
    hint = suggestion(model_ref, names) or listed or \
        f"register it first: specml create-model --name {model_ref} --model-spec MODEL.yaml"
    raise SpecError([SpecIssue(("model_ref",), f"model_ref '{model_ref}' is not a registered model spec",
                               hint, file)]).with_file(file, lines)


def _check_loss(entry: ModelSpecEntry, trainer: TrainerSpec, file: str, lines) -> None:
    if not entry.has_loss and trainer.loss is None:
        raise SpecError([SpecIssue(("loss",), f"model '{entry.name}' has no loss (in {entry.source_path}) and "
                                   "this trainer spec has none either",
                                   "add a loss: section to the model spec (its canonical place) and register it "
                                   "again with --replace, or add loss: here", file)]).with_file(file, lines)
    if trainer.loss is None:
        return
    with warnings.catch_warnings():  # the registered model's warnings were shown when it was registered
        warnings.simplefilter("ignore")
        model = load_spec(parse_yaml(entry.spec_text)[0], check=False).model
    try:
        merged = merge_loss(model, trainer)
    except SpecError as err:
        raise err.with_file(file, lines) from None
    issues = [i for i in check_model(merged) if i.loc[:1] == ("loss",)]
    if issues:
        raise SpecError(issues).with_file(file, lines)
