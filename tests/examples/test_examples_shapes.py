"""Golden shapes of every example: the spec loads with every check, builds, and a batch of 5 gives the pinned
output names, shapes and exact parameter count (each count is worked out by hand in the comments)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from specml.spec import load_spec
from testkit import EXAMPLES, model_from

# the categorical bands of pima_categorical share one vocabulary: 5 age bands + 6 BMI classes + 4 pregnancy
# bands + 3 glucose classes, 'normal' counted once (BMI and glucose) = 17 values, + id 0 = 18
DCN_VOCAB = {"bands": 18}

GOLDEN = {
    # 8*64+64 + 64*32+32 + 32*1+1
    "pima_mlp": ({"logits": (5, 1), "prediction": (5, 1)}, 2_689),
    # 13*32+32 + 32*3+3
    "wine_multiclass": ({"logits": (5, 3)}, 547),
    # 10*16+16 + 16*1+1
    "diabetes_regression": ({"progression": (5, 1)}, 193),
    # 3*3+3
    "linnerud_multioutput": ({"pred": (5, 3)}, 12),
    # embeddings 4 columns * 18 * 4 = 288; cross 2 * (22*8 + 8*22+22) = 748; deep 22*32+32 + 32*16+16 = 1264;
    # head 38+1 = 39
    "dcn_v2": ({"logits": (5, 1)}, 2_339),
    # experts 4 * (7*16+16) = 512; gates 2 * (7*4+4) = 64; heads 2 * (16+1) = 34
    "mmoe_two_tasks": ({"diabetes_logit": (5, 1), "bmi_pred": (5, 1)}, 610),
    # tokens 25*64 = 1600; positions 9*64 = 576; 2 encoder layers * (attention 3*64*64+3*64 + 64*64+64,
    # feed-forward 64*128+128 + 128*64+64, 2 layer norms 2*128) = 2 * 33,472; head 64*24+24 = 1560
    "collatz_transformer": ({"logits": (5, 8, 25)}, 70_745),
}


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(1)


def build(example: str):
    spec = load_spec(EXAMPLES / example / "model.yaml", check=True).model
    torch.manual_seed(0)
    return spec, model_from(spec, vocab_sizes=DCN_VOCAB if example == "dcn_v2" else None)


@pytest.mark.parametrize("example", list(GOLDEN))
def test_golden_shapes_and_parameter_count(example):
    shapes, params = GOLDEN[example]
    _, model = build(example)
    assert sum(p.numel() for p in model.parameters()) == params
    batch = model.example_inputs(batch_size=5)
    for mode in ("train", "eval"):
        model.train(mode == "train")
        out = model(**batch)
        assert {k: tuple(v.shape) for k, v in out.items()} == shapes, mode
        assert all(torch.isfinite(v).all() for v in out.values())


def test_every_example_directory_is_pinned():
    dirs = {p.parent.name for p in EXAMPLES.glob("*/model.yaml")}
    mine = set(GOLDEN) - {"pima_mlp"}
    assert mine <= dirs
    for name in GOLDEN:
        assert (EXAMPLES / name / "trainer.yaml").exists()
    for name in mine:
        assert (EXAMPLES / name / "README.md").exists()


def test_collatz_encoder_on_real_padded_digits():
    """A batch of real rows: lists of different lengths padded with 24; padded keys are masked, and the
    output keeps all L positions in eval mode too (no nested-tensor shortcut)."""
    from specml.data.collatz import PAD, collatz_arrow

    spec, model = build("collatz_transformer")
    L = spec.inputs["tokens"].shape[1]
    n = np.array([1, 27, 24 * 24 * 5 + 7, 24**4 + 1, 2**22 - 1])
    digits = collatz_arrow(n).column("n_digits").to_pylist()
    tokens = torch.full((5, L), PAD, dtype=torch.int64)
    for i, d in enumerate(digits):
        tokens[i, :len(d)] = torch.tensor(d)
    assert tokens[0].tolist() == [1] + [PAD] * (L - 1)
    assert tokens[2, :3].tolist() == [7, 0, 5]            # the interior zero is a digit, not padding
    model.eval()
    with torch.no_grad():
        logits = model(tokens=tokens)["logits"]
        assert logits.shape == (5, L, 25) and torch.isfinite(logits).all()
        # the model reads the digits: a longer number in row 0 changes row 0 and no other row
        other = tokens.clone()
        other[0, 1:] = 3  # the first row would then read as a longer number
        changed = model(tokens=other)["logits"]
        assert not torch.allclose(changed[0], logits[0])  # (sanity: the input does matter)
        assert torch.allclose(changed[1:], logits[1:])    # rows are independent
