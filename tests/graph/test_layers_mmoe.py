"""specml.layers.MMoE: shapes for batch sizes unrelated to the number of experts, gates, the
gate-weighted sum written out, gradients, and the spec forms (``mmoe.output.0``, ``mmoe.output.<task>``)."""

from __future__ import annotations

import pytest
import torch

from specml.graph import build_model
from specml.graph.layers import MMoE
from specml.spec import SpecError, load_spec
from testkit import FIXTURES as ALL_FIXTURES
from testkit import invoke, model_from

torch.set_num_threads(1)

pytestmark = [pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning"),
              pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")]

FIXTURES = ALL_FIXTURES / "layers"


def make(**kwargs) -> MMoE:
    torch.manual_seed(0)
    args = {"in_features": 5, "num_experts": 3, "expert_hidden": [6, 4], "num_tasks": 2}
    return MMoE(**{**args, **kwargs}).eval()


@pytest.mark.parametrize("batch", [7, 1, 3, 2])
def test_shapes_when_batch_differs_from_the_number_of_experts(batch):
    m = make()
    x = torch.randn(batch, 5)
    assert m.experts(x).shape == (batch, 3, 4)
    assert m.gate_weights(x).shape == (batch, 2, 3)
    outs = m(x)
    assert isinstance(outs, tuple) and len(outs) == 2
    assert all(o.shape == (batch, 4) for o in outs)


def test_each_row_depends_on_its_own_input_only():
    # the known-broken MMoE mixes the batch and expert axes: it runs only when B == E and its rows
    # then leak into each other. Here the batch result equals the rows computed one by one, at B = 7 and B = E.
    m = make()
    for batch in (7, 3):
        x = torch.randn(batch, 5)
        together = m(x)
        for b in range(batch):
            alone = m(x[b:b + 1])
            for t in range(2):
                torch.testing.assert_close(together[t][b:b + 1], alone[t])


def test_gates_sum_to_one_over_the_experts():
    gates = make().gate_weights(torch.randn(7, 5))
    assert (gates >= 0).all()
    torch.testing.assert_close(gates.sum(-1), torch.ones(7, 2))


def test_experts_are_the_mlps_they_say():
    m = make()
    x = torch.randn(7, 5)
    experts = m.experts(x)
    for e in range(3):
        h = torch.relu(x @ m.weights[0][e] + m.biases[0][e])
        h = torch.relu(h @ m.weights[1][e] + m.biases[1][e])
        torch.testing.assert_close(experts[:, e, :], h)


def test_task_output_is_the_gate_weighted_sum_of_experts():
    m = make()
    x = torch.randn(7, 5)
    experts = m.experts(x)
    outs = m(x)
    for t in range(2):
        gate = torch.softmax(m.gates[t](x), dim=-1)       # [B, E]
        expected = torch.zeros(7, 4)
        for b in range(7):
            for e in range(3):
                expected[b] += gate[b, e] * experts[b, e]
        torch.testing.assert_close(outs[t], expected)


def test_two_tasks_differ():
    a, b = make()(torch.randn(7, 5))
    assert not torch.allclose(a, b)


def test_gradients_reach_every_expert_and_every_gate():
    m = make(dropout=0.2).train()
    x = torch.randn(7, 5)
    a, b = m(x)
    ((a * torch.randn_like(a)).sum() + (b * torch.randn_like(b)).sum()).backward()
    for w, bias in zip(m.weights, m.biases):
        for e in range(3):
            assert w.grad[e].abs().sum() > 0 and bias.grad[e].abs().sum() > 0, e
    for gate in m.gates:
        assert gate.weight.grad.abs().sum() > 0 and gate.bias.grad.abs().sum() > 0


def test_each_task_trains_its_own_gate():
    m = make()
    a, _ = m(torch.randn(7, 5))
    a.sum().backward()
    assert m.gates[0].weight.grad.abs().sum() > 0
    other = m.gates[1].weight.grad  # task 1's gate does not influence task 0's output
    assert other is None or not other.any()


def test_parameter_count():
    m = MMoE(10, num_experts=3, expert_hidden=[16, 8], num_tasks=2)
    experts = 3 * ((10 * 16 + 16) + (16 * 8 + 8))
    gates = 2 * (10 * 3 + 3)
    assert sum(p.numel() for p in m.parameters()) == experts + gates


def test_single_hidden_size_activation_and_task_names():
    m = make(expert_hidden=8, expert_activation="GELU", task_names=["click", "buy"])
    out = m(torch.randn(4, 5))
    assert list(out) == ["click", "buy"] and out["click"].shape == (4, 8)
    assert isinstance(m.act, torch.nn.GELU)


@pytest.mark.parametrize("kwargs, field, words", [
    ({"expert_hidden": []}, "expert_hidden", "positive integer"),
    ({"expert_hidden": [4, 0]}, "expert_hidden", "positive integer"),
    ({"num_experts": 0}, "num_experts", "positive integer"),
    ({"expert_activation": "Relu"}, "expert_activation", "did you mean 'ReLU'"),
    ({"expert_activation": "os.system"}, "expert_activation", "unknown activation"),
    ({"dropout": 1.5}, "dropout", r"\[0, 1\)"),
    ({"task_names": ["a"]}, "task_names", "1 name"),
    ({"task_names": ["a", "a"]}, "task_names", "unique"),
    ({"task_names": ["0", "a"]}, "task_names", "non-numeric"),
])
def test_bad_arguments_name_the_parameter(kwargs, field, words):
    with pytest.raises(ValueError, match=words) as info:
        make(**kwargs)
    assert info.value.param == field


def test_wrong_input_width_is_a_clear_error():
    with pytest.raises(ValueError, match=r"MMoE expects input of shape \[\.\.\., 5\]"):
        make()(torch.randn(7, 6))


# ----------------------------------------------------------------------------------------------
# in a spec


def test_spec_reads_task_outputs_by_index():
    loaded = load_spec(FIXTURES / "mmoe.yaml", check=True)
    report = {n.name: n for n in loaded.checked.nodes}
    assert report["mmoe"].shape == "([B, 8], [B, 8])" and report["mmoe"].params == 1002
    assert loaded.checked.output_shapes == {"click_logit": "[B, 1]", "buy_logit": "[B, 1]"}
    model = build_model(loaded.model).eval()
    x = torch.randn(7, 10)
    with torch.no_grad():
        out = model(features=x)
        tasks = model.nodes["mmoe"](x)
    torch.testing.assert_close(out["click_logit"], model.nodes["click_tower"](tasks[0]))
    torch.testing.assert_close(out["buy_logit"], model.nodes["buy_tower"](tasks[1]))
    assert [loss.weight for loss in loaded.model.losses] == [1.0, 0.5]


def test_spec_reads_task_outputs_by_name():
    loaded = load_spec(FIXTURES / "mmoe_named.yaml", check=True)
    assert {n.name: n.shape for n in loaded.checked.nodes}["mmoe"] == "{click: [B, 8], buy: [B, 8]}"
    model = build_model(loaded.model).eval()
    x = torch.randn(3, 10)
    with torch.no_grad():
        out = model(features=x)
        tasks = model.nodes["mmoe"](x)
    torch.testing.assert_close(out["buy_logit"], model.nodes["buy_tower"](tasks["buy"]))


def test_spec_model_traces():
    model = model_from(FIXTURES / "mmoe.yaml").eval()
    traced = torch.jit.trace(model, (torch.randn(4, 10),), strict=False)
    x = torch.randn(9, 10)
    with torch.no_grad():
        torch.testing.assert_close(traced(x)["buy_logit"], model(features=x)["buy_logit"])


def spec_with(params: dict, outputs: dict | None = None) -> dict:
    return {"inputs": {"x": {"dtype": "float32", "shape": [None, 4], "columns": []}},
            "graph": [{"name": "mmoe", "type": "specml.layers.MMoE", "params": params, "inputs": {"x": "x"}}],
            "outputs": outputs or {"a": "mmoe.output.0"}}


def issues_of(spec) -> list:
    with pytest.raises(SpecError) as info:
        load_spec(spec, check=True)
    return info.value.issues


def test_reading_a_task_that_does_not_exist_is_an_error():
    issues = issues_of(spec_with({"in_features": 4, "num_experts": 3, "expert_hidden": 2, "num_tasks": 2},
                                 {"a": "mmoe.output.2"}))
    assert issues[0].path == "outputs.a" and "tuple of 2 elements" in issues[0].message


def test_misspelt_parameter_gets_did_you_mean():
    issues = issues_of(FIXTURES / "mmoe_typo.yaml")
    assert [(i.path, i.hint) for i in issues] == [("graph[0].params.num_expert", "did you mean 'num_experts'?")]
    assert issues[0].line == 12


def test_constructor_error_is_reported_at_the_parameter():
    issues = issues_of(spec_with({"in_features": 4, "num_experts": 3, "expert_hidden": [8, -1], "num_tasks": 2}))
    assert [i.path for i in issues] == ["graph[0].params.expert_hidden"]


def test_missing_parameter_is_named():
    issues = issues_of(spec_with({"in_features": 4, "num_experts": 3, "expert_hidden": 8}))
    assert "num_tasks" in issues[0].message


def test_cli_validate_and_describe(tmp_path):
    bad = invoke("validate", FIXTURES / "mmoe_typo.yaml", home=tmp_path)
    assert bad.returncode == 1 and "Traceback" not in bad.stderr and bad.exception is None
    said = bad.stderr + bad.stdout
    assert "graph[0].params.num_expert" in said and "did you mean 'num_experts'" in said
    good = invoke("describe", FIXTURES / "mmoe.yaml", home=tmp_path)
    assert good.returncode == 0, good.stderr
    row = next(line for line in good.stdout.splitlines() if "specml.layers.MMoE" in line)
    assert "([B, 8], [B, 8])" in row and "1,002" in row
    assert "parameters: 1,020" in good.stdout
