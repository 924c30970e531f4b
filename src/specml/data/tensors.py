"""Table -> tensors: the spec's inputs and target, read once through Arrow, checked, preprocessed.

Everything learned from data is fitted on the training rows only and kept in a JSON-serialisable
:class:`Preprocessor` that is stored with the model and reused at evaluate/predict time:
categorical vocabularies (id 0 = unknown/NULL), per-column scaling (standard, minmax, robust, quantile:
see :mod:`specml.data.scaling`), the target's task and classes. Bad input (NULLs, text fed to a float
input, a missing target, an empty table) is a :class:`DataError` with counts.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch

from specml.data import scaling
from specml.data.arrays import array_of, indices, to_numpy
from specml.data.split import SplitError, holdout
from specml.data.task import MAX_CLASSES, TaskError, arrow_kind, infer_task
from specml.data.workspace import DataError
from specml.spec.losses import BINARY_LOSSES, MULTICLASS_LOSSES, PROBABILITY_LOSSES, reads_logits, task_of
from specml.spec.model import INTEGER_DTYPES, LossSpec, ModelSpec

__all__ = ["BINARY_LOSSES", "MULTICLASS_LOSSES", "PROBABILITY_LOSSES", "InputState", "MAX_CLASSES", "Preprocessor",
           "TargetState", "fit", "infer_loss", "reads_logits", "task_of", "validation_split"]

TORCH_IGNORE_INDEX = -100  # CrossEntropyLoss's default ignore_index: padded target positions cost nothing


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
    quantiles: list[list[float]] | None = None  # normalize: quantile; per column, the training values' quantiles
    sequence: bool = False  # one list column read as [B, length], padded with pad_id / cut
    length: int | None = None
    pad_id: int = 0


@dataclass
class TargetState:
    """One task's target: its column(s), task, classes, scaling; sequences: length and pad id."""

    column: str | list[str]
    task: str
    classes: list[Any] | None = None  # binary/multiclass: values in id order (binary: [negative, positive])
    logits: bool = True
    name: str | None = None  # the task name (multi-task metrics, predictions)
    output: str | None = None  # the model output the loss reads
    weight: float = 1.0
    normalize: str = "none"  # regression: "standard" = trained on (y - center) / scale
    center: list[float] | None = None
    scale: list[float] | None = None
    sequence: bool = False  # a list column of token ids read as [B, length], padded with ``pad``
    length: int | None = None
    pad: int | None = None
    pad_ignored: bool = False  # pad = the loss's ignore_index (not learned); else the model learns to emit pad

    @property
    def columns(self) -> list[str]:
        return [self.column] if isinstance(self.column, str) else list(self.column)

    def denormalize(self, values: np.ndarray) -> np.ndarray:
        """Predictions in the target's own units (the inverse of ``normalize``)."""
        if self.normalize == "none" or self.center is None:
            return values
        center, scale = np.asarray(self.center), np.asarray(self.scale)
        if values.ndim == 1:
            return values * scale[0] + center[0]
        return values * scale + center


