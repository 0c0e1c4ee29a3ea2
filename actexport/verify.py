"""Orchestration only: builds the matrix activation x format x runtime x dtype and fills a Report.

Every cell is judged against the exact reference (the oracle, rounded once to the dtype); its
distance to eager PyTorch is reported beside it, and eager PyTorch itself is a row of the matrix.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from actexport import artifacts as art
from actexport import catalog
from actexport.catalog import DTYPES, Activation, UsageError, select
from actexport.formats import FORMATS, format_of, takes_opset
from actexport.compare import across_devices, compare, merge, ulp_distance, values_differ
from actexport.exporters import ExportResult
from actexport.exporters.onnx import DEFAULT_EXPORTER, DEFAULT_OPSET, check_opset
from actexport.inputs import Battery, batteries
from actexport.judge import Outputs, Subject, Verdict, declaration, judge
from actexport import tasks
from actexport.cache import ExactCache, module_digest
from actexport.isolate import DEFAULT_TIMEOUT, warm_up
from actexport.isolate import workers as workers_for
from actexport.pool import Exports, Pipeline
from actexport.report import Cell, Report, Status
from actexport.runtimes import DEVICES, for_format

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
    exporter: str = DEFAULT_EXPORTER
    providers_explicit: bool = False
    reference: bool = True  # run onnx.reference on every ONNX artifact (the third vote)
    latency: tuple[int, ...] = ()  # sizes to time every artifact at, as `bench` does (none: no timing)
    isolate: bool = True  # run exports and cells in worker processes (a crash or hang fails one cell)
    listed_only: bool = False  # with artifacts_dir: combinations the manifest does not list are skipped
    timeout: float = DEFAULT_TIMEOUT  # seconds one export or one cell may take

    def validate(self) -> None:
        for what, values, valid in (("format", self.formats, FORMATS), ("provider", self.providers, DEVICES),
                                    ("dtype", self.dtypes, DTYPES)):
            if not values:
                raise UsageError(f"no {what} given; valid: {', '.join(valid)}")
            bad = [v for v in values if v not in valid]
            if bad:
                raise UsageError(f"unknown {what} {bad[0]!r}; valid: {', '.join(valid)}")
        if any(takes_opset(f) for f in self.formats):
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
            reason = rt.provider_unavailable()
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
        unknown = sorted(listed - {a.id for a in catalog.CATALOG})
        if unknown:
            raise UsageError(f"{artifacts_dir}/manifest.json lists activation(s) not in the catalog: "
                             f"{', '.join(unknown)} (for your own module, pass the same --module and --input-shape); "
                             f"known: {', '.join(a.id for a in catalog.CATALOG)}")
        if not ids:
            acts = tuple(a for a in acts if a.id in listed)
        if not acts:
            raise UsageError(f"nothing to verify: {artifacts_dir}/manifest.json lists no artifact")
    check_providers(options)

    start = time.perf_counter()
    report = Report(environment=environment(options))
    tick = progress or (lambda label: None)
    if options.isolate:
        warm_up()  # the forkserver imports torch and onnxruntime while the oracles are computed
    with tempfile.TemporaryDirectory(prefix="actexport-") as tmp:
        pipeline = Pipeline(workers_for(workers, options.isolate))
        try:
            exact = ExactCache(cache.root) if cache is not None else None
            runs = [_ActivationRun(act, dtype, options, report, tick, exact) for act in acts for dtype in options.dtypes]
            produce = None
            if artifacts_dir is None:
                # Every export of the run is planned up front, so the workers run ahead of verification.
                todo = art.jobs(acts, options.formats, options.dtypes, Path(tmp), options.opsets, options.exporter)
                exports = Exports(todo, cache, pipeline=pipeline, timeout=options.timeout)
                by_cell = {(j.act.id, j.dtype, j.format, format_of(j.format).key_opset(j.opset)): j for j in todo}

                def produce(act: Activation, dtype: str, fmt: str, opset: int | None, then=None):
                    job = by_cell[(act.id, dtype, fmt, opset)]
                    if then is None:
                        return exports.result(job)
                    exports.when_done(job, then)
                    return None
            else:
                def produce(act: Activation, dtype: str, fmt: str, opset: int | None, then=None):
                    result = _from_manifest(act, fmt, dtype, opset, Path(artifacts_dir), manifest,
                                            options.listed_only, options.timeout)
                    return result if then is None else then(result)

            for run in runs:
                run.plan(pipeline, produce, record_exports=artifacts_dir is None)
            judged = iter(runs)
            nxt = [next(judged, None)]

            def all_judged() -> bool:
                # NOTE: runs are judged in plan order, so the report's exports and graphs keep it.
                while nxt[0] is not None and nxt[0].complete:
                    nxt[0].judge()
                    nxt[0] = next(judged, None)
                return nxt[0] is None

            pipeline.drive(all_judged)
        finally:
            pipeline.close()  # NOTE: the workers are gone before anything is timed
        if artifacts_dir is not None:
            _ran_nowhere(report.cells)
        if options.latency:
            # NOTE: timing runs in this process: an artifact whose cell crashed, hung or errored is
            # not loaded again here.
            broken = {(c.activation, c.format) for c in report.cells if c.status == "error"}
            report.latency = _latency(acts, options, produce, progress, broken)
    report.wall_seconds = time.perf_counter() - start
    return report


def _ran_nowhere(cells: list[Cell]) -> None:
    """A deployed artifact that no runtime here could load or run is an error in each of its cells.

    Each cell alone may honestly be n/a (no kernel for an op on this provider), but a file from
    elsewhere that runs nowhere was verified by nobody: an unknown op in a domain of the author's
    choosing would otherwise pass `check`.
    """
    groups: dict[tuple, list[Cell]] = {}
    for c in cells:
        if c.format != "eager":
            groups.setdefault((c.activation, c.format, c.dtype, c.opset), []).append(c)
    for group in groups.values():
        if all(c.status == "unavailable" and c.stage in ("load", "run") for c in group):
            for c in group:
                c.status = Status.ERROR
                c.reason = f"the artifact runs in no runtime here, so nothing verified it: {c.reason}"


def _latency(acts, options: Options, produce, progress, broken: set[tuple[str, str]]):
    """`bench` over the artifacts this run verified (the same files), one BenchReport per dtype."""
    from actexport.bench import bench
    opset = options.opsets[0]

    def export(act: Activation, fmt: str, dtype: str, *_) -> ExportResult:
        if (act.id, fmt) in broken:
            return ExportResult(fmt, None, "", error="not timed: a cell of this artifact errored in verification")
        return produce(act, dtype, fmt, format_of(fmt).key_opset(opset))

    return [bench([a.id for a in acts], options.formats, options.providers, options.latency, dtype, opset=opset,
                  exporter=options.exporter, progress=progress, export=export) for dtype in options.dtypes]


def plan_size(ids: list[str] | None, options: Options) -> int:
    """Number of progress steps verify() will report (one per artifact and per cell)."""
    per_dtype = len(options.providers)  # eager rows
    for fmt in options.formats:
        opsets = len(options.opsets) if takes_opset(fmt) else 1
        runtimes = len(for_format(fmt, options.providers, reference=options.reference))
        per_dtype += opsets * (1 + runtimes)
    return len(select(ids)) * len(options.dtypes) * per_dtype


def environment(options: Options) -> dict:
    from actexport.runtimes.onnxrt import double_install
    env: dict = {"versions": art.versions(), "options": {
        "formats": list(options.formats), "providers": list(options.providers), "dtypes": list(options.dtypes),
        "opsets": list(options.opsets), "exporter": options.exporter}}
    try:
        import onnxruntime as ort
        env["onnxruntime_providers"] = ort.get_available_providers()
    except ImportError:
        env["onnxruntime_providers"] = []
    clash = double_install()
    if clash:
        env["warnings"] = [clash]
    return env


@dataclass
class _Slot:
    """One piece of work of an activation run and, once it is back, its outcome."""

    kind: str  # eager, artifact, graph
    cell: Cell | None = None
    device: str = "cpu"
    format: str = ""
    opset: int | None = None
    family: str = ""  # the runtime's (runtimes.Runtime.family)
    specification: bool = False  # the runtime is the format's specification (its outputs judge the export)
    graph_analysis: bool = False  # artifact slot: the run that graph records compare with the unoptimised graph
    result: ExportResult | None = None  # the artifact (artifact and graph slots)
    outcome: tasks.Ran | tasks.NotRun | None = None  # what the task returned (a crash: NotRun)
    done: bool = False


class _ActivationRun:
    """The cells of one activation in one dtype: eager rows, then every artifact in every runtime.

    plan() creates the cells in report order and submits their work as tasks; the outcomes come
    back in any order (receive); judge() then fills the cells in order, because an artifact is
    judged with eager PyTorch's and onnx.reference's outputs beside its own.
    """

    def __init__(self, act: Activation, dtype: str, options: Options, report: Report, tick: Progress,
                 exact_cache: ExactCache | None = None) -> None:
        self.act, self.dtype, self.options, self.report, self.tick = act, dtype, options, report, tick
        self.inputs: list[Battery] = batteries(act, dtype)
        with np.errstate(over="ignore"):  # values past the dtype's max round to inf, as they should
            self.exact = [(exact_cache.exact(act, b.x) if exact_cache else act.oracle(b.x)).astype(b.x.dtype)
                          for b in self.inputs]
        self.budget = act.budget(dtype)
        self.eager: dict[str, Outputs] = {}  # by device
        self.slots: list[_Slot] = []
        self.results: dict[tuple[str, int | None], ExportResult] = {}

    @property
    def complete(self) -> bool:
        return all(slot.done for slot in self.slots)

    def plan(self, pipeline: Pipeline, produce: Callable, record_exports: bool) -> None:
        """Creates every cell and submits its work; artifact work waits for the artifact."""
        self.pipeline, self.record_exports = pipeline, record_exports
        pipeline.on("cell", _receive)
        xs = [b.x for b in self.inputs]
        key = module_digest(self.act)
        for device in self.options.providers:
            slot = self._slot("eager", self._new_cell("eager", f"eager:{device}", device=device), device=device,
                              format="eager", family="eager")
            self._submit(slot, tasks.eager, (self.act.id, key, self.dtype, device, xs, None, self.act.recipe,
                                             [e.shape for e in self.exact]))
        for fmt in self.options.formats:
            for opset in self.options.opsets if takes_opset(fmt) else (None,):
                runtimes = for_format(fmt, self.options.providers, reference=self.options.reference,
                                      threads=VERIFY_ORT_THREADS)
                slots = [self._slot("artifact", self._new_cell(fmt, rt.name, device=rt.device), device=rt.device,
                                    format=fmt, opset=opset, family=rt.family, specification=rt.specification,
                                    graph_analysis=rt.graph_analysis and rt.device == "cpu") for rt in runtimes]
                if any(s.graph_analysis for s in slots):
                    slots.append(self._slot("graph", format=fmt, opset=opset))
                produce(self.act, self.dtype, fmt, opset,
                        lambda result, s=slots, f=fmt, o=opset: self._artifact_ready(result, s, f, o))

    def _new_cell(self, fmt: str, runtime: str, **kw) -> Cell:
        cell = Cell(self.act.id, self.act.module_repr, fmt, runtime, self.dtype, status=Status.PASS, **kw)
        cell.ulp_budget, cell.atol = self.budget.ulp, self.budget.atol
        self.report.cells.append(cell)
        return cell

    def _slot(self, kind: str, cell: Cell | None = None, **kw) -> _Slot:
        slot = _Slot(kind, cell, **kw)
        self.slots.append(slot)
        return slot

    def _submit(self, slot: _Slot, fn: Callable, args: tuple) -> None:
        self.pipeline.submit("cell", (self, slot), fn, args, self.options.timeout, priority=0)

    def _artifact_ready(self, result: ExportResult, slots: list[_Slot], fmt: str, opset: int | None) -> None:
        self.results[(fmt, opset)] = result
        self.tick(f"{self.act.id} {fmt}")
        xs = [b.x for b in self.inputs]
        shapes = [e.shape for e in self.exact]
        for slot in slots:
            slot.result = result
            if slot.cell is not None:
                cell = slot.cell
                cell.exporter, cell.opset = result.exporter, result.opset or opset
                cell.artifact = str(result.path) if result.path else None
            if not result.ok:
                slot.done = True  # judged from the result alone
            elif slot.kind == "graph":
                self._submit(slot, tasks.optimisation, (result.path, xs, VERIFY_ORT_THREADS, shapes))
            else:
                self._submit(slot, tasks.runtime, (fmt, slot.cell.runtime, slot.device, result.path, xs,
                                                   VERIFY_ORT_THREADS, shapes))

    def receive(self, slot: _Slot, outcome) -> None:
        if slot.cell is not None:
            slot.cell.seconds = outcome.seconds
            self.tick(f"{self.act.id} {slot.cell.runtime}")
        if outcome.failure:
            # NOTE: the worker crashed or hung: this cell is an error, the matrix goes on.
            who = f"{slot.cell.runtime} " if slot.cell is not None else ""
            slot.outcome = tasks.NotRun("error", "run", f"{who}{outcome.failure}")
        elif isinstance(outcome.value, tasks.Elsewhere):  # the row exists in this process only
            slot.outcome = tasks.eager(self.act.id, None, self.dtype, slot.device, [b.x for b in self.inputs],
                                       act=self.act, shapes=[e.shape for e in self.exact])
        else:
            slot.outcome = outcome.value
        slot.done = True

    # -- verdicts, in report order -------------------------------------------------------------

    def judge(self) -> None:
        spec: dict[tuple[str, int | None], Outputs | None] = {}  # the specification's outputs
        graph_slots: dict[tuple[str, int | None], _Slot] = {}
        # (format, opset, family, device): what ran
        ran: dict[tuple[str, int | None, str, str], tuple[Cell, Outputs]] = {}
        analysed: dict[tuple[str, int | None], Outputs] = {}  # the runs graph records compare with
        for slot in self.slots:
            if slot.kind == "eager":
                values = self._cell_outcome(slot)
                if values is not None:
                    self.eager[slot.device] = Outputs(values, self._judge(slot, values, None, None))
                    ran[("eager", None, slot.family, slot.device)] = (slot.cell, self.eager[slot.device])
            elif slot.kind == "artifact":
                outputs = self._artifact_cell(slot, spec.get((slot.format, slot.opset)))
                if slot.specification:
                    spec[(slot.format, slot.opset)] = outputs
                if outputs is not None:
                    ran[(slot.format, slot.opset, slot.family, slot.device)] = (slot.cell, outputs)
                    if slot.graph_analysis:
                        analysed[(slot.format, slot.opset)] = outputs
            else:
                graph_slots[(slot.format, slot.opset)] = slot
        self.report.devices += self._devices(ran)
        for fmt in self.options.formats:
            for opset in self.options.opsets if takes_opset(fmt) else (None,):
                result = self.results[(fmt, opset)]
                if self.record_exports:
                    self.report.exports.append(_export_record(self.act, self.dtype, result))
                if takes_opset(fmt):
                    by_opset = {o: out for (f, o), out in analysed.items() if f == fmt}
                    self._graph_record(result, opset, by_opset, graph_slots.get((fmt, opset)))

    def _devices(self, ran: dict[tuple[str, int | None, str, str], tuple[Cell, Outputs]]) -> list[dict]:
        """Each runtime that ran on another device against the same runtime on CPU (same artifact)."""
        records = []
        for (fmt, opset, family, device), (cell, outputs) in ran.items():
            base = ran.get((fmt, opset, family, "cpu"))
            if device == "cpu" or base is None:
                continue
            records.append({
                "activation": self.act.id, "dtype": self.dtype, "format": fmt, "opset": opset, "runtime": family,
                "device": device, "ran_on": cell.ran_on, "budget_ulp": self.budget.ulp,
                **across_devices([b.x for b in self.inputs], base[1].values, outputs.values, self.budget, device),
            })
        return records

    def _cell_outcome(self, slot: _Slot) -> list[np.ndarray] | None:
        """The values of a finished cell task, or None with the cell's status and reason set."""
        cell, outcome = slot.cell, slot.outcome
        if isinstance(outcome, tasks.Ran):
            cell.ran_on = outcome.ran_on
            if outcome.settings:  # what the runtime ran with: once per runtime in the report
                self.report.environment.setdefault("runtimes", {}).setdefault(cell.runtime, outcome.settings)
            # NOTE: every task checked its outputs' shapes (tasks._outputs) before returning them
            return outcome.values
        cell.status, cell.stage, cell.reason = Status(outcome.status), outcome.stage, outcome.reason
        if (outcome.status == "unavailable" and outcome.stage == "provider" and slot.device != "cpu"
                and self.options.providers_explicit and cell.format != "eager"):
            # NOTE: asked for by name, a provider that does not run is an error (exit 4), not n/a;
            # an artifact it has no kernel for (a dtype) stays n/a.
            cell.status = Status.ERROR
        return None

    def _artifact_cell(self, slot: _Slot, spec: Outputs | None) -> Outputs | None:
        cell, result = slot.cell, slot.result
        if result.unavailable:
            cell.status, cell.stage, cell.reason = Status.UNAVAILABLE, "export", result.unavailable
            if result.stage == "unlisted":
                cell.status, cell.stage = Status.SKIP, ""
            return None
        if not result.ok:
            cell.stage, cell.log = result.stage, result.log[-4000:]
            # Only a declared "cannot be exported" excuses a missing artifact, and only when the
            # exporter (or the manifest) says none was produced, never a file that went missing.
            xfail = declaration(self.act, self._subject(slot, result.exporter), no_artifact=True)
            cell.status = Status.XFAIL if xfail and cell.stage == "export" else Status.ERROR
            cell.reason = f"no artifact: {result.error}"
            if cell.status == "xfail":
                cell.reason = f"{xfail.reason} [{cell.reason}]"
            return None
        values = self._cell_outcome(slot)
        if values is None:
            return None
        torch_ref = self.eager.get(slot.device) or self.eager.get("cpu")
        ok = self._judge(slot, values, torch_ref=torch_ref, spec=None if slot.specification else spec)
        return Outputs(values, ok)

    def _subject(self, slot: _Slot, exporter: str) -> Subject:
        return Subject(slot.format, slot.cell.runtime, self.dtype, exporter, slot.specification)

    def _judge(self, slot: _Slot, values: list[np.ndarray], torch_ref: Outputs | None, spec: Outputs | None) -> bool:
        """Judges the slot's cell (judge.py) and records the verdict in it; whether it is within budget."""
        verdict = judge(self.act, self._subject(slot, slot.cell.exporter), self.inputs, self.exact, values,
                        torch_ref, spec)
        _record(slot.cell, verdict)
        return verdict.ok

    def _graph_record(self, result: ExportResult, opset: int | None, ort_by_opset: dict,
                      graph: _Slot | None) -> None:
        record = {"activation": self.act.id, "dtype": self.dtype, "opset": result.opset or opset,
                  "op_types": result.details.get("op_types"), "nodes": result.details.get("nodes")}
        first = next(iter(ort_by_opset), None)
        if first is not None and opset in ort_by_opset and opset != first:
            record["ort_cpu_max_ulp_vs_opset"] = {
                str(first): int(max(int(np.max(ulp_distance(a, b), initial=0))
                                    for a, b in zip(ort_by_opset[opset].values, ort_by_opset[first].values)))
            }
        if graph is not None and graph.outcome is not None and opset in ort_by_opset:
            record.update(self._optimisation(graph.outcome, ort_by_opset[opset]))
        self.report.graphs.append(record)

    def _optimisation(self, outcome: tasks.Ran | tasks.NotRun, optimised: Outputs) -> dict:
        """What onnxruntime's graph optimisation did to the graph, and to the numbers.

        ort:cpu runs the optimised graph (ORT_ENABLE_ALL, onnxruntime's default); the graph task ran
        the same graph unoptimised (ORT_DISABLE_ALL) on the same inputs; both are judged against exact.
        """
        from actexport.graphs import describe
        if not isinstance(outcome, tasks.Ran):
            return {"optimisation": {"error": outcome.reason}}
        graph, plain = outcome.graph, outcome.values
        vs_exact = [merge([compare(v, e, b.x, self.budget) for v, e, b in zip(vals, self.exact, self.inputs)])
                    for vals in (plain, optimised.values)]
        between = [ulp_distance(a, b) for a, b in zip(plain, optimised.values)]
        differ = sum(values_differ(a, b) for a, b in zip(plain, optimised.values))
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


