"""torch.export programs (.pt2) loaded from the file with torch.export.load."""

from __future__ import annotations

import contextlib
from pathlib import Path

import torch

from actexport.capture import quiet
from actexport.exporters.torch_export import unavailable as format_unavailable
from actexport.runtimes.torch_common import TorchModuleRuntime


@contextlib.contextmanager
def weights_only():
    """Every torch.load inside the block uses torch's restricted unpickler (weights_only=True).

    torch.export.load unpickles pickled weights and constants with weights_only=False, and falls back
    to it when the safe loader refuses: a crafted .pt2 file could run any Python on load. Inside this
    block such a file fails to load instead.
    """
    # NOTE: patched for the whole process, which is a worker process of its own (isolate.py).
    original = torch.load

    def safe_load(*args, **kwargs):
        kwargs["weights_only"] = True
        return original(*args, **kwargs)

    torch.load = safe_load
    try:
        yield
    finally:
        torch.load = original


class ExportedRuntime(TorchModuleRuntime):
    format = "pt2"

    def __init__(self, device: str = "cpu") -> None:
        super().__init__(device)
        self.name = f"pt2:{device}"

    def unavailable(self) -> str | None:
        return format_unavailable() or super().unavailable()

    def load(self, path: Path) -> None:
        with quiet(), weights_only():
            self.module = torch.export.load(str(path)).module().to(self.device)
