"""Reading the "download all submissions" of a learning-management system as it comes: who
handed in what, under the LMS's own identity, with the display name, the time and the lateness
the LMS wrote beside it. Every name is parsed, never trusted: the files are read as
grader.intake.files reads them (no link followed, receipts capped), and a receipt, metadata file
or timestamp that cannot be read falls back to what the file names say.

    source      entry in the download (the unpacked folder)                  identity
    ----------  -----------------------------------------------------------  ----------------------
    canvas      <lastfirst>[_LATE]_<user id>_<file id>_<file>                user id
                [LATE_]anon_<anon id>_<file id>_<file>   (anonymous grading) anon-<anon id>
                <lastfirst>[_LATE]_<user id>_text.html | _link.html         skipped, shown
    moodle      <Full Name>_<id>_assignsubmission_file[_]/...  (3.1 and up)  <id>
                <Full Name>_<id>_assignsubmission_file_<file>  (before 3.1)  <id>
                Participant_<id>_assignsubmission_file[_]/...  (blind)       participant-<id>
                ..._assignsubmission_onlinetext[_]/onlinetext.html           skipped, shown
    blackboard  <Assignment>_<username>_attempt_<Y-m-d-H-M-S>_<file>         username
                <Assignment>_<username>_attempt_<Y-m-d-H-M-S>.txt  (receipt: name, date, files)
    gradescope  submission_metadata.yml + submission_<id>/  (the export)     sid, else email
    nbgrader    submitted/<student>/<assignment>/  (+ timestamp.txt)         <student>
                inbound/<student>+<assignment>+<time>+<random>/  (exchange)  <student>
                inbound/<student>+<assignment>+<time>/  (before 0.6)         <student>

Canvas, Moodle's flat layout and Blackboard name every file on its own; a file there that is a
.zip is the student's archive and is unpacked. nbgrader's exchange (what a TA has before
`nbgrader collect`) is read given the course's exchange folder (its outbound/, the released
template, and feedback/ are nobody's) or its inbound/ folder: every submission of every
assignment there is an attempt, timed by its name (`%Y-%m-%d %H:%M:%S.%f %Z`, the timestamp
nbgrader submit wrote) or else its timestamp.txt. Anything not recognised is handed back for the
grader's own layouts (`alice_W4_Homework.ipynb`, `alice/`, `alice.zip`).
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import unicodedata
import zipfile
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from grader.intake.files import (
    MAX_ARCHIVE_BYTES,
    RefusedFile,
    kind_problem,
    read_regular,
    safe_extract,
    scan,
    student_name,
)

MAX_RECEIPT_BYTES = 1 << 20    # a Blackboard receipt, an nbgrader timestamp.txt
MAX_METADATA_BYTES = 16 << 20  # Gradescope's yml holds every submission's autograder output
ARCHIVE_ERRORS = (ValueError, zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError,
                  EOFError, zlib.error)  # RuntimeError: encrypted; NotImplementedError: method


@dataclass(frozen=True)
class Attempt:
    """One student's hand-in as an LMS laid it out."""

    student: str                 # the LMS's identity: user id, username, anon/participant id
    display_name: str            # as the LMS shows the student; "" when anonymous
    source: str                  # "canvas" | "moodle" | "blackboard" | "gradescope" | "nbgrader"
    # (the file on disk, its name as the student gave it: LMS prefixes and Canvas -N removed;
    # a relative posix path inside the hand-in for files from a folder or archive)
    files: tuple[tuple[Path, str], ...]
    submitted_at: datetime | None = None  # timezone-aware when the LMS gives a zone; else naive
    late: bool | None = None     # what the LMS says; None when it says nothing
    # sorts later attempts of the same student higher (timestamp, resubmission number); here
    # always (seconds, resubmission, tiebreak) of numbers, or () where the LMS keeps one attempt
    order: tuple[object, ...] = ()
    skipped: tuple[str, ...] = ()   # entries shown to the TA, not graded (text/URL entries,
                                    # receipts are NOT listed)
    problems: tuple[str, ...] = ()  # links or special files found in this attempt (the caller
                                    # rejects it)


Reader = Callable[[Path, list[Path], Path], tuple[list[Attempt], list[Path]]]


def read(root: Path, entries: list[Path], scratch: Path) -> tuple[list[Attempt], list[Path]]:
    """The entries of the folder `root` (its top-level entries, `entries`) that an LMS wrote,
    read as attempts; the entries not recognised are returned, for the grader's own layouts
    (`<student>_<notebook>.ipynb` flat files, a folder or zip per student). Given the course's
    nbgrader exchange folder, the entries of its inbound/ that are not nbgrader's are returned
    too (a folder there is then graded as a student's, under its own name).

    The conventions whose names are the most particular are tried first (a folder layout, then
    Blackboard's `_attempt_`, Moodle's `_assignsubmission_`), Canvas's last: a name is taken by
    one convention only."""
    readers: tuple[Reader, ...] = (_nbgrader, _exchange, _gradescope, _blackboard, _moodle,
                                   _canvas)
    attempts: list[Attempt] = []
    remaining = list(entries)
    for reader in readers:
        found, remaining = reader(root, remaining, scratch)
        attempts += found
    return attempts, remaining


