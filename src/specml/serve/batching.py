"""Micro-batching: concurrent requests for one model scored in one forward pass.

Each request puts its checked table on the model's asyncio queue and awaits a future. One worker per
model takes the first waiting request, then gathers more for up to ``max_wait_ms`` or until
``max_rows`` rows are waiting (it waits only while other requests are on their way: a lone request is
scored at once), concatenates their feature columns, scores them once in a worker thread
(the event loop keeps accepting requests) and hands each request its own slice of the scores.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from specml.serve.models import Served


@dataclass
class _Pending:
    table: pa.Table
    future: asyncio.Future


class _InFlight:
    def __init__(self, batcher: MicroBatcher) -> None:
        self.batcher = batcher

    def __enter__(self) -> None:
        self.batcher.inflight += 1

    def __exit__(self, *_: object) -> None:
        self.batcher.inflight -= 1


class MicroBatcher:
    def __init__(self, served: Served, *, max_rows: int = 4096, max_wait_ms: float = 5.0) -> None:
        self.served, self.max_rows, self.max_wait = served, max_rows, max_wait_ms / 1000.0
        self.queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self.batches = 0  # forward passes so far (the tests and /health read it)
        self.requests = 0
        self.inflight = 0  # requests being read or checked or scored: the ones a batch may wait for
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    def arriving(self):
        """Count a request as on its way from when its body is read until it has its scores."""
        return _InFlight(self)

    async def scores(self, table: pa.Table) -> dict[str, np.ndarray]:
        """This table's scores per task, computed together with whatever else is waiting."""
        self.start()
        future = asyncio.get_running_loop().create_future()
        await self.queue.put(_Pending(table, future))
        return await future

    async def _gather(self) -> list[_Pending]:
        batch = [await self.queue.get()]
        rows = batch[0].table.num_rows
        deadline = time.monotonic() + self.max_wait
        while rows < self.max_rows:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            if self.queue.empty() and self.inflight <= len(batch):
                break  # nobody else is on the way: a lone request does not wait
            try:
                item = await asyncio.wait_for(self.queue.get(), left)
            except TimeoutError:
                break
            batch.append(item)
            rows += item.table.num_rows
        return batch

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._gather()
            features = self.served.features
            try:
                tables = [p.table.select(features) for p in batch]
                joined = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
                result = await loop.run_in_executor(None, self.served.scores, joined)
            except Exception as err:  # noqa: BLE001 - every waiting request learns why
                if len(batch) > 1:  # one bad request must not fail the others: score them one by one
                    await self._one_by_one(batch, loop)
                    continue
                if not batch[0].future.done():
                    batch[0].future.set_exception(err)
                continue
            self.batches += 1
            self.requests += len(batch)
            start = 0
            for p in batch:
                n = p.table.num_rows
                if not p.future.done():
                    p.future.set_result({k: v[start:start + n] for k, v in result.items()})
                start += n

    async def _one_by_one(self, batch: list[_Pending], loop) -> None:
        for p in batch:
            try:
                result = await loop.run_in_executor(None, self.served.scores, p.table.select(self.served.features))
            except Exception as err:  # noqa: BLE001
                if not p.future.done():
                    p.future.set_exception(err)
                continue
            self.batches += 1
            self.requests += 1
            if not p.future.done():
                p.future.set_result(result)
