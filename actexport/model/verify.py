"""`verify --module` (and `check`, `export`) for a user's model: every format and runtime judged on
the model's own inputs and outputs, at each output's scale (criterion.py), the layer at fault named
(origin.py).

It runs in this process: a model is one row, its exports dominate the time, and worker processes
would cost more (torch imported again, the module built again) than the isolation gains.
onnx.reference evaluates the ONNX graph only as a second vote on a cell onnxruntime fails, on the
battery that failed: it decides whether the export or onnxruntime deviates, and its own limits
(an op it lacks, a slow graph) never decide a verdict.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from actexport.dtypes import to_numpy
from actexport.exporters import ExportResult
from actexport.exporters.onnx import DEFAULT_EXPORTER
from actexport.files import error_text
from actexport.formats import format_of, takes_opset
from actexport.model import criterion
from actexport.model.batteries import ModelBattery, batteries
from actexport.model.export import export
from actexport.model.spec import Model
from actexport.catalog import UsageError
from actexport.report import Cell, Report, Status
from actexport.status import Stage

FLOATS = ("float16", "bfloat16", "float32", "float64")


@dataclass(frozen=True)
class ModelOptions:
    formats: tuple[str, ...] = ("onnx", "torchscript", "pt2")
    providers: tuple[str, ...] = ("cpu",)
    dtypes: tuple[str, ...] = ("float32",)
    opsets: tuple[int, ...] = (18,)
    exporter: str = DEFAULT_EXPORTER
    providers_explicit: bool = False
    reference: bool = True  # onnx.reference as the second vote on a failing onnxruntime cell
    origin: bool = True  # look for the layer at fault in a cell that fails
    samples: tuple[tuple[torch.Tensor, ...], ...] = field(default=())


@dataclass(frozen=True)
class Judged:
    """One runtime's outputs on every battery, judged output by output."""

    outputs: list[criterion.OutputFigures]
    values: list[list[np.ndarray]]  # [battery][output]

    @property
    def judged(self) -> list[criterion.OutputFigures]:
        """The outputs that say something: a vacuous output (0 or constant everywhere) beside others
        that vary is reported, not judged; when every output is vacuous, the model tests nothing."""
        real = [o for o in self.outputs if not o.vacuous]
        return real or self.outputs

    @property
    def ok(self) -> bool:
        return all(o.ok for o in self.judged)

    @property
    def vacuous(self) -> bool:
        return all(o.vacuous for o in self.outputs)

    def worst(self) -> criterion.OutputFigures:
        return max(self.judged, key=lambda o: (not o.ok, o.nonfinite, o.ulp_at_scale / max(o.budget_ulp, 1e-300)))


def _as_numpy(ys: list[torch.Tensor]) -> list[np.ndarray]:
    return [to_numpy(y) for y in ys]


def _judge(model: Model, dtype: str, batts: list[ModelBattery], values: list[list[np.ndarray]],
           ref: list[list[np.ndarray]], eager: Judged | None) -> Judged:
    names = [b.name for b in batts]
    outs = []
    for k, name in enumerate(model.outputs):
        got = [v[k] for v in values]
        want = [r[k] for r in ref]
        if got[0].dtype.kind not in "fc" and eager is not None:
            outs.append(criterion.exact_match(name, names, got, [e[k] for e in eager.values]))
            continue
        if got[0].dtype.kind not in "fc":
            outs.append(criterion.exact_match(name, names, got, got))
            continue
        outs.append(criterion.figures(name, dtype, names, got, want,
                                      None if eager is None else [e[k] for e in eager.values]))
    return Judged(outs, values)


def _shape_problem(model: Model, who: str, values: list[list[np.ndarray]], ref: list[list[np.ndarray]]) -> str | None:
    for b, (vs, rs) in enumerate(zip(values, ref)):
        if len(vs) != len(rs):
            return f"{who} returned {len(vs)} outputs where the module returns {len(rs)}"
        for name, v, r in zip(model.outputs, vs, rs):
            if tuple(v.shape) != tuple(r.shape):
                return f"{who} returned {name} of shape {list(v.shape)} where the module's is {list(r.shape)}"
    return None


