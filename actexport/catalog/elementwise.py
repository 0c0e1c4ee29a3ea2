"""The catalog's rows whose output element depends on its own input element alone: every activation
of torch.nn but GLU and the softmax family (rowwise.py), with their declarations; CATALOG lists these
first."""

from __future__ import annotations

import torch
from torch import nn

from actexport import oracle as o
from actexport.catalog.model import Activation, XFail
from actexport.catalog.shared import CUDA, EVERYWHERE, F32_F64, NOT_ORT, ORT, ORT_SIGMOID, OURS, TORCH, TORCH_CUDA


def _prelu_3ch() -> nn.Module:
    m = nn.PReLU(num_parameters=3)
    with torch.no_grad():
        m.weight.copy_(torch.tensor([0.25, -0.5, 2.0]))
    return m


A = Activation
X = XFail
_HARD = (-3.0, 3.0)
_ORT_CUDA_SIGMOID = (
    "onnxruntime's CUDA Sigmoid returns 0 for x <= -20 in float32 (exact 2.06e-09) and x <= -50 in "
    "float64 (exact 1.93e-22), as its CPU one does; " + CUDA + "; side: runtime"
)
_ORT_CUDA_SIGMOID_BF16 = (
    "onnxruntime's CUDA bfloat16 Sigmoid returns 0 at x = -5.5625 where the value is 0.00383 (abs error "
    "5.1e-03); " + CUDA + "; side: runtime"
)
_NEG_INF = "x * g(x) at x = -inf is -inf * 0 = NaN in every runtime, where the limit is 0"
_LEGACY_NAN_TO_ZERO = (
    "the legacy exporter builds the shrink as Where(|x| > lambda, ...) chains that map NaN to 0 "
    "(measured: x=nan gives 0.0, eager and the exact definition give nan); side: export"
)
_ORT_EXPM1 = (
    "onnxruntime's {op} computes exp(x) - 1 instead of expm1(x) and loses digits just below 0 "
    "({where}); side: runtime"
)
_ORT_CUDA_EXPM1 = (
    "onnxruntime's CUDA {op} computes exp(x) - 1 instead of expm1(x), in the input's own precision "
    "(float16 included), and loses digits just below 0 ({where}); " + CUDA + "; side: runtime"
)
_CELU_ON_CPU = " (a CUDA session runs Celu on its CPU provider: no CUDA kernel)"
_CUDA_SIXTH = (
    "PyTorch's CUDA {op} multiplies by 1/6 rounded to float32 also in float64 (relative error 3e-08, "
    "{where}); " + CUDA + "; side: pytorch"
)
_F32_ATTRIBUTE = (
    "ONNX stores {op}'s {attr} as a float32 attribute, so a float64 graph computes with {value} "
    "(relative error {rel}); side: export"
)
_CELU_F64 = (
    "ONNX Celu is float32-only: the exporter wraps it in Cast(float32) / Cast(float64), so a float64 model "
    "computes in float32 (relative error up to 6e-08, 0 for |x| below float32's normal range, and exp(x) - 1 "
    "instead of expm1 near 0) and |x| > 3.4e38 becomes inf; side: export"
)


def _elu_xfails(f32: tuple[str, str, float], f64: tuple[str, str, float], cuda: str) -> tuple:
    """ELU's measured deviations: onnxruntime's exp(x) - 1 on CPU in float32 and float64 (what, where,
    max_abs), and its CUDA kernel (what; range not measured)."""
    return (X(_ORT_EXPM1.format(op="Elu", where=f"float32: {f32[0]}"), runtime="ort:cpu", dtype="float32",
              where=(f32[1],), max_abs=f32[2]),
            X(_ORT_EXPM1.format(op="Elu", where=f"float64: {f64[0]}"), runtime="ort:cpu", dtype="float64",
              where=(f64[1],), max_abs=f64[2]),
            X(_ORT_CUDA_EXPM1.format(op="Elu", where=cuda), runtime="ort:cuda", where=EVERYWHERE, max_ulp=512))


