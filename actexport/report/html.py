"""A verify or bench report as one self-contained HTML page: jinja2 templates (templates/) and
matplotlib plots inlined as base64 PNG, so the page fetches nothing when it is viewed. The matrix of
each dtype is a heatmap (hue: the status, shade: the error in ULP); each cell links to its details:
the worst inputs, the reason or declaration, the side at fault, the ONNX graph, a model's outputs."""

from __future__ import annotations

import base64
import importlib.util
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from actexport.files import atomic_write, json_ready

INSTALL = "pip install 'actexport[html]'"
NEEDS = ("jinja2", "matplotlib")
LOG_CHARS = 2000  # of a cell's captured log; the JSON report keeps it whole, the page stays small
ULP_SCALE = 2**31  # the shade of a cell over its budget saturates here (a float32 sign flip)
PLOT_DPI = 80

# status: (colour map, its lightest and darkest shade); a declared deviation stays lighter than a failure
_HUES = {"pass": ("Greens", 0.12, 0.5), "xfail": ("Oranges", 0.2, 0.55), "fail": ("Reds", 0.5, 0.9),
         "xpass": ("Reds", 0.5, 0.9), "error": ("Purples", 0.6, 0.9)}
_GREYS = {"skip": "#eeeeee", "unavailable": "#dddddd"}
_MARKS = {"pass": "ok", "fail": "FAIL", "xfail": "xfail", "xpass": "XPASS", "error": "ERROR", "skip": "skip",
          "unavailable": "n/a"}


def require() -> None:
    """Raises UsageError unless jinja2 and matplotlib import: --html is checked before a run starts."""
    missing = [m for m in NEEDS if importlib.util.find_spec(m) is None]
    if missing:
        from actexport.catalog import UsageError
        raise UsageError(f"--html needs {' and '.join(missing)}: {INSTALL}")


def write(report, path: Path) -> None:
    """The page of a verify or check report (report.model.Report)."""
    _write(path, _render("verify.html.j2", **_verify_context(report)))


def write_bench(bench, path: Path) -> None:
    """The page of a bench report (bench.report.BenchReport)."""
    _write(path, _render("bench.html.j2", title=f"actexport bench: {bench.environment.get('dtype', '')}",
                         bench=_bench_context(bench), environment=bench.environment))


@dataclass(frozen=True)
class CellView:
    """A cell as the page shows it: its anchor, its colours, its ULP figure and its ONNX graph."""

    id: str
    cell: Any  # report.model.Cell (imported here, it would close a cycle)
    mark: str
    background: str
    ink: str
    ulp: str
    title: str
    graph: Any  # its report.model.GraphRecord, for an ONNX cell


def _verify_context(report) -> dict:
    from actexport.report.terminal import _figure, device_lines, optimisation_lines

    graphs = {(g.activation, g.dtype, g.opset): g for g in report.graphs}
    views = []
    for i, c in enumerate(report.cells):
        background, ink = _colour(str(c.status), _ulp(c), c.ulp_budget)
        views.append(CellView(
            id=f"c{i}", cell=c, mark=_MARKS.get(str(c.status), str(c.status)), background=background, ink=ink,
            ulp=_short(_ulp(c)), title=f"{c.key}: {c.status}, max ULP {_figure([c])}",
            graph=graphs.get((c.activation, c.dtype, c.opset)) if c.format == "onnx" else None))
    matrices = []
    for dtype in dict.fromkeys(c.dtype for c in report.cells):
        mine = [v for v in views if v.cell.dtype == dtype]
        columns = list(dict.fromkeys((v.cell.format, v.cell.opset, v.cell.runtime) for v in mine))
        by_key = {(v.cell.activation, v.cell.format, v.cell.opset, v.cell.runtime): v for v in mine}
        model = any(v.cell.outputs for v in mine)  # a user's model: each output judged at its own scale
        rows = []
        for act in dict.fromkeys(v.cell.activation for v in mine):
            row = [by_key.get((act, *col)) for col in columns]
            ulps = [u for u in (_ulp(v.cell) for v in row if v) if u is not None]
            figure = (_short(max(ulps)) if ulps else "-") if model else _figure([v.cell for v in row if v])
            rows.append({"name": act, "cells": row, "figure": figure})
        matrices.append({
            "dtype": dtype, "model": model,
            "columns": [(fmt if opset is None else f"{fmt}@{opset}", rt) for fmt, opset, rt in columns],
            "rows": rows})
    counts = report.counts()
    return {
        "title": "actexport verify", "report": report, "matrices": matrices, "cells": views,
        "counts": {s: n for s, n in counts.items() if n}, "chips": {s: _colour(s, None, None) for s in counts},
        "marks": _MARKS, "exit_code": report.exit_code(), "summary": report.summary_line(),
        "notes": optimisation_lines(report) + device_lines(report), "log_chars": LOG_CHARS,
        "benches": [_bench_context(b) for b in report.latency], "environment": report.environment,
    }


