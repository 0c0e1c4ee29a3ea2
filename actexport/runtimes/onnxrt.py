"""onnxruntime, one class for every execution provider; the provider that really ran is checked."""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

import numpy as np

from actexport.runtimes import Runtime, RuntimeUnavailable

PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}
OPTIMIZATION_LEVELS = {"disable": "ORT_DISABLE_ALL", "basic": "ORT_ENABLE_BASIC", "extended": "ORT_ENABLE_EXTENDED",
                       "all": "ORT_ENABLE_ALL"}


# Distributions that install the `onnxruntime` module itself (not add-ons such as onnxruntime-genai).
_ORT_DISTRIBUTIONS = {
    "onnxruntime", "onnxruntime-gpu", "onnxruntime-directml", "onnxruntime-openvino", "onnxruntime-qnn",
    "onnxruntime-rocm", "onnxruntime-silicon", "onnxruntime-training", "onnxruntime-cann",
    "ort-nightly", "ort-nightly-gpu", "ort-nightly-directml",
}


def installed_distributions() -> list[str]:
    """The installed distributions that provide the `onnxruntime` module (onnxruntime, -gpu, ...)."""
    names = {(d.metadata["Name"] or "").lower().replace("_", "-") for d in metadata.distributions()}
    return sorted(names & _ORT_DISTRIBUTIONS)


def double_install() -> str | None:
    """A warning when several onnxruntime distributions share the one `onnxruntime` module."""
    dists = installed_distributions()
    if len(dists) > 1:
        return (
            f"{' and '.join(dists)} are all installed and overwrite each other's `onnxruntime` module "
            "(the CUDA provider can silently disappear); keep one: "
            "pip uninstall -y " + " ".join(dists) + " && pip install onnxruntime-gpu"
        )
    return None


def session_options(intra_op_threads: int | None = None, optimization: str | None = None):
    """onnxruntime SessionOptions with actexport's settings, and a record of the settings in force.

    Args:
        intra_op_threads: threads for one operator; None or 0 leaves onnxruntime's default (one per
            physical core).
        optimization: a key of OPTIMIZATION_LEVELS; None leaves onnxruntime's default (ORT_ENABLE_ALL).

    Returns:
        (SessionOptions, dict of intra_op_num_threads, inter_op_num_threads, graph_optimization_level,
        execution_mode, allow_spinning).
    """
    import onnxruntime as ort  # noqa: PLC0415

    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only: warnings come back through get_providers()
    if intra_op_threads is not None:
        options.intra_op_num_threads = intra_op_threads
    if optimization is not None:
        options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, OPTIMIZATION_LEVELS[optimization])
    try:
        spinning = options.get_session_config_entry("session.intra_op.allow_spinning")
    except Exception:  # noqa: BLE001  (unset entries cannot be read back)
        spinning = "1 (onnxruntime default)"
    info = {
        "intra_op_num_threads": options.intra_op_num_threads,  # 0: one per physical core
        "inter_op_num_threads": options.inter_op_num_threads,
        "graph_optimization_level": options.graph_optimization_level.name,
        "execution_mode": options.execution_mode.name,
        "intra_op_allow_spinning": spinning,
    }
    return options, info


