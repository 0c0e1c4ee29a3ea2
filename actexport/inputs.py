"""Seeded random data, a dense grid, and the edge-value battery, per activation and dtype."""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
import torch

from actexport.catalog import Activation
from actexport.dtypes import finfo, np_dtype, to_numpy, to_torch, torch_dtype  # noqa: F401  (used here and by callers)


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


def every_value(dtype: str) -> np.ndarray:
    """Every bit pattern of a 16-bit dtype: 65,536 values, NaNs and infinities included."""
    return np.arange(1 << 16, dtype=np.uint32).astype(np.uint16).view(np_dtype(dtype))


# Mantissas of the per-binade battery: the ends and quarters of each binade, and a few seeded ones.
_MANTISSAS = {"float32": 8, "float64": 3}


def binades(dtype: str, seed: int = 0) -> np.ndarray:
    """Both signs of every binade of a wide dtype (and of the subnormal range, by powers of two):
    the binade's first value, its last, and seeded mantissas between (`_MANTISSAS` per binade)."""
    fi = finfo(dtype)
    dt = np_dtype(dtype)
    rng = np.random.default_rng(seed)
    nmant = int(fi.nmant)
    exponents: np.ndarray = np.arange(int(fi.minexp), int(fi.maxexp), dtype=np.int64)
    fixed = [1.0, 1.25, 1.5, 1.75, 2.0 - 2.0 ** -nmant][: _MANTISSAS[dtype]]
    extra = max(_MANTISSAS[dtype] - len(fixed), 0)
    mantissas = np.concatenate([np.array(fixed), 1.0 + rng.random(extra)]) if extra else np.array(fixed)
    normal = (mantissas[None, :] * np.ldexp(1.0, exponents)[:, None]).reshape(-1)
    subnormal = np.ldexp(1.0, np.arange(int(fi.minexp) - nmant, int(fi.minexp), dtype=np.int64)) * 1.5
    values = np.concatenate([normal, subnormal, [float(fi.smallest_subnormal)]]).astype(dt)
    return np.concatenate([values, -values])


def near(points, dtype: str, steps: int = 8) -> np.ndarray:
    """Each point with its `steps` floating-point neighbours on either side, and points closing in
    on it from a relative distance of 1/2 down to one ULP (log-spaced): where a definition changes or
    a declared deviation begins, a deviation that spreads shows first."""
    dt = np_dtype(dtype)
    out = []
    for p in points:
        with np.errstate(over="ignore"):  # a point beyond the dtype's range rounds to inf: skipped
            v = np.array(p, dt)
        if not np.isfinite(v.astype(np.float64)):
            continue
        up, down = v.copy(), v.copy()
        for _ in range(steps):
            up = np.nextafter(up, np.array(np.inf, dt))
            down = np.nextafter(down, np.array(-np.inf, dt))
            out += [up, down]
        scale = max(abs(float(p)), float(finfo(dtype).smallest_normal))
        for k in range(1, int(finfo(dtype).nmant) + 1):
            out += [float(p) + scale * 2.0**-k, float(p) - scale * 2.0**-k]
        out.append(v)
    with np.errstate(over="ignore"):
        return np.array(out, dtype=np.float64).astype(dt).reshape(-1) if out else np.zeros(0, dt)


def declared_points(act: Activation) -> list[float]:
    """The ends of every interval the activation's declarations name (see catalog.Region)."""
    from actexport.catalog import Region
    points: list[float] = []
    for xf in act.xfails:
        for text in xf.where + xf.special:
            for lo, hi, _, _ in Region.parse(text).spans:
                points += [v for v in (lo, hi) if np.isfinite(v)]
    return sorted(set(points))


