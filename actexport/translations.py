"""actexport's own ONNX graphs: replacements for stock torch.onnx translations that are slow or lossy.

A graph profile is what the ONNX exporter emits. "stock" is torch.onnx as it ships; "actexport"
applies the rows of TRANSLATIONS. A row is data: which module class it replaces, when it applies
(dtype, opset, parameters), what stock does wrong (measured), and the replacement.

The mechanism is a module substitution: before export, each instance of the class is swapped for a
module written in plain torch ops that torch.onnx translates into the better graph.

Every row is proven by the instruments, not by this file: tests/test_translations.py checks each
against stock on the full input battery (ULP against the exact reference, special values) for every
dtype, and `actexport graphs` measures it (benchmarks/results/2026-11-27-issue7-graphs.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from actexport.catalog import UsageError

# NOTE: substitution, not `custom_translation_table`: torch.export decomposes Softshrink and Hardshrink
# before a custom translation of aten.softshrink could see them (measured: the function is never
# called), and every other row is expressible in torch ops. The one graph no torch op gives, a native
# ONNX Gelu, torch.onnx already emits at opset 20 and above (measured: one Gelu node, 1.6x eager at 1e6).

# "candidates" adds the rows the benchmark rejected (`rejected` says why), for `actexport graphs` to judge
# again and for users who accept their trade-off. Today no row is rejected: the two that once were
# (hardshrink.mask, threshold.max) were only "slower" at 1e3 when stock and candidate were timed in
# separate runs; timed back to back they are 0.96-1.18x at 1e3 in three runs of three.
PROFILES = ("stock", "actexport", "candidates")
DEFAULT_PROFILE = "actexport"

_FLOAT = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32, "float64": torch.float64}


@dataclass(frozen=True)
class Translation:
    """One replacement of a stock ONNX translation.

    Attributes:
        name: stable identifier, recorded in the manifest of every artifact that used it.
        target: the nn.Module class substituted (exact type, not subclasses).
        build: (module, dtype, opset) -> replacement module, or None where the row does not apply.
        stock: what the stock graph is and why it is replaced (measured).
        graph: the replacement graph, in ONNX ops.
        rejected: why the acceptance rule (`actexport graphs`) refused the row, as measured; such a row
            is only in the "candidates" profile.
    """

    name: str
    target: type
    build: Callable
    stock: str
    graph: str
    rejected: str = ""


def check_profile(graphs: str) -> str:
    if graphs not in PROFILES:
        raise UsageError(f"unknown graph profile {graphs!r}; valid: {', '.join(PROFILES)}")
    return graphs


# --- the replacement modules -------------------------------------------------------------------


class _Softshrink(nn.Module):
    """x - clamp(x, -l, l): exactly softshrink (x - l above, x + l below, +0 inside), NaN and ±inf kept."""

    def __init__(self, lambd: float) -> None:
        super().__init__()
        self.lambd = lambd

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x - torch.clamp(x, -self.lambd, self.lambd)


class _Hardshrink(nn.Module):
    """x * (|x| > l), plus a +0 that turns the -0 of (negative x) * 0 into eager's +0: exactly hardshrink."""

    def __init__(self, lambd: float) -> None:
        super().__init__()
        self.lambd = lambd

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        keep = (torch.abs(x) > self.lambd).to(x.dtype)
        # NOTE: (negative x) * 0 is -0 where eager gives +0. Adding a literal +0 would fix it, but
        # torch.onnx's optimiser folds x + 0 away (measured); keep - keep is +0 everywhere (keep is 0 or
        # 1) and survives it.
        return x * keep + (keep - keep)


class _Threshold(nn.Module):
    """max(x, th) + (x <= th) * (v - th): x above th, exactly v at or below it (checked when built)."""

    def __init__(self, threshold: float, step: float) -> None:
        super().__init__()
        self.threshold, self.step = threshold, step

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # NOTE: torch.maximum, not clamp: torch.onnx makes clamp(min=) a Clip whose open end is the
        # dtype's largest finite value, and onnxruntime then maps +inf to 3.4e38 (measured).
        return torch.maximum(x, x.new_full((), self.threshold)) + (x <= self.threshold).to(x.dtype) * self.step