@dataclass
class Preprocessor:
    """What was learned from the training rows; JSON in, JSON out."""

    inputs: dict[str, InputState] = field(default_factory=dict)
    targets: dict[str, TargetState] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def target(self) -> TargetState | None:
        """The target of a single-task model (the first of several)."""
        return next(iter(self.targets.values()), None)

    def to_dict(self) -> dict:
        return {"inputs": {k: asdict(v) for k, v in self.inputs.items()},
                "targets": {k: asdict(v) for k, v in self.targets.items()}}

    @staticmethod
    def from_dict(d: dict) -> Preprocessor:
        targets = {k: TargetState(**v) for k, v in (d.get("targets") or {}).items()}
        if not targets and d.get("target"):
            old = TargetState(**d["target"])
            targets = {old.name or "target": old}
        return Preprocessor({k: InputState(**v) for k, v in d["inputs"].items()}, targets)

    def vocab_sizes(self) -> dict[str, int]:
        return {k: len(v.vocab) + 1 for k, v in self.inputs.items() if v.categorical and v.vocab is not None}

    # -- transform --------------------------------------------------------------------------------

    def transform(self, table: pa.Table, *, with_target: bool = True, normalized: bool = True,
                  with_inputs: bool = True, rows: np.ndarray | None = None
                  ) -> tuple[dict[str, torch.Tensor], torch.Tensor | dict[str, torch.Tensor] | None]:
        """Contiguous tensors, one per input, and the target: a tensor (one task) or a dict by task name.

        ``normalized=False`` gives regression targets in their own units (for evaluation). ``rows``: the
        inputs of those rows only, in that order (gathered column by column: the table is not copied).
        ``with_inputs=False`` reads only the target.
        """
        inputs = ({name: self._input(name, state, table, rows) for name, state in self.inputs.items()}
                  if with_inputs else {})
        if not with_target or not self.targets:
            return inputs, None
        targets = {name: self._target(t, table, normalized) for name, t in self.targets.items()}
        return inputs, (next(iter(targets.values())) if len(targets) == 1 else targets)

    def _input(self, name: str, state: InputState, table: pa.Table, rows: np.ndarray | None = None) -> torch.Tensor:
        dtype = getattr(torch, state.dtype)
        if state.sequence:
            column = table.column(state.columns[0])
            ids = _list_matrix(column, state.columns[0], state.length, state.pad_id, f"input '{name}'",
                               vocab=state.vocab if state.categorical else None)
            return torch.from_numpy(ids if rows is None else ids[rows]).to(dtype)
        n = table.num_rows if rows is None else len(rows)
        if state.categorical:
            ids = np.empty((n, len(state.columns)), dtype=np.int64)
            for j, col in enumerate(state.columns):
                values = _vocab_ids(table.column(col), state.vocab)
                ids[:, j] = values if rows is None else values[rows]
            out = torch.from_numpy(ids).to(dtype)
        else:
            # float32 without scaling is filled directly (same values: one rounding from float64 either way)
            direct = state.normalize == "none" and dtype == torch.float32
            matrix = np.empty((n, len(state.columns)),
                              dtype=np.float32 if direct else np.float64 if dtype.is_floating_point else np.int64)
            for j, col in enumerate(state.columns):
                values = _numeric(table.column(col), col, name)
                if direct and values.dtype.kind != "f":
                    values = values.astype(np.float64)
                matrix[:, j] = values if rows is None else values[rows]
            if dtype.is_floating_point:
                _refuse_non_finite(torch.from_numpy(matrix), state.columns, name, dtype)
            if state.normalize != "none":
                matrix = scaling.apply(state.normalize, matrix, state.center, state.scale, state.quantiles)
            out = torch.from_numpy(np.ascontiguousarray(matrix)).to(dtype)
        return out[:, 0].contiguous() if state.one_d else out

    def _target(self, t: TargetState, table: pa.Table, normalized: bool) -> torch.Tensor:
        for col in t.columns:
            if col not in table.column_names:
                raise DataError(f"target column '{col}' is not in the table")
            column = table.column(col)
            if column.null_count:
                raise DataError(f"target column '{col}' has {column.null_count} NULL value(s) of {table.num_rows} "
                                "rows; filter them out (e.g. specml sql) before training or evaluating")
        if t.sequence:
            if t.length is None:
                raise DataError(f"target '{t.column}': the sequence length is not known yet "
                                "(set from the model's output)")
            return torch.from_numpy(_list_matrix(table.column(t.columns[0]), t.columns[0], t.length, t.pad,
                                                 f"target '{t.column}'"))
        if t.task == "regression":
            y = np.column_stack([_numeric(table.column(c), c, "the target") for c in t.columns]).astype(np.float64)
            _refuse_non_finite(torch.from_numpy(y), t.columns, f"target '{t.column}'", torch.float32)
            if normalized and t.normalize != "none":
                y = (y - np.asarray(t.center)) / np.asarray(t.scale)
            y = y[:, 0] if isinstance(t.column, str) else y
            return torch.from_numpy(np.ascontiguousarray(y, dtype=np.float32))
        column = table.column(t.columns[0])
        if pa.types.is_floating(column.type) and (nan := pc.sum(pc.is_nan(column)).as_py() or 0):
            raise DataError(f"target column '{t.column}' has {nan} NaN value(s) of {table.num_rows} rows; a class "
                            "target needs a class in every row: filter them out (e.g. specml sql) first")
        found = pc.index_in(column, value_set=array_of(t.classes, column.type))
        if found.null_count:
            unknown = pc.unique(pc.filter(column, pc.is_null(found))).to_pylist()[:5]
            raise DataError(f"target column '{t.column}' has values the model was not trained on: {unknown} "
                            f"(classes: {t.classes})")
        ids = to_numpy(found).astype(np.int64)
        return torch.from_numpy(ids.astype(np.float32) if t.task == "binary" else ids)


