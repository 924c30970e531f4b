"""specml's own layers: the small glue a spec needs that torch does not offer as a module by name.

Each is allow-listed as ``specml.layers.<Name>``. Formulas are in the docstrings; keep them small.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


def _tensors(xs: Sequence) -> list[torch.Tensor]:
    if len(xs) == 1 and isinstance(xs[0], list | tuple):
        return list(xs[0])
    return list(xs)


class Concat(nn.Module):
    """``torch.cat(inputs, dim)``: joins its inputs (positional, or one list) along ``dim``."""

    def __init__(self, dim: int = -1) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        return torch.cat(_tensors(tensors), dim=self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class Stack(nn.Module):
    """``torch.stack(inputs, dim)``: stacks same-shaped inputs along a new ``dim``."""

    def __init__(self, dim: int = 1) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        return torch.stack(_tensors(tensors), dim=self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class Select(nn.Module):
    """``x[index]`` of a tuple/list output (e.g. the ``output`` of an LSTM), or along ``dim`` of a tensor."""

    def __init__(self, index: int = 0, dim: int | None = None) -> None:
        super().__init__()
        self.index = index
        self.dim = dim

    def forward(self, x):
        if self.dim is None:
            return x[self.index]
        return x.select(self.dim, self.index)

    def extra_repr(self) -> str:
        return f"index={self.index}, dim={self.dim}"


LAYERS: dict[str, type[nn.Module]] = {"Concat": Concat, "Stack": Stack, "Select": Select}
