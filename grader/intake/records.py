"""What intake hands on: a submission to grade, or a rejection with its reason."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from grader.assignments import Notebook
from grader.results import Handin


@dataclass(frozen=True)
class Submission:
    student: str
    notebook: Notebook     # the assignment's notebook this file is
    path: Path             # the handed-in .ipynb
    files: tuple[Path, ...]  # other handed-in files that go into the sandbox with it
    content_hash: str
    handin: Handin = field(default_factory=Handin)  # the file's own name, how it matched, LMS facts


@dataclass(frozen=True)
class Rejected:
    student: str
    notebook: str
    path: Path
    reason: str
    handin: Handin = field(default_factory=Handin)
