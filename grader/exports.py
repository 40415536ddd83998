"""Exports of the gradebook: CSV for a TA, Gradescope results.json, Canvas grade import.

Each takes what `Gradebook.results()` returns: every student's current result for each notebook
(`grader.results.StoredResult`).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grader import i18n
from grader.i18n import N_
from grader.intake.roster import Roster
from grader.results import Outcome, Override, Result, StoredResult


def as_json(result: Result) -> dict[str, Any]:
    """`grade check --json`: total, max, per item and per run, for a student's own scripts."""
    return {
        "student": result.student,
        "notebook": result.notebook,
        "total": result.total,
        "max": result.max,
        "items": [{"name": i.name, "score": i.score, "max": i.max, "feedback": i.feedback}
                  for i in result.items],
        "run": {"outcome": result.run.outcome, "reason": result.run.reason,
                "seconds": result.run.wall_seconds,
                "device": result.environment.get("gpu") or "cpu",
                "notes": result.run.notes},
    }


@dataclass(frozen=True)
class Options:
    """What an export needs beyond the rows: which homeworks' hidden items are released (and
    which release themselves after the due date), each homework's points, the roster, and
    the language each homework's students read (Gradescope's texts; English by default)."""

    released: Mapping[str, str] = field(default_factory=dict)  # hw -> visible|after_due|hidden
    points: Mapping[str, float] = field(default_factory=dict)  # hw -> points possible
    roster: Roster | None = None
    voices: Mapping[str, i18n.Voice] = field(default_factory=dict)  # hw -> students' language
    lang: str = i18n.DEFAULT                    # a homework's without a voice (no toml left)
    warnings: list[str] = field(default_factory=list)          # filled by the export


def write(fmt: str, rows: list[StoredResult], out: Path, options: Options | None = None
          ) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    writers = {"csv": _csv, "gradescope": _gradescope, "canvas": _canvas}
    return writers[fmt](rows, out, options or Options())


def _csv(rows: list[StoredResult], out: Path, options: Options) -> Path:
    path = out / "gradebook.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["hw", "student", "notebook", "outcome", "total", "max", "item", "score",
                         "item_max", "feedback", "reason", "name", "file", "late",
                         "submitted_at", "machine_score", "override_reason", "override_by",
                         "late_penalty", "lateness"])
        for row in rows:
            base = [row.hw, row.student, row.notebook, str(row.outcome), row.total, row.max]
            handin = row.handin
            tail = [row.reason, handin.display_name, handin.file,
                    "" if handin.late is None else str(handin.late).lower(),
                    handin.submitted_at]
            late = [row.penalty, row.lateness]
            for item in row.items or [None]:
                if item is None:
                    writer.writerow([*base, "", "", "", "", *tail, "", "", "", *late])
                else:
                    decided = item.override
                    writer.writerow([*base, item.name, item.score, item.max, item.feedback,
                                     *tail, "" if item.machine is None else item.machine,
                                     decided.reason if decided else "",
                                     decided.by if decided else "", *late])
    return path


#: Gradescope's visibility of a hidden test: shown, shown by Gradescope after the due date,
#: or kept from the student.
VISIBILITY = {"visible": "visible", "after_due": "after_due_date", "hidden": "hidden"}


def _gradescope(rows: list[StoredResult], out: Path, options: Options) -> Path:
    """One results.json per student and notebook, in Gradescope's autograder format: hidden
    items `hidden` until released (`after_due_date` when the toml releases them after the due
    date), and a leaderboard of the accuracies the grader measured. What a student reads
    there (the item titles, the feedback, the run's outcome and the lateness) is in the
    homework's language."""
    folder = out / "gradescope"
    folder.mkdir(exist_ok=True)
    for row in rows:
        voice = options.voices.get(row.hw) or i18n.Voice(options.lang)
        hidden = VISIBILITY[options.released.get(row.hw, "hidden")]
        tests = [{"name": voice.title(i), "score": i.score, "max_score": i.max,
                  "output": _output(i, voice), "visibility": hidden if i.hidden else "visible"}
                 for i in row.items]
        payload: dict[str, Any] = {"score": row.total, "tests": tests, "output": "\n".join(
            filter(None, [_run_line(row, voice), voice.text(row.lateness)]))}
        board = _leaderboard(row, voice)
        if board:
            payload["leaderboard"] = board
        name = f"{row.student}_{row.notebook.removesuffix('.ipynb')}.results.json"
        name = name.replace("/", "_")  # one file in the folder, whatever the name holds
        (folder / name).write_text(json.dumps(payload, indent=2, ensure_ascii=False),
                                   encoding="utf-8")
    return folder


def _run_line(row: StoredResult, voice: i18n.Voice) -> str:
    """Why the run did not complete ("error: cell 3: NameError: ..."), when it did not."""
    if not row.reason:
        return ""
    return voice.text(i18n.say(N_("{outcome}: {reason}"), outcome=voice.text(str(row.outcome)),
                               reason=voice.text(row.reason)))


