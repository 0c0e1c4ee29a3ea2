"""Exact float64 definitions of each activation, written from the mathematics (numpy, not torch)."""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

Oracle = Callable[[np.ndarray], np.ndarray]

# NOTE: numpy has no erf/erfc; math's are correctly rounded to within 1 ulp in float64, and the
# batteries are a few thousand values, so a vectorised scalar call costs milliseconds.
_erfc = np.vectorize(math.erfc, otypes=[np.float64])

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def _f64(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def _keep_nan(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Piecewise definitions built with np.where drop NaN; a NaN input maps to NaN."""
    y = np.array(y, dtype=np.float64, copy=True)
    y[np.isnan(x)] = np.nan
    return y


def _softplus_unit(z: np.ndarray) -> np.ndarray:
    """log(1 + e^z) in the stable form max(z, 0) + log1p(e^-|z|)."""
    return np.maximum(z, 0.0) + np.log1p(np.exp(-np.abs(z)))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def elementwise(fn: Callable[[np.ndarray], np.ndarray]) -> Oracle:
    def oracle(x: np.ndarray) -> np.ndarray:
        x = _f64(x)
        with np.errstate(all="ignore"):
            return _keep_nan(x, fn(x))

    return oracle


def sigmoid() -> Oracle:
    return elementwise(_sigmoid)


def tanh() -> Oracle:
    return elementwise(np.tanh)


def relu() -> Oracle:
    return elementwise(lambda x: np.where(x > 0, x, 0.0))


def leaky_relu(slope: float) -> Oracle:
    return elementwise(lambda x: np.where(x > 0, x, slope * x))


def hardtanh(lo: float, hi: float) -> Oracle:
    return elementwise(lambda x: np.clip(x, lo, hi))


def elu(alpha: float, scale: float = 1.0) -> Oracle:
    return elementwise(lambda x: scale * np.where(x > 0, x, alpha * np.expm1(x)))


def selu() -> Oracle:
    return elu(SELU_ALPHA, SELU_SCALE)


def celu(alpha: float) -> Oracle:
    return elementwise(lambda x: np.where(x > 0, x, alpha * np.expm1(x / alpha)))


def gelu() -> Oracle:
    # x * Phi(x) with Phi(x) = erfc(-x / sqrt(2)) / 2, which keeps its accuracy for x << 0.
    return elementwise(lambda x: 0.5 * x * _erfc(-x / math.sqrt(2.0)))


def gelu_tanh() -> Oracle:
    c = math.sqrt(2.0 / math.pi)
    return elementwise(lambda x: 0.5 * x * (1.0 + np.tanh(c * (x + 0.044715 * x**3))))


def silu() -> Oracle:
    return elementwise(lambda x: x * _sigmoid(x))


def mish() -> Oracle:
    return elementwise(lambda x: x * np.tanh(_softplus_unit(x)))


def hardswish() -> Oracle:
    return elementwise(lambda x: x * np.clip(x + 3.0, 0.0, 6.0) / 6.0)


def hardsigmoid() -> Oracle:
    return elementwise(lambda x: np.clip(x + 3.0, 0.0, 6.0) / 6.0)


def softplus(beta: float, threshold: float) -> Oracle:
    return elementwise(lambda x: np.where(beta * x > threshold, x, _softplus_unit(beta * x) / beta))


def softsign() -> Oracle:
    return elementwise(lambda x: x / (1.0 + np.abs(x)))


def tanhshrink() -> Oracle:
    return elementwise(lambda x: x - np.tanh(x))


def softshrink(lambd: float) -> Oracle:
    return elementwise(lambda x: np.where(x > lambd, x - lambd, np.where(x < -lambd, x + lambd, 0.0)))


def hardshrink(lambd: float) -> Oracle:
    return elementwise(lambda x: np.where(np.abs(x) > lambd, x, 0.0))


def logsigmoid() -> Oracle:
    return elementwise(lambda x: -_softplus_unit(-x))


def threshold(th: float, value: float) -> Oracle:
    return elementwise(lambda x: np.where(x > th, x, value))


def prelu(weights: tuple[float, ...], channel_axis: int = 1) -> Oracle:
    def fn(x: np.ndarray) -> np.ndarray:
        w = np.asarray(weights, dtype=np.float64)
        if w.size > 1:
            shape = [1] * x.ndim
            shape[channel_axis] = w.size
            w = w.reshape(shape)
        return np.where(x > 0, x, w * x)

    return elementwise(fn)


def glu(dim: int = -1) -> Oracle:
    def oracle(x: np.ndarray) -> np.ndarray:
        a, b = np.split(_f64(x), 2, axis=dim)
        with np.errstate(all="ignore"):
            return a * _sigmoid(b)

    return oracle


def log_softmax(dim: int) -> Oracle:
    def oracle(x: np.ndarray) -> np.ndarray:
        x = _f64(x)
        with np.errstate(all="ignore"):
            shifted = x - np.max(x, axis=dim, keepdims=True)
            return shifted - np.log(np.sum(np.exp(shifted), axis=dim, keepdims=True))

    return oracle


def softmax(dim: int, negate: bool = False) -> Oracle:
    def oracle(x: np.ndarray) -> np.ndarray:
        x = -_f64(x) if negate else _f64(x)
        with np.errstate(all="ignore"):
            e = np.exp(x - np.max(x, axis=dim, keepdims=True))
            return e / np.sum(e, axis=dim, keepdims=True)

    return oracle
