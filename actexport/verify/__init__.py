"""Orchestration only: builds the matrix activation x format x runtime x dtype and fills a Report.

Every cell is judged against the exact reference (the oracle, rounded once to the dtype); its
distance to eager PyTorch is reported beside it, and eager PyTorch itself is a row of the matrix.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from actexport import artifacts as art
from actexport import catalog
from actexport.cache import ExactCache
from actexport.catalog import Activation, UsageError, select
from actexport.exporters import ExportResult
from actexport.formats import format_of
from actexport.isolate import warm_up
from actexport.isolate import workers as workers_for
from actexport.pool import Exports, Pipeline
from actexport.report import Cell, Report, Status
from actexport.verify.cells import ActivationRun, Progress
from actexport.verify.options import Options, ProviderUnavailable, check_providers, environment, plan_size
from actexport.shards import record as shard_record
from actexport.shards import verify_cost
from actexport.status import Stage


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
    units = options.units([a.id for a in acts])
    chosen = set(units)

    start = time.perf_counter()
    report = Report(environment=environment(options))
    if options.shard is not None:
        report.environment["shard"] = shard_record(options.shard, units, [a.id for a in acts],
                                                   sum(verify_cost(u, options.formats) for u in units))
    tick = progress or (lambda label: None)
    if options.isolate:
        warm_up()  # the forkserver imports torch and onnxruntime while the oracles are computed
    with tempfile.TemporaryDirectory(prefix="actexport-") as tmp:
        pipeline = Pipeline(workers_for(workers, options.isolate))
        try:
            exact = ExactCache(cache.root) if cache is not None else None
            runs = [ActivationRun(act, dtype, options, report, tick, exact) for act in acts for dtype in options.dtypes
                    if (act.id, dtype) in chosen]
            produce = None
            if artifacts_dir is None:
                # Every export of the run is planned up front, so the workers run ahead of verification.
                todo = art.jobs(acts, options.formats, options.dtypes, Path(tmp), options.opsets, options.exporter,
                                chosen)
                exports = Exports(todo, cache, pipeline=pipeline, timeout=options.timeout)
                by_cell = {(j.act.id, j.dtype, j.format, format_of(j.format).key_opset(j.opset)): j for j in todo}

                def produce(act: Activation, dtype: str, fmt: str, opset: int | None, then=None):
                    job = by_cell[(act.id, dtype, fmt, opset)]
                    if then is None:
                        return exports.result(job)
                    exports.when_done(job, then)
                    return None
            else:
                assert manifest is not None  # read above when artifacts_dir is given
                def produce(act: Activation, dtype: str, fmt: str, opset: int | None, then=None):
                    result = art.deployed(act, fmt, dtype, opset, Path(artifacts_dir), manifest,
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
            broken = {(c.activation, c.format) for c in report.cells if c.status == Status.ERROR}
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
        if all(c.status == Status.UNAVAILABLE and c.stage in (Stage.LOAD, Stage.RUN) for c in group):
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


__all__ = ["Options", "ProviderUnavailable", "check_providers", "plan_size", "verify"]
