"""The registry: one row per activation configuration, the only place that names activations."""

from __future__ import annotations

import contextlib
import inspect
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn

from actexport import oracle as o

DTYPES = ("float16", "bfloat16", "float32", "float64")
FORMATS = ("onnx", "torchscript", "pt2")


class UsageError(ValueError):
    """Bad input from the user: one line naming what was wrong and what is valid."""


@dataclass(frozen=True)
class Budget:
    """Tolerance for one dtype: ULPs of the output dtype, and an absolute floor near zero.

    An element passes when it is within `ulp` units in the last place of the expected value, or
    within `atol` of it (the floor, for outputs so close to zero that ULPs stop meaning much).
    """

    ulp: int
    atol: float


# NOTE: judged against the exact result, an element passes within `ulp` ULPs of the output dtype.
# The absolute floor is the dtype's smallest normal: outputs in the subnormal range are exempt from
# ULP counting, because flushing subnormals to zero (FTZ/DAZ) is a legitimate CPU and GPU setting and
# a subnormal has fewer significant bits than the ULP count assumes. Any larger floor would hide real
# losses (x - tanh(x) returning 0 for |x| < 0.007, zeroed softmax tails). float64 allows 8 ULP: its
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
class XFail:
    """A known, explained deviation, scoped to the cells it applies to, and bounded.

    Scope fields match a cell when None, equal to its value, or a tuple containing it. `exporter`
    scopes ONNX deviations to one torch.onnx exporter ("dynamo" or "legacy"), `graphs` to one graph
    profile ("stock", "actexport" or "candidates", see translations.py).

    A numerical deviation is bounded by what was measured: a cell beyond both `max_ulp` ULP and
    `max_abs` (the largest absolute error among the elements over budget), against the exact
    reference, or with more than `max_special` NaN/inf mismatches, fails although declared, so a
    declaration never hides a larger error. Where a deviation is "0 instead of a tiny value" its ULP
    count is astronomical and only `max_abs` bounds it. `no_artifact` declares instead that the exporter
    cannot produce the artifact at all; only such a declaration excuses a missing artifact.
    """

    reason: str
    format: Scope = None
    runtime: Scope = None
    dtype: Scope = None
    exporter: Scope = None
    graphs: Scope = None
    max_ulp: int | None = None
    max_abs: float | None = None
    max_special: int = 0
    no_artifact: bool = False

    def matches(self, format: str, runtime: str, dtype: str, exporter: str | None = None,
                graphs: str | None = None) -> bool:
        return all(
            want is None or want == got or (isinstance(want, tuple) and got in want)
            for want, got in (
                (self.format, format), (self.runtime, runtime), (self.dtype, dtype), (self.exporter, exporter),
                (self.graphs, graphs),
            )
        )

    def covers(self, max_ulp: int, max_abs: float, special: int) -> bool:
        """Whether a measured deviation stays within what was declared."""
        within = (self.max_ulp is not None and max_ulp <= self.max_ulp) or (
            self.max_abs is not None and max_abs <= self.max_abs)
        return special <= self.max_special and (within or (self.max_ulp is None and self.max_abs is None))


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

    def module(self) -> nn.Module:
        return self.factory().eval()

    @property
    def module_repr(self) -> str:
        return repr(self.module())

    def budget(self, dtype: str) -> Budget:
        return self.budgets.get(dtype, DEFAULT_BUDGETS[dtype])

    def xfail(self, format: str, runtime: str, dtype: str, exporter: str | None = None,
              no_artifact: bool = False, graphs: str | None = None) -> XFail | None:
        """The declaration for a cell: of a missing artifact when `no_artifact`, else numerical."""
        return next((x for x in self.xfails
                     if x.no_artifact == no_artifact and x.matches(format, runtime, dtype, exporter, graphs)), None)


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
# onnx 1.23 reference, all four dtypes) and the side at fault, and is bounded by the measured worst
# case (max_ulp, max_special): a larger deviation fails although declared. Those that name CUDA
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
_SOFTMAX_BUDGETS = {"float32": Budget(ulp=64, atol=2.0**-126), "float64": Budget(ulp=64, atol=2.0**-1022),
                    "bfloat16": Budget(ulp=64, atol=2.0**-126), "float16": Budget(ulp=64, atol=2.0**-14)}

