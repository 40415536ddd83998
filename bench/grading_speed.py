"""How fast a class is graded: torchgrade `--jobs 1` and `--jobs 2` against nbgrader's autograde.

    python bench/grading_speed.py [--runs 3] [--copies 4] [--nbgrader-venv DIR] [--no-nbgrader]
                                  [--no-cold]

torchgrade runs with its warm start (agents and kernels forked from a fork server that has
torch imported; the default), and once more with `--jobs 2 --cold-start` (fresh interpreters,
as before the warm start existed) unless `--no-cold`.

The class: the five W4 example submissions (submissions/*_W4_Homework.ipynb), `--copies` of
each (20 by default), every copy with a distinct comment in its first code cell so that no two
content hashes agree. Every timed torchgrade run writes to a fresh `--out` folder, so nothing is
skipped as unchanged.

nbgrader grades the same notebooks on the same machine in the same invocation. Its course is
generated into a temporary folder: `source/W4/W4_Homework.ipynb` is the W4 template with the
solution's code in nbgrader solution cells, the derivative expressions as a manually graded
answer, and three autograder test cells equivalent to the W4 rubric's code checks (gradients
against autograd on fresh random inputs with partial credit, no autograd inside `gradients`,
the trained net's fit on the slide data). `nbgrader generate_assignment W4` releases it. Each
student's submission is the released notebook with the student's cells put in place of the
released ones (a cell keeps the released cell's nbgrader metadata where the cell types agree)
and the locked test cells after them, as a student who worked in the released file hands it
in. `nbgrader autograde W4` then runs them one at a time, as nbgrader does.

nbgrader lives in its own virtual environment (default ~/.cache/torchgrade-bench/nbgrader-venv),
created when missing with
    python3 -m venv DIR && DIR/bin/pip install nbgrader torch==2.14.1 matplotlib
and the comparison is skipped with a message when it cannot be.
Runs are interleaved (ours --jobs 1, ours --jobs 2, ours --jobs 2 cold, nbgrader; then again),
and each figure is the median of `--runs`. Last, the machine's own ceiling for `--jobs 2`: how
much two CPU-bound Python processes at once get done against one alone (a virtual machine's two
CPUs may give well under 2x).
"""

from __future__ import annotations

import argparse
import ast
import csv
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat

from grader.errors import GraderError

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ("alice", "bob", "carol", "dave", "erin")
NOTEBOOK = "W4_Homework.ipynb"
DEFAULT_VENV = Path.home() / ".cache" / "torchgrade-bench" / "nbgrader-venv"
NBGRADER_PACKAGES = ("nbgrader", "torch==2.14.1", "matplotlib")

#: The W4 rubric's code checks, as nbgrader autograder test cells (they run in the student's
#: kernel, as nbgrader's tests do). A cell whose last value is a number earns that many points.
TEST_CELLS = (
    ("test_gradients", 6, '''\
# gradients(X, Y, W1, b1, W2, b2) against autograd, on fresh random inputs
import numpy as np
import torch


def _reference_gradients(X, Y, W1, b1, W2, b2):
    params = [p.clone().requires_grad_() for p in (W1, b1, W2, b2)]
    Y_pred = torch.sigmoid(X @ params[0] + params[1]) @ params[2] + params[3]
    ((Y - Y_pred) ** 2).sum().backward()
    return [p.grad for p in params]


_rng = np.random.default_rng()
_right = [True] * 4
for _n, _h in ((1, 3), (7, 10), (50, 20)):
    _shapes = ((_n, 1), (_n, 1), (1, _h), (_h,), (_h, 1), (1,))
    _problem = [torch.from_numpy(_rng.standard_normal(s)) for s in _shapes]
    for _i, (_mine, _ref) in enumerate(zip(gradients(*_problem), _reference_gradients(*_problem))):
        _right[_i] = _right[_i] and tuple(_mine.shape) == tuple(_ref.shape) and bool(
            torch.allclose(_mine.double(), _ref, rtol=1e-6, atol=1e-9))
assert any(_right), "no gradient matches autograd"
6 * sum(_right) / 4'''),
    ("test_no_autograd", 2, '''\
# gradients is derived by hand: no autograd in its source, and it runs under no_grad
import ast
import inspect

_tree = ast.parse(inspect.getsource(gradients))
_used = {n.attr for n in ast.walk(_tree) if isinstance(n, ast.Attribute)}
_used |= {n.arg for n in ast.walk(_tree) if isinstance(n, ast.keyword)}
assert not _used & {"backward", "grad", "requires_grad_", "requires_grad"}, "uses autograd"
_rng = np.random.default_rng()
with torch.no_grad():
    gradients(*[torch.from_numpy(_rng.standard_normal(s))
                for s in ((5, 1), (5, 1), (1, 4), (4,), (4, 1), (1,))])'''),
    ("test_trained_fit", 2, '''\
# the trained W1, b1, W2, b2 fit the slide data
torch.manual_seed(1)
_x = torch.unsqueeze(torch.linspace(-1, 1, 100), dim=1)
_y = _x.pow(2) + 0.2 * torch.rand(_x.size())
_params = [p.double() for p in (W1, b1, W2, b2)]
_mse = ((forward(_x.double(), *_params) - _y.double()) ** 2).mean().item()
assert _mse < 0.01, f"MSE {_mse:.4f}"'''),
)


