"""onnxruntime, one class for every execution provider; the provider that really ran is checked."""

from __future__ import annotations

import ctypes
import functools
import re
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from actexport.capture import quiet
from actexport.files import error_text
from actexport.runtimes import ProviderMissing, Runtime, RuntimeUnavailable

if TYPE_CHECKING:
    import onnxruntime

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
    """The installed distributions that provide the `onnxruntime` module Python imports (onnxruntime,
    -gpu, ...): those whose files are in the folder it is imported from. One installed in another
    folder further down sys.path is shadowed, not mixed in, and is not counted."""
    import importlib.util
    spec = importlib.util.find_spec("onnxruntime")
    imported = Path(spec.origin).parent.resolve() if spec is not None and spec.origin else None
    names = set()
    for d in metadata.distributions():
        name = (d.metadata["Name"] or "").lower().replace("_", "-")
        if name not in _ORT_DISTRIBUTIONS:
            continue
        # NOTE: typeshed types locate_file() as SimplePath; an installed distribution's is a pathlib.Path
        if imported is None or Path(d.locate_file("onnxruntime")).resolve() == imported:  # type: ignore[arg-type]
            names.add(name)
    return sorted(names)


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


@functools.cache  # once per process: every cell's runtime asks
def cuda_driver_problem() -> str | None:
    """Why no CUDA device can be used here (no NVIDIA driver, no card), from the driver API itself
    (torch may be a CPU build beside onnxruntime-gpu); None when there is one. Linux only."""
    import platform
    if platform.system() != "Linux":
        return None
    try:
        driver = ctypes.CDLL("libcuda.so.1")
    except OSError as e:
        return f"no NVIDIA driver: {e}"
    count = ctypes.c_int(0)
    status = driver.cuInit(0)
    if status == 0:
        status = driver.cuDeviceGetCount(ctypes.byref(count))
    if status != 0:
        return f"the NVIDIA driver reports no usable device (CUDA driver error {status})"
    return None if count.value > 0 else "the NVIDIA driver sees no CUDA device"


@functools.cache  # once per process: every cell's runtime asks
def cuda_library_problem() -> str | None:
    """Why onnxruntime's CUDA provider library cannot be loaded in this process, naming what is
    missing; None when it loads (or when this is not Linux, where the check is not written)."""
    import platform

    import onnxruntime as ort
    if platform.system() != "Linux":
        return None
    try:
        return _cuda_library_problem(ort)
    except Exception as e:  # noqa: BLE001  (a diagnosis must never stop the run)
        return f"could not check onnxruntime's CUDA provider library: {error_text(e)}"


def _cuda_library_problem(ort) -> str | None:
    capi = Path(ort.__file__).parent / "capi"
    library = capi / "libonnxruntime_providers_cuda.so"
    if not library.exists():
        return (f"this onnxruntime {ort.__version__} has no CUDA provider library ({library.name} is not in {capi}): "
                "it is the CPU build; pip uninstall -y onnxruntime && pip install onnxruntime-gpu")
    return provider_library_problem(library, capi / "libonnxruntime_providers_shared.so",
                                    getattr(ort, "preload_dlls", None), _cuda_build(ort))


