"""Runtimes: load an artifact, run it, close it. `unavailable()` says why one cannot run here."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np


DEVICES = ("cpu", "cuda")  # what --providers accepts: the devices a runtime can run on


class RuntimeUnavailable(RuntimeError):
    """The runtime cannot run this artifact here (no kernel for a dtype, provider missing, ...)."""


class ProviderMissing(RuntimeUnavailable):
    """The provider or device itself does not run here (not this artifact's doing): asked for by
    name, that is exit code 4, never a figure from another device."""


class Runtime:
    """Three small hooks behind `infer()`: `load(path)`, `run(x)`, `close()`.

    Attributes:
        name: shown in reports, e.g. "ort:cpu" or "torchscript:cpu".
        format: the artifact format it runs.
        device: "cpu" or "cuda".
    """

    name = ""
    format = ""
    device = "cpu"
    ran_on = ""  # set by load(): what really runs (a provider, a device)
    settings: dict | None = None  # set by load(): what it runs with (provider options, device name), for the report

    def unavailable(self) -> str | None:
        """None when this runtime can run here, else the reason it cannot."""
        return self.provider_unavailable()

    def provider_unavailable(self) -> str | None:
        """None when the provider or device this runtime runs on works here, else why not."""
        return None

    def load(self, path: Path) -> None:
        raise NotImplementedError

    def run(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def close(self) -> None:
        """Releases what load() took; the default has nothing to release."""

    def prepare(self, x: np.ndarray) -> Callable[[], object]:
        """A zero-argument callable that runs one inference on `x`, for timing.

        The input is converted and placed on the device once, here; the callable reuses it, writes
        into a preallocated output where the runtime can, and returns only when the device has
        finished (so timing it is honest). It returns the runtime's own output object. The default
        simply calls `run(x)`.
        """
        return lambda: self.run(x)

    def infer(self, x: np.ndarray) -> np.ndarray:
        """Runs one input and checks that the output keeps the input's dtype."""
        y = np.asarray(self.run(x))
        if y.dtype != x.dtype:
            raise TypeError(f"{self.name} returned {y.dtype} for a {x.dtype} input")
        return y

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def for_format(format: str, providers: tuple[str, ...], reference: bool = True,
               ort_threads: int | None = None) -> list[Runtime]:
    """The runtimes that run one artifact format: one per provider (device), and for ONNX the
    specification's reference evaluator first (its verdict is needed to judge onnxruntime).
    `ort_threads` sets onnxruntime's intra-op threads (None: its default, one per core)."""
    if format == "onnx":
        from actexport.runtimes.onnxrt import OrtRuntime
        from actexport.runtimes.reference import ReferenceRuntime
        return ([ReferenceRuntime()] if reference else []) + [OrtRuntime(p, intra_op_threads=ort_threads) for p in providers]
    if format == "torchscript":
        from actexport.runtimes.torchscript import TorchScriptRuntime
        return [TorchScriptRuntime(p) for p in providers]
    if format == "pt2":
        from actexport.runtimes.exported import ExportedRuntime
        return [ExportedRuntime(p) for p in providers]
    raise ValueError(f"no runtime for format {format!r}")
