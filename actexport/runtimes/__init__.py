"""Runtimes: load an artifact, run it, close it. `unavailable()` says why one cannot run here.

RUNTIMES lists every runtime class as "module:Class", imported when a cell needs it. A class says
which format it runs, on which devices, and whether it is the format's specification (a second
opinion that decides whether the export or a runtime is at fault). A new runtime is one module and
one line here, or, from outside the package, `register()` called by a plugin ($ACTEXPORT_PLUGINS),
so that worker processes know it too.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import cast

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
        family: what reports call it; a cell's runtime is "family:device" ("ort:cuda"), or the
            family alone for a runtime without devices.
        format: the artifact format it runs (formats.py).
        devices: the devices (of DEVICES) it can run on; () when it has no device to choose.
        specification: it evaluates the format as its specification defines it; it runs once, on
            CPU, and its outputs say whether the export or another runtime deviates.
        device: the device this instance runs on.
    """

    family = ""
    format = ""
    devices: tuple[str, ...] = DEVICES
    specification = False
    graph_analysis = False  # ONNX on onnxruntime: verify also records what graph optimisation changed
    device = "cpu"
    ran_on = ""  # set by load(): what really runs (a provider, a device)
    settings: dict | None = None  # set by load(): what it runs with (provider options, device name), for the report

    @classmethod
    def on(cls, device: str, threads: int | None = None) -> Runtime:
        """An instance for `device`; `threads`: intra-op threads where the runtime has a setting."""
        # NOTE: by convention a runtime with devices takes the device as its first argument
        # (TorchModuleRuntime, OrtRuntime); the base class itself takes none.
        make = cast(Callable[..., Runtime], cls)
        return make(device) if cls.devices else make()

    @property
    def name(self) -> str:
        return f"{self.family}:{self.device}" if self.devices else self.family

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


RUNTIMES: list[str] = [
    "actexport.runtimes.reference:ReferenceRuntime",
    "actexport.runtimes.onnxrt:OrtRuntime",
    "actexport.runtimes.torchscript:TorchScriptRuntime",
    "actexport.runtimes.exported:ExportedRuntime",
]


def _load(target: str) -> type[Runtime]:
    module, _, name = target.partition(":")
    cls = getattr(importlib.import_module(module), name, None)
    if not (isinstance(cls, type) and issubclass(cls, Runtime)):
        raise TypeError(f"{target} is not a Runtime class")
    return cls


def register(target: str) -> None:
    """Adds a runtime class, "package.module:Class", after the built-in ones (once)."""
    from actexport.formats import FORMATS
    cls = _load(target)
    if cls.format not in FORMATS:
        raise ValueError(f"{target} runs format {cls.format!r}; valid: {', '.join(FORMATS)}")
    unknown = [d for d in cls.devices if d not in DEVICES]
    if not cls.family or unknown:
        raise ValueError(f"{target} needs a family and devices among {', '.join(DEVICES)} (got "
                         f"{cls.family!r}, {cls.devices!r})")
    taken = {c.family for c in map(_load, RUNTIMES) if c is not cls}
    if cls.family in taken or cls.family == "eager":
        raise ValueError(f"{target}: a runtime called {cls.family!r} exists already")
    if target not in RUNTIMES:
        RUNTIMES.append(target)


def for_format(format: str, providers: tuple[str, ...], reference: bool = True,
               threads: int | None = None) -> list[Runtime]:
    """The runtimes that run one artifact format, in RUNTIMES order: one per device asked for that
    the runtime has, and the format's specification (once, when `reference`). `threads` sets
    intra-op threads where a runtime has the setting (None: its default, one per core)."""
    out: list[Runtime] = []
    for cls in map(_load, RUNTIMES):
        if cls.format != format:
            continue
        if cls.specification or not cls.devices:
            if reference or not cls.specification:
                out.append(cls.on("cpu", threads))
            continue
        out += [cls.on(device, threads) for device in providers if device in cls.devices]
    return out


def named(format: str, name: str, device: str, threads: int | None = None) -> Runtime:
    """The runtime a cell is named after ("ort:cpu"), as this process's registry has it."""
    for rt in for_format(format, (device,), reference=True, threads=threads):
        if rt.name == name:
            return rt
    raise RuntimeUnavailable(f"no runtime {name!r} for {format} in this process; a runtime from outside "
                             "actexport must be registered by a plugin ($ACTEXPORT_PLUGINS), which every "
                             "process imports")
