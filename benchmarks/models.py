"""Whole models: `actexport verify --module` beside torch's own check, in the same run.

Usage: python benchmarks/models.py [--models resnet18,mlp,...] [--runs N] [--write]

For each model: (a) the baseline, `torch.onnx.export(..., dynamo=True)` to a temporary file and
`torch.onnx.verification.verify_onnx_program`, timed twice: warm, in this process after one
throwaway export (so imports and the exporter's first-use set-up are not counted), and cold, in a
fresh process timed from outside; (b) `python -m actexport verify --module ... --inputs ... --json
... --quiet` in a fresh process with an empty export cache (cold), timed from outside (wall) and
from inside (the report's summary.wall_seconds: no interpreter start, imports or model loading).
Like is compared with like: actexport's wall with the cold baseline, its in-tool time with the
warm one. The issue's target: resnet18 at batch 2, onnx, torchscript and pt2 on CPU, cold cache,
actexport within 3x of the baseline.

The two do not do the same work: the baseline exports one static-shape ONNX graph and compares it
once with the ExportedProgram; actexport exports three formats with the batch dim dynamic, runs
each on four input batteries (example, random at twice the batch, grid, edges) and judges them
against eager PyTorch and a float64 reference. The ratio is what verification costs over export.

Every model here is also a valid `--module`/`--inputs` pair, e.g.
    actexport verify --module benchmarks.models:resnet18 --inputs benchmarks.models:resnet18_inputs
(with the repository root on PYTHONPATH). Optional zoo models (torchvision, timm, transformers) are
skipped, with the reason, when their package does not import. This is a benchmark, not a test.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
FORMATS = "onnx,torchscript,pt2"
TARGET_RATIO = 3.0  # the issue's: actexport verify within 3x of the baseline (resnet18, batch 2, cold)


# ---------------------------------------------------------------------------------------------
# ResNet-18: torchvision's when it imports, else the same network from torch.nn alone


class BasicBlock(nn.Module):
    """torchvision's BasicBlock: two 3x3 convs, the shortcut a 1x1 conv + BN when the shape changes."""

    def __init__(self, inplanes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample: nn.Module | None = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNet18(nn.Module):
    """torchvision.models.resnet18 with the same layer names, so an origin reads the same either way."""

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        widths, inplanes = (64, 128, 256, 512), 64
        for n, planes in enumerate(widths, start=1):
            stride = 1 if n == 1 else 2
            setattr(self, f"layer{n}", nn.Sequential(BasicBlock(inplanes, planes, stride), BasicBlock(planes, planes)))
            inplanes = planes
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512, num_classes)
        # torchvision's initialisation (the Linear keeps torch's default, as there)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def _torchvision():
    """torchvision.models, or None: here its wheel can be a CUDA build that fails to import on a CPU torch."""
    try:
        import torchvision.models
    except Exception:  # noqa: BLE001  (an ImportError, or a RuntimeError such as `torchvision::nms does not exist`)
        return None
    return torchvision.models


def resnet18() -> nn.Module:
    """ResNet-18, seeded (the same weights every call); BatchNorm statistics at their defaults."""
    torch.manual_seed(0)  # torchvision initialises from the global generator
    tv = _torchvision()
    return tv.resnet18(weights=None) if tv is not None else ResNet18()


def realistic_bn(model: nn.Module, seed: int) -> nn.Module:
    """examples.realistic_batchnorm, seeded."""
    from actexport.examples import realistic_batchnorm
    return realistic_batchnorm(model, torch.Generator().manual_seed(seed))


def resnet18_realistic() -> nn.Module:
    return realistic_bn(resnet18(), seed=1)


def resnet18_inputs() -> torch.Tensor:
    """A batch of 2 normalised 3 x 224 x 224 images."""
    return torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(3))


# ---------------------------------------------------------------------------------------------
# Optional zoo models: each factory imports its package, which may fail (the entry is then skipped)


