"""Whether a model's outputs are right: judged against float64 at each output's own scale.

A model composes many roundings: a dot product of K terms carries error ~sqrt(K)·u relative to the
magnitudes it sums, and cancellation near zero makes any per-element relative measure meaningless.
So each output is measured in ULPs *at its scale*: the largest absolute error over the battery,
divided by the spacing of floating-point numbers at the output's largest finite magnitude (the
reference's). That figure does not depend on units: a model whose outputs are 1e-9 is judged as
strictly as one whose outputs are 1e3, and an output near zero is not judged per element.

- Eager PyTorch in the dtype under test must keep half the digits at that scale: its error at most
  sqrt(eps)·scale (float32: ~2900 ULP at scale, a relative 3.5e-4; float16: 32; bfloat16: 11). A
  model that loses more than that on these inputs computes noise in this dtype, artifact or not.
- An artifact must be no worse than eager PyTorch in the same dtype by more than FACTOR, with a
  floor of FLOOR ULP at scale (an exact eager run does not make every rounding a failure): kernels
  sum in other orders and fuse differently, which costs a small multiple of eager's own error, never
  an order of magnitude.
- A NaN or inf where the reference is finite (or the reverse) fails, unless eager PyTorch has the
  same value there (the dtype's range, not the export).
- An output that is 0 everywhere, or constant over every input, is *vacuous*: there is nothing to
  compare, and the verdict says so instead of passing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from actexport.dtypes import finfo

FACTOR = 4
FLOOR = 16


def eager_budget(dtype: str) -> float:
    """Half the digits: sqrt(eps)·scale, in ULP at scale (eps is the spacing at 1)."""
    return 1.0 / math.sqrt(float(finfo(dtype).eps))


@dataclass(frozen=True)
class OutputFigures:
    """One output of one cell, over every battery."""

    name: str
    elements: int
    scale: float  # the largest finite magnitude of the reference, over every battery
    max_abs: float
    ulp_at_scale: float  # the verdict's figure: the worst battery's max_abs / spacing at its scale
    rel_error: float  # the same as a fraction of the scale
    budget_ulp: float
    eager_ulp_at_scale: float | None  # eager PyTorch's own figure (None for eager itself)
    nonfinite: int  # NaN/inf where the reference has none (or the reverse), eager not sharing it
    shared_nonfinite: int  # the same, where eager PyTorch has that value too
    worst_battery: str
    vacuous: str = ""  # why comparing this output tests nothing
    nan_mismatch: int = 0  # of `nonfinite`, those where one side is NaN (the others are an inf)

    @property
    def ok(self) -> bool:
        return not self.vacuous and not self.nonfinite and self.ulp_at_scale <= self.budget_ulp

    def to_json(self) -> dict:
        return {k: (round(v, 3) if isinstance(v, float) and math.isfinite(v) else v)
                for k, v in self.__dict__.items()}


def _nonfinite(y: np.ndarray, r: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return (np.isnan(y) != np.isnan(r)) | ((np.isinf(y) | np.isinf(r)) & (y != r) & ~(np.isnan(y) & np.isnan(r)))


def _spacing(scale: float, dtype: str) -> float:
    from actexport.dtypes import np_dtype
    tiny = float(finfo(dtype).smallest_normal)
    return float(np.spacing(np.array(max(scale, tiny), np_dtype(dtype))))


def figures(name: str, dtype: str, batteries: list[str], values: list[np.ndarray], ref: list[np.ndarray],
            eager: list[np.ndarray] | None) -> OutputFigures:
    """One output judged over every battery (`values`, `ref`, `eager`: one array per battery; eager
    None: this is eager PyTorch itself). Each battery has its own budget, from eager's error on that
    battery: a battery where eager is poor must not excuse an artifact's error on another."""
    # ratio to budget, ulp, error, relative error, eager's ulp, battery: of the battery that decides
    worst: tuple[float, float, float, float, float | None, str] = (-1.0, 0.0, 0.0, 0.0, None,
                                                                  batteries[0] if batteries else "")
    first_bad = ""
    scale_all, nonfinite, shared, elements, nans = 0.0, 0, 0, 0, 0
    spans = []
    for k, (battery, y, r) in enumerate(zip(batteries, values, ref)):
        y64, r64 = np.asarray(y).astype(np.float64), np.asarray(r).astype(np.float64)
        elements += r64.size
        bad = _nonfinite(y64, r64)
        e64 = None if eager is None else np.asarray(eager[k]).astype(np.float64)
        if e64 is not None:
            same = bad & ((e64 == y64) | (np.isnan(e64) & np.isnan(y64)))
            shared += int(same.sum())
            if (bad & ~same).any() and not nonfinite:
                first_bad = battery  # the battery that shows it: where the origin is looked for
            nonfinite += int((bad & ~same).sum())
            nans += int((bad & ~same & (np.isnan(y64) != np.isnan(r64))).sum())
        else:
            shared += int(bad.sum())  # eager itself: the dtype's range, reported not failed
        finite_r = np.isfinite(r64)
        rf = np.abs(r64[finite_r])
        scale = float(rf.max()) if rf.size else 0.0
        scale_all = max(scale_all, scale)
        if rf.size:
            spans.append((float(r64[finite_r].min()), float(r64[finite_r].max())))
        spacing = _spacing(scale, dtype)
        ulp = _max_error(y64, r64) / spacing
        eager_ulp = None if e64 is None else _max_error(e64, r64) / spacing
        budget = eager_budget(dtype) if eager_ulp is None else max(FACTOR * eager_ulp, FLOOR)
        if ulp / budget > worst[0]:
            err = ulp * spacing
            worst = (ulp / budget, ulp, err, err / scale if scale else 0.0, eager_ulp, battery)
    ratio, ulp, err, rel, eager_ulp, battery = worst
    vacuous = ""
    if scale_all < float(finfo(dtype).smallest_normal):
        vacuous = f"{name} is 0 on every input: comparing it tests nothing"
    elif spans and max(hi for _, hi in spans) == min(lo for lo, _ in spans):
        vacuous = f"{name} is the constant {spans[0][0]:.6g} on every input: comparing it tests nothing"
    budget = eager_budget(dtype) if eager is None else max(FACTOR * (eager_ulp or 0.0), FLOOR)
    return OutputFigures(name, elements, scale_all, err, max(ulp, 0.0), rel, budget, eager_ulp, nonfinite, shared,
                         first_bad or battery, vacuous, nans)