def _output(item: Any, voice: i18n.Voice) -> str:
    if item.override is None:
        return voice.feedback(item)
    staff = i18n.say(N_("Score set by course staff: {reason}"), reason=item.override.reason)
    return f"{voice.feedback(item)}\n{voice.text(staff)}".strip()


def _leaderboard(row: StoredResult, voice: i18n.Voice) -> list[dict[str, Any]]:
    """The W6 accuracies, as Gradescope's leaderboard shows them (highest first)."""
    accuracy = row.evidence.get("accuracy")
    if not isinstance(accuracy, dict):
        return []
    board = []
    for key, label in (("test", N_("Test accuracy")), ("holdout", N_("Hold-out accuracy"))):
        value = accuracy.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            board.append({"name": voice.text(label), "value": round(float(value), 4),
                          "order": "desc"})
    return board


CANVAS_COLUMNS = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]


def _canvas(rows: list[StoredResult], out: Path, options: Options) -> Path:
    """A Canvas gradebook import: the five identity columns, then one column per homework
    with the student's points (summed over its notebooks, after overrides and the late
    policy) and a Points Possible row. With a roster, one row per roster student, filled from
    it; a graded student the roster does not know is a warning, not a row."""
    homeworks = sorted({row.hw for row in rows})
    totals: dict[str, dict[str, float]] = {}
    names: dict[str, str] = {}
    for row in rows:
        totals.setdefault(row.student, {}).setdefault(row.hw, 0.0)
        totals[row.student][row.hw] += row.total
        names.setdefault(row.student, row.handin.display_name)
    path = out / "canvas.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow([*CANVAS_COLUMNS, *homeworks])
        writer.writerow(["    Points Possible", "", "", "", "",
                         *[f"{options.points.get(hw, 0.0):g}" for hw in homeworks]])
        for identity, scores in _canvas_rows(totals, names, options):
            writer.writerow([*identity, *[_points(scores, hw) for hw in homeworks]])
    return path


def _canvas_rows(totals: dict[str, dict[str, float]], names: dict[str, str],
                 options: Options) -> list[tuple[list[str], dict[str, float]]]:
    if options.roster is None:
        return [([names.get(s) or s, "", "", s, ""], totals[s]) for s in sorted(totals)]
    scores: dict[str, dict[str, float]] = {}
    for student in sorted(totals):
        person = options.roster.find(student, names.get(student, ""))
        if person is None:
            options.warnings.append(f"{student} was graded but is not on the roster: left out "
                                    "of the Canvas import")
            continue
        for hw, value in totals[student].items():
            scores.setdefault(person.id, {})[hw] = scores.get(person.id, {}).get(hw, 0) + value
    return [([p.name, p.id, p.sis_user_id, p.sis_login_id, p.section], scores.get(p.id, {}))
            for p in options.roster.people]


def _points(scores: dict[str, float], hw: str) -> str:
    """A score as Canvas reads it; blank for nothing graded (Canvas leaves it ungraded)."""
    return f"{scores[hw]:g}" if hw in scores else ""


def summary(rows: list[StoredResult], orphaned: Sequence[Override] = ()) -> list[str]:
    """The gradebook as text: scores, per-item pass rates, and what went wrong."""
    lines: list[str] = []
    for notebook in sorted({(r.hw, r.notebook) for r in rows}):
        group = [r for r in rows if (r.hw, r.notebook) == notebook]
        lines.append(f"{notebook[0]} {notebook[1]}: {len(group)} submissions")
        for row in group:
            lines.append(f"  {row.student:<16} {row.total:g}/{row.max:g}  {row.outcome}")
        passed: dict[str, list[bool]] = {}
        for row in group:
            for item in row.items:
                passed.setdefault(item.name, []).append(item.score >= item.max)
        for name, results in passed.items():
            lines.append(f"  item {name}: full marks {sum(results)} of {len(results)}")
        for outcome in [o for o in Outcome if o != Outcome.COMPLETED]:
            hit = [r.student for r in group if r.outcome == outcome]
            if hit:
                lines.append(f"  {len(hit)} of {len(group)} {outcome}"
                             f"{'ed' if outcome == Outcome.ERROR else ''}: {', '.join(hit)}")
    return lines + _override_lines(rows, orphaned)


def _override_lines(rows: list[StoredResult], orphaned: Sequence[Override]) -> list[str]:
    """The TA's decisions a regrade has since questioned: an override whose item the machine
    now scores differently, and one whose item or result is gone."""
    lines = []
    for row in rows:
        for item in row.items:
            if item.drifted and item.override is not None:
                lines.append(f"override under a changed machine score: {row.hw} {row.student} "
                             f"{row.notebook} {item.name}: the TA gave {item.score:g} when the "
                             f"machine gave {item.override.machine:g}; it now gives "
                             f"{item.machine:g}")
    for o in orphaned:
        lines.append(f"override not applied (its item or result is gone): {o.hw} {o.student} "
                     f"{o.notebook} {o.item} = {o.score:g}")
    return lines
