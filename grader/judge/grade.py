"""Grading one submission: run it in the sandbox, then run its rubric against the live run."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grader import intake
from grader.assignments import Assignment
from grader.judge.rubric import Context, Item, run_rubric
from grader.sandbox import ProbeError, RunRecord, Sandbox, SandboxConfig


@dataclass
class Result:
    student: str
    notebook: str
    content_hash: str
    run: RunRecord
    items: list[Item] = field(default_factory=list)
    environment: dict[str, Any] = field(default_factory=dict)
    evidence: dict[str, Any] = field(default_factory=dict)  # what the rubric measured, for reports

    @property
    def total(self) -> float:
        return round(sum(i.score for i in self.items), 4)

    @property
    def max(self) -> float:
        return round(sum(i.max for i in self.items), 4)

    def visible_items(self, include_hidden: bool) -> list[Item]:
        return [i for i in self.items if include_hidden or not i.hidden]


def rubric_files(assignment: Assignment, notebook: str, public_only: bool) -> tuple[
        list[Path], list[Path]]:
    """The rubric files for one notebook: `public/test_<stem>*.py` and `hidden/test_<stem>*.py`."""
    stem = notebook.removesuffix(".ipynb")

    def files(kind: str) -> list[Path]:
        return sorted((assignment.folder / kind).glob(f"test_{stem}*.py"))

    return files("public"), [] if public_only else files("hidden")


def grade(submission: intake.Submission, assignment: Assignment, config: SandboxConfig, *,
          public_only: bool = False, mnist: Any = None) -> Result:
    """Run one submission and score it. Never raises for what the student did."""
    name = submission.notebook.name
    with tempfile.TemporaryDirectory(prefix="torchgrade-sub-") as folder:
        staging = Path(folder)
        intake.repaired_copy(submission.path, staging / name)
        for extra in submission.files:
            shutil.copyfile(extra, staging / extra.name)
        with Sandbox(config).open(staging, name) as session:
            run = session.execute()
            public, hidden = rubric_files(assignment, name, public_only)
            context = Context(student=session, run=run, assignment=assignment, mnist=mnist,
                              settings=assignment.settings)
            items = run_rubric(public, hidden, context)
            try:
                environment = session.environment()
            except ProbeError:
                environment = {}
        return Result(submission.student, name, submission.content_hash, run, items,
                      environment, context.evidence)