def _max_error(y64: np.ndarray, r64: np.ndarray) -> float:
    finite = np.isfinite(r64) & np.isfinite(y64)
    return float(np.abs(y64[finite] - r64[finite]).max()) if finite.any() else 0.0


def exact_match(name: str, batteries: list[str], values: list[np.ndarray], ref: list[np.ndarray]) -> OutputFigures:
    """An integer or bool output (an argmax, a mask): it must equal the reference's."""
    differ = sum(int((np.asarray(y) != np.asarray(r)).sum()) for y, r in zip(values, ref))
    elements = sum(np.asarray(r).size for r in ref)
    return OutputFigures(name, elements, 0.0, float(differ), float(differ), 0.0, 0.0, None, 0, 0,
                         batteries[0] if batteries else "")


def summary(outs: list[OutputFigures]) -> str:
    """Why a cell fails, naming each output that does (empty when every output is within budget)."""
    parts = []
    for o in outs:
        if o.vacuous:
            parts.append(f"vacuous: {o.vacuous}")
        elif o.nonfinite:
            parts.append(f"{o.name}: {o.nonfinite} NaN/inf where the float64 reference is finite (or the reverse) "
                         f"and eager PyTorch is not")
        elif o.ulp_at_scale > o.budget_ulp:
            parts.append(f"{o.name}: {o.ulp_at_scale:.4g} ULP at its scale {o.scale:.3g} (relative {o.rel_error:.2e}) "
                         f"on {o.worst_battery}; budget {o.budget_ulp:.4g}"
                         + ("" if o.eager_ulp_at_scale is None else
                            f" ({FACTOR}x eager PyTorch's {o.eager_ulp_at_scale:.4g}, at least {FLOOR})"))
    return "; ".join(parts)
