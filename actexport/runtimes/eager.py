"""Eager PyTorch: the module as the user trained it, the reference every artifact is compared with."""

from __future__ import annotations

from actexport.catalog import Activation
from actexport.inputs import torch_dtype
from actexport.runtimes.torch_common import TorchModuleRuntime


class EagerRuntime(TorchModuleRuntime):
    family = "eager"  # not in RUNTIMES: it runs the module itself, not an artifact
    format = "eager"

    def __init__(self, act: Activation, dtype: str, device: str = "cpu") -> None:
        super().__init__(device)
        self.module = act.module().to(device=device, dtype=torch_dtype(dtype))
