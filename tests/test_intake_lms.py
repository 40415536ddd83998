"""LMS downloads read as they come: each one built as the LMS names its zip's entries, unpacked
with safe_extract, and read back under the LMS's identity, with the student's own file names."""

from __future__ import annotations

import os
import zipfile
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import nbformat
import pytest

from grader.intake.files import safe_extract
from grader.intake.lms import Attempt, read

NOTEBOOK = nbformat.writes(nbformat.v4.new_notebook()).encode()


def download(tmp_path: Path, members: dict[str, bytes], name: str = "download") -> Path:
    """A zip written with exactly these entry names, unpacked as a TA would."""
    archive = tmp_path / f"{name}.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for member, data in members.items():
            zf.writestr(member, data)
    return safe_extract(archive, tmp_path / name)


def read_folder(root: Path, tmp_path: Path) -> tuple[list[Attempt], list[str]]:
    attempts, rest = read(root, sorted(root.iterdir()), tmp_path / "scratch")
    return attempts, sorted(path.name for path in rest)


def by_student(attempts: list[Attempt]) -> dict[str, list[Attempt]]:
    """Each student's attempts, latest last."""
    found: dict[str, list[Attempt]] = {}
    for attempt in attempts:
        found.setdefault(attempt.student, []).append(attempt)
    return {student: sorted(items, key=lambda a: a.order) for student, items in found.items()}


def given(attempt: Attempt) -> list[str]:
    return sorted(name for _, name in attempt.files)


def assert_clean(attempts: list[Attempt], *ids: str) -> None:
    """No LMS junk left in a display name or a file name as the student gave it."""
    for attempt in attempts:
        for text in [attempt.display_name, *given(attempt)]:
            assert "assignsubmission" not in text and "_attempt_" not in text, text
            assert not any(number in text for number in ids), text


# ------------------------------------------------------------------------------------ canvas


def test_canvas_resubmissions_are_ordered_and_late_is_kept(tmp_path):
    root = download(tmp_path, {
        "smithjohn_12345_678901_W4_Homework.ipynb": b"first",
        "smithjohn_12345_678903_helper.py": b"x = 1\n",
        "smithjohn_LATE_12345_678902_W4_Homework-1.ipynb": b"second",
        "smithjohn_LATE_12345_678950_W4_Homework-2.ipynb": NOTEBOOK,
    })
    attempts, rest = read_folder(root, tmp_path)
    assert rest == []
    john = by_student(attempts)["12345"]
    assert [a.source for a in john] == ["canvas"] * 3
    assert [given(a) for a in john] == [
        ["W4_Homework.ipynb"], ["W4_Homework.ipynb"], ["W4_Homework.ipynb", "helper.py"]]
    latest = john[-1]
    assert dict((name, path.name) for path, name in latest.files)["W4_Homework.ipynb"] == (
        "smithjohn_LATE_12345_678950_W4_Homework-2.ipynb")
    assert [a.late for a in john] == [False, True, True]
    assert {a.display_name for a in john} == {"smithjohn"}
    assert_clean(attempts, "12345", "6789")


def test_canvas_unicode_names_and_an_oddly_named_notebook(tmp_path):
    root = download(tmp_path, {
        "núñezjosé_222_333_作业 (1).ipynb": NOTEBOOK,
        "张伟_444_555_W4_Homework.ipynb": NOTEBOOK,
    })
    attempts, rest = read_folder(root, tmp_path)
    found = {a.student: (a.display_name, given(a)) for a in attempts}
    assert found == {"222": ("núñezjosé", ["作业 (1).ipynb"]),
                     "444": ("张伟", ["W4_Homework.ipynb"])}
    assert rest == []


