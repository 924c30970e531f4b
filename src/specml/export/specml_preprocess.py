"""Reference preprocessing for a model exported by ``specml export`` (numpy only; copy it anywhere).

    prep = load("exported/")                                   # reads preprocessing.json
    feeds = encode(prep, {"glucose": [148.0, 85.0], ...})      # raw columns -> the graph's inputs
    outputs = dict(zip(names, session.run(names, feeds)))      # onnxruntime, TorchScript, ...
    columns = decode(prep, outputs)                            # -> the columns `specml predict` writes

Networks: numbers go in raw (float64; the scaling is inside the graph), categories become ids through
the stored vocabulary (position + 1; unknown or missing -> 0), token lists are padded or cut. Classical
models: the fitted imputation, scaling and category encoding are applied here (input ``input``: float32
for ONNX, float64 for the native XGBoost / LightGBM files).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def load(directory):
    return json.loads((Path(directory) / "preprocessing.json").read_text(encoding="utf-8"))


def _ids(values, vocab):
    lookup = {v: i + 1 for i, v in enumerate(vocab)}
    return np.array([lookup.get(v, 0) if v is not None else 0 for v in values], dtype=np.int64)


def _padded(lists, length, pad, vocab=None):
    out = np.full((len(lists), length), pad, dtype=np.int64)
    for i, row in enumerate(lists):
        row = list(row)[:length]
        out[i, :len(row)] = _ids(row, vocab) if vocab is not None else np.asarray(row, dtype=np.int64)
    return out


def encode(prep, columns):
    """The model's inputs from raw columns (a dict: column name -> sequence of values)."""
    if prep["kind"] == "classical":
        return {"input": _classical(prep, columns)}
    feeds = {}
    for name, s in prep["inputs"].items():
        if s["kind"] == "sequence":
            feeds[name] = _padded(columns[s["columns"][0]], s["length"], s["pad_id"], s["vocab"])
            continue
        if s["kind"] == "categorical":
            x = np.stack([_ids(columns[c], s["vocab"]) for c in s["columns"]], axis=1)
        else:
            x = np.stack([np.asarray(columns[c], dtype=np.float64) for c in s["columns"]], axis=1)
        feeds[name] = x[:, 0].copy() if s["one_d"] else x
    return feeds


def _classical(prep, columns):
    parts = []
    num = prep["numeric"]
    if num["columns"]:
        x = np.stack([np.asarray([np.nan if v is None else v for v in columns[c]], dtype=np.float64)
                      for c in num["columns"]], axis=1)
        if num["impute"] is not None:
            x = np.where(np.isnan(x), np.asarray(num["impute"]), x)
        if num["mean"] is not None:
            x = (x - np.asarray(num["mean"])) / np.asarray(num["scale"])
        parts.append(x)
    cat = prep["categorical"]
    for c, cats in zip(cat["columns"], cat["categories"]):
        values = ["(missing)" if v is None else str(v) for v in columns[c]]
        index = {v: i for i, v in enumerate(cats)}
        if cat["encoding"] == "ordinal":
            parts.append(np.array([[index.get(v, -1)] for v in values], dtype=np.float64))
        else:
            onehot = np.zeros((len(values), len(cats)))
            for i, v in enumerate(values):
                if v in index:
                    onehot[i, index[v]] = 1.0
            parts.append(onehot)
    return np.concatenate(parts, axis=1).astype(prep["input_dtype"])


def decode(prep, outputs, threshold=0.5):
    """The prediction columns (as ``specml predict`` names them) from the model's outputs by name."""
    result = {}
    for task, t in prep["tasks"].items():
        s = np.asarray(outputs[t["output"]])
        cols = {}
        if t["kind"] == "binary":
            p = (s[:, 1] if s.ndim == 2 and s.shape[1] == 2 else s.reshape(-1)).astype(np.float64)
            c0, c1 = t["classes"] or [0, 1]
            cols = {"probability": p, "prediction": [c1 if v > threshold else c0 for v in p],
                    f"prob_{c0}": 1.0 - p, f"prob_{c1}": p}
        elif t["kind"] == "multiclass":
            p = s.astype(np.float64)
            cols = {"prediction": [t["classes"][j] for j in p.argmax(axis=1)], "probability": p.max(axis=1)}
            cols.update({f"prob_{c}": p[:, j] for j, c in enumerate(t["classes"])})
        elif t["kind"] == "sequence":
            cols = {"prediction": [list(row[:list(row).index(t["pad"])] if t["pad"] in row else row)
                                   for row in s.astype(np.int64).tolist()]}
        elif s.ndim == 2 and t["columns"] is not None:
            cols = {f"prediction_{c}": s[:, j].astype(np.float64) for j, c in enumerate(t["columns"])}
        else:
            cols = {"prediction": s.reshape(-1).astype(np.float64)}
        prefix = f"{task}_" if prep["multi_task"] else ""
        result.update({prefix + k: v for k, v in cols.items()})
    return result