class BenchError(GraderError):
    """A step of the benchmark failed; the message says which and where its log is."""


@dataclass
class Timed:
    seconds: float
    scores: dict[str, tuple[float, float]]  # student -> (score, max)


# ---------------------------------------------------------------------- the class

def student_notebooks(copies: int) -> dict[str, nbformat.NotebookNode]:
    """`copies` distinct copies of each W4 example: alice1 ... erin4."""
    found: dict[str, nbformat.NotebookNode] = {}
    for name in EXAMPLES:
        for k in range(1, copies + 1):
            nb = nbformat.read(ROOT / "submissions" / f"{name}_{NOTEBOOK}", as_version=4)
            first = next(c for c in nb.cells if c.cell_type == "code")
            first.source = f"# {name}, copy {k}\n{first.source}"
            found[f"{name}{k}"] = nb
    return found


def write_flat(folder: Path, notebooks: dict[str, nbformat.NotebookNode]) -> None:
    folder.mkdir(parents=True)
    for student, nb in notebooks.items():
        nbformat.write(nb, folder / f"{student}_{NOTEBOOK}")


# ---------------------------------------------------------------------- torchgrade

#: (key, --jobs, extra flags) of each torchgrade configuration timed
CONFIGS = [("jobs 1", 1, []), ("jobs 2", 2, []), ("jobs 2 cold", 2, ["--cold-start"])]
LABELS = {"jobs 1": "torchgrade --jobs 1", "jobs 2": "torchgrade --jobs 2",
          "jobs 2 cold": "torchgrade --jobs 2 --cold-start", "nbgrader": "nbgrader autograde"}


def time_torchgrade(submissions: Path, jobs: int, out: Path, flags: list[str]) -> Timed:
    start = time.perf_counter()
    grade = Path(sys.executable).parent / "grade"  # the environment's own `grade` script
    done = subprocess.run([str(grade), str(submissions), "--hw", "W4", "--jobs", str(jobs),
                           "--out", str(out), *flags], cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise BenchError(f"grade --jobs {jobs} exited {done.returncode}: {done.stderr[-2000:]}")
    with sqlite3.connect(out / "gradebook.sqlite") as db:
        rows = db.execute("SELECT student, total, max FROM results").fetchall()
    return Timed(seconds, {student: (total, top) for student, total, top in rows})


# ---------------------------------------------------------------------- nbgrader

def ensure_venv(venv: Path) -> Path | None:
    """The nbgrader virtual environment's bin folder, created if missing; None if impossible."""
    nbgrader = venv / "bin" / "nbgrader"
    if nbgrader.exists():
        return nbgrader.parent
    print(f"creating {venv}: python3 -m venv, pip install {' '.join(NBGRADER_PACKAGES)} "
          "(a few minutes)", flush=True)
    try:
        subprocess.run([_base_python(), "-m", "venv", str(venv)], check=True,
                       capture_output=True)
        subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet",
                        *NBGRADER_PACKAGES], check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        detail = (getattr(exc, "stderr", b"") or b"").decode(errors="replace").strip()
        why = detail.splitlines()[-1] if detail else str(exc)
        print(f"nbgrader skipped: could not create {venv}: {why}")
        return None
    return nbgrader.parent if nbgrader.exists() else None


