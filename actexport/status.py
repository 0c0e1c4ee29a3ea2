"""The words a result is made of: a cell's Status and the Stage where a failure arose.

Both are StrEnums: a member is its value wherever a string is (JSON, JUnit, f-strings, comparisons
with what a report read back from a file), so nothing converts them on the way out.
"""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    """What a cell came to."""

    PASS = "pass"
    FAIL = "fail"
    XFAIL = "xfail"
    XPASS = "xpass"
    ERROR = "error"
    SKIP = "skip"
    UNAVAILABLE = "unavailable"


class Stage(StrEnum):
    """Where an artifact went missing or a cell stopped."""

    NONE = ""  # the cell ran (or was skipped): no stage to name
    EXPORT = "export"  # the exporter failed, or the format is not offered
    CRASH = "crash"  # the export's process died or hung
    UNLISTED = "unlisted"  # a deployed folder's manifest does not list the artifact
    MISSING = "missing"  # the manifest lists it, the file is not there
    INTEGRITY = "integrity"  # the file is not what the manifest says (digest, size, path)
    PROVIDER = "provider"  # the device or provider itself does not run here
    LOAD = "load"  # the runtime could not load the artifact
    RUN = "run"  # the runtime failed while running it


STATUSES = tuple(s.value for s in Status)
ARTIFACT_MISSING = (Stage.EXPORT, Stage.MISSING, Stage.CRASH)  # exit 3 when such a cell errs
