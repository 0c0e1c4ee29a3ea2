"""Exact definitions of each activation, written once from the mathematics for two backends.

Each definition is a function of a backend `m` (elementary functions and constants) and the input.
The float64 backend is numpy with the numerically careful forms (expm1, log1p, erfc, the stable
sigmoid and softplus, max-subtracted softmax); the precise backend evaluates the same definition in
mpmath at 40 significant digits and rounds once, for judging float64 artifacts and for forms that
cancel even in float64. Neither calls torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import mpmath
import numpy as np

from actexport.dtypes import np_dtype

DIGITS = 40  # mpmath precision of the precise backend (float64 needs 17)


class _Float64:
    """numpy float64; errstate is ignored by the caller (overflow to inf is the right answer)."""

    name = "float64"
    exp, expm1, log, log1p, tanh, sqrt = np.exp, np.expm1, np.log, np.log1p, np.tanh, np.sqrt
    # NOTE: numpy has no erfc; math.erfc is accurate to about 1 ulp in float64.
    erfc = staticmethod(np.vectorize(math.erfc, otypes=[np.float64]))
    pi = math.pi

    @staticmethod
    def const(text: str | float) -> float:
        return float(text)

    @staticmethod
    def inputs(x: np.ndarray) -> np.ndarray:
        return np.asarray(x, dtype=np.float64)

    @staticmethod
    def result(y: np.ndarray) -> np.ndarray:
        return np.asarray(y, dtype=np.float64)


class _Precise:
    """mpmath at DIGITS significant digits on object arrays; results rounded once to float64."""

    name = "mpmath"

    def __init__(self) -> None:
        ctx = mpmath.mp.clone()
        ctx.dps = DIGITS
        self.ctx = ctx
        for fn in ("exp", "expm1", "log", "log1p", "tanh", "sqrt"):
            setattr(self, fn, np.frompyfunc(getattr(ctx, fn), 1, 1))

        def erfc(z):
            # NOTE: mpmath's series test overflows for |z| ~ 1e150 and beyond; erfc is 0 or 2 to
            # thousands of digits long before |z| = 1e6.
            if ctx.isfinite(z) and abs(z) > 10**6:
                return ctx.zero if z > 0 else ctx.mpf(2)
            return ctx.erfc(z)

        self.erfc = np.frompyfunc(erfc, 1, 1)
        self.pi = ctx.pi
        self._to_mpf = np.frompyfunc(lambda v: ctx.mpf(float(v)), 1, 1)
        self._to_float = np.frompyfunc(float, 1, 1)

    def const(self, text: str | float):
        return self.ctx.mpf(text)

    def inputs(self, x: np.ndarray) -> np.ndarray:
        return self._to_mpf(np.asarray(x, dtype=np.float64)).astype(object)

    def result(self, y) -> np.ndarray:
        return self._to_float(np.asarray(y, dtype=object)).astype(np.float64)


FLOAT64 = _Float64()
PRECISE = _Precise()


def where(cond, a, b):
    return np.where(np.asarray(cond, dtype=bool), a, b)


def _abs(x):
    return where(x < 0, -x, x)


def _sigmoid(m, x):
    e = m.exp(-_abs(x))
    return where(x >= 0, 1 / (1 + e), e / (1 + e))


def _softplus(m, z):
    """log(1 + e^z) as max(z, 0) + log1p(e^-|z|): no overflow, no cancellation."""
    return where(z > 0, z, 0.0) + m.log1p(m.exp(-_abs(z)))


def _clip(x, lo, hi):
    return where(x < lo, lo, where(x > hi, hi, x))


def _round_param(p: float, dtype: np.dtype) -> float:
    """A module parameter as the module holds it in the dtype under test."""
    return float(np.asarray(p, dtype=np_dtype(dtype.name)).astype(np.float64))


@dataclass(frozen=True)
class Oracle:
    """An exact definition: `fn(m, x, *params)`, with the values it takes at -inf and +inf.

    Attributes:
        fn: the definition, for either backend.
        params: module parameters (slopes, thresholds, weights), rounded to the dtype under test.
        limits: values at (-inf, +inf) for elementwise definitions whose formula gives inf * 0 or
            inf / inf there although the limit exists.
        elementwise: NaN in gives NaN out element by element (reductions propagate it themselves).
    """

    fn: Callable
    params: tuple = ()
    limits: tuple[float, float] | None = None
    elementwise: bool = True

    def __call__(self, x: np.ndarray, precise: bool | None = None) -> np.ndarray:
        """The exact result in float64 (round it once to the dtype under test)."""
        x = np.asarray(x)
        precise = x.dtype == np.float64 if precise is None else precise
        m = PRECISE if precise else FLOAT64
        params = tuple(
            tuple(m.const(_round_param(v, x.dtype)) for v in p) if isinstance(p, tuple)
            else m.const(_round_param(p, x.dtype)) if isinstance(p, float) else p
            for p in self.params
        )
        with np.errstate(all="ignore"):
            y = m.result(self.fn(m, m.inputs(x), *params))
            if self.elementwise:
                x64: np.ndarray = x.astype(np.float64)
                y[np.isnan(x64)] = np.nan
                if self.limits is not None:
                    y[x64 == -np.inf], y[x64 == np.inf] = self.limits
        return y


def _elementwise(fn, *params, limits=None) -> Oracle:
    return Oracle(fn, tuple(params), limits=limits)


# The definitions. Parameters are floats (rounded to the dtype under test) or tuples of floats.

def sigmoid() -> Oracle:
    return _elementwise(_sigmoid)


def tanh() -> Oracle:
    return _elementwise(lambda m, x: m.tanh(x))


def relu() -> Oracle:
    return _elementwise(lambda m, x: where(x > 0, x, 0.0))


def leaky_relu(slope: float) -> Oracle:
    return _elementwise(lambda m, x, a: where(x > 0, x, a * x), float(slope))


def hardtanh(lo: float, hi: float) -> Oracle:
    return _elementwise(lambda m, x, lo, hi: _clip(x, lo, hi), float(lo), float(hi))


def elu(alpha: float) -> Oracle:
    return _elementwise(lambda m, x, a: where(x > 0, x, a * m.expm1(x)), float(alpha))


def selu() -> Oracle:
    def fn(m, x):
        alpha = m.const("1.6732632423543772848170429916717")
        scale = m.const("1.0507009873554804934193349852946")
        return scale * where(x > 0, x, alpha * m.expm1(x))

    return _elementwise(fn)


def celu(alpha: float) -> Oracle:
    return _elementwise(lambda m, x, a: where(x > 0, x, a * m.expm1(x / a)), float(alpha))


def gelu() -> Oracle:
    # x * Phi(x), Phi(x) = erfc(-x / sqrt(2)) / 2: keeps its accuracy for x << 0.
    return _elementwise(lambda m, x: x * m.erfc(-x / m.sqrt(m.const(2))) / 2, limits=(-0.0, np.inf))


def gelu_tanh() -> Oracle:
    # x/2 * (1 + tanh(u)) = x * sigmoid(2u): the same function without the cancellation for x << 0.
    def fn(m, x):
        u = m.sqrt(2 / m.pi) * (x + m.const("0.044715") * x * x * x)
        return x * _sigmoid(m, 2 * u)

    return _elementwise(fn, limits=(-0.0, np.inf))


def silu() -> Oracle:
    return _elementwise(lambda m, x: x * _sigmoid(m, x), limits=(-0.0, np.inf))


def mish() -> Oracle:
    return _elementwise(lambda m, x: x * m.tanh(_softplus(m, x)), limits=(-0.0, np.inf))


def hardswish() -> Oracle:
    return _elementwise(lambda m, x: x * _clip(x + 3, 0, 6) / 6, limits=(-0.0, np.inf))


def hardsigmoid() -> Oracle:
    return _elementwise(lambda m, x: _clip(x + 3, 0, 6) / 6)


def softplus(beta: float, threshold: float) -> Oracle:
    return _elementwise(
        lambda m, x, b, t: where(b * x > t, x, _softplus(m, b * x) / b), float(beta), float(threshold)
    )


def softsign() -> Oracle:
    return _elementwise(lambda m, x: x / (1 + _abs(x)), limits=(-1.0, 1.0))


def tanhshrink() -> Oracle:
    def fn(m, x):
        # NOTE: x - tanh(x) cancels to x^3/3 near 0; direct evaluation loses log10(3 / x^2) digits,
        # everything for |x| below 1e-20 even in mpmath at 40 digits (it returned 0 there). Near 0 the
        # Taylor series is used instead: truncated after x^11 its relative error is 0.011 * x^10, so
        # below 1e-12 at |x| < 0.1 (the float64 backend: float32 results need 6e-8) and below 1e-22 at
        # |x| < 0.01 (mpmath: float64 results need 1e-16). Above those, direct evaluation keeps 13
        # significant digits in float64 and 35 in mpmath.
        one = m.const("1")
        x2 = x * x
        series = x * x2 * (one / 3 + x2 * (-2 * one / 15 + x2 * (17 * one / 315 + x2 * (
            -62 * one / 2835 + x2 * 1382 * one / 155925))))
        small = np.abs(x) < (0.1 if m.name == "float64" else 0.01)
        return np.where(small, series, x - m.tanh(x))
    return _elementwise(fn)


def softshrink(lambd: float) -> Oracle:
    return _elementwise(
        lambda m, x, l: where(x > l, x - l, where(x < -l, x + l, 0.0)), float(lambd)
    )


def hardshrink(lambd: float) -> Oracle:
    return _elementwise(lambda m, x, l: where((x > l) | (x < -l), x, 0.0), float(lambd))


def logsigmoid() -> Oracle:
    return _elementwise(lambda m, x: -_softplus(m, -x))


def threshold(th: float, value: float) -> Oracle:
    return _elementwise(lambda m, x, t, v: where(x > t, x, v), float(th), float(value))


def prelu(weights: tuple[float, ...], channel_axis: int = 1) -> Oracle:
    def fn(m, x, w):
        w = np.asarray(w, dtype=object if m is PRECISE else np.float64)
        if w.size > 1:
            shape = [1] * x.ndim
            shape[channel_axis] = w.size
            w = w.reshape(shape)
        else:
            w = w.reshape(())
        return where(x > 0, x, w * x)

    return _elementwise(fn, tuple(float(v) for v in weights))


def glu(dim: int = -1) -> Oracle:
    def fn(m, x):
        a, b = np.split(x, 2, axis=dim)
        return a * _sigmoid(m, b)

    return Oracle(fn, elementwise=False)


def log_softmax(dim: int) -> Oracle:
    def fn(m, x):
        shifted = x - np.max(x, axis=dim, keepdims=True)
        return shifted - m.log(np.sum(m.exp(shifted), axis=dim, keepdims=True))

    return Oracle(fn, elementwise=False)


def softmax(dim: int, negate: bool = False) -> Oracle:
    def fn(m, x):
        x = -x if negate else x
        e = m.exp(x - np.max(x, axis=dim, keepdims=True))
        return e / np.sum(e, axis=dim, keepdims=True)

    return Oracle(fn, elementwise=False)
