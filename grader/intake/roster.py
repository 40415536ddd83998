"""The class roster a TA gives with `grade ... --roster roster.csv`: who is in the class, so that
a hand-in can be put to a person, hand-ins matching no one can be shown, and people who handed
in nothing can be listed. Every Canvas identity column is kept, because the Canvas grade import
written later wants them back (Student, ID, SIS User ID, SIS Login ID, Section).

Two kinds of file are read, told apart by their header:

  A Canvas gradebook export (Grades > Export), as lib/gradebook_exporter.rb in canvas-lms writes:
    header    `Student` (or `LastName,FirstName`), `ID`, `SIS User ID` (only for users who may
              see SIS data), `SIS Login ID`, `Integration ID` and `Root Account` (account
              settings), `Section`, custom columns, `<assignment> (<id>)`..., score columns
    row       only when an assignment posts grades manually: name and ID blank, `Manual Posting`
    row       `    Points Possible`, ID blank
    people    `Last, First` (the sortable name); a name starting with `=` comes as `="=..."`;
              a student in two sections is one row, sections joined (`A and B`)
    last row  the course's test student, `Student, Test`: not a person
    a UTF-8 BOM, and `;` between fields, when the exporting user's settings ask for them

  A plain file with a header naming its columns, in any order and letter case:
    id        `id`, `student id`, `sid`, `username`, `login`            (required)
    name      `name`, `full name`, `display name`, `student name`, `student`
    email     `email`, `e-mail`, `email address`
    and, when there, `sis user id`, `sis login id` (or a second login column), `section`

Both may come with a BOM, CRLF line endings, extra columns and blank lines.
"""

from __future__ import annotations

import csv
import io
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from grader.errors import GraderError

MAX_ROSTER_BYTES = 32 << 20   # a class list is kilobytes; anything this big is the wrong file
DELIMITERS = (",", ";", "\t")  # Canvas writes `;` for users who ask for it

EXPECTED = ("expected a Canvas gradebook export (Student,ID,SIS User ID,SIS Login ID,Section,...)"
            " or a CSV whose first line names its columns, such as id,name,email")
SAVE_AS_UTF8 = "save the roster as 'CSV UTF-8' and give that file"

ID_COLUMNS = ("id", "student id", "sid", "username", "login")
LOGIN_COLUMNS = ("sis login id", "login id", "username", "login")
NAME_COLUMNS = ("name", "full name", "display name", "student name", "student")
EMAIL_COLUMNS = ("email", "e mail", "email address", "e mail address")
SIS_COLUMNS = ("sis user id", "sis id")
SECTION_COLUMNS = ("section", "sections")

SIGNATURES = {  # what a TA may give by mistake, by its first bytes
    b"PK\x03\x04": "a zip archive or an Excel workbook (.xlsx)",
    b"\xd0\xcf\x11\xe0": "an Excel 97-2003 workbook (.xls)",
    b"%PDF": "a PDF",
    b"\xff\xfe": "UTF-16 text (Excel's 'Unicode Text')",
    b"\xfe\xff": "UTF-16 text",
}


class RosterError(GraderError):
    """The roster file cannot be used. The message names the file, the line, what is wrong and
    what was expected, so the TA can fix the file rather than read a traceback."""

    exit_code = 2


@dataclass(frozen=True)
class Person:
    id: str            # the roster's id (Canvas "ID"; the plain file's id)
    name: str          # as the roster spells it
    sis_user_id: str = ""
    sis_login_id: str = ""
    section: str = ""
    email: str = ""


