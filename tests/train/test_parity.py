"""Parity (as Lightning Fabric checks it): the engine and a plain torch loop written by hand, on the same
model, data order and seed, end with bitwise-equal weights and optimizer state on CPU.

The hand-written loop is what the engine promises to be: each epoch, the permutation of
``TensorBatches`` (``torch.Generator().manual_seed(seed * 1_000_003 + epoch)``, then ``randperm``), a
forward, the loss (divided by the accumulation count), backward, and every ``accumulate`` batches (and at
the epoch's last) gradient clipping, an optimizer step and ``zero_grad``; the scheduler steps per epoch.
Dropout draws from the global RNG in both, so nothing else in the engine may draw from it.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from specml.train.engine import TensorBatches, Trainer

torch.set_num_threads(1)

SEED, ROWS, BATCH, EPOCHS = 3, 203, 16, 3  # 203 rows: a short last batch


def data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(ROWS, 6, generator=g)
    y = (x[:, :1] * 2 - x[:, 1:2] + 0.1 * torch.randn(ROWS, 1, generator=g))
    return x, y


def model() -> nn.Module:
    torch.manual_seed(SEED)
    return nn.Sequential(nn.Linear(6, 32), nn.ReLU(), nn.Dropout(0.2), nn.Linear(32, 1))


OPTIMIZERS = {
    "sgd": lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, weight_decay=1e-4),
    "adam": lambda p: torch.optim.Adam(p, lr=0.01),
}


def plain_loop(opt_name: str, accumulate: int, clip: float | None) -> tuple[nn.Module, torch.optim.Optimizer]:
    x, y = data()
    net = model()
    optimizer = OPTIMIZERS[opt_name](net.parameters())
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5)
    criterion = nn.MSELoss()
    batches = -(-ROWS // BATCH)
    for epoch in range(1, EPOCHS + 1):
        net.train()
        order = torch.randperm(ROWS, generator=torch.Generator().manual_seed(SEED * 1_000_003 + epoch))
        for i, start in enumerate(range(0, ROWS, BATCH)):
            idx = order[start:start + BATCH]
            loss = criterion(net(x[idx]), y[idx])
            (loss / accumulate if accumulate > 1 else loss).backward()
            if (i + 1) % accumulate == 0 or i + 1 == batches:
                if clip is not None:
                    torch.nn.utils.clip_grad_norm_(net.parameters(), clip)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
        scheduler.step()
    return net, optimizer


def engine(opt_name: str, accumulate: int, clip: float | None) -> tuple[nn.Module, torch.optim.Optimizer]:
    x, y = data()
    net = model()
    optimizer = OPTIMIZERS[opt_name](net.parameters())
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5)

    class Inputs(nn.Module):  # the engine passes a dict of inputs as keyword arguments
        def __init__(self, inner: nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.inner(x)

    trainer = Trainer(Inputs(net), TensorBatches({"x": x}, y, BATCH, shuffle=True, seed=SEED), device="cpu",
                      monitor="train_loss", accumulate_grad_batches=accumulate, gradient_clip_norm=clip,
                      verbose=False)
    trainer.train(EPOCHS, optimizer, nn.MSELoss(), scheduler)
    return net, optimizer


@pytest.mark.parametrize("clip", [None, 0.5])
@pytest.mark.parametrize("accumulate", [1, 3])
@pytest.mark.parametrize("opt_name", sorted(OPTIMIZERS))
def test_engine_and_a_plain_loop_give_bitwise_equal_weights(opt_name, accumulate, clip):
    ours, our_opt = engine(opt_name, accumulate, clip)
    theirs, their_opt = plain_loop(opt_name, accumulate, clip)
    untrained = model()
    assert not torch.equal(ours[0].weight, untrained[0].weight), "the engine did not train"
    for (name, a), (_, b) in zip(ours.state_dict().items(), theirs.state_dict().items(), strict=True):
        assert torch.equal(a, b), f"{name} differs by up to {(a - b).abs().max().item():.3g}"
    ours_state, theirs_state = our_opt.state_dict(), their_opt.state_dict()
    assert ours_state["param_groups"] == theirs_state["param_groups"]
    for i, state in ours_state["state"].items():
        for key, value in state.items():
            assert torch.equal(torch.as_tensor(value), torch.as_tensor(theirs_state["state"][i][key])), (i, key)


@pytest.mark.parametrize("spec", [{"type": "torch.optim.Adam", "lr": 0.01},
                                  {"type": "torch.optim.SGD", "lr": 0.05, "params": {"momentum": 0.9}},
                                  {"type": "torch.optim.AdamW", "lr": 0.01, "params": {"weight_decay": 0.05}},
                                  {"type": "torch.optim.RMSprop", "lr": 0.01}],
                         ids=lambda s: s["type"])
def test_the_spec_built_optimizer_is_torchs_fastest_update_of_the_same_algorithm(spec):
    """The engine's optimizers take ``fused=True`` where torch has a fused kernel (else ``foreach=True``): the
    weights after training equal, bit for bit, those of the same optimizer built that way by hand, and those of
    torch's default loop up to rounding; what the spec says wins."""
    from specml.spec.trainer import OptimizerSpec
    from specml.train.optim import build_optimizer, resolve_optimizer

    opt_spec = OptimizerSpec(**spec)
    cls = resolve_optimizer(opt_spec.type)[1]
    fused = spec["type"] != "torch.optim.RMSprop"  # RMSprop has no fused kernel: the multi-tensor update
    fastest = {"fused": True} if fused else {"foreach": True}
    x, y = data()
    weights = []
    for how in ("built", "by hand", "torch's default"):
        net = model()
        extra = fastest if how == "by hand" else {}
        opt = (build_optimizer(opt_spec, net.parameters()) if how == "built" else
               cls(net.parameters(), lr=opt_spec.lr, **opt_spec.params, **extra))
        if how == "built":
            assert (opt.defaults.get("fused"), opt.defaults.get("foreach")) == ((True, None) if fused else (None, True))
        for i in range(0, ROWS, BATCH):
            opt.zero_grad(set_to_none=True)
            nn.functional.mse_loss(net(x[i:i + BATCH]), y[i:i + BATCH]).backward()
            opt.step()
        weights.append([p.detach().clone() for p in net.parameters()])
    assert all(torch.equal(a, b) for a, b in zip(weights[0], weights[1], strict=True))
    for a, b in zip(weights[0], weights[2], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    for said in ({"foreach": False}, *([{"fused": False}] if fused else [])):
        opt = build_optimizer(OptimizerSpec(**{**spec, "params": {**spec.get("params", {}), **said}}),
                              model().parameters())
        assert not opt.defaults.get("fused") and not opt.defaults.get("foreach")  # torch's default loop
    sparse = nn.Embedding(10, 3, sparse=True)
    if spec["type"] == "torch.optim.SGD":  # fused kernels refuse sparse gradients: the engine does not fuse them
        from specml.train.optim import has_sparse_gradients

        assert has_sparse_gradients(nn.Sequential(sparse)) and not has_sparse_gradients(model())
        opt = build_optimizer(opt_spec, sparse.parameters(), fuse=not has_sparse_gradients(sparse))
        sparse(torch.tensor([1, 2])).sum().backward()
        opt.step()
        assert opt.defaults.get("fused") is None
