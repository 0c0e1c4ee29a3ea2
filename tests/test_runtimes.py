"""Runtimes: availability with a reason, no silent provider fallback, the double-install check."""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from actexport.runtimes import RuntimeUnavailable, for_format
from actexport.runtimes import onnxrt
from actexport.runtimes.onnxrt import OrtRuntime

from cuda_here import NO_ORT_CUDA, ORT_CUDA, ORT_CUDA_PROBLEM, TORCH_CUDA

GPU_BUILD = "CUDAExecutionProvider" in ort.get_available_providers()


def test_cpu_runtimes_are_available_and_named():
    names = [rt.name for f in ("onnx", "torchscript", "pt2") for rt in for_format(f, ("cpu",))]
    assert names == ["onnx.reference", "ort:cpu", "torchscript:cpu", "pt2:cpu"]
    assert all(rt.unavailable() is None for f in ("onnx", "torchscript", "pt2") for rt in for_format(f, ("cpu",)))


@pytest.mark.skipif(ORT_CUDA_PROBLEM is None, reason="onnxruntime's CUDA provider loads on this machine")
def test_missing_cuda_provider_says_why():
    reason = OrtRuntime("cuda").unavailable()
    # The CPU build names the provider it lacks; onnxruntime-gpu without its libraries names those.
    assert reason and "onnxruntime-gpu" in reason
    assert ("has no CUDAExecutionProvider" in reason) != GPU_BUILD
    assert ("cannot load libonnxruntime_providers_cuda.so" in reason) == GPU_BUILD


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


# What onnxruntime-gpu 1.31.1 prints (its default logger, whatever the session's log level) when the
# CUDA provider library cannot load, before it runs the session on CPU.
LOG_WHEN_CUDA_DOES_NOT_LOAD = (
    b"[E:onnxruntime:Default, provider_bridge_ort.cc:2458 operator()] /onnxruntime_src/onnxruntime/core/session/"
    b"provider_bridge_ort.cc:2043 onnxruntime::Provider& onnxruntime::ProviderLibrary::Get() [ONNXRuntimeError] : "
    b"1 : FAIL : Failed to load library /venv/site-packages/onnxruntime/capi/libonnxruntime_providers_cuda.so with "
    b"error: libcublasLt.so.13: cannot open shared object file: No such file or directory\n"
    b"[W:onnxruntime:Default, onnxruntime_pybind_state.cc:1295 CreateExecutionProviderFactoryInstance] Failed to "
    b"create CUDAExecutionProvider. Require cuDNN 9.* and CUDA 13.*. Please install all dependencies as mentioned "
    b"in the GPU requirements page, make sure they're in the PATH, and that your GPU is supported.\n")


def test_provider_fallback_is_refused(exported, monkeypatch):
    """onnxruntime silently runs CPU when CUDA fails to load; the runtime must not accept that."""

    class FallbackSession:
        def __init__(self, *a, **k):  # onnxruntime's default logger writes the reason to fd 2
            os.write(2, LOG_WHEN_CUDA_DOES_NOT_LOAD)

        def get_providers(self):
            return ["CPUExecutionProvider"]

    monkeypatch.setattr(ort, "InferenceSession", FallbackSession)
    for problem in ("onnxruntime cannot load libonnxruntime_providers_cuda.so: libcublasLt.so.13 ...", None):
        # The reason comes from the load probe when it finds one, else from onnxruntime's log alone.
        monkeypatch.setattr(onnxrt, "cuda_library_problem", lambda: problem)
        with pytest.raises(RuntimeUnavailable, match="asked for CUDAExecutionProvider but onnxruntime runs") as e:
            OrtRuntime("cuda").load(exported / "relu" / "model.onnx")
        logged = ("libonnxruntime_providers_cuda.so: libcublasLt.so.13: cannot open shared object file: No such file "
                  "or directory; Require cuDNN 9.* and CUDA 13.*")
        want = "; Require cuDNN 9.* and CUDA 13.*; " + problem if problem else "; " + logged
        assert str(e.value).endswith(want), str(e.value)


