"""Runs export jobs: the cache first, then the misses spread over worker processes, each key once.

Exports dominate a cold run (the dynamo ONNX exporter takes ~0.7 s a model and is single-threaded
Python), so they run in worker processes (isolate.py), one per core, while the caller verifies the
results already produced; an exporter that crashes or hangs fails its own job only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from actexport import cache as ec
from actexport import tasks
from actexport.isolate import DEFAULT_TIMEOUT, Task, default_workers
from actexport.isolate import workers as workers_for
from actexport.catalog import Activation
from actexport.exporters import ExportResult
from actexport.exporters.onnx import OnnxExporter
from actexport.files import atomic_write
from actexport.formats import format_of, takes_opset
from actexport.status import Stage


@dataclass(frozen=True, eq=False)  # NOTE: compared by identity: each job is one entry of a run
class ExportJob:
    """One artifact to produce: an activation in one format, dtype and opset, written to `path`."""

    act: Activation
    format: str
    dtype: str
    opset: int
    exporter: str
    path: Path


class Pipeline:
    """Routes the outcomes of a runner (isolate.Workers or isolate.Inline) to the handler of their kind."""

    def __init__(self, runner) -> None:
        self.runner = runner
        self.handlers: dict[str, Callable] = {}

    def on(self, kind: str, handler: Callable) -> None:
        self.handlers[kind] = handler

    def submit(self, kind: str, key: object, fn: Callable, args: tuple, timeout: float, priority: int = 0,
               fresh: bool = False) -> None:
        self.runner.submit(Task(fn, args, (kind, key), timeout, priority, fresh))

    def drive(self, until: Callable[[], bool]) -> None:
        """Runs tasks and handles their outcomes until `until()` holds."""
        while not until():
            if not self.runner.busy:
                raise RuntimeError("nothing left to run, yet the work is not done")
            for outcome in self.runner.poll():
                self.handlers[outcome.tag[0]](outcome)

    def close(self) -> None:
        self.runner.close()


class Exports:
    """Produces the results of `jobs`: cached ones at once, the others as tasks of `pipeline`.

    Args:
        jobs: what to export; jobs with the same cache key are exported once and copied.
        cache: the export cache, or None to export everything.
        pipeline: where the exports run (worker processes, or this process); by default worker
            processes, one per core (`workers`), closed by close().
        timeout: seconds one export may take before its worker is killed.
    """

    def __init__(self, jobs: list[ExportJob], cache: ec.ExportCache | None = None, workers: int | None = None,
                 pipeline: Pipeline | None = None, timeout: float = DEFAULT_TIMEOUT, isolate: bool = True) -> None:
        self.jobs, self.cache, self.timeout = jobs, cache, timeout
        self.keys = {job: ec.key(job.act, job.format, job.dtype, job.opset, job.exporter) for job in jobs}
        self._own = pipeline is None
        self.pipeline = pipeline
        self._done: dict[ExportJob, ExportResult] = {}
        self._leader: dict[str, ExportJob] = {}
        self._notes: dict[ExportJob, str] = {}
        self._waiting: dict[ExportJob, list[Callable]] = {}
        self._misses: list[ExportJob] = []
        for job in jobs:
            k = self.keys[job]
            if k in self._leader:
                continue  # the same artifact as an earlier job: copied from it (see _follow)
            self._leader[k] = job
            if cache is not None:
                hit, why = cache.fetch(k, job.path)
                if hit is not None:
                    self._done[job] = hit
                    continue
                if why != "miss":
                    self._notes[job] = why
            self._misses.append(job)
        if self._misses:
            if self.pipeline is None:
                self.pipeline = Pipeline(workers_for(min(workers or default_workers(), len(self._misses)), isolate))
            self.pipeline.on("export", self._finished)
            for n, job in enumerate(self._misses):
                self.pipeline.submit("export", n, tasks.export, (job.act.id, self.keys[job], job.format, job.dtype,
                                                                  job.path, job.opset, job.exporter, job.act.recipe),
                                     timeout, 1,
                                     fresh=format_of(job.format).fresh_process)

    def _finished(self, outcome) -> None:
        job = self._misses[outcome.tag[1]]
        if outcome.failure:
            # NOTE: a crash or a hang is a result of this export, not of the run; never cached.
            # NOTE: stage "crash": no declaration ("cannot be exported") ever excuses it.
            result = ExportResult(job.format, None, format_of(job.format).label(job.exporter),
                                  error=f"export failed: {outcome.failure}", seconds=outcome.seconds, stage=Stage.CRASH,
                                  onnx=OnnxExporter.parse(job.exporter) if takes_opset(job.format) else None)
            self._finish(job, result, "not stored: the export did not finish")
            return
        if isinstance(outcome.value, tasks.Elsewhere):
            result = tasks.export_one(job.act, job.format, job.dtype, job.path, job.opset, job.exporter)
        else:
            result = outcome.value.result
        self._finish(job, result)

    def _finish(self, job: ExportJob, result: ExportResult, status: str | None = None) -> None:
        if status is None:
            status = self.cache.store(self.keys[job], result) if self.cache is not None else "disabled"
        note = self._notes.get(job)
        self._done[job] = replace(result, cache=f"{note}; {status}" if note else status)
        for callback in self._waiting.pop(job, []):
            callback(self._done[job])

    def ready(self, job: ExportJob) -> bool:
        return job in self._done or self._leader[self.keys[job]] in self._done

    def when_done(self, job: ExportJob, callback: Callable[[ExportResult], None]) -> None:
        """Calls callback(result) once the job's result exists (at once if it does)."""
        if self.ready(job):
            callback(self._result_now(job))
            return
        leader = self._leader[self.keys[job]]
        self._waiting.setdefault(leader, []).append(lambda _: callback(self._result_now(job)))

    def _result_now(self, job: ExportJob) -> ExportResult:
        if job in self._done:
            return self._done[job]
        leader = self._leader[self.keys[job]]
        first = self._done[leader]
        result = replace(first, cache=f"same artifact as {leader.act.id} (exported once)")
        if first.ok:
            source = first.path
            assert source is not None  # first.ok says so
            atomic_write(job.path, lambda tmp: tmp.write_bytes(source.read_bytes()))
            result = replace(result, path=job.path)
        self._done[job] = result
        return result

    def result(self, job: ExportJob) -> ExportResult:
        """The result of one job, running the pipeline until it exists."""
        if not self.ready(job):
            assert self.pipeline is not None  # started by the constructor when a job was not ready
            self.pipeline.drive(lambda: self.ready(job))
        return self._result_now(job)

    def close(self) -> None:
        if self._own and self.pipeline is not None:
            self.pipeline.close()

    def __enter__(self) -> Exports:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