def _fill(cell: Cell, judged: Judged) -> None:
    w = judged.worst()
    cell.status = Status.PASS if judged.ok else Status.FAIL
    cell.reason = criterion.summary(judged.outputs)
    cell.max_abs, cell.max_ulp = w.max_abs, int(min(w.ulp_at_scale, 2**62))
    cell.ulp_budget = int(min(w.budget_ulp, 2**62))
    cell.worst_battery, cell.elements = w.worst_battery, sum(o.elements for o in judged.outputs)
    cell.torch_max_ulp = None if w.eager_ulp_at_scale is None else int(min(w.eager_ulp_at_scale, 2**62))
    cell.outputs = [o.to_json() for o in judged.outputs]
    # the matrix's figure counts NaN/inf beside the ULPs, which measure finite elements only
    cell.nan_mismatch = sum(o.nan_mismatch for o in judged.outputs)
    cell.inf_mismatch = sum(o.nonfinite - o.nan_mismatch for o in judged.outputs)


class ModelRun:
    """One model in one dtype: the batteries, the references, then each artifact's cells."""

    def __init__(self, model: Model, dtype: str, options: ModelOptions, report: Report,
                 artifact: Callable[[str, int | None, Path], ExportResult], tick: Callable[[str], None]) -> None:
        self.model, self.dtype, self.options, self.report = model, dtype, options, report
        self.artifact, self.tick = artifact, tick
        self.batts = batteries(model, dtype, options.samples)
        reference = model.build(dtype).to(torch.float64)
        try:
            with torch.no_grad():
                self.ref = [_as_numpy(model.call(reference, [t.to(torch.float64) if t.is_floating_point() else t
                                                             for t in b.tensors])) for b in self.batts]
        except Exception as e:  # noqa: BLE001  (the module's code: it may fix a dtype inside forward)
            raise UsageError(f"--module {model.factory}: the module does not run in float64, which the exact "
                             f"reference needs (does forward cast to a fixed dtype?): {error_text(e, 200)}") from None
        self.eager: Judged | None = None
        self._warn_tiny()

    def _warn_tiny(self) -> None:
        """Outputs many orders below the inputs are judged at their own scale, but they usually mean
        random or untrained weights (a random-init classifier's ~1e-9): the user should know."""
        inputs = max((abs(v) for i in self.model.inputs if i.floating for v in (i.low, i.high)), default=0.0)
        for k, name in enumerate(self.model.outputs):
            values = [np.abs(r[k][np.isfinite(r[k])]) for r in self.ref if r[k].dtype.kind == "f"]
            scale = max((float(v.max()) for v in values if v.size), default=None)
            if scale is not None and inputs and scale < 1e-6 * inputs:
                self.report.environment.setdefault("warnings", []).append(
                    f"{self.model.id} output {name} is ~{scale:.1g} where the inputs reach {inputs:.3g} "
                    f"({self.dtype}): random or untrained weights? It is judged at its own scale")

    def cell(self, fmt: str, runtime: str, **kw) -> Cell:
        cell = Cell(self.model.id, self.model.factory, fmt, runtime, self.dtype, status=Status.PASS, **kw)
        self.report.cells.append(cell)
        return cell

    def run_eager(self) -> None:
        start = time.perf_counter()
        cell = self.cell("eager", "eager:cpu", ran_on="cpu")
        module = self.model.build(self.dtype)
        try:
            with torch.no_grad():
                values = [_as_numpy(self.model.call(module, list(b.tensors))) for b in self.batts]
        except Exception as e:  # noqa: BLE001  (a dtype the module does not run in)
            cell.status, cell.stage = Status.UNAVAILABLE, Stage.RUN
            cell.reason = f"eager PyTorch cannot run {self.model.id} in {self.dtype}: {error_text(e, 200)}"
            return
        self.eager = _judge(self.model, self.dtype, self.batts, values, self.ref, None)
        _fill(cell, self.eager)
        if not self.eager.ok and not self.eager.vacuous:
            cell.deviates = "pytorch"
        cell.seconds = time.perf_counter() - start
        self.tick(f"{self.model.id} eager")

    def run_format(self, fmt: str, opset: int | None, tmp: Path) -> None:
        from actexport.runtimes import ProviderMissing, RuntimeUnavailable, for_format
        result = self.artifact(fmt, opset, tmp)
        if result.stage == Stage.UNLISTED:  # a deployed folder that does not hold this combination
            return
        self.report.exports.append(result.record(self.model.id, self.dtype, shapes=True))
        runtimes = for_format(fmt, self.options.providers, reference=False)
        self.tick(f"{self.model.id} {fmt}")
        for rt in runtimes:
            start = time.perf_counter()
            cell = self.cell(fmt, rt.name, exporter=result.exporter, opset=result.opset if takes_opset(fmt) else None,
                             device=rt.device, artifact=self._artifact_path(result, tmp))
            if not result.ok:
                cell.status = Status.UNAVAILABLE if result.unavailable else Status.ERROR
                cell.stage, cell.reason = result.stage, f"no artifact: {result.unavailable or result.error}"
                cell.log = result.log[-4000:]
                continue
            if self.eager is None:
                cell.status, cell.stage = Status.UNAVAILABLE, Stage.RUN
                cell.reason = "eager PyTorch did not run in this dtype: nothing to judge the artifact against"
                continue
            stage = Stage.PROVIDER
            try:
                reason = rt.provider_unavailable()
                if reason:
                    raise ProviderMissing(reason)
                stage = Stage.LOAD
                reason = rt.unavailable()
                if reason:
                    raise RuntimeUnavailable(reason)
                assert result.path is not None  # result.ok
                rt.load(result.path)
                stage = Stage.RUN
                from actexport.model import run
                values = [run.outputs(self.model, rt, b.tensors, rt.device) for b in self.batts]
                cell.ran_on = rt.ran_on
            except ProviderMissing as e:
                explicit = self.options.providers_explicit and rt.device != "cpu"
                cell.status, cell.stage, cell.reason = (Status.ERROR if explicit else Status.UNAVAILABLE), \
                    Stage.PROVIDER, str(e)
                continue
            except RuntimeUnavailable as e:
                cell.status, cell.stage, cell.reason = Status.UNAVAILABLE, stage, str(e)
                continue
            except Exception as e:  # noqa: BLE001  (one runtime's failure is its cell's, not the run's)
                cell.status, cell.stage, cell.reason = Status.ERROR, stage, error_text(e, 300)
                continue
            finally:
                rt.close()
            wrong = _shape_problem(self.model, rt.name, values, self.ref)
            if wrong:
                cell.status, cell.stage, cell.reason = Status.ERROR, Stage.RUN, wrong
                continue
            judged = _judge(self.model, self.dtype, self.batts, values, self.ref, self.eager)
            _fill(cell, judged)
            if not judged.ok and not judged.vacuous:
                self._explain(cell, judged, fmt, result, opset, rt)
            cell.seconds = time.perf_counter() - start
            self.tick(f"{self.model.id} {rt.name}")

    @staticmethod
    def _artifact_path(result: ExportResult, tmp: Path) -> str | None:
        """Where the artifact is, when it outlives the run: a deployed file, never the temporary
        folder this run exports into (gone when the report is read)."""
        if result.path is None or Path(result.path).is_relative_to(tmp):
            return None
        return str(result.path)

    def _explain(self, cell: Cell, judged: Judged, fmt: str, result: ExportResult, opset: int | None, rt) -> None:
        """The side at fault (a second vote for ONNX) and the layer where the deviation starts."""
        worst = judged.worst()
        k = next((n for n, b in enumerate(self.batts) if b.name == worst.worst_battery), 0)
        if fmt == "onnx" and self.options.reference and result.path is not None:
            cell.deviates, note = self._second_vote(result.path, k, worst.name)
            if note:
                cell.reason += f" ({note})"
        if self.options.origin and not worst.vacuous:
            from actexport.model.origin import find
            try:
                exporter = result.onnx.key if result.onnx is not None else self.options.exporter
                cell.origin = find(self.model, fmt, lambda: type(rt).on(rt.device), self.dtype,
                                   list(self.batts[k].tensors), opset, exporter, rt.name)
            except Exception as e:  # noqa: BLE001  (a diagnosis that fails must not hide the verdict)
                cell.origin = {"module_path": None, "op": None, "catalog": None, "local_max_ulp": None,
                               "note": f"the search for the origin failed: {error_text(e, 200)}"}
            if cell.origin.get("module_path") is not None:
                o = cell.origin
                cell.reason += f"; starts at layer {o['module_path']} ({o['op']}"
                cell.reason += f", catalog {o['catalog']}" if o.get("catalog") else ""
                cell.reason += f": {o['declaration']}" if o.get("declaration") else ""
                cell.reason += ")"

    def _second_vote(self, path: Path, k: int, output: str) -> tuple[str, str]:
        """("export" or "runtime", a note) from onnx.reference on battery k; ("", why) when it cannot say."""
        try:
            import onnx
            from onnx.reference import ReferenceEvaluator
            proto = onnx.load(str(path))
            evaluator = ReferenceEvaluator(proto)
            feeds = {i.name: to_numpy(t) for i, t in zip(self.model.inputs, self.batts[k].tensors)}
            wanted = [v.name for v in proto.graph.input]
            with np.errstate(all="ignore"):
                values = evaluator.run(None, {n: feeds[n] for n in wanted if n in feeds})
        except Exception as e:  # noqa: BLE001
            return "", f"onnx.reference could not evaluate the graph ({error_text(e, 120)}): the side at fault is undecided"
        assert self.eager is not None  # artifacts are judged only after eager ran
        judged = _judge(self.model, self.dtype, [self.batts[k]], [list(values)], [self.ref[k]],
                        Judged(self.eager.outputs, [self.eager.values[k]]))
        if judged.ok:
            return "runtime", "onnx.reference evaluates the same graph within budget: onnxruntime deviates"
        return "export", "onnx.reference deviates too: the exported graph computes something else"


