"""Command line: parses flags and maps them onto the API; no logic of its own."""

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
from actexport.isolate import DEFAULT_TIMEOUT
from actexport.report import FAILED, NO_ARTIFACT, NO_PROVIDER, OK, USAGE


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, as for every other usage error
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="actexport", description="Export torch activations and verify the artifacts' numerics.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    ls = sub.add_parser("list", help="the catalog: id, torch module, formula")
    ls.add_argument("--json", action="store_true", help="print a JSON list of {id, module, formula}")

    def selection(sp: argparse.ArgumentParser, dtypes: bool = True) -> None:
        sp.add_argument("ids", nargs="*", metavar="ID", help="activation ids (see `actexport list`)")
        sp.add_argument("--all", action="store_true", help="every activation in the catalog")
        sp.add_argument("--formats", default=",".join(FORMATS), help=f"comma list of {', '.join(FORMATS)}")
        if dtypes:
            sp.add_argument("--dtypes", default="float32", help=f"comma list of {', '.join(DTYPES)}, or all")
        sp.add_argument("--opset", default=None, help="ONNX opset, or a comma list of opsets (default 18)")
        sp.add_argument("--exporter", default="dynamo", choices=("dynamo", "legacy"),
                        help="torch.onnx exporter: dynamo (default) or the deprecated legacy one")
        sp.add_argument("--graphs", default=None, metavar="PROFILE",
                        help="ONNX graphs: actexport (default with dynamo: actexport's faster, exact "
                        "translations where stock is slow or lossy; see README), stock (torch.onnx as is), or "
                        "candidates (also the translations the benchmark rejected)")
        sp.add_argument("--module", default=None, metavar="PKG.MOD:FACTORY",
                        help="your own torch.nn.Module factory instead of catalog ids (needs --input-shape)")
        sp.add_argument("--input-shape", default=None, metavar="D0,D1,...",
                        help="the example input shape of --module, e.g. 4,32")
        sp.add_argument("--dynamic-dims", default="0", metavar="DIMS",
                        help="dims of --input-shape left dynamic in the artifacts (default 0)")
        sp.add_argument("--ulp", type=int, default=None, help="--module: ULP budget (default per dtype, README)")
        sp.add_argument("--atol", type=float, default=None, help="--module: absolute floor (default per dtype)")
        workers(sp)

    def workers(sp: argparse.ArgumentParser) -> None:
        """The export cache and worker-process flags of every command that exports."""
        sp.add_argument("--cache-dir", type=Path, default=None,
                        help="export cache (default $ACTEXPORT_CACHE, else ~/.cache/actexport)")
        sp.add_argument("--no-cache", action="store_true", help="export everything afresh; read and write no cache")
        sp.add_argument("--jobs", type=int, default=None,
                        help="worker processes for exports and cells (default: one per core, or $ACTEXPORT_JOBS)")
        sp.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, metavar="SECONDS",
                        help=f"longest one export or one cell may take before its worker is killed "
                        f"(default {DEFAULT_TIMEOUT:g})")
        sp.add_argument("--in-process", action="store_true",
                        help="run exports and cells in this process: no protection from crashes and hangs "
                        "(for debugging)")

    ex = sub.add_parser("export", help="write deployable artifacts and their manifest")
    selection(ex)
    ex.add_argument("--out", type=Path, default=Path("models"), help="output directory (default models/)")

    ve = sub.add_parser("verify", help="export (or load) every artifact, run it, compare with eager PyTorch")
    selection(ve)
    ve.add_argument("--providers", default=None, help="comma list of cpu, cuda (default cpu)")
    ve.add_argument("--artifacts", type=Path, default=None, help="verify the artifacts in DIR instead of exporting")
    ve.add_argument("--json", type=Path, default=None, dest="json_path", help="write the JSON report here")
    ve.add_argument("--junit", type=Path, default=None, help="write JUnit XML here")
    ve.add_argument("--quiet", action="store_true", help="print only the summary line and failures")
    ve.add_argument("--explain", action="store_true",
                    help="print the deviations report: one line per deviation, grouped by activation")
    ve.add_argument("--no-reference", action="store_true",
                    help="skip onnx.reference (the specification's evaluation of each ONNX graph)")
    gr = sub.add_parser("graphs", help="torch.onnx's stock ONNX graphs and actexport's side by side: accuracy "
                        "vs the exact reference and latency on onnxruntime CPU")
    gr.add_argument("ids", nargs="*", metavar="ID", help="activation ids (default: the whole catalog)")
    gr.add_argument("--opset", type=int, default=None, help="ONNX opset (default 18)")
    gr.add_argument("--sizes", default="1000,1000000", help="element counts to time (default 1000,1000000)")
    gr.add_argument("--dtypes", default="float16,float32,float64", help="dtypes judged for accuracy")
    gr.add_argument("--json", type=Path, default=None, dest="json_path", help="write the JSON report here")
    workers(gr)
    ch = sub.add_parser("check", help="check DIR: manifest against files (missing, extra, changed), then parity")
    ch.add_argument("dir", type=Path, metavar="DIR", help="a directory written by `actexport export`")
    ch.add_argument("--json", type=Path, default=None, dest="json_path", help="write the JSON report here")
    ch.add_argument("--junit", type=Path, default=None, help="write JUnit XML here")
    ch.add_argument("--quiet", action="store_true", help="print only the summary line and failures")
    ch.add_argument("--jobs", type=int, default=None, help="worker processes (default: one per core)")
    ch.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, metavar="SECONDS",
                    help=f"longest one cell may take before its worker is killed (default {DEFAULT_TIMEOUT:g})")
    ch.add_argument("--in-process", action="store_true", help="run cells in this process (for debugging)")
    ch.add_argument("--module", default=None, metavar="PKG.MOD:FACTORY",
                    help="the factory of a user module DIR holds artifacts of (never guessed from the manifest)")
    ch.add_argument("--input-shape", default=None, metavar="D0,D1,...", help="as given to `export --module`")
    ch.add_argument("--dynamic-dims", default="0", metavar="DIMS", help="as given to `export --module`")
    ch.add_argument("--ulp", type=int, default=None, help="--module: ULP budget")
    ch.add_argument("--atol", type=float, default=None, help="--module: absolute floor")

    be = sub.add_parser("bench", help="latency per activation x artifact x runtime x size, beside the floor and eager")
    selection(be, dtypes=False)
    be.add_argument("--providers", default="cpu", help="comma list of cpu, cuda (default cpu)")
    be.add_argument("--sizes", default="1e3,1e5,1e6,1e7", help="element counts, e.g. 1e3,1e6 (default 1e3,1e5,1e6,1e7)")
    be.add_argument("--dtype", default="float32", help=f"one of {', '.join(DTYPES)} (default float32)")
    be.add_argument("--threads", type=int, default=None,
                    help="intra-op threads for torch and onnxruntime (default: each library's own)")
    be.add_argument("--json", type=Path, default=None, dest="json_path", help="write the JSON figures here")
    be.add_argument("--plot", type=Path, default=None, help="write a PNG: latency vs size, one panel per activation")
    be.add_argument("--save-optimized", type=Path, default=None, metavar="DIR",
                    help="keep onnxruntime's optimised graph of each ONNX artifact in DIR, for inspection")
    ve.add_argument("--latency", nargs="?", const="1e3,1e6", default=None, metavar="SIZES",
                    help="also measure latency (as `bench` does) at SIZES (default 1e3,1e6)")
    return p


