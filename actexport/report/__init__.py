"""Report: the cells of one verify run and the exit-code policy (model), shown as a terminal table
(terminal), written as JSON (jsonfile), as JUnit XML (junit) and as an HTML page (html)."""

from __future__ import annotations

from actexport.report.model import (
    FAILED,
    NO_ARTIFACT,
    NO_PROVIDER,
    OK,
    STATUSES,
    USAGE,
    Cell,
    DeviceRecord,
    GraphRecord,
    Report,
    Status,
)

__all__ = ["FAILED", "NO_ARTIFACT", "NO_PROVIDER", "OK", "STATUSES", "USAGE", "Cell", "DeviceRecord", "GraphRecord", "Report", "Status"]
