"""The graph builder: spec -> SpecModel, forward passes, tracing/compiling, and the torch-side checks.

No mocks: every model here is built from a spec (dicts or the repo's example files) and run.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from torch import nn

from specml.graph import SpecModel, build_model
from specml.spec import SpecError, SpecIssue, load_model_spec, load_spec
from testkit import ROOT as REPO
from testkit import model_from

torch.set_num_threads(1)

pytestmark = [
    pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning"),
]

EXAMPLES = sorted(REPO.glob("examples/*/model.yaml"))
VARIANTS = REPO / "tests" / "fixtures" / "variants"

#: the output shapes of each example, batch size B
EXAMPLE_SHAPES = {
    "logistic": {"logits": ("B", 1), "prediction": ("B", 1)},
    "multi_input": {"logits": ("B", 1)},
    "pima_mlp": {"logits": ("B", 1), "prediction": ("B", 1)},
    "residual_mlp": {"logits": ("B", 1)},
}


def example_id(path: Path) -> str:
    return path.parent.name


def shape_of(spec_shape: tuple, batch: int) -> tuple:
    return tuple(batch if d == "B" else d for d in spec_shape)


def issues_of(source) -> list[SpecIssue]:
    with pytest.raises(SpecError) as info:
        load_spec(source, check=True)
    return info.value.issues


def issue_at(issues: list[SpecIssue], path: str) -> SpecIssue:
    found = [i for i in issues if i.path == path]
    assert found, f"no issue at {path!r}; got {[(i.path, i.message) for i in issues]}"
    return found[0]


def mlp(**overrides) -> dict:
    spec = {
        "inputs": {"x": {"dtype": "float32", "shape": [None, 4], "columns": ["a", "b", "c", "d"]}},
        "graph": [
            {"name": "hidden", "type": "torch.nn.Linear", "params": {"in_features": 4, "out_features": 8},
             "inputs": {"input": "x"}},
            {"name": "act", "type": "torch.nn.functional.relu", "inputs": {"input": "hidden.output"}},
            {"name": "head", "type": "torch.nn.Linear", "params": {"in_features": 8, "out_features": 2},
             "inputs": {"input": "act.output"}},
        ],
        "outputs": {"logits": "head.output"},
    }
    spec.update(overrides)
    return spec


def run(spec, batch_size: int = 3, **build_kwargs):
    model = model_from(spec, **build_kwargs).eval()
    batch = model.example_inputs(batch_size)
    with torch.no_grad():
        return model, batch, model(**batch)


# ----------------------------------------------------------------------------------------------
# the examples


def test_all_examples_are_covered():
    assert {example_id(p) for p in EXAMPLES} >= set(EXAMPLE_SHAPES)
    assert EXAMPLES, "no examples found"


def build(path):
    """An example's model; vocabularies left to the data get the checker's placeholder size."""
    from specml.graph.check import placeholder_vocab_sizes
    from specml.spec import load_model_spec

    spec = load_model_spec(path, check=False)
    return model_from(spec, vocab_sizes=placeholder_vocab_sizes(spec))


@pytest.mark.parametrize("path", EXAMPLES, ids=example_id)
def test_example_validates_builds_and_runs(path):
    loaded = load_spec(path, check=True)
    spec = loaded.model
    from specml.graph.check import placeholder_vocab_sizes

    model = model_from(spec, vocab_sizes=placeholder_vocab_sizes(spec))
    assert isinstance(model, SpecModel) and isinstance(model, nn.Module)
    assert model.output_names == tuple(spec.outputs)
    model.eval()
    for batch_size in (1, 5):
        batch = model.example_inputs(batch_size)
        assert set(batch) == set(spec.inputs)
        with torch.no_grad():
            out = model(**batch)
        assert isinstance(out, dict) and list(out) == list(spec.outputs)
        expected = EXAMPLE_SHAPES.get(example_id(path))
        for name, value in out.items():
            assert isinstance(value, torch.Tensor)
            assert torch.isfinite(value).all()
            if expected is not None:
                assert tuple(value.shape) == shape_of(expected[name], batch_size), name
            # the checker's description of the shape agrees with the real one
            described = tuple(int(d) if d != "B" else "B" for d in loaded.checked.output_shapes[name][1:-1].split(", "))
            assert tuple(value.shape) == shape_of(described, batch_size)


@pytest.mark.parametrize("path", EXAMPLES, ids=example_id)
def test_example_trains_one_step(path):
    model = build(path)
    model.train()
    batch = model.example_inputs(4)
    out = model(**batch)
    loss = sum(v.float().pow(2).mean() for v in out.values())
    loss.backward()
    grads = [p.grad for p in model.parameters()]
    assert grads and all(g is not None for g in grads)


@pytest.mark.parametrize("path", EXAMPLES, ids=example_id)
def test_state_dict_round_trip(path):
    torch.manual_seed(0)
    first = build(path).eval()
    torch.manual_seed(1)
    second = build(path).eval()
    batch = first.example_inputs(4)
    with torch.no_grad():
        a = first(**batch)
        before = second(**batch)
        assert any(not torch.equal(a[k], before[k]) for k in a), "two seeds gave the same weights"
        second.load_state_dict(first.state_dict())
        b = second(**batch)
    for name in a:
        assert torch.equal(a[name], b[name])


@pytest.mark.parametrize("path", EXAMPLES, ids=example_id)
def test_jit_trace_matches_eager(path):
    model = build(path).eval()
    batch = model.example_inputs(3)
    # check_trace=False: a padding mask computed from the input traces to different graphs per call;
    # the comparison below with another batch is the check
    traced = torch.jit.trace(model, tuple(batch.values()), strict=False, check_trace=False)
    other = model.example_inputs(5, seed=1)
    with torch.no_grad():
        eager = model(**other)
        got = traced(*other.values())
    assert set(got) == set(eager)
    for name in eager:
        torch.testing.assert_close(got[name], eager[name])


@pytest.mark.slow  # torch.compile traces every example
@pytest.mark.parametrize("path", EXAMPLES, ids=example_id)
def test_compile_fullgraph_eager_backend(path):
    torch._dynamo.reset()
    model = build(path).eval()
    compiled = torch.compile(model, fullgraph=True, backend="eager")
    batch = model.example_inputs(4)
    with torch.no_grad():
        eager = model(**batch)
        got = compiled(**batch)
    for name in eager:
        torch.testing.assert_close(got[name], eager[name])


@pytest.mark.slow  # inductor compiles C++
def test_compile_inductor_small_mlp():
    torch._dynamo.reset()
    model = model_from(mlp()).eval()
    compiled = torch.compile(model, fullgraph=True)
    batch = model.example_inputs(4)
    with torch.no_grad():
        eager = model(**batch)
        got = compiled(**batch)
    torch.testing.assert_close(got["logits"], eager["logits"], rtol=1e-5, atol=1e-5)


# ----------------------------------------------------------------------------------------------
# building from the forms a spec may take


def test_build_from_dict_path_and_model_spec(tmp_path):
    from specml.spec.yaml_io import dump_yaml

    path = tmp_path / "m.yaml"
    path.write_text(dump_yaml(mlp()))
    for source in (mlp(), path, str(path), load_model_spec(mlp())):
        torch.manual_seed(0)
        model, batch, out = run(source)
        assert out["logits"].shape == (3, 2)


def test_build_errors_name_the_file(tmp_path):
    from specml.spec.yaml_io import dump_yaml

    spec = mlp()
    spec["graph"][0]["type"] = "torch.nn.Linaer"
    path = tmp_path / "m.yaml"
    path.write_text(dump_yaml(spec))
    with pytest.raises(SpecError) as info:  # the loader's deep check builds the model and names the file
        load_model_spec(path)
    issue = issue_at(info.value.issues, "graph[0].type")
    assert issue.file == str(path)
    assert issue.hint == "did you mean 'torch.nn.Linear'?"


def test_forward_returns_outputs_keyed_by_spec_names():
    spec = mlp(outputs={"scores": "head.output", "hidden_state": "hidden.output", "relu": "act"})
    model, batch, out = run(spec)
    assert list(out) == ["scores", "hidden_state", "relu"]
    assert out["hidden_state"].shape == (3, 8)
    torch.testing.assert_close(out["relu"], torch.relu(out["hidden_state"]))
    torch.testing.assert_close(out["scores"], model.nodes["head"](out["relu"]))


def test_forward_computes_what_the_graph_says():
    model, batch, out = run(mlp())
    hidden, head = model.nodes["hidden"], model.nodes["head"]
    torch.testing.assert_close(out["logits"], head(torch.relu(hidden(batch["x"]))))


def test_positional_inputs_follow_the_spec_order():
    spec = mlp()
    spec["inputs"]["y"] = {"dtype": "float32", "shape": [None, 4], "columns": ["e", "f", "g", "h"]}
    spec["graph"].append({"name": "diff", "type": "torch.sub", "inputs": ["x", "y"]})
    spec["outputs"]["diff"] = "diff.output"
    model = model_from(spec)
    x, y = torch.ones(2, 4), torch.zeros(2, 4)
    assert torch.equal(model(x, y)["diff"], x - y)
    assert torch.equal(model(y=y, x=x)["diff"], x - y)


def test_missing_input_is_a_clear_error():
    model = model_from(mlp())
    with pytest.raises(TypeError, match="missing model input"):
        model()


def test_example_inputs_follow_the_spec():
    spec = mlp()
    spec["inputs"]["ids"] = {"dtype": "long", "shape": [None, 3], "columns": ["p", "q", "r"], "vocab_size": 7}
    spec["inputs"]["flag"] = {"dtype": "bool", "shape": [None], "columns": ["f"]}
    spec["inputs"]["seq"] = {"dtype": "double", "shape": [None, None, 2], "columns": []}
    model = model_from(spec)
    batch = model.example_inputs(batch_size=6, seq_len=5)
    assert list(batch) == ["x", "ids", "flag", "seq"]
    assert (batch["x"].shape, batch["x"].dtype) == ((6, 4), torch.float32)
    assert (batch["ids"].shape, batch["ids"].dtype) == ((6, 3), torch.int64)
    assert int(batch["ids"].min()) >= 0 and int(batch["ids"].max()) < 7
    assert (batch["flag"].shape, batch["flag"].dtype) == ((6,), torch.bool)
    assert (batch["seq"].shape, batch["seq"].dtype) == ((6, 5, 2), torch.float64)
    again = model.example_inputs(batch_size=6, seq_len=5)
    assert torch.equal(batch["x"], again["x"])  # seeded


def test_execution_order_comes_from_edges():
    spec = mlp()
    spec["graph"] = list(reversed(spec["graph"]))  # head, act, hidden
    model, batch, out = run(spec)
    assert [s.name for s in model.plan] == ["hidden", "act", "head"]
    assert out["logits"].shape == (3, 2)
    torch.testing.assert_close(out["logits"], model.nodes["head"](torch.relu(model.nodes["hidden"](batch["x"]))))


def test_shuffled_example_gives_the_same_outputs():
    path = REPO / "examples" / "pima_mlp" / "model.yaml"
    spec = load_model_spec(path).model_dump()
    shuffled = copy.deepcopy(spec)
    shuffled["graph"] = [shuffled["graph"][i] for i in (6, 2, 4, 0, 5, 1, 3)]
    torch.manual_seed(0)
    a = model_from(spec).eval()
    b = build_model(load_model_spec(shuffled)).eval()
    b.load_state_dict(a.state_dict())
    batch = a.example_inputs(4)
    with torch.no_grad():
        out_a, out_b = a(**batch), b(**batch)
    for name in out_a:
        assert torch.equal(out_a[name], out_b[name])


# ----------------------------------------------------------------------------------------------
# inputs: categorical embeddings


def categorical(shape, embedding_dim=5, vocab_size=11) -> dict:
    spec = mlp()
    inp = {"dtype": "int64", "shape": shape, "columns": ["country"] if len(shape) == 1 else
           [f"c{i}" for i in range(shape[-1])], "categorical": True, "embedding_dim": embedding_dim}
    if vocab_size is not None:
        inp["vocab_size"] = vocab_size
    spec["inputs"]["country"] = inp
    spec["outputs"]["country_vec"] = "country"
    return spec


def test_categorical_input_is_embedded_before_the_graph():
    model, batch, out = run(categorical([None]))
    assert out["country_vec"].shape == (3, 5)
    assert out["country_vec"].dtype == torch.float32
    emb = model.embeddings["country"]
    assert isinstance(emb, nn.Embedding) and (emb.num_embeddings, emb.embedding_dim) == (11, 5)
    torch.testing.assert_close(out["country_vec"], emb(batch["country"]))


def test_categorical_input_with_columns_dimension():
    model, batch, out = run(categorical([None, 2]))
    assert batch["country"].shape == (3, 2)
    assert out["country_vec"].shape == (3, 2, 5)


def test_embedded_input_feeds_nodes():
    spec = categorical([None], embedding_dim=4)
    spec["graph"].append({"name": "joined", "type": "torch.cat", "params": {"dim": 1},
                          "inputs": ["head.output", "country"]})
    spec["outputs"] = {"joined": "joined.output"}
    model, batch, out = run(spec)
    assert out["joined"].shape == (3, 6)


def test_categorical_vocab_size_from_the_data():
    spec = categorical([None], vocab_size=None)
    model, batch, out = run(spec, vocab_sizes={"country": 17})
    assert model.embeddings["country"].num_embeddings == 17
    assert out["country_vec"].shape == (3, 5)
    with pytest.raises(SpecError) as info:
        model_from(spec)
    assert issue_at(info.value.issues, "inputs.country.vocab_size")


def test_categorical_without_embedding_dim_gives_ids():
    spec = mlp()
    spec["inputs"]["country"] = {"dtype": "int64", "shape": [None], "columns": ["country"], "categorical": True,
                                 "vocab_size": 9}
    spec["graph"].append({"name": "emb", "type": "torch.nn.Embedding",
                          "params": {"num_embeddings": 9, "embedding_dim": 3}, "inputs": {"input": "country"}})
    spec["outputs"] = {"ids": "country", "vec": "emb.output", "logits": "head.output"}
    model, batch, out = run(spec)
    assert len(model.embeddings) == 0
    assert out["ids"].dtype == torch.int64 and torch.equal(out["ids"], batch["country"])
    assert out["vec"].shape == (3, 3)


def test_embedding_is_trained_with_the_model():
    model = model_from(categorical([None]))
    names = {n for n, _ in model.named_parameters()}
    assert "embeddings.country.weight" in names


# ----------------------------------------------------------------------------------------------
# torch.cat, lists and tuples


def two_towers(inputs_form) -> dict:
    spec = mlp()
    spec["graph"].append({"name": "joined", "type": "torch.cat", "params": {"dim": 1}, "inputs": inputs_form})
    spec["outputs"] = {"joined": "joined.output"}
    return spec


@pytest.mark.parametrize("form", [["hidden.output", "head.output", "x"],
                                  {"tensors": ["hidden.output", "head.output", "x"]}], ids=["list", "tensors"])
def test_torch_cat(form):
    model, batch, out = run(two_towers(form))
    assert out["joined"].shape == (3, 8 + 2 + 4)
    torch.testing.assert_close(out["joined"][:, -4:], batch["x"])


def test_variant6_fixture_runs():
    model, batch, out = run(VARIANTS / "v6_list_kwarg.yaml")
    user = model.nodes["user_tower"](batch["user"])
    item = model.nodes["item_tower"](batch["item"])
    torch.testing.assert_close(out["logits"], model.nodes["head"](torch.cat([user, item], dim=1)))


def test_specml_concat_layer():
    spec = mlp()
    spec["graph"].append({"name": "joined", "type": "specml.layers.Concat", "params": {"dim": -1},
                          "inputs": ["hidden.output", "x"]})
    spec["outputs"]["joined"] = "joined.output"
    model, batch, out = run(spec)
    assert out["joined"].shape == (3, 12)


def test_variant5_fixture_runs():
    model, batch, out = run(VARIANTS / "v5_shape_null_aliases.yaml", batch_size=4)
    assert batch["zip_id"].shape == (4,) and batch["zip_id"].dtype == torch.int64
    assert batch["store_id"].dtype == torch.int32
    assert batch["scale"].dtype == torch.float64
    assert out["score"].shape == (4, 1) and out["score"].dtype == torch.float64


def seq_spec() -> dict:
    return {
        "inputs": {"seq": {"dtype": "float32", "shape": [None, 6, 16], "columns": []}},
        "graph": [
            {"name": "encoder", "type": "torch.nn.TransformerEncoder",
             "params": {"encoder_layer": {"_target_": "torch.nn.TransformerEncoderLayer", "d_model": 16, "nhead": 4,
                                          "dim_feedforward": 32, "dropout": 0.0, "batch_first": True},
                        "num_layers": 3},
             "inputs": {"src": "seq"}},
            {"name": "attn", "type": "torch.nn.MultiheadAttention",
             "params": {"embed_dim": 16, "num_heads": 2, "batch_first": True},
             "inputs": {"query": "encoder.output", "key": "encoder.output", "value": "encoder.output"}},
            {"name": "pooled", "type": "torch.mean", "params": {"dim": 1}, "inputs": {"input": "attn.output.0"}},
            {"name": "head", "type": "torch.nn.Linear", "params": {"in_features": 16, "out_features": 3},
             "inputs": {"input": "pooled.output"}},
        ],
        "outputs": {"logits": "head.output", "attended": "attn.output.0", "weights": "attn.output.1"},
    }


def test_nested_target_transformer_and_attention_tuple():
    model, batch, out = run(seq_spec(), batch_size=2)
    encoder = model.nodes["encoder"]
    assert isinstance(encoder, nn.TransformerEncoder) and len(encoder.layers) == 3
    assert all(isinstance(layer, nn.TransformerEncoderLayer) for layer in encoder.layers)
    assert encoder.layers[0].self_attn.batch_first is True
    assert encoder.layers[0].self_attn.num_heads == 4
    assert encoder.layers[0] is not encoder.layers[1]  # copies, not one shared layer
    assert out["attended"].shape == (2, 6, 16)
    assert out["weights"].shape == (2, 6, 6)
    assert out["logits"].shape == (2, 3)
    torch.testing.assert_close(out["weights"].sum(-1), torch.ones(2, 6))
    with torch.no_grad():
        attended, _ = model.nodes["attn"](*(encoder(batch["seq"]),) * 3)
    torch.testing.assert_close(out["attended"], attended)


@pytest.mark.filterwarnings("ignore:enable_nested_tensor is True")
def test_nested_target_batch_first_follows_the_spec():
    spec = seq_spec()
    spec["graph"][0]["params"]["encoder_layer"]["batch_first"] = False
    spec["graph"] = spec["graph"][:1]
    spec["outputs"] = {"encoded": "encoder.output"}
    model = model_from(spec)
    assert model.nodes["encoder"].layers[0].self_attn.batch_first is False


def test_variant7_fixture_traces():
    model = model_from(VARIANTS / "v7_nested_target.yaml").eval()
    batch = model.example_inputs(2)
    traced = torch.jit.trace(model, tuple(batch.values()), strict=False, check_trace=False)
    other = model.example_inputs(4, seed=3)
    with torch.no_grad():
        torch.testing.assert_close(traced(*other.values())["logits"], model(**other)["logits"])


def test_lstm_nested_tuple_reference():
    spec = {
        "inputs": {"seq": {"dtype": "float32", "shape": [None, 7, 3], "columns": []}},
        "graph": [
            {"name": "lstm", "type": "torch.nn.LSTM",
             "params": {"input_size": 3, "hidden_size": 5, "batch_first": True},
             "inputs": {"input": "seq"}},
            {"name": "last", "type": "torch.squeeze", "params": {"dim": 0}, "inputs": {"input": "lstm.output.1.0"}},
        ],
        "outputs": {"h_n": "last.output", "seq_out": "lstm.output.0", "c_n": "lstm.output.1.1"},
    }
    model, batch, out = run(spec, batch_size=4)
    assert out["h_n"].shape == (4, 5)
    assert out["seq_out"].shape == (4, 7, 5)
    assert out["c_n"].shape == (1, 4, 5)
    torch.testing.assert_close(out["h_n"], out["seq_out"][:, -1, :])


# ----------------------------------------------------------------------------------------------
# modules and arc.stack


def residual(count: int = 3, var: str = "x") -> dict:
    """hidden -> act -> arc.stack(ResidualBlock, count) -> head; the block's input is named ``var``."""
    spec = mlp()
    spec["modules"] = {
        "ResidualBlock": {
            "inputs": [var],
            "graph": [
                {"name": "fc", "type": "torch.nn.Linear", "params": {"in_features": 8, "out_features": 8},
                 "inputs": {"input": var}},
                {"name": "act", "type": "torch.nn.functional.relu", "inputs": {"input": "fc.output"}},
                {"name": "add", "type": "torch.add", "inputs": [var, "act.output"]},
            ],
            "outputs": {"output": "add.output"},
        }
    }
    spec["graph"].insert(2, {"name": "blocks", "type": "arc.stack",
                             "params": {"module": "ResidualBlock", "count": count}, "inputs": {var: "act.output"}})
    spec["graph"][3]["inputs"] = {"input": "blocks.output"}
    return spec