@dataclass(frozen=True)
class Roster:
    people: tuple[Person, ...]
    source: str        # "canvas" | "plain"

    def find(self, student: str, display_name: str = "") -> Person | None:
        """The person a hand-in belongs to: `student` (the LMS's identity: a Canvas user id, a
        Blackboard username, a Gradescope sid or email, a folder name) against id, SIS user id,
        SIS login id, email and the email's local part; then `display_name` against the name:
        case, accents, order (`Last, First` vs `First Last`, Canvas's `lastfirst` squashed
        lower-case download name like `smithjohn`) and spacing set aside. Only an unambiguous
        match counts (two people fitting equally -> None).

        An identity that fits several people is settled by the name when the name picks one of
        them. With no display name, `student` itself is tried as a name (a folder `John Smith`).
        """
        wanted = _identity(student)
        for fitting in (self._exact(wanted), self._local(wanted)):
            if fitting:
                return _only(fitting) or _only(_by_name(display_name, fitting))
        return _only(_by_name(display_name or student, self._entries))

    def missing(self, students: Iterable[str]) -> list[Person]:
        """Roster people none of whose identities appears among `students` (the ids found by
        find), in roster order."""
        found = {_identity(s) for s in students} - {""}
        return [e.person for e in self._entries if not e.exact & found]

    @cached_property
    def _entries(self) -> tuple[_Entry, ...]:
        """Each person's folded identities and name keys, computed once: find runs per hand-in."""
        return tuple(_entry(p) for p in self.people)

    def _exact(self, wanted: str) -> list[_Entry]:
        return [e for e in self._entries if wanted in e.exact] if wanted else []

    def _local(self, wanted: str) -> list[_Entry]:
        """Weaker: a login against the local part of an email, either way round (`jsmith`
        handed in and `jsmith@uni.edu` on the roster, or `jsmith@uni.edu` handed in and login
        `jsmith` on the roster). Two emails are not matched by local part alone: `jsmith` at
        two domains may well be two people."""
        if "@" not in wanted:
            return [e for e in self._entries if wanted in e.local] if wanted else []
        part = wanted.partition("@")[0]
        return [e for e in self._entries if part and part in e.exact]


def load(path: Path) -> Roster:
    """The roster in `path`, a Canvas gradebook export or a plain id,name,email file."""
    text = _text(path)
    delimiter, layout = _header(path, text)
    rows = _read(path, text, delimiter)
    people = _people(path, layout, rows[1:])
    if not people:
        raise _error(path, rows[0][0], "the header is followed by no students",
                     "expected one row per student under it")
    return Roster(tuple(people), layout.source)


# ---------------------------------------------------------------------------- reading the file


def _error(path: Path, line: int | None, problem: str, expected: str) -> RosterError:
    where = f"{path}, line {line}" if line else str(path)
    return RosterError(f"roster {where}: {problem}; {expected}")


def _shown(text: str, limit: int = 60) -> str:
    """A cell or line as a message shows it: on one line, and short."""
    flat = " ".join(text.split())
    return repr(flat if len(flat) <= limit else flat[: limit - 1] + "…")


def _text(path: Path) -> str:
    """The file as text. Read as bytes first so that a byte that is not UTF-8 can be reported
    with its line; utf-8-sig drops the BOM Excel and Canvas put first."""
    raw = _bytes(path)
    for magic, kind in SIGNATURES.items():
        if raw.startswith(magic):
            raise _error(path, None, f"is {kind}, not a CSV file", SAVE_AS_UTF8)
    if b"\x00" in raw:
        line = raw.count(b"\n", 0, raw.index(b"\x00")) + 1
        raise _error(path, line, "holds a NUL byte, so it is not a text file", EXPECTED)
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise _error(path, line, f"byte 0x{raw[exc.start]:02x} is not UTF-8 (Excel's plain "
                     "'CSV' saves Windows-1252)", SAVE_AS_UTF8) from None


def _bytes(path: Path) -> bytes:
    try:
        if path.is_dir():
            raise _error(path, None, "is a folder", "give the roster CSV file itself")
        if path.stat().st_size > MAX_ROSTER_BYTES:
            raise _error(path, None, f"is larger than {MAX_ROSTER_BYTES >> 20} MB, too large "
                         "for a class roster", EXPECTED)
        return path.read_bytes()
    except OSError as exc:
        raise _error(path, None, f"cannot be read ({exc.strerror or exc})",
                     "give the path of the class roster CSV") from None


class _Unreadable(Exception):
    """A row the csv module refuses, with the line it was on."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(reason)
        self.line = line


def _rows(text: str, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """The non-blank rows, each with the line it starts on (a quoted cell may span lines).
    Strict: an unclosed quote is an error, not a cell that swallows the rest of the class."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    start = 1
    try:
        for cells in reader:
            if any(cell.strip() for cell in cells):
                yield start, cells
            start = reader.line_num + 1
    except csv.Error as exc:  # named by the line its row starts on: where an open quote is
        raise _Unreadable(start, str(exc)) from None


