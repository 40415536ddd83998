"""Exports that import: Canvas's grade import filled from the roster, Gradescope's results with
hidden items kept hidden until released and a leaderboard of the measured accuracies."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from grader import exports, i18n
from grader.gradebook import Gradebook, result_key
from grader.intake import roster
from grader.judge import mistakes
from grader.results import Handin, Item, Result, RunRecord, StoredResult
from tests import reports

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


@pytest.fixture
def course(tmp_path: Path) -> Path:
    """The bundled assignments, W4 due 2026-10-05 23:59 (+08:00) at 10% a day."""
    return reports.late_course(tmp_path)


def graded_w4(grades: Path) -> None:
    """bob's W4 as the grader diagnoses it (the sigmoid's derivative left out of dW1 and db1,
    its structure kept), handed in a day and three hours late, with a TA's override; dave's
    notebook stopped at a NameError."""
    wrong = mistakes.summarize([mistakes.Verdict(name, 0.4, mistakes.Mistake.SIGMOID_DERIVATIVE)
                                for name in ("dW1", "db1")])
    items = [Item("test_gradients_match_the_derivation", 3, 6, str(wrong), False, "partial",
                  "The four gradients are right on fresh inputs", said=wrong.to_json()),
             Item("test_derivative_expressions", 4, 4, "all four expressions right", False,
                  "passed", "The derivatives written in markdown are right")]
    book = Gradebook(grades / "gradebook.sqlite")
    book.store("W4", result_key("bob", "W4_Homework.ipynb", "h", "1", "d"),
               Result("bob", "W4_Homework.ipynb", "h", RunRecord("completed"), items))
    book.record_handin("W4", "bob", "W4_Homework.ipynb",
                       Handin(submitted_at="2026-10-07T03:00:00+08:00"))
    book.set_override("W4", "bob", "W4_Homework.ipynb", "test_derivative_expressions", 3,
                      "the markdown copies the slide", "ta")
    book.store("W4", result_key("dave", "W4_Homework.ipynb", "h", "1", "d"),
               Result("dave", "W4_Homework.ipynb", "h", RunRecord(
                   "error", reason="cell 5: NameError: name 'h_sig' is not defined"), []))
    book.close()


def exported(grades: Path, course: Path, *flags: str) -> dict[str, dict]:
    from click.testing import CliRunner

    from grader.cli import main

    done = CliRunner().invoke(main, ["export", "--out", str(grades), "--format", "gradescope",
                                     "--assignments", str(course), *flags],
                              env={i18n.ENV: ""}, catch_exceptions=False)
    assert done.exit_code == 0, done.output
    return {path.name.split("_")[0]: json.loads(path.read_text(encoding="utf-8"))
            for path in (grades / "gradescope").glob("*.results.json")}


def test_gradescope_says_what_a_student_reads_in_chinese(tmp_path: Path, course: Path):
    """`grade export --format gradescope --lang zh`: the item titles (the course's catalog),
    the diagnosis (from its kept structure), the TA's reason for an override, the run's
    outcome and the lateness are what the Chinese page says; only code and names stay."""
    from tests.test_report_lang import english

    graded_w4(tmp_path / "grades")
    english_json = exported(tmp_path / "grades", course)
    chinese = exported(tmp_path / "grades", course, "--lang", "zh")
    bob = chinese["bob"]
    assert [t["name"] for t in bob["tests"]] == ["四个梯度在新输入上都正确",
                                                "用 Markdown 写出的导数正确"]
    assert bob["tests"][0]["output"] == \
        "dW1、db1：链式法则中缺少 sigmoid 的导数 h_sigmoid ⊙ (1 − h_sigmoid)"
    assert bob["tests"][1]["output"] == "四个表达式全部正确\n分数由课程助教给出：the markdown " \
        "copies the slide"  # the TA's words, as written
    assert bob["output"].startswith("迟交 1 天 3 小时（截止时间 2026-10-05 23:59 +08:00）")
    assert bob["score"] == english_json["bob"]["score"] == 6 - 2  # 20% of the 10 points
    assert chinese["dave"]["output"] == "出错：单元格 5：NameError: name 'h_sig' is not defined"
    said = [bob["output"], chinese["dave"]["output"].split("NameError")[0],
            *(t["name"] for t in bob["tests"]), bob["tests"][0]["output"],
            bob["tests"][1]["output"].replace("the markdown copies the slide", "")]
    assert not english("\n".join(said)), said
    assert english_json["bob"]["tests"][1]["output"] == ("all four expressions right\nScore "
                                                        "set by course staff: the markdown "
                                                        "copies the slide")
    assert english_json["dave"]["output"] == "error: cell 5: NameError: name 'h_sig' is not " \
        "defined"


def test_gradescope_follows_the_course_language(rows, tmp_path: Path):
    """A homework whose voice is Chinese (its toml's `lang`) gets a Chinese leaderboard; one
    without a voice follows `lang`, English by default."""
    folder = exports.write("gradescope", rows, tmp_path, exports.Options(
        voices={"W6": i18n.Voice("zh")}))
    w6 = json.loads((folder / "1001_W6_MNIST_FC.results.json").read_text(encoding="utf-8"))
    assert [b["name"] for b in w6["leaderboard"]] == ["测试集准确率", "保留集准确率"]
    assert [t["name"] for t in w6["tests"]] == ["Runs", "Hidden check"]  # no catalog has them
    w4 = json.loads((folder / "1001_W4_Homework.results.json").read_text(encoding="utf-8"))
    assert w4["tests"][0]["name"] == "Runs"
