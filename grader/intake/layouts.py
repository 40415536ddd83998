"""The folder given to `grade`: who handed in what. Every hand-in becomes an `Attempt` (one
student's files at one time), whatever wrote the folder; `choose.py` then decides which file is
which notebook.

Read as they come, mixed freely inside the folder (or a zip of it):
    alice_W4_Homework.ipynb              flat: <student>_<notebook>, or any name at all
    alice/W4_Homework.ipynb              a folder per student (other files in it go along)
    alice.zip                            an archive per student
    smithjohn_LATE_1234_5678_hw.ipynb    an LMS's download: Canvas, Moodle, Blackboard,
    submission_metadata.yml, ...         Gradescope, nbgrader (see lms.py)

A flat file named for another homework's notebook (`alice_W6_MNIST_FC.ipynb` while grading W4)
belongs to that homework and is passed over: one folder can hold a whole term. Inside a
student's own hand-in every notebook is a candidate, so a wrong homework handed in is reported
as such rather than ignored.
"""

from __future__ import annotations

import stat
import zipfile
from pathlib import Path

from grader.assignments import Assignment
from grader.intake import choose, lms, matching
from grader.intake.files import (
    MAX_ARCHIVE_BYTES,
    PLAIN_FILES_ONLY,
    kind_problem,
    safe_extract,
    scan,
    student_name,
)
from grader.intake.records import Rejected, Submission

__all__ = ["Rejected", "Submission", "attempts_in", "collect"]

#: What macOS leaves in a folder it zips: never a student's hand-in.
MAC_LEFTOVERS = frozenset({"__MACOSX", ".DS_Store"})

ARCHIVE_ERRORS = (ValueError, zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError)


def collect(target: Path, assignment: Assignment,
            scratch: Path) -> tuple[list[Submission], list[Rejected]]:
    """Every submission of `assignment` under `target` (a folder, a zip of one, or a single
    notebook). The TA's own path is taken as given; everything inside it is read without
    following a link."""
    target = target.parent.resolve() / target.name
    if not target.is_dir() and target.suffix.lower() != ".zip":
        return choose.submissions(_single(target, assignment), assignment)
    if not target.is_dir():
        try:
            target = unwrapped(safe_extract(target, scratch.resolve() / "download"))
        except ARCHIVE_ERRORS as exc:
            raise choose.UnreadableDownload(f"{target.name}: {exc}") from None
    attempts, rejected = attempts_in(target, assignment, scratch)
    found, bad = choose.submissions(attempts, assignment)
    return found, rejected + bad


def unwrapped(folder: Path) -> Path:
    """The class inside a zip of it: `zip -r class.zip class` and macOS's Compress put every
    entry under one folder (and macOS adds `__MACOSX`), which is the class, not one student.
    One level only: the folders inside that one are the students'."""
    entries = [e for e in folder.iterdir() if e.name not in MAC_LEFTOVERS]
    if len(entries) == 1 and stat.S_ISDIR(entries[0].lstat().st_mode):
        return entries[0]
    return folder


def attempts_in(root: Path, assignment: Assignment,
                scratch: Path) -> tuple[list[lms.Attempt], list[Rejected]]:
    """Every hand-in under the folder `root`: the LMS's first, then the grader's own layouts."""
    entries = sorted(e for e in root.iterdir() if e.name not in MAC_LEFTOVERS)
    attempts, rest = lms.read(root, entries, scratch)
    rejected: list[Rejected] = []
    for entry in rest:
        try:
            attempts += _own(entry, assignment, scratch)
        except Exception as exc:  # noqa: BLE001 - one unreadable entry is one student's problem
            rejected.append(Rejected(student_name(entry.name), "", entry,
                                     f"could not be read ({type(exc).__name__}: {exc})"))
    return attempts, rejected


def _own(entry: Path, assignment: Assignment, scratch: Path) -> list[lms.Attempt]:
    """One entry in the grader's own layouts: a student's folder, archive or notebook."""
    info = entry.lstat()
    if stat.S_ISDIR(info.st_mode):
        return [_folder(entry, student_name(entry.name), "folder")]
    problem = kind_problem(info, student_name(entry.name))
    if entry.suffix == ".ipynb":
        return _flat(entry, assignment, problem)
    if entry.suffix.lower() != ".zip":
        return []
    if problem:
        return [_broken(student_name(entry.stem), "zip", f"{problem}: {PLAIN_FILES_ONLY}")]
    return _zip(entry, scratch)


def _flat(path: Path, assignment: Assignment, problem: str) -> list[lms.Attempt]:
    """A notebook handed in on its own: `<student>_<notebook>.ipynb`, or any name."""
    name = student_name(path.name)
    mine = matching.by_name(name, assignment.notebooks)
    if mine is None and matching.by_name(name, choose.other_notebooks(assignment)):
        return []  # another homework's notebook, named as such
    student = matching.prefix(name, mine[0]) if mine else ""
    student = student or student_name(path.stem)
    if problem:
        return [_broken(student, "file", f"{problem}: {PLAIN_FILES_ONLY}", name)]
    return [lms.Attempt(student=student, display_name="", source="file",
                        files=((path, name),))]


def _single(path: Path, assignment: Assignment) -> list[lms.Attempt]:
    """The one notebook given (`grade check`, or `grade` of one file), whatever its name: the
    student is the name's prefix before the notebook's name, else the file's stem."""
    name = student_name(path.name)
    mine = matching.by_name(name, assignment.notebooks)
    student = (matching.prefix(name, mine[0]) if mine else "") or student_name(path.stem)
    problem = kind_problem(path.lstat(), name)
    if problem:
        return [_broken(student, "file", f"{problem}: {PLAIN_FILES_ONLY}", name)]
    return [lms.Attempt(student=student, display_name="", source="file",
                        files=((path, name),))]


def _folder(folder: Path, student: str, source: str) -> lms.Attempt:
    """A student's folder: every file in it, at any depth. One link or special file anywhere,
    or too much data, rejects the whole folder."""
    found = scan(folder)
    if found.problems:
        more = f" (and {len(found.problems) - 1} more)" if len(found.problems) > 1 else ""
        return _broken(student, source, f"{found.problems[0]}{more}: {PLAIN_FILES_ONLY}")
    if found.size > MAX_ARCHIVE_BYTES:
        return _broken(student, source,
                       f"its files are larger than {MAX_ARCHIVE_BYTES >> 20} MB in all")
    files = sorted(found.notebooks) + sorted(found.files)
    return lms.Attempt(student=student, display_name="", source=source, files=tuple(
        (p, student_name(p.relative_to(folder).as_posix())) for p in files))


def _zip(archive: Path, scratch: Path) -> list[lms.Attempt]:
    """A zip at the top: a whole LMS download when an LMS's names are inside it, else one
    student's archive."""
    student = student_name(archive.stem)
    try:
        folder = safe_extract(archive, scratch.resolve() / f"zip-{archive.stem}")
    except ARCHIVE_ERRORS as exc:  # RuntimeError: encrypted; NotImplementedError: method
        return [_broken(student, "zip", f"archive rejected: {exc}")]
    inner, _ = lms.read(folder, sorted(folder.iterdir()), scratch / f"lms-{archive.stem}")
    return inner or [_folder(folder, student, "zip")]


def _broken(student: str, source: str, problem: str, file: str = "") -> lms.Attempt:
    return lms.Attempt(student=student, display_name="", source=source,
                       files=((Path(file), file),) if file else (), problems=(problem,))
