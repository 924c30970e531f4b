"""The exported JSON Schemas (``specml schema model|trainer``) are valid Draft 2020-12 and agree
with the example specs: every shipped example validates, and clearly bad documents do not."""

from __future__ import annotations

import copy
from pathlib import Path

import jsonschema
import pytest

from specml.spec.schema import json_schema
from specml.spec.yaml_io import parse_yaml
from testkit import EXAMPLES, ROOT

SEED001 = ROOT / "tests" / "fixtures" / "seed001"

MODEL_FILES = sorted(EXAMPLES.glob("*/model.yaml"))
TRAINER_FILES = sorted(EXAMPLES.glob("*/trainer.yaml")) + sorted(SEED001.glob("*.yaml"))


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def _load(path: Path):
    data, _ = parse_yaml(path.read_text(encoding="utf-8"), str(path))
    return data


@pytest.fixture(scope="module")
def validators() -> dict[str, jsonschema.Draft202012Validator]:
    return {kind: jsonschema.Draft202012Validator(json_schema(kind)) for kind in ("model", "trainer")}


def _errors(validator: jsonschema.Draft202012Validator, doc) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)]


def test_the_files_exist():
    assert len(MODEL_FILES) >= 4
    assert len(TRAINER_FILES) >= 8  # the examples plus seed 001's four


@pytest.mark.parametrize("kind", ["model", "trainer"])
def test_schema_is_valid_draft_2020_12(kind):
    schema = json_schema(kind)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert jsonschema.validators.validator_for(schema) is jsonschema.Draft202012Validator
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["type"] == "object"
    assert schema["additionalProperties"] is False


def test_trainer_schema_requires_optimizer_and_config():
    assert {"optimizer", "config"} <= set(json_schema("trainer")["required"])


def test_unknown_schema_kind_is_refused():
    with pytest.raises(ValueError, match="unknown spec kind"):
        json_schema("predictor")


@pytest.mark.parametrize("path", MODEL_FILES, ids=_rel)
def test_example_model_validates(validators, path):
    assert _errors(validators["model"], _load(path)) == []


@pytest.mark.parametrize("path", TRAINER_FILES, ids=_rel)
def test_example_trainer_validates(validators, path):
    assert _errors(validators["trainer"], _load(path)) == []


@pytest.mark.parametrize("path", TRAINER_FILES, ids=_rel)
def test_trainer_is_not_a_model(validators, path):
    assert _errors(validators["model"], _load(path))


def _trainer() -> dict:
    return _load(SEED001 / "example4_minimal.yaml")


def _set(doc: dict, dotted: str, value) -> dict:
    out = copy.deepcopy(doc)
    node = out
    *parents, last = dotted.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value
    return out


def _drop(doc: dict, dotted: str) -> dict:
    out = copy.deepcopy(doc)
    node = out
    *parents, last = dotted.split(".")
    for part in parents:
        node = node[part]
    del node[last]
    return out


INVALID_TRAINERS = [
    ("unknown top-level key", lambda d: _set(d, "trainr", {})),
    ("unknown config key", lambda d: _set(d, "config.early_stoping_patience", 3)),
    ("unknown optimizer key", lambda d: _set(d, "optimizer.lrr", 0.1)),
    ("negative epochs", lambda d: _set(d, "config.epochs", -1)),
    ("zero epochs", lambda d: _set(d, "config.epochs", 0)),
    ("fractional epochs", lambda d: _set(d, "config.epochs", 2.5)),
    ("zero batch_size", lambda d: _set(d, "config.batch_size", 0)),
    ("device gpu", lambda d: _set(d, "config.device", "gpu")),
    ("mode maximum", lambda d: _set(d, "config.early_stopping_mode", "maximum")),
    ("validation_split 1.0", lambda d: _set(d, "config.validation_split", 1.0)),
    ("validation_split negative", lambda d: _set(d, "config.validation_split", -0.1)),
    ("lr zero", lambda d: _set(d, "optimizer.lr", 0)),
    ("lr missing", lambda d: _drop(d, "optimizer.lr")),
    ("epochs missing", lambda d: _drop(d, "config.epochs")),
    ("optimizer missing", lambda d: _drop(d, "optimizer")),
    ("patience zero", lambda d: _set(d, "config.early_stopping_patience", 0)),
    ("clip norm negative", lambda d: _set(d, "config.gradient_clip_norm", -1.0)),
    ("accumulate zero", lambda d: _set(d, "config.accumulate_grad_batches", 0)),
    ("scheduler unknown key", lambda d: _set(d, "scheduler", {"type": "StepLR", "intervall": "step"})),
    ("epochs boolean", lambda d: _set(d, "config.epochs", True)),
]


@pytest.mark.parametrize(("why", "mutate"), INVALID_TRAINERS, ids=[w for w, _ in INVALID_TRAINERS])
def test_invalid_trainer_rejected(validators, why, mutate):
    base = _trainer()
    assert _errors(validators["trainer"], base) == []
    assert _errors(validators["trainer"], mutate(base)), why


VALID_TRAINER_EDITS = [
    ("validation_split 0", lambda d: _set(d, "config.validation_split", 0.0)),
    ("patience null", lambda d: _set(d, "config.early_stopping_patience", None)),
    ("device mps", lambda d: _set(d, "config.device", "mps")),
    ("scheduler", lambda d: _set(d, "scheduler", {"type": "torch.optim.lr_scheduler.CosineAnnealingLR",
                                                  "params": {"T_max": 100, "eta_min": 1e-5}})),
    ("optimizer params", lambda d: _set(d, "optimizer.params", {"betas": [0.9, 0.999], "eps": 1e-8})),
]


@pytest.mark.parametrize(("why", "mutate"), VALID_TRAINER_EDITS, ids=[w for w, _ in VALID_TRAINER_EDITS])
def test_valid_trainer_edit_accepted(validators, why, mutate):
    assert _errors(validators["trainer"], mutate(_trainer())) == [], why


def _model() -> dict:
    return _load(EXAMPLES / "logistic" / "model.yaml")


INVALID_MODELS = [
    ("unknown top-level key", lambda d: _set(d, "outptus", {})),
    ("unknown node key", lambda d: {**d, "graph": [{**d["graph"][0], "prams": {}}, *d["graph"][1:]]}),
    ("graph missing", lambda d: _drop(d, "graph")),
    ("graph not a list", lambda d: _set(d, "graph", "linear")),
]


@pytest.mark.parametrize(("why", "mutate"), INVALID_MODELS, ids=[w for w, _ in INVALID_MODELS])
def test_invalid_model_rejected(validators, why, mutate):
    base = _model()
    assert _errors(validators["model"], base) == []
    assert _errors(validators["model"], mutate(base)), why
