"""actexport in your own tests: assert that a module exports, and that every artifact still computes
what the module computes.

    import torch
    from actexport.testing import assert_exports

    from mypackage import MyModel


    def test_my_model_exports():
        model = MyModel().eval()
        assert_exports(model, {"input_ids": torch.randint(0, 1000, (2, 16))})

It is `actexport verify --module` on a module instance: the same batteries, criterion, catalog
declarations and report, and a failing assertion's message is what the command line prints. The
fixture `actexport_exports` (registered with pytest by the package) is the same function, keeping
each report's JSON in the test's tmp_path.

Nothing heavy is imported until the function is called: pytest loads this module in every session.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import nn

    from actexport.report import Report

DEFAULT_FORMATS = ("onnx", "torchscript", "pt2")


class ExportMismatch(AssertionError):
    """An artifact of the module does not pass: the message is the verify report."""


def assert_exports(module: nn.Module, inputs: Any, *, formats: tuple[str, ...] = DEFAULT_FORMATS,
                   providers: tuple[str, ...] = ("cpu",), dtypes: tuple[str, ...] = ("float32",),
                   opset: int | None = None, exporter: str | None = None, dynamic_dims: str = "0",
                   input_range: tuple[float, float] | None = None, json: str | Path | None = None) -> Report:
    """Exports `module` to each format and judges every runtime on its outputs; returns the report.

    inputs: the example inputs, as `--inputs` returns them (a tensor, a tuple of tensors or a dict of
    keyword tensors). Raises ExportMismatch (an AssertionError) when the report's exit code is not 0:
    a failing cell, an error, or a provider asked for that does not run.
    """
    from rich.console import Console

    from actexport import catalog
    from actexport.catalog import DTYPES
    from actexport.exporters.onnx import DEFAULT_EXPORTER, DEFAULT_OPSET, OnnxExporter
    from actexport.formats import FORMATS
    from actexport.model.spec import from_objects
    from actexport.model.verify import ModelOptions, verify_model
    from actexport.runtimes import DEVICES

    formats, providers, dtypes = ((v,) if isinstance(v, str) else tuple(v) for v in (formats, providers, dtypes))
    options = ModelOptions(
        formats=catalog.parse_list(",".join(formats), FORMATS, "format"),
        providers=catalog.parse_list(",".join(providers), DEVICES, "provider"),
        dtypes=catalog.parse_list(",".join(dtypes), DTYPES, "dtype"),
        opsets=(opset or DEFAULT_OPSET,),
        exporter=OnnxExporter.of(exporter).key if exporter else DEFAULT_EXPORTER,
        providers_explicit=tuple(providers) != ("cpu",),
    )
    report = verify_model(from_objects(module, inputs, dynamic_dims, input_range), options)
    if json is not None:
        report.write_json(Path(json))
    if report.exit_code() != 0:
        text = io.StringIO()
        report.render(Console(file=text, width=160, color_system=None))
        raise ExportMismatch("\n" + text.getvalue())
    return report


try:
    import pytest
except ImportError:  # assert_exports works without pytest; the fixture needs it
    pytest = None  # type: ignore[assignment]

if pytest is not None:
    @pytest.fixture
    def actexport_exports(tmp_path):
        """assert_exports, writing each report's JSON to tmp_path/actexport-<n>.json."""
        count = iter(range(1_000_000))

        def check(module, inputs, **kw):
            kw.setdefault("json", tmp_path / f"actexport-{next(count)}.json")
            return assert_exports(module, inputs, **kw)

        return check
