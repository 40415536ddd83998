"""Grading one submission: run it in the sandbox, then run its rubric against the live run.

A grading fails only alone: whatever goes wrong while one submission is graded (a file swapped
for a link, an answer the grader cannot handle, a bug of the grader's own) becomes that
submission's result, outcome "failed" with the reason, and the batch goes on.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from grader import intake
from grader.assignments import Assignment
from grader.judge.rubric import Context, run_rubric
from grader.results import Result
from grader.sandbox import ProbeError, Sandbox, SandboxConfig, SandboxError
from grader.text import clean_text

GRADED_AGAIN = "it is graded again on the next run"


def rubric_files(assignment: Assignment, notebook: str, public_only: bool) -> tuple[
        list[Path], list[Path]]:
    """The rubric files for one notebook: `public/test_<stem>*.py` and `hidden/test_<stem>*.py`."""
    stem = notebook.removesuffix(".ipynb")

    def files(kind: str) -> list[Path]:
        return sorted((assignment.folder / kind).glob(f"test_{stem}*.py"))

    return files("public"), [] if public_only else files("hidden")


def grade(submission: intake.Submission, assignment: Assignment, config: SandboxConfig, *,
          public_only: bool = False, mnist: Any = None) -> Result:
    """Run one submission and score it. Never raises for what the student did, nor for one
    submission the grader fails on: that is a "failed" result of its own. Only a sandbox that
    cannot be set up at all (the machine's problem, the same for every submission) raises."""
    try:
        return _grade(submission, assignment, config, public_only=public_only, mnist=mnist)
    except SandboxError:
        raise
    except intake.RefusedFile as exc:  # changed since intake: the next run's intake says why
        return Result.failed(submission.student, submission.notebook.name,
                             submission.content_hash,
                             f"{exc}; {intake.PLAIN_FILES_ONLY}; {GRADED_AGAIN}")
    except Exception as exc:  # noqa: BLE001 - one submission's failure is recorded, not raised
        return Result.failed(submission.student, submission.notebook.name,
                             submission.content_hash, failure_reason(exc))


def failure_reason(exc: BaseException) -> str:
    """What a TA reads when the grader failed on a submission."""
    return (f"the grader failed on this submission ({type(exc).__name__}: "
            f"{clean_text(exc, 300)}); {GRADED_AGAIN}")


def _grade(submission: intake.Submission, assignment: Assignment, config: SandboxConfig, *,
           public_only: bool, mnist: Any) -> Result:
    name = submission.notebook.name
    with tempfile.TemporaryDirectory(prefix="torchgrade-sub-") as folder:
        staging = Path(folder)
        intake.repaired_copy(submission.path, staging / name)
        for extra in submission.files:
            intake.copy_regular(extra, staging / extra.name)  # a link is refused, not followed
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
