"""Which file is which notebook: any name a student gives, by content where the name says
nothing, another homework handed in said so, and the latest of two candidates graded."""

from __future__ import annotations

import shutil
from pathlib import Path

from grader import assignments, intake
from grader.results import Match

W4 = assignments.find("W4")
W5 = assignments.find("W5")
W6 = assignments.find("W6")
SUBMISSIONS = Path(__file__).resolve().parent.parent / "submissions"


def hand_in(folder: Path, files: dict[str, str]) -> Path:
    """`folder` holding each example submission under the name a student gave it."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, example in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(SUBMISSIONS / example, folder / name)
    return folder


def collect(target: Path, assignment):
    return intake.collect(target, assignment, target.parent / "scratch")


def placed(found) -> dict[tuple[str, str], tuple[str, Match]]:
    return {(s.student, s.notebook.name): (s.handin.file, s.handin.match) for s in found}


def test_a_w5_class_named_its_own_way_is_placed_by_content_and_says_so(tmp_path):
    root = tmp_path / "class"
    hand_in(root / "alice", {"Regression.ipynb": "alice_W5_Regression_Batch.ipynb",
                             "save.ipynb": "alice_W5_Save_Model.ipynb"})
    hand_in(root / "bob", {"W6_Save_Model (2).ipynb": "bob_W6_Save_Model.ipynb"})
    hand_in(root / "carol", {"hw/regression final.ipynb": "carol_W5_Regression_Batch.ipynb"})
    found, rejected = collect(root, W5)
    assert rejected == []
    assert placed(found) == {
        ("alice", "W5_Regression_Batch.ipynb"): ("Regression.ipynb", Match.CONTENT),
        ("alice", "W5_Save_Model.ipynb"): ("save.ipynb", Match.CONTENT),
        ("bob", "W5_Save_Model.ipynb"): ("W6_Save_Model (2).ipynb", Match.LOOSE),
        ("carol", "W5_Regression_Batch.ipynb"): ("hw/regression final.ipynb", Match.CONTENT)}
    notes = {s.handin.file: s.handin.notes(s.notebook.name) for s in found}
    assert notes["Regression.ipynb"] == [
        "Regression.ipynb was matched by content to W5_Regression_Batch.ipynb"]
    assert notes["W6_Save_Model (2).ipynb"] == [
        "W6_Save_Model (2).ipynb was matched by its name to W5_Save_Model.ipynb"]


def test_a_w4_notebook_in_the_w6_batch_is_not_this_homework(tmp_path):
    root = hand_in(tmp_path / "class", {"dave/homework.ipynb": "alice_W4_Homework.ipynb",
                                        "erin/W6 final (1).ipynb": "alice_W6_MNIST_FC.ipynb"})
    found, rejected = collect(root, W6)
    assert [(s.student, s.handin.match) for s in found] == [("erin", Match.CONTENT)]
    (bad,) = rejected
    assert (bad.student, bad.notebook) == ("dave", "W6_MNIST_FC.ipynb")
    assert bad.reason == ("not this homework: homework.ipynb resembles W4_Homework.ipynb (W4), "
                          "not W6_MNIST_FC.ipynb")


def test_grade_check_takes_any_file_name(tmp_path):
    for name, match in [("W4_Homework (1).ipynb", Match.LOOSE),
                        ("作业4 (1).ipynb", Match.CONTENT),
                        ("W5_Homework.ipynb", Match.CONTENT),  # the 2021 course's name for W4
                        ("2100012345_w4-homework_v2.ipynb", Match.LOOSE)]:
        path = hand_in(tmp_path / name.replace(".", "-"), {name: "bob_W4_Homework.ipynb"})
        (found,), rejected = collect(path / name, W4)
        assert rejected == [] and (found.notebook.name, found.handin.match) == (
            "W4_Homework.ipynb", match), name


def test_a_notebook_written_from_scratch_is_still_graded_for_a_one_notebook_homework(tmp_path):
    root = hand_in(tmp_path / "class", {"erin/mine.ipynb": "erin_W4_Homework.ipynb"})
    (found,), rejected = collect(root, W4)
    assert rejected == [] and found.handin.match is Match.ONLY
    assert found.handin.notes("W4_Homework.ipynb") == [
        "mine.ipynb was graded as W4_Homework.ipynb: the only notebook handed in"]


def test_a_file_of_a_several_notebook_homework_that_nothing_places_is_rejected_with_how_to_fix(
        tmp_path):
    root = hand_in(tmp_path / "class", {"erin/mine.ipynb": "erin_W4_Homework.ipynb"})
    found, (bad,) = collect(root, W5)
    assert found == []
    assert "name it after one (W5_Regression_Batch.ipynb, W5_Save_Model.ipynb)" in bad.reason


def test_two_candidates_for_one_notebook_the_better_name_counts_and_the_other_is_listed(
        tmp_path):
    root = hand_in(tmp_path / "class", {"zoe/W4_Homework.ipynb": "alice_W4_Homework.ipynb",
                                        "zoe/W4_Homework (1).ipynb": "bob_W4_Homework.ipynb"})
    (found,), rejected = collect(root, W4)
    assert rejected == []
    assert (found.handin.file, found.handin.others) == (
        "W4_Homework.ipynb", ("W4_Homework (1).ipynb",))
    assert found.handin.notes("W4_Homework.ipynb") == [
        "also handed in, not graded (the latest attempt counts): W4_Homework (1).ipynb"]


def test_a_term_folder_passes_over_the_other_homeworks_files(tmp_path):
    found, rejected = collect(SUBMISSIONS, W6)
    assert rejected == []
    assert sorted(s.student for s in found) == ["alice", "bob", "carol", "dave"]
    assert {s.handin.match for s in found} == {Match.NAME}
