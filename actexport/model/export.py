"""A model to each artifact format, with every dynamic dim left symbolic and named the same way in
every format and in the manifest: `<input>_d<dim>` (an output's dim takes the name of the input dim
it follows).

torch.export specialises a dim whose example size is 0 or 1: a dim called dynamic whose example size
is 1 is exported from an example repeated to size 2 along it, and an artifact that still fixes a
dynamic dim is refused with the reason, never written with a manifest that calls the dim dynamic.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch
from torch.fx.experimental.symbolic_shapes import is_concrete_int

from actexport.exporters import ExportResult, guarded
from actexport.files import atomic_write
from actexport.model.spec import Model

DEFAULT_OPSET = 18


def dim_name(input_name: str, dim: int) -> str:
    return f"{input_name}_d{dim}"


def export_inputs(model: Model, dtype: str, factor: int = 1) -> list[torch.Tensor]:
    """The example, in `dtype`, with each dynamic dim of size 1 repeated to 2 (then times `factor`)."""
    out = []
    for i, t in zip(model.inputs, model.cast(list(model.example), dtype)):
        reps = [(2 if t.shape[d] == 1 else 1) * factor if d in i.dynamic else 1 for d in range(t.dim())]
        out.append(t.repeat(*reps) if any(r != 1 for r in reps) else t)
    return out


def input_specs(model: Model, dtype: str) -> tuple[dict, ...]:
    return tuple({"name": i.name, "dtype": dtype if i.floating else i.dtype,
                  "shape": [dim_name(i.name, d) if d in i.dynamic else n for d, n in enumerate(i.shape)]}
                 for i in model.inputs)


@dataclass(frozen=True)
class Traced:
    """torch.export's program of the model in a dtype, or why there is none."""

    program: Any = None
    error: BaseException | None = None


@lru_cache(maxsize=4)
def traced(model: Model, dtype: str) -> Traced:
    """The program, exported once: the .pt2 artifact is it, and output_specs reads its symbols."""
    try:
        module = model.build(dtype)
        args, kwargs = model.arguments(export_inputs(model, dtype))
        return Traced(torch.export.export(module, args, kwargs, dynamic_shapes=_dynamic_shapes(model)))
    except Exception as e:  # noqa: BLE001  (the .pt2 export reports it; output_specs probes instead)
        return Traced(error=e)


@lru_cache(maxsize=16)
def output_specs(model: Model, dtype: str) -> tuple[dict, ...]:
    """Each output's name, dtype and shape, a dim named after the input dim it follows.

    torch.export's program knows which input symbol each output dim is; without a program, the
    module runs at the export example and with every dynamic dim doubled, and a dim that grows as an
    input dim grows takes its name (ambiguous when two input dims have the same sizes both times)."""
    known = _from_program(model, dtype)
    if known is not None:
        return known
    ex, ex2 = export_inputs(model, dtype), export_inputs(model, dtype, 2)
    small, large = _shapes(model, dtype, ex), _shapes(model, dtype, ex2)
    follows: dict[tuple[int, int], str] = {}
    for i, a, b in zip(model.inputs, ex, ex2):
        for d in i.dynamic:
            follows.setdefault((a.shape[d], b.shape[d]), dim_name(i.name, d))
    specs = []
    for name, s, g in zip(model.outputs, small, large):
        shape: list[int | str] = []
        for d, (n, m) in enumerate(zip(s.shape, g.shape)):
            shape.append(n if n == m else follows.get((n, m), f"{name}_d{d}"))
        specs.append({"name": name, "dtype": str(s.dtype).removeprefix("torch."), "shape": shape})
    return tuple(specs)