@pytest.mark.parametrize("count", [1, 3])
def test_arc_stack_makes_count_copies_with_distinct_parameters(count):
    model, batch, out = run(residual(count))
    blocks = model.nodes["blocks"].blocks
    assert len(blocks) == count
    weights = [b.nodes["fc"].weight for b in blocks]
    assert len({w.data_ptr() for w in weights}) == count
    if count > 1:
        assert not torch.equal(weights[0], weights[1])
    base = sum(p.numel() for p in model_from(mlp()).parameters())
    assert sum(p.numel() for p in model.parameters()) == base + count * (8 * 8 + 8)
    # forward = the blocks chained by hand
    with torch.no_grad():
        h = torch.relu(model.nodes["hidden"](batch["x"]))
        for block in blocks:
            h = h + torch.relu(block.nodes["fc"](h))
        torch.testing.assert_close(out["logits"], model.nodes["head"](h))


def test_arc_stack_input_keyed_by_the_module_input_name():
    """``inputs: {<module input>: ref}`` on an arc.stack node: validated, so it must also run."""
    spec = residual(2, var="z")
    loaded = load_spec(spec, check=True)  # the dry forward pass accepts it ...
    assert loaded.checked.output_shapes == {"logits": "[B, 2]"}
    model = build_model(loaded.model).eval()
    batch = model.example_inputs(3)
    with torch.no_grad():
        out = model(**batch)  # ... and so must the model's own forward
    assert out["logits"].shape == (3, 2)


