"""Assignment folders: every assignment.toml loads, names resolve, notebooks are valid."""

import re
from pathlib import Path

import nbformat
import pytest

from grader import assignments
from grader.errors import AssignmentError

ALL = assignments.all_assignments()


def test_the_three_homeworks_are_bundled():
    assert [a.name for a in ALL] == ["W4", "W5", "W6"]


@pytest.mark.parametrize(("hw", "expected"), [
    ("W4", "W4"), ("w6", "W6"), ("W4_Homework", "W4"), ("W5_Save_Model.ipynb", "W5"),
    ("W6_Save_Model", "W5"), ("CNN.ipynb", "W6"), ("W6_MNIST_FC", "W6"),
])
def test_find_accepts_homework_and_notebook_names(hw, expected):
    assert assignments.find(hw).name == expected


def test_find_names_the_known_assignments_when_it_fails():
    with pytest.raises(AssignmentError, match="known: W4, W5, W6"):
        assignments.find("W9")


def test_alias_matches_a_handed_in_file():
    save = next(nb for nb in assignments.find("W5").notebooks if nb.name == "W5_Save_Model.ipynb")
    assert save.matches("bob_W6_Save_Model.ipynb") and save.matches("W5_Save_Model.ipynb")
    assert not save.matches("bob_W5_Regression_Batch.ipynb")


@pytest.mark.parametrize("assignment", ALL, ids=lambda a: a.name)
def test_templates_and_solutions_are_valid_notebooks(assignment):
    for nb in assignment.notebooks:
        for path in (nb.template, nb.solution):
            nbformat.validate(nbformat.read(path, as_version=4))
        template = nbformat.read(nb.template, as_version=4)
        assert any("TODO" in cell.source for cell in template.cells), nb.name
        solution_code = "\n".join(c.source for c in nbformat.read(nb.solution, as_version=4).cells
                                  if c.cell_type == "code")
        assert "TODO" not in solution_code and "NotImplementedError" not in solution_code
        for name in nb.contract:  # the solution defines everything the rubric will ask for
            assert name in solution_code, f"{nb.name}: contract name {name}"


def test_digest_changes_with_any_file(tmp_path):
    import shutil
    folder = tmp_path / "W4"
    shutil.copytree(assignments.find("W4").folder, folder)
    before = assignments.load(folder).digest()
    (folder / "solution" / "notes.txt").write_text("changed")
    assert assignments.load(folder).digest() != before


@pytest.mark.parametrize(("toml", "message"), [
    (None, "no assignment.toml"),
    ("[assignment\n", "assignment.toml"),
    ("[assignment]\nname = 'X'\n", "missing the [limits] table"),
    ("[assignment]\nname = 'X'\n[limits]\nnotebook_seconds = 'ten'\n", "notebook_seconds"),
    ("[assignment]\nname = 'X'\n[limits]\nnotebook_seconds = 1\ncell_seconds = 1\n"
     "memory_mb = 1\n", "no [[notebook]]"),
    ("[assignment]\nname = 'X'\n[limits]\nnotebook_seconds = 1\ncell_seconds = 1\n"
     "memory_mb = 1\n[[notebook]]\nname = 'A.ipynb'\nsolution = 's.ipynb'\npoints = 1\n",
     "does not exist"),
])
def test_a_broken_assignment_gets_one_clear_error(tmp_path: Path, toml, message):
    if toml is not None:
        (tmp_path / "assignment.toml").write_text(toml)
    with pytest.raises(AssignmentError, match=message.replace("[", r"\[")):
        assignments.load(tmp_path)


def test_a_notebook_name_narrows_the_homework():
    w5 = assignments.find("W5")
    assert assignments.notebook_named("W6_Save_Model", w5).name == "W5_Save_Model.ipynb"
    assert assignments.notebook_named("W5", w5) is None


# ----------------------------------------------------------------------------- typed settings

HEAD = ("[assignment]\nname = 'X'\n[limits]\nnotebook_seconds = 1\ncell_seconds = 1\n"
        "memory_mb = 1\n")
RUBRIC = """
import pytest

@pytest.mark.points(2)
def test_two():
    pass

@pytest.mark.points(0.5)
@pytest.mark.parametrize("n", [1, 2, 3])
def test_three_halves(n):
    pass

def test_unmarked_is_worth_one():
    pass

def helper_is_not_a_test():
    pass

class TestGroup:
    @pytest.mark.points(4)
    def test_in_a_class(self):
        pass
"""


def folder_with(tmp_path: Path, notebook: str, tables: str = "", public: str = RUBRIC,
                hidden: str | None = None) -> Path:
    """An assignment folder with notebook A.ipynb, its solution and rubric files."""
    for name in ("A.ipynb", "s.ipynb"):
        (tmp_path / name).write_text("{}")
    (tmp_path / "public").mkdir()
    (tmp_path / "public" / "test_A.py").write_text(public)
    if hidden is not None:
        (tmp_path / "hidden").mkdir()
        (tmp_path / "hidden" / "test_A.py").write_text(hidden)
    (tmp_path / "assignment.toml").write_text(
        f"{HEAD}[[notebook]]\nname = 'A.ipynb'\nsolution = 's.ipynb'\n{notebook}\n{tables}")
    return tmp_path