def _from_program(model: Model, dtype: str) -> tuple[dict, ...] | None:
    """output_specs from the program's symbolic shapes (None when there is no usable program)."""
    program = traced(model, dtype).program
    if program is None:
        return None
    nodes = {n.name: n for n in program.graph.nodes}
    names: dict[str, str] = {}
    for i, node_name in zip(model.inputs, program.graph_signature.user_inputs):
        val = nodes[node_name].meta.get("val") if node_name in nodes else None
        for d in i.dynamic:
            if val is not None and not is_concrete_int(val.shape[d]):
                names.setdefault(str(val.shape[d]), dim_name(i.name, d))
    (output,) = [n for n in program.graph.nodes if n.op == "output"]
    values = [a.meta.get("val") if hasattr(a, "meta") else None for a in output.args[0]]
    users = [v for v in values[len(values) - len(program.graph_signature.user_outputs):]
             if isinstance(v, torch.Tensor)]
    if len(users) != len(model.outputs):  # a None or constant output: probing names them instead
        return None
    specs = []
    for name, v in zip(model.outputs, users):
        shape: list[int | str] = [int(n) if is_concrete_int(n) else names.get(str(n), f"{name}_d{k}")
                                  for k, n in enumerate(v.shape)]
        specs.append({"name": name, "dtype": str(v.dtype).removeprefix("torch."), "shape": shape})
    return tuple(specs)


def _shapes(model: Model, dtype: str, inputs: list[torch.Tensor]) -> list[torch.Tensor]:
    """The outputs for `inputs`, computed on the meta device where the module allows (shapes only,
    no arithmetic: a large model's forward costs seconds), else for real."""
    try:
        module = model.build(dtype).to("meta")
        with torch.no_grad():
            return model.call(module, [t.to("meta") for t in inputs])
    except Exception:  # noqa: BLE001  (an op without a meta kernel, data-dependent control flow)
        with torch.no_grad():
            return model.call(model.build(dtype), inputs)


def _dynamic_shapes(model: Model) -> dict | tuple:
    """torch.export's spec: by name for keyword inputs, by position for positional ones (whose
    names may be actexport's own, not the forward's)."""
    dims = [{d: torch.export.Dim.AUTO for d in i.dynamic} for i in model.inputs]
    if any(i.keyword for i in model.inputs):
        return {i.name: d for i, d in zip(model.inputs, dims)}
    return tuple(dims)


def _fixed(program, model: Model) -> str | None:
    """Why the program does not keep every dynamic dim symbolic (None when it does)."""
    placeholders = [n for n in program.graph.nodes if n.op == "placeholder"]
    users = program.graph_signature.user_inputs
    by_name = {n.name: n for n in placeholders}
    for i, node_name in zip(model.inputs, users):
        val = by_name[node_name].meta.get("val") if node_name in by_name else None
        for d in i.dynamic:
            # NOTE: with Dim.AUTO a specialised dim stays a SymInt whose expression is a number
            if val is not None and is_concrete_int(val.shape[d]):
                return (f"torch.export fixed dim {d} of input {i.name!r} to {val.shape[d]} (the model's code "
                        f"requires that size): leave it static with --dynamic-dims, or change the model")
    return None


def _pt2(model: Model, dtype: str, path: Path, opset: int | None, exporter: str) -> ExportResult:
    def run() -> ExportResult:
        made = traced(model, dtype)
        if made.error is not None:
            raise made.error
        program = made.program
        fixed = _fixed(program, model)
        if fixed:
            return ExportResult("pt2", None, "torch.export.export", error=fixed)
        atomic_write(path, lambda tmp: torch.export.save(program, str(tmp)))
        return ExportResult("pt2", path, "torch.export.export", inputs=input_specs(model, dtype),
                            outputs=output_specs(model, dtype))

    return guarded("pt2", "torch.export", run)


def _torchscript(model: Model, dtype: str, path: Path, opset: int | None, exporter: str) -> ExportResult:
    def run() -> ExportResult:
        module = model.build(dtype)
        args, kwargs = model.arguments(export_inputs(model, dtype))
        # NOTE: tracing records the ops one example runs; the batteries then run it at other shapes,
        # which is where a traced size baked into the graph shows.
        traced = (torch.jit.trace(module, example_kwarg_inputs=kwargs, strict=False, check_trace=False) if kwargs
                  else torch.jit.trace(module, args, strict=False, check_trace=False))
        atomic_write(path, lambda tmp: torch.jit.save(traced, str(tmp)))
        return ExportResult("torchscript", path, "torch.jit.trace", inputs=input_specs(model, dtype),
                            outputs=output_specs(model, dtype))

    return guarded("torchscript", "torch.jit", run)


