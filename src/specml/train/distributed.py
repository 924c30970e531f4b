"""torch DDP plumbing for the engine: the process group, and the few collectives the loop needs.

Started by torchrun (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``/``MASTER_PORT`` in the
environment). gloo on CPU, nccl on CUDA unless the trainer spec's ``backend`` says otherwise. With one
process every helper here is a no-op, so the engine calls them unconditionally.
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

from specml.train.errors import TrainingError


def launched() -> bool:
    """True when this process is one of several started by torchrun (which also sets MASTER_ADDR)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and "MASTER_ADDR" in os.environ


def placement() -> tuple[int, int]:
    """(rank, world size) as torchrun set them; (0, 1) in a plain process."""
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def restarted() -> bool:
    """True in workers torchrun restarted after a failure (``--max-restarts``)."""
    return int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")) > 0


def active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if active() else int(os.environ.get("RANK", "0"))


def setup(device: torch.device, backend: str | None = None) -> bool:
    """Join torchrun's process group (once); True when this call created it. A no-op in one process."""
    if not launched() or (dist.is_available() and dist.is_initialized()):
        return False
    if not dist.is_available():
        raise TrainingError("torch.distributed is not available in this torch build: train in one process")
    chosen = backend or ("nccl" if device.type == "cuda" else "gloo")
    if chosen == "nccl" and device.type != "cuda":
        raise TrainingError(f"config.backend: nccl needs CUDA devices, but this run trains on {device.type}; "
                            "use backend: gloo (or leave it unset)")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    timeout = timedelta(minutes=float(os.environ.get("SPECML_DIST_TIMEOUT_MIN", "30")))
    rank_, world = placement()
    dist.init_process_group(chosen, store=_store(rank_, world, timeout), rank=rank_, world_size=world,
                            timeout=timeout)
    return True


def _store(rank_: int, world: int, timeout: timedelta) -> dist.Store:
    """torchrun's store, under a prefix of its own per restart: a restarted group never reads the keys
    (the gloo addresses) its dead predecessor left in a store that outlived it."""
    host, port = os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"])
    agent = os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True"  # torchrun's agent hosts the store
    store = dist.TCPStore(host, port, world, is_master=not agent and rank_ == 0, timeout=timeout,
                          multi_tenant=not agent)
    return dist.PrefixStore(f"specml/attempt_{os.environ.get('TORCHELASTIC_RESTART_COUNT', '0')}", store)


def teardown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    if active():
        dist.barrier()


def broadcast(obj: Any, src: int = 0) -> Any:
    """``obj`` as rank ``src`` has it (any picklable object)."""
    if not active():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def all_true(flag: bool, device: torch.device) -> bool:
    """True only when ``flag`` is true on every rank (one all-reduce)."""
    if not active():
        return flag
    t = torch.tensor([1 if flag else 0], dtype=torch.int32, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MIN)
    return bool(t.item())


def gather(obj: Any) -> list[Any]:
    """Every rank's ``obj``, in rank order, on every rank."""
    if not active():
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def _cat(parts: list[Any]) -> Any:
    first = parts[0]
    if isinstance(first, torch.Tensor):
        return torch.cat([p.reshape(1) if p.dim() == 0 else p for p in parts])
    if isinstance(first, dict):
        return {k: _cat([p[k] for p in parts]) for k in first}
    return first


class GatheredMeter:
    """A metric meter across ranks: each rank keeps its batches' (loss, rows, outputs, targets); at
    :meth:`compute` they are gathered and fed, as one batch, to a fresh meter of the same kind, so AUC and
    friends see every score (never an average of per-rank values) and every rank gets the same numbers.

    ``make`` builds the wrapped meter (engine meter interface: reset, update, compute, loss_sum_tensor).
    """

    def __init__(self, make: Any) -> None:
        self._make = make
        self._local = make()
        self.reset()

    def reset(self) -> None:
        self._local.reset()
        self._parts: list[tuple[float, int, Any, Any, dict]] = []

    def loss_sum_tensor(self) -> torch.Tensor:
        return self._local.loss_sum_tensor()

    def update(self, loss: torch.Tensor, output: Any, target: Any) -> None:
        self._local.update(loss, output, target)  # the running loss (progress, NaN checks)
        rows = _rows(target, output)
        heads = getattr(self._local, "heads", None)
        per_head = {k: v.detach() for k, v in heads.last.items()} if heads is not None else {}
        self._parts.append((loss.detach(), rows, _detach(output), _detach(target), per_head))

    def compute(self) -> dict[str, float]:
        local = [(float(lo), n, _cpu(o), _cpu(t), {k: float(v) for k, v in h.items()})
                 for lo, n, o, t, h in self._parts if n > 0]
        parts = [p for rank_parts in gather(local) for p in rank_parts]
        meter = self._make()
        meter.reset()
        if not parts:
            return meter.compute()
        rows = sum(p[1] for p in parts)
        loss = torch.tensor(sum(p[0] * p[1] for p in parts) / rows, dtype=torch.float64)
        heads = getattr(meter, "heads", None)
        if heads is not None:
            heads.last = {k: torch.tensor(sum(p[4].get(k, 0.0) * p[1] for p in parts) / rows)
                          for k in parts[0][4]}
        device = getattr(meter, "device", torch.device("cpu"))
        meter.update(loss.to(device), _to(_cat([p[2] for p in parts]), device), _to(_cat([p[3] for p in parts]),
                                                                                      device))
        return meter.compute()


def _rows(target: Any, output: Any) -> int:
    x = target if target is not None else output
    if isinstance(x, dict):
        x = next(iter(x.values()))
    return int(x.shape[0]) if isinstance(x, torch.Tensor) and x.dim() else 1


def _detach(x: Any) -> Any:
    if isinstance(x, torch.Tensor):
        return x.detach()
    if isinstance(x, dict):
        return {k: _detach(v) for k, v in x.items()}
    return x


def _cpu(x: Any) -> Any:
    if isinstance(x, torch.Tensor):
        return x.cpu()
    if isinstance(x, dict):
        return {k: _cpu(v) for k, v in x.items()}
    return x


def _to(x: Any, device: torch.device) -> Any:
    if isinstance(x, torch.Tensor):
        return x.to(device)
    if isinstance(x, dict):
        return {k: _to(v, device) for k, v in x.items()}
    return x
