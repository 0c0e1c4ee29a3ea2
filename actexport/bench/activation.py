"""The rows of one activation: eager PyTorch on each device, then every artifact in every runtime,
each beside the floor and eager."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from actexport.bench.inputs import bench_input, io_bytes
from actexport.bench.report import BenchReport
from actexport.bench.row import BenchRow
from actexport.bench.timing import measure
from actexport.catalog import Activation
from actexport.exporters import ExportResult
from actexport.exporters.onnx import OnnxExporter
from actexport.files import error_text, root_cause
from actexport.formats import takes_opset
from actexport.inputs import to_torch, torch_dtype
from actexport.runtimes import ProviderMissing, Runtime, RuntimeUnavailable, for_format

if TYPE_CHECKING:
    from actexport.runtimes.eager import EagerRuntime

Progress = Callable[[str], None]


class ActivationBench:
    """The rows of one activation: eager and eager.out per device, then every artifact in every runtime."""

    def __init__(self, act: Activation, report: BenchReport, formats, providers, sizes, dtype, threads,
                 tick: Progress, save_optimized: Path | None = None) -> None:
        self.act, self.report, self.formats, self.providers = act, report, formats, providers
        self.save_optimized = save_optimized
        self.dtype, self.threads, self.tick = dtype, threads, tick
        self.inputs = {n: bench_input(act, n, dtype) for n in sizes}
        self.traffic = {n: self._traffic(x) for n, x in self.inputs.items()}
        self.rows: list[BenchRow] = []

    def run(self, export: Callable[[Activation, str, str], ExportResult], exporters: tuple[str, ...]) -> None:
        for device in self.providers:
            self._eager(device)
        for fmt in self.formats:
            for i, exporter in enumerate(exporters if takes_opset(fmt) else exporters[:1]):
                result = export(self.act, fmt, exporter)
                if fmt == "onnx" and result.ok and i == 0:
                    self.report.graphs[self.act.id] = self._graph(result)
                graphs = OnnxExporter.parse(exporter).graphs if takes_opset(fmt) else ""
                # NOTE: a runtime with a threads setting gets it here; torch's is set for the process
                for rt in for_format(fmt, self.providers, reference=False, threads=self.threads):
                    # NOTE: the rows of a second ONNX exporter are timed right after the first's, on the
                    # same inputs; tables name them after their graph profile (ort+candidates:cpu).
                    label = rt.name.replace(":", f"+{graphs}:", 1) if i else ""
                    self._artifact(rt, result, graphs, label)
        self.report.rows.extend(self._with_ratios())

    def _traffic(self, x: np.ndarray) -> tuple[int, int] | None:
        """(bytes read, bytes written) of one call, from the real output of the module on CPU."""
        try:
            with torch.no_grad():
                y = self.act.module().to(torch_dtype(self.dtype))(to_torch(x))
            return io_bytes(x, y)
        except Exception:  # noqa: BLE001  (the eager rows say why the module does not run)
            return None

    def _graph(self, result: ExportResult) -> dict:
        from actexport.graphs import analyse
        try:
            assert result.path is not None  # run() passes an ok result
            keep = Path(self.save_optimized) / f"{self.act.id}.optimized.onnx" if self.save_optimized else None
            return {"opset": result.opset, **analyse(result.path, keep)}
        except Exception as e:  # noqa: BLE001
            return {"opset": result.opset, "error": root_cause(e)}

    def _row(self, fmt: str, runtime: str, n: int, status: str, reason: str = "", **kw) -> BenchRow:
        x = self.inputs[n]
        read, written = self.traffic[n] or (0, 0)
        return BenchRow(self.act.id, fmt, runtime, n, self.dtype, status, reason, int(x.size), tuple(x.shape),
                        bytes_read=read, bytes_written=written, **kw)

    def _measured(self, fmt: str, runtime: str, n: int, fn: Callable[[], object], **kw) -> BenchRow:
        t = measure(fn, self.report.rule)
        return self._row(fmt, runtime, n, "ok", median_s=t.median_s, p90_s=t.p90_s, p99_s=t.p99_s,
                         iterations=t.iterations, converged=t.converged, warmup=t.warmup, **kw)

    def _all_sizes(self, fmt: str, runtime: str, status: str, reason: str, **kw) -> None:
        for n in self.inputs:
            row = self._row(fmt, runtime, n, status, reason, **kw)
            self.rows.append(row)
            self.tick(f"{self.act.id} {row.column} {n}")

    def _eager(self, device: str) -> None:
        from actexport.runtimes.eager import EagerRuntime
        from actexport.runtimes.torch_common import device_unavailable
        name, out_name = f"eager:{device}", f"eager.out:{device}"
        reason = device_unavailable(device)
        if reason:
            self._all_sizes("eager", name, "unavailable", reason)
            self._all_sizes("eager", out_name, "unavailable", reason)
            return
        try:
            rt = EagerRuntime(self.act, self.dtype, device)
        except Exception as e:  # noqa: BLE001
            self._all_sizes("eager", name, "error", f"{error_text(e, 300)}")
            self._all_sizes("eager", out_name, "error", f"{error_text(e, 300)}")
            return
        self._settings(name, rt)
        try:
            for n, x in self.inputs.items():
                self._eager_size(rt, n, x, name, out_name)
        finally:
            rt.close()

    def _eager_size(self, rt: EagerRuntime, n: int, x: np.ndarray, name: str, out_name: str) -> None:
        from actexport.runtimes.torch_common import out_variant
        device = rt.device
        try:
            self.rows.append(self._measured("eager", name, n, rt.prepare(x), ran_on=device))
        except Exception as e:  # noqa: BLE001
            self.rows.append(self._row("eager", name, n, "error", f"{error_text(e, 300)}"))
        self.tick(f"{self.act.id} {name} {n}")
        try:
            variant = out_variant(rt.module, to_torch(x).to(device))
            if variant.call is None:
                self.rows.append(self._row("eager", out_name, n, "unavailable", variant.reason, op=variant.op))
            else:
                self.rows.append(self._measured("eager", out_name, n, variant.call, ran_on=device, op=variant.op))
        except Exception as e:  # noqa: BLE001
            self.rows.append(self._row("eager", out_name, n, "error", f"{error_text(e, 300)}"))
        self.tick(f"{self.act.id} {out_name} {n}")

    def _artifact(self, rt: Runtime, result: ExportResult, graphs: str, label: str) -> None:
        fmt, name, tag = result.format, rt.name, {"graphs": graphs, "label": label}
        if result.unavailable or not result.ok:
            self._all_sizes(fmt, name, "unavailable", f"no artifact: {result.unavailable or result.error}", **tag)
            return
        assert result.path is not None  # result.ok says so
        reason = rt.unavailable()
        if reason:
            self._all_sizes(fmt, name, "unavailable", reason, **tag)
            return
        try:
            rt.load(result.path)
        except RuntimeUnavailable as e:
            self._all_sizes(fmt, name, "unavailable", str(e), **tag)
            if isinstance(e, ProviderMissing):  # it fell back to another device: no figure, and said so
                self.report.provider_problems.append(f"{label or name}: {e}")
            return
        except Exception as e:  # noqa: BLE001
            self._all_sizes(fmt, name, "error", f"load: {error_text(e, 300)}", **tag)
            rt.close()
            return
        self._settings(label or name, rt)
        try:
            for n, x in self.inputs.items():
                try:
                    self.rows.append(self._measured(fmt, name, n, rt.prepare(x), ran_on=rt.ran_on, **tag))
                except RuntimeUnavailable as e:
                    self.rows.append(self._row(fmt, name, n, "unavailable", str(e), **tag))
                except Exception as e:  # noqa: BLE001
                    self.rows.append(self._row(fmt, name, n, "error", f"{error_text(e, 300)}", **tag))
                self.tick(f"{self.act.id} {label or name} {n}")
        finally:
            # NOTE: closing drops the session and its (spinning) thread pool before the next runtime is timed.
            rt.close()

    def _settings(self, name: str, rt: Runtime) -> None:
        """What the runtime runs with (provider options, card), once per runtime in the environment."""
        if rt.settings:
            self.report.environment.setdefault("runtimes", {}).setdefault(name, rt.settings)

    def _with_ratios(self) -> list[BenchRow]:
        eager = {(r.device, r.size): r.median_s for r in self.rows if r.runtime.startswith("eager:") and r.median_s}
        out = []
        for r in self.rows:
            floor = self.report.floor(r.device, r.size)
            floor_s = floor.seconds(r.bytes) if floor and self.traffic[r.size] else None
            base = eager.get((r.device, r.size))
            out.append(replace(
                r, floor_s=floor_s,
                ratio_floor=r.median_s / floor_s if r.median_s and floor_s else None,
                ratio_eager=r.median_s / base if r.median_s and base else None))
        return out
