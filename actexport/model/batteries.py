"""The inputs a model is verified on, drawn around its example's own values.

- example: the example itself.
- random: dynamic dims doubled, 1 grown to 3 (the artifact must not have fixed them); float inputs normal around
  the example's mean and spread, integer inputs uniform within the example's own range (token ids
  stay valid ids), bool inputs true as often as in the example.
- grid: float inputs an even sweep over their range, the others as in the example.
- edges: float inputs at 0, -0 and 1, 10 and 100 times the example's largest magnitude, both
  signs; the others at the ends of their range. A model's layers see values there that ordinary
  data rarely reaches (a LogSigmoid far in its tail): this is where exports break.

`--input-range LO,HI` bounds every float input instead of the example's own range; samples (a
file of real inputs) are batteries of their own.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import torch

from actexport.model.spec import Input, Model, grown

NAMES = ("example", "random", "grid", "edges")
EDGE_FACTORS = (1.0, 10.0, 100.0)


@dataclass(frozen=True)
class ModelBattery:
    """One set of inputs: a tensor per model input, float inputs already in the dtype under test."""

    name: str
    tensors: tuple[torch.Tensor, ...]


def _gen(model: Model, name: str) -> torch.Generator:
    return torch.Generator().manual_seed(zlib.crc32(f"{model.id}/{name}".encode()))


def _doubled(i: Input) -> tuple[int, ...]:
    return tuple(grown(n) if d in i.dynamic else n for d, n in enumerate(i.shape))


def _range(model: Model, i: Input) -> tuple[float, float]:
    if model.value_range is not None:
        return model.value_range
    spread = i.std or max(abs(i.mean), 1.0)
    return i.low - spread, i.high + spread


def _random(model: Model, i: Input, example: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    shape = _doubled(i)
    if i.floating:
        lo, hi = _range(model, i)
        std = i.std or max(abs(i.mean), 1.0)
        return (torch.randn(shape, generator=gen, dtype=torch.float64) * std + i.mean).clamp(lo, hi)
    if example.dtype == torch.bool:
        p = float(example.float().mean()) if example.numel() else 0.0
        return torch.rand(shape, generator=gen, dtype=torch.float64) < p
    # NOTE: from the tensor, not Input's floats: ids past 2**53 do not survive a float64
    lo, hi = int(example.min()), int(example.max())
    high = min(hi, torch.iinfo(example.dtype).max - 1) + 1  # randint's bound is exclusive
    return torch.randint(lo, high, shape, generator=gen, dtype=example.dtype)


def _grid(model: Model, i: Input, example: torch.Tensor) -> torch.Tensor:
    if not i.floating:
        return example
    lo, hi = _range(model, i)
    return torch.linspace(lo, hi, example.numel(), dtype=torch.float64).reshape(example.shape)


def _edges(model: Model, i: Input, example: torch.Tensor) -> torch.Tensor:
    n = example.numel()
    if not i.floating:
        if example.dtype == torch.bool:
            return example
        ends = torch.stack([example.min(), example.max()]).to(example.dtype)
        return ends.repeat(n // 2 + 1)[:n].reshape(example.shape)
    scale = max(abs(i.low), abs(i.high)) or 1.0
    values = [0.0, -0.0] + [s * f * scale for f in EDGE_FACTORS for s in (1.0, -1.0)]
    if model.value_range is not None:
        lo, hi = model.value_range
        values = [min(max(v, lo), hi) for v in values]
    # one edge value between example values, so a normalisation over a row still sees ordinary data
    out = example.detach().to(torch.float64).clone().reshape(-1)
    for k in range(0, n, 2):
        out[k] = values[(k // 2) % len(values)]
    if model.value_range is not None:
        out = out.clamp(*model.value_range)
    return out.reshape(example.shape)


def batteries(model: Model, dtype: str, samples: tuple[tuple[torch.Tensor, ...], ...] = ()) -> list[ModelBattery]:
    """Every battery for `dtype`, samples last (named sample0, sample1, ...)."""
    out = []
    for name in NAMES:
        gen = _gen(model, name)
        tensors = []
        for i, t in zip(model.inputs, model.example):
            if name == "example":
                x = t
            elif name == "random":
                x = _random(model, i, t, gen)
            elif name == "grid":
                x = _grid(model, i, t)
            else:
                x = _edges(model, i, t)
            tensors.append(x)
        out.append(ModelBattery(name, tuple(model.cast(tensors, dtype))))
    for n, sample in enumerate(samples):
        out.append(ModelBattery(f"sample{n}", tuple(model.cast(list(sample), dtype))))
    return out
