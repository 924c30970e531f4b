"""What an exported model expects and gives back, as JSON: ``schema.json`` and ``preprocessing.json``.

Built from a trained model's ``metadata.json`` alone (no torch). ``schema.json`` lists the raw input
columns (name, dtype, categories), the graph's inputs and outputs; ``preprocessing.json`` holds what
:mod:`specml.export.specml_preprocess` needs to turn raw columns into the graph's inputs and its
outputs into the columns ``specml predict`` writes: the vocabularies and the class labels.
"""

from __future__ import annotations

from typing import Any

FORMAT_VERSION = 1


def _graph_input(name: str, state: dict) -> dict[str, Any]:
    """One graph input: a raw numeric matrix (float64) or integer ids (int64)."""
    ids = bool(state.get("categorical") or state.get("sequence"))
    shape: list[Any] = ["batch"]
    if state.get("sequence"):
        shape.append(state.get("length"))
    elif not state.get("one_d"):
        shape.append(len(state["columns"]))
    return {"name": name, "dtype": "int64" if ids else "float64", "shape": shape, "columns": list(state["columns"]),
            "kind": "sequence" if state.get("sequence") else "categorical" if state.get("categorical") else "numeric"}


def _graph_output(task: str, target: dict) -> dict[str, Any]:
    kind = "sequence" if target.get("sequence") else target["task"]
    columns = target["column"] if isinstance(target["column"], list) else None
    shape: list[Any] = ["batch"]
    if kind == "multiclass":
        shape.append(len(target["classes"]))
    elif kind == "sequence":
        shape.append(target.get("length"))
    elif columns is not None:
        shape.append(len(columns))
    what = {"binary": "probability of the positive class", "multiclass": "class probabilities",
            "regression": "values in the target's units", "sequence": "predicted token ids"}[kind]
    return {"name": output_name(task), "task": task, "kind": kind, "dtype": "int64" if kind == "sequence" else
            "float64" if kind == "regression" else "float32", "shape": shape, "what": what}


def output_name(task: str) -> str:
    return f"{task}_scores"


def neural_preprocessing(metadata: dict) -> dict[str, Any]:
    """``preprocessing.json`` of a network: per input its columns, kind and vocabulary (value -> id is
    position + 1; 0 = unknown or NULL); per task its kind, classes, target columns and pad id."""
    prep = metadata["preprocessing"]
    inputs = {}
    for name, s in prep["inputs"].items():
        inputs[name] = {"columns": list(s["columns"]), "kind": _graph_input(name, s)["kind"],
                        "one_d": bool(s.get("one_d")), "vocab": s.get("vocab") if s.get("categorical") else None,
                        "length": s.get("length"), "pad_id": s.get("pad_id", 0),
                        "scaling": "inside the graph" if s.get("normalize", "none") != "none" else "none"}
    tasks = {}
    for name, t in prep["targets"].items():
        tasks[name] = {"output": output_name(name), "kind": "sequence" if t.get("sequence") else t["task"],
                       "classes": t.get("classes"), "columns": t["column"] if isinstance(t["column"], list) else None,
                       "pad": t.get("pad")}
    return {"format_version": FORMAT_VERSION, "kind": "neural", "inputs": inputs, "tasks": tasks,
            "multi_task": len(tasks) > 1}


def neural_schema(metadata: dict, fmt: str, model_file: str) -> dict[str, Any]:
    """``schema.json`` of a network: the raw columns a row must hold, the graph's inputs and outputs."""
    prep = metadata["preprocessing"]
    columns = []
    for name, s in prep["inputs"].items():
        for col in s["columns"]:
            entry: dict[str, Any] = {"name": col, "input": name}
            if s.get("sequence"):
                entry.update(type="list", length=s.get("length"))
                if s.get("categorical"):
                    entry["categories"] = s.get("vocab")
            elif s.get("categorical"):
                entry.update(type="categorical", categories=s.get("vocab"))
            else:
                entry.update(type="number", dtype=s["dtype"])
            columns.append(entry)
    return {"format_version": FORMAT_VERSION, "model": metadata.get("name"), "kind": "neural",
            "task": metadata.get("task"), "format": fmt, "file": model_file,
            "columns": columns,
            "inputs": [_graph_input(n, s) for n, s in prep["inputs"].items()],
            "outputs": [_graph_output(n, t) for n, t in prep["targets"].items()],
            "batch_axis": "dynamic (axis 0 of every input and output)"}
