"""Content-addressed export cache: an artifact is reused only when its key and its checksum match.

The key is a sha256 of everything that determines the exported bytes: the module (class, repr and
the bytes of every parameter and buffer), the example shape and its static dims, the format, dtype,
opset and exporter, the versions of python/torch/onnx/onnxscript/onnx-ir, and the source of
actexport's exporters. An entry is a directory `<root>/v1/<key[:2]>/<key>/` holding `entry.json`
(the export's metadata and the artifact's sha256, itself checksummed) and `artifact` (the file).
Every lookup re-hashes the file it hands out; any mismatch or unreadable entry is reported and the
entry rebuilt, never used.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import asdict, replace
from functools import lru_cache
from pathlib import Path

import torch

from actexport.catalog import Activation, UsageError
from actexport.exporters import ExportResult
from actexport.exporters.onnx import OnnxExporter
from actexport.files import error_text, sha256
from actexport.formats import format_of, takes_opset

LAYOUT = "v1"
ENTRY, ARTIFACT = "entry.json", "artifact"
_KEYED_PACKAGES = ("torch", "onnx", "onnxscript", "onnx-ir", "numpy")
# Root causes that say nothing about the module: a failure for one of these is never cached.
_TRANSIENT = ("OSError", "MemoryError", "KeyboardInterrupt", "TimeoutError", "PermissionError",
              "BrokenProcessPool", "FileNotFoundError")


def default_root() -> Path:
    """$ACTEXPORT_CACHE, else $XDG_CACHE_HOME/actexport, else ~/.cache/actexport."""
    if os.environ.get("ACTEXPORT_CACHE"):
        return Path(os.environ["ACTEXPORT_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "actexport"


def _environment_digest() -> str:
    from actexport.lifecycle import plugins
    return _environment_digest_for(tuple(plugins()))


@lru_cache(maxsize=8)
def _environment_digest_for(plugin_names: tuple[str, ...]) -> str:
    """The versions, exporter sources and plugins that the exported bytes depend on."""
    from importlib import metadata
    h = hashlib.sha256(sys.version.encode())
    for name in _KEYED_PACKAGES:
        try:
            h.update(f"{name}={metadata.version(name)};".encode())
        except metadata.PackageNotFoundError:
            h.update(f"{name}=none;".encode())
    here = Path(__file__).parent
    for source in sorted([*(here / "exporters").glob("*.py"), here / "inputs.py", here / "cache.py",
                         here / "translations.py"]):
        h.update(source.name.encode() + source.read_bytes())
    # Plugins can register custom ops and their translations: their names and code change exports.
    import importlib.util
    for name in plugin_names:
        spec = importlib.util.find_spec(name)
        origin = Path(spec.origin) if spec and spec.origin else None
        h.update(f"plugin={name};".encode() + (origin.read_bytes() if origin and origin.is_file() else b""))
    return h.hexdigest()


def _source_files(act: Activation, module) -> list[Path]:
    """The files a user module's code lives in (its factory's and every submodule class's), outside
    torch and actexport: their bytes are part of its key, since `forward` is not in its repr."""
    import inspect
    if act.recipe is None:
        return []  # catalog rows: torch's own classes, keyed by the torch version
    objs: list[Callable[..., object]] = [act.factory, *(type(m) for m in module.modules())]
    files = set()
    for obj in objs:
        try:
            files.add(Path(inspect.getfile(obj)).resolve())
        except (TypeError, OSError):
            continue
    skip = (Path(torch.__file__).parent.resolve(), Path(__file__).parent.resolve())
    return sorted(f for f in files if f.is_file() and not any(f.is_relative_to(d) for d in skip))


def module_digest(act: Activation) -> str:
    """A sha256 of the module: its class, repr and the bytes of every parameter and buffer (and,
    for a user module, of the source files its code lives in)."""
    module = act.module()
    h = hashlib.sha256(f"{type(module).__module__}.{type(module).__qualname__}|{module!r}".encode())
    for source in _source_files(act, module):
        h.update(f"|{source.name}:".encode() + source.read_bytes())
    for name, t in sorted(module.state_dict().items()):
        t = t.detach().cpu().contiguous()
        h.update(f"|{name}:{t.dtype}:{tuple(t.shape)}:".encode())
        h.update(t.view(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def key(act: Activation, format: str, dtype: str, opset: int | None, exporter: str) -> str:
    """The content address of one export."""
    material = {
        "module": module_digest(act), "shape": list(act.shape), "static_dims": list(act.static_dims),
        "format": format, "dtype": dtype, "opset": format_of(format).key_opset(opset),
        "exporter": exporter if takes_opset(format) else None, "environment": _environment_digest(),
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class _Mismatch(Exception):
    """A cached artifact whose bytes are not the ones recorded."""


class ExportCache:
    """Looks up and stores export results by key. Failures to read or write it are never fatal:
    they are recorded on the result (`cache`) and the export happens as if there were no cache."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    @staticmethod
    def check_root(root: Path) -> None:
        """Raises UsageError when a cache directory given by the user cannot be created or written."""
        probe = Path(root)
        while not probe.exists():
            probe = probe.parent
        if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
            raise UsageError(f"cache directory {str(root)!r} cannot be written ({str(probe)!r} is not a "
                             "writable directory); give another --cache-dir or --no-cache")

    def _dir(self, k: str) -> Path:
        return self.root / LAYOUT / k[:2] / k

    def fetch(self, k: str, dest: Path) -> tuple[ExportResult | None, str]:
        """The cached result with its artifact copied to `dest`, or (None, why it was not usable).

        The copy at `dest` is hashed and compared with the recorded sha256, so what is handed out is
        what was stored, byte for byte.
        """
        from actexport.files import atomic_write
        entry_dir = self._dir(k)
        if not entry_dir.is_dir():
            return None, "miss"
        try:
            doc = json.loads((entry_dir / ENTRY).read_text())
            meta = doc["meta"]
            if _digest(json.dumps(meta, sort_keys=True).encode()) != doc["meta_sha256"] or meta["key"] != k:
                return self._corrupt(entry_dir, "entry.json does not match its checksum")
            fields = meta["result"]
            onnx = fields.get("onnx")
            result = ExportResult(**{**fields, "path": None, "inputs": tuple(fields["inputs"]),
                                     "outputs": tuple(fields["outputs"]),
                                     "onnx": OnnxExporter(**onnx) if onnx is not None else None})
            if meta["artifact_sha256"] is None:  # a cached failure: the exporter cannot produce this one
                return replace(result, cache="hit", seconds=0.0), "hit"
            expected = meta["artifact_sha256"]
            got = sha256(entry_dir / ARTIFACT)
            if got != expected:
                return self._corrupt(entry_dir, f"artifact sha256 {got[:12]} != recorded {expected[:12]}")
        except (OSError, ValueError, KeyError, TypeError) as e:
            return self._corrupt(entry_dir, f"unreadable ({error_text(e)})")

        def copy_checked(tmp: Path) -> None:
            shutil.copyfile(entry_dir / ARTIFACT, tmp)
            got = sha256(tmp)
            if got != expected:  # NOTE: raised before the rename: dest never holds bad bytes
                raise _Mismatch(f"the copy at {dest} has sha256 {got[:12]}, not the recorded {expected[:12]}")

        try:
            atomic_write(dest, copy_checked)
        except (OSError, _Mismatch) as e:
            # NOTE: the entry was read and checked above: a failure here is the destination's (a file
            # where a folder should be, a full disk), and the entry stays for every other run.
            return None, f"not used: cannot write {dest} ({error_text(e)})"
        return replace(result, path=dest, cache="hit", seconds=0.0), "hit"

    def _corrupt(self, entry_dir: Path, why: str) -> tuple[None, str]:
        shutil.rmtree(entry_dir, ignore_errors=True)
        return None, f"corrupt entry discarded and rebuilt: {why}"

    def store(self, k: str, result: ExportResult) -> str:
        """Stores a fresh result; returns "stored", or why it was not (never raises)."""
        if result.error and (result.environmental or result.error.split(":")[0] in _TRANSIENT):
            return "not stored: the failure came from the machine (files, memory, time), not the exporter"
        if not result.ok and not (result.error or result.unavailable):
            return "not stored: no result"
        final = self._dir(k)
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=f".{k[:12]}.", suffix=".tmp", dir=final.parent))
            try:
                digest = None
                if result.ok:
                    assert result.path is not None  # result.ok says so
                    shutil.copyfile(result.path, tmp / ARTIFACT)
                    digest = sha256(tmp / ARTIFACT)
                fields = {f: v for f, v in asdict(result).items() if f not in ("path", "seconds", "cache")}
                fields["log"] = fields["log"][-4000:]
                meta = {"key": k, "artifact_sha256": digest, "export_seconds": round(result.seconds, 3),
                        "result": fields}
                text = json.dumps({"meta": meta, "meta_sha256": _digest(json.dumps(meta, sort_keys=True).encode())})
                (tmp / ENTRY).write_text(text)
                try:
                    os.rename(tmp, final)
                except OSError:  # another process stored the same key first: keep theirs
                    if not final.is_dir():
                        raise
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        except OSError as e:
            return f"not stored: {error_text(e)}"
        return "stored"


