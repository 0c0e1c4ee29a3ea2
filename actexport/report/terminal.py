"""A verify report on the terminal: the status matrix per dtype (rich), the lines for cells that
failed and, one per kind, for those that changed nothing (groups.py), for onnxruntime's graph
rewrites and for devices, the summary line, and `explain`'s deviations from the exact reference."""

from __future__ import annotations

import math

from actexport.model.criterion import FACTOR, FLOOR
from actexport.report.groups import GROUPED, group_lines

_MARKS = {"pass": "[green]ok[/]", "fail": "[bold red]FAIL[/]", "xfail": "[yellow]xfail[/]",
          "xpass": "[bold red]XPASS[/]", "error": "[bold red]ERROR[/]", "skip": "[dim]skip[/]",
          "unavailable": "[dim]n/a[/]"}


def _num(v: float | None) -> str:
    if v is None:
        return "-"
    if v == 0:
        return "-0" if math.copysign(1.0, v) < 0 else "0"
    return repr(v) if math.isfinite(v) else str(v)


def _figure(cells: list) -> str:
    """A row's figure on one device: the largest ULP error where the exact value is normal, then what
    ULPs cannot say: the largest value returned as 0, and NaN/inf mismatches ("-" where nothing ran)."""
    ulps = [c.normal_ulp if c.normal_ulp is not None else c.max_ulp for c in cells]
    ran = [c for c, u in zip(cells, ulps) if u is not None]
    if not ran:
        return "-"  # NOTE: a 0 would read as perfect parity
    parts = [str(max(u for u in ulps if u is not None))]
    lost = max((c.zero_for for c in ran if c.zero_for), default=None)
    if lost:
        parts.append(f"0 for {lost:.2g}")
    special = max((c.nan_mismatch or 0) + (c.inf_mismatch or 0) for c in ran)
    if special:
        parts.append(f"{special} NaN/inf")
    return ", ".join(parts)


def output_lines(report) -> list[str]:
    """A model's outputs, each with its scale and each runtime's figure at that scale."""
    cells = [c for c in report.cells if c.outputs]
    lines = []
    for dtype in dict.fromkeys(c.dtype for c in cells):
        row = [c for c in cells if c.dtype == dtype]
        for k, o in enumerate(row[0].outputs):
            figures = ", ".join(f"{c.runtime} {c.outputs[k]['ulp_at_scale']:g}" for c in row if len(c.outputs) > k)
            lines.append(f"{dtype} output {o['name']} (scale {o['scale']:.3g}, {o['elements']} elements): "
                         f"ULP at scale {figures}")
    return lines


def _column(fmt: str, opset: int | None, runtime: str) -> str:
    """A matrix column's heading on one line: the runtime, after the format where the runtime's name
    does not say it (onnx@18 ort:cpu; eager:cpu, pt2:cpu)."""
    if opset is None and runtime.split(":")[0] == fmt:
        return runtime
    return f"{fmt}{'' if opset is None else '@' + str(opset)} {runtime}"


