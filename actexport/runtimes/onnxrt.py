"""onnxruntime, one class for every execution provider; the provider that really ran is checked."""

from __future__ import annotations

import ctypes
from importlib import metadata
from pathlib import Path

import numpy as np

from actexport.runtimes import Runtime, RuntimeUnavailable

PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}


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


class OrtRuntime(Runtime):
    format = "onnx"

    def __init__(self, provider: str = "cpu", provider_options: dict | None = None) -> None:
        self.device = provider
        self.name = f"ort:{provider}"
        self.provider = PROVIDERS[provider]
        self.provider_options = provider_options or {}
        self.session = None

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
        options = ort.SessionOptions()
        options.log_severity_level = 3  # errors only: warnings come back through get_providers()
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

    def close(self) -> None:
        self.session = None


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0][:300] if text.strip() else ""
