"""The registry: one row per activation configuration, the only place that names activations."""

from __future__ import annotations

import functools
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


# NOTE: the absolute floor is the dtype's machine epsilon (1 ULP at 1.0). Activations take O(1)
# inputs whose own rounding error (half an ULP of x) passes into the output as an absolute error;
# where the output is near zero (exp(x) - 1, x - tanh(x), sigmoid tails) that error is many ULPs
# of the small output without being a bug. Below the floor, ULPs are not counted.
DEFAULT_BUDGETS = {
    "float16": Budget(ulp=4, atol=2.0**-10),
    "bfloat16": Budget(ulp=4, atol=2.0**-7),
    "float32": Budget(ulp=4, atol=2.0**-23),
    "float64": Budget(ulp=4, atol=2.0**-52),
}


@dataclass(frozen=True)
class XFail:
    """A known, explained deviation, scoped to the cells it applies to (None matches any).

    `exporter` scopes ONNX deviations to one torch.onnx exporter: "dynamo" or "legacy".
    """

    reason: str
    format: str | None = None
    runtime: str | None = None
    dtype: str | None = None
    exporter: str | None = None

    def matches(self, format: str, runtime: str, dtype: str, exporter: str | None = None) -> bool:
        return all(
            want is None or want == got
            for want, got in (
                (self.format, format), (self.runtime, runtime), (self.dtype, dtype), (self.exporter, exporter)
            )
        )


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

    def module(self) -> nn.Module:
        return self.factory().eval()

    @property
    def module_repr(self) -> str:
        return repr(self.module())

    def budget(self, dtype: str) -> Budget:
        return self.budgets.get(dtype, DEFAULT_BUDGETS[dtype])

    def xfail(self, format: str, runtime: str, dtype: str, exporter: str | None = None) -> XFail | None:
        return next((x for x in self.xfails if x.matches(format, runtime, dtype, exporter)), None)


def _prelu_3ch() -> nn.Module:
    m = nn.PReLU(num_parameters=3)
    with torch.no_grad():
        m.weight.copy_(torch.tensor([0.25, -0.5, 2.0]))
    return m


A = Activation
# NOTE: every deviation below was measured in float32; other dtypes are judged without a
# declaration until they have been measured, so a deviation there shows up as a fail, not an xpass.
X = functools.partial(XFail, dtype="float32")
_HARD = (-3.0, 3.0)

# Deviations measured with torch 2.13.0, onnxruntime 1.32.0 (CPU), float32; each names its side.
_ORT_SIGMOID = (
    "onnxruntime's CPU Sigmoid kernel (an approximation) has ~2e-4 relative error for x < -7 and "
    "returns 0 for x <= -20 (measured: sigmoid(-7.8906) = 3.74198e-04, exact 3.74116e-04; "
    "sigmoid(-20) = 0, exact 2.06e-09); side: runtime"
)
_LEGACY_NAN_TO_ZERO = (
    "the legacy exporter builds the shrink as Where(|x| > lambda, ...) chains that map NaN to 0 "
    "(measured: x=nan gives 0.0, eager and the exact definition give nan); side: export"
)