def test_canvas_names_unpacked_on_macos_are_read_composed(tmp_path):
    root = tmp_path / "nfd"
    root.mkdir()
    (root / "núñezjosé_222_333_W4_Homework.ipynb").write_bytes(NOTEBOOK)
    decomposed = "nu\u0301n\u0303ezjose\u0301_666_777_W4.ipynb"  # as macOS writes it
    (root / decomposed).write_bytes(NOTEBOOK)
    attempts, _ = read_folder(root, tmp_path)
    assert {a.student: a.display_name for a in attempts} == {
        "222": "núñezjosé", "666": "núñezjosé"}


def test_canvas_anonymous_grading(tmp_path):
    root = download(tmp_path, {
        "anon_Qk2Ha_700001_W4_Homework.ipynb": NOTEBOOK,
        "LATE_anon_7bXyZ_700002_W4_Homework-1.ipynb": NOTEBOOK,
    })
    attempts, _ = read_folder(root, tmp_path)
    found = {a.student: (a.display_name, a.late, given(a)) for a in attempts}
    assert found == {"anon-Qk2Ha": ("", False, ["W4_Homework.ipynb"]),
                     "anon-7bXyZ": ("", True, ["W4_Homework.ipynb"])}


def test_canvas_text_and_link_entries_are_shown_not_graded(tmp_path):
    root = download(tmp_path, {
        "smithjohn_12345_678901_W4_Homework.ipynb": NOTEBOOK,
        "smithjohn_12345_text.html": b"<p>see attached</p>",
        "doejane_LATE_23456_link.html": b"<a href='https://colab'>",
    })
    attempts, rest = read_folder(root, tmp_path)
    found = by_student(attempts)
    assert found["12345"][0].skipped == ("smithjohn_12345_text.html",)
    assert given(found["12345"][0]) == ["W4_Homework.ipynb"]
    jane = found["23456"]
    assert len(jane) == 1 and jane[0].files == () and jane[0].late is True
    assert jane[0].skipped == ("doejane_LATE_23456_link.html",)
    assert rest == []


def test_canvas_archive_is_unpacked_and_a_bad_one_is_this_attempts_problem(tmp_path):
    inner = tmp_path / "inner.zip"
    with zipfile.ZipFile(inner, "w") as zf:
        zf.writestr("hw/W4_Homework.ipynb", NOTEBOOK)
        zf.writestr("hw/data/x.csv", "1,2\n")
    root = download(tmp_path, {
        "smithjohn_12345_678904_hw.zip": inner.read_bytes(),
        "doejane_23456_678905_hw.zip": b"not a zip",
    })
    attempts, _ = read_folder(root, tmp_path)
    found = by_student(attempts)
    john = found["12345"][0]
    assert given(john) == ["hw/W4_Homework.ipynb", "hw/data/x.csv"]
    assert all((tmp_path / "scratch").resolve() in path.parents for path, _ in john.files)
    assert john.problems == ()
    assert found["23456"][0].files == ()
    assert "archive rejected" in found["23456"][0].problems[0]


# ------------------------------------------------------------------------------------ moodle


def test_moodle_folders_flat_files_participants_and_online_text(tmp_path):
    root = download(tmp_path, {
        "José Núñez_1234_assignsubmission_file_/W4_Homework.ipynb": NOTEBOOK,
        "José Núñez_1234_assignsubmission_onlinetext_/onlinetext.html": b"<p>hi</p>",
        "张伟_5678_assignsubmission_file/作业 (1).ipynb": NOTEBOOK,
        "Participant_9012_assignsubmission_file_/W4_Homework.ipynb": NOTEBOOK,
        "Participant_9012_assignsubmission_file_/data/x.csv": b"1\n",
        "Ana Lee_3456_assignsubmission_file_W4_Homework.ipynb": NOTEBOOK,
    })
    attempts, rest = read_folder(root, tmp_path)
    assert rest == []
    found = {a.student: a for a in attempts}
    assert set(found) == {"1234", "5678", "participant-9012", "3456"}
    assert {a.source for a in attempts} == {"moodle"}
    jose = found["1234"]
    assert (jose.display_name, given(jose)) == ("José Núñez", ["W4_Homework.ipynb"])
    assert jose.skipped == ("José Núñez_1234_assignsubmission_onlinetext_",)
    assert (found["5678"].display_name, given(found["5678"])) == ("张伟", ["作业 (1).ipynb"])
    assert found["participant-9012"].display_name == ""
    assert given(found["participant-9012"]) == ["W4_Homework.ipynb", "data/x.csv"]
    assert given(found["3456"]) == ["W4_Homework.ipynb"]
    assert all(a.late is None and a.problems == () for a in attempts)
    assert_clean(attempts, "1234", "5678", "9012", "3456")


