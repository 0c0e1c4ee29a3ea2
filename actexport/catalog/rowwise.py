"""The catalog's rows whose output element depends on other input elements too: GLU (its gate, the
other half of the last dim) and the softmax family (the whole row along a dim), with their
declarations; CATALOG lists these last."""

from __future__ import annotations

from typing import Callable

import numpy as np
from torch import nn

from actexport import oracle as o
from actexport.catalog.model import Activation, Budget, XFail
from actexport.catalog.shared import CUDA, EVERYWHERE, F32_F64, NOT_ORT, ORT_SIGMOID, TORCH_CPU, TORCH_CUDA


def _shifted(dim: int, negate: bool = False) -> Callable[[np.ndarray], np.ndarray]:
    """x - max(row) along `dim` (of -x for softmin): the argument of exp in every softmax."""
    def f(x: np.ndarray) -> np.ndarray:
        x = -x if negate else x
        return x - np.max(x, axis=dim, keepdims=True)
    return f


def _gate(x: np.ndarray) -> np.ndarray:
    """GLU's b: the second half along the last dim, one per output element."""
    return np.split(x, 2, axis=-1)[1]


A = Activation
X = XFail

# NOTE: exp(x - max) turns the rounding of x - max into a relative error of |x - max| ULPs: rows
# that span 50 (the edge battery puts ±50 beside O(1) values) legitimately cost ~30-50 ULP.
_LOG_SUM_EXP = (
    "log(sum(exp(x - max))) rounds to 0 for a row's dominant element when the others sum below one ULP: "
    "float32 x = 20 gives 0, exact -6.6e-08; side: pytorch"
)
_ORT_CUDA_SOFTMAX64 = (
    "onnxruntime's CUDA {op} in float64 is accurate only to about float32 precision (abs error up to "
    "{where}); " + CUDA + "; side: runtime"
)
_GLU_UNDERFLOW = (
    "a * sigmoid(b) computes sigmoid(b) first: it underflows (0 or a subnormal) where b is below about -88 in "
    "float32 and -709 in float64, so with a large a the product is lost although it is a normal number "
    "({where}; the battery's a goes up to the dtype's max, so a value up to about 1.3 is lost); side: pytorch"
)
_SHIFT_ROUNDING = (
    "every runtime rounds x - max before exp: the rounding error of x - max (up to ulp(|x - max|) / 2) becomes "
    "a relative error of exp(x - max): 193 ULP at x - max = -708.2 in float64; the exact reference subtracts "
    "exactly; side: pytorch (the standard algorithm)"
)
_REF_LOG_SOFTMAX = (
    "onnx.reference evaluates LogSoftmax as log(softmax(x)): -inf where softmax underflows, and the dominant "
    "element rounds as in PyTorch ({where}); side: onnx.reference's implementation, not the graph"
)
_SOFTMAX_BUDGETS = {"float32": Budget(ulp=64, atol=2.0**-126), "float64": Budget(ulp=64, atol=2.0**-1022),
                    "bfloat16": Budget(ulp=64, atol=2.0**-126), "float16": Budget(ulp=64, atol=2.0**-14)}

