"""``specml export --model NAME --format onnx|torchscript|torch-export|native --out DIR``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from specml.cli.output import console, user_errors


@user_errors
def export(
    model: Annotated[str, typer.Option("--model", help="Name of a trained model.")],
    out: Annotated[Path, typer.Option("--output", "-o", help="Directory to write the model, schema.json, "
                                                          "preprocessing.json and specml_preprocess.py into.")],
    fmt: Annotated[str, typer.Option("--format", help="onnx, torchscript or torch-export (networks); onnx or "
                                                            "native (classical: XGBoost JSON, LightGBM text).")]
    = "onnx",
    replace: Annotated[bool, typer.Option("--replace", help="Write into a directory that is not empty.")] = False,
) -> None:
    """Export a trained model with its preprocessing and input schema, for use without specml."""
    from specml.export import export_model

    result = export_model(model, fmt, out, replace=replace)
    console().print(f"exported '{result.name}' as {result.format} to {result.directory}: {', '.join(result.files)}")


def register(app) -> None:
    """Add ``specml export`` to the app."""
    app.command("export")(export)