def _base_python() -> str:
    """The interpreter this venv was made from, so the nbgrader venv gets the same Python."""
    return str(Path(sys.base_prefix) / "bin" / f"python{sys.version_info[0]}."
               f"{sys.version_info[1]}")


def _solution_cell(template: str, solution: str) -> str:
    """The template's header (up to its TODO), then the solution's code between nbgrader's
    solution markers: `generate_assignment` turns it back into the template's stub."""
    lines = template.splitlines()
    todo = next(i for i, line in enumerate(lines) if "TODO" in line)
    indent = lines[todo][: len(lines[todo]) - len(lines[todo].lstrip())]
    start = todo
    tree = ast.parse(solution)
    if isinstance(tree.body[0], ast.FunctionDef):
        fn = tree.body[0]
        start = (fn.body[1] if ast.get_docstring(fn) is not None else fn.body[0]).lineno - 1
    body = solution.splitlines()[start:]
    return "\n".join([*lines[:todo], f"{indent}### BEGIN SOLUTION", *body,
                      f"{indent}### END SOLUTION"])


def _meta(grade_id: str, *, solution: bool = False, grade: bool = False, locked: bool = False,
          points: float | None = None) -> dict[str, object]:
    meta: dict[str, object] = {"grade": grade, "grade_id": grade_id, "locked": locked,
                               "schema_version": 3, "solution": solution, "task": False}
    if points is not None:
        meta["points"] = points
    return {"nbgrader": meta}


def nbgrader_source() -> nbformat.NotebookNode:
    """The instructor's W4 notebook for nbgrader: template, solutions, autograder tests."""
    folder = ROOT / "assignments" / "W4"
    template = nbformat.read(folder / NOTEBOOK, as_version=4)
    solution = nbformat.read(folder / "solution" / NOTEBOOK, as_version=4)
    solved = {3: "forward", 4: "gradients", 6: "training"}
    for index, cell in enumerate(template.cells):
        if index in solved:
            cell.source = _solution_cell(cell.source, solution.cells[index].source)
            cell.metadata.update(_meta(solved[index], solution=True))
        elif index == 8:
            cell.source = solution.cells[index].source
            cell.metadata.update(_meta("expressions", solution=True, grade=True, points=4))
    for grade_id, points, source in TEST_CELLS:
        template.cells.append(nbformat.v4.new_code_cell(
            source, metadata=_meta(grade_id, grade=True, locked=True, points=points)))
    return template