def test_moodle_symlink_is_a_problem_and_never_followed(tmp_path):
    root = download(tmp_path, {
        "José Núñez_1234_assignsubmission_file_/W4_Homework.ipynb": NOTEBOOK,
        "Ana Lee_3456_assignsubmission_file_/W4_Homework.ipynb": NOTEBOOK,
    })
    folder = root / "José Núñez_1234_assignsubmission_file_"
    (folder / "answers.ipynb").symlink_to("/etc/passwd")
    attempts, _ = read_folder(root, tmp_path)
    found = {a.student: a for a in attempts}
    assert found["1234"].problems == (
        "José Núñez_1234_assignsubmission_file_/answers.ipynb is a symbolic link",)
    assert given(found["1234"]) == ["W4_Homework.ipynb"]
    assert found["3456"].problems == ()


# -------------------------------------------------------------------------------- blackboard


def receipt(name: str, date: str, files: list[tuple[str, str]], text: str = "") -> bytes:
    listed = "".join(f"\tOriginal filename: {original}\n\tFilename: {stored}\n"
                     for original, stored in files)
    return (f"Name: {name}\nAssignment: W4 Homework\nDate Submitted: {date}\n"
            f"Current Grade: Needs Grading\n\nSubmission Field:\n"
            f"{text or 'There is no student submission text data for this assignment.'}\n\n"
            f"Comments:\nThere are no student comments for this assignment.\n\n"
            f"Files:\n{listed}\n").encode()


def test_blackboard_attempts_receipts_and_zones(tmp_path):
    first = "W4 Homework_jsmith_attempt_2021-10-05-22-13-45"
    second = "W4 Homework_jsmith_attempt_2021-10-07-09-00-01"
    mary = "W4 Homework_mary_ann_attempt_2021-10-06-08-30-00"
    root = download(tmp_path, {
        f"{first}_W4_Homework.ipynb": NOTEBOOK,
        f"{first}.txt": receipt("John Smith (jsmith)", "Tuesday, October 5, 2021 10:13:45 PM CDT",
                                [("W4 Homework.ipynb", f"{first}_W4_Homework.ipynb")]),
        f"{second}_W4_Homework.ipynb": NOTEBOOK,
        f"{second}.txt": receipt("John Smith (jsmith)", "Thursday, October 7, 2021 9:00:01 AM CDT",
                                 [("W4 Homework.ipynb", f"{second}_W4_Homework.ipynb")],
                                 text="I used the extension."),
        f"{mary}_作业.ipynb": NOTEBOOK,
        f"{mary}.txt": receipt("Mary Ann Lee (mary_ann)",
                               "Wednesday, 6 October 2021 15:30:00 o'clock CEST",
                               [("作业 (1).ipynb", f"{mary}_作业.ipynb")]),
    })
    attempts, rest = read_folder(root, tmp_path)
    assert rest == []
    found = by_student(attempts)
    john = found["jsmith"]
    assert [a.display_name for a in john] == ["John Smith", "John Smith"]
    assert [given(a) for a in john] == [["W4 Homework.ipynb"], ["W4 Homework.ipynb"]]
    cdt = timezone(timedelta(hours=-5))
    assert john[0].submitted_at == datetime(2021, 10, 5, 22, 13, 45, tzinfo=cdt)
    assert john[0].submitted_at.utcoffset() == timedelta(hours=-5)
    assert john[1].submitted_at == datetime(2021, 10, 7, 9, 0, 1, tzinfo=cdt)
    assert john[0].skipped == () and "Submission Field" in john[1].skipped[0]
    assert all(a.late is None and a.source == "blackboard" for a in attempts)
    (lee,) = found["mary_ann"]
    assert (lee.display_name, given(lee)) == ("Mary Ann Lee", ["作业 (1).ipynb"])
    assert lee.submitted_at.utcoffset() == timedelta(hours=2)
    assert_clean(attempts, "2021-10")