def verify_model(model: Model, options: ModelOptions, artifacts_dir: Path | None = None,
                 progress: Callable[[str], None] | None = None) -> Report:
    """Every cell of one model; `artifacts_dir`: judge the artifacts deployed there instead of exporting."""
    from actexport.verify.options import Options, environment
    start = time.perf_counter()
    report = Report()
    report.environment = environment(Options(formats=options.formats, providers=options.providers,
                                             dtypes=options.dtypes, opsets=options.opsets, exporter=options.exporter))
    report.environment["model"] = {"factory": model.factory, "inputs": [i.__dict__ for i in model.inputs],
                                   "outputs": list(model.outputs)}
    manifest = None
    if artifacts_dir is not None:
        from actexport.artifacts import read_manifest
        manifest = read_manifest(Path(artifacts_dir))
    tick = progress or (lambda _: None)
    with tempfile.TemporaryDirectory(prefix="actexport-model-") as tmp:
        for dtype in options.dtypes:
            def artifact(fmt: str, opset: int | None, where: Path, dtype: str = dtype) -> ExportResult:
                if manifest is not None:
                    from actexport.artifacts import deployed
                    return deployed(model, fmt, dtype, opset, Path(artifacts_dir or "."), manifest, listed_only=True)
                path = where / dtype / f"{fmt}-{opset}" / format_of(fmt).filename
                return export(model, fmt, dtype, path, opset, options.exporter)

            run = ModelRun(model, dtype, options, report, artifact, tick)
            run.run_eager()
            for fmt in options.formats:
                for opset in (options.opsets if takes_opset(fmt) else (None,)):
                    run.run_format(fmt, opset, Path(tmp))
    _nothing_verified(report)
    forget()  # the caches hold the user's module: a pytest session must not keep every one it checked
    report.wall_seconds = time.perf_counter() - start
    return report


def forget() -> None:
    """Empties the caches of built modules and output shapes."""
    from actexport.model.export import output_specs, traced
    from actexport.model.spec import built
    output_specs.cache_clear()
    traced.cache_clear()
    built.cache_clear()


def _nothing_verified(report: Report) -> None:
    """A dtype in which no artifact was judged (every runtime unavailable, or eager itself) verified
    nothing: its unavailable cells are errors, so that the run cannot pass on nothing."""
    for dtype in dict.fromkeys(c.dtype for c in report.cells):
        cells = [c for c in report.cells if c.dtype == dtype and c.format != "eager"]
        if cells and not any(c.status in (Status.PASS, Status.FAIL) for c in cells):
            for c in cells:
                if c.status == Status.UNAVAILABLE:
                    c.status = Status.ERROR
                    c.reason = f"no artifact could be judged in {dtype}, so nothing verified the model: {c.reason}"
