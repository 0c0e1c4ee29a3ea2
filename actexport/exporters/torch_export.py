"""torch.export programs (.pt2) with every dim the activation does not fix left dynamic."""

from __future__ import annotations

from pathlib import Path

import torch

from actexport.catalog import Activation
from actexport.exporters import ExportResult, dynamic_dims, guarded, tensor_spec
from actexport.files import atomic_write
from actexport.inputs import example, torch_dtype


def unavailable() -> str | None:
    if not hasattr(torch, "export") or not hasattr(torch.export, "save"):
        return f"torch {torch.__version__} has no torch.export.save"
    return None


def label(exporter: str = "") -> str:
    """How results name this exporter when it produced nothing (formats.py)."""
    return "torch.export"


def export(act: Activation, dtype: str, path: Path) -> ExportResult:
    reason = unavailable()
    if reason:
        return ExportResult("pt2", None, label(), unavailable=reason)

    def run() -> ExportResult:
        module = act.module().to(torch_dtype(dtype))
        x = example(act, dtype)
        dims = dynamic_dims(act.shape, act.static_dims)
        spec = ({i: torch.export.Dim.AUTO for i in dims},)
        program = torch.export.export(module, (x,), dynamic_shapes=spec)
        atomic_write(path, lambda tmp: torch.export.save(program, str(tmp)))
        with torch.no_grad():
            y = module(x)
        return ExportResult("pt2", path, "torch.export.export", inputs=(tensor_spec("input", x, dims),),
                            outputs=(tensor_spec("output", y, dims),))

    return guarded("pt2", label(), run)
