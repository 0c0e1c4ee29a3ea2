"""`actexport check DIR`: the manifest against the files, then every artifact run as it is on disk."""

from __future__ import annotations

from pathlib import Path

from actexport import artifacts as art
from actexport.catalog import UsageError
from actexport.exporters.onnx import DEFAULT_EXPORTER
from actexport.exporters.onnx import kind as onnx_kind
from actexport.exporters.onnx import profile as onnx_profile
from actexport.exporters.onnx import spec
from actexport.report import Report
from actexport.verify import Options, verify


def extra_files(dir: Path, manifest: dict) -> list[str]:
    """Files in DIR that the manifest does not list (hidden files and the manifest itself aside)."""
    listed = {e["path"] for e in manifest["artifacts"]} | {art.MANIFEST}
    found = []
    for path in sorted(dir.rglob("*")):
        rel = path.relative_to(dir)
        if path.is_file() and not any(part.startswith(".") for part in rel.parts) and rel.as_posix() not in listed:
            found.append(rel.as_posix())
    return found


def options_for(manifest: dict, **kw) -> Options:
    """The verify options that cover exactly what the manifest lists."""
    entries = manifest["artifacts"]
    if not entries:
        raise UsageError("nothing to check: the manifest lists no artifact")
    formats = tuple(dict.fromkeys(e["format"] for e in entries))
    dtypes = tuple(dict.fromkeys(e["dtype"] for e in entries))
    onnx = [e for e in entries if e["format"] == "onnx"]
    opsets = tuple(dict.fromkeys(int(e["opset"]) for e in onnx if e.get("opset"))) or Options().opsets
    exporters = {spec(onnx_kind(e.get("exporter", "")), onnx_profile(e.get("exporter", ""))) for e in onnx}
    if len(exporters) > 1:
        raise UsageError("the manifest mixes ONNX artifacts of several exporters or graph profiles "
                         f"({', '.join(sorted(exporters))}); check each apart")
    return Options(formats=formats, dtypes=dtypes, opsets=opsets,
                   exporter=exporters.pop() if exporters else DEFAULT_EXPORTER,
                   listed_only=True, **kw)


def check(dir: Path, progress=None, workers: int | None = None, **options) -> Report:
    """Checks DIR: files missing, changed (sha256) or not in the manifest, then parity of every artifact.

    Returns the verify report of DIR with `problems` naming each extra file; its exit code is 0
    only when every listed file is there, unchanged, loads and passes.
    """
    dir = Path(dir)
    manifest = art.read_manifest(dir)
    report = verify(None, options_for(manifest, **options), artifacts_dir=dir, progress=progress, workers=workers)
    report.problems = [f"{dir / rel}: not listed in {dir / art.MANIFEST}" for rel in extra_files(dir, manifest)]
    return report
