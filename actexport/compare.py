"""Distances between two outputs: abs and ULP error, NaN/inf/signed-zero agreement."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from actexport.catalog import Budget
from actexport.dtypes import finfo

_UINT_OF = {2: np.uint16, 4: np.uint32, 8: np.uint64}


def ordered(x: np.ndarray) -> np.ndarray:
    """Maps floats onto int64 values that keep their order, one step per representable value.

    +0 and -0 both map to 0; the smallest subnormals map to ±1; ±inf sit one step past ±max.
    NaN maps to some value past inf: callers judge NaN separately.
    """
    x = np.asarray(x)
    nbits = 8 * x.dtype.itemsize
    u: np.ndarray = x.view(_UINT_OF[x.dtype.itemsize]).astype(np.uint64)
    magnitude = (u & np.uint64((1 << (nbits - 1)) - 1)).astype(np.int64)
    negative = (u >> np.uint64(nbits - 1)).astype(bool)
    return np.where(negative, -magnitude, magnitude)


def ulp_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Number of representable values between a and b (same dtype), as uint64; NaN gives 0 here.

    Callers judge NaN separately: this is only meaningful where both are numbers.
    """
    a, b = np.broadcast_arrays(np.asarray(a), np.asarray(b))
    if a.dtype != b.dtype:
        raise TypeError(f"ulp_distance needs one dtype, got {a.dtype} and {b.dtype}")
    oa, ob = ordered(a), ordered(b)
    same_side = (oa >= 0) == (ob >= 0)
    # Same sign: the int64 difference is exact. Opposite signs: |oa| + |ob| can pass 2**63 only for
    # float64, so it is summed in uint64 (each magnitude is below 2**63).
    near = np.abs(oa - np.where(same_side, ob, 0)).astype(np.uint64)
    far = np.abs(oa).astype(np.uint64) + np.abs(ob).astype(np.uint64)
    d = np.where(same_side, near, far)
    with np.errstate(invalid="ignore"):  # signalling NaNs (every 16-bit value is an input) set the flag
        either_nan = np.isnan(a.astype(np.float64)) | np.isnan(b.astype(np.float64))
    return np.where(either_nan, 0, d).astype(np.uint64)


@dataclass(frozen=True)
class Elements:
    """Every element of one output against the expected one, classified (flat arrays).

    `over` is an element outside the budget: more than `budget.ulp` ULP from the expected value,
    except that an expected value below the floor (`small`: |expected| < max(budget.atol, the dtype's
    smallest normal)) is judged by absolute error instead, within `budget.atol`. So ULP counting
    applies wherever the expected value is a normal number; see DEFAULT_BUDGETS for why the floor is
    the smallest normal. `zero_loss` is an element over budget whose value is 0 where the expected value
    is a normal number ("0 for 2e-09"): its ULP distance is astronomical and says nothing.
    """

    actual: np.ndarray  # float64
    expected: np.ndarray  # float64
    ulp: np.ndarray  # uint64, 0 where either is NaN or on an inf mismatch
    abs_err: np.ndarray  # float64, 0 where either is NaN or on an inf mismatch
    nan_bad: np.ndarray
    inf_bad: np.ndarray
    over: np.ndarray
    zero_loss: np.ndarray
    normal: np.ndarray  # the expected value is a finite normal number
    floored: np.ndarray  # below the floor and within it: judged by absolute error, not ULP