def nbgrader_submission(released: nbformat.NotebookNode,
                        student: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The released notebook as this student hands it in: their cells, with the released
    cell's nbgrader metadata where the cell types agree, then the locked test cells."""
    tests = [c for c in released.cells if c.metadata.get("nbgrader", {}).get("locked")
             and c.metadata["nbgrader"].get("grade")]
    work = [c for c in released.cells if c not in tests]
    cells = []
    for index, cell in enumerate(student.cells):
        mine = nbformat.from_dict(dict(cell))
        mine.pop("id", None)
        mine.metadata = {}
        if index < len(work) and work[index].cell_type == cell.cell_type:
            mine.metadata = nbformat.from_dict(dict(work[index].metadata))
        cells.append(mine)
    nb = nbformat.from_dict(dict(released))
    nb.cells = [*cells, *[nbformat.from_dict(dict(c)) for c in tests]]
    for cell in nb.cells:
        cell.pop("id", None)
    nb.nbformat_minor = 4  # ids are assigned afresh by nbgrader's DeduplicateIds
    return nb


def _nbgrader(bin_dir: Path, course: Path, *args: str) -> float:
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env["PATH"] = f"{bin_dir}:{env.get('PATH', '')}"
    env["JUPYTER_CONFIG_DIR"] = str(course / ".jupyter")
    log = course / "nbgrader.log"
    start = time.perf_counter()
    with log.open("a") as sink:
        done = subprocess.run([str(bin_dir / "nbgrader"), *args], cwd=course, env=env,
                              stdout=sink, stderr=subprocess.STDOUT)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        tail = " | ".join(log.read_text(errors="replace").strip().splitlines()[-5:])
        raise BenchError(f"nbgrader {' '.join(args)} exited {done.returncode}: {tail}")
    return seconds


def build_course(course: Path, bin_dir: Path, notebooks: dict[str, nbformat.NotebookNode]) -> None:
    """An nbgrader course with W4 released and every student's notebook submitted."""
    (course / "source" / "W4").mkdir(parents=True)
    (course / "nbgrader_config.py").write_text(
        "c = get_config()\n"
        "c.CourseDirectory.course_id = 'torchgrade-bench'\n"
        f"c.CourseDirectory.root = {str(course)!r}\n"
        "c.Execute.timeout = 300\n")
    nbformat.write(nbgrader_source(), course / "source" / "W4" / NOTEBOOK)
    _nbgrader(bin_dir, course, "generate_assignment", "W4", "--force")
    released = nbformat.read(course / "release" / "W4" / NOTEBOOK, as_version=4)
    for student, nb in notebooks.items():
        folder = course / "submitted" / student / "W4"
        folder.mkdir(parents=True)
        nbformat.write(nbgrader_submission(released, nb), folder / NOTEBOOK)


def time_nbgrader(course: Path, bin_dir: Path) -> float:
    """One `nbgrader autograde W4` over every submission, from nothing autograded."""
    shutil.rmtree(course / "autograded", ignore_errors=True)
    return _nbgrader(bin_dir, course, "autograde", "W4", "--force")


def nbgrader_scores(course: Path, bin_dir: Path) -> dict[str, tuple[float, float]]:
    """Each student's autograded points and the autogradable maximum, from `nbgrader export`."""
    _nbgrader(bin_dir, course, "export", "--to", str(course / "grades.csv"))
    with (course / "grades.csv").open() as f:
        return {row["student_id"]: (float(row["raw_score"]), float(row["max_score"]))
                for row in csv.DictReader(f)}


def warm_up(bin_dir: Path | None) -> None:
    """Read torch and matplotlib into the page cache from both environments before timing, so
    neither side's first notebook pays for the disk."""
    pythons = [ROOT / ".venv" / "bin" / "python"]
    if bin_dir is not None:
        pythons.append(bin_dir / "python")
    for python in pythons:
        subprocess.run([str(python), "-c", "import torch, matplotlib.pyplot"], check=True,
                       capture_output=True)


# ---------------------------------------------------------------------- the report

def per_example(scores: dict[str, tuple[float, float]]) -> str:
    parts = []
    for name in EXAMPLES:
        mine = sorted({scores[s] for s in scores if s.rstrip("0123456789") == name})
        parts.append(f"{name} " + ",".join(f"{got:g}/{top:g}" for got, top in mine))
    return "; ".join(parts)


SPIN = "import time\nt = time.perf_counter()\nx = 0\nfor i in range(20_000_000):\n    x += i\n" \
       "print(time.perf_counter() - t)"


def spin_seconds(together: int) -> float:
    """Seconds `together` pure-Python loops take when started at once (the slowest): what
    this machine's cores give processes side by side, whatever its CPU count says."""
    procs = [subprocess.Popen([sys.executable, "-c", SPIN], stdout=subprocess.PIPE, text=True)
             for _ in range(together)]
    return max(float(p.communicate()[0]) for p in procs)


def parallel_capacity(rounds: int = 3) -> float:
    """How much two CPU-bound processes at once get done against one alone, median of
    `rounds`: the ceiling of `--jobs 2` against `--jobs 1` on this machine (2.0 on two
    real cores)."""
    ratios = [2 * spin_seconds(1) / spin_seconds(2) for _ in range(rounds)]
    return statistics.median(ratios)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--copies", type=int, default=4, help="copies of each of the 5 examples")
    parser.add_argument("--nbgrader-venv", type=Path, default=DEFAULT_VENV)
    parser.add_argument("--no-nbgrader", action="store_true", help="time torchgrade only")
    parser.add_argument("--no-cold", action="store_true", help="skip the --cold-start runs")
    args = parser.parse_args()
    configs = [c for c in CONFIGS if not (args.no_cold and "--cold-start" in c[2])]
    notebooks = student_notebooks(args.copies)
    count = len(notebooks)
    bin_dir = None if args.no_nbgrader else ensure_venv(args.nbgrader_venv)
    times: dict[str, list[float]] = {key: [] for key, _, _ in configs}
    times["nbgrader"] = []
    scores: dict[str, dict[str, tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="torchgrade-bench-") as name:
        scratch = Path(name)
        write_flat(scratch / "class", notebooks)
        if bin_dir is not None:
            build_course(scratch / "course", bin_dir, notebooks)
        warm_up(bin_dir)
        for run in range(args.runs):
            for key, jobs, flags in configs:
                load = os.getloadavg()[0]
                out = scratch / f"out-{key.replace(' ', '-')}-{run}"
                timed = time_torchgrade(scratch / "class", jobs, out, flags)
                times[key].append(timed.seconds)
                scores[key] = timed.scores
                print(f"run {run + 1}: {LABELS[key]:<32} {timed.seconds:6.1f} s   "
                      f"(load average before: {load:.2f})", flush=True)
            if bin_dir is not None:
                load = os.getloadavg()[0]
                times["nbgrader"].append(time_nbgrader(scratch / "course", bin_dir))
                print(f"run {run + 1}: {LABELS['nbgrader']:<32} {times['nbgrader'][-1]:6.1f} s   "
                      f"(load average before: {load:.2f})", flush=True)
        if bin_dir is not None:
            scores["nbgrader"] = nbgrader_scores(scratch / "course", bin_dir)
    capacity = parallel_capacity()
    report(times, scores, count, args.runs)
    print(f"this machine runs two CPU-bound processes at once {capacity:.2f}x as fast as one "
          f"(the ceiling for --jobs 2 against --jobs 1); --jobs 2 reached "
          f"{statistics.median(times['jobs 1']) / statistics.median(times['jobs 2']):.2f}x")


def report(times: dict[str, list[float]], scores: dict[str, dict[str, tuple[float, float]]],
           count: int, runs: int) -> None:
    median = {k: statistics.median(v) for k, v in times.items() if v}
    print(f"{count} W4 notebooks, {os.cpu_count()} CPU cores, median of {runs} "
          f"run{'s' if runs > 1 else ''}:")
    for key, seconds in median.items():
        print(f"  {LABELS[key]:<32} {seconds:6.1f} s   {seconds / count:5.2f} s per notebook")
    for key, _, _ in CONFIGS:
        if key in scores:
            graded = len(scores[key])
            print(f"  scores, {LABELS[key]} ({graded} graded): "
                  f"{per_example(scores[key])}")
    if "nbgrader" in scores:
        print(f"  scores, nbgrader autograded points ({len(scores['nbgrader'])} graded; the "
              f"4 points of derivative expressions are left to a human): "
              f"{per_example(scores['nbgrader'])}")
    if "jobs 2 cold" in median:
        print(f"the warm start makes --jobs 2 {median['jobs 2 cold'] / median['jobs 2']:.1f}x "
              f"as fast as --jobs 2 --cold-start")
    if "nbgrader" in median:
        if "jobs 2 cold" in median:
            print(f"--jobs 2 --cold-start is {median['nbgrader'] / median['jobs 2 cold']:.1f}x "
                  f"the speed of nbgrader")
        print(f"--jobs 1 is {median['nbgrader'] / median['jobs 1']:.1f}x the speed of nbgrader")
        print(f"{median['nbgrader'] / median['jobs 2']:.1f}× faster than nbgrader "
              f"(torchgrade --jobs 2 against nbgrader autograde, wall time)")


if __name__ == "__main__":
    try:
        main()
    except BenchError as exc:
        sys.exit(f"error: {exc}")