@pytest.mark.parametrize("key", ["input", "x"])
def test_arc_stack_generic_input_key(key):
    spec = residual(2, var="z")
    spec["graph"][2]["inputs"] = {key: "act.output"}
    model, batch, out = run(spec)
    assert out["logits"].shape == (3, 2)


def test_module_instances_do_not_share_parameters():
    spec = residual(var="z")
    spec["graph"][2] = {"name": "block_a", "type": "module.ResidualBlock", "inputs": {"z": "act.output"}}
    spec["graph"].insert(3, {"name": "block_b", "type": "module.ResidualBlock", "inputs": {"z": "block_a.output"}})
    spec["graph"][4]["inputs"] = {"input": "block_b"}
    model, batch, out = run(spec)
    a, b = model.nodes["block_a"].nodes["fc"].weight, model.nodes["block_b"].nodes["fc"].weight
    assert a.data_ptr() != b.data_ptr()
    assert out["logits"].shape == (3, 2)


def test_module_with_two_inputs_and_two_outputs():
    spec = mlp()
    spec["modules"] = {
        "Mix": {
            "inputs": ["left", "right"],
            "graph": [
                {"name": "total", "type": "torch.add", "inputs": ["left", "right"]},
                {"name": "prod", "type": "torch.mul", "inputs": ["left", "right"]},
            ],
            "outputs": {"sum": "total.output", "product": "prod.output"},
        }
    }
    spec["graph"].append({"name": "mix", "type": "module.Mix", "inputs": {"left": "hidden.output", "right": "act"}})
    spec["outputs"] = {"s": "mix.output.sum", "p": "mix.output.product", "h": "hidden", "a": "act",
                       "logits": "head"}
    model, batch, out = run(spec)
    torch.testing.assert_close(out["s"], out["h"] + out["a"])
    torch.testing.assert_close(out["p"], out["h"] * out["a"])


