"""A trained network back from its directory, and its scores on a table.

:func:`load_trained` rebuilds the model from the run's exact model spec and the saved preprocessing,
and loads the best weights (safetensors, no pickle). :func:`task_scores` runs it over an Arrow table
in batches, without gradients, and returns each task's scores in the target's own units.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, ValidationError

from specml.artifact import ArtifactError, ModelArtifact
from specml.data.tensors import Preprocessor
from specml.graph import build_model
from specml.spec import load_model_spec
from specml.train.checkpoint import load_weights

PREDICT_BATCH = 8192


@dataclass
class Trained:
    name: str
    model: Any
    preprocessor: Any
    metadata: dict
    spec: Any


DTYPES = ("float16", "bfloat16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "bool")


class _Stored(BaseModel):
    """What ``load_trained`` reads back from ``metadata.json``; other keys are the trainer's to keep."""

    model_config = ConfigDict(extra="allow")

    task: str
    target: str | list[str]
    inputs: dict[str, list[str]]
    preprocessing: dict[str, Any]


def load_trained(name: str, home: str | Path | None = None) -> Trained:
    """A trained model from ``models/<name>/``: weights, the run's model spec, the preprocessing.

    Everything read back is checked: a damaged or tampered ``metadata.json`` is an :class:`ArtifactError`
    naming the field, never a traceback or a torch attribute looked up by a stored string."""
    artifact = ModelArtifact.for_name(name, home)
    meta = artifact.read_metadata()
    where = artifact.metadata_path
    try:
        _Stored.model_validate(meta)
        prep = Preprocessor.from_dict(meta["preprocessing"])
    except ValidationError as err:
        first = err.errors()[0]
        raise ArtifactError(f"model '{name}': {where} is damaged: {'.'.join(map(str, first['loc']))}: "
                            f"{first['msg']}") from None
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise ArtifactError(f"model '{name}': {where} is damaged: preprocessing: {err!r}") from None
    bad = [f"{k}: {v.dtype!r}" for k, v in prep.inputs.items() if v.dtype not in DTYPES]
    if bad:
        raise ArtifactError(f"model '{name}': {where} is damaged: preprocessing.inputs.{bad[0]} is not a dtype "
                            f"(one of {', '.join(DTYPES)})")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        spec = load_model_spec(artifact.model_spec_path, check=False)
    model = build_model(spec, vocab_sizes=prep.vocab_sizes())
    load_weights(artifact.weights_path, model)
    model.eval()
    return Trained(name, model, prep, meta, spec)


def task_scores(trained: Trained, data) -> dict[str, np.ndarray]:
    """Per task: positive-class probabilities (binary), class probabilities (multiclass), values in the
    target's units (regression, [N] or [N, k]) or predicted token ids [N, L] (sequences)."""
    inputs, _ = trained.preprocessor.transform(data, with_target=False)
    targets = trained.preprocessor.targets
    parts: dict[str, list[np.ndarray]] = {name: [] for name in targets}
    with torch.inference_mode():
        for start in range(0, data.num_rows, PREDICT_BATCH):
            batch = {k: v[start:start + PREDICT_BATCH] for k, v in inputs.items()}
            out = trained.model(**batch)
            for name, t in targets.items():
                y = out[t.output].float()
                if t.sequence:
                    y = y.argmax(dim=-1)
                elif t.task == "binary":
                    y = (torch.sigmoid(y) if t.logits else y).reshape(-1)
                elif t.task == "multiclass":
                    y = torch.softmax(y, dim=-1) if t.logits else y
                elif y.dim() == 2 and y.shape[1] == 1 and isinstance(t.column, str):
                    y = y[:, 0]
                parts[name].append(y.numpy())
    result = {}
    for name, t in targets.items():
        values = np.concatenate(parts[name]) if parts[name] else np.empty(0)
        result[name] = t.denormalize(values) if t.task == "regression" and not t.sequence else values
    return result