def mobilenet_v3_small() -> nn.Module:
    torch.manual_seed(0)
    import torchvision.models
    return torchvision.models.mobilenet_v3_small(weights=None)


def efficientnet_b0() -> nn.Module:
    torch.manual_seed(0)
    import torchvision.models
    return torchvision.models.efficientnet_b0(weights=None)


def convnext_atto() -> nn.Module:
    torch.manual_seed(0)
    import timm
    return timm.create_model("convnext_atto", pretrained=False)


def vit_tiny() -> nn.Module:
    torch.manual_seed(0)
    import timm
    return timm.create_model("vit_tiny_patch16_224", pretrained=False)


TINY = {"vocab_size": 1000, "hidden": 64, "layers": 2, "heads": 2, "seq": 16}


def bert_tiny() -> nn.Module:
    torch.manual_seed(0)
    from transformers import BertConfig, BertModel
    config = BertConfig(vocab_size=TINY["vocab_size"], hidden_size=TINY["hidden"], num_hidden_layers=TINY["layers"],
                        num_attention_heads=TINY["heads"], intermediate_size=4 * TINY["hidden"])
    return BertModel(config)


def gpt2_tiny() -> nn.Module:
    torch.manual_seed(0)
    from transformers import GPT2Config, GPT2Model
    # use_cache=False: the key/value cache is an object, not tensors, and nothing here needs it
    config = GPT2Config(vocab_size=TINY["vocab_size"], n_embd=TINY["hidden"], n_layer=TINY["layers"],
                        n_head=TINY["heads"], n_positions=64, use_cache=False)
    return GPT2Model(config)


def _token_ids() -> torch.Tensor:
    return torch.randint(1, TINY["vocab_size"], (2, TINY["seq"]), generator=torch.Generator().manual_seed(5))


def bert_inputs() -> dict[str, torch.Tensor]:
    """Two sequences of int64 token ids, the second padded after 10 tokens."""
    mask = torch.ones(2, TINY["seq"], dtype=torch.int64)
    mask[1, 10:] = 0
    return {"input_ids": _token_ids(), "attention_mask": mask}


def gpt2_inputs() -> dict[str, torch.Tensor]:
    return {"input_ids": _token_ids()}


# ---------------------------------------------------------------------------------------------
# The table's rows


@dataclass(frozen=True)
class Entry:
    name: str
    factory: str  # PKG.MOD:FN for --module
    inputs: str | None = None  # PKG.MOD:FN for --inputs
    input_shape: str | None = None  # --input-shape instead (one float tensor)
    requires: str | None = None  # a package that must import, else the row is skipped

    def example(self) -> tuple[tuple, dict]:
        """(args, kwargs) for the baseline: what actexport takes as its example for the same flags."""
        if self.input_shape is not None:
            # actexport's --input-shape example (actexport/model/spec.py: randn, generator seeded 0)
            shape = tuple(int(d) for d in self.input_shape.split(","))
            return (torch.randn(shape, generator=torch.Generator().manual_seed(0)),), {}
        value = _load(self.inputs or "")()
        if isinstance(value, torch.Tensor):
            return (value,), {}
        if isinstance(value, dict):
            return (), value
        return tuple(value), {}

    def batch(self) -> int:
        args, kwargs = self.example()
        return int(next(iter([*args, *kwargs.values()])).shape[0])

    def flags(self) -> list[str]:
        given = ["--inputs", self.inputs] if self.inputs else ["--input-shape", self.input_shape or ""]
        return ["--module", self.factory, *given]


