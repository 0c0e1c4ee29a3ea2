"""Dtype names to numpy and torch, and tensors between the two (bfloat16 included).

A leaf module: it imports nothing of actexport, so the catalog, the oracle and the comparisons can all use it.
"""

from __future__ import annotations

import numpy as np
import torch


def np_dtype(name: str) -> np.dtype:
    if name == "bfloat16":
        import ml_dtypes  # optional: only needed for bfloat16

        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(name)


def finfo(name: str):
    """np.finfo, also for bfloat16 (numpy's own finfo does not know ml_dtypes' types)."""
    if name == "bfloat16":
        import ml_dtypes
        return ml_dtypes.finfo(ml_dtypes.bfloat16)
    return np.finfo(np.dtype(name))


def torch_dtype(name: str) -> torch.dtype:
    return getattr(torch, name)


def to_torch(x: np.ndarray) -> torch.Tensor:
    if x.dtype.name == "bfloat16":
        return torch.from_numpy(x.view(np.int16).copy()).view(torch.bfloat16)
    return torch.from_numpy(np.ascontiguousarray(x).copy())


def to_numpy(t: torch.Tensor) -> np.ndarray:
    t = t.detach().cpu().contiguous()
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().view(np_dtype("bfloat16"))
    return t.numpy()
