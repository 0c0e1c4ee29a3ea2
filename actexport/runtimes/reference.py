"""onnx.reference.ReferenceEvaluator: runs an ONNX artifact as the ONNX specification defines it.

It is the third vote beside eager PyTorch and onnxruntime: when onnxruntime deviates from the exact
result but the specification's evaluation of the same graph does not, the runtime is at fault; when
both deviate, the exported graph is.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from actexport.files import error_text
from actexport.runtimes import Runtime, RuntimeUnavailable

if TYPE_CHECKING:
    from onnx.reference import ReferenceEvaluator


class ReferenceRuntime(Runtime):
    family = "onnx.reference"
    format = "onnx"
    devices = ()  # numpy, on CPU
    specification = True

    def __init__(self) -> None:
        self.evaluator: ReferenceEvaluator | None = None

    def unavailable(self) -> str | None:
        try:
            from onnx.reference import ReferenceEvaluator  # noqa: F401
        except ImportError as e:
            return f"onnx.reference is not available ({e})"
        return None

    def load(self, path: Path) -> None:
        import onnx
        from onnx.reference import ReferenceEvaluator
        model = onnx.load(str(path))
        try:
            self.evaluator = ReferenceEvaluator(model)
        except Exception as e:  # an op the reference implementation lacks
            raise RuntimeUnavailable(f"onnx.reference cannot evaluate this graph: {error_text(e)}") from e
        self.input_name = model.graph.input[0].name
        self.ran_on = "onnx.reference"

    def run(self, x: np.ndarray) -> np.ndarray:
        assert self.evaluator is not None  # loaded
        with np.errstate(all="ignore"):
            (y,) = self.evaluator.run(None, {self.input_name: x})
        return np.asarray(y)

    def close(self) -> None:
        self.evaluator = None
