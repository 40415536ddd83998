"""The words a check shows, in the student's language: one place, so that every text a check
shows is said from the same catalogs as `grade check` and the report (grader/i18n.py)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from gettext import NullTranslations

from grader import i18n
from grader.results import Item

#: The environment variable that names the language when `check` is not given one.
LANG_VARIABLE = i18n.ENV


def language(lang: str | None = None, course: str | None = None) -> str:
    """The language to show a check in: the one asked for, else the student's own
    `TORCHGRADE_LANG`, else the course's `lang` setting, else English."""
    return i18n.chosen(lang, os.environ.get(LANG_VARIABLE), course)


def texts(item: Item, lang: str, catalogs: Sequence[NullTranslations] = ()) -> tuple[str, str]:
    """An item's title and feedback as the student reads them in LANG (the course's catalog
    first: its titles and rubric messages)."""
    return (i18n.translate(item.heading, lang, catalogs),
            i18n.feedback(item.feedback, item.said, lang, catalogs))


def words(text: str, lang: str, catalogs: Sequence[NullTranslations] = ()) -> str:
    """Any other sentence of a check (a note, an error) in LANG."""
    return i18n.text(text, lang, catalogs)
