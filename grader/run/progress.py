"""What the TA sees while a class is graded: a progress bar on stderr, and each result handed
to the caller (which stores it and prints its line) as one step Ctrl-C does not cut in two."""

from __future__ import annotations

import os
from collections import Counter

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from grader.results import Result
from grader.run.grading import OnResult
from grader.run.stop import InterruptGuard

OUTCOMES = ("completed", "error", "timeout", "killed", "failed")


class ProgressBar:
    """A bar on stderr while grading: done/total, the count of each outcome, elapsed and ETA.

    Result lines stay on stdout. The bar is drawn only when stderr is a terminal; stdout is
    routed above it only when stdout is that terminal too, so `grade ... > results.txt` keeps
    every result line in the file."""

    def __init__(self, total: int, console: Console | None = None,
                 enabled: bool = True) -> None:
        self.console = console or Console(stderr=True)
        self.counts: Counter[str] = Counter()
        both_terminal = self.console.is_terminal and os.isatty(1)
        self.progress = Progress(
            TextColumn("grading"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[counts]}"), TimeElapsedColumn(), TextColumn("ETA"),
            TimeRemainingColumn(), console=self.console,
            disable=not (enabled and self.console.is_terminal),
            redirect_stdout=both_terminal, redirect_stderr=False)
        self.task: TaskID = self.progress.add_task("grading", total=total, counts="")

    def __enter__(self) -> ProgressBar:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def advance(self, outcome: str) -> None:
        self.counts[outcome if outcome in OUTCOMES else "failed"] += 1
        self.progress.update(self.task, advance=1, counts=self.summary())

    def summary(self) -> str:
        known = [f"{o} {self.counts[o]}" for o in OUTCOMES if self.counts[o]]
        other = [f"{o} {n}" for o, n in sorted(self.counts.items()) if o not in OUTCOMES]
        return "  ".join(known + other)


class Reporter:
    """Hands each finished result to the caller, counts it and moves the bar, as one step that
    Ctrl-C does not cut in two."""

    def __init__(self, on_result: OnResult, guard: InterruptGuard, bar: ProgressBar) -> None:
        self.on_result, self.guard, self.bar = on_result, guard, bar
        self.done = 0

    def __call__(self, key: str, result: Result) -> None:
        with self.guard.holding():
            self.on_result(key, result)
            self.done += 1
            self.bar.advance(result.run.outcome)