def _all_dtypes(value: str) -> str:
    return ",".join(DTYPES) if value.strip() == "all" else value


def _user_module(args: argparse.Namespace):
    """The row of --module (None without it), checked before anything runs."""
    spec = getattr(args, "module", None)
    if spec is None:
        for flag in ("input_shape", "ulp", "atol"):
            if getattr(args, flag, None) is not None:
                raise UsageError(f"--{flag.replace('_', '-')} applies to --module only")
        return None
    from actexport.modules import activation, parse_shape

    if getattr(args, "all", False) or getattr(args, "ids", None):
        raise UsageError("give --module or activation ids/--all, not both")
    if args.input_shape is None:
        raise UsageError(f"--module {spec} needs --input-shape, e.g. --input-shape 4,32")
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


def _progress(console, total: int):
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
    cache = _cache(args)
    with _progress(err, len(acts) * len(formats) * len(dtypes)) as tick:
        results = export_all(acts, formats, dtypes, args.out, opsets, args.exporter, progress=tick,
                             cache=cache, workers=args.jobs, isolate=not args.in_process, timeout=args.timeout)
    from actexport.judge import Subject, declaration
    failed = 0
    for act, dtype, r in results:
        if r.ok:
            continue
        declared = r.error and r.stage == "export" and declaration(act, Subject(r.format, None, dtype, r.exporter),
                                                                   no_artifact=True)
        failed += bool(r.error) and not declared
        status = "unavailable" if r.unavailable else ("xfail (declared)" if declared else "error")
        detail = f"{declared.reason} [{r.error}]" if declared else (r.unavailable or r.error)
        err.print(f"{act.id} / {r.format} / {dtype}: {status}: {detail}", highlight=False, markup=False,
                  soft_wrap=True)
    produced = sum(r.ok for _, _, r in results)
    out.print(f"wrote {produced} artifacts and {args.out / 'manifest.json'}; {failed} failed", highlight=False, markup=False,
              soft_wrap=True)
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
    if "cuda" in providers:  # asked for by name: a provider that cannot run is exit 4, as in verify
        from actexport.verify import Options, check_providers
        check_providers(Options(formats=formats, providers=providers, providers_explicit=True))
    cache = _cache(args)
    with _progress(err, plan_size(ids, formats, providers, sizes)) as tick:
        report = bench(ids, formats, providers, sizes, dtypes[0], args.threads, opsets[0], args.exporter, progress=tick,
                       cache=cache, workers=args.jobs, save_optimized=args.save_optimized,
                       isolate=not args.in_process, timeout=args.timeout)
    report.render(out)
    if args.json_path:
        report.write_json(args.json_path)
    if args.plot:
        report.write_plot(args.plot)
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
    )
    _check_output_file(args.json_path, "--json")
    _check_output_file(args.junit, "--junit")
    cache = _cache(args)
    with _progress(err, plan_size(ids, options)) as tick:
        report = verify(ids, options, artifacts_dir=args.artifacts, progress=tick, cache=cache,
                        workers=args.jobs)
    return _emit(report, args, out, err)


