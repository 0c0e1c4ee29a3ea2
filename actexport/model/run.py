"""Running a model's artifact (or the module itself) on one battery: named inputs in, the flattened
outputs out as numpy arrays in the model's output order.

The runtimes are the registry's (runtimes/): their load() does the checks an artifact from elsewhere
needs and says when a provider or device does not run; only feeding several inputs and reading
several outputs is done here.
"""

from __future__ import annotations

import numpy as np
import torch

from actexport.dtypes import to_numpy
from actexport.model.spec import Model
from actexport.runtimes import Runtime, RuntimeUnavailable


def outputs(model: Model, rt: Runtime | torch.nn.Module, tensors: tuple[torch.Tensor, ...],
            device: str = "cpu") -> list[np.ndarray]:
    """The flattened outputs of one run: `rt` is a loaded runtime, or an eager module."""
    session = getattr(rt, "session", None)
    if session is not None:
        return _ort(model, session, rt, tensors)
    module = rt if isinstance(rt, torch.nn.Module) else getattr(rt, "module", None)
    if module is None:
        raise RuntimeUnavailable(f"{getattr(rt, 'name', rt)} cannot run a model of several inputs and outputs")
    with torch.no_grad():
        ys = model.call(module, [t.to(device) for t in tensors])
    if device == "cuda":
        torch.cuda.synchronize()
    return [to_numpy(y) for y in ys]


def _ort(model: Model, session, rt, tensors: tuple[torch.Tensor, ...]) -> list[np.ndarray]:
    if any(t.dtype == torch.bfloat16 for t in tensors):
        raise RuntimeUnavailable("onnxruntime's numpy bridge has no bfloat16 for a model's named inputs")
    given = {i.name: to_numpy(t) for i, t in zip(model.inputs, tensors)}
    wanted = [v.name for v in session.get_inputs()]
    unknown = [n for n in wanted if n not in given]
    if unknown:
        raise ValueError(f"the ONNX graph wants inputs {unknown} that the model's inputs ({', '.join(given)}) lack")
    names = [v.name for v in session.get_outputs()]
    if len(names) != len(model.outputs):
        raise ValueError(f"the ONNX graph has {len(names)} outputs ({', '.join(names)}); the module returns "
                         f"{len(model.outputs)} ({', '.join(model.outputs)})")
    return list(session.run(None, {n: given[n] for n in wanted}, getattr(rt, "run_options", None)))
