"""ONNX export through torch.onnx.export (the dynamo exporter, or the legacy one while it exists)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from actexport.catalog import Activation, UsageError
from actexport.exporters import ExportResult, dynamic_dims, guarded
from actexport.files import atomic_write
from actexport.inputs import example, torch_dtype

EXPORTERS = ("dynamo", "legacy")
DEFAULT_OPSET = 18
DEFAULT_EXPORTER = "dynamo+actexport"  # OnnxExporter.of("dynamo").key: the dynamo exporter with actexport's graphs


@dataclass(frozen=True)
class OnnxExporter:
    """A torch.onnx exporter and the graph profile it exports with (translations.py)."""

    base: str  # torch.onnx's exporter: "dynamo" or "legacy"
    graphs: str  # the graph profile: "stock" (torch.onnx as is), "actexport" or "candidates"

    @classmethod
    def of(cls, base: str, graphs: str | None = None) -> OnnxExporter:
        """A valid exporter; graphs None: the default profile for `base`. UsageError otherwise."""
        from actexport.translations import DEFAULT_PROFILE, check_profile
        if base not in EXPORTERS:
            raise UsageError(f"unknown exporter {base!r}; valid: {', '.join(EXPORTERS)}")
        if graphs is None:
            graphs = DEFAULT_PROFILE if base == "dynamo" else "stock"
        check_profile(graphs)
        if graphs != "stock" and base != "dynamo":
            raise UsageError(f"--graphs {graphs} needs the dynamo exporter (custom translations); "
                             "the legacy exporter only has --graphs stock")
        return cls(base, graphs)

    # NOTE: the key is how the exporter travels through options, jobs, worker tasks and cache keys:
    # one string, so that the profile needs no second parameter and the cache keys stay as they are.
    @classmethod
    def parse(cls, key: str) -> OnnxExporter:
        """The exporter of a key written by `key`."""
        base, _, graphs = key.partition("+")
        return cls(base, graphs or "stock")

    @property
    def key(self) -> str:
        """The compact form: "dynamo+actexport", or the bare exporter for torch.onnx's stock graphs ("legacy")."""
        return self.base if self.graphs == "stock" else f"{self.base}+{self.graphs}"

    @property
    def label(self) -> str:
        """How results and manifests name it: "torch.onnx.export(dynamo=True) + actexport graphs"."""
        return f"torch.onnx.export(dynamo={self.base == 'dynamo'})" + (
            "" if self.graphs == "stock" else f" + {self.graphs} graphs")


def label(exporter: str) -> str:
    """The label of an exporter key (the formats' protocol, formats.py)."""
    return OnnxExporter.parse(exporter).label


def opset_range(exporter: str) -> tuple[int, int]:
    """The opsets torch.onnx accepts for an exporter, read from the installed torch."""
    from torch.onnx import _constants as c
    max_opset = int(getattr(c, "ONNX_MAX_OPSET", 23))
    if exporter == "legacy":
        return int(getattr(c, "ONNX_MIN_OPSET", 7)), int(
            getattr(c, "ONNX_TORCHSCRIPT_EXPORTER_MAX_OPSET", 20)
        )
    # NOTE: the dynamo exporter builds graphs at opset 18 (onnxscript's torchlib) and converts to
    # others with the ONNX version converter, which is only reliable upwards.
    return 18, max_opset


def check_opset(opset: int, exporter: str) -> None:
    exporter = OnnxExporter.parse(exporter).base
    if exporter not in EXPORTERS:
        raise UsageError(f"unknown exporter {exporter!r}; valid: {', '.join(EXPORTERS)}")
    lo, hi = opset_range(exporter)
    if not lo <= opset <= hi:
        raise UsageError(f"invalid opset {opset} for the {exporter} exporter; valid: {lo}..{hi}")


_REGISTRIES: dict[int, object] = {}  # opset -> torch.onnx's registry of torchlib functions, built once