class _LeakyConstant(nn.Module):
    """PReLU with one slope, known at export: LeakyReLU with that slope as an attribute."""

    def __init__(self, slope: float) -> None:
        super().__init__()
        self.slope = slope

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.leaky_relu(x, self.slope)


def _log1p_small(t: torch.Tensor) -> torch.Tensor:
    """log1p(t) for t in [0, 1] from log(1 + t) and the exact rounding error of 1 + t.

    u = fl(1 + t) and (u - 1) - t is its rounding error e (exact, Sterbenz), so log1p(t) =
    log(u) - e / u to within a rounding; when u == 1, log(u) = 0 and the result is t.
    """
    u = 1.0 + t
    return torch.log(u) - ((u - 1.0) - t) / u


class _Softplus(nn.Module):
    """relu(x) + log1p(exp(-|b x|)) / b, the threshold kept as a mask where rounding does not keep it."""

    def __init__(self, beta: float, threshold: float, masked: bool) -> None:
        super().__init__()
        self.beta, self.threshold, self.masked = beta, threshold, masked

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = x * self.beta if self.beta != 1.0 else x
        tail = _log1p_small(torch.exp(-torch.abs(z)))
        if self.beta != 1.0:
            tail = tail / self.beta
        if self.masked:
            tail = tail * (z <= self.threshold).to(x.dtype)
        return torch.relu(x) + tail


class _Mish(nn.Module):
    """x * n / (n + 2), n = e (e + 2), e = exp(min(x, c)): tanh(log(1 + e)) = n / (n + 2) exactly."""

    def __init__(self, cap: float) -> None:
        super().__init__()
        self.cap = cap

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e = torch.exp(torch.clamp(x, max=self.cap))
        n = e * (e + 2.0)
        return x * (n / (n + 2.0))


