"""The type check the code claims runs with the tests: mypy on the package, configured in pyproject.toml, clean."""

from __future__ import annotations

import os
from pathlib import Path

from mypy import api

ROOT = Path(__file__).resolve().parent.parent


def test_mypy_finds_nothing(monkeypatch):
    monkeypatch.chdir(ROOT)  # NOTE: mypy finds the package, and names the files it reports, from here
    stdout, stderr, status = api.run(["--config-file", "pyproject.toml", "--cache-dir", os.devnull, "actexport"])
    assert status == 0, stdout + stderr
