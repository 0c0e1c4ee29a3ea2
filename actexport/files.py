"""Files: written whole or not at all, hashed with a deadline, and the one-line cause of an error.

A leaf module (it imports nothing of actexport): the exporters, the caches, the reports and the
artifact checks all use it.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Callable


def sha256(path: Path, seconds: float | None = None) -> str:
    """The file's sha256; TimeoutError when it takes longer than `seconds` (a file from elsewhere can
    be any size)."""
    import time
    h = hashlib.sha256()
    end = None if seconds is None else time.monotonic() + seconds
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
            if end is not None and time.monotonic() > end:
                raise TimeoutError(f"hashing {path} took longer than {seconds:g} s (--timeout)")
    return h.hexdigest()


def atomic_write(path: Path, write: Callable[[Path], object]) -> None:
    """Calls write(tmp) on a file in a fresh hidden folder beside `path`, then renames it into place.

    The folder must hold exactly that one file afterwards: an exporter that left a sidecar (ONNX
    external data, say) fails here rather than producing an artifact that is not self-contained.
    An interrupted export leaves at most a hidden `.tmp` folder, never a file that looks complete.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        tmp = tmp_dir / path.name
        write(tmp)
        produced = sorted(p.name for p in tmp_dir.iterdir())
        if produced != [path.name]:
            raise RuntimeError(f"exporter wrote {produced}, expected only {path.name}")
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)


def root_cause(e: BaseException) -> str:
    """One line naming the innermost cause: exporters wrap the useful message in several layers."""
    while e.__cause__ is not None:
        e = e.__cause__
    lines = [ln.strip() for ln in re.sub(r"\x1b\[[0-9;]*m", "", str(e)).splitlines() if ln.strip()]
    return f"{type(e).__name__}: {lines[0] if lines else ''}"[:500]


def error_text(e: BaseException, limit: int | None = None) -> str:
    """"TypeName: message", the message cut at `limit` characters: how an error is named in one line."""
    text = str(e)
    return f"{type(e).__name__}: {text if limit is None else text[:limit]}"


def json_ready(o):
    """`o` as strict JSON takes it: a non-finite float becomes the string "nan", "inf" or "-inf"
    (worst inputs and exact values are often special, and null would hide which), a tuple a list,
    a path a string."""
    if isinstance(o, float):
        return o if math.isfinite(o) else str(o)
    if isinstance(o, dict):
        return {str(k): json_ready(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [json_ready(v) for v in o]
    if isinstance(o, Path):
        return str(o)
    return o


def write_json(path: Path, doc) -> None:
    """Every JSON file actexport writes: `doc` made strict (json_ready), indented, written atomically."""
    text = json.dumps(json_ready(doc), indent=2, allow_nan=False) + "\n"
    atomic_write(Path(path), lambda tmp: tmp.write_text(text))