def test_residual_example_has_three_distinct_blocks():
    model = model_from(REPO / "examples" / "residual_mlp" / "model.yaml")
    blocks = model.nodes["blocks"].blocks
    assert len(blocks) == 3
    assert len({b.nodes["fc"].weight.data_ptr() for b in blocks}) == 3


def test_state_dict_keys_are_readable():
    model = model_from(residual(2))
    keys = set(model.state_dict())
    assert "nodes.hidden.weight" in keys
    assert "nodes.blocks.blocks.1.nodes.fc.weight" in keys


# ----------------------------------------------------------------------------------------------
# errors from the torch-side checks (inside load_spec(check=True))


def test_constructor_param_typo():
    spec = mlp()
    spec["graph"][2]["params"] = {"in_feature": 8, "out_features": 2}
    issue = issue_at(issues_of(spec), "graph[2].params.in_feature")
    assert "no parameter 'in_feature'" in issue.message
    assert issue.hint == "did you mean 'in_features'?"


def test_missing_required_param():
    spec = mlp()
    del spec["graph"][0]["params"]["out_features"]
    issues = issues_of(spec)
    issue = issue_at(issues, "graph[0].params")
    assert "out_features" in issue.message


def test_constructor_own_error_transformer_layer():
    spec = seq_spec()
    spec["graph"][0]["params"]["encoder_layer"].update({"d_model": 10, "nhead": 3})
    issue = issue_at(issues_of(spec), "graph[0].params.encoder_layer")
    assert "TransformerEncoderLayer" in issue.message and "failed" in issue.message
    assert "divisible" in issue.message


