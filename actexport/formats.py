"""The artifact formats: one row each, naming the file an artifact goes to and the exporter that writes it.

An exporter is a module found by its name in the row (imported only when an export runs, so that
reading this table costs nothing) with two functions:

    export(act, dtype, path, **settings) -> ExportResult   # never raises; settings: opset, exporter
    label(exporter) -> str                                 # how results and manifests name it

Adding a format is a new exporter module, a row here, and a runtime that runs it (runtimes/).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from actexport.catalog import Activation
    from actexport.exporters import ExportResult


@dataclass(frozen=True)
class Format:
    name: str  # as --formats, manifests and reports spell it
    filename: str  # the artifact's file name in its activation's folder
    exporter: str  # the module that exports to it
    opsets: bool = False  # made for an operator set: one artifact per --opset, and an exporter choice
    # Export each artifact in a process that has exported nothing else: TorchScript names a class
    # variant by how many the process scripted before (___torch_mangle_N), so bytes depend on order.
    fresh_process: bool = False

    def file_for(self, opset: int | None = None) -> str:
        """The file name; with several opsets, every opset but the first gets its own."""
        if opset is None or not self.opsets:
            return self.filename
        stem, dot, ext = self.filename.rpartition(".")
        return f"{stem}.opset{opset}{dot}{ext}"

    def key_opset(self, opset: int | None) -> int | None:
        """The opset as part of an artifact's identity: None for a format that has none."""
        return opset if self.opsets else None

    def _module(self):
        return importlib.import_module(self.exporter)

    def export(self, act: Activation, dtype: str, path: Path, opset: int | None, exporter: str) -> ExportResult:
        settings = {"opset": opset, "exporter": exporter} if self.opsets else {}
        return self._module().export(act, dtype, path, **settings)

    def label(self, exporter: str) -> str:
        return self._module().label(exporter)


REGISTRY: tuple[Format, ...] = (
    Format("onnx", "model.onnx", "actexport.exporters.onnx", opsets=True),
    Format("torchscript", "model.torchscript.pt", "actexport.exporters.torchscript", fresh_process=True),
    Format("pt2", "model.pt2", "actexport.exporters.torch_export"),
)

FORMATS = tuple(f.name for f in REGISTRY)


def format_of(name: str) -> Format:
    for f in REGISTRY:
        if f.name == name:
            return f
    raise ValueError(f"unknown format {name!r}; valid: {', '.join(FORMATS)}")


def takes_opset(name: str) -> bool:
    return format_of(name).opsets