def test_blackboard_garbled_receipt_falls_back_to_the_file_names(tmp_path):
    stem = "W4 Homework_jsmith_attempt_2021-10-05-22-13-45"
    root = download(tmp_path, {
        f"{stem}_W4_Homework.ipynb": NOTEBOOK,
        f"{stem}.txt": b"\xff\xfeName: \x00\x00garbage (((\nDate Submitted: sometime\n",
        "W4 Homework_kim_attempt_2021-13-45-99-99-99_W4_Homework.ipynb": NOTEBOOK,
    })
    attempts, _ = read_folder(root, tmp_path)
    found = {a.student: a for a in attempts}
    john = found["jsmith"]
    assert (john.display_name, given(john)) == ("", ["W4_Homework.ipynb"])
    assert john.submitted_at == datetime(2021, 10, 5, 22, 13, 45)  # naive: no zone was given
    assert found["kim"].submitted_at is None and given(found["kim"]) == ["W4_Homework.ipynb"]


def test_blackboard_receipt_that_is_a_link_is_not_read(tmp_path):
    stem = "W4 Homework_jsmith_attempt_2021-10-05-22-13-45"
    root = download(tmp_path, {f"{stem}_W4_Homework.ipynb": NOTEBOOK})
    (root / f"{stem}.txt").symlink_to("/etc/passwd")
    (attempt,) = read_folder(root, tmp_path)[0]
    assert attempt.problems == (f"{stem}.txt is a symbolic link",)
    assert attempt.display_name == ""


# -------------------------------------------------------------------------------- gradescope

METADATA = """\
submission_1001:
  :submitters:
  - :name: Ada Lovelace
    :sid: '100'
    :email: ada@example.edu
  :created_at: 2023-09-15 12:34:56.789012000 -07:00
  :score: 10.0
  :status: processed
  :history: []
submission_1002:
  :submitters:
  - :name: José Núñez
    :sid:
    :email: jose@example.edu
  :created_at: 2023-09-16 08:00:00.000000000 -07:00
  :history:
  - :id: 990
    :created_at: 2023-09-14 08:00:00.000000000 -07:00
submission_1003:
  :submitters:
  - :name: 张伟
    :sid: '300'
    :email: zhang@example.edu
  - :name: Grace Hopper
    :sid: 301
    :email: grace@example.edu
  :created_at: 2023-09-17 23:59:00.000000000 -07:00
"""


def gradescope_export(prefix: str = "") -> dict[str, bytes]:
    return {
        f"{prefix}submission_metadata.yml": METADATA.encode(),
        f"{prefix}submission_1001/W4_Homework.ipynb": NOTEBOOK,
        f"{prefix}submission_1002/作业 (1).ipynb": NOTEBOOK,
        f"{prefix}submission_1003/W4_Homework.ipynb": NOTEBOOK,
        f"{prefix}submission_1003/helpers/util.py": b"pass\n",
    }