def _read(path: Path, text: str, delimiter: str) -> list[tuple[int, list[str]]]:
    try:
        return list(_rows(text, delimiter))
    except _Unreadable as exc:
        raise _error(path, exc.line, f"is not valid CSV ({exc})",
                     'a cell that starts with " must end with " before the next separator'
                     ) from None


def _header(path: Path, text: str) -> tuple[str, _Layout]:
    """The field separator and the columns, from the first non-blank line. Each separator is
    tried in turn; the one whose header is recognised is the file's."""
    line, first = next(((n, t) for n, t in enumerate(text.splitlines(), 1) if t.strip(" \t,;")),
                       (0, ""))
    if not line:
        raise _error(path, None, "is empty", EXPECTED)
    for delimiter in DELIMITERS:
        try:
            row = next(_rows(text, delimiter), None)
        except _Unreadable:
            continue
        layout = _layout(row[1]) if row else None
        if layout is not None:
            return delimiter, layout
    raise _error(path, line, f"{_shown(first)} is not a roster header", EXPECTED)


# ---------------------------------------------------------------------------- columns and rows


@dataclass(frozen=True)
class _Layout:
    """Where each field is in a row; None where the file has no such column."""

    source: str
    id: int
    name: int | None = None
    last: int | None = None    # Canvas's `LastName,FirstName` export option
    first: int | None = None
    sis_user_id: int | None = None
    sis_login_id: int | None = None
    section: int | None = None
    email: int | None = None


def _column_key(cell: str) -> str:
    """A header cell as compared: case, `_`/`-` and spacing set aside (`Student_ID` is
    `student id`, `E-mail` is `e mail`)."""
    return " ".join(cell.replace("_", " ").replace("-", " ").split()).casefold()


def _layout(header: list[str]) -> _Layout | None:
    columns: dict[str, int] = {}
    for index, cell in enumerate(header):
        columns.setdefault(_column_key(cell), index)
    return _canvas_layout(columns) or _plain_layout(columns)


def _pick(columns: dict[str, int], names: Iterable[str], not_at: int | None = None) -> int | None:
    return next((columns[n] for n in names if n in columns and columns[n] != not_at), None)


def _canvas_layout(columns: dict[str, int]) -> _Layout | None:
    named = "student" in columns or {"lastname", "firstname"} <= columns.keys()
    if not named or "id" not in columns:
        return None
    return _Layout("canvas", id=columns["id"], name=columns.get("student"),
                   last=columns.get("lastname"), first=columns.get("firstname"),
                   sis_user_id=columns.get("sis user id"),
                   sis_login_id=columns.get("sis login id"), section=columns.get("section"))


def _plain_layout(columns: dict[str, int]) -> _Layout | None:
    at = _pick(columns, ID_COLUMNS)
    if at is None:
        return None
    return _Layout("plain", id=at, name=_pick(columns, NAME_COLUMNS),
                   sis_user_id=_pick(columns, SIS_COLUMNS),
                   sis_login_id=_pick(columns, LOGIN_COLUMNS, not_at=at),
                   section=_pick(columns, SECTION_COLUMNS), email=_pick(columns, EMAIL_COLUMNS))


def _cell(cells: list[str], index: int | None) -> str:
    return cells[index].strip() if index is not None and index < len(cells) else ""


def _person(layout: _Layout, cells: list[str]) -> Person:
    name = _cell(cells, layout.name)
    if layout.name is None:
        last, first = _cell(cells, layout.last), _cell(cells, layout.first)
        name = f"{last}, {first}" if last and first else last or first
    if layout.source == "canvas":
        name = _unguarded(name)
    return Person(id=_cell(cells, layout.id), name=name,
                  sis_user_id=_cell(cells, layout.sis_user_id),
                  sis_login_id=_cell(cells, layout.sis_login_id),
                  section=_cell(cells, layout.section), email=_cell(cells, layout.email))


def _unguarded(name: str) -> str:
    """Canvas writes a name starting with `=` as `="=..."`, so that Excel runs no formula."""
    if name.startswith('="') and name.endswith('"') and name[2:].lstrip().startswith("="):
        return name[2:-1]
    return name


