"""What the torch-based runtimes share: device checks and tensor conversion."""

from __future__ import annotations

import numpy as np
import torch

from actexport.inputs import to_numpy, to_torch
from actexport.runtimes import Runtime


def device_unavailable(device: str) -> str | None:
    if device == "cuda" and not torch.cuda.is_available():
        return f"torch {torch.__version__} sees no CUDA device (torch.cuda.is_available() is False)"
    return None


class TorchModuleRuntime(Runtime):
    """Runs a torch callable (eager, scripted or exported) on one device, without autograd."""

    def __init__(self, device: str = "cpu") -> None:
        self.device = device
        self.ran_on = device
        self.module = None

    def unavailable(self) -> str | None:
        return device_unavailable(self.device)

    def run(self, x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            y = self.module(to_torch(x).to(self.device))
        if self.device == "cuda":
            torch.cuda.synchronize()
        return to_numpy(y)

    def close(self) -> None:
        self.module = None
