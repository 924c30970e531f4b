"""Loading specs: file -> YAML -> canonical form -> pydantic models -> cross-field and torch checks.

``load_spec(path)`` reads any spec file and tells what is in it; ``load_model_spec`` and
``load_trainer_spec`` return one kind. With ``check=True`` (the default) the model is built and run
once on a dummy batch and the optimizer/scheduler are built, so that everything a spec can get
wrong is reported when it is loaded, with file, line and field path. ``check=False`` stops after
the torch-free rules (no torch import).
"""

from __future__ import annotations

import typing
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from specml.spec.base import TAG, concrete_types
from specml.spec.check import check_model
from specml.spec.errors import IssueList, Loc, SpecError, SpecIssue, SpecWarning, format_path, suggestion
from specml.spec.estimator import EstimatorSpec, check_estimator
from specml.spec.model import LossSpec, ModelSpec
from specml.spec.normalize import Normalized, split_file
from specml.spec.overrides import Overrides, apply_overrides
from specml.spec.trainer import TrainerSpec
from specml.spec.yaml_io import read_yaml

Source = str | Path | dict


@dataclass
class SpecFile:
    """What one file holds: a model spec, a trainer spec, or both (single-file and nested layouts);
    or an estimator spec (a classical model: the file has an ``estimator:`` key)."""

    path: str | None
    model: ModelSpec | None = None
    trainer: TrainerSpec | None = None
    warnings: list[str] = field(default_factory=list)
    checked: Any = None  # specml.graph.check.ModelCheck after a deep check
    estimator: EstimatorSpec | None = None

    @property
    def kind(self) -> str:
        if self.estimator is not None:
            return "estimator"
        return "+".join(k for k, v in (("model", self.model), ("trainer", self.trainer)) if v is not None)


# ----------------------------------------------------------------------------------------------
# pydantic errors -> issues


def _model_at(cls: type[BaseModel], loc: Loc) -> type[BaseModel] | None:
    """The pydantic model class found at ``loc`` (a path of fields, dict keys and list indices)."""
    current: list[Any] = [cls]
    for part in loc:
        nxt: list[Any] = []
        for tp in current:
            if isinstance(tp, type) and issubclass(tp, BaseModel):
                if isinstance(part, str) and part in tp.model_fields:
                    nxt += concrete_types(tp.model_fields[part].annotation)
            else:
                origin = typing.get_origin(tp)
                if origin in (list, tuple) and isinstance(part, int):
                    nxt += concrete_types(typing.get_args(tp)[0])
                elif origin is dict:
                    nxt += concrete_types(typing.get_args(tp)[1])
        current = nxt
    for tp in current:
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            return tp
    return None


_EXPECT = {
    "int_parsing": "an integer", "int_type": "an integer", "int_from_float": "a whole number",
    "float_parsing": "a number", "float_type": "a number", "bool_parsing": "true or false",
    "bool_type": "true or false", "string_type": "a string", "dict_type": "a mapping",
    "list_type": "a list", "model_type": "a mapping", "model_attributes_type": "a mapping",
}


def _issue_from_error(err: dict, cls: type[BaseModel], norm: Normalized) -> SpecIssue:
    loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith(TAG)))
    kind = err["type"]
    value = err.get("input")
    ctx = err.get("ctx") or {}
    if kind == "extra_forbidden":
        parent = _model_at(cls, loc[:-1])
        allowed = list(parent.model_fields) if parent else []
        key = loc[-1]
        hint = suggestion(str(key), allowed) or (f"allowed keys: {', '.join(allowed)}" if allowed else None)
        return SpecIssue(norm.source(loc), f"unknown key '{key}'", hint)
    if kind == "missing":
        parent = _model_at(cls, loc[:-1])
        info = parent.model_fields.get(str(loc[-1])) if parent else None
        return SpecIssue(norm.source(loc), f"missing required field '{loc[-1]}'",
                         info.description if info is not None else None)
    if kind == "literal_error":
        expected = ctx.get("expected", "")
        options = [o.strip().strip("'") for o in expected.replace(" or ", ",").split(",") if o.strip()]
        hint = suggestion(str(value), options)
        return SpecIssue(norm.source(loc), f"expected one of {expected}, got {value!r}", hint)
    if kind in _EXPECT:
        return SpecIssue(norm.source(loc), f"expected {_EXPECT[kind]}, got {value!r}")
    message = err["msg"]
    if message.startswith("Value error, "):
        message = message[len("Value error, "):]
    elif message.startswith("Input should be "):
        message = "expected " + message[len("Input should be "):] + f", got {value!r}"
    elif message.startswith("String should match pattern"):
        message = f"{value!r} is not a valid name (letters, digits, _ and -, not starting with a digit)"
    return SpecIssue(norm.source(loc), message)