def test_infer_checks_the_output_dtype(exported):
    rt = OrtRuntime("cpu")
    rt.load(exported / "relu" / "model.onnx")
    x = np.array([[-1.0, 2.0]], np.float32)
    np.testing.assert_array_equal(rt.infer(x), [[0.0, 2.0]])
    rt.run = lambda x: x.astype(np.float64)
    with pytest.raises(TypeError, match="returned float64 for a float32 input"):
        rt.infer(x)


@pytest.mark.cuda
@pytest.mark.skipif(not ORT_CUDA, reason=NO_ORT_CUDA)
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


def _library_needing_a_missing_one(tmp_path):
    """A copy of a real shared library (ctypes' extension module) whose libffi dependency is renamed
    libqqq, which exists nowhere: loading it fails the way a CUDA provider without cuBLAS does."""
    import _ctypes

    data = Path(_ctypes.__file__).read_bytes()
    if data.count(b"\0libffi.so.") != 1:
        pytest.skip("this Python's _ctypes does not link libffi dynamically: no library to rename")
    path = tmp_path / "libonnxruntime_providers_cuda.so"
    path.write_bytes(data.replace(b"\0libffi.so.", b"\0libqqq.so."))
    return path


def test_a_provider_library_that_cannot_load_names_what_is_missing(tmp_path):
    library = _library_needing_a_missing_one(tmp_path)

    def preload():  # what onnxruntime.preload_dlls prints for each CUDA library it cannot load (measured, 1.31.1)
        print("Failed to load libcublasLt.so.13: libcublasLt.so.13: cannot open shared object file: No such file")
        print("Failed to load libcurand.so.10: libcurand.so.10: cannot open shared object file: No such file")
        print("Please follow https://onnxruntime.ai/docs/install/#cuda-and-cudnn to install CUDA.")

    text = onnxrt.provider_library_problem(library, None, preload, "12.8")
    assert text.startswith("onnxruntime cannot load libonnxruntime_providers_cuda.so: libqqq.so.")
    assert "preload_dlls() could not load libcublasLt.so.13, libcurand.so.10. Install the CUDA 12.8 and cuDNN" in text
    assert "\n" not in text
    import _ctypes

    assert onnxrt.provider_library_problem(Path(_ctypes.__file__), None, preload) is None  # it loads


@pytest.mark.skipif(TORCH_CUDA, reason="this machine has a CUDA device")
def test_no_driver_is_named():
    assert onnxrt.cuda_driver_problem().startswith(("no NVIDIA driver: ", "the NVIDIA driver"))


def test_node_placements_are_read_from_onnxruntimes_verbose_log(exported):
    """A CUDA session runs a node its provider has no kernel for on CPU, silently: the verbose log
    says so, and ran_on must show it."""
    from actexport.capture import quiet

    options = ort.SessionOptions()
    options.log_severity_level = 0
    with quiet() as log:  # the real log format, from a CPU session
        ort.InferenceSession(str(exported / "relu" / "model.onnx"), options, providers=["CPUExecutionProvider"])
    assert onnxrt.node_placements(log.text) == {"CPUExecutionProvider": []}  # "All nodes placed on [...]"
    split = ("2026 [V:onnxruntime:, session_state.cc:1598 VerifyEachNodeIsAssignedToAnEp] Node placements\n"
             "2026 [V:onnxruntime:, session_state.cc:1601 VerifyEachNodeIsAssignedToAnEp]  Node(s) placed on "
             "[CUDAExecutionProvider]. Number of nodes: 1\n  Relu (node_relu)\n"
             "2026 [V:onnxruntime:, session_state.cc:1601 VerifyEachNodeIsAssignedToAnEp]  Node(s) placed on "
             "[CPUExecutionProvider]. Number of nodes: 2\n  Celu (node_celu)\n  Shape (node_shape)\n"
             "2026 [V:onnxruntime:, session_state.cc:242 CreateGraphInfo] Done saving OrtValue mappings.\n")
    assert onnxrt.node_placements(split) == {"CUDAExecutionProvider": ["Relu"],
                                             "CPUExecutionProvider": ["Celu", "Shape"]}


@pytest.mark.skipif(GPU_BUILD, reason="this onnxruntime is a GPU build")
def test_the_cpu_build_is_named_as_such():
    text = onnxrt.cuda_library_problem()
    assert "has no CUDA provider library" in text and "pip install onnxruntime-gpu" in text


