"""The cells of one activation in one dtype: planned as tasks, received in any order, judged in order."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from actexport import tasks
from actexport.cache import ExactCache, module_digest
from actexport.catalog import Activation
from actexport.compare import across_devices, ulp_distance
from actexport.exporters import ExportResult
from actexport.formats import takes_opset
from actexport.graphs import optimisation
from actexport.inputs import Battery, batteries
from actexport.judge import Outputs, Subject, Verdict, declaration, judge
from actexport.pool import Pipeline
from actexport.report import Cell, DeviceRecord, GraphRecord, Report, Status
from actexport.runtimes import for_format
from actexport.verify.options import VERIFY_ORT_THREADS, Options
from actexport.status import Stage

Progress = Callable[[str], None]


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


class ActivationRun:
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
                assert slot.cell is not None  # an artifact slot has its cell
                self._submit(slot, tasks.runtime, (fmt, slot.cell.runtime, slot.device, result.path, xs,
                                                   VERIFY_ORT_THREADS, shapes))

    def receive(self, slot: _Slot, outcome) -> None:
        if slot.cell is not None:
            slot.cell.seconds = outcome.seconds
            self.tick(f"{self.act.id} {slot.cell.runtime}")
        if outcome.failure:
            # NOTE: the worker crashed or hung: this cell is an error, the matrix goes on.
            who = f"{slot.cell.runtime} " if slot.cell is not None else ""
            slot.outcome = tasks.NotRun(Status.ERROR, Stage.RUN, f"{who}{outcome.failure}")
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
                assert slot.cell is not None  # eager and artifact slots have their cell
                values = self._cell_outcome(slot)
                if values is not None:
                    self.eager[slot.device] = Outputs(values, self._judge(slot, values, None, None))
                    ran[("eager", None, slot.family, slot.device)] = (slot.cell, self.eager[slot.device])
            elif slot.kind == "artifact":
                assert slot.cell is not None
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
                    self.report.exports.append(result.record(self.act.id, self.dtype))
                if takes_opset(fmt):
                    by_opset = {o: out for (f, o), out in analysed.items() if f == fmt}
                    self._graph_record(result, opset, by_opset, graph_slots.get((fmt, opset)))

    def _devices(self, ran: dict[tuple[str, int | None, str, str], tuple[Cell, Outputs]]) -> list[DeviceRecord]:
        """Each runtime that ran on another device against the same runtime on CPU (same artifact)."""
        records = []
        for (fmt, opset, family, device), (cell, outputs) in ran.items():
            base = ran.get((fmt, opset, family, "cpu"))
            if device == "cpu" or base is None:
                continue
            agreement = across_devices([b.x for b in self.inputs], base[1].values, outputs.values, self.budget, device)
            records.append(DeviceRecord(self.act.id, self.dtype, fmt, opset, family, device, cell.ran_on,
                                        self.budget.ulp, agreement))
        return records

    def _cell_outcome(self, slot: _Slot) -> list[np.ndarray] | None:
        """The values of a finished cell task, or None with the cell's status and reason set."""
        cell, outcome = slot.cell, slot.outcome
        assert cell is not None  # eager and artifact slots have their cell
        if isinstance(outcome, tasks.Ran):
            cell.ran_on = outcome.ran_on
            if outcome.settings:  # what the runtime ran with: once per runtime in the report
                self.report.environment.setdefault("runtimes", {}).setdefault(cell.runtime, outcome.settings)
            # NOTE: every task checked its outputs' shapes (tasks._outputs) before returning them
            return outcome.values
        assert outcome is not None  # the slot is done: its task returned
        cell.status, cell.stage, cell.reason = outcome.status, outcome.stage, outcome.reason
        if (outcome.status == Status.UNAVAILABLE and outcome.stage == Stage.PROVIDER and slot.device != "cpu"
                and self.options.providers_explicit and cell.format != "eager"):
            # NOTE: asked for by name, a provider that does not run is an error (exit 4), not n/a;
            # an artifact it has no kernel for (a dtype) stays n/a.
            cell.status = Status.ERROR
        return None

    def _artifact_cell(self, slot: _Slot, spec: Outputs | None) -> Outputs | None:
        cell, result = slot.cell, slot.result
        assert cell is not None and result is not None  # an artifact slot, its artifact ready
        if result.unavailable:
            cell.status, cell.stage, cell.reason = Status.UNAVAILABLE, Stage.EXPORT, result.unavailable
            if result.stage == Stage.UNLISTED:
                cell.status, cell.stage = Status.SKIP, Stage.NONE
            return None
        if not result.ok:
            cell.stage, cell.log = result.stage, result.log[-4000:]
            # Only a declared "cannot be exported" excuses a missing artifact, and only when the
            # exporter (or the manifest) says none was produced, never a file that went missing.
            xfail = declaration(self.act, self._subject(slot), no_artifact=True)
            cell.status = Status.XFAIL if xfail and cell.stage == Stage.EXPORT else Status.ERROR
            cell.reason = f"no artifact: {result.error}"
            if cell.status == Status.XFAIL:
                assert xfail is not None  # XFAIL only with a declaration
                cell.reason = f"{xfail.reason} [{cell.reason}]"
            return None
        values = self._cell_outcome(slot)
        if values is None:
            return None
        torch_ref = self.eager.get(slot.device) or self.eager.get("cpu")
        ok = self._judge(slot, values, torch_ref=torch_ref, spec=None if slot.specification else spec)
        return Outputs(values, ok)

    def _subject(self, slot: _Slot) -> Subject:
        assert slot.cell is not None  # only cells are judged
        onnx = slot.result.onnx if slot.result is not None else None  # eager rows have no artifact
        return Subject(slot.format, slot.cell.runtime, self.dtype, onnx, slot.specification)

    def _judge(self, slot: _Slot, values: list[np.ndarray], torch_ref: Outputs | None, spec: Outputs | None) -> bool:
        """Judges the slot's cell (judge.py) and records the verdict in it; whether it is within budget."""
        assert slot.cell is not None  # only cells are judged
        verdict = judge(self.act, self._subject(slot), self.inputs, self.exact, values,
                        torch_ref, spec)
        _record(slot.cell, verdict)
        return verdict.ok

    def _graph_record(self, result: ExportResult, opset: int | None, ort_by_opset: dict,
                      graph: _Slot | None) -> None:
        vs_opset, optimised, error = None, None, None
        first = next(iter(ort_by_opset), None)
        if first is not None and opset in ort_by_opset and opset != first:
            vs_opset = {
                str(first): int(max(int(np.max(ulp_distance(a, b), initial=0))
                                    for a, b in zip(ort_by_opset[opset].values, ort_by_opset[first].values)))
            }
        if graph is not None and graph.outcome is not None and opset in ort_by_opset:
            outcome = graph.outcome
            if isinstance(outcome, tasks.Ran):
                assert outcome.graph is not None  # tasks.optimisation's Ran carries the graph
                optimised = optimisation(outcome.graph, outcome.values, ort_by_opset[opset].values, self.exact,
                                         [b.x for b in self.inputs], self.budget)
            else:
                error = outcome.reason
        self.report.graphs.append(GraphRecord(
            self.act.id, self.dtype, result.opset or opset, result.details.get("op_types"),
            result.details.get("nodes"), vs_opset, optimised, error))


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


