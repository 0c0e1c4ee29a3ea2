"""Where each cell deviates, over the number line: the measurements behind the catalog's declarations.

Usage:

    python benchmarks/deviations.py [--ids gelu,elu] [--dtypes float32] [--sample-shift 10] [--json PATH]

For every activation, dtype and CPU runtime (eager, onnx.reference, ort:cpu, torchscript, .pt2) it runs
the inputs `verify` uses (every 16-bit value; every binade of float32/float64 with dense points near
boundaries and declared regions) and, for elementwise float32, one bit pattern in every
2**`--sample-shift` as an independent check. It prints, per cell that deviates, the maximal intervals
of inputs over the ULP budget (between the nearest inputs within budget, so the interval is what a
declaration must cover), the largest ULP and absolute error inside, values returned as 0, and the
inputs where NaN or inf appear where the exact value has none (or the reverse). Input `x` is what the
catalog's regions mean (`Activation.region_input`). Each cell is then judged against the catalog's
declaration: `covered` or `NOT COVERED` with the first element the declaration does not excuse.

Run it under ATEN_CPU_CAPABILITY=default / avx2 / avx512 before trusting a range: PyTorch's kernels
differ by CPU.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from actexport.formats import FORMATS
from actexport import catalog, tasks
from actexport.compare import classify
from actexport.exporters.onnx import DEFAULT_EXPORTER, DEFAULT_OPSET
from actexport.inputs import Battery, _layout, batteries, np_dtype
from actexport.tasks import export_one
from actexport.runtimes import for_format


def sample(dtype: str, shift: int) -> np.ndarray:
    """One bit pattern in every 2**shift of a 32-bit dtype, from a seeded offset."""
    offset = int(np.random.default_rng(shift).integers(1 << shift))
    words = np.arange(offset, 1 << 32, 1 << shift, dtype=np.uint64).astype(np.uint32)
    return words.view(np_dtype(dtype))


def intervals(xs: np.ndarray, bad: np.ndarray) -> list[dict]:
    """Maximal runs of bad inputs along the sorted inputs: each with its first and last bad input and
    the nearest good inputs around it (a declaration's range must lie between those)."""
    finite = np.isfinite(xs)
    order = np.argsort(xs[finite], kind="stable")
    x, b = xs[finite][order], bad[finite][order]
    # NOTE: one x may appear several times (rows of softmax): it is bad if any instance is.
    ux, inverse = np.unique(x, return_inverse=True)
    ub = np.zeros(ux.size, bool)
    np.logical_or.at(ub, inverse, b)
    runs, i = [], 0
    while i < ux.size:
        if not ub[i]:
            i += 1
            continue
        j = i
        while j + 1 < ux.size and ub[j + 1]:
            j += 1
        runs.append({"first": float(ux[i]), "last": float(ux[j]),
                     "good_below": float(ux[i - 1]) if i > 0 else None,
                     "good_above": float(ux[j + 1]) if j + 1 < ux.size else None, "count": int(j - i + 1)})
        i = j + 1
    return runs


def measure(act, dtype: str, name: str, values: list[np.ndarray], inputs: list[Battery], exact: list[np.ndarray],
            xfail, exporter: str | None = None) -> dict | None:
    budget = act.budget(dtype)
    xs, over, special, ulp, abs_err, zero, e_abs, excused = [], [], [], [], [], [], [], []
    for v, e, b in zip(values, exact, inputs):
        el = classify(v, e, budget)
        xr = act.region_x(b.x)
        xs.append(xr)
        over.append(el.over)
        special.append(el.nan_bad | el.inf_bad)
        ulp.append(np.where(el.normal & ~el.zero_loss, el.ulp, 0))
        abs_err.append(el.abs_err)
        zero.append(el.zero_loss)
        e_abs.append(np.abs(el.expected))
        excused.append(xfail.excuses(xr, el.over, el.nan_bad | el.inf_bad, el.ulp, el.abs_err) if xfail
                       else np.zeros(el.over.shape, bool))
    xs, over, special, ulp, abs_err, zero, e_abs, excused = (
        np.concatenate(a) for a in (xs, over, special, ulp, abs_err, zero, e_abs, excused))
    if not (over.any() or special.any()):
        return None
    rest = (over | special) & ~excused
    out = {
        "cell": f"{act.id} / {name} / {dtype}",
        "exporter": exporter,
        "over": intervals(xs, over),
        "max_ulp": int(ulp[over].max(initial=0)),
        "max_abs": float(abs_err[over].max(initial=0.0)),
        "zero_for": float(e_abs[zero].max(initial=0.0)),
        "special": special_hull(xs[special]),
        "declared": xfail.where + xfail.special if xfail else None,
        "covered": not rest.any(),
    }
    if rest.any():
        i = int(np.flatnonzero(rest)[0])
        out["first_not_covered"] = {"x": float(xs[i]), "ulp": int(ulp[i]), "abs": float(abs_err[i]),
                                    "special": bool(special[i])}
    return out


def hulls(runs: list[dict]) -> str:
    """The runs of each sign as one hull: "[first, last] in (good below, good above), N runs"."""
    out = []
    for side in (lambda r: r["last"] < 0, lambda r: r["first"] >= 0):
        mine = [r for r in runs if side(r)]
        if mine:
            lo, hi = mine[0], mine[-1]
            out.append(f"[{lo['first']:.6g}, {hi['last']:.6g}] in ({lo['good_below']!r}, {hi['good_above']!r}), "
                       f"{len(mine)} run(s)")
    straddle = [r for r in runs if r["first"] < 0 <= r["last"]]
    out += [f"[{r['first']:.6g}, {r['last']:.6g}] in ({r['good_below']!r}, {r['good_above']!r})" for r in straddle]
    return "; ".join(out)


def special_hull(xs: np.ndarray) -> list[str]:
    """Where NaN/inf mismatches happen: the points -inf, +inf and nan, and the hull of the finite inputs
    of each sign ("[-1e+38, -20]")."""
    out = [p for p, hit in (("-inf", np.any(xs == -np.inf)), ("+inf", np.any(xs == np.inf)),
                            ("nan", np.any(np.isnan(xs)))) if hit]
    finite = xs[np.isfinite(xs)]
    for side in (finite[finite < 0], finite[finite >= 0]):
        if side.size:
            out.append(f"[{side.min():.6g}, {side.max():.6g}]")
    return out


def _show(v: float) -> str:
    return "nan" if np.isnan(v) else repr(float(v))


def cells(act, dtype: str, tmp: Path, shift: int | None, exporter: str = DEFAULT_EXPORTER,
          opset: int = DEFAULT_OPSET, formats: tuple[str, ...] = FORMATS) -> list[dict]:
    inputs = batteries(act, dtype)
    if shift and dtype == "float32" and act.oracle.elementwise:
        inputs.append(Battery("sample", _layout(act, sample(dtype, shift), np.ones(1, np_dtype(dtype)))))
    xs = [b.x for b in inputs]
    with np.errstate(all="ignore"):
        exact = [act.oracle(x).astype(x.dtype) for x in xs]
    found = []
    outcome = tasks.eager(act.id, None, dtype, "cpu", xs, act=act)
    runs = [("eager", "eager:cpu", None, None, outcome)]
    for fmt in formats:
        result = export_one(act, fmt, dtype, tmp / act.id / dtype / fmt, opset, exporter)
        if not result.ok:
            continue
        for rt in for_format(fmt, ("cpu",), reference=True, threads=1):
            runs.append((fmt, rt.name, result.exporter, result.onnx,
                         tasks.runtime(fmt, rt.name, "cpu", result.path, xs, 1)))
    for fmt, name, exporter, made_by, outcome in runs:
        if outcome[0] != "ok":
            continue
        xfail = act.xfail(fmt, name, dtype, made_by.base if made_by else None,
                          graphs=made_by.graphs if made_by else None)
        m = measure(act, dtype, name, outcome[1], inputs, exact, xfail, exporter)
        if m:
            found.append(m)
    return found


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ids", default=None)
    p.add_argument("--dtypes", default=",".join(catalog.DTYPES))
    p.add_argument("--sample-shift", type=int, default=0, help="also run 1 float32 pattern in 2**N (0: no)")
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--exporter", default=DEFAULT_EXPORTER, help="ONNX exporter spec, e.g. legacy, dynamo (stock graphs)")
    p.add_argument("--opset", type=int, default=DEFAULT_OPSET)
    p.add_argument("--formats", default=",".join(FORMATS))
    args = p.parse_args()
    acts = catalog.select(args.ids.split(",") if args.ids else None)
    found = []
    with tempfile.TemporaryDirectory() as tmp:
        for act in acts:
            for dtype in args.dtypes.split(","):
                for m in cells(act, dtype, Path(tmp), args.sample_shift, args.exporter, args.opset,
                               tuple(args.formats.split(","))):
                    found.append(m)
                    print(f"{m['cell']}: {'covered' if m['covered'] else 'NOT COVERED'}; over: {hulls(m['over']) or '-'}; "
                          f"max {m['max_ulp']} ULP, abs {m['max_abs']:.3g}, 0 for up to {m['zero_for']:.3g}; "
                          f"NaN/inf at {', '.join(m['special']) or '-'}"
                          + (f"; first not covered: {m['first_not_covered']}" if not m["covered"] else ""),
                          flush=True)
            if args.json:  # after each activation: a long run that stops keeps what it measured
                args.json.write_text(json.dumps(found, indent=1) + "\n")
    if args.json:
        args.json.write_text(json.dumps(found, indent=1) + "\n")
    return 0 if all(m["covered"] for m in found) else 1


if __name__ == "__main__":
    sys.exit(main())
