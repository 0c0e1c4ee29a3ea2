"""The registry: one row per activation configuration, the only place that names activations."""

from __future__ import annotations

import contextlib
import inspect
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
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


EVERYWHERE = ("[-inf, inf]", "nan")  # a deviation whose range could not be measured (CUDA: no card here)


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

    def matches(self, format: str, runtime: str, dtype: str, exporter: str | None = None,
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

    def xfail(self, format: str, runtime: str, dtype: str, exporter: str | None = None,
              no_artifact: bool = False, graphs: str | None = None) -> XFail | Declared | None:
        """The declaration of a missing artifact when `no_artifact`; else every numerical declaration
        that matches the cell, together (each excuses its own region)."""
        found = tuple(x for x in self.xfails
                      if x.no_artifact == no_artifact and x.matches(format, runtime, dtype, exporter, graphs))
        if no_artifact:
            return found[0] if found else None
        return Declared(found) if found else None


def _shifted(dim: int, negate: bool = False) -> Callable[[np.ndarray], np.ndarray]:
    """x - max(row) along `dim` (of -x for softmin): the argument of exp in every softmax."""
    def f(x: np.ndarray) -> np.ndarray:
        x = -x if negate else x
        return x - np.max(x, axis=dim, keepdims=True)
    return f


def _gate(x: np.ndarray) -> np.ndarray:
    """GLU's b: the second half along the last dim, one per output element."""
    return np.split(x, 2, axis=-1)[1]


def _prelu_3ch() -> nn.Module:
    m = nn.PReLU(num_parameters=3)
    with torch.no_grad():
        m.weight.copy_(torch.tensor([0.25, -0.5, 2.0]))
    return m


A = Activation
X = XFail
_HARD = (-3.0, 3.0)
_TORCH_CUDA = ("eager:cuda", "torchscript:cuda", "pt2:cuda")
# PyTorch's own formula misbehaves the same way on both devices (measured on an H200, below)
_TORCH_CPU = ("eager:cpu", "torchscript:cpu", "pt2:cpu")
_TORCH = (*_TORCH_CPU, *_TORCH_CUDA)
_NOT_ORT = (*_TORCH, "onnx.reference")
_ORT = ("ort:cpu", "ort:cuda")
_F32_F64 = ("float32", "float64")
_OURS = ("actexport", "candidates")  # the graph profiles with actexport's translations (translations.py)

# NOTE: every declaration below states what was measured (torch 2.13.0, onnxruntime 1.32.0 CPU,
# onnx 1.23 reference, all four dtypes; benchmarks/deviations.py: every 16-bit value, every float32 and
# float64 binade, one float32 bit pattern in 1024) and the side at fault. `where` is the measured range
# widened to the nearest inputs that were within budget (rounded outward); max_ulp / max_abs is the
# measured worst case with room for other CPUs (about 1.5x): an element outside the range, or larger,
# fails although declared. Those that name CUDA
# runtimes were measured on an NVIDIA H200 (torch 2.11.0+cu130, onnxruntime-gpu 1.31.1, CUDA 13.0,
# driver 580.159.04; benchmarks/results/2026-11-30-h200.md).
_CUDA = "measured on an H200"
_ORT_CUDA_SIGMOID = (
    "onnxruntime's CUDA Sigmoid returns 0 for x <= -20 in float32 (exact 2.06e-09) and x <= -50 in "
    "float64 (exact 1.93e-22), as its CPU one does; " + _CUDA + "; side: runtime"
)
_ORT_CUDA_SIGMOID_BF16 = (
    "onnxruntime's CUDA bfloat16 Sigmoid returns 0 at x = -5.5625 where the value is 0.00383 (abs error "
    "5.1e-03); " + _CUDA + "; side: runtime"
)
_ORT_SIGMOID = (
    "onnxruntime's CPU Sigmoid is an approximation: ~2e-4 relative error for x < -7 in float32 "
    "(sigmoid(-8.99) = 1.24425e-04, exact 1.24367e-04), and 0 for x <= -20 in float32 (exact "
    "2.06e-09) and for x <= -50 in float64 (exact 1.93e-22); side: runtime"
)
_NEG_INF = "x * g(x) at x = -inf is -inf * 0 = NaN in every runtime, where the limit is 0"
_LEGACY_NAN_TO_ZERO = (
    "the legacy exporter builds the shrink as Where(|x| > lambda, ...) chains that map NaN to 0 "
    "(measured: x=nan gives 0.0, eager and the exact definition give nan); side: export"
)
_ORT_EXPM1 = (
    "onnxruntime's {op} computes exp(x) - 1 instead of expm1(x) and loses digits just below 0 "
    "({where}); side: runtime"
)
_ORT_CUDA_EXPM1 = (
    "onnxruntime's CUDA {op} computes exp(x) - 1 instead of expm1(x), in the input's own precision "
    "(float16 included), and loses digits just below 0 ({where}); " + _CUDA + "; side: runtime"
)
_CELU_ON_CPU = " (a CUDA session runs Celu on its CPU provider: no CUDA kernel)"
_CUDA_SIXTH = (
    "PyTorch's CUDA {op} multiplies by 1/6 rounded to float32 also in float64 (relative error 3e-08, "
    "{where}); " + _CUDA + "; side: pytorch"
)
_F32_ATTRIBUTE = (
    "ONNX stores {op}'s {attr} as a float32 attribute, so a float64 graph computes with {value} "
    "(relative error {rel}); side: export"
)
# NOTE: exp(x - max) turns the rounding of x - max into a relative error of |x - max| ULPs: rows
# that span 50 (the edge battery puts ±50 beside O(1) values) legitimately cost ~30-50 ULP.
_LOG_SUM_EXP = (
    "log(sum(exp(x - max))) rounds to 0 for a row's dominant element when the others sum below one ULP: "
    "float32 x = 20 gives 0, exact -6.6e-08; side: pytorch"
)
_ORT_CUDA_SOFTMAX64 = (
    "onnxruntime's CUDA {op} in float64 is accurate only to about float32 precision (abs error up to "
    "{where}); " + _CUDA + "; side: runtime"
)
_CELU_F64 = (
    "ONNX Celu is float32-only: the exporter wraps it in Cast(float32) / Cast(float64), so a float64 model "
    "computes in float32 (relative error up to 6e-08, 0 for |x| below float32's normal range, and exp(x) - 1 "
    "instead of expm1 near 0) and |x| > 3.4e38 becomes inf; side: export"
)


def _elu_xfails(f32: tuple[str, str, float], f64: tuple[str, str, float], cuda: str) -> tuple:
    """ELU's measured deviations: onnxruntime's exp(x) - 1 on CPU in float32 and float64 (what, where,
    max_abs), and its CUDA kernel (what; range not measured)."""
    return (X(_ORT_EXPM1.format(op="Elu", where=f"float32: {f32[0]}"), runtime="ort:cpu", dtype="float32",
              where=(f32[1],), max_abs=f32[2]),
            X(_ORT_EXPM1.format(op="Elu", where=f"float64: {f64[0]}"), runtime="ort:cpu", dtype="float64",
              where=(f64[1],), max_abs=f64[2]),
            X(_ORT_CUDA_EXPM1.format(op="Elu", where=cuda), runtime="ort:cuda", where=EVERYWHERE, max_ulp=512))


def _celu_xfails(f32: tuple[str, str, float], bf16: tuple[str, str, float], f64: tuple[str, float]) -> tuple:
    """CELU's three measured deviations: onnxruntime's exp(x) - 1 in float32 and bfloat16 (what, where,
    max_abs), and the float32-only ONNX Celu in float64 (where, max_abs)."""
    return (X(_ORT_EXPM1.format(op="Celu", where=f"float32: {f32[0]}") + _CELU_ON_CPU, runtime=_ORT,
              dtype="float32", where=(f32[1],), max_abs=f32[2]),
            X(_ORT_EXPM1.format(op="Celu", where=f"bfloat16, computed in float32: {bf16[0]}"), runtime="ort:cpu",
              dtype="bfloat16", where=(bf16[1],), max_abs=bf16[2]),
            X(_CELU_F64, format="onnx", dtype="float64", where=(f64[0],), max_ulp=2**30, max_abs=f64[1],
              special=("[3.4e38, inf)",)))


_TORCH_GELU = (
    "PyTorch returns NaN for GELU(-inf) (value 0) and, on CPU, for GELU(+inf), and inf for x >= 1.7e38 in float32 "
    "and bfloat16 (value x); its kernels lose the tail below x ~ -1.3 (float32 x = -4.9673: -1.92447e-06, exact "
    "-1.68645e-06; abs error up to 9.9e-07) and round results next to the smallest normal; side: pytorch"
)
_GELU_TORCH_SPECIAL = ("-inf", "+inf", "[1.7e38, 3.41e38]")
_ONNX_GELU = (
    "the ONNX graph x * (1 + Erf(x / sqrt(2))) / 2 gives NaN at x = -inf (value 0) and cancels in 1 + erf for "
    "x << 0 (0 at x = -10 where the value is -7.6e-23); side: export"
)
_GELU_TANH = (
    "1 + tanh(u) cancels for x < -1.3 (float32 x = -5.0923: eager -0, exact -1.22e-07) and x = -inf gives NaN "
    "(value 0), in PyTorch and in every export of it; side: pytorch"
)
_ONNX_GELU_TANH = (
    "the ONNX graph keeps the cancelling form 1 + tanh(u) (float32: -4.55e-07 at x = -5.0923 where the value is "
    "-1.22e-07; onnxruntime's Tanh adds its own error down to x = -0.96), NaN at x = -inf; side: export"
)
_LEGACY_OVERFLOW = (
    "the legacy graph of {op} overflows to inf (or NaN) for large x: from 32768 in float16, 1.7e38 in float32 "
    "and bfloat16, 9e307 in float64, where the value is x; side: export"
)
_LEGACY_BIG = ("[32768, 65504]", "[1.7e38, 3.41e38]", "[8.9e307, inf)")
_LEGACY_SOFTPLUS = (
    "the legacy graph drops Softplus's threshold ({where}, where PyTorch returns x), and returns inf where exp "
    "overflows (onnxruntime: x >= 44 in float16, computed in float32); side: export"
)
_ORT_MISH = (
    "x * g(x) at x = -inf is -inf * 0 = NaN; onnxruntime's Mish op (stock graph) loses digits in the negative "
    "tail ({where}); side: runtime"
)
_TANHSHRINK = "x - tanh(x) cancels near 0 wherever it is computed in the dtype ({where}); side: pytorch"
_LOG_SIGMOID = (
    "exported as Log(Sigmoid(x)): -inf where Sigmoid underflows (value ~x), onnxruntime's Sigmoid error "
    "amplified by Log, and 0 where Sigmoid rounds to 1 ({where}); side: export"
)
_GLU_UNDERFLOW = (
    "a * sigmoid(b) computes sigmoid(b) first: it underflows (0 or a subnormal) where b is below about -88 in "
    "float32 and -709 in float64, so with a large a the product is lost although it is a normal number "
    "({where}; the battery's a goes up to the dtype's max, so a value up to about 1.3 is lost); side: pytorch"
)
_SHIFT_ROUNDING = (
    "every runtime rounds x - max before exp: the rounding error of x - max (up to ulp(|x - max|) / 2) becomes "
    "a relative error of exp(x - max): 193 ULP at x - max = -708.2 in float64; the exact reference subtracts "
    "exactly; side: pytorch (the standard algorithm)"
)
_REF_LOG_SOFTMAX = (
    "onnx.reference evaluates LogSoftmax as log(softmax(x)): -inf where softmax underflows, and the dominant "
    "element rounds as in PyTorch ({where}); side: onnx.reference's implementation, not the graph"
)
_SOFTMAX_BUDGETS = {"float32": Budget(ulp=64, atol=2.0**-126), "float64": Budget(ulp=64, atol=2.0**-1022),
                    "bfloat16": Budget(ulp=64, atol=2.0**-126), "float16": Budget(ulp=64, atol=2.0**-14)}

CATALOG: tuple[Activation, ...] = (
    # The four activations of the article this project started from.
    A("sigmoid", nn.Sigmoid, "1 / (1 + exp(-x))", o.sigmoid(),
      xfails=(X(_ORT_SIGMOID, runtime="ort:cpu", dtype="float32", where=("[-88, -1.8]",), max_abs=2e-7),
              X(_ORT_SIGMOID, runtime="ort:cpu", dtype="float64", where=("[-710, -1.9]",), max_abs=3e-16),
              X(_ORT_CUDA_SIGMOID, runtime="ort:cuda", dtype=_F32_F64, where=EVERYWHERE, max_abs=2e-7),
              X(_ORT_CUDA_SIGMOID_BF16, runtime="ort:cuda", dtype="bfloat16", where=EVERYWHERE, max_abs=1e-2))),
    A("tanh", nn.Tanh, "(exp(x) - exp(-x)) / (exp(x) + exp(-x)), range (-1, 1)", o.tanh(),
      xfails=(X("onnxruntime's float32 Tanh loses up to 104 ULP for |x| in [1.18e-38, 7.5e-37], just above the "
                "smallest normal (x = 1.1754944e-38 gives 1.1754983e-38, 28 ULP); side: runtime", runtime="ort:cpu",
                dtype="float32", where=("±[1.17e-38, 7.6e-37]",), max_ulp=256),)),
    A("relu", nn.ReLU, "max(0, x)", o.relu(), boundaries=(0.0,)),
    A("leaky_relu", nn.LeakyReLU, "x if x > 0 else 0.01 * x", o.leaky_relu(0.01), boundaries=(0.0,),
      xfails=(X(_F32_ATTRIBUTE.format(op="LeakyRelu", attr="alpha", value="0.009999999776482582",
                                      rel="2.2e-08, 2e8 ULP"), format="onnx", dtype="float64",
                where=("(-inf, -2e-306]",), max_ulp=2**28),)),
    A("leaky_relu_0.1", lambda: nn.LeakyReLU(0.1), "x if x > 0 else 0.1 * x", o.leaky_relu(0.1),
      boundaries=(0.0,),
      xfails=(X(_F32_ATTRIBUTE.format(op="LeakyRelu", attr="alpha", value="0.10000000149011612",
                                      rel="1.5e-08, 1.3e8 ULP"), format="onnx", dtype="float64",
                where=("(-inf, -1.7e-307]",), max_ulp=2**28),)),
    # Every other activation module in torch.nn, with variants where a parameter changes the graph.
    A("relu6", nn.ReLU6, "min(max(0, x), 6)", o.hardtanh(0.0, 6.0), boundaries=(0.0, 6.0)),
    A("elu", nn.ELU, "x if x > 0 else exp(x) - 1", o.elu(1.0), boundaries=(0.0,),
      xfails=_elu_xfails(f32=("abs error up to 5.7e-08 and 0 for x > -3e-08", "[-0.134, 0)", 8e-8),
                         f64=("abs error up to 5.6e-17, 101 ULP at x = -0.0039", "[-0.1, 0)", 8e-17),
                         cuda="266 ULP at x = -0.0039 in float32, 101 in float64, 200 at -0.00166 in float16")),
    A("elu_0.5", lambda: nn.ELU(alpha=0.5), "x if x > 0 else 0.5 * (exp(x) - 1)", o.elu(0.5),
      boundaries=(0.0,),
      xfails=_elu_xfails(f32=("abs error up to 2.9e-08", "[-0.134, 0)", 4e-8),
                         f64=("abs error up to 2.8e-17", "[-0.035, 0)", 4e-17),
                         cuda="241 ULP at x = -0.0039 in float32, 101 in float64, 43 at -0.0065 in float16")),
    A("selu", nn.SELU, "scale * (x if x > 0 else alpha * (exp(x) - 1)), alpha=1.6733, scale=1.0507",
      o.selu(), boundaries=(0.0,),
      xfails=(X(_ORT_EXPM1.format(op="Selu", where="float32: abs error up to 1.04e-07; 0 at x = -6.7e-39 where "
                                  "the value is -1.17e-38"), runtime="ort:cpu", dtype="float32",
                where=("[-0.154, 0)",), max_abs=1.5e-7),
              X(_ORT_EXPM1.format(op="Selu", where="float64: 0 where the value is up to 9.8e-17"),
                runtime="ort:cpu", dtype="float64", where=("[-0.04, 0)",), max_abs=1.5e-16),
              X("onnxruntime's CUDA Selu computes alpha * (exp(x) - 1): 0 at x = -1.18e-38 where the value is "
                "-2.07e-38, abs error up to 1.5e-07; " + _CUDA + "; side: runtime", runtime="ort:cuda",
                dtype="float32", where=EVERYWHERE, max_abs=2e-7),
              X("onnxruntime's CUDA float16 Selu computes alpha * (exp(x) - 1) in float16: 0 at x = -6.1e-05 "
                "where the value is -1.07e-04 (1800 ULP); " + _CUDA + "; side: runtime", runtime="ort:cuda",
                dtype="float16", where=EVERYWHERE, max_ulp=4096),
              X(_F32_ATTRIBUTE.format(op="Selu", attr="alpha and gamma", value="1.6732632 and 1.0507010",
                                      rel="3.3e-08 at x = 1.9"), format="onnx", dtype="float64",
                where=("[-inf, -1.1e-308]", "[1.6e-308, inf)"), max_ulp=2**53))),
    A("celu", nn.CELU, "max(0, x) + min(0, exp(x) - 1)", o.celu(1.0), boundaries=(0.0,),
      xfails=_celu_xfails(f32=("abs error up to 5.7e-08, 0 for x > -3e-08", "[-0.134, 0)", 8e-8),
                          bf16=("up to 127 ULP and 0 where the value is up to 3e-08", "[-9.4e-7, 0)", 4.5e-8),
                          f64=("[-40, 3.41e38]", 1.5e-7))),
    A("celu_2", lambda: nn.CELU(alpha=2.0), "max(0, x) + min(0, 2 * (exp(x / 2) - 1))", o.celu(2.0),
      boundaries=(0.0,),
      xfails=_celu_xfails(f32=("abs error up to 1.1e-07, 3065 ULP at x = -0.000167", "[-0.3, 0)", 1.7e-7),
                          bf16=("up to 127 ULP and 0 where the value is up to 6e-08", "[-1.9e-6, 0)", 9e-8),
                          f64=("[-80, 3.41e38]", 2e-7))),
    A("gelu", nn.GELU, "x * Phi(x) = x / 2 * (1 + erf(x / sqrt(2)))", o.gelu(),
      xfails=(X(_TORCH_GELU, runtime=_TORCH, dtype=("float16", "bfloat16", "float32"),
                where=("[-13.2, -1.3]", "±[1.1e-38, 2.4e-38]"), max_abs=1.5e-6, special=_GELU_TORCH_SPECIAL),
              X(_TORCH_GELU, runtime=_TORCH, dtype="float64", where=("[-40, -1.82]",), max_abs=3e-16,
                special=_GELU_TORCH_SPECIAL),
              X(_ONNX_GELU + "; in float16 and bfloat16 the graph's own arithmetic (onnx.reference evaluates each "
                "op in the dtype) returns 0 for values up to 0.0029", format="onnx",
                dtype=("float16", "bfloat16"), where=("[-13.2, -1.43]",), max_abs=5e-3, special=("-inf",)),
              X(_ONNX_GELU, format="onnx", dtype="float32", where=("[-13.2, -1.3]",),
                max_abs=1.5e-7, special=("-inf",)),
              X(_ONNX_GELU + "; onnx.reference's float64 Erf is accurate to float32 only (abs error 8.1e-08)",
                format="onnx", dtype="float64", where=("[-40, 8]",), max_abs=1.5e-7, special=("-inf",)),
              X(_LEGACY_OVERFLOW.format(op="GELU"), format="onnx", exporter="legacy", special=_LEGACY_BIG))),
    A("gelu_tanh", lambda: nn.GELU(approximate="tanh"),
      "x / 2 * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x^3)))", o.gelu_tanh(),
      xfails=(X(_GELU_TANH, runtime=_TORCH, dtype=("float16", "bfloat16", "float32"), where=("[-10.2, -1.3]",),
                max_abs=3e-7, special=("-inf",)),
              X(_GELU_TANH, runtime=_TORCH, dtype="float64", where=("[-24, -1.8]",), max_abs=6e-16,
                special=("-inf",)),
              X(_ONNX_GELU_TANH + "; float16 and bfloat16 arithmetic in onnx.reference returns 0 for values up to "
                "0.003", format="onnx", dtype=("float16", "bfloat16"),
                where=("[-10.2, -1.3]",), max_abs=5e-3, special=("-inf",)),
              X(_ONNX_GELU_TANH, format="onnx", dtype="float32", where=("[-10.2, -0.9]",),
                max_abs=8e-7, special=("-inf",)),
              X(_ONNX_GELU_TANH, format="onnx", dtype="float64", where=("[-24, -1.47]",),
                max_abs=4.5e-15, special=("-inf",)),
              X(_LEGACY_OVERFLOW.format(op="GELU(tanh), which computes x^3 first,"), format="onnx", exporter="legacy",
                special=_LEGACY_BIG))),
    A("silu", nn.SiLU, "x * sigmoid(x)", o.silu(),
      xfails=(X(_NEG_INF + "; PyTorch's SiLU underflows to -0 where the value is just above the smallest normal "
                "(x in [-91.8, -88.7] in float32, abs error up to 2.6e-37); side: pytorch", runtime=_TORCH,
                where=("[-92, -88.5]", "[-768, -709]"), max_abs=4e-37, special=("-inf",)),
              X(_NEG_INF + "; onnx.reference computes x * sigmoid(x) in the dtype: 6 ULP at x in [-12.2, -11.5] "
                "in float16, up to 45 ULP just above the smallest normal (x in [-91.8, -89.1] in float32); side: "
                "onnx.reference's arithmetic", runtime="onnx.reference",
                where=("[-12.2, -11.5]", "[-92, -89]", "[-768, -709]"), max_ulp=256, special=("-inf",)),
              X(_ORT_SIGMOID + "; x * sigmoid(x) inherits it (float16: 15 ULP at x in [-12.2, -10.8]), and x = -inf "
                "gives NaN", runtime="ort:cpu", dtype="float16", where=("[-12.3, -10.7]",), max_ulp=32,
                special=("-inf",)),
              X(_ORT_SIGMOID + "; x * sigmoid(x) inherits it (float32 abs error up to 2.3e-06), and x = -inf gives NaN",
                runtime="ort:cpu", dtype="float32", where=("[-92, -1.86]",), max_abs=3.5e-6, special=("-inf",)),
              X(_ORT_SIGMOID + "; x * sigmoid(x) inherits it (float64 abs error up to 1.5e-15), and x = -inf gives NaN",
                runtime="ort:cpu", dtype="float64", where=("[-768, -1.9]",), max_abs=2.5e-15, special=("-inf",)),
              X(_ORT_CUDA_SIGMOID + "; x * sigmoid(x) inherits it (abs error up to 6.1e-07 in float32) and x = -inf "
                "gives NaN", runtime="ort:cuda", dtype=_F32_F64, where=EVERYWHERE, max_abs=1.5e-6,
                special=EVERYWHERE),
              X("onnxruntime's CUDA SiLU in float16 and bfloat16 is 0 where the product is small but normal "
                "(abs error 3.7e-03 in float16, 2.1e-02 in bfloat16, where bfloat16 Sigmoid is 0 at x = -5.56), "
                "and x = -inf gives NaN; " + _CUDA + "; side: runtime", runtime="ort:cuda",
                dtype=("float16", "bfloat16"), where=EVERYWHERE, max_abs=0.05, special=EVERYWHERE))),
    A("mish", nn.Mish, "x * tanh(softplus(x))", o.mish(),
      xfails=(X(_NEG_INF + "; just above the smallest normal (x in [-91.8, -88.4] in float32, [-768, -709] in "
                "float64) the product loses up to 135 ULP; onnx.reference computes in float16 arithmetic: 6 ULP at "
                "x in [-12.2, -11.5]; side: pytorch", runtime=_NOT_ORT,
                where=("[-12.2, -11.5]", "[-92, -88.3]", "[-768, -709]"), max_ulp=256, special=("-inf",)),
              X(_ORT_MISH.format(where="float16: 12 ULP for x in [-12.2, -10.7]"), runtime="ort:cpu", graphs="stock",
                dtype="float16", where=("[-12.3, -10.6]",), max_ulp=24, special=("-inf",)),
              X(_ORT_MISH.format(where="float32: 795 ULP, abs error up to 7.5e-08 for x in [-89.7, -2.09]"),
                runtime="ort:cpu", graphs="stock", dtype="float32", where=("[-96, -2]",), max_abs=1.2e-7,
                special=("-inf",)),
              X(_ORT_MISH.format(where="float64: abs error up to 1.4e-15 for x in [-710.8, -2.36], 0 where the value "
                                 "is up to 1.7e-16"), runtime="ort:cpu", graphs="stock", dtype="float64",
                where=("[-768, -2]",), max_abs=2.1e-15, special=("-inf",)),
              X(_NEG_INF + " (actexport's graph x * n / (n + 2) keeps the product), and up to 45 ULP just above the "
                "smallest normal (x in [-91.8, -89.1] in float32); side: pytorch", runtime=_ORT, graphs=_OURS,
                where=("[-92, -89]", "[-768, -709]"), max_ulp=256, special=("-inf",)))),
    A("hardswish", nn.Hardswish, "x * min(max(0, x + 3), 6) / 6", o.hardswish(), domain=(-5.0, 5.0),
      boundaries=_HARD,
      xfails=(X(_CUDA_SIXTH.format(op="Hardswish", where="268430608 ULP") + "; and " + _NEG_INF,
                runtime=_TORCH_CUDA, dtype="float64", where=EVERYWHERE, max_ulp=2**29, special=EVERYWHERE),
              X(_NEG_INF + "; PyTorch also computes x * 6 before dividing by 6 and returns inf for every x above "
                "max / 6 (5.7e37 in float32), whose value is x; side: pytorch", runtime=_TORCH,
                special=("-inf", "[5.6e37, 3.41e38]", "[2.9e307, inf)")),
              X("onnxruntime's CUDA float16 HardSwish computes in float16 (512 ULP), and " + _NEG_INF + "; "
                + _CUDA + "; side: runtime", runtime="ort:cuda", dtype="float16", where=EVERYWHERE, max_abs=5e-4,
                special=EVERYWHERE),
              X(_NEG_INF + "; ONNX HardSwish is x * HardSigmoid(x) and inherits its cancellation near "
                "x = -3 (float32 abs error up to 6e-08; see hardsigmoid); side: export", format="onnx",
                dtype=("float16", "bfloat16", "float32"), where=("[-3, -2.7]",), max_abs=9e-8, special=("-inf",)),
              X(_NEG_INF + "; ONNX HardSwish is x * HardSigmoid(x), whose alpha = 1/6 is a float32 attribute: "
                "float64 abs error up to 4.5e-08 in (-3, 3); side: export", format="onnx", dtype="float64",
                where=("[-3, 3]",), max_abs=7e-8, special=("-inf",)))),
    A("hardsigmoid", nn.Hardsigmoid, "min(max(0, x + 3), 6) / 6", o.hardsigmoid(),
      domain=(-5.0, 5.0), boundaries=_HARD,
      xfails=(X("ONNX HardSigmoid computes alpha * x + beta with alpha = 1/6 rounded to float32: near x = -3 the "
                "cancellation leaves 2.98e-08 where the value is 3.97e-08 (float32, abs error up to 2.1e-08); "
                "side: export", format="onnx", dtype="float32", where=("[-3, -2.62]",), max_abs=3e-8),
              X("ONNX HardSigmoid's alpha = 1/6 is a float32 attribute: a float64 graph is off by up to 1.5e-08 "
                "everywhere in (-3, 3), 0 where the value is 7.4e-17 near x = -3; side: export", format="onnx",
                dtype="float64", where=("[-3, 3]",), max_abs=2.5e-8),
              X("onnxruntime's CUDA float16 HardSigmoid computes alpha * x + beta in float16: 1.22e-04 at x = -3 "
                "where the value is 0; " + _CUDA + "; side: runtime", runtime="ort:cuda", dtype="float16",
                where=EVERYWHERE, max_abs=2.5e-4),
              X(_CUDA_SIXTH.format(op="Hardsigmoid", where="0.99951151 at x = 2.997, exact 0.99951148"),
                runtime=_TORCH_CUDA, dtype="float64", where=EVERYWHERE, max_abs=6e-8))),
    A("hardtanh", nn.Hardtanh, "min(max(-1, x), 1)", o.hardtanh(-1.0, 1.0), domain=(-3.0, 3.0),
      boundaries=(-1.0, 1.0)),
    A("hardtanh_-2_2", lambda: nn.Hardtanh(-2.0, 2.0), "min(max(-2, x), 2)", o.hardtanh(-2.0, 2.0),
      domain=(-4.0, 4.0), boundaries=(-2.0, 2.0)),
    A("prelu", nn.PReLU, "x if x > 0 else w * x, one learned w = 0.25", o.prelu((0.25,)),
      boundaries=(0.0,)),
    A("prelu_3ch", _prelu_3ch, "x if x > 0 else w[c] * x, per channel w = (0.25, -0.5, 2)",
      o.prelu((0.25, -0.5, 2.0)), shape=(4, 3, 8), static_dims=(1,), boundaries=(0.0,)),
    A("rrelu", lambda: nn.RReLU(), "eval mode: x if x > 0 else (lower + upper) / 2 * x = 11/48 * x",
      o.leaky_relu((1.0 / 8.0 + 1.0 / 3.0) / 2.0), boundaries=(0.0,),
      xfails=(X("the dynamo exporter keeps aten.rrelu_with_noise_functional in eval mode and has no "
                "ONNX translation for it (DispatchError); side: export", format="onnx",
                exporter="dynamo", no_artifact=True),
              X(_F32_ATTRIBUTE.format(op="the legacy graph's LeakyRelu", attr="slope 11/48", value="0.22916667",
                                      rel="2.2e-08, 1.95e8 ULP"), format="onnx", exporter="legacy", dtype="float64",
                where=("[-inf, -8.9e-308]",), max_ulp=2**28))),
    A("softplus", nn.Softplus, "log(1 + exp(x)), x when x > 20", o.softplus(1.0, 20.0),
      domain=(-30.0, 30.0), boundaries=(20.0,),
      xfails=(X("onnxruntime's float64 Softplus returns 0 where exp(x) < ~1e-17 (x = -50: exact 1.93e-22) and "
                "is off by up to 1.1e-16 for x in [-640, -2.77]; side: runtime", runtime="ort:cpu", dtype="float64",
                graphs="stock", where=("[-710, -2.7]",), max_abs=1.7e-16),
              X(_LEGACY_SOFTPLUS.format(where="x > 20: log(1 + exp(x)) = x + 2.1e-09 in float64"), format="onnx",
                exporter="legacy", dtype="float64", where=("(20, 32]",), max_abs=3e-9, special=("[709, inf)",)),
              X(_LEGACY_SOFTPLUS.format(where="x > 20"), runtime="ort:cpu", exporter="legacy", dtype="float16",
                special=("[44, 65504]",)))),
    A("softplus_b2_t10", lambda: nn.Softplus(beta=2.0, threshold=10.0),
      "log(1 + exp(2x)) / 2, x when 2x > 10", o.softplus(2.0, 10.0), domain=(-15.0, 15.0),
      boundaries=(5.0,),
      xfails=(X("onnxruntime's float64 Softplus returns 0 where exp(2x) < ~1e-17 (x = -20: exact 2.12e-18) and is "
                "off by up to 5.6e-17 for x in [-320, -1.39]; side: runtime", runtime="ort:cpu", dtype="float64",
                graphs="stock", where=("[-384, -1.37]",), max_abs=8.5e-17),
              X(_LEGACY_SOFTPLUS.format(where="2x > 10: log(1 + exp(2x)) / 2 = x + 2.3e-05, 48 ULP in float32") + "; it "
                "also computes 2x first, which overflows", format="onnx", exporter="legacy",
                dtype=("float32", "float64"), where=("(5, 16]",), max_abs=3.5e-5,
                special=("[1.7e38, 3.41e38]", "[354, inf)")),
              X(_LEGACY_SOFTPLUS.format(where="2x > 10"), format="onnx", exporter="legacy", dtype="float16",
                special=("[44, 65504]",)))),
    A("softsign", nn.Softsign, "x / (1 + |x|)", o.softsign(),
      xfails=(X("x / (1 + |x|) at x = ±inf is inf / inf = NaN in every runtime, where the limit is ±1; "
                "side: pytorch (every export keeps the formula)", special=("-inf", "+inf")),)),
    A("tanhshrink", nn.Tanhshrink, "x - tanh(x)", o.tanhshrink(),
      xfails=(X(_TANHSHRINK.format(where="float16: abs error up to 2.4e-04 for |x| in [0.057, 0.6]"),
                runtime=_NOT_ORT, dtype="float16", where=("±[0.056, 0.6]",), max_abs=4e-4),
              X(_TANHSHRINK.format(where="bfloat16: 0 where the value is up to 2.4e-04, abs error up to 2e-03"),
                runtime=_NOT_ORT, dtype="bfloat16", where=("±[3.2e-13, 0.6]",), max_abs=3e-3),
              X(_TANHSHRINK.format(where="float32: abs error up to 5.2e-08 for |x| in [3.4e-13, 0.77]"),
                runtime=_NOT_ORT, dtype="float32", where=("±[2.8e-13, 0.85]",), max_abs=8e-8),
              X(_TANHSHRINK.format(where="float64: abs error up to 8.3e-17 for |x| in [5.1e-21, 0.57], and 0 for every |x| below about 1e-8, where the value x^3/3 is still a normal number down to |x| = 8.7e-103"),
                runtime=_NOT_ORT, dtype="float64", where=("±[4e-103, 0.65]",), max_abs=1.3e-16),
              X(_TANHSHRINK.format(where="onnxruntime float32: abs error up to 1.2e-07 for |x| in [1.7e-31, 0.95] "
                                   "(float16 computes in float32 and passes)"),
                runtime="ort:cpu", dtype="float32", where=("[-1.4e-31, 1.4e-31]", "±[1.3e-31, 1.6]"), max_abs=1.8e-7),
              X(_TANHSHRINK.format(where="onnxruntime float64: abs error up to 1.9e-16 for |x| up to 0.85, and 0 where the value x^3/3 is a normal number below about 1e-24"),
                runtime="ort:cpu", dtype="float64", where=("±[4e-103, 0.85]",), max_abs=2.1e-16),
              X("onnxruntime's CUDA kernels keep the cancelling form x - tanh(x) in every dtype, float16 and "
                "bfloat16 included (bfloat16 returns 0 at x = -0.0898, float16 31 ULP at x = 0.278); " + _CUDA
                + "; side: pytorch", runtime="ort:cuda", where=EVERYWHERE, max_ulp=2**17))),
    A("softshrink", nn.Softshrink, "x - 0.5 if x > 0.5, x + 0.5 if x < -0.5, else 0",
      o.softshrink(0.5), domain=(-2.0, 2.0), boundaries=(-0.5, 0.5),
      xfails=(X(_LEGACY_NAN_TO_ZERO, format="onnx", exporter="legacy", special=("nan",)),)),
    A("softshrink_1", lambda: nn.Softshrink(1.0), "x - 1 if x > 1, x + 1 if x < -1, else 0",
      o.softshrink(1.0), domain=(-3.0, 3.0), boundaries=(-1.0, 1.0),
      xfails=(X(_LEGACY_NAN_TO_ZERO, format="onnx", exporter="legacy", special=("nan",)),)),
    A("hardshrink", nn.Hardshrink, "x if |x| > 0.5 else 0", o.hardshrink(0.5), domain=(-2.0, 2.0),
      boundaries=(-0.5, 0.5),
      xfails=(X(_LEGACY_NAN_TO_ZERO, format="onnx", exporter="legacy", special=("nan",)),)),
    A("hardshrink_1", lambda: nn.Hardshrink(1.0), "x if |x| > 1 else 0", o.hardshrink(1.0),
      domain=(-3.0, 3.0), boundaries=(-1.0, 1.0),
      xfails=(X(_LEGACY_NAN_TO_ZERO, format="onnx", exporter="legacy", special=("nan",)),)),
    A("logsigmoid", nn.LogSigmoid, "log(1 / (1 + exp(-x))) = -softplus(-x)", o.logsigmoid(),
      domain=(-30.0, 30.0),
      xfails=(X(_LOG_SIGMOID.format(where="float16: abs error up to 1.3 for x in [-18, -13.2], 0 for x in [1.27, 9.7]"),
                format="onnx", dtype="float16", where=("[-18.1, -13.2]", "[1.26, 9.72]"), max_abs=2.0,
                special=("[-inf, -16.5]",)),
              X(_LOG_SIGMOID.format(where="bfloat16 (onnx.reference): 0 where the value is up to 1.9e-03 for x in "
                                    "[2.08, 87]"), format="onnx", dtype="bfloat16", where=("[2.06, 87.5]",),
                max_abs=4e-3, special=("[-inf, -93]",)),
              X(_LOG_SIGMOID.format(where="float32: abs error up to 1.7 for x in [-18, -2.7] (onnxruntime's Sigmoid "
                                    "approximation), 0 where the value is tiny for x in [1.26, 88.7]"), format="onnx",
                dtype="float32", where=("[-108, -2.7]", "[0.35, 88.8]"), max_abs=2.6, special=("[-inf, -15.5]",)),
              X(_LOG_SIGMOID.format(where="float64: abs error up to 1.0e-03 for x in [-40, -3.65], 0 where the value is "
                                    "tiny for x in [2.04, 710]"), format="onnx", dtype="float64",
                where=("[-45, -3]", "[1.95, 710]"), max_abs=0.8, special=("[-inf, -36]",)))),
    A("threshold", lambda: nn.Threshold(0.5, -1.0), "x if x > 0.5 else -1", o.threshold(0.5, -1.0),
      domain=(-2.0, 2.0), boundaries=(0.5,),
      xfails=(X("the legacy exporter refuses a non-zero threshold (SymbolicValueError); side: export",
                format="onnx", exporter="legacy", no_artifact=True),)),
    A("glu", nn.GLU, "a * sigmoid(b), (a, b) = halves of x along the last dim", o.glu(-1), operands=2,
      region_input=_gate,
      xfails=(X(_GLU_UNDERFLOW.format(where="onnx.reference in float16 arithmetic: abs error up to 4.9e-04 for b in "
                                      "[-19.4, -11.8]"), runtime="onnx.reference", dtype="float16",
                where=("[-19.5, -11.7]",), max_abs=7e-4),
              X(_GLU_UNDERFLOW.format(where="bfloat16: 0 for 0.188 at b = -89"), runtime=_NOT_ORT, dtype="bfloat16",
                where=("[-176, -88.5]",), max_abs=3),
              X(_GLU_UNDERFLOW.format(where="float32: abs error up to 1.7e-04 for b in [-160, -96]"), runtime=_NOT_ORT,
                dtype="float32", where=("[-192, -88.5]",), max_abs=3),
              X(_GLU_UNDERFLOW.format(where="float64: abs error up to 1.3e-26 for b in [-1280, -768]"),
                runtime=_NOT_ORT, dtype="float64", where=("[-1540, -700]",), max_abs=3),
              X(_ORT_SIGMOID + "; a * sigmoid(b) inherits it: float16 abs error up to 1.5e-03 for b in [-19.4, -10.5]",
                runtime="ort:cpu", dtype="float16", where=("[-19.5, -10.4]",), max_abs=2.5e-3),
              X(_ORT_SIGMOID + "; a * sigmoid(b) inherits it, and with the battery's a = max / 4 the absolute "
                "error reaches 6.4e+30 (float32, b in [-160, -2.03])", runtime="ort:cpu", dtype="float32",
                where=("[-192, -1.9]",), max_abs=1e31),
              X(_ORT_SIGMOID + "; a * sigmoid(b) inherits it, and with the battery's a = max / 4 the absolute "
                "error reaches 6.6e+291 (float64, b in [-1280, -2])", runtime="ort:cpu", dtype="float64",
                where=("[-1540, -1.9]",), max_abs=1e292))),
    A("softmax", lambda: nn.Softmax(dim=-1), "exp(x_i) / sum_j exp(x_j) along the last dim",
      o.softmax(-1), budgets=_SOFTMAX_BUDGETS, region_input=_shifted(-1),
      xfails=(X(_SHIFT_ROUNDING, dtype="float64", where=("[-745.2, -600]",), max_ulp=512),
              X(_ORT_CUDA_SOFTMAX64.format(op="Softmax", where="1.44e-08"), runtime="ort:cuda", dtype="float64",
                where=EVERYWHERE, max_abs=3e-8))),
    A("softmax_dim0", lambda: nn.Softmax(dim=0), "exp(x_i) / sum_j exp(x_j) along dim 0",
      o.softmax(0), budgets=_SOFTMAX_BUDGETS, region_input=_shifted(0),
      xfails=(X(_ORT_CUDA_SOFTMAX64.format(op="Softmax", where="1.29e-08: 2.9335727e-05 at x = -5.117, exact "
                                            "2.9335739e-05"), runtime="ort:cuda", dtype="float64", where=EVERYWHERE,
                max_abs=3e-8),)),
    A("log_softmax", lambda: nn.LogSoftmax(dim=-1), "x_i - log(sum_j exp(x_j)) along the last dim",
      o.log_softmax(-1), budgets=_SOFTMAX_BUDGETS, region_input=_shifted(-1),
      xfails=(X(_LOG_SUM_EXP, runtime=_TORCH_CPU, dtype="float16", where=("0",), max_abs=7e-4),
              X(_LOG_SUM_EXP, runtime=_TORCH_CPU, dtype="bfloat16", where=("0",), max_abs=4e-3),
              X(_LOG_SUM_EXP, runtime=_TORCH_CPU, dtype="float32", where=("0",), max_abs=1.2e-7),
              X(_LOG_SUM_EXP, runtime=_TORCH_CPU, dtype="float64", where=("0",), max_abs=4.5e-16),
              X(_LOG_SUM_EXP + " (on CUDA not in float16, which PyTorch computes in float32 there; " + _CUDA + ")",
                runtime=_TORCH_CUDA, dtype=("bfloat16", "float32", "float64"), where=EVERYWHERE, max_abs=2.5e-3),
              X(_LOG_SUM_EXP.replace("; side: pytorch", "") + ", in onnxruntime too (float16 computes in float32 "
                "and passes); side: pytorch", runtime="ort:cpu", dtype="float32", where=("0",), max_abs=1.2e-7),
              X(_LOG_SUM_EXP.replace("; side: pytorch", "") + ", in onnxruntime too, which in float64 also returns "
                "the limit -inf beside a +inf where the exact row is NaN; side: pytorch", runtime="ort:cpu",
                dtype="float64", where=("0",), max_abs=3e-16, special=("-inf", "nan")),
              X(_ORT_CUDA_SOFTMAX64.format(op="LogSoftmax", where="8.7e-08") + "; in float32 it rounds the "
                "dominant element to 0 as PyTorch does (abs error up to 4.7e-07)", runtime="ort:cuda",
                dtype=_F32_F64, where=EVERYWHERE, max_abs=1e-6),
              X(_REF_LOG_SOFTMAX.format(where="float16: -inf for x - max <= -15.7"), runtime="onnx.reference",
                dtype="float16", where=("0",), max_abs=7e-4, special=("[-inf, -15.7]",)),
              X(_REF_LOG_SOFTMAX.format(where="bfloat16: -inf for x - max <= -96, abs error up to 0.016"),
                runtime="onnx.reference", dtype="bfloat16", where=("0",), max_abs=2.5e-2, special=("[-inf, -96]",)),
              X(_REF_LOG_SOFTMAX.format(where="float32: -inf for x - max <= -102.9; above it, where softmax is subnormal "
                                       "(x - max < -87.3), log of a subnormal is off by up to ln 2"),
                runtime="onnx.reference", dtype="float32", where=("0", "[-106.5, -87]"), max_abs=0.7,
                special=("[-inf, -100]",)),
              X(_REF_LOG_SOFTMAX.format(where="float64: -inf for x - max <= -745; above it, where softmax is subnormal "
                                       "(x - max < -708.4), log of a subnormal is off by up to ln 2"),
                runtime="onnx.reference", dtype="float64", where=("0", "[-768, -708]"), max_abs=0.7,
                special=("[-inf, -740]",)))),
    A("softmin", lambda: nn.Softmin(dim=-1), "exp(-x_i) / sum_j exp(-x_j) along the last dim",
      o.softmax(-1, negate=True), budgets=_SOFTMAX_BUDGETS, region_input=_shifted(-1, negate=True),
      xfails=(X(_ORT_CUDA_SOFTMAX64.format(op="Softmax", where="1.43e-08"), runtime="ort:cuda", dtype="float64",
                where=EVERYWHERE, max_abs=3e-8),)),
    A("softmax2d", nn.Softmax2d, "softmax over channels (dim -3) at every spatial location",
      o.softmax(-3), shape=(2, 3, 4, 4), budgets=_SOFTMAX_BUDGETS, region_input=_shifted(-3)),
)

# Classes of torch.nn.modules.activation that are deliberately not in the catalog.
EXCLUDED: dict[str, str] = {
    "MultiheadAttention": "an attention layer with learned projections and several inputs, "
    "not an elementwise or normalising activation function",
}

_BY_ID = {a.id: a for a in CATALOG}


def get(activation_id: str) -> Activation:
    try:
        return _BY_ID[activation_id]
    except KeyError:
        raise UsageError(
            f"unknown activation {activation_id!r}; known: {', '.join(sorted(_BY_ID))}"
        ) from None


@contextlib.contextmanager
def registered(act: Activation):
    """Adds a row (a user's module) to the catalog for the duration of a with-block."""
    global CATALOG, _BY_ID
    if act.id in _BY_ID:
        raise UsageError(f"{act.id!r} is already a catalog id")
    saved = CATALOG, _BY_ID
    CATALOG, _BY_ID = (*CATALOG, act), {**_BY_ID, act.id: act}
    try:
        yield act
    finally:
        CATALOG, _BY_ID = saved


def select(ids: list[str] | tuple[str, ...] | None) -> tuple[Activation, ...]:
    """The activations named by `ids` (all of them when `ids` is empty or None), in catalog order."""
    if not ids:
        return CATALOG
    wanted = {get(i).id for i in ids}
    return tuple(a for a in CATALOG if a.id in wanted)


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


def activation_classes() -> dict[str, type]:
    """Every activation class that torch.nn.modules.activation defines."""
    from torch.nn.modules import activation as mod

    return {
        name: cls
        for name, cls in vars(mod).items()
        if inspect.isclass(cls) and issubclass(cls, nn.Module) and cls.__module__ == mod.__name__
    }
