"""specml.layers.CrossLayer / CrossNetwork (DCN-V1, DCN-V2, low-rank, DCN-Mix) against their formulas,
hand-computed on tiny cases, and as spec nodes (load, check, build, run, describe)."""

from __future__ import annotations

import pytest
import torch

from specml.graph import build_model
from specml.graph.layers import CrossLayer, CrossNetwork
from specml.spec import SpecError, load_spec
from testkit import FIXTURES as ALL_FIXTURES
from testkit import invoke, model_from

torch.set_num_threads(1)

FIXTURES = ALL_FIXTURES / "layers"


def set_(param: torch.nn.Parameter, values) -> None:
    with torch.no_grad():
        param.copy_(torch.as_tensor(values, dtype=param.dtype).reshape(param.shape))


# ----------------------------------------------------------------------------------------------
# the formulas, by hand


def test_v1_matches_hand_computed_values():
    layer = CrossLayer(2, version="v1")
    set_(layer.weight.weight, [0.5, -1.0])  # w
    set_(layer.bias, [0.1, 0.2])            # b
    x0 = torch.tensor([[1.0, 2.0]])
    # x_1 = x0 (x0ᵀw) + b + x0: x0ᵀw = 0.5 - 2 = -1.5 -> [-1.5, -3] + [0.1, 0.2] + [1, 2]
    torch.testing.assert_close(layer(x0), torch.tensor([[-0.4, -0.8]]))
    # with x != x0: xᵀw = 1.5 + 1 = 2.5 -> [2.5, 5] + [0.1, 0.2] + [3, -1]
    torch.testing.assert_close(layer(x0, torch.tensor([[3.0, -1.0]])), torch.tensor([[5.6, 4.2]]))


def test_v2_matches_hand_computed_values():
    layer = CrossLayer(2, version="v2")
    set_(layer.full.weight, [[1.0, 2.0], [0.0, -1.0]])  # W
    set_(layer.full.bias, [0.5, -0.5])                  # b
    x0 = torch.tensor([[1.0, 2.0]])
    x = torch.tensor([[3.0, -1.0]])
    # W x = [1, 1]; + b = [1.5, 0.5]; x0 ⊙ . = [1.5, 1.0]; + x = [4.5, 0.0]
    torch.testing.assert_close(layer(x0, x), torch.tensor([[4.5, 0.0]]))
    # W x0 = [5, -2]; + b = [5.5, -2.5]; x0 ⊙ . = [5.5, -5]; + x0 = [6.5, -3]
    torch.testing.assert_close(layer(x0), torch.tensor([[6.5, -3.0]]))


def test_v2_network_chains_layers_on_x0():
    net = CrossNetwork(2, num_layers=2, version="v2")
    for layer in net.layers:
        set_(layer.full.weight, [[1.0, 2.0], [0.0, -1.0]])
        set_(layer.full.bias, [0.5, -0.5])
    # x1 = [6.5, -3] (above); W x1 = [0.5, 3]; + b = [1, 2.5]; x0 ⊙ . = [1, 5]; + x1 = [7.5, 2]
    torch.testing.assert_close(net(torch.tensor([[1.0, 2.0]])), torch.tensor([[7.5, 2.0]]))


def test_low_rank_matches_hand_computed_values():
    layer = CrossLayer(3, low_rank=1, bias=False)
    set_(layer.up.weight, [[1.0], [0.0], [2.0]])   # U, d x r
    set_(layer.down.weight, [[1.0, 1.0, 0.0]])     # Vᵀ, r x d
    x = torch.tensor([[1.0, 2.0, 3.0]])
    # Vᵀx = 3; U(.) = [3, 0, 6]; x0 ⊙ . = [3, 0, 18]; + x = [4, 2, 21]
    torch.testing.assert_close(layer(x), torch.tensor([[4.0, 2.0, 21.0]]))


def test_low_rank_equals_full_rank_when_w_is_u_v_transposed():
    torch.manual_seed(0)
    low = CrossLayer(6, low_rank=2)
    full = CrossLayer(6)
    with torch.no_grad():
        low.up.bias.normal_()
        full.full.weight.copy_(low.up.weight @ low.down.weight)  # W = U Vᵀ
        full.full.bias.copy_(low.up.bias)
    x0, x = torch.randn(5, 6), torch.randn(5, 6)
    torch.testing.assert_close(low(x0, x), full(x0, x))
    assert sum(p.numel() for p in low.parameters()) == 2 * 6 * 2 + 6 < sum(p.numel() for p in full.parameters())


def test_mixture_matches_its_formula():
    torch.manual_seed(1)
    layer = CrossLayer(4, low_rank=2, num_experts=3)
    with torch.no_grad():
        layer.bias.normal_()
    x0, x = torch.randn(5, 4), torch.randn(5, 4)
    gates = torch.softmax(x @ layer.gate.weight.T, dim=-1)                 # [B, K]
    expected = x.clone()
    for i in range(3):
        v = torch.tanh(x @ layer.V[i])                                     # V_iᵀ x
        v = torch.tanh(v @ layer.C[i])                                     # C_i (.)
        expert = x0 * (v @ layer.U[i] + layer.bias[i])                     # x0 ⊙ (U_i (.) + b_i)
        expected = expected + gates[:, i:i + 1] * expert
    torch.testing.assert_close(layer(x0, x), expected)


# ----------------------------------------------------------------------------------------------
# shapes and gradients

VARIANTS = [{"version": "v1"}, {"version": "v2"}, {"low_rank": 2}, {"low_rank": 3, "num_experts": 4},
            {"version": "v2", "bias": False}]