CATALOG: tuple[Activation, ...] = (
    # The four activations of the article this project started from.
    A("sigmoid", nn.Sigmoid, "1 / (1 + exp(-x))", o.sigmoid(),
      xfails=(X(_ORT_SIGMOID, runtime="ort:cpu", dtype=_F32_F64, max_abs=2e-7),
              X(_ORT_CUDA_SIGMOID, runtime="ort:cuda", dtype=_F32_F64, max_abs=2e-7),
              X(_ORT_CUDA_SIGMOID_BF16, runtime="ort:cuda", dtype="bfloat16", max_abs=1e-2))),
    A("tanh", nn.Tanh, "(exp(x) - exp(-x)) / (exp(x) + exp(-x)), range (-1, 1)", o.tanh()),
    A("relu", nn.ReLU, "max(0, x)", o.relu(), boundaries=(0.0,)),
    A("leaky_relu", nn.LeakyReLU, "x if x > 0 else 0.01 * x", o.leaky_relu(0.01), boundaries=(0.0,),
      xfails=(X(_F32_ATTRIBUTE.format(op="LeakyRelu", attr="alpha", value="0.009999999776482582",
                                      rel="2.2e-08, 2e8 ULP"), format="onnx", dtype="float64", max_ulp=2**28),)),
    A("leaky_relu_0.1", lambda: nn.LeakyReLU(0.1), "x if x > 0 else 0.1 * x", o.leaky_relu(0.1),
      boundaries=(0.0,),
      xfails=(X(_F32_ATTRIBUTE.format(op="LeakyRelu", attr="alpha", value="0.10000000149011612",
                                      rel="1.5e-08, 1.3e8 ULP"), format="onnx", dtype="float64", max_ulp=2**28),)),
    # Every other activation module in torch.nn, with variants where a parameter changes the graph.
    A("relu6", nn.ReLU6, "min(max(0, x), 6)", o.hardtanh(0.0, 6.0), boundaries=(0.0, 6.0)),
    A("elu", nn.ELU, "x if x > 0 else exp(x) - 1", o.elu(1.0), boundaries=(0.0,),
      xfails=(X(_ORT_EXPM1.format(op="Elu", where="101 ULP at x = -0.0039 in float64, 75 at -0.0017 in float32"),
                runtime="ort:cpu", dtype=_F32_F64, max_ulp=128),
              X(_ORT_CUDA_EXPM1.format(op="Elu", where="266 ULP at x = -0.0039 in float32, 101 in float64, 200 at "
                                       "-0.00166 in float16"), runtime="ort:cuda", max_ulp=512))),
    A("elu_0.5", lambda: nn.ELU(alpha=0.5), "x if x > 0 else 0.5 * (exp(x) - 1)", o.elu(0.5),
      boundaries=(0.0,),
      xfails=(X(_ORT_EXPM1.format(op="Elu", where="101 ULP at x = -0.0039 in float64, 30 in float32"),
                runtime="ort:cpu", dtype=_F32_F64, max_ulp=128),
              X(_ORT_CUDA_EXPM1.format(op="Elu", where="241 ULP at x = -0.0039 in float32, 101 in float64, 43 at "
                                       "-0.0065 in float16"), runtime="ort:cuda", max_ulp=512))),
    A("selu", nn.SELU, "scale * (x if x > 0 else alpha * (exp(x) - 1)), alpha=1.6733, scale=1.0507",
      o.selu(), boundaries=(0.0,),
      xfails=(X("onnxruntime's Selu computes alpha * (exp(x) - 1): 0 at x = -1.18e-38 where the value "
                "is -2.07e-38 (14748006 ULP), on CPU and CUDA (" + _CUDA + "); side: runtime", runtime=_ORT,
                dtype="float32", max_ulp=2**24),
              X("onnxruntime's CUDA float16 Selu computes alpha * (exp(x) - 1) in float16: 0 at x = -6.1e-05 "
                "where the value is -1.07e-04 (1800 ULP); " + _CUDA + "; side: runtime", runtime="ort:cuda",
                dtype="float16", max_ulp=4096),
              X(_F32_ATTRIBUTE.format(op="Selu", attr="alpha and gamma", value="1.6732632 and 1.0507010",
                                      rel="3.3e-08 at x = 1.9"), format="onnx", dtype="float64", max_ulp=2**53))),
    A("celu", nn.CELU, "max(0, x) + min(0, exp(x) - 1)", o.celu(1.0), boundaries=(0.0,),
      xfails=(X(_ORT_EXPM1.format(op="Celu", where="27 ULP at x = -0.0117 in float32") + _CELU_ON_CPU, runtime=_ORT,
                dtype="float32", max_ulp=64),
              X("ONNX Celu is float32-only: the exporter wraps it in Cast(float32) / Cast(float64), so a "
                "float64 model computes in float32 (abs error 2.4e-07) and |x| > 3.4e38 becomes inf "
                "(93 NaN/inf mismatches); side: export", format="onnx", dtype="float64", max_ulp=2**34,
                max_special=128))),
    A("celu_2", lambda: nn.CELU(alpha=2.0), "max(0, x) + min(0, 2 * (exp(x / 2) - 1))", o.celu(2.0),
      boundaries=(0.0,),
      xfails=(X(_ORT_EXPM1.format(op="Celu", where="3065 ULP at x = -0.000167 in float32") + _CELU_ON_CPU,
                runtime=_ORT, dtype="float32", max_ulp=4096),
              X("ONNX Celu is float32-only: the exporter wraps it in Cast(float32) / Cast(float64), so a "
                "float64 model computes in float32 and |x| > 3.4e38 becomes inf; side: export",
                format="onnx", dtype="float64", max_ulp=2**41, max_special=128))),
    A("gelu", nn.GELU, "x * Phi(x) = x / 2 * (1 + erf(x / sqrt(2)))", o.gelu(),
      xfails=(X("PyTorch returns NaN for GELU(+inf) and GELU(-inf) (values +inf and 0), and its "
                "kernels lose the tail below x ~ -4 (float32 x = -4.9673: -1.92447e-06, exact "
                "-1.68645e-06); side: pytorch", runtime=_TORCH, max_abs=1.5e-6, max_special=3),
              X("the ONNX graph x * (1 + Erf(x / sqrt(2))) / 2 gives NaN at x = -inf (value 0) and "
                "cancels in 1 + erf for x << 0 (0 at x = -10 where the value is -7.6e-23); the legacy "
                "graph also overflows to inf at x = 3.4e38; side: export",
                format="onnx", max_abs=6e-3, max_special=2))),
    A("gelu_tanh", lambda: nn.GELU(approximate="tanh"),
      "x / 2 * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x^3)))", o.gelu_tanh(),
      xfails=(X("1 + tanh(u) cancels for x < -5 (float32 x = -5.0923: eager -0, exact -1.22e-07) and "
                "x = -inf gives NaN (value 0), in PyTorch and in every export of it; side: pytorch",
                runtime=_TORCH, max_abs=3e-7, max_special=1),
              X("the ONNX graph keeps the cancelling form 1 + tanh(u): -4.55e-07 at x = -5.0923 where the "
                "value is -1.22e-07 (float32), NaN at x = -inf; side: export", format="onnx",
                exporter="dynamo", max_abs=6e-3, max_special=1),
              X("the legacy graph computes x^3 first and returns inf at x = 3.4e38 (value 3.4e38), "
                "besides the tail cancellation; side: export", format="onnx", exporter="legacy",
                max_abs=6e-3, max_special=2))),
    A("silu", nn.SiLU, "x * sigmoid(x)", o.silu(),
      xfails=(X(_NEG_INF + "; PyTorch's SiLU also underflows to -0 for x < -88.7 in float32 where "
                "the value is ~1e-37, and loses the tail in bfloat16 (549 ULP); side: pytorch",
                runtime=_NOT_ORT, max_abs=1e-36, max_special=1),
              X(_ORT_SIGMOID + "; x * sigmoid(x) inherits it (silu(-7.89) 2792 ULP), and x = -inf gives "
                "NaN", runtime="ort:cpu", max_abs=1.5e-6, max_special=1),
              X(_ORT_CUDA_SIGMOID + "; x * sigmoid(x) inherits it (abs error up to 6.1e-07 in float32) and x = -inf "
                "gives NaN", runtime="ort:cuda", dtype=_F32_F64, max_abs=1.5e-6, max_special=1),
              X("onnxruntime's CUDA SiLU in float16 and bfloat16 is 0 where the product is small but normal "
                "(abs error 3.7e-03 in float16, 2.1e-02 in bfloat16, where bfloat16 Sigmoid is 0 at x = -5.56), "
                "and x = -inf gives NaN; " + _CUDA + "; side: runtime", runtime="ort:cuda",
                dtype=("float16", "bfloat16"), max_abs=0.05, max_special=1))),
    A("mish", nn.Mish, "x * tanh(softplus(x))", o.mish(),
      xfails=(X(_NEG_INF + "; side: pytorch", runtime=_NOT_ORT, max_ulp=4, max_special=1),
              X(_NEG_INF + "; onnxruntime's float64 Mish also returns 0 in the far negative tail where "
                "the value is tiny (5 ULP in float32); side: runtime", runtime="ort:cpu", graphs="stock",
                max_abs=1.5e-7, max_special=1),
              X(_NEG_INF + " (actexport's graph x * n / (n + 2) keeps the product); side: pytorch",
                runtime=_ORT, graphs=_OURS, max_ulp=4, max_special=1))),
    A("hardswish", nn.Hardswish, "x * min(max(0, x + 3), 6) / 6", o.hardswish(), domain=(-5.0, 5.0),
      boundaries=_HARD,
      xfails=(X(_CUDA_SIXTH.format(op="Hardswish", where="268430608 ULP") + "; and " + _NEG_INF,
                runtime=_TORCH_CUDA, dtype="float64", max_ulp=2**29, max_special=3),
              X(_NEG_INF + "; PyTorch also computes x * (x + 3) before dividing by 6 and returns inf "
                "at x = 3.4e38, whose value is x; side: pytorch", runtime=_TORCH, max_ulp=4, max_special=3),
              X("onnxruntime's CUDA float16 HardSwish computes in float16 (512 ULP), and " + _NEG_INF + "; "
                + _CUDA + "; side: runtime", runtime="ort:cuda", dtype="float16", max_abs=5e-4, max_special=1),
              X(_NEG_INF + "; ONNX HardSwish is x * HardSigmoid(x) and inherits its cancellation near "
                "x = -3 (see hardsigmoid); side: export", format="onnx", max_abs=1.5e-7, max_special=1))),
    A("hardsigmoid", nn.Hardsigmoid, "min(max(0, x + 3), 6) / 6", o.hardsigmoid(),
      domain=(-5.0, 5.0), boundaries=_HARD,
      xfails=(X("ONNX HardSigmoid computes alpha * x + beta with alpha = 1/6 rounded: near x = -3 the "
                "cancellation leaves 2.98e-08 where the value is 3.97e-08 (float32, 2796203 ULP) and 0 "
                "where it is 7.4e-17 (float64); side: export", format="onnx", dtype=_F32_F64,
                max_abs=5e-8),
              X("onnxruntime's CUDA float16 HardSigmoid computes alpha * x + beta in float16: 1.22e-04 at x = -3 "
                "where the value is 0; " + _CUDA + "; side: runtime", runtime="ort:cuda", dtype="float16",
                max_abs=2.5e-4),
              X(_CUDA_SIXTH.format(op="Hardsigmoid", where="0.99951151 at x = 2.997, exact 0.99951148"),
                runtime=_TORCH_CUDA, dtype="float64", max_abs=6e-8))),
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
                exporter="dynamo", no_artifact=True),)),
    A("softplus", nn.Softplus, "log(1 + exp(x)), x when x > 20", o.softplus(1.0, 20.0),
      domain=(-30.0, 30.0), boundaries=(20.0,),
      xfails=(X("onnxruntime's float64 Softplus returns 0 where exp(x) < ~1e-17 (x = -50: exact "
                "1.93e-22); side: runtime", runtime="ort:cpu", dtype="float64", graphs="stock", max_abs=3e-16),)),
    A("softplus_b2_t10", lambda: nn.Softplus(beta=2.0, threshold=10.0),
      "log(1 + exp(2x)) / 2, x when 2x > 10", o.softplus(2.0, 10.0), domain=(-15.0, 15.0),
      boundaries=(5.0,),
      xfails=(X("onnxruntime's float64 Softplus returns 0 where exp(2x) < ~1e-17 (x = -20: exact "
                "2.12e-18); side: runtime", runtime="ort:cpu", dtype="float64", graphs="stock", max_abs=1.5e-16),
              X("the legacy graph computes 2x before the threshold test and returns inf at x = 3.4e38 "
                "(value: x), and 48 ULP off near the threshold; side: export", format="onnx",
                exporter="legacy", max_ulp=64, max_special=1))),
    A("softsign", nn.Softsign, "x / (1 + |x|)", o.softsign(),
      xfails=(X("x / (1 + |x|) at x = ±inf is inf / inf = NaN in every runtime, where the limit is ±1; "
                "side: pytorch (every export keeps the formula)", max_ulp=4, max_special=2),)),
    A("tanhshrink", nn.Tanhshrink, "x - tanh(x)", o.tanhshrink(),
      xfails=(X("x - tanh(x) cancels near 0 in every runtime: float32 x = -0.0039 gives -2.0023e-08, "
                "exact -1.9897e-08 (71050 ULP); bfloat16 returns 0 for |x| < 0.09; side: pytorch "
                "(every export keeps the formula)", runtime=_NOT_ORT, max_ulp=2**17),
              X("onnxruntime keeps the cancelling form x - tanh(x) in float32 and float64 (float16 "
                "computes in float32 and passes); side: pytorch", runtime="ort:cpu", dtype=_F32_F64,
                max_ulp=2**17),
              X("onnxruntime's CUDA kernels keep the cancelling form x - tanh(x) in every dtype, float16 and "
                "bfloat16 included (bfloat16 returns 0 at x = -0.0898, float16 31 ULP at x = 0.278); " + _CUDA
                + "; side: pytorch", runtime="ort:cuda", max_ulp=2**17))),
    A("softshrink", nn.Softshrink, "x - 0.5 if x > 0.5, x + 0.5 if x < -0.5, else 0",
      o.softshrink(0.5), domain=(-2.0, 2.0), boundaries=(-0.5, 0.5),
      xfails=(X(_LEGACY_NAN_TO_ZERO, format="onnx", exporter="legacy", max_ulp=4, max_special=1),)),
    A("softshrink_1", lambda: nn.Softshrink(1.0), "x - 1 if x > 1, x + 1 if x < -1, else 0",
      o.softshrink(1.0), domain=(-3.0, 3.0), boundaries=(-1.0, 1.0),
      xfails=(X(_LEGACY_NAN_TO_ZERO, format="onnx", exporter="legacy", max_ulp=4, max_special=1),)),
    A("hardshrink", nn.Hardshrink, "x if |x| > 0.5 else 0", o.hardshrink(0.5), domain=(-2.0, 2.0),
      boundaries=(-0.5, 0.5),
      xfails=(X(_LEGACY_NAN_TO_ZERO, format="onnx", exporter="legacy", max_ulp=4, max_special=1),)),
    A("hardshrink_1", lambda: nn.Hardshrink(1.0), "x if |x| > 1 else 0", o.hardshrink(1.0),
      domain=(-3.0, 3.0), boundaries=(-1.0, 1.0),
      xfails=(X(_LEGACY_NAN_TO_ZERO, format="onnx", exporter="legacy", max_ulp=4, max_special=1),)),
    A("logsigmoid", nn.LogSigmoid, "log(1 / (1 + exp(-x))) = -softplus(-x)", o.logsigmoid(),
      domain=(-30.0, 30.0),
      xfails=(X("exported as Log(Sigmoid(x)): where Sigmoid underflows the artifact returns -inf, whose "
                "value is ~x (onnxruntime float32: -inf at x = -30; onnx.reference: -inf at x = -3.4e38; "
                "up to 481 inf mismatches); side: export", format="onnx", max_abs=2.5, max_special=512),)),
    A("threshold", lambda: nn.Threshold(0.5, -1.0), "x if x > 0.5 else -1", o.threshold(0.5, -1.0),
      domain=(-2.0, 2.0), boundaries=(0.5,),
      xfails=(X("the legacy exporter refuses a non-zero threshold (SymbolicValueError); side: export",
                format="onnx", exporter="legacy", no_artifact=True),)),
    A("glu", nn.GLU, "a * sigmoid(b), (a, b) = halves of x along the last dim", o.glu(-1),
      xfails=(X(_ORT_SIGMOID + "; a * sigmoid(b) inherits it (2814 ULP in float32)", runtime="ort:cpu",
                dtype=_F32_F64, max_abs=1.5e-6),)),
    A("softmax", lambda: nn.Softmax(dim=-1), "exp(x_i) / sum_j exp(x_j) along the last dim",
      o.softmax(-1), budgets=_SOFTMAX_BUDGETS,
      xfails=(X(_ORT_CUDA_SOFTMAX64.format(op="Softmax", where="1.44e-08"), runtime="ort:cuda", dtype="float64",
                max_abs=3e-8),)),
    A("softmax_dim0", lambda: nn.Softmax(dim=0), "exp(x_i) / sum_j exp(x_j) along dim 0",
      o.softmax(0), budgets=_SOFTMAX_BUDGETS,
      xfails=(X(_ORT_CUDA_SOFTMAX64.format(op="Softmax", where="1.29e-08: 2.9335727e-05 at x = -5.117, exact "
                                            "2.9335739e-05"), runtime="ort:cuda", dtype="float64", max_abs=3e-8),)),
    A("log_softmax", lambda: nn.LogSoftmax(dim=-1), "x_i - log(sum_j exp(x_j)) along the last dim",
      o.log_softmax(-1), budgets=_SOFTMAX_BUDGETS,
      xfails=(X(_LOG_SUM_EXP, runtime=_TORCH_CPU, max_abs=2.5e-3),
              X(_LOG_SUM_EXP + " (on CUDA not in float16, which PyTorch computes in float32 there; " + _CUDA + ")",
                runtime=_TORCH_CUDA, dtype=("bfloat16", "float32", "float64"), max_abs=2.5e-3),
              X("onnxruntime's LogSoftmax rounds the same way in float32 and float64 (float16 computes "
                "in float32 and passes), and in float64 returns the limit -inf beside a +inf where the "
                "exact row is NaN (15 mismatches); side: pytorch", runtime="ort:cpu", dtype=_F32_F64,
                max_abs=2e-7, max_special=16),
              X(_ORT_CUDA_SOFTMAX64.format(op="LogSoftmax", where="8.7e-08") + "; in float32 it rounds the "
                "dominant element to 0 as PyTorch does (abs error up to 4.7e-07)", runtime="ort:cuda",
                dtype=_F32_F64, max_abs=1e-6),
              X("onnx.reference evaluates LogSoftmax as log(softmax(x)): -inf where softmax underflows "
                "(up to 1680 inf mismatches in float64), and in float16/bfloat16 arithmetic (21 ULP); "
                "side: onnx.reference's implementation, not the graph", runtime="onnx.reference",
                max_abs=0.4, max_special=2048))),
    A("softmin", lambda: nn.Softmin(dim=-1), "exp(-x_i) / sum_j exp(-x_j) along the last dim",
      o.softmax(-1, negate=True), budgets=_SOFTMAX_BUDGETS,
      xfails=(X(_ORT_CUDA_SOFTMAX64.format(op="Softmax", where="1.43e-08"), runtime="ort:cuda", dtype="float64",
                max_abs=3e-8),)),
    A("softmax2d", nn.Softmax2d, "softmax over channels (dim -3) at every spatial location",
      o.softmax(-3), shape=(2, 3, 4, 4), budgets=_SOFTMAX_BUDGETS),
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
    return tuple(out)


def activation_classes() -> dict[str, type]:
    """Every activation class that torch.nn.modules.activation defines."""
    from torch.nn.modules import activation as mod

    return {
        name: cls
        for name, cls in vars(mod).items()
        if inspect.isclass(cls) and issubclass(cls, nn.Module) and cls.__module__ == mod.__name__
    }