@lru_cache(maxsize=4)
def _source_digest(path: str) -> str:
    """A file's sha256, read once a process (every battery's key needs the oracle's source)."""
    return _digest(Path(path).read_bytes())


class ExactCache:
    """The exact reference of one battery, reused by content: evaluating float64 results in mpmath
    costs about half a second an activation, every run. The key is a sha256 of the activation's id
    and oracle parameters, the source of oracle.py, mpmath's version and the input bytes; an entry is
    `<root>/v1/exact/<key>.npy` beside `<key>.sha256`, the checksum of the array it holds. A missing,
    unreadable or mismatching entry is computed afresh (and rewritten), never used."""

    def __init__(self, root: Path) -> None:
        self.dir = Path(root) / LAYOUT / "exact"

    @staticmethod
    def key(act: Activation, x) -> str:
        import mpmath
        import numpy as np

        from actexport import oracle
        x = np.ascontiguousarray(x)
        h = hashlib.sha256(f"{act.id}|{act.oracle.params!r}|{act.oracle.limits!r}|{mpmath.__version__}|".encode())
        h.update(_source_digest(oracle.__file__).encode())
        h.update(f"|{x.dtype.str}|{x.shape}|".encode() + x.view(np.uint8).tobytes())
        return h.hexdigest()

    def get(self, k: str):
        """The stored array, or None when there is none that matches its checksum."""
        import numpy as np
        try:
            data = (self.dir / f"{k}.npy").read_bytes()
            if _digest(data) != (self.dir / f"{k}.sha256").read_text().strip():
                return None
            import io
            return np.load(io.BytesIO(data), allow_pickle=False)
        except (OSError, ValueError):
            return None

    def put(self, k: str, y) -> None:
        """Stores `y`; a cache that cannot be written is skipped, never an error."""
        import io

        import numpy as np
        buffer = io.BytesIO()
        np.save(buffer, np.asarray(y, dtype=np.float64), allow_pickle=False)
        data = buffer.getvalue()
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            for name, content in ((f"{k}.npy", data), (f"{k}.sha256", _digest(data).encode())):
                fd, tmp = tempfile.mkstemp(dir=self.dir, prefix=".tmp-")
                with os.fdopen(fd, "wb") as f:
                    f.write(content)
                os.replace(tmp, self.dir / name)
        except OSError:
            return

    def exact(self, act: Activation, x):
        """act.oracle(x), from the cache when the reference is the slow one (float64 results of a
        catalog row, evaluated in mpmath)."""
        import numpy as np
        if np.asarray(x).dtype != np.float64 or act.recipe is not None:
            with np.errstate(over="ignore"):
                return act.oracle(x)
        k = self.key(act, x)
        y = self.get(k)
        if y is None:
            with np.errstate(over="ignore"):
                y = act.oracle(x)
            self.put(k, y)
        return y