def test_rubric_points_are_read_as_the_runner_counts_them(tmp_path):
    rubric = tmp_path / "test_A.py"
    rubric.write_text(RUBRIC)
    assert assignments.rubric_points(rubric) == 2 + 0.5 * 3 + 1 + 4


def test_the_bundled_points_are_the_rubric_markers():
    for assignment in ALL:  # loading checked them; this says what they are
        for nb in assignment.notebooks:
            files = [*assignments.rubric_files(assignment.folder, nb.name, "public"),
                     *assignments.rubric_files(assignment.folder, nb.name, "hidden")]
            marked = sum(assignments.rubric_points(f) for f in files)
            assert marked + nb.files_points == nb.points, nb.name


def test_points_that_disagree_with_the_markers_name_both_numbers_and_files(tmp_path):
    folder = folder_with(tmp_path, "points = 10", hidden="def test_h():\n    pass\n")
    with pytest.raises(AssignmentError) as caught:
        assignments.load(folder)
    message = str(caught.value)
    assert "`points` = 10" in message and "add up to 9.5" in message
    assert str(folder / "assignment.toml") in message
    assert "public/test_A.py: 8.5" in message and "hidden/test_A.py: 1" in message


def test_files_points_count_towards_the_total(tmp_path):
    folder = folder_with(tmp_path, "points = 9.5\nfiles = ['out/model.pt']\nfiles_points = 1")
    nb = assignments.load(folder).notebooks[0]
    assert (nb.files, nb.files_points, nb.points) == (("out/model.pt",), 1.0, 9.5)
    assert nb.contract == ()


@pytest.mark.parametrize(("source", "message"), [
    ("import pytest\n@pytest.mark.points(N)\ndef test_a():\n    pass\n", "written out"),
    ("import pytest\n@pytest.mark.points(-1)\ndef test_a():\n    pass\n", "non-negative"),
    ("import pytest\n@pytest.mark.parametrize('n', CASES)\ndef test_a(n):\n    pass\n",
     "cases written out"),
    ("def test_a(:\n", "cannot be parsed"),
])
def test_points_that_cannot_be_counted_are_refused(tmp_path, source, message):
    folder = folder_with(tmp_path, "points = 1", public=source)
    with pytest.raises(AssignmentError, match=message) as caught:
        assignments.load(folder)
    assert "test_A.py" in str(caught.value)


def test_the_accuracy_table_is_typed_with_one_default():
    w6 = assignments.find("W6")
    assert w6.accuracy == assignments.Accuracy(baseline=0.92, target=0.995,
                                               max_gap=assignments.MAX_GAP)
    assert "accuracy" not in w6.settings
    assert assignments.find("W4").accuracy is None
    assert w6.accuracy.earned(0.92) == 0 and w6.accuracy.earned(0.999) == 1
    assert w6.accuracy.earned(0.9575) == pytest.approx(0.5)


def test_other_tables_reach_the_rubric_untyped(tmp_path):
    folder = folder_with(tmp_path, "points = 8.5", "[extra]\nseed = 3\n")
    assert assignments.load(folder).settings == {"extra": {"seed": 3}}


@pytest.mark.parametrize(("notebook", "tables", "message"), [
    ("points = 8.5", "[accuracy]\ntarget = 0.99\n", "[accuracy]: missing `baseline`"),
    ("points = 8.5", "[accuracy]\nbaseline = 0.9\ntarget = 'high'\n", "`target` = 'high'"),
    ("points = 8.5", "[accuracy]\nbaseline = 0.99\ntarget = 0.9\n", "baseline < target"),
    ("points = 8.5", "[accuracy]\nbaseline = 0.9\ntarget = 0.99\nmax_gap = 2\n",
     "`max_gap` = 2.0"),
    ("points = 8.5", "[accuracy]\nbaseline = 0.9\ntarget = 0.99\nmax_gab = 0.1\n",
     "unknown field `max_gab`"),
    ("points = 8.5\nfile = ['model.pt']", "", "unknown field `file`"),
    ("points = 8.5\ncontract = ['a model']", "", "`contract` entry 'a model'"),
    ("points = 8.5\ncontract = 'model'", "", "`contract` = 'model' is not a list"),
    ("points = 8.5\nfiles = ['../grades.csv']", "", "`files` entry '../grades.csv'"),
    ("points = 9.5\nfiles_points = 1", "", "`files_points` = 1.0 needs"),
    ("points = 'ten'", "", "`points` = 'ten'"),
    ("points = nan", "", "`points` = nan is not a finite number"),
])
def test_a_bad_setting_names_the_file_and_the_field(tmp_path, notebook, tables, message):
    folder = folder_with(tmp_path, notebook, tables)
    with pytest.raises(AssignmentError, match=re.escape(message)) as caught:
        assignments.load(folder)
    assert str(folder / "assignment.toml") in str(caught.value)


def test_w5_save_model_must_write_both_files():
    save = assignments.find("W5").notebook("W5_Save_Model.ipynb")
    assert save.files == ("net_all.pkl", "net_params.pkl") and save.files_points == 1
    assert assignments.find("W6").notebook("W6_MNIST_FC.ipynb").contract == ("model",)