class _Softmax(nn.Module):
    """exp(x - max) / sum(exp(x - max)) along `dim`, in reduce ops instead of Softmax on a middle axis."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e = torch.exp(x - torch.amax(x, dim=self.dim, keepdim=True))
        return e / torch.sum(e, dim=self.dim, keepdim=True)


# --- when each row applies ----------------------------------------------------------------------


def _threshold(m: nn.Threshold, dtype: str, opset: int):
    th, v = float(m.threshold), float(m.value)
    if not (math.isfinite(th) and math.isfinite(v) and th >= 0):
        return None  # NOTE: th < 0 would turn x = -0 > th into +0; non-finite v gives inf * 0
    t = _FLOAT[dtype]
    th_t, v_t = torch.tensor(th, dtype=t), torch.tensor(v, dtype=t)  # as the graph's constants hold them
    step = v_t - th_t
    if not (math.isfinite(float(step)) and bool(th_t + step == v_t)):
        return None  # th + (v - th) must give v back exactly in this dtype
    return _Threshold(float(th_t), float(step))


def _prelu(m: nn.PReLU, dtype: str, opset: int):
    if m.weight.numel() != 1 or dtype == "float64":
        return None  # per-channel slopes stay PRelu; onnxruntime has no float64 LeakyRelu kernel
    return _LeakyConstant(float(m.weight.detach().reshape(())))


def _softplus(m: nn.Softplus, dtype: str, opset: int):
    beta, threshold = float(m.beta), float(m.threshold)
    if not (beta > 0 and math.isfinite(beta) and math.isfinite(threshold) and threshold > 0):
        return None
    # Above the threshold softplus is x. Without a mask the graph gives x + log1p(exp(-b x)) / b there,
    # which rounds to x when that tail is under half an ULP of x at the threshold (it only shrinks
    # beyond): then the mask, three ops, is not needed.
    t = _FLOAT[dtype]
    edge = torch.tensor(threshold / beta, dtype=t)
    tail = math.log1p(math.exp(-threshold)) / beta
    masked = bool(edge + torch.tensor(tail, dtype=t) != edge)
    return _Softplus(beta, threshold, masked)


# NOTE: exp(min(x, c)) squared must stay finite, and 2 / (n + 2) must be under half an ULP of 1 from
# x = c on, so that the ratio is exactly 1 there: c = 20 for float32/float64 (e^40 = 2.4e17), 5.5
# for float16 (e^11 = 6e4 < 65504; 2 e^-11 = 3.3e-5 < 2.4e-4).
_MISH_CAP = {"float16": 5.5, "float32": 20.0, "float64": 20.0}


def _mish(m: nn.Mish, dtype: str, opset: int):
    cap = _MISH_CAP.get(dtype)
    return None if cap is None else _Mish(cap)


def _softmax2d(m: nn.Softmax2d, dtype: str, opset: int):
    return _Softmax(-3)


def _shrink(cls):
    return lambda m, dtype, opset: cls(float(m.lambd))


TRANSLATIONS: tuple[Translation, ...] = (
    Translation(
        "softshrink.clip", nn.Softshrink, _shrink(_Softshrink),
        "Abs, Greater, Sign, Mul, Sub, Mul, Where: 53-60x slower than eager on onnxruntime CPU at 1e6 "
        "(its Where alone takes 7 ms), and -0 in the dead zone where eager gives +0",
        "Clip, Sub"),
    Translation(
        "hardshrink.mask", nn.Hardshrink, _shrink(_Hardshrink),
        "Abs, LessOrEqual, Where: 23-28x slower than eager on onnxruntime CPU at 1e6",
        "Abs, Greater, Cast, Mul, Sub, Add"),
    Translation(
        "threshold.max", nn.Threshold, _threshold,
        "LessOrEqual, Where: 29x slower than eager on onnxruntime CPU at 1e6",
        "Max, LessOrEqual, Cast, Mul, Add (where th + (v - th) == v exactly)"),
    Translation(
        "prelu.leaky", nn.PReLU, _prelu,
        "PRelu with a broadcast [1] slope: 15x slower than eager (onnxruntime's broadcast PRelu kernel)",
        "LeakyRelu(alpha = the slope); the slope becomes a constant of the graph"),
    Translation(
        "softplus.log1p", nn.Softplus, _softplus,
        "Softplus (+ Mul, Greater, Where): 5-8x slower than eager (onnxruntime's Softplus kernel alone "
        "takes 9.8 ms at 1e6)",
        "Relu(x) + log1p(Exp(-|x|)), log1p from Log and the rounding error of 1 + t"),
    Translation(
        "mish.ratio", nn.Mish, _mish,
        "Mish, which onnxruntime expands to Softplus, Tanh, Mul: 3x slower than eager, and 9363 ULP "
        "off in the far negative tail",
        "x * n / (n + 2), n = e (e + 2), e = Exp(Min(x, c))"),
    Translation(
        "softmax2d.reduce", nn.Softmax2d, _softmax2d,
        "Softmax(axis=1) on a 4-D tensor: 20x slower than eager (onnxruntime's non-last-axis path)",
        "ReduceMax, Sub, Exp, ReduceSum, Div over axis 1"),
)


@dataclass
class Plan:
    """What a graph profile does to one module: the module to export, and the rows it used."""

    module: nn.Module
    used: list[str]


def plan(module: nn.Module, dtype: str, opset: int, profile: str = DEFAULT_PROFILE) -> Plan:
    """The module with every applicable substitution made (the original is not changed)."""
    rows = [t for t in TRANSLATIONS if profile == "candidates" or (profile == DEFAULT_PROFILE and not t.rejected)]
    by_class = {t.target: t for t in rows}
    used: list[str] = []

    def swap(m: nn.Module) -> nn.Module | None:
        row = by_class.get(type(m))
        new = row.build(m, dtype, opset) if row else None
        if new is not None:
            assert row is not None  # new came from row.build
            used.append(row.name)
            new.train(m.training)
        return new

    root = swap(module)
    if root is None:
        import copy
        root = copy.deepcopy(module)
        for parent in list(root.modules()):
            for attr, sub in list(parent.named_children()):
                new = swap(sub)
                if new is not None:
                    setattr(parent, attr, new)
    return Plan(root, used)