def test_a_shadowed_onnxruntime_is_not_a_double_install(monkeypatch, tmp_path):
    """onnxruntime-gpu put ahead on sys.path (PYTHONPATH) shadows the CPU build; only distributions
    installed in the folder the module is imported from overwrite each other."""
    here = Path(ort.__file__).parent.parent

    class Dist:
        def __init__(self, name, site):
            self.metadata, self.site = {"Name": name}, site

        def locate_file(self, name):
            return self.site / name

    monkeypatch.setattr(onnxrt.metadata, "distributions",
                        lambda: [Dist("onnxruntime", here), Dist("onnxruntime_gpu", tmp_path)])
    assert onnxrt.installed_distributions() == ["onnxruntime"] and onnxrt.double_install() is None
    monkeypatch.setattr(onnxrt.metadata, "distributions",
                        lambda: [Dist("onnxruntime", here), Dist("onnxruntime_gpu", here)])
    assert onnxrt.installed_distributions() == ["onnxruntime", "onnxruntime-gpu"]


def test_the_session_records_the_provider_options_in_force(exported):
    with OrtRuntime("cpu", intra_op_threads=1) as rt:
        rt.load(exported / "relu" / "model.onnx")
        settings = rt.settings
    assert settings["provider"] == "CPUExecutionProvider" and isinstance(settings["provider_options"], dict)
    assert settings["session_options"]["intra_op_num_threads"] == 1


def test_bfloat16_runs_and_binds_through_raw_words(tmp_path):
    """onnxruntime has no numpy bfloat16: words go in, and come out of host-bound outputs. The CPU
    provider has no bfloat16 activation kernel, so the graph is Cast -> Neg (float32) -> Cast."""
    import onnx
    from onnx import TensorProto, helper

    from actexport.inputs import np_dtype

    graph = helper.make_graph(
        [helper.make_node("Cast", ["x"], ["f"], to=TensorProto.FLOAT), helper.make_node("Neg", ["f"], ["n"]),
         helper.make_node("Cast", ["n"], ["y"], to=TensorProto.BFLOAT16)], "neg",
        [helper.make_tensor_value_info("x", TensorProto.BFLOAT16, ["n"])],
        [helper.make_tensor_value_info("y", TensorProto.BFLOAT16, ["n"])])
    # IR version 10, as torch.onnx writes: newer onnx defaults to IR 14, which onnxruntime 1.31 cannot read.
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=10)
    onnx.save(model, tmp_path / "neg.onnx")
    x = np.array([1.5, -0.0, np.inf, 3.0e38], np.float32).astype(np_dtype("bfloat16"))
    with OrtRuntime("cpu") as rt:
        rt.load(tmp_path / "neg.onnx")
        y = rt.infer(x)
        np.testing.assert_array_equal(y.view(np.uint16), (-x).view(np.uint16))
        out = rt.prepare(x)()  # the bound output OrtValue, filled on every call
        words = np.ctypeslib.as_array((ctypes.c_uint16 * x.size).from_address(out.data_ptr()))
        np.testing.assert_array_equal(words, (-x).view(np.uint16))


def test_pt2_programs_are_moved_whole_to_the_device_they_run_on(exported, tmp_path):
    """On CUDA the program's state and the devices written in its graph move with it (Module.to()
    leaves a tensor the graph creates on CPU there); "meta", a device every torch has, stands in."""
    from actexport.runtimes.exported import ExportedRuntime

    rt = ExportedRuntime("meta")
    rt.load(exported / "prelu_3ch" / "model.pt2")
    tensors = [*rt.module.parameters(), *rt.module.buffers()]
    assert tensors and all(t.device.type == "meta" for t in tensors)

    class Shifted(torch.nn.Module):
        def forward(self, x):
            return x + torch.ones(x.shape[-1])  # created in the graph, on CPU

    torch.export.save(torch.export.export(Shifted(), (torch.zeros(2, 3),)), tmp_path / "shifted.pt2")
    rt.load(tmp_path / "shifted.pt2")
    devices = {str(n.kwargs["device"]) for n in rt.module.graph.nodes if "device" in n.kwargs}
    assert devices == {"meta"}