@contextlib.contextmanager
def _registry_built_once():
    """While active, torch.onnx's dynamo exporter reuses one torchlib registry per opset.

    torch.onnx rebuilds that registry on every export (~0.4 s here: onnxscript re-parses the
    source of ~500 torchlib functions), which is most of an activation's export time. Each export
    gets its own copy of the function lists, because custom translations are added to them. The
    patch is undone on exit, and skipped when torch's private layout is not the one expected (the
    export is then as slow as torch makes it, never different).
    """
    try:
        from torch.onnx._internal.exporter import _registration
        cls = _registration.ONNXRegistry
        original = cls.__dict__["from_torchlib"]
    except (ImportError, AttributeError, KeyError):
        yield
        return

    def from_torchlib(klass, opset_version=18):
        built = _REGISTRIES.get(opset_version)
        if built is None:
            built = _REGISTRIES[opset_version] = original.__func__(klass, opset_version=opset_version)
        fresh = klass()
        fresh._opset_version = built._opset_version
        fresh.functions = {target: list(metas) for target, metas in built.functions.items()}
        return fresh

    if not isinstance(original, classmethod) or not hasattr(cls(), "functions"):
        yield
        return
    cls.from_torchlib = classmethod(from_torchlib)
    try:
        yield
    finally:
        cls.from_torchlib = original


def _value_info(vi) -> dict:
    import onnx
    t = vi.type.tensor_type
    dims = [d.dim_param if d.dim_param else int(d.dim_value) for d in t.shape.dim]
    return {"name": vi.name, "dtype": onnx.helper.tensor_dtype_to_np_dtype(t.elem_type).name, "shape": dims}


def export(act: Activation, dtype: str, path: Path, opset: int = DEFAULT_OPSET, exporter: str = "dynamo") -> ExportResult:
    made_by = OnnxExporter.parse(exporter)
    name = made_by.label
    exporter, graphs = made_by.base, made_by.graphs
    if exporter == "legacy" and not _legacy_available():
        return ExportResult("onnx", None, name, unavailable=f"torch {torch.__version__} has no legacy ONNX exporter",
                            onnx=made_by)

    def run() -> ExportResult:
        import onnx
        module = act.module().to(torch_dtype(dtype))
        x = example(act, dtype)
        dims = dynamic_dims(act.shape, act.static_dims)
        used: list[str] = []
        if graphs != "stock":
            from actexport import translations
            plan = translations.plan(module, dtype, opset, graphs)
            module, used = plan.module, plan.used

        def write(tmp: Path) -> None:
            if exporter == "dynamo":
                shapes = ({i: torch.export.Dim.AUTO for i in dims},)
                with _registry_built_once():
                    torch.onnx.export(module, (x,), str(tmp), dynamo=True, opset_version=opset,
                                      dynamic_shapes=shapes, input_names=["input"], output_names=["output"],
                                      external_data=False)
            else:
                axes = {i: f"d{i}" for i in dims}
                torch.onnx.export(module, (x,), str(tmp), dynamo=False, opset_version=opset,
                                  input_names=["input"], output_names=["output"],
                                  dynamic_axes={"input": axes, "output": {i: f"o{i}" for i in dims}})
            model = onnx.load(str(tmp))
            onnx.checker.check_model(model, full_check=True)
            onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)

        atomic_write(path, write)
        model = onnx.load(str(path))
        real_opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
        return ExportResult(
            "onnx", path, name, opset=int(real_opset),
            inputs=tuple(_value_info(v) for v in model.graph.input),
            outputs=tuple(_value_info(v) for v in model.graph.output),
            details={"op_types": sorted({n.op_type for n in model.graph.node}), "nodes": len(model.graph.node),
                     "graphs": graphs, "translations": sorted(set(used))},
        )

    result = replace(guarded("onnx", name, run), onnx=made_by)
    if result.error and "has unsupported type: tensor(" in result.error:
        # NOTE: the ONNX opset defines no kernel of this op for this dtype (bfloat16 Elu, say): the
        # format cannot express the model, which is "unavailable", not a failure of the exporter.
        return replace(result, error=None, unavailable=f"ONNX opset {opset} cannot express this model in "
                       f"{dtype}: {result.error}")
    return result


def _legacy_available() -> bool:
    try:
        from torch.onnx import utils  # noqa: F401
    except ImportError:
        return False
    return True
