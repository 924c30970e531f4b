"""Weights and checkpoints: safetensors round trips, errors naming keys, exact resume, atomic writes."""

from __future__ import annotations

import collections
import json
import math
import random
import struct

import numpy as np
import pytest
import torch
from safetensors import safe_open
from torch import nn
from torch.optim import lr_scheduler

from specml.data.files import atomic_open, atomic_write_bytes, atomic_write_json, atomic_write_text
from specml.train.checkpoint import (
    CheckpointError,
    capture_rng_state,
    decode,
    encode,
    load_checkpoint,
    load_weights,
    restore_rng_state,
    save_checkpoint,
    save_weights,
)

torch.set_num_threads(1)


def read_header(path) -> tuple[dict, int]:
    """The safetensors header, parsed by hand: 8-byte little-endian length, then JSON."""
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8:8 + n]), len(data) - 8 - n


# ----------------------------------------------------------------------------------------------
# weights


class Tied(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(11, 6)
        self.head = nn.Linear(6, 11, bias=False)
        self.head.weight = self.emb.weight

    def forward(self, x):
        return self.head(self.emb(x))


class Odd(nn.Module):
    """A non-contiguous parameter, an integer buffer (BatchNorm) and a zero-dim buffer."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.randn(5, 3).t())
        self.bn = nn.BatchNorm1d(5)
        self.register_buffer("scale", torch.tensor(2.5))

    def forward(self, x):
        return self.bn(x @ self.w) * self.scale


MODELS = {
    "linear-stack": (lambda: nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)), lambda: torch.randn(3, 4)),
    "embedding": (lambda: nn.Embedding(20, 5, padding_idx=0), lambda: torch.tensor([[1, 2, 0], [3, 4, 19]])),
    "transformer": (lambda: nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16, batch_first=True), 2,
                                                  enable_nested_tensor=False),
                    lambda: torch.randn(2, 5, 8)),
    "tied": (Tied, lambda: torch.tensor([[1, 5, 10]])),
    "odd": (Odd, lambda: torch.randn(4, 3)),
}


@pytest.mark.parametrize("kind", MODELS)
def test_weights_round_trip(tmp_path, kind):
    make, example = MODELS[kind]
    torch.manual_seed(0)
    source = make()
    if kind == "odd":  # give the BatchNorm buffers values other than their defaults
        source.train()(example())
    source.eval()
    torch.manual_seed(1)
    target = make().eval()
    x = example()
    assert not torch.equal(source(x), target(x))

    path = tmp_path / "w.safetensors"
    save_weights(path, source, {"epoch": "3"})
    metadata = load_weights(path, target)

    assert metadata["epoch"] == "3" and metadata["specml.kind"] == "weights"
    for key, value in source.state_dict().items():
        assert torch.equal(target.state_dict()[key], value), key
        assert target.state_dict()[key].dtype == value.dtype
    assert torch.equal(source(x), target(x))
    assert [p.name for p in tmp_path.iterdir()] == ["w.safetensors"]


def test_tied_weights_stay_tied(tmp_path):
    torch.manual_seed(0)
    source = Tied()
    save_weights(tmp_path / "w.safetensors", source)
    target = Tied()
    load_weights(tmp_path / "w.safetensors", target)
    assert target.head.weight is target.emb.weight
    assert torch.equal(target.emb.weight, source.emb.weight)


def test_weights_file_is_plain_safetensors(tmp_path):
    model = MODELS["transformer"][0]()
    path = tmp_path / "w.safetensors"
    save_weights(path, model, {"note": "hello"})

    header, data_len = read_header(path)
    state = model.state_dict()
    assert set(header) == set(state) | {"__metadata__"}
    assert header["__metadata__"] == {"format": "pt", "note": "hello", "specml.kind": "weights"}
    # the tensors' byte ranges tile the data section exactly: nothing else is in the file
    ranges = sorted(tuple(v["data_offsets"]) for k, v in header.items() if k != "__metadata__")
    assert ranges[0][0] == 0 and ranges[-1][1] == data_len
    assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:]))
    with safe_open(str(path), framework="pt") as f:
        assert set(f.keys()) == set(state)
        for key in f.keys():
            assert torch.equal(f.get_tensor(key), state[key])


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.compile's imports warn about torch.jit
def test_wrapped_models_save_the_inner_keys(tmp_path):
    torch.manual_seed(0)
    inner = nn.Sequential(nn.Linear(3, 3))
    save_weights(tmp_path / "a.safetensors", nn.DataParallel(inner))
    save_weights(tmp_path / "b.safetensors", torch.compile(inner))  # lazy: nothing is compiled
    for name in ("a", "b"):
        target = nn.Sequential(nn.Linear(3, 3))
        load_weights(tmp_path / f"{name}.safetensors", target)
        assert torch.equal(target[0].weight, inner[0].weight)


def test_mismatched_keys_are_named(tmp_path):
    path = tmp_path / "w.safetensors"
    save_weights(path, nn.Sequential(nn.Linear(4, 8), nn.Linear(8, 2)))

    with pytest.raises(CheckpointError) as info:
        load_weights(path, nn.Sequential(nn.Linear(4, 8), nn.Linear(8, 2), nn.Linear(2, 1)))
    assert "missing from the file: 2.weight, 2.bias" in str(info.value)

    with pytest.raises(CheckpointError) as info:
        load_weights(path, nn.Sequential(nn.Linear(4, 8)))
    assert "not in the model: 1.bias, 1.weight" in str(info.value)

    with pytest.raises(CheckpointError) as info:
        load_weights(path, nn.Sequential(nn.Linear(4, 8), nn.Linear(8, 3)))
    message = str(info.value)
    assert "1.weight (file [2, 8], model [3, 8])" in message and "1.bias (file [2], model [3])" in message


def test_non_strict_loads_the_common_keys(tmp_path):
    torch.manual_seed(0)
    source = nn.Sequential(nn.Linear(4, 8), nn.Linear(8, 2))
    save_weights(tmp_path / "w.safetensors", source)
    target = nn.Sequential(nn.Linear(4, 8), nn.Linear(8, 2), nn.Linear(2, 1))
    load_weights(tmp_path / "w.safetensors", target, strict=False)
    assert torch.equal(target[1].weight, source[1].weight)
    with pytest.raises(CheckpointError, match="shapes differ"):  # a different shape is never loaded
        load_weights(tmp_path / "w.safetensors", nn.Sequential(nn.Linear(4, 9)), strict=False)


def test_not_a_safetensors_file(tmp_path):
    path = tmp_path / "w.safetensors"
    path.write_bytes(b"\x80\x04this is not safetensors")
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        load_weights(path, nn.Linear(2, 2))
    with pytest.raises(FileNotFoundError):
        load_weights(tmp_path / "missing.safetensors", nn.Linear(2, 2))


def test_weights_metadata_must_be_strings(tmp_path):
    with pytest.raises(TypeError, match="strings only"):
        save_weights(tmp_path / "w.safetensors", nn.Linear(2, 2), {"epoch": 3})
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------------------------
# exact resume


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 1))

    def forward(self, x):
        return self.body(x)


OPTIMIZERS = {
    "adam": lambda p: torch.optim.Adam(p, lr=0.02),
    "adamw": lambda p: torch.optim.AdamW(p, lr=0.02, weight_decay=0.1, amsgrad=True),
    "sgd-momentum": lambda p: torch.optim.SGD(p, lr=0.02, momentum=0.9, nesterov=True),
}
SCHEDULERS = {
    "step": lambda o: lr_scheduler.StepLR(o, step_size=2, gamma=0.7),
    "cosine": lambda o: lr_scheduler.CosineAnnealingLR(o, T_max=7),
    "plateau": lambda o: lr_scheduler.ReduceLROnPlateau(o, factor=0.5, patience=0, threshold=0.5),
}


def build(opt: str, sched: str, seed: int):
    torch.manual_seed(seed)
    model = Net()
    optimizer = OPTIMIZERS[opt](model.parameters())
    return model, optimizer, SCHEDULERS[sched](optimizer)


def train(model, optimizer, scheduler, steps: int) -> list[float]:
    """Each step draws from all three generators: torch (data, dropout), numpy (order), python (noise)."""
    model.train()
    losses = []
    for _ in range(steps):
        x = torch.randn(8, 6)
        order = torch.from_numpy(np.random.permutation(8))
        y = x[:, :1] * 2 - x[:, 1:2] + random.gauss(0, 0.5)
        loss = nn.functional.mse_loss(model(x[order]), y[order])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if isinstance(scheduler, lr_scheduler.ReduceLROnPlateau):
            scheduler.step(loss.item())
        else:
            scheduler.step()
        losses.append(loss.item())
    return losses


def seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@pytest.mark.parametrize("sched", SCHEDULERS)
@pytest.mark.parametrize("opt", OPTIMIZERS)
def test_resume_is_bit_identical(tmp_path, opt, sched):
    path = tmp_path / "last.safetensors"
    seed_all(0)
    model, optimizer, scheduler = build(opt, sched, seed=0)
    train(model, optimizer, scheduler, 5)
    assert optimizer.param_groups[0]["lr"] != 0.02  # the scheduler has done something worth saving
    save_checkpoint(path, model=model, optimizer=optimizer, scheduler=scheduler,
                    state={"epoch": 5, "best": math.inf, "history": {"loss": [1.5, math.nan]}})
    expected = train(model, optimizer, scheduler, 6)

    seed_all(123)  # the generators are elsewhere now; the checkpoint must put them back
    model2, optimizer2, scheduler2 = build(opt, sched, seed=99)
    state = load_checkpoint(path, model=model2, optimizer=optimizer2, scheduler=scheduler2)
    assert state["epoch"] == 5 and state["best"] == math.inf and math.isnan(state["history"]["loss"][1])
    resumed = train(model2, optimizer2, scheduler2, 6)

    assert resumed == expected
    for (key, a), b in zip(model.state_dict().items(), model2.state_dict().values()):
        assert torch.equal(a, b), key
    assert optimizer2.state_dict()["param_groups"] == optimizer.state_dict()["param_groups"]
    assert scheduler2.state_dict() == scheduler.state_dict()


def test_resume_without_the_rng_state_differs(tmp_path):
    """The control for the test above: with dropout and random data, the RNG state is what matters."""
    path = tmp_path / "last.safetensors"
    seed_all(0)
    model, optimizer, scheduler = build("adam", "step", seed=0)
    train(model, optimizer, scheduler, 3)
    save_checkpoint(path, model=model, optimizer=optimizer, scheduler=scheduler)
    expected = train(model, optimizer, scheduler, 3)
    seed_all(123)
    model2, optimizer2, scheduler2 = build("adam", "step", seed=0)
    load_checkpoint(path, model=model2, optimizer=optimizer2, scheduler=scheduler2, restore_rng=False)
    assert train(model2, optimizer2, scheduler2, 3) != expected


def test_checkpoint_layout(tmp_path):
    path = tmp_path / "c.safetensors"
    seed_all(0)
    model, optimizer, scheduler = build("adam", "plateau", seed=0)
    save_checkpoint(path, model=model, optimizer=optimizer, scheduler=scheduler, state={"epoch": 0})  # before a step
    train(model, optimizer, scheduler, 1)
    save_checkpoint(path, model=model, optimizer=optimizer, scheduler=scheduler, state={"epoch": 1})

    with safe_open(str(path), framework="pt") as f:
        keys = set(f.keys())
        metadata = f.metadata()
    assert {f"model.{k}" for k in model.state_dict()} <= keys
    assert {"optim.state.0.step", "optim.state.0.exp_avg", "optim.state.0.exp_avg_sq", "rng.torch"} <= keys
    assert metadata["specml.kind"] == "checkpoint"
    sched_json = json.loads(metadata["specml.scheduler"])
    assert sched_json["mode_worse"] == {"$float": "inf"}  # ReduceLROnPlateau's inf survives as JSON
    optim_json = json.loads(metadata["specml.optimizer"])
    assert optim_json["param_groups"][0]["betas"] == {"$tuple": [0.9, 0.999]}
    assert json.loads(metadata["specml.rng"])["numpy"]["bit_generator"] == "MT19937"
    assert json.loads(metadata["specml.state"]) == {"epoch": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["c.safetensors"]

    # a checkpoint's model part loads with load_weights; a weights file is not a checkpoint
    fresh = Net()
    load_weights(path, fresh)
    assert torch.equal(fresh.body[0].weight, model.body[0].weight)
    save_weights(tmp_path / "w.safetensors", model)
    with pytest.raises(CheckpointError, match="not a specml checkpoint"):
        load_checkpoint(tmp_path / "w.safetensors", model=fresh)


def test_plateau_before_any_step_round_trips(tmp_path):
    model, optimizer, scheduler = build("sgd-momentum", "plateau", seed=0)
    save_checkpoint(tmp_path / "c.safetensors", model=model, optimizer=optimizer, scheduler=scheduler)
    model2, optimizer2, scheduler2 = build("sgd-momentum", "plateau", seed=1)
    scheduler2.best = 0.0
    load_checkpoint(tmp_path / "c.safetensors", model=model2, optimizer=optimizer2, scheduler=scheduler2)
    assert scheduler2.best == math.inf and scheduler2.state_dict() == scheduler.state_dict()


def test_float_step_and_multistep_counter_round_trip(tmp_path):
    seed_all(0)
    model, optimizer, _ = build("adam", "step", seed=0)
    scheduler = lr_scheduler.MultiStepLR(optimizer, milestones=[2, 4], gamma=0.5)
    train(model, optimizer, scheduler, 3)
    for state in optimizer.state.values():  # 'step' as a float, as older torch versions kept it
        state["step"] = float(state["step"])
    save_checkpoint(tmp_path / "c.safetensors", model=model, optimizer=optimizer, scheduler=scheduler)
    with safe_open(str(tmp_path / "c.safetensors"), framework="pt") as f:
        assert "optim.state.0.step" not in f.keys()
        assert json.loads(f.metadata()["specml.optimizer"])["state"]["$dict"][0] == [0, {
            "step": 3.0, "exp_avg": {"$tensor": "optim.state.0.exp_avg"},
            "exp_avg_sq": {"$tensor": "optim.state.0.exp_avg_sq"}}]
    for state in optimizer.state.values():  # torch 2.13's Adam steps only with a tensor 'step'
        state["step"] = torch.tensor(state["step"])
    expected = train(model, optimizer, scheduler, 3)

    model2, optimizer2, _ = build("adam", "step", seed=1)
    scheduler2 = lr_scheduler.MultiStepLR(optimizer2, milestones=[7], gamma=0.5)
    load_checkpoint(tmp_path / "c.safetensors", model=model2, optimizer=optimizer2, scheduler=scheduler2)
    assert scheduler2.milestones == collections.Counter({2: 1, 4: 1})
    assert isinstance(scheduler2.milestones, collections.Counter)
    assert train(model2, optimizer2, scheduler2, 3) == expected


def test_missing_optimizer_state_is_an_error(tmp_path):
    model, optimizer, scheduler = build("adam", "step", seed=0)
    save_checkpoint(tmp_path / "c.safetensors", model=model)
    with pytest.raises(CheckpointError, match="no optimizer state"):
        load_checkpoint(tmp_path / "c.safetensors", model=model, optimizer=optimizer)
    assert load_checkpoint(tmp_path / "c.safetensors", model=model) == {}


# ----------------------------------------------------------------------------------------------
# the JSON encoding and the RNG state


def test_encode_decode_round_trip():
    value = {
        "epoch": 3, "lr": 1e-3, "best": -math.inf, "ok": True, "none": None, "pair": (1, (2.0, "x")),
        "by_index": {0: {"a": 1}, 1: [2, 3]}, "dollar": {"$tensor": "not one"}, "counter": collections.Counter("aab"),
        "np": [np.float32(0.5), np.int64(7), np.bool_(True)], "array": np.arange(6, dtype=np.int16).reshape(2, 3),
        "tensors": [torch.arange(3), torch.tensor(2.5)], "tuple_key": {(1, 2): "t"},
    }
    tensors: dict = {}
    text = json.dumps(encode(value, "state", tensors), allow_nan=False)
    back = decode(json.loads(text), tensors)

    assert set(tensors) == {"state.array", "state.tensors.0", "state.tensors.1"}
    assert back["best"] == -math.inf and back["pair"] == (1, (2.0, "x"))
    assert back["by_index"] == {0: {"a": 1}, 1: [2, 3]} and back["dollar"] == {"$tensor": "not one"}
    assert back["counter"] == collections.Counter("aab") and isinstance(back["counter"], collections.Counter)
    assert back["np"] == [0.5, 7, True] and type(back["np"][2]) is bool
    assert back["array"].dtype == np.int16 and back["array"].tolist() == [[0, 1, 2], [3, 4, 5]]
    assert torch.equal(back["tensors"][0], torch.arange(3)) and back["tuple_key"] == {(1, 2): "t"}
    nan = decode(json.loads(json.dumps(encode(math.nan, "x", {}))), {})
    assert math.isnan(nan)
    with pytest.raises(TypeError, match=r"state\.when: cannot store a set"):
        encode({"when": {1, 2}}, "state", {})


def test_rng_state_round_trip():
    tensors, data = capture_rng_state()
    data = json.loads(json.dumps(data, allow_nan=False))  # it is JSON
    a = (random.random(), np.random.rand(), torch.rand(1).item())
    random.seed(9), np.random.seed(9), torch.manual_seed(9)
    restore_rng_state(tensors, data)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == a


# ----------------------------------------------------------------------------------------------
# atomic writes


def test_atomic_writes(tmp_path):
    atomic_write_bytes(tmp_path / "sub" / "a.bin", b"\x00\x01")
    atomic_write_text(tmp_path / "t.txt", "line\r\nü\n")
    atomic_write_json(tmp_path / "j.json", {"b": np.float64(0.25), "a": (1, np.int32(2)), "n": None})
    assert (tmp_path / "sub" / "a.bin").read_bytes() == b"\x00\x01"
    assert (tmp_path / "t.txt").read_bytes() == "line\r\nü\n".encode()
    text = (tmp_path / "j.json").read_text()
    assert json.loads(text) == {"b": 0.25, "a": [1, 2], "n": None} and text.index('"b"') < text.index('"a"')
    assert text.startswith('{\n  "b"')
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a.bin", "j.json", "sub", "t.txt"]


def test_failed_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "f.bin"
    atomic_write_bytes(path, b"old")
    with pytest.raises(RuntimeError, match="midway"):
        with atomic_open(path) as f:
            f.write(b"new, partial")
            f.flush()
            raise RuntimeError("the generator failed midway")
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]


def test_failed_replace_leaves_no_temp_file(tmp_path):
    (tmp_path / "target").mkdir()
    (tmp_path / "target" / "inside").write_text("x")
    with pytest.raises(OSError):
        atomic_write_bytes(tmp_path / "target", b"data")  # os.replace onto a non-empty directory fails
    assert [p.name for p in tmp_path.iterdir()] == ["target"]


def test_failed_json_and_weights_keep_the_old_file(tmp_path):
    path = tmp_path / "m.json"
    atomic_write_json(path, {"a": 1})
    with pytest.raises(TypeError, match=r"\$\.when: a set is not a JSON value"):
        atomic_write_json(path, {"when": {1}})
    with pytest.raises(ValueError, match=r"\$\.best\[0\]: nan is not a JSON number"):
        atomic_write_json(path, {"best": [math.nan]})
    with pytest.raises(TypeError, match="key 1 is not a string"):
        atomic_write_json(path, {1: "x"})
    assert json.loads(path.read_text()) == {"a": 1}

    weights = tmp_path / "w.safetensors"
    model = nn.Linear(2, 2)
    save_weights(weights, model)
    before = weights.read_bytes()
    model.register_buffer("sparse", torch.eye(2).to_sparse())
    with pytest.raises(TypeError, match="sparse"):
        save_weights(weights, model)
    assert weights.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json", "w.safetensors"]