# ------------------------------------------------------------------------------ shared helpers


def _text(raw: str) -> str:
    """A name on disk as text to parse and store: bytes that are not UTF-8 shown as `\\xff`,
    and composed (NFC), so a name unpacked on macOS (decomposed) reads as the LMS wrote it."""
    return unicodedata.normalize("NFC", student_name(raw))


def _shown(path: Path, root: Path) -> str:
    """`path` as the TA finds it: relative to the folder given to `grade`."""
    try:
        relative = path.relative_to(root)
    except ValueError:
        relative = Path(path.name)
    return _text(relative.as_posix())


def _lstat(path: Path) -> os.stat_result | None:
    try:
        return path.lstat()
    except OSError:
        return None


def _is_dir(info: os.stat_result | None) -> bool:
    return info is not None and stat.S_ISDIR(info.st_mode)


def _seconds(moment: datetime | None) -> float:
    """A time as a number to order attempts by; a naive time is taken as UTC, so the order does
    not depend on the machine's zone."""
    if moment is None:
        return 0.0
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


@dataclass
class _Found:
    """What one attempt's entries hold, gathered entry by entry."""

    files: list[tuple[Path, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def add(self, other: _Found) -> None:
        self.files += other.files
        self.problems += other.problems
        self.skipped += other.skipped


def _folder(folder: Path, shown: str) -> _Found:
    """Every plain file under `folder`, named by its path inside it; a link or special file
    anywhere is a problem named by its path (scan never follows a link)."""
    try:
        found = scan(folder)
    except OSError as exc:
        return _Found(problems=[f"{shown} could not be read ({exc.strerror or exc})"])
    problems = [f"{shown}/{problem}" for problem in found.problems]
    if found.size > MAX_ARCHIVE_BYTES:
        problems.append(f"{shown} holds more than {MAX_ARCHIVE_BYTES >> 20} MB")
    files = [(path, _text(path.relative_to(folder).as_posix()))
             for path in sorted(found.notebooks + found.files)]
    return _Found(files=files, problems=problems)


def _unpacked(archive: Path, shown: str, scratch: Path) -> _Found:
    """A student's .zip, unpacked member by member under `scratch`; a bad archive is a problem
    of this attempt only."""
    key = hashlib.sha256(os.fsencode(archive)).hexdigest()[:20]
    try:
        folder = safe_extract(archive, scratch.resolve() / "lms" / key)
    except ARCHIVE_ERRORS as exc:
        return _Found(problems=[f"{shown}: archive rejected ({exc})"])
    return _folder(folder, shown)


def _entry(path: Path, info: os.stat_result, given: str, root: Path, scratch: Path) -> _Found:
    """One entry an LMS named for a student: a file as the student named it, a .zip unpacked,
    a folder walked; a link or pipe is a problem, never opened."""
    shown = _shown(path, root)
    problem = kind_problem(info, shown)
    if problem:
        return _Found(problems=[problem])
    if stat.S_ISDIR(info.st_mode):
        return _folder(path, shown)
    if path.suffix.lower() == ".zip":
        return _unpacked(path, shown, scratch)
    return _Found(files=[(path, given)])


def _checked(path: Path, root: Path) -> _Found:
    """An entry that is shown, not graded (a text entry, a receipt): only its links count."""
    info = _lstat(path)
    shown = _shown(path, root)
    if info is None:
        return _Found()
    if stat.S_ISDIR(info.st_mode):
        return _Found(problems=_folder(path, shown).problems)
    problem = kind_problem(info, shown)
    return _Found(problems=[problem] if problem else [])


def _clean(text: str) -> str:
    """Text an LMS wrote (a YAML string may spell a lone surrogate): composed, and storable as
    UTF-8, a lone surrogate shown as `\\udc80`."""
    return unicodedata.normalize(
        "NFC", text.encode("utf-8", "backslashreplace").decode("utf-8"))


def _receipt_text(path: Path) -> str:
    """A small LMS-written text file, as text; '' when it cannot be read (the file names then
    say what there is to know)."""
    try:
        return read_regular(path, MAX_RECEIPT_BYTES).decode("utf-8", errors="replace")
    except (RefusedFile, OSError):
        return ""


# ------------------------------------------------------------------------------------ times

# Zone abbreviations the LMSs print (Blackboard's receipt, nbgrader's %Z), as minutes east of UTC.
# An ambiguous one is read as North America's (CST, AST: the LMS servers' usual zones), and IST
# (India, Ireland, Israel) is left out: the time then stays naive.
_ZONES = {
    "UTC": 0, "GMT": 0, "Z": 0, "WET": 0, "WEST": 60, "BST": 60, "CET": 60, "CEST": 120,
    "MET": 60, "MEST": 120, "EET": 120, "EEST": 180, "MSK": 180, "SGT": 480,
    "HKT": 480, "AWST": 480, "JST": 540, "KST": 540, "ACST": 570, "ACDT": 630, "AEST": 600,
    "AEDT": 660, "NZST": 720, "NZDT": 780, "NST": -210, "NDT": -150, "AST": -240, "ADT": -180,
    "EST": -300, "EDT": -240, "CST": -360, "CDT": -300, "MST": -420, "MDT": -360, "PST": -480,
    "PDT": -420, "AKST": -540, "AKDT": -480, "HST": -600,
}
_OFFSET = re.compile(r"(?:UTC|GMT)?(?P<sign>[+-])(?P<hours>\d{1,2}):?(?P<minutes>\d{2})?")
_ISO = re.compile(r"(?P<date>\d{4}-\d{2}-\d{2})[ T](?P<time>\d{2}:\d{2}:\d{2})"
                  r"(?:\.(?P<fraction>\d+))?\s*(?P<zone>\S+)?")
_RECEIPT_FORMATS = ("%B %d, %Y %I:%M:%S %p", "%d %B %Y %H:%M:%S", "%B %d, %Y %H:%M:%S",
                    "%d %B, %Y %H:%M:%S", "%d %B %Y %I:%M:%S %p", "%Y-%m-%d %H:%M:%S")


def _zone(token: str) -> timezone | None:
    """The zone an LMS printed (`CDT`, `UTC`, `-05:00`), or None when it is not one we know."""
    if token.upper() in _ZONES:
        return timezone(timedelta(minutes=_ZONES[token.upper()]), token.upper())
    match = _OFFSET.fullmatch(token)
    if not match or int(match["hours"]) > 14:
        return None
    minutes = int(match["hours"]) * 60 + int(match["minutes"] or 0)
    return timezone(timedelta(minutes=-minutes if match["sign"] == "-" else minutes))


def _iso_time(text: str) -> datetime | None:
    """`2021-10-05 22:13:45.123456 UTC` (nbgrader) or `2023-09-15 12:34:56.789012000 -07:00`
    (Gradescope, as Ruby writes it): aware when a known zone follows, naive otherwise."""
    match = _ISO.fullmatch(text.strip())
    if not match:
        return None
    try:
        moment = datetime.fromisoformat(f"{match['date']} {match['time']}")
    except ValueError:
        return None
    moment = moment.replace(microsecond=int((match["fraction"] or "0")[:6].ljust(6, "0")))
    zone = _zone(match["zone"]) if match["zone"] else None
    return moment.replace(tzinfo=zone) if zone else moment


def _receipt_time(text: str) -> datetime | None:
    """Blackboard's `Tuesday, October 5, 2021 10:13:45 PM CDT` (or the European
    `Tuesday, 5 October 2021 22:13:45 o'clock CEST`): aware when the zone is one we know."""
    text = re.sub(r"\s+o'clock\b", "", text.strip())
    text = re.sub(r"^[^\W\d]+day,\s*", "", text)
    words = text.rsplit(" ", 1)
    zone = _zone(words[1]) if len(words) == 2 else None
    if zone is not None:
        text = words[0]
    for form in _RECEIPT_FORMATS:
        try:
            moment = datetime.strptime(text, form)
        except ValueError:
            continue
        return moment.replace(tzinfo=zone) if zone else moment
    return None


# ------------------------------------------------------------------------------------ canvas

_CANVAS = re.compile(
    r"(?:(?P<late_anon>LATE_)?anon_(?P<anon>[A-Za-z0-9]+)"
    r"|(?P<name>.*?)(?P<late>_LATE)?_(?P<user>\d+))"
    r"_(?:(?P<attachment>\d+)_(?P<file>.+)|(?P<kind>text|link)\.html)", re.DOTALL)
# Canvas's own split of a display name (Attachment.make_unique_filename): base, then extensions.
_EXTENSION = re.compile(r"(\.[A-Za-z][A-Za-z0-9]*)*(\.[A-Za-z0-9]*)$")
_COPY = re.compile(r"-(?:(?P<number>\d{1,3})|[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12})$")
_UUID_COPY = 8  # Canvas gives up counting after -7 and appends a uuid: later than any -N


@dataclass(frozen=True)
class _CanvasEntry:
    path: Path
    info: os.stat_result
    student: str
    display_name: str
    late: bool
    attachment: int      # -1 for a text or URL entry, which has none
    given: str           # the file's display name, Canvas's -N taken off
    copy: int            # that N: a resubmission of a file of the same name


def _canvas_word(name: str) -> bool:
    """Canvas keeps only word characters of the sortable name ([[:word:]]: letters, marks,
    digits, `_`), so anything else means the entry is not Canvas's."""
    return all(c == "_" or c.isalnum() or unicodedata.category(c)[0] == "M" for c in name)


def _canvas_copy(display: str) -> tuple[str, int]:
    """The file name the student gave and Canvas's resubmission number: `W4_Homework-2.ipynb`
    is the third upload of `W4_Homework.ipynb` into the student's Submissions folder."""
    extension = _EXTENSION.search(display)
    suffix = extension.group(0) if extension else ""
    base = display[: len(display) - len(suffix)]
    copy = _COPY.search(base)
    if copy is None or copy.start() == 0:
        return display, 0
    number = int(copy["number"]) if copy["number"] else _UUID_COPY
    return base[: copy.start()] + suffix, number


def _canvas_entry(path: Path) -> _CanvasEntry | None:
    match = _CANVAS.fullmatch(_text(path.name))
    info = _lstat(path)
    if match is None or info is None:
        return None
    if match["anon"] is None and not _canvas_word(match["name"]):
        return None
    student = f"anon-{match['anon']}" if match["anon"] else match["user"]
    given, copy = _canvas_copy(match["file"]) if match["file"] else ("", 0)
    return _CanvasEntry(
        path=path, info=info, student=student, display_name=match["name"] or "",
        late=bool(match["late"] or match["late_anon"]),
        attachment=int(match["attachment"]) if match["attachment"] else -1,
        given=given, copy=copy)


def _canvas(root: Path, entries: list[Path], scratch: Path) -> tuple[list[Attempt], list[Path]]:
    by_student: dict[str, list[_CanvasEntry]] = {}
    rest = []
    for path in entries:
        entry = _canvas_entry(path)
        if entry is None:
            rest.append(path)
        else:
            by_student.setdefault(entry.student, []).append(entry)
    attempts = [attempt for items in by_student.values()
                for attempt in _canvas_attempts(items, root, scratch)]
    return attempts, rest


def _layers(files: list[_CanvasEntry]) -> list[list[_CanvasEntry]]:
    """A student's files as attempts, newest first. A download holds one submission per
    student, but a TA who unpacks a second download over the first has both: a name handed in
    again (`W4_Homework-1.ipynb` after `W4_Homework.ipynb`) starts an older attempt, the newest
    copy of each name stays in the newest one, beside the files handed in only once."""
    once: dict[int, _CanvasEntry] = {}
    for entry in files:  # one attachment downloaded twice (LATE in the second download): once
        if entry.attachment not in once or entry.late:
            once[entry.attachment] = entry
    layers: list[list[_CanvasEntry]] = []
    seen: dict[str, int] = {}
    for entry in sorted(once.values(), key=lambda e: (e.copy, e.attachment), reverse=True):
        depth = seen.get(entry.given, 0)
        seen[entry.given] = depth + 1
        if depth == len(layers):
            layers.append([])
        layers[depth].append(entry)
    return layers


def _canvas_attempts(items: list[_CanvasEntry], root: Path, scratch: Path) -> list[Attempt]:
    """Every attempt of one Canvas student; the text and URL entries are shown with the
    newest, or on their own when nothing else was handed in."""
    texts = [entry for entry in items if entry.attachment < 0]
    layers = _layers([entry for entry in items if entry.attachment >= 0]) or [[]]
    display = next((entry.display_name for entry in items if entry.display_name), "")
    return [_canvas_attempt(layer, texts if depth == 0 else [], display, root, scratch)
            for depth, layer in enumerate(layers)]


def _canvas_attempt(layer: list[_CanvasEntry], texts: list[_CanvasEntry], display: str,
                    root: Path, scratch: Path) -> Attempt:
    found = _Found()
    for entry in sorted(layer, key=lambda e: e.given):
        found.add(_entry(entry.path, entry.info, entry.given, root, scratch))
    for entry in texts:
        found.add(_checked(entry.path, root))
        found.skipped.append(_shown(entry.path, root))
    newest = max(((e.copy, e.attachment) for e in layer), default=(0, 0))
    return Attempt(student=(layer or texts)[0].student, display_name=display, source="canvas",
                   files=tuple(found.files), late=any(e.late for e in layer + texts),
                   order=(0.0, *newest), skipped=tuple(found.skipped),
                   problems=tuple(found.problems))


# ------------------------------------------------------------------------------------ moodle

# Moodle writes `<fullname>_<participant id>_assignsubmission_<plugin>` (it turns underscores in
# the full name to spaces; the id is the assignment's own, from assign_user_mapping, not the
# user id); a team submission is `<group>_<group id>`, the group-less `Default group` has no id.
_MOODLE = re.compile(r"(?P<name>.*?)(?:_(?P<id>\d+))?_assignsubmission_(?P<plugin>[a-z0-9]+)"
                     r"(?:_(?P<rest>.*))?", re.DOTALL)


def _moodle_identity(name: str, number: str | None) -> tuple[str, str]:
    """(identity, display name). Blind marking shows `Participant_<id>`: the identity is
    `participant-<id>` and no name is shown; without an id (a group-less team) the name is
    all there is."""
    if number and name.strip().lower() == "participant":
        return f"participant-{number}", ""
    return (number or name.strip()), name.strip()


def _moodle(root: Path, entries: list[Path], scratch: Path) -> tuple[list[Attempt], list[Path]]:
    by_student: dict[str, tuple[str, list[tuple[Path, re.Match[str]]]]] = {}
    rest = []
    for path in entries:
        match = _MOODLE.fullmatch(_text(path.name))
        if match is None or _lstat(path) is None:
            rest.append(path)
            continue
        student, display = _moodle_identity(match["name"], match["id"])
        by_student.setdefault(student, (display, []))[1].append((path, match))
    attempts = [_moodle_attempt(student, display, items, root, scratch)
                for student, (display, items) in by_student.items()]
    return attempts, rest


def _moodle_attempt(student: str, display: str, items: list[tuple[Path, re.Match[str]]],
                    root: Path, scratch: Path) -> Attempt:
    """A Moodle download holds one submission per student: its file plugin's entries are the
    files, any other plugin's (online text) are shown, not graded."""
    found = _Found()
    for path, match in sorted(items, key=lambda item: item[0].name):
        if match["plugin"] != "file":
            found.add(_checked(path, root))
            found.skipped.append(_shown(path, root))
            continue
        info = _lstat(path)
        if info is not None:
            found.add(_entry(path, info, match["rest"] or _text(path.name), root, scratch))
    return Attempt(student=student, display_name=display, source="moodle",
                   files=tuple(found.files), skipped=tuple(found.skipped),
                   problems=tuple(found.problems))


# -------------------------------------------------------------------------------- blackboard

_BLACKBOARD = re.compile(r"(?P<prefix>.+?)_attempt_(?P<stamp>\d{4}(?:-\d{2}){5})"
                         r"(?:_(?P<rest>.+)|(?P<receipt>\.txt))", re.DOTALL)
_NO_TEXT = "There is no student submission text data for this assignment."


@dataclass
class _Receipt:
    """What Blackboard's .txt beside an attempt says; empty where it says nothing readable."""

    name: str = ""
    username: str = ""
    submitted_at: datetime | None = None
    originals: dict[str, str] = field(default_factory=dict)  # stored name -> student's name
    text: bool = False   # the student typed into the Submission Field


def _original(name: str) -> str:
    """The student's file name from the receipt, without any folder a browser sent."""
    return re.split(r"[\\/]", name.strip())[-1]


def _parse_receipt(text: str) -> _Receipt:
    receipt = _Receipt()
    lines = text.splitlines()
    pending = ""
    for number, line in enumerate(lines):
        key, _, value = line.strip().partition(":")
        value = value.strip()
        if key == "Name" and not receipt.username:
            person = re.fullmatch(r"(?P<name>.*?)\s*\((?P<user>[^()]*)\)", value)
            if person:
                receipt.name, receipt.username = person["name"], person["user"].strip()
        elif key == "Date Submitted" and receipt.submitted_at is None:
            receipt.submitted_at = _receipt_time(value)
        elif key == "Original filename":
            pending = _original(value)
        elif key == "Filename" and pending:
            receipt.originals[unicodedata.normalize("NFC", value)] = pending
            pending = ""
        elif key == "Submission Field":
            receipt.text = _typed(lines[number + 1:])
    return receipt


def _typed(lines: list[str]) -> bool:
    """Whether the Submission Field holds text (it runs until the `Comments:` line)."""
    body = []
    for line in lines:
        if line.strip() in ("Comments:", "Files:"):
            break
        body.append(line.strip())
    text = " ".join(part for part in body if part)
    return bool(text) and text != _NO_TEXT


def _blackboard(root: Path, entries: list[Path],
                scratch: Path) -> tuple[list[Attempt], list[Path]]:
    groups: dict[tuple[str, str], list[tuple[Path, re.Match[str]]]] = {}
    rest = []
    for path in entries:
        match = _BLACKBOARD.fullmatch(_text(path.name))
        if match is None or _lstat(path) is None:
            rest.append(path)
        else:
            groups.setdefault((match["prefix"], match["stamp"]), []).append((path, match))
    attempts = [_blackboard_attempt(prefix, stamp, items, root, scratch)
                for (prefix, stamp), items in groups.items()]
    return attempts, rest


def _stamp(text: str) -> datetime | None:
    """The attempt's time in the file name, `2021-10-05-22-13-45`: the server's local time."""
    try:
        return datetime.strptime(text, "%Y-%m-%d-%H-%M-%S")
    except ValueError:
        return None


def _username(prefix: str, receipt: _Receipt) -> str:
    """`<Assignment>_<username>`: the receipt names the user, which may hold `_`; without it,
    the last `_` field (assignment names hold `_` more often than usernames do)."""
    if receipt.username and (prefix == receipt.username
                             or prefix.endswith("_" + receipt.username)):
        return receipt.username
    return prefix.rsplit("_", 1)[-1]


def _blackboard_attempt(prefix: str, stamp: str, items: list[tuple[Path, re.Match[str]]],
                        root: Path, scratch: Path) -> Attempt:
    found = _Found()
    receipt = _Receipt()
    for path, match in items:
        if match["receipt"]:
            checked = _checked(path, root)
            found.add(checked)
            if not checked.problems:
                receipt = _parse_receipt(_receipt_text(path))
    for path, match in sorted(items, key=lambda item: item[0].name):
        info = _lstat(path)
        if match["rest"] and info is not None:
            given = receipt.originals.get(_text(path.name)) or match["rest"]
            found.add(_entry(path, info, given, root, scratch))
    named = [path for path, match in items if match["receipt"]]
    if receipt.text and named:
        found.skipped.append(f"text typed into the Submission Field ({_shown(named[0], root)})")
    moment = _stamp(stamp)
    return Attempt(student=_username(prefix, receipt), display_name=receipt.name,
                   source="blackboard", files=tuple(found.files),
                   submitted_at=receipt.submitted_at or moment, order=(_seconds(moment), 0, 0),
                   skipped=tuple(found.skipped), problems=tuple(found.problems))


# -------------------------------------------------------------------------------- gradescope

METADATA = "submission_metadata.yml"
_SUBMISSION = re.compile(r"submission_(?P<id>\d+)(?:\.[A-Za-z0-9]+)?")


def _gradescope(root: Path, entries: list[Path],
                scratch: Path) -> tuple[list[Attempt], list[Path]]:
    """The export given itself (the yml among the entries), or unpacked into one folder of the
    folder given (`assignment_<id>_export/`)."""
    if any(path.name == METADATA for path in entries):
        return _gradescope_export(root, root, entries, scratch)
    attempts: list[Attempt] = []
    rest = []
    for path in entries:
        if _is_dir(_lstat(path)) and _is_file(path / METADATA):
            found, _ = _gradescope_export(path, root, _children(path), scratch)
            attempts += found
        else:
            rest.append(path)
    return attempts, rest


def _is_file(path: Path) -> bool:
    info = _lstat(path)
    return info is not None and stat.S_ISREG(info.st_mode)


def _children(folder: Path) -> list[Path]:
    try:
        return sorted(folder.iterdir())
    except OSError:
        return []


def _gradescope_export(export: Path, root: Path, entries: list[Path],
                       scratch: Path) -> tuple[list[Attempt], list[Path]]:
    """Each submission the yml names, under every submitter; a `submission_<id>` it does not
    name (or a yml that cannot be read) under the folder's own name."""
    metadata = _metadata(export / METADATA)
    attempts: list[Attempt] = []
    rest = []
    for path in entries:
        name = _text(path.name)
        if name == METADATA:
            continue  # read above, never through a link
        if name in metadata or _SUBMISSION.fullmatch(name):
            attempts += _gradescope_submission(path, name, metadata.get(name), root, scratch)
        else:
            rest.append(path)
    return attempts, rest


def _metadata(path: Path) -> dict[str, Any]:
    """Gradescope's yml, Ruby-style (`:submitters:` parses as the string ':submitters'), read
    with yaml.safe_load; {} when PyYAML is missing or the file is not readable YAML."""
    try:
        import yaml
    except ImportError:
        return {}
    try:
        raw = read_regular(path, MAX_METADATA_BYTES)
        data = yaml.safe_load(raw.decode("utf-8", errors="replace"))
    except (RefusedFile, OSError, ValueError, RecursionError, yaml.YAMLError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {_clean(key): value for key, value in data.items()
            if isinstance(key, str) and isinstance(value, dict)}


def _field(record: dict[Any, Any], key: str) -> str:
    value = record.get(key)
    if isinstance(value, bool) or not isinstance(value, str | int):
        return ""
    return _clean(str(value).strip())


def _submitters(meta: dict[Any, Any]) -> list[tuple[str, str]]:
    """(identity, name) of each submitter: the sid when there is one, else the email."""
    people = meta.get(":submitters")
    found = []
    for person in people if isinstance(people, list) else []:
        if isinstance(person, dict):
            identity = _field(person, ":sid") or _field(person, ":email")
            if identity:
                found.append((identity, _field(person, ":name")))
    return found


def _created(meta: dict[Any, Any]) -> datetime | None:
    value = meta.get(":created_at")
    if isinstance(value, datetime):
        return value
    return _iso_time(value) if isinstance(value, str) else None


def _gradescope_submission(path: Path, name: str, meta: dict[Any, Any] | None,
                           root: Path, scratch: Path) -> list[Attempt]:
    """One submission, as one attempt per submitter: a group hands in once and each member is
    graded on it under their own identity. Gradescope's export holds only the final
    submission's files; `:history` (the earlier ones) counts toward the order."""
    meta = meta or {}
    info = _lstat(path)
    found = _Found() if info is None else _entry(path, info, name, root, scratch)
    created = _created(meta)
    history = meta.get(":history")
    number = _SUBMISSION.fullmatch(name)
    order = (_seconds(created), len(history) if isinstance(history, list) else 0,
             int(number["id"]) if number else 0)
    return [Attempt(student=student, display_name=display, source="gradescope",
                    files=tuple(found.files), submitted_at=created, order=order,
                    problems=tuple(found.problems))
            for student, display in _submitters(meta) or [(name, "")]]


# ---------------------------------------------------------------------------------- nbgrader

SUBMITTED = "submitted"
TIMESTAMP = "timestamp.txt"
SECRET = "submission_secret.txt"  # nbgrader 0.9.3+: keys the student's feedback; not theirs
_NBGRADER_FILES = {TIMESTAMP, SECRET}
# The rest of an nbgrader course folder: nobody's hand-in (release/ is the blank template).
_COURSE = {"source", "release", "autograded", "feedback", "solution", "gradebook.db",
           "nbgrader_config.py"}


def _nbgrader(root: Path, entries: list[Path], scratch: Path) -> tuple[list[Attempt], list[Path]]:
    """`submitted/<student>/<assignment>/`, the folder given itself or one of its entries
    (then the course folder's other nbgrader folders are not students either)."""
    if _text(root.name) == SUBMITTED and _holds_assignments(entries):
        return _nbgrader_students(root, entries, scratch)
    submitted = next((path for path in entries if _text(path.name) == SUBMITTED
                      and _is_dir(_lstat(path)) and _holds_assignments(_children(path))), None)
    if submitted is None:
        return [], entries
    attempts, _ = _nbgrader_students(root, _children(submitted), scratch)
    rest = [path for path in entries
            if path != submitted and _text(path.name) not in _COURSE]
    return attempts, rest


def _holds_assignments(students: Iterable[Path]) -> bool:
    """nbgrader's shape: some `<student>/<assignment>/` holds a timestamp.txt or a notebook."""
    for student in students:
        if not _is_dir(_lstat(student)):
            continue
        for assignment in _children(student):
            if _is_dir(_lstat(assignment)) and any(
                    child.name == TIMESTAMP or child.suffix == ".ipynb"
                    for child in _children(assignment)):
                return True
    return False


def _nbgrader_students(root: Path, students: list[Path],
                       scratch: Path) -> tuple[list[Attempt], list[Path]]:
    attempts: list[Attempt] = []
    rest = []
    for student in students:
        info = _lstat(student)
        if _is_dir(info):
            attempts += _nbgrader_student(student, root, scratch)
        elif info is not None and stat.S_ISLNK(info.st_mode):
            attempts.append(Attempt(student=_text(student.name), display_name="",
                                    source="nbgrader", files=(),
                                    problems=(kind_problem(info, _shown(student, root)),)))
        else:
            rest.append(student)
    return attempts, rest


def _nbgrader_student(folder: Path, root: Path, scratch: Path) -> list[Attempt]:
    """One attempt per assignment folder, timed by its timestamp.txt; files lying in the
    student's folder itself (not nbgrader's doing) are one more attempt, ordered lowest."""
    student = _text(folder.name)
    attempts = []
    loose = _Found()
    for child in _children(folder):
        info = _lstat(child)
        if _is_dir(info):
            attempts.append(_nbgrader_assignment(student, child, root))
        elif info is not None:
            loose.add(_entry(child, info, _text(child.name), root, scratch))
    if loose.files or loose.problems:
        attempts.append(Attempt(student=student, display_name="", source="nbgrader",
                                files=tuple(loose.files), problems=tuple(loose.problems)))
    return attempts


def _nbgrader_assignment(student: str, folder: Path, root: Path) -> Attempt:
    found = _folder(folder, _shown(folder, root))
    moment = _stamped(folder)
    return Attempt(student=student, display_name="", source="nbgrader", files=_theirs(found),
                   submitted_at=moment, order=(_seconds(moment), 0, 0),
                   problems=tuple(found.problems))


def _theirs(found: _Found) -> tuple[tuple[Path, str], ...]:
    """A submission folder's files less nbgrader's own (its timestamp.txt and secret)."""
    return tuple((path, name) for path, name in found.files if name not in _NBGRADER_FILES)


def _stamped(folder: Path) -> datetime | None:
    """The time in a submission's timestamp.txt (never read through a link)."""
    stamp = folder / TIMESTAMP
    return _iso_time(_receipt_text(stamp)) if _is_file(stamp) else None


# ---------------------------------------------------------------------------- nbgrader exchange

# `<exchange>/<course>/`: inbound/ holds the submissions, one folder per `nbgrader submit`;
# the rest is nobody's hand-in (outbound/<assignment>/ is the released template, feedback/ the
# released feedback, feedback_public/ a variant some setups keep beside it).
INBOUND = "inbound"
_EXCHANGE = {"outbound", "feedback", "feedback_public"}


@dataclass(frozen=True)
class _Submission:
    """What the name of a folder in inbound/ says."""

    student: str
    assignment: str
    moment: datetime | None  # None when the name holds no time we read


def _submission(name: str) -> _Submission | None:
    """`<student>+<assignment>+<timestamp>+<random>` as nbgrader submit names a submission
    (`<student>+<assignment>+<timestamp>` before 0.6, or with add_random_string off); the
    random string is URL-safe base64, never a `+`. A student id may hold a `+` (nbgrader's
    collect takes all before the last three `+` as the id), so the time is looked for from
    the right: the next to last field, the last, or two fields a `+` joined (a `%z` format);
    without a time we read, nbgrader's own split. None when fewer than three fields, or an
    empty student or assignment."""
    parts = name.split("+")
    if len(parts) < 3:
        return None
    for tail in (1, 0):  # the random string, then none
        for width in (1, 2):  # fields of the time
            end = len(parts) - tail
            if end - width < 2:
                continue
            moment = _iso_time("+".join(parts[end - width:end]))
            if moment is not None:
                return _named(parts[:end - width - 1], parts[end - width - 1], moment)
    end = len(parts) - (1 if len(parts) > 3 else 0)
    return _named(parts[:end - 2], parts[end - 2], None)


def _named(student: list[str], assignment: str, moment: datetime | None) -> _Submission | None:
    identity = "+".join(student)
    if not identity.strip() or not assignment.strip():
        return None
    return _Submission(student=identity, assignment=assignment, moment=moment)


def _exchange(root: Path, entries: list[Path], scratch: Path) -> tuple[list[Attempt], list[Path]]:
    """inbound/ given itself, or the course's exchange folder holding it (inbound/ beside
    outbound/, or holding a submission); elsewhere, only folders named as nbgrader names a
    submission, with a time that reads (an inbound/ copied under another name)."""
    if _text(root.name) == INBOUND:
        return _inbound(root, entries, timed=False)
    names = {_text(path.name): path for path in entries if _is_dir(_lstat(path))}
    inbound = names.get(INBOUND)
    if inbound is None or not ("outbound" in names or any(
            _submission(_text(child.name)) for child in _children(inbound))):
        return _inbound(root, entries, timed=True)
    attempts, left = _inbound(root, _children(inbound), timed=False)
    rest = [path for path in entries if path != inbound and _text(path.name) not in _EXCHANGE]
    return attempts, rest + left


def _inbound(root: Path, entries: list[Path], timed: bool) -> tuple[list[Attempt], list[Path]]:
    """Each submission folder among `entries` as one attempt of its student; a link or pipe
    named as one is a problem of that student, never opened; the rest is returned."""
    attempts: list[Attempt] = []
    rest = []
    for path in entries:
        named = _submission(_text(path.name))
        info = _lstat(path)
        if named is None or info is None or (timed and named.moment is None):
            rest.append(path)
            continue
        problem = kind_problem(info, _shown(path, root))
        if _is_dir(info):
            attempts.append(_exchange_attempt(path, named, root))
        elif problem:
            attempts.append(Attempt(student=named.student, display_name="", source="nbgrader",
                                    files=(), submitted_at=named.moment,
                                    order=(_seconds(named.moment), 0, 0), problems=(problem,)))
        else:
            rest.append(path)
    return attempts, rest


def _exchange_attempt(folder: Path, named: _Submission, root: Path) -> Attempt:
    """One submission: timed by its name, else its timestamp.txt (nbgrader writes the same
    text in both); untimed, it orders lowest."""
    found = _folder(folder, _shown(folder, root))
    moment = named.moment or _stamped(folder)
    return Attempt(student=named.student, display_name="", source="nbgrader",
                   files=_theirs(found), submitted_at=moment, order=(_seconds(moment), 0, 0),
                   problems=tuple(found.problems))
