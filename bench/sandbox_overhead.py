"""What grading one notebook costs beyond the student's own code, and how much memory a sandbox
takes.

    python bench/sandbox_overhead.py [--runs 10]

Three figures:

1. The sandbox alone: start the agent, start a kernel, execute one cell, answer one probe, tear
   everything down (bubblewrap, cgroup, kernel); with bubblewrap and the warm start (the
   default: agent and kernel forked from the fork server), with bubblewrap and a cold start
   (fresh interpreters, `grade --cold-start`), and without bubblewrap (resource limits only),
   median of `--runs` each, interleaved. Then the same, warm and cold, for a notebook that
   imports torch and pyplot, as the course's notebooks do, with its pyplot import on its own.
2. The whole per-notebook overhead: an empty notebook graded through `grader.judge.grade.grade()`
   (staging, sandbox, kernel, the run, a one-test rubric that asks one probe, the environment
   probe, tear-down), then its HTML page (`grader.report.render_student`, when the report
   package is there); warm and cold. Median of `--runs`, after one warm-up that is printed on
   its own: the first grading in a process also pays for importing pytest and the rubric's
   modules, and starts the fork server.
3. Peak memory per sandbox: what the run's cgroup saw at its highest (`RunRecord.peak_memory`)
   for the empty notebook, a notebook that imports torch, and each W4 example submission, warm
   and cold; and the fork server's own resident memory (once per grading process).
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
from grader.judge.grade import grade
from grader.results import Result, RunRecord
from grader.sandbox import ResourceLimits, Sandbox, SandboxConfig, warm

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


def one_run(folder: Path, sandboxed: bool, name: str = "empty.ipynb",
            warm_start: bool = True) -> tuple[float, RunRecord]:
    start = time.perf_counter()
    config = SandboxConfig(sandboxed=sandboxed, warm=warm_start)
    with Sandbox(config).open(folder, name) as session:
        record = session.execute()
        session.call("f", np.zeros(3), torch=False)
    assert record.outcome == "completed", record.reason
    assert session.warm == (sandboxed and warm_start), "the warm start did not happen"
    return time.perf_counter() - start, record


def sandbox_alone(folder: Path, runs: int) -> None:
    one_run(folder, True)  # start the fork server, warm the page cache for all three
    one_run(folder, True, warm_start=False)
    warm_runs, cold_runs, plain, peaks = [], [], [], []
    for _ in range(runs):  # interleaved, so drift affects all alike
        seconds, record = one_run(folder, True)
        warm_runs.append(seconds)
        peaks.append(record.peak_memory or 0)
        cold_runs.append(one_run(folder, True, warm_start=False)[0])
        plain.append(one_run(folder, False)[0])
    fast, cold = statistics.median(warm_runs), statistics.median(cold_runs)
    without = statistics.median(plain)
    print(f"empty notebook, median of {runs}: sandboxed, warm start {fast:.2f} s; sandboxed, "
          f"cold start {cold:.2f} s; not sandboxed (cold) {without:.2f} s; the sandbox adds "
          f"{cold - without:+.2f} s to a cold start; the warm start saves {cold - fast:.2f} s "
          f"({cold / fast:.2f}x); peak memory of a warm sandboxed run "
          f"{statistics.median(peaks) / 2**20:.0f} MB")
    for how, warm_start in (("warm", True), ("cold", False)):
        plotting = [one_run(folder, True, "plotting.ipynb", warm_start) for _ in range(runs)]
        pyplot = statistics.median(record.cells[1].seconds for _, record in plotting)
        print(f"a notebook that imports torch and pyplot, sandboxed, {how} start, median of "
              f"{runs}: {statistics.median(seconds for seconds, _ in plotting):.2f} s, its "
              f"pyplot import {pyplot:.2f} s")


def empty_assignment(folder: Path) -> assignments.Assignment:
    (folder / "public").mkdir(parents=True)
    (folder / "assignment.toml").write_text(ASSIGNMENT_TOML)
    notebook(folder, "empty.ipynb", "def f(x):\n    return x")
    (folder / "public" / "test_empty.py").write_text(RUBRIC)
    return assignments.load(folder)


def renderer() -> Callable[[Result], str] | None:
    """The student page renderer, when the report package provides one."""
    try:
        from grader.gradebook import as_stored
        from grader.report import render_student
    except ImportError:
        return None
    return lambda result: render_student(as_stored(result, "EMPTY"), result.run.notebook)


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
    render = renderer()
    for how, warm_start in (("warm", True), ("cold", False)):
        config = SandboxConfig(resources=ResourceLimits.for_run(4096, 120), cell_seconds=60,
                               notebook_seconds=120, warm=warm_start)
        first = graded_once(found[0], assignment, config, render)
        timings = [graded_once(found[0], assignment, config, render) for _ in range(runs)]
        total = statistics.median(g + r for g, r in timings)
        grading = statistics.median(g for g, _ in timings)
        page = (f", HTML page {statistics.median(r for _, r in timings):.2f} s" if render
                else "; the HTML page is not included (no grader.report.render_student)")
        print(f"whole per-notebook overhead, {how} start, empty notebook through grade() "
              f"(sandbox, kernel, probes, rubric{', report' if render else ''}), median of "
              f"{runs}: {total:.2f} s (grading {grading:.2f} s{page}); the first in a process "
              f"{sum(first):.2f} s")


def peak_of(folder: Path, name: str, warm_start: bool) -> int:
    config = SandboxConfig(resources=ResourceLimits.for_run(4096, 300), cell_seconds=120,
                           notebook_seconds=300, warm=warm_start)
    with Sandbox(config).open(folder, name) as session:
        session.execute()
    assert session.record is not None
    return session.record.peak_memory or 0


def resident_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def peak_memory(scratch: Path) -> None:
    folder = scratch / "peaks"
    folder.mkdir()
    notebook(folder, "empty.ipynb", "def f(x):\n    return x")
    notebook(folder, "torch.ipynb", "import torch\nx = torch.zeros(3)")
    examples = sorted((ROOT / "submissions").glob("*_W4_Homework.ipynb"))
    for path in examples:
        intake.repaired_copy(path, folder / path.name)
    names = [("empty notebook", "empty.ipynb"), ("`import torch`", "torch.ipynb")]
    names += [(f"W4 {p.name.split('_')[0]}", p.name) for p in examples]
    for how, warm_start in (("warm", True), ("cold", False)):
        figures = [(label, peak_of(folder, name, warm_start)) for label, name in names]
        if not any(peak for _, peak in figures):
            print("peak memory per sandbox: not measured (no cgroup on this machine)")
            return
        print(f"peak memory per sandbox, {how} start (its cgroup's high-water mark): "
              + "; ".join(f"{label} {peak / 2**20:.0f} MB" for label, peak in figures))
    server = warm._server
    if server is not None and server.alive():
        print(f"the fork server's resident memory (one per grading process, shared "
              f"copy-on-write with every sandbox it forks): {resident_mb(server.proc.pid):.0f} MB")


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
