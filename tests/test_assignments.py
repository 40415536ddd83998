"""Assignment folders: every assignment.toml loads, names resolve, notebooks are valid."""

import re
import shutil
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import nbformat
import pytest

from grader import assignments, late
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


def test_w5_save_model_judges_saving_by_content_not_file_names():
    save = assignments.find("W5").notebook("W5_Save_Model.ipynb")
    assert save.files == () and save.files_points == 0
    assert assignments.find("W6").notebook("W6_MNIST_FC.ipynb").contract == ("model",)


# ------------------------------------------------------------------ due date and late policy

LATE_TABLE = """
[late]
per = "day"
penalty = 0.1
cap = 0.5
grace_minutes = 15
zero_after_days = 7
"""
DUE_TABLES = """
[due]
at = 2026-10-05T23:59:00+08:00
extensions = "extensions.csv"
""" + LATE_TABLE
EXTENSIONS = "student,due,reason\nbob,2026-10-07 23:59 +08:00,flu\n"
PLUS8 = timezone(timedelta(hours=8))


def w4_with(tmp_path: Path, tables: str = DUE_TABLES, release: str | None = None,
            extensions: str | None = EXTENSIONS) -> Path:
    """A copy of W4 with tables appended to its assignment.toml and `release` in [assignment]."""
    folder = tmp_path / "W4"
    shutil.copytree(assignments.find("W4").folder, folder)
    toml = folder / "assignment.toml"
    text = toml.read_text()
    if release is not None:
        text = text.replace('name = "W4"\n', f'name = "W4"\nrelease = "{release}"\n')
    toml.write_text(text + tables)
    if extensions is not None:
        (folder / "extensions.csv").write_text(extensions)
    return folder


def edit(folder: Path, old: str, new: str, name: str = "assignment.toml") -> None:
    path = folder / name
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new))


def test_due_and_late_are_typed_on_the_assignment(tmp_path):
    w4 = assignments.load(w4_with(tmp_path, release="after_due"))
    assert w4.due == late.Due(
        at=datetime(2026, 10, 5, 23, 59, tzinfo=PLUS8),
        policy=late.LatePolicy(per="day", penalty=0.1, cap=0.5, grace=timedelta(minutes=15),
                               zero_after=timedelta(days=7)),
        extensions={"bob": datetime(2026, 10, 7, 23, 59, tzinfo=PLUS8)})
    assert w4.release == "after_due"
    assert "due" not in w4.settings and "late" not in w4.settings


def test_without_due_there_is_no_late_policy_and_release_is_manual():
    w4 = assignments.find("W4")
    assert (w4.due, w4.release) == (None, "manual")


def test_a_due_date_alone_records_lateness_without_a_penalty(tmp_path):
    folder = w4_with(tmp_path, "[due]\nat = 2026-10-05T23:59:00Z\n", extensions=None)
    due = assignments.load(folder).due
    assert due == late.Due(at=datetime(2026, 10, 5, 23, 59, tzinfo=UTC))
    assert due.policy is None and due.extensions == {}


def test_late_defaults(tmp_path):
    folder = w4_with(tmp_path, "[due]\nat = '2026-10-05 23:59 +08:00'\n"
                     "[late]\nper = 'hour'\npenalty = 0.02\n", extensions=None)
    due = assignments.load(folder).due
    assert due.at == datetime(2026, 10, 5, 23, 59, tzinfo=PLUS8)
    assert due.policy == late.LatePolicy(per="hour", penalty=0.02, cap=1.0,
                                         grace=timedelta(0), zero_after=None)


AT = "[due]\nat = 2026-10-05T23:59:00+08:00\n"


