"""Weights and checkpoints as safetensors files (written atomically, :mod:`specml.data.files`). No pickle.

Two kinds of file, both plain safetensors (a JSON header, then raw tensor bytes):

* **weights** (:func:`save_weights`, :func:`load_weights`): a model's ``state_dict``, key for key.
  The metadata holds the caller's strings, ``"format": "pt"`` and ``"specml.kind": "weights"``.
* **checkpoint** (:func:`save_checkpoint`, :func:`load_checkpoint`): everything needed to go on
  training as if it had never stopped. Tensors are stored as tensors::

      model.<state_dict key>     the model
      optim.<path>               optimizer state (exp_avg, momentum_buffer, tensor 'step', ...)
      sched.<path>, state.<path> any tensors in the scheduler state or the caller's state
      rng.torch, rng.cuda.<i>    torch RNG states (uint8)

  and everything else as JSON in the metadata (``specml.optimizer``, ``specml.scheduler``,
  ``specml.state``, ``specml.rng``), where a tensor is written ``{"$tensor": "<name>"}``.

JSON lacks some values training state holds; they are written as tagged objects and read back
exactly: ``{"$float": "inf"}`` (inf, -inf, nan), ``{"$tuple": [...]}``, ``{"$dict": [[k, v], ...]}``
(a dict with non-string keys, such as the optimizer's ``state`` keyed by parameter index, or with a
key starting with ``$``), ``{"$counter": [[k, v], ...]}`` (``MultiStepLR`` milestones) and
``{"$tensor": name, "numpy": true}`` (a numpy array). NumPy scalars become Python numbers.

Every write goes to a temporary file in the target's directory, is flushed and fsynced, and is
moved over the target with ``os.replace`` (then the directory is fsynced): a reader sees the old
file or the new one, never half of one. torch is imported only by the functions that need it.
"""

from __future__ import annotations

import collections
import json
import math
import random
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
    from torch import nn

from specml.data.files import _numpy_scalar, atomic_path
from specml.errors import SpecmlError

FORMAT_VERSION = "1"
KIND = "specml.kind"


class CheckpointError(SpecmlError, ValueError):
    """A weights or checkpoint file that cannot be read, or that does not fit the model."""


# ----------------------------------------------------------------------------------------------
# JSON with tensors set aside


