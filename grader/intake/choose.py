"""Which handed-in file is which notebook, for each student.

Names first: the notebook's own name, an alias, then the name with copy suffixes and case set
aside. A file no name places is read: the share of a template's distinctive lines it still
carries and the names it defines (matching.py) place it, above a floor. A file below the floor
for every notebook of this homework that resembles another homework's notebook is "not this
homework", said with the notebook it resembles; one that resembles nothing is still graded when
the homework has one notebook (written from scratch, it is judged by what it computes).

For a homework of one notebook, "not this homework" needs more than a trace: the file is named
for another homework's notebook, or resembles it by at least ELSEWHERE (every bundled notebook
kept from its template scores above 0.5 for its own; a W4 written in the course's own style
scores 0.33 for W5's save template, whose code it shares, and is still graded as W4).

Two candidates for one notebook: the latest attempt counts, then the better match, and the
report lists the others.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from grader import assignments
from grader.assignments import Assignment, Notebook
from grader.errors import GraderError
from grader.i18n import N_, say
from grader.intake import lms, matching
from grader.intake.files import (
    PLAIN_FILES_ONLY,
    RefusedFile,
    content_hash,
    problem_with,
    read_notebook,
)
from grader.intake.records import Rejected, Submission
from grader.results import Handin, Match

#: The resemblance to another homework's notebook that makes a file "not this homework" when
#: its name says nothing (see the module docstring).
ELSEWHERE = 0.45

#: How good a match is, best first.
MATCH_RANK = {Match.NAME: 0, Match.ALIAS: 1, Match.LOOSE: 2, Match.CONTENT: 3, Match.ONLY: 4}


class UnreadableDownload(GraderError):
    """The zip given to `grade` cannot be unpacked at all."""

    exit_code = 2


@dataclass(frozen=True)
class Candidate:
    """One notebook file of one attempt, and where it was placed."""

    attempt: lms.Attempt
    rank: int                      # the attempt's place among the student's, latest highest
    path: Path
    name: str                      # as the student named it
    notebook: Notebook | None = None
    match: Match = Match.ONLY
    resembles: str = ""            # "W4_Homework.ipynb (W4)": another homework it resembles
    wrong: bool = False            # named for, or plainly, another homework's notebook


def submissions(attempts: Iterable[lms.Attempt], assignment: Assignment
                ) -> tuple[list[Submission], list[Rejected]]:
    """The submissions and rejections of every student in `attempts`."""
    by_student: dict[str, list[lms.Attempt]] = defaultdict(list)
    for attempt in attempts:
        by_student[attempt.student].append(attempt)
    found: list[Submission] = []
    rejected: list[Rejected] = []
    for student in sorted(by_student):
        subs, bad = _student(student, by_student[student], assignment)
        found += subs
        rejected += bad
    return found, rejected


def other_notebooks(assignment: Assignment) -> tuple[Notebook, ...]:
    """The notebooks of every other assignment beside this one."""
    return tuple(nb for other in _assignments(assignment.folder.parent)
                 if other.folder != assignment.folder for nb in other.notebooks)


def _student(student: str, attempts: list[lms.Attempt], assignment: Assignment
             ) -> tuple[list[Submission], list[Rejected]]:
    ordered = sorted(attempts, key=_when)
    latest = ordered[-1]
    if latest.problems:
        notebook = _named_in(latest, assignment)
        return [], [Rejected(student, notebook, Path(student), latest.problems[0],
                             _handin(latest, "", Match.NAME))]
    candidates = [_place(Candidate(a, rank, path, name), assignment)
                  for rank, a in enumerate(ordered) if not a.problems
                  for path, name in a.files if name.lower().endswith(".ipynb")]
    picked = _pick(candidates, assignment)
    if not picked:
        return [], _not_this_homework(student, candidates, assignment)
    found: list[Submission] = []
    rejected: list[Rejected] = []
    for nb, pick in picked.items():
        others = [c for c in candidates if c is not pick and c.notebook == nb]
        made = _submission(student, nb, pick, others)
        if isinstance(made, Submission):
            found.append(made)
        else:
            rejected.append(made)
    return found, rejected


def _when(attempt: lms.Attempt) -> tuple[tuple[object, ...], float]:
    """Orders a student's attempts: the LMS's order, then the time submitted."""
    at = attempt.submitted_at
    return attempt.order, at.timestamp() if at else float("-inf")


def _place(candidate: Candidate, assignment: Assignment) -> Candidate:
    """Where a file goes: by name, else by content, else nowhere (its resemblance kept)."""
    hit = matching.by_name(candidate.name, assignment.notebooks)
    if hit is not None:
        return _with(candidate, notebook=hit[0], match=hit[1])
    templates = _templates(assignment.folder.parent)
    try:
        print_ = matching.fingerprint(read_notebook(candidate.path))
    except Exception:  # noqa: BLE001 - an unreadable file is placed by nothing; intake says why
        return candidate
    mine = templates.closest(print_, assignment.notebooks)
    if mine is not None:
        return _with(candidate, notebook=mine[0], match=Match.CONTENT)
    named = matching.by_name(candidate.name, other_notebooks(assignment))
    elsewhere = templates.closest(print_)
    if elsewhere is None:
        return _with(candidate, wrong=named is not None,
                     resembles=_of(named[0], assignment) if named else "")
    return _with(candidate, wrong=named is not None or elsewhere[1] >= ELSEWHERE,
                 resembles=_of(elsewhere[0], assignment))


def _of(notebook: Notebook, assignment: Assignment) -> str:
    """A notebook of another homework, as a reason names it: `W4_Homework.ipynb (W4)`."""
    owner = next((a for a in _assignments(assignment.folder.parent)
                  if notebook in a.notebooks), None)
    return f"{notebook.name} ({owner.name})" if owner else notebook.name


def _with(candidate: Candidate, **changes: object) -> Candidate:
    return replace(candidate, **changes)  # type: ignore[arg-type]


def _pick(candidates: Sequence[Candidate], assignment: Assignment) -> dict[Notebook, Candidate]:
    """Each notebook with the file graded as it: the latest attempt, then the best match. A
    homework of one notebook takes the latest file that resembles no other homework."""
    picked: dict[Notebook, Candidate] = {}
    for nb in assignment.notebooks:
        placed = [c for c in candidates if c.notebook == nb]
        if placed:
            picked[nb] = max(placed, key=lambda c: (c.rank, -MATCH_RANK[c.match]))
    if not picked and len(assignment.notebooks) == 1:
        loose = [c for c in candidates if not c.wrong]
        if loose:
            only = assignment.notebooks[0]
            picked[only] = _with(max(loose, key=lambda c: c.rank), notebook=only,
                                 match=Match.ONLY)
    return picked


def _not_this_homework(student: str, candidates: Sequence[Candidate],
                       assignment: Assignment) -> list[Rejected]:
    """Files handed in that are none of this homework's notebooks, each with the reason."""
    names = ", ".join(nb.name for nb in assignment.notebooks)
    rejected = []
    for c in candidates:
        reason = (say(N_("not this homework: {name} resembles {resembles}, not {names}"),
                      name=c.name, resembles=c.resembles, names=names)
                  if c.wrong and c.resembles else
                  say(N_("{name} is none of {hw}'s notebooks by its name, and too little of a "
                         "template is left in it to tell which: name it after one ({names})"),
                      name=c.name, hw=assignment.name, names=names))
        rejected.append(Rejected(student, _only(assignment), c.path, reason,
                                 _handin(c.attempt, c.name, Match.CONTENT)))
    return rejected


