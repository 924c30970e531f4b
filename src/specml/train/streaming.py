"""Training on a streamed table: the choice, the :class:`Prepared` run and the batches.

:func:`plan` decides from DuckDB's row count, before any row is read, whether a training streams
(``config.streaming``, ``config.memory_budget_mb``). :func:`prepare_streaming` is
:func:`specml.train.prepare.prepare` for a :class:`~specml.data.stream.StreamSource`: preprocessing
fitted in one pass, the same model, heads and loss, and :class:`StreamBatches` in place of
:class:`~specml.train.engine.TensorBatches` (same interface: ``len``, iteration, ``set_epoch``, ``to``,
ranks). Memory: one shuffle buffer of transformed rows plus one Arrow record batch and DuckDB's capped
cache, all sized from the budget.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import torch

from specml.data import stream
from specml.graph import build_model
from specml.train import distributed
from specml.train.engine import TensorBatches, seed_everything
from specml.train.errors import TrainingError
from specml.train.prepare import Prepared, _heads, _with_loss
from specml.train.tasks import Heads

#: said in the run's notes of every streamed training
SPLIT_NOTE = ("streaming: the validation rows are chosen by a seeded hash of each row's id (the same every epoch "
              "and on every rank), not stratified by class")


def plan(ws: Any, table: str, columns: list[str], cfg, *, owned: bool = False) -> tuple[bool, str | None]:
    """(stream?, the note saying why) from the table's row count and the columns a training reads. When it
    streams and ``owned`` (a workspace opened for this training), DuckDB's cache is capped for the rest of
    that visit (the fingerprint's scan) as it is on the streaming connections."""
    if cfg.streaming is False:
        return False, None
    budget = stream.budget_mb(cfg.memory_budget_mb)
    streamed, note = stream.choose(cfg.streaming, ws.row_count(table), len(columns), budget)
    if streamed and owned:
        ws.con.execute(f"SET memory_limit = '{max(budget // 4, 16)}MB'")
    return streamed, note


def open_source(workspace: Any, table: str, columns: list[str], cfg, *, parquet: str | None = None
                ) -> stream.StreamSource:
    """The table's :class:`StreamSource`: record batches (~1/32 of the budget) and DuckDB's cache (~1/4)
    sized from the budget; chunks of one DuckDB row group (at least 4 per rank under DDP)."""
    batch_rows, _, memory_mb = _sizes(cfg, len(columns))
    world = distributed.placement()[1]
    return stream.StreamSource(workspace, table, columns, validation_split=cfg.validation_split,
                               seed=cfg.seed if cfg.seed is not None else 0, batch_rows=batch_rows,
                               chunk_rows=stream.ROW_GROUP_ROWS, memory_mb=memory_mb, parquet=parquet,
                               min_chunks=1 if world == 1 else 4 * world)


def _budget_bytes(cfg) -> int:
    return stream.budget_mb(cfg.memory_budget_mb) * 2**20


def _sizes(cfg, width: int) -> tuple[int, int, int]:
    """(rows per record batch, rows of the shuffle buffer, DuckDB's memory limit in MB) for the budget: about
    1/32, 1/8 and 1/4 of it (measured: a table 3x a 60 MB budget trains with the process growing ~35 MB)."""
    budget = _budget_bytes(cfg)
    row_bytes = max(width, 1) * 8
    batch_rows = int(np.clip(budget // 32 // row_bytes, 256, 1 << 16))
    buffer_rows = int(np.clip(budget // 8 // (row_bytes * 2), batch_rows, 1 << 20))
    return batch_rows, buffer_rows, max(budget // 4 // 2**20, 16)


def prepare_streaming(model_spec, trainer, source: stream.StreamSource, target: str | None) -> Prepared:
    """:func:`specml.train.prepare.prepare` over a streamed source (no class weights, no oversampling:
    they are refused with the setting's name)."""
    cfg = trainer.config
    for path, on in (("config.class_weights", cfg.class_weights is not None), ("config.oversample", cfg.oversample)):
        if on:
            raise TrainingError(f"{path}: not available when the table is streamed; set config.streaming: false "
                                "(or leave the imbalance to the loss)")
    sample = source.column_sample(target) if not model_spec.losses and target else None
    model_spec, losses, notes = _with_loss(model_spec, trainer, sample, target)
    split_seed = cfg.seed if cfg.seed is not None else 0
    prep = stream.fit(model_spec, source, losses)
    notes += [*prep.notes, SPLIT_NOTE]

    if cfg.seed is not None:
        seed_everything(cfg.seed)
    model = build_model(model_spec, vocab_sizes=prep.vocab_sizes())
    heads = _heads(prep, losses, cfg.metrics)
    simple = len(heads) == 1 and heads[0].task != "sequence" and heads[0].center is None
    task = "multitask" if len(heads) > 1 else heads[0].task
    criterion = heads[0].criterion if simple else Heads(heads)
    output_key = (losses[0].inputs.input or next(iter(model_spec.outputs))) if simple else None

    rank, world = distributed.placement()
    batch = cfg.batch_size * world if cfg.batch_size_per_device else cfg.batch_size
    if world > 1 and batch < world:
        raise TrainingError(f"config.batch_size: {cfg.batch_size} rows cannot be split across {world} processes; "
                            f"use batch_size >= {world} or batch_size_per_device: true")
    buffer = _sizes(cfg, len(source.columns))[1]
    train_batches = StreamBatches(source, prep, "train", batch, shuffle=cfg.shuffle, seed=split_seed,
                                  buffer_rows=buffer, rank=rank, world_size=world)
    val_batches = (StreamBatches(source, prep, "val", max(batch, 1024), shuffle=False, buffer_rows=buffer,
                                 rank=rank, world_size=world) if source.val_rows else None)
    if val_batches is not None and source.val_rows * len(source.columns) * 8 <= _budget_bytes(cfg) // 4:
        val_batches = val_batches.in_memory()  # read once instead of a pass over the table every epoch
    return Prepared(model_spec, model, prep, heads, criterion, task, simple, output_key,
                    range(source.train_rows), range(source.val_rows), train_batches, val_batches, split_seed,
                    notes, losses)


class StreamBatches:
    """Batches of a streamed part (``train`` or ``val``), with :class:`TensorBatches`' interface.

    Each epoch the chunks are shuffled (seeded with ``(seed, epoch)``, the same order on every rank) and
    chunk ``i`` of that order goes to rank ``i % world_size``; within a rank, rows pass through a shuffle
    buffer of ``buffer_rows`` rows. ``batch_size`` is the global batch: each rank takes ``batch_size //
    world_size`` rows per step, and every rank stops after the same number of steps (the fewest any rank
    has this epoch), so with several ranks an epoch may leave out up to a batch of rows per rank. Validation
    reads every row: each rank its own chunks, the metrics gathered across ranks by the engine.
    """

    def __init__(self, source: stream.StreamSource, prep, part: str, batch_size: int, *, shuffle: bool = False,
                 seed: int = 0, buffer_rows: int | None = None, rank: int = 0, world_size: int = 1) -> None:
        self.source, self.prep, self.part = source, prep, part
        self.batch_size, self.shuffle, self.seed = batch_size, shuffle, seed
        self.rank, self.world_size, self.epoch = rank, world_size, 0
        self.local_batch = max(batch_size // world_size, 1)
        self.buffer_rows = max(int(buffer_rows or source.chunk_rows), self.local_batch)
        self.inputs: dict[str, torch.Tensor] = {}  # nothing is held: place_data() finds nothing to move or pin
        self.target = None

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")

    @property
    def rows(self) -> int:
        return self.source.val_rows if self.part == "val" else self.source.train_rows

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def to(self, device: torch.device, non_blocking: bool = False) -> StreamBatches:
        """Nothing to move: the engine moves each batch as it comes."""
        return self

    def in_memory(self) -> TensorBatches | StreamBatches:
        """This rank's rows, read once into :class:`TensorBatches` (validation rows that fit the budget);
        itself when this rank has none."""
        parts = list(self)
        if not parts:
            return self
        inputs = {k: torch.cat([p[0][k] for p in parts]) for k in parts[0][0]}
        return TensorBatches(inputs, _cat([p[1] for p in parts]), self.local_batch)

    def _order(self) -> list[int]:
        n = len(self.source.chunks)
        if not self.shuffle:
            return list(range(n))
        return np.random.default_rng([self.seed, self.epoch]).permutation(n).tolist()

    def _rows_of(self, chunks: list[int]) -> int:
        return sum(getattr(self.source.chunks[i], self.part) for i in chunks)

    def __len__(self) -> int:
        order, w, bs = self._order(), self.world_size, self.local_batch
        if self.part == "val":  # validation has no collective per batch: each rank reads all of its rows
            return -(-self._rows_of(order[self.rank::w]) // bs)
        return min(-(-self._rows_of(order[r::w]) // bs) for r in range(w))

    def batch_weights(self) -> list[float]:
        return [1.0] * len(self)

    def __iter__(self) -> Iterator[tuple[dict[str, torch.Tensor], Any]]:
        steps = len(self)
        if steps == 0:
            return
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        mine = self._order()[self.rank::self.world_size]
        pending: list[tuple[dict, Any]] = []
        held, done = 0, 0
        for rows, tensors in _prefetched(lambda: self.source.batches(mine, self.part), self.prep.transform):
            pending.append(tensors)
            held += rows
            if held < self.buffer_rows:
                continue
            inputs, target = _shuffled(pending, gen if self.shuffle else None)
            full = held - held % self.local_batch
            for start in range(0, full, self.local_batch):
                yield _slice(inputs, target, start, start + self.local_batch)
                done += 1
                if done == steps:
                    return
            pending = [_copied(*_slice(inputs, target, full, held))] if held > full else []  # not a view of the buffer
            held -= full
        if held:
            inputs, target = _shuffled(pending, gen if self.shuffle else None)
            for start in range(0, held, self.local_batch):
                yield _slice(inputs, target, start, min(start + self.local_batch, held))
                done += 1
                if done == steps:
                    return


def _prefetched(batches, transform, depth: int = 1) -> Iterator[tuple[int, Any]]:
    """``(rows, transform(table))`` for each table ``batches()`` yields, read and transformed in a thread
    (DuckDB and numpy release the GIL: reading overlaps the training steps); at most ``depth`` wait."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        tables = batches()
        try:
            for table in tables:
                if not put((table.num_rows, transform(table))):
                    return
            put(_END)
        except BaseException as exc:  # noqa: BLE001 - raised again in the consuming thread
            put(exc)
        finally:
            tables.close()

    thread = threading.Thread(target=produce, name="specml-stream", daemon=True)
    thread.start()
    try:
        while (item := q.get()) is not _END:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()


_END = object()


def _copied(inputs: dict, target: Any) -> tuple[dict, Any]:
    return ({k: v.clone() for k, v in inputs.items()},
            None if target is None else {k: v.clone() for k, v in target.items()} if isinstance(target, Mapping)
            else target.clone())


def _cat(parts: list) -> Any:
    first = parts[0]
    if first is None:
        return None
    if isinstance(first, Mapping):
        return {k: torch.cat([p[k] for p in parts]) for k in first}
    return torch.cat(parts)


def _shuffled(pending: list[tuple[dict, Any]], gen: torch.Generator | None) -> tuple[dict, Any]:
    """The buffer's rows as one set of tensors, permuted when ``gen`` is given."""
    inputs = {k: torch.cat([p[0][k] for p in pending]) if len(pending) > 1 else pending[0][0][k]
              for k in pending[0][0]}
    target = _cat([p[1] for p in pending]) if len(pending) > 1 else pending[0][1]
    if gen is None:
        return inputs, target
    n = len(next(iter(inputs.values())))
    idx = torch.randperm(n, generator=gen)
    take = (lambda t: t.index_select(0, idx))  # noqa: E731
    return ({k: take(v) for k, v in inputs.items()},
            None if target is None else {k: take(v) for k, v in target.items()} if isinstance(target, Mapping)
            else take(target))


def _slice(inputs: dict, target: Any, start: int, end: int) -> tuple[dict, Any]:
    sl = slice(start, end)
    return ({k: v[sl] for k, v in inputs.items()},
            None if target is None else {k: v[sl] for k, v in target.items()} if isinstance(target, Mapping)
            else target[sl])