CATALOG: tuple[Activation, ...] = (
    # The four activations of the article this project started from.
    A("sigmoid", nn.Sigmoid, "1 / (1 + exp(-x))", o.sigmoid(),
      # NOTE: no absolute floor: sigmoid has no cancellation anywhere, and its small outputs are
      # the probabilities users read (2e-9 must not come back as 0).
      budgets={"float32": Budget(ulp=4, atol=2.0**-126)},
      xfails=(X(_ORT_SIGMOID, runtime="ort:cpu"),)),
    A("tanh", nn.Tanh, "(exp(x) - exp(-x)) / (exp(x) + exp(-x)), range (-1, 1)", o.tanh()),
    A("relu", nn.ReLU, "max(0, x)", o.relu(), boundaries=(0.0,)),
    A("leaky_relu", nn.LeakyReLU, "x if x > 0 else 0.01 * x", o.leaky_relu(0.01), boundaries=(0.0,)),
    A("leaky_relu_0.1", lambda: nn.LeakyReLU(0.1), "x if x > 0 else 0.1 * x", o.leaky_relu(0.1),
      boundaries=(0.0,)),
    # Every other activation module in torch.nn, with variants where a parameter changes the graph.
    A("relu6", nn.ReLU6, "min(max(0, x), 6)", o.hardtanh(0.0, 6.0), boundaries=(0.0, 6.0)),
    A("elu", nn.ELU, "x if x > 0 else exp(x) - 1", o.elu(1.0), boundaries=(0.0,)),
    A("elu_0.5", lambda: nn.ELU(alpha=0.5), "x if x > 0 else 0.5 * (exp(x) - 1)", o.elu(0.5),
      boundaries=(0.0,)),
    A("selu", nn.SELU, "scale * (x if x > 0 else alpha * (exp(x) - 1)), alpha=1.6733, scale=1.0507",
      o.selu(), boundaries=(0.0,)),
    A("celu", nn.CELU, "max(0, x) + min(0, exp(x) - 1)", o.celu(1.0), boundaries=(0.0,)),
    A("celu_2", lambda: nn.CELU(alpha=2.0), "max(0, x) + min(0, 2 * (exp(x / 2) - 1))", o.celu(2.0),
      boundaries=(0.0,)),
    A("gelu", nn.GELU, "x * Phi(x) = x / 2 * (1 + erf(x / sqrt(2)))", o.gelu(),
      xfails=(X("PyTorch 2.13 returns NaN for GELU(+inf) and GELU(-inf), whose values are +inf and 0, "
                "and its CPU kernel loses the tail below x ~ -4 (x=-4.9673: eager -1.92447e-06, exact "
                "-1.68645e-06, 2e6 ULP); the ONNX artifact is within 1 ULP of exact; side: pytorch",
                format="onnx"),)),
    A("gelu_tanh", lambda: nn.GELU(approximate="tanh"),
      "x / 2 * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x^3)))", o.gelu_tanh(),
      xfails=(X("below x ~ -5 both lose the tail to the cancellation in 1 + tanh(...): at x=-5.0923 "
                "eager returns -0, ort:cpu -4.55e-07, exact -1.22e-07; side: both", format="onnx",
                exporter="dynamo"),
              X("the legacy graph computes x^3 first and returns inf at x=3.4e38 (eager and exact: "
                "3.4e38), besides the tail cancellation of the dynamo graph; side: export",
                format="onnx", exporter="legacy"))),
    A("silu", nn.SiLU, "x * sigmoid(x)", o.silu(),
      xfails=(X(_ORT_SIGMOID + "; x * sigmoid(x) carries it above the floor: silu(-7.8906) = "
                "-0.00295264, exact -0.00295199 (2792 ULP)", runtime="ort:cpu"),)),
    A("mish", nn.Mish, "x * tanh(softplus(x))", o.mish()),
    A("hardswish", nn.Hardswish, "x * min(max(0, x + 3), 6) / 6", o.hardswish(), domain=(-5.0, 5.0),
      boundaries=_HARD,
      xfails=(X("PyTorch 2.13 multiplies x * (x + 3) before dividing by 6 and returns inf at "
                "x=3.4028235e38, whose value is x; the ONNX HardSwish is right; side: pytorch",
                format="onnx"),)),
    A("hardsigmoid", nn.Hardsigmoid, "min(max(0, x + 3), 6) / 6", o.hardsigmoid(),
      domain=(-5.0, 5.0), boundaries=_HARD),
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
                exporter="dynamo"),)),
    A("softplus", nn.Softplus, "log(1 + exp(x)), x when x > 20", o.softplus(1.0, 20.0),
      domain=(-30.0, 30.0), boundaries=(20.0,)),
    A("softplus_b2_t10", lambda: nn.Softplus(beta=2.0, threshold=10.0),
      "log(1 + exp(2x)) / 2, x when 2x > 10", o.softplus(2.0, 10.0), domain=(-15.0, 15.0),
      boundaries=(5.0,),
      xfails=(X("the legacy graph computes 2x before the threshold test and returns inf at "
                "x=3.4e38 (value: x), and 48 ULP off near the threshold; side: export", format="onnx",
                exporter="legacy"),)),
    A("softsign", nn.Softsign, "x / (1 + |x|)", o.softsign()),
    A("tanhshrink", nn.Tanhshrink, "x - tanh(x)", o.tanhshrink()),
    A("softshrink", nn.Softshrink, "x - 0.5 if x > 0.5, x + 0.5 if x < -0.5, else 0",
      o.softshrink(0.5), domain=(-2.0, 2.0), boundaries=(-0.5, 0.5),
      xfails=(X(_LEGACY_NAN_TO_ZERO, format="onnx", exporter="legacy"),)),
    A("softshrink_1", lambda: nn.Softshrink(1.0), "x - 1 if x > 1, x + 1 if x < -1, else 0",
      o.softshrink(1.0), domain=(-3.0, 3.0), boundaries=(-1.0, 1.0),
      xfails=(X(_LEGACY_NAN_TO_ZERO, format="onnx", exporter="legacy"),)),
    A("hardshrink", nn.Hardshrink, "x if |x| > 0.5 else 0", o.hardshrink(0.5), domain=(-2.0, 2.0),
      boundaries=(-0.5, 0.5), xfails=(X(_LEGACY_NAN_TO_ZERO, format="onnx", exporter="legacy"),)),
    A("hardshrink_1", lambda: nn.Hardshrink(1.0), "x if |x| > 1 else 0", o.hardshrink(1.0),
      domain=(-3.0, 3.0), boundaries=(-1.0, 1.0),
      xfails=(X(_LEGACY_NAN_TO_ZERO, format="onnx", exporter="legacy"),)),
    A("logsigmoid", nn.LogSigmoid, "log(1 / (1 + exp(-x))) = -softplus(-x)", o.logsigmoid(),
      domain=(-30.0, 30.0),
      xfails=(X("exported as Log(Sigmoid(x)): onnxruntime's Sigmoid returns 0 for x <= -20, so the "
                "artifact returns -inf where the value is x (measured: x=-30 gives -inf, exact -30) "
                "and up to 6e5 ULP above that; side: export", format="onnx"),)),
    A("threshold", lambda: nn.Threshold(0.5, -1.0), "x if x > 0.5 else -1", o.threshold(0.5, -1.0),
      domain=(-2.0, 2.0), boundaries=(0.5,),
      xfails=(X("the legacy exporter refuses a non-zero threshold (SymbolicValueError); side: export",
                format="onnx", exporter="legacy"),)),
    A("glu", nn.GLU, "a * sigmoid(b), (a, b) = halves of x along the last dim", o.glu(-1),
      xfails=(X(_ORT_SIGMOID + "; a * sigmoid(b) carries it above the floor (2814 ULP)",
                runtime="ort:cpu"),)),
    A("softmax", lambda: nn.Softmax(dim=-1), "exp(x_i) / sum_j exp(x_j) along the last dim",
      o.softmax(-1)),
    A("softmax_dim0", lambda: nn.Softmax(dim=0), "exp(x_i) / sum_j exp(x_j) along dim 0",
      o.softmax(0)),
    A("log_softmax", lambda: nn.LogSoftmax(dim=-1), "x_i - log(sum_j exp(x_j)) along the last dim",
      o.log_softmax(-1)),
    A("softmin", lambda: nn.Softmin(dim=-1), "exp(-x_i) / sum_j exp(-x_j) along the last dim",
      o.softmax(-1, negate=True)),
    A("softmax2d", nn.Softmax2d, "softmax over channels (dim -3) at every spatial location",
      o.softmax(-3), shape=(2, 3, 4, 4)),
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
