"""Graph quality of an ONNX artifact: its nodes as exported and after onnxruntime's optimisation."""

from __future__ import annotations

import tempfile
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from actexport.compare import compare, merge, ulp_distance, values_differ

if TYPE_CHECKING:
    from actexport.catalog import Budget


# NOTE: the level onnxruntime applies by default, so the optimised graph is the one that is timed.
LEVEL = "ORT_ENABLE_ALL"


def op_type(node) -> str:
    """An ONNX node's op type, prefixed with its domain when it is not the standard one
    ("com.microsoft:QuickGelu" is an onnxruntime contrib op, "Sigmoid" a standard one)."""
    return node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}:{node.op_type}"


def summary(model) -> dict:
    """Node count and op types (with counts) of a loaded ONNX model's main graph.

    Only the top-level graph is counted: activation exports have no subgraphs or local functions.
    """
    counts = Counter(op_type(n) for n in model.graph.node)
    return {"nodes": len(model.graph.node), "op_types": dict(sorted(counts.items()))}


def analyse(path: Path, save_optimized: Path | None = None) -> dict:
    """The exported graph and the graph onnxruntime's CPU provider runs after ORT_ENABLE_ALL.

    Args:
        path: an ONNX file.
        save_optimized: where to keep the optimised model for inspection (else it is discarded).
            At ORT_ENABLE_ALL it may hold onnxruntime-specific (contrib) ops and layout choices
            for this CPU: it is a diagnostic, not an artifact to deploy.

    Returns:
        {"exported": {"nodes", "op_types"}, "optimized": {"nodes", "op_types", "level", "path"},
        "ort_specific": op types outside the standard ONNX domain after optimisation}.
    """
    import onnx
    import onnxruntime as ort
    from actexport.runtimes.onnxrt import session_options
    exported = summary(onnx.load(str(path)))
    with tempfile.TemporaryDirectory(prefix="actexport-graph-") as tmp:
        target = Path(save_optimized) if save_optimized is not None else Path(tmp) / "optimized.onnx"
        target.parent.mkdir(parents=True, exist_ok=True)
        options, _ = session_options(optimization="all")
        options.optimized_model_filepath = str(target)
        ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
        optimized = summary(onnx.load(str(target)))
    return {
        "exported": exported,
        "optimized": {**optimized, "level": LEVEL, "path": str(save_optimized) if save_optimized else None},
        "ort_specific": [t for t in optimized["op_types"] if ":" in t],
    }


def describe(record: dict) -> str:
    """One line: "5 nodes (Add, Div, Erf, Mul x2) -> 1 node (com.microsoft:Gelu)"."""

    def side(s: dict) -> str:
        ops = ", ".join(t if n == 1 else f"{t} x{n}" for t, n in s["op_types"].items())
        return f"{s['nodes']} node{'' if s['nodes'] == 1 else 's'} ({ops})"

    if "exported" not in record:
        return record.get("error", "no graph")
    return f"{side(record['exported'])} -> {side(record['optimized'])}"


@dataclass(frozen=True)
class Optimisation:
    """What onnxruntime's graph optimisation did to one graph (its nodes) and to its numbers."""

    optimised_nodes: int
    optimised_op_types: dict[str, int]
    ort_specific: list[str]  # op types outside the standard ONNX domain after optimisation
    graph: str  # describe(): as exported -> as optimised
    rewritten: bool
    numbers: int  # elements whose values differ between the unoptimised and the optimised graph
    max_ulp_between: int
    unoptimised_max_ulp_vs_exact: int
    optimised_max_ulp_vs_exact: int
    unoptimised_within_budget: bool
    optimised_within_budget: bool

    def to_dict(self) -> dict:
        """The JSON report's shape: the optimised graph beside the record's own, the rest under "optimisation"."""
        fields = asdict(self)
        graph = {k: fields.pop(k) for k in ("optimised_nodes", "optimised_op_types", "ort_specific")}
        return {**graph, "optimisation": fields}


def optimisation(graph: dict, plain: list[np.ndarray], optimised: list[np.ndarray], exact: list[np.ndarray],
                 xs: list[np.ndarray], budget: Budget) -> Optimisation:
    """What onnxruntime's graph optimisation did to the graph (analyse()), and to the numbers.

    `optimised`: the outputs of the graph onnxruntime runs by default (ORT_ENABLE_ALL); `plain`: the
    same graph's outputs unoptimised (ORT_DISABLE_ALL), on the same inputs `xs`; both are judged
    against `exact`.
    """
    vs_exact = [merge([compare(v, e, x, budget) for v, e, x in zip(vals, exact, xs)]) for vals in (plain, optimised)]
    between = [ulp_distance(a, b) for a, b in zip(plain, optimised)]
    return Optimisation(
        optimised_nodes=graph["optimized"]["nodes"], optimised_op_types=graph["optimized"]["op_types"],
        ort_specific=graph["ort_specific"],
        graph=describe(graph),
        rewritten=graph["exported"] != {k: graph["optimized"][k] for k in ("nodes", "op_types")},
        numbers=sum(values_differ(a, b) for a, b in zip(plain, optimised)),
        max_ulp_between=int(max((int(np.max(d, initial=0)) for d in between), default=0)),
        unoptimised_max_ulp_vs_exact=vs_exact[0].max_ulp, optimised_max_ulp_vs_exact=vs_exact[1].max_ulp,
        unoptimised_within_budget=vs_exact[0].ok, optimised_within_budget=vs_exact[1].ok,
    )
