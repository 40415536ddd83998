"""The rubric runner: points, partial credit, feedback from assertions, hidden items."""

import re
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
    assert items["test_raises"].feedback.startswith("the grader could not finish this check")
    assert "KeyError" not in items["test_raises"].feedback and "missing" not in \
        items["test_raises"].feedback
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


TITLED = '''
import pytest

@pytest.mark.points(2)
def test_titled(notebook):
    """  The model classifies digits

    Details for the TA, not the title."""
    assert notebook == "the notebook's settings"

def test_untitled():
    pass

def test_blank_docstring():
    """   """

def test_fails_with_a_title():
    """Fails, and keeps its title"""
    assert False, "why"
'''


def test_a_docstrings_first_line_is_the_items_title(tmp_path):
    public = write(tmp_path / "public", "test_hw.py", TITLED)
    context = Context(None, None, None, notebook="the notebook's settings")
    items = {i.name: i for i in run_rubric([public], [], context)}
    assert items["test_titled"].title == "The model classifies digits"
    assert items["test_titled"].status == "passed"  # the `notebook` fixture reached it
    assert items["test_untitled"].title == "" and items["test_blank_docstring"].title == ""
    assert items["test_untitled"].heading == "Untitled"
    assert items["test_fails_with_a_title"].title == "Fails, and keeps its title"
    assert items["test_fails_with_a_title"].feedback == "why"


def test_every_bundled_rubric_test_has_a_title_a_student_can_read():
    import ast

    from grader import assignments
    for assignment in assignments.all_assignments():
        for path in assignment.folder.glob("*/test_*.py"):
            for node in ast.parse(path.read_text()).body:
                if isinstance(node, ast.FunctionDef) and node.name.startswith("test"):
                    first = (ast.get_docstring(node) or "").splitlines()[:1]
                    assert first and 10 < len(first[0]) <= 80, f"{path}: {node.name}"


# ----------------------------------------------------------------------------- built-in items

SAVES = "open('model.pt', 'wb').write(b'weights')\nimport os\nos.makedirs('out', exist_ok=True)\n" \
        "open('out/log.txt', 'w').write('done')"


def graded(tmp_path: Path, files: str, files_points: int):
    """Grade a notebook that saves model.pt and out/log.txt, in a real sandbox, against an
    assignment whose notebook must write `files`."""
    from grader import assignments, intake
    from grader.judge.grade import grade
    from grader.sandbox import ResourceLimits, SandboxConfig
    from tests.notebooks import write as write_notebook

    folder = tmp_path / "HW"
    write_notebook(folder / "A.ipynb", "pass")
    write_notebook(folder / "s.ipynb", "pass")
    write(folder / "public", "test_A.py", "def test_ran(run):\n"
          "    '''The notebook ran'''\n    assert run.outcome == 'completed', run.outcome\n")
    (folder / "assignment.toml").write_text(
        "[assignment]\nname = 'HW'\n[limits]\nnotebook_seconds = 60\ncell_seconds = 30\n"
        f"memory_mb = 2048\n[[notebook]]\nname = 'A.ipynb'\nsolution = 's.ipynb'\n"
        f"points = {1 + files_points}\nfiles = {files}\nfiles_points = {files_points}\n")
    assignment = assignments.load(folder)
    handed_in = write_notebook(tmp_path / "class" / "zoe_A.ipynb", SAVES)
    submission = intake.Submission("zoe", assignment.notebooks[0], handed_in, (), "hash")
    config = SandboxConfig(resources=ResourceLimits(memory_mb=2048, pids=64, disk_mb=64),
                           cell_seconds=30, notebook_seconds=60)
    result = grade(submission, assignment, config)
    return {i.name: i for i in result.items}


def test_files_the_notebook_wrote_earn_the_files_item(tmp_path):
    items = graded(tmp_path, "['model.pt', 'out/log.txt']", 2)
    assert items["test_ran"].status == "passed"
    written = items["files_written"]
    assert (written.score, written.max, written.status) == (2, 2, "passed")
    assert written.title == "The notebook saved model.pt, out/log.txt" and not written.hidden


def test_a_file_not_written_is_named_in_the_feedback(tmp_path):
    items = graded(tmp_path, "['model.pt', 'net_all.pkl']", 0)
    written = items["files_written"]
    assert (written.score, written.max, written.status) == (0, 0, "failed")
    assert written.feedback == "net_all.pkl was not saved in the notebook's folder"


def test_an_unanswered_question_reads_as_its_reason(tmp_path):
    """A ProbeError's text is the feedback, without the exception's module path."""
    public = write(tmp_path / "public", "test_hw.py", '''
from grader.sandbox import ProbeError

def test_asks():
    raise ProbeError("gradients is not defined in the notebook")
''')
    (item,) = run_rubric([public], [], Context(None, None, None))
    assert item.feedback == "gradients is not defined in the notebook"


def test_the_evidence_hidden_tests_write_is_listed_for_release(tmp_path):
    (tmp_path / "public").mkdir()
    (tmp_path / "hidden").mkdir()
    public = tmp_path / "public" / "test_nb.py"
    hidden = tmp_path / "hidden" / "test_nb.py"
    public.write_text("def test_seen(evidence):\n    evidence['shown'] = 1\n")
    hidden.write_text("import pytest\n\n@pytest.fixture(scope='session')\n"
                      "def measured(evidence):\n    evidence['holdout'] = 0.9\n    return 0.9\n\n"
                      "def test_secret(measured, evidence):\n    evidence['more'] = 2\n")
    context = Context(None, None, None)
    run_rubric([public], [hidden], context)
    assert context.evidence["_hidden"] == ["holdout", "more"]
    assert context.evidence["shown"] == 1


def test_a_question_the_notebook_raised_on_is_said_in_words(tmp_path):
    """What the student's code raised is never the feedback: what was asked, and what to do."""
    from grader.sandbox import ProbeError

    class Session:
        def call(self, name, *arrays):
            raise ProbeError("KeyError: 'gradients'", "raised")

        def forward(self, name, x):
            raise ProbeError("RuntimeError: mat1 and mat2 shapes cannot be multiplied", "raised")

    public = write(tmp_path / "public", "test_hw.py", """
def test_calls(student):
    student.call("gradients", 1, 2)

def test_runs(student):
    student.forward("model", 3)
""")
    items = {i.name: i for i in run_rubric([public], [], Context(Session(), None, None))}
    assert items["test_calls"].feedback == (
        "something this check needs is not defined in your notebook while the grader was "
        "calling `gradients`: check the names the homework asks for and run the notebook from "
        "the top")
    assert items["test_runs"].feedback.startswith(
        "your code did not accept the inputs this check gives it while the grader was running "
        "the model `model`")
    assert not any(re.search(r"Error|Traceback|KeyError|mat1", i.feedback)
                   for i in items.values())
