"""Command line: parses flags and maps them onto the API; no logic of its own."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import NoReturn

from actexport import catalog
from actexport.catalog import DTYPES, UsageError
from actexport.formats import FORMATS
from actexport.isolate import DEFAULT_TIMEOUT
from actexport.commands import (user_module, cmd_bench, cmd_check, cmd_export, cmd_graphs, cmd_list,
                                cmd_merge, cmd_verify)
from actexport.report import NO_ARTIFACT, NO_PROVIDER, USAGE


HTML_HELP = ("write one self-contained HTML page: the matrix as a heatmap, each cell's worst inputs and graph "
             "(needs the html extra)")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, exit 2, as for every other usage error
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
                        help="your own torch.nn.Module factory instead of catalog ids (with --inputs or --input-shape)")
        model_inputs(sp)
        sp.add_argument("--shard", default=None, metavar="K/N",
                        help="run the K-th of N shares of the activation x dtype units, balanced by measured "
                        "cost (one CI machine each; `actexport merge` joins verify's reports)")
        sp.add_argument("--ulp", type=int, default=None, help="bench --module: ULP budget (default per dtype, README)")
        sp.add_argument("--atol", type=float, default=None, help="bench --module: absolute floor (default per dtype)")
        workers(sp)

    def model_inputs(sp: argparse.ArgumentParser) -> None:
        """How --module gets its inputs."""
        sp.add_argument("--inputs", default=None, metavar="PKG.MOD:FN",
                        help="--module: FN() returns the example inputs: a tensor, a tuple or a dict of tensors")
        sp.add_argument("--input-shape", default=None, metavar="D0,D1,...",
                        help="--module: one float input of this shape instead of --inputs, e.g. 4,32")
        sp.add_argument("--dynamic-dims", default="0", metavar="DIMS",
                        help="dims left dynamic: 0 (dim 0 of every input, the default), or per input: ids=0,1;mask=0")
        sp.add_argument("--input-range", default=None, metavar="LO,HI",
                        help="--module: draw float inputs within LO..HI (default: around the example's values)")
        sp.add_argument("--samples", type=Path, default=None, metavar="FILE",
                        help="--module: real inputs too, a torch.save list of examples")

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
    ve.add_argument("--html", type=Path, default=None, help=HTML_HELP)
    ve.add_argument("--quiet", action="store_true", help="print only the summary line and failures")
    ve.add_argument("--explain", action="store_true",
                    help="print every cell that did not pass in full (not one line per kind), then the "
                    "deviations report: one line per deviation, grouped by activation")
    ve.add_argument("--no-reference", action="store_true",
                    help="skip onnx.reference (the specification's evaluation of each ONNX graph)")
    me = sub.add_parser("merge", help="join the JSON reports of verify --shard K/N into the report of one run")
    me.add_argument("reports", nargs="+", type=Path, metavar="REPORT", help="every shard's verify --json report")
    me.add_argument("--json", type=Path, default=None, dest="json_path", help="write the merged JSON report here")
    me.add_argument("--junit", type=Path, default=None, help="write JUnit XML here")
    me.add_argument("--html", type=Path, default=None, help=HTML_HELP)
    me.add_argument("--quiet", action="store_true", help="print only the summary line and failures")
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
    ch.add_argument("--html", type=Path, default=None, help=HTML_HELP)
    ch.add_argument("--quiet", action="store_true", help="print only the summary line and failures")
    ch.add_argument("--jobs", type=int, default=None, help="worker processes (default: one per core)")
    ch.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, metavar="SECONDS",
                    help=f"longest one cell may take before its worker is killed (default {DEFAULT_TIMEOUT:g})")
    ch.add_argument("--in-process", action="store_true", help="run cells in this process (for debugging)")
    ch.add_argument("--module", default=None, metavar="PKG.MOD:FACTORY",
                    help="the factory of a user module DIR holds artifacts of (never guessed from the manifest)")
    model_inputs(ch)

    be = sub.add_parser("bench", help="latency per activation x artifact x runtime x size, beside the floor and eager")
    selection(be, dtypes=False)
    be.add_argument("--providers", default="cpu", help="comma list of cpu, cuda (default cpu)")
    be.add_argument("--sizes", default="1e3,1e5,1e6,1e7", help="element counts, e.g. 1e3,1e6 (default 1e3,1e5,1e6,1e7)")
    be.add_argument("--dtype", default="float32", help=f"one of {', '.join(DTYPES)} (default float32)")
    be.add_argument("--threads", type=int, default=None,
                    help="intra-op threads for torch and onnxruntime (default: each library's own)")
    be.add_argument("--json", type=Path, default=None, dest="json_path", help="write the JSON figures here")
    be.add_argument("--plot", type=Path, default=None, help="write a PNG: latency vs size, one panel per activation")
    be.add_argument("--html", type=Path, default=None, help="write one self-contained HTML page: the plot and tables "
                    "(needs the html extra)")
    be.add_argument("--save-optimized", type=Path, default=None, metavar="DIR",
                    help="keep onnxruntime's optimised graph of each ONNX artifact in DIR, for inspection")
    ve.add_argument("--latency", nargs="?", const="1e3,1e6", default=None, metavar="SIZES",
                    help="also measure latency (as `bench` does) at SIZES (default 1e3,1e6)")
    return p


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
    from actexport.lifecycle import DeadlineExpired, Terminated, report_stop
    try:
        return _main(args, out, err)
    except (KeyboardInterrupt, Terminated) as e:
        return report_stop(e)
    except DeadlineExpired as e:  # user code this process ran itself: a factory, a --module run
        print(f"actexport: error: {e}", file=sys.stderr)
        return USAGE
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
        if args.command == "merge":  # reads files only: no plugin, no worker
            return cmd_merge(args, out, err)
        if getattr(args, "shard", None) is not None and getattr(args, "module", None):
            raise UsageError("--shard splits the catalog's matrix, --module is one module: give one of them")
        from actexport.isolate import DEFAULT_TIMEOUT
        from actexport.lifecycle import check_timeout, deadline, load_plugins, plugins, probe_plugins

        timeout = check_timeout(getattr(args, "timeout", DEFAULT_TIMEOUT))
        probe_plugins(plugins(), timeout)
        load_plugins(plugins())  # this process builds eager modules and times artifacts too
        if hasattr(args, "graphs"):
            from actexport.exporters.onnx import OnnxExporter
            args.exporter = OnnxExporter.of(args.exporter, args.graphs).key
        if getattr(args, "module", None) and args.command in ("export", "verify", "check"):
            from actexport.model import commands as model_commands
            with deadline(timeout, f"--module {args.module}: building and trying the module"):
                model = model_commands.model_of(args)
            # NOTE: a model runs in this process (model/verify.py): --timeout bounds each of its
            # exports and runtimes, MODEL_STEPS of them at most
            with deadline(timeout * model_commands.MODEL_STEPS, f"--module {args.module}: the run"):
                return {"export": model_commands.cmd_export, "verify": model_commands.cmd_verify,
                        "check": model_commands.cmd_check}[args.command](args, model, out, err)
        user = None
        if args.command in ("export", "verify", "bench", "check"):
            with deadline(timeout, f"--module {getattr(args, 'module', None)}: building and trying the module"):
                user = user_module(args)
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
