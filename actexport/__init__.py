"""actexport: export torch activations to ONNX, TorchScript and torch.export, and prove parity."""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

__all__ = ["CATALOG", "Activation", "Options", "ProviderUnavailable", "Report", "UsageError", "export", "verify"]

# NOTE: names are imported on first use (PEP 562), so `import actexport.isolate` does not pull in
# torch: the command line starts its worker processes' forkserver before importing torch itself.
_LAZY = {"CATALOG": "catalog", "Activation": "catalog", "UsageError": "catalog", "Report": "report",
         "Options": "verify", "ProviderUnavailable": "verify", "verify": "verify"}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f"actexport.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'actexport' has no attribute {name!r}")


def export(*args, **kwargs):
    """Exports activations to deployable artifacts; see `actexport.artifacts.export_all`."""
    from actexport.artifacts import export_all

    return export_all(*args, **kwargs)