def provider_library_problem(library: Path, shared: Path | None, preload: Callable[[], object] | None,
                             cuda: str = "") -> str | None:
    """Loads an execution provider's library as onnxruntime does, after `preload` (onnxruntime's
    preload_dlls, which loads CUDA and cuDNN from pip's nvidia packages and prints each library it
    cannot load). Returns None when it loads, else one line naming the missing libraries."""
    failed: list[str] = []
    if preload is not None:
        with quiet() as printed:
            try:
                preload()
            except Exception as e:  # noqa: BLE001  (a diagnosis must not raise)
                failed.append(f"{error_text(e)}")
        # It prints "Failed to load <path or soname>: <the loader's error>" for each library.
        failed += [Path(name).name for name in re.findall(r"Failed to load (\S+?): ", printed.text)]
    try:
        if shared is not None and shared.exists():
            ctypes.CDLL(str(shared), mode=ctypes.RTLD_GLOBAL)  # the provider library needs its symbols
        ctypes.CDLL(str(library))
    except OSError as e:
        # NOTE: dlopen names the first library it cannot find; preload_dlls names every CUDA/cuDNN one.
        text = f"onnxruntime cannot load {library.name}: {e}"
        if failed:
            text += f"; onnxruntime.preload_dlls() could not load {', '.join(dict.fromkeys(failed))}"
        build = f" {cuda}" if cuda else ""
        return (text + f". Install the CUDA{build} and cuDNN libraries this onnxruntime-gpu was built for "
                "(pip install 'onnxruntime-gpu[cuda,cudnn]', or import a torch built for the same CUDA)")
    return None


