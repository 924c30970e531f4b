"""Table -> tensors: the spec's inputs and target, read once through Arrow, checked, preprocessed.

Everything learned from data is fitted on the training rows only and kept in a JSON-serialisable
:class:`Preprocessor` that is stored with the model and reused at evaluate/predict time:
categorical vocabularies (id 0 = unknown/NULL), per-column standardisation, the target's task and
classes. Bad input (NULLs, text fed to a float input, a missing target, an empty table) is a
:class:`DataError` with counts.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch

from specml.data.workspace import DataError
from specml.spec.model import INTEGER_DTYPES, LossSpec, ModelSpec

BINARY_LOSSES = {"BCELoss", "BCEWithLogitsLoss", "binary_cross_entropy", "binary_cross_entropy_with_logits"}
MULTICLASS_LOSSES = {"CrossEntropyLoss", "NLLLoss", "cross_entropy", "nll_loss"}
PROBABILITY_LOSSES = {"BCELoss", "binary_cross_entropy"}  # these read probabilities, not logits
MAX_CLASSES = 50  # an integer/text target with more distinct values than this is not taken as classes


def task_of(loss_type: str) -> str:
    short = loss_type.rsplit(".", 1)[-1]
    if short in BINARY_LOSSES:
        return "binary"
    if short in MULTICLASS_LOSSES:
        return "multiclass"
    return "regression"


def reads_logits(loss_type: str) -> bool:
    return loss_type.rsplit(".", 1)[-1] not in PROBABILITY_LOSSES


@dataclass
class InputState:
    columns: list[str]
    dtype: str
    one_d: bool = False  # shape [null]: a [B] tensor rather than [B, 1]
    categorical: bool = False
    vocab: list[Any] | None = None  # categorical: values in id order; id = position + 1
    normalize: str = "none"
    center: list[float] | None = None
    scale: list[float] | None = None


@dataclass
class TargetState:
    column: str
    task: str
    classes: list[Any] | None = None  # binary/multiclass: values in id order (binary: [negative, positive])
    logits: bool = True


@dataclass
class Preprocessor:
    """What was learned from the training rows; JSON in, JSON out."""

    inputs: dict[str, InputState] = field(default_factory=dict)
    target: TargetState | None = None

    def to_dict(self) -> dict:
        return {"inputs": {k: asdict(v) for k, v in self.inputs.items()},
                "target": asdict(self.target) if self.target else None}

    @staticmethod
    def from_dict(d: dict) -> Preprocessor:
        return Preprocessor({k: InputState(**v) for k, v in d["inputs"].items()},
                            TargetState(**d["target"]) if d.get("target") else None)

    def vocab_sizes(self) -> dict[str, int]:
        return {k: len(v.vocab) + 1 for k, v in self.inputs.items() if v.categorical and v.vocab is not None}

    # -- transform --------------------------------------------------------------------------------

    def transform(self, table: pa.Table, *, with_target: bool = True) -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:
        """Contiguous tensors, one per input (and the target), for every row of ``table``."""
        inputs = {name: self._input(name, state, table) for name, state in self.inputs.items()}
        target = self._target(table) if with_target and self.target is not None else None
        return inputs, target

    def _input(self, name: str, state: InputState, table: pa.Table) -> torch.Tensor:
        dtype = getattr(torch, state.dtype)
        if state.categorical:
            ids = np.empty((table.num_rows, len(state.columns)), dtype=np.int64)
            value_set = pa.array(state.vocab)
            for j, col in enumerate(state.columns):
                column = table.column(col)
                if value_set.type != column.type and len(value_set):
                    value_set = value_set.cast(column.type)
                found = pc.index_in(column, value_set=value_set)
                ids[:, j] = pc.fill_null(found, -1).to_numpy(zero_copy_only=False) + 1
            out = torch.from_numpy(ids).to(dtype)
        else:
            matrix = np.empty((table.num_rows, len(state.columns)), dtype=np.float64 if dtype.is_floating_point else np.int64)
            for j, col in enumerate(state.columns):
                matrix[:, j] = _numeric(table.column(col), col, name)
            if state.normalize != "none":
                matrix = (matrix - np.asarray(state.center)) / np.asarray(state.scale)
            out = torch.from_numpy(np.ascontiguousarray(matrix)).to(dtype)
        return out[:, 0].contiguous() if state.one_d else out

    def _target(self, table: pa.Table) -> torch.Tensor:
        t = self.target
        if t.column not in table.column_names:
            raise DataError(f"target column '{t.column}' is not in the table")
        column = table.column(t.column)
        if column.null_count:
            raise DataError(f"target column '{t.column}' has {column.null_count} NULL value(s) of {table.num_rows} rows; "
                            "filter them out (e.g. specml sql) before training or evaluating")
        if t.task == "regression":
            return torch.from_numpy(_numeric(column, t.column, "the target").astype(np.float32))
        found = pc.index_in(column, value_set=pa.array(t.classes).cast(column.type))
        if found.null_count:
            unknown = pc.unique(pc.filter(column, pc.is_null(found))).to_pylist()[:5]
            raise DataError(f"target column '{t.column}' has values the model was not trained on: {unknown} "
                            f"(classes: {t.classes})")
        ids = found.to_numpy(zero_copy_only=False).astype(np.int64)
        return torch.from_numpy(ids.astype(np.float32) if t.task == "binary" else ids)


def _numeric(column: pa.ChunkedArray, col: str, input_name: str) -> np.ndarray:
    typ = column.type
    if not (pa.types.is_integer(typ) or pa.types.is_floating(typ) or pa.types.is_boolean(typ)
            or pa.types.is_decimal(typ)):
        raise DataError(f"column '{col}' holds {typ} values, but {input_name} is numeric; mark the input "
                        "categorical: true, or cast the column in SQL")
    if column.null_count:
        raise DataError(f"column '{col}' (used by {input_name}) has {column.null_count} NULL value(s) of "
                        f"{len(column)} rows; filter or impute them before training")
    if pa.types.is_decimal(typ) or pa.types.is_boolean(typ):
        column = column.cast(pa.float64())
    return column.to_numpy()


# ----------------------------------------------------------------------------------------------
# fitting


def fit(spec: ModelSpec, table: pa.Table, loss: LossSpec | None, train_rows: np.ndarray) -> Preprocessor:
    """Learn vocabularies, scaling and the target's classes from ``table``'s ``train_rows``."""
    if table.num_rows == 0:
        raise DataError("the table is empty")
    train = table.take(pa.array(train_rows))
    prep = Preprocessor()
    for name, inp in spec.inputs.items():
        columns = list(inp.columns or [])
        if not columns:
            raise DataError(f"input '{name}' has no columns: it cannot be read from a table")
        state = InputState(columns, inp.dtype, len(inp.shape) == 1, inp.categorical, normalize=inp.normalize)
        if inp.categorical:
            arrays = [train.column(c).combine_chunks() for c in columns]
            values = pa.concat_arrays([a.cast(arrays[0].type) for a in arrays])
            uniq = pc.unique(pc.drop_null(values))
            state.vocab = sorted(uniq.to_pylist(), key=lambda v: (str(type(v)), v))
            if inp.vocab_size is not None and inp.vocab_size < len(state.vocab) + 1:
                raise DataError(f"input '{name}': vocab_size is {inp.vocab_size}, but the training rows hold "
                                f"{len(state.vocab)} distinct values (+1 for unknown); raise vocab_size or remove it")
        elif inp.normalize != "none" or inp.dtype not in INTEGER_DTYPES:
            matrix = np.column_stack([_numeric(train.column(c), c, f"input '{name}'") for c in columns])
            if inp.normalize == "standard":
                std = matrix.std(axis=0)
                state.center, state.scale = matrix.mean(axis=0).tolist(), np.where(std > 0, std, 1.0).tolist()
            elif inp.normalize == "minmax":
                lo, hi = matrix.min(axis=0), matrix.max(axis=0)
                state.center, state.scale = lo.tolist(), np.where(hi > lo, hi - lo, 1.0).tolist()
        prep.inputs[name] = state
    if loss is not None and loss.inputs.target is not None:
        prep.target = _fit_target(train, loss)
    return prep


def _fit_target(train: pa.Table, loss: LossSpec) -> TargetState:
    col = loss.inputs.target
    task = task_of(loss.type)
    state = TargetState(col, task, logits=reads_logits(loss.type))
    column = train.column(col)
    if column.null_count:
        raise DataError(f"target column '{col}' has {column.null_count} NULL value(s) in the training rows")
    if task == "regression":
        _numeric(column, col, "the target")
        return state
    classes = sorted(pc.unique(column).to_pylist(), key=lambda v: (str(type(v)), v))
    if task == "binary" and len(classes) != 2:
        raise DataError(f"{loss.type} is a binary loss, but target column '{col}' has {len(classes)} distinct "
                        f"value(s) in the training rows: {classes[:10]}" + (
                            "; use CrossEntropyLoss for several classes" if len(classes) > 2 else ""))
    if task == "multiclass" and len(classes) < 2:
        raise DataError(f"target column '{col}' has only one class in the training rows: {classes}")
    state.classes = classes
    return state


def infer_loss(spec: ModelSpec, table: pa.Table, target: str) -> tuple[LossSpec, str]:
    """Variant 3: no loss anywhere. Choose one from the target's values and the output names; say why."""
    outputs = list(spec.outputs)
    output = "logits" if "logits" in outputs else outputs[0]
    if len(outputs) > 1 and "logits" not in outputs:
        raise DataError(f"no loss in the spec and several outputs ({', '.join(outputs)}): name one in a loss section")
    column = table.column(target)
    typ = column.type
    distinct = pc.count_distinct(column).as_py()
    probability_output = output.lower() in ("prediction", "probability", "prob", "proba", "probabilities")
    if distinct == 2:
        kind = "torch.nn.BCELoss" if probability_output else "torch.nn.BCEWithLogitsLoss"
        why = f"target '{target}' has 2 values"
    elif (pa.types.is_integer(typ) or pa.types.is_string(typ) or pa.types.is_boolean(typ)) and distinct <= MAX_CLASSES:
        kind, why = "torch.nn.CrossEntropyLoss", f"target '{target}' has {distinct} distinct {typ} values"
    else:
        kind, why = "torch.nn.MSELoss", f"target '{target}' is continuous ({typ}, {distinct} distinct values)"
    loss = LossSpec(type=kind, inputs={"input": output, "target": target})
    return loss, f"no loss in the spec: using {kind} on output '{output}' ({why})"


def validation_split(n: int, fraction: float, seed: int, labels: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Seeded train/validation row indices; stratified by ``labels`` when every class has 2+ rows.

    Uses scikit-learn with its own ``random_state``: the global RNGs are not touched.
    """
    rows = np.arange(n)
    if fraction <= 0:
        return rows, rows[:0]
    from sklearn.model_selection import train_test_split

    stratify = None
    if labels is not None:
        _, counts = np.unique(labels, return_counts=True)
        if counts.min() >= 2 and round(n * fraction) >= len(counts):
            stratify = labels
    train, val = train_test_split(rows, test_size=fraction, random_state=seed, shuffle=True, stratify=stratify)
    if len(train) == 0:
        raise DataError(f"validation_split {fraction} leaves no training rows out of {n}")
    return np.sort(train), np.sort(val)
