"""TorchScript export: torch.jit.script, falling back to torch.jit.trace (recorded which)."""

from __future__ import annotations

from pathlib import Path

import torch

from actexport.catalog import Activation
from actexport.exporters import ExportResult, dynamic_dims, guarded, tensor_spec
from actexport.files import atomic_write
from actexport.inputs import example, torch_dtype


def unavailable() -> str | None:
    if not all(hasattr(torch.jit, f) for f in ("script", "trace", "save", "load")):
        return f"torch {torch.__version__} no longer offers TorchScript (torch.jit.script/save)"
    return None


def label(exporter: str = "") -> str:
    """How results name this exporter when it produced nothing (formats.py)."""
    return "torch.jit"


def export(act: Activation, dtype: str, path: Path) -> ExportResult:
    reason = unavailable()
    if reason:
        return ExportResult("torchscript", None, label(), unavailable=reason)

    def run() -> ExportResult:
        module = act.module().to(torch_dtype(dtype))
        x = example(act, dtype)
        try:
            scripted, how, why = torch.jit.script(module), "torch.jit.script", None
        except Exception as e:  # noqa: BLE001  (script does not cover every module; trace does)
            scripted, how, why = torch.jit.trace(module, (x,)), "torch.jit.trace", f"script failed: {e}"
        atomic_write(path, lambda tmp: torch.jit.save(scripted, str(tmp)))
        details = {"script_error": why} if why else {}
        dims = dynamic_dims(act.shape, act.static_dims) if how == "torch.jit.script" else []
        with torch.no_grad():
            y = module(x)
        return ExportResult("torchscript", path, how, inputs=(tensor_spec("input", x, dims),),
                            outputs=(tensor_spec("output", y, dims),), details=details)

    return guarded("torchscript", label(), run)

