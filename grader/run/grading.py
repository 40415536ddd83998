"""What every backend hands around: a job (gradebook key and submission), the caller's
`on_result`, and the `Grading` a grading process keeps across the submissions it grades."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from grader import data
from grader.assignments import Assignment
from grader.intake import Submission
from grader.judge.grade import grade
from grader.results import Result
from grader.sandbox import SandboxConfig

Job = tuple[str, Submission]  # (gradebook key, submission)
OnResult = Callable[[str, Result], None]


@dataclass
class Grading:
    """One grading process's side of a run (the `grade` process, a pool worker, a Dask
    worker): what the judge asks every submission about is prepared once per process, not
    once per submission. MNIST is memory-mapped, so the workers of a machine share its pages."""

    _mnist: data.MnistSplit | None = field(default=None, init=False, repr=False)
    _mnist_read: bool = field(default=False, init=False, repr=False)

    def mnist(self) -> data.MnistSplit | None:
        """The MNIST split for the judge, read on first use; None when it is not cached."""
        if not self._mnist_read:
            self._mnist = data.load_split() if data.is_cached() else None
            self._mnist_read = True
        return self._mnist

    def grade(self, submission: Submission, assignment: Assignment,
              config: SandboxConfig) -> Result:
        return grade(submission, assignment, config, mnist=self.mnist())
