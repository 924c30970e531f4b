"""How a model output and its target are paired before the loss sees them (torch only, no specml imports).

Shared by the training loop (:mod:`specml.train.engine`) and the spec check's dry loss call
(:mod:`specml.graph.check`), so that what ``validate`` runs is what training runs.
"""

from __future__ import annotations

import torch


def align(output: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Shape the pair the way torch's losses want it.

    * class scores ``[..., C]`` against integer ids ``[...]`` with extra dims (sequences): flattened to
      ``[N, C]`` and ``[N]``;
    * a float target with as many values as the output (``[B]`` vs ``[B, 1]``): viewed as the output.
    """
    if target.shape == output.shape:
        return output, target
    if target.dtype.is_floating_point:
        if target.numel() == output.numel():
            target = target.view_as(output)
    elif output.dim() > 2 and output.dim() == target.dim() + 1 and output.shape[:-1] == target.shape:
        output, target = output.reshape(-1, output.shape[-1]), target.reshape(-1)
    return output, target
