"""Reading what students hand in without trusting it: plain files only, never through a link,
never larger than a limit, archives unpacked member by member.

Only plain files are ever read. A symbolic link, a hard link (a file with more than one name)
or a pipe or device anywhere in a submission rejects it, with the path named: a link could
otherwise hand the grader's own files (the MNIST hold-out, a hidden rubric, /etc/shadow) to
the student's notebook. Links are never followed, not even to look at what they point to, and
every read opens the file with O_NOFOLLOW and checks again, so a file swapped for a link after
intake is refused too.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import os
import shutil
import stat
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import BinaryIO

import nbformat

from grader.text import valid_unicode

MAX_NOTEBOOK_BYTES = 50 << 20
MAX_ARCHIVE_BYTES = 500 << 20
PLAIN_FILES_ONLY = "a submission must hold plain files only; links are never followed"


class RefusedFile(ValueError):
    """A handed-in file that is not read: a link, a pipe or device, reached through a link,
    or too large. The message names the file and says why."""


# ----------------------------------------------------------------------------- reading safely


def kind_problem(info: os.stat_result, shown: str) -> str:
    """Why the entry `info` (from lstat, never following a link) is not a plain file, or ''."""
    mode = info.st_mode
    if stat.S_ISLNK(mode):
        return f"{shown} is a symbolic link"
    if stat.S_ISDIR(mode):
        return ""
    if not stat.S_ISREG(mode):
        return f"{shown} is not a plain file (a pipe, socket or device)"
    if info.st_nlink > 1:
        return f"{shown} is a hard link (one file with {info.st_nlink} names)"
    return ""


def _opened_elsewhere(fd: int, path: Path) -> bool:
    """True when the file open on `fd` is not at `path` itself: a folder on the way was a
    symbolic link (or the file moved). Linux names an open file in /proc/self/fd."""
    try:
        opened = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return False  # no /proc: the O_NOFOLLOW and lstat checks are all there is
    return opened != os.path.abspath(path)


@contextlib.contextmanager
def open_regular(path: Path, max_bytes: int | None = None) -> Iterator[BinaryIO]:
    """`path` opened for reading, only if it is a plain file of its own: the last component is
    opened with O_NOFOLLOW (a symbolic link fails), what was opened must be a regular file with
    one name, at exactly this path (no folder on the way a link), and at most `max_bytes`."""
    flags = os.O_RDONLY | os.O_CLOEXEC | getattr(os, "O_BINARY", 0) | getattr(
        os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0)  # Windows has neither of the last
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if stat.S_ISLNK(_lstat_mode(path)):
            raise RefusedFile(f"{path.name} is a symbolic link: not followed") from None
        raise RefusedFile(f"{path.name} cannot be read ({exc.strerror})") from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(fd)
        problem = kind_problem(info, path.name)
        if problem:
            raise RefusedFile(f"{problem}: not read")
        if _opened_elsewhere(fd, path):
            raise RefusedFile(f"{path.name} was reached through a symbolic link: not read")
        if max_bytes is not None and info.st_size > max_bytes:
            raise RefusedFile(f"{path.name} is larger than {max_bytes >> 20} MB")
        yield handle


def _lstat_mode(path: Path) -> int:
    try:
        return path.lstat().st_mode
    except OSError:
        return 0


def read_regular(path: Path, max_bytes: int) -> bytes:
    """The bytes of a plain file (see open_regular), at most `max_bytes` of them."""
    with open_regular(path, max_bytes) as handle:
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise RefusedFile(f"{path.name} is larger than {max_bytes >> 20} MB")
    return data


def copy_regular(path: Path, target: Path) -> None:
    """Copy a plain file (see open_regular) to `target`, which is written afresh."""
    with open_regular(path) as source, target.open("wb") as sink:
        shutil.copyfileobj(source, sink)


def hash_into(digest: hashlib._Hash, path: Path) -> None:
    with open_regular(path) as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)


# ---------------------------------------------------------------------- folders and notebooks


def student_name(raw: str) -> str:
    """A file name as a student's name: bytes that are not UTF-8 are shown as `\\xff`, so the
    name can be stored and printed."""
    return os.fsencode(raw).decode("utf-8", "backslashreplace")


@dataclass
class Scan:
    """What a student's folder holds, found without following a link."""

    notebooks: list[Path] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    names: list[str] = field(default_factory=list)     # every *.ipynb name, of any kind
    problems: list[str] = field(default_factory=list)  # links and special files, by path
    size: int = 0


