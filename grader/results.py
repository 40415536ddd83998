"""What a grading produces and the gradebook keeps: plain typed records, the vocabulary every
layer shares.

This module imports nothing from torchgrade, so the sandbox (which makes run records), the
judge (items and results), the gradebook (which stores them) and the reports and exports
(which read `StoredResult`) all depend on it and on nothing of each other's.

    RunRecord   what the grader itself saw of one notebook's run (cells, outcome, limits)
    Item        one rubric test's verdict: score, worth, feedback for the student
    Result      one submission graded: its run, its items, the evidence the rubric measured
    StoredResult  a result as the gradebook gives it back: with its homework, key and time
    Override    a TA's score for one rubric item, kept beside every regrade, with its reason
    OverrideChange  one line of the overrides' audit log: who changed what, when, and why
    Handin      how intake found a submission: the file, how it was matched, the LMS's facts
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

#: The evidence key that lists what hidden rubric tests wrote: withheld from the students' site
#: with the hidden items until the TA releases them.
HIDDEN_EVIDENCE = "_hidden"


class Outcome(StrEnum):
    """How a notebook's run ended, as the grader saw it."""

    COMPLETED = "completed"  # every cell ran without error
    ERROR = "error"          # some cell raised
    TIMEOUT = "timeout"      # a cell or the whole notebook ran over its time
    KILLED = "killed"        # memory or another limit ended it
    FAILED = "failed"        # it could not be run or graded at all
    REJECTED = "rejected"    # intake refused the submission (never run)

    @classmethod
    def of(cls, value: object) -> Outcome:
        """`value` as an outcome; anything unknown is FAILED (it came, in part, from a
        submission)."""
        try:
            return cls(value)
        except ValueError:
            return cls.FAILED


class ItemStatus(StrEnum):
    """A rubric item's verdict."""

    PASSED = "passed"    # full points
    PARTIAL = "partial"  # passed with part of the points (`credit`)
    FAILED = "failed"    # the test's assertion failed: the feedback says why
    ERROR = "error"      # the test could not run (its setup failed, or the rubric is broken)

    @classmethod
    def of(cls, value: object) -> ItemStatus:
        try:
            return cls(value)
        except ValueError:
            return cls.ERROR


@dataclass(frozen=True)
class CellRecord:
    """One code cell's run: its index in the notebook, its time, and how it ended."""

    index: int
    seconds: float
    error: str | None
    timed_out: bool
    skipped: str | None
    synced_seconds: float | None = None  # with the GPU's queued work waited for


@dataclass
class RunRecord:
    """What the grader itself saw of one run (never what the notebook printed about itself)."""

    outcome: Outcome | str
    reason: str = ""
    cells: list[CellRecord] = field(default_factory=list)
    notebook: str | None = None
    wall_seconds: float = 0.0
    sandboxed: bool = True
    limits: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    peak_memory: int | None = None
    output_truncated: bool = False


@dataclass
class Item:
    """One rubric test's result, as stored and shown. `name` is the test's own name (stable,
    for exports and pass rates); `title` is what a student reads."""

    name: str
    score: float
    max: float
    feedback: str
    hidden: bool
    status: ItemStatus | str
    title: str = ""
    override: Override | None = None  # a TA's score, which counts instead of the machine's
    machine: float | None = None      # the machine's own score, when an override replaced it
    said: Any = None  # the feedback's template and arguments (grader.i18n.Words.to_json)

    @property
    def heading(self) -> str:
        return self.title or readable(self.name)

    @property
    def drifted(self) -> bool:
        """True when a regrade changed what the machine says under a TA's override: the TA
        decided against a machine score that is no longer the one the machine gives."""
        if self.override is None:
            return False
        then, now = self.override.machine, self.machine
        return then is None or now is None or abs(then - now) > DRIFT


#: Machine scores closer than this are the same score (they are stored rounded to 4 places).
DRIFT = 1e-6


@dataclass(frozen=True)
class Override:
    """A TA's score for one rubric item of one student's notebook. Keyed by the item's `name`
    (the test's own name, stable across regrades and rubric edits), never by a result's key,
    so it outlives every regrade. `machine` is the machine's score when it was set: a regrade
    that changes it is shown to the TA (`Item.drifted`)."""

    hw: str
    student: str
    notebook: str
    item: str
    score: float
    reason: str
    by: str
    at: float                 # when it was set, seconds since the epoch
    machine: float | None     # the machine's score of the item when it was set


@dataclass(frozen=True)
class OverrideChange:
    """One line of the overrides' audit log, which is only ever appended to. `old` is the
    score that counted before (the previous override's, else the machine's); `new` is None
    when the override was cleared."""

    id: int
    hw: str
    student: str
    notebook: str
    item: str
    old: float | None
    new: float | None
    reason: str
    by: str
    at: float


def readable(name: str) -> str:
    """A test's name made readable: `test_a_model_classifies_digits` -> "A model classifies
    digits"."""
    words = re.sub(r"^test_", "", name.split("[")[0]).replace("_", " ").strip()
    return words[:1].upper() + words[1:] if words else name


