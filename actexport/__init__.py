"""actexport: export torch activations to ONNX, TorchScript and torch.export, and prove parity."""

from __future__ import annotations

from actexport.catalog import CATALOG, Activation, UsageError
from actexport.report import Report
from actexport.verify import Options, ProviderUnavailable, verify

__version__ = "0.1.0"

__all__ = ["CATALOG", "Activation", "Options", "ProviderUnavailable", "Report", "UsageError", "export", "verify"]


def export(*args, **kwargs):
    """Exports activations to deployable artifacts; see `actexport.artifacts.export_all`."""
    from actexport.artifacts import export_all  # noqa: PLC0415

    return export_all(*args, **kwargs)