@pytest.mark.parametrize(("tables", "message"), [
    ("[due]\nat = 2026-10-05T23:59:00\n", "[due]: `at` = 2026-10-05 23:59:00 has no time zone; "
     "add the course's UTC offset, as in at = 2026-10-05T23:59:00+08:00"),
    ("[due]\nat = 2026-10-05\n", "[due]: `at` = 2026-10-05 is not a date and time"),
    ("[due]\nat = 'Monday'\n", "[due]: `at` = 'Monday' is not a date and time"),
    ("[due]\nextensions = 'extensions.csv'\n", "[due]: missing `at`"),
    ("[due]\nat = 2026-10-05T23:59:00+08:00\ngrace = 5\n", "[due]: unknown field `grace`"),
    ("[late]\nper = 'day'\npenalty = 0.1\n", "[late]: a late policy needs a [due] table"),
    (AT + "[[late]]\nper = 'day'\n", "`late` must be a [late] table"),
    (AT + "[late]\nper = 'week'\npenalty = 0.1\n", "[late]: `per` = 'week' is not \"day\" or"),
    (AT + "[late]\npenalty = 0.1\n", "[late]: missing `per`"),
    (AT + "[late]\nper = 'day'\n", "[late]: missing `penalty`"),
    (AT + "[late]\nper = 'day'\npenalty = 10\n", "[late]: `penalty` = 10 is not between 0 and 1"),
    (AT + "[late]\nper = 'day'\npenalty = 0.1\ncap = -0.5\n", "`cap` = -0.5 is not between"),
    (AT + "[late]\nper = 'day'\npenalty = 0.1\ngrace_minutes = -5\n",
     "`grace_minutes` = -5 is negative"),
    (AT + "[late]\nper = 'day'\npenalty = 0.1\nzero_after_days = 0\n",
     "`zero_after_days` = 0 must be longer than the grace period"),
    (AT + "[late]\nper = 'day'\npenalty = 0.1\ngrace_minutes = 90\nzero_after_days = 0.05\n",
     "`zero_after_days` = 0.05 must be longer than the grace period (90 minutes)"),
    (AT + "[late]\nper = 'day'\npenalty = 0.1\nzero_after = 7\n",
     "[late]: unknown field `zero_after` (known: per, penalty, cap, grace_minutes, "
     "zero_after_days)"),
    (AT + "extensions = '../extensions.csv'\n", "`extensions` = '../extensions.csv' must name a"),
    (AT + "extensions = 'nowhere.csv'\n", "`extensions` = 'nowhere.csv': "),
])
def test_a_bad_due_or_late_table_is_one_line_naming_the_file_and_field(tmp_path, tables,
                                                                        message):
    folder = w4_with(tmp_path, tables)
    with pytest.raises(AssignmentError, match=re.escape(message)) as caught:
        assignments.load(folder)
    assert str(caught.value).startswith(str(folder / "assignment.toml"))
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(("release", "tables", "message"), [
    ("later", AT, "[assignment]: `release` = 'later' is not \"manual\" or \"after_due\""),
    ("after_due", "", "[assignment]: `release` = \"after_due\" needs a [due] table"),
])
def test_release_is_manual_or_after_a_due_date(tmp_path, release, tables, message):
    folder = w4_with(tmp_path, tables, release=release)
    with pytest.raises(AssignmentError, match=re.escape(message)):
        assignments.load(folder)


@pytest.mark.parametrize(("rows", "message"), [
    ("student,due\nbob,2026-10-07 23:59 +08:00\namy,next week\n",
     "extensions.csv, line 3: `due` = 'next week' is not a date and time"),
    ("student,due\nbob,2026-10-07 23:59 +08:00\n\nbob,2026-10-08 23:59 +08:00\n",
     "extensions.csv, line 4: student 'bob' is already on line 2"),
    ("student,due\nbob,2026-10-07T23:59:00\n", "line 2: `due` = '2026-10-07T23:59:00' has no "
     "time zone"),
    ("who,when\nbob,2026-10-07 23:59 +08:00\n", "line 1: the header 'who,when' does not name"),
])
def test_a_bad_extensions_file_stops_the_load_naming_its_line(tmp_path, rows, message):
    folder = w4_with(tmp_path, extensions=rows)
    with pytest.raises(AssignmentError, match=re.escape(message)) as caught:
        assignments.load(folder)
    assert str(caught.value).startswith(str(folder / "extensions.csv"))
    assert "\n" not in str(caught.value)


# ------------------------------------------------------------- the digest and the late policy


