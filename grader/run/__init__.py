"""Which submission runs where. `run()` grades a batch and hands each result to the caller,
which alone writes the gradebook, one result at a time as each finishes:

    plan.py      how a run is laid out (`plan.plan()`): jobs at once, GPU slots, where
    stop.py      Ctrl-C kills what is in flight and loses nothing (`Interrupted`, exit 130)
    progress.py  the progress bar, and the hand-over of each result
    grading.py   a job, and what a grading process keeps across its gradings
    inline.py    one after another in this process (--jobs 1)
    pool.py      N worker processes on this machine sharing one fork server (--jobs N)
    dask.py      Dask workers (--cluster)
    slurm.py     the Slurm jobs that dask.py grades on (--cluster slurm): started, kept, ended

The backends share one interface (`Backend`) and import the modules above, never each other.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Protocol

from rich.console import Console

from grader.assignments import Assignment
from grader.run.dask import Dask
from grader.run.grading import Grading, Job, OnResult
from grader.run.inline import Inline
from grader.run.plan import Plan, PlanError, available_cores
from grader.run.pool import Pool
from grader.run.progress import ProgressBar, Reporter
from grader.run.stop import Interrupted, InterruptGuard
from grader.sandbox import Sandbox, SandboxConfig

__all__ = ["Backend", "Interrupted", "Job", "OnResult", "Plan", "PlanError", "backend_for", "run"]


class Backend(Protocol):
    #: True when gradings run in this process: a stop then kills this process's sandboxes
    #: instead of raising into a grading (grader.run.stop.InterruptGuard)
    stops_sandboxes_here: bool

    def run(self, pending: list[Job], report: Reporter) -> None:
        """Grade every job, calling `report(key, result)` in this process as each finishes;
        KeyboardInterrupt once a stop has ended what was in flight."""


def backend_for(layout: Plan, jobs: int, assignment: Assignment,
                config: SandboxConfig) -> Backend:
    """Where `jobs` submissions run under `layout`: a Dask cluster when it names one (Dask
    itself is imported only then: it is an optional extra), worker processes when more than
    one runs at once, else this process."""
    if layout.cluster is not None:
        return Dask(assignment, config, layout)
    Sandbox(config)  # no bubblewrap: one error now, not one per worker
    if min(layout.workers, jobs) > 1:
        return Pool(assignment, shared_cores(config, min(layout.workers, jobs)), layout)
    return Inline(assignment, config, layout, Grading())


def shared_cores(config: SandboxConfig, workers: int) -> SandboxConfig:
    """`config` for one of `workers` runs side by side on this machine: each kernel's torch
    gets its part of the cores (at least one) unless the TA set a number."""
    if config.torch_threads is not None:
        return config
    return replace(config, torch_threads=max(1, available_cores() // workers))


def run(jobs: Iterable[Job], assignment: Assignment, config: SandboxConfig,
        layout: Plan | int, on_result: OnResult, *, progress: bool = True,
        console: Console | None = None) -> int:
    """Grade every job, calling `on_result(key, result)` in this process as each finishes.
    Returns how many were graded; raises Interrupted on Ctrl-C (after stopping what runs)."""
    layout = layout if isinstance(layout, Plan) else Plan(workers=layout)
    pending = list(jobs)
    if not pending:
        return 0
    backend = backend_for(layout, len(pending), assignment, config)
    guard = InterruptGuard(stop_sandboxes=backend.stops_sandboxes_here, escalate=True)
    with guard, ProgressBar(len(pending), console, progress) as bar:
        reporter = Reporter(on_result, guard, bar)
        try:
            backend.run(pending, reporter)
        except KeyboardInterrupt:
            raise Interrupted(reporter.done, len(pending) - reporter.done) from None
    return reporter.done
