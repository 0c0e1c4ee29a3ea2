"""Orchestration only: builds the matrix activation x format x runtime x dtype and fills a Report.

Every cell is judged against the exact reference (the oracle, rounded once to the dtype); its
distance to eager PyTorch is reported beside it, and eager PyTorch itself is a row of the matrix.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from actexport import artifacts as art
from actexport.catalog import CATALOG, DTYPES, FORMATS, Activation, UsageError, select
from actexport.compare import badness, compare, merge, semantics, ulp_distance
from actexport.exporters import ExportResult
from actexport.exporters.onnx import DEFAULT_OPSET, check_opset
from actexport.exporters.onnx import kind as onnx_kind
from actexport.inputs import Battery, batteries
from actexport.pool import Exports
from actexport.report import Cell, Report
from actexport.runtimes import Runtime, RuntimeUnavailable, for_format
from actexport.runtimes.eager import EagerRuntime

PROVIDERS = ("cpu", "cuda")
VERIFY_ORT_THREADS = 1
Progress = Callable[[str], None]


class ProviderUnavailable(RuntimeError):
    """A provider the user asked for explicitly cannot run here (exit code 4)."""


@dataclass(frozen=True)
class Options:
    formats: tuple[str, ...] = FORMATS
    providers: tuple[str, ...] = ("cpu",)
    dtypes: tuple[str, ...] = ("float32",)
    opsets: tuple[int, ...] = (DEFAULT_OPSET,)
    exporter: str = "dynamo"
    providers_explicit: bool = False
    reference: bool = True  # run onnx.reference on every ONNX artifact (the third vote)
    latency: tuple[int, ...] = ()  # sizes to time every artifact at, as `bench` does (none: no timing)

    def validate(self) -> None:
        for what, values, valid in (("format", self.formats, FORMATS), ("provider", self.providers, PROVIDERS),
                                    ("dtype", self.dtypes, DTYPES)):
            if not values:
                raise UsageError(f"no {what} given; valid: {', '.join(valid)}")
            bad = [v for v in values if v not in valid]
            if bad:
                raise UsageError(f"unknown {what} {bad[0]!r}; valid: {', '.join(valid)}")
        if "onnx" in self.formats:
            if not self.opsets:
                raise UsageError("no opset given")
            for opset in self.opsets:
                check_opset(opset, self.exporter)


def check_providers(options: Options) -> None:
    """Raises ProviderUnavailable when an explicitly requested provider cannot run a format asked for."""
    if not options.providers_explicit:
        return
    for fmt in options.formats:
        for rt in for_format(fmt, options.providers, reference=False):
            reason = rt.unavailable()
            if reason and rt.device != "cpu":
                raise ProviderUnavailable(f"--providers {rt.device}: {rt.name} is not available: {reason}")


def verify(
    ids: list[str] | None = None,
    options: Options = Options(),
    artifacts_dir: Path | None = None,
    progress: Progress | None = None,
    cache=None,
    workers: int | None = None,
) -> Report:
    """Runs the whole matrix; one failing cell never stops the others.

    Args:
        ids: activation ids; all of the catalog when empty (or, with artifacts_dir, all in it).
        options: formats, providers, dtypes, opsets and exporter.
        artifacts_dir: verify the artifacts in this directory, as deployed, instead of exporting.
        progress: called with a short label after each step.
        cache: an ExportCache (cache.py) to reuse verified exports from; None exports everything.
        workers: processes exporting in parallel (default: one per core).
    """
    options.validate()
    acts = select(ids)
    manifest = None
    if artifacts_dir is not None:
        manifest = art.read_manifest(Path(artifacts_dir))
        listed = {e["id"] for e in manifest["artifacts"]}
        unknown = sorted(listed - {a.id for a in CATALOG})
        if unknown:
            raise UsageError(f"{artifacts_dir}/manifest.json lists activation(s) not in the catalog: "
                             f"{', '.join(unknown)}; known: {', '.join(a.id for a in CATALOG)}")
        if not ids:
            acts = tuple(a for a in acts if a.id in listed)
        if not acts:
            raise UsageError(f"nothing to verify: {artifacts_dir}/manifest.json lists no artifact")
    check_providers(options)

    start = time.perf_counter()
    report = Report(environment=environment(options))
    with tempfile.TemporaryDirectory(prefix="actexport-") as tmp, contextlib.ExitStack() as stack:
        produce = None
        if artifacts_dir is None:
            # Every export of the run is planned up front, so the workers run ahead of verification.
            todo = art.jobs(acts, options.formats, options.dtypes, Path(tmp), options.opsets, options.exporter)
            exports = stack.enter_context(Exports(todo, cache, workers))
            by_cell = {(j.act.id, j.dtype, j.format, j.opset if j.format == "onnx" else None): j for j in todo}

            def produce(act: Activation, dtype: str, fmt: str, opset: int | None) -> ExportResult:
                return exports.result(by_cell[(act.id, dtype, fmt, opset)])

        for act in acts:
            for dtype in options.dtypes:
                run = _ActivationRun(act, dtype, options, report, progress or (lambda label: None))
                run.execute(produce, artifacts_dir, manifest)
        stack.close()  # NOTE: the export workers are gone before anything is timed
        if options.latency:
            report.latency = _latency(acts, options, produce, artifacts_dir, manifest, progress)
    report.wall_seconds = time.perf_counter() - start
    return report


def _latency(acts, options: Options, produce, artifacts_dir: Path | None, manifest: dict | None, progress):
    """`bench` over the artifacts this run verified (the same files), one BenchReport per dtype."""
    from actexport.bench import bench  # noqa: PLC0415

    opset = options.opsets[0]

    def export(act: Activation, fmt: str, dtype: str, *_) -> ExportResult:
        key_opset = opset if fmt == "onnx" else None
        if produce is not None:
            return produce(act, dtype, fmt, key_opset)
        return _from_manifest(act, fmt, dtype, key_opset, Path(artifacts_dir), manifest)

    return [bench([a.id for a in acts], options.formats, options.providers, options.latency, dtype, opset=opset,
                  exporter=options.exporter, progress=progress, export=export) for dtype in options.dtypes]


def plan_size(ids: list[str] | None, options: Options) -> int:
    """Number of progress steps verify() will report (one per artifact and per cell)."""
    per_dtype = len(options.providers)  # eager rows
    for fmt in options.formats:
        opsets = len(options.opsets) if fmt == "onnx" else 1
        runtimes = len(options.providers) + (1 if fmt == "onnx" and options.reference else 0)
        per_dtype += opsets * (1 + runtimes)
    return len(select(ids)) * len(options.dtypes) * per_dtype


def environment(options: Options) -> dict:
    from actexport.runtimes.onnxrt import double_install  # noqa: PLC0415

    env: dict = {"versions": art.versions(), "options": {
        "formats": list(options.formats), "providers": list(options.providers), "dtypes": list(options.dtypes),
        "opsets": list(options.opsets), "exporter": options.exporter}}
    try:
        import onnxruntime as ort  # noqa: PLC0415

        env["onnxruntime_providers"] = ort.get_available_providers()
    except ImportError:
        env["onnxruntime_providers"] = []
    clash = double_install()
    if clash:
        env["warnings"] = [clash]
    return env


@dataclass
class _Outputs:
    """One runtime's outputs on every battery, and its verdict against the exact reference."""

    values: list[np.ndarray]
    ok: bool


