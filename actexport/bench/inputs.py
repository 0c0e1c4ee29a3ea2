"""What one bench row feeds its activation: an input of about n elements in the example's layout,
and the bytes one call reads and writes."""

from __future__ import annotations

import math
import zlib

import numpy as np

from actexport.catalog import Activation
from actexport.inputs import np_dtype


def bench_input(act: Activation, n: int, dtype: str) -> np.ndarray:
    """About n elements in the layout of the activation's example, seeded uniform over its domain.

    The first dim the activation leaves dynamic grows; every other dim keeps the example's size
    (so static dims such as PReLU's channels, and the reduced dim of a softmax, stay as exported),
    and n is rounded down to whole rows.
    """
    shape = list(act.shape)
    grow = next((i for i in range(len(shape)) if i not in act.static_dims), 0)
    rest = math.prod(d for i, d in enumerate(shape) if i != grow)
    shape[grow] = max(1, n // rest)
    rng = np.random.default_rng(zlib.crc32(f"{act.id}/bench/{n}".encode()))
    lo, hi = act.domain
    return rng.uniform(lo, hi, size=tuple(shape)).astype(np_dtype(dtype))


def io_bytes(x, y) -> tuple[int, int]:
    """Bytes read and written by one call: the real input and output tensors (numpy or torch).

    GLU writes half of what it reads; softmax reads its input once as far as DRAM is concerned.
    """
    # NOTE: parameters (PReLU's weights: a few bytes) are left out; they stay in cache.
    return int(x.nbytes), int(y.nbytes)
