"""Which submission runs where: one after another in this process, or N at a time in worker
processes on this machine. Results come back to the caller, which alone writes the gradebook.

Workers are separate processes (not threads): each grading runs pytest and forks a sandbox,
neither of which may share a process with another grading in flight.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any

from grader import data
from grader.assignments import Assignment
from grader.intake import Submission
from grader.judge.grade import Result, grade
from grader.sandbox import SandboxConfig

Job = tuple[str, Submission]  # (gradebook key, submission)


def _grade_in_worker(submission: Submission, assignment: Assignment, config: SandboxConfig,
                     with_mnist: bool) -> Result:
    mnist = data.load_split() if with_mnist and data.is_cached() else None
    return grade(submission, assignment, config, mnist=mnist)


def run(jobs: Iterable[Job], assignment: Assignment, config: SandboxConfig, workers: int,
        on_result: Callable[[str, Result], None]) -> None:
    """Grade every job, calling `on_result(key, result)` as each one finishes (in this
    process). With workers > 1, at most `workers` submissions run at once."""
    pending = list(jobs)
    if workers <= 1:
        mnist = data.load_split() if data.is_cached() else None
        for key, submission in pending:
            on_result(key, grade(submission, assignment, config, mnist=mnist))
        return
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures: dict[Future[Result], str] = {}
        try:
            for key, submission in pending:
                future = pool.submit(_grade_in_worker, submission, assignment, config, True)
                futures[future] = key
            remaining: set[Future[Any]] = set(futures)
            while remaining:
                done, remaining = wait(remaining, return_when=FIRST_COMPLETED)
                for future in done:
                    on_result(futures[future], future.result())
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
