"""A trained network out of specml: ONNX, TorchScript or a ``torch.export`` program.

The graph holds the network, the numeric scaling and the output heads (:mod:`specml.export.wrapper`);
vocabularies and class labels stay in ``preprocessing.json`` (strings have no place in these graphs),
applied by the numpy reference ``specml_preprocess.py`` written beside the model. Axis 0 of every input
and output is dynamic.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from pathlib import Path

import torch

from specml.export.errors import ExportError
from specml.export.wrapper import Exportable

MODEL_FILES = {"onnx": "model.onnx", "torchscript": "model.torchscript.pt", "torch-export": "model.pt2"}


def _quiet():
    """torch.onnx's exporter logs and warns about optional packages it does not need (torchvision)."""
    stack = contextlib.ExitStack()
    stack.enter_context(warnings.catch_warnings())
    warnings.simplefilter("ignore")
    for name in ("torch.onnx", "torch.export", "torch._dynamo", "onnxscript"):
        logger = logging.getLogger(name)
        previous = logger.level
        logger.setLevel(logging.ERROR)
        stack.callback(logger.setLevel, previous)
    stack.enter_context(contextlib.redirect_stdout(io.StringIO()))
    return stack


def export_network(trained, fmt: str, out: Path) -> Path:
    """Write ``trained`` (:class:`specml.train.inference.Trained`) as ``fmt`` under ``out``; the model file."""
    wrapper = Exportable(trained.model, trained.preprocessor).eval().requires_grad_(False)
    example = wrapper.example_inputs(trained.preprocessor)
    batch = torch.export.Dim("batch", min=1)
    dynamic = (tuple({0: batch} for _ in example),)
    path = out / MODEL_FILES[fmt]
    why = {"onnx": "ONNX", "torchscript": "TorchScript (torch.jit.trace)", "torch-export": "torch.export"}[fmt]
    try:
        with torch.no_grad(), _quiet():
            if fmt == "onnx":
                try:
                    import onnxscript  # noqa: F401 - torch.onnx needs it; say so before torch does
                except ImportError:
                    raise ExportError("--format onnx needs the onnx packages: pip install 'specml[export]'") from None
                torch.onnx.export(wrapper, example, str(path), input_names=wrapper.input_names,
                                  output_names=wrapper.output_names, dynamic_shapes=dynamic, dynamo=True,
                                  external_data=False, verbose=False)
            elif fmt == "torchscript":
                traced = torch.jit.trace(wrapper, example, strict=False, check_trace=False)
                traced.save(str(path))
            else:
                program = torch.export.export(wrapper, example, dynamic_shapes=dynamic)
                torch.export.save(program, str(path))
    except ExportError:
        raise
    except Exception as err:  # noqa: BLE001 - the exporter's own reason, said in one line
        first = next((line for line in str(err).splitlines() if line.strip()), type(err).__name__)
        raise ExportError(f"model '{trained.name}' cannot be exported to {why}: {type(err).__name__}: "
                          f"{first[:400]}") from None
    return path
