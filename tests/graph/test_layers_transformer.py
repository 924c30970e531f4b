"""torch's attention layers from a spec: TransformerEncoderLayer (batch_first), TransformerEncoder with
a nested ``encoder_layer: {_target_: ...}``, MultiheadAttention's tuple read as ``.output.0`` /
``.output.1``, and nn.Embedding over int64 token ids ``[null, L]``."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from specml.graph import build_model
from specml.spec import SpecError, load_spec
from specml.spec.yaml_io import read_yaml
from testkit import FIXTURES, invoke, model_from

torch.set_num_threads(1)

FIXTURE = FIXTURES / "layers" / "transformer.yaml"


def fixture_dict() -> dict:
    raw = read_yaml(FIXTURE)
    return copy.deepcopy(raw[0] if isinstance(raw, tuple) else raw)


def test_fixture_loads_checks_and_describes_shapes():
    loaded = load_spec(FIXTURE, check=True)
    shapes = {n.name: n.shape for n in loaded.checked.nodes}
    assert shapes == {"embed": "[B, 12, 16]", "layer": "[B, 12, 16]", "encoder": "[B, 12, 16]",
                      "attn": "([B, 12, 16], [B, 12, 12])", "pooled": "[B, 16]", "head": "[B, 3]"}
    params = {n.name: n.params for n in loaded.checked.nodes}
    assert params["embed"] == 50 * 16
    assert params["encoder"] == 2 * params["layer"]
    assert loaded.checked.output_shapes == {"logits": "[B, 3]", "attention": "[B, 12, 12]"}


def test_built_modules_follow_the_spec():
    model = model_from(FIXTURE)
    layer, encoder, attn = model.nodes["layer"], model.nodes["encoder"], model.nodes["attn"]
    assert isinstance(layer, nn.TransformerEncoderLayer) and layer.self_attn.batch_first
    assert isinstance(encoder, nn.TransformerEncoder) and len(encoder.layers) == 2
    assert encoder.layers[0] is not encoder.layers[1]
    assert all(lyr.self_attn.batch_first and lyr.self_attn.num_heads == 4 for lyr in encoder.layers)
    assert isinstance(attn, nn.MultiheadAttention) and attn.batch_first and attn.num_heads == 2
    emb = model.nodes["embed"]
    assert isinstance(emb, nn.Embedding) and emb.padding_idx == 0


@pytest.mark.parametrize("batch", [1, 5])
def test_forward_equals_the_modules_composed_by_hand(batch):
    model = model_from(FIXTURE).eval()
    inputs = model.example_inputs(batch)
    tokens = inputs["tokens"]
    assert tokens.dtype == torch.int64 and tokens.shape == (batch, 12) and 0 <= tokens.min() and tokens.max() < 50
    with torch.no_grad():
        out = model(**inputs)
        h = model.nodes["encoder"](model.nodes["layer"](model.nodes["embed"](tokens)))
        attended, weights = model.nodes["attn"](h, h, h)
        logits = model.nodes["head"](attended.mean(dim=1))
    torch.testing.assert_close(out["logits"], logits)
    torch.testing.assert_close(out["attention"], weights)
    torch.testing.assert_close(out["attention"].sum(-1), torch.ones(batch, 12))


def test_one_training_step_reaches_every_parameter():
    model = model_from(FIXTURE).train()
    inputs = {"tokens": torch.randint(1, 50, (4, 12))}
    out = model(**inputs)
    nn.functional.cross_entropy(out["logits"], torch.tensor([0, 1, 2, 0])).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert missing == []


def test_padding_mask_from_another_node():
    spec = fixture_dict()
    spec["graph"].append({"name": "pad", "type": "torch.eq", "params": {"other": 0}, "inputs": {"input": "tokens"}})
    spec["graph"][2]["inputs"] = {"src": "layer.output", "src_key_padding_mask": "pad.output"}
    model = build_model(load_spec(spec, check=True).model).eval()
    tokens = torch.randint(1, 50, (2, 12))
    tokens[0, 6:] = 0
    with torch.no_grad():
        out = model(tokens=tokens)
        h = model.nodes["layer"](model.nodes["embed"](tokens))
        masked = model.nodes["encoder"](h, src_key_padding_mask=tokens.eq(0))
        unmasked = model.nodes["encoder"](h)
        attended, _ = model.nodes["attn"](masked, masked, masked)
    assert out["logits"].shape == (2, 3)
    assert not torch.allclose(masked[0], unmasked[0])  # the mask matters for the padded row...
    torch.testing.assert_close(out["logits"], model.nodes["head"](attended.mean(1)))  # ...and reached the encoder


def issues_of(spec) -> list:
    with pytest.raises(SpecError) as info:
        load_spec(spec, check=True)
    return info.value.issues


def test_reading_the_whole_attention_tuple_as_a_tensor_is_an_error():
    spec = fixture_dict()
    spec["graph"][4]["inputs"] = {"input": "attn.output"}
    issue, = issues_of(spec)
    assert issue.path == "graph[4]" and "attn.output" in issue.message and "([2, 12, 16], [2, 12, 12])" in issue.message


def test_reading_a_third_element_of_the_attention_tuple_is_an_error():
    spec = fixture_dict()
    spec["outputs"]["attention"] = "attn.output.2"
    issue, = issues_of(spec)
    assert issue.path == "outputs.attention" and "tuple of 2 elements" in issue.message


@pytest.mark.parametrize("change, path, words", [
    (lambda s: s["graph"][2]["params"]["encoder_layer"].update(_target_="torch.nn.TransformerEncoderLayr"),
     "graph[2].params.encoder_layer._target_", "did you mean 'torch.nn.TransformerEncoderLayer'"),
    (lambda s: s["graph"][2]["params"]["encoder_layer"].update(n_head=4),
     "graph[2].params.encoder_layer.n_head", "did you mean 'nhead'"),
    (lambda s: s["graph"][2]["params"]["encoder_layer"].update(nhead=5),
     "graph[2].params.encoder_layer", "divisible"),
    (lambda s: s["graph"][1]["params"].update(batch_frist=True),
     "graph[1].params.batch_frist", "did you mean 'batch_first'"),
    (lambda s: s["graph"][3]["params"].update(embed_dim=8),
     "graph[3]", "failed in a dry forward pass"),
])
def test_mistakes_are_field_path_errors(change, path, words):
    spec = fixture_dict()
    change(spec)
    issues = issues_of(spec)
    assert issues[0].path == path and words in str(issues[0]), [str(i) for i in issues]


def test_describe_prints_shapes_and_parameter_counts(tmp_path):
    result = invoke("describe", FIXTURE, home=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = {line.split("│")[1].strip(): [c.strip() for c in line.split("│")[2:-1]]
            for line in result.stdout.splitlines() if line.count("│") >= 5}
    assert rows["embed"] == ["torch.nn.Embedding", "[B, 12, 16]", "800"]
    assert rows["attn"][:2] == ["torch.nn.MultiheadAttention", "([B, 12, 16], [B, 12, 12])"]
    assert rows["encoder"][0] == "torch.nn.TransformerEncoder"
    total = sum(p.numel() for p in model_from(FIXTURE).parameters())
    assert f"parameters: {total:,}" in result.stdout
