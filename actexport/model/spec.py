"""A user's model as actexport sees it: the module, its example inputs as named flat tensors, and
its outputs flattened with stable names.

`--inputs PKG.MOD:FN` returns the example: a tensor, a tuple of tensors (positional arguments) or a
dict of tensors (keyword arguments), of any dtype. `--input-shape` is the shorthand for one float
tensor. Outputs may be tensors, tuples, lists, dicts or anything torch's pytree knows (Hugging Face
`ModelOutput`s register themselves): they are flattened in pytree order, which is the order every
exporter writes them in, and named by their path (`last_hidden_state`, `0`, `1.logits`).
"""

from __future__ import annotations

import inspect
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import torch
from torch import nn
from torch.utils import _pytree as pytree

from actexport.catalog import UsageError
from actexport.files import error_text
from actexport.modules import build, load_factory, parse_shape

def grown(n: int) -> int:
    """A dynamic dim's size in the random battery: doubled, and 3 for 1 (the export ran at 2)."""
    return 2 * n if n > 1 else 3


MAX_ELEMENTS = 10_000_000  # all example inputs together; the random battery doubles dynamic dims
FLOAT = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


@dataclass(frozen=True)
class Input:
    """One flat input: its name (the forward parameter or dict key), how it is passed, the example's
    dtype and shape, the dims left dynamic, and the example's values' range and spread (which the
    batteries draw around)."""

    name: str
    keyword: bool
    dtype: str  # the example's torch dtype name; a float input takes the dtype under test
    shape: tuple[int, ...]
    dynamic: tuple[int, ...]
    low: float
    high: float
    mean: float
    std: float

    @property
    def floating(self) -> bool:
        return getattr(torch, self.dtype) in FLOAT


@dataclass(frozen=True)
class Model:
    """What `--module` (and `--inputs` or `--input-shape`) name, checked once."""

    id: str
    factory: str
    inputs_fn: str | None
    inputs: tuple[Input, ...]
    example: tuple[torch.Tensor, ...]  # one tensor per Input, as the inputs function gave it
    outputs: tuple[str, ...]  # the flattened output names
    value_range: tuple[float, float] | None = None  # --input-range: where float inputs are drawn
    builder: Callable[[], nn.Module] | None = None  # builds the module instead of the factory (one layer alone)

    @property
    def module_repr(self) -> str:
        return f"{self.factory}()"

    def build(self, dtype: str) -> nn.Module:
        """A fresh module in eval mode with its floating parameters in `dtype`: a copy of one built
        once per dtype (a large model's factory initialises millions of parameters each call)."""
        import copy
        return copy.deepcopy(built(self, dtype))

    def arguments(self, flat: list[torch.Tensor]) -> tuple[tuple, dict]:
        """(args, kwargs) of a forward call from one tensor per input."""
        args = tuple(t for i, t in zip(self.inputs, flat) if not i.keyword)
        kwargs = {i.name: t for i, t in zip(self.inputs, flat) if i.keyword}
        return args, kwargs

    def call(self, module: Callable, flat: list[torch.Tensor]) -> list[torch.Tensor]:
        """The module's flattened outputs for one tensor per input."""
        args, kwargs = self.arguments(flat)
        return flatten(module(*args, **kwargs))[1]

    def cast(self, flat: list[torch.Tensor], dtype: str) -> list[torch.Tensor]:
        """Float inputs in `dtype`, the others as they are."""
        return [t.to(getattr(torch, dtype)) if i.floating else t for i, t in zip(self.inputs, flat)]


@lru_cache(maxsize=4)
def built(model: Model, dtype: str) -> nn.Module:
    """The module of `model` in `dtype`, built once (Model.build hands out copies)."""
    module = model.builder() if model.builder is not None else build(model.factory)
    return module.eval().to(getattr(torch, dtype))


