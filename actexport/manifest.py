"""DIR/manifest.json: what a folder of artifacts says it holds, read as hostile input."""

from __future__ import annotations

import json
from pathlib import Path

from actexport.catalog import DTYPES, UsageError
from actexport.exporters.onnx import OnnxExporter
from actexport.formats import FORMATS, format_of, takes_opset
from actexport.files import error_text

SCHEMA = 1
MANIFEST = "manifest.json"
MAX_MANIFEST_BYTES = 16 << 20  # ~40,000 entries


def read_manifest(dir: Path) -> dict:
    """Reads and checks DIR/manifest.json; a UsageError names what is wrong with it."""
    path = dir / MANIFEST
    if not dir.is_dir():
        raise UsageError(f"artifact directory {str(dir)!r} does not exist or is not a directory")
    if not path.is_file():
        raise UsageError(f"{str(path)!r} is missing; run `actexport export --out {dir}` first")
    if path.stat().st_size > MAX_MANIFEST_BYTES:
        raise UsageError(f"{str(path)!r} is {path.stat().st_size} bytes; a manifest is at most {MAX_MANIFEST_BYTES}")
    try:
        doc = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as err:
        # NOTE: ValueError covers integers past Python's digit limit; RecursionError, deep nesting
        raise UsageError(f"{str(path)!r} is not valid JSON ({error_text(err, 120)})") from None
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA or not isinstance(doc.get("artifacts"), list):
        raise UsageError(f"{str(path)!r} is not an actexport manifest of schema {SCHEMA}")
    seen: set[tuple] = set()
    for e in doc["artifacts"]:
        if not isinstance(e, dict) or not {"id", "format", "path", "dtype", "sha256"} <= e.keys():
            raise UsageError(f"{str(path)!r} has an artifact entry without id/format/path/dtype/sha256: {e!r:.120}")
        if not all(isinstance(e[k], str) and e[k] for k in ("id", "format", "path", "dtype", "sha256")):
            raise UsageError(f"{str(path)!r}: id, format, path, dtype and sha256 must be non-empty strings: {e!r:.120}")
        if e["format"] not in FORMATS:
            raise UsageError(f"{str(path)!r} lists an artifact of unknown format {e['format']!r}; valid: "
                             f"{', '.join(FORMATS)}")
        if e["dtype"] not in DTYPES:
            raise UsageError(f"{str(path)!r} lists an artifact of unknown dtype {e['dtype']!r}; valid: "
                             f"{', '.join(DTYPES)}")
        if takes_opset(e["format"]):  # the ONNX operator set
            top = _max_onnx_opset()
            opset = e.get("opset")
            if not (isinstance(opset, int) and not isinstance(opset, bool) and 1 <= opset <= top):
                raise UsageError(f"{str(path)!r}: the ONNX entry {e['path']!r} has opset {opset!r}; valid: an "
                                 f"integer in 1..{top}")
        for key, kind in (("exporter", str), ("onnx_exporter", str), ("graphs", str), ("details", dict)):
            if key in e and not isinstance(e[key], kind):
                raise UsageError(f"{str(path)!r}: {key!r} of {e['path']!r} must be a {kind.__name__}, not "
                                 f"{type(e[key]).__name__}")
        if takes_opset(e["format"]):
            try:
                onnx_exporter(e)
            except UsageError as err:
                raise UsageError(f"{str(path)!r}: {e['path']!r}: {err}") from None
        link = linked_part(dir, e["path"])
        if link:
            raise UsageError(f"{str(path)!r} lists {e['path']!r}: {link}")
        cell = (e["id"], e["format"], e["dtype"], format_of(e["format"]).key_opset(e.get("opset")))
        if cell in seen:
            raise UsageError(f"{str(path)!r} lists two {e['format']} {e['dtype']} artifacts for {e['id']!r}; "
                             "each may be listed once")
        seen.add(cell)
    return doc


def onnx_exporter(entry: dict) -> OnnxExporter | None:
    """The torch.onnx exporter and graph profile of an ONNX entry; None when it names neither."""
    label = entry.get("exporter", "")
    base, graphs = entry.get("onnx_exporter"), entry.get("graphs")
    # NOTE: manifests written before "onnx_exporter" (and before "graphs") name them only in the
    # exporter's label, "torch.onnx.export(dynamo=False)" or "... + actexport graphs"; this reads it.
    if base is None and label:
        base = "legacy" if "dynamo=False" in label else "dynamo"
    if graphs is None and label:
        head, _, tail = label.rpartition(" + ")
        graphs = tail.removesuffix(" graphs") if head and tail.endswith(" graphs") else "stock"
    if base is None:
        return None
    return OnnxExporter.of(base, graphs or "stock")


def linked_part(dir: Path, rel: str) -> str | None:
    """Why DIR/rel is not a path inside DIR (absolute, `..`, or a symbolic link at any of its
    components), or None: what a manifest lists is read only from inside its directory."""
    parts = Path(rel).parts
    if Path(rel).is_absolute() or ".." in parts or not parts:
        return "a path outside its directory: refused"
    for n in range(1, len(parts) + 1):
        if (dir / Path(*parts[:n])).is_symlink():
            return f"{Path(*parts[:n]).as_posix()!r} is a symbolic link: refused, not followed"
    return None


def _max_onnx_opset() -> int:
    import onnx
    return int(onnx.defs.onnx_opset_version())
