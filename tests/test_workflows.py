"""The GitHub Actions workflows in ci/github/ are for copying into another repository: they must
name no file of this one, no placeholder, and the versions this repository pins."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = sorted((ROOT / "ci" / "github").glob("*.yml"))


def _steps(path: Path) -> str:
    """The workflow without its comments: what runs."""
    return "\n".join(ln for ln in path.read_text().splitlines() if not ln.lstrip().startswith("#"))


def _pin(text: str, name: str) -> str:
    m = re.search(rf"^{re.escape(name)}==(\S+)", text, flags=re.M)
    assert m, name
    return m[1]


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_a_workflow_needs_nothing_of_this_repository(path):
    text = _steps(path)
    assert "YOUR-" not in text and "constraints" not in text and "hashFiles" not in text
    version = _pin((ROOT / "pyproject.toml").read_text().replace('version = "', "actexport=="), "actexport").rstrip('"')
    assert re.findall(r"actexport\[(?:cpu|gpu)\]==(\S+)", text) == [version]
    for torch in re.findall(r"torch==(\S+)", text):
        assert torch == _pin((ROOT / "ci" / "constraints-cpu.txt").read_text(), "torch")


def test_the_shard_workflow_merges_every_shard():
    yaml = pytest.importorskip("yaml")
    doc = yaml.safe_load((ROOT / "ci" / "github" / "actexport-shards.yml").read_text())
    shards = doc["jobs"]["verify"]["strategy"]["matrix"]["shard"]
    n = len(shards)
    assert shards == list(range(1, n + 1))
    verify = " ".join(s.get("run", "") for s in doc["jobs"]["verify"]["steps"])
    assert f"--shard ${{{{ matrix.shard }}}}/{n}" in verify and "--json report-${{ matrix.shard }}.json" in verify
    merge = doc["jobs"]["merge"]
    assert merge["needs"] == "verify" and merge["if"] == "always()"
    run = next(s["run"] for s in merge["steps"] if "actexport merge" in s.get("run", ""))
    assert all(f"report-{k}.json" in run for k in shards)


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_a_workflow_parses(path):
    yaml = pytest.importorskip("yaml")
    doc = yaml.safe_load(path.read_text())
    assert doc["jobs"] and all("steps" in job for job in doc["jobs"].values())
