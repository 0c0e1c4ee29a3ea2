"""TorchScript artifacts loaded from the file with torch.jit.load."""

from __future__ import annotations

from pathlib import Path

import torch

from actexport.capture import quiet
from actexport.exporters.torchscript import unavailable as format_unavailable
from actexport.runtimes.torch_common import TorchModuleRuntime


class TorchScriptRuntime(TorchModuleRuntime):
    family = "torchscript"
    format = "torchscript"

    def unavailable(self) -> str | None:
        return format_unavailable() or super().unavailable()

    def load(self, path: Path) -> None:
        with quiet():  # torch.jit.load warns that TorchScript is deprecated
            self.module = torch.jit.load(str(path), map_location=self.device).eval()