def test_gradescope_export_groups_and_times(tmp_path):
    pytest.importorskip("yaml")
    root = download(tmp_path, {**gradescope_export(), "alice_W4_Homework.ipynb": NOTEBOOK})
    attempts, rest = read_folder(root, tmp_path)
    assert rest == ["alice_W4_Homework.ipynb"]
    found = {a.student: a for a in attempts}
    assert set(found) == {"100", "jose@example.edu", "300", "301"}
    assert found["100"].display_name == "Ada Lovelace"
    assert found["100"].submitted_at == datetime(2023, 9, 15, 19, 34, 56, 789012,
                                                 tzinfo=UTC)
    assert found["100"].submitted_at.utcoffset() == timedelta(hours=-7)
    assert given(found["jose@example.edu"]) == ["作业 (1).ipynb"]
    assert found["jose@example.edu"].display_name == "José Núñez"
    assert found["jose@example.edu"].order[1] == 1  # one earlier submission
    group = [found["300"], found["301"]]
    assert [a.display_name for a in group] == ["张伟", "Grace Hopper"]
    assert all(given(a) == ["W4_Homework.ipynb", "helpers/util.py"] for a in group)
    assert {a.source for a in attempts} == {"gradescope"} and all(a.late is None for a in attempts)


def test_gradescope_export_as_a_folder_of_the_download(tmp_path):
    pytest.importorskip("yaml")
    root = download(tmp_path, {**gradescope_export("assignment_77_export/"),
                               "bob/W4_Homework.ipynb": NOTEBOOK})
    attempts, rest = read_folder(root, tmp_path)
    assert rest == ["bob"]
    assert {a.student for a in attempts} == {"100", "jose@example.edu", "300", "301"}


def test_gradescope_malformed_yml_falls_back_to_the_folders(tmp_path):
    root = download(tmp_path, {
        "submission_metadata.yml": b"submission_1001: [unclosed\n  :submitters: {{{\n",
        "submission_1001/W4_Homework.ipynb": NOTEBOOK,
    })
    attempts, rest = read_folder(root, tmp_path)
    assert rest == []
    (attempt,) = attempts
    assert (attempt.student, attempt.display_name, attempt.submitted_at) == (
        "submission_1001", "", None)
    assert given(attempt) == ["W4_Homework.ipynb"]


# ---------------------------------------------------------------------------------- nbgrader


def nbgrader_course() -> dict[str, bytes]:
    return {
        "submitted/alice/ps1/W4_Homework.ipynb": NOTEBOOK,
        "submitted/alice/ps1/timestamp.txt": b"2021-10-05 22:13:45.123456 UTC",
        "submitted/alice/ps2/W4_Homework.ipynb": NOTEBOOK,
        "submitted/alice/ps2/timestamp.txt": b"2021-10-09 08:00:00 CEST\n",
        "submitted/bob/ps1/W4_Homework.ipynb": NOTEBOOK,
        "submitted/bob/ps1/timestamp.txt": b"not a time",
        "release/ps1/W4_Homework.ipynb": NOTEBOOK,
        "gradebook.db": b"",
        "carol_W4_Homework.ipynb": NOTEBOOK,
    }


def test_nbgrader_submitted_folder_in_a_course_folder(tmp_path):
    root = download(tmp_path, nbgrader_course())
    attempts, rest = read_folder(root, tmp_path)
    assert rest == ["carol_W4_Homework.ipynb"]  # release/ and gradebook.db are nobody's
    found = by_student(attempts)
    assert set(found) == {"alice", "bob"}
    alice = found["alice"]
    assert [a.submitted_at for a in alice] == [
        datetime(2021, 10, 5, 22, 13, 45, 123456, tzinfo=UTC),
        datetime(2021, 10, 9, 6, 0, tzinfo=UTC)]
    assert all(given(a) == ["W4_Homework.ipynb"] for a in alice)  # timestamp.txt is not theirs
    assert found["bob"][0].submitted_at is None
    assert {a.source for a in attempts} == {"nbgrader"}


def test_nbgrader_submitted_folder_given_itself(tmp_path):
    course = download(tmp_path, nbgrader_course())
    submitted = course / "submitted"
    attempts, rest = read(submitted, sorted(submitted.iterdir()), tmp_path / "scratch")
    assert rest == [] and {a.student for a in attempts} == {"alice", "bob"}


