"""The gradebook: one SQLite file (WAL) that never loses a result and never holds one twice.

A result is keyed by what decides it: the student, the notebook, the submission's content hash,
the assignment's version and the digest of its folder (rubric, template, limits). Two students
who hand in the same bytes (the untouched template is common) get a result each. A re-run
grades only keys it has not seen, and those whose grading the grader itself failed. Each
result and its items are written in one transaction, so a batch killed with `kill -9` leaves
every finished result whole and nothing of the one in flight.

Everything a result holds came, in part, from the student's notebook: every value is checked
by type and size before it is stored (`clean_result`), and text is stored as valid UTF-8.

A TA's override of one rubric item is kept apart from the results, keyed by the homework, the
student, the notebook and the item's name, so that it outlives every regrade and rubric change
(each of which makes a new result key); `results()` applies it when it reads. Every change to
an override is appended to `override_log`, in the same transaction.
"""

from __future__ import annotations

import hashlib
import json
import math
import secrets
import sqlite3
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from grader import i18n
from grader.errors import GraderError
from grader.results import (
    CellRecord,
    Handin,
    Item,
    ItemStatus,
    Match,
    Outcome,
    Override,
    OverrideChange,
    Result,
    RunRecord,
    StoredResult,
)
from grader.text import clean_text, one_line, valid_unicode

NAME_CHARS = 300           # a student, notebook, rubric item or limit
REASON_CHARS = 2_000       # a run's reason, a cell's error, a note
FEEDBACK_CHARS = 5_000     # a rubric item's feedback
LIST_ITEMS = 10_000        # cells, items, notes of one run
NOTEBOOK_CHARS = 64 << 20  # the executed notebook, as stored for the report
EVIDENCE_BYTES = 16 << 20  # the rubric's evidence, as JSON
JSON_DEPTH = 20
RESULT_COLUMNS = ", ".join(f"r.{c}" for c in (
    "key", "hw", "student", "notebook", "content_hash", "outcome", "reason", "total", "max",
    "wall_seconds", "device", "record", "graded_at"))
ITEM_COLUMNS = "key, position, name, score, max, feedback, hidden, status, title, said"
OVERRIDE_COLUMNS = "hw, student, notebook, item, score, reason, by, at, machine"
LOG_COLUMNS = "id, hw, student, notebook, item, old, new, reason, by, at"
LISTED = 10                # names listed in an error before "… and N more"

SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    key          TEXT PRIMARY KEY,
    hw           TEXT NOT NULL,
    student      TEXT NOT NULL,
    notebook     TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    outcome      TEXT NOT NULL,
    reason       TEXT NOT NULL,
    total        REAL NOT NULL,
    max          REAL NOT NULL,
    wall_seconds REAL,
    device       TEXT,
    record       TEXT NOT NULL,
    graded_at    REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS items (
    key      TEXT NOT NULL REFERENCES results(key) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    name     TEXT NOT NULL,
    score    REAL NOT NULL,
    max      REAL NOT NULL,
    feedback TEXT NOT NULL,
    hidden   INTEGER NOT NULL,
    status   TEXT NOT NULL,
    title    TEXT NOT NULL DEFAULT '',
    said     TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (key, position)
);
CREATE TABLE IF NOT EXISTS attachments (
    key  TEXT NOT NULL REFERENCES results(key) ON DELETE CASCADE,
    name TEXT NOT NULL,
    body BLOB NOT NULL,
    PRIMARY KEY (key, name)
);
CREATE TABLE IF NOT EXISTS tokens (
    hw      TEXT NOT NULL,
    student TEXT NOT NULL,
    token   TEXT NOT NULL UNIQUE,
    PRIMARY KEY (hw, student)
);
CREATE TABLE IF NOT EXISTS handins (
    hw       TEXT NOT NULL,
    student  TEXT NOT NULL,
    notebook TEXT NOT NULL,
    body     TEXT NOT NULL,
    seen_at  REAL NOT NULL,
    PRIMARY KEY (hw, student, notebook)
);
CREATE TABLE IF NOT EXISTS baselines (
    hw       TEXT NOT NULL,
    student  TEXT NOT NULL,
    notebook TEXT NOT NULL,
    key      TEXT NOT NULL REFERENCES results(key),
    PRIMARY KEY (hw, notebook)
);
CREATE TABLE IF NOT EXISTS latest (
    hw       TEXT NOT NULL,
    student  TEXT NOT NULL,
    notebook TEXT NOT NULL,
    key      TEXT NOT NULL REFERENCES results(key),
    PRIMARY KEY (hw, student, notebook)
);
CREATE TABLE IF NOT EXISTS overrides (
    hw       TEXT NOT NULL,
    student  TEXT NOT NULL,
    notebook TEXT NOT NULL,
    item     TEXT NOT NULL,
    score    REAL NOT NULL,
    reason   TEXT NOT NULL,
    by       TEXT NOT NULL,
    at       REAL NOT NULL,
    machine  REAL,
    PRIMARY KEY (hw, student, notebook, item)
);
CREATE TABLE IF NOT EXISTS override_log (
    id       INTEGER PRIMARY KEY,
    hw       TEXT NOT NULL,
    student  TEXT NOT NULL,
    notebook TEXT NOT NULL,
    item     TEXT NOT NULL,
    old      REAL,
    new      REAL,
    reason   TEXT NOT NULL,
    by       TEXT NOT NULL,
    at       REAL NOT NULL
);
"""


class GradebookError(GraderError):
    """The gradebook cannot be written at all (a full disk, a locked or damaged file)."""


class OverrideError(GraderError):
    """An override cannot be set or cleared as asked: an unknown student, notebook or item, a
    score out of range, no reason. The message names what the gradebook does know."""

    exit_code = 2


def result_key(student: str, notebook: str, content_hash: str, version: str,
               digest: str) -> str:
    """The key of one student's result for one notebook: the same bytes handed in by two
    students are two results. (Keys of older gradebooks, content_hash:version:digest, are
    never matched again: those submissions are graded once more.)"""
    who = json.dumps([student, notebook]).encode()  # JSON: no two pairs spell the same
    return f"{content_hash}:{version}:{digest}:{hashlib.sha256(who).hexdigest()[:32]}"


# ----------------------------------------------------------------------------- checking values


def _number(value: Any, default: float = 0.0) -> float:
    """A finite float, or `default` (NaN cannot be stored in a NOT NULL REAL column)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return default
    number = float(value)
    return number if math.isfinite(number) else default


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 \
        else None


def _text(value: Any, limit: int) -> str:
    return clean_text(value, limit)


def _optional_text(value: Any, limit: int) -> str | None:
    return None if value is None else clean_text(value, limit)


def _cell(cell: CellRecord) -> CellRecord:
    synced = cell.synced_seconds
    return replace(cell, index=int(_number(cell.index, -1)), seconds=_number(cell.seconds),
                   error=_optional_text(cell.error, REASON_CHARS),
                   timed_out=cell.timed_out is True,
                   skipped=_optional_text(cell.skipped, REASON_CHARS),
                   synced_seconds=None if synced is None else _number(synced))


