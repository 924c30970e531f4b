"""Specs: the model spec (Arc-Graph) and the trainer spec, their loading, errors and JSON Schema.

Importing this package does not import torch; the deep checks that need it import it when run.
"""

from specml.spec.errors import SpecError, SpecIssue, SpecWarning
from specml.spec.load import SpecFile, load_model_spec, load_spec, load_trainer_spec, merge_loss
from specml.spec.model import InputSpec, LossSpec, ModelSpec, ModuleDef, NodeSpec
from specml.spec.trainer import OptimizerSpec, SchedulerSpec, TrainerConfig, TrainerSpec

__all__ = [
    "InputSpec", "LossSpec", "ModelSpec", "ModuleDef", "NodeSpec", "OptimizerSpec", "SchedulerSpec",
    "SpecError", "SpecFile", "SpecIssue", "SpecWarning", "TrainerConfig", "TrainerSpec",
    "load_model_spec", "load_spec", "load_trainer_spec", "merge_loss",
]