def _cuda_build(ort) -> str:
    """The CUDA version this onnxruntime was built for, e.g. "12.8", or "" when it does not say."""
    try:
        from onnxruntime.capi import build_and_package_info as info
    except ImportError:
        return ""
    return str(getattr(info, "cuda_version", "") or "")


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
    import onnxruntime as ort
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

    family = "ort"
    format = "onnx"
    graph_analysis = True  # verify compares its CPU run with the same graph unoptimised (tasks.optimisation)

    def __init__(self, provider: str = "cpu", provider_options: dict | None = None,
                 intra_op_threads: int | None = None, optimization: str | None = None) -> None:
        self.device = provider
        self.provider = PROVIDERS[provider]
        self.provider_options = provider_options or {}
        self.intra_op_threads = intra_op_threads
        self.optimization = optimization
        self.session: onnxruntime.InferenceSession | None = None  # set by load()
        self.session_options_info: dict = {}

    @classmethod
    def on(cls, device: str, threads: int | None = None) -> OrtRuntime:
        return cls(device, intra_op_threads=threads)

    def provider_unavailable(self) -> str | None:
        try:
            import onnxruntime as ort
        except ImportError as e:
            return f"onnxruntime is not installed ({e}); pip install onnxruntime"
        available = ort.get_available_providers()
        if self.provider in available:
            if self.device != "cuda":
                return None
            # NOTE: onnxruntime-gpu lists CUDAExecutionProvider even without a card or its libraries.
            problems = [p for p in (cuda_driver_problem(), cuda_library_problem()) if p]
            return "; ".join(problems) or None
        reason = f"onnxruntime {ort.__version__} has no {self.provider} (available: {', '.join(available)})"
        if self.device == "cuda":
            clash = double_install()
            reason += f": {clash}" if clash else ": onnxruntime-gpu is not installed"
        return reason

    def load(self, path: Path) -> None:
        import onnxruntime as ort
        if self.device == "cuda" and hasattr(ort, "preload_dlls"):
            with quiet():  # it prints; cuda_library_problem() says what failed to load
                ort.preload_dlls()  # CUDA/cuDNN libraries installed from pip, if any
        options, self.session_options_info = session_options(self.intra_op_threads, self.optimization)
        if self.device != "cpu":
            # NOTE: onnxruntime runs a node its provider has no kernel for on CPU, silently; only its
            # verbose log says where each node went (captured below, never shown).
            options.log_severity_level = 0
        try:
            # NOTE: a provider that fails to load is logged (to fd 2) by the default logger, not raised.
            with quiet() as log:
                self.session = ort.InferenceSession(
                    str(path), sess_options=options, providers=[(self.provider, self.provider_options)]
                )
        except Exception as e:
            raise self._why_not_loaded(path, options, e) from e
        running = self.session.get_providers()
        if not running or running[0] != self.provider:
            # NOTE: onnxruntime falls back to CPU when a provider fails to load (missing CUDA or
            # cuDNN libraries); a parity figure from the wrong provider would be a lie.
            why = load_failure(log.text)
            problem = cuda_library_problem() if self.device == "cuda" else None
            if problem:  # it names the same library, and every other one that is missing
                why = [w for w in why if w.startswith("Require")] + [problem]
            raise ProviderMissing(
                f"asked for {self.provider} but onnxruntime runs {running}: the provider failed to load"
                + "".join(f"; {w}" for w in why if w)
            )
        self.input_name = self.session.get_inputs()[0].name
        self.output_name = self.session.get_outputs()[0].name
        self.run_options = ort.RunOptions()
        self.run_options.log_severity_level = 3  # the session may log verbosely (placements): runs must not
        placed = node_placements(log.text)
        elsewhere = {p: ops for p, ops in placed.items() if p != running[0]}
        # A CUDA cell whose op ran on CPU must say so: its numbers are the CPU kernel's.
        self.ran_on = running[0] + "".join(f" + {p} ({', '.join(ops) or 'some nodes'})" for p, ops in elsewhere.items())
        self.settings = {
            "provider": running[0],
            # NOTE: every option in force, defaults included (onnxruntime reports them as strings).
            "provider_options": dict(self.session.get_provider_options().get(running[0], {})),
            "session_options": self.session_options_info,
            **({"node_placements": placed} if placed else {}),
        }

    def _why_not_loaded(self, path: Path, options, error: Exception) -> Exception:
        """RuntimeUnavailable when a node of the graph does not load alone in a model actexport builds
        (onnxruntime has no kernel for it on this provider or the CPU), or when one of onnxruntime's graph
        fusions is shown, by loading again without it, to produce an op with no kernel; otherwise the load
        error itself. The error's text only suggests the fusion to try: it carries node names that the
        file's author chose."""
        import onnx
        import onnxruntime as ort

        from actexport.runtimes.kernels import missing_kernels
        def loads(model: bytes) -> bool:
            try:
                with quiet():
                    ort.InferenceSession(model, sess_options=options, providers=[(self.provider, self.provider_options)])
            except Exception:  # noqa: BLE001  (any failure: this node does not run here)
                return False
            return True

        missing = missing_kernels(onnx.load(str(path), load_external_data=False), loads)
        if missing:
            return RuntimeUnavailable(
                f"onnxruntime {ort.__version__} has no kernel for {', '.join(missing)} on {self.provider}"
                + (" or CPUExecutionProvider" if self.device != "cpu" else "")
                + " (each such node fails to load alone)")
        for fusion in dict.fromkeys(re.findall(r"\b(\w+Fusion)\b", str(error))):
            try:
                with quiet():
                    ort.InferenceSession(str(path), sess_options=options, disabled_optimizers=[fusion],
                                         providers=[(self.provider, self.provider_options)])
            except Exception:  # noqa: BLE001  (not this fusion's doing)
                continue
            # e.g. onnxruntime 1.30 fuses float64 Sigmoid·Mul into QuickGelu, which is float32-only
            return RuntimeUnavailable(
                f"onnxruntime {ort.__version__}'s graph optimisation {fusion} rewrites the graph into an op with "
                "no kernel for this dtype (the exported graph is standard ONNX and loads without it); with "
                f"default session options it does not load: {_first_line(str(error))}")
        return error

    def run(self, x: np.ndarray) -> np.ndarray:
        if x.dtype.name == "bfloat16":
            return self._run_bfloat16(x)
        assert self.session is not None  # loaded
        return self.session.run(None, {self.input_name: x}, self.run_options)[0]

    def _run_bfloat16(self, x: np.ndarray) -> np.ndarray:
        """onnxruntime's numpy bridge has no bfloat16: raw 16-bit words go in, the output is bound to
        host memory (onnxruntime copies it from the device) and its words are copied out."""
        import onnxruntime as ort
        from onnx import TensorProto
        value = ort.OrtValue.ortvalue_from_numpy_with_onnx_type(
            np.ascontiguousarray(x).view(np.uint16), TensorProto.BFLOAT16)
        assert self.session is not None  # loaded
        binding = self.session.io_binding()
        binding.bind_ortvalue_input(self.input_name, value)
        binding.bind_output(self.output_name, "cpu")
        self.session.run_with_iobinding(binding, self.run_options)
        (out,) = binding.get_outputs()
        shape = tuple(out.shape())
        words = (ctypes.c_uint16 * int(np.prod(shape))).from_address(out.data_ptr())
        return np.frombuffer(words, np.uint16).copy().view(x.dtype).reshape(shape)

    def prepare(self, x: np.ndarray) -> Callable[[], object]:
        """IO binding: the input is bound once (on the device), the output to an OrtValue allocated once.

        One run() first learns the output's shape and dtype. On CUDA the callable waits for the
        outputs (synchronize_outputs), so timing it includes the device work. Returns the callable;
        it returns the output OrtValue (`.numpy()` reads it back, except for bfloat16).
        """
        import onnxruntime as ort
        from onnx import TensorProto
        y = self.run(x)
        assert self.session is not None  # loaded
        device = "cuda" if self.device == "cuda" else "cpu"
        x = np.ascontiguousarray(x)
        if x.dtype.name == "bfloat16":
            # NOTE: no numpy bfloat16 in onnxruntime: a bfloat16 tensor is allocated on the device and
            # filled with the raw words (update_inplace copies bytes, whatever the numpy dtype says).
            value = ort.OrtValue.ortvalue_from_shape_and_type(list(x.shape), TensorProto.BFLOAT16, device, 0)
            value.update_inplace(x.view(np.uint16))
            out = ort.OrtValue.ortvalue_from_shape_and_type(list(y.shape), TensorProto.BFLOAT16, device, 0)
        else:
            value = ort.OrtValue.ortvalue_from_numpy(x, device, 0)
            out = ort.OrtValue.ortvalue_from_shape_and_type(list(y.shape), y.dtype.type, device, 0)
        binding = self.session.io_binding()
        binding.bind_ortvalue_input(self.input_name, value)
        binding.bind_ortvalue_output(self.output_name, out)
        binding.synchronize_inputs()
        session, sync, run_options = self.session, device != "cpu", self.run_options

        # NOTE: `held` keeps the host array and its OrtValue alive as long as the binding points at them.
        def call(held: tuple = (x, value)) -> object:
            session.run_with_iobinding(binding, run_options)
            if sync:
                binding.synchronize_outputs()
            return out

        call()
        return call

    def close(self) -> None:
        self.session = None