HERE = "benchmarks.models"
EX = "actexport.examples"
ENTRIES = [
    Entry("resnet18", f"{HERE}:resnet18", f"{HERE}:resnet18_inputs"),
    Entry("resnet18_realistic", f"{HERE}:resnet18_realistic", f"{HERE}:resnet18_inputs"),
    Entry("mobilenet_v3_small", f"{HERE}:mobilenet_v3_small", f"{HERE}:resnet18_inputs", requires="torchvision"),
    Entry("efficientnet_b0", f"{HERE}:efficientnet_b0", f"{HERE}:resnet18_inputs", requires="torchvision"),
    Entry("convnext_atto", f"{HERE}:convnext_atto", f"{HERE}:resnet18_inputs", requires="timm"),
    Entry("vit_tiny_patch16_224", f"{HERE}:vit_tiny", f"{HERE}:resnet18_inputs", requires="timm"),
    Entry("bert_tiny", f"{HERE}:bert_tiny", f"{HERE}:bert_inputs", requires="transformers"),
    Entry("gpt2_tiny", f"{HERE}:gpt2_tiny", f"{HERE}:gpt2_inputs", requires="transformers"),
    Entry("mlp", f"{EX}:mlp", input_shape="4,32"),
    Entry("logsigmoid_mlp", f"{EX}:logsigmoid_mlp", input_shape="4,8"),
    Entry("bn_cnn", f"{EX}:bn_cnn", f"{EX}:image_inputs"),
    Entry("tiny_encoder", f"{EX}:tiny_encoder", f"{EX}:tiny_encoder_inputs"),
]


def _load(spec: str) -> Callable:
    mod, _, fn = spec.partition(":")
    return getattr(importlib.import_module(mod), fn)


def missing(package: str | None) -> str | None:
    """Why `package` cannot be used here, in one line (None when it imports)."""
    if package is None:
        return None
    try:
        importlib.import_module(package)
    except Exception as e:  # noqa: BLE001  (torchvision's CUDA wheel raises RuntimeError, not ImportError)
        return f"{package} does not import: {type(e).__name__}: {str(e).splitlines()[0][:120] if str(e) else ''}"
    return None


# ---------------------------------------------------------------------------------------------
# (a) the baseline and (b) actexport


@contextlib.contextmanager
def _silenced():
    """The exporter's progress lines and warnings (printed from C++ too, so at the descriptor level)."""
    import warnings
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(os.devnull, "w") as null, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        os.dup2(null.fileno(), 1)
        os.dup2(null.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def baseline(entry: Entry) -> dict:
    """torch.onnx.export(dynamo=True) to a file, then verify_onnx_program; seconds exclude building the model."""
    from torch.onnx.verification import verify_onnx_program
    model = _load(entry.factory)().eval()
    args, kwargs = entry.example()
    with tempfile.TemporaryDirectory(prefix="bench-baseline-") as tmp:
        start = time.perf_counter()
        try:
            with _silenced():
                program = torch.onnx.export(model, args, kwargs=kwargs, dynamo=True)
                program.save(str(Path(tmp) / "model.onnx"))
                infos = verify_onnx_program(program, args=args, kwargs=kwargs)
        except Exception as e:  # noqa: BLE001  (a model the exporter cannot take is a row, not a crash)
            return {"seconds": time.perf_counter() - start, "error": f"{type(e).__name__}: {str(e)[:200]}"}
        seconds = time.perf_counter() - start
    return {"seconds": seconds, "error": None, "values": len(infos),
            "max_abs_diff": max((float(i.max_abs_diff) for i in infos), default=None)}


def baseline_cold(entry: Entry) -> dict:
    """The baseline in a fresh process, timed from outside: interpreter start, imports and the exporter's
    first-use set-up included, as they are in actexport's wall time."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, __file__, "--baseline-child", entry.name], env=env, capture_output=True,
                          text=True, check=False)
    seconds = time.perf_counter() - start
    lines = proc.stdout.strip().splitlines()
    inner = json.loads(lines[-1]) if proc.returncode == 0 and lines else {}
    return {"seconds": seconds, "inner_seconds": inner.get("seconds"),
            "error": inner.get("error") if inner else f"exit {proc.returncode}: {proc.stderr[-300:]}"}


def warm_up() -> None:
    """One throwaway export, so the first row's baseline does not pay for importing the exporter."""
    baseline(Entry("warm-up", f"{EX}:mlp", input_shape="4,32"))


def run_actexport(entry: Entry) -> dict:
    """`python -m actexport verify` in a fresh process with an empty export cache; the report's numbers."""
    with tempfile.TemporaryDirectory(prefix="bench-actexport-") as tmp:
        report_path = Path(tmp) / "report.json"
        env = {**os.environ, "ACTEXPORT_CACHE": str(Path(tmp) / "cache"),
               "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        cmd = [sys.executable, "-m", "actexport", "verify", *entry.flags(), "--formats", FORMATS,
               "--json", str(report_path), "--quiet"]
        start = time.perf_counter()
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False, cwd=tmp)
        seconds = time.perf_counter() - start
        if not report_path.exists():
            return {"seconds": seconds, "error": f"exit {proc.returncode}: {(proc.stderr or proc.stdout)[-300:]}"}
        report = json.loads(report_path.read_text())
    cells = report["cells"]
    return {
        "seconds": seconds, "error": None, "exit_code": proc.returncode,
        "tool_seconds": report["summary"]["wall_seconds"],
        "counts": {k: v for k, v in report["summary"]["counts"].items() if v},
        "exports": {e["format"]: e["seconds"] for e in report.get("exports", [])},
        "cells": [{"runtime": c["runtime"], "status": c["status"], "seconds": c.get("seconds"),
                   "max_ulp_at_scale": max((o["ulp_at_scale"] for o in c.get("outputs") or []
                                            if o.get("ulp_at_scale") is not None), default=None),
                   "reason": c.get("reason") or "", "origin": c.get("origin")} for c in cells],
    }


