"""A verify report as a JSON document (schema SCHEMA): the environment, the summary, and every cell,
export, graph and device pair; strict JSON, so non-finite floats are written as strings."""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path

from actexport.files import atomic_write

SCHEMA = 1


def document(report) -> dict:
    return {
        "schema": SCHEMA,
        "environment": report.environment,
        "summary": {
            "counts": report.counts(),
            "cells": len(report.cells),
            "wall_seconds": round(report.wall_seconds, 3),
            "exit_code": report.exit_code(),
        },
        "exports": report.exports,
        "graphs": report.graphs,
        "devices": [{k: _finite(v) for k, v in d.items()} for d in report.devices],
        "problems": report.problems,
        "cells": [{k: _finite(v) for k, v in asdict(c).items()} for c in report.cells],
        **({"latency": [b.to_dict() for b in report.latency]} if report.latency else {}),
    }


def write(report, path: Path) -> None:
    text = json.dumps(document(report), indent=2, allow_nan=False, default=_json_default) + "\n"
    atomic_write(Path(path), lambda tmp: tmp.write_text(text))


def _finite(v):
    """JSON has no NaN or infinity: such values (worst inputs are often special) become strings."""
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    return v


def _json_default(o):
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")