def _onnx(model: Model, dtype: str, path: Path, opset: int | None, exporter: str) -> ExportResult:
    from actexport.exporters.onnx import OnnxExporter, _registry_built_once

    identity = OnnxExporter.parse(exporter)
    name, base, graphs = identity.label, identity.base, identity.graphs
    opset = opset or DEFAULT_OPSET

    def run() -> ExportResult:
        import onnx
        module = model.build(dtype)
        args, kwargs = model.arguments(export_inputs(model, dtype))
        names = [i.name for i in model.inputs]
        used: list[str] = []
        if graphs != "stock":  # actexport's translations replace the layers they cover, anywhere in the model
            from actexport import translations
            plan = translations.plan(module, dtype, opset, graphs)
            module, used = plan.module, plan.used

        def write(tmp: Path) -> None:
            # NOTE: the dynamo exporter runs torch.export itself; when no translation changed the
            # module, the program already exported for this dtype serves (a second capture of a
            # ResNet-18 costs ~1.5 s here)
            program = traced(model, dtype).program if base == "dynamo" and not used else None
            if program is not None:
                with _registry_built_once():
                    torch.onnx.export(program, (), str(tmp), dynamo=True, opset_version=opset, input_names=names,
                                      output_names=list(model.outputs), external_data=False)
            elif base == "dynamo":
                with _registry_built_once():
                    torch.onnx.export(module, args, str(tmp), kwargs=kwargs, dynamo=True, opset_version=opset,
                                      dynamic_shapes=_dynamic_shapes(model), input_names=names,
                                      output_names=list(model.outputs), external_data=False)
            else:
                axes = {i.name: {d: dim_name(i.name, d) for d in i.dynamic} for i in model.inputs}
                torch.onnx.export(module, (*args, kwargs) if kwargs else args, str(tmp), dynamo=False,
                                  opset_version=opset, input_names=names, output_names=list(model.outputs),
                                  dynamic_axes=axes)
            proto = onnx.load(str(tmp))
            fixed = _rename_dims(proto, model, dtype)
            if fixed:
                raise ValueError(fixed)
            onnx.checker.check_model(proto, full_check=True)
            onnx.save(proto, str(tmp))

        atomic_write(path, write)
        proto = onnx.load(str(path))
        real_opset = next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))
        return ExportResult("onnx", path, name, onnx=identity, opset=int(real_opset), inputs=input_specs(model, dtype),
                            outputs=output_specs(model, dtype),
                            details={"op_types": sorted({n.op_type for n in proto.graph.node}),
                                     "nodes": len(proto.graph.node), "graphs": graphs,
                                     "translations": sorted(set(used))})

    return replace(guarded("onnx", name, run), onnx=identity)


def _rename_dims(proto, model: Model, dtype: str) -> str | None:
    """Names the graph's symbolic dims as the manifest does; why a dynamic dim is fixed, if one is."""
    # NOTE: the names are the manifest's (input_specs, output_specs), so the file and the manifest
    # agree by construction; the exporter's own symbols (s77, d0) say nothing to a reader.
    wanted = {s["name"]: s["shape"] for s in (*input_specs(model, dtype), *output_specs(model, dtype))}
    graph_inputs = {v.name: v for v in proto.graph.input}
    for i in model.inputs:
        v = graph_inputs.get(i.name)
        if v is None:  # an input the graph does not use: onnxruntime is not fed it
            continue
        dims = v.type.tensor_type.shape.dim
        for d in i.dynamic:
            if not dims[d].dim_param:
                return (f"the ONNX exporter fixed dim {d} of input {i.name!r} to {dims[d].dim_value}: leave it "
                        "static with --dynamic-dims, or change the model")
    for v in [*proto.graph.input, *proto.graph.output]:
        names = wanted.get(v.name, [])
        for k, dim in enumerate(v.type.tensor_type.shape.dim):
            if dim.dim_param and k < len(names) and isinstance(names[k], str):
                dim.dim_param = names[k]
    del proto.graph.value_info[:]  # intermediate shapes carry the old names; onnxruntime infers its own
    return None


EXPORTERS = {"onnx": _onnx, "torchscript": _torchscript, "pt2": _pt2}


def export(model: Model, format: str, dtype: str, path: Path, opset: int | None = None,
           exporter: str = "dynamo+actexport") -> ExportResult:
    """One artifact; never raises (an ExportResult says what failed)."""
    return EXPORTERS[format](model, dtype, path, opset, exporter)
