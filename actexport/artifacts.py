"""Deployable artifacts: where each goes, the manifest that describes them, checksums."""

from __future__ import annotations

import os
import platform
import shutil
from importlib import metadata
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

from actexport.catalog import Activation, UsageError
from actexport.exporters import ExportResult
from actexport.formats import FORMATS, format_of, takes_opset
from actexport.files import atomic_write, error_text, sha256  # noqa: F401  (sha256: used by callers through here too)
from actexport.manifest import MANIFEST, SCHEMA, linked_part, onnx_exporter, read_manifest  # noqa: F401  (callers' names)
from actexport.status import Stage

MAX_ONNX_BYTES = 2 << 30  # protobuf's limit for one message


class Row(Protocol):
    """What an artifact's place and manifest entry need of its row: a catalog activation or a model."""

    @property
    def id(self) -> str: ...

    @property
    def module_repr(self) -> str: ...


def versions() -> dict[str, str | None]:
    """Versions of the packages that produce and run artifacts (None when not installed)."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in ("actexport", "torch", "onnx", "onnxscript", "onnxruntime", "onnxruntime-gpu", "numpy"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def artifact_path(out_dir: Path, act: Row, format: str, dtype: str, opset: int | None = None) -> Path:
    """DIR/<id>/model.<ext> for float32, DIR/<id>/<dtype>/model.<ext> for other dtypes.

    With several opsets, the first is model.onnx and each other one model.opset<N>.onnx.
    """
    base = out_dir / act.id if dtype == "float32" else out_dir / act.id / dtype
    return base / format_of(format).file_for(opset)


def export_artifact(act: Activation, format: str, dtype: str, out_dir: Path, opset: int, exporter: str,
                    primary: bool = True) -> ExportResult:
    """Exports one activation to one format into out_dir (no cache); returns the result, never raises."""
    from actexport.tasks import export_one
    if format not in FORMATS:
        raise UsageError(f"unknown format {format!r}; valid: {', '.join(FORMATS)}")
    path = artifact_path(out_dir, act, format, dtype, None if primary else opset)
    return export_one(act, format, dtype, path, opset, exporter)


def jobs(acts: tuple[Activation, ...], formats: tuple[str, ...], dtypes: tuple[str, ...], out_dir: Path,
         opsets: tuple[int, ...], exporter: str, units: set[tuple[str, str]] | None = None) -> list:
    """One ExportJob per (activation, dtype, format, opset), in that order, with its artifact path;
    with `units`, only those (activation id, dtype) pairs (a shard's)."""
    from actexport.pool import ExportJob
    out = []
    for act in acts:
        for dtype in dtypes:
            if units is not None and (act.id, dtype) not in units:
                continue
            for fmt in formats:
                for n, opset in enumerate(opsets if takes_opset(fmt) else opsets[:1]):
                    path = artifact_path(out_dir, act, fmt, dtype, None if n == 0 else opset)
                    out.append(ExportJob(act, fmt, dtype, opset, exporter, path))
    return out


def entry(act: Row, result: ExportResult, dtype: str, out_dir: Path) -> dict:
    """The manifest entry of one produced artifact."""
    assert result.path is not None
    details = dict(result.details)  # the graph profile is a field of its own, not a detail
    return {
        "id": act.id,
        "module": act.module_repr,
        "format": result.format,
        "path": result.path.relative_to(out_dir).as_posix(),
        "sha256": sha256(result.path),
        "dtype": dtype,
        "opset": result.opset,
        "exporter": result.exporter,
        **({"onnx_exporter": result.onnx.base} if result.onnx is not None else {}),
        **({"graphs": details.pop("graphs", "stock"), "translations": details.pop("translations", [])}
           if takes_opset(result.format) else {}),
        "inputs": list(result.inputs),
        "outputs": list(result.outputs),
        **({"details": details} if details else {}),
    }


def onnx_problem(path: Path) -> str | None:
    """Why an ONNX file from elsewhere must not be loaded (None when it may be).

    It must parse as an ONNX model without following any external data, and every external-data
    location must be a relative path that stays inside the file's directory: one that points
    outside (`/etc/passwd`, `../../secret`) is refused, never followed.
    """
    import onnx
    from google.protobuf.message import DecodeError
    size = path.stat().st_size
    if size >= MAX_ONNX_BYTES:  # NOTE: parsed in this process: a file past protobuf's limit is not ONNX
        return (f"{path} is {size} bytes: an ONNX protobuf is under 2 GiB (larger models keep their weights "
                "as external data): refused")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except (DecodeError, ValueError, OSError, RuntimeError) as e:
        return f"{path} is not a valid ONNX model ({error_text(e, 120)})"
    if not model.graph.output:
        return f"{path} is not a valid ONNX model (its graph has no output)"
    base = path.parent.resolve()
    for tensor in _tensors(model.graph):
        if tensor.data_location != onnx.TensorProto.EXTERNAL:
            continue
        location = {e.key: e.value for e in tensor.external_data}.get("location", "")
        target = (base / location).resolve()
        if Path(location).is_absolute() or not target.is_relative_to(base):
            return (f"{path}: tensor {tensor.name!r} keeps its data at {location!r}, outside the artifact's "
                    "directory: refused, not followed")
    return None


def _tensors(graph):
    """Every tensor of a graph: initializers and node attributes, subgraphs included."""
    yield from graph.initializer
    yield from (s.values for s in graph.sparse_initializer)
    for node in graph.node:
        for a in node.attribute:
            if a.HasField("t"):
                yield a.t
            yield from a.tensors
            if a.HasField("g"):
                yield from _tensors(a.g)
            for g in a.graphs:
                yield from _tensors(g)


def export_all(
    acts: tuple[Activation, ...],
    formats: tuple[str, ...],
    dtypes: tuple[str, ...],
    out_dir: Path,
    opsets: tuple[int, ...],
    exporter: str,
    progress=None,
    cache=None,
    workers: int | None = None,
    isolate: bool = True,
    timeout: float | None = None,
    units: set[tuple[str, str]] | None = None,
) -> list[tuple[Activation, str, ExportResult]]:
    """Exports every (activation, format, dtype) into out_dir and writes its manifest last.

    Args:
        cache: an ExportCache to reuse verified artifacts from (None: export everything).
        workers: worker processes for the exports (default: one per core).
        isolate: export in worker processes (a crash or hang fails one export); False: in this process.
        timeout: seconds one export may take (default isolate.DEFAULT_TIMEOUT).
        units: only these (activation id, dtype) pairs (a shard's, shards.py); None: every pair.

    Returns (activation, dtype, result) for each, failed ones included; the manifest lists only
    the files produced.
    """
    from dataclasses import replace

    from actexport.isolate import DEFAULT_TIMEOUT
    from actexport.pool import Exports
    out_dir = Path(out_dir)
    results = []
    with staging(out_dir) as staged:
        todo = jobs(acts, formats, dtypes, staged, opsets, exporter, units)
        with Exports(todo, cache, workers, timeout=timeout or DEFAULT_TIMEOUT, isolate=isolate) as exports:
            for job in todo:
                results.append((job.act, job.dtype, exports.result(job)))
                if progress:
                    progress(f"{job.act.id} {job.format}")
        put_out(out_dir, staged, [entry(act, r, dtype, staged) for act, dtype, r in results if r.ok])
    return [(act, dtype, replace(r, path=out_dir / r.path.relative_to(staged)) if r.ok and r.path is not None else r)
            for act, dtype, r in results]


@contextmanager
def staging(out_dir: Path) -> Iterator[Path]:
    """A folder beside `out_dir` to export into, removed however the run ends.

    Artifacts are exported there first and published all at once (put_out, publish.py): a run that
    is killed or fails halfway leaves out_dir as it was.
    """
    from actexport.publish import staging_dir
    _check_writable(out_dir)
    staged = staging_dir(out_dir)
    try:
        yield staged
    finally:
        shutil.rmtree(staged, ignore_errors=True)


def put_out(out_dir: Path, staged: Path, entries: list[dict]) -> None:
    """Publishes the staged files of `entries` and the manifest into out_dir at once."""
    from actexport.publish import publish
    try:
        publish(out_dir, staged, entries, MANIFEST, versions())
    except OSError as e:  # NOTE: a full disk, say: out_dir still holds what it held
        raise OutputError(f"cannot write {out_dir}: {error_text(e)}") from None


class OutputError(Exception):
    """The output directory could not take what a run produced (one line; exit 3)."""


def _check_writable(out_dir: Path) -> None:
    """Refuses an output directory that cannot be created or written, before anything is written."""
    probe = out_dir
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise UsageError(f"output directory {str(out_dir)!r} is not a directory ({str(probe)!r} is a file)")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise UsageError(f"output directory {str(out_dir)!r} cannot be written ({str(probe)!r} is not writable)")


def deployed(act: Row, fmt: str, dtype: str, opset: int | None, dir: Path, manifest: dict,
             listed_only: bool = False, timeout: float | None = None) -> ExportResult:
    """The artifact as deployed in `dir`, checked against its manifest entry (path and sha256)."""
    entries = [e for e in manifest["artifacts"] if e["id"] == act.id and e["format"] == fmt and e["dtype"] == dtype]
    if takes_opset(fmt):
        entries = [e for e in entries if e.get("opset") == opset]
    if not entries:
        what = f"{fmt} {dtype}" + (f" opset {opset}" if takes_opset(fmt) else "")
        if listed_only:
            return ExportResult(fmt, None, "", stage=Stage.UNLISTED,
                                unavailable=f"{dir}/manifest.json lists no {what} artifact for {act.id}: nothing to check")
        return ExportResult(fmt, None, "", stage=Stage.EXPORT,
                            error=f"{dir}/manifest.json lists no {what} artifact for {act.id}")
    entry = entries[0]
    path = dir / entry["path"]
    made_by = onnx_exporter(entry) if takes_opset(fmt) else None
    if not path.is_file():
        return ExportResult(fmt, None, entry.get("exporter", ""), onnx=made_by, stage=Stage.MISSING,
                            error=f"{path} is listed in the manifest but missing")
    try:
        digest = sha256(path, seconds=timeout)
    except (TimeoutError, OSError) as e:
        return ExportResult(fmt, None, entry.get("exporter", ""), onnx=made_by, stage=Stage.INTEGRITY, error=str(e))
    if digest != entry["sha256"]:
        # NOTE: a changed file is an integrity failure (exit 1), not a missing artifact (exit 3).
        return ExportResult(fmt, None, entry.get("exporter", ""), onnx=made_by, stage=Stage.INTEGRITY,
                            error=f"{path} changed since export: sha256 {digest[:12]} != manifest {entry['sha256'][:12]}")
    problem = onnx_problem(path) if fmt == "onnx" else None  # NOTE: parsed in this process, before any runtime
    if problem:
        return ExportResult(fmt, None, entry.get("exporter", ""), onnx=made_by, stage=Stage.INTEGRITY, error=problem)
    return ExportResult(fmt, path, entry.get("exporter", ""), onnx=made_by, opset=entry.get("opset"),
                        details=entry.get("details", {}))
