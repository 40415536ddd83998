"""Finding the submissions for an assignment: what was handed in, by whom, and whether it can be
graded at all. A bad file is rejected with a reason for that submission only.

Accepted layouts, mixed freely inside the folder given to `grade`:
    alice_W4_Homework.ipynb              flat: <student>_<notebook>
    alice/W4_Homework.ipynb              a folder per student (other files in it go along)
    alice.zip                            an archive per student (Gradescope, Canvas)
"""

from __future__ import annotations

import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from grader.assignments import Assignment, Notebook
from grader.intake.files import (
    MAX_ARCHIVE_BYTES,
    PLAIN_FILES_ONLY,
    RefusedFile,
    content_hash,
    kind_problem,
    problem_with,
    safe_extract,
    scan,
    student_name,
)
from grader.results import Handin


@dataclass(frozen=True)
class Submission:
    student: str
    notebook: Notebook     # the assignment's notebook this file is
    path: Path             # the handed-in .ipynb
    files: tuple[Path, ...]  # other handed-in files that go into the sandbox with it
    content_hash: str
    handin: Handin = field(default_factory=Handin)  # the file's own name, how it matched, LMS facts


@dataclass(frozen=True)
class Rejected:
    student: str
    notebook: str
    path: Path
    reason: str





def collect(target: Path, assignment: Assignment,
            scratch: Path) -> tuple[list[Submission], list[Rejected]]:
    """Every submission of `assignment` under `target` (a folder or a single notebook). The
    TA's own path is taken as given; everything inside it is read without following a link."""
    if not target.is_dir():
        return _flat(target.parent.resolve() / target.name, assignment)
    found: list[Submission] = []
    rejected: list[Rejected] = []
    for entry in sorted(target.resolve().iterdir()):
        try:
            subs, bad = _entry(entry, assignment, scratch)
        except Exception as exc:  # noqa: BLE001 - one unreadable entry is one student's problem
            subs, bad = [], [Rejected(student_name(entry.name), "", entry,
                                      f"could not be read ({type(exc).__name__}: {exc})")]
        found += subs
        rejected += bad
    return found, rejected


def _entry(entry: Path, assignment: Assignment,
           scratch: Path) -> tuple[list[Submission], list[Rejected]]:
    """One entry of the submissions folder: a student's folder, archive or notebook."""
    info = entry.lstat()
    if stat.S_ISDIR(info.st_mode):
        return _from_folder(entry, assignment)
    if entry.suffix == ".ipynb":
        return _flat(entry, assignment)
    problem = kind_problem(info, entry.name)
    if problem:
        return [], [Rejected(student_name(entry.stem), "", entry,
                             f"{problem}: {PLAIN_FILES_ONLY}")]
    if entry.suffix == ".zip":
        return _from_zip(entry, assignment, scratch)
    return [], []


def _student_of(filename: str, assignment: Assignment) -> str:
    for nb in assignment.notebooks:
        for name in (nb.name, *nb.aliases):
            if filename.endswith(name):
                return student_name(filename[: -len(name)].rstrip("_- ") or "student")
    return student_name(filename.removesuffix(".ipynb"))


def _notebook_of(filename: str, assignment: Assignment) -> Notebook | None:
    return next((n for n in assignment.notebooks if n.matches(filename)), None)


def _flat(path: Path, assignment: Assignment) -> tuple[list[Submission], list[Rejected]]:
    """A notebook handed in on its own, `<student>_<notebook>`."""
    nb = _notebook_of(path.name, assignment)
    if nb is None:
        return [], []  # another homework's notebook
    student = _student_of(path.name, assignment)
    problem = kind_problem(path.lstat(), path.name)
    if problem:
        return [], [Rejected(student, nb.name, path, f"{problem}: {PLAIN_FILES_ONLY}")]
    return _from_files(student, [path], [], assignment)


def _from_folder(folder: Path, assignment: Assignment) -> tuple[list[Submission], list[Rejected]]:
    """A folder per student: its notebooks, and every other file, at any depth, goes along.
    One link or special file anywhere rejects the whole folder."""
    student = student_name(folder.name)
    found = scan(folder)
    reason = ""
    if found.problems:
        more = f" (and {len(found.problems) - 1} more)" if len(found.problems) > 1 else ""
        reason = f"{found.problems[0]}{more}: {PLAIN_FILES_ONLY}"
    elif found.size > MAX_ARCHIVE_BYTES:
        reason = f"its files are larger than {MAX_ARCHIVE_BYTES >> 20} MB in all"
    if not reason:
        return _from_files(student, sorted(found.notebooks), sorted(found.files), assignment)
    matched = sorted({nb.name for nb in assignment.notebooks for n in found.names
                      if nb.matches(n)})
    return [], [Rejected(student, nb, folder, reason) for nb in matched or [""]]


def _from_files(student: str, notebooks: list[Path], extra: list[Path],
                assignment: Assignment) -> tuple[list[Submission], list[Rejected]]:
    found, rejected = [], []
    for path in notebooks:
        nb = _notebook_of(path.name, assignment)
        if nb is None:
            continue  # another homework's notebook
        reason = problem_with(path)
        if not reason:
            try:
                found.append(Submission(student, nb, path, tuple(extra),
                                        content_hash(path, extra)))
                continue
            except RefusedFile as exc:
                reason = f"{exc}; {PLAIN_FILES_ONLY}"
        rejected.append(Rejected(student, nb.name, path, reason))
    return found, rejected


def _from_zip(archive: Path, assignment: Assignment,
              scratch: Path) -> tuple[list[Submission], list[Rejected]]:
    student = student_name(archive.stem)
    try:
        folder = safe_extract(archive, scratch.resolve() / f"zip-{archive.stem}")
    except (ValueError, zipfile.BadZipFile, OSError, RuntimeError,
            NotImplementedError) as exc:  # RuntimeError: encrypted; NotImplementedError: method
        return [], [Rejected(student, "", archive, f"archive rejected: {exc}")]
    found = scan(folder)
    return _from_files(student, sorted(found.notebooks), sorted(found.files), assignment)