def scan(folder: Path) -> Scan:
    scan = Scan()

    def fail(error: OSError) -> None:
        raise error

    for here, dirs, files in os.walk(folder, onerror=fail):  # never descends into a link
        base = Path(here)
        for name in sorted(dirs) + sorted(files):
            path = base / name
            info = path.lstat()
            if name.endswith(".ipynb"):
                scan.names.append(name)
            problem = kind_problem(info, student_name(path.relative_to(folder).as_posix()))
            if problem:
                scan.problems.append(problem)
            elif not stat.S_ISDIR(info.st_mode):
                scan.size += info.st_size
                (scan.notebooks if path.suffix == ".ipynb" else scan.files).append(path)
    return scan


def content_hash(notebook: Path, extra: list[Path]) -> str:
    digest = hashlib.sha256()
    hash_into(digest, notebook)
    for file in extra:
        digest.update(os.fsencode(file.name) + b"\0")
        hash_into(digest, file)
    return digest.hexdigest()


def problem_with(path: Path) -> str:
    """Why this notebook cannot be graded, or '' (older 4.x and missing cell ids are repaired)."""
    try:
        nb = read_notebook(path)
    except RefusedFile as exc:
        return str(exc)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the same verdict
        return f"not a readable notebook ({type(exc).__name__}: {str(exc)[:200]})"
    language = nb.metadata.get("kernelspec", {}).get("language") or nb.metadata.get(
        "language_info", {}).get("name", "python")
    if str(language).lower() != "python":
        return f"a {language} notebook; this homework is graded with a Python kernel"
    return ""


def read_notebook(path: Path) -> nbformat.NotebookNode:
    raw = read_regular(path, MAX_NOTEBOOK_BYTES)
    return nbformat.reads(raw.decode("utf-8"), as_version=4)


def repaired_copy(path: Path, target: Path) -> None:
    """Write the notebook as nbformat 4.5 with cell ids, for the sandbox to run. Text that is
    not valid Unicode (a lone surrogate, which JSON can spell as "\\ud800") becomes U+FFFD, as
    any UTF-8 tool would show it: the file written must be UTF-8."""
    nb = read_notebook(path)
    nb.nbformat_minor = max(nb.nbformat_minor, 5)
    for cell in nb.cells:
        if "id" not in cell:
            cell["id"] = nbformat.corpus.words.generate_corpus_id()
    target.write_text(valid_unicode(nbformat.writes(nb)) + "\n", encoding="utf-8")


def safe_extract(archive: Path, target: Path) -> Path:
    """Extract regular files only; refuse symlinks, absolute paths, `..` and oversized archives."""
    with open_regular(archive) as handle, zipfile.ZipFile(handle) as zf:
        members = zf.infolist()
        if sum(m.file_size for m in members) > MAX_ARCHIVE_BYTES:
            raise ValueError(f"unpacks to more than {MAX_ARCHIVE_BYTES >> 20} MB")
        names = [member_name(m) for m in members]
        for member, name in zip(members, names, strict=True):
            path = PurePosixPath(name)
            if path.is_absolute() or ".." in path.parts:
                raise ValueError(f"unsafe path {name!r}")
            if stat.S_ISLNK(member.external_attr >> 16):
                raise ValueError(f"symlink {name!r}")
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        for member, name in zip(members, names, strict=True):
            if not member.is_dir() and not name.endswith("/"):
                destination = target / name
                destination.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(member) as source, destination.open("wb") as sink:
                    shutil.copyfileobj(source, sink)
    return target


def member_name(member: zipfile.ZipInfo) -> str:
    """A zip member's name as its author wrote it. Without the zip's UTF-8 flag, Python reads
    names as cp437; macOS's Archive Utility writes UTF-8 without the flag, and Windows in a
    Chinese locale writes GBK, so those are tried first. Windows' backslashes become slashes."""
    name = member.filename
    if not member.flag_bits & 0x800:
        try:
            raw = name.encode("cp437")
        except UnicodeEncodeError:
            raw = b""
        for codec in ("utf-8", "gbk"):
            try:
                name = raw.decode(codec) if raw else name
                break
            except UnicodeDecodeError:
                continue
    return name.replace("\\", "/")


def scratch_dir() -> Path:
    """A folder for unpacked archives, removed when the process exits."""
    path = Path(tempfile.mkdtemp(prefix="torchgrade-intake-"))
    atexit.register(shutil.rmtree, path, True)
    return path
