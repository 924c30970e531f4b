"""Prediction tables, the same for neural and classical models.

One function decides each task's prediction columns (:func:`task_columns`), one puts a table together
(:func:`prediction_table`: ``row_number``, the kept input columns, then the predictions; a kept column
whose name a prediction column takes is written ``input_<name>``), and one writes it where the user
asked (:func:`write_predictions`). Scores arrive as numpy arrays: the positive-class probability
([N], binary), class probabilities ([N, C], multiclass), values ([N] or [N, k], regression) or token
ids ([N, L], sequences). Nothing here imports torch.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

THRESHOLD = 0.5  # binary: the positive class when its probability is above this (as the metrics count it)


def threshold_of(metadata: dict | None, given: float | str | None = None) -> float:
    """A binary model's decision threshold: ``given`` as a number, or ``"f1"`` / ``"youden"`` for the one
    chosen on the model's validation rows when it was trained (stored in its metadata), else
    :data:`THRESHOLD`. A number outside (0, 1) or a method the model has no threshold for is a user error."""
    from specml.data.errors import DataError

    if given is None:
        return THRESHOLD
    text = str(given).strip().lower()
    if text in ("f1", "youden"):
        stored = (metadata or {}).get("threshold") or {}
        value = stored.get("value") if text == stored.get("method") else stored.get(text)
        if value is None:
            raise DataError(f"--threshold {text}: this model has no threshold chosen on validation rows (binary "
                            "networks trained by this version store one); give a number between 0 and 1")
        return float(value)
    try:
        value = float(text)
    except ValueError:
        raise DataError(f"--threshold takes a number between 0 and 1, f1 or youden; got '{given}'") from None
    if not 0.0 < value < 1.0:
        raise DataError(f"--threshold must be between 0 and 1 (exclusive), got {value:g}")
    return value


def task_columns(task: str, scores: np.ndarray, *, classes: list | None = None, columns: list[str] | None = None,
                 pad: int | None = None, threshold: float = THRESHOLD) -> dict[str, Any]:
    """The columns one task adds to a prediction table, in order.

    ``task``: binary, multiclass, regression or sequence; ``classes``: the class values (classification);
    ``columns``: the target columns of a multi-output regression; ``pad``: a sequence's pad id;
    ``threshold``: binary: the positive class when its probability is above it. Binary and multiclass
    both give ``prediction``, ``probability`` and one ``prob_<class>`` column per class (every class).
    """
    import pyarrow as pa

    s = np.asarray(scores)
    if task == "sequence":  # predicted token ids up to the first pad, as a list column
        ids = s.astype(np.int64).reshape(len(s), -1)
        stop = np.where((ids == pad).any(axis=1), (ids == pad).argmax(axis=1), ids.shape[1])
        mask = np.arange(ids.shape[1])[None, :] < stop[:, None]
        offsets = np.concatenate([[0], np.cumsum(stop)]).astype(np.int32)
        return {"prediction": pa.ListArray.from_arrays(pa.array(offsets), pa.array(ids[mask]))}
    if task == "binary":
        s = s.reshape(-1).astype(np.float64)
        classes = list(classes) if classes is not None else [0, 1]
        return {"probability": pa.array(s),
                "prediction": pa.array(classes).take(pa.array((s > threshold).astype(np.int64))),
                f"prob_{classes[0]}": pa.array(1.0 - s), f"prob_{classes[1]}": pa.array(s)}
    if task == "multiclass":
        s = s.reshape(len(s), len(classes)).astype(np.float64)
        out = {"prediction": pa.array(list(classes)).take(pa.array(s.argmax(axis=1) if len(s) else
                                                                   np.empty(0, np.int64))),
               "probability": pa.array(s.max(axis=1) if len(s) else np.empty(0))}
        for j, cls in enumerate(classes):
            out[f"prob_{cls}"] = pa.array(s[:, j])
        return out
    if s.ndim == 2 and columns is not None:  # multi-output regression: one column per target
        return {f"prediction_{c}": pa.array(s[:, j].astype(np.float64)) for j, c in enumerate(columns)}
    return {"prediction": pa.array(s.reshape(-1).astype(np.float64))}


def prediction_table(data, keep: list[str], per_task: dict[str, dict[str, Any]]):
    """``row_number``, the kept columns of ``data`` (as the user knows them), then each task's columns
    (prefixed ``<task>_`` when there are several tasks)."""
    import pyarrow as pa

    multi = len(per_task) > 1
    predicted = {(f"{task}_" if multi else "") + key: col
                 for task, cols in per_task.items() for key, col in cols.items()}
    reserved = {"row_number", *predicted}
    cols: dict[str, Any] = {"row_number": pa.array(np.arange(data.num_rows, dtype=np.int64))}
    for c in keep:
        cols[c if c not in reserved else f"input_{c}"] = data.column(c)
    cols.update(predicted)
    return pa.table(cols)


def kept_columns(all_columns: list[str], features: list[str], keep: list[str] | None,
                 keep_all: bool = False) -> list[str]:
    """Every column with ``keep_all``; else ``keep`` as given; else every column that is not a feature
    (the keys and the target, so that predictions join back to their rows)."""
    if keep_all:
        return list(all_columns)
    return list(keep) if keep is not None else [c for c in all_columns if c not in features]


def check_outputs(ws, output_table: str | None, output: str | Path | None, replace: bool) -> None:
    """Refuse, before any work, to overwrite an existing table or file without ``replace`` (never lose data)."""
    from specml.data.errors import DataError

    if output_table and not replace and ws.has_table(output_table):
        raise DataError(f"table '{output_table}' already exists; pass --replace to overwrite it, or name "
                        "another --output-table")
    if output:
        path = Path(output)
        if path.is_dir():
            raise DataError(f"--output {path} is a directory; name a .csv or .parquet file")
        if path.exists() and not replace:
            raise DataError(f"--output {path} already exists; pass --replace to overwrite it")


def write_predictions(ws, result, output_table: str | None, output: str | Path | None, replace: bool = False) -> None:
    """Write a prediction table to a workspace table and/or a .csv / .parquet file (see :func:`check_outputs`)."""
    check_outputs(ws, output_table, output, replace)
    if output_table:
        ws.write_table(output_table, result, replace=replace)
    if output:
        from specml.data.files import write_table_file

        write_table_file(result, Path(output))


@contextlib.contextmanager
def _opened(workspace: Any, read_only: bool) -> Iterator[Any]:
    """The caller's Workspace, or one opened (and closed) here."""
    from specml.data.workspace import Workspace

    if hasattr(workspace, "read_columns"):
        yield workspace
        return
    ws = Workspace(workspace, read_only=read_only)
    try:
        yield ws
    finally:
        ws.close()


def predict_rows(workspace: Any, table: str, features: list[str], metadata: dict,
                 score: Callable[[Any, float | None], dict[str, dict]], *, output_table: str | None = None,
                 output: str | Path | None = None, keep: list[str] | None = None, keep_all: bool = False,
                 replace: bool = False, threshold: float | str | None = None):
    """Every model kind's predict: check the table, the columns and the outputs, read the features and the
    kept columns (letting go of the workspace while the model scores), ``score(rows, threshold)`` into
    ``{task: columns}``, lay the table out and write it where asked; returns it."""
    with _opened(workspace, read_only=True) as ws:
        ws.require_table(table)
        ws.require_columns(table, features)
        check_outputs(ws, output_table, output, replace)
        keep = kept_columns(list(ws.columns(table)), features, keep, keep_all)
        ws.require_columns(table, keep)
        cut = threshold_of(metadata, threshold)
        data = ws.read_columns(table, list(dict.fromkeys([*features, *keep])))
    result = prediction_table(data, keep, score(data, cut))
    with _opened(workspace, read_only=not output_table) as ws:
        write_predictions(ws, result, output_table, output, replace)
    return result