def test_a_fusion_without_a_kernel_is_named_as_onnxruntimes_own(exported, monkeypatch):
    """onnxruntime 1.30 fuses float64 Sigmoid·Mul into its QuickGelu, which has no float64 kernel: the
    graph loads once that fusion is disabled, which is what makes it onnxruntime's limit."""
    real = ort.InferenceSession

    def refuse(model, *a, disabled_optimizers=None, **k):
        if "QuickGeluFusion" in (disabled_optimizers or ()) or isinstance(model, bytes):  # bytes: a node alone
            return real(model, *a, **k)
        raise RuntimeError("[ONNXRuntimeError] : 9 : NOT_IMPLEMENTED : Failed to find kernel for "
                           "com.microsoft.QuickGelu(1) (node:'node_silu/QuickGeluFusion/' ep:'CPUExecutionProvider')")

    monkeypatch.setattr(ort, "InferenceSession", refuse)
    with pytest.raises(RuntimeUnavailable, match=r"graph optimisation QuickGeluFusion rewrites the graph .* "
                                                 r"loads without it"):
        OrtRuntime("cpu").load(exported / "silu" / "model.onnx")


def test_a_load_error_whose_text_claims_a_missing_kernel_stays_an_error(exported, monkeypatch):
    """The text of a load error carries node names the file's author chose: "NOT_IMPLEMENTED" or a
    fusion's name in it never makes a cell unavailable; loads of each node alone and without the
    fusion decide."""
    real = ort.InferenceSession

    def refuse(model, *a, **k):
        if isinstance(model, bytes):  # a node alone, as actexport builds it, loads
            return real(model, *a, **k)
        raise RuntimeError("[ONNXRuntimeError] : 9 : NOT_IMPLEMENTED : Could not find an implementation for "
                           "node 'EvilFusion' (node:'x/QuickGeluFusion/')")

    monkeypatch.setattr(ort, "InferenceSession", refuse)
    with pytest.raises(RuntimeError) as raised:
        OrtRuntime("cpu").load(exported / "silu" / "model.onnx")
    assert not isinstance(raised.value, RuntimeUnavailable)


@pytest.mark.parametrize(("dtype", "op", "missing"), [
    (onnx.TensorProto.BFLOAT16, "LeakyRelu", ["LeakyRelu(bfloat16)"]),  # no bfloat16 kernel on CPU
    (onnx.TensorProto.FLOAT16, "LeakyRelu", []),  # float kernel, with casts around it
    (onnx.TensorProto.DOUBLE, "Elu", []),  # no double kernel, but a function body whose ops have one
    (onnx.TensorProto.DOUBLE, "HardSwish", []),  # a body (HardSigmoid, Mul) inside a body
    (onnx.TensorProto.BFLOAT16, "Softmax", ["Softmax(bfloat16)"]),  # its body's ReduceMax has none either
])
def test_missing_kernels_are_found_by_loading_each_node_alone(tmp_path, dtype, op, missing):
    from actexport.runtimes.kernels import missing_kernels

    graph = onnx.helper.make_graph([onnx.helper.make_node(op, ["x"], ["y"], name="EvilFusion NOT_IMPLEMENTED")],
                                   "g", [onnx.helper.make_tensor_value_info("x", dtype, [2, 3])],
                                   [onnx.helper.make_tensor_value_info("y", dtype, [2, 3])])
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 18)])
    so = ort.SessionOptions()
    so.log_severity_level = 3
    seen: list[bytes] = []

    def loads(b: bytes) -> bool:
        seen.append(b)
        try:
            ort.InferenceSession(b, so, providers=["CPUExecutionProvider"])
        except Exception:  # noqa: BLE001
            return False
        return True

    assert missing_kernels(model, loads) == missing
    assert len(seen) == 1 and b"EvilFusion" not in seen[0]  # the probe carries none of the file's names
    path = tmp_path / "alone.onnx"
    onnx.save(model, path)
    if missing:  # the whole file is n/a for the same reason, named from the probe
        with pytest.raises(RuntimeUnavailable, match=rf"no kernel for {op}\(bfloat16\) on CPUExecutionProvider "):
            OrtRuntime("cpu").load(path)
    else:
        OrtRuntime("cpu").load(path)
