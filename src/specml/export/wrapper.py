"""The trained network with its numeric preprocessing and output heads, as one traceable module.

:class:`Exportable` takes one tensor per spec input, in the order of ``input_names``: raw numbers as
float64 (the standardisation the model was trained with is applied inside, in float64, then cast to
the input's dtype, exactly as :class:`specml.data.tensors.Preprocessor` does) and categorical or token
inputs as int64 ids. It returns one tensor per task, in the order of ``output_names``: the scores
:func:`specml.train.inference.task_scores` gives (probabilities, values in the target's units,
token ids).
"""

from __future__ import annotations

import torch
from torch import nn

from specml.export.schema import output_name
from specml.graph.builder import TORCH_DTYPES


class Exportable(nn.Module):
    def __init__(self, model: nn.Module, preprocessor) -> None:
        super().__init__()
        self.model = model
        self.input_names = list(preprocessor.inputs)
        self.output_names = [output_name(t) for t in preprocessor.targets]
        self._inputs = []
        for i, (name, s) in enumerate(preprocessor.inputs.items()):
            scaled = not (s.categorical or s.sequence) and s.normalize != "none"
            if scaled:
                self.register_buffer(f"center_{i}", torch.tensor(s.center, dtype=torch.float64))
                self.register_buffer(f"scale_{i}", torch.tensor(s.scale, dtype=torch.float64))
            self._inputs.append((name, TORCH_DTYPES[s.dtype], scaled, bool(s.one_d)))
        self._targets = []
        for i, (name, t) in enumerate(preprocessor.targets.items()):
            scaled = t.task == "regression" and not t.sequence and t.normalize != "none" and t.center is not None
            if scaled:
                self.register_buffer(f"ycenter_{i}", torch.tensor(t.center, dtype=torch.float64))
                self.register_buffer(f"yscale_{i}", torch.tensor(t.scale, dtype=torch.float64))
            kind = "sequence" if t.sequence else t.task
            squeeze = kind == "regression" and isinstance(t.column, str)
            self._targets.append((t.output, kind, bool(t.logits), scaled, squeeze))

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        feeds = {}
        for i, (name, dtype, scaled, one_d) in enumerate(self._inputs):
            x = inputs[i]
            if scaled:
                center, scale = getattr(self, f"center_{i}"), getattr(self, f"scale_{i}")
                x = (x.to(torch.float64) - (center[0] if one_d else center)) / (scale[0] if one_d else scale)
            feeds[name] = x.to(dtype)
        out = self.model(**feeds)
        results = []
        for i, (output, kind, logits, scaled, squeeze) in enumerate(self._targets):
            y = out[output].float()
            if kind == "sequence":
                y = y.argmax(dim=-1)
            elif kind == "binary":
                y = (torch.sigmoid(y) if logits else y).reshape(-1)
            elif kind == "multiclass":
                y = torch.softmax(y, dim=-1) if logits else y
            else:
                if squeeze and y.dim() == 2 and y.shape[1] == 1:
                    y = y[:, 0]
                y = y.to(torch.float64)
                if scaled:
                    center, scale = getattr(self, f"ycenter_{i}"), getattr(self, f"yscale_{i}")
                    y = y * (scale[0] if y.dim() == 1 else scale) + (center[0] if y.dim() == 1 else center)
            results.append(y)
        return tuple(results)

    def example_inputs(self, preprocessor, batch: int = 3) -> tuple[torch.Tensor, ...]:
        """Zeros (numbers) and id 1 (categories, tokens) of the graph's input shapes."""
        out = []
        for name, s in preprocessor.inputs.items():
            if s.sequence:
                out.append(torch.ones((batch, s.length), dtype=torch.int64))
            elif s.categorical:
                shape = (batch,) if s.one_d else (batch, len(s.columns))
                out.append(torch.ones(shape, dtype=torch.int64))
            else:
                shape = (batch,) if s.one_d else (batch, len(s.columns))
                out.append(torch.zeros(shape, dtype=torch.float64))
        return tuple(out)