def _validate(cls: type[BaseModel], norm: Normalized, issues: IssueList) -> Any:
    try:
        return cls.model_validate(norm.data)
    except ValidationError as exc:
        for err in exc.errors(include_url=False):
            issues.append(_issue_from_error(err, cls, norm))
        return None


# ----------------------------------------------------------------------------------------------


def _read(source: Source) -> tuple[Any, dict[Loc, int], str | None]:
    if isinstance(source, dict):
        return source, {}, None
    if isinstance(source, str | Path):
        data, lines = read_yaml(source)
        return data, lines, str(source)
    raise TypeError(f"a spec source is a path or a dict, not {type(source).__name__}")


def _remap(issues: list[SpecIssue], norm: Normalized | None) -> list[SpecIssue]:
    if norm is None:
        return issues
    return [SpecIssue(norm.source(i.loc), i.message, i.hint, i.file, i.line) for i in issues]


def merge_loss(model: ModelSpec, trainer: TrainerSpec | None) -> ModelSpec:
    """The model with its loss, taking the trainer's ``loss:`` where the model has none (variant 1)."""
    if trainer is None or trainer.loss is None:
        return model
    if model.loss is None:
        return model.model_copy(update={"loss": trainer.loss})
    if _dump(model.loss) != _dump(trainer.loss):
        raise SpecError([SpecIssue(("loss",), "the model spec and the trainer spec both define a loss, and they "
                                              "differ", "keep the loss in the model spec only")])
    return model


def check_loss_on_model(model_file: SpecFile, trainer: TrainerSpec, trainer_source: Source) -> None:
    """A trainer spec's loss run on the model's dry-pass output, when the two come from two files (the deep
    check of a single file does this itself). :class:`SpecError` at the trainer file's ``loss``."""
    checked = model_file.checked
    if trainer.loss is None or model_file.model is None or model_file.model.loss is not None or \
            checked is None or checked.model is None:
        return
    from specml.graph.check import check_loss_outputs

    issues = IssueList()
    check_loss_outputs(merge_loss(model_file.model, trainer), checked, issues)
    if issues:
        raw, lines, file = _read(trainer_source)
        _, trainer_n, _ = split_file(raw, "trainer")
        raise SpecError(_remap(list(issues), trainer_n)).with_file(file, lines)


def _dump(loss: LossSpec | list[LossSpec]) -> Any:
    return [x.model_dump() for x in loss] if isinstance(loss, list) else loss.model_dump()


def load_spec(source: Source, *, check: bool = True, as_kind: str | None = None,
              overrides: Overrides | Sequence[str] | None = None) -> SpecFile:
    """Read a spec file (or dict) of any layout; raise :class:`SpecError` listing every problem.
    ``as_kind`` (``model``/``trainer``) decides a file whose keys leave its kind open (a ``-T`` file).
    ``overrides``: Hydra-style ``path=value`` edits (and presets) applied to the mapping before it is
    validated; ``${...}`` references are resolved after them (see :mod:`specml.spec.overrides`)."""
    raw, lines, file = _read(source)
    edited = apply_overrides(raw, overrides, file, lines)
    try:
        return _load(edited.data, lines, file, check, as_kind)
    except SpecError as err:
        raise edited.blamed(err) from None