def batteries(act: Activation, dtype: str, grid_points: int = 2048) -> list[Battery]:
    """The inputs every cell is judged on: random (in a shape unlike the export example), grid, edges,
    and the number line: every value of a 16-bit dtype, or every binade of a wider one with dense
    points around the activation's boundaries and the ends of its declared regions."""
    dt = np_dtype(dtype)
    rng = np.random.default_rng(_seed(act, "random"))
    # Double every dynamic dim so the artifact is run at a shape it was not exported with.
    shape = tuple(d if i in act.static_dims else 2 * d for i, d in enumerate(act.shape))
    lo, hi = act.domain
    random = (rng.standard_normal(shape) * (hi - lo) / 6.0).astype(dt)
    grid = np.linspace(lo, hi, grid_points).astype(dt)
    edges = np.concatenate([special_values(dtype), magnitudes(dtype), boundary_values(act, dtype)]).astype(dt)
    if dt.itemsize == 2:
        line = every_value(dtype)
    else:
        line = np.concatenate([binades(dtype, _seed(act, "binades")),
                               near((*act.boundaries, *declared_points(act)), dtype)]).astype(dt)
    if act.max_input is not None:
        edges, line = (_within_max(v, act.max_input) for v in (edges, line))
    fill = (np.random.default_rng(_seed(act, "fill")).standard_normal(64)).astype(dt)
    out = [
        Battery("random", random),
        Battery("grid", _layout(act, grid, fill)),
        Battery("edges", _one_per_row(act, edges, fill)),
    ]
    if act.recipe is not None:
        return out  # a user's model: its own inputs are another matter than an activation's number line
    if act.oracle.elementwise:
        out.append(Battery("line", _layout(act, line, fill)))
    elif act.operands == 2:
        out.append(Battery("line", _gated(act, line, dtype)))
    else:
        out.append(Battery("line", _rows(act, line, _seed(act, "rows"))))
    return out


def _rows(act: Activation, values: np.ndarray, seed: int) -> np.ndarray:
    """The number line for a function of whole rows (softmax): the finite values packed row by row
    twice, sorted (neighbours: small differences) and shuffled (mixed magnitudes: the tails), and each
    NaN or inf in a row of its own among the sorted values, so that one of them does not decide a
    whole row of the others."""
    with np.errstate(invalid="ignore"):
        v64: np.ndarray = values.astype(np.float64)
    finite = np.sort(v64[np.isfinite(v64)]).astype(values.dtype)
    special = np.array([np.nan, -np.nan, np.inf, -np.inf]).astype(values.dtype)
    shuffled = finite[np.random.default_rng(seed).permutation(finite.size)]
    packed = _layout(act, np.concatenate([finite, shuffled]), finite)
    return np.concatenate([packed, _one_per_row(act, special, finite)], axis=0)


def _within_max(values: np.ndarray, limit: float) -> np.ndarray:
    v64: np.ndarray = values.astype(np.float64)
    return values[~(np.isfinite(v64) & (np.abs(v64) > limit))]


def _gated(act: Activation, values: np.ndarray, dtype: str) -> np.ndarray:
    """GLU's two operands over the number line: every value as the gate b beside a = 1 and a large a
    (the dtype's max / 4: what sigmoid(b) loses, a large a cannot bring back), and every value as a
    beside the gate 1."""
    dt = np_dtype(dtype)
    big = float(finfo(dtype).max) / 4
    pairs = [(np.full(values.size, a, dt), values) for a in (1.0, big)]
    pairs.append((values, np.full(values.size, 1.0, dt)))
    a = np.concatenate([p[0] for p in pairs]).astype(dt)
    b = np.concatenate([p[1] for p in pairs]).astype(dt)
    half = int(np.prod(act.shape[1:])) // 2  # GLU halves the last dim: rows of (a..., b...)
    rows = -(-a.size // half)
    pad = rows * half - a.size
    a = np.concatenate([a, np.ones(pad, dt)]).reshape(rows, half)
    b = np.concatenate([b, np.ones(pad, dt)]).reshape(rows, half)
    return np.concatenate([a, b], axis=-1).reshape((rows, *act.shape[1:]))


def example(act: Activation, dtype: str) -> torch.Tensor:
    """The example input used to trace and export, in the activation's example shape."""
    rng = np.random.default_rng(_seed(act, "example"))
    return to_torch(rng.standard_normal(act.shape).astype(np_dtype(dtype)))
