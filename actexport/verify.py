"""Orchestration only: builds the matrix activation x format x runtime x dtype and fills a Report."""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from actexport import artifacts as art
from actexport.catalog import DTYPES, FORMATS, Activation, UsageError, get, select
from actexport.compare import Comparison, badness, compare, merge
from actexport.exporters import ExportResult
from actexport.exporters.onnx import DEFAULT_OPSET, check_opset
from actexport.exporters.onnx import kind as onnx_kind
from actexport.inputs import Battery, batteries
from actexport.report import Cell, Report
from actexport.runtimes import Runtime, RuntimeUnavailable, for_format
from actexport.runtimes.eager import EagerRuntime

PROVIDERS = ("cpu", "cuda")
Progress = Callable[[str], None]


class ProviderUnavailable(RuntimeError):
    """A provider the user asked for explicitly cannot run here (exit code 4)."""


@dataclass(frozen=True)
class Options:
    formats: tuple[str, ...] = FORMATS
    providers: tuple[str, ...] = ("cpu",)
    dtypes: tuple[str, ...] = ("float32",)
    opset: int = DEFAULT_OPSET
    exporter: str = "dynamo"
    providers_explicit: bool = False

    def validate(self) -> None:
        for what, values, valid in (("format", self.formats, FORMATS), ("provider", self.providers, PROVIDERS),
                                    ("dtype", self.dtypes, DTYPES)):
            if not values:
                raise UsageError(f"no {what} given; valid: {', '.join(valid)}")
            bad = [v for v in values if v not in valid]
            if bad:
                raise UsageError(f"unknown {what} {bad[0]!r}; valid: {', '.join(valid)}")
        if "onnx" in self.formats:
            check_opset(self.opset, self.exporter)


def check_providers(options: Options) -> None:
    """Raises ProviderUnavailable when an explicitly requested provider cannot run a format asked for."""
    if not options.providers_explicit:
        return
    for fmt in options.formats:
        for rt in for_format(fmt, options.providers):
            reason = rt.unavailable()
            if reason and rt.device != "cpu":
                raise ProviderUnavailable(f"--providers {rt.device}: {rt.name} is not available: {reason}")


def verify(
    ids: list[str] | None = None,
    options: Options = Options(),
    artifacts_dir: Path | None = None,
    progress: Progress | None = None,
) -> Report:
    """Runs the whole matrix; one failing cell never stops the others.

    Args:
        ids: activation ids; all of the catalog when empty (or, with artifacts_dir, all in it).
        options: formats, providers, dtypes, opset and exporter.
        artifacts_dir: verify the artifacts in this directory, as deployed, instead of exporting.
        progress: called with a short label after each step.
    """
    options.validate()
    acts = select(ids)
    manifest = None
    if artifacts_dir is not None:
        manifest = art.read_manifest(Path(artifacts_dir))
        if not ids:
            listed = {e["id"] for e in manifest["artifacts"]}
            acts = tuple(a for a in acts if a.id in listed)
    check_providers(options)

    start = time.perf_counter()
    report = Report(environment=environment(options))
    with tempfile.TemporaryDirectory(prefix="actexport-") as tmp:
        for act in acts:
            for dtype in options.dtypes:
                _verify_activation(act, dtype, options, Path(tmp), artifacts_dir, manifest, report, progress)
    report.wall_seconds = time.perf_counter() - start
    return report


def plan_size(ids: list[str] | None, options: Options) -> int:
    """Number of progress steps verify() will report (one per artifact and per cell)."""
    acts = select(ids)
    per_fmt = len(options.providers) + 1
    return len(acts) * len(options.dtypes) * len(options.formats) * per_fmt


def environment(options: Options) -> dict:
    from actexport.runtimes.onnxrt import double_install  # noqa: PLC0415

    env: dict = {"versions": art.versions(), "options": {
        "formats": list(options.formats), "providers": list(options.providers), "dtypes": list(options.dtypes),
        "opset": options.opset, "exporter": options.exporter}}
    try:
        import onnxruntime as ort  # noqa: PLC0415

        env["onnxruntime_providers"] = ort.get_available_providers()
    except ImportError:
        env["onnxruntime_providers"] = []
    clash = double_install()
    if clash:
        env["warnings"] = [clash]
    return env


