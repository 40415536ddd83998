"""What `torchgrade.check` returns: the items, their points and feedback, shown as a table in a
notebook (`_repr_html_`) and as plain text anywhere else.

The plain text, one line each (the format a script or a test may read):

    W4_Homework.ipynb: the public items of W4
      6/6  The four gradients are right on fresh inputs  all four gradients right (vector biases)
      4/4  The derivatives written in markdown are right  all four expressions right
      note: checked in this kernel, on this machine: nothing is sandboxed or limited
    W4: 10/10 points

An item's line is `score/max  title  feedback` (no feedback when there is none), as `grade check`
prints it; the last line is always the total, `<homework>: <score>/<max> points`.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any

from grader.i18n import N_, say
from grader.results import Item
from grader.text import one_line
from torchgrade.texts import texts, words


@dataclass
class Check:
    """One notebook checked against its homework's public rubric."""

    hw: str
    notebook: str
    items: list[Item]
    notes: list[str] = field(default_factory=list)
    lang: str = "en"
    catalogs: tuple[Any, ...] = ()  # the course's own (its titles and rubric messages)

    @property
    def score(self) -> float:
        return round(sum(item.score for item in self.items), 4)

    @property
    def max(self) -> float:
        return round(sum(item.max for item in self.items), 4)

    @property
    def heading(self) -> str:
        return self._said(say(N_("{notebook}: the public items of {hw}"),
                              notebook=self.notebook, hw=self.hw))

    @property
    def total(self) -> str:
        return self._said(say(N_("{hw}: {score}/{max} points"), hw=self.hw,
                              score=f"{self.score:g}", max=f"{self.max:g}"))

    def _said(self, text: str) -> str:
        return words(text, self.lang, self.catalogs)

    def lines(self) -> list[str]:
        """The plain text, line by line; every text made one printable line, since titles
        and feedback quote what the notebook holds."""
        shown = [one_line(self.heading, 1000)]
        for item in self.items:
            title, feedback = texts(item, self.lang, self.catalogs)
            said = f"  {one_line(feedback, 1000)}" if feedback else ""
            shown.append(f"  {item.score:g}/{item.max:g}  {one_line(title)}{said}")
        shown += [self._said(say(N_("  note: {note}"), note=one_line(self._said(note), 1000)))
                  for note in self.notes]
        return [*shown, self.total]

    def __str__(self) -> str:
        return "\n".join(self.lines())

    __repr__ = __str__

    def _repr_html_(self) -> str:
        """The table a notebook shows: item, points, status, feedback, and the total; every
        text escaped."""
        rows = "".join(self._row(item) for item in self.items)
        notes = "".join(f"<li>{html.escape(self._said(note))}</li>" for note in self.notes)
        return (f'<div class="torchgrade-check"><table>'
                f'<caption style="{LEFT}">{html.escape(self.heading)}</caption>'
                f"<thead><tr>{_cells('th', tuple(map(self._said, HEADERS)))}</tr></thead>"
                f"<tbody>{rows}</tbody>"
                f'<tfoot><tr><th style="{LEFT}">{html.escape(self.hw)}</th>'
                f'<th class="total">{self.score:g}/{self.max:g}</th>'
                f'<th colspan="2" style="{LEFT}">{html.escape(self._said(POINTS))}</th>'
                "</tr></tfoot></table>"
                + (f"<ul>{notes}</ul>" if notes else "") + "</div>")

    def _row(self, item: Item) -> str:
        title, feedback = texts(item, self.lang, self.catalogs)
        points = f"{item.score:g}/{item.max:g}"
        status = self._said(f"item|{item.status}")
        status = str(item.status) if status.startswith("item|") else status
        return (f'<tr class="{html.escape(str(item.status))}">'
                + _cells("td", (title, points, status, feedback)) + "</tr>")


HEADERS = (N_("item"), N_("points"), N_("status"), N_("feedback"))
POINTS = N_("points")
#: Jupyter right-aligns table cells; words read better from the left.
LEFT = "text-align: left; vertical-align: top"


def _cells(tag: str, values: tuple[str, ...]) -> str:
    return "".join(f'<{tag} style="{LEFT}">{html.escape(v)}</{tag}>' for v in values)
