"""The cost of building from a spec: SpecModel vs the same network written by hand, side by side.

Forward+backward steps per second for the Pima MLP (examples/pima_mlp/model.yaml) and the residual
MLP (examples/residual_mlp/model.yaml), at a small and a large batch, against a hand-written
``nn.Module`` with identical layers (weights copied, outputs checked equal first). Prints ratios;
a ratio near 1.00 means the plan walk in ``Graph.run`` costs nothing measurable.

    .venv/bin/python bench/bench_forward.py [--threads 1] [--seconds 1.5]
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import torch
from torch import nn

from specml.graph import build_model
from specml.spec import load_model_spec

ROOT = Path(__file__).resolve().parents[1]


class HandPima(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.hidden1 = nn.Linear(8, 64)
        self.relu1 = nn.ReLU()
        self.dropout1 = nn.Dropout(0.2)
        self.hidden2 = nn.Linear(64, 32)
        self.classifier = nn.Linear(32, 1)

    def forward(self, patient_data: torch.Tensor) -> dict[str, torch.Tensor]:
        h = self.dropout1(self.relu1(self.hidden1(patient_data)))
        logits = self.classifier(nn.functional.relu(self.hidden2(h)))
        return {"logits": logits, "prediction": torch.sigmoid(logits)}


class HandBlock(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(64)
        self.fc = nn.Linear(64, 64)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + nn.functional.gelu(self.fc(self.norm(x)))


class HandResidual(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Linear(8, 64)
        self.blocks = nn.ModuleList([HandBlock() for _ in range(3)])
        self.head = nn.Linear(64, 1)

    def forward(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        x = self.stem(features)
        for block in self.blocks:
            x = block(x)
        return {"logits": self.head(x)}


def _copy_weights(spec_model: nn.Module, hand: nn.Module) -> None:
    src = [p for p in spec_model.parameters()]
    dst = [p for p in hand.parameters()]
    assert [p.shape for p in src] == [p.shape for p in dst], "layer order differs"
    with torch.no_grad():
        for s, d in zip(src, dst):
            d.copy_(s)


def _steps_per_second(model: nn.Module, batch: dict, seconds: float) -> float:
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    key = next(iter(model(**batch)))

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        model(**batch)[key].float().mean().backward()
        opt.step()

    for _ in range(20):
        step()
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(50):
            step()
        n += 50
    return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=1.5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore")

    cases = [("pima_mlp", HandPima), ("residual_mlp", HandResidual)]
    print(f"{'model':<14}{'batch':>7}{'specml steps/s':>16}{'hand steps/s':>14}{'ratio':>8}")
    for name, hand_cls in cases:
        spec = load_model_spec(ROOT / "examples" / name / "model.yaml")
        for batch_size in (32, 4096):
            spec_model, hand = build_model(spec), hand_cls()
            _copy_weights(spec_model, hand)
            torch.manual_seed(0)
            batch = spec_model.example_inputs(batch_size=batch_size)
            spec_model.eval(), hand.eval()
            with torch.no_grad():
                a, b = spec_model(**batch), hand(**batch)
                assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a), "outputs differ"
            spec_model.train(), hand.train()
            # alternate the two to share any drift in machine load
            s1 = _steps_per_second(spec_model, batch, args.seconds / 2)
            h1 = _steps_per_second(hand, batch, args.seconds / 2)
            s2 = _steps_per_second(spec_model, batch, args.seconds / 2)
            h2 = _steps_per_second(hand, batch, args.seconds / 2)
            spec_rate, hand_rate = (s1 + s2) / 2, (h1 + h2) / 2
            print(f"{name:<14}{batch_size:>7}{spec_rate:>16,.0f}{hand_rate:>14,.0f}{spec_rate / hand_rate:>8.2f}")


if __name__ == "__main__":
    main()
