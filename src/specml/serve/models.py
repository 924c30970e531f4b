"""A trained model as the server holds it: its input columns, request checks, and its scores.

Scoring goes through specml's own path: :func:`specml.train.inference.task_scores` (networks) or
:meth:`specml.classical.predict.Classical.scores`, then :mod:`specml.predictions` lays out the
columns, so a response holds what ``specml predict`` writes for the same rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from specml.errors import SpecmlError
from specml.spec.errors import suggestion


class RequestError(SpecmlError, ValueError):
    """A request the model cannot score; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Column:
    name: str
    kind: str  # number | category | tokens
    arrow: pa.DataType  # what the column is cast to before scoring
    nullable: bool = False
    categories: list | None = None


@dataclass
class Served:
    """One model: ``columns`` it reads (in order), ``passthrough`` columns it keeps (its targets)."""

    name: str
    kind: str  # neural | classical
    task: str
    columns: list[Column]
    passthrough: list[str]
    metadata: dict
    model: Any
    extra: dict = field(default_factory=dict)

    @property
    def features(self) -> list[str]:
        return [c.name for c in self.columns]

    def schema(self) -> dict:
        cols = []
        for c in self.columns:
            entry = {"name": c.name, "type": c.kind, "arrow_type": str(c.arrow), "nullable": c.nullable}
            if c.categories is not None:
                entry["categories"] = c.categories
            cols.append(entry)
        return {"model": self.name, "kind": self.kind, "task": self.task, "columns": cols,
                "passthrough": self.passthrough}

    # -- checks ------------------------------------------------------------------------------------

    def check_names(self, names: list[str], keep: list[str]) -> None:
        """Every feature present; every other column a target, or named in ``keep`` (else did-you-mean)."""
        missing = [c for c in self.features if c not in names]
        unknown = [c for c in names if c not in self.features and c not in self.passthrough and c not in keep]
        for c in unknown:
            hint = suggestion(c, missing or self.features)
            raise RequestError(f"unknown column '{c}'" + (f" ({hint})" if hint else "") +
                               f"; model '{self.name}' reads {', '.join(self.features)} (pass other columns through "
                               "with \"keep\": [...])")
        if missing:
            hint = suggestion(missing[0], [c for c in names if c not in self.features])
            raise RequestError(f"missing column '{missing[0]}'" + (f" ({hint.replace('did you mean', 'sent as')})"
                                                                   if hint else "") +
                               f": model '{self.name}' needs {', '.join(self.features)}")

    def table_from_columns(self, data: dict[str, list], keep: list[str]) -> pa.Table:
        """A checked Arrow table from JSON columns (name -> list of values)."""
        self.check_names(list(data), keep)
        lengths = {len(v) if isinstance(v, list) else -1 for v in data.values()}
        if -1 in lengths:
            bad = next(k for k, v in data.items() if not isinstance(v, list))
            raise RequestError(f"column '{bad}': expected a list of values, got {type(data[bad]).__name__}")
        if len(lengths) > 1:
            raise RequestError("columns of different lengths: " +
                               ", ".join(f"{k}: {len(v)}" for k, v in data.items()))
        arrays = {}
        for c in self.columns:
            arrays[c.name] = self._json_column(c, data[c.name])
        for name in data:
            if name not in arrays:
                try:
                    arrays[name] = pa.array(data[name])
                except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError) as err:
                    raise RequestError(f"column '{name}': values of mixed types ({err})") from None
        return pa.table(arrays)

    def _json_column(self, c: Column, values: list) -> pa.Array:
        for i, v in enumerate(values):
            if v is None:
                if not c.nullable:
                    raise RequestError(f"column '{c.name}', row {i}: null, but model '{self.name}' needs a value")
                continue
            if c.kind == "number" and (isinstance(v, str) or not isinstance(v, (int, float))):
                raise RequestError(f"column '{c.name}', row {i}: expected a number, got {json_text(v)}")
            if c.kind == "tokens" and not (isinstance(v, list) and all(isinstance(t, (int, str)) for t in v)):
                raise RequestError(f"column '{c.name}', row {i}: expected a list of tokens, got {json_text(v)}")
            if c.kind == "category" and not isinstance(v, (str, int, bool)):
                raise RequestError(f"column '{c.name}', row {i}: expected a category (text or integer), "
                                   f"got {json_text(v)}")
        try:
            return pa.array(values, type=c.arrow)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError) as err:
            raise RequestError(f"column '{c.name}': expected {c.kind} values of type {c.arrow}: {err}") from None

    def check_table(self, table: pa.Table, keep: list[str]) -> pa.Table:
        """An Arrow / Parquet body: the feature columns cast to what the model reads."""
        self.check_names(table.column_names, keep)
        for c in self.columns:
            col = table.column(c.name)
            typ = col.type
            ok = {"number": pa.types.is_integer(typ) or pa.types.is_floating(typ) or pa.types.is_boolean(typ)
                  or pa.types.is_decimal(typ) or pa.types.is_null(typ),
                  "tokens": pa.types.is_list(typ) or pa.types.is_large_list(typ),
                  "category": True}[c.kind]
            if not ok:
                raise RequestError(f"column '{c.name}': expected {c.kind} values, got {typ}")
            if col.null_count and not c.nullable:
                raise RequestError(f"column '{c.name}': {col.null_count} null value(s), but model '{self.name}' "
                                   "needs a value in every row")
            try:
                table = table.set_column(table.schema.get_field_index(c.name), c.name, col.cast(c.arrow))
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as err:
                raise RequestError(f"column '{c.name}': {typ} values do not convert to {c.arrow}: {err}") from None
        return table

    # -- scoring -----------------------------------------------------------------------------------

    def scores(self, data: pa.Table) -> dict[str, np.ndarray]:
        """Scores per task of a checked table (runs in a worker thread)."""
        if self.kind == "classical":
            return {self.metadata.get("target") or "target": self.model.scores(data)}
        from specml.train.inference import task_scores

        return task_scores(self.model, data)

    def columns_of(self, scores: dict[str, np.ndarray], threshold: float) -> dict[str, dict]:
        from specml.predictions import task_columns

        if self.kind == "classical":
            (task, s), = scores.items()
            return {task: task_columns(self.task, s, classes=self.metadata.get("classes"), threshold=threshold)}
        targets = self.model.preprocessor.targets
        return {name: task_columns("sequence" if targets[name].sequence else targets[name].task, s,
                                   classes=targets[name].classes, columns=targets[name].columns if
                                   not isinstance(targets[name].column, str) else None,
                                   pad=targets[name].pad, threshold=threshold)
                for name, s in scores.items()}


