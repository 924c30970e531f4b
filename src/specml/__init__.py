"""specml: models and training recipes as reviewable YAML, trained from tables.

The top-level names are imported lazily so that ``import specml`` (and ``specml --help``) stays fast
and does not import torch.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "load_spec": "specml.spec", "load_model_spec": "specml.spec", "load_trainer_spec": "specml.spec",
    "ModelSpec": "specml.spec", "TrainerSpec": "specml.spec", "SpecError": "specml.spec",
    "build_model": "specml.graph", "SpecModel": "specml.graph",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'specml' has no attribute {name!r}")


__all__ = sorted(_LAZY)