def _bench_context(bench) -> dict:
    """A bench report's plot and tables, for the bench page and a verify page's latency section."""
    from actexport.bench.row import POOR_FACTOR, POOR_MIN_SIZE

    runtimes, sizes = bench.runtimes(), bench.sizes()
    activations = list(dict.fromkeys(r.activation for r in bench.rows))
    tables = []
    for size in sizes:
        by = {(r.activation, r.column): r for r in bench.rows if r.size == size}
        tables.append({"size": size, "rows": [
            {"name": act, "cells": [_latency_cell(by.get((act, rt))) for rt in runtimes]} for act in activations]})
    means = {(g["runtime"], g["size"]): g for g in bench.geomeans()}
    notes = list(dict.fromkeys(f"{r.activation} {r.column}: {r.status}: {r.reason}"
                               for r in bench.rows if r.status != "ok"))
    return {
        "dtype": bench.environment.get("dtype", ""), "runtimes": runtimes, "sizes": sizes, "tables": tables,
        "plot": _plot(bench) if any(r.status == "ok" for r in bench.rows) else None,
        "geomeans": [{"runtime": rt, "cells": [means.get((rt, s)) for s in sizes]} for rt in runtimes],
        "poor": bench.poor_graphs(), "poor_rule": f"onnx on ort:cpu > {POOR_FACTOR:g}x eager:cpu at >= "
        f"{POOR_MIN_SIZE:.0e} elements", "notes": notes, "wall_seconds": bench.wall_seconds,
        "rule": bench.rule.describe(),
    }


def _latency_cell(row) -> dict | None:
    if row is None:
        return None
    if row.status != "ok" or row.median_s is None:
        return {"text": "n/a" if row.status == "unavailable" else row.status, "title": row.reason,
                "background": _GREYS["unavailable"], "ink": "#000"}
    ratio = row.ratio_eager
    background = "#ffffff"
    if ratio:
        from matplotlib import colormaps
        from matplotlib.colors import to_hex
        # 4x faster than eager at one end, 4x slower at the other: the ratios that decide a deployment
        background = to_hex(colormaps["RdYlGn_r"](0.5 + max(-0.5, min(0.5, math.log2(ratio) / 4))))
    return {"text": f"{row.median_s * 1e6:.3g}" + ("" if row.converged else "~"),
            "title": f"xE {_short(ratio)}, xF {_short(row.ratio_floor)}, {row.iterations} calls, p90 "
            f"{_short(row.p90_s and row.p90_s * 1e6)} µs", "ratio": ratio, "background": background,
            "ink": _ink(background)}


def _plot(bench) -> str:
    """The bench PNG (bench/render.py) as a data: URI."""
    from actexport.bench.render import latency_figure

    buf = io.BytesIO()
    latency_figure(bench).savefig(buf, format="png", dpi=PLOT_DPI)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _ulp(c) -> float | None:
    """The cell's error: a model's worst output at its scale, else ULP where the exact value is normal."""
    if c.outputs:
        return max((o.get("ulp_at_scale") or 0 for o in c.outputs), default=None)
    return c.normal_ulp if c.normal_ulp is not None else c.max_ulp


def _colour(status: str, ulp: float | None, budget: int | None) -> tuple[str, str]:
    """(background, ink). A pass shades with the share of its budget used, anything else with its
    error on a log scale up to ULP_SCALE; both logarithmic, as ULP errors span nine decades."""
    if status not in _HUES:
        background = _GREYS.get(status, "#ffffff")
        return background, _ink(background)
    from matplotlib import colormaps
    from matplotlib.colors import to_hex
    if ulp is None:
        shade = 0.0 if status == "pass" else 1.0
    else:
        top = budget if status == "pass" and budget else ULP_SCALE
        shade = min(1.0, math.log1p(max(ulp, 0)) / math.log1p(top))
    name, lo, hi = _HUES[status]
    background = to_hex(colormaps[name](lo + (hi - lo) * shade))
    return background, _ink(background)


def _ink(background: str) -> str:
    from matplotlib.colors import to_rgb
    r, g, b = to_rgb(background)
    return "#000000" if 0.299 * r + 0.587 * g + 0.114 * b > 0.55 else "#ffffff"


def _short(v: float | None) -> str:
    if v is None:
        return ""
    if abs(v) >= 1e4:
        return f"{v:.1e}".replace("e+0", "e").replace("e+", "e")
    return f"{v:.0f}" if float(v).is_integer() else f"{v:.3g}"


def _num(v) -> str:
    """Values as the JSON report has them: every float digit (a worst input is to be reproduced), -0 kept."""
    if isinstance(v, float):
        if v == 0:
            return "-0.0" if math.copysign(1.0, v) < 0 else "0.0"
        return repr(v)
    if isinstance(v, (dict, list)):
        return json.dumps(json_ready(v))
    return str(v)


def _render(template: str, **context) -> str:
    import jinja2

    env = jinja2.Environment(loader=jinja2.PackageLoader("actexport.report", "templates"), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["num"] = _num
    env.filters["short"] = _short
    env.filters["pretty"] = lambda v: json.dumps(json_ready(v), indent=1, sort_keys=True)
    return env.get_template(template).render(**context)


def _write(path: Path, text: str) -> None:
    atomic_write(Path(path), lambda tmp: tmp.write_text(text, encoding="utf-8"))