def cmd_check(args: argparse.Namespace, out, err) -> int:
    from actexport.check import check

    _check_output_file(args.json_path, "--json")
    _check_output_file(args.junit, "--junit")
    _check_workers(args)
    report = check(args.dir, workers=args.jobs, isolate=not args.in_process, timeout=args.timeout)
    return _emit(report, args, out, err)


def _emit(report, args: argparse.Namespace, out, err) -> int:
    """Prints a verify report as the flags ask, writes its JSON and JUnit, returns its exit code."""
    if args.quiet:
        for c in report.cells:
            if c.status in ("fail", "error", "xpass"):
                out.print(f"{c.key}: {c.status}: {c.reason}", highlight=False, markup=False, soft_wrap=True)
        for problem in report.problems:
            out.print(f"problem: {problem}", highlight=False, markup=False, soft_wrap=True)
        out.print(report.summary_line(), highlight=False, markup=False, soft_wrap=True)
    else:
        report.render(out)
    if getattr(args, "explain", False):
        report.explain(out)
    for warning in report.environment.get("warnings", []):
        err.print(f"warning: {warning}", highlight=False, markup=False)
    if args.json_path:
        report.write_json(args.json_path)
    if args.junit:
        report.write_junit(args.junit)
    return report.exit_code()


def main(argv: list[str] | None = None) -> int:
    """Runs the CLI; returns the exit code (0 ok, 1 failed cells, 2 usage, 3 no artifact, 4 no provider)."""
    from rich.console import Console
    out, err = Console(), Console(stderr=True)
    if not out.is_terminal and "COLUMNS" not in os.environ:
        out = Console(width=160)  # CI logs: wide enough that the matrix and reasons do not wrap
    try:
        args = _parser().parse_args(argv)  # NOTE: --help's exit 0 stands; bad usage raises UsageError
    except UsageError as e:
        print(f"actexport: error: {e}", file=sys.stderr)
        return USAGE
    from actexport.isolate import Terminated, report_stop
    try:
        return _main(args, out, err)
    except (KeyboardInterrupt, Terminated) as e:
        return report_stop(e)
    except SystemExit as e:
        # NOTE: raised by code that is not actexport's (a factory, a module's forward, a plugin, or
        # `builtins:exit` given as the factory): only a finished run may exit 0.
        print(f"actexport: error: a module, factory or plugin called sys.exit({e.code!r}); the run stopped "
              "there and is not a pass", file=sys.stderr)
        return USAGE


def _main(args: argparse.Namespace, out, err) -> int:
    from actexport.artifacts import OutputError
    from actexport.verify import ProviderUnavailable
    try:
        if args.command == "list":
            return cmd_list(args, out)
        from actexport.isolate import DEFAULT_TIMEOUT, check_timeout, deadline, load_plugins, plugins, probe_plugins

        timeout = check_timeout(getattr(args, "timeout", DEFAULT_TIMEOUT))
        probe_plugins(plugins(), timeout)
        load_plugins(plugins())  # this process builds eager modules and times artifacts too
        if hasattr(args, "graphs"):
            from actexport.exporters.onnx import spec
            args.exporter = spec(args.exporter, args.graphs)
        user = None
        if args.command in ("export", "verify", "bench", "check"):
            with deadline(timeout, f"--module {getattr(args, 'module', None)}: building and trying the module"):
                user = _user_module(args)
        if user is not None:
            with catalog.registered(user):
                return _run(args, out, err)
        return _run(args, out, err)
    except UsageError as e:
        print(f"actexport: error: {e}", file=sys.stderr)
        return USAGE
    except ProviderUnavailable as e:
        print(f"actexport: error: {e}", file=sys.stderr)
        return NO_PROVIDER
    except OutputError as e:
        print(f"actexport: error: {e}", file=sys.stderr)
        return NO_ARTIFACT


def _run(args: argparse.Namespace, out, err) -> int:
    if args.command == "export":
        return cmd_export(args, out, err)
    if args.command == "bench":
        return cmd_bench(args, out, err)
    if args.command == "check":
        return cmd_check(args, out, err)
    if args.command == "graphs":
        return cmd_graphs(args, out, err)
    return cmd_verify(args, out, err)


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
