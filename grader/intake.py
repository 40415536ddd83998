"""Finding the submissions for an assignment: what was handed in, by whom, and whether it can be
graded at all. A bad file is rejected with a reason for that submission only.

Accepted layouts, mixed freely inside the folder given to `grade`:
    alice_W4_Homework.ipynb              flat: <student>_<notebook>
    alice/W4_Homework.ipynb              a folder per student (other files in it go along)
    alice.zip                            an archive per student (Gradescope, Canvas)
"""

from __future__ import annotations

import atexit
import hashlib
import shutil
import stat
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import nbformat

from grader.assignments import Assignment, Notebook

MAX_NOTEBOOK_BYTES = 50 << 20
MAX_ARCHIVE_BYTES = 500 << 20


@dataclass(frozen=True)
class Submission:
    student: str
    notebook: Notebook     # the assignment's notebook this file is
    path: Path             # the handed-in .ipynb
    files: tuple[Path, ...]  # other handed-in files that go into the sandbox with it
    content_hash: str


@dataclass(frozen=True)
class Rejected:
    student: str
    notebook: str
    path: Path
    reason: str


def collect(target: Path, assignment: Assignment,
            scratch: Path) -> tuple[list[Submission], list[Rejected]]:
    """Every submission of `assignment` under `target` (a folder or a single notebook)."""
    if target.is_file():
        return _from_files(_student_of(target.name, assignment), [target], [], assignment)
    found: list[Submission] = []
    rejected: list[Rejected] = []
    for entry in sorted(target.iterdir()):
        if entry.is_symlink():
            rejected.append(Rejected(entry.stem, "", entry, "a symlink, not a file: left out"))
        elif entry.is_dir():
            extra = sorted(p for p in entry.rglob("*") if p.is_file() and p.suffix != ".ipynb")
            subs, bad = _from_files(entry.name, sorted(entry.rglob("*.ipynb")), extra, assignment)
            found += subs
            rejected += bad
        elif entry.suffix == ".zip":
            subs, bad = _from_zip(entry, assignment, scratch)
            found += subs
            rejected += bad
        elif entry.suffix == ".ipynb":
            subs, bad = _from_files(_student_of(entry.name, assignment), [entry], [], assignment)
            found += subs
            rejected += bad
    return found, rejected


def _student_of(filename: str, assignment: Assignment) -> str:
    for nb in assignment.notebooks:
        for name in (nb.name, *nb.aliases):
            if filename.endswith(name):
                return filename[: -len(name)].rstrip("_- ") or "student"
    return filename.removesuffix(".ipynb")


def _from_files(student: str, notebooks: list[Path], extra: list[Path],
                assignment: Assignment) -> tuple[list[Submission], list[Rejected]]:
    found, rejected = [], []
    for path in notebooks:
        nb = next((n for n in assignment.notebooks if n.matches(path.name)), None)
        if nb is None:
            continue  # another homework's notebook
        reason = problem_with(path)
        if reason:
            rejected.append(Rejected(student, nb.name, path, reason))
            continue
        digest = hashlib.sha256(path.read_bytes())
        for file in extra:
            digest.update(file.name.encode() + b"\0" + file.read_bytes())
        found.append(Submission(student, nb, path, tuple(extra), digest.hexdigest()))
    return found, rejected


def problem_with(path: Path) -> str:
    """Why this notebook cannot be graded, or '' (older 4.x and missing cell ids are repaired)."""
    if path.stat().st_size > MAX_NOTEBOOK_BYTES:
        return f"larger than {MAX_NOTEBOOK_BYTES >> 20} MB"
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the same verdict
        return f"not a readable notebook ({type(exc).__name__}: {str(exc)[:200]})"
    language = nb.metadata.get("kernelspec", {}).get("language") or nb.metadata.get(
        "language_info", {}).get("name", "python")
    if str(language).lower() != "python":
        return f"a {language} notebook; this homework is graded with a Python kernel"
    return ""


def repaired_copy(path: Path, target: Path) -> None:
    """Write the notebook as nbformat 4.5 with cell ids, for the sandbox to run."""
    nb = nbformat.read(path, as_version=4)
    nb.nbformat_minor = max(nb.nbformat_minor, 5)
    for cell in nb.cells:
        if "id" not in cell:
            cell["id"] = nbformat.corpus.words.generate_corpus_id()
    nbformat.write(nb, target)


def _from_zip(archive: Path, assignment: Assignment,
              scratch: Path) -> tuple[list[Submission], list[Rejected]]:
    student = archive.stem
    try:
        folder = _safe_extract(archive, scratch / f"zip-{student}")
    except (ValueError, zipfile.BadZipFile, OSError) as exc:
        return [], [Rejected(student, "", archive, f"archive rejected: {exc}")]
    extra = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix != ".ipynb")
    return _from_files(student, sorted(folder.rglob("*.ipynb")), extra, assignment)


def _safe_extract(archive: Path, target: Path) -> Path:
    """Extract regular files only; refuse symlinks, absolute paths, `..` and oversized archives."""
    with zipfile.ZipFile(archive) as zf:
        members = zf.infolist()
        if sum(m.file_size for m in members) > MAX_ARCHIVE_BYTES:
            raise ValueError(f"unpacks to more than {MAX_ARCHIVE_BYTES >> 20} MB")
        for member in members:
            name = PurePosixPath(member.filename)
            mode = member.external_attr >> 16
            if name.is_absolute() or ".." in name.parts:
                raise ValueError(f"unsafe path {member.filename!r}")
            if stat.S_ISLNK(mode):
                raise ValueError(f"symlink {member.filename!r}")
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        for member in members:
            if not member.is_dir():
                destination = target / member.filename
                destination.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(member) as source, destination.open("wb") as sink:
                    shutil.copyfileobj(source, sink)
    return target


def scratch_dir() -> Path:
    """A folder for unpacked archives, removed when the process exits."""
    path = Path(tempfile.mkdtemp(prefix="torchgrade-intake-"))
    atexit.register(shutil.rmtree, path, True)
    return path
