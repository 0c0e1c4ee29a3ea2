"""A verify report as a JSON document (schema SCHEMA): the environment, the summary, and every cell,
export, graph and device pair; strict JSON, so non-finite floats are written as strings."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from actexport.files import write_json

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
        "graphs": [g.to_dict() for g in report.graphs],
        "devices": [d.to_dict() for d in report.devices],
        "problems": report.problems,
        "cells": [asdict(c) for c in report.cells],
        **({"latency": [b.to_dict() for b in report.latency]} if report.latency else {}),
    }


def write(report, path: Path) -> None:
    write_json(path, document(report))
