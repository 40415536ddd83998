"""HTML reports: a page per student, a class page for TAs, and the static site that publishes
them (`grade publish`). Everything here reads stored results; nothing here runs student code."""

from __future__ import annotations

from grader.report.pages import class_page, notebook_section, student_page
from grader.report.site import Published, publish
from grader.results import StoredResult


def render_student(result: StoredResult, notebook_text: str | None, title: str = "") -> str:
    """One student's page for one result (a fresh one, made with `gradebook.as_stored`, for
    `grade check --html`)."""
    section = notebook_section(result, notebook_text)
    return student_page(result.student, result.hw, title or result.hw, [section])


__all__ = ["Published", "class_page", "notebook_section", "publish", "render_student",
           "student_page"]