ROWS: tuple[Activation, ...] = (
    A("glu", nn.GLU, "a * sigmoid(b), (a, b) = halves of x along the last dim", o.glu(-1), operands=2,
      region_input=_gate,
      xfails=(X(_GLU_UNDERFLOW.format(where="onnx.reference in float16 arithmetic: abs error up to 4.9e-04 for b in "
                                      "[-19.4, -11.8]"), runtime="onnx.reference", dtype="float16",
                where=("[-19.5, -11.7]",), max_abs=7e-4),
              X(_GLU_UNDERFLOW.format(where="bfloat16: 0 for 0.188 at b = -89"), runtime=NOT_ORT, dtype="bfloat16",
                where=("[-176, -88.5]",), max_abs=3),
              X(_GLU_UNDERFLOW.format(where="float32: abs error up to 1.7e-04 for b in [-160, -96]"), runtime=NOT_ORT,
                dtype="float32", where=("[-192, -88.5]",), max_abs=3),
              X(_GLU_UNDERFLOW.format(where="float64: abs error up to 1.3e-26 for b in [-1280, -768]"),
                runtime=NOT_ORT, dtype="float64", where=("[-1540, -700]",), max_abs=3),
              X(ORT_SIGMOID + "; a * sigmoid(b) inherits it: float16 abs error up to 1.5e-03 for b in [-19.4, -10.5]",
                runtime="ort:cpu", dtype="float16", where=("[-19.5, -10.4]",), max_abs=2.5e-3),
              X(ORT_SIGMOID + "; a * sigmoid(b) inherits it, and with the battery's a = max / 4 the absolute "
                "error reaches 6.4e+30 (float32, b in [-160, -2.03])", runtime="ort:cpu", dtype="float32",
                where=("[-192, -1.9]",), max_abs=1e31),
              X(ORT_SIGMOID + "; a * sigmoid(b) inherits it, and with the battery's a = max / 4 the absolute "
                "error reaches 6.6e+291 (float64, b in [-1280, -2])", runtime="ort:cpu", dtype="float64",
                where=("[-1540, -1.9]",), max_abs=1e292))),
    A("softmax", lambda: nn.Softmax(dim=-1), "exp(x_i) / sum_j exp(x_j) along the last dim",
      o.softmax(-1), budgets=_SOFTMAX_BUDGETS, region_input=_shifted(-1),
      xfails=(X(_SHIFT_ROUNDING, dtype="float64", where=("[-745.2, -600]",), max_ulp=512),
              X(_ORT_CUDA_SOFTMAX64.format(op="Softmax", where="1.44e-08"), runtime="ort:cuda", dtype="float64",
                where=EVERYWHERE, max_abs=3e-8))),
    A("softmax_dim0", lambda: nn.Softmax(dim=0), "exp(x_i) / sum_j exp(x_j) along dim 0",
      o.softmax(0), budgets=_SOFTMAX_BUDGETS, region_input=_shifted(0),
      xfails=(X(_ORT_CUDA_SOFTMAX64.format(op="Softmax", where="1.29e-08: 2.9335727e-05 at x = -5.117, exact "
                                            "2.9335739e-05"), runtime="ort:cuda", dtype="float64", where=EVERYWHERE,
                max_abs=3e-8),)),
    A("log_softmax", lambda: nn.LogSoftmax(dim=-1), "x_i - log(sum_j exp(x_j)) along the last dim",
      o.log_softmax(-1), budgets=_SOFTMAX_BUDGETS, region_input=_shifted(-1),
      xfails=(X(_LOG_SUM_EXP, runtime=TORCH_CPU, dtype="float16", where=("0",), max_abs=7e-4),
              X(_LOG_SUM_EXP, runtime=TORCH_CPU, dtype="bfloat16", where=("0",), max_abs=4e-3),
              X(_LOG_SUM_EXP, runtime=TORCH_CPU, dtype="float32", where=("0",), max_abs=1.2e-7),
              X(_LOG_SUM_EXP, runtime=TORCH_CPU, dtype="float64", where=("0",), max_abs=4.5e-16),
              X(_LOG_SUM_EXP + " (on CUDA not in float16, which PyTorch computes in float32 there; " + CUDA + ")",
                runtime=TORCH_CUDA, dtype=("bfloat16", "float32", "float64"), where=EVERYWHERE, max_abs=2.5e-3),
              X(_LOG_SUM_EXP.replace("; side: pytorch", "") + ", in onnxruntime too (float16 computes in float32 "
                "and passes); side: pytorch", runtime="ort:cpu", dtype="float32", where=("0",), max_abs=1.2e-7),
              X(_LOG_SUM_EXP.replace("; side: pytorch", "") + ", in onnxruntime too, which in float64 also returns "
                "the limit -inf beside a +inf where the exact row is NaN; side: pytorch", runtime="ort:cpu",
                dtype="float64", where=("0",), max_abs=3e-16, special=("-inf", "nan")),
              X(_ORT_CUDA_SOFTMAX64.format(op="LogSoftmax", where="8.7e-08") + "; in float32 it rounds the "
                "dominant element to 0 as PyTorch does (abs error up to 4.7e-07)", runtime="ort:cuda",
                dtype=F32_F64, where=EVERYWHERE, max_abs=1e-6),
              X(_REF_LOG_SOFTMAX.format(where="float16: -inf for x - max <= -15.7"), runtime="onnx.reference",
                dtype="float16", where=("0",), max_abs=7e-4, special=("[-inf, -15.7]",)),
              X(_REF_LOG_SOFTMAX.format(where="bfloat16: -inf for x - max <= -96, abs error up to 0.016"),
                runtime="onnx.reference", dtype="bfloat16", where=("0",), max_abs=2.5e-2, special=("[-inf, -96]",)),
              X(_REF_LOG_SOFTMAX.format(where="float32: -inf for x - max <= -102.9; above it, where softmax is subnormal "
                                       "(x - max < -87.3), log of a subnormal is off by up to ln 2"),
                runtime="onnx.reference", dtype="float32", where=("0", "[-106.5, -87]"), max_abs=0.7,
                special=("[-inf, -100]",)),
              X(_REF_LOG_SOFTMAX.format(where="float64: -inf for x - max <= -745; above it, where softmax is subnormal "
                                       "(x - max < -708.4), log of a subnormal is off by up to ln 2"),
                runtime="onnx.reference", dtype="float64", where=("0", "[-768, -708]"), max_abs=0.7,
                special=("[-inf, -740]",)))),
    A("softmin", lambda: nn.Softmin(dim=-1), "exp(-x_i) / sum_j exp(-x_j) along the last dim",
      o.softmax(-1, negate=True), budgets=_SOFTMAX_BUDGETS, region_input=_shifted(-1, negate=True),
      xfails=(X(_ORT_CUDA_SOFTMAX64.format(op="Softmax", where="1.43e-08"), runtime="ort:cuda", dtype="float64",
                where=EVERYWHERE, max_abs=3e-8),)),
    A("softmax2d", nn.Softmax2d, "softmax over channels (dim -3) at every spatial location",
      o.softmax(-3), shape=(2, 3, 4, 4), budgets=_SOFTMAX_BUDGETS, region_input=_shifted(-3)),
)
