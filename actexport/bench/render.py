"""How a bench report looks: rich tables on the terminal and a matplotlib PNG (each library imported
only when used)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from actexport.bench.row import POOR_FACTOR, POOR_MIN_SIZE, BenchRow
from actexport.catalog import UsageError
from actexport.files import atomic_write

if TYPE_CHECKING:
    from matplotlib.artist import Artist
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

OTHER_CPU_WARN = 0.1  # share of the machine's CPU time used by other processes that makes a run suspect


def render_report(report, console) -> None:
    """Per size: a table activation x runtime of median µs with ×floor and ×eager; then the
    geometric means per runtime; then the poor graphs; then why rows have no figure."""
    from rich.markup import escape
    from rich.table import Table
    env = report.environment
    ort_threads = env.get("onnxruntime", {}).get("intra_op_num_threads", "-")
    console.print(
        f"actexport bench: {env.get('dtype')}, torch threads {env.get('torch_threads')}, onnxruntime "
        f"intra-op threads {ort_threads} (0 = default), DRAM copy {_num(env.get('dram_copy_gbs'))} GB/s",
        highlight=False, soft_wrap=True)
    other = env.get("other_cpu_share")
    if other is not None and other > OTHER_CPU_WARN:
        console.print(f"[yellow]warning[/]: other processes (or the hypervisor) used {other:.0%} of the CPU time "
                      "during the run: the figures are unreliable", highlight=False)
    runtimes = report.runtimes()
    devices = list(dict.fromkeys(f.device for f in report.floors if f.bandwidth))
    for size in report.sizes():
        rows = {(r.activation, r.column): r for r in report.rows if r.size == size}
        table = Table(title=f"median µs at {size:.0e} elements; xF: over the floor, xE: over eager (module "
                      "call) on the same device; ~: did not converge", title_justify="left")
        table.add_column("activation", no_wrap=True)
        for device in devices:
            table.add_column(f"floor\n{device} µs", justify="right")
        for rt in runtimes:
            table.add_column(rt.replace(":", "\n"), justify="right")
        for act in dict.fromkeys(r.activation for r in report.rows):
            floors = [next((r.floor_s for r in report.rows if r.activation == act and r.size == size
                            and r.device == device and r.floor_s), None) for device in devices]
            table.add_row(escape(act), *map(_us, floors), *[_cell(rows.get((act, rt))) for rt in runtimes])
        console.print(table)
    means = Table(title="geometric mean over activations: xE (over eager) / xF (over the floor)",
                  title_justify="left")
    means.add_column("runtime")
    for size in report.sizes():
        means.add_column(f"{size:.0e}", justify="right")
    by = {(g["runtime"], g["size"]): g for g in report.geomeans()}
    for rt in runtimes:
        means.add_row(rt, *[f"{_num(by[rt, s]['ratio_eager'])} / {_num(by[rt, s]['ratio_floor'])}"
                            if by.get((rt, s)) and by[rt, s]["activations"] else "-" for s in report.sizes()])
    console.print(means)
    poor = report.poor_graphs()
    if not any(s >= POOR_MIN_SIZE for s in report.sizes()):
        console.print(f"poor graphs: not judged (needs a size >= {POOR_MIN_SIZE:.0e})", highlight=False)
    elif not poor:
        console.print(f"poor graphs: none (no ONNX graph on ort:cpu > {POOR_FACTOR:g}x eager)", highlight=False)
    else:
        console.print(f"poor graphs (onnx on ort:cpu > {POOR_FACTOR:g}x eager:cpu at >= {POOR_MIN_SIZE:.0e}):")
        for p in poor:
            worst = max(p["sizes"], key=lambda s: s["ratio_eager"])
            console.print(f"  {p['activation']}: {_num(worst['ratio_eager'])}x eager at {worst['size']:.0e}; "
                          f"{p['graph']}", markup=False, highlight=False, soft_wrap=True)
    seen: set[tuple[str, str, str]] = set()
    for r in report.rows:
        if r.status != "ok" and (r.activation, r.column, r.reason) not in seen:
            seen.add((r.activation, r.column, r.reason))
            console.print(f"{r.activation} {r.column}: {r.status}: {r.reason}", markup=False,
                          highlight=False, soft_wrap=True)
    ok = [r for r in report.rows if r.status == "ok"]
    console.print(f"{len(report.rows)} rows, {len(ok)} measured, {sum(bool(r.converged) for r in ok)} converged, "
                  f"in {report.wall_seconds:.1f} s", highlight=False)


def plot_report(report, path: Path) -> None:
    """PNG: latency against size, one panel per activation, one line per runtime, log-log, the
    floor dashed."""
    try:
        fig = latency_figure(report)
    except ImportError:
        raise UsageError("--plot needs matplotlib: pip install 'actexport[bench]'") from None
    atomic_write(Path(path), lambda tmp: fig.savefig(tmp, format="png", dpi=100))


def latency_figure(report) -> Figure:
    """plot_report's figure, for a file or a page (report/html.py); raises ImportError without
    matplotlib."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    # NOTE: Figure + the Agg canvas directly, not pyplot: no global backend state, no display needed.
    acts = list(dict.fromkeys(r.activation for r in report.rows))
    cols = min(6, max(1, len(acts)))
    nrows = max(1, -(-len(acts) // cols))
    fig = Figure(figsize=(3.2 * cols, 2.6 * nrows + 0.6), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, cols, squeeze=False)
    runtimes = report.runtimes()
    ax: Axes  # axes is an object array of Axes
    for ax, act in zip(axes.flat, acts):
        for i, rt in enumerate(runtimes):  # NOTE: a fixed colour per runtime across panels
            pts = sorted((r.elements, r.median_s * 1e6) for r in report.rows
                         if r.activation == act and r.column == rt and r.status == "ok")
            if pts:
                ax.plot(*zip(*pts), marker="o", markersize=3, linewidth=1, label=rt, color=f"C{i % 10}")
        for device, color in zip(dict.fromkeys(f.device for f in report.floors), ("black", "grey")):
            floor = sorted({(r.elements, r.floor_s * 1e6) for r in report.rows
                            if r.activation == act and r.floor_s and r.device == device})
            if floor:
                ax.plot(*zip(*floor), linestyle="--", color=color, linewidth=1, label=f"floor ({device})")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(act, fontsize=9)
        ax.tick_params(labelsize=7)
        ax.grid(True, which="major", alpha=0.3)
    for ax in list(axes.flat)[len(acts):]:
        ax.set_visible(False)
    handles: dict[str, Artist] = {}
    for ax in axes.flat:
        for h, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, h)
    if handles:
        fig.legend(list(handles.values()), list(handles), loc="outside upper center", ncols=min(6, len(handles)),
                   fontsize=8)
    fig.supxlabel("elements", fontsize=9)
    fig.supylabel("median latency (µs)", fontsize=9)
    return fig


def _us(s: float | None) -> str:
    if s is None:
        return "-"
    us = s * 1e6
    return f"{us:.2f}" if us < 10 else f"{us:.1f}" if us < 100 else f"{us:,.0f}"


def _num(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v:.2f}" if v < 10 else f"{v:.1f}" if v < 100 else f"{v:,.0f}"


def _cell(r: BenchRow | None) -> str:
    if r is None:
        return ""
    if r.status != "ok":
        return "[dim]n/a[/]" if r.status == "unavailable" else "[bold red]error[/]"
    mark = "" if r.converged else "~"
    return f"{mark}{_us(r.median_s)}\n[dim]xF {_num(r.ratio_floor)} xE {_num(r.ratio_eager)}[/]"
