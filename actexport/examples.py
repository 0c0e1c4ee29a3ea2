"""Small models built from catalog activations, for `--module` (and its tests).

    actexport verify --module actexport.examples:mlp --input-shape 4,32
"""

from __future__ import annotations

import torch
from torch import nn


def mlp() -> nn.Module:
    """A 32 -> 64 -> 32 -> 10 MLP with GELU, SiLU and LogSoftmax, seeded (the same weights every call)."""
    gen = torch.Generator().manual_seed(0)
    model = nn.Sequential(nn.Linear(32, 64), nn.GELU(), nn.Linear(64, 32), nn.SiLU(), nn.Linear(32, 10),
                          nn.LogSoftmax(dim=-1))
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.2)
    return model