def _celu_xfails(f32: tuple[str, str, float], bf16: tuple[str, str, float], f64: tuple[str, float]) -> tuple:
    """CELU's three measured deviations: onnxruntime's exp(x) - 1 in float32 and bfloat16 (what, where,
    max_abs), and the float32-only ONNX Celu in float64 (where, max_abs)."""
    return (X(_ORT_EXPM1.format(op="Celu", where=f"float32: {f32[0]}") + _CELU_ON_CPU, runtime=ORT,
              dtype="float32", where=(f32[1],), max_abs=f32[2]),
            X(_ORT_EXPM1.format(op="Celu", where=f"bfloat16, computed in float32: {bf16[0]}"), runtime="ort:cpu",
              dtype="bfloat16", where=(bf16[1],), max_abs=bf16[2]),
            X(_CELU_F64, format="onnx", dtype="float64", where=(f64[0],), max_ulp=2**30, max_abs=f64[1],
              special=("[3.4e38, inf)",)))


_TORCH_GELU = (
    "PyTorch returns NaN for GELU(-inf) (value 0) and, on CPU, for GELU(+inf), and inf for x >= 1.7e38 in float32 "
    "and bfloat16 (value x); its kernels lose the tail below x ~ -1.3 (float32 x = -4.9673: -1.92447e-06, exact "
    "-1.68645e-06; abs error up to 9.9e-07) and round results next to the smallest normal; side: pytorch"
)
_GELU_TORCH_SPECIAL = ("-inf", "+inf", "[1.7e38, 3.41e38]")
_ONNX_GELU = (
    "the ONNX graph x * (1 + Erf(x / sqrt(2))) / 2 gives NaN at x = -inf (value 0) and cancels in 1 + erf for "
    "x << 0 (0 at x = -10 where the value is -7.6e-23); side: export"
)
_GELU_TANH = (
    "1 + tanh(u) cancels for x < -1.3 (float32 x = -5.0923: eager -0, exact -1.22e-07) and x = -inf gives NaN "
    "(value 0), in PyTorch and in every export of it; side: pytorch"
)
_ONNX_GELU_TANH = (
    "the ONNX graph keeps the cancelling form 1 + tanh(u) (float32: -4.55e-07 at x = -5.0923 where the value is "
    "-1.22e-07; onnxruntime's Tanh adds its own error down to x = -0.96), NaN at x = -inf; side: export"
)
_LEGACY_OVERFLOW = (
    "the legacy graph of {op} overflows to inf (or NaN) for large x: from 32768 in float16, 1.7e38 in float32 "
    "and bfloat16, 9e307 in float64, where the value is x; side: export"
)
_LEGACY_BIG = ("[32768, 65504]", "[1.7e38, 3.41e38]", "[8.9e307, inf)")
_LEGACY_SOFTPLUS = (
    "the legacy graph drops Softplus's threshold ({where}, where PyTorch returns x), and returns inf where exp "
    "overflows (onnxruntime: x >= 44 in float16, computed in float32); side: export"
)
_ORT_MISH = (
    "x * g(x) at x = -inf is -inf * 0 = NaN; onnxruntime's Mish op (stock graph) loses digits in the negative "
    "tail ({where}); side: runtime"
)
_TANHSHRINK = "x - tanh(x) cancels near 0 wherever it is computed in the dtype ({where}); side: pytorch"
_LOG_SIGMOID = (
    "exported as Log(Sigmoid(x)): -inf where Sigmoid underflows (value ~x), onnxruntime's Sigmoid error "
    "amplified by Log, and 0 where Sigmoid rounds to 1 ({where}); side: export"
)

