"""The rubric runner: points, partial credit, feedback from assertions, hidden items."""

from pathlib import Path

from grader.judge.rubric import Context, run_rubric

RUBRIC = '''
import pytest

@pytest.mark.points(3)
def test_full(student):
    assert student == "the session"

@pytest.mark.points(4)
def test_partial(credit):
    credit(0.25, "one of four right")

@pytest.mark.points(2)
def test_wrong(run):
    assert run == 41, "the answer is off by one"

def test_unmarked_is_worth_one():
    pass

@pytest.mark.points(5)
def test_raises():
    raise KeyError("missing")
'''


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text)
    return path


def test_scores_and_feedback(tmp_path):
    public = write(tmp_path / "public", "test_hw.py", RUBRIC)
    items = {i.name: i for i in run_rubric([public], [], Context("the session", 42, None))}
    assert (items["test_full"].score, items["test_full"].max) == (3, 3)
    assert (items["test_partial"].score, items["test_partial"].status) == (1, "partial")
    assert items["test_partial"].feedback == "one of four right"
    assert items["test_wrong"].score == 0 and items["test_wrong"].feedback.startswith(
        "the answer is off by one")
    assert items["test_unmarked_is_worth_one"].max == 1
    assert items["test_raises"].feedback == "KeyError: 'missing'"
    assert not any(i.hidden for i in items.values())


def test_hidden_files_are_marked_and_same_named_files_do_not_clash(tmp_path):
    public = write(tmp_path / "public", "test_hw.py", "def test_a():\n    pass\n")
    hidden = write(tmp_path / "hidden", "test_hw.py", "def test_b():\n    assert False, 'no'\n")
    items = {i.name: i for i in run_rubric([public], [hidden], Context(None, None, None))}
    assert not items["test_a"].hidden and items["test_b"].hidden
    assert items["test_b"].feedback == "no"


def test_a_broken_rubric_file_is_an_error_item(tmp_path):
    broken = write(tmp_path / "public", "test_hw.py", "def test_a(:\n")
    items = run_rubric([broken], [], Context(None, None, None))
    assert len(items) == 1 and items[0].status == "error"
    assert "rubric file broken" in items[0].feedback


def test_rubrics_run_twice_in_one_process(tmp_path):
    public = write(tmp_path / "public", "test_hw.py", RUBRIC)
    first = run_rubric([public], [], Context("the session", 42, None))
    second = run_rubric([public], [], Context("another", 41, None))
    assert [i.score for i in first] != [i.score for i in second]