class _ActivationRun:
    """The cells of one activation in one dtype: eager rows, then every artifact in every runtime."""

    def __init__(self, act: Activation, dtype: str, options: Options, report: Report, tick: Progress) -> None:
        self.act, self.dtype, self.options, self.report, self.tick = act, dtype, options, report, tick
        self.inputs: list[Battery] = batteries(act, dtype)
        with np.errstate(over="ignore"):  # values past the dtype's max round to inf, as they should
            self.exact = [act.oracle(b.x).astype(b.x.dtype) for b in self.inputs]
        self.budget = act.budget(dtype)
        self.eager: dict[str, _Outputs] = {}  # by device

    def execute(self, produce: Callable | None, artifacts_dir: Path | None, manifest: dict | None) -> None:
        """Runs every cell; `produce(act, dtype, format, opset)` exports, else artifacts_dir is read."""
        for device in self.options.providers:
            self._eager_cell(device)
        for fmt in self.options.formats:
            opsets = self.options.opsets if fmt == "onnx" else (None,)
            ort_by_opset: dict[int, _Outputs] = {}
            for opset in opsets:
                if produce is not None:
                    result = produce(self.act, self.dtype, fmt, opset)
                    self.report.exports.append(_export_record(self.act, self.dtype, result))
                else:
                    result = _from_manifest(self.act, fmt, self.dtype, opset, Path(artifacts_dir), manifest)
                self.tick(f"{self.act.id} {fmt}")
                spec: _Outputs | None = None
                # NOTE: one onnxruntime thread: the inputs are small, an elementwise result does not
                # depend on threads, and an idle pool's spinning threads would starve the export
                # workers running beside verification (measured: exports 4x slower on 2 cores).
                for rt in for_format(fmt, self.options.providers, reference=self.options.reference,
                                     ort_threads=VERIFY_ORT_THREADS):
                    outputs = self._artifact_cell(rt, result, opset, spec)
                    if rt.name == "onnx.reference":
                        spec = outputs
                    if rt.name == "ort:cpu" and outputs is not None:
                        ort_by_opset[opset] = outputs
                    self.tick(f"{self.act.id} {fmt} {rt.name}")
                if fmt == "onnx":
                    self._graph_record(result, opset, ort_by_opset)

    # -- cells -------------------------------------------------------------------------------

    def _new_cell(self, fmt: str, runtime: str, **kw) -> Cell:
        cell = Cell(self.act.id, self.act.module_repr, fmt, runtime, self.dtype, status="pass", **kw)
        cell.ulp_budget, cell.atol = self.budget.ulp, self.budget.atol
        self.report.cells.append(cell)
        return cell

    def _eager_cell(self, device: str) -> None:
        cell = self._new_cell("eager", f"eager:{device}")
        t0 = time.perf_counter()
        try:
            rt = EagerRuntime(self.act, self.dtype, device)
            reason = rt.unavailable()
            if reason:
                cell.status, cell.stage, cell.reason = "unavailable", "load", reason
                return
            values = [rt.infer(b.x) for b in self.inputs]
        except Exception as e:  # noqa: BLE001
            cell.status, cell.stage = "unavailable", "run"
            cell.reason = f"eager PyTorch cannot run {self.act.id} in {self.dtype} on {device}: {type(e).__name__}: {e}"
            return
        finally:
            cell.seconds = time.perf_counter() - t0
            self.tick(f"{self.act.id} eager:{device}")
        ok = self._judge(cell, values, torch_ref=None, spec=None)
        self.eager[device] = _Outputs(values, ok)

    def _artifact_cell(self, rt: Runtime, result: ExportResult, opset: int | None, spec: _Outputs | None):
        fmt = result.format
        exporter_kind = onnx_kind(result.exporter) if fmt == "onnx" else None
        cell = self._new_cell(fmt, rt.name, exporter=result.exporter, opset=result.opset or opset,
                              artifact=str(result.path) if result.path else None)
        if result.unavailable:
            cell.status, cell.stage, cell.reason = "unavailable", "export", result.unavailable
            return None
        if not result.ok:
            cell.stage, cell.log = result.details.get("stage", "export"), result.log[-4000:]
            # Only a declared "cannot be exported" excuses a missing artifact, and only when the
            # exporter (or the manifest) says none was produced, never a file that went missing.
            xfail = self.act.xfail(fmt, rt.name, self.dtype, exporter_kind, no_artifact=True)
            cell.status = "xfail" if xfail and cell.stage == "export" else "error"
            cell.reason = f"no artifact: {result.error}"
            if cell.status == "xfail":
                cell.reason = f"{xfail.reason} [{cell.reason}]"
            return None
        reason = rt.unavailable()
        if reason:
            cell.status, cell.stage, cell.reason = "unavailable", "load", reason
            return None
        stage = "load"
        t0 = time.perf_counter()
        try:
            rt.load(result.path)
            cell.ran_on = rt.ran_on
            stage = "run"
            values = [rt.infer(b.x) for b in self.inputs]
        except RuntimeUnavailable as e:
            cell.status, cell.stage, cell.reason = "unavailable", stage, str(e)
            if rt.device != "cpu" and self.options.providers_explicit and stage == "load":
                # NOTE: asked for by name, a provider that does not run is an error (exit 4), not n/a.
                cell.status, cell.stage = "error", "provider"
            return None
        except Exception as e:  # noqa: BLE001  (one broken cell must not stop the matrix)
            cell.status, cell.stage, cell.reason = "error", stage, f"{type(e).__name__}: {str(e)[:300]}"
            return None
        finally:
            rt.close()
            cell.seconds = time.perf_counter() - t0
        torch_ref = self.eager.get(rt.device) or self.eager.get("cpu")
        ok = self._judge(cell, values, torch_ref=torch_ref, spec=spec if rt.name != "onnx.reference" else None)
        return _Outputs(values, ok)

    # -- judging -----------------------------------------------------------------------------

    def _judge(self, cell: Cell, values: list[np.ndarray], torch_ref: _Outputs | None, spec: _Outputs | None) -> bool:
        """Fills the cell's metrics, verdict and status; returns whether it is within budget of exact."""
        vs_exact = [compare(v, e, b.x, self.budget) for v, e, b in zip(values, self.exact, self.inputs)]
        c = merge(vs_exact)
        k = vs_exact.index(max(vs_exact, key=badness))
        cell.worst_battery = self.inputs[k].name
        cell.max_abs, cell.max_ulp, cell.over_abs = c.max_abs, c.max_ulp, c.over_abs
        cell.worst_input, cell.worst_expected, cell.worst_actual = c.worst_input, c.worst_expected, c.worst_actual
        cell.nan_mismatch, cell.inf_mismatch = c.nan_mismatch, c.inf_mismatch
        cell.signed_zero_mismatch, cell.elements = c.signed_zero_mismatch, c.n
        edges = next(i for i, b in enumerate(self.inputs) if b.name == "edges")
        cell.special = semantics(self.inputs[edges].x, values[edges], self.exact[edges])

        agrees_with_torch = None
        if torch_ref is not None:
            vs_torch = merge([compare(v, t, b.x, self.budget) for v, t, b in zip(values, torch_ref.values, self.inputs)])
            cell.torch_max_ulp, cell.torch_max_abs = vs_torch.max_ulp, vs_torch.max_abs
            agrees_with_torch = vs_torch.ok
            if c.worst_index is not None:
                cell.worst_torch = float(torch_ref.values[k].astype(np.float64).reshape(-1)[c.worst_index])
        if spec is not None and c.worst_index is not None:
            cell.worst_spec = float(spec.values[k].astype(np.float64).reshape(-1)[c.worst_index])
        cell.deviates = _side(cell, c.ok, torch_ref, agrees_with_torch, spec)

        xfail = self.act.xfail(cell.format, cell.runtime, cell.dtype,
                               onnx_kind(cell.exporter) if cell.format == "onnx" else None)
        detail = f"vs exact ({cell.worst_battery} inputs): {c.describe()}"
        if cell.deviates:
            detail += f"; deviating side: {cell.deviates}"
        if torch_ref is not None and not agrees_with_torch:
            detail += f"; {cell.torch_max_ulp} ULP from eager PyTorch"
        special = c.nan_mismatch + c.inf_mismatch
        if c.ok:
            cell.status = "xpass" if xfail else "pass"
            if xfail:
                cell.reason = f"declared deviation no longer happens ({xfail.reason}); remove the xfail"
            elif c.signed_zero_mismatch or cell.deviates:
                cell.reason = detail
        elif xfail and xfail.covers(c.max_ulp, c.over_abs, special):
            cell.status, cell.reason = "xfail", f"{xfail.reason} [{detail}]"
        else:
            cell.status, cell.reason = "fail", detail
            if xfail:
                cell.reason += (f"; beyond the declared deviation (max {xfail.max_ulp} ULP or abs "
                                f"{xfail.max_abs}, {xfail.max_special} NaN/inf mismatches): {xfail.reason}")
        return c.ok

    def _graph_record(self, result: ExportResult, opset: int | None, ort_by_opset: dict) -> None:
        record = {"activation": self.act.id, "dtype": self.dtype, "opset": result.opset or opset,
                  "op_types": result.details.get("op_types"), "nodes": result.details.get("nodes")}
        first = next(iter(ort_by_opset), None)
        if first is not None and opset in ort_by_opset and opset != first:
            record["ort_cpu_max_ulp_vs_opset"] = {
                str(first): int(max(int(np.max(ulp_distance(a, b), initial=0))
                                    for a, b in zip(ort_by_opset[opset].values, ort_by_opset[first].values)))
            }
        if result.ok and opset in ort_by_opset:
            record.update(self._optimisation(result, ort_by_opset[opset]))
        self.report.graphs.append(record)

    def _optimisation(self, result: ExportResult, optimised: _Outputs) -> dict:
        """What onnxruntime's graph optimisation did to the graph, and to the numbers.

        ort:cpu runs the optimised graph (ORT_ENABLE_ALL, onnxruntime's default); here the same
        graph runs unoptimised (ORT_DISABLE_ALL) on the same inputs, both judged against exact.
        """
        from actexport.graphs import analyse, describe  # noqa: PLC0415
        from actexport.runtimes.onnxrt import OrtRuntime  # noqa: PLC0415

        try:
            graph = analyse(result.path)
            with OrtRuntime("cpu", intra_op_threads=VERIFY_ORT_THREADS, optimization="disable") as rt:
                rt.load(result.path)
                plain = [rt.infer(b.x) for b in self.inputs]
        except Exception as e:  # noqa: BLE001  (a diagnostic: it never fails the cell)
            return {"optimisation": {"error": f"{type(e).__name__}: {str(e)[:300]}"}}
        vs_exact = [merge([compare(v, e, b.x, self.budget) for v, e, b in zip(vals, self.exact, self.inputs)])
                    for vals in (plain, optimised.values)]
        between = [ulp_distance(a, b) for a, b in zip(plain, optimised.values)]
        differ = sum(_values_differ(a, b) for a, b in zip(plain, optimised.values))
        return {
            "optimised_nodes": graph["optimized"]["nodes"], "optimised_op_types": graph["optimized"]["op_types"],
            "ort_specific": graph["ort_specific"],
            "optimisation": {
                "graph": describe(graph),
                "rewritten": graph["exported"] != {k: graph["optimized"][k] for k in ("nodes", "op_types")},
                "numbers": differ,
                "max_ulp_between": int(max((int(np.max(d, initial=0)) for d in between), default=0)),
                "unoptimised_max_ulp_vs_exact": vs_exact[0].max_ulp, "optimised_max_ulp_vs_exact": vs_exact[1].max_ulp,
                "unoptimised_within_budget": vs_exact[0].ok, "optimised_within_budget": vs_exact[1].ok,
            },
        }