def test_constructor_own_error_top_level_node():
    spec = mlp()
    spec["graph"].insert(0, {"name": "layer", "type": "torch.nn.TransformerEncoderLayer",
                             "params": {"d_model": 10, "nhead": 3}, "inputs": {"src": "x"}})
    spec["outputs"]["enc"] = "layer.output"
    issue = issue_at(issues_of(spec), "graph[0].params")
    assert "divisible" in issue.message


def test_nested_target_param_typo():
    spec = seq_spec()
    spec["graph"][0]["params"]["encoder_layer"]["n_head"] = spec["graph"][0]["params"]["encoder_layer"].pop("nhead")
    issue = issue_at(issues_of(spec), "graph[0].params.encoder_layer.n_head")
    assert issue.hint == "did you mean 'nhead'?"


def test_nested_target_must_be_a_module():
    spec = seq_spec()
    spec["graph"][0]["params"]["encoder_layer"]["_target_"] = "torch.nn.functional.relu"
    issue = issue_at(issues_of(spec), "graph[0].params.encoder_layer._target_")
    assert "function" in issue.message


def test_function_kwarg_typo():
    spec = mlp()
    spec["graph"][1] = {"name": "act", "type": "torch.nn.functional.dropout", "params": {"pp": 0.1},
                        "inputs": {"input": "hidden.output"}}
    issue = issue_at(issues_of(spec), "graph[1].params.pp")
    assert issue.hint == "did you mean 'p'?"


