"""A toy runtime, as a newcomer would add one: numpy evaluating a one-node ONNX graph.

It is the whole of a runtime: a class that names its family, format and devices, and the three
hooks. tests/test_registry.py adds it with one registry line and finds it in verify's matrix.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from actexport.runtimes import Runtime, RuntimeUnavailable

OPS = {
    "Relu": lambda x: np.maximum(x, np.zeros_like(x)),
    "Abs": np.abs,
    "Neg": np.negative,
}


class NumpyRuntime(Runtime):
    family = "toy"
    format = "onnx"
    devices = ("cpu",)

    def __init__(self, device: str = "cpu") -> None:
        self.device = device
        self.op = None

    def load(self, path: Path) -> None:
        import onnx
        graph = onnx.load(str(path)).graph
        ops = [n.op_type for n in graph.node]
        if len(ops) != 1 or ops[0] not in OPS:
            raise RuntimeUnavailable(f"the toy runtime runs one node of {', '.join(OPS)}, not {ops}")
        self.op = OPS[ops[0]]
        self.ran_on = "numpy"

    def run(self, x: np.ndarray) -> np.ndarray:
        return self.op(x)