def _receive(outcome) -> None:
    run, slot = outcome.tag[1]
    run.receive(slot, outcome)


def _record(cell: Cell, v: Verdict) -> None:
    c = v.vs_exact
    cell.status, cell.reason, cell.deviates = v.status, v.reason, v.deviates
    cell.worst_battery, cell.special = v.worst_battery, v.special
    cell.max_abs, cell.max_ulp, cell.over_abs = c.max_abs, c.max_ulp, c.over_abs
    cell.worst_input, cell.worst_expected, cell.worst_actual = c.worst_input, c.worst_expected, c.worst_actual
    cell.nan_mismatch, cell.inf_mismatch = c.nan_mismatch, c.inf_mismatch
    cell.signed_zero_mismatch, cell.elements = c.signed_zero_mismatch, c.n
    cell.normal_ulp, cell.zero_loss, cell.zero_for, cell.zero_at = c.normal_ulp, c.zero_loss, c.zero_for, c.zero_at
    if v.vs_torch is not None:
        cell.torch_max_ulp, cell.torch_max_abs = v.vs_torch.max_ulp, v.vs_torch.max_abs
    cell.worst_torch, cell.worst_spec = v.worst_torch, v.worst_spec


def _export_record(act: Activation, dtype: str, r: ExportResult) -> dict:
    return {"activation": act.id, "format": r.format, "dtype": dtype, "exporter": r.exporter, "opset": r.opset,
            "ok": r.ok, "error": r.error, "unavailable": r.unavailable, "seconds": round(r.seconds, 3),
            "cache": r.cache,
            **({"log": r.log[-4000:]} if not r.ok and r.log else {}), **r.details,
            **({"stage": r.stage} if r.stage != "export" else {}), **({"environment": True} if r.environmental else {})}


