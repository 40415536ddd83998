"""What a student's `pip install torchgrade` asks for, and what the project pins for itself."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def requirements() -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extras = [r for group in project.get("optional-dependencies", {}).values() for r in group]
    return [*project["dependencies"], *extras]


def test_the_package_asks_for_a_range_of_torch_never_one_version():
    torches = [r for r in requirements() if re.match(r"torch(vision)?\b", r)]
    assert sorted(re.match(r"[a-z]+", r).group() for r in torches) == ["torch", "torchvision"]
    assert not any("==" in r or "~=" in r or "<" in r for r in torches), torches


def test_the_project_installs_itself_with_the_tested_versions_pinned():
    pins = dict(line.split("==") for line in (ROOT / "constraints.txt").read_text().splitlines()
                if line and not line.startswith("#"))
    assert pins == {"torch": "2.14.1", "torchvision": "0.29.1"}
    makefile = (ROOT / "Makefile").read_text()
    assert "pip install --quiet -c constraints.txt -e" in makefile