def classify(actual: np.ndarray, expected: np.ndarray, budget: Budget) -> Elements:
    """Classifies every element of `actual` against `expected` (one shape, one dtype)."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    if actual.shape != expected.shape:
        raise ValueError(f"shape {actual.shape} differs from the expected {expected.shape}")
    if actual.dtype != expected.dtype:
        raise ValueError(f"dtype {actual.dtype} differs from the expected {expected.dtype}")
    a, e = actual.reshape(-1), expected.reshape(-1)
    with np.errstate(invalid="ignore"):  # signalling NaNs set the invalid flag when widened
        a64: np.ndarray = a.astype(np.float64)
        e64: np.ndarray = e.astype(np.float64)
    smallest_normal = float(finfo(a.dtype.name).smallest_normal)
    magnitude = np.abs(e64)
    small = (np.ones(magnitude.shape, bool) if budget.absolute_everywhere
             else magnitude < max(budget.atol, smallest_normal))
    normal = np.isfinite(e64) & (magnitude >= smallest_normal)
    if _same_bits(a, e):  # NOTE: half the comparisons of a run: no error anywhere, so the floor is `small`
        none: np.ndarray = np.zeros(e64.shape, bool)
        return Elements(a64, e64, np.zeros(e64.shape, np.uint64), np.zeros(e64.shape), none, none, none, none,
                        normal, small)
    a_nan, e_nan = np.isnan(a64), np.isnan(e64)
    nan_bad = a_nan != e_nan
    both_num = ~a_nan & ~e_nan
    inf_bad = both_num & (np.isinf(a64) | np.isinf(e64)) & (a64 != e64)
    same = both_num & (a64 == e64)  # equal infinities too: inf - inf would be NaN
    with np.errstate(invalid="ignore", over="ignore"):
        abs_err = np.where(both_num & ~inf_bad & ~same, np.abs(a64 - e64), 0.0)
    ulp = np.where(both_num & ~inf_bad, ulp_distance(a, e), 0).astype(np.uint64)
    floored = small & (abs_err <= budget.atol)
    over = both_num & ~inf_bad & (ulp > budget.ulp) & ~floored
    return Elements(a64, e64, ulp, abs_err, nan_bad, inf_bad, over, over & (a64 == 0) & normal, normal, floored)


def _same_bits(a: np.ndarray, e: np.ndarray) -> bool:
    return a.tobytes() == e.tobytes()


@dataclass(frozen=True)
class Comparison:
    """How far `actual` is from `expected`, element by element, summarised."""

    n: int
    max_abs: float
    max_ulp: int
    worst_index: int | None
    worst_input: float | None
    worst_expected: float | None
    worst_actual: float | None
    nan_mismatch: int
    inf_mismatch: int
    signed_zero_mismatch: int
    over_budget: int
    budget: Budget
    over_abs: float = 0.0  # the largest absolute error among the elements over budget
    # The readable figures: ULP where the expected value is normal and the value is not a lost 0,
    # and the lost values apart ("0 for 2.06e-09 at x=-20").
    normal_ulp: int = 0
    zero_loss: int = 0
    zero_for: float | None = None  # the largest expected value returned as 0
    zero_at: float | None = None  # its input

    @property
    def ok(self) -> bool:
        return self.nan_mismatch == 0 and self.inf_mismatch == 0 and self.over_budget == 0

    def describe(self) -> str:
        """One line: what was wrong and what would have passed."""
        parts = []
        if self.nan_mismatch:
            parts.append(f"{self.nan_mismatch} NaN mismatch(es)")
        if self.inf_mismatch:
            parts.append(f"{self.inf_mismatch} inf mismatch(es)")
        if self.over_budget:
            over = f"{self.over_budget} element(s) over budget: max {self.normal_ulp} ULP > {self.budget.ulp} ULP allowed"
            if self.zero_loss:
                over += f", {self.zero_loss} returned 0 for a normal value (up to {self.zero_for:.3g}" + (
                    f" at x={self.zero_at:.6g})" if self.zero_at is not None else ")")
            else:
                over += f"; would pass with ulp={self.normal_ulp}"
            parts.append(over + f" (max abs error {self.over_abs:.3g})")
        if self.worst_index is not None:
            parts.append(
                f"worst at x={self.worst_input!r}: expected {self.worst_expected!r}, got {self.worst_actual!r}"
            )
        if self.signed_zero_mismatch:
            parts.append(f"warning: {self.signed_zero_mismatch} zero(s) of the other sign")
        return "; ".join(parts)


def compare(actual: np.ndarray, expected: np.ndarray, x: np.ndarray, budget: Budget,
            only: np.ndarray | None = None, elements: Elements | None = None) -> Comparison:
    """Compares two outputs of one dtype; `x` is the input that produced them (an array of the
    output's size, or anything else when there is no one-to-one input). `only`, a flat mask, limits the
    comparison to some elements; `elements` is classify()'s result when the caller already has it."""
    el = elements if elements is not None else classify(actual, expected, budget)
    with np.errstate(invalid="ignore"):
        x_flat = np.asarray(x).astype(np.float64).reshape(-1)
    aligned = x_flat.size == el.actual.size
    keep = np.ones(el.actual.size, bool) if only is None else np.asarray(only, bool)
    nan_bad, inf_bad, over = el.nan_bad & keep, el.inf_bad & keep, el.over & keep
    both_num = ~np.isnan(el.actual) & ~np.isnan(el.expected) & keep
    zero_bad = both_num & (el.actual == 0) & (el.expected == 0) & (np.signbit(el.actual) != np.signbit(el.expected))
    if aligned:  # the sign of a zero output only means something for a zero input
        zero_bad &= x_flat == 0
    abs_err = np.where(keep, el.abs_err, 0.0)
    ulp = np.where(keep, el.ulp, 0).astype(np.uint64)

    # The worst element: a NaN or inf mismatch first, then the largest ULP error over budget.
    bad = nan_bad | inf_bad
    worst = None
    if bad.any():
        worst = int(np.argmax(bad))
    elif over.any():
        worst = int(np.argmax(np.where(over, ulp.astype(np.float64), -1.0)))
    elif keep.any():
        worst = int(np.argmax(np.where(keep, abs_err, -1.0)))
    xs = x_flat if aligned else np.array([])
    loss = el.zero_loss & keep
    readable = keep & el.normal & ~loss & ~nan_bad & ~inf_bad
    lost = int(np.argmax(np.where(loss, np.abs(el.expected), -1.0))) if loss.any() else None
    return Comparison(
        n=int(keep.sum()),
        max_abs=float(abs_err.max()) if keep.any() else 0.0,
        max_ulp=int(np.max(np.where(keep & ~el.floored, ulp, 0), initial=0)),
        worst_index=worst,
        worst_input=None if worst is None else _scalar(xs, worst),
        worst_expected=None if worst is None else float(el.expected[worst]),
        worst_actual=None if worst is None else float(el.actual[worst]),
        nan_mismatch=int(nan_bad.sum()),
        inf_mismatch=int(inf_bad.sum()),
        signed_zero_mismatch=int(zero_bad.sum()),
        over_budget=int(over.sum()),
        budget=budget,
        over_abs=float(abs_err[over].max()) if over.any() else 0.0,
        normal_ulp=int(np.max(np.where(readable, ulp, 0), initial=0)),
        zero_loss=int(loss.sum()),
        zero_for=None if lost is None else float(abs(el.expected[lost])),
        zero_at=None if lost is None else _scalar(xs, lost),
    )


def _scalar(xs: np.ndarray, i: int) -> float | None:
    return float(xs[i]) if i < xs.size else None


def badness(c: Comparison) -> tuple:
    """Orders comparisons from best to worst: NaN/inf mismatches, then over budget, then ULP, abs."""
    return (c.nan_mismatch + c.inf_mismatch > 0, c.over_budget > 0, c.max_ulp, c.max_abs)


def merge(parts: list[Comparison]) -> Comparison:
    """Combines the comparisons of several batteries into one, keeping the worst element."""
    if not parts:
        raise ValueError("nothing to merge")
    worst = max(parts, key=badness)
    # NOTE: `or 0.0` only tells mypy what the filter guarantees (zero_for is never None there)
    lost = max((c for c in parts if c.zero_for is not None), key=lambda c: c.zero_for or 0.0, default=None)
    return Comparison(
        n=sum(c.n for c in parts),
        max_abs=max(c.max_abs for c in parts),
        max_ulp=max(c.max_ulp for c in parts),
        worst_index=worst.worst_index,
        worst_input=worst.worst_input,
        worst_expected=worst.worst_expected,
        worst_actual=worst.worst_actual,
        nan_mismatch=sum(c.nan_mismatch for c in parts),
        inf_mismatch=sum(c.inf_mismatch for c in parts),
        signed_zero_mismatch=sum(c.signed_zero_mismatch for c in parts),
        over_budget=sum(c.over_budget for c in parts),
        budget=worst.budget,
        over_abs=max(c.over_abs for c in parts),
        normal_ulp=max(c.normal_ulp for c in parts),
        zero_loss=sum(c.zero_loss for c in parts),
        zero_for=lost.zero_for if lost else None,
        zero_at=lost.zero_at if lost else None,
    )


def _klass(v: float) -> str:
    if np.isnan(v):
        return "NaN"
    if np.isinf(v):
        return "+inf" if v > 0 else "-inf"
    if v == 0:
        return "-0" if np.signbit(v) else "+0"
    return "finite"


def _klass_codes(v: np.ndarray) -> np.ndarray:
    """_klass of every element as a small int: 0 finite, 1 NaN, 2 +inf, 3 -inf, 4 +0, 5 -0."""
    codes = np.zeros(v.shape, np.int8)
    codes[np.isnan(v)] = 1
    codes[v == np.inf] = 2
    codes[v == -np.inf] = 3
    zero = v == 0
    codes[zero & ~np.signbit(v)] = 4
    codes[zero & np.signbit(v)] = 5
    return codes


def _show(v: float) -> str:
    k = _klass(v)
    return f"{v:.6g}" if k == "finite" else k


def semantics(x: np.ndarray, got: np.ndarray, exact: np.ndarray, limit: int = 12,
              says: str = "{got} out, exact {expected}") -> list[str]:
    """What a runtime returns for special values against what the function returns, one line each.

    Lines like "x=NaN: 0 out, exact NaN" or "x=3.40282e+38: +inf out, exact 3.40282e+38": every
    element whose NaN/inf class differs from the exact result's, and every special input (NaN, ±inf,
    ±0, subnormal) whose output class (NaN, ±inf, ±0, finite) differs. The sign of a zero output is
    only compared for a zero input ("-0 in -> +0 out"): elsewhere the mathematical zero has no sign.
    Repeats are counted. `says` words the two values (another device instead of exact, say).
    """
    with np.errstate(invalid="ignore"):
        g = np.asarray(got).astype(np.float64).reshape(-1)
        e = np.asarray(exact).astype(np.float64).reshape(-1)
        xs = np.asarray(x).astype(np.float64).reshape(-1)
    aligned = xs.size == g.size
    lines: dict[str, int] = {}
    # NOTE: classes are compared vectorised first; only the (few) differing elements are described.
    for i in np.flatnonzero(_klass_codes(g) != _klass_codes(e)):
        kg, ke = _klass(g[i]), _klass(e[i])
        if kg == ke:
            continue
        special_in = aligned and (not np.isfinite(xs[i]) or abs(xs[i]) < np.finfo(np.float64).tiny
                                  or _is_subnormal(xs[i], np.asarray(x).dtype))
        nan_or_inf = kg in ("NaN", "+inf", "-inf") or ke in ("NaN", "+inf", "-inf")
        zero_sign_only = {kg, ke} == {"+0", "-0"}
        if zero_sign_only and not (aligned and xs[i] == 0):
            continue
        if not (nan_or_inf or special_in):
            continue
        where = f"x={_show(xs[i])}" if aligned else f"element {i}"
        line = f"{where}: " + says.format(got=_show(g[i]), expected=_show(e[i]))
        lines[line] = lines.get(line, 0) + 1
    out = [line if n == 1 else f"{line} (x{n})" for line, n in lines.items()]
    return out[:limit] + ([f"... and {len(out) - limit} more"] if len(out) > limit else [])


def values_differ(a: np.ndarray, b: np.ndarray) -> int:
    """Elements whose values differ, counting the sign of zero (any two NaNs are the same)."""
    with np.errstate(invalid="ignore"):
        a, b = np.asarray(a).astype(np.float64), np.asarray(b).astype(np.float64)
    same = ((a == b) & (np.signbit(a) == np.signbit(b))) | (np.isnan(a) & np.isnan(b))
    return int(np.count_nonzero(~same))


@dataclass(frozen=True)
class Agreement:
    """One runtime's outputs for the same artifact on two devices (across_devices)."""

    elements: int
    differ: int  # elements whose values differ at all, signed zeros included
    max_ulp: int
    max_abs: float
    over_budget: int
    nan_mismatch: int
    inf_mismatch: int
    signed_zero_mismatch: int
    special: list[str]  # each special value handled differently: "x=-inf: NaN on cuda, -0 on cpu"
    agree: bool  # within budget of each other, every special value handled alike


def across_devices(inputs: list[np.ndarray], base: list[np.ndarray], other: list[np.ndarray], budget: Budget,
                   device: str, base_device: str = "cpu") -> Agreement:
    """One runtime's outputs for the same artifact on two devices, element by element, every battery.

    `other` is judged against `base` with the budget a verdict uses against exact: how many elements
    differ at all (signed zeros included), the largest ULP and absolute distance, the NaN, inf and
    zero-sign disagreements, and each special value handled differently, worded "x=-inf: NaN on cuda,
    -0 on cpu".
    """
    c = merge([compare(o, b, x, budget) for x, b, o in zip(inputs, base, other)])
    says = "{got} on " + device + ", {expected} on " + base_device
    special = list(dict.fromkeys(line for x, b, o in zip(inputs, base, other)
                                 for line in semantics(x, o, b, says=says)))
    return Agreement(
        elements=c.n, differ=sum(values_differ(o, b) for b, o in zip(base, other)),
        max_ulp=c.max_ulp, max_abs=c.max_abs, over_budget=c.over_budget,
        nan_mismatch=c.nan_mismatch, inf_mismatch=c.inf_mismatch, signed_zero_mismatch=c.signed_zero_mismatch,
        special=special, agree=c.ok and not special,
    )


def _is_subnormal(v: float, dtype: np.dtype) -> bool:
    return v != 0 and abs(v) < float(finfo(dtype.name).smallest_normal)
