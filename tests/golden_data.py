"""Golden data: seeded exact reference outputs and eager PyTorch's outputs, per activation and dtype.

Each line is "x exact eager", the raw bits of one input and of the two outputs at its position.

`python tests/golden_data.py` rewrites tests/golden/<dtype>.json. Values are stored as the raw bits
of the dtype (hex), so a change of one ULP in PyTorch's behaviour, or in the exact reference, shows
up as a one-line diff in review, and test_golden.py fails until the change is looked at.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))

from actexport import catalog  # noqa: E402
from actexport.inputs import batteries  # noqa: E402
from actexport.runtimes.eager import EagerRuntime  # noqa: E402

GOLDEN = ROOT / "golden"
DTYPES = ("float16", "bfloat16", "float32", "float64")
_UINT = {2: np.uint16, 4: np.uint32, 8: np.uint64}


def _picked(a: np.ndarray, rows: int) -> np.ndarray:
    """Element i % (row size) of each of the first `rows` rows: where the edge battery put value i."""
    flat = a.reshape(a.shape[0], -1)
    return np.array([flat[i, i % flat.shape[1]] for i in range(rows)], dtype=a.dtype)


def bits(a: np.ndarray) -> list[str]:
    a = np.ascontiguousarray(a)
    width = 2 * a.dtype.itemsize
    return [f"{int(v):0{width}x}" for v in a.view(_UINT[a.dtype.itemsize]).reshape(-1)]


def record(act: catalog.Activation, dtype: str) -> dict:
    """One line "x exact eager" (raw bits) per edge value and for 16 grid points."""
    by_name = {b.name: b for b in batteries(act, dtype)}
    grid, edges = by_name["grid"], by_name["edges"]
    eager = EagerRuntime(act, dtype)
    lines: list[str] = []
    for b, rows in ((edges, edges.x.shape[0]), (grid, 16)):
        with np.errstate(over="ignore"):
            exact = act.oracle(b.x).astype(b.x.dtype)
        columns = [bits(_picked(a, min(rows, a.shape[0]))) for a in (b.x, exact, eager.infer(b.x))]
        lines += [" ".join(t) for t in zip(*columns)]
    return lines


def build(dtype: str) -> dict:
    return {act.id: record(act, dtype) for act in catalog.CATALOG}


def write() -> None:
    GOLDEN.mkdir(exist_ok=True)
    for dtype in DTYPES:
        (GOLDEN / f"{dtype}.json").write_text(json.dumps(build(dtype), indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    write()
