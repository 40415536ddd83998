"""The gradebook: one SQLite file (WAL) that never loses a result and never holds one twice.

A result is keyed by what decides it: the submission's content hash, the assignment's version
and the digest of its folder (rubric, template, limits). A re-run grades only keys it has not
seen. Each result and its items are written in one transaction, so a batch killed with
`kill -9` leaves every finished result whole and nothing of the one in flight.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

from grader.judge.grade import Result

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
CREATE TABLE IF NOT EXISTS latest (
    hw       TEXT NOT NULL,
    student  TEXT NOT NULL,
    notebook TEXT NOT NULL,
    key      TEXT NOT NULL REFERENCES results(key),
    PRIMARY KEY (hw, student, notebook)
);
"""


def result_key(content_hash: str, version: str, digest: str) -> str:
    return f"{content_hash}:{version}:{digest}"


def _plain(value: Any) -> Any:
    """numpy scalars and arrays in rubric evidence, as JSON numbers and lists."""
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"evidence holds a {type(value).__name__}, which JSON cannot store")


def run_record(result: Result) -> str:
    """The run as stored: the RunRecord without the notebook (an attachment of its own), with
    the environment the sandbox reported."""
    record = asdict(result.run)
    record.pop("notebook", None)
    record["environment"] = result.environment
    return json.dumps(record)


def device_of(result: Result) -> str | None:
    return result.environment.get("gpu") or ("cpu" if result.environment else None)


def evidence_json(evidence: dict[str, Any]) -> str:
    """The evidence as JSON; a rubric that stored something else loses its evidence, not the
    result."""
    try:
        return json.dumps(evidence, default=_plain, allow_nan=True)
    except (TypeError, ValueError) as exc:
        return json.dumps({"unstorable": str(exc)})


class Gradebook:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.db = sqlite3.connect(path, timeout=30, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA foreign_keys=ON")
        self.db.executescript(SCHEMA)

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
        return self.db.execute("SELECT 1 FROM results WHERE key = ?", (key,)).fetchone() is not None

    def mark_latest(self, hw: str, student: str, notebook: str, key: str) -> None:
        """A submission graded before under this key is this student's current one again."""
        with self._transaction() as db:
            db.execute("INSERT OR REPLACE INTO latest VALUES (?, ?, ?, ?)",
                       (hw, student, notebook, key))

    def store(self, hw: str, key: str, result: Result) -> None:
        """Write one result and its items atomically (replacing an earlier one with this key)."""
        run = result.run
        record, device = run_record(result), device_of(result)
        with self._transaction() as db:
            db.execute("DELETE FROM items WHERE key = ?", (key,))
            db.execute("INSERT OR REPLACE INTO results VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                       (key, hw, result.student, result.notebook, result.content_hash,
                        run.outcome, run.reason, result.total, result.max, run.wall_seconds,
                        device, record, time.time()))
            db.executemany("INSERT INTO items VALUES (?,?,?,?,?,?,?,?)", [
                (key, i, item.name, item.score, item.max, item.feedback, int(item.hidden),
                 item.status) for i, item in enumerate(result.items)])
            db.execute("DELETE FROM attachments WHERE key = ?", (key,))
            db.executemany("INSERT INTO attachments VALUES (?, ?, ?)", [
                (key, name, zlib.compress(body.encode())) for name, body in (
                    ("evidence", evidence_json(result.evidence)),
                    ("notebook", run.notebook or "")) if body])
            db.execute("INSERT OR REPLACE INTO latest VALUES (?, ?, ?, ?)",
                       (hw, result.student, result.notebook, key))

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
        key = f"rejected:{hw}:{student}:{notebook}"
        record = json.dumps({"outcome": "rejected", "reason": reason})
        with self._transaction() as db:
            db.execute("INSERT OR REPLACE INTO results VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                       (key, hw, student, notebook, "", "rejected", reason, 0.0, 0.0, None,
                        None, record, time.time()))
            db.execute("INSERT OR REPLACE INTO latest VALUES (?, ?, ?, ?)",
                       (hw, student, notebook, key))

    def rows(self, hw: str | None = None) -> list[dict[str, Any]]:
        """The current result of every student and notebook, with its items."""
        query = ("SELECT r.* FROM latest l JOIN results r ON r.key = l.key"
                 + (" WHERE l.hw = ?" if hw else "") + " ORDER BY l.hw, l.student, l.notebook")
        cursor = self.db.execute(query, (hw,) if hw else ())
        columns = [c[0] for c in cursor.description]
        rows = [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
        for row in rows:
            items = self.db.execute("SELECT name, score, max, feedback, hidden, status FROM items"
                                    " WHERE key = ? ORDER BY position", (row["key"],))
            row["items"] = [dict(zip(("name", "score", "max", "feedback", "hidden", "status"),
                                     item, strict=True)) for item in items]
            evidence = self.attachment(row["key"], "evidence")
            row["evidence"] = json.loads(evidence) if evidence else {}
        return rows

    def count(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM results").fetchone()[0]
