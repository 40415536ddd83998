"""The executed notebook, as the report shows it: rendered cells, failing cells' tracebacks, and
the time each cell took.

The notebook came back from the sandbox, so it is read as untrusted text: a notebook that does
not parse is reported as such, and its rendering passes through the sanitiser.
"""

from __future__ import annotations

import logging
import re
from functools import lru_cache
from html import escape
from typing import Any

import nbformat
from nbconvert import HTMLExporter

from grader import i18n
from grader.i18n import N_
from grader.report import sanitize

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
TRAINING = re.compile(r"\.backward\s*\(|\.step\s*\(\s*\)|\bfor\s+epoch\b|\bepochs?\s*=|\.fit\s*\(")


def parse(text: str | None) -> nbformat.NotebookNode | None:
    if not text:
        return None
    try:
        return nbformat.reads(text, as_version=4)
    except Exception:  # noqa: BLE001 - whatever came back from the sandbox
        return None


@lru_cache(maxsize=1)
def _exporter() -> HTMLExporter:
    exporter = HTMLExporter(template_name="basic")
    exporter.log.setLevel(logging.ERROR)  # e.g. "alternative text is missing": not for TAs
    return exporter


def render(nb: nbformat.NotebookNode | None, lang: str = i18n.DEFAULT) -> str:
    """The executed notebook as a sanitised HTML fragment (no scripts, no fetches); what
    stands for it when there is none, in LANG."""
    if nb is None:
        missing = i18n.translate(N_("The executed notebook is not available."), lang)
        return f"<p>{escape(missing)}</p>"
    try:
        body, _ = _exporter().from_notebook_node(nb)
    except Exception as exc:  # noqa: BLE001 - a malformed notebook still gets a report
        said = i18n.say(N_("The notebook could not be rendered ({error})."),
                        error=type(exc).__name__)
        return f"<p>{escape(said.render(lang))}</p>"
    return sanitize.clean(body)


def tracebacks(nb: nbformat.NotebookNode | None) -> list[dict[str, Any]]:
    """Every error output: cell index, exception, and the traceback as plain text."""
    found = []
    for index, cell in enumerate(nb.cells if nb is not None else []):
        for output in cell.get("outputs", []) if cell.get("cell_type") == "code" else []:
            if output.get("output_type") != "error":
                continue
            lines = output.get("traceback") or []
            text = "\n".join(ANSI.sub("", str(line)) for line in lines)
            found.append({"index": index, "ename": str(output.get("ename", "")),
                          "evalue": str(output.get("evalue", ""))[:2000],
                          "traceback": text[-8000:]})
    return found


def timings(nb: nbformat.NotebookNode | None, cells: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The run record's cells, each with its first source line and whether it trains a model
    (a backward pass, an optimiser step or an epoch loop)."""
    sources = [c.get("source", "") for c in nb.cells] if nb is not None else []
    rows = []
    for cell in cells:
        index = int(cell.get("index", -1))
        source = str(sources[index]) if 0 <= index < len(sources) else ""
        first = next((line for line in source.splitlines() if line.strip()), "")
        rows.append({**cell, "first_line": first[:80], "training": bool(TRAINING.search(source))})
    return rows
