"""config.mixed_precision: autocast (bf16 on CPU) in the real engine; config.distributed without torchrun."""

import torch
from torch import nn

from specml.train.engine import TensorBatches, Trainer

torch.set_num_threads(1)


def _run(mixed: bool):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 1))
    seen: list[torch.dtype] = []
    model[0].register_forward_hook(lambda mod, args, out: seen.append(out.dtype))
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(256, 4, generator=gen)
    y = (x[:, 0] > 0).float()

    class Wrap(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = model

        def forward(self, x):
            return {"logits": self.net(x)}

    wrapped = Wrap()
    trainer = Trainer(wrapped, TensorBatches({"x": x}, y, 32, shuffle=True, seed=0), None, device="cpu",
                      output_key="logits", monitor="train_loss", mixed_precision=mixed, verbose=False)
    history = trainer.train(5, torch.optim.Adam(wrapped.parameters(), lr=1e-2), nn.BCEWithLogitsLoss(),
                            save_best=False)
    return seen, history, [p.detach().clone() for p in model.parameters()]


def test_mixed_precision_runs_the_forward_in_bfloat16_on_cpu_and_still_learns():
    seen, history, weights = _run(True)
    assert set(seen) == {torch.bfloat16}
    assert history["train_loss"][-1] < history["train_loss"][0]
    assert all(w.dtype == torch.float32 for w in weights)  # master weights stay fp32


def test_without_mixed_precision_the_forward_is_float32_and_results_differ():
    seen_fp32, _, w32 = _run(False)
    _, _, w16 = _run(True)
    assert set(seen_fp32) == {torch.float32}
    assert any(not torch.equal(a, b) for a, b in zip(w32, w16))


def test_distributed_in_a_trainer_spec_trains_in_one_process_outside_torchrun(tmp_path, monkeypatch):
    from specml import api
    from specml.data.workspace import Workspace
    from testkit import PIMA, PIMA_MLP

    monkeypatch.setenv("SPECML_HOME", str(tmp_path))
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    ws = Workspace(tmp_path / "ws.duckdb")
    ws.load(PIMA, "pima")
    trainer = tmp_path / "t.yaml"
    trainer.write_text("optimizer: {type: adam, lr: 0.01}\nconfig: {epochs: 1, batch_size: 32, distributed: true}\n")
    result = api.train(PIMA_MLP / "model.yaml", trainer, table="pima", name="d", workspace=ws,
                       verbose=False, track=False)
    assert (result.directory / "metadata.json").is_file()
