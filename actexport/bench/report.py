"""A bench run's report: its environment, floors and rows, the summaries over them, and its JSON."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

from actexport.bench.render import plot_report, render_report
from actexport.bench.row import POOR_FACTOR, POOR_MIN_SIZE, BenchRow
from actexport.bench.timing import DEFAULT_RULE, Floor, StoppingRule
from actexport.files import json_ready, write_json

SCHEMA = 1


@dataclass
class BenchReport:
    """Everything one bench() run measured, with its environment and stopping rule."""

    environment: dict
    rule: StoppingRule = DEFAULT_RULE
    floors: list[Floor] = field(default_factory=list)
    rows: list[BenchRow] = field(default_factory=list)
    graphs: dict[str, dict] = field(default_factory=dict)  # per activation: graphs.analyse() of its ONNX file
    wall_seconds: float = 0.0
    provider_problems: list[str] = field(default_factory=list)  # a provider that failed to load (exit 4 in the CLI)

    def floor(self, device: str, size: int) -> Floor | None:
        return next((f for f in self.floors if f.device == device and f.size == size), None)

    def runtimes(self) -> list[str]:
        """The rows' names in tables (BenchRow.column), in row order."""
        return list(dict.fromkeys(r.column for r in self.rows))

    def sizes(self) -> list[int]:
        return sorted({r.size for r in self.rows})

    def geomeans(self) -> list[dict]:
        """Per runtime and size: geometric means of the ratios to eager and to the floor, over the
        activations measured (ok) in that runtime at that size."""
        out = []
        for size in self.sizes():
            for rt in self.runtimes():
                ok = [r for r in self.rows if r.size == size and r.column == rt and r.status == "ok"]
                out.append({"runtime": rt, "size": size, "activations": len(ok),
                            "ratio_eager": _geomean([r.ratio_eager for r in ok]),
                            "ratio_floor": _geomean([r.ratio_floor for r in ok])})
        return out

    def poor_graphs(self) -> list[dict]:
        """Activations whose ONNX graph on ort:cpu is more than POOR_FACTOR x slower than eager
        PyTorch at a measured size >= POOR_MIN_SIZE, with the graph as exported and as optimised."""
        from actexport.graphs import describe
        out: list[dict] = []
        for act in dict.fromkeys(r.activation for r in self.rows):
            slow = [r for r in self.rows if r.activation == act and r.format == "onnx" and r.column == "ort:cpu"
                    and r.status == "ok" and r.size >= POOR_MIN_SIZE and (r.ratio_eager or 0) > POOR_FACTOR]
            if slow:
                graph = self.graphs.get(act, {})
                out.append({"activation": act, "graph": describe(graph) if graph else "no graph record",
                            "ort_specific": graph.get("ort_specific", []),
                            "sizes": [{"size": r.size, "median_s": r.median_s, "ratio_eager": r.ratio_eager}
                                      for r in slow]})
        return out

    def to_dict(self) -> dict:
        return json_ready({
            "schema": SCHEMA,
            "environment": self.environment,
            "stopping_rule": {"text": self.rule.describe(), **asdict(self.rule)},
            "floor": [{**asdict(f), "bandwidth_gbs": f.bandwidth / 1e9 if f.bandwidth else None} for f in self.floors],
            "rows": [{**asdict(r), "bytes": r.bytes} for r in self.rows],
            "graphs": self.graphs,
            "summary": {
                "rows": len(self.rows),
                "ok": sum(r.status == "ok" for r in self.rows),
                "converged": sum(bool(r.converged) for r in self.rows),
                "wall_seconds": round(self.wall_seconds, 3),
                "geomeans": self.geomeans(),
                "poor_graphs": self.poor_graphs(),
                "poor_graph_rule": f"onnx on ort:cpu median > {POOR_FACTOR:g} x eager:cpu at a size >= {POOR_MIN_SIZE}",
                "provider_problems": self.provider_problems,
            },
        })

    def write_json(self, path: Path) -> None:
        write_json(path, self.to_dict())

    def render(self, console) -> None:
        """Prints the tables of `render.render_report` to `console` (a rich Console)."""
        render_report(self, console)

    def write_plot(self, path: Path) -> None:
        """Writes the PNG of `render.plot_report` to `path` (needs matplotlib)."""
        plot_report(self, path)

    def write_html(self, path: Path) -> None:
        """One self-contained page: the plot and the tables (needs jinja2 and matplotlib: the `html` extra)."""
        from actexport.report.html import write_bench
        write_bench(self, path)


def _geomean(values: list[float | None]) -> float | None:
    vals = [v for v in values if v and v > 0]
    return math.exp(sum(math.log(v) for v in vals) / len(vals)) if vals else None
