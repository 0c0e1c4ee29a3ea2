"""GPU validation (issue 5): parity and latency on CUDA beside CPU, in one script, ending with a short table.

Usage, from the repository root of a machine with a CUDA card:

    python3 benchmarks/gpu_check.py --out DIR [--providers cuda,cpu] [--ids relu,gelu] [--budget-s 480]

Nothing is installed: the package is imported from the working tree, and the Python environment is
used as it is (a machine that cannot download can put an onnxruntime-gpu wheel, unpacked with
`pip install --target DIR`, ahead on PYTHONPATH). Steps, each a fresh
process with its log and JSON under DIR, in order of value, each given what is left of the budget:

1. environment: card, torch and onnxruntime builds, providers, why the CUDA provider cannot load;
2. `actexport verify --providers cuda,cpu --dtypes all`: the parity matrix, both devices side by side;
3. `actexport bench --providers cuda --sizes 1e6,1e7`: latency on the card (what `verify --latency`
   measures, without timing CPU again, to fit the device machine's budget);
4. `pytest -m cuda` (the tests that skip without a GPU).

The table: cells by status per dtype and runtime; each runtime on CUDA against itself on CPU
(bit-identical, within budget, disagreeing); latency ratios ORT CUDA / torch CUDA (eager module call)
and ORT CUDA / the card's copy floor, per size, as geometric means with the worst activation. On a
machine without CUDA, `--providers cpu` runs the same steps on CPU, to try the script.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from actexport.report import STATUSES, DeviceRecord, Report

ROOT = Path(__file__).resolve().parent.parent
PROBE = r"""
import json, torch
from actexport import artifacts
from actexport.runtimes.onnxrt import cuda_driver_problem, cuda_library_problem, double_install
env = {"versions": artifacts.versions(), "torch_cuda": torch.version.cuda,
       "cuda_available": torch.cuda.is_available()}
if torch.cuda.is_available():
    env["card"] = torch.cuda.get_device_name()
    env["compute_capability"] = ".".join(map(str, torch.cuda.get_device_capability()))
    env["cudnn"] = torch.backends.cudnn.version()
    import subprocess
    try:  # the driver's own version: torch knows only the CUDA API level the driver supports
        env["driver"] = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                       capture_output=True, text=True, timeout=30).stdout.strip() or None
    except (OSError, subprocess.SubprocessError) as e:
        env["driver"] = f"unknown ({e})"
try:
    import onnxruntime as ort
    env["onnxruntime_file"] = ort.__file__
    env["onnxruntime_providers"] = ort.get_available_providers()
    env["cuda_driver_problem"] = cuda_driver_problem()
    env["cuda_provider_problem"] = cuda_library_problem()
    env["double_install"] = double_install()
except ImportError as e:
    env["onnxruntime"] = str(e)