def _vocab_ids(values: pa.Array | pa.ChunkedArray, vocab: list[Any]) -> np.ndarray:
    """Ids through a fitted vocabulary: position + 1; unknown values and NULL -> 0."""
    value_set = array_of(vocab, values.type) if len(vocab) else pa.array(vocab)
    found = pc.index_in(values, value_set=value_set)
    return to_numpy(pc.fill_null(found, -1)) + 1


def _is_list(typ: pa.DataType) -> bool:
    return pa.types.is_list(typ) or pa.types.is_large_list(typ) or pa.types.is_fixed_size_list(typ)


def _list_matrix(column: pa.ChunkedArray, col: str, length: int, pad: int, what: str,
                 vocab: list | None = None) -> np.ndarray:
    """A list column as an [N, length] int64 matrix: each list left-aligned, padded with ``pad``, cut at
    ``length``. Vectorised over the flattened values (no per-row Python)."""
    if not _is_list(column.type):
        raise DataError(f"{what} reads column '{col}' as a sequence, "
                        f"but it holds {column.type}; store a list column (e.g. INTEGER[]) or list L columns")
    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if arr.null_count:
        raise DataError(f"{what}: {arr.null_count} row(s) hold NULL instead of a list; filter them out")
    lengths = to_numpy(pc.list_value_length(arr)).astype(np.int64)
    values = pc.list_flatten(arr)
    if values.null_count:
        raise DataError(f"{what}: the lists hold {values.null_count} NULL element(s)")
    if vocab is not None:
        flat = _vocab_ids(values, vocab).astype(np.int64)
    else:
        if not (pa.types.is_integer(values.type) or pa.types.is_boolean(values.type)):
            raise DataError(f"{what}: the lists hold {values.type} values; token ids must be integers "
                            "(or mark the input categorical: true)")
        flat = to_numpy(values).astype(np.int64)
    n = len(lengths)
    out = np.full((n, length), pad, dtype=np.int64)
    rows = np.repeat(np.arange(n), lengths)
    pos = np.arange(len(flat)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    keep = pos < length
    out[rows[keep], pos[keep]] = flat[keep]
    return out


def _refuse_non_finite(values: torch.Tensor, columns: list[str], input_name: str,
                       dtype: torch.dtype | None = None) -> None:
    """The rule for NaN, inf and values too large for the input's dtype (1e308 in float32): refused at
    train, evaluate and predict time alike, counted per column — never a silent NaN prediction. ``values``
    are checked as ``dtype`` (default: their own), a block of rows at a time (no table-sized temporaries)."""
    flat = values.reshape(len(values), -1)
    dtype = dtype or flat.dtype
    step = max(1, (1 << 20) // max(flat.shape[1], 1))
    counts: torch.Tensor | None = None
    for start in range(0, len(flat), step):
        bad = ~torch.isfinite(flat[start:start + step].to(dtype))
        if bool(bad.any()):
            counts = bad.sum(dim=0) if counts is None else counts + bad.sum(dim=0)
    if counts is None:
        return
    worst = [f"'{c}': {n}" for c, n in zip(columns, counts.tolist(), strict=False) if n]
    raise DataError(f"{input_name} has {int(counts.sum())} value(s) that are NaN, infinite or too large for "
                    f"{str(dtype).replace('torch.', '')} ({', '.join(worst)}); filter or impute them (e.g. "
                    "specml sql) first")


def _numeric(column: pa.ChunkedArray, col: str, input_name: str) -> np.ndarray:
    return to_numpy(_checked_numeric(column, col, input_name))


def _checked_numeric(column: pa.ChunkedArray, col: str, input_name: str) -> pa.ChunkedArray:
    """A numeric column without NULLs (booleans and decimals cast to float64), or the DataError saying why not."""
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
    return column


# ----------------------------------------------------------------------------------------------
# fitting


class _Rows:
    """Some rows of a table, read a column at a time (the table itself is never copied)."""

    def __init__(self, table: pa.Table, rows: np.ndarray) -> None:
        self.table, self.rows = table, indices(rows)
        self.num_rows = len(rows)

    def column(self, name: str) -> pa.ChunkedArray:
        return self.table.column(name).take(self.rows)


def fit(spec: ModelSpec, table: pa.Table, loss: LossSpec | list[LossSpec] | None,
        train_rows: np.ndarray) -> Preprocessor:
    """Learn vocabularies, scaling and each target's classes (or scale) from ``table``'s ``train_rows``."""
    if table.num_rows == 0:
        raise DataError("the table is empty")
    train = _Rows(table, train_rows)
    prep = Preprocessor()
    for name, inp in spec.inputs.items():
        columns = list(inp.columns or [])
        if not columns:
            raise DataError(f"input '{name}' has no columns: it cannot be read from a table")
        state = InputState(columns, inp.dtype, len(inp.shape) == 1, inp.categorical, normalize=inp.normalize,
                           pad_id=inp.pad_id)
        first = table.schema.field(columns[0]).type if columns[0] in table.column_names else None
        if first is not None and _is_list(first):
            if len(columns) != 1 or len(inp.shape) != 2 or inp.shape[1] is None:
                raise DataError(f"input '{name}': column '{columns[0]}' holds lists ({first}); a list column feeds "
                                "one input of shape [null, L] (L = the sequence length)")
            state.sequence, state.length, state.one_d = True, int(inp.shape[1]), False
            column = train.column(columns[0])
            if inp.categorical:
                flat = pc.list_flatten(column.combine_chunks())
                state.vocab = sorted(pc.unique(pc.drop_null(flat)).to_pylist(), key=lambda v: (str(type(v)), v))
            longer = int(pc.sum(pc.greater(pc.list_value_length(column), state.length)).as_py() or 0)
            if longer:
                prep.notes.append(f"input '{name}': {longer} of {train.num_rows} training rows hold lists longer than "
                                  f"L={state.length}; they are cut to their first {state.length} tokens")
        elif len(columns) == 1 and len(inp.shape) == 2 and inp.shape[1] not in (None, 1):
            raise DataError(f"input '{name}' has shape {list(inp.shape)} and one column '{columns[0]}' of type "
                            f"{first}: a [null, L] input reads a list column (e.g. INTEGER[]) or L columns")
        elif inp.categorical:
            arrays = [train.column(c).combine_chunks() for c in columns]
            values = pa.concat_arrays([a.cast(arrays[0].type) for a in arrays])
            uniq = pc.unique(pc.drop_null(values))
            state.vocab = sorted(uniq.to_pylist(), key=lambda v: (str(type(v)), v))
        elif inp.normalize == "none" and inp.dtype not in INTEGER_DTYPES:
            for c in columns:  # nothing to learn: only the types and NULLs checked (no rows gathered)
                if c in table.column_names:
                    _checked_numeric(table.column(c), c, f"input '{name}'")
        elif inp.normalize != "none":
            matrix = np.column_stack([_numeric(train.column(c), c, f"input '{name}'") for c in columns])
            # statistics of the finite values only; transform() then refuses the others with their count
            matrix = np.where(np.isfinite(matrix), matrix, np.nan) if matrix.dtype.kind == "f" else matrix
            if inp.normalize != "none":
                state.center, state.scale, state.quantiles = scaling.fit(inp.normalize, matrix)
        if state.vocab is not None and inp.vocab_size is not None and inp.vocab_size < len(state.vocab) + 1:
            raise DataError(f"input '{name}': vocab_size is {inp.vocab_size}, but the training rows hold "
                            f"{len(state.vocab)} distinct values (+1 for unknown); raise vocab_size or remove it")
        prep.inputs[name] = state
    losses = loss if isinstance(loss, list) else [] if loss is None else [loss]
    outputs = list(spec.outputs)
    for item in losses:
        if item.inputs.target is None:
            continue
        state = _fit_target(train, item, spec)
        state.output = item.inputs.input or outputs[0]
        state.name = item.name or state.output
        state.weight = item.weight
        prep.targets[state.name] = state
    return prep


def _fit_target(train: pa.Table, loss: LossSpec, spec: ModelSpec) -> TargetState:
    cols = loss.inputs.target_columns
    task = task_of(loss.type)
    state = TargetState(loss.inputs.target, task, logits=reads_logits(loss.type))
    for col in cols:
        column = train.column(col)
        if column.null_count:
            raise DataError(f"target column '{col}' has {column.null_count} NULL value(s) in the training rows")
    first = train.column(cols[0])
    if _is_list(first.type):
        if len(cols) != 1 or task != "multiclass":
            raise DataError(f"target column '{cols[0]}' holds lists ({first.type}): a token-sequence target is "
                            "read by one class loss (CrossEntropyLoss) over outputs [B, L, vocabulary]")
        state.sequence = True
        if "ignore_index" in loss.params:
            state.pad, state.pad_ignored = int(loss.params["ignore_index"]), True
        else:  # the model learns where a sequence ends: it emits the sequence input's pad token after it
            pads = [inp.pad_id for inp in spec.inputs.values() if len(inp.shape) == 2 and len(inp.columns or []) == 1
                    and inp.dtype in INTEGER_DTYPES]
            if not pads:
                raise DataError(f"target column '{cols[0]}' holds token sequences: set the loss's ignore_index (the "
                                "pad id, not learned), or give the sequence input a pad_id the model learns to emit")
            state.pad = int(pads[0])
        state.length = int(pc.max(pc.list_value_length(first)).as_py() or 1)  # the model's output length wins
        return state
    if task == "regression":
        y = np.column_stack([_numeric(train.column(c), c, "the target") for c in cols])
        if loss.target_normalize == "standard":
            std = y.std(axis=0)
            state.normalize = "standard"
            state.center, state.scale = y.mean(axis=0).tolist(), np.where(std > 0, std, 1.0).tolist()
        return state
    state.classes = checked_classes(loss, task, cols,
                                    sorted(pc.unique(first).to_pylist(), key=lambda v: (str(type(v)), v)))
    return state


def checked_classes(loss: Any, task: str, cols: list[str], classes: list) -> list:
    """The classes a class loss's one target column holds in the training rows, when they suit its task
    (two for a binary loss, at least two for a multiclass one); else :class:`DataError`."""
    if len(cols) > 1:
        raise DataError(f"{loss.type} reads one target column, got {len(cols)}: {cols}; several columns are a "
                        "multi-output regression target, or give each class task its own loss (multi-task)")
    if task == "binary" and len(classes) != 2:
        raise DataError(f"{loss.type} is a binary loss, but target column '{cols[0]}' has {len(classes)} distinct "
                        f"value(s) in the training rows: {classes[:10]}" + (
                            "; use CrossEntropyLoss for several classes" if len(classes) > 2 else ""))
    if task == "multiclass" and len(classes) < 2:
        raise DataError(f"target column '{cols[0]}' has only one class in the training rows: {classes}")
    return classes


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
    try:  # the compiler decides with the same rule (specml.data.task)
        task, _ = infer_task(arrow_kind(typ), distinct, what=f"'{target}' ({typ}, {distinct} distinct values)")
    except TaskError as err:
        raise DataError(f"no loss in the spec, and none fits: {err}") from None
    if task == "binary":
        kind = "torch.nn.BCELoss" if probability_output else "torch.nn.BCEWithLogitsLoss"
        why = f"target '{target}' has 2 values"
    elif task == "multiclass":
        kind, why = "torch.nn.CrossEntropyLoss", f"target '{target}' has {distinct} distinct {typ} values"
    else:
        kind, why = "torch.nn.MSELoss", f"target '{target}' is continuous ({typ}, {distinct} distinct values)"
    loss = LossSpec(type=kind, inputs={"input": output, "target": target})
    return loss, f"no loss in the spec: using {kind} on output '{output}' ({why})"


def validation_split(n: int, fraction: float, seed: int, labels: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Seeded train/validation row indices; stratified by ``labels`` when every class has 2+ rows
    (:func:`specml.data.split.holdout`: scikit-learn with its own ``random_state``, global RNGs untouched)."""
    try:
        return holdout(n, fraction, seed, labels)
    except SplitError as err:
        raise DataError(str(err)) from None
