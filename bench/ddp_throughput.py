"""Training samples/s of the engine in 1 process and under torchrun with 2 processes (gloo, CPU).

The same MLP (8-64-32-1, BCE-with-logits, Adam) on synthetic rows; the global batch is the same in
both (split across the ranks). Each process uses one thread. The best epoch of ``--epochs`` counts.

    .venv/bin/python bench/ddp_throughput.py --rows 200000 --batch 1024 --epochs 3
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

ROWS_DEFAULT, BATCH_DEFAULT, EPOCHS_DEFAULT = 200_000, 1024, 3


def worker(rows: int, batch: int, epochs: int) -> None:
    """One rank (or the single process): train, print {'samples_per_s': ...} from rank 0."""
    import torch
    from torch import nn

    from specml.train import distributed
    from specml.train.engine import TensorBatches, Trainer

    torch.set_num_threads(1)
    rank, world = distributed.placement()
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(rows, 8, generator=gen)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).float()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 64), nn.ReLU(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 1))

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = model

        def forward(self, x):
            return self.body(x).squeeze(-1)

    batches = TensorBatches({"x": x}, y, batch, shuffle=True, seed=0, rank=rank, world_size=world)
    trainer = Trainer(Net(), batches, None, device="cpu", verbose=False, task="binary", log_interval=50,
                      monitor="train_loss")
    times: list[float] = []

    class Clock:
        def on_epoch_start(self, t, **_):
            self.started = time.perf_counter()

        def on_epoch_end(self, t, **_):
            times.append(time.perf_counter() - self.started)

    trainer.callbacks.append(Clock())
    trainer.train(epochs, torch.optim.Adam(trainer.model.parameters(), 1e-3), nn.BCEWithLogitsLoss())
    if rank == 0:
        print(json.dumps({"world": world, "samples_per_s": rows / min(times), "epoch_s": times}), flush=True)
    distributed.teardown()


def run(nproc: int, rows: int, batch: int, epochs: int) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    me = [os.path.abspath(__file__), "--worker", "--rows", str(rows), "--batch", str(batch), "--epochs", str(epochs)]
    if nproc == 1:
        cmd = [sys.executable, *me]
    else:
        from specml.cli.launch import Launch

        cmd = [sys.executable, "-m", "torch.distributed.run", *Launch(nproc).torchrun_args(), *me]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    return json.loads(next(line for line in out.splitlines() if line.startswith("{")))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=ROWS_DEFAULT)
    parser.add_argument("--batch", type=int, default=BATCH_DEFAULT)
    parser.add_argument("--epochs", type=int, default=EPOCHS_DEFAULT)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.rows, args.batch, args.epochs)
        return
    one = run(1, args.rows, args.batch, args.epochs)
    two = run(2, args.rows, args.batch, args.epochs)
    print(f"rows {args.rows}, global batch {args.batch}, best of {args.epochs} epochs, cores {os.cpu_count()}")
    print("| processes | samples/s | vs 1 process |\n|---|---|---|")
    for r in (one, two):
        print(f"| {r['world']} | {r['samples_per_s']:,.0f} | {r['samples_per_s'] / one['samples_per_s']:.2f} |")


if __name__ == "__main__":
    main()
