"""Streaming vs in-memory training throughput on the same table (issue 13, item 5).

Both contenders are ``specml.api.train`` in this process on one generated DuckDB table, the same model and
trainer spec, differing only in ``config.streaming`` (false / true, with ``config.memory_budget_mb``).
Samples/s = training rows x epochs / the epochs' time (the engine's ``epoch_time_s``: reading, transforming,
shuffling, the training steps and the validation pass); the whole call's wall time (with the read or the
one-pass preprocessing fit) is printed beside it. Rounds alternate the order; medians are reported.
**Ratio: streaming samples/s / in-memory samples/s** (target >= 0.8).

    .venv/bin/python bench/stream_throughput.py    # 400k rows x 16 floats (~52 MB), 24 MB budget, 3 epochs x 3 rounds
    .venv/bin/python bench/stream_throughput.py --rows 100000 --rounds 1
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path


def _specs(tmp: Path, cols: int, epochs: int, batch: int) -> tuple[Path, Path]:
    names = [f"x{i}" for i in range(cols)]
    model = tmp / "model.yaml"
    model.write_text(json.dumps({
        "version": 1, "name": "bench-mlp",
        "inputs": {"x": {"dtype": "float32", "shape": [None, cols], "columns": names, "normalize": "standard"}},
        "graph": [{"name": "h", "type": "torch.nn.Linear", "params": {"in_features": cols, "out_features": 64},
                   "inputs": {"input": "x"}},
                  {"name": "r", "type": "torch.nn.ReLU", "inputs": {"input": "h.output"}},
                  {"name": "out", "type": "torch.nn.Linear", "params": {"in_features": 64, "out_features": 1},
                   "inputs": {"input": "r.output"}}],
        "outputs": {"logits": "out.output"},
        "loss": {"type": "torch.nn.MSELoss", "inputs": {"input": "logits", "target": "y"}}}))
    trainer = tmp / "trainer.yaml"
    trainer.write_text(json.dumps({
        "optimizer": {"type": "torch.optim.Adam", "lr": 0.001},
        "config": {"epochs": epochs, "batch_size": batch, "seed": 1, "validation_split": 0.1, "make_plots": False,
                   "tensorboard": False, "save_artifacts": False, "verbose": False}}))
    return model, trainer


def _table(path: Path, rows: int, cols: int) -> None:
    import duckdb

    values = ", ".join(f"(hash(range * {i + 7}) % 100000)::DOUBLE / 1000 AS x{i}" for i in range(cols))
    with duckdb.connect(str(path)) as con:
        con.execute(f"CREATE TABLE t AS SELECT {values}, (hash(range) % 1000)::DOUBLE / 100 AS y FROM range({rows})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=400_000)
    ap.add_argument("--cols", type=int, default=16)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--budget-mb", type=int, default=24, help="streaming's config.memory_budget_mb")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from specml import api

    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        model, trainer = _specs(tmp, args.cols, args.epochs, args.batch)
        _table(tmp / "ws.duckdb", args.rows, args.cols)
        results: dict[str, list[tuple[float, float]]] = {"in-memory": [], "streaming": []}
        for r in range(args.rounds):
            order = ["in-memory", "streaming"] if r % 2 == 0 else ["streaming", "in-memory"]
            for how in order:
                over = [f"trainer.config.streaming={'true' if how == 'streaming' else 'false'}",
                        f"trainer.config.memory_budget_mb={args.budget_mb}"]
                started = time.perf_counter()
                res = api.train(model, trainer, table="t", name=f"{how}-{r}", workspace=tmp / "ws.duckdb",
                                home=tmp / "home", verbose=False, track=False, overrides=over)
                wall = time.perf_counter() - started
                rate = res.rows["train"] * args.epochs / sum(res.history["epoch_time_s"])
                results[how].append((rate, wall))
                print(f"round {r + 1} {how:9s}: {rate:12,.0f} samples/s  (whole call {wall:.2f} s)", flush=True)
        med = {k: (statistics.median(a for a, _ in v), statistics.median(b for _, b in v)) for k, v in results.items()}
        print(f"\n{args.rows:,} rows x {args.cols} floats, {args.epochs} epochs, batch {args.batch}, "
              f"{args.rounds} rounds, {args.threads} thread(s), streaming budget {args.budget_mb} MB")
        print("| contender | samples/s (median) | whole call (median) |")
        print("|---|---|---|")
        for k, (rate, wall) in med.items():
            print(f"| {k} | {rate:,.0f} | {wall:.2f} s |")
        print(f"\n**streaming / in-memory samples/s: {med['streaming'][0] / med['in-memory'][0]:.2f}** (target >= 0.8)")


if __name__ == "__main__":
    main()
