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

from specml.artifact import ModelArtifact
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


def load_trained(name: str, home: str | Path | None = None) -> Trained:
    """A trained model from ``models/<name>/``: weights, the run's model spec, the preprocessing."""
    artifact = ModelArtifact.for_name(name, home)
    meta = artifact.read_metadata()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        spec = load_model_spec(artifact.model_spec_path, check=False)
    prep = Preprocessor.from_dict(meta["preprocessing"])
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