def node_placements(log: str) -> dict[str, list[str]]:
    """Which provider runs which op types, from onnxruntime's verbose session log ("Node placements"):
    {provider: op types} (an empty list when the log gives only a count, as for "All nodes placed")."""
    placed: dict[str, list[str]] = {}
    lines = log.splitlines()
    for i, line in enumerate(lines):
        head = re.search(r"(?:All nodes|Node\(s\)) placed on \[(\w+)\]", line)
        if not head:
            continue
        ops = placed.setdefault(head.group(1), [])
        for following in lines[i + 1:]:  # "  OpType (node name)" lines, until the next log record
            node = re.fullmatch(r"\s+(\w+) \(.*\)\s*", following)
            if not node:
                break
            if node.group(1) not in ops:
                ops.append(node.group(1))
    return placed


def load_failure(log: str) -> list[str]:
    """Why a provider failed to load, from what onnxruntime's default logger printed (it ignores the
    session's log level): the library and the loader's error, and the CUDA/cuDNN versions it needs."""
    found = [f"{Path(lib).name}: {error.strip()}"
             for lib, error in re.findall(r"Failed to load library (\S+) with error: ([^\n]+)", log)[:1]]
    found += re.findall(r"Require cuDNN [0-9]+\.\* and CUDA [0-9]+\.\*", log)[:1]
    return found or [line.strip()[:300] for line in log.splitlines() if "fail" in line.lower()][:1]


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0][:300] if text.strip() else ""
