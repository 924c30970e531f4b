"""Trained models out of specml: ``specml export --model NAME --format F --output DIR``.

A network exports to ONNX, TorchScript or a ``torch.export`` program (:mod:`specml.export.neural`); a
classical model to ONNX or its library's own format (:mod:`specml.export.classical`). Every export
directory holds the model file, ``schema.json`` (the raw input columns with their types and categories,
the graph's inputs and outputs), ``preprocessing.json`` and ``specml_preprocess.py``, a numpy-only
reference that turns raw columns into the graph's inputs and its outputs into the columns
``specml predict`` writes.

Why the split: numeric scaling and the output heads are inside the graph (numbers, exported with the
network, nothing to get wrong); vocabularies and class labels are strings, which neither an ONNX graph
exported from torch nor TorchScript tensors hold, so they stay in JSON beside the model.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from specml.export.errors import ExportError

FORMATS = ("onnx", "torchscript", "torch-export", "native")
OWN_FILES = ("schema.json", "preprocessing.json", "specml_preprocess.py")
__all__ = ["ExportError", "ExportResult", "FORMATS", "export_model"]


@dataclass
class ExportResult:
    name: str
    format: str
    directory: Path
    model_file: Path
    files: list[str]


def _write_json(path: Path, data: dict) -> None:
    from specml.data.files import atomic_write_json

    atomic_write_json(path, data)


def _prepare_out(out: Path, replace: bool) -> Path:
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ExportError(f"--output {out} is a file; name a directory")
    if out.is_dir() and any(out.iterdir()) and not replace:
        raise ExportError(f"--output {out} is not empty; pass --replace to overwrite it, or name another directory")
    out.mkdir(parents=True, exist_ok=True)
    for old in (*OWN_FILES, *(p.name for p in out.glob("model.*"))):  # an earlier export's files, only those
        if (out / old).is_file():
            (out / old).unlink()
    return out


def export_model(name: str, fmt: str, out: str | Path, *, home: str | Path | None = None,
                 replace: bool = False) -> ExportResult:
    """Export the trained model ``name`` as ``fmt`` (see :data:`FORMATS`) into directory ``out``."""
    from specml.artifact import ModelArtifact
    from specml.spec.errors import suggestion

    if fmt not in FORMATS:
        hint = suggestion(fmt, list(FORMATS))
        raise ExportError(f"--format {fmt!r} is not a format: use one of {', '.join(FORMATS)}"
                          + (f" ({hint})" if hint else ""))
    artifact = ModelArtifact.for_name(name, home)
    meta = artifact.read_metadata()
    classical = meta.get("kind") == "classical"
    if classical and fmt in ("torchscript", "torch-export"):
        raise ExportError(f"model '{name}' is a classical ({(meta.get('estimator') or {}).get('family')}) model: it "
                          f"has no torch graph for --format {fmt}; use --format onnx, or native (XGBoost, LightGBM)")
    if not classical and fmt == "native":
        raise ExportError(f"model '{name}' is a network: --format native is for XGBoost / LightGBM models; use "
                          "onnx, torchscript or torch-export")
    if not classical:
        _refuse_unexportable(name, meta)
    directory = _prepare_out(Path(out), replace)
    if classical:
        from specml.classical.predict import load_classical
        from specml.export.classical import export_classical, preprocessing

        model = load_classical(name, home)
        model_file, schema = export_classical(model, fmt, directory, artifact.directory)
        prep = preprocessing(model, fmt)
    else:
        from specml.export.neural import export_network
        from specml.export.schema import neural_preprocessing, neural_schema
        from specml.train.inference import load_trained

        trained = load_trained(name, home)
        model_file = export_network(trained, fmt, directory)
        schema = neural_schema(meta, fmt, model_file.name)
        prep = neural_preprocessing(meta)
    threshold = (meta.get("threshold") or {}) if isinstance(meta.get("threshold"), dict) else {}
    if threshold:
        prep["chosen_thresholds"] = {"f1": threshold.get("value"), "youden": threshold.get("youden")}
    _write_json(directory / "schema.json", schema)
    _write_json(directory / "preprocessing.json", prep)
    shutil.copyfile(Path(__file__).with_name("specml_preprocess.py"), directory / "specml_preprocess.py")
    files = sorted(p.name for p in directory.iterdir())
    return ExportResult(name, fmt, directory, model_file, files)


def _refuse_unexportable(name: str, meta: dict) -> None:
    """What the graphs cannot take, said before any work."""
    prep = meta.get("preprocessing") or {}
    for input_name, s in (prep.get("inputs") or {}).items():
        if s.get("sequence") and s.get("length") is None:
            raise ExportError(f"model '{name}': input '{input_name}' is a sequence without a fixed length; "
                              "an exported graph needs one (set the input's shape)")