def test_nbgrader_submission_secret_is_not_the_students(tmp_path):
    root = download(tmp_path, {
        "submitted/alice/ps1/W4_Homework.ipynb": NOTEBOOK,
        "submitted/alice/ps1/timestamp.txt": b"2021-10-05 22:13:45.123456 UTC",
        "submitted/alice/ps1/submission_secret.txt": b"0123abcd",
        "submitted/alice/ps1/data/timestamp.txt": b"the student's own file",
    })
    (alice,) = read_folder(root, tmp_path)[0]
    assert given(alice) == ["W4_Homework.ipynb", "data/timestamp.txt"]


# ------------------------------------------------------------------------- nbgrader exchange

# nbgrader submit's folder name: <student>+<assignment>+<timestamp>+<random>, the timestamp
# "%Y-%m-%d %H:%M:%S.%f %Z" in the exchange's zone, the random string 9 bytes of URL-safe base64.
STAMP = "2021-10-05 22:13:45.123456 UTC"


def exchange_course() -> dict[str, bytes]:
    """A course's exchange folder: three submissions of alice (two of ps1, one of ps2), one of
    bob, the released template and released feedback."""
    members = {
        "outbound/ps1/W4_Homework.ipynb": NOTEBOOK,
        "feedback/6c3f1e0a9b.html": b"<html></html>",
        "feedback_public/ps1/W4_Homework.html": b"<html></html>",
        "carol_W4_Homework.ipynb": NOTEBOOK,  # not the exchange's: handed back
    }
    for student, assignment, stamp, random in [
            ("alice", "ps1", "2021-10-07 09:00:00.000000 UTC", "q8w1Zx-_aB3c"),
            ("alice", "ps1", STAMP, "k3j2Yq0_pL9m"),
            ("alice", "ps2", "2021-10-12 18:00:00.500000 UTC", "Zz9z9z9z9z9z"),
            ("bob", "ps1", "2021-10-06 08:00:00.000000 CEST", "AAAAAAAAAAAA")]:
        folder = f"{student}+{assignment}+{stamp}+{random}"
        members[f"inbound/{folder}/W4_Homework.ipynb"] = NOTEBOOK
        members[f"inbound/{folder}/timestamp.txt"] = stamp.encode()
        members[f"inbound/{folder}/submission_secret.txt"] = b"f" * 128
    members["inbound/bob+ps1+2021-10-06 08:00:00.000000 CEST+AAAAAAAAAAAA/data/x.csv"] = b"1\n"
    return members


def test_nbgrader_exchange_course_folder(tmp_path):
    root = download(tmp_path, exchange_course())
    attempts, rest = read_folder(root, tmp_path)
    assert rest == ["carol_W4_Homework.ipynb"]  # outbound/, feedback/, feedback_public/: nobody's
    found = by_student(attempts)
    assert set(found) == {"alice", "bob"}
    assert [a.submitted_at for a in found["alice"]] == [  # every assignment, later ones higher
        datetime(2021, 10, 5, 22, 13, 45, 123456, tzinfo=UTC),
        datetime(2021, 10, 7, 9, tzinfo=UTC),
        datetime(2021, 10, 12, 18, 0, 0, 500000, tzinfo=UTC)]
    (bob,) = found["bob"]
    assert bob.submitted_at == datetime(2021, 10, 6, 6, tzinfo=UTC)
    assert given(bob) == ["W4_Homework.ipynb", "data/x.csv"]  # not timestamp.txt nor the secret
    assert all(given(a) == ["W4_Homework.ipynb"] for a in found["alice"])
    assert {(a.source, a.display_name, a.late, a.problems) for a in attempts} == {
        ("nbgrader", "", None, ())}


def test_nbgrader_exchange_inbound_given_itself(tmp_path):
    course = download(tmp_path, exchange_course())
    inbound = course / "inbound"
    attempts, rest = read(inbound, sorted(inbound.iterdir()), tmp_path / "scratch")
    assert rest == []
    found = by_student(attempts)
    assert {student: len(items) for student, items in found.items()} == {"alice": 3, "bob": 1}
    assert found["alice"][-1].submitted_at == datetime(2021, 10, 12, 18, 0, 0, 500000, tzinfo=UTC)