def _verify_activation(act: Activation, dtype: str, options: Options, tmp: Path, artifacts_dir: Path | None,
                       manifest: dict | None, report: Report, progress: Progress | None) -> None:
    tick = progress or (lambda label: None)
    inputs = batteries(act, dtype)
    refs, eager_error = _references(act, dtype, inputs)
    for fmt in options.formats:
        if artifacts_dir is None:
            result = art.export_artifact(act, fmt, dtype, tmp, options.opset, options.exporter)
            report.exports.append(_export_record(act, dtype, result))
        else:
            result = _from_manifest(act, fmt, dtype, Path(artifacts_dir), manifest)
        tick(f"{act.id} {fmt}")
        for rt in for_format(fmt, options.providers):
            cell = Cell(act.id, act.module_repr, fmt, rt.name, dtype, status="pass", exporter=result.exporter,
                        artifact=str(result.path) if result.path else None)
            t0 = time.perf_counter()
            _fill(cell, act, rt, result, inputs, refs, eager_error)
            cell.seconds = time.perf_counter() - t0
            report.cells.append(cell)
            tick(f"{act.id} {fmt} {rt.name}")


@dataclass(frozen=True)
class References:
    """What every artifact of one activation and dtype is compared with, per battery."""

    eager: list[np.ndarray]
    exact: list[np.ndarray]  # the float64 oracle, rounded once to the dtype
    eager_vs_exact: Comparison


def _references(act: Activation, dtype: str, inputs: list[Battery]) -> tuple[References | None, str | None]:
    try:
        eager = EagerRuntime(act, dtype)
        outs = [eager.infer(b.x) for b in inputs]
    except Exception as e:  # noqa: BLE001
        return None, f"eager PyTorch cannot run {act.id} in {dtype}: {type(e).__name__}: {e}"
    with np.errstate(over="ignore"):  # values past the dtype's max round to inf, as they should
        exact = [act.oracle(b.x).astype(b.x.dtype) for b in inputs]
    budget = act.budget(dtype)
    vs = merge([compare(o, e, b.x, budget) for o, e, b in zip(outs, exact, inputs)])
    return References(outs, exact, vs), None


def _fill(cell: Cell, act: Activation, rt: Runtime, result: ExportResult, inputs: list[Battery],
          refs: References | None, eager_error: str | None) -> None:
    """Sets the status, reason and metrics of one cell."""
    xfail = act.xfail(cell.format, cell.runtime, cell.dtype, onnx_kind(result.exporter) if cell.format == "onnx" else None)
    if result.unavailable:
        cell.status, cell.stage, cell.reason = "unavailable", "export", result.unavailable
        return
    if not result.ok:
        cell.stage, cell.log = result.details.get("stage", "export"), result.log[-4000:]
        cell.status = "xfail" if xfail and cell.stage == "export" else "error"
        cell.reason = f"no artifact: {result.error}"
        if cell.status == "xfail":
            cell.reason = f"{xfail.reason} [{cell.reason}]"
        return
    reason = rt.unavailable()
    if reason:
        cell.status, cell.stage, cell.reason = "unavailable", "load", reason
        return
    if eager_error:
        cell.status, cell.stage, cell.reason = "unavailable", "run", eager_error
        return
    stage = "load"
    try:
        rt.load(result.path)
        stage = "run"
        budget = act.budget(cell.dtype)
        vs_eager: list[Comparison] = []
        vs_exact: list[Comparison] = []
        for battery, eager, exact in zip(inputs, refs.eager, refs.exact):
            got = rt.infer(battery.x)
            vs_eager.append(compare(got, eager, battery.x, budget))
            vs_exact.append(compare(got, exact, battery.x, budget))
    except RuntimeUnavailable as e:
        cell.status, cell.stage, cell.reason = "unavailable", stage, str(e)
        return
    except Exception as e:  # noqa: BLE001  (one broken cell must not stop the matrix)
        cell.status, cell.stage, cell.reason = "error", stage, f"{type(e).__name__}: {str(e)[:300]}"
        return
    finally:
        rt.close()
    _judge(cell, act, inputs, vs_eager, merge(vs_exact), refs.eager_vs_exact, xfail)


