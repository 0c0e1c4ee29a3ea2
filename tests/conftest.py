"""Shared fixtures: the catalog is exported once per test session and reused by every test."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from actexport.formats import FORMATS
from actexport import catalog
from actexport.artifacts import export_all
from actexport.exporters.onnx import DEFAULT_EXPORTER, DEFAULT_OPSET
from actexport.verify import Options, verify


@pytest.fixture(scope="session", autouse=True)
def _private_export_cache(tmp_path_factory):
    """The CLI's default export cache points into the test session's temporary directory."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ACTEXPORT_CACHE", str(tmp_path_factory.mktemp("export-cache")))
        yield


@pytest.fixture(scope="session")
def exported(tmp_path_factory) -> Path:
    """The whole catalog in all three formats, float32, as `actexport export --all` writes it."""
    out = tmp_path_factory.mktemp("models")
    export_all(catalog.CATALOG, FORMATS, ("float32",), out, (DEFAULT_OPSET,), DEFAULT_EXPORTER)
    return out


@pytest.fixture(scope="session")
def full_report(exported):
    """`actexport verify --all --artifacts DIR` over the exported catalog."""
    return verify(None, Options(), artifacts_dir=exported)


@pytest.fixture
def artifacts_copy(exported, tmp_path) -> Path:
    """A private copy of the exported catalog that a test may tamper with."""
    dst = tmp_path / "models"
    shutil.copytree(exported, dst)
    return dst


@pytest.fixture
def replace_row(monkeypatch):
    """Swaps one catalog row for a copy with some fields changed, for the duration of a test."""

    def replace(id: str, **changes) -> catalog.Activation:
        fake = catalog.Activation(**{**catalog.get(id).__dict__, **changes})
        monkeypatch.setattr(catalog, "CATALOG", tuple(fake if a.id == id else a for a in catalog.CATALOG))
        monkeypatch.setattr(catalog, "_BY_ID", {**catalog._BY_ID, id: fake})
        return fake

    return replace
