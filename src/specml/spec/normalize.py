"""Variants found in real Arc-Graph files -> the one canonical form the spec models describe.

Each rewrite records where a canonical value came from (``origin``), so an error about the value
names the place the user wrote it (``config.learning_rate``), not where specml moved it.
A setting stated twice with different values is an error; with equal values, a warning.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from specml.spec.errors import IssueList, Loc, format_path

TRAINER_KEYS = ("model_ref", "name", "description", "version", "optimizer", "config", "scheduler", "loss",
                "callbacks")

_MISSING = object()


@dataclass
class Normalized:
    """A canonical dict plus where its values were written and what was said about them."""

    data: Any
    origin: dict[Loc, Loc] = field(default_factory=dict)
    warnings: list[tuple[Loc, str]] = field(default_factory=list)
    issues: IssueList = field(default_factory=IssueList)

    def source(self, loc: Loc) -> Loc:
        """The place in the file that the canonical ``loc`` came from."""
        for end in range(len(loc), -1, -1):
            prefix = tuple(loc[:end])
            if prefix in self.origin:
                return self.origin[prefix] + tuple(loc[end:])
        return tuple(loc)

    # -- edits --------------------------------------------------------------------------------

    def get(self, loc: Loc, default: Any = _MISSING) -> Any:
        node = self.data
        for part in loc:
            if isinstance(node, dict) and part in node:
                node = node[part]
            else:
                return default
        return node

    def move(self, src: Loc, dst: Loc) -> None:
        """Move the value at ``src`` to ``dst``; a different value already at ``dst`` is an error."""
        value = self._pop(src)
        if value is _MISSING:
            return
        where_src = self.source(src)
        existing = self.get(dst)
        if existing is not _MISSING:
            where_dst = self.source(dst)
            if _same(existing, value):
                self.warnings.append((where_src, f"states {format_path(dst)} again (same value as "
                                                  f"{format_path(where_dst)}); remove one of them"))
            else:
                self.issues.add(where_src, f"contradicts {format_path(where_dst)}: {value!r} here, "
                                           f"{existing!r} there", "state the setting once")
            return
        parent = self.data
        for depth, part in enumerate(dst[:-1]):
            if part not in parent:
                parent[part] = {}
            elif not isinstance(parent[part], dict):
                self.issues.add(self.source(tuple(dst[:depth + 1])), f"expected a mapping, got {parent[part]!r}",
                                f"{format_path(where_src)} belongs in it")
                return
            parent = parent[part]
        parent[dst[-1]] = value
        self.origin[tuple(dst)] = where_src

    def _pop(self, loc: Loc) -> Any:
        parents = [self.data]
        for part in loc[:-1]:
            node = parents[-1]
            if not isinstance(node, dict) or not isinstance(node.get(part), dict):
                return _MISSING
            parents.append(node[part])
        node = parents[-1]
        if not isinstance(node, dict) or loc[-1] not in node:
            return _MISSING
        value = node.pop(loc[-1])
        # drop containers the move left empty (e.g. optimizer.config after its keys moved out)
        for depth in range(len(loc) - 1, 0, -1):
            if parents[depth] == {}:
                del parents[depth - 1][loc[depth - 1]]
        return value


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, int | float) and isinstance(b, int | float) and not isinstance(a, bool) and not isinstance(b, bool):
        return float(a) == float(b)
    return a == b


# ----------------------------------------------------------------------------------------------
# which kind of file is this


def split_file(raw: Any, as_kind: str | None = None) -> tuple[Normalized | None, Normalized | None, IssueList]:
    """Split a file into its model part and trainer part (either may be absent), with origins.

    Layouts: a model spec; a trainer spec; a model spec with a ``training:`` section (single-file
    spec); the older nested ``model: {...}`` + ``trainer: {...}`` layout. ``as_kind`` (``model`` or
    ``trainer``: the flag the file was passed with) decides a file whose keys do not: seed 000's
    ``trainer: {...}`` block alone is a trainer spec.
    """
    issues = IssueList()
    if not isinstance(raw, dict):
        kind = "empty" if raw is None else type(raw).__name__
        issues.add((), f"expected a mapping of spec sections, got {kind}",
                   "a model spec has inputs/graph/outputs; a trainer spec has optimizer/config")
        return None, None, issues
    raw = copy.deepcopy(raw)
    model_part: dict | None = None
    trainer_part: dict | None = None
    model_origin: dict[Loc, Loc] = {}
    trainer_origin: dict[Loc, Loc] = {}

    if isinstance(raw.get("model"), dict) and ("graph" in raw["model"] or "inputs" in raw["model"]):
        # variant 9: model: {inputs, graph, outputs} + trainer: {...} + predictor: {...}
        model_part = raw.pop("model")
        model_origin = {(k,): ("model", k) for k in model_part}
        if "trainer" in raw:
            trainer_part = raw.pop("trainer")
            trainer_origin = {(): ("trainer",)}
        if "predictor" in raw:
            raw.pop("predictor")
            issues.add(("predictor",), "the predictor section is not read by specml",
                       "remove it: predictions come from the model's `outputs`, and "
                       "`specml predict --outputs NAME` picks among them")
        for key in list(raw):
            if key in ("version", "name", "model_name", "description"):
                if key in model_part:
                    issues.add((key,), f"is written both at the top level and as model.{key}", "keep one")
                else:
                    model_part[key] = raw.pop(key)
                    model_origin[(key,)] = (key,)
        for key in raw:
            issues.add((key,), "unknown top-level section in the nested model/trainer layout",
                       "expected model, trainer (and optionally version, name, description)")
    elif any(k in raw for k in ("graph", "inputs", "outputs", "modules")):
        model_part = raw
        if "training" in raw:
            # variant 2: single-file spec with a training: section
            trainer_part = model_part.pop("training")
            trainer_origin = {(): ("training",)}
        if "trainer" in raw and isinstance(raw["trainer"], dict):
            # seed 000 shows a trainer: block beside the graph
            if trainer_part is not None:
                issues.add(("trainer",), "both `training:` and `trainer:` sections are present", "keep one")
            else:
                trainer_part = model_part.pop("trainer")
                trainer_origin = {(): ("trainer",)}
    elif any(k in raw for k in ("optimizer", "config", "model_ref", "scheduler")):
        trainer_part = raw
    elif as_kind == "trainer":
        wrapped = [k for k in ("trainer", "training") if isinstance(raw.get(k), dict)]
        if len(raw) == 1 and wrapped:  # seed 000: trainer: {optimizer, loss, epochs, batch_size}
            trainer_part = raw.pop(wrapped[0])
            trainer_origin = {(): (wrapped[0],)}
        else:
            trainer_part = raw
    elif as_kind == "model":
        model_part = raw
    else:
        issues.add((), "cannot tell whether this is a model spec or a trainer spec",
                   "a model spec has inputs/graph/outputs; a trainer spec has optimizer/config")
        return None, None, issues

    model = normalize_model(model_part, model_origin) if model_part is not None else None
    trainer = normalize_trainer(trainer_part, trainer_origin) if trainer_part is not None else None
    return model, trainer, issues


# ----------------------------------------------------------------------------------------------
# model


def normalize_model(raw: Any, origin: dict[Loc, Loc] | None = None) -> Normalized:
    n = Normalized(raw, dict(origin or {}))
    if not isinstance(raw, dict):
        return n
    n.move(("model_name",), ("name",))
    if "loss" in raw:
        _normalize_loss(n, ("loss",))
    return n


def _normalize_loss(n: Normalized, loc: Loc) -> None:
    """``loss: torch.nn.BCELoss`` -> ``{type: ...}``; ``pred: model.logits`` -> ``inputs.input: logits``."""
    value = n.get(loc)
    if isinstance(value, list):
        for i in range(len(value)):
            _normalize_loss(n, (*loc, i))
        return
    if isinstance(value, str):
        _set(n.data, loc, {"type": value})
        n.origin[tuple(loc)] = n.source(loc)
        n.origin[(*loc, "type")] = n.source(loc)
        return
    if not isinstance(value, dict):
        return
    for key in ("pred", "prediction", "input"):
        n.move((*loc, key), (*loc, "inputs", "input"))
    for key in ("pred", "prediction"):  # inputs: {pred: model.<output>, target: <column>}
        n.move((*loc, "inputs", key), (*loc, "inputs", "input"))
    n.move((*loc, "target"), (*loc, "inputs", "target"))
    ref = n.get((*loc, "inputs", "input"))
    if isinstance(ref, str) and ref.startswith("model."):
        value["inputs"]["input"] = ref[len("model."):]
        # variant 1's "pred: model.<output>" names the output through the model


def _set(data: dict, loc: Loc, value: Any) -> None:
    node = data
    for part in loc[:-1]:
        node = node[part]
    node[loc[-1]] = value


# ----------------------------------------------------------------------------------------------
# trainer

#: every place a learning rate is written in real files, in order of preference
LR_SOURCES: tuple[Loc, ...] = (
    ("optimizer", "params", "lr"),
    ("optimizer", "config", "learning_rate"),
    ("optimizer", "config", "lr"),
    ("optimizer", "learning_rate"),
    ("config", "learning_rate"),
    ("config", "lr"),
    ("learning_rate",),
    ("lr",),
)


def normalize_trainer(raw: Any, origin: dict[Loc, Loc] | None = None) -> Normalized:
    from specml.spec.trainer import TrainerConfig

    n = Normalized(raw, dict(origin or {}))
    if not isinstance(raw, dict):
        return n
    if isinstance(raw.get("optimizer"), str):  # optimizer: adam
        raw["optimizer"] = {"type": raw["optimizer"]}
        n.origin[("optimizer", "type")] = n.source(("optimizer",))
    for src in LR_SOURCES:
        n.move(src, ("optimizer", "lr"))
    # variant 4: optimizer.config holds the other constructor kwargs
    opt_config = n.get(("optimizer", "config"))
    if isinstance(opt_config, dict):
        for key in list(opt_config):
            n.move(("optimizer", "config", key), ("optimizer", "params", key))
    # loop settings written at the top level (seed 000's trainer block, `training:` sections)
    for key in list(raw):
        if key in TrainerConfig.model_fields and key not in TRAINER_KEYS:
            n.move((key,), ("config", key))
    # weight decay also appears beside the loop settings
    n.move(("config", "weight_decay"), ("optimizer", "params", "weight_decay"))
    if "loss" in raw:
        _normalize_loss(n, ("loss",))
    return n