def json_text(value: Any) -> str:
    import json

    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def load_served(name: str, home: str | Path | None = None) -> Served:
    """Load model ``name`` from the specml home for serving."""
    from specml.artifact import ModelArtifact

    meta = ModelArtifact.for_name(name, home).read_metadata()
    if meta.get("kind") == "classical":
        return _classical(name, home)
    return _neural(name, home)


def _neural(name: str, home) -> Served:
    from specml.train.inference import load_trained

    trained = load_trained(name, home)
    columns: list[Column] = []
    for state in trained.preprocessor.inputs.values():
        for col in state.columns:
            if state.sequence:
                vocab = state.vocab if state.categorical else None
                inner = _vocab_type(vocab) if vocab else pa.int64()
                columns.append(Column(col, "tokens", pa.list_(inner), categories=vocab))
            elif state.categorical:
                columns.append(Column(col, "category", _vocab_type(state.vocab), nullable=True,
                                      categories=state.vocab))
            else:
                columns.append(Column(col, "number", pa.float64()))
    targets = [c for t in trained.preprocessor.targets.values() for c in t.columns]
    return Served(name, "neural", trained.metadata.get("task", ""), _unique(columns), targets, trained.metadata,
                  trained)


def _classical(name: str, home) -> Served:
    from specml.classical.predict import load_classical

    model = load_classical(name, home)
    cats = set(model.features.categorical)
    columns = [Column(c, "category", pa.string(), nullable=True) if c in cats else
               Column(c, "number", pa.float64(), nullable=True) for c in model.features.columns]
    target = model.metadata.get("target")
    return Served(name, "classical", model.task, columns, [target] if target else [], model.metadata, model)


def _vocab_type(vocab: list | None) -> pa.DataType:
    if vocab and all(isinstance(v, bool) for v in vocab):
        return pa.bool_()
    if vocab and all(isinstance(v, int) and not isinstance(v, bool) for v in vocab):
        return pa.int64()
    if vocab and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vocab):
        return pa.float64()
    return pa.string()


def _unique(columns: list[Column]) -> list[Column]:
    seen: dict[str, Column] = {}
    for c in columns:
        seen.setdefault(c.name, c)
    return list(seen.values())
