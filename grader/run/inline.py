"""One submission after another in this process (`--jobs 1`, or a single submission).

A stop kills this process's sandboxes (grader.run.stop); the grading in flight then finishes
at once and its result is dropped."""

from __future__ import annotations

from dataclasses import dataclass, replace

from grader.assignments import Assignment
from grader.run.grading import Grading, Job
from grader.run.plan import Plan
from grader.run.progress import Reporter
from grader.sandbox import SandboxConfig


@dataclass
class Inline:
    assignment: Assignment
    config: SandboxConfig
    plan: Plan
    grading: Grading

    #: gradings run in this process: a stop kills its sandboxes rather than raising
    stops_sandboxes_here = True

    def run(self, pending: list[Job], report: Reporter) -> None:
        config = self.config
        slots = self.plan.slots()
        if slots is not None:
            config = replace(config, gpus=(slots.acquire(),))
        for key, submission in pending:
            try:
                result = self.grading.grade(submission, self.assignment, config)
            except Exception:
                report.guard.check()
                raise
            report.guard.check()  # a grading whose sandbox a stop ended is no grade
            report(key, result)
