"""`actexport check DIR`: the manifest against the files, then every artifact run as it is on disk."""

from __future__ import annotations

import os
from pathlib import Path

from actexport import artifacts as art
from actexport.catalog import UsageError
from actexport.exporters.onnx import DEFAULT_EXPORTER, OnnxExporter
from actexport.formats import format_of
from actexport.report import Report
from actexport.verify import Options, verify


def extra_files(dir: Path, manifest: dict) -> list[str]:
    """Files and links in DIR that the manifest does not list (only the manifest itself aside).

    Hidden files count: an ONNX model's external weights or a sidecar a runtime would read can be
    named anything. Folders are not followed through symbolic links.
    """
    listed = {e["path"] for e in manifest["artifacts"]} | {art.MANIFEST}
    found = []
    for root, dirs, files in os.walk(dir):  # NOTE: os.walk does not descend into linked folders
        for name in sorted(files + [d for d in dirs if os.path.islink(os.path.join(root, d))]):
            rel = Path(root, name).relative_to(dir).as_posix()
            if rel not in listed:
                found.append(rel)
    return sorted(found)


def unverified(dir: Path, manifest: dict, report: Report) -> list[str]:
    """Listed files that no cell hashed and loaded (whatever the entry's fields say, each must be)."""
    seen = {(c.activation, c.format, c.dtype, format_of(c.format).key_opset(c.opset))
            for c in report.cells if c.status != "skip" and c.format != "eager"}
    return [f"{dir / e['path']}: listed in {dir / art.MANIFEST} but no cell verified it"
            for e in manifest["artifacts"]
            if (e["id"], e["format"], e["dtype"], format_of(e["format"]).key_opset(e.get("opset"))) not in seen]


def options_for(manifest: dict, **kw) -> Options:
    """The verify options that cover exactly what the manifest lists."""
    entries = manifest["artifacts"]
    if not entries:
        raise UsageError("nothing to check: the manifest lists no artifact")
    formats = tuple(dict.fromkeys(e["format"] for e in entries))
    dtypes = tuple(dict.fromkeys(e["dtype"] for e in entries))
    onnx = [e for e in entries if e["format"] == "onnx"]
    opsets = tuple(dict.fromkeys(int(e["opset"]) for e in onnx if e.get("opset"))) or Options().opsets
    # NOTE: an entry that names no exporter reads as torch.onnx's stock dynamo graphs, as judge.declaration does
    exporters = {(art.onnx_exporter(e) or OnnxExporter("dynamo", "stock")).key for e in onnx}
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
    report.problems += unverified(dir, manifest, report)
    return report