class OrtRuntime(Runtime):
    """onnxruntime on one execution provider.

    Args:
        provider: "cpu" or "cuda".
        provider_options: passed to the execution provider.
        intra_op_threads: see `session_options`; None keeps onnxruntime's default.
        optimization: graph optimisation level, see `session_options`; None keeps the default.
    """

    format = "onnx"

    def __init__(self, provider: str = "cpu", provider_options: dict | None = None,
                 intra_op_threads: int | None = None, optimization: str | None = None) -> None:
        self.device = provider
        self.name = f"ort:{provider}"
        self.provider = PROVIDERS[provider]
        self.provider_options = provider_options or {}
        self.intra_op_threads = intra_op_threads
        self.optimization = optimization
        self.session = None
        self.session_options_info: dict = {}

    def unavailable(self) -> str | None:
        try:
            import onnxruntime as ort  # noqa: PLC0415
        except ImportError as e:
            return f"onnxruntime is not installed ({e}); pip install onnxruntime"
        available = ort.get_available_providers()
        if self.provider in available:
            return None
        reason = f"onnxruntime {ort.__version__} has no {self.provider} (available: {', '.join(available)})"
        if self.device == "cuda":
            clash = double_install()
            reason += f": {clash}" if clash else ": onnxruntime-gpu is not installed"
        return reason

    def load(self, path: Path) -> None:
        import onnxruntime as ort  # noqa: PLC0415

        if self.device == "cuda" and hasattr(ort, "preload_dlls"):
            ort.preload_dlls()  # CUDA/cuDNN libraries installed from pip, if any
        options, self.session_options_info = session_options(self.intra_op_threads, self.optimization)
        try:
            self.session = ort.InferenceSession(
                str(path), sess_options=options, providers=[(self.provider, self.provider_options)]
            )
        except Exception as e:
            text = str(e)
            if "NOT_IMPLEMENTED" in text or "Could not find an implementation" in text:
                raise RuntimeUnavailable(f"onnxruntime has no kernel: {_first_line(text)}") from e
            raise
        running = self.session.get_providers()
        if not running or running[0] != self.provider:
            # NOTE: onnxruntime falls back to CPU when a provider fails to load (missing CUDA or
            # cuDNN libraries); a parity figure from the wrong provider would be a lie.
            raise RuntimeUnavailable(
                f"asked for {self.provider} but onnxruntime runs {running}: the provider failed to "
                "load (for CUDA: check the CUDA and cuDNN libraries onnxruntime-gpu needs)"
            )
        self.input_name = self.session.get_inputs()[0].name
        self.output_name = self.session.get_outputs()[0].name
        self.ran_on = running[0]

    def run(self, x: np.ndarray) -> np.ndarray:
        if x.dtype.name == "bfloat16":
            return self._run_bfloat16(x)
        return self.session.run(None, {self.input_name: x})[0]

    def _run_bfloat16(self, x: np.ndarray) -> np.ndarray:
        """onnxruntime's numpy bridge has no bfloat16: pass raw 16-bit words in and copy them out."""
        import onnxruntime as ort  # noqa: PLC0415
        from onnx import TensorProto  # noqa: PLC0415

        value = ort.OrtValue.ortvalue_from_numpy_with_onnx_type(
            np.ascontiguousarray(x).view(np.uint16), TensorProto.BFLOAT16)
        (out,) = self.session.run_with_ort_values(None, {self.input_name: value})
        shape = tuple(out.shape())
        words = (ctypes.c_uint16 * int(np.prod(shape))).from_address(out.data_ptr())
        return np.frombuffer(words, np.uint16).copy().view(x.dtype).reshape(shape)

    def prepare(self, x: np.ndarray) -> Callable[[], object]:
        """IO binding: the input is bound once (on the device), the output to an OrtValue allocated once.

        One run() first learns the output's shape and dtype. On CUDA the callable waits for the
        outputs (synchronize_outputs), so timing it includes the device work. Returns the callable;
        it returns the output OrtValue (`.numpy()` reads it back, except for bfloat16).
        """
        import onnxruntime as ort  # noqa: PLC0415
        from onnx import TensorProto  # noqa: PLC0415

        y = self.run(x)
        device = "cuda" if self.device == "cuda" else "cpu"
        x = np.ascontiguousarray(x)
        if x.dtype.name == "bfloat16":
            if device != "cpu":
                # NOTE: onnxruntime builds bfloat16 OrtValues from host memory only: no honest binding.
                return super().prepare(x)
            value = ort.OrtValue.ortvalue_from_numpy_with_onnx_type(x.view(np.uint16), TensorProto.BFLOAT16)
            out = ort.OrtValue.ortvalue_from_shape_and_type(list(y.shape), TensorProto.BFLOAT16, device, 0)
        else:
            value = ort.OrtValue.ortvalue_from_numpy(x, device, 0)
            out = ort.OrtValue.ortvalue_from_shape_and_type(list(y.shape), y.dtype.type, device, 0)
        binding = self.session.io_binding()
        binding.bind_ortvalue_input(self.input_name, value)
        binding.bind_ortvalue_output(self.output_name, out)
        binding.synchronize_inputs()
        session, sync = self.session, device != "cpu"

        # NOTE: `held` keeps the host array and its OrtValue alive as long as the binding points at them.
        def call(held: tuple = (x, value)) -> object:
            session.run_with_iobinding(binding)
            if sync:
                binding.synchronize_outputs()
            return out

        call()
        return call

    def close(self) -> None:
        self.session = None


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0][:300] if text.strip() else ""