def test_unknown_input_keyword():
    spec = mlp()
    spec["graph"][2]["inputs"] = {"inptu": "act.output"}
    issue = issue_at(issues_of(spec), "graph[2].inputs.inptu")
    assert issue.hint == "did you mean 'input'?"


def test_shape_mismatch_names_failing_and_producing_nodes():
    spec = mlp()
    spec["graph"][2]["params"]["in_features"] = 6
    issues = issues_of(spec)
    assert len(issues) == 1
    issue = issues[0]
    assert issue.path == "graph[2]"
    assert "node 'head'" in issue.message and "torch.nn.Linear" in issue.message
    assert "act.output [2, 8]" in issue.message  # the producer and the shape it gave
    assert "6" in issue.message  # what the failing node expected


def test_shape_mismatch_between_two_producers():
    spec = two_towers(["hidden.output", "head.output"])
    spec["graph"][-1]["params"] = {"dim": 0}
    issue = issues_of(spec)[0]
    assert issue.path == "graph[3]"
    assert "node 'joined'" in issue.message
    assert "hidden.output" in issue.message and "head.output" in issue.message
    assert "[2, 8]" in issue.message and "[2, 2]" in issue.message


def test_shape_mismatch_inside_a_stacked_module():
    spec = residual(2, var="z")
    spec["modules"]["ResidualBlock"]["graph"][0]["params"]["in_features"] = 7
    issue = issues_of(spec)[0]
    assert issue.path == "modules.ResidualBlock.graph[0]"
    assert "node 'fc'" in issue.message and "z [2, 8]" in issue.message


