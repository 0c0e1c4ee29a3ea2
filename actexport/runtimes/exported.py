"""torch.export programs (.pt2) loaded from the file with torch.export.load."""

from __future__ import annotations

import contextlib
import json
import zipfile
from pathlib import Path, PurePosixPath

import torch

from actexport.capture import quiet
from actexport.exporters.torch_export import unavailable as format_unavailable
from actexport.files import error_text
from actexport.runtimes.pt2_text import Refused, check_program_json
from actexport.runtimes.torch_common import TorchModuleRuntime

MAX_PROGRAM_BYTES = 64 << 20  # a serialized graph of an activation is a few kB; a large model's, a few MB


@contextlib.contextmanager
def weights_only():
    """Every torch.load inside the block uses torch's restricted unpickler (weights_only=True).

    torch.export.load unpickles pickled weights and constants with weights_only=False, and falls back
    to it when the safe loader refuses: a crafted .pt2 file could run any Python on load. Inside this
    block such a file fails to load instead.
    """
    # NOTE: patched for the whole process, which is a worker process of its own (isolate.py).
    original = torch.load

    def safe_load(*args, **kwargs):
        kwargs["weights_only"] = True
        return original(*args, **kwargs)

    torch.load = safe_load
    try:
        yield
    finally:
        torch.load = original


def archive_problem(path: Path) -> str | None:
    """Why a .pt2 archive must not be loaded: it asks torch.export.load to unpickle something.

    torch.export.load unpickles weights and constants marked `use_pickle` (torch.load with
    weights_only=False) and "opaque object" constants with plain pickle.loads: either runs any Python
    a crafted archive contains. torch.export.save writes neither for the modules actexport exports
    (plain tensors are stored raw), so an archive that has them is refused before anything is read.
    The serialized programs' symbolic sizes and node targets are code too (pt2_text.py).
    """
    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
            for name in names:
                parts = PurePosixPath(name).parts
                if name.startswith("/") or ".." in parts:
                    return f"{path}: archive member {name!r} points outside the archive: refused"
                base = parts[-1] if parts else ""
                if base.startswith(("opaque_obj", "custom_obj")):
                    return f"{path}: archive holds a pickled object ({name}); loading it would run code: refused"
                if base == "serialized_exported_program.json":
                    return (f"{path}: archive is in torch's pre-2.8 format, which torch.export.load unpickles "
                            "without restriction: refused (export it again with this torch)")
                if base.endswith(".json"):
                    info = z.getinfo(name)
                    if info.file_size > MAX_PROGRAM_BYTES:
                        return f"{path}: {name} is {info.file_size} bytes (at most {MAX_PROGRAM_BYTES}): refused"
                    check_program_json(z.read(name), name)
                if base.endswith("_config.json") and "/data/" in f"/{name}":
                    config = json.loads(z.read(name)).get("config", {})
                    pickled = [k for k, v in config.items() if isinstance(v, dict) and v.get("use_pickle")]
                    if pickled:
                        return (f"{path}: archive marks {pickled[0]!r} as pickled ({name}); loading it would run "
                                "code: refused")
    except Refused as e:
        return f"{path}: {e}; loading it would let torch evaluate that text: refused"
    except (zipfile.BadZipFile, OSError, ValueError, AttributeError, RecursionError) as e:
        return f"{path} is not a valid .pt2 archive ({error_text(e, 120)})"
    return None


class ExportedRuntime(TorchModuleRuntime):
    family = "pt2"
    format = "pt2"

    def unavailable(self) -> str | None:
        return format_unavailable() or super().unavailable()

    def load(self, path: Path) -> None:
        problem = archive_problem(Path(path))
        if problem:
            raise RuntimeError(problem)
        with quiet(), weights_only():
            program = torch.export.load(str(path))
        if self.device != "cpu":
            from torch.export.passes import move_to_device_pass
            # NOTE: not Module.to(): the pass also moves lifted constants and the device arguments
            # written into the graph (a tensor the program creates on CPU would stay there).
            program = move_to_device_pass(program, self.device)
        self.module = program.module()