@dataclass
class Result:
    """One submission graded: the run, the rubric's items, what the rubric measured."""

    student: str
    notebook: str
    content_hash: str
    run: RunRecord
    items: list[Item] = field(default_factory=list)
    environment: dict[str, Any] = field(default_factory=dict)
    evidence: dict[str, Any] = field(default_factory=dict)  # what the rubric measured, for reports
    grader_error: bool = False  # the grader, not the notebook, failed: not kept as final

    @property
    def total(self) -> float:
        return round(sum(i.score for i in self.items), 4)

    @property
    def max(self) -> float:
        return round(sum(i.max for i in self.items), 4)

    @classmethod
    def failed(cls, student: str, notebook: str, content_hash: str, reason: str, *,
               grader_error: bool = True) -> Result:
        """A submission that could not be graded, with the reason for the TA. A grader error
        is graded again on the next run."""
        return cls(student, notebook, content_hash, RunRecord(Outcome.FAILED, reason),
                   grader_error=grader_error)


class Match(StrEnum):
    """How a handed-in file was found to be one of the assignment's notebooks."""

    NAME = "name"        # the notebook's own name (after a student's or an LMS's prefix)
    ALIAS = "alias"      # one of the notebook's aliases in assignment.toml
    LOOSE = "loose"      # the name once copy suffixes (` (1)`, `-2`, `_v2`) and case are set aside
    CONTENT = "content"  # what the notebook holds: the template's cells and the names it defines
    ONLY = "only"        # the one notebook handed in for a homework of one notebook

    @classmethod
    def of(cls, value: object) -> Match:
        try:
            return cls(str(value))
        except ValueError:
            return cls.NAME


@dataclass(frozen=True)
class Handin:
    """What intake knew of a submission: the file as the student named it, how it was matched
    to the notebook, and what the LMS said (who, when, late). Kept beside the result, and
    refreshed on every run, so a re-downloaded class updates its lateness without a regrade."""

    file: str = ""                  # the file's name as handed in, inside the student's hand-in
    match: Match = Match.NAME
    display_name: str = ""          # the student as the LMS or the roster shows them
    source: str = ""                # the layout read: canvas, moodle, blackboard, gradescope, ...
    submitted_at: str = ""          # ISO 8601, when the LMS says
    late: bool | None = None        # what the LMS says; None when it says nothing
    others: tuple[str, ...] = ()    # other files or attempts for the same notebook, not graded
    skipped: tuple[str, ...] = ()   # entries shown, not graded (a Canvas text or URL entry)
    section: str = ""               # the roster's section, when a roster was given

    def as_dict(self) -> dict[str, Any]:
        return {"file": self.file, "match": str(self.match), "display_name": self.display_name,
                "source": self.source, "submitted_at": self.submitted_at, "late": self.late,
                "others": list(self.others), "skipped": list(self.skipped),
                "section": self.section}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Handin:
        def texts(key: str) -> tuple[str, ...]:
            value = data.get(key)
            return tuple(str(v) for v in value) if isinstance(value, list) else ()

        late = data.get("late")
        return cls(file=str(data.get("file", "")), match=Match.of(data.get("match")),
                   display_name=str(data.get("display_name", "")),
                   source=str(data.get("source", "")),
                   submitted_at=str(data.get("submitted_at", "")),
                   late=late if isinstance(late, bool) else None,
                   others=texts("others"), skipped=texts("skipped"),
                   section=str(data.get("section", "")))

    def notes(self, notebook: str) -> list[str]:
        """What a TA and the student read about this hand-in, one sentence each."""
        notes = []
        if self.match is Match.CONTENT:
            notes.append(f"{self.file} was matched by content to {notebook}")
        elif self.match is Match.ONLY:
            notes.append(f"{self.file} was graded as {notebook}: the only notebook handed in")
        elif self.match in (Match.ALIAS, Match.LOOSE) or (self.file and self.file != notebook):
            notes.append(f"{self.file} was matched by its name to {notebook}")
        if self.late:
            notes.append(f"handed in late{self._when()}, as {self.source or 'the LMS'} says")
        if self.others:
            notes.append("also handed in, not graded (the latest attempt counts): "
                         + ", ".join(self.others))
        if self.skipped:
            notes.append("not graded (not a notebook): " + ", ".join(self.skipped))
        return notes

    def _when(self) -> str:
        return f" ({self.submitted_at})" if self.submitted_at else ""


@dataclass
class StoredResult:
    """One student's current result for one notebook, as the gradebook keeps it: what the
    report pages, the published site and the exports read."""

    hw: str
    key: str
    student: str
    notebook: str
    content_hash: str
    outcome: Outcome
    reason: str
    total: float
    max: float
    wall_seconds: float | None
    device: str | None
    record: dict[str, Any]          # the run record as stored (cells, limits, notes, environment)
    graded_at: float
    items: list[Item] = field(default_factory=list)
    evidence: dict[str, Any] = field(default_factory=dict)
    handin: Handin = field(default_factory=Handin)
    penalty: float = 0.0            # points the late policy takes off `total` (already taken)
    lateness: str = ""              # the late policy's sentence, when the homework has a due date
    withheld: int = 0               # hidden items left out until the TA releases them

    def without_hidden(self) -> StoredResult:
        """This result as the students' site shows it before release: the hidden items, and
        the evidence their tests wrote, left out; the total of what is shown, with the late
        penalty's share of it."""
        hidden = [i for i in self.items if i.hidden]
        if not hidden:
            return self
        shown = [i for i in self.items if not i.hidden]
        secret = set(self.evidence.get(HIDDEN_EVIDENCE) or [])
        top = round(sum(i.max for i in shown), 4)
        share = self.penalty / self.max * top if self.max else 0.0
        return replace(self, items=shown, max=top, withheld=len(hidden),
                       total=round(max(0.0, sum(i.score for i in shown) - share), 4),
                       penalty=round(share, 4),
                       evidence={k: v for k, v in self.evidence.items() if k not in secret})