def _side(vs_eager: Comparison, artifact_exact: Comparison, eager_exact: Comparison) -> str:
    """Which side deviates from the exact result, when the artifact and PyTorch disagree."""
    if vs_eager.ok:
        return ""
    if artifact_exact.ok and eager_exact.ok:
        return "neither: each is within budget of the exact result, they differ from each other"
    if artifact_exact.ok:
        return "pytorch"
    if eager_exact.ok:
        return "artifact"
    return "both"


def _judge(cell: Cell, act: Activation, inputs: list[Battery], parts: list[Comparison],
           artifact_exact: Comparison, eager_exact: Comparison, xfail) -> None:
    c = merge(parts)
    worst_part = parts.index(max(parts, key=badness))
    cell.worst_battery = inputs[worst_part].name
    cell.exact_max_ulp, cell.eager_exact_max_ulp = artifact_exact.max_ulp, eager_exact.max_ulp
    cell.deviates = _side(c, artifact_exact, eager_exact)
    cell.max_abs, cell.max_ulp = c.max_abs, c.max_ulp
    cell.ulp_budget, cell.atol = c.budget.ulp, c.budget.atol
    cell.worst_input, cell.worst_expected, cell.worst_actual = c.worst_input, c.worst_expected, c.worst_actual
    cell.nan_mismatch, cell.inf_mismatch = c.nan_mismatch, c.inf_mismatch
    cell.signed_zero_mismatch, cell.elements = c.signed_zero_mismatch, c.n
    detail = f"vs eager PyTorch ({cell.worst_battery} inputs): {c.describe()}"
    if cell.deviates:
        detail += (f"; vs exact float64: artifact {_summary(artifact_exact)}, PyTorch {_summary(eager_exact)}"
                   f"; deviating side: {cell.deviates}")
    if c.ok:
        cell.status = "xpass" if xfail else "pass"
        cell.reason = (f"declared deviation no longer happens ({xfail.reason}); remove the xfail" if xfail
                       else (c.describe() if c.signed_zero_mismatch else ""))
    else:
        cell.status = "xfail" if xfail else "fail"
        cell.reason = f"{xfail.reason} [{detail}]" if xfail else detail


def _summary(c: Comparison) -> str:
    bad = [f"{n} {what}" for n, what in ((c.nan_mismatch, "NaN"), (c.inf_mismatch, "inf")) if n]
    return f"max {c.max_ulp} ULP" + (f" and {', '.join(bad)} mismatch(es)" if bad else "")


def _export_record(act: Activation, dtype: str, r: ExportResult) -> dict:
    return {"activation": act.id, "format": r.format, "dtype": dtype, "exporter": r.exporter, "opset": r.opset,
            "ok": r.ok, "error": r.error, "unavailable": r.unavailable, "seconds": round(r.seconds, 3),
            **({"log": r.log[-4000:]} if not r.ok and r.log else {}), **r.details}


def _from_manifest(act: Activation, fmt: str, dtype: str, dir: Path, manifest: dict) -> ExportResult:
    """The artifact as deployed in `dir`, checked against its manifest entry (path and sha256)."""
    entry = next((e for e in manifest["artifacts"]
                  if e["id"] == act.id and e["format"] == fmt and e["dtype"] == dtype), None)
    if entry is None:
        return ExportResult(fmt, None, "", error=f"{dir}/manifest.json lists no {fmt} {dtype} artifact for {act.id}")
    path = dir / entry["path"]
    if not path.is_file():
        return ExportResult(fmt, None, entry.get("exporter", ""), error=f"{path} is listed in the manifest but missing")
    digest = art.sha256(path)
    if digest != entry["sha256"]:
        # NOTE: a changed file is an integrity failure (exit 1), not a missing artifact (exit 3).
        return ExportResult(fmt, None, entry.get("exporter", ""), details={"stage": "integrity"},
                            error=f"{path} changed since export: sha256 {digest[:12]} != manifest {entry['sha256'][:12]}")
    return ExportResult(fmt, path, entry.get("exporter", ""), opset=entry.get("opset"))


__all__ = ["Options", "ProviderUnavailable", "verify", "plan_size", "get"]