def _from_manifest(act: Activation, fmt: str, dtype: str, opset: int | None, dir: Path, manifest: dict,
                   listed_only: bool = False, timeout: float | None = None) -> ExportResult:
    """The artifact as deployed in `dir`, checked against its manifest entry (path and sha256)."""
    entries = [e for e in manifest["artifacts"] if e["id"] == act.id and e["format"] == fmt and e["dtype"] == dtype]
    if takes_opset(fmt):
        entries = [e for e in entries if e.get("opset") == opset]
    if not entries:
        what = f"{fmt} {dtype}" + (f" opset {opset}" if takes_opset(fmt) else "")
        if listed_only:
            return ExportResult(fmt, None, "", stage="unlisted",
                                unavailable=f"{dir}/manifest.json lists no {what} artifact for {act.id}: nothing to check")
        return ExportResult(fmt, None, "", stage="export",
                            error=f"{dir}/manifest.json lists no {what} artifact for {act.id}")
    entry = entries[0]
    path = dir / entry["path"]
    if not path.is_file():
        return ExportResult(fmt, None, entry.get("exporter", ""), stage="missing",
                            error=f"{path} is listed in the manifest but missing")
    try:
        digest = art.sha256(path, seconds=timeout)
    except (TimeoutError, OSError) as e:
        return ExportResult(fmt, None, entry.get("exporter", ""), stage="integrity", error=str(e))
    if digest != entry["sha256"]:
        # NOTE: a changed file is an integrity failure (exit 1), not a missing artifact (exit 3).
        return ExportResult(fmt, None, entry.get("exporter", ""), stage="integrity",
                            error=f"{path} changed since export: sha256 {digest[:12]} != manifest {entry['sha256'][:12]}")
    problem = art.onnx_problem(path) if fmt == "onnx" else None
    if problem:
        return ExportResult(fmt, None, entry.get("exporter", ""), stage="integrity", error=problem)
    return ExportResult(fmt, path, entry.get("exporter", ""), opset=entry.get("opset"),
                        details=entry.get("details", {}))


__all__ = ["Options", "ProviderUnavailable", "verify", "plan_size"]
