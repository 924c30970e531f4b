"""The model spec (Arc-Graph): inputs, a DAG of nodes, outputs, loss.

These pydantic models are the schema (``specml schema model``), the documentation of every field
and the structural validation. Cross-field rules (references, cycles, allow-listed types, shapes)
live in :mod:`specml.spec.check` and :mod:`specml.graph.check`, which report field paths.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, PositiveFloat, PositiveInt, field_validator

from specml.spec.base import NodeInputs, Ref, StrictModel, one_or_many

#: Canonical dtype names (torch's) and the aliases users write for them (torch's own aliases:
#: ``int`` is ``torch.int`` = int32, ``long`` is int64, ``float`` is float32, ``double`` float64).
DTYPE_ALIASES: dict[str, str] = {
    "float": "float32",
    "double": "float64",
    "half": "float16",
    "long": "int64",
    "int": "int32",
    "short": "int16",
    "byte": "uint8",
    "boolean": "bool",
}
INTEGER_DTYPES = ("int8", "int16", "int32", "int64", "uint8")

DTypeName = Annotated[
    Literal["float16", "bfloat16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8",
            "bool", "float", "double", "half", "long", "int", "short", "byte", "boolean"],
    AfterValidator(lambda v: DTYPE_ALIASES.get(v, v)),
]

NODE_NAME = r"^[A-Za-z_][A-Za-z0-9_\-]*$"
Name = Annotated[str, Field(pattern=NODE_NAME)]


class InputSpec(StrictModel):
    """One model input: a tensor the caller passes, usually read from table columns."""

    dtype: DTypeName = Field("float32", description="Tensor dtype; aliases long/int/float/double accepted.")
    shape: list[PositiveInt | None] = Field(
        ..., min_length=1,
        description="Tensor shape; the first dimension is the batch and must be null. "
                    "[null] = one value per row (1-D), [null, k] = k columns.",
    )
    columns: list[str] | None = Field(
        None, description="Table columns feeding this input; their count must match the last dimension "
                          "of shape. [] = fed by the caller, not a table.",
    )
    categorical: bool = Field(
        False, description="Values are mapped to integer ids through a vocabulary fitted on the "
                           "training split (id 0 = unknown/NULL).",
    )
    vocab_size: PositiveInt | None = Field(None, description="Vocabulary size incl. id 0; derived from data when absent.")
    embedding_dim: PositiveInt | None = Field(
        None, description="If set, specml embeds the ids before any node sees them: references to this "
                          "input receive [B, embedding_dim] (shape [null]) or [B, k, embedding_dim].",
    )
    normalize: Literal["standard", "minmax", "robust", "quantile", "none"] = Field(
        "none", description="specml addition: scale each column with statistics fitted on the training rows only "
                            "and stored with the model. standard: z-score; minmax: to [0, 1]; robust: (x - median) "
                            "/ IQR, smoothly clipped to (-3, 3) by z / sqrt(1 + (z/3)^2); quantile: the training "
                            "values' empirical CDF mapped to a standard normal (bounded, for heavy tails). "
                            "Float inputs only.",
    )
    pad_id: int = Field(
        0, description="Sequence inputs (shape [null, L] read from one list column, e.g. INTEGER[]): the id that "
                       "pads shorter lists on the right; longer lists are cut to L. Choose an id that is not a token.",
    )
    description: str | None = None


class NodeSpec(StrictModel):
    """One step of the graph: a torch.nn module, a function, a sub-graph module or a stack."""

    name: Name = Field(..., description="Unique name; its result is referred to as <name>.output.")
    type: str = Field(
        ..., description="torch.nn.<Module> | torch.nn.functional.<fn> | torch.<op> | specml.layers.<Layer> "
                         "| module.<Name> | arc.stack | a registered plugin name.",
    )
    params: dict[str, Any] = Field(
        default_factory=dict,
        description="Constructor kwargs (modules), extra call kwargs (functions), {module, count} "
                    "(arc.stack). A nested {_target_: torch.nn.X, ...} is built through the allow-list.",
    )
    inputs: NodeInputs = Field(
        default_factory=dict,
        description="A map = keyword arguments, a list = positional arguments. Values are references: "
                    "an input name, <node>, <node>.output, <node>.output.0 (tuple element).",
    )
    description: str | None = None


class ModuleDef(StrictModel):
    """A reusable sub-graph, instantiated by ``type: module.<Name>`` or repeated by ``arc.stack``."""

    inputs: list[Name] = Field(..., min_length=1, description="Names the sub-graph's nodes refer to.")
    graph: list[NodeSpec] = Field(..., min_length=1)
    outputs: dict[str, Ref] = Field(
        ..., min_length=1,
        description="Output name -> reference. One output: the node's output is that tensor; several: a "
                    "dict, read with <node>.output.<name>.",
    )
    description: str | None = None


class LossInputs(StrictModel):
    input: str | None = Field(None, description="An OUTPUT name from `outputs` (default: the only output).")
    target: str | list[str] | None = Field(
        None, description="The table column holding the target (or `--target`); a list of columns = a multi-output "
                          "regression target [B, k]; a list column (INTEGER[]) = a token sequence target.",
    )

    @field_validator("target", mode="before")
    @classmethod
    def _column_or_columns(cls, value: Any) -> Any:
        if value is None or isinstance(value, str) or (isinstance(value, list) and value
                                                       and all(isinstance(v, str) for v in value)):
            return value
        raise ValueError(f"expected a column name or a non-empty list of column names, got {value!r}")

    @property
    def target_columns(self) -> list[str]:
        t = self.target
        return [] if t is None else [t] if isinstance(t, str) else list(t)


class LossSpec(StrictModel):
    """How the model is trained: a loss function over one output and one target column."""

    type: str = Field(..., description="torch.nn.functional.<loss fn> or torch.nn.<Loss> module.")
    inputs: LossInputs = Field(default_factory=LossInputs)
    params: dict[str, Any] = Field(default_factory=dict, description="Kwargs of the loss (e.g. pos_weight).")
    weight: PositiveFloat = Field(1.0, description="Weight of this loss in a multi-task sum.")
    name: Name | None = Field(None, description="Task name in metrics (default: the output name).")
    target_normalize: Literal["standard", "none"] = Field(
        "none", description="Regression: train on the standardized target (mean and std of the training rows, "
                            "stored with the model); predictions are mapped back to the target's units.",
    )


class ModelSpec(StrictModel):
    """An Arc-Graph model: inputs -> graph -> outputs (+ loss)."""

    version: str | int | float | None = None
    name: str | None = Field(None, description="Model name (alias: model_name).")
    description: str | None = None
    inputs: dict[Name, InputSpec] = Field(..., min_length=1)
    modules: dict[Name, ModuleDef] = Field(default_factory=dict)
    graph: list[NodeSpec] = Field(..., min_length=1)
    outputs: dict[Name, Ref] = Field(..., min_length=1, description="Public output name -> node reference.")
    loss: one_or_many(LossSpec) | None = Field(
        None, description="One loss, or a list of losses (multi-task, summed with their weights).",
    )

    @property
    def losses(self) -> list[LossSpec]:
        if self.loss is None:
            return []
        return list(self.loss) if isinstance(self.loss, list) else [self.loss]