@pytest.mark.parametrize("kwargs", VARIANTS, ids=str)
@pytest.mark.parametrize("batch", [1, 4, 17])
def test_shapes_for_several_batch_sizes(kwargs, batch):
    net = CrossNetwork(6, num_layers=3, **kwargs)
    assert net(torch.randn(batch, 6)).shape == (batch, 6)
    assert CrossLayer(6, **kwargs)(torch.randn(batch, 6), torch.randn(batch, 6)).shape == (batch, 6)


def test_leading_dimensions_are_kept():
    assert CrossNetwork(5, low_rank=2, num_experts=2)(torch.randn(2, 3, 5)).shape == (2, 3, 5)


@pytest.mark.parametrize("kwargs", VARIANTS, ids=str)
def test_gradients_reach_every_parameter(kwargs):
    torch.manual_seed(2)
    net = CrossNetwork(6, num_layers=2, **kwargs)
    x = torch.randn(8, 6, requires_grad=True)
    (net(x) * torch.randn(8, 6)).sum().backward()
    named = dict(net.named_parameters())
    assert named
    for name, p in named.items():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert x.grad.abs().sum() > 0


@pytest.mark.parametrize("kwargs, field, words", [
    ({"in_features": 4, "low_rank": 4}, "low_rank", "smaller than in_features"),
    ({"in_features": 4, "low_rank": 0}, "low_rank", "positive integer"),
    ({"in_features": 4, "version": "v3"}, "version", "'v1' or 'v2'"),
    ({"in_features": 4, "version": "v1", "low_rank": 2}, "low_rank", "DCN-V2"),
    ({"in_features": 4, "num_experts": 3}, "num_experts", "low_rank"),
    ({"in_features": 0}, "in_features", "positive integer"),
])
def test_bad_arguments_name_the_parameter(kwargs, field, words):
    with pytest.raises(ValueError, match=words) as info:
        CrossLayer(**kwargs)
    assert info.value.param == field


def test_wrong_input_width_is_a_clear_error():
    with pytest.raises(ValueError, match=r"\[\.\.\., 4\].*got \[3, 5\]"):
        CrossNetwork(4)(torch.randn(3, 5))


# ----------------------------------------------------------------------------------------------
# in a spec


def test_dcn_v2_spec_loads_builds_and_runs():
    loaded = load_spec(FIXTURES / "dcn_v2.yaml", check=True)
    reports = {n.name: n for n in loaded.checked.nodes}
    assert reports["cross"].shape == "[B, 18]"
    assert reports["cross"].params == 3 * (18 * 6 + 6 * 18 + 18)
    model = build_model(loaded.model, vocab_sizes={"cats": 30}).eval()
    cross = model.nodes["cross"]
    assert isinstance(cross, CrossNetwork) and len(cross.layers) == 3 and cross.layers[0].low_rank == 6
    for batch in (1, 7):
        inputs = model.example_inputs(batch)
        with torch.no_grad():
            out = model(**inputs)
        assert out["logits"].shape == (batch, 1) and torch.isfinite(out["logits"]).all()
    # training: every parameter gets a gradient
    model.train()
    model(**model.example_inputs(4))["logits"].sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_dcn_v1_and_mix_spec_reads_x0_and_x_by_keyword():
    model = model_from(FIXTURES / "dcn_mix_v1.yaml").eval()
    batch = model.example_inputs(5)
    with torch.no_grad():
        out = model(**batch)
        v1 = model.nodes["v1"](batch["x"])
        expected = model.nodes["head"](model.nodes["mix"](batch["x"], v1))
    torch.testing.assert_close(out["logits"], expected)
    assert model.nodes["v1"].layers[0].version == "v1" and model.nodes["mix"].num_experts == 4


def dcn_spec(**params) -> dict:
    return {"inputs": {"x": {"dtype": "float32", "shape": [None, 4], "columns": []}},
            "graph": [{"name": "cross", "type": "specml.layers.CrossNetwork", "params": {"in_features": 4, **params},
                       "inputs": {"x": "x"}}],
            "outputs": {"out": "cross.output"}}


@pytest.mark.parametrize("params, path, words", [
    ({"low_rank": 4}, "graph[0].params.low_rank", "smaller than in_features (4)"),
    ({"num_layer": 2}, "graph[0].params.num_layer", "did you mean 'num_layers'"),
    ({"version": "V2"}, "graph[0].params.version", "'v1' or 'v2'"),
])
def test_bad_spec_params_are_field_path_errors(params, path, words):
    with pytest.raises(SpecError) as info:
        load_spec(dcn_spec(**params), check=True)
    found = [i for i in info.value.issues if i.path == path]
    assert found, [(i.path, i.message) for i in info.value.issues]
    assert words in str(found[0])


def test_wrong_width_is_found_by_the_dry_run():
    spec = dcn_spec()
    spec["inputs"]["x"]["shape"] = [None, 5]
    with pytest.raises(SpecError) as info:
        load_spec(spec, check=True)
    issue, = info.value.issues
    assert issue.path == "graph[0]" and "[2, 5]" in issue.message and "in_features=4" in issue.message


def test_describe_shows_cross_network_shapes_and_parameters(tmp_path):
    result = invoke("describe", FIXTURES / "dcn_v2.yaml", home=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = {line.split("│")[1].strip(): [c.strip() for c in line.split("│")[2:-1]]
            for line in result.stdout.splitlines() if line.count("│") >= 5}
    assert rows["cross"] == ["specml.layers.CrossNetwork", "[B, 18]", "702"]
    assert rows["cat_emb"] == ["specml.layers.FeatureEmbedding", "[B, 12]", "96 *"]  # 3 columns x 8 ids x 4
    assert "vocabulary size comes from the data" in result.stdout