def flatten(out) -> tuple[list[str], list[torch.Tensor]]:
    """Output names and tensors, in pytree order; a UsageError for a leaf that is not a tensor."""
    if isinstance(out, torch.Tensor):
        return ["output"], [out]
    leaves, _ = pytree.tree_flatten_with_path(out)
    names, tensors = [], []
    for path, leaf in leaves:
        name = ".".join(_key(k) for k in path) or "output"
        if leaf is None:  # an absent output (a loss not computed in eval): exporters drop it too
            continue
        if not isinstance(leaf, torch.Tensor):
            raise UsageError(f"output {name!r} is a {type(leaf).__name__}, not a tensor: actexport compares "
                             "tensor outputs (return tensors, or tuples, lists and dicts of them)")
        names.append(name)
        tensors.append(leaf)
    if not tensors:
        raise UsageError("the module returned no tensor")
    return names, tensors


def _key(k) -> str:
    for attr in ("key", "idx", "name"):
        if hasattr(k, attr):
            return str(getattr(k, attr))
    return str(k).strip(".[]'\"")


def _example(spec: str, module: nn.Module) -> tuple[list[str], list[bool], list[torch.Tensor]]:
    """Names, keyword flags and tensors of what the inputs function `spec` returns."""
    fn = load_factory(spec)
    try:
        value = fn()
    except Exception as e:  # noqa: BLE001  (the user's function: any failure is theirs)
        raise UsageError(f"--inputs {spec}: the function raised {error_text(e, 200)}") from None
    return _items(value, module, f"--inputs {spec}")


