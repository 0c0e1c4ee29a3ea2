"""The README's quick start is exactly two commands, and CI runs the second one."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _quick_start_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return [b.strip() for b in re.findall(r"```(?:bash)?\n(.*?)```", section, flags=re.S)]


def _last_line(path: Path) -> str:
    return [ln for ln in path.read_text().splitlines() if ln.strip()][-1].strip()


def test_quick_start_is_two_commands():
    blocks = _quick_start_blocks()
    assert len(blocks) == 2 and all("\n" not in b for b in blocks)
    assert "pip install" in blocks[0] and blocks[0].endswith("actexport verify --all")
    assert "pip install" in blocks[1] and "pytest" in blocks[1]


def test_ci_runs_the_readme_commands():
    verify_cmd, test_cmd = _quick_start_blocks()
    assert _last_line(ROOT / "ci" / "test.sh") == test_cmd
    assert _last_line(ROOT / "ci" / "verify.sh") == verify_cmd
    assert "ci/test.sh" in (ROOT / ".ci" / "run").read_text()
