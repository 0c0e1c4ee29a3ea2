"""Runtimes: availability with a reason, no silent provider fallback, the double-install check."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch

from actexport.runtimes import RuntimeUnavailable, for_format
from actexport.runtimes import onnxrt
from actexport.runtimes.onnxrt import OrtRuntime

HAS_ORT_CUDA = "CUDAExecutionProvider" in ort.get_available_providers()


def test_cpu_runtimes_are_available_and_named():
    names = [rt.name for f in ("onnx", "torchscript", "pt2") for rt in for_format(f, ("cpu",))]
    assert names == ["onnx.reference", "ort:cpu", "torchscript:cpu", "pt2:cpu"]
    assert all(rt.unavailable() is None for f in ("onnx", "torchscript", "pt2") for rt in for_format(f, ("cpu",)))


@pytest.mark.skipif(HAS_ORT_CUDA, reason="this machine has onnxruntime's CUDA provider")
def test_missing_cuda_provider_says_why():
    reason = OrtRuntime("cuda").unavailable()
    assert reason and "CUDAExecutionProvider" in reason and "onnxruntime-gpu" in reason


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA device")
def test_torch_runtimes_without_cuda_say_why():
    for f in ("torchscript", "pt2"):
        (rt,) = for_format(f, ("cuda",))
        assert "CUDA" in rt.unavailable()


def test_double_install_is_detected(monkeypatch):
    monkeypatch.setattr(onnxrt, "installed_distributions", lambda: ["onnxruntime", "onnxruntime-gpu"])
    msg = onnxrt.double_install()
    assert "onnxruntime and onnxruntime-gpu" in msg and "pip uninstall" in msg
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CPUExecutionProvider"])
    assert "onnxruntime and onnxruntime-gpu" in OrtRuntime("cuda").unavailable()


def test_installed_distributions_sees_this_onnxruntime():
    assert any(d.startswith("onnxruntime") for d in onnxrt.installed_distributions())


def test_provider_fallback_is_refused(exported, monkeypatch):
    """onnxruntime silently runs CPU when CUDA fails to load; the runtime must not accept that."""

    class FallbackSession:
        def __init__(self, *a, **k):
            pass

        def get_providers(self):
            return ["CPUExecutionProvider"]

    monkeypatch.setattr(ort, "InferenceSession", FallbackSession)
    rt = OrtRuntime("cuda")
    with pytest.raises(RuntimeUnavailable, match="asked for CUDAExecutionProvider but onnxruntime runs"):
        rt.load(exported / "relu" / "model.onnx")


def test_infer_checks_the_output_dtype(exported):
    rt = OrtRuntime("cpu")
    rt.load(exported / "relu" / "model.onnx")
    x = np.array([[-1.0, 2.0]], np.float32)
    np.testing.assert_array_equal(rt.infer(x), [[0.0, 2.0]])
    rt.run = lambda x: x.astype(np.float64)
    with pytest.raises(TypeError, match="returned float64 for a float32 input"):
        rt.infer(x)


@pytest.mark.cuda
@pytest.mark.skipif(not HAS_ORT_CUDA, reason="needs onnxruntime-gpu with a loadable CUDAExecutionProvider")
def test_cuda_provider_runs_on_cuda(exported):
    rt = OrtRuntime("cuda")
    rt.load(exported / "relu" / "model.onnx")
    assert rt.session.get_providers()[0] == "CUDAExecutionProvider"
    np.testing.assert_array_equal(rt.infer(np.array([[-1.0, 2.0]], np.float32)), [[0.0, 2.0]])


def test_pt2_loading_never_unpickles_arbitrary_objects(tmp_path):
    import io
    import pickle

    import torch

    from actexport.runtimes.exported import weights_only

    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))  # would create the file when unpickled

    buffer = io.BytesIO()
    torch.save({"w": Payload()}, buffer, pickle_module=pickle)
    with weights_only(), pytest.raises(pickle.UnpicklingError):
        torch.load(io.BytesIO(buffer.getvalue()), weights_only=False)  # what torch.export.load asks for
    assert not marker.exists()
    assert torch.load is not None and "safe_load" not in torch.load.__name__  # restored after the block