def render(report, console, full: bool = False) -> None:
    """One matrix per dtype (activation x format/runtime) of status marks, then one line per cell
    that failed (fail, error, xpass) and one per kind of xfail, skip and unavailable (groups.py),
    then the summary; `full`: one line per cell that did not pass, whatever its status."""
    from rich.markup import escape
    from rich.table import Table
    for dtype in dict.fromkeys(c.dtype for c in report.cells):
        cells = [c for c in report.cells if c.dtype == dtype]
        columns = list(dict.fromkeys((c.format, c.opset, c.runtime) for c in cells))
        by_key = {(c.activation, c.format, c.opset, c.runtime): c for c in cells}
        model = any(c.outputs for c in cells)  # a user's model: each output judged at its own scale
        table = Table(title=f"actexport verify: {dtype}, " + (
            "each output judged at its scale against float64 and eager PyTorch" if model
            else "judged against the exact reference"), show_edge=False)  # no frame: 2 lines fewer in a CI log
        table.add_column("model" if model else "activation")
        for fmt, opset, rt in columns:
            table.add_column(_column(fmt, opset, rt), justify="center")
        devices = list(dict.fromkeys(c.device for c in cells))
        for device in devices:  # one max ULP column per device, so CPU and CUDA read side by side
            name = "max ULP at scale" if model else "max ULP"
            table.add_column(name if len(devices) == 1 else f"{name}\n{device}", justify="right")
        legend = (
            f"ULP at scale: the largest error over the spacing of floats at the output's largest magnitude; "
            f"an artifact may be {FACTOR}x eager PyTorch's (at least {FLOOR}), eager half the digits (README)"
            if model else
            "ULP figures count where the exact value is a normal number; '0 for v': a value v returned as 0; "
            "NaN/inf: elements where one side is NaN or inf and the other is not")
        for act in dict.fromkeys(c.activation for c in cells):
            row = [by_key.get((act, *col)) for col in columns]
            # NOTE: "-" where nothing ran on the device: a 0 would read as perfect parity.
            worst = [_figure([c for c in row if c and c.device == d]) for d in devices]
            table.add_row(escape(act), *[_MARKS[c.status] if c else "" for c in row], *worst)
        console.print(table)
        # NOTE: a line of its own, not the table's caption, which wraps to the table's width
        console.print(legend, markup=False, highlight=False, soft_wrap=True)
    for c in report.cells:
        if c.status != "pass" and (full or c.status not in GROUPED):
            console.print(f"[bold]{escape(c.key)}[/]: {c.status}: {escape(c.reason)}", highlight=False,
                          soft_wrap=True)
    for line in [] if full else group_lines(report, _figure):
        console.print(line, markup=False, highlight=False, soft_wrap=True)
    for line in output_lines(report):
        console.print(line, markup=False, highlight=False, soft_wrap=True)
    for line in optimisation_lines(report) + device_lines(report):
        console.print(line, markup=False, highlight=False, soft_wrap=True)
    for bench in report.latency:
        bench.render(console)
    for problem in report.problems:
        console.print(f"problem: {problem}", markup=False, highlight=False, soft_wrap=True)
    console.print(summary_line(report), soft_wrap=True, highlight=False)


def optimisation_lines(report) -> list[str]:
    """onnxruntime's graph optimisation: how many graphs it rewrote, and each one where that
    changed a number (the unoptimised and optimised graphs judged against exact)."""
    judged = [(g, g.optimisation) for g in report.graphs if g.optimisation is not None]
    if not judged:
        return []
    rewritten = [g for g, o in judged if o.rewritten]
    changed = [(g, o) for g, o in judged if o.numbers]
    lines = [f"onnxruntime graph optimisation (ort:cpu, ORT_ENABLE_ALL): rewrote {len(rewritten)} of {len(judged)} "
             f"ONNX graphs; changed the numbers of {len(changed)}"]
    for g, o in changed:
        lines.append(f"  {g.activation} {g.dtype} opset {g.opset}: {o.numbers} elements differ, up to "
                     f"{o.max_ulp_between} ULP; vs exact {o.unoptimised_max_ulp_vs_exact} ULP unoptimised, "
                     f"{o.optimised_max_ulp_vs_exact} optimised ({o.graph})")
    return lines


def device_lines(report, every: bool = False) -> list[str]:
    """Each runtime on another device against itself on CPU (same artifact, same inputs): a count,
    then one line per pair that disagrees (beyond the budget, or on a special value); `every`:
    also the pairs that differ within budget."""
    if not report.devices:
        return []
    lines = []
    for device in dict.fromkeys(d.device for d in report.devices):
        pairs = [d for d in report.devices if d.device == device]
        same = sum(1 for d in pairs if not d.agreement.differ)
        apart = [d for d in pairs if not d.agreement.agree]
        lines.append(f"{device} against cpu (the same artifact on both devices): {len(pairs)} runtime pairs, "
                     f"{same} bit-identical, {len(pairs) - same - len(apart)} within budget of each other, "
                     f"{len(apart)} disagree")
        for d in pairs:
            a = d.agreement
            if a.agree and not (every and a.differ):
                continue
            fmt = d.format if d.opset is None else f"{d.format}@{d.opset}"
            parts = [f"{a.differ} of {a.elements} elements differ, up to {a.max_ulp} ULP (budget {d.budget_ulp})"]
            parts += [f"{n} {what}" for n, what in ((a.nan_mismatch, "NaN mismatch(es)"),
                                                    (a.inf_mismatch, "inf mismatch(es)")) if n]
            parts += a.special
            if "+" in d.ran_on:  # some nodes of the device's session ran on CPU
                parts.append(f"ran on {d.ran_on}")
            lines.append(f"  {d.activation} {d.dtype} {fmt} {d.runtime}: " + "; ".join(parts))
    return lines