def _values_differ(a: np.ndarray, b: np.ndarray) -> int:
    """Elements whose values differ, counting the sign of zero (any two NaNs are the same)."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    same = ((a == b) & (np.signbit(a) == np.signbit(b))) | (np.isnan(a) & np.isnan(b))
    return int(np.count_nonzero(~same))


def _side(cell: Cell, ok: bool, torch_ref: _Outputs | None, agrees_with_torch: bool | None,
          spec: _Outputs | None) -> str:
    """Which side deviates from the exact result: pytorch, export, runtime or both ("" if none)."""
    if cell.format == "eager":
        return "" if ok else "pytorch"
    torch_ok = torch_ref.ok if torch_ref is not None else True
    if ok:
        return "" if torch_ok else "pytorch"  # the artifact is right where PyTorch is not
    if not torch_ok:
        return "pytorch" if agrees_with_torch else "both"
    if cell.format == "onnx" and cell.runtime != "onnx.reference" and spec is not None:
        return "runtime" if spec.ok else "export"
    return "export"


def _export_record(act: Activation, dtype: str, r: ExportResult) -> dict:
    return {"activation": act.id, "format": r.format, "dtype": dtype, "exporter": r.exporter, "opset": r.opset,
            "ok": r.ok, "error": r.error, "unavailable": r.unavailable, "seconds": round(r.seconds, 3),
            "cache": r.cache,
            **({"log": r.log[-4000:]} if not r.ok and r.log else {}), **r.details}


def _from_manifest(act: Activation, fmt: str, dtype: str, opset: int | None, dir: Path, manifest: dict) -> ExportResult:
    """The artifact as deployed in `dir`, checked against its manifest entry (path and sha256)."""
    entries = [e for e in manifest["artifacts"] if e["id"] == act.id and e["format"] == fmt and e["dtype"] == dtype]
    if fmt == "onnx":
        entries = [e for e in entries if e.get("opset") == opset]
    if not entries:
        what = f"{fmt} {dtype}" + (f" opset {opset}" if fmt == "onnx" else "")
        return ExportResult(fmt, None, "", details={"stage": "export"},
                            error=f"{dir}/manifest.json lists no {what} artifact for {act.id}")
    entry = entries[0]
    path = dir / entry["path"]
    if not path.is_file():
        return ExportResult(fmt, None, entry.get("exporter", ""), details={"stage": "missing"},
                            error=f"{path} is listed in the manifest but missing")
    digest = art.sha256(path)
    if digest != entry["sha256"]:
        # NOTE: a changed file is an integrity failure (exit 1), not a missing artifact (exit 3).
        return ExportResult(fmt, None, entry.get("exporter", ""), details={"stage": "integrity"},
                            error=f"{path} changed since export: sha256 {digest[:12]} != manifest {entry['sha256'][:12]}")
    return ExportResult(fmt, path, entry.get("exporter", ""), opset=entry.get("opset"),
                        details=entry.get("details", {}))


__all__ = ["Options", "ProviderUnavailable", "verify", "plan_size"]
