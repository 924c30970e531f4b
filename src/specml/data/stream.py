"""Tables larger than memory: rows read in chunks through DuckDB, and preprocessing fitted in one pass.

A :class:`StreamSource` is a workspace table (chunks: ranges of DuckDB's ``rowid``) or a Parquet glob
(chunks: its files), read as Arrow record batches of at most ``batch_rows`` rows. The validation split
is a seeded hash of each row's key (``rowid``; Parquet: ``file_row_number``), so it is the same every
epoch and for every DDP rank; it is not stratified. :func:`fit` learns the same :class:`Preprocessor`
the in-memory path does (:func:`specml.data.tensors.fit`) from one pass over the training rows: mean and
standard deviation merged chunk by chunk (Chan et al.), min/max, vocabularies and classes from the
distinct values. :func:`choose` decides, before any row is read, whether a training streams.
"""

from __future__ import annotations

import glob as globbing
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from specml.data import tensors as T
from specml.data.workspace import DataError, quote_ident
from specml.spec.model import INTEGER_DTYPES, LossSpec, ModelSpec

#: the split's resolution: a row is a validation row when hash(key, seed) % HASH_BUCKETS < fraction x HASH_BUCKETS
HASH_BUCKETS = 1_000_000
#: normalize options streaming fits in its one pass (quantiles need the whole column)
STREAMED_NORMALIZE = ("none", "standard", "minmax")
#: DuckDB's rows per row group: chunks of whole row groups read 2-3x faster than smaller ranges of rowid
ROW_GROUP_ROWS = 122_880
#: at most this many distinct target values are read to infer a loss (the rule needs fewer than 51)
_INFER_DISTINCT = 10_000


def physical_memory_mb() -> int:
    """This machine's physical memory, in MB."""
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20)


