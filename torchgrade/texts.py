"""The words a check shows of an item, in the student's language: one function, so that
translating them is one change."""

from __future__ import annotations

import os

from grader.results import Item

#: The environment variable that names the language when `check` is not given one.
LANG_VARIABLE = "TORCHGRADE_LANG"
DEFAULT_LANG = "en"


def language(lang: str | None = None) -> str:
    """The language to show a check in: the one asked for, else `TORCHGRADE_LANG`, else
    English."""
    return lang or os.environ.get(LANG_VARIABLE) or DEFAULT_LANG


def texts(item: Item, lang: str) -> tuple[str, str]:
    """An item's title and feedback as the student reads them in `lang`. Every text a check
    shows of an item comes from here."""
    return item.heading, item.feedback