def test_nbgrader_exchange_zipped_with_its_course_folder(tmp_path):
    root = download(tmp_path, {f"cs101/{name}": data for name, data in exchange_course().items()})
    attempts, rest = read_folder(root / "cs101", tmp_path)
    assert rest == ["carol_W4_Homework.ipynb"]
    assert sorted(a.student for a in attempts) == ["alice", "alice", "alice", "bob"]


def odd_inbound(inbound: Path) -> None:
    """Submissions named as nbgrader names them in odd cases, and names it never writes."""
    for name, stamp in [
        ("a+b", None),                                      # too few fields: not nbgrader's
        (f"+ps1+{STAMP}+k3j2Yq0_pL9m", None),               # no student id
        (f"erin++{STAMP}+k3j2Yq0_pL9m", None),              # no assignment
        ("dave+x+ps1+2021-10-08 10:00:00.000000 UTC+q8w1Zx-_aB3c", None),  # `+` in the id
        ("erin+ps1+2021-10-05 22:13:45 UTC", None),         # before 0.6: no random string
        ("frank+ps1+2021-10-05 22:13:45.000000 +0200+abc", None),  # a %z format
        ("gina+ps1+2021-10-05 22_13_45 UTC+k3j2Yq0_pL9m", STAMP),  # the name's time garbled
        ("hal+ps1+sometime+k3j2Yq0_pL9m", "not a time"),    # no time at all
        ("hal+ps1+2021-10-01 10:00:00.000000 UTC+q8w1Zx-_aB3c", None),
    ]:
        (inbound / name).mkdir(parents=True)
        (inbound / name / "W4_Homework.ipynb").write_bytes(NOTEBOOK)
        if stamp is not None:
            (inbound / name / "timestamp.txt").write_text(stamp)
    odd = os.fsencode(inbound) + b"/gr\xfcn+ps1+" + STAMP.encode() + b"+k3j2Yq0_pL9m"
    os.mkdir(odd)
    with open(odd + b"/W4_Homework.ipynb", "wb") as notebook:
        notebook.write(NOTEBOOK)
    os.symlink("/etc", inbound / f"mallory+ps1+{STAMP}+k3j2Yq0_pL9m")
    (inbound / f"ivan+ps1+{STAMP}+k3j2Yq0_pL9m").mkdir()
    os.symlink("/etc/passwd", inbound / f"ivan+ps1+{STAMP}+k3j2Yq0_pL9m" / "W4_Homework.ipynb")
    (inbound / "README.txt").write_text("not a submission")


@pytest.mark.parametrize("given_folder", ["course", "inbound"])
def test_nbgrader_exchange_odd_names(tmp_path, given_folder):
    course = tmp_path / "cs101"
    odd_inbound(course / "inbound")
    (course / "outbound" / "ps1").mkdir(parents=True)
    root = course if given_folder == "course" else course / "inbound"
    attempts, rest = read(root, sorted(root.iterdir()), tmp_path / "scratch")
    assert sorted(path.name for path in rest) == [  # for the grader's own layouts
        f"+ps1+{STAMP}+k3j2Yq0_pL9m", "README.txt", "a+b", f"erin++{STAMP}+k3j2Yq0_pL9m"]
    found = by_student(attempts)
    assert sorted(found) == ["dave+x", "erin", "frank", "gina", "gr\\xfcn", "hal", "ivan",
                             "mallory"]
    assert found["dave+x"][0].submitted_at == datetime(2021, 10, 8, 10, tzinfo=UTC)
    assert found["erin"][0].submitted_at == datetime(2021, 10, 5, 22, 13, 45, tzinfo=UTC)
    assert found["frank"][0].submitted_at == datetime(2021, 10, 5, 20, 13, 45, tzinfo=UTC)
    assert found["gina"][0].submitted_at == datetime(2021, 10, 5, 22, 13, 45, 123456, tzinfo=UTC)
    hal = found["hal"]  # the untimed attempt orders lowest
    assert [a.submitted_at for a in hal] == [None, datetime(2021, 10, 1, 10, tzinfo=UTC)]
    assert found["gr\\xfcn"][0].files[0][1] == "W4_Homework.ipynb"
    (mallory,) = found["mallory"]  # a link named as a submission: never followed
    assert mallory.files == () and mallory.problems == (
        f"{'' if given_folder == 'inbound' else 'inbound/'}mallory+ps1+{STAMP}+k3j2Yq0_pL9m"
        " is a symbolic link",)
    (ivan,) = found["ivan"]
    assert ivan.files == () and len(ivan.problems) == 1 and "symbolic link" in ivan.problems[0]
    clean = [a for a in attempts if a.student not in ("mallory", "ivan")]
    assert all(given(a) == ["W4_Homework.ipynb"] and not a.problems for a in clean)


