"""The commands behind the flags: each checks its arguments, calls the API and prints what it returned."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from pathlib import Path

from actexport import catalog
from actexport.catalog import DTYPES, UsageError
from actexport.formats import FORMATS
from actexport.report import FAILED, NO_ARTIFACT, NO_PROVIDER, OK
from actexport.status import Stage


def _all_dtypes(value: str) -> str:
    return ",".join(DTYPES) if value.strip() == "all" else value


def user_module(args: argparse.Namespace):
    """The row of --module (None without it), checked before anything runs."""
    spec = getattr(args, "module", None)
    if spec is None:
        for flag in ("input_shape", "inputs", "input_range", "samples", "ulp", "atol"):
            if getattr(args, flag, None) is not None:
                raise UsageError(f"--{flag.replace('_', '-')} applies to --module only")
        return None
    from actexport.modules import activation, parse_shape

    if getattr(args, "all", False) or getattr(args, "ids", None):
        raise UsageError("give --module or activation ids/--all, not both")
    if args.input_shape is None or getattr(args, "inputs", None) or getattr(args, "samples", None):
        raise UsageError(f"bench --module {spec} times one float input: give --input-shape, e.g. --input-shape 4,32 "
                         "(--inputs and --samples are for verify, export and check)")
    if args.ulp is not None and args.ulp < 0 or args.atol is not None and not args.atol >= 0:
        raise UsageError("--ulp and --atol must be >= 0")
    shape, static = parse_shape(args.input_shape, args.dynamic_dims)
    return activation(spec, shape, static, args.ulp, args.atol)


def _ids(args: argparse.Namespace, allow_none: bool = False) -> list[str]:
    if getattr(args, "module", None):
        return [args.module.replace(":", ".")]
    if args.all and args.ids:
        raise UsageError("give activation ids or --all, not both")
    if not args.all and not args.ids and not allow_none:
        raise UsageError("name activation ids or --all; known: " + ", ".join(a.id for a in catalog.CATALOG))
    for i in args.ids:
        catalog.get(i)
    # --all names the whole catalog explicitly: with --artifacts, an activation missing from the
    # directory is then an error, whereas no ids at all means "whatever the manifest lists".
    return [a.id for a in catalog.CATALOG] if args.all else list(args.ids)


def _opsets(value: str | None, exporter: str) -> tuple[int, ...]:
    from actexport.exporters.onnx import DEFAULT_OPSET, check_opset
    if value is None:
        return (DEFAULT_OPSET,)
    opsets: list[int] = []
    for part in value.split(","):
        try:
            opset = int(part)
        except ValueError:
            raise UsageError(f"invalid opset {part.strip()!r}: give integers, e.g. --opset 18,21") from None
        check_opset(opset, exporter)
        if opset not in opsets:
            opsets.append(opset)
    return tuple(opsets)


def _sizes(value: str, flag: str) -> tuple[int, ...]:
    """'1e3,1e6' -> (1000, 1000000); each must be a whole number of elements >= 1."""
    sizes: list[int] = []
    for part in value.split(","):
        try:
            n = float(part)
        except ValueError:
            n = -1.0
        if not (n >= 1 and n == int(n) and n <= 1e10):
            raise UsageError(f"invalid {flag} size {part.strip()!r}: give whole element counts, e.g. {flag} 1e3,1e6")
        if int(n) not in sizes:
            sizes.append(int(n))
    return tuple(sizes)


def _shard(args: argparse.Namespace):
    """The --shard of the command line (None without one)."""
    from actexport.shards import Shard
    return None if args.shard is None else Shard.parse(args.shard)


def _check_workers(args: argparse.Namespace) -> None:
    from actexport.isolate import max_workers
    top = max_workers()
    if args.jobs is not None and not 1 <= args.jobs <= top:
        raise UsageError(f"invalid --jobs {args.jobs}: give a number of worker processes in 1..{top} "
                         "(each holds torch and onnxruntime, ~0.4 GB)")


def _cache(args: argparse.Namespace):
    """The export cache the flags ask for (None with --no-cache)."""
    from actexport.cache import ExportCache, default_root

    _check_workers(args)
    if args.no_cache:
        if args.cache_dir is not None:
            raise UsageError("give --cache-dir or --no-cache, not both")
        return None
    root = args.cache_dir or default_root()
    if args.cache_dir is not None:
        ExportCache.check_root(root)  # named by the user: an unusable one is an error
    return ExportCache(root)


def _check_output_file(path: Path | None, flag: str) -> None:
    if path is None:
        return
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir() or not parent.is_dir() or not os.access(parent, os.W_OK):
        raise UsageError(f"{flag} {str(path)!r}: cannot write a file there "
                         "(directory missing or not writable, or the path is a directory)")


def _check_outputs(args: argparse.Namespace) -> None:
    """verify's and check's output files, checked before anything runs (the model path's too)."""
    _check_output_file(args.json_path, "--json")
    _check_output_file(args.junit, "--junit")
    _check_html(args)


def _check_html(args: argparse.Namespace) -> None:
    html = getattr(args, "html", None)
    _check_output_file(html, "--html")
    if html is not None:
        from actexport.report.html import require
        require()


def _progress(console, total: int | None):
    """A progress bar on a terminal; nothing elsewhere (CI logs stay readable)."""
    if not console.is_terminal:
        return contextlib.nullcontext(None)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    bar = Progress(TextColumn("{task.description:<40}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   console=console, transient=True)

    @contextlib.contextmanager
    def run():
        with bar:
            task = bar.add_task("starting", total=total)
            yield lambda label: bar.update(task, advance=1, description=label)

    return run()


def cmd_list(args: argparse.Namespace, out) -> int:
    rows = [{"id": a.id, "module": a.module_repr, "formula": a.formula} for a in catalog.CATALOG]
    if args.json:
        out.print_json(json.dumps(rows))
        return OK
    from rich.table import Table
    table = Table("id", "module", "formula")
    for r in rows:
        table.add_row(r["id"], r["module"], r["formula"])
    out.print(table)
    return OK


def cmd_export(args: argparse.Namespace, out, err) -> int:
    from actexport.artifacts import export_all
    ids = _ids(args)
    formats = catalog.parse_list(args.formats, FORMATS, "format")
    dtypes = catalog.parse_list(_all_dtypes(args.dtypes), DTYPES, "dtype")
    opsets = _opsets(args.opset, args.exporter)
    acts = catalog.select(ids)
    units = [(a.id, d) for a in acts for d in dtypes]
    shard = _shard(args)
    if shard is not None:
        from actexport.shards import export_cost, pick
        units = pick(units, shard, lambda u: export_cost(u, formats), "activation x dtype units")
    cache = _cache(args)
    with _progress(err, len(units) * len(formats)) as tick:
        results = export_all(acts, formats, dtypes, args.out, opsets, args.exporter, progress=tick,
                             cache=cache, workers=args.jobs, isolate=not args.in_process, timeout=args.timeout,
                             units=set(units))
    from actexport.judge import Subject, declaration
    failed = 0
    for act, dtype, r in results:
        if r.ok:
            continue
        declared = r.error and r.stage == Stage.EXPORT and declaration(act, Subject(r.format, None, dtype, r.onnx),
                                                                   no_artifact=True)
        failed += bool(r.error) and not declared
        status = "unavailable" if r.unavailable else ("xfail (declared)" if declared else "error")
        detail = f"{declared.reason} [{r.error}]" if declared else (r.unavailable or r.error)
        err.print(f"{act.id} / {r.format} / {dtype}: {status}: {detail}", highlight=False, markup=False,
                  soft_wrap=True)
    produced = sum(r.ok for _, _, r in results)
    share = f" (shard {shard}: {len(units)} activation x dtype units)" if shard else ""
    out.print(f"wrote {produced} artifacts and {args.out / 'manifest.json'}{share}; {failed} failed", highlight=False,
              markup=False, soft_wrap=True)
    return NO_ARTIFACT if failed else OK


def cmd_bench(args: argparse.Namespace, out, err) -> int:
    from actexport.bench import bench, plan_size

    ids = _ids(args)
    formats = catalog.parse_list(args.formats, FORMATS, "format")
    from actexport.runtimes import DEVICES
    providers = catalog.parse_list(args.providers, DEVICES, "provider")
    dtypes = catalog.parse_list(args.dtype, DTYPES, "dtype")
    if len(dtypes) != 1:
        raise UsageError(f"--dtype takes one dtype; valid: {', '.join(DTYPES)}")
    sizes = _sizes(args.sizes, "--sizes")
    opsets = _opsets(args.opset, args.exporter)
    if len(opsets) != 1:
        raise UsageError("bench takes one --opset")
    if args.threads is not None and args.threads < 1:
        raise UsageError(f"invalid --threads {args.threads}: give a number of threads >= 1")
    _check_output_file(args.json_path, "--json")
    _check_output_file(args.plot, "--plot")
    if args.plot is not None:
        _needs_matplotlib()
    _check_html(args)
    if "cuda" in providers:  # asked for by name: a provider that cannot run is exit 4, as in verify
        from actexport.verify import Options, check_providers
        check_providers(Options(formats=formats, providers=providers, providers_explicit=True))
    shard, everything = _shard(args), ids
    if shard is not None:
        from actexport.shards import bench_cost, pick
        ids = pick(ids, shard, lambda i: bench_cost(i, formats, dtypes[0]), "activations")
    cache = _cache(args)
    with _progress(err, plan_size(ids, formats, providers, sizes)) as tick:
        report = bench(ids, formats, providers, sizes, dtypes[0], args.threads, opsets[0], args.exporter, progress=tick,
                       cache=cache, workers=args.jobs, save_optimized=args.save_optimized,
                       isolate=not args.in_process, timeout=args.timeout)
    if shard is not None:
        from actexport.shards import record
        report.environment["shard"] = record(shard, ids, everything, sum(bench_cost(i, formats, dtypes[0]) for i in ids))
    report.render(out)
    if args.json_path:
        report.write_json(args.json_path)
    if args.plot:
        report.write_plot(args.plot)
    if args.html:
        report.write_html(args.html)
    if report.provider_problems:  # as verify: a provider asked for by name that did not run is exit 4
        print(f"actexport: error: --providers {args.providers}: {report.provider_problems[0]}", file=sys.stderr)
        return NO_PROVIDER
    return FAILED if any(r.status == "error" for r in report.rows) else OK


def _needs_matplotlib() -> None:
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:
        raise UsageError("--plot needs matplotlib: pip install 'actexport[bench]'")


def cmd_verify(args: argparse.Namespace, out, err) -> int:
    from actexport.runtimes import DEVICES
    from actexport.verify import Options, plan_size, verify
    ids = _ids(args, allow_none=args.artifacts is not None)
    options = Options(
        formats=catalog.parse_list(args.formats, FORMATS, "format"),
        providers=catalog.parse_list(args.providers or "cpu", DEVICES, "provider"),
        dtypes=catalog.parse_list(_all_dtypes(args.dtypes), DTYPES, "dtype"),
        opsets=_opsets(args.opset, args.exporter),
        exporter=args.exporter,
        providers_explicit=args.providers is not None,
        reference=not args.no_reference,
        latency=_sizes(args.latency, "--latency") if args.latency else (),
        isolate=not args.in_process,
        timeout=args.timeout,
        shard=_shard(args),
    )
    _check_outputs(args)
    cache = _cache(args)
    with _progress(err, plan_size(ids, options)) as tick:
        report = verify(ids, options, artifacts_dir=args.artifacts, progress=tick, cache=cache,
                        workers=args.jobs)
    return _emit(report, args, out, err)


def cmd_check(args: argparse.Namespace, out, err) -> int:
    from actexport.check import check

    _check_outputs(args)
    _check_workers(args)
    report = check(args.dir, workers=args.jobs, isolate=not args.in_process, timeout=args.timeout)
    return _emit(report, args, out, err)


def cmd_merge(args: argparse.Namespace, out, err) -> int:
    from actexport.merge import merge

    _check_outputs(args)
    return _emit(merge(args.reports), args, out, err)


def _emit(report, args: argparse.Namespace, out, err) -> int:
    """Prints a verify report as the flags ask, writes its JSON, JUnit and HTML, returns its exit code."""
    if args.quiet:
        for c in report.cells:
            if c.status in ("fail", "error", "xpass"):
                out.print(f"{c.key}: {c.status}: {c.reason}", highlight=False, markup=False, soft_wrap=True)
        for problem in report.problems:
            out.print(f"problem: {problem}", highlight=False, markup=False, soft_wrap=True)
        out.print(report.summary_line(), highlight=False, markup=False, soft_wrap=True)
    else:  # --explain: every cell that did not pass in full, not one line per kind
        report.render(out, full=getattr(args, "explain", False))
    if getattr(args, "explain", False):
        report.explain(out)
    for warning in report.environment.get("warnings", []):
        err.print(f"warning: {warning}", highlight=False, markup=False)
    if args.json_path:
        report.write_json(args.json_path)
    if args.junit:
        report.write_junit(args.junit)
    if getattr(args, "html", None):
        report.write_html(args.html)
    return report.exit_code()


def cmd_graphs(args: argparse.Namespace, out, err) -> int:
    from actexport.exporters.onnx import DEFAULT_OPSET, check_opset
    from actexport.sidebyside import compare
    ids = list(args.ids) or None
    catalog.select(ids)  # unknown ids are a usage error before anything runs
    opset = DEFAULT_OPSET if args.opset is None else args.opset
    check_opset(opset, "dynamo")
    dtypes = catalog.parse_list(_all_dtypes(args.dtypes), DTYPES, "dtype")
    sizes = _sizes(args.sizes, "--sizes")
    _check_output_file(args.json_path, "--json")
    cache = _cache(args)
    with _progress(err, None) as tick:
        report = compare(ids, opset, sizes, dtypes, cache=cache, workers=args.jobs, isolate=not args.in_process,
                         timeout=args.timeout, progress=tick)
    report.render(out)
    if args.json_path:
        report.write_json(args.json_path)
    return OK if report.agrees else FAILED
