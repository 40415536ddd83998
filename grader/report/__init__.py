"""HTML reports: a page per student, a class page for TAs, and the static site that publishes
them (`grade publish`). Everything here reads stored results; nothing here runs student code."""

from __future__ import annotations

from pathlib import Path

from grader import i18n
from grader.report.pages import class_page, notebook_section, student_page
from grader.report.site import Published, publish
from grader.results import StoredResult


def render_student(result: StoredResult, notebook_text: str | None, title: str = "",
                   lang: str = i18n.DEFAULT, folder: Path | None = None) -> str:
    """One student's page for one result (a fresh one, made with `gradebook.as_stored`, for
    `grade check --html`), in LANG; FOLDER is the assignment's, for its course catalog (the
    bundled assignment of the result's homework when None)."""
    lang = i18n.language(lang)
    section = notebook_section(result, notebook_text, lang=lang)
    if folder is None and lang != i18n.DEFAULT:
        folder = _bundled(result.hw)
    return student_page(result.student, result.hw, title or result.hw, [section], lang=lang,
                        catalogs=i18n.course_catalogs(folder, lang))


def _bundled(hw: str) -> Path | None:
    """The bundled assignment's folder for HW, if there is one."""
    from grader import assignments
    from grader.errors import GraderError

    try:
        return assignments.find(hw).folder
    except GraderError:
        return None


__all__ = ["Published", "class_page", "notebook_section", "publish", "render_student",
           "student_page"]
