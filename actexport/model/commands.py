"""`verify`, `export` and `check` with --module: the flags to a Model and ModelOptions, then the run."""

from __future__ import annotations

import argparse
from pathlib import Path

from actexport import catalog
from actexport.catalog import DTYPES, UsageError
from actexport.formats import FORMATS, takes_opset
from actexport.model.spec import Model, load, load_samples, parse_range
from actexport.model.verify import ModelOptions, verify_model
from actexport.report import NO_ARTIFACT, OK, Report


MODEL_STEPS = 20  # a model run's exports, runtimes and diagnoses, each bounded by --timeout


def model_of(args: argparse.Namespace) -> Model:
    if getattr(args, "all", False) or getattr(args, "ids", None):
        raise UsageError("give --module or activation ids/--all, not both")
    for flag in ("ulp", "atol"):
        if getattr(args, flag, None) is not None:
            raise UsageError(f"--{flag} applies to bench --module; a model is judged at each output's scale against "
                             "eager PyTorch (README, 'How a model is judged')")
    return load(args.module, getattr(args, "inputs", None), getattr(args, "input_shape", None),
                getattr(args, "dynamic_dims", "0"), parse_range(getattr(args, "input_range", None)))


def _options(args: argparse.Namespace, model: Model, **kw) -> ModelOptions:
    from actexport.commands import _all_dtypes, _opsets
    from actexport.runtimes import DEVICES
    samples = load_samples(model, args.samples) if getattr(args, "samples", None) else ()
    # NOTE: `check` has no selection flags (its manifest selects): getattr gives it the defaults
    exporter = getattr(args, "exporter", None) or ModelOptions.exporter
    return ModelOptions(
        formats=catalog.parse_list(getattr(args, "formats", None) or ",".join(FORMATS), FORMATS, "format"),
        providers=catalog.parse_list(getattr(args, "providers", None) or "cpu", DEVICES, "provider"),
        dtypes=catalog.parse_list(_all_dtypes(getattr(args, "dtypes", None) or "float32"), DTYPES, "dtype"),
        opsets=_opsets(getattr(args, "opset", None), exporter), exporter=exporter,
        providers_explicit=getattr(args, "providers", None) is not None,
        reference=not getattr(args, "no_reference", False), samples=samples, **kw)


def cmd_verify(args: argparse.Namespace, model: Model, out, err) -> int:
    from actexport.commands import _check_outputs, _emit, _progress
    _check_outputs(args)
    if args.artifacts is not None:
        return _check(model, args.artifacts, args, out, err)
    options = _options(args, model)
    with _progress(err, None) as tick:
        report = verify_model(model, options, progress=tick)
    return _emit(report, args, out, err)


def cmd_check(args: argparse.Namespace, model: Model, out, err) -> int:
    from actexport.commands import _check_outputs
    _check_outputs(args)
    return _check(model, args.dir, args, out, err)


def _check(model: Model, dir: Path, args: argparse.Namespace, out, err) -> int:
    """The artifacts of `model` deployed in `dir`, as listed in its manifest, and nothing else there."""
    from actexport import artifacts as art
    from actexport.check import extra_files
    from actexport.commands import _emit
    manifest = art.read_manifest(Path(dir))
    entries = [e for e in manifest["artifacts"] if e.get("id") == model.id]
    if not entries:
        raise UsageError(f"{dir}/manifest.json lists no artifact of {model.id}; it lists "
                         f"{', '.join(sorted({str(e.get('id')) for e in manifest['artifacts']})) or 'none'}")
    opsets = tuple(dict.fromkeys(int(e["opset"]) for e in entries if takes_opset(e["format"]) and e.get("opset")))
    from dataclasses import replace
    # what the manifest lists decides what is checked; the rest (providers, onnx.reference, samples)
    # is the command line's
    options = replace(_options(args, model), formats=tuple(dict.fromkeys(e["format"] for e in entries)),
                      dtypes=tuple(dict.fromkeys(e["dtype"] for e in entries)), opsets=opsets or (18,))
    report = verify_model(model, options, artifacts_dir=Path(dir))
    report.problems = [f"{Path(dir) / rel}: not listed in {Path(dir) / art.MANIFEST}"
                       for rel in extra_files(Path(dir), manifest)]
    return _emit(report, args, out, err)


def cmd_export(args: argparse.Namespace, model: Model, out, err) -> int:
    """Each (dtype, format, opset) artifact of the model, published with the manifest all at once."""
    from actexport.artifacts import MANIFEST, artifact_path, entry, put_out, staging
    from actexport.model.export import export
    options = _options(args, model)
    out_dir = Path(args.out)
    failed, produced = 0, 0
    with staging(out_dir) as staged:
        entries = []
        for dtype in options.dtypes:
            for fmt in options.formats:
                for n, opset in enumerate(options.opsets if takes_opset(fmt) else options.opsets[:1]):
                    path = artifact_path(staged, model, fmt, dtype, None if n == 0 else opset)
                    r = export(model, fmt, dtype, path, opset, options.exporter)
                    if r.ok:
                        entries.append(entry(model, r, dtype, staged))
                        produced += 1
                        continue
                    failed += bool(r.error)
                    status = "unavailable" if r.unavailable else "error"
                    err.print(f"{model.id} / {fmt} / {dtype}: {status}: {r.unavailable or r.error}", highlight=False,
                              markup=False, soft_wrap=True)
        put_out(out_dir, staged, entries)
    out.print(f"wrote {produced} artifacts and {out_dir / MANIFEST}; {failed} failed", highlight=False, markup=False,
              soft_wrap=True)
    return NO_ARTIFACT if failed else OK


__all__ = ["Report", "cmd_check", "cmd_export", "cmd_verify"]