def _not_a_student(layout: _Layout, person: Person) -> bool:
    """Canvas's rows that are no one: the `Manual Posting` row (name and ID blank), `Points
    Possible`, and the course's test student."""
    if layout.source != "canvas":
        return False
    name = " ".join(person.name.split()).casefold()
    return (not person.id and name in ("", "points possible")) or name == "student, test"


def _people(path: Path, layout: _Layout, rows: list[tuple[int, list[str]]]) -> list[Person]:
    people: list[Person] = []
    seen: dict[str, int] = {}
    for line, cells in rows:
        person = _person(layout, cells)
        if _not_a_student(layout, person):
            continue
        if not person.id:
            raise _error(path, line, f"{_shown(person.name or ','.join(cells))} has no id",
                         "every student row needs one (the roster is matched on it)")
        key = _identity(person.id)
        if key in seen:
            raise _error(path, line, f"id {_shown(person.id)} is already on line {seen[key]}",
                         "each student must be listed once")
        seen[key] = line
        people.append(person)
    return people


# ---------------------------------------------------------------------------- matching


@dataclass(frozen=True)
class _Name:
    """A roster name as compared: squashed (folded, letters and digits only) in each order."""

    ordered: str              # first name first
    sortable: str             # last name first; "" where the roster does not say which is last
    any_order: frozenset[str]


@dataclass(frozen=True)
class _Entry:
    person: Person
    exact: frozenset[str]     # id, SIS user id, SIS login id, email; folded
    local: frozenset[str]     # the local part of each of those that is an email address
    name: _Name


def _identity(text: str) -> str:
    return text.strip().casefold()


def _entry(person: Person) -> _Entry:
    exact = {_identity(v) for v in (person.id, person.sis_user_id, person.sis_login_id,
                                    person.email)} - {""}
    local = {v.partition("@")[0] for v in exact if "@" in v} - {""}
    return _Entry(person, frozenset(exact), frozenset(local), _name(person.name))


def _words(text: str) -> list[str]:
    """Folded words: case folded, accents dropped (NFKD, combining marks removed), anything but
    letters and digits a break. Canvas keeps accents in download names and Windows or macOS may
    hand them back decomposed, so both sides are folded the same way."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    kept = "".join(c if c.isalnum() else " "
                   for c in decomposed if not unicodedata.combining(c))
    return kept.split()


def _halves(text: str) -> tuple[list[str], list[str]] | None:
    """`Last, First` as (first words, last words); None when the text has no comma."""
    if "," not in text:
        return None
    last, _, first = text.partition(",")
    return _words(first), _words(last)


def _name(text: str) -> _Name:
    halves = _halves(text)
    if halves is None:
        words = _words(text)
        return _Name("".join(words), "", _rotations(words))
    first, last = halves
    ordered, sortable = "".join(first + last), "".join(last + first)
    return _Name(ordered, sortable, _rotations(first + last) | {sortable})


def _rotations(words: list[str]) -> frozenset[str]:
    """Every way a `First Last` name could be squashed last-name-first, not knowing where the
    last name starts (`Mary Ann van Berg` may be `vanbergmaryann` or `bergmaryannvan`)."""
    return frozenset("".join(words[i:] + words[:i]) for i in range(len(words))) - {""}


def _spelling(text: str) -> tuple[str, str]:
    """A display name as (squashed key, which roster key it is spelled like). `Last, First` and
    `First Last` say their order; one squashed word is Canvas's download name, last name first."""
    halves = _halves(text)
    if halves is not None:
        return "".join(halves[0] + halves[1]), "ordered"
    words = _words(text)
    return "".join(words), "ordered" if len(words) > 1 else "sortable"


def _by_name(text: str, among: Iterable[_Entry]) -> list[_Entry]:
    """The entries whose name fits `text` best: in the order it was written if any do, else in
    any order. `Li, Wei` and `Wei, Li` are told apart by the download name `liwei`."""
    key, kind = _spelling(text)
    if not key:
        return []
    among = list(among)
    in_order = [e for e in among if getattr(e.name, kind) == key]
    return in_order or [e for e in among if key in e.name.any_order]


def _only(entries: list[_Entry]) -> Person | None:
    people = {e.person for e in entries}
    return people.pop() if len(people) == 1 else None