ROWS: tuple[Activation, ...] = (
    # The four activations of the article this project started from.
    A("sigmoid", nn.Sigmoid, "1 / (1 + exp(-x))", o.sigmoid(),
      xfails=(X(ORT_SIGMOID, runtime="ort:cpu", dtype="float32", where=("[-88, -1.8]",), max_abs=2e-7),
              X(ORT_SIGMOID, runtime="ort:cpu", dtype="float64", where=("[-710, -1.9]",), max_abs=3e-16),
              X(_ORT_CUDA_SIGMOID, runtime="ort:cuda", dtype=F32_F64, where=EVERYWHERE, max_abs=2e-7),
              X(_ORT_CUDA_SIGMOID_BF16, runtime="ort:cuda", dtype="bfloat16", where=EVERYWHERE, max_abs=1e-2))),
    A("tanh", nn.Tanh, "(exp(x) - exp(-x)) / (exp(x) + exp(-x)), range (-1, 1)", o.tanh(),
      xfails=(X("onnxruntime's float32 Tanh loses up to 104 ULP for |x| in [1.18e-38, 7.5e-37], just above the "
                "smallest normal (x = 1.1754944e-38 gives 1.1754983e-38, 28 ULP); side: runtime", runtime="ort:cpu",
                dtype="float32", where=("±[1.17e-38, 7.6e-37]",), max_ulp=256),)),
    A("relu", nn.ReLU, "max(0, x)", o.relu(), boundaries=(0.0,)),
    A("leaky_relu", nn.LeakyReLU, "x if x > 0 else 0.01 * x", o.leaky_relu(0.01), boundaries=(0.0,),
      xfails=(X(_F32_ATTRIBUTE.format(op="LeakyRelu", attr="alpha", value="0.009999999776482582",
                                      rel="2.2e-08, 2e8 ULP"), format="onnx", dtype="float64",
                where=("(-inf, -2e-306]",), max_ulp=2**28),)),
    A("leaky_relu_0.1", lambda: nn.LeakyReLU(0.1), "x if x > 0 else 0.1 * x", o.leaky_relu(0.1),
      boundaries=(0.0,),
      xfails=(X(_F32_ATTRIBUTE.format(op="LeakyRelu", attr="alpha", value="0.10000000149011612",
                                      rel="1.5e-08, 1.3e8 ULP"), format="onnx", dtype="float64",
                where=("(-inf, -1.7e-307]",), max_ulp=2**28),)),
    # Every other activation module in torch.nn, with variants where a parameter changes the graph.
    A("relu6", nn.ReLU6, "min(max(0, x), 6)", o.hardtanh(0.0, 6.0), boundaries=(0.0, 6.0)),
    A("elu", nn.ELU, "x if x > 0 else exp(x) - 1", o.elu(1.0), boundaries=(0.0,),
      xfails=_elu_xfails(f32=("abs error up to 5.7e-08 and 0 for x > -3e-08", "[-0.134, 0)", 8e-8),
                         f64=("abs error up to 5.6e-17, 101 ULP at x = -0.0039", "[-0.1, 0)", 8e-17),
                         cuda="266 ULP at x = -0.0039 in float32, 101 in float64, 200 at -0.00166 in float16")),
    A("elu_0.5", lambda: nn.ELU(alpha=0.5), "x if x > 0 else 0.5 * (exp(x) - 1)", o.elu(0.5),
      boundaries=(0.0,),
      xfails=_elu_xfails(f32=("abs error up to 2.9e-08", "[-0.134, 0)", 4e-8),
                         f64=("abs error up to 2.8e-17", "[-0.035, 0)", 4e-17),
                         cuda="241 ULP at x = -0.0039 in float32, 101 in float64, 43 at -0.0065 in float16")),
    A("selu", nn.SELU, "scale * (x if x > 0 else alpha * (exp(x) - 1)), alpha=1.6733, scale=1.0507",
      o.selu(), boundaries=(0.0,),
      xfails=(X(_ORT_EXPM1.format(op="Selu", where="float32: abs error up to 1.04e-07; 0 at x = -6.7e-39 where "
                                  "the value is -1.17e-38"), runtime="ort:cpu", dtype="float32",
                where=("[-0.154, 0)",), max_abs=1.5e-7),
              X(_ORT_EXPM1.format(op="Selu", where="float64: 0 where the value is up to 9.8e-17"),
                runtime="ort:cpu", dtype="float64", where=("[-0.04, 0)",), max_abs=1.5e-16),
              X("onnxruntime's CUDA Selu computes alpha * (exp(x) - 1): 0 at x = -1.18e-38 where the value is "
                "-2.07e-38, abs error up to 1.5e-07; " + CUDA + "; side: runtime", runtime="ort:cuda",
                dtype="float32", where=EVERYWHERE, max_abs=2e-7),
              X("onnxruntime's CUDA float16 Selu computes alpha * (exp(x) - 1) in float16: 0 at x = -6.1e-05 "
                "where the value is -1.07e-04 (1800 ULP); " + CUDA + "; side: runtime", runtime="ort:cuda",
                dtype="float16", where=EVERYWHERE, max_ulp=4096),
              X(_F32_ATTRIBUTE.format(op="Selu", attr="alpha and gamma", value="1.6732632 and 1.0507010",
                                      rel="3.3e-08 at x = 1.9"), format="onnx", dtype="float64",
                where=("[-inf, -1.1e-308]", "[1.6e-308, inf)"), max_ulp=2**53))),
    A("celu", nn.CELU, "max(0, x) + min(0, exp(x) - 1)", o.celu(1.0), boundaries=(0.0,),
      xfails=_celu_xfails(f32=("abs error up to 5.7e-08, 0 for x > -3e-08", "[-0.134, 0)", 8e-8),
                          bf16=("up to 127 ULP and 0 where the value is up to 3e-08", "[-9.4e-7, 0)", 4.5e-8),
                          f64=("[-40, 3.41e38]", 1.5e-7))),
    A("celu_2", lambda: nn.CELU(alpha=2.0), "max(0, x) + min(0, 2 * (exp(x / 2) - 1))", o.celu(2.0),
      boundaries=(0.0,),
      xfails=_celu_xfails(f32=("abs error up to 1.1e-07, 3065 ULP at x = -0.000167", "[-0.3, 0)", 1.7e-7),
                          bf16=("up to 127 ULP and 0 where the value is up to 6e-08", "[-1.9e-6, 0)", 9e-8),
                          f64=("[-80, 3.41e38]", 2e-7))),
    A("gelu", nn.GELU, "x * Phi(x) = x / 2 * (1 + erf(x / sqrt(2)))", o.gelu(),
      xfails=(X(_TORCH_GELU, runtime=TORCH, dtype=("float16", "bfloat16", "float32"),
                where=("[-13.2, -1.3]", "±[1.1e-38, 2.4e-38]"), max_abs=1.5e-6, special=_GELU_TORCH_SPECIAL),
              X(_TORCH_GELU, runtime=TORCH, dtype="float64", where=("[-40, -1.82]",), max_abs=3e-16,
                special=_GELU_TORCH_SPECIAL),
              X(_ONNX_GELU + "; in float16 and bfloat16 the graph's own arithmetic (onnx.reference evaluates each "
                "op in the dtype) returns 0 for values up to 0.0029", format="onnx",
                dtype=("float16", "bfloat16"), where=("[-13.2, -1.43]",), max_abs=5e-3, special=("-inf",)),
              X(_ONNX_GELU, format="onnx", dtype="float32", where=("[-13.2, -1.3]",),
                max_abs=1.5e-7, special=("-inf",)),
              X(_ONNX_GELU + "; onnx.reference's float64 Erf is accurate to float32 only (abs error 8.1e-08)",
                format="onnx", dtype="float64", where=("[-40, 8]",), max_abs=1.5e-7, special=("-inf",)),
              X(_LEGACY_OVERFLOW.format(op="GELU"), format="onnx", exporter="legacy", special=_LEGACY_BIG))),
    A("gelu_tanh", lambda: nn.GELU(approximate="tanh"),
      "x / 2 * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x^3)))", o.gelu_tanh(),
      xfails=(X(_GELU_TANH, runtime=TORCH, dtype=("float16", "bfloat16", "float32"), where=("[-10.2, -1.3]",),
                max_abs=3e-7, special=("-inf",)),
              X(_GELU_TANH, runtime=TORCH, dtype="float64", where=("[-24, -1.8]",), max_abs=6e-16,
                special=("-inf",)),
              X(_ONNX_GELU_TANH + "; float16 and bfloat16 arithmetic in onnx.reference returns 0 for values up to "
                "0.003", format="onnx", dtype=("float16", "bfloat16"),
                where=("[-10.2, -1.3]",), max_abs=5e-3, special=("-inf",)),
              X(_ONNX_GELU_TANH, format="onnx", dtype="float32", where=("[-10.2, -0.9]",),
                max_abs=8e-7, special=("-inf",)),
              X(_ONNX_GELU_TANH, format="onnx", dtype="float64", where=("[-24, -1.47]",),
                max_abs=4.5e-15, special=("-inf",)),
              X(_LEGACY_OVERFLOW.format(op="GELU(tanh), which computes x^3 first,"), format="onnx", exporter="legacy",
                special=_LEGACY_BIG))),
    A("silu", nn.SiLU, "x * sigmoid(x)", o.silu(),
      xfails=(X(_NEG_INF + "; PyTorch's SiLU underflows to -0 where the value is just above the smallest normal "
                "(x in [-91.8, -88.7] in float32, abs error up to 2.6e-37); side: pytorch", runtime=TORCH,
                where=("[-92, -88.5]", "[-768, -709]"), max_abs=4e-37, special=("-inf",)),
              X(_NEG_INF + "; onnx.reference computes x * sigmoid(x) in the dtype: 6 ULP at x in [-12.2, -11.5] "
                "in float16, up to 45 ULP just above the smallest normal (x in [-91.8, -89.1] in float32); side: "
                "onnx.reference's arithmetic", runtime="onnx.reference",
                where=("[-12.2, -11.5]", "[-92, -89]", "[-768, -709]"), max_ulp=256, special=("-inf",)),
              X(ORT_SIGMOID + "; x * sigmoid(x) inherits it (float16: 15 ULP at x in [-12.2, -10.8]), and x = -inf "
                "gives NaN", runtime="ort:cpu", dtype="float16", where=("[-12.3, -10.7]",), max_ulp=32,
                special=("-inf",)),
              X(ORT_SIGMOID + "; x * sigmoid(x) inherits it (float32 abs error up to 2.3e-06), and x = -inf gives NaN",
                runtime="ort:cpu", dtype="float32", where=("[-92, -1.86]",), max_abs=3.5e-6, special=("-inf",)),
              X(ORT_SIGMOID + "; x * sigmoid(x) inherits it (float64 abs error up to 1.5e-15), and x = -inf gives NaN",
                runtime="ort:cpu", dtype="float64", where=("[-768, -1.9]",), max_abs=2.5e-15, special=("-inf",)),
              X(_ORT_CUDA_SIGMOID + "; x * sigmoid(x) inherits it (abs error up to 6.1e-07 in float32) and x = -inf "
                "gives NaN", runtime="ort:cuda", dtype=F32_F64, where=EVERYWHERE, max_abs=1.5e-6,
                special=EVERYWHERE),
              X("onnxruntime's CUDA SiLU in float16 and bfloat16 is 0 where the product is small but normal "
                "(abs error 3.7e-03 in float16, 2.1e-02 in bfloat16, where bfloat16 Sigmoid is 0 at x = -5.56), "
                "and x = -inf gives NaN; " + CUDA + "; side: runtime", runtime="ort:cuda",
                dtype=("float16", "bfloat16"), where=EVERYWHERE, max_abs=0.05, special=EVERYWHERE))),
    A("mish", nn.Mish, "x * tanh(softplus(x))", o.mish(),
      xfails=(X(_NEG_INF + "; just above the smallest normal (x in [-91.8, -88.4] in float32, [-768, -709] in "
                "float64) the product loses up to 135 ULP; onnx.reference computes in float16 arithmetic: 6 ULP at "
                "x in [-12.2, -11.5]; side: pytorch", runtime=NOT_ORT,
                where=("[-12.2, -11.5]", "[-92, -88.3]", "[-768, -709]"), max_ulp=256, special=("-inf",)),
              X(_ORT_MISH.format(where="float16: 12 ULP for x in [-12.2, -10.7]"), runtime="ort:cpu", graphs="stock",
                dtype="float16", where=("[-12.3, -10.6]",), max_ulp=24, special=("-inf",)),
              X(_ORT_MISH.format(where="float32: 795 ULP, abs error up to 7.5e-08 for x in [-89.7, -2.09]"),
                runtime="ort:cpu", graphs="stock", dtype="float32", where=("[-96, -2]",), max_abs=1.2e-7,
                special=("-inf",)),
              X(_ORT_MISH.format(where="float64: abs error up to 1.4e-15 for x in [-710.8, -2.36], 0 where the value "
                                 "is up to 1.7e-16"), runtime="ort:cpu", graphs="stock", dtype="float64",
                where=("[-768, -2]",), max_abs=2.1e-15, special=("-inf",)),
              X(_NEG_INF + " (actexport's graph x * n / (n + 2) keeps the product), and up to 45 ULP just above the "
                "smallest normal (x in [-91.8, -89.1] in float32); side: pytorch", runtime=ORT, graphs=OURS,
                where=("[-92, -89]", "[-768, -709]"), max_ulp=256, special=("-inf",)))),
    A("hardswish", nn.Hardswish, "x * min(max(0, x + 3), 6) / 6", o.hardswish(), domain=(-5.0, 5.0),
      boundaries=_HARD,
      xfails=(X(_CUDA_SIXTH.format(op="Hardswish", where="268430608 ULP") + "; and " + _NEG_INF,
                runtime=TORCH_CUDA, dtype="float64", where=EVERYWHERE, max_ulp=2**29, special=EVERYWHERE),
              X(_NEG_INF + "; PyTorch also computes x * 6 before dividing by 6 and returns inf for every x above "
                "max / 6 (5.7e37 in float32), whose value is x; side: pytorch", runtime=TORCH,
                special=("-inf", "[5.6e37, 3.41e38]", "[2.9e307, inf)")),
              X("onnxruntime's CUDA float16 HardSwish computes in float16 (512 ULP), and " + _NEG_INF + "; "
                + CUDA + "; side: runtime", runtime="ort:cuda", dtype="float16", where=EVERYWHERE, max_abs=5e-4,
                special=EVERYWHERE),
              X(_NEG_INF + "; ONNX HardSwish is x * HardSigmoid(x) and inherits its cancellation near "
                "x = -3 (float32 abs error up to 6e-08; see hardsigmoid); side: export", format="onnx",
                dtype=("float16", "bfloat16", "float32"), where=("[-3, -2.7]",), max_abs=9e-8, special=("-inf",)),
              X(_NEG_INF + "; ONNX HardSwish is x * HardSigmoid(x), whose alpha = 1/6 is a float32 attribute: "
                "float64 abs error up to 4.5e-08 in (-3, 3); side: export", format="onnx", dtype="float64",
                where=("[-3, 3]",), max_abs=7e-8, special=("-inf",)))),
    A("hardsigmoid", nn.Hardsigmoid, "min(max(0, x + 3), 6) / 6", o.hardsigmoid(),
      domain=(-5.0, 5.0), boundaries=_HARD,
      xfails=(X("ONNX HardSigmoid computes alpha * x + beta with alpha = 1/6 rounded to float32: near x = -3 the "
                "cancellation leaves 2.98e-08 where the value is 3.97e-08 (float32, abs error up to 2.1e-08); "
                "side: export", format="onnx", dtype="float32", where=("[-3, -2.62]",), max_abs=3e-8),
              X("ONNX HardSigmoid's alpha = 1/6 is a float32 attribute: a float64 graph is off by up to 1.5e-08 "
                "everywhere in (-3, 3), 0 where the value is 7.4e-17 near x = -3; side: export", format="onnx",
                dtype="float64", where=("[-3, 3]",), max_abs=2.5e-8),
              X("onnxruntime's CUDA float16 HardSigmoid computes alpha * x + beta in float16: 1.22e-04 at x = -3 "
                "where the value is 0; " + CUDA + "; side: runtime", runtime="ort:cuda", dtype="float16",
                where=EVERYWHERE, max_abs=2.5e-4),
              X(_CUDA_SIXTH.format(op="Hardsigmoid", where="0.99951151 at x = 2.997, exact 0.99951148"),
                runtime=TORCH_CUDA, dtype="float64", where=EVERYWHERE, max_abs=6e-8))),
    A("hardtanh", nn.Hardtanh, "min(max(-1, x), 1)", o.hardtanh(-1.0, 1.0), domain=(-3.0, 3.0),
      boundaries=(-1.0, 1.0)),
    A("hardtanh_-2_2", lambda: nn.Hardtanh(-2.0, 2.0), "min(max(-2, x), 2)", o.hardtanh(-2.0, 2.0),
      domain=(-4.0, 4.0), boundaries=(-2.0, 2.0)),
    A("prelu", nn.PReLU, "x if x > 0 else w * x, one learned w = 0.25", o.prelu((0.25,)),
      boundaries=(0.0,)),
    A("prelu_3ch", _prelu_3ch, "x if x > 0 else w[c] * x, per channel w = (0.25, -0.5, 2)",
      o.prelu((0.25, -0.5, 2.0)), shape=(4, 3, 8), static_dims=(1,), boundaries=(0.0,)),
    A("rrelu", lambda: nn.RReLU(), "eval mode: x if x > 0 else (lower + upper) / 2 * x = 11/48 * x",
      o.leaky_relu((1.0 / 8.0 + 1.0 / 3.0) / 2.0), boundaries=(0.0,),
      xfails=(X("the dynamo exporter keeps aten.rrelu_with_noise_functional in eval mode and has no "
                "ONNX translation for it (DispatchError); side: export", format="onnx",
                exporter="dynamo", no_artifact=True),
              X(_F32_ATTRIBUTE.format(op="the legacy graph's LeakyRelu", attr="slope 11/48", value="0.22916667",
                                      rel="2.2e-08, 1.95e8 ULP"), format="onnx", exporter="legacy", dtype="float64",
                where=("[-inf, -8.9e-308]",), max_ulp=2**28))),
    A("softplus", nn.Softplus, "log(1 + exp(x)), x when x > 20", o.softplus(1.0, 20.0),
      domain=(-30.0, 30.0), boundaries=(20.0,),
      xfails=(X("onnxruntime's float64 Softplus returns 0 where exp(x) < ~1e-17 (x = -50: exact 1.93e-22) and "
                "is off by up to 1.1e-16 for x in [-640, -2.77]; side: runtime", runtime="ort:cpu", dtype="float64",
                graphs="stock", where=("[-710, -2.7]",), max_abs=1.7e-16),
              X(_LEGACY_SOFTPLUS.format(where="x > 20: log(1 + exp(x)) = x + 2.1e-09 in float64"), format="onnx",
                exporter="legacy", dtype="float64", where=("(20, 32]",), max_abs=3e-9, special=("[709, inf)",)),
              X(_LEGACY_SOFTPLUS.format(where="x > 20"), runtime="ort:cpu", exporter="legacy", dtype="float16",
                special=("[44, 65504]",)))),
    A("softplus_b2_t10", lambda: nn.Softplus(beta=2.0, threshold=10.0),
      "log(1 + exp(2x)) / 2, x when 2x > 10", o.softplus(2.0, 10.0), domain=(-15.0, 15.0),
      boundaries=(5.0,),
      xfails=(X("onnxruntime's float64 Softplus returns 0 where exp(2x) < ~1e-17 (x = -20: exact 2.12e-18) and is "
                "off by up to 5.6e-17 for x in [-320, -1.39]; side: runtime", runtime="ort:cpu", dtype="float64",
                graphs="stock", where=("[-384, -1.37]",), max_abs=8.5e-17),
              X(_LEGACY_SOFTPLUS.format(where="2x > 10: log(1 + exp(2x)) / 2 = x + 2.3e-05, 48 ULP in float32") + "; it "
                "also computes 2x first, which overflows", format="onnx", exporter="legacy",
                dtype=("float32", "float64"), where=("(5, 16]",), max_abs=3.5e-5,
                special=("[1.7e38, 3.41e38]", "[354, inf)")),
              X(_LEGACY_SOFTPLUS.format(where="2x > 10"), format="onnx", exporter="legacy", dtype="float16",
                special=("[44, 65504]",)))),
    A("softsign", nn.Softsign, "x / (1 + |x|)", o.softsign(),
      xfails=(X("x / (1 + |x|) at x = ±inf is inf / inf = NaN in every runtime, where the limit is ±1; "
                "side: pytorch (every export keeps the formula)", special=("-inf", "+inf")),)),
    A("tanhshrink", nn.Tanhshrink, "x - tanh(x)", o.tanhshrink(),
      xfails=(X(_TANHSHRINK.format(where="float16: abs error up to 2.4e-04 for |x| in [0.057, 0.6]"),
                runtime=NOT_ORT, dtype="float16", where=("±[0.056, 0.6]",), max_abs=4e-4),
              X(_TANHSHRINK.format(where="bfloat16: 0 where the value is up to 2.4e-04, abs error up to 2e-03"),
                runtime=NOT_ORT, dtype="bfloat16", where=("±[3.2e-13, 0.6]",), max_abs=3e-3),
              X(_TANHSHRINK.format(where="float32: abs error up to 5.2e-08 for |x| in [3.4e-13, 0.77]"),
                runtime=NOT_ORT, dtype="float32", where=("±[2.8e-13, 0.85]",), max_abs=8e-8),
              X(_TANHSHRINK.format(where="float64: abs error up to 8.3e-17 for |x| in [5.1e-21, 0.57], and 0 for every |x| below about 1e-8, where the value x^3/3 is still a normal number down to |x| = 8.7e-103"),
                runtime=NOT_ORT, dtype="float64", where=("±[4e-103, 0.65]",), max_abs=1.3e-16),
              X(_TANHSHRINK.format(where="onnxruntime float32: abs error up to 1.2e-07 for |x| in [1.7e-31, 0.95] "
                                   "(float16 computes in float32 and passes)"),
                runtime="ort:cpu", dtype="float32", where=("[-1.4e-31, 1.4e-31]", "±[1.3e-31, 1.6]"), max_abs=1.8e-7),
              X(_TANHSHRINK.format(where="onnxruntime float64: abs error up to 1.9e-16 for |x| up to 0.85, and 0 where the value x^3/3 is a normal number below about 1e-24"),
                runtime="ort:cpu", dtype="float64", where=("±[4e-103, 0.85]",), max_abs=2.1e-16),
              X("onnxruntime's CUDA kernels keep the cancelling form x - tanh(x) in every dtype, float16 and "
                "bfloat16 included (bfloat16 returns 0 at x = -0.0898, float16 31 ULP at x = 0.278); " + CUDA
                + "; side: pytorch", runtime="ort:cuda", where=EVERYWHERE, max_ulp=2**17))),
    A("softshrink", nn.Softshrink, "x - 0.5 if x > 0.5, x + 0.5 if x < -0.5, else 0",
      o.softshrink(0.5), domain=(-2.0, 2.0), boundaries=(-0.5, 0.5),
      xfails=(X(_LEGACY_NAN_TO_ZERO, format="onnx", exporter="legacy", special=("nan",)),)),
    A("softshrink_1", lambda: nn.Softshrink(1.0), "x - 1 if x > 1, x + 1 if x < -1, else 0",
      o.softshrink(1.0), domain=(-3.0, 3.0), boundaries=(-1.0, 1.0),
      xfails=(X(_LEGACY_NAN_TO_ZERO, format="onnx", exporter="legacy", special=("nan",)),)),
    A("hardshrink", nn.Hardshrink, "x if |x| > 0.5 else 0", o.hardshrink(0.5), domain=(-2.0, 2.0),
      boundaries=(-0.5, 0.5),
      xfails=(X(_LEGACY_NAN_TO_ZERO, format="onnx", exporter="legacy", special=("nan",)),)),
    A("hardshrink_1", lambda: nn.Hardshrink(1.0), "x if |x| > 1 else 0", o.hardshrink(1.0),
      domain=(-3.0, 3.0), boundaries=(-1.0, 1.0),
      xfails=(X(_LEGACY_NAN_TO_ZERO, format="onnx", exporter="legacy", special=("nan",)),)),
    A("logsigmoid", nn.LogSigmoid, "log(1 / (1 + exp(-x))) = -softplus(-x)", o.logsigmoid(),
      domain=(-30.0, 30.0),
      xfails=(X(_LOG_SIGMOID.format(where="float16: abs error up to 1.3 for x in [-18, -13.2], 0 for x in [1.27, 9.7]"),
                format="onnx", dtype="float16", where=("[-18.1, -13.2]", "[1.26, 9.72]"), max_abs=2.0,
                special=("[-inf, -16.5]",)),
              X(_LOG_SIGMOID.format(where="bfloat16 (onnx.reference): 0 where the value is up to 1.9e-03 for x in "
                                    "[2.08, 87]"), format="onnx", dtype="bfloat16", where=("[2.06, 87.5]",),
                max_abs=4e-3, special=("[-inf, -93]",)),
              X(_LOG_SIGMOID.format(where="float32: abs error up to 1.7 for x in [-18, -2.7] (onnxruntime's Sigmoid "
                                    "approximation), 0 where the value is tiny for x in [1.26, 88.7]"), format="onnx",
                dtype="float32", where=("[-108, -2.7]", "[0.35, 88.8]"), max_abs=2.6, special=("[-inf, -15.5]",)),
              X(_LOG_SIGMOID.format(where="float64: abs error up to 1.0e-03 for x in [-40, -3.65], 0 where the value is "
                                    "tiny for x in [2.04, 710]"), format="onnx", dtype="float64",
                where=("[-45, -3]", "[1.95, 710]"), max_abs=0.8, special=("[-inf, -36]",)))),
    A("threshold", lambda: nn.Threshold(0.5, -1.0), "x if x > 0.5 else -1", o.threshold(0.5, -1.0),
      domain=(-2.0, 2.0), boundaries=(0.5,),
      xfails=(X("the legacy exporter refuses a non-zero threshold (SymbolicValueError); side: export",
                format="onnx", exporter="legacy", no_artifact=True),)),
)