def clean_handin(handin: Handin) -> Handin:
    """`handin` with every text checked: file names and display names came from a student or
    an LMS download."""
    def texts(values: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(_text(v, NAME_CHARS) for v in list(values)[:LIST_ITEMS])

    return replace(handin, file=_text(handin.file, NAME_CHARS), match=Match.of(handin.match),
                   display_name=_text(handin.display_name, NAME_CHARS),
                   source=_text(handin.source, NAME_CHARS),
                   submitted_at=_text(handin.submitted_at, NAME_CHARS),
                   late=handin.late if isinstance(handin.late, bool) else None,
                   others=texts(handin.others), skipped=texts(handin.skipped),
                   section=_text(handin.section, NAME_CHARS))


def _run(run: RunRecord) -> RunRecord:
    notebook = run.notebook if isinstance(run.notebook, str) else None
    return replace(
        run, outcome=Outcome.of(run.outcome) if run.outcome != Outcome.REJECTED
        else Outcome.FAILED,
        reason=_text(run.reason, REASON_CHARS),
        cells=[_cell(c) for c in list(run.cells)[:LIST_ITEMS]],
        notebook=clean_text(notebook, NOTEBOOK_CHARS) if notebook is not None and
        len(notebook) <= NOTEBOOK_CHARS else None,
        wall_seconds=_number(run.wall_seconds), sandboxed=run.sandboxed is not False,
        limits=[_text(x, NAME_CHARS) for x in list(run.limits)[:LIST_ITEMS]],
        notes=[_text(x, REASON_CHARS) for x in list(run.notes)[:LIST_ITEMS]],
        peak_memory=_count(run.peak_memory), output_truncated=run.output_truncated is True)


def _item(item: Item) -> Item:
    """`item` as stored: only what the machine said. An item that carries a TA's override
    (one read back from the gradebook) is stored with the machine's score, never the TA's,
    which lives in the overrides table alone."""
    score = item.machine if item.override is not None and item.machine is not None \
        else item.score
    feedback = _text(item.feedback, FEEDBACK_CHARS)
    return Item(_text(item.name, NAME_CHARS), _number(score), _number(item.max), feedback,
                item.hidden is True, ItemStatus.of(item.status), _text(item.title, NAME_CHARS),
                said=_said(item.said, feedback))


def _stored_said(text: str) -> Any:
    try:
        return json.loads(text) if text else None
    except ValueError:
        return None


def _said(said: Any, feedback: str) -> dict[str, Any] | None:
    """The feedback's structure, kept only when it says exactly the stored feedback (a
    feedback cut to length is shown as the text it is, in English)."""
    words = i18n.Words.from_json(said) if said else None
    return words.to_json() if words is not None and str(words) == feedback else None


def clean_environment(environment: Any) -> dict[str, Any]:
    """The environment the sandbox reported, as the types it should have: `torch` and `gpu`
    short text or None, `cuda` a bool, `peak_memory` a byte count or None. Anything else (a
    GPU "name" that is a list, an unknown key) is left out."""
    if not isinstance(environment, dict):
        return {}
    clean: dict[str, Any] = {}
    for key in ("torch", "gpu"):
        if key in environment:
            value = environment[key]
            clean[key] = _text(value, NAME_CHARS) if isinstance(value, str) else None
    if "cuda" in environment:
        clean["cuda"] = environment["cuda"] is True
    if "peak_memory" in environment:
        clean["peak_memory"] = _count(environment["peak_memory"])
    return clean


def clean_result(result: Result) -> Result:
    """`result` with every value checked by type and size, text valid UTF-8: what may be
    stored, printed and drawn. The evidence is checked as it is turned into JSON."""
    return replace(
        result, student=_text(result.student, NAME_CHARS),
        notebook=_text(result.notebook, NAME_CHARS),
        content_hash=_text(result.content_hash, NAME_CHARS), run=_run(result.run),
        items=[_item(i) for i in list(result.items)[:LIST_ITEMS]],
        environment=clean_environment(result.environment),
        grader_error=result.grader_error is True)


def _plain(value: Any, depth: int = 0) -> Any:
    """Evidence as JSON values: numpy scalars and arrays as numbers and lists, text valid
    UTF-8; anything else (or nested deeper than JSON_DEPTH) is refused."""
    if depth > JSON_DEPTH:
        raise ValueError(f"evidence nested deeper than {JSON_DEPTH} levels")
    if hasattr(value, "tolist") and not isinstance(value, str | bytes):
        value = value.tolist()
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return clean_text(value, EVIDENCE_BYTES)
    if isinstance(value, dict):
        return {clean_text(k, NAME_CHARS): _plain(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v, depth + 1) for v in value]
    raise TypeError(f"evidence holds a {type(value).__name__}, which JSON cannot store")


def run_record(result: Result) -> str:
    """The run as stored: the RunRecord without the notebook (an attachment of its own), with
    the environment the sandbox reported, both checked (see clean_result)."""
    result = clean_result(result)
    record = asdict(result.run)
    record.pop("notebook", None)
    record["environment"] = result.environment
    if result.grader_error:
        record["grader_error"] = True
    return json.dumps(record)


def device_of(result: Result) -> str | None:
    environment = clean_environment(result.environment)
    return environment.get("gpu") or ("cpu" if environment else None)


def evidence_json(evidence: dict[str, Any]) -> str:
    """The evidence as JSON; a rubric that stored something else, or too much, loses its
    evidence, not the result."""
    try:
        text = json.dumps(_plain(evidence), allow_nan=True)
    except (TypeError, ValueError, RecursionError) as exc:
        return json.dumps({"unstorable": clean_text(exc, REASON_CHARS)})
    if len(text) > EVIDENCE_BYTES:
        return json.dumps({"unstorable": f"evidence larger than {EVIDENCE_BYTES >> 20} MB"})
    return text


# ----------------------------------------------------------------------------- overrides


def _line(value: Any, limit: int) -> str:
    """A TA's text (a reason, a name) as one line of valid Unicode of at most `limit`
    characters and a note: control and invisible characters are shown escaped (`\\x1b`), so
    that a reason can neither rewrite the terminal it is listed on nor forge a line of the
    audit log in a CSV. Surrounding white space is no part of it."""
    text = valid_unicode(value if isinstance(value, str) else str(value)).strip()
    return clean_text(one_line(text, len(text)), limit)


def _reason(value: Any) -> str:
    reason = _line(value, REASON_CHARS)
    if not reason:
        raise OverrideError("an override needs a reason, which the student and the audit log"
                            " show: give --reason TEXT")
    return reason


def _who(value: Any) -> str:
    by = _line(value, NAME_CHARS)
    if not by:
        raise OverrideError("an override needs the name of who sets it, for the audit log")
    return by


def _score(value: Any) -> float:
    """A TA's score as points: a finite number, not negative (the item's worth is checked
    once the item is known)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise OverrideError(f"the score must be a number of points, not {_quoted(value)}")
    if not math.isfinite(value):
        raise OverrideError(f"the score must be a finite number of points, not {value}")
    if value < 0:
        raise OverrideError(f"the score cannot be negative ({value:g}): give 0 or more points")
    return round(float(value), 4)


def _quoted(value: Any) -> str:
    return f"'{one_line(value, 80)}'"


def _listing(names: list[str]) -> str:
    """Names for an error message: the first LISTED of them, then how many more."""
    shown = ", ".join(one_line(n, 80) for n in names[:LISTED])
    more = len(names) - LISTED
    return f"{shown}, … and {more} more" if more > 0 else shown or "none"


def _loose(name: str) -> str:
    return name.strip().casefold().removesuffix(".ipynb")


def _pick(given: str, known: list[str], what: str, where: str) -> str:
    """`given` as one of `known`: itself, else the one that equals it but for case (and a
    notebook's `.ipynb`), so a TA may type `Alice` or `w4_homework`. An unknown or ambiguous
    name is an OverrideError that lists the known ones, so the TA can retype it."""
    names = sorted(set(known))
    if given in names:
        return given
    found = [n for n in names if _loose(n) == _loose(str(given))]
    if len(found) == 1:
        return found[0]
    if found:
        raise OverrideError(f"{_quoted(given)} could be any of several {what}s{where}: "
                            f"{_listing(found)}")
    raise OverrideError(f"no {what} {_quoted(given)}{where}; the {what}s are: "
                        f"{_listing(names)}")


def _aliases(item: Item) -> set[str]:
    """What a TA may call an item besides its name: its title and its heading, any case."""
    return {a.strip().casefold() for a in (item.name, item.title, item.heading) if a.strip()}


def _item_named(given: str, items: list[Item], where: str) -> Item:
    """The one item of `items` that `given` names: its name exactly, else its name, title or
    heading but for case."""
    found = [i for i in items if i.name == given] or [
        i for i in items if str(given).strip().casefold() in _aliases(i)]
    names = sorted({i.name for i in found})
    if len(found) == 1:
        return found[0]
    if len(names) > 1:
        raise OverrideError(f"{_quoted(given)} could be any of several items{where}: "
                            f"{_listing(names)}; give the item's name")
    if found:
        raise OverrideError(f"the rubric has two items named {_quoted(given)}{where}: an"
                            " override cannot tell them apart; rename one of the tests")
    raise OverrideError(f"no item {_quoted(given)}{where}; the items are: "
                        f"{_listing([i.name for i in items])}")


def _overridden(item: Item, override: Override) -> Item:
    """`item` as it counts: the TA's score (never more than the item is now worth, should a
    rubric change have lowered it), the machine's kept beside it."""
    return replace(item, score=min(override.score, item.max), machine=item.score,
                   override=override)


def _apply(items: list[Item], overrides: dict[str, Override]) -> tuple[list[Item], bool]:
    """`items` with the overrides of their names applied, and whether any was."""
    if not overrides:
        return items, False
    applied = [_overridden(i, overrides[i.name]) if i.name in overrides else i for i in items]
    return applied, any(i.override is not None for i in applied)


@dataclass(frozen=True)
class _Place:
    """One (homework, student, notebook) an override may be set on or cleared from."""

    hw: str
    student: str
    notebook: str

    def __str__(self) -> str:
        return f"{self.student}'s {self.notebook} ({self.hw})"


#: Where an override may be set (a current result), and where one may be cleared (also
#: where only an override is left, of a student no longer in the gradebook's results).
GRADED = "SELECT hw, student, notebook FROM latest"
OVERRIDDEN = f"{GRADED} UNION SELECT hw, student, notebook FROM overrides"


class Gradebook:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.db = sqlite3.connect(path, timeout=30, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA foreign_keys=ON")
        self.db.executescript(SCHEMA)
        self._add_item_titles()
        self.dropped = self._drop_shared_results()

    def _add_item_titles(self) -> None:
        """Gradebooks written before items had titles gain the column (empty titles: the
        report shows the test's name made readable)."""
        columns = {row[1] for row in self.db.execute("PRAGMA table_info(items)")}
        if "title" not in columns:
            self.db.execute("ALTER TABLE items ADD COLUMN title TEXT NOT NULL DEFAULT ''")
        if "said" not in columns:  # feedback kept as English text only
            self.db.execute("ALTER TABLE items ADD COLUMN said TEXT NOT NULL DEFAULT ''")

    def _drop_shared_results(self) -> int:
        """Older gradebooks keyed a result by its content alone, so two students who handed in
        the same bytes pointed at one row, which names only one of them. Such a pointer is
        dropped (the student is graded again by the next `grade`); the rows themselves stay.
        Returns how many were dropped."""
        shared = ("FROM latest WHERE EXISTS (SELECT 1 FROM results r WHERE r.key = latest.key"
                  " AND (r.student != latest.student OR r.notebook != latest.notebook"
                  " OR r.hw != latest.hw))")
        if not self.db.execute(f"SELECT COUNT(*) {shared}").fetchone()[0]:
            return 0  # the usual case: nothing to write, so a read-only gradebook opens
        with self._transaction() as db:
            return db.execute(f"DELETE {shared}").rowcount

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def has(self, key: str) -> bool:
        """True when a final result is stored under `key`. A result the grader itself failed
        on (see Result.grader_error) is not final: the next run grades it again."""
        row = self.db.execute("SELECT json_extract(record, '$.grader_error') FROM results"
                              " WHERE key = ?", (key,)).fetchone()
        return row is not None and not row[0]

    def mark_latest(self, hw: str, student: str, notebook: str, key: str) -> None:
        """A submission graded before under this key is this student's current one again."""
        with self._transaction() as db:
            db.execute("INSERT OR REPLACE INTO latest VALUES (?, ?, ?, ?)",
                       (hw, _text(student, NAME_CHARS), _text(notebook, NAME_CHARS), key))

    def store(self, hw: str, key: str, result: Result, *, baseline: bool = False) -> None:
        """Write one result and its items atomically (replacing an earlier one with this key),
        every value checked first (clean_result). A `baseline` (the solution, run beside a
        batch to time it) is kept apart: never a student's current result."""
        result = clean_result(result)
        run = result.run
        record, device = run_record(result), device_of(result)
        with self._transaction() as db:
            db.execute("DELETE FROM items WHERE key = ?", (key,))
            db.execute("INSERT OR REPLACE INTO results VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                       (key, hw, result.student, result.notebook, result.content_hash,
                        run.outcome, run.reason, result.total, result.max, run.wall_seconds,
                        device, record, time.time()))
            db.executemany(f"INSERT INTO items ({ITEM_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?)", [
                (key, i, item.name, item.score, item.max, item.feedback, int(item.hidden),
                 str(item.status), item.title, json.dumps(item.said) if item.said else "")
                for i, item in enumerate(result.items)])
            db.execute("DELETE FROM attachments WHERE key = ?", (key,))
            db.executemany("INSERT INTO attachments VALUES (?, ?, ?)", [
                (key, name, zlib.compress(body.encode())) for name, body in (
                    ("evidence", evidence_json(result.evidence)),
                    ("notebook", run.notebook or "")) if body])
            current = "baselines" if baseline else "latest"
            db.execute(f"INSERT OR REPLACE INTO {current} VALUES (?, ?, ?, ?)",
                       (hw, result.student, result.notebook, key))

    def baseline(self, hw: str, notebook: str) -> StoredResult | None:
        """The solution's latest timed run for this notebook, or None."""
        row = self.db.execute(f"SELECT {RESULT_COLUMNS}, NULL FROM baselines l JOIN results r "
                              "ON r.key = l.key WHERE l.hw = ? AND l.notebook = ?",
                              (hw, notebook)).fetchone()
        return self._stored(row, {}) if row else None

    def attachment(self, key: str, name: str) -> str | None:
        """A stored text of one result: "notebook" (the executed notebook) or "evidence"."""
        row = self.db.execute("SELECT body FROM attachments WHERE key = ? AND name = ?",
                              (key, name)).fetchone()
        return zlib.decompress(row[0]).decode() if row else None

    def token(self, hw: str, student: str) -> str:
        """The student's unguessable page name for HW, made once and kept, so a re-published
        site keeps every link a student was sent."""
        found = self.db.execute("SELECT token FROM tokens WHERE hw = ? AND student = ?",
                                (hw, student)).fetchone()
        if found:
            return found[0]
        token = secrets.token_urlsafe(18)
        with self._transaction() as db:
            db.execute("INSERT OR IGNORE INTO tokens VALUES (?, ?, ?)", (hw, student, token))
        return self.db.execute("SELECT token FROM tokens WHERE hw = ? AND student = ?",
                               (hw, student)).fetchone()[0]

    def store_rejected(self, hw: str, student: str, notebook: str, reason: str) -> None:
        student, notebook = _text(student, NAME_CHARS), _text(notebook, NAME_CHARS)
        reason = _text(reason, REASON_CHARS)
        key = f"rejected:{hw}:{student}:{notebook}"
        record = json.dumps({"outcome": Outcome.REJECTED, "reason": reason})
        with self._transaction() as db:
            db.execute("INSERT OR REPLACE INTO results VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                       (key, hw, student, notebook, "", Outcome.REJECTED, reason, 0.0, 0.0, None,
                        None, record, time.time()))
            db.execute("INSERT OR REPLACE INTO latest VALUES (?, ?, ?, ?)",
                       (hw, student, notebook, key))

    def record_handin(self, hw: str, student: str, notebook: str, handin: Handin) -> None:
        """What intake knew of this student's current submission for `notebook` (the file's
        own name, how it matched, the LMS's lateness), replaced on every run."""
        body = json.dumps(clean_handin(handin).as_dict())
        with self._transaction() as db:
            db.execute("INSERT OR REPLACE INTO handins VALUES (?, ?, ?, ?, ?)",
                       (hw, _text(student, NAME_CHARS), _text(notebook, NAME_CHARS), body,
                        time.time()))

    def results(self, hw: str | None = None) -> list[StoredResult]:
        """The current result of every student and notebook (of homework `hw`, or all), with
        its items and evidence, ordered by homework, student and notebook. A TA's override
        counts instead of the machine's score of its item, and the total is the items' sum."""
        query = (f"SELECT {RESULT_COLUMNS}, h.body FROM latest l JOIN results r ON r.key = l.key"
                 " LEFT JOIN handins h ON h.hw = l.hw AND h.student = l.student"
                 " AND h.notebook = l.notebook"
                 + (" WHERE l.hw = ?" if hw else "") + " ORDER BY l.hw, l.student, l.notebook")
        overrides: dict[tuple[str, str, str], dict[str, Override]] = {}
        for override in self.overrides(hw):
            place = (override.hw, override.student, override.notebook)
            overrides.setdefault(place, {})[override.item] = override
        return [self._stored(row, overrides)
                for row in self.db.execute(query, (hw,) if hw else ()).fetchall()]

    def _stored(self, row: tuple[Any, ...],
                overrides: dict[tuple[str, str, str], dict[str, Override]]) -> StoredResult:
        (key, hw, student, notebook, content_hash, outcome, reason, total, top, wall, device,
         record, graded_at, handin) = row
        items, changed = _apply(self._machine_items(key),
                                overrides.get((hw, student, notebook), {}))
        if changed:
            total = round(sum(i.score for i in items), 4)
        evidence = self.attachment(key, "evidence")
        return StoredResult(hw, key, student, notebook, content_hash, Outcome.of(outcome),
                            reason, total, top, wall, device, json.loads(record or "{}"),
                            graded_at, items, json.loads(evidence) if evidence else {},
                            Handin.from_dict(json.loads(handin)) if handin else Handin())

    def _machine_items(self, key: str) -> list[Item]:
        """The items stored under `key`: the machine's scores, no override applied."""
        return [Item(name, score, most, feedback, bool(hidden), ItemStatus.of(status), title,
                     said=_stored_said(said))
                for name, score, most, feedback, hidden, status, title, said in self.db.execute(
                    "SELECT name, score, max, feedback, hidden, status, title, said FROM items"
                    " WHERE key = ? ORDER BY position", (key,))]

    # ------------------------------------------------------------------------- overrides

    def set_override(self, hw: str | None, student: str, notebook: str, item: str,
                     score: float, reason: str, by: str) -> Override:
        """Set a TA's score for one item of a student's current result (replacing an earlier
        override of it), and log the change. `hw` None: the one homework that holds the
        student's notebook. `item` is the item's name, or its title or heading in any case.
        Raises OverrideError, naming what is known, when anything given is not."""
        score, reason, by = _score(score), _reason(reason), _who(by)
        with self._transaction() as db:
            place = self._locate(GRADED, hw, student, notebook)
            target = _item_named(item, self._items_to_override(place), f" of {place}")
            if score > target.max:
                raise OverrideError(f"{score:g} is more than {target.name} of {place} is worth:"
                                    f" give 0 to {target.max:g} points")
            before = self._override(place, target.name)
            override = Override(place.hw, place.student, place.notebook, target.name, score,
                                reason, by, time.time(), target.score)
            db.execute(f"INSERT OR REPLACE INTO overrides ({OVERRIDE_COLUMNS})"
                       " VALUES (?,?,?,?,?,?,?,?,?)",
                       (override.hw, override.student, override.notebook, override.item,
                        score, reason, by, override.at, override.machine))
            self._log(override, before.score if before else target.score, score)
        return override

    def clear_override(self, hw: str | None, student: str, notebook: str, item: str,
                       reason: str, by: str) -> None:
        """Remove a TA's override, so the machine's score counts again, and log it. An
        orphaned override (its item or its result is gone) can be cleared too."""
        reason, by = _reason(reason), _who(by)
        with self._transaction():
            place = self._locate(OVERRIDDEN, hw, student, notebook)
            own = {o.item: o for o in self.overrides(place.hw) if _Place(
                o.hw, o.student, o.notebook) == place}
            if not own:
                raise OverrideError(f"{place} has no override to clear")
            known = [i for i in self._items(place) if i.name in own]
            known += [Item(name, 0.0, 0.0, "", False, ItemStatus.ERROR) for name in own
                      if name not in {i.name for i in known}]
            found = own[_item_named(item, known, f" overridden in {place}").name]
            self.db.execute("DELETE FROM overrides WHERE hw = ? AND student = ? AND notebook = ?"
                            " AND item = ?", (place.hw, place.student, place.notebook,
                                              found.item))
            self._log(replace(found, reason=reason, by=by, at=time.time()), found.score, None)

    def overrides(self, hw: str | None = None) -> list[Override]:
        """Every override set (of homework `hw`, or all), applied or orphaned, ordered by
        homework, student, notebook and item."""
        query = (f"SELECT {OVERRIDE_COLUMNS} FROM overrides" + (" WHERE hw = ?" if hw else "")
                 + " ORDER BY hw, student, notebook, item")
        return [Override(*row) for row in self.db.execute(query, (hw,) if hw else ())]

    def orphaned_overrides(self, hw: str | None = None) -> list[Override]:
        """Overrides that apply to nothing now: the current result has no item of that name
        (the rubric dropped it, or the result was rejected or failed, holding no items), or
        there is no current result. They are kept, and apply again when the item returns."""
        columns = ", ".join(f"o.{c}" for c in OVERRIDE_COLUMNS.split(", "))
        query = (f"SELECT {columns} FROM overrides o LEFT JOIN latest l ON l.hw = o.hw"
                 " AND l.student = o.student AND l.notebook = o.notebook WHERE NOT EXISTS"
                 " (SELECT 1 FROM items i WHERE i.key = l.key AND i.name = o.item)"
                 + (" AND o.hw = ?" if hw else "") + " ORDER BY o.hw, o.student, o.notebook,"
                 " o.item")
        return [Override(*row) for row in self.db.execute(query, (hw,) if hw else ())]

    def override_log(self, hw: str | None = None) -> list[OverrideChange]:
        """Every change ever made to an override (of homework `hw`, or all), oldest first."""
        query = (f"SELECT {LOG_COLUMNS} FROM override_log" + (" WHERE hw = ?" if hw else "")
                 + " ORDER BY id")
        return [OverrideChange(*row) for row in self.db.execute(query, (hw,) if hw else ())]

    def _locate(self, places: str, hw: str | None, student: str, notebook: str) -> _Place:
        """The (homework, student, notebook) a TA named, among `places` (GRADED or
        OVERRIDDEN), each name matched as `_pick` does."""
        rows = [_Place(*row) for row in self.db.execute(places)]
        if not rows:
            raise OverrideError("the gradebook holds no results: grade the class first")
        if hw is not None:
            hw = _pick(hw, [r.hw for r in rows], "homework", " in the gradebook")
            rows = [r for r in rows if r.hw == hw]
        where = f" in {hw}" if hw is not None else ""
        student = _pick(student, [r.student for r in rows], "student", where)
        rows = [r for r in rows if r.student == student]
        notebook = _pick(notebook, [r.notebook for r in rows], "notebook",
                         f" of {student}{where}")
        rows = [r for r in rows if r.notebook == notebook]
        if len(rows) > 1:
            raise OverrideError(f"{student}'s {notebook} is graded in several homeworks "
                                f"({_listing([r.hw for r in rows])}): give the homework")
        return rows[0]

    def _items(self, place: _Place) -> list[Item]:
        """The machine's items of the current result of `place` (none when it has none)."""
        row = self.db.execute("SELECT key FROM latest WHERE hw = ? AND student = ? AND"
                              " notebook = ?", (place.hw, place.student, place.notebook)
                              ).fetchone()
        return self._machine_items(row[0]) if row else []

    def _items_to_override(self, place: _Place) -> list[Item]:
        """The items of the current result of `place`; a result without any (rejected,
        failed) is an OverrideError that says how it ended."""
        items = self._items(place)
        if not items:
            outcome, why = self.db.execute(
                "SELECT r.outcome, r.reason FROM latest l JOIN results r ON r.key = l.key"
                " WHERE l.hw = ? AND l.student = ? AND l.notebook = ?",
                (place.hw, place.student, place.notebook)).fetchone()
            raise OverrideError(f"{place} has no rubric items to override: it was {outcome}"
                                + (f" ({one_line(why, 200)})" if why else ""))
        return items

    def _override(self, place: _Place, item: str) -> Override | None:
        row = self.db.execute(f"SELECT {OVERRIDE_COLUMNS} FROM overrides WHERE hw = ? AND"
                              " student = ? AND notebook = ? AND item = ?",
                              (place.hw, place.student, place.notebook, item)).fetchone()
        return Override(*row) if row else None

    def _log(self, change: Override, old: float | None, new: float | None) -> None:
        """Append one change to the audit log (inside the caller's transaction)."""
        self.db.execute("INSERT INTO override_log (hw, student, notebook, item, old, new,"
                        " reason, by, at) VALUES (?,?,?,?,?,?,?,?,?)",
                        (change.hw, change.student, change.notebook, change.item, old, new,
                         change.reason, change.by, change.at))


def as_stored(result: Result, hw: str, key: str = "", handin: Handin | None = None
              ) -> StoredResult:
    """A fresh result as the gradebook would give it back (every value checked), for a page
    drawn without a gradebook (`grade check --html`)."""
    clean = clean_result(result)
    return StoredResult(hw, key, clean.student, clean.notebook, clean.content_hash,
                        Outcome.of(clean.run.outcome), clean.run.reason, clean.total,
                        clean.max, clean.run.wall_seconds, device_of(clean),
                        json.loads(run_record(clean)), time.time(), clean.items,
                        json.loads(evidence_json(result.evidence)),
                        clean_handin(handin or Handin()))
