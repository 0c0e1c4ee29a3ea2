"""What the row modules (elementwise.py, rowwise.py) share: the groups of runtimes and dtypes their
declarations are scoped to, EVERYWHERE (the region of a deviation whose range was not measured), the
measurement every declaration states, and onnxruntime's Sigmoid deviation, which sigmoid, SiLU and
GLU inherit."""

from __future__ import annotations

TORCH_CUDA = ("eager:cuda", "torchscript:cuda", "pt2:cuda")
# PyTorch's own formula misbehaves the same way on both devices (measured on an H200, below)
TORCH_CPU = ("eager:cpu", "torchscript:cpu", "pt2:cpu")
TORCH = (*TORCH_CPU, *TORCH_CUDA)
NOT_ORT = (*TORCH, "onnx.reference")
ORT = ("ort:cpu", "ort:cuda")
F32_F64 = ("float32", "float64")
OURS = ("actexport", "candidates")  # the graph profiles with actexport's translations (translations.py)
EVERYWHERE = ("[-inf, inf]", "nan")  # a deviation whose range could not be measured (CUDA: no card here)

# NOTE: every declaration in the row modules states what was measured (torch 2.13.0, onnxruntime
# 1.32.0 CPU, onnx 1.23 reference, all four dtypes; benchmarks/deviations.py: every 16-bit value, every
# float32 and float64 binade, one float32 bit pattern in 1024) and the side at fault. `where` is the
# measured range widened to the nearest inputs that were within budget (rounded outward); max_ulp /
# max_abs is the measured worst case with room for other CPUs (about 1.5x): an element outside the
# range, or larger, fails although declared. Those that name CUDA runtimes were measured on an NVIDIA
# H200 (torch 2.11.0+cu130, onnxruntime-gpu 1.31.1, CUDA 13.0, driver 580.159.04;
# benchmarks/results/2026-11-30-h200.md).
CUDA = "measured on an H200"
ORT_SIGMOID = (
    "onnxruntime's CPU Sigmoid is an approximation: ~2e-4 relative error for x < -7 in float32 "
    "(sigmoid(-8.99) = 1.24425e-04, exact 1.24367e-04), and 0 for x <= -20 in float32 (exact "
    "2.06e-09) and for x <= -50 in float64 (exact 1.93e-22); side: runtime"
)