def _median(results: list[dict]) -> dict:
    """The run of median seconds (the upper one of an even count), with every run's seconds beside it."""
    chosen = dict(sorted(results, key=lambda r: r["seconds"])[len(results) // 2])
    return {**chosen, "runs": [round(r["seconds"], 2) for r in results]}


def measure(entry: Entry, runs: int) -> dict:
    """Each measurement `runs` times, interleaved, so a burst of load on a shared machine hits all three alike."""
    row: dict = {"model": entry.name, "batch": entry.batch(), "module": entry.factory,
                 "inputs": entry.inputs or f"--input-shape {entry.input_shape}"}
    warm, cold, tool = [], [], []
    for _ in range(runs):
        warm.append(baseline(entry))
        cold.append(baseline_cold(entry))
        tool.append(run_actexport(entry))
    row["baseline"], row["baseline_cold"], row["actexport"] = _median(warm), _median(cold), _median(tool)
    return row


# ---------------------------------------------------------------------------------------------
# The table


def _notes(row: dict) -> str:
    notes = []
    for key in ("baseline", "baseline_cold"):
        if row[key]["error"]:
            notes.append(f"{key}: {row[key]['error']}")
    a = row["actexport"]
    if a["error"]:
        return "; ".join(notes + [f"actexport: {a['error']}"])
    ulps = [f"{c['runtime'].split(':')[0]} {c['max_ulp_at_scale']:.3g}" for c in a["cells"]
            if c["max_ulp_at_scale"] is not None]
    if ulps:
        notes.append("ULP at scale: " + ", ".join(ulps))
    for c in a["cells"]:
        if c["status"] != "pass":
            where = f" at {c['origin']['module_path']}" if c["origin"] and c["origin"].get("module_path") else ""
            notes.append(f"{c['runtime']} {c['status']}{where}: {c['reason'][:100]}")
    return "; ".join(notes).replace("|", "/")


def table(rows: list[dict]) -> str:
    """Two pairs of like with like: wall times of fresh processes (actexport's wall / the cold baseline's),
    and times inside a process that has its imports (actexport's in-tool / the warm baseline's)."""
    lines = ["| model | batch | baseline s (cold / warm) | actexport s (wall / in-tool) | ratio (cold / warm) "
             "| cells | notes |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        b, c, a = r["baseline"], r["baseline_cold"], r["actexport"]
        base = f"{c['seconds']:.1f} / {b['seconds']:.1f}"
        if a["error"]:
            lines.append(f"| {r['model']} | {r['batch']} | {base} | - | - | - | {_notes(r)} |")
            continue
        counts = ", ".join(f"{v} {k}" for k, v in a["counts"].items())
        ratio = f"{a['seconds'] / c['seconds']:.1f}x / {a['tool_seconds'] / b['seconds']:.1f}x"
        lines.append(f"| {r['model']} | {r['batch']} | {base} | {a['seconds']:.1f} / {a['tool_seconds']:.1f} "
                     f"| {ratio} | {counts} | {_notes(r)} |")
    return "\n".join(lines)


def machine(runs: int) -> str:
    # NOTE: the load average says whether other work shared the CPUs (the times are then longer, and noisier)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (f"{platform.machine()}, {os.cpu_count()} CPUs (load average {load} at the end), Python "
            f"{platform.python_version()}, torch {torch.__version__}, formats {FORMATS}, cold export cache, "
            f"median of {runs} run(s)")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default=None, help="comma-separated names (default: every one that imports)")
    p.add_argument("--write", action="store_true", help="write benchmarks/results/<date>-models.md and .json")
    p.add_argument("--runs", type=int, default=1, help="times each measurement is taken; the median is kept")
    p.add_argument("--baseline-child", default=None, help=argparse.SUPPRESS)  # baseline_cold's own process
    args = p.parse_args()
    if args.baseline_child:
        sys.path.insert(0, str(ROOT))
        print(json.dumps(baseline({e.name: e for e in ENTRIES}[args.baseline_child])))
        return 0
    names = [n for n in (args.models or "").split(",") if n] or [e.name for e in ENTRIES]
    known = {e.name: e for e in ENTRIES}
    if unknown := [n for n in names if n not in known]:
        p.error(f"unknown model(s) {', '.join(unknown)}; known: {', '.join(known)}")
    sys.path.insert(0, str(ROOT))  # so benchmarks.models resolves here as it does in the subprocess
    skipped = []
    for n in names:
        if why := missing(known[n].requires):
            print(f"skip {n}: {why}", flush=True)
            skipped.append({"model": n, "reason": why})
    todo = [known[n] for n in names if not missing(known[n].requires)]
    warm_up()
    rows = []
    for entry in todo:
        print(f"{entry.name} ...", flush=True)
        rows.append(measure(entry, args.runs))
    text = table(rows)
    print(text)
    verdict = ""
    for r in rows:
        if r["model"] == "resnet18" and not r["actexport"]["error"]:
            cold = r["actexport"]["seconds"] / r["baseline_cold"]["seconds"]
            warm = r["actexport"]["tool_seconds"] / r["baseline"]["seconds"]
            verdict = (f"resnet18 target (actexport verify, cold cache, within {TARGET_RATIO:g}x of the baseline): "
                       f"{cold:.1f}x process to process ({'met' if cold <= TARGET_RATIO else 'missed'}), "
                       f"{warm:.1f}x in-tool against the warm in-process baseline "
                       f"({'met' if warm <= TARGET_RATIO else 'missed'})")
            print(verdict)
    if args.write:
        today = datetime.date.today().isoformat()
        out = ROOT / "benchmarks" / "results"
        out.mkdir(parents=True, exist_ok=True)
        skips = "".join(f"- skipped {s['model']}: {s['reason']}\n" for s in skipped)
        (out / f"{today}-models.md").write_text(
            f"# Whole models: actexport verify against torch.onnx's verify_onnx_program ({today})\n\n"
            f"`python benchmarks/models.py --runs {args.runs} --write` on {machine(args.runs)}.\n\n{text}\n\n"
            + (f"{verdict}\n\n" if verdict else "") + skips)
        (out / f"{today}-models.json").write_text(json.dumps(
            {"date": today, "machine": machine(args.runs), "rows": rows, "skipped": skipped}, indent=1, default=str) + "\n")
        print(f"wrote {out / today}-models.md and .json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
