"""Whole classes, end to end through intake.collect (no notebook is run): each download built as
its LMS writes it (zip entries under the LMS's names, holding the bundled example notebooks'
bytes), and every student found once, under the LMS's identity, with the display name, the
lateness and the time the LMS gave, the file as the student named it, and nothing rejected that
a TA would grade."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from grader import assignments, intake
from grader.intake import roster
from grader.results import Match

W4 = assignments.find("W4")
W5 = assignments.find("W5")
W6 = assignments.find("W6")
SUBMISSIONS = Path(__file__).resolve().parent.parent / "submissions"
TEMPLATE_W4 = (W4.folder / "W4_Homework.ipynb").read_bytes()


def example(name: str) -> bytes:
    """A bundled example notebook's bytes, e.g. example("bob_W4_Homework.ipynb")."""
    return (SUBMISSIONS / name).read_bytes()


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def write_zip(path: Path, members: dict[str, bytes]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(zip_bytes(members))
    return path


def write_tree(root: Path, members: dict[str, bytes]) -> Path:
    for name, data in members.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def collect(target: Path, assignment, tmp_path: Path):
    return intake.collect(target, assignment, tmp_path / "scratch")


def one_each(found) -> dict[str, object]:
    """The submissions by student, checking each (student, notebook) comes once."""
    keys = [(s.student, s.notebook.name) for s in found]
    assert len(keys) == len(set(keys)), keys
    return {s.student: s for s in found}


def assert_clean(items, *ids: str) -> None:
    """No LMS id, Moodle plugin name, Blackboard attempt stamp or Canvas LATE left in the file
    name as the student gave it, nor in the display name."""
    for item in items:
        for text in (item.handin.file, item.handin.display_name):
            for junk in ("assignsubmission", "_attempt_", "LATE", "anon_", "submission_", *ids):
                assert junk not in text, (junk, text)


# ------------------------------------------------------------------------------------ canvas

# Canvas's "Download Submissions": <lastfirst>[_LATE]_<user id>_<attachment id>_<file>, flat.
HW4_FOLDER = zip_bytes({"hw4/W4_Homework.ipynb": example("erin_W4_Homework.ipynb"),
                        "hw4/data/points.csv": b"x,y\n1,2\n"})
CANVAS_W4 = {
    "smithjohn_LATE_4001_70001_W4_Homework.ipynb": example("alice_W4_Homework.ipynb"),
    "leeana_4002_70010_W4_Homework.ipynb": example("carol_W4_Homework.ipynb"),
    "leeana_4002_70011_W4_Homework-1.ipynb": example("dave_W4_Homework.ipynb"),
    "leeana_4002_70012_W4_Homework-2.ipynb": example("bob_W4_Homework.ipynb"),
    "anon_Qk2Ha_70020_W4_Homework (1).ipynb": example("dave_W4_Homework.ipynb"),
    "张伟_4003_70030_作业4.ipynb": example("bob_W4_Homework.ipynb"),
    "núñezjosé_4004_70040_hw4.zip": HW4_FOLDER,
    "núñezjosé_4004_text.html": b"<p>my notebook is in the zip</p>",
}
CANVAS_IDS = ("4001", "4002", "4003", "4004", "70001", "70010", "70011", "70012", "70020",
              "70030", "70040", "Qk2Ha")


@pytest.fixture
def canvas_w4(tmp_path: Path) -> Path:
    return write_zip(tmp_path / "submissions.zip", CANVAS_W4)


def test_canvas_download_every_student_once_under_their_canvas_identity(canvas_w4, tmp_path):
    found, rejected = collect(canvas_w4, W4, tmp_path)
    assert rejected == []
    students = one_each(found)
    assert {sid: (s.handin.file, s.handin.match, s.handin.display_name, s.handin.late)
            for sid, s in students.items()} == {
        "4001": ("W4_Homework.ipynb", Match.NAME, "smithjohn", True),
        "4002": ("W4_Homework.ipynb", Match.NAME, "leeana", False),
        "anon-Qk2Ha": ("W4_Homework (1).ipynb", Match.LOOSE, "", False),
        "4003": ("作业4.ipynb", Match.CONTENT, "张伟", False),
        "4004": ("hw4/W4_Homework.ipynb", Match.NAME, "núñezjosé", False),
    }
    assert {s.handin.source for s in found} == {"canvas"}
    assert {s.handin.submitted_at for s in found} == {""}  # Canvas's names carry no time
    graded = {sid: s.path.read_bytes() for sid, s in students.items()}
    assert graded == {
        "4001": example("alice_W4_Homework.ipynb"),
        "4002": example("bob_W4_Homework.ipynb"),  # the -2 upload: the latest
        "anon-Qk2Ha": example("dave_W4_Homework.ipynb"),
        "4003": example("bob_W4_Homework.ipynb"),
        "4004": example("erin_W4_Homework.ipynb"),
    }
    assert_clean(found, *CANVAS_IDS)


def test_canvas_resubmissions_latest_graded_the_others_listed(canvas_w4, tmp_path):
    students = one_each(collect(canvas_w4, W4, tmp_path)[0])
    lee = students["4002"]
    assert lee.path.name == "leeana_4002_70012_W4_Homework-2.ipynb"
    assert len(lee.handin.others) == 2
    assert all(other.startswith("W4_Homework.ipynb") for other in lee.handin.others)
    assert lee.handin.notes("W4_Homework.ipynb")[-1].startswith(
        "also handed in, not graded (the latest attempt counts): W4_Homework.ipynb")
    assert {sid: s.handin.others for sid, s in students.items() if sid != "4002"} == {
        "4001": (), "anon-Qk2Ha": (), "4003": (), "4004": ()}


def test_canvas_late_text_entry_and_zipped_folder_are_shown(canvas_w4, tmp_path):
    students = one_each(collect(canvas_w4, W4, tmp_path)[0])
    john, jose = students["4001"], students["4004"]
    assert john.handin.notes("W4_Homework.ipynb") == ["handed in late, as canvas says"]
    assert jose.handin.skipped == ("núñezjosé_4004_text.html",)
    assert [path.name for path in jose.files] == ["points.csv"]  # goes into the sandbox along
    assert jose.handin.notes("W4_Homework.ipynb") == [
        "hw4/W4_Homework.ipynb was matched by its name to W4_Homework.ipynb",
        "not graded (not a notebook): núñezjosé_4004_text.html"]
    assert [sid for sid, s in students.items() if s.handin.skipped] == ["4004"]
    assert students["4003"].handin.notes("W4_Homework.ipynb") == [
        "作业4.ipynb was matched by content to W4_Homework.ipynb"]


class Utf8WithoutFlag(zipfile.ZipInfo):
    """A member whose name is written as UTF-8 bytes without the zip's UTF-8 flag (bit 11), as
    macOS's Archive Utility writes names, and Canvas did before it set Zip.unicode_names."""

    def _encodeFilenameFlags(self):  # zipfile's own (private) hook
        return self.filename.encode("utf-8"), self.flag_bits


def test_canvas_download_whose_zip_lacks_the_utf8_flag(tmp_path):
    download = tmp_path / "submissions.zip"
    with zipfile.ZipFile(download, "w") as archive:
        for name in ("smithjohn_4001_70001_W4_Homework.ipynb",
                     "张伟_4003_70030_作业4.ipynb",
                     "núñezjosé_4004_70041_W4_Homework.ipynb"):
            archive.writestr(Utf8WithoutFlag(name), example("bob_W4_Homework.ipynb"))
    found, rejected = collect(download, W4, tmp_path)
    assert rejected == []
    assert {s.student: (s.handin.display_name, s.handin.file) for s in found} == {
        "4001": ("smithjohn", "W4_Homework.ipynb"),
        "4003": ("张伟", "作业4.ipynb"),
        "4004": ("núñezjosé", "W4_Homework.ipynb")}


# ------------------------------------------------------------------------------------ moodle


def test_moodle_w5_files_named_their_own_way_are_each_the_right_notebook(tmp_path):
    download = write_zip(tmp_path / "CS101-W5 Homework-4242.zip", {
        # Moodle 3.1 and up: a folder per student, `<Full Name>_<id>_assignsubmission_file_`
        "José Núñez_1234_assignsubmission_file_/Regression.ipynb":
            example("alice_W5_Regression_Batch.ipynb"),
        "José Núñez_1234_assignsubmission_file_/save.ipynb": example("alice_W5_Save_Model.ipynb"),
        "José Núñez_1234_assignsubmission_onlinetext_/onlinetext.html": b"<p>done</p>",
        "张伟_5678_assignsubmission_file_/W6_Save_Model (2).ipynb":
            example("bob_W6_Save_Model.ipynb"),
        "张伟_5678_assignsubmission_file_/Regression.ipynb":
            example("bob_W5_Regression_Batch.ipynb"),
        # blind marking
        "Participant_9012_assignsubmission_file_/hw5/Regression.ipynb":
            example("carol_W5_Regression_Batch.ipynb"),
        "Participant_9012_assignsubmission_file_/hw5/save.ipynb":
            example("carol_W5_Save_Model.ipynb"),
        # before Moodle 3.1: flat
        "Ana Lee_3456_assignsubmission_file_Regression.ipynb":
            example("bob_W5_Regression_Batch.ipynb"),
        "Ana Lee_3456_assignsubmission_file_save.ipynb": example("alice_W5_Save_Model.ipynb"),
    })
    found, rejected = collect(download, W5, tmp_path)
    assert rejected == []
    keys = [(s.student, s.notebook.name) for s in found]
    assert len(keys) == len(set(keys))
    reg, save = "W5_Regression_Batch.ipynb", "W5_Save_Model.ipynb"
    assert {(s.student, s.notebook.name): (s.handin.file, s.handin.match, s.handin.display_name)
            for s in found} == {
        ("1234", reg): ("Regression.ipynb", Match.CONTENT, "José Núñez"),
        ("1234", save): ("save.ipynb", Match.CONTENT, "José Núñez"),
        ("5678", reg): ("Regression.ipynb", Match.CONTENT, "张伟"),
        ("5678", save): ("W6_Save_Model (2).ipynb", Match.LOOSE, "张伟"),
        ("participant-9012", reg): ("hw5/Regression.ipynb", Match.CONTENT, ""),
        ("participant-9012", save): ("hw5/save.ipynb", Match.CONTENT, ""),
        ("3456", reg): ("Regression.ipynb", Match.CONTENT, "Ana Lee"),
        ("3456", save): ("save.ipynb", Match.CONTENT, "Ana Lee"),
    }
    graded = {(s.student, s.notebook.name): s.path.read_bytes() for s in found}
    assert graded[("1234", save)] == example("alice_W5_Save_Model.ipynb")
    assert graded[("5678", save)] == example("bob_W6_Save_Model.ipynb")
    assert graded[("3456", reg)] == example("bob_W5_Regression_Batch.ipynb")
    assert {(s.handin.source, s.handin.late, s.handin.submitted_at) for s in found} == {
        ("moodle", None, "")}
    notes = {(s.student, s.notebook.name): s.handin.notes(s.notebook.name) for s in found}
    assert notes[("5678", save)] == [
        "W6_Save_Model (2).ipynb was matched by its name to W5_Save_Model.ipynb"]
    assert notes[("3456", reg)] == [
        "Regression.ipynb was matched by content to W5_Regression_Batch.ipynb"]
    assert notes[("participant-9012", save)] == [
        "hw5/save.ipynb was matched by content to W5_Save_Model.ipynb"]
    assert notes[("1234", reg)] == [
        "Regression.ipynb was matched by content to W5_Regression_Batch.ipynb",
        "not graded (not a notebook): José Núñez_1234_assignsubmission_onlinetext_"]
    assert_clean(found, "1234", "5678", "9012", "3456", "Participant")


# -------------------------------------------------------------------------------- blackboard


def receipt(name: str, date: str, files: list[tuple[str, str]]) -> bytes:
    """Blackboard's .txt beside each attempt, as Grade Center's Download Assignment writes it."""
    listed = "".join(f"\tOriginal filename: {original}\n\tFilename: {stored}\n"
                     for original, stored in files)
    return (f"Name: {name}\nAssignment: W4 Homework\nDate Submitted: {date}\n"
            "Current Grade: Needs Grading\n\nSubmission Field:\n"
            "There is no student submission text data for this assignment.\n\n"
            "Comments:\nThere are no student comments for this assignment.\n\n"
            f"Files:\n{listed}\n").encode()


def test_blackboard_two_attempts_the_latest_counts_with_receipts(tmp_path):
    first = "W4 Homework_jsmith_attempt_2021-10-05-22-13-45"
    second = "W4 Homework_jsmith_attempt_2021-10-07-09-00-01"
    mary = "W4 Homework_mary_ann_attempt_2021-10-06-08-30-00"
    download = write_zip(tmp_path / "gradebook_CS101_W4 Homework_2021-10-08-10-00-00.zip", {
        f"{first}_W4_Homework.ipynb": example("alice_W4_Homework.ipynb"),
        f"{first}.txt": receipt("John Smith (jsmith)", "Tuesday, October 5, 2021 10:13:45 PM CDT",
                                [("W4_Homework.ipynb", f"{first}_W4_Homework.ipynb")]),
        f"{second}_W4_Homework(1).ipynb": example("bob_W4_Homework.ipynb"),
        f"{second}.txt": receipt("John Smith (jsmith)",
                                 "Thursday, October 7, 2021 9:00:01 AM CDT",
                                 [("W4_Homework (1).ipynb", f"{second}_W4_Homework(1).ipynb")]),
        f"{mary}_作业4.ipynb": example("carol_W4_Homework.ipynb"),
        f"{mary}.txt": receipt("Mary Ann Lee (mary_ann)",
                               "Wednesday, October 6, 2021 8:30:00 AM CDT",
                               [("作业4.ipynb", f"{mary}_作业4.ipynb")]),
    })
    found, rejected = collect(download, W4, tmp_path)
    assert rejected == []
    students = one_each(found)
    assert {sid: (s.handin.file, s.handin.match, s.handin.display_name, s.handin.submitted_at)
            for sid, s in students.items()} == {
        "jsmith": ("W4_Homework (1).ipynb", Match.LOOSE, "John Smith",
                   "2021-10-07T09:00:01-05:00"),
        "mary_ann": ("作业4.ipynb", Match.CONTENT, "Mary Ann Lee", "2021-10-06T08:30:00-05:00"),
    }
    john = students["jsmith"]
    assert john.path.read_bytes() == example("bob_W4_Homework.ipynb")  # the second attempt
    assert john.handin.others == ("W4_Homework.ipynb (2021-10-05 22:13:45-05:00)",)
    assert students["mary_ann"].handin.others == ()
    assert {(s.handin.source, s.handin.late) for s in found} == {("blackboard", None)}
    assert_clean(found, "2021-10-0")


# -------------------------------------------------------------------------------- gradescope

GRADESCOPE_METADATA = """\
submission_5001:
  :submitters:
  - :name: Ada Lovelace
    :sid: '100'
    :email: ada@example.edu
  :created_at: 2023-09-15 12:34:56.789012000 -07:00
  :score: 0.0
  :status: processed
  :history: []
submission_5002:
  :submitters:
  - :name: José Núñez
    :sid:
    :email: jose@example.edu
  :created_at: 2023-09-16 08:00:00.000000000 -07:00
  :history:
  - :id: 4990
    :created_at: 2023-09-14 08:00:00.000000000 -07:00
submission_5003:
  :submitters:
  - :name: 张伟
    :sid: '300'
    :email: zhang@example.edu
  - :name: Grace Hopper
    :sid: 301
    :email: grace@example.edu
  :created_at: 2023-09-17 23:59:00.000000000 -07:00
submission_5004:
  :submitters:
  - :name: Alan Turing
    :sid: '400'
    :email: alan@example.edu
  :created_at: 2023-09-18 00:05:00.000000000 -07:00
"""


def test_gradescope_export_identities_from_sids_and_times_kept(tmp_path):
    pytest.importorskip("yaml")
    export = "assignment_778899_export"
    download = write_zip(tmp_path / f"{export}.zip", {
        f"{export}/submission_metadata.yml": GRADESCOPE_METADATA.encode(),
        f"{export}/submission_5001/W6_MNIST_FC.ipynb": example("alice_W6_MNIST_FC.ipynb"),
        f"{export}/submission_5002/mnist (1).ipynb": example("bob_W6_MNIST_FC.ipynb"),
        f"{export}/submission_5003/W6_MNIST_FC.ipynb": example("carol_W6_MNIST_FC.ipynb"),
        f"{export}/submission_5003/helpers/util.py": b"pass\n",
        f"{export}/submission_5004/hw6/W6_MNIST_FC.ipynb": example("dave_W6_MNIST_FC.ipynb"),
    })
    found, rejected = collect(download, W6, tmp_path)
    assert rejected == []
    students = one_each(found)
    assert {sid: (s.handin.file, s.handin.match, s.handin.display_name, s.handin.submitted_at)
            for sid, s in students.items()} == {
        "100": ("W6_MNIST_FC.ipynb", Match.NAME, "Ada Lovelace",
                "2023-09-15T12:34:56.789012-07:00"),
        "jose@example.edu": ("mnist (1).ipynb", Match.CONTENT, "José Núñez",
                             "2023-09-16T08:00:00-07:00"),
        "300": ("W6_MNIST_FC.ipynb", Match.NAME, "张伟", "2023-09-17T23:59:00-07:00"),
        "301": ("W6_MNIST_FC.ipynb", Match.NAME, "Grace Hopper", "2023-09-17T23:59:00-07:00"),
        "400": ("hw6/W6_MNIST_FC.ipynb", Match.NAME, "Alan Turing",
                "2023-09-18T00:05:00-07:00"),
    }
    group = [students["300"], students["301"]]
    assert all(s.path.read_bytes() == example("carol_W6_MNIST_FC.ipynb") for s in group)
    assert all([p.name for p in s.files] == ["util.py"] for s in group)
    assert students["jose@example.edu"].path.read_bytes() == example("bob_W6_MNIST_FC.ipynb")
    assert {(s.handin.source, s.handin.late) for s in found} == {("gradescope", None)}
    assert_clean(found, "5001", "5002", "5003", "5004")


# ---------------------------------------------------------------------------------- nbgrader

NBGRADER_SUBMITTED = {
    "submitted/alice/ps1/W4_Homework.ipynb": example("alice_W4_Homework.ipynb"),
    "submitted/alice/ps1/timestamp.txt": b"2021-10-05 22:13:45.123456 UTC",
    "submitted/bob/ps1/W4_Homework.ipynb": example("bob_W4_Homework.ipynb"),
    "submitted/bob/ps1/timestamp.txt": b"2021-10-06 08:00:00.000000 UTC\n",
    "submitted/carol/ps1/作业.ipynb": example("carol_W4_Homework.ipynb"),
    "submitted/carol/ps1/timestamp.txt": b"2021-10-06 09:30:00.000000 UTC",
}
NBGRADER_COURSE = {  # the rest of the course folder: nobody's hand-in
    **NBGRADER_SUBMITTED,
    "source/ps1/W4_Homework.ipynb": TEMPLATE_W4,
    "release/ps1/W4_Homework.ipynb": TEMPLATE_W4,
    "autograded/alice/ps1/W4_Homework.ipynb": example("alice_W4_Homework.ipynb"),
    "feedback/alice/ps1/W4_Homework.html": b"<html></html>",
    "gradebook.db": b"",
    "nbgrader_config.py": b"c = get_config()\n",
}
NBGRADER_EXPECTED = {
    "alice": ("W4_Homework.ipynb", Match.NAME, "2021-10-05T22:13:45.123456+00:00"),
    "bob": ("W4_Homework.ipynb", Match.NAME, "2021-10-06T08:00:00+00:00"),
    "carol": ("作业.ipynb", Match.CONTENT, "2021-10-06T09:30:00+00:00"),
}


def nbgrader_placed(found) -> dict[str, tuple[str, Match, str]]:
    return {sid: (s.handin.file, s.handin.match, s.handin.submitted_at)
            for sid, s in one_each(found).items()}


def test_nbgrader_course_folder(tmp_path):
    course = write_tree(tmp_path / "cs101", NBGRADER_COURSE)
    found, rejected = collect(course, W4, tmp_path)
    assert rejected == []
    assert nbgrader_placed(found) == NBGRADER_EXPECTED
    assert {(s.handin.source, s.handin.display_name, s.handin.late) for s in found} == {
        ("nbgrader", "", None)}
    assert {s.student: s.path.read_bytes() for s in found}["bob"] == example(
        "bob_W4_Homework.ipynb")
    assert all(s.files == () for s in found)  # timestamp.txt is nbgrader's, not the student's


def test_nbgrader_submitted_tree_zipped(tmp_path):
    download = write_zip(tmp_path / "submitted.zip", NBGRADER_SUBMITTED)
    found, rejected = collect(download, W4, tmp_path)
    assert rejected == []
    assert nbgrader_placed(found) == NBGRADER_EXPECTED


def test_nbgrader_course_folder_zipped_with_its_folder(tmp_path):
    download = write_zip(tmp_path / "cs101.zip",
                         {f"cs101/{name}": data for name, data in NBGRADER_COURSE.items()})
    found, rejected = collect(download, W4, tmp_path)
    assert rejected == []
    assert nbgrader_placed(found) == NBGRADER_EXPECTED


def test_nbgrader_exchange_tree(tmp_path):
    inbound = "inbound/{}+ps1+{}+{}"
    attempts = [("alice", "2021-10-05 22:13:45.123456 UTC", "k3j2", "alice_W4_Homework.ipynb"),
                ("alice", "2021-10-07 09:00:00.000000 UTC", "q8w1", "bob_W4_Homework.ipynb"),
                ("carol", "2021-10-06 08:00:00.000000 UTC", "z9z9", "carol_W4_Homework.ipynb")]
    members = {"outbound/ps1/W4_Homework.ipynb": TEMPLATE_W4}
    for student, stamp, key, notebook in attempts:
        folder = inbound.format(student, stamp, key)
        members[f"{folder}/W4_Homework.ipynb"] = example(notebook)
        members[f"{folder}/timestamp.txt"] = stamp.encode()
    course = write_tree(tmp_path / "exchange" / "cs101", members)
    found, rejected = collect(course, W4, tmp_path)
    assert rejected == []
    students = one_each(found)
    assert set(students) == {"alice", "carol"}
    alice = students["alice"]
    assert alice.path.read_bytes() == example("bob_W4_Homework.ipynb")  # the later attempt
    assert alice.handin.submitted_at == "2021-10-07T09:00:00+00:00"
    assert len(alice.handin.others) == 1
    assert_clean(found, "k3j2", "q8w1", "z9z9", "+ps1+")


# ------------------------------------------------------------------------------- mixed folder

MIXED = {
    "alice_W4_Homework.ipynb": example("alice_W4_Homework.ipynb"),        # the grader's own
    "bob/W4_Homework.ipynb": example("bob_W4_Homework.ipynb"),            # a folder per student
    "bob/notes.txt": b"thanks\n",
    "wucarol_4003_70030_W4_Homework.ipynb": example("carol_W4_Homework.ipynb"),      # Canvas
    "Dave Jones_1234_assignsubmission_file_/hw.ipynb": example("dave_W4_Homework.ipynb"),  # Moodle
    "alice_W6_MNIST_FC.ipynb": example("alice_W6_MNIST_FC.ipynb"),  # another homework's: passed
}
MIXED_EXPECTED = {
    "alice": ("alice_W4_Homework.ipynb", Match.NAME, "", "file"),
    "bob": ("W4_Homework.ipynb", Match.NAME, "", "folder"),
    "4003": ("W4_Homework.ipynb", Match.NAME, "wucarol", "canvas"),
    "1234": ("hw.ipynb", Match.CONTENT, "Dave Jones", "moodle"),
}


def mixed_placed(found) -> dict[str, tuple[str, Match, str, str]]:
    return {sid: (s.handin.file, s.handin.match, s.handin.display_name, s.handin.source)
            for sid, s in one_each(found).items()}


def test_mixed_folder_own_layouts_beside_canvas_and_moodle(tmp_path):
    root = write_tree(tmp_path / "class", MIXED)
    found, rejected = collect(root, W4, tmp_path)
    assert rejected == []
    assert mixed_placed(found) == MIXED_EXPECTED
    students = one_each(found)
    assert {sid: s.path.read_bytes() for sid, s in students.items()} == {
        "alice": example("alice_W4_Homework.ipynb"), "bob": example("bob_W4_Homework.ipynb"),
        "4003": example("carol_W4_Homework.ipynb"), "1234": example("dave_W4_Homework.ipynb")}
    assert [p.name for p in students["bob"].files] == ["notes.txt"]
    assert (students["4003"].handin.late, students["1234"].handin.late) == (False, None)
    assert_clean(found, "4003", "70030", "1234")


def test_mixed_folder_zipped_flat(tmp_path):
    download = write_zip(tmp_path / "class.zip", MIXED)
    found, rejected = collect(download, W4, tmp_path)
    assert rejected == []
    assert mixed_placed(found) == MIXED_EXPECTED


def test_mixed_folder_zipped_with_its_folder(tmp_path):
    download = write_zip(tmp_path / "class.zip",
                         {f"class/{name}": data for name, data in MIXED.items()})
    found, rejected = collect(download, W4, tmp_path)
    assert rejected == []
    assert mixed_placed(found) == MIXED_EXPECTED


# ------------------------------------------------------------------ another homework handed in


def test_w4_notebooks_in_a_w6_canvas_download_are_not_this_homework(tmp_path):
    download = write_zip(tmp_path / "submissions.zip", {
        "turingalan_4001_9000_W6_MNIST_FC.ipynb": example("alice_W6_MNIST_FC.ipynb"),
        "wucarol_4003_9004_mnist.ipynb": example("carol_W6_MNIST_FC.ipynb"),
        "dave_4004_9001_W4_Homework.ipynb": example("dave_W4_Homework.ipynb"),
        "leebob_4002_9003_homework.ipynb": example("alice_W4_Homework.ipynb"),
    })
    found, rejected = collect(download, W6, tmp_path)
    assert {sid: (s.handin.file, s.handin.match) for sid, s in one_each(found).items()} == {
        "4001": ("W6_MNIST_FC.ipynb", Match.NAME), "4003": ("mnist.ipynb", Match.CONTENT)}
    bad = {r.student: r for r in rejected}
    assert sorted(bad) == ["4002", "4004"]
    for sid, file in [("4004", "W4_Homework.ipynb"), ("4002", "homework.ipynb")]:
        reason = bad[sid].reason
        assert reason.startswith("not this homework:"), reason
        assert "resembles W4_Homework.ipynb (W4), not W6_MNIST_FC.ipynb" in reason, reason
        assert bad[sid].notebook == "W6_MNIST_FC.ipynb"
        assert bad[sid].handin.file == file
    assert (bad["4004"].handin.display_name, bad["4002"].handin.display_name) == ("dave", "leebob")
    assert bad["4004"].path.read_bytes() == example("dave_W4_Homework.ipynb")
    assert_clean([*found, *rejected], "4001", "4002", "4003", "4004", "900")


# ------------------------------------------------------------------------------------ roster

CANVAS_EXPORT = [
    "Student,ID,SIS User ID,SIS Login ID,Section,W4 Homework (58213),Current Score,"
    "Unposted Current Score,Final Score,Unposted Final Score",
    "    Points Possible,,,,,10.00,(read only),(read only),(read only),(read only)",
    '"Smith, John",4001,20231001,jsmith,CS 101 Lab A,,,,,',
    '"Lee, Ana",4002,20231002,alee,CS 101 Lab A,,,,,',
    "张伟,4003,20231003,zwei,CS 101 Lab B,,,,,",
    '"Núñez, José",4004,20231004,jnunez,CS 101 Lab B,,,,,',
    '"Kim, Sora",4005,20231005,skim,CS 101 Lab B,,,,,',
    '"Student, Test",4999,,8f3c2a91d0b4,CS 101 Lab A,,,,,',
]


def test_roster_puts_every_hand_in_to_its_person_and_lists_who_handed_in_nothing(tmp_path):
    export = tmp_path / "2025-09-30T1200_Grades-CS_101.csv"
    export.write_bytes(("\ufeff" + "\r\n".join(CANVAS_EXPORT) + "\r\n").encode("utf-8"))
    class_list = roster.load(export)
    download = write_zip(tmp_path / "submissions.zip", {
        **CANVAS_W4,  # and one from someone not on the roster (added after the export)
        "garciamaria_4090_70090_W4_Homework.ipynb": example("carol_W4_Homework.ipynb")})
    found, rejected = collect(download, W4, tmp_path)
    assert rejected == []
    people = {s.student: class_list.find(s.student, s.handin.display_name) for s in found}
    assert {sid: person.name if person else None for sid, person in people.items()} == {
        "4001": "Smith, John", "4002": "Lee, Ana", "4003": "张伟", "4004": "Núñez, José",
        "anon-Qk2Ha": None, "4090": None}
    handed_in = [person.id for person in people.values() if person]
    assert [(p.id, p.name) for p in class_list.missing(handed_in)] == [("4005", "Kim, Sora")]
