"""What grading one notebook costs beyond the student's own code, and how much memory a sandbox
takes.

    python bench/sandbox_overhead.py [--runs 10]

Three figures:

1. The sandbox alone: start the agent, start a kernel, execute one cell, answer one probe, tear
   everything down (bubblewrap, cgroup, kernel); with bubblewrap and without it (resource
   limits only), median of `--runs` each, interleaved. Then the same for a notebook that
   imports torch and pyplot, as the course's notebooks do, with its pyplot import on its own.
2. The whole per-notebook overhead: an empty notebook graded through `grader.judge.grade.grade()`
   (staging, sandbox, kernel, the run, a one-test rubric that asks one probe, the environment
   probe, tear-down), then its HTML page (`grader.report.render_student`, when the report
   package is there). Median of `--runs`, after one warm-up that is printed on its own: the
   first grading in a process also pays for importing pytest and the rubric's modules.
3. Peak memory per sandbox: what the run's cgroup saw at its highest (`RunRecord.peak_memory`)
   for the empty notebook, a notebook that imports torch, and each W4 example submission.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import nbformat
import numpy as np

from grader import assignments, intake
from grader.judge.grade import Result, grade
from grader.sandbox import ResourceLimits, RunRecord, Sandbox, SandboxConfig

ROOT = Path(__file__).resolve().parent.parent
ASSIGNMENT_TOML = """\
[assignment]
name = "EMPTY"
title = "An empty notebook, for the overhead benchmark"

[limits]
notebook_seconds = 120
cell_seconds = 60
memory_mb = 4096

[[notebook]]
name = "empty.ipynb"
solution = "empty.ipynb"
points = 1
"""
RUBRIC = """\
import numpy as np
import pytest


@pytest.mark.points(1)
def test_f_answers(student):
    assert student.call("f", np.arange(3.0), torch=False)[0].tolist() == [0.0, 1.0, 2.0]
"""


def notebook(folder: Path, name: str, *sources: str) -> Path:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nbformat.write(nb, folder / name)
    return folder / name


def one_run(folder: Path, sandboxed: bool, name: str = "empty.ipynb") -> tuple[float, RunRecord]:
    start = time.perf_counter()
    with Sandbox(SandboxConfig(sandboxed=sandboxed)).open(folder, name) as session:
        record = session.execute()
        session.call("f", np.zeros(3), torch=False)
    assert record.outcome == "completed", record.reason
    return time.perf_counter() - start, record


def sandbox_alone(folder: Path, runs: int) -> None:
    one_run(folder, True)  # warm the page cache for both
    sandboxed, plain, peaks = [], [], []
    for _ in range(runs):  # interleaved, so drift affects both alike
        seconds, record = one_run(folder, True)
        sandboxed.append(seconds)
        peaks.append(record.peak_memory or 0)
        plain.append(one_run(folder, False)[0])
    with_bwrap, without = statistics.median(sandboxed), statistics.median(plain)
    print(f"empty notebook, median of {runs}: sandboxed {with_bwrap:.2f} s, "
          f"not sandboxed {without:.2f} s; the sandbox adds {with_bwrap - without:+.2f} s "
          f"({with_bwrap / without:.2f}x); peak memory of a sandboxed run "
          f"{statistics.median(peaks) / 2**20:.0f} MB")
    plotting = [one_run(folder, True, "plotting.ipynb") for _ in range(runs)]
    pyplot = statistics.median(record.cells[1].seconds for _, record in plotting)
    print(f"a notebook that imports torch and pyplot, sandboxed, median of {runs}: "
          f"{statistics.median(seconds for seconds, _ in plotting):.2f} s, its pyplot import "
          f"{pyplot:.2f} s")


def empty_assignment(folder: Path) -> assignments.Assignment:
    (folder / "public").mkdir(parents=True)
    (folder / "assignment.toml").write_text(ASSIGNMENT_TOML)
    notebook(folder, "empty.ipynb", "def f(x):\n    return x")
    (folder / "public" / "test_empty.py").write_text(RUBRIC)
    return assignments.load(folder)


def renderer() -> Callable[[Result], str] | None:
    """The student page renderer, when the report package provides one."""
    try:
        from grader.report import render_student
    except ImportError:
        return None
    return lambda result: render_student(result, "EMPTY")


def graded_once(submission: intake.Submission, assignment: assignments.Assignment,
                config: SandboxConfig,
                render: Callable[[Result], str] | None) -> tuple[float, float]:
    """(seconds to grade, seconds to render the page) for one grading."""
    start = time.perf_counter()
    result = grade(submission, assignment, config)
    graded = time.perf_counter()
    assert result.run.outcome == "completed", result.run.reason
    assert result.total == 1.0, [(i.name, i.feedback) for i in result.items]
    if render is not None:
        render(result)
    return graded - start, time.perf_counter() - graded


def whole_overhead(scratch: Path, runs: int) -> None:
    assignment = empty_assignment(scratch / "EMPTY")
    handed_in = notebook(scratch, "student_empty.ipynb", "def f(x):\n    return x")
    found, _ = intake.collect(handed_in, assignment, scratch)
    config = SandboxConfig(resources=ResourceLimits.for_run(4096, 120), cell_seconds=60,
                           notebook_seconds=120)
    render = renderer()
    first = graded_once(found[0], assignment, config, render)
    timings = [graded_once(found[0], assignment, config, render) for _ in range(runs)]
    total = statistics.median(g + r for g, r in timings)
    grading = statistics.median(g for g, _ in timings)
    page = (f", HTML page {statistics.median(r for _, r in timings):.2f} s"
            if render else "; the HTML page is not included (no grader.report.render_student)")
    print(f"whole per-notebook overhead, empty notebook through grade() (sandbox, kernel, "
          f"probes, rubric{', report' if render else ''}), median of {runs}: {total:.2f} s "
          f"(grading {grading:.2f} s{page}); the first in a process {sum(first):.2f} s")


def peak_of(folder: Path, name: str) -> int:
    config = SandboxConfig(resources=ResourceLimits.for_run(4096, 300), cell_seconds=120,
                           notebook_seconds=300)
    with Sandbox(config).open(folder, name) as session:
        session.execute()
    assert session.record is not None
    return session.record.peak_memory or 0


def peak_memory(scratch: Path) -> None:
    folder = scratch / "peaks"
    folder.mkdir()
    notebook(folder, "empty.ipynb", "def f(x):\n    return x")
    notebook(folder, "torch.ipynb", "import torch\nx = torch.zeros(3)")
    examples = sorted((ROOT / "submissions").glob("*_W4_Homework.ipynb"))
    for path in examples:
        intake.repaired_copy(path, folder / path.name)
    figures = [("empty notebook", peak_of(folder, "empty.ipynb")),
               ("`import torch`", peak_of(folder, "torch.ipynb"))]
    figures += [(f"W4 {p.name.split('_')[0]}", peak_of(folder, p.name)) for p in examples]
    if not any(peak for _, peak in figures):
        print("peak memory per sandbox: not measured (no cgroup on this machine)")
        return
    print("peak memory per sandbox (its cgroup's high-water mark): "
          + "; ".join(f"{label} {peak / 2**20:.0f} MB" for label, peak in figures))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        scratch = Path(name)
        notebook(scratch, "empty.ipynb", "def f(x):\n    return x")
        notebook(scratch, "plotting.ipynb", "import torch",
                 "import matplotlib.pyplot as plt\ndef f(x):\n    return x")
        sandbox_alone(scratch, args.runs)
        whole_overhead(scratch, args.runs)
        peak_memory(scratch)


if __name__ == "__main__":
    main()
