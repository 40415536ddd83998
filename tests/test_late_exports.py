"""The late policy at export and on the pages: applied to stored results, never stored, so a
moved due date or an extension changes the totals without a regrade."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from grader import assignments
from grader.cli import main
from grader.gradebook import Gradebook, result_key
from grader.results import Handin, Item, Result, RunRecord

ROOT = Path(__file__).resolve().parent.parent
LATE = '''
[due]
at = {due}
{extensions}
[late]
per = "day"
penalty = 0.1
cap = 0.5
'''


def write_policy(rubrics: Path, due: str, extensions: str = "") -> None:
    toml = rubrics / "W4" / "assignment.toml"
    base = toml.read_text(encoding="utf-8").split("\n[due]")[0]
    toml.write_text(base + LATE.format(due=due, extensions=extensions), encoding="utf-8")


@pytest.fixture
def term(tmp_path: Path) -> tuple[Path, Path]:
    """A gradebook of two W4 results, 10 of 14 each, handed in a day and two hours, and three
    hours, after 2026-10-05 23:59 +08:00; and a copy of the assignments to edit."""
    rubrics = tmp_path / "assignments"
    shutil.copytree(ROOT / "assignments", rubrics)
    grades = tmp_path / "grades"
    book = Gradebook(grades / "gradebook.sqlite")
    for student, at in (("alice", "2026-10-07T02:00:00+08:00"),
                        ("bob", "2026-10-06T02:59:00+08:00")):
        items = [Item("test_gradients", 6, 10, "", False, "partial"),
                 Item("test_derivative_expressions", 4, 4, "", False, "passed")]
        book.store("W4", result_key(student, "W4_Homework.ipynb", "h", "1", "d"),
                   Result(student, "W4_Homework.ipynb", "h", RunRecord("completed"), items))
        book.record_handin("W4", student, "W4_Homework.ipynb", Handin(submitted_at=at))
    book.close()
    return rubrics, grades


def exported_totals(rubrics: Path, grades: Path) -> dict[str, float]:
    done = CliRunner().invoke(main, ["export", "--out", str(grades), "--assignments",
                                     str(rubrics)], catch_exceptions=False)
    assert done.exit_code == 0, done.output
    with (grades / "gradebook.csv").open(encoding="utf-8") as handle:
        return {row["student"]: float(row["total"]) for row in csv.DictReader(handle)}


def test_moving_the_due_date_changes_the_exported_totals_without_a_regrade(term):
    rubrics, grades = term
    write_policy(rubrics, "2026-10-05T23:59:00+08:00")
    digest = assignments.load(rubrics / "W4").digest()
    assert exported_totals(rubrics, grades) == {"alice": 10 - 2 * 1.4, "bob": 10 - 1.4}
    write_policy(rubrics, "2026-10-06T23:59:00+08:00")
    assert assignments.load(rubrics / "W4").digest() == digest  # the same keys: no regrade
    assert exported_totals(rubrics, grades) == {"alice": 10 - 1.4, "bob": 10}


def test_an_extension_removes_one_students_penalty(term):
    rubrics, grades = term
    (rubrics / "W4" / "extensions.csv").write_text(
        "student,due\nalice,2026-10-08T23:59:00+08:00\n", encoding="utf-8")
    write_policy(rubrics, "2026-10-05T23:59:00+08:00", 'extensions = "extensions.csv"')
    assert exported_totals(rubrics, grades) == {"alice": 10, "bob": 10 - 1.4}
    with (grades / "gradebook.csv").open(encoding="utf-8") as handle:
        bob = next(r for r in csv.DictReader(handle) if r["student"] == "bob")
    assert float(bob["late_penalty"]) == pytest.approx(1.4)
    assert bob["lateness"].startswith("handed in 3 hours late")


def test_the_student_page_says_how_late_and_what_it_cost(term, tmp_path: Path):
    rubrics, grades = term
    write_policy(rubrics, "2026-10-05T23:59:00+08:00")
    done = CliRunner().invoke(main, ["publish", "--gradebook", str(grades), "--out",
                                     str(tmp_path / "site"), "--assignments", str(rubrics)],
                              catch_exceptions=False)
    assert done.exit_code == 0, done.output
    pages = [p.read_text(encoding="utf-8") for p in (tmp_path / "site" / "s").glob("*.html")]
    alice = next(p for p in pages if "alice" in p)
    assert "handed in 1 day 2 hours late" in alice and "(−2.8 points)" in alice
    assert 'id="total">7.2 / 14<' in alice
