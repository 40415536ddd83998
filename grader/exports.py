"""Exports of the gradebook: CSV for a TA, Gradescope results.json, Canvas grade import.

Each takes what `Gradebook.results()` returns: every student's current result for each notebook
(`grader.results.StoredResult`).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

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


def write(fmt: str, rows: list[StoredResult], out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    return {"csv": _csv, "gradescope": _gradescope, "canvas": _canvas}[fmt](rows, out)


def _csv(rows: list[StoredResult], out: Path) -> Path:
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


def _gradescope(rows: list[StoredResult], out: Path) -> Path:
    folder = out / "gradescope"
    folder.mkdir(exist_ok=True)
    for row in rows:
        tests = [{"name": i.heading, "score": i.score, "max_score": i.max,
                  "output": i.feedback,
                  "visibility": "after_published" if i.hidden else "visible"}
                 for i in row.items]
        payload = {"score": row.total, "tests": tests,
                   "output": f"{row.outcome}: {row.reason}" if row.reason else ""}
        name = f"{row.student}_{row.notebook.removesuffix('.ipynb')}.results.json"
        name = name.replace("/", "_")  # one file in the folder, whatever the name holds
        (folder / name).write_text(json.dumps(payload, indent=2), encoding="utf-8")
    return folder


def _canvas(rows: list[StoredResult], out: Path) -> Path:
    """One column per homework, the student's points summed over its notebooks."""
    totals: dict[str, dict[str, float]] = {}
    for row in rows:
        totals.setdefault(row.student, {}).setdefault(row.hw, 0.0)
        totals[row.student][row.hw] += row.total
    homeworks = sorted({row.hw for row in rows})
    path = out / "canvas.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Student", "ID", "SIS User ID", "SIS Login ID", "Section", *homeworks])
        for student in sorted(totals):
            writer.writerow([student, "", "", student, "",
                             *[f"{totals[student].get(hw, 0.0):g}" for hw in homeworks]])
    return path


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
