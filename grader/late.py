"""Late hand-ins: the due date a TA sets, the penalty it gives, and the sentence a student reads.

`[due]` and `[late]` in assignment.toml become a `Due` (grader.assignments reads and checks
them). A penalty is never stored into a score: it is worked out here from a stored result's
hand-in time whenever the gradebook is exported or shown, so a changed due date, grace or
extension applies to every stored result without a regrade.

How a hand-in is counted, as Canvas's late policy counts it (canvas-lms
app/models/late_policy.rb `points_deducted` and Submission#seconds_late; the Canvas guide "How
do I apply a Late Submission policy": "Canvas rounds up the day or hour to the next whole
number"), with a grace period added, which Canvas does not have:

    late by    submitted - due, the student's own due date (an extension replaces the common one)
    on time    late by <= grace. The grace only decides *whether* a hand-in is late; once it is,
               the periods are counted from the due date, not from the end of the grace, so the
               day boundaries stay at the due time of day that students were told.
    periods    ceil(late by / period): each day or hour started costs `penalty`
    fraction   min(cap, periods * penalty) of the notebook's points; all of them when late by
               is more than `zero_after`

A submission time without a zone (some LMS exports give local times) is read in the zone of
the student's due date. With no time at all, the LMS's word decides: late counts as one period
(`assumed`), anything else as on time.

All the words a student reads about lateness are made in `describe`, from templates
(`i18n.say`) that the report's catalog (grader/locale/zh/report.po) says in Chinese.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path

from grader.errors import GraderError
from grader.i18n import N_, Words, say
from grader.results import StoredResult

#: The length of each kind of period a penalty is counted in.
PERIODS = {"day": timedelta(days=1), "hour": timedelta(hours=1)}

#: How a due date or submission time is written in a CSV file, for the messages.
TIME_EXAMPLE = "2026-10-05T23:59:00+08:00 or 2026-10-05 23:59 +08:00"

MAX_CSV_BYTES = 8 << 20  # a class's dates are kilobytes; anything this big is the wrong file


class LateError(GraderError):
    """A file of submission times or extensions cannot be used; the message names the file, the
    line and what was expected."""

    exit_code = 2


@dataclass(frozen=True)
class LatePolicy:
    """[late]: what a late hand-in costs."""

    per: str                                # "day" | "hour"
    penalty: float                          # fraction of the points taken per period started
    cap: float = 1.0                        # the most that lateness alone takes
    grace: timedelta = timedelta(0)         # this late still counts as on time
    zero_after: timedelta | None = None     # later than this after the due date: no points

    @property
    def period(self) -> timedelta:
        return PERIODS[self.per]


@dataclass(frozen=True)
class Due:
    """[due]: when the homework is due, and for whom it is due later."""

    at: datetime                                # aware
    policy: LatePolicy | None = None            # None: lateness recorded, no penalty
    extensions: Mapping[str, datetime] = field(default_factory=dict)  # student -> new due date

    def for_student(self, student: str) -> datetime:
        """The student's own due date: the extension's when they have one."""
        return self.extensions.get(student, self.at)


@dataclass(frozen=True)
class Lateness:
    """How late one hand-in was, and what that costs."""

    due: datetime                       # the student's due date (extension applied)
    submitted_at: datetime | None       # aware
    late_by: timedelta | None           # None: on time, or unknown
    periods: int                        # days/hours started after the due date (0: on time)
    fraction: float                     # of the points taken off, 0..1 (cap, zero_after applied)
    assumed: bool = False               # the LMS said late but gave no time: one period counted
    extended: bool = False              # `due` is the student's extension
    policy: LatePolicy | None = None    # what the penalty was worked out with

    @property
    def late(self) -> bool:
        return self.late_by is not None or self.assumed

    def apply(self, points: float, possible: float) -> float:
        """The points left once the penalty is taken: the penalty is a fraction of the points
        `possible` (as Canvas deducts a percentage of the points possible), so a late student
        loses as much as a classmate equally late, whatever either earned; never below 0."""
        return round(max(0.0, points - self.fraction * possible), 4)


def lateness(due: Due, student: str, submitted_at: datetime | None,
             lms_late: bool | None) -> Lateness:
    """How late `student`'s hand-in was. A known time decides (it is measured against the due
    date and extensions in assignment.toml, which a TA may have changed since the LMS said
    anything); without one the LMS's word does."""
    at = due.for_student(student)
    extended, policy = student in due.extensions, due.policy
    base = Lateness(due=at, submitted_at=None, late_by=None, periods=0, fraction=0.0,
                    extended=extended, policy=policy)
    if submitted_at is None:
        if not lms_late:
            return base
        fraction = min(policy.cap, policy.penalty) if policy else 0.0
        return replace(base, periods=1 if policy else 0, fraction=fraction, assumed=True)
    when = submitted_at if submitted_at.tzinfo else submitted_at.replace(tzinfo=at.tzinfo)
    over = when - at
    if over <= (policy.grace if policy else timedelta(0)):
        return replace(base, submitted_at=when)
    if policy is None:
        return replace(base, submitted_at=when, late_by=over)
    periods = -(-over // policy.period)  # ceil, in whole microseconds
    return replace(base, submitted_at=when, late_by=over, periods=periods,
                 fraction=_fraction(policy, periods, over))


def _fraction(policy: LatePolicy, periods: int, over: timedelta) -> float:
    if policy.zero_after is not None and over > policy.zero_after:
        return 1.0
    return min(policy.cap, round(periods * policy.penalty, 10))  # 3 * 0.1 is 0.30000000000000004


# ------------------------------------------------------------------------------- reading times


def parse_time(text: str) -> datetime | None:
    """A time as `Handin.submitted_at` stores it (ISO 8601) or a TA writes it
    (`2026-10-05 23:59 +08:00`, `... UTC`); None when empty or unreadable: an unknown time,
    so the LMS's word decides. Without a zone it stays naive: `lateness` reads it in the due
    date's zone."""
    text = text.strip()
    if text.upper().endswith("UTC"):
        text = text[:-3].rstrip() + "+00:00"
    try:
        return datetime.fromisoformat(text) if text else None
    except ValueError:
        return None


def read_submitted_at(path: Path) -> dict[str, datetime]:
    """The TA's `--submitted-at` CSV: a header naming `student` and `submitted_at` (other
    columns are kept for the TA and ignored), then one row per student. A time without a zone
    is read in the due date's zone."""
    return _read_times(path, "submitted_at", zone_required=False)


def read_extensions(path: Path) -> dict[str, datetime]:
    """An extensions CSV: `student,due`, the due date with its zone (a date alone or a local
    time is refused: the TA's word on a deadline must not depend on where the grader runs)."""
    return _read_times(path, "due", zone_required=True)


def _read_times(path: Path, column: str, zone_required: bool) -> dict[str, datetime]:
    rows = _rows(path, _text(path))
    if not rows:
        raise LateError(f"{path}: is empty; expected a header `student,{column}` and one row "
                        "per student")
    line, header = rows[0]
    names = [cell.strip().lower() for cell in header]
    if "student" not in names or column not in names:
        raise LateError(f"{path}, line {line}: the header {','.join(header)!r} does not name "
                        f"the columns `student` and `{column}`")
    who, when = names.index("student"), names.index(column)
    found: dict[str, tuple[int, datetime]] = {}
    for line, cells in rows[1:]:
        student, moment = _row(path, line, cells, (who, when), column, zone_required)
        if student in found:
            raise LateError(f"{path}, line {line}: student {student!r} is already on line "
                            f"{found[student][0]}; give one row per student")
        found[student] = (line, moment)
    return {student: moment for student, (_, moment) in found.items()}


def _row(path: Path, line: int, cells: list[str], at: tuple[int, int], column: str,
         zone_required: bool) -> tuple[str, datetime]:
    student, text = (cells[i].strip() if i < len(cells) else "" for i in at)
    if not student:
        raise LateError(f"{path}, line {line}: no student named")
    moment = parse_time(text)
    if moment is None:
        raise LateError(f"{path}, line {line}: `{column}` = {text!r} is not a date and time; "
                        f"write it as {TIME_EXAMPLE}")
    if zone_required and moment.tzinfo is None:
        raise LateError(f"{path}, line {line}: `{column}` = {text!r} has no time zone; write "
                        f"it as {TIME_EXAMPLE}")
    return student, moment


def _text(path: Path) -> str:
    """The file as text; utf-8-sig drops the BOM Excel writes first."""
    try:
        if path.stat().st_size > MAX_CSV_BYTES:
            raise LateError(f"{path}: is larger than {MAX_CSV_BYTES >> 20} MB; expected a CSV "
                            "of students and times")
        return path.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise LateError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    except UnicodeDecodeError as exc:
        raise LateError(f"{path}: byte {exc.start} is not UTF-8; save it as 'CSV UTF-8'") from None


def _rows(path: Path, text: str) -> list[tuple[int, list[str]]]:
    """The non-blank rows, each with the line it starts on."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    rows, start = [], 1
    try:
        for cells in reader:
            if any(cell.strip() for cell in cells):
                rows.append((start, cells))
            start = reader.line_num + 1
    except csv.Error as exc:
        raise LateError(f"{path}, line {start}: is not valid CSV ({exc})") from None
    return rows


# ------------------------------------------------------------------------ what a student reads


def describe(late: Lateness) -> Words:
    """The one sentence a student reads about their hand-in's lateness, e.g. "handed in 1 day
    3 hours late (due 2026-10-05 23:59 +08:00, extended): −20% (2 days started, 10% each)":
    English `Words` whose templates the report's catalog says in Chinese."""
    policy = late.policy
    unit = policy.per if policy else "day"
    if late.assumed:
        if policy is None:
            return say(N_("late by the LMS's account, time unknown"))
        return say(N_("late by the LMS's account, time unknown: counted as one {unit}{cost}"),
                   unit=say(_UNITS[unit]), cost=_cost(late))
    if late.late_by is None:
        if late.submitted_at is not None and late.submitted_at > late.due and policy:
            return say(N_("on time: handed in {span} after the due date, within the grace "
                          "period of {grace}"), span=_span(late.submitted_at - late.due),
                       grace=_span(policy.grace))
        if late.extended:
            return say(N_("on time (due {due}, extended)"), due=_when(late.due))
        return say(N_("on time"))
    extended = say(N_(", extended")) if late.extended else ""
    head = say(N_("handed in {span} late (due {due}{extended})"), span=_span(late.late_by),
               due=_when(late.due), extended=extended)
    if policy is None or not late.fraction:
        return head
    if policy.zero_after is not None and late.late_by > policy.zero_after:
        return say(N_("{head}: −100% (more than {span} late)"), head=head,
                   span=_span(policy.zero_after))
    capped = late.fraction < late.periods * policy.penalty - 1e-9
    cap = say(N_(", at most {cap}"), cap=_percent(policy.cap)) if capped else ""
    return say(N_("{head}{cost} ({periods} started, {penalty} each{cap})"), head=head,
               cost=_cost(late), periods=_count(late.periods, unit),
               penalty=_percent(policy.penalty), cap=cap)


#: A period's name, as "counted as one {unit}" says it.
_UNITS = {"day": N_("day"), "hour": N_("hour")}
#: "{n} day(s)" for each unit, singular and plural.
_COUNTS = {"day": (N_("{n} day"), N_("{n} days")), "hour": (N_("{n} hour"), N_("{n} hours")),
           "minute": (N_("{n} minute"), N_("{n} minutes")),
           "second": (N_("{n} second"), N_("{n} seconds"))}


def _cost(late: Lateness) -> Words | str:
    return say(N_(": −{percent}"), percent=_percent(late.fraction)) if late.fraction else ""


def _percent(fraction: float) -> str:
    return f"{round(fraction * 100, 4):g}%"


def _count(n: int, unit: str) -> Words:
    one, many = _COUNTS[unit]
    return say(one if n == 1 else many, n=n)


def _span(span: timedelta) -> Words:
    """A length of time in its two largest units that are not zero: "1 day 3 hours"."""
    seconds = math.floor(span.total_seconds())
    parts = []
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1)):
        if seconds >= size:
            parts.append(_count(seconds // size, unit))
            seconds %= size
    if not parts:
        return say(N_("less than a second"))
    # two amounts side by side, in every language: no words of its own to translate
    return parts[0] if len(parts) == 1 else Words("{larger} {smaller}",
                                                  {"larger": parts[0], "smaller": parts[1]})


def _when(moment: datetime) -> str:
    """A due date as the TA wrote it, in its own zone: 2026-10-05 23:59 +08:00."""
    offset = moment.utcoffset() or timedelta(0)
    sign, offset = ("-", -offset) if offset < timedelta(0) else ("+", offset)
    hours, minutes = divmod(int(offset.total_seconds()) // 60, 60)
    clock = "%Y-%m-%d %H:%M:%S" if moment.second else "%Y-%m-%d %H:%M"
    return f"{moment.strftime(clock)} {sign}{hours:02d}:{minutes:02d}"


def penalised(rows: Sequence[StoredResult], dues: Mapping[str, Due | None]
              ) -> list[StoredResult]:
    """`rows` with the late policy applied: the penalty taken off each total, and the sentence
    that says why. Computed afresh at every export and page from the due dates of now (`dues`,
    per homework), never stored, so a moved date or a new extension needs no regrade."""
    out = []
    for row in rows:
        due = dues.get(row.hw)
        if due is None or not row.items:
            out.append(row)
            continue
        found = lateness(due, row.student, parse_time(row.handin.submitted_at), row.handin.late)
        kept = found.apply(row.total, row.max)
        out.append(replace(row, total=kept, penalty=round(row.total - kept, 4),
                           lateness=describe(found)))
    return out
