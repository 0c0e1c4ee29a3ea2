"""torch.export programs (.pt2) loaded from the file with torch.export.load."""

from __future__ import annotations

from pathlib import Path

import torch

from actexport.capture import quiet
from actexport.exporters.torch_export import unavailable as format_unavailable
from actexport.runtimes.torch_common import TorchModuleRuntime


class ExportedRuntime(TorchModuleRuntime):
    format = "pt2"

    def __init__(self, device: str = "cpu") -> None:
        super().__init__(device)
        self.name = f"pt2:{device}"

    def unavailable(self) -> str | None:
        return format_unavailable() or super().unavailable()

    def load(self, path: Path) -> None:
        with quiet():
            self.module = torch.export.load(str(path)).module().to(self.device)