def test_shape_mismatch_line_number(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text(
        "inputs:\n"
        "  x: {dtype: float32, shape: [null, 4], columns: [a, b, c, d]}\n"
        "graph:\n"
        "  - name: fc\n"
        "    type: torch.nn.Linear\n"
        "    params: {in_features: 5, out_features: 1}\n"
        "    inputs: {input: x}\n"
        "outputs:\n"
        "  y: fc.output\n"
    )
    issue = issues_of(path)[0]
    assert (issue.path, issue.file, issue.line) == ("graph[0]", str(path), 4)
    assert "x [2, 4]" in issue.message


def test_unknown_loss_type():
    spec = mlp(loss={"type": "torch.nn.CrossEntropyLos", "inputs": {"input": "logits", "target": "y"}})
    issue = issue_at(issues_of(spec), "loss.type")
    assert "unknown loss type" in issue.message
    assert issue.hint == "did you mean 'torch.nn.CrossEntropyLoss'?"


def test_a_layer_is_not_a_loss():
    spec = mlp(loss={"type": "torch.nn.Linear", "inputs": {"input": "logits", "target": "y"}})
    assert "not a loss" in issue_at(issues_of(spec), "loss.type").message


def test_loss_param_typo():
    spec = mlp(loss={"type": "torch.nn.BCEWithLogitsLoss", "inputs": {"input": "logits", "target": "y"},
                     "params": {"pos_wieght": 2.0}})
    assert issue_at(issues_of(spec), "loss.params.pos_wieght").hint == "did you mean 'pos_weight'?"


@pytest.mark.parametrize("short", ["BCEWithLogitsLoss", "mse_loss", "torch.nn.functional.cross_entropy"])
def test_loss_short_names(short):
    spec = mlp(loss={"type": short, "inputs": {"input": "logits", "target": "y"}})
    if short != "torch.nn.functional.cross_entropy":  # one value per row: the deep check runs the loss on it
        spec["graph"][2]["params"]["out_features"] = 1
    loaded = load_spec(spec)
    assert loaded.model.losses[0].type == short


@pytest.mark.parametrize("name", ["train", "forward", "parameters"])
def test_node_name_clashing_with_module_attributes(name):
    spec = mlp()
    spec["graph"][1]["name"] = name
    spec["graph"][2]["inputs"] = {"input": name}
    issue = issue_at(issues_of(spec), "graph[1].name")
    assert "clashes" in issue.message


def test_several_torch_issues_in_one_pass():
    spec = mlp()
    spec["graph"][0]["params"] = {"in_feature": 4, "out_features": 8}
    spec["graph"][2]["type"] = "torch.nn.Linaer"
    paths = {i.path for i in issues_of(spec)}
    assert {"graph[0].params.in_feature", "graph[2].type"} <= paths


# ----------------------------------------------------------------------------------------------
# hostile params (issue 15): `_target_` only where a module is built from it; loss weights are numbers


@pytest.mark.parametrize("node, path", [
    ({"name": "act", "type": "torch.nn.functional.relu", "inputs": {"input": "hidden.output"},
      "params": {"inplace": {"_target_": "os.system", "command": "touch pwned"}}}, "graph[1].params.inplace._target_"),
    ({"name": "act", "type": "torch.nn.ReLU", "inputs": {"input": "hidden.output"},
      "params": {"inplace": [{"_target_": "os.system"}]}}, "graph[1].params.inplace[0]._target_"),
])
def test_a_target_nothing_builds_is_refused(node, path):
    spec = mlp()
    spec["graph"][1] = node
    issue = issue_at(issues_of(spec), path)
    assert issue.message.startswith("_target_ is not read in") and "remove _target_" in issue.hint


@pytest.mark.parametrize("loss, path, message", [
    ({"type": "torch.nn.BCEWithLogitsLoss", "params": {"weight": {"_target_": "os.system", "command": "x"}}},
     "loss.params.weight._target_", "_target_ is not read in a loss's params"),
    ({"type": "torch.nn.functional.binary_cross_entropy_with_logits",
      "params": {"pos_weight": {"_target_": "os.system"}}}, "loss.params.pos_weight._target_", "_target_ is not read"),
    ({"type": "torch.nn.BCEWithLogitsLoss", "params": {"pos_weight": {"a": 1}}}, "loss.params.pos_weight",
     "expected a number or a list of numbers, got dict"),
    ({"type": "torch.nn.functional.binary_cross_entropy_with_logits", "params": {"pos_weight": "2"}},
     "loss.params.pos_weight", "expected a number or a list of numbers, got str"),
])
def test_loss_params_that_would_fail_in_training_are_refused_by_validate(loss, path, message):
    spec = mlp(loss={**loss, "inputs": {"input": "logits", "target": "y"}})
    spec["graph"][2]["params"]["out_features"] = 1
    assert message in issue_at(issues_of(spec), path).message


def test_a_number_or_a_list_of_numbers_is_a_loss_weight():
    spec = mlp(loss={"type": "torch.nn.BCEWithLogitsLoss", "inputs": {"input": "logits", "target": "y"},
                     "params": {"pos_weight": [2.0]}})
    spec["graph"][2]["params"]["out_features"] = 1
    assert load_spec(spec, check=True).model.losses[0].params == {"pos_weight": [2.0]}


# ----------------------------------------------------------------------------------------------
# the parameter limit (issue 15): counted on the meta device, before any memory is allocated


def _with_peak(check):
    """What ``check()`` returns, and the peak of Python-traced memory while it ran."""
    import tracemalloc

    tracemalloc.start()
    try:
        found = check()
        return found, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_huge_layer_is_refused_before_it_is_allocated(monkeypatch):
    spec = mlp()
    spec["graph"][0]["params"]["in_features"] = 2**31  # 8 GiB of float32 weights in one Linear
    issue, peak = _with_peak(lambda: issue_at(issues_of(spec), "graph[0]"))
    assert "more than the limit of 500,000,000; node 'hidden' alone has 17,179,869,192" in issue.message
    assert issue.hint == "set SPECML_MAX_PARAMS to allow more" and peak < 64 * 2**20
    monkeypatch.setenv("SPECML_MAX_PARAMS", "20")  # the limit can be set either way
    assert "more than the limit of 20" in issue_at(issues_of(mlp()), "graph[0]").message


def test_a_huge_activation_is_refused_before_it_is_allocated(monkeypatch):
    spec = mlp()
    spec["graph"][1:2] = [{"name": "wide", "type": "torch.unsqueeze", "params": {"dim": 2},
                           "inputs": ["hidden.output"]},
                          {"name": "up", "type": "torch.nn.Upsample", "params": {"scale_factor": 10**5},
                           "inputs": {"input": "wide.output"}},  # 1.6 million values (64 MB) for 2 rows
                          {"name": "act", "type": "torch.amax", "params": {"dim": 2}, "inputs": ["up.output"]}]
    assert load_spec(spec, check=True).model  # within the default limit (2**28 values)
    monkeypatch.setenv("SPECML_MAX_ACTIVATIONS", "1000000")
    issue, peak = _with_peak(lambda: issue_at(issues_of(spec), "graph[2]"))
    assert "a batch of 2 rows would make the nodes output 1,600," in issue.message
    assert "more than the limit of 1,000,000; node 'up' alone outputs 1,600,000" in issue.message
    assert issue.hint == "set SPECML_MAX_ACTIVATIONS to allow more" and peak < 16 * 2**20
