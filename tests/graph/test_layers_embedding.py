"""specml.layers.FeatureEmbedding: one table per categorical column, concat/stack, id 0 = unknown,
and vocabulary sizes filled by the builder from the data (or the spec, or a placeholder when validating)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
import torch
from torch import nn

from specml.graph import build_model
from specml.graph.check import PLACEHOLDER_VOCAB, check_model_torch
from specml.graph.layers import FeatureEmbedding
from specml.spec import SpecError, load_model_spec, load_spec
from testkit import FIXTURES as ALL_FIXTURES
from testkit import invoke, model_from

torch.set_num_threads(1)

FIXTURES = ALL_FIXTURES / "layers"


def ids(rows) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.int64)


@pytest.mark.parametrize("batch", [1, 6])
def test_concat_and_stack_shapes(batch):
    x = torch.randint(0, 10, (batch, 3))
    assert FeatureEmbedding(10, 4, num_columns=3)(x).shape == (batch, 12)
    assert FeatureEmbedding(10, 4, num_columns=3, mode="stack")(x).shape == (batch, 3, 4)
    assert FeatureEmbedding([10, 11, 12], 4)(x).shape == (batch, 12)


def test_concat_is_the_stacked_vectors_flattened_in_column_order():
    torch.manual_seed(0)
    emb = FeatureEmbedding([5, 6], 3)
    x = ids([[1, 4], [0, 5]])
    out = emb(x)
    torch.testing.assert_close(out[:, :3], emb.tables[0](x[:, 0]))
    torch.testing.assert_close(out[:, 3:], emb.tables[1](x[:, 1]))
    emb.mode = "stack"
    torch.testing.assert_close(emb(x).flatten(1), out)


def test_each_column_has_its_own_table():
    torch.manual_seed(0)
    emb = FeatureEmbedding(10, 4, num_columns=3)
    a = emb(ids([[1, 2, 3]]))
    b = emb(ids([[1, 7, 3]]))  # only column 2 changes
    torch.testing.assert_close(a[:, :4], b[:, :4])
    torch.testing.assert_close(a[:, 8:], b[:, 8:])
    assert not torch.allclose(a[:, 4:8], b[:, 4:8])
    same_id = emb(ids([[5, 5, 5]]))  # the same id in two columns means two different things
    assert not torch.allclose(same_id[:, :4], same_id[:, 4:8])
    assert [t.num_embeddings for t in FeatureEmbedding([3, 9], 2).tables] == [3, 9]


def test_unknown_id_zero_is_a_learned_vector_or_a_fixed_zero():
    out = FeatureEmbedding(4, 2, num_columns=2)(ids([[0, 0]]))
    assert out.shape == (1, 4) and out.abs().sum() > 0
    padded = FeatureEmbedding(4, 2, num_columns=2, padding_idx=0)
    x = ids([[0, 3], [2, 0]])
    out = padded(x)
    assert torch.equal(out[0, :2], torch.zeros(2)) and torch.equal(out[1, 2:], torch.zeros(2))
    out.sum().backward()
    assert all(not t.weight.grad[0].any() for t in padded.tables)
    assert padded.tables[1].weight.grad[3].abs().sum() > 0


def test_one_dimensional_ids_are_one_column():
    assert FeatureEmbedding(5, 3, num_columns=1)(ids([1, 2, 0, 4])).shape == (4, 3)


def test_gradients_reach_every_table():
    emb = FeatureEmbedding([4, 5, 6], 3, mode="stack")
    (emb(ids([[1, 2, 3], [0, 4, 5]])) * torch.randn(2, 3, 3)).sum().backward()
    assert all(t.weight.grad is not None and t.weight.grad.abs().sum() > 0 for t in emb.tables)


@pytest.mark.parametrize("kwargs, field, words", [
    ({"num_embeddings": 5, "embedding_dim": 3}, "num_columns", "needed when num_embeddings is one number"),
    ({"num_embeddings": [5, 6], "embedding_dim": 3, "num_columns": 3}, "num_columns", "lists 2 sizes"),
    ({"num_embeddings": [], "embedding_dim": 3}, "num_embeddings", "at least one"),
    ({"num_embeddings": 5, "embedding_dim": 0, "num_columns": 1}, "embedding_dim", "positive integer"),
    ({"num_embeddings": 5, "embedding_dim": 3, "num_columns": 1, "mode": "stak"}, "mode", "did you mean 'stack'"),
    ({"num_embeddings": 5, "embedding_dim": 3, "num_columns": 1, "padding_idx": 5}, "padding_idx", r"\[0, 5\)"),
])
def test_bad_arguments_name_the_parameter(kwargs, field, words):
    with pytest.raises(ValueError, match=words) as info:
        FeatureEmbedding(**kwargs)
    assert info.value.param == field


def test_float_input_and_wrong_column_count_are_clear_errors():
    emb = FeatureEmbedding(5, 3, num_columns=2)
    with pytest.raises(TypeError, match="integer ids, got torch.float32"):
        emb(torch.zeros(2, 2))
    with pytest.raises(ValueError, match=r"\[\.\.\., 2\] \(num_columns=2\), got \[2, 3\]"):
        emb(ids([[1, 2, 3], [1, 2, 3]]))


# ----------------------------------------------------------------------------------------------
# vocabulary sizes from the data


def cat_spec(*, vocab_size: int | None = None, params: dict | None = None, shape=(None, 3),
             type_: str = "specml.layers.FeatureEmbedding") -> dict:
    cols = ["city", "device", "channel"][:shape[-1]] if len(shape) == 2 else ["city"]
    inp = {"dtype": "int64", "shape": list(shape), "columns": cols, "categorical": True}
    if vocab_size is not None:
        inp["vocab_size"] = vocab_size
    return {"inputs": {"cats": inp},
            "graph": [{"name": "emb", "type": type_, "params": params or {"embedding_dim": 4},
                       "inputs": {"input": "cats"}}],
            "outputs": {"vec": "emb.output"}}


def test_build_model_fills_sizes_from_vocab_sizes():
    model = model_from(cat_spec(), vocab_sizes={"cats": 23})
    emb = model.nodes["emb"]
    assert [t.num_embeddings for t in emb.tables] == [23, 23, 23] and emb.num_columns == 3
    batch = model.example_inputs(5)
    assert batch["cats"].max() < 23
    assert model(**batch)["vec"].shape == (5, 12)


def test_spec_vocab_size_is_used_without_data():
    model = model_from(cat_spec(vocab_size=9))
    assert {t.num_embeddings for t in model.nodes["emb"].tables} == {9}


def test_one_dimensional_categorical_input():
    model = model_from(cat_spec(shape=(None,)), vocab_sizes={"cats": 4})
    assert model.nodes["emb"].num_columns == 1
    assert model(cats=ids([0, 3, 1]))["vec"].shape == (3, 4)


def test_unknown_vocabulary_is_a_field_path_error():
    with pytest.raises(SpecError) as info:
        model_from(cat_spec())
    issue, = info.value.issues
    assert issue.path == "graph[0].params.num_embeddings" and "vocabulary size of input 'cats' is unknown" in str(issue)


def test_given_size_smaller_than_the_vocabulary_is_an_error():
    with pytest.raises(SpecError) as info:
        model_from(cat_spec(params={"num_embeddings": 5, "embedding_dim": 4}), vocab_sizes={"cats": 8})
    issue, = info.value.issues
    assert issue.path == "graph[0].params.num_embeddings" and "smaller than the vocabulary" in issue.message
    ok = model_from(cat_spec(params={"num_embeddings": [8, 9, 10], "embedding_dim": 4}), vocab_sizes={"cats": 8})
    assert [t.num_embeddings for t in ok.nodes["emb"].tables] == [8, 9, 10]


def test_torch_embedding_is_filled_the_same_way():
    model = model_from(cat_spec(type_="torch.nn.Embedding"), vocab_sizes={"cats": 17})
    emb = model.nodes["emb"]
    assert isinstance(emb, nn.Embedding) and emb.num_embeddings == 17
    assert model(**model.example_inputs(2))["vec"].shape == (2, 3, 4)


def test_validate_uses_a_placeholder_and_says_so():
    checked = check_model_torch(load_model_spec(cat_spec(), check=False))
    assert not checked.issues
    assert checked.placeholder_vocab == ["cats"]
    node, = checked.nodes
    assert node.placeholder and node.params == 3 * PLACEHOLDER_VOCAB * 4 and node.shape == "[B, 12]"
    known = check_model_torch(load_model_spec(cat_spec(vocab_size=11), check=False))
    assert known.placeholder_vocab == [] and not known.nodes[0].placeholder and known.nodes[0].params == 3 * 11 * 4


def test_vocabulary_fitted_on_the_training_rows_end_to_end():
    from specml.data.tensors import fit

    spec = load_spec(FIXTURES / "dcn_v2.yaml", check=True).model
    rng = np.random.default_rng(0)
    n = 40
    table = pa.table({
        **{f"d{i}": rng.normal(size=n) for i in range(6)},
        "city": rng.choice(["paris", "oslo", "lima", "rome"], n),
        "device": rng.choice(["ios", "android"], n),
        "channel": [None if i % 7 == 0 else f"c{i % 5}" for i in range(n)],
        "clicked": rng.integers(0, 2, n),
    })
    prep = fit(spec, table, spec.losses[0], np.arange(30))
    sizes = prep.vocab_sizes()
    vocab = len(set(table.column("city").to_pylist()[:30]) | set(table.column("device").to_pylist()[:30])
                | {v for v in table.column("channel").to_pylist()[:30] if v is not None}) + 1
    assert sizes == {"cats": vocab}
    model = model_from(spec, vocab_sizes=sizes).eval()
    assert {t.num_embeddings for t in model.nodes["cat_emb"].tables} == {vocab}
    unseen = table.slice(30).set_column(table.schema.get_field_index("city"), "city",
                                        pa.array(["berlin"] * 10))
    inputs, _ = prep.transform(unseen)
    assert (inputs["cats"][:, 0] == 0).all()  # an unseen value is id 0 = unknown
    with torch.no_grad():
        out = model(**inputs)
    assert out["logits"].shape == (10, 1) and torch.isfinite(out["logits"]).all()


# ----------------------------------------------------------------------------------------------
# spec fixture and CLI


def test_stacked_embeddings_feed_attention():
    loaded = load_spec(FIXTURES / "embedding_stack.yaml", check=True)
    shapes = {n.name: n.shape for n in loaded.checked.nodes}
    assert shapes["emb"] == "[B, 4, 8]" and shapes["attn"] == "([B, 4, 8], [B, 4, 4])"
    model = build_model(loaded.model).eval()
    assert {t.num_embeddings for t in model.nodes["emb"].tables} == {12}
    out = model(cats=ids([[0, 1, 11, 3], [5, 0, 0, 0]]))
    assert out["logits"].shape == (2, 1) and out["weights"].shape == (2, 4, 4)


def test_describe_marks_placeholder_counts(tmp_path):
    result = invoke("describe", FIXTURES / "embedding_stack.yaml", home=tmp_path)
    assert result.returncode == 0, result.stderr
    row = next(line for line in result.stdout.splitlines() if "FeatureEmbedding" in line)
    assert "[B, 4, 8]" in row and "384" in row and "*" not in row  # 4 columns x 12 ids x 8, vocab_size given
    assert "placeholder" not in result.stdout


def test_placeholder_vocab_sizes_build_what_describe_counts():
    from specml.graph.check import placeholder_vocab_sizes

    loaded = load_spec(FIXTURES / "dcn_v2.yaml", check=True)
    sizes = placeholder_vocab_sizes(loaded.model)
    assert sizes == {"cats": PLACEHOLDER_VOCAB}
    model = build_model(loaded.model, vocab_sizes=sizes)
    assert sum(p.numel() for p in model.parameters()) == sum(n.params for n in loaded.checked.nodes)
