"""Runs export jobs: the cache first, then the misses spread over worker processes, each key once.

Exports dominate a cold run (the dynamo ONNX exporter takes ~0.7 s a model and is single-threaded
Python), so they run in `spawn`ed worker processes, one per core, while the caller verifies the
results already produced. Results come back in the order asked for.
"""

from __future__ import annotations

import os
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, replace
from multiprocessing import get_context
from pathlib import Path

from actexport import cache as ec
from actexport.catalog import Activation
from actexport.exporters import ExportResult, atomic_write


@dataclass(frozen=True, eq=False)  # NOTE: compared by identity: each job is one entry of a run
class ExportJob:
    """One artifact to produce: an activation in one format, dtype and opset, written to `path`."""

    act: Activation
    format: str
    dtype: str
    opset: int
    exporter: str
    path: Path


def default_workers() -> int:
    """$ACTEXPORT_JOBS, else the cores this process may run on."""
    if os.environ.get("ACTEXPORT_JOBS", "").strip().isdigit():
        return max(1, int(os.environ["ACTEXPORT_JOBS"]))
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def export_one(act: Activation, format: str, dtype: str, path: Path, opset: int, exporter: str) -> ExportResult:
    """Exports one activation to one format at `path`; returns the result, never raises."""
    if format == "onnx":
        from actexport.exporters import onnx  # noqa: PLC0415

        return onnx.export(act, dtype, path, opset=opset, exporter=exporter)
    if format == "torchscript":
        from actexport.exporters import torchscript  # noqa: PLC0415

        return torchscript.export(act, dtype, path)
    from actexport.exporters import torch_export  # noqa: PLC0415

    return torch_export.export(act, dtype, path)


_NOT_THE_SAME = "worker built a different module"


def _worker_init() -> None:
    import torch  # noqa: PLC0415

    # NOTE: one intra-op thread per worker: the workers already use every core between them.
    torch.set_num_threads(1)


def _worker_export(act_id: str, key: str, format: str, dtype: str, path: Path, opset: int,
                   exporter: str) -> ExportResult:
    from actexport import catalog  # noqa: PLC0415

    act = catalog.get(act_id)
    # NOTE: a worker rebuilds the activation from the catalog by id; a row changed in the caller's
    # process only (a test's monkeypatch, a --module factory) would export something else, so the
    # worker checks that it builds the very module the key describes, else the caller exports it.
    if ec.key(act, format, dtype, opset, exporter) != key:
        return ExportResult(format, None, "", error=_NOT_THE_SAME)
    return export_one(act, format, dtype, path, opset, exporter)


class Exports:
    """Produces the results of `jobs`: cached ones at once, the others in worker processes.

    Args:
        jobs: what to export; jobs with the same cache key are exported once and copied.
        cache: the export cache, or None to export everything.
        workers: worker processes (default: one per core); 1 exports in this process.
    """

    def __init__(self, jobs: list[ExportJob], cache: ec.ExportCache | None = None, workers: int | None = None) -> None:
        self.jobs = jobs
        self.cache = cache
        self.keys = {job: ec.key(job.act, job.format, job.dtype, job.opset, job.exporter) for job in jobs}
        self._done: dict[ExportJob, ExportResult] = {}
        self._futures: dict[ExportJob, Future] = {}
        self._leader: dict[str, ExportJob] = {}
        self._notes: dict[ExportJob, str] = {}
        self._pool: ProcessPoolExecutor | None = None
        misses: list[ExportJob] = []
        for job in jobs:
            k = self.keys[job]
            if k in self._leader:
                continue  # the same artifact as an earlier job: copied from it (see result())
            self._leader[k] = job
            if cache is not None:
                hit, why = cache.fetch(k, job.path)
                if hit is not None:
                    self._done[job] = hit
                    continue
                if why != "miss":
                    self._notes[job] = why
            misses.append(job)
        workers = min(workers or default_workers(), len(misses))
        if workers > 1:
            self._pool = ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_worker_init)
            for job in misses:
                self._futures[job] = self._pool.submit(_worker_export, job.act.id, self.keys[job], job.format,
                                                       job.dtype, job.path, job.opset, job.exporter)

    def result(self, job: ExportJob) -> ExportResult:
        """The result of one job, waiting for its worker if needed."""
        if job in self._done:
            return self._done[job]
        leader = self._leader[self.keys[job]]
        if leader is not job:
            first = self.result(leader)
            result = replace(first, cache=f"same artifact as {leader.act.id} (exported once)")
            if first.ok:
                atomic_write(job.path, lambda tmp: tmp.write_bytes(first.path.read_bytes()))
                result = replace(result, path=job.path)
            self._done[job] = result
            return result
        result = None
        if job in self._futures:
            try:
                result = self._futures.pop(job).result()
            except Exception as e:  # noqa: BLE001  (a worker that died: export it here instead)
                self._notes[job] = f"worker failed ({type(e).__name__}); exported in the main process"
            if result is not None and result.error == _NOT_THE_SAME:
                result = None
        if result is None:
            result = export_one(job.act, job.format, job.dtype, job.path, job.opset, job.exporter)
        status = self.cache.store(self.keys[job], result) if self.cache is not None else "disabled"
        note = self._notes.get(job)
        result = replace(result, cache=f"{note}; {status}" if note else status)
        self._done[job] = result
        return result

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> Exports:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