def encode(obj: Any, prefix: str, tensors: dict[str, torch.Tensor]) -> Any:
    """``obj`` as JSON; each tensor goes into ``tensors`` under ``<prefix>.<path>`` and is replaced
    by ``{"$tensor": name}``. Raise :class:`TypeError` naming the path for a value it cannot hold."""
    torch = sys.modules.get("torch")
    np = sys.modules.get("numpy")
    obj = _numpy_scalar(obj)
    if obj is None or isinstance(obj, bool | str):
        return obj
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        return float(obj) if math.isfinite(obj) else {"$float": repr(float(obj))}
    if torch is not None and isinstance(obj, torch.Tensor):
        return {"$tensor": _add_tensor(tensors, prefix, obj)}
    if np is not None and isinstance(obj, np.ndarray):
        import torch

        return {"$tensor": _add_tensor(tensors, prefix, torch.from_numpy(obj.copy())), "numpy": True}
    if isinstance(obj, tuple):
        return {"$tuple": [encode(v, f"{prefix}.{i}", tensors) for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [encode(v, f"{prefix}.{i}", tensors) for i, v in enumerate(obj)]
    if isinstance(obj, dict):
        items = [(encode(k, f"{prefix}.<key>", tensors), encode(v, f"{prefix}.{k}", tensors)) for k, v in obj.items()]
        if isinstance(obj, collections.Counter):
            return {"$counter": [list(kv) for kv in items]}
        if all(isinstance(k, str) and not k.startswith("$") for k in obj):
            return dict(items)
        return {"$dict": [list(kv) for kv in items]}
    raise TypeError(f"{prefix}: cannot store a {type(obj).__name__} in a checkpoint (only JSON values, "
                    "tuples, numpy scalars and arrays, and tensors)")


def decode(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """The inverse of :func:`encode`."""
    if isinstance(obj, list):
        return [decode(v, tensors) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if "$tensor" in obj:
        t = tensors[obj["$tensor"]]
        return t.numpy() if obj.get("numpy") else t
    if "$float" in obj:
        return float(obj["$float"])
    if "$tuple" in obj:
        return tuple(decode(v, tensors) for v in obj["$tuple"])
    if "$dict" in obj:
        return {_hashable(decode(k, tensors)): decode(v, tensors) for k, v in obj["$dict"]}
    if "$counter" in obj:
        return collections.Counter({_hashable(decode(k, tensors)): decode(v, tensors) for k, v in obj["$counter"]})
    return {k: decode(v, tensors) for k, v in obj.items()}


def _hashable(key: Any) -> Any:
    return tuple(_hashable(k) for k in key) if isinstance(key, list | tuple) else key


def _add_tensor(tensors: dict[str, torch.Tensor], name: str, tensor: torch.Tensor) -> str:
    unique, n = name, 1
    while unique in tensors:  # keys containing dots could make two paths read the same
        unique, n = f"{name}#{n}", n + 1
    tensors[unique] = tensor
    return unique


def _dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), allow_nan=False, ensure_ascii=False)


# ----------------------------------------------------------------------------------------------
# tensors in and out of safetensors files


def _unwrap(model: nn.Module) -> nn.Module:
    """The module inside ``torch.compile`` (``_orig_mod``) and DataParallel/DDP (``module``) wrappers."""
    from torch import nn

    while True:
        if isinstance(getattr(model, "_orig_mod", None), nn.Module):
            model = model._orig_mod
        elif isinstance(model, nn.DataParallel | nn.parallel.DistributedDataParallel):
            model = model.module
        else:
            return model


def _storable(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Detached, dense, contiguous CPU tensors; a tensor sharing memory with an earlier one (tied
    weights) or not contiguous is copied, as safetensors refuses both."""
    import torch

    out: dict[str, torch.Tensor] = {}
    seen: set[tuple[int, int]] = set()
    for name, t in tensors.items():
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name}: a {type(t).__name__} is not a tensor (module extra state cannot be saved)")
        if t.layout != torch.strided:
            raise TypeError(f"{name}: a {t.layout} tensor cannot be saved; make it dense first")
        t = t.detach().cpu()
        storage = (t.untyped_storage().data_ptr(), t.untyped_storage().nbytes())
        if not t.is_contiguous() or (storage[0] != 0 and storage in seen):
            t = t.clone(memory_format=torch.contiguous_format)
        elif t.numel():
            seen.add(storage)
        out[name] = t
    return out


def _write_safetensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    from safetensors.torch import save_file

    for key, value in metadata.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise TypeError(f"safetensors metadata holds strings only; {key!r}: {value!r} is not")
    tensors = _storable(tensors)
    with atomic_path(path) as tmp:
        save_file(tensors, tmp, metadata=metadata)


def _read_safetensors(path: Path, device: Any = "cpu") -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        with safe_open(str(path), framework="pt", device=str(device)) as f:
            return {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata() or {})
    except SafetensorError as exc:
        raise CheckpointError(f"{path}: not a readable safetensors file ({exc})") from None


def _names(keys: list[str], limit: int = 10) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


def _load_into(model: nn.Module, tensors: dict[str, torch.Tensor], strict: bool, where: Path) -> None:
    """``model.load_state_dict(tensors)``, with an error naming every key that does not fit."""
    import torch

    expected = model.state_dict()
    missing = [k for k in expected if k not in tensors]
    unexpected = [k for k in tensors if k not in expected]
    shapes = [f"{k} (file {list(tensors[k].shape)}, model {list(v.shape)})"
              for k, v in expected.items()
              if k in tensors and isinstance(v, torch.Tensor) and tensors[k].shape != v.shape]
    problems = []
    if shapes:
        problems.append(f"shapes differ: {_names(shapes)}")
    if strict and missing:
        problems.append(f"missing from the file: {_names(missing)}")
    if strict and unexpected:
        problems.append(f"not in the model: {_names(unexpected)}")
    if problems:
        raise CheckpointError(f"{where}: the weights do not fit the model; " + "; ".join(problems))
    model.load_state_dict({k: v for k, v in tensors.items() if k in expected}, strict=strict)


# ----------------------------------------------------------------------------------------------
# weights


def save_weights(path: Path, model: nn.Module, metadata: dict[str, str] | None = None) -> None:
    """Write ``model.state_dict()`` to a safetensors file, atomically. ``metadata``: strings only."""
    meta = {"format": "pt", **(metadata or {}), KIND: "weights"}
    _write_safetensors(Path(path), dict(_unwrap(model).state_dict()), meta)


def load_weights(path: Path, model: nn.Module, *, strict: bool = True) -> dict[str, str]:
    """Load a weights file (or the model part of a checkpoint) into ``model``; return the file's metadata.

    A key missing on either side (with ``strict``) or a shape that differs is a :class:`CheckpointError`
    naming the keys; with ``strict=False`` the keys both sides have are loaded.
    """
    path = Path(path)
    tensors, metadata = _read_safetensors(path)
    if metadata.get(KIND) == "checkpoint":
        tensors = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    _load_into(_unwrap(model), tensors, strict, path)
    return metadata


# ----------------------------------------------------------------------------------------------
# random number generators


def capture_rng_state() -> tuple[dict[str, torch.Tensor], dict]:
    """The state of Python's, NumPy's (legacy global) and torch's (CPU and CUDA) generators:
    the torch states as uint8 tensors (``torch``, ``cuda.<i>``), the others as JSON."""
    import numpy as np
    import torch

    version, internal, gauss = random.getstate()
    np_state = np.random.get_state(legacy=False)
    data = {
        "python": {"version": version, "state": list(internal), "gauss": gauss},
        "numpy": {"bit_generator": np_state["bit_generator"], "key": np_state["state"]["key"].tolist(),
                  "pos": int(np_state["state"]["pos"]), "has_gauss": int(np_state["has_gauss"]),
                  "gauss": float(np_state["gauss"])},
    }
    tensors = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"cuda.{i}"] = state
    return tensors, data


def restore_rng_state(tensors: dict[str, torch.Tensor], data: dict) -> None:
    """Set the generators to a state from :func:`capture_rng_state` (what it holds; CUDA states for
    devices this machine lacks are ignored)."""
    import numpy as np
    import torch

    if "python" in data:
        py = data["python"]
        random.setstate((py["version"], tuple(py["state"]), py["gauss"]))
    if "numpy" in data:
        n = data["numpy"]
        np.random.set_state({"bit_generator": n["bit_generator"],
                             "state": {"key": np.asarray(n["key"], dtype=np.uint32), "pos": n["pos"]},
                             "has_gauss": n["has_gauss"], "gauss": n["gauss"]})
    if "torch" in tensors:
        torch.set_rng_state(tensors["torch"].to("cpu", torch.uint8))
    cuda = {int(k.split(".", 1)[1]): v for k, v in tensors.items() if k.startswith("cuda.")}
    if cuda and torch.cuda.is_available():
        for i, state in cuda.items():
            if i < torch.cuda.device_count():
                torch.cuda.set_rng_state(state.to("cpu", torch.uint8), i)


# ----------------------------------------------------------------------------------------------
# checkpoints


def _scheduler_json(scheduler: Any, tensors: dict[str, torch.Tensor]) -> dict:
    """The scheduler's state; an entry that cannot be stored (a custom callable) is left out, with a warning."""
    out, skipped = {}, []
    for key, value in scheduler.state_dict().items():
        part: dict[str, torch.Tensor] = {}
        try:
            out[key] = encode(value, f"sched.{key}", part)
        except TypeError:
            skipped.append(key)
            continue
        tensors.update(part)
    if skipped:
        warnings.warn(f"{type(scheduler).__name__}: {', '.join(skipped)} cannot be stored in a checkpoint and "
                      "are left out", stacklevel=3)
    return out


def save_checkpoint(path: Path, *, model: nn.Module, optimizer: Any = None, scheduler: Any = None,
                    state: dict | None = None) -> None:
    """Write one safetensors file with the model, optimizer, scheduler, RNG states and ``state``, atomically."""
    tensors = {f"model.{k}": v for k, v in _unwrap(model).state_dict().items()}
    metadata = {"format": "pt", KIND: "checkpoint", "specml.version": FORMAT_VERSION}
    if optimizer is not None:
        metadata["specml.optimizer"] = _dumps(encode(optimizer.state_dict(), "optim", tensors))
    if scheduler is not None:
        metadata["specml.scheduler"] = _dumps(_scheduler_json(scheduler, tensors))
    metadata["specml.state"] = _dumps(encode(dict(state or {}), "state", tensors))
    rng_tensors, rng_json = capture_rng_state()
    tensors.update({f"rng.{k}": v for k, v in rng_tensors.items()})
    metadata["specml.rng"] = _dumps(rng_json)
    _write_safetensors(Path(path), tensors, metadata)


def load_checkpoint(path: Path, *, model: nn.Module, optimizer: Any = None, scheduler: Any = None,
                    restore_rng: bool = True, map_location: Any = "cpu") -> dict:
    """Restore what :func:`save_checkpoint` wrote into freshly built objects; return the saved ``state``.

    An ``optimizer`` or ``scheduler`` given when the checkpoint has none is an error; one the
    checkpoint has but that is not given is not restored.
    """
    path = Path(path)
    tensors, metadata = _read_safetensors(path, map_location)
    if metadata.get(KIND) != "checkpoint":
        raise CheckpointError(f"{path}: not a specml checkpoint (a weights file? load it with load_weights)")
    if metadata.get("specml.version") != FORMAT_VERSION:
        raise CheckpointError(f"{path}: checkpoint format {metadata.get('specml.version')!r} is not supported "
                              f"(this specml reads {FORMAT_VERSION!r})")

    def part(key: str) -> Any:
        try:
            return json.loads(metadata[key])
        except (KeyError, json.JSONDecodeError) as exc:
            raise CheckpointError(f"{path}: the checkpoint's {key} metadata is missing or broken ({exc})") from None

    _load_into(_unwrap(model), {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")},
               True, path)
    state = decode(part("specml.state"), tensors)
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: the checkpoint's state is not a mapping")
    for obj, key in ((optimizer, "specml.optimizer"), (scheduler, "specml.scheduler")):
        if obj is not None:
            if key not in metadata:
                raise CheckpointError(f"{path}: the checkpoint holds no {key.split('.')[1]} state")
            try:
                obj.load_state_dict(decode(part(key), tensors))
            except (KeyError, TypeError, ValueError, RuntimeError, IndexError, AttributeError) as exc:
                raise CheckpointError(f"{path}: the checkpoint's {key.split('.')[1]} state does not fit "
                                      f"({type(exc).__name__}: {exc})") from None
    if restore_rng:
        try:
            restore_rng_state({k[len("rng."):]: v for k, v in tensors.items() if k.startswith("rng.")},
                              part("specml.rng"))
        except (KeyError, TypeError, ValueError, RuntimeError, IndexError) as exc:
            raise CheckpointError(f"{path}: the checkpoint's RNG state is broken ({type(exc).__name__}: "
                                  f"{exc})") from None
    return state


def check_training_state(state: Any, path: Path) -> dict:
    """The state a resume of the engine needs: a mapping with a whole-number ``epoch`` and ``global_step``
    (and a map of lists as ``history``); :class:`CheckpointError` naming the field otherwise."""
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: the checkpoint's state is not a mapping")
    for key in ("epoch", "global_step"):
        value = state.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise CheckpointError(f"{path}: the checkpoint's state.{key} is {value!r}, not a whole number >= 0")
    history = state.get("history")
    if history is not None and not (isinstance(history, dict) and all(isinstance(v, list) for v in history.values())):
        raise CheckpointError(f"{path}: the checkpoint's state.history is not a map of lists")
    return state


def read_checkpoint_state(path: Path) -> dict:
    """The ``state`` a checkpoint holds (epoch, best, run info...), without building a model."""
    path = Path(path)
    tensors, metadata = _read_safetensors(path)
    if metadata.get(KIND) != "checkpoint":
        raise CheckpointError(f"{path}: not a specml checkpoint")
    try:
        state = decode(json.loads(metadata["specml.state"]), tensors)
    except (KeyError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}: the checkpoint's state metadata is missing or broken ({exc})") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: the checkpoint's state is not a mapping")
    return state
