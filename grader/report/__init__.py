"""HTML reports: a page per student, a class page for TAs, and the static site that publishes
them (`grade publish`). Everything here reads stored results; nothing here runs student code."""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from typing import Any

from grader.gradebook import device_of, evidence_json, run_record
from grader.report.pages import class_page, notebook_section, student_page
from grader.report.site import Published, publish
from grader.results import Result


def result_row(result: Result, hw: str) -> dict[str, Any]:
    """A fresh result in the shape of a gradebook row, for a page drawn without a gradebook
    (`grade check --html`)."""
    return {"hw": hw, "student": result.student, "notebook": result.notebook,
            "outcome": result.run.outcome, "reason": result.run.reason, "total": result.total,
            "max": result.max, "wall_seconds": result.run.wall_seconds,
            "device": device_of(result), "record": run_record(result),
            "graded_at": time.time(), "items": [asdict(i) for i in result.items],
            "evidence": json.loads(evidence_json(result.evidence))}


def render_student(result: Result, hw: str, title: str = "") -> str:
    """One student's page for one freshly graded notebook."""
    section = notebook_section(result_row(result, hw), result.run.notebook)
    return student_page(result.student, hw, title or hw, [section])


__all__ = ["Published", "class_page", "notebook_section", "publish", "render_student",
           "result_row", "student_page"]
