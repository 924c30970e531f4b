"""Training throughput: specml's engine vs a hand-written loop vs DataLoader(TensorDataset).

The same MLP (8-64-32-1, BCE-with-logits, Adam lr 1e-3) on synthetic rows, in one process, the three
contenders interleaved round by round so drift in machine load hits them alike, 1 thread by default.
Each round trains one epoch per contender from the same initial weights. Prints samples/s (best
of the rounds: the least disturbed by other load) and the ratios specml / hand-written and specml / DataLoader.

    .venv/bin/python bench/train_throughput.py [--rows 2000000] [--batch-sizes 256 1024] [--rounds 3]
"""

from __future__ import annotations

import argparse
import copy
import time
import warnings

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from specml.train.engine import TensorBatches, Trainer


def make_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 64), nn.ReLU(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 1))


def hand_written(model: nn.Module, X: torch.Tensor, y: torch.Tensor, batch_size: int) -> None:
    """The 15-line loop people write: permute an index, slice, step."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.BCEWithLogitsLoss()
    gen = torch.Generator().manual_seed(0)
    perm = torch.randperm(len(X), generator=gen)
    model.train()
    for i in range(0, len(X), batch_size):
        idx = perm[i:i + batch_size]
        xb, yb = X[idx], y[idx]
        loss = loss_fn(model(xb), yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()


def data_loader(model: nn.Module, X: torch.Tensor, y: torch.Tensor, batch_size: int) -> None:
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.BCEWithLogitsLoss()
    loader = DataLoader(TensorDataset(X, y), batch_size=batch_size, shuffle=True,
                        generator=torch.Generator().manual_seed(0))
    model.train()
    for xb, yb in loader:
        loss = loss_fn(model(xb), yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()


class _Wrapped(nn.Module):
    """specml feeds dict inputs (one entry per spec input) and reads a named output."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"logits": self.net(features)}


def specml_engine(model: nn.Module, X: torch.Tensor, y: torch.Tensor, batch_size: int) -> None:
    wrapped = _Wrapped(model)
    batches = TensorBatches({"features": X}, y, batch_size, shuffle=True, seed=0)
    trainer = Trainer(wrapped, batches, None, device="cpu", output_key="logits", task="binary",
                      metrics=["accuracy"], monitor="train_loss", scheduler_monitor="train_loss",
                      log_interval=50, verbose=False)
    trainer.train(1, torch.optim.Adam(wrapped.parameters(), lr=1e-3), nn.BCEWithLogitsLoss(), save_best=False)


CONTENDERS = {"hand-written": hand_written, "DataLoader": data_loader, "specml": specml_engine}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[256, 1024])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore")

    gen = torch.Generator().manual_seed(1)
    X = torch.randn(args.rows, 8, generator=gen)
    y = ((X[:, :4].sum(1) + 0.5 * torch.randn(args.rows, generator=gen)) > 0).float().unsqueeze(1)
    base = make_model()
    print(f"{args.rows:,} rows, MLP 8-64-32-1, Adam, {args.threads} thread(s), {args.rounds} rounds (best round)")
    print(f"{'batch':>6}{'hand-written':>16}{'DataLoader':>14}{'specml':>12}{'specml/hand':>13}{'specml/DL':>11}")
    for bs in args.batch_sizes:
        rates: dict[str, list[float]] = {k: [] for k in CONTENDERS}
        for _ in range(args.rounds):
            for name, fn in CONTENDERS.items():
                model = copy.deepcopy(base)
                start = time.perf_counter()
                fn(model, X, y, bs)
                rates[name].append(args.rows / (time.perf_counter() - start))
        med = {k: max(v) for k, v in rates.items()}  # the best round: least disturbed by other load
        print(f"{bs:>6}{med['hand-written']:>16,.0f}{med['DataLoader']:>14,.0f}{med['specml']:>12,.0f}"
              f"{med['specml'] / med['hand-written']:>13.2f}{med['specml'] / med['DataLoader']:>11.2f}")


if __name__ == "__main__":
    main()
