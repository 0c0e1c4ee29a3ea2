"""verify's options: what a run covers, checked before anything runs; its size and environment."""

from __future__ import annotations

from dataclasses import dataclass

from actexport import artifacts as art
from actexport.catalog import DTYPES, UsageError, select
from actexport.exporters.onnx import DEFAULT_EXPORTER, DEFAULT_OPSET, check_opset
from actexport.formats import FORMATS, takes_opset
from actexport.isolate import DEFAULT_TIMEOUT
from actexport.runtimes import DEVICES, for_format
from actexport.shards import Shard, Unit, pick, verify_cost

# NOTE: one onnxruntime thread a cell: the worker processes already use every core between them.
VERIFY_ORT_THREADS = 1


class ProviderUnavailable(RuntimeError):
    """A provider the user asked for explicitly cannot run here (exit code 4)."""


@dataclass(frozen=True)
class Options:
    formats: tuple[str, ...] = FORMATS
    providers: tuple[str, ...] = ("cpu",)
    dtypes: tuple[str, ...] = ("float32",)
    opsets: tuple[int, ...] = (DEFAULT_OPSET,)
    exporter: str = DEFAULT_EXPORTER
    providers_explicit: bool = False
    reference: bool = True  # run onnx.reference on every ONNX artifact (the third vote)
    latency: tuple[int, ...] = ()  # sizes to time every artifact at, as `bench` does (none: no timing)
    isolate: bool = True  # run exports and cells in worker processes (a crash or hang fails one cell)
    listed_only: bool = False  # with artifacts_dir: combinations the manifest does not list are skipped
    timeout: float = DEFAULT_TIMEOUT  # seconds one export or one cell may take
    shard: Shard | None = None  # run only this share of the activation x dtype units (shards.py)

    def validate(self) -> None:
        for what, values, valid in (("format", self.formats, FORMATS), ("provider", self.providers, DEVICES),
                                    ("dtype", self.dtypes, DTYPES)):
            if not values:
                raise UsageError(f"no {what} given; valid: {', '.join(valid)}")
            bad = [v for v in values if v not in valid]
            if bad:
                raise UsageError(f"unknown {what} {bad[0]!r}; valid: {', '.join(valid)}")
        if any(takes_opset(f) for f in self.formats):
            if not self.opsets:
                raise UsageError("no opset given")
            for opset in self.opsets:
                check_opset(opset, self.exporter)
        if self.shard is not None and self.latency:
            # NOTE: latency figures are comparable within one machine only: shards run on several.
            raise UsageError("--latency times artifacts on one machine: give it without --shard")

    def units(self, ids: list[str]) -> list[Unit]:
        """The activation x dtype units of `ids` this run covers: all of them, or its shard's."""
        units = [(i, d) for i in ids for d in self.dtypes]
        if self.shard is None:
            return units
        return pick(units, self.shard, lambda u: verify_cost(u, self.formats), "activation x dtype units")


def check_providers(options: Options) -> None:
    """Raises ProviderUnavailable when an explicitly requested provider cannot run a format asked for."""
    if not options.providers_explicit:
        return
    for fmt in options.formats:
        for rt in for_format(fmt, options.providers, reference=False):
            reason = rt.provider_unavailable()
            if reason and rt.device != "cpu":
                raise ProviderUnavailable(f"--providers {rt.device}: {rt.name} is not available: {reason}")



def plan_size(ids: list[str] | None, options: Options) -> int:
    """Number of progress steps verify() will report (one per artifact and per cell)."""
    per_dtype = len(options.providers)  # eager rows
    for fmt in options.formats:
        opsets = len(options.opsets) if takes_opset(fmt) else 1
        runtimes = len(for_format(fmt, options.providers, reference=options.reference))
        per_dtype += opsets * (1 + runtimes)
    return len(options.units([a.id for a in select(ids)])) * per_dtype


def environment(options: Options) -> dict:
    from actexport.runtimes.onnxrt import double_install
    env: dict = {"versions": art.versions(), "options": {
        "formats": list(options.formats), "providers": list(options.providers), "dtypes": list(options.dtypes),
        "opsets": list(options.opsets), "exporter": options.exporter, "reference": options.reference}}
    try:
        import onnxruntime as ort
        env["onnxruntime_providers"] = ort.get_available_providers()
    except ImportError:
        env["onnxruntime_providers"] = []
    clash = double_install()
    if clash:
        env["warnings"] = [clash]
    return env
