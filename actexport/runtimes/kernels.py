"""Which nodes of an ONNX graph onnxruntime has no kernel for, found by loading each node alone in a
model actexport builds, never from the text of a load error (it carries node names the file's author
chose).

onnxruntime's own kernel table (`get_all_opkernel_def`) is not used: on an onnxruntime-gpu build
without TensorRT's libraries it kills the process (SIGSEGV, seen with 1.31.1 on an H200). A probe load
also answers for what the table does not show: ops onnxruntime expands from their ONNX function body
(Elu and HardSwish in float64, Softmax, CastLike) and float16 nodes the CPU provider runs in float32.
"""

from __future__ import annotations

from collections.abc import Callable

import onnx


def _typed(name: str, types: dict[str, onnx.TypeProto]) -> onnx.ValueInfoProto:
    return onnx.helper.make_value_info(name, types[name])


def probe_models(model: onnx.ModelProto) -> list[tuple[str, onnx.ModelProto]]:
    """One single-node model per distinct (op, input types, attributes) of the graph, labelled
    "OpType(dtype, ...)". Nodes whose types shape inference cannot tell, and nodes with subgraphs, are
    left out: only loading the whole graph can judge them."""
    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False)
    except Exception:  # noqa: BLE001  (no types: nothing to probe)
        return []
    graph = inferred.graph
    types = {v.name: v.type for v in (*graph.input, *graph.value_info, *graph.output)
             if v.type.HasField("tensor_type") and v.type.tensor_type.elem_type}
    types.update({t.name: onnx.helper.make_tensor_type_proto(t.data_type, None) for t in graph.initializer})
    probes: dict[bytes, tuple[str, onnx.ModelProto]] = {}
    for node in graph.node:
        names = [n for n in (*node.input, *node.output) if n]
        if node.op_type == "Constant" or any(n not in types for n in names) or any(
                a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for a in node.attribute):
            continue  # onnxruntime folds Constant into an initializer
        alone = onnx.helper.make_node(node.op_type, list(node.input), list(node.output), domain=node.domain)
        alone.attribute.extend(node.attribute)
        used = [n for n in node.input if n]
        probe = onnx.helper.make_model(
            onnx.helper.make_graph([alone], "probe", [_typed(n, types) for n in dict.fromkeys(used)],
                                   [_typed(n, types) for n in node.output if n]),
            opset_imports=list(model.opset_import), ir_version=model.ir_version)
        dtypes = dict.fromkeys(onnx.TensorProto.DataType.Name(types[n].tensor_type.elem_type).lower() for n in used)
        key = (node.op_type + node.domain).encode() + b"".join(types[n].SerializeToString() for n in names) + b"".join(
            a.SerializeToString() for a in node.attribute)
        probes.setdefault(key, (f"{node.op_type}({', '.join(dtypes)})", probe))
    return list(probes.values())


def missing_kernels(model: onnx.ModelProto, loads: Callable[[bytes], bool]) -> list[str]:
    """The nodes, as "OpType(dtype)", that do not load alone: `loads(model_bytes)` creates a session the
    way the runtime does (same provider, CPU fallback included) and says whether it succeeded."""
    missing: list[str] = []
    for label, probe in probe_models(model):
        if label not in missing and not loads(probe.SerializeToString()):
            missing.append(label)
    return missing