def summary_line(report) -> str:
    counts = ", ".join(f"{n} {s}" for s, n in report.counts().items() if n)
    problems = f", {len(report.problems)} problem(s) outside the cells" if report.problems else ""
    return f"{len(report.cells)} cells: {counts}{problems} in {report.wall_seconds:.1f} s; exit code {report.exit_code()}"


def deviations(report) -> list[str]:
    """One line per deviation from the exact reference, grouped by activation."""
    lines: list[str] = []
    for act in dict.fromkeys(c.activation for c in report.cells):
        cells = [c for c in report.cells if c.activation == act]
        found = [c for c in cells if c.status in ("fail", "xfail", "xpass", "error") or c.deviates]
        specials = {(c.dtype, c.runtime, s) for c in cells for s in c.special}
        if not found and not specials:
            continue
        lines.append(f"{act}: {cells[0].module}")
        for c in found:
            fmt = c.format if c.opset is None else f"{c.format}@{c.opset}"
            where = f"{c.dtype} {fmt} {c.runtime}: {c.status}"
            if c.worst_input is None and c.max_ulp is None:
                lines.append(f"  {where}: {c.reason}")
                continue
            values = [f"exact {_num(c.worst_expected)}"]
            values += ([f"pytorch {_num(c.worst_actual)}"] if c.format == "eager" else
                       [f"pytorch {_num(c.worst_torch)}", f"artifact {_num(c.worst_actual)}"])
            if c.worst_spec is not None:
                values.append(f"onnx.reference {_num(c.worst_spec)}")
            x = "x=" + _num(c.worst_input) if c.worst_input is not None else "element"
            lines.append(f"  {where}, side {c.deviates or 'none'}: {x}: {', '.join(values)} "
                         f"({c.max_ulp} ULP, budget {c.ulp_budget})")
        for dtype, runtime, text in sorted(specials):
            lines.append(f"  special values, {dtype} {runtime}: {text}")
    return lines


def explain(report, console) -> None:
    console.print("Deviations from the exact reference (grouped by activation):", highlight=False)
    for line in deviations(report) or ["  none"]:
        console.print(line, markup=False, highlight=False, soft_wrap=True)
    for line in device_lines(report, every=True):
        console.print(line, markup=False, highlight=False, soft_wrap=True)
    rewritten = [(g, g.optimisation) for g in report.graphs if g.optimisation and g.optimisation.rewritten]
    if rewritten:
        console.print("ONNX graphs that onnxruntime rewrites (as exported -> as optimised):", highlight=False)
        for g, o in rewritten:
            effect = f"{o.numbers} elements change" if o.numbers else "bit-identical outputs"
            console.print(f"  {g.activation} {g.dtype} opset {g.opset}: {o.graph}; {effect}",
                          markup=False, highlight=False, soft_wrap=True)
    if any(g.ort_cpu_max_ulp_vs_opset is not None for g in report.graphs):
        console.print("ONNX graphs by opset (op types, nodes; ort:cpu numerics against the first opset):")
        for act in dict.fromkeys(g.activation for g in report.graphs):
            for dtype in dict.fromkeys(g.dtype for g in report.graphs if g.activation == act):
                parts = []
                for g in (g for g in report.graphs if g.activation == act and g.dtype == dtype):
                    diff = g.ort_cpu_max_ulp_vs_opset
                    change = "" if diff is None else (
                        " identical" if not any(diff.values()) else f" differs by {max(diff.values())} ULP")
                    parts.append(f"opset {g.opset}: {'+'.join(g.op_types or [])} ({g.nodes} nodes){change}")
                console.print(f"  {act} {dtype}: " + "; ".join(parts), markup=False, highlight=False,
                              soft_wrap=True)
