"""What the torch-based runtimes share: device checks, tensor conversion, timing hooks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from actexport.capture import quiet
from actexport.files import error_text, root_cause
from actexport.inputs import to_numpy, to_torch
from actexport.runtimes import Runtime


def device_unavailable(device: str) -> str | None:
    if device == "cuda" and not torch.cuda.is_available():
        return f"torch {torch.__version__} sees no CUDA device (torch.cuda.is_available() is False)"
    return None


def device_settings(device: str) -> dict:
    """What a torch runtime on `device` runs with, for the report: the card and CUDA stack, or CPU threads."""
    if device == "cuda":
        index = torch.cuda.current_device()
        major, minor = torch.cuda.get_device_capability(index)
        return {"device": torch.cuda.get_device_name(index), "capability": f"{major}.{minor}",
                "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version(),
                "allow_tf32": torch.backends.cuda.matmul.allow_tf32}
    return {"device": "cpu", "threads": torch.get_num_threads()}


class TorchModuleRuntime(Runtime):
    """Runs a torch callable (eager, scripted or exported) on one device, without autograd."""

    def __init__(self, device: str = "cpu") -> None:
        self.device = device
        self.ran_on = device
        self.module: nn.Module | None = None  # set by load() (or the constructor, for eager)

    def provider_unavailable(self) -> str | None:
        return device_unavailable(self.device)

    # NOTE: a property here (derived from the device); other runtimes set the attribute in load()
    @property
    def settings(self) -> dict:  # type: ignore[override]
        return device_settings(self.device) if self.module is not None else {}

    def run(self, x: np.ndarray) -> np.ndarray:
        assert self.module is not None  # loaded
        with torch.no_grad():
            y = self.module(to_torch(x).to(self.device))
        if self.device == "cuda":
            torch.cuda.synchronize()
        return to_numpy(y)

    def prepare(self, x: np.ndarray) -> Callable[[], torch.Tensor]:
        """The module call on a tensor placed on the device once; waits for CUDA to finish."""
        t = to_torch(x).to(self.device)
        module, cuda = self.module, self.device == "cuda"
        assert module is not None  # loaded
        if cuda:
            torch.cuda.synchronize()

        def call() -> torch.Tensor:
            with torch.no_grad():
                y = module(t)
            if cuda:
                torch.cuda.synchronize()
            return y

        return call

    def close(self) -> None:
        self.module = None


@dataclass(frozen=True)
class OutVariant:
    """Eager PyTorch writing into a preallocated output: the module's one ATen kernel called with out=.

    `call` is None when there is no such variant, and `reason` says why; `op` names the ATen op(s).
    """

    call: Callable[[], torch.Tensor] | None
    op: str
    reason: str = ""


def out_variant(module: nn.Module, t: torch.Tensor) -> OutVariant:
    """Finds the out= overload of the single ATen op `module` runs on `t`, checked bit for bit.

    The module is traced with torch.export (ATen ops before decomposition). When the graph is one
    call of an op that has an overload taking the same arguments plus `out=`, that overload is
    called into a tensor allocated once; it must reproduce the module call's bits, else it is
    reported unavailable. A module made of several ops (Tanhshrink is x - tanh(x)) has no single
    kernel to hand a buffer to, and is reported so: nothing is composed or faked.
    """
    # NOTE: generic on purpose (no per-activation table): the traced graph says which kernel runs.
    try:
        with quiet():
            program = torch.export.export(module, (t,))
    except Exception as e:  # noqa: BLE001  (untraceable: no out= variant, with the reason)
        return OutVariant(None, "", f"n/a: torch.export cannot trace the module ({root_cause(e)})")
    calls = [n for n in program.graph.nodes if n.op == "call_function"]
    names = ", ".join(str(n.target) for n in calls)
    if len(calls) != 1:
        return OutVariant(None, names, f"n/a: {len(calls)} aten ops ({names}), no single kernel to give out=")
    node = calls[0]
    op = _out_overload(node.target) if isinstance(node.target, torch._ops.OpOverload) else None
    if op is None:
        return OutVariant(None, names, f"n/a: {names} has no out= overload")
    try:
        sig = program.graph_signature
        state = {**dict(module.named_parameters()), **dict(module.named_buffers())}
        values = {name: t for name in sig.user_inputs}
        values.update({p: state[fqn] for p, fqn in {**sig.inputs_to_parameters, **sig.inputs_to_buffers}.items()})
        values.update({p: program.constants[fqn] for p, fqn in sig.inputs_to_lifted_tensor_constants.items()})
        args = torch.fx.node.map_arg(node.args, lambda n: values[n.name])
        kwargs = torch.fx.node.map_arg(node.kwargs, lambda n: values[n.name])
        with torch.no_grad():
            expected = module(t)
        out = torch.empty_like(expected)
        cuda = t.device.type == "cuda"

        def call() -> torch.Tensor:
            with torch.no_grad():
                op(*args, **kwargs, out=out)
            if cuda:
                torch.cuda.synchronize()
            return out

        call()
    except Exception as e:  # noqa: BLE001
        return OutVariant(None, str(op), f"n/a: {op} failed ({error_text(e, 200)})")
    if not same_bits(out, expected):
        return OutVariant(None, str(op), f"n/a: {op} does not reproduce the module call bit for bit")
    return OutVariant(call, str(op))


def _out_overload(target: torch._ops.OpOverload) -> torch._ops.OpOverload | None:
    """The overload of the same op whose arguments are `target`'s plus one `out` tensor."""
    want = [(a.name, str(a.type)) for a in target._schema.arguments]
    packet = target.overloadpacket
    for name in packet.overloads():
        candidate = getattr(packet, name)
        args = candidate._schema.arguments
        outs = [a.name for a in args if a.is_out]
        if outs == ["out"] and [(a.name, str(a.type)) for a in args if not a.is_out] == want:
            return candidate
    return None


def same_bits(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Whether two tensors hold the same shape, dtype and bits (NaN payloads and signed zeros included)."""
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    if not a.dtype.is_floating_point:
        return bool(torch.equal(a, b))
    words = {2: torch.int16, 4: torch.int32, 8: torch.int64}[a.element_size()]
    return bool(torch.equal(a.contiguous().view(words), b.contiguous().view(words)))
