"""Your own modules: `--module package.module:factory` becomes a row of the matrix like any activation.

With no formula known, the exact reference is the module itself in eager PyTorch at float64 (its
parameters first rounded to the dtype under test, as the artifact holds them), rounded once to the
dtype under test.
"""

from __future__ import annotations

import importlib
import math
import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
from torch import nn

from actexport.catalog import Activation, Budget, UsageError
from actexport.files import error_text

MAX_DIMS, MAX_DIM, MAX_ELEMENTS = 8, 1 << 20, 10_000_000
# NOTE: a model's intermediate values overflow float32 long before its input reaches 3.4e38, where the
# float64 reference does not: past this magnitude the comparison measures float32 range, not parity.
MODULE_MAX_INPUT = 100.0
# NOTE: a model composes many roundings (a dot product of K terms carries ~sqrt(K) of them and
# cancels near zero), so its outputs are judged with a ULP budget and an absolute floor wider than
# one activation's: starting points, set per run with --ulp and --atol.
MODULE_BUDGETS = {
    "float16": Budget(ulp=16, atol=1e-3, absolute_everywhere=True),
    "bfloat16": Budget(ulp=16, atol=1e-2, absolute_everywhere=True),
    "float32": Budget(ulp=64, atol=1e-5, absolute_everywhere=True),
    "float64": Budget(ulp=64, atol=1e-12, absolute_everywhere=True),
}


def load_factory(spec: str):
    """'package.module:factory' -> the callable; a UsageError says which part is wrong."""
    if not re.fullmatch(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*", spec or ""):
        raise UsageError(f"invalid --module {spec!r}: give package.module:factory, e.g. actexport.examples:mlp")
    module_name, attr = spec.split(":")
    try:
        mod = importlib.import_module(module_name)
    except Exception as e:  # noqa: BLE001  (any import failure is the user's module's)
        raise UsageError(f"--module {spec}: cannot import {module_name!r} ({error_text(e)})") from None
    obj = mod
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise UsageError(f"--module {spec}: {module_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise UsageError(f"--module {spec}: {attr!r} is not callable; give a function or class returning a module")
    return obj


def build(spec: str) -> nn.Module:
    """Calls the factory once and checks that it returns a torch.nn.Module."""
    factory = load_factory(spec)
    try:
        module = factory()
    except Exception as e:  # noqa: BLE001
        raise UsageError(f"--module {spec}: the factory raised {error_text(e, 200)}") from None
    if not isinstance(module, nn.Module):
        raise UsageError(f"--module {spec}: the factory returned {type(module).__name__}, not a torch.nn.Module")
    return module


def parse_shape(text: str, dynamic: str | None) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """'4,32' and '0' -> ((4, 32), static dims (1,)); a UsageError for anything absurd."""
    try:
        shape = tuple(int(p) for p in text.split(","))
    except (AttributeError, ValueError):
        raise UsageError(f"invalid --input-shape {text!r}: give sizes, e.g. --input-shape 4,32") from None
    if not 1 <= len(shape) <= MAX_DIMS or any(not 1 <= d <= MAX_DIM for d in shape):
        raise UsageError(f"invalid --input-shape {text!r}: 1 to {MAX_DIMS} dims, each 1..{MAX_DIM}")
    if math.prod(shape) * 4 > MAX_ELEMENTS:  # the random battery doubles every dynamic dim
        raise UsageError(f"invalid --input-shape {text!r}: {math.prod(shape)} elements; at most "
                         f"{MAX_ELEMENTS // 4} (the batteries grow it)")
    try:
        dyn = tuple(sorted({int(p) for p in (dynamic or "").split(",") if p.strip()}))
    except ValueError:
        raise UsageError(f"invalid --dynamic-dims {dynamic!r}: give dim indices, e.g. --dynamic-dims 0") from None
    if any(not 0 <= d < len(shape) for d in dyn):
        raise UsageError(f"invalid --dynamic-dims {dynamic!r}: dims of a {len(shape)}-d input are 0..{len(shape) - 1}")
    return shape, tuple(i for i in range(len(shape)) if i not in dyn)


@dataclass(frozen=True)
class EagerFloat64:
    """The reference of a module without a formula: the module itself, in float64."""

    spec: str
    elementwise: bool = False
    limits: tuple | None = None

    def __call__(self, x: np.ndarray, precise: bool | None = None) -> np.ndarray:
        from actexport.inputs import to_torch

        x = np.asarray(x)
        module = _reference_module(self.spec, x.dtype.name)
        with torch.no_grad():
            y = module(to_torch(x).to(torch.float64))
        return y.numpy()


@lru_cache(maxsize=8)
def _reference_module(spec: str, dtype: str) -> nn.Module:
    """The module with its parameters rounded to `dtype`, held in float64 (built once per dtype)."""
    from actexport.inputs import torch_dtype

    return build(spec).eval().to(torch_dtype(dtype)).to(torch.float64)


def activation(spec: str, shape: tuple[int, ...], static_dims: tuple[int, ...],
               ulp: int | None = None, atol: float | None = None) -> Activation:
    """The matrix row of a user module (its id names the factory: package.module.factory)."""
    build(spec)  # fails here, with one line, before anything runs
    budgets = {d: Budget(ulp if ulp is not None else b.ulp, atol if atol is not None else b.atol,
                         absolute_everywhere=True) for d, b in MODULE_BUDGETS.items()}
    factory = load_factory(spec)
    act = Activation(
        id=spec.replace(":", "."), factory=factory, formula=f"{spec} (reference: eager PyTorch in float64)",
        # NOTE: EagerFloat64 stands in for an Oracle (called on x, with elementwise and limits); the
        # catalog's rows are typed with the oracle.py definitions they all use
        oracle=EagerFloat64(spec),  # type: ignore[arg-type]
        shape=shape, static_dims=static_dims, budgets=budgets, max_input=MODULE_MAX_INPUT,
        recipe=(spec, shape, static_dims, ulp, atol),
    )
    _check_runs(act)
    return act


def _check_runs(act: Activation) -> None:
    """The factory builds the same module every call (the artifact, the reference and the worker
    processes each build their own), and it runs at the example shape and the doubled one."""
    from actexport.cache import module_digest
    assert act.recipe is not None  # activation() sets it
    spec = act.recipe[0]
    if module_digest(act) != module_digest(act):
        raise UsageError(f"--module {spec}: the factory builds different weights each call; seed it "
                         "(e.g. torch.manual_seed inside the factory)")
    module = act.module()
    doubled = tuple(d if i in act.static_dims else 2 * d for i, d in enumerate(act.shape))
    for shape in dict.fromkeys((act.shape, doubled)):
        try:
            with torch.no_grad():
                module(torch.zeros(shape))
        except Exception as e:  # noqa: BLE001
            raise UsageError(f"--module {spec}: the module does not run on an input of shape {list(shape)} "
                             f"(--input-shape {','.join(map(str, act.shape))}, dynamic dims "
                             f"{[i for i in range(len(act.shape)) if i not in act.static_dims]}): "
                             f"{type(e).__name__}: {str(e).splitlines()[0][:160]}") from None


@lru_cache(maxsize=8)
def from_recipe(recipe: tuple) -> Activation:
    """Rebuilds a user module's row in a worker process (once per process: a worker runs many tasks)."""
    return activation(*recipe)