def _items(value, module: nn.Module, spec: str) -> tuple[list[str], list[bool], list[torch.Tensor]]:
    """Names, keyword flags and tensors of example inputs (a tensor, a tuple or a dict of tensors)."""
    if isinstance(value, torch.Tensor):
        value = (value,)
    params = [p for p in inspect.signature(module.forward).parameters.values()
              if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if isinstance(value, (tuple, list)):
        names = [params[n].name if n < len(params) else f"input{n}" for n in range(len(value))]
        items, keyword = list(zip(names, value)), False
    elif isinstance(value, dict):
        # NOTE: in forward's order: the legacy ONNX exporter binds keyword inputs by the signature,
        # and the names it is given must follow the same order
        order = {p.name: n for n, p in enumerate(inspect.signature(module.forward).parameters.values())}
        items = sorted(value.items(), key=lambda kv: order.get(str(kv[0]), len(order)))
        keyword = True
    else:
        raise UsageError(f"{spec} returned {type(value).__name__}: give a tensor, a tuple of tensors "
                         "or a dict of keyword tensors")
    for name, t in items:
        if not isinstance(t, torch.Tensor) or not re.fullmatch(r"[A-Za-z_]\w*", str(name)):
            raise UsageError(f"{spec}: input {name!r} is a {type(t).__name__}; every input must be a "
                             "tensor named by an identifier")
    return [str(n) for n, _ in items], [keyword] * len(items), [t.detach().clone() for _, t in items]


def _dynamic(text: str | None, names: list[str], tensors: list[torch.Tensor]) -> list[tuple[int, ...]]:
    """--dynamic-dims: '0' (those dims of every input that has them), 'ids=0,1;mask=0' per input, or ''."""
    text = (text or "").strip()
    per: dict[str, str] = {}
    if "=" in text:
        for part in text.split(";"):
            name, _, listed = part.partition("=")
            if name.strip() not in names:
                raise UsageError(f"invalid --dynamic-dims {text!r}: no input {name.strip()!r}; inputs: {', '.join(names)}")
            per[name.strip()] = listed
    out: list[tuple[int, ...]] = []
    for name, t in zip(names, tensors):
        dims_text = per.get(name, "" if per else text)
        try:
            dims: list[int] = sorted({int(p) for p in dims_text.split(",") if p.strip()})
        except ValueError:
            raise UsageError(f"invalid --dynamic-dims {text!r}: give dim indices, e.g. 0 or ids=0,1;mask=0") from None
        if per and any(not 0 <= d < t.dim() for d in dims):
            raise UsageError(f"invalid --dynamic-dims {text!r}: input {name!r} has dims 0..{t.dim() - 1}")
        out.append(tuple(d for d in dims if 0 <= d < t.dim()))
    if not per and text and not any(out) and any(t.dim() for t in tensors):
        rank = max(t.dim() for t in tensors)
        raise UsageError(f"invalid --dynamic-dims {text!r}: dims of a {rank}-d input are 0..{rank - 1}")
    return out


def _describe(name: str, keyword: bool, t: torch.Tensor, dynamic: tuple[int, ...]) -> Input:
    v = t.detach().to(torch.float64) if t.numel() else torch.zeros(1, dtype=torch.float64)
    finite = v[torch.isfinite(v)] if v.is_floating_point() else v
    finite = finite if finite.numel() else torch.zeros(1, dtype=torch.float64)
    return Input(name, keyword, str(t.dtype).removeprefix("torch."), tuple(t.shape), dynamic,
                 float(finite.min()), float(finite.max()), float(finite.mean()),
                 float(finite.std()) if finite.numel() > 1 else 0.0)


def load(factory: str, inputs: str | None, input_shape: str | None, dynamic_dims: str | None = "0",
         value_range: tuple[float, float] | None = None) -> Model:
    """The model `factory` names, with its example inputs; every problem is one UsageError."""
    module = build(factory).eval()
    if (inputs is None) == (input_shape is None):
        raise UsageError(f"--module {factory} needs --inputs PKG.MOD:FN (the example inputs) or --input-shape "
                         "D0,D1,... (one float tensor), not both")
    if inputs is not None:
        names, keyword, tensors = _example(inputs, module)
    else:
        shape, _ = parse_shape(input_shape or "", None)
        gen = torch.Generator().manual_seed(0)
        names, keyword, tensors = ["input"], [False], [torch.randn(shape, generator=gen)]
    return _assemble(module, factory, inputs, names, keyword, tensors, dynamic_dims, value_range)


def from_objects(module: nn.Module, example, dynamic_dims: str | None = "0",
                 value_range: tuple[float, float] | None = None) -> Model:
    """A Model of a module instance and its example inputs (the pytest API, actexport.testing): each
    build is a deep copy of `module`, so the artifact, the reference and eager PyTorch share its weights."""
    import copy
    if not isinstance(module, nn.Module):
        raise UsageError(f"expected a torch.nn.Module, got {type(module).__name__}")
    names, keyword, tensors = _items(example, module, "the example inputs")
    cls = type(module)
    factory = f"{cls.__module__}:{cls.__qualname__}"
    frozen = copy.deepcopy(module).eval().cpu()  # the batteries and references are made on CPU
    tensors = [t.cpu() for t in tensors]
    return _assemble(frozen, factory, None, names, keyword, tensors, dynamic_dims, value_range,
                     builder=lambda: copy.deepcopy(frozen))


def _assemble(module: nn.Module, factory: str, inputs: str | None, names: list[str], keyword: list[bool],
              tensors: list[torch.Tensor], dynamic_dims: str | None, value_range: tuple[float, float] | None,
              builder: Callable[[], nn.Module] | None = None) -> Model:
    total = sum(t.numel() for t in tensors)
    if total * 4 > MAX_ELEMENTS:
        raise UsageError(f"the example inputs have {total} elements; at most {MAX_ELEMENTS // 4} (the batteries grow them)")
    dynamic = _dynamic(dynamic_dims, names, tensors)
    described = tuple(_describe(n, k, t, d) for n, k, t, d in zip(names, keyword, tensors, dynamic))
    model = Model(factory.replace(":", "."), factory, inputs, described, tuple(tensors), (), value_range, builder)
    try:
        with torch.no_grad():
            out_names, _ = flatten(module(*model.arguments(list(tensors))[0], **model.arguments(list(tensors))[1]))
    except UsageError as e:
        raise UsageError(f"--module {factory}: {e}") from None
    except Exception as e:  # noqa: BLE001
        raise UsageError(f"--module {factory}: the module does not run on an input of shape "
                         f"{', '.join(f'{i.name} {i.dtype}{list(i.shape)}' for i in described)}: "
                         f"{error_text(e, 200)}") from None
    if len(set(out_names)) != len(out_names):
        raise UsageError(f"--module {factory}: two outputs have the same name ({out_names})")
    model = Model(model.id, factory, inputs, described, tuple(tensors), tuple(out_names), value_range, builder)
    if builder is None:
        _check_seeded(model, module)
    _check_doubled(model, module)
    return model


def _check_seeded(model: Model, module: nn.Module) -> None:
    """The factory builds the same weights every call: the artifact, the reference and eager
    PyTorch are each built by a call of their own."""
    again = build(model.factory).state_dict()
    for name, t in module.state_dict().items():
        other = again.get(name)
        same = other is not None and other.shape == t.shape and other.dtype == t.dtype and (
            torch.equal(other, t) or (t.is_floating_point() and bool(torch.isclose(other, t, 0, 0, equal_nan=True).all())))
        if not same:
            raise UsageError(f"--module {model.factory}: the factory builds different weights each call; seed it "
                             "(e.g. torch.manual_seed inside the factory)")


def _check_doubled(model: Model, module: nn.Module) -> None:
    """The module runs with every dynamic dim doubled, as the random battery will run it."""
    doubled = [t.repeat(*[grown(n) // n if d in i.dynamic and n else 1 for d, n in enumerate(t.shape)]) if t.dim()
               else t for i, t in zip(model.inputs, model.example)]
    if all(a.shape == b.shape for a, b in zip(doubled, model.example)):
        return
    try:
        with torch.no_grad():
            model.call(module, doubled)
    except Exception as e:  # noqa: BLE001
        shapes = ", ".join(f"{i.name} {list(t.shape)}" for i, t in zip(model.inputs, doubled))
        dyn = "; ".join(f"{i.name} {list(i.dynamic)}" for i in model.inputs)
        raise UsageError(f"--module {model.factory}: the module does not run on an input of shape {shapes} "
                         f"(its dynamic dims doubled: {dyn}; --dynamic-dims): {error_text(e, 160)}") from None


def elements(model: Model) -> int:
    return sum(math.prod(i.shape) for i in model.inputs)


def parse_range(text: str | None) -> tuple[float, float] | None:
    """--input-range 'LO,HI' -> (LO, HI), finite with LO < HI."""
    if text is None:
        return None
    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError:
        raise UsageError(f"invalid --input-range {text!r}: give LO,HI, e.g. --input-range -1,1") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise UsageError(f"invalid --input-range {text!r}: two finite numbers, LO < HI")
    return lo, hi


MAX_SAMPLES_BYTES = 256 << 20


def load_samples(model: Model, path) -> tuple[tuple[torch.Tensor, ...], ...]:
    """--samples FILE: real inputs saved with torch.save, a list of examples shaped as the inputs
    function's (a tensor, a tuple or a dict each). Read with torch's restricted unpickler: a file from
    elsewhere cannot run code; each sample must match the example's names, dtypes and static dims."""
    from pathlib import Path
    path = Path(path)
    if not path.is_file() or path.stat().st_size > MAX_SAMPLES_BYTES:
        raise UsageError(f"--samples {str(path)!r}: not a file of at most {MAX_SAMPLES_BYTES} bytes")
    try:
        value = torch.load(path, weights_only=True, map_location="cpu")
    except Exception as e:  # noqa: BLE001  (whatever the file holds, it is not samples)
        raise UsageError(f"--samples {str(path)!r}: not a torch.save file of tensors ({error_text(e, 160)})") from None
    items = value if isinstance(value, list) else [value]
    out = []
    for n, item in enumerate(items[:64]):
        if isinstance(item, torch.Tensor):
            item = (item,)
        got = [item.get(i.name) for i in model.inputs] if isinstance(item, dict) else list(item)
        tensors = [t for t in got if isinstance(t, torch.Tensor)]
        if len(got) != len(model.inputs) or len(tensors) != len(got):
            raise UsageError(f"--samples {str(path)!r}: sample {n} is not {', '.join(i.name for i in model.inputs)} "
                             "as tensors")
        for i, t in zip(model.inputs, tensors):
            fixed = [d for d in range(len(i.shape)) if d not in i.dynamic]
            if (str(t.dtype).removeprefix("torch.") != i.dtype and not (i.floating and t.is_floating_point())) or \
                    t.dim() != len(i.shape) or any(t.shape[d] != i.shape[d] for d in fixed):
                raise UsageError(f"--samples {str(path)!r}: sample {n}'s {i.name} is {str(t.dtype)}{list(t.shape)}; "
                                 f"the example's is {i.dtype}{list(i.shape)} (dynamic dims {list(i.dynamic)})")
        out.append(tuple(tensors))
    return tuple(out)