def budget_mb(setting: int | None) -> int:
    """``config.memory_budget_mb``, or 25% of physical memory."""
    return int(setting) if setting else max(physical_memory_mb() // 4, 1)


def estimate_mb(rows: int, columns: int) -> float:
    """What the columns take in memory, estimated as rows x columns x 8 bytes."""
    return rows * columns * 8 / 2**20


def choose(setting: bool | str, rows: int, columns: int, budget: int) -> tuple[bool, str | None]:
    """(stream?, the note saying why) for ``config.streaming`` and the table's size; no note when the
    in-memory path is taken as usual (auto, and the rows fit)."""
    size = estimate_mb(rows, columns)
    if setting is True:
        return True, f"streaming (config.streaming: true): {rows} rows read in chunks, budget {budget} MB"
    if setting is False or size <= budget:
        return False, None
    return True, (f"streaming (config.streaming: auto): {rows} rows x {columns} columns ~ {size:.0f} MB exceed the "
                  f"memory budget of {budget} MB, so the rows are read in chunks")


@dataclass
class Chunk:
    """One piece of the source: a SQL filter on it, and how many training and validation rows it holds."""

    where: str
    train: int = 0
    val: int = 0


class StreamSource:
    """A table or Parquet glob read in chunks through DuckDB, split by a seeded row hash.

    ``workspace``: a workspace path (a read-only connection is opened for each pass and closed after it,
    so DuckDB's cache is freed and other processes may write between passes) or an open
    :class:`~specml.data.workspace.Workspace` (a cursor of it). ``memory_mb`` caps DuckDB's memory on
    connections opened here.
    """

    def __init__(self, workspace: Any, table: str | None, columns: list[str], *, validation_split: float,
                 seed: int, batch_rows: int, chunk_rows: int | None = None, memory_mb: int = 64,
                 parquet: str | None = None, min_chunks: int = 1) -> None:
        self.workspace, self.columns = workspace, list(dict.fromkeys(columns))
        self.fraction, self.seed = float(validation_split), int(seed)
        self.batch_rows, self.memory_mb = max(int(batch_rows), 1), max(int(memory_mb), 16)
        self.chunk_rows = max(int(chunk_rows or self.batch_rows * 4), 1)
        self.min_chunks = max(int(min_chunks), 1)
        with self._connect() as con:
            if parquet is not None:
                files = sorted(globbing.glob(parquet))
                if not files:
                    raise DataError(f"no Parquet files match '{parquet}'")
                self._from = "read_parquet({files}, file_row_number=true)"
                self._files, self._key = files, "file_row_number"
            else:
                stored = workspace.resolve(table) if hasattr(workspace, "con") else table
                kind = con.execute("SELECT table_type FROM information_schema.tables WHERE table_name = ?",
                                   [stored]).fetchall()
                if not kind:
                    raise DataError(f"table '{table}' is not in the workspace")
                if kind[0][0] != "BASE TABLE":
                    raise DataError(f"'{table}' is a view: streaming reads a stored table (create one with "
                                    "specml sql, or set config.streaming: false)")
                self._from, self._files, self._key = quote_ident(stored), None, "rowid"
            self.schema = self._schema(con)
            self.chunks = self._count(con)
        self.train_rows = sum(c.train for c in self.chunks)
        self.val_rows = sum(c.val for c in self.chunks)

    # -- connections --------------------------------------------------------------------------------

    def _connect(self) -> duckdb.DuckDBPyConnection:
        ws = self.workspace
        if hasattr(ws, "con"):
            return ws.con.cursor()
        path = getattr(ws, "path", ws)
        if path is None:
            from specml.data.workspace import Workspace

            path = Workspace(None, read_only=True).path
        if str(path) == ":memory:":  # Parquet files are read through an in-memory database
            con = duckdb.connect(":memory:")
        else:  # the default configuration: a read-only Workspace of this process may share the database
            con = duckdb.connect(str(path), read_only=True)
        # one thread: less memory pinned per query (two threads ran out of a 15 MB limit on 37k-row ranges)
        con.execute(f"SET memory_limit = '{self.memory_mb}MB'")
        con.execute("SET threads = 1")
        return con

    def _relation(self, file: str | None = None) -> str:
        if self._files is None:
            return self._from
        names = [file] if file is not None else self._files
        return self._from.format(files="[" + ", ".join("'" + f.replace("'", "''") + "'" for f in names) + "]")

    def _is_val(self) -> str:
        cut = round(self.fraction * HASH_BUCKETS)
        return f"(hash({self._key} + {self.seed}) % {HASH_BUCKETS} < {cut})"

    def _schema(self, con) -> pa.Schema:
        cols = ", ".join(quote_ident(c) for c in self.columns)
        try:
            return con.sql(f"SELECT {cols} FROM {self._relation()} LIMIT 0").arrow().read_all().schema
        except duckdb.Error as err:
            raise DataError(f"reading {self._relation()}: {str(err).splitlines()[0]}") from None

    def _count(self, con) -> list[Chunk]:
        """The chunks and their training / validation rows (one aggregate query; no rows are read out)."""
        chunks = []
        if self._files is None:
            # a table of few rows still has min_chunks chunks (every DDP rank gets some)
            total = con.execute(f"SELECT max({self._key}) + 1 FROM {self._relation()}").fetchall()[0][0] or 0
            self.chunk_rows = max(min(self.chunk_rows, -(-int(total) // self.min_chunks)), 1)
            rows = con.execute(f"SELECT {self._key} // {self.chunk_rows} AS c, {self._is_val()} AS v, count(*) "
                               f"FROM {self._relation()} GROUP BY ALL ORDER BY ALL").fetchall()
            by = {}
            for c, v, n in rows:
                by.setdefault(c, Chunk(f"rowid >= {c * self.chunk_rows} AND rowid < {(c + 1) * self.chunk_rows}"))
                setattr(by[c], "val" if v else "train", int(n))
            chunks = [by[c] for c in sorted(by)]
        else:
            for f in self._files:
                rows = con.execute(f"SELECT {self._is_val()} AS v, count(*) FROM {self._relation(f)} "
                                   "GROUP BY ALL").fetchall()
                chunk = Chunk(f)
                for v, n in rows:
                    setattr(chunk, "val" if v else "train", int(n))
                chunks.append(chunk)
        return chunks

    # -- reading ------------------------------------------------------------------------------------

    def batches(self, chunks: list[int], part: str) -> Iterator[pa.Table]:
        """The ``part`` rows (train or val) of those chunks, in that order, as tables of at most
        ``batch_rows`` rows (a record batch each: never a whole chunk at once)."""
        cols = ", ".join(quote_ident(c) for c in self.columns)
        keep = self._is_val() if part == "val" else f"NOT {self._is_val()}"
        con = self._connect()  # closed after the pass: the workspace is free between passes
        try:
            for i in chunks:
                chunk = self.chunks[i]
                if (chunk.val if part == "val" else chunk.train) == 0:
                    continue
                if self._files is None:
                    query = f"SELECT {cols} FROM {self._relation()} WHERE {chunk.where} AND {keep}"
                else:
                    query = f"SELECT {cols} FROM {self._relation(chunk.where)} WHERE {keep}"
                reader = con.sql(query).to_arrow_reader(self.batch_rows)
                for batch in reader:
                    if batch.num_rows:
                        yield pa.Table.from_batches([batch])
        finally:
            con.close()

    def column_sample(self, column: str, limit: int = _INFER_DISTINCT) -> pa.Table:
        """Up to ``limit`` distinct values of a column of the training rows (what inferring a loss reads)."""
        with self._connect() as con:
            return con.sql(f"SELECT DISTINCT {quote_ident(column)} FROM {self._relation()} "
                           f"WHERE NOT {self._is_val()} LIMIT {limit}").arrow().read_all()


# ----------------------------------------------------------------------------------------------
# fitting in one pass


class _Moments:
    """Count, mean and sum of squared deviations per column, merged batch by batch (Chan et al.)."""

    def __init__(self, width: int) -> None:
        self.n = np.zeros(width)
        self.mean = np.zeros(width)
        self.m2 = np.zeros(width)
        self.lo = np.full(width, np.inf)
        self.hi = np.full(width, -np.inf)

    def add(self, matrix: np.ndarray, finite_only: bool = True) -> None:
        x = matrix.astype(np.float64)
        if finite_only:
            x = np.where(np.isfinite(x), x, np.nan)
        with np.errstate(over="ignore", invalid="ignore"):
            n = np.sum(~np.isnan(x), axis=0).astype(np.float64)
            if not n.any():
                return
            mean = np.nan_to_num(np.nanmean(x, axis=0)) if len(x) else np.zeros(x.shape[1])
            m2 = np.nan_to_num(np.nansum((x - mean) ** 2, axis=0))
            total = self.n + n
            delta = mean - self.mean
            share = np.divide(n, total, out=np.zeros_like(n), where=total > 0)
            self.mean = self.mean + delta * share
            self.m2 = self.m2 + m2 + delta ** 2 * self.n * share
            self.n = total
            self.lo = np.fmin(self.lo, np.nanmin(x, axis=0, initial=np.inf))
            self.hi = np.fmax(self.hi, np.nanmax(x, axis=0, initial=-np.inf))

    def standard(self) -> tuple[list[float], list[float]]:
        std = np.sqrt(np.divide(self.m2, self.n, out=np.zeros_like(self.m2), where=self.n > 0))
        std = np.nan_to_num(std)
        return np.nan_to_num(self.mean).tolist(), np.where(std > 0, std, 1.0).tolist()

    def minmax(self) -> tuple[list[float], list[float]]:
        lo = np.where(np.isfinite(self.lo), self.lo, 0.0)
        hi = np.where(np.isfinite(self.hi), self.hi, 0.0)
        return lo.tolist(), np.where(hi > lo, hi - lo, 1.0).tolist()


def _sorted(values: set) -> list:
    return sorted(values, key=lambda v: (str(type(v)), v))


def _distinct(column: pa.ChunkedArray) -> set:
    return set(pc.unique(pc.drop_null(column)).to_pylist())


def refuse_unstreamable(spec: ModelSpec, schema: pa.Schema, losses: list[LossSpec]) -> None:
    """What streaming cannot fit in one pass, as a one-line error naming the field."""
    for name, inp in spec.inputs.items():
        if inp.normalize not in STREAMED_NORMALIZE:
            raise DataError(f"inputs.{name}.normalize: '{inp.normalize}' needs quantiles of the whole column, which "
                            f"streaming does not compute ({', '.join(STREAMED_NORMALIZE)} stream); set "
                            "config.streaming: false or use standard/minmax")
        for col in inp.columns or []:
            if col in schema.names and T._is_list(schema.field(col).type):
                raise DataError(f"inputs.{name}: column '{col}' holds lists; streaming reads scalar columns only "
                                "(set config.streaming: false)")
    for loss in losses:
        for col in loss.inputs.target_columns if loss.inputs.target is not None else []:
            if col in schema.names and T._is_list(schema.field(col).type):
                raise DataError(f"target column '{col}' holds token sequences; streaming reads scalar columns only "
                                "(set config.streaming: false)")


def fit(spec: ModelSpec, source: StreamSource, losses: list[LossSpec]) -> T.Preprocessor:
    """The :class:`Preprocessor` :func:`specml.data.tensors.fit` learns, from one pass over the training rows."""
    if source.train_rows == 0:
        raise DataError("the table has no training rows")
    refuse_unstreamable(spec, source.schema, losses)
    prep = T.Preprocessor()
    moments: dict[str, _Moments] = {}
    vocabs: dict[str, set] = {}
    for name, inp in spec.inputs.items():
        columns = list(inp.columns or [])
        if not columns:
            raise DataError(f"input '{name}' has no columns: it cannot be read from a table")
        if len(columns) == 1 and len(inp.shape) == 2 and inp.shape[1] not in (None, 1):
            first = source.schema.field(columns[0]).type
            raise DataError(f"input '{name}' has shape {list(inp.shape)} and one column '{columns[0]}' of type "
                            f"{first}: a [null, L] input reads a list column (e.g. INTEGER[]) or L columns")
        prep.inputs[name] = T.InputState(columns, inp.dtype, len(inp.shape) == 1, inp.categorical,
                                         normalize=inp.normalize, pad_id=inp.pad_id)
        if inp.categorical:
            vocabs[name] = set()
        elif inp.normalize != "none" or inp.dtype not in INTEGER_DTYPES:
            moments[name] = _Moments(len(columns))
    targets = [lo for lo in losses if lo.inputs.target is not None]
    target_moments = {i: _Moments(len(lo.inputs.target_columns)) for i, lo in enumerate(targets)
                      if T.task_of(lo.type) == "regression"}
    classes: dict[int, set] = {i: set() for i, lo in enumerate(targets) if i not in target_moments}

    for table in source.batches(list(range(len(source.chunks))), "train"):
        for name, state in prep.inputs.items():
            if name in vocabs:
                arrays = [table.column(c).combine_chunks() for c in state.columns]
                vocabs[name] |= _distinct(pa.chunked_array([a.cast(arrays[0].type) for a in arrays]))
            elif name in moments:
                moments[name].add(np.column_stack([T._numeric(table.column(c), c, f"input '{name}'")
                                                   for c in state.columns]))
        for i, lo in enumerate(targets):
            cols = lo.inputs.target_columns
            for col in cols:
                if table.column(col).null_count:
                    raise DataError(f"target column '{col}' has NULL value(s) in the training rows")
            if i in target_moments:
                target_moments[i].add(np.column_stack([T._numeric(table.column(c), c, "the target") for c in cols]),
                                      finite_only=False)
            else:
                classes[i] |= _distinct(table.column(cols[0]))

    for name, state in prep.inputs.items():
        inp = spec.inputs[name]
        if name in vocabs:
            state.vocab = _sorted(vocabs[name])
            if inp.vocab_size is not None and inp.vocab_size < len(state.vocab) + 1:
                raise DataError(f"input '{name}': vocab_size is {inp.vocab_size}, but the training rows hold "
                                f"{len(state.vocab)} distinct values (+1 for unknown); raise vocab_size or remove it")
        elif name in moments and state.normalize == "standard":
            state.center, state.scale = moments[name].standard()
        elif name in moments and state.normalize == "minmax":
            state.center, state.scale = moments[name].minmax()
    outputs = list(spec.outputs)
    for i, lo in enumerate(targets):
        state = _target_state(lo, target_moments.get(i), classes.get(i))
        state.output = lo.inputs.input or outputs[0]
        state.name = lo.name or state.output
        state.weight = lo.weight
        prep.targets[state.name] = state
    return prep


def _target_state(loss: LossSpec, moments: _Moments | None, values: set | None) -> T.TargetState:
    task = T.task_of(loss.type)
    state = T.TargetState(loss.inputs.target, task, logits=T.reads_logits(loss.type))
    if task == "regression":
        if loss.target_normalize == "standard":
            state.normalize = "standard"
            state.center, state.scale = moments.standard()
        return state
    state.classes = T.checked_classes(loss, task, loss.inputs.target_columns, _sorted(values))
    return state


def parquet_source(pattern: str | Path, columns: list[str], **kwargs: Any) -> StreamSource:
    """A :class:`StreamSource` over the Parquet files matching a glob (an in-memory DuckDB reads them)."""
    return StreamSource(":memory:", None, columns, parquet=str(pattern), **kwargs)
