"""The catalog's data model: an Activation (one row), the Budget it is judged by, the XFail
declarations of its known deviations with the Regions they are bounded to, and Declared, the ones that
match one cell; also the dtypes, UsageError and parse_list, which check what a user names."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from torch import nn

from actexport import oracle as o

DTYPES = ("float16", "bfloat16", "float32", "float64")


class UsageError(ValueError):
    """Bad input from the user: one line naming what was wrong and what is valid."""


@dataclass(frozen=True)
class Budget:
    """Tolerance for one dtype: ULPs of the output dtype, and an absolute floor near zero.

    An element passes when it is within `ulp` units in the last place of the expected value, or,
    where the expected value is below the floor (|expected| < max(atol, the dtype's smallest normal)),
    within `atol` of it: ULPs count wherever the expected value is a normal number.
    """

    ulp: int
    atol: float
    # A model's outputs (modules.py) take the floor everywhere: within `atol` of the expected value
    # passes whatever its magnitude. An activation's take it only below the floor (see DEFAULT_BUDGETS).
    absolute_everywhere: bool = False


# NOTE: judged against the exact result, an element passes within `ulp` ULPs of the output dtype.
# The absolute floor is the dtype's smallest normal, and it applies only where the exact value is
# subnormal or zero: a subnormal has fewer significant bits than the ULP count assumes, and flushing
# subnormals to zero (FTZ/DAZ) is a legitimate CPU and GPU setting, so an error below the smallest
# normal there is the format's, not the kernel's. Wherever the exact value is normal ULPs count: a
# floor applied there would pass an 11% error at 1e-4 in float16, or a normal value returned as 0. float64 allows 8 ULP: its
# transcendental kernels are typically within 1-6 ULP, and compositions such as log_softmax
# (x - max - log(sum(exp))) add one rounding per step.
DEFAULT_BUDGETS = {
    "float16": Budget(ulp=4, atol=2.0**-14),
    "bfloat16": Budget(ulp=4, atol=2.0**-126),
    "float32": Budget(ulp=4, atol=2.0**-126),
    "float64": Budget(ulp=8, atol=2.0**-1022),
}


Scope = str | tuple[str, ...] | None


@dataclass(frozen=True)
class Region:
    """A set of inputs where a declared deviation happens, written as text in the catalog:
    "[-0.13, 0)" (an interval; "inf" ends allowed), "±[1e-3, 0.1)" (both signs), or one point such
    as "-inf", "+inf", "nan", "0". What "x" is for an activation is `Activation.region_input`."""

    text: str
    spans: tuple[tuple[float, float, bool, bool], ...]  # (lo, hi, lo_open, hi_open)
    nan: bool = False

    @staticmethod
    def parse(text: str) -> Region:
        t = text.strip().replace(" ", "")
        if t.lower() == "nan":
            return Region(text, (), nan=True)
        both = t.startswith("±")
        t = t.lstrip("±")
        if t[:1] in "[(" and t[-1:] in "])" and "," in t:
            lo, hi = (float(v) for v in t[1:-1].split(","))
            span = (lo, hi, t[0] == "(", t[-1] == ")")
        else:
            v = float(t)  # "-inf", "3.5": one point
            span = (v, v, False, False)
        if not span[0] <= span[1]:
            raise ValueError(f"empty region {text!r}")
        lo, hi, lo_open, hi_open = span
        spans = (span, (-hi, -lo, hi_open, lo_open)) if both else (span,)
        return Region(text, spans)

    def contains(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        inside = np.isnan(x) if self.nan else np.zeros(x.shape, bool)
        for lo, hi, lo_open, hi_open in self.spans:
            with np.errstate(invalid="ignore"):
                inside |= ((x > lo) if lo_open else (x >= lo)) & ((x < hi) if hi_open else (x <= hi))
        return inside


def _regions(texts: tuple[str, ...]) -> tuple[Region, ...]:
    return tuple(Region.parse(t) for t in texts)


@dataclass(frozen=True)
class XFail:
    """A known, explained deviation, scoped to the cells it applies to, and bounded where and how large.

    Scope fields match a cell when None, equal to its value, or a tuple containing it. `exporter`
    scopes ONNX deviations to one torch.onnx exporter ("dynamo" or "legacy"), `graphs` to one graph
    profile ("stock", "actexport" or "candidates", see translations.py).

    A numerical deviation is declared where it happens and bounded by what was measured there: an
    element over the ULP budget is excused only if its input lies in `where` and it is within `max_ulp`
    ULP or `max_abs` of the exact value; a NaN or inf where the exact value has none (or the reverse)
    only if its input lies in `special`. Any other element is judged by the budget, so a deviation
    that spreads beyond its range, or grows within it, fails although declared. `no_artifact` declares
    instead that the exporter cannot produce the artifact at all; only such a declaration excuses a
    missing artifact.
    """

    reason: str
    format: Scope = None
    runtime: Scope = None
    dtype: Scope = None
    exporter: Scope = None
    graphs: Scope = None
    where: tuple[str, ...] = ()
    max_ulp: int | None = None
    max_abs: float | None = None
    special: tuple[str, ...] = ()
    no_artifact: bool = False

    def __post_init__(self) -> None:
        if not self.no_artifact:
            if not self.where and not self.special:
                raise ValueError(f"a numerical declaration needs `where` or `special`: {self.reason}")
            if self.where and self.max_ulp is None and self.max_abs is None:
                raise ValueError(f"a declaration with `where` needs max_ulp or max_abs: {self.reason}")
        _regions(self.where + self.special)  # a malformed region fails at import, not in a cell

    def matches(self, format: str, runtime: str | None, dtype: str, exporter: str | None = None,
                graphs: str | None = None) -> bool:
        return all(
            want is None or want == got or (isinstance(want, tuple) and got in want)
            for want, got in (
                (self.format, format), (self.runtime, runtime), (self.dtype, dtype), (self.exporter, exporter),
                (self.graphs, graphs),
            )
        )

    def excuses(self, x: np.ndarray, over: np.ndarray, special: np.ndarray, ulp: np.ndarray,
                abs_err: np.ndarray) -> np.ndarray:
        """Which bad elements this declaration excuses (flat arrays of one output; `x` is each
        element's input as `Activation.region_input` defines it; `over` and `special` say which elements
        are over the budget and which are NaN/inf mismatches)."""
        x = np.asarray(x, dtype=np.float64)
        out = np.zeros(over.shape, bool)
        if self.where:
            inside = np.any([r.contains(x) for r in _regions(self.where)], axis=0)
            size = np.zeros(over.shape, bool)
            if self.max_ulp is not None:
                size |= ulp <= np.uint64(self.max_ulp)
            if self.max_abs is not None:
                size |= abs_err <= self.max_abs
            out |= over & inside & size
        if self.special:
            out |= special & np.any([r.contains(x) for r in _regions(self.special)], axis=0)
        return out


@dataclass(frozen=True)
class Declared:
    """The numerical declarations that match one cell: an element is excused if any of them excuses it."""

    items: tuple[XFail, ...]

    @property
    def reason(self) -> str:
        return " | ".join(x.reason for x in self.items)

    @property
    def where(self) -> tuple[str, ...]:
        return tuple(r for x in self.items for r in x.where)

    @property
    def special(self) -> tuple[str, ...]:
        return tuple(r for x in self.items for r in x.special)

    def bounds(self) -> str:
        """What is declared, in one line: "where [a, b): within N ULP or abs A; NaN/inf at -inf"."""
        return "; ".join(
            ", ".join(filter(None, (
                f"where {' '.join(x.where)}: within {x.max_ulp} ULP or abs {x.max_abs}" if x.where else "",
                f"NaN/inf at {' '.join(x.special)}" if x.special else "")))
            for x in self.items)

    def excuses(self, x: np.ndarray, over: np.ndarray, special: np.ndarray, ulp: np.ndarray,
                abs_err: np.ndarray) -> np.ndarray:
        return np.any([d.excuses(x, over, special, ulp, abs_err) for d in self.items], axis=0)


@dataclass(frozen=True)
class Activation:
    """One activation configuration.

    Attributes:
        id: stable identifier used on the command line and in artifact paths.
        factory: builds the torch module (put in eval mode by `module()`).
        formula: the definition in one line, for humans.
        oracle: exact float64 definition (see `oracle.py`).
        shape: example input shape used for export; dims not in `static_dims` are dynamic.
        static_dims: dims the activation fixes (e.g. PReLU's channel dim).
        domain: range of the dense grid battery.
        boundaries: points where the definition changes; the edge battery probes each one and
            its floating-point neighbours.
        budgets: per-dtype overrides of DEFAULT_BUDGETS, each with the numerical reason.
        xfails: known deviations.
    """

    id: str
    factory: Callable[[], nn.Module]
    formula: str
    oracle: o.Oracle
    shape: tuple[int, ...] = (4, 16)
    static_dims: tuple[int, ...] = ()
    domain: tuple[float, float] = (-8.0, 8.0)
    boundaries: tuple[float, ...] = ()
    budgets: dict[str, Budget] = field(default_factory=dict)
    xfails: tuple[XFail, ...] = ()
    recipe: tuple | None = None  # how a worker process rebuilds a row that is not in the catalog (modules.py)
    max_input: float | None = None  # the largest finite |x| of the edge battery (None: the dtype's max)
    # What "x" means in a declaration's regions, for each output element: None is the input element at
    # the same position; softmax rows use x - max(row), GLU its gate b.
    region_input: Callable[[np.ndarray], np.ndarray] | None = None
    operands: int = 1  # GLU: 2 (its input holds a and b), so its battery pairs values

    def region_x(self, x: np.ndarray) -> np.ndarray:
        """Each output element's `x` for declarations, flat (float64)."""
        x = np.asarray(x)
        with np.errstate(invalid="ignore"):  # signalling NaNs set the invalid flag when widened
            out = x if self.region_input is None else self.region_input(x.astype(np.float64))
            return np.asarray(out, dtype=np.float64).reshape(-1)

    def module(self) -> nn.Module:
        return self.factory().eval()

    @property
    def module_repr(self) -> str:
        return repr(self.module())

    def budget(self, dtype: str) -> Budget:
        return self.budgets.get(dtype, DEFAULT_BUDGETS[dtype])

    def xfail(self, format: str, runtime: str | None, dtype: str, exporter: str | None = None,
              no_artifact: bool = False, graphs: str | None = None) -> XFail | Declared | None:
        """The declaration of a missing artifact when `no_artifact`; else every numerical declaration
        that matches the cell, together (each excuses its own region)."""
        found = tuple(x for x in self.xfails
                      if x.no_artifact == no_artifact and x.matches(format, runtime, dtype, exporter, graphs))
        if no_artifact:
            return found[0] if found else None
        return Declared(found) if found else None


def parse_list(value: str | list[str] | None, valid: tuple[str, ...], what: str) -> tuple[str, ...]:
    """Splits a comma-separated option and checks each item against `valid`."""
    if value is None:
        return ()
    items = value if isinstance(value, list) else [value]
    out: list[str] = []
    for item in items:
        for part in item.split(","):
            part = part.strip()
            if not part:
                continue
            if part not in valid:
                raise UsageError(f"unknown {what} {part!r}; valid: {', '.join(valid)}")
            if part not in out:
                out.append(part)
    if not out:  # NOTE: `--formats ''` would otherwise run nothing and exit 0
        raise UsageError(f"no {what} given; valid: {', '.join(valid)}")
    return tuple(out)
