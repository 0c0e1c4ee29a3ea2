"""A verify report's JSON file read back into a Report (for `merge`), as hostile input: bounded in
size, every field checked against the dataclass it fills, and every problem one line.

It lives beside jsonfile.py, not in it: model.py writes through jsonfile, so a jsonfile that built
model's classes would import it back.
"""

from __future__ import annotations

import json
import math
import types
import typing
from dataclasses import fields
from pathlib import Path

from actexport.compare import Agreement
from actexport.graphs import Optimisation
from actexport.report.jsonfile import SCHEMA
from actexport.report.model import Cell, DeviceRecord, GraphRecord, Report
from actexport.status import Stage, Status

MAX_BYTES = 256 << 20  # a --dtypes all report of the whole catalog is a few MB; a larger file is not one


class ReportFileError(ValueError):
    """The file is not a verify report actexport could have written (one line)."""


def read(path: Path) -> Report:
    """The Report a `verify --json` (or `merge --json`) file holds; ReportFileError when it cannot be one."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if not path.is_file():
            raise ReportFileError(f"{path}: not a file")
        if size > MAX_BYTES:
            raise ReportFileError(f"{path}: {size} bytes, more than a report's {MAX_BYTES} at most")
        doc = json.loads(path.read_bytes().decode("utf-8"))
    except OSError as e:
        raise ReportFileError(f"{path}: cannot be read ({e.strerror or e})") from None
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise ReportFileError(f"{path}: is not valid JSON ({type(e).__name__})") from None
    try:
        return _report(doc)
    except (KeyError, TypeError, ValueError) as e:
        raise ReportFileError(f"{path}: not an actexport verify report: {e}") from None


def _report(doc) -> Report:
    _expect(doc, dict, "the document")
    if doc.get("schema") != SCHEMA:
        raise ValueError(f"schema {doc.get('schema')!r}, expected {SCHEMA}")
    if doc.get("latency"):
        raise ValueError("it holds latency figures (verify --latency), which are not read back")
    env = _expect(doc.get("environment"), dict, "environment")
    for key in ("versions", "options"):
        _expect(env.get(key), dict, f"environment.{key}")
    summary = _expect(doc.get("summary"), dict, "summary")
    cells = [_dataclass(Cell, c, f"cells[{i}]") for i, c in enumerate(_expect(doc.get("cells"), list, "cells"))]
    report = Report(
        cells=cells,
        exports=[_expect(e, dict, "exports[]") for e in _expect(doc.get("exports", []), list, "exports")],
        graphs=[_graph(g) for g in _expect(doc.get("graphs", []), list, "graphs")],
        devices=[_device(d) for d in _expect(doc.get("devices", []), list, "devices")],
        environment=env,
        wall_seconds=float(summary.get("wall_seconds", 0.0)),
        problems=[_expect(p, str, "problems[]") for p in _expect(doc.get("problems", []), list, "problems")],
    )
    # NOTE: the exit code is computed from the cells again; a summary that disagrees was edited.
    if summary.get("cells") != len(cells) or summary.get("exit_code") != report.exit_code():
        raise ValueError(f"its summary ({summary.get('cells')!r} cells, exit code {summary.get('exit_code')!r}) does "
                         f"not match its cells ({len(cells)}, exit code {report.exit_code()})")
    return report


def _graph(d) -> GraphRecord:
    d = _expect(d, dict, "graphs[]")
    opt, optimisation, error = d.get("optimisation"), None, None
    if isinstance(opt, dict) and set(opt) == {"error"}:
        error = _expect(opt["error"], str, "graphs[].optimisation.error")
    elif opt is not None:
        optimisation = _dataclass(Optimisation, {**_expect(opt, dict, "graphs[].optimisation"),
                                                 **{k: d[k] for k in ("optimised_nodes", "optimised_op_types",
                                                                      "ort_specific")}}, "graphs[].optimisation")
    plain = {k: v for k, v in d.items() if k not in ("optimisation", "optimised_nodes", "optimised_op_types",
                                                      "ort_specific")}
    return _dataclass(GraphRecord, {**plain, "optimisation": optimisation, "optimisation_error": error}, "graphs[]",
                      nested={"optimisation", "optimisation_error"})


def _device(d) -> DeviceRecord:
    d = _expect(d, dict, "devices[]")
    agreement = _dataclass(Agreement, {f.name: d.get(f.name) for f in fields(Agreement)}, "devices[]")
    rest = {k: v for k, v in d.items() if k not in {f.name for f in fields(Agreement)}}
    return _dataclass(DeviceRecord, {**rest, "agreement": agreement}, "devices[]", nested={"agreement"})


def _dataclass(cls, d, where: str, nested: frozenset[str] | set[str] = frozenset()):
    """cls(**d), each value checked against its field's type; a float's "nan"/"inf" strings read back."""
    d = _expect(d, dict, where)
    hints = typing.get_type_hints(cls)
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(d) - names)
    if unknown:
        raise ValueError(f"{where}: unknown field {unknown[0]!r}")
    values = {}
    for f in fields(cls):
        if f.name not in d:
            continue  # NOTE: a missing field with no default fails in cls(**values) below
        values[f.name] = d[f.name] if f.name in nested else _value(hints[f.name], d[f.name], f"{where}.{f.name}")
    try:
        return cls(**values)
    except TypeError as e:
        raise ValueError(f"{where}: {e}") from None


_SPECIAL = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def _value(hint, v, where: str):
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(hint):
            try:
                return _value(option, v, where)
            except ValueError:
                continue
        raise ValueError(f"{where}: {type(v).__name__} {str(v)[:40]!r} is not {hint}")
    if hint is type(None):
        if v is None:
            return None
    elif hint in (Status, Stage):
        if isinstance(v, str) and v in {m.value for m in hint}:
            return hint(v)
    elif hint is bool:
        if isinstance(v, bool):
            return v
    elif hint is int:
        if isinstance(v, int) and not isinstance(v, bool):
            return v
    elif hint is float:
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return float(v)
        if isinstance(v, str) and v in _SPECIAL:  # files.json_ready wrote a non-finite float so
            return _SPECIAL[v]
    elif hint is str:
        if isinstance(v, str):
            return v
    elif origin is list:
        if isinstance(v, list):
            (item,) = typing.get_args(hint)
            return [_value(item, x, f"{where}[]") for x in v]
    elif origin is dict or hint is dict:
        if isinstance(v, dict):
            args = typing.get_args(hint)
            return {k: _value(args[1], x, f"{where}.{k}") for k, x in v.items()} if args else v
    raise ValueError(f"{where}: {type(v).__name__} {str(v)[:40]!r} is not {getattr(hint, '__name__', hint)}")


def _expect(v, kind: type, where: str):
    if not isinstance(v, kind):
        raise ValueError(f"{where} is {type(v).__name__}, expected {kind.__name__}")
    return v
