"""Seeded random data, a dense grid, and the edge-value battery, per activation and dtype."""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
import torch

from actexport.catalog import Activation


def np_dtype(name: str) -> np.dtype:
    if name == "bfloat16":
        import ml_dtypes  # noqa: PLC0415  (optional: only needed for bfloat16)

        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(name)


def finfo(name: str):
    """np.finfo, also for bfloat16 (numpy's own finfo does not know ml_dtypes' types)."""
    if name == "bfloat16":
        import ml_dtypes  # noqa: PLC0415

        return ml_dtypes.finfo(ml_dtypes.bfloat16)
    return np.finfo(np.dtype(name))


def torch_dtype(name: str) -> torch.dtype:
    return getattr(torch, name)


def to_torch(x: np.ndarray) -> torch.Tensor:
    if x.dtype.name == "bfloat16":
        return torch.from_numpy(x.view(np.int16).copy()).view(torch.bfloat16)
    return torch.from_numpy(np.ascontiguousarray(x).copy())


def to_numpy(t: torch.Tensor) -> np.ndarray:
    t = t.detach().cpu().contiguous()
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().view(np_dtype("bfloat16"))
    return t.numpy()


@dataclass(frozen=True)
class Battery:
    """One named input tensor."""

    name: str
    x: np.ndarray


def special_values(dtype: str) -> np.ndarray:
    """NaN, ±inf, ±0, the subnormal and normal extremes, and ±1 in `dtype`."""
    dt = np_dtype(dtype)
    fi = finfo(dtype)
    tiny_sub = fi.smallest_subnormal
    largest_sub = np.array(fi.smallest_normal, dt) - np.array(tiny_sub, dt)
    vals = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -1.0]
    for v in (tiny_sub, largest_sub, fi.smallest_normal, fi.max):
        vals += [float(v), -float(v)]
    return np.array(vals, dtype=np.float64).astype(dt)


def magnitudes(dtype: str) -> np.ndarray:
    """Large inputs between the grid and ±max: decades, and where exp, x^2 and x^3 overflow."""
    fi = finfo(dtype)
    big = float(fi.max)
    decades = [10.0**k for k in range(1, int(np.log10(big)) + 1, 3 if big > 1e100 else 1)]
    points = [20.0, 50.0, np.log(big), np.log(big) + 1, np.sqrt(big), np.cbrt(big), *decades]
    vals = sorted({v for v in points if v < big})
    return np.array([*vals, *(-v for v in vals)], dtype=np.float64).astype(np_dtype(dtype))


def boundary_values(act: Activation, dtype: str) -> np.ndarray:
    """Each boundary of the activation, with its two floating-point neighbours in `dtype`."""
    dt = np_dtype(dtype)
    out: list[np.ndarray] = []
    for b in act.boundaries:
        v = np.array(b, dtype=dt)
        out += [np.nextafter(v, np.array(-np.inf, dt)), v, np.nextafter(v, np.array(np.inf, dt))]
    return np.array(out, dtype=dt).reshape(-1)


def _seed(act: Activation, battery: str) -> int:
    return zlib.crc32(f"{act.id}/{battery}".encode())


def _one_per_row(act: Activation, values: np.ndarray, fill: np.ndarray) -> np.ndarray:
    """Each value in a row of its own among ordinary values, so that one NaN or inf does not decide
    a whole softmax row: the other values of each row are still judged. Value i sits at position
    i mod (row size) of row i, so reductions along dim 0 also see the values spread out."""
    row = int(np.prod(act.shape[1:]))
    rows = values.size + (values.size % 2 if act.shape[0] % 2 == 0 else 0)
    out = np.resize(fill, rows * row).astype(values.dtype).reshape(rows, row)
    for i, v in enumerate(values):
        out[i, i % row] = v
    return out.reshape((rows, *act.shape[1:]))


def _layout(act: Activation, values: np.ndarray, fill: np.ndarray) -> np.ndarray:
    """Lays `values` into a tensor of the activation's shape, growing dim 0 and padding from `fill`."""
    row = int(np.prod(act.shape[1:]))
    rows = max(act.shape[0], -(-values.size // row))
    if rows % 2 and act.shape[0] % 2 == 0:
        rows += 1  # keep dim 0 even where the example had it even (GLU-like splits stay valid)
    flat = np.resize(fill, rows * row).astype(values.dtype)
    flat[: values.size] = values
    return flat.reshape((rows, *act.shape[1:]))


def batteries(act: Activation, dtype: str, grid_points: int = 2048) -> list[Battery]:
    """The inputs every cell is judged on: random (in a shape unlike the export example), grid, edges."""
    dt = np_dtype(dtype)
    rng = np.random.default_rng(_seed(act, "random"))
    # Double every dynamic dim so the artifact is run at a shape it was not exported with.
    shape = tuple(d if i in act.static_dims else 2 * d for i, d in enumerate(act.shape))
    lo, hi = act.domain
    random = (rng.standard_normal(shape) * (hi - lo) / 6.0).astype(dt)
    grid = np.linspace(lo, hi, grid_points).astype(dt)
    edges = np.concatenate([special_values(dtype), magnitudes(dtype), boundary_values(act, dtype)]).astype(dt)
    if act.max_input is not None:
        e64 = edges.astype(np.float64)
        edges = edges[~(np.isfinite(e64) & (np.abs(e64) > act.max_input))]
    fill = (np.random.default_rng(_seed(act, "fill")).standard_normal(64)).astype(dt)
    return [
        Battery("random", random),
        Battery("grid", _layout(act, grid, fill)),
        Battery("edges", _one_per_row(act, edges, fill)),
    ]


def example(act: Activation, dtype: str) -> torch.Tensor:
    """The example input used to trace and export, in the activation's example shape."""
    rng = np.random.default_rng(_seed(act, "example"))
    return to_torch(rng.standard_normal(act.shape).astype(np_dtype(dtype)))
