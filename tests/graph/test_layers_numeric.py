"""specml.layers.PeriodicEmbedding (PLR numeric embeddings) and BatchEnsembleMLP (TabM-mini): shapes,
formulas, argument checks, and use from a spec."""

from __future__ import annotations

import math

import pytest
import torch

from specml.graph.layers import LAYERS, BatchEnsembleMLP, ParamError, PeriodicEmbedding

torch.set_num_threads(1)


@pytest.mark.parametrize("batch", [1, 5])
def test_periodic_embedding_shapes(batch):
    x = torch.randn(batch, 3)
    assert PeriodicEmbedding(3, embedding_dim=4, frequencies=6)(x).shape == (batch, 12)
    assert PeriodicEmbedding(3, embedding_dim=4, mode="stack")(x).shape == (batch, 3, 4)
    assert PeriodicEmbedding(3, embedding_dim=4, lite=True)(x).shape == (batch, 12)
    assert PeriodicEmbedding(3, embedding_dim=4).out_features == 12


def test_periodic_embedding_is_the_plr_formula_per_column():
    torch.manual_seed(0)
    emb = PeriodicEmbedding(2, embedding_dim=3, frequencies=4, sigma=1.0, mode="stack")
    x = torch.tensor([[0.3, -1.2]])
    out = emb(x)
    for j in range(2):
        angle = 2 * math.pi * emb.coefficients[j] * x[0, j]
        v = torch.cat([torch.cos(angle), torch.sin(angle)])
        torch.testing.assert_close(out[0, j], torch.relu(v @ emb.weight[j] + emb.bias[j]))
    # column 1's value does not change column 0's vector
    torch.testing.assert_close(emb(torch.tensor([[0.3, 5.0]]))[0, 0], out[0, 0])
    assert (out >= 0).all()
    assert (PeriodicEmbedding(2, activation=False)(torch.randn(50, 2)) < 0).any()  # the PL variant


def test_periodic_embedding_frequencies_learn():
    torch.manual_seed(0)
    emb = PeriodicEmbedding(1, embedding_dim=2, frequencies=2)
    emb(torch.randn(8, 1)).sum().backward()
    assert emb.coefficients.grad is not None and emb.coefficients.grad.abs().sum() > 0


def test_periodic_embedding_checks_arguments_and_width():
    with pytest.raises(ParamError, match="sigma"):
        PeriodicEmbedding(3, sigma=0)
    with pytest.raises(ParamError, match="mode.*did you mean 'stack'"):
        PeriodicEmbedding(3, mode="stak")
    with pytest.raises(ParamError, match="in_features"):
        PeriodicEmbedding(0)
    with pytest.raises(ValueError, match=r"in_features=3"):
        PeriodicEmbedding(3)(torch.randn(2, 4))


def test_batch_ensemble_mlp_shapes_and_mean_of_members():
    torch.manual_seed(0)
    net = BatchEnsembleMLP(5, [8, 6], out_features=2, k=4).eval()
    x = torch.randn(7, 5)
    members = net.members(x)
    assert members.shape == (7, 4, 2)
    torch.testing.assert_close(net(x), members.mean(dim=1))
    assert not torch.allclose(members[:, 0], members[:, 1])  # the adapters make the members differ
    # the weights are shared: k members cost k * in_features extra parameters, not k MLPs
    plain = sum(p.numel() for p in BatchEnsembleMLP(5, [8, 6], 2, k=1).parameters())
    assert sum(p.numel() for p in net.parameters()) == plain + 3 * 5


def test_batch_ensemble_mlp_checks_arguments():
    with pytest.raises(ParamError, match="hidden"):
        BatchEnsembleMLP(3, [], 1)
    with pytest.raises(ParamError, match="dropout"):
        BatchEnsembleMLP(3, 4, 1, dropout=1.5)


def test_layers_are_allow_listed_and_build_from_a_spec(tmp_path):
    from specml.spec import load_spec

    assert LAYERS["PeriodicEmbedding"] is PeriodicEmbedding and LAYERS["BatchEnsembleMLP"] is BatchEnsembleMLP
    spec = tmp_path / "model.yaml"
    spec.write_text("""
inputs:
  x: {dtype: float32, shape: [null, 3], columns: [a, b, c], normalize: quantile}
graph:
  - {name: plr, type: specml.layers.PeriodicEmbedding, params: {in_features: 3, embedding_dim: 4}, inputs: {input: x}}
  - {name: tabm, type: specml.layers.BatchEnsembleMLP, params: {in_features: 12, hidden: [8], out_features: 1, k: 2},
     inputs: {input: plr.output}}
outputs: {prediction: tabm.output}
""")
    loaded = load_spec(spec, check=True)
    model = loaded.checked.model
    assert model(x=torch.randn(4, 3))["prediction"].shape == (4, 1)
