"""Exporters: module -> artifact file. They return an ExportResult and never raise."""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from actexport.capture import quiet
from actexport.files import root_cause
from actexport.status import Stage

if TYPE_CHECKING:
    from actexport.exporters.onnx import OnnxExporter


@dataclass(frozen=True)
class ExportResult:
    """What one export produced: a file, or the reason there is none.

    `unavailable` is set when the installed torch does not offer the format at all (not a failure
    of this module); `error` when the format exists but exporting this module failed.
    """

    format: str
    path: Path | None
    exporter: str
    error: str | None = None
    unavailable: str | None = None
    opset: int | None = None
    seconds: float = 0.0
    log: str = ""
    inputs: tuple[dict, ...] = ()
    outputs: tuple[dict, ...] = ()
    details: dict = field(default_factory=dict)
    cache: str = ""  # "hit", "stored", or why the export cache was not used (see cache.py)
    # Where a missing artifact went missing: "export" (the exporter), "crash" (its process died or
    # hung), and for a deployed folder "unlisted", "missing" or "integrity".
    stage: Stage = Stage.EXPORT
    environmental: bool = False  # the failure came from the machine (files, memory), never cached
    onnx: OnnxExporter | None = None  # what made an ONNX artifact; None for other formats, or when unknown

    @property
    def ok(self) -> bool:
        return self.path is not None and self.error is None and self.unavailable is None

    def record(self, row_id: str, dtype: str, shapes: bool = False) -> dict:
        """The report's record of this export (`shapes`: with its inputs' and outputs' names and dims)."""
        return {"activation": row_id, "format": self.format, "dtype": dtype, "exporter": self.exporter,
                "opset": self.opset, "ok": self.ok, "error": self.error, "unavailable": self.unavailable,
                "seconds": round(self.seconds, 3), "cache": self.cache,
                **({"inputs": list(self.inputs), "outputs": list(self.outputs)} if shapes else {}),
                **({"log": self.log[-4000:]} if not self.ok and self.log else {}), **self.details,
                **({"stage": self.stage} if self.stage != Stage.EXPORT else {}),
                **({"environment": True} if self.environmental else {})}


def guarded(format: str, exporter: str, fn: Callable[[], ExportResult]) -> ExportResult:
    """Runs an export with its console noise captured; any exception becomes an error result."""
    start = time.perf_counter()
    captured = None
    try:
        with quiet() as captured:
            result = fn()
    except Exception as e:  # noqa: BLE001  (an exporter failure is a result, not a crash)
        # NOTE: a file that cannot be written, memory or time running out says nothing about the
        # exporter: such a failure is marked so that the export cache never keeps it.
        result = ExportResult(format, None, exporter, error=root_cause(e),
                              environmental=_environmental(e))
    log = captured.text if captured is not None else ""
    return replace(result, seconds=time.perf_counter() - start, log=result.log or log)


def _environmental(e: BaseException | None) -> bool:
    seen = 0
    while e is not None and seen < 50:
        if isinstance(e, (OSError, MemoryError)):
            return True
        e, seen = e.__cause__ or e.__context__, seen + 1
    return False


def tensor_spec(name: str, t, dynamic: list[int]) -> dict:
    """{name, dtype, shape} of a torch tensor, its dynamic dims named d<i>."""
    shape = [f"d{i}" if i in dynamic else int(n) for i, n in enumerate(t.shape)]
    return {"name": name, "dtype": str(t.dtype).removeprefix("torch."), "shape": shape}


def dynamic_dims(shape: tuple[int, ...], static_dims: tuple[int, ...]) -> list[int]:
    """The dims of an example shape that the artifact leaves dynamic."""
    return [i for i in range(len(shape)) if i not in static_dims]