print(json.dumps(env))
"""


def _step(name: str, argv: list[str], out: Path, deadline: float, log: list[dict]) -> int | None:
    """Runs one step in a fresh process with what is left of the budget; its output goes to DIR/name.log."""
    left = deadline - time.monotonic()
    if left < 20:
        log.append({"step": name, "skipped": f"no time left in the budget ({left:.0f} s)"})
        print(f"[{name}] skipped: budget spent", flush=True)
        return None
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [os.environ.get("PYTHONPATH"), str(ROOT)]))}
    start = time.monotonic()
    with open(out / f"{name}.log", "w") as f:
        try:
            rc = subprocess.run(argv, cwd=ROOT, env=env, stdout=f, stderr=subprocess.STDOUT, timeout=left,
                                check=False).returncode
        except subprocess.TimeoutExpired:
            rc = 124
    seconds = time.monotonic() - start
    log.append({"step": name, "argv": argv, "rc": rc, "seconds": round(seconds, 1)})
    print(f"[{name}] exit {rc} in {seconds:.0f} s", flush=True)
    return rc


def _load(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _last_json_line(path: Path) -> dict | None:
    """The probe prints its JSON last; libraries may have printed before it."""
    try:
        lines = [line for line in path.read_text().splitlines() if line.startswith("{")]
        return json.loads(lines[-1]) if lines else None
    except (OSError, ValueError):
        return None


def parity_lines(report: dict) -> list[str]:
    """Cells by status per dtype and runtime, then the CUDA-against-CPU agreement per dtype."""
    cells = report["cells"]
    lines = [f"{'dtype':9} {'runtime':16} " + " ".join(f"{s:>6}" for s in STATUSES)]
    for dtype in dict.fromkeys(c["dtype"] for c in cells):
        for runtime in dict.fromkeys(c["runtime"] for c in cells if c["dtype"] == dtype):
            n = Counter(c["status"] for c in cells if c["dtype"] == dtype and c["runtime"] == runtime)
            lines.append(f"{dtype:9} {runtime:16} " + " ".join(f"{n.get(s, 0):>6}" for s in STATUSES))
    for dtype in dict.fromkeys(d["dtype"] for d in report.get("devices", [])):
        pairs = [DeviceRecord.from_dict(d) for d in report["devices"] if d["dtype"] == dtype]
        lines += [f"{dtype}: {line}" for line in Report(devices=pairs).device_lines() if not line.startswith(" ")]
    return lines


def latency_lines(benches: list[dict], device: str) -> list[str]:
    """Per size: geometric mean and worst of ORT / torch (eager module call) and ORT / copy floor on
    `device`, from `bench --json` reports (or a verify report's "latency" list)."""
    lines = []
    for bench in benches:
        rows = bench["rows"]
        card = bench["environment"].get("cuda_device") if device == "cuda" else bench["environment"].get("processor")
        for size in dict.fromkeys(r["size"] for r in rows):
            ort = [r for r in rows if r["runtime"] == f"ort:{device}" and r["size"] == size and r["status"] == "ok"]
            parts = []
            for key, what in (("ratio_eager", f"ort:{device} / eager:{device}"), ("ratio_floor", "ort / copy floor")):
                vals = [(r[key], r["activation"]) for r in ort if r.get(key)]
                if vals:
                    geo = math.exp(sum(math.log(v) for v, _ in vals) / len(vals))
                    worst = max(vals)
                    parts.append(f"{what}: geomean {geo:.2f}, worst {worst[0]:.2f} ({worst[1]})")
            if parts:
                lines.append(f"{bench['environment'].get('dtype')} {size:.0e} on {card or device} "
                             f"({len(ort)} activations): " + "; ".join(parts))
    return lines


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True, help="folder for logs and JSON reports")
    p.add_argument("--providers", default="cuda,cpu")
    p.add_argument("--ids", default=None, help="comma list of activation ids (default: --all)")
    p.add_argument("--sizes", default="1e6,1e7", help="latency sizes (default 1e6,1e7)")
    p.add_argument("--budget-s", type=float, default=480.0, help="wall-clock budget for every step together")
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + args.budget_s
    py = sys.executable
    select = ["--all"] if args.ids is None else args.ids.split(",")
    device = args.providers.split(",")[0]
    log: list[dict] = []

    _step("environment", [py, "-c", PROBE], args.out, deadline, log)
    _step("parity", [py, "-m", "actexport", "verify", *select, "--providers", args.providers, "--dtypes", "all",
                     "--quiet", "--json", str(args.out / "parity.json")], args.out, deadline, log)
    _step("latency", [py, "-m", "actexport", "bench", *select, "--providers", device, "--sizes", args.sizes,
                      "--json", str(args.out / "latency.json")], args.out, deadline, log)
    if device == "cuda":
        _step("tests", [py, "-m", "pytest", "-m", "cuda", "-q", "-p", "no:cacheprovider"], args.out, deadline, log)
    (args.out / "steps.json").write_text(json.dumps(log, indent=1) + "\n")

    print("\n== environment")
    env = _last_json_line(args.out / "environment.log")
    if env:
        for key in ("card", "compute_capability", "driver", "torch_cuda", "cudnn", "onnxruntime_providers", "cuda_driver_problem", "cuda_provider_problem",
                    "double_install"):
            print(f"{key}: {env.get(key)}")
        print("versions: " + ", ".join(f"{k} {v}" for k, v in env.get("versions", {}).items() if v))
    print("\n== parity (cells by status)")
    report = _load(args.out / "parity.json")
    if report is None:
        print("no report (see parity.log)")
    else:
        print("\n".join(parity_lines(report)))
        print(f"exit code {report['summary']['exit_code']}, {report['summary']['cells']} cells, "
              f"{report['summary']['wall_seconds']:.0f} s")
    print("\n== latency")
    bench = _load(args.out / "latency.json")
    for line in latency_lines([bench] if bench else [], device) or ["no latency figures (see latency.log)"]:
        print(line)
    tests = next((s for s in log if s["step"] == "tests"), None)
    if tests:
        print(f"\n== pytest -m cuda: exit {tests.get('rc', tests.get('skipped'))} (see tests.log)")
    failed = [s["step"] for s in log if s.get("rc") not in (0, None)]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
