"""Exports that import: Canvas's grade import filled from the roster, Gradescope's results with
hidden items kept hidden until released and a leaderboard of the measured accuracies."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from grader import exports
from grader.gradebook import Gradebook, result_key
from grader.intake import roster
from grader.results import Handin, Item, Result, RunRecord, StoredResult

ROSTER = ('\ufeffStudent,ID,SIS User ID,SIS Login ID,Section,Homework 4 (88)\r\n'
          '    Points Possible,,,,,14\r\n'
          '"Smith, John",1001,S1001,jsmith,Lab A,\r\n'
          '"Núñez, José",1002,S1002,jnunez,Lab B,\r\n'
          '"Zhang, Wei",1003,S1003,wzhang,Lab A,\r\n'
          '"Student, Test",9999,,,Lab A,\r\n')


@pytest.fixture
def rows(tmp_path: Path) -> list[StoredResult]:
    """Three graded students as a Canvas download names them, one not on the roster; W6
    results with a hidden item and the accuracies the grader measured."""
    book = Gradebook(tmp_path / "gradebook.sqlite")
    for student, display, score in (("1001", "smithjohn", 9), ("1002", "núñezjosé", 12.5),
                                    ("1077", "strangerdan", 4)):
        for hw, notebook in (("W4", "W4_Homework.ipynb"), ("W6", "W6_MNIST_FC.ipynb")):
            items = [Item("test_runs", 2, 2, "", False, "passed"),
                     Item("test_secret", score - 2, 12, "", True, "partial", "Hidden check")]
            evidence = {"accuracy": {"test": 0.9812, "holdout": 0.97654}} if hw == "W6" else {}
            book.store(hw, result_key(student, notebook, "h", "1", "d"),
                       Result(student, notebook, "h", RunRecord("completed"), items,
                              evidence=evidence))
            book.record_handin(hw, student, notebook, Handin(display_name=display))
    found = book.results()
    book.close()
    return found


def canvas_reads(path: Path) -> dict[str, dict[str, str]]:
    """The CSV as Canvas's gradebook import reads it: the header names the columns, the
    Points Possible row is not a student, a student is found by ID (then SIS ids)."""
    with path.open(encoding="utf-8", newline="") as handle:
        table = list(csv.DictReader(handle))
    return {row["ID"]: row for row in table if row["Student"].strip() != "Points Possible"}


def test_the_canvas_import_is_filled_from_the_roster(rows, tmp_path: Path):
    people = tmp_path / "roster.csv"
    people.write_text(ROSTER, encoding="utf-8", newline="")
    options = exports.Options(points={"W4": 14, "W6": 14}, roster=roster.load(people))
    path = exports.write("canvas", rows, tmp_path / "out", options)
    with path.open(encoding="utf-8", newline="") as handle:
        header, points, *students = list(csv.reader(handle))
    assert header == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "W4", "W6"]
    assert points == ["    Points Possible", "", "", "", "", "14", "14"]
    assert len(students) == 3  # one per roster student (the test student is none)
    read = canvas_reads(path)
    assert read["1001"] == {"Student": "Smith, John", "ID": "1001", "SIS User ID": "S1001",
                            "SIS Login ID": "jsmith", "Section": "Lab A", "W4": "9",
                            "W6": "9"}
    assert (read["1002"]["W4"], read["1003"]["W4"]) == ("12.5", "")  # nothing handed in
    assert options.warnings == ["1077 was graded but is not on the roster: left out of the "
                                "Canvas import"]


@pytest.mark.parametrize("released, shown", [("hidden", "hidden"),
                                             ("after_due", "after_due_date"),
                                             ("visible", "visible")])
def test_gradescope_keeps_hidden_items_hidden_until_released(rows, tmp_path: Path, released,
                                                             shown):
    options = exports.Options(released={"W4": released, "W6": released})
    folder = exports.write("gradescope", rows, tmp_path, options)
    result = json.loads((folder / "1001_W6_MNIST_FC.results.json").read_text(encoding="utf-8"))
    assert {t["name"]: t["visibility"] for t in result["tests"]} == {
        "Runs": "visible", "Hidden check": shown}
    assert result["leaderboard"] == [
        {"name": "Test accuracy", "value": 0.9812, "order": "desc"},
        {"name": "Hold-out accuracy", "value": 0.9765, "order": "desc"}]
    w4 = json.loads((folder / "1001_W4_Homework.results.json").read_text(encoding="utf-8"))
    assert "leaderboard" not in w4
