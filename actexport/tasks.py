"""What worker processes run (see isolate.py): one export, one cell, one graph analysis.

Each function takes picklable arguments, never raises for an expected failure, and returns a typed
outcome: Ran (the outputs), NotRun (unavailable or error, at which stage, why), Exported, or
Elsewhere when the worker would not build the caller's module.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from actexport.files import error_text
from actexport.status import Stage, Status

if TYPE_CHECKING:
    from actexport.catalog import Activation
    from actexport.exporters import ExportResult


@dataclass(frozen=True)
class Ran:
    """A cell's runtime ran every input: its outputs, where it ran, the settings it ran with, and
    (graph analysis only) the graph as exported and as onnxruntime optimised it."""

    values: list[np.ndarray]
    ran_on: str = ""
    settings: dict = field(default_factory=dict)
    graph: dict | None = None


@dataclass(frozen=True)
class NotRun:
    """A cell that did not run: unavailable or error, at the provider, load or run stage."""

    status: Status
    stage: Stage
    reason: str


@dataclass(frozen=True)
class Exported:
    result: ExportResult


@dataclass(frozen=True)
class Elsewhere:
    """The worker's row differs from the caller's (a test patched it there): run it in the caller."""


NOT_HERE = Elsewhere()


def row(act_id: str, recipe: tuple | None):
    """The catalog row `act_id`, or a user module's row rebuilt from its recipe."""
    from actexport import catalog
    from actexport.modules import from_recipe

    return from_recipe(recipe) if recipe is not None else catalog.get(act_id)


def _act(act_id: str, key: str | None, recipe: tuple | None = None):
    """The row, or None when it does not build the module `key` describes: a row changed in the
    caller's process only (a test's patch) must run there."""
    from actexport.cache import module_digest

    act = row(act_id, recipe)
    return act if key is None or module_digest(act) == key else None


def export(act_id: str, key: str, format: str, dtype: str, path: Path, opset: int, exporter: str,
           recipe: tuple | None = None):
    from actexport import cache as ec

    act = row(act_id, recipe)
    if ec.key(act, format, dtype, opset, exporter) != key:
        return NOT_HERE
    return Exported(export_one(act, format, dtype, path, opset, exporter))


def export_one(act: Activation, format: str, dtype: str, path: Path, opset: int, exporter: str) -> ExportResult:
    """Exports one activation to one format at `path`; returns the result, never raises."""
    from actexport.formats import format_of
    return format_of(format).export(act, dtype, path, opset, exporter)


def eager(act_id: str, module_key: str | None, dtype: str, device: str, inputs: list[np.ndarray], act=None,
          recipe: tuple | None = None, shapes: list[tuple] | None = None):
    """Eager PyTorch on every input (`act` given: this process already has the row), whose outputs must
    have `shapes` when given."""
    from actexport.runtimes.eager import EagerRuntime

    act = act or _act(act_id, module_key, recipe)
    if act is None:
        return NOT_HERE
    try:
        rt = EagerRuntime(act, dtype, device)
        reason = rt.unavailable()
        if reason:
            return NotRun(Status.UNAVAILABLE, Stage.LOAD, reason)
        values, wrong = _outputs(rt.infer, inputs, shapes, f"eager:{device}")
        if wrong:
            return NotRun(Status.ERROR, Stage.RUN, wrong)
        return Ran(values, device, rt.settings or {})
    except Exception as e:  # noqa: BLE001
        return NotRun(Status.UNAVAILABLE, Stage.RUN,
                      f"eager PyTorch cannot run {act_id} in {dtype} on {device}: {error_text(e)}")


def _outputs(run, inputs: list[np.ndarray], shapes: list[tuple] | None, name: str):
    """run(x) for every input, stopping at the first output whose shape is not the expected one: an
    artifact from elsewhere can return anything, and what it returns must not reach the caller whole."""
    out = []
    for n, x in enumerate(inputs):
        y = run(x)
        if shapes is not None and tuple(y.shape) != tuple(shapes[n]):
            return None, f"{name} returned shape {list(y.shape)} where the reference has {list(shapes[n])}"
        out.append(y)
    return out, None


def runtime(format: str, name: str, device: str, path: Path, inputs: list[np.ndarray], ort_threads: int | None,
            shapes: list[tuple] | None = None):
    """Loads the artifact at `path` in the runtime called `name` and runs every input (whose outputs
    must have `shapes`, when given)."""
    from actexport.runtimes import ProviderMissing, RuntimeUnavailable, named

    try:
        rt = named(format, name, device, ort_threads)
    except RuntimeUnavailable as e:
        return NotRun(Status.ERROR, Stage.LOAD, str(e))
    reason = rt.provider_unavailable()
    if reason:  # the provider or device, not this artifact (exit 4 when asked for by name)
        return NotRun(Status.UNAVAILABLE, Stage.PROVIDER, reason)
    reason = rt.unavailable()
    if reason:
        return NotRun(Status.UNAVAILABLE, Stage.LOAD, reason)
    stage = Stage.LOAD
    try:
        rt.load(Path(path))
        stage = Stage.RUN
        values, wrong = _outputs(rt.infer, inputs, shapes, name)
        if wrong:
            return NotRun(Status.ERROR, stage, wrong)
        return Ran(values, rt.ran_on, rt.settings or {})
    except ProviderMissing as e:
        return NotRun(Status.UNAVAILABLE, Stage.PROVIDER, str(e))
    except RuntimeUnavailable as e:
        return NotRun(Status.UNAVAILABLE, stage, str(e))
    except Exception as e:  # noqa: BLE001  (one broken cell must not stop the matrix)
        return NotRun(Status.ERROR, stage, f"{error_text(e, 300)}")
    finally:
        rt.close()


def optimisation(path: Path, inputs: list[np.ndarray], ort_threads: int | None, shapes: list[tuple] | None = None):
    """The graph as exported and as onnxruntime optimises it, and the unoptimised graph's outputs."""
    from actexport.graphs import analyse
    from actexport.runtimes.onnxrt import OrtRuntime

    try:
        graph = analyse(Path(path))
        with OrtRuntime("cpu", intra_op_threads=ort_threads, optimization="disable") as rt:
            rt.load(Path(path))
            values, wrong = _outputs(rt.infer, inputs, shapes, "the unoptimised graph")
            if wrong:
                return NotRun(Status.ERROR, Stage.RUN, wrong)
            return Ran(values, graph=graph)
    except Exception as e:  # noqa: BLE001  (a diagnostic: it never fails the cell)
        return NotRun(Status.ERROR, Stage.RUN, f"{error_text(e, 300)}")