def _submission(student: str, nb: Notebook, pick: Candidate,
                others: Sequence[Candidate]) -> Submission | Rejected:
    handin = _handin(pick.attempt, pick.name, pick.match, others)
    extra = tuple(p for p, name in pick.attempt.files if not name.lower().endswith(".ipynb"))
    reason = problem_with(pick.path)
    if not reason:
        try:
            return Submission(student, nb, pick.path, extra, content_hash(pick.path, list(extra)),
                              handin)
        except RefusedFile as exc:
            reason = f"{exc}; {PLAIN_FILES_ONLY}"
    return Rejected(student, nb.name, pick.path, reason, handin)


def _handin(attempt: lms.Attempt, name: str, match: Match,
            others: Sequence[Candidate] = ()) -> Handin:
    at = attempt.submitted_at
    return Handin(file=name, match=match, display_name=attempt.display_name,
                  source=attempt.source, submitted_at=at.isoformat() if at else "",
                  late=attempt.late, others=tuple(_shown(c, attempt) for c in others),
                  skipped=tuple(attempt.skipped))


def _shown(other: Candidate, picked: lms.Attempt) -> str:
    """An other candidate as the report lists it: its name, and its attempt's time when it
    came from another attempt."""
    at = other.attempt.submitted_at
    if other.attempt is picked:
        return other.name
    return f"{other.name} ({at.isoformat(sep=' ') if at else 'an earlier attempt'})"


def _named_in(attempt: lms.Attempt, assignment: Assignment) -> str:
    """The notebook an attempt's file names point at, for a rejection's row."""
    for _, name in attempt.files:
        hit = matching.by_name(name, assignment.notebooks)
        if hit is not None:
            return hit[0].name
    return _only(assignment)


def _only(assignment: Assignment) -> str:
    return assignment.notebooks[0].name if len(assignment.notebooks) == 1 else ""


@functools.lru_cache(maxsize=4)
def _assignments(folder: Path) -> tuple[Assignment, ...]:
    return tuple(assignments.all_assignments(folder))


@functools.lru_cache(maxsize=4)
def _templates(folder: Path) -> matching.Templates:
    """Every template under the assignments folder, read once per process."""
    return matching.Templates(_assignments(folder))