def _load(raw: Any, lines: dict[Loc, int], file: str | None, check: bool, as_kind: str | None) -> SpecFile:
    if isinstance(raw, dict) and "estimator" in raw:
        return _load_estimator(raw, lines, file)
    model_n, trainer_n, issues = split_file(raw, as_kind)
    result = SpecFile(file)
    said: list[tuple[Loc, str]] = []
    if model_n is not None:
        issues += model_n.issues
        said += model_n.warnings
        result.model = _validate(ModelSpec, model_n, issues)
    if trainer_n is not None:
        issues += trainer_n.issues
        said += trainer_n.warnings
        result.trainer = _validate(TrainerSpec, trainer_n, issues)

    if result.model is not None and result.trainer is not None and result.trainer.loss is not None:
        # a single-file spec's loss (training.loss, trainer.loss) belongs to the model: move it there
        # before the model's checks, keeping the place it was written for error messages
        try:
            result.model = merge_loss(result.model, result.trainer)
            result.trainer = result.trainer.model_copy(update={"loss": None})
            model_n.origin.update({loc: trainer_n.source(loc) for loc in [("loss",), *trainer_n.origin]
                                   if loc[:1] == ("loss",)})
        except SpecError as exc:
            issues += _remap(exc.issues, trainer_n)
    if result.model is not None:
        found: list[tuple[Loc, str]] = []
        issues += _remap(list(check_model(result.model, found)), model_n)
        said += [(model_n.source(loc), msg) for loc, msg in found]
    if check and not issues:
        if result.model is not None:
            from specml.graph.check import check_model_torch

            result.checked = check_model_torch(result.model)
            issues += _remap(list(result.checked.issues), model_n)
        if result.trainer is not None:
            from specml.train.optim import check_trainer

            issues += _remap(list(check_trainer(result.trainer)), trainer_n)
            if result.trainer.loss is not None:
                from specml.graph.check import check_losses_torch

                loss_issues = IssueList()
                check_losses_torch(result.trainer.loss, loss_issues)
                issues += _remap(list(loss_issues), trainer_n)

    for loc, message in said:
        line = lines.get(tuple(loc))
        where = f"{file or '<spec>'}{f':{line}' if line else ''}"
        text = f"{where}: {format_path(loc)}: {message}"
        result.warnings.append(text)
        warnings.warn(SpecWarning(text), stacklevel=3)
    if issues:
        unique = list(dict.fromkeys(issues))
        raise SpecError(unique).with_file(file, lines)
    return result


def _load_estimator(raw: dict, lines: dict[Loc, int], file: str | None) -> SpecFile:
    """An estimator spec: structure (pydantic), then the allow-list and the estimator's parameters."""
    norm = Normalized(raw)
    issues = IssueList()
    spec = _validate(EstimatorSpec, norm, issues)
    if spec is not None:
        check_estimator(spec, issues)
    if issues:
        raise SpecError(list(dict.fromkeys(issues))).with_file(file, lines)
    return SpecFile(file, estimator=spec)


def load_estimator_spec(source: Source) -> EstimatorSpec:
    """An estimator spec (a file with an ``estimator:`` key)."""
    spec = load_spec(source)
    if spec.estimator is None:
        raise SpecError([SpecIssue((), f"this file holds a {spec.kind} spec, not an estimator spec",
                                   "an estimator spec has estimator: {type, params} and target", spec.path)])
    return spec.estimator


def load_model_spec(source: Source, *, check: bool = True) -> ModelSpec:
    """A model spec (from a model file, a single-file spec or the nested layout)."""
    spec = load_spec(source, check=check, as_kind="model")
    if spec.model is None:
        raise SpecError([SpecIssue((), "this file holds a trainer spec, not a model spec",
                                   "a model spec has inputs, graph and outputs", spec.path)])
    return spec.model


def load_trainer_spec(source: Source, *, check: bool = True) -> TrainerSpec:
    """A trainer spec (from a trainer file, a ``training:`` section or the nested layout)."""
    spec = load_spec(source, check=check, as_kind="trainer")
    if spec.trainer is None:
        raise SpecError([SpecIssue((), "this file holds a model spec, not a trainer spec",
                                   "a trainer spec has optimizer and config", spec.path)])
    return spec.trainer
