"""JSON Schema of the specs, generated from the pydantic models (``specml schema model|trainer|estimator``)."""

from __future__ import annotations

from typing import Any

from specml.spec.estimator import EstimatorSpec
from specml.spec.model import ModelSpec
from specml.spec.trainer import TrainerSpec

SCHEMAS = {"model": ModelSpec, "trainer": TrainerSpec, "estimator": EstimatorSpec}
DIALECT = "https://json-schema.org/draft/2020-12/schema"


def json_schema(kind: str) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of the ``model``, ``trainer`` or ``estimator`` spec."""
    try:
        cls = SCHEMAS[kind]
    except KeyError:
        raise ValueError(f"unknown spec kind '{kind}'; expected one of: {', '.join(SCHEMAS)}") from None
    schema = cls.model_json_schema(mode="validation")
    return {"$schema": DIALECT, "$id": f"https://specml.dev/schema/{kind}.json", **schema}
