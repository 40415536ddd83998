"""Assignment folders: every assignment.toml loads, names resolve, notebooks are valid."""

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


@pytest.mark.parametrize("assignment", ALL, ids=lambda a: a.name)
def test_toml_points_match_the_rubric_markers(assignment):
    import re
    for nb in assignment.notebooks:
        stem = nb.name.removesuffix(".ipynb")
        files = [*assignment.folder.glob(f"public/test_{stem}*.py"),
                 *assignment.folder.glob(f"hidden/test_{stem}*.py")]
        marked = sum(float(p) for f in files
                     for p in re.findall(r"mark\.points\(([\d.]+)\)", f.read_text()))
        assert marked == nb.points, nb.name