@pytest.mark.parametrize(("old", "new", "name"), [
    ("at = 2026-10-05T23:59:00+08:00", "at = 2026-10-12T23:59:00+08:00", "assignment.toml"),
    ("penalty = 0.1", "penalty = 0.25", "assignment.toml"),
    ("grace_minutes = 15\n", "", "assignment.toml"),
    ('extensions = "extensions.csv"\n', "", "assignment.toml"),
    (LATE_TABLE, "", "assignment.toml"),
    ('name = "W4"\n', 'name = "W4"\nrelease = "after_due"\n', "assignment.toml"),
    ("# What a TA edits for W4.", "# comments change nothing", "assignment.toml"),
    ("bob,2026-10-07 23:59 +08:00,flu", "bob,2026-10-09 23:59 +08:00,flu\namy,2026-10-06 "
     "23:59 +08:00,", "extensions.csv"),
])
def test_the_digest_ignores_due_late_release_and_extensions(tmp_path, old, new, name):
    """The digest keys the gradebook: a moved deadline must never cause a regrade."""
    folder = w4_with(tmp_path)
    before = assignments.load(folder).digest()
    edit(folder, old, new, name)
    assert assignments.load(folder).digest() == before


def test_the_digest_is_the_same_with_or_without_a_due_date(tmp_path):
    plain = w4_with(tmp_path / "plain", "", extensions=None)
    dated = w4_with(tmp_path / "dated", release="after_due")
    assert assignments.load(plain).digest() == assignments.load(dated).digest()


@pytest.mark.parametrize(("old", "new", "name"), [
    ("def test_", "def test_renamed_", "public/test_W4_Homework.py"),
    ("memory_mb = 4096", "memory_mb = 2048", "assignment.toml"),
    ('version = "1"', 'version = "2"', "assignment.toml"),
    ("Two-layer", "Two layer", "assignment.toml"),
    ('"W1", "b1"', '"b1", "W1"', "assignment.toml"),
    ("cpu_fallback = true", "cpu_fallback = false", "assignment.toml"),
    ("[late]", "[extra]\nseed = 1\n[late]", "assignment.toml"),
])
def test_the_digest_changes_with_what_grading_reads(tmp_path, old, new, name):
    folder = w4_with(tmp_path)
    before = assignments.load(folder).digest()
    edit(folder, old, new, name)
    assert assignments.load(folder).digest() != before


def test_the_digest_changes_with_the_template(tmp_path):
    folder = w4_with(tmp_path)
    before = assignments.load(folder).digest()
    template = folder / "W4_Homework.ipynb"
    template.write_bytes(template.read_bytes() + b"\n")
    assert assignments.load(folder).digest() != before


def _penalised(folder: Path, student: str, submitted: datetime, points: float) -> float:
    """What export would show: the stored points with the penalty applied at that moment."""
    w4 = assignments.load(folder)
    found = late.lateness(w4.due, student, submitted, None)
    return found.apply(points, w4.points)


def test_a_new_due_date_changes_the_totals_without_a_regrade(tmp_path):
    folder = w4_with(tmp_path)
    submitted = datetime(2026, 10, 7, 9, 0, tzinfo=PLUS8)  # 1 day 9 hours after 10-05 23:59
    digest, before = assignments.load(folder).digest(), _penalised(folder, "amy", submitted, 14)
    edit(folder, "at = 2026-10-05T23:59:00+08:00", "at = 2026-10-06T23:59:00+08:00")
    assert assignments.load(folder).digest() == digest  # the stored 14 points stay stored
    assert (before, _penalised(folder, "amy", submitted, 14)) == (14 - 2.8, 14 - 1.4)


def test_an_extension_removes_one_students_penalty(tmp_path):
    folder = w4_with(tmp_path, extensions="student,due\n")
    submitted = datetime(2026, 10, 7, 9, 0, tzinfo=PLUS8)
    digest = assignments.load(folder).digest()
    assert [_penalised(folder, s, submitted, 12) for s in ("amy", "bob")] == [9.2, 9.2]
    (folder / "extensions.csv").write_text(EXTENSIONS)
    assert assignments.load(folder).digest() == digest
    assert [_penalised(folder, s, submitted, 12) for s in ("amy", "bob")] == [9.2, 12]


def test_an_extensions_file_of_another_name_is_left_out_of_the_digest_too(tmp_path):
    folder = w4_with(tmp_path, extensions=None)
    edit(folder, 'extensions = "extensions.csv"', 'extensions = "dates/late.csv"')
    (folder / "dates").mkdir()
    (folder / "dates" / "late.csv").write_text(EXTENSIONS)
    before = assignments.load(folder)
    (folder / "dates" / "late.csv").write_text("student,due\n")
    after = assignments.load(folder)
    assert before.due.extensions and not after.due.extensions
    assert after.digest() == before.digest()