def test_nbgrader_exchange_names_elsewhere_need_a_time(tmp_path):
    """inbound/ copied under another name: a folder named as nbgrader names a submission is
    one when its time reads, and nothing else takes a `+`."""
    root = download(tmp_path, {
        f"alice+ps1+{STAMP}+k3j2Yq0_pL9m/W4_Homework.ipynb": NOTEBOOK,
        "bob+ps1+final+v2/W4_Homework.ipynb": NOTEBOOK,
        "carol+dave/W4_Homework.ipynb": NOTEBOOK,
        f"erin+ps1+{STAMP}+k3j2Yq0_pL9m.ipynb": NOTEBOOK,
    })
    attempts, rest = read_folder(root, tmp_path)
    assert [(a.student, given(a)) for a in attempts] == [("alice", ["W4_Homework.ipynb"])]
    assert rest == ["bob+ps1+final+v2", "carol+dave", f"erin+ps1+{STAMP}+k3j2Yq0_pL9m.ipynb"]


def test_nbgrader_exchange_before_anything_was_submitted(tmp_path):
    root = download(tmp_path, {"outbound/ps1/W4_Homework.ipynb": NOTEBOOK,
                               "alice_W4_Homework.ipynb": NOTEBOOK})
    (root / "inbound").mkdir()
    assert read_folder(root, tmp_path) == ([], ["alice_W4_Homework.ipynb"])


# ------------------------------------------------------------------------- the grader's own


def test_the_graders_own_layouts_come_back_unrecognised(tmp_path):
    root = download(tmp_path, {
        "alice_W4_Homework.ipynb": NOTEBOOK,
        "bob/W4_Homework.ipynb": NOTEBOOK,
        "bob_2021_W4.ipynb": NOTEBOOK,
        "carol.zip": b"PK",
        "dave_W4_Homework (1).ipynb": NOTEBOOK,
        "erin smith_2021_10_W4.ipynb": NOTEBOOK,  # Canvas keeps no space in a name
        "smithjohn_12345_678901_W4_Homework.ipynb": NOTEBOOK,
        "Ana Lee_3456_assignsubmission_file_/W4_Homework.ipynb": NOTEBOOK,
    })
    attempts, rest = read_folder(root, tmp_path)
    assert rest == ["alice_W4_Homework.ipynb", "bob", "bob_2021_W4.ipynb", "carol.zip",
                    "dave_W4_Homework (1).ipynb", "erin smith_2021_10_W4.ipynb"]
    assert sorted((a.source, a.student) for a in attempts) == [
        ("canvas", "12345"), ("moodle", "3456")]


def test_a_top_level_link_with_an_lms_name_is_a_problem(tmp_path):
    root = tmp_path / "download"
    root.mkdir()
    os.symlink("/etc/passwd", root / "smithjohn_12345_678901_W4_Homework.ipynb")
    (attempt,) = read_folder(root, tmp_path)[0]
    assert attempt.files == ()
    assert attempt.problems == ("smithjohn_12345_678901_W4_Homework.ipynb is a symbolic link",)
