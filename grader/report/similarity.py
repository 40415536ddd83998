"""Code similarity across a class's submissions, for the class page.

Each student's code is the code cells of their notebook less what the assignment's template
already holds, so two students who left the template alone do not look alike. Pairs are scored
with copydetect's winnowed k-gram fingerprints (Schleimer, Wilkerson and Aiken, SIGMOD 2003) after
copydetect's own normalisation: every variable, attribute and argument becomes `V`, every function
name `F`, every class name `O`, every string `S`, and whitespace and comments go. Renaming
variables or rewording comments therefore changes nothing; writing the computation differently
does.

copydetect reports matches as character ranges of the code it was given; they are returned
trimmed of surrounding whitespace and merged, for the side-by-side view to highlight.

Nothing here executes a student's notebook: it is read as JSON with nbformat, and its text is only
tokenised.
"""

from __future__ import annotations

import io
import itertools
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import nbformat
import numpy as np
from copydetect import CodeFingerprint, compare_files

from grader.errors import AssignmentError

NOISE_T = 20
"""Shortest match, in normalised characters, that counts (copydetect's noise threshold).

Notebook answers are short: the W4 gradient function normalises to about 110 characters, and
`V=V.V(V@V+V)` is a whole line. PyTorch idioms are shorter still and every student writes them:
`optimizer.zero_grad(); loss.backward(); optimizer.step()` is `V.V()V.V()V.V()`, 15 characters,
and `nn.ReLU(), nn.MaxPool2d(2))` another 15. A threshold at or below those makes independently
written models look alike; 20 (a statement and a half) lets them through while a copied function,
renamed and recommented, still matches from end to end. copydetect's default, 25, is tuned for
whole source files; notebook answers have no characters to spare.
"""

GUARANTEE_T = NOISE_T
"""Shortest match that is certain to be found; equal to NOISE_T, so winnowing keeps every k-gram.

Winnowing (a window of GUARANTEE_T - NOISE_T + 1) only saves work on large files; a notebook's
code is a few hundred normalised characters, and keeping every fingerprint makes short copied
passages as visible as long ones.
"""

MIN_OVERLAP = 2 * NOISE_T
"""Fewest matched normalised characters a reported pair must share.

A student who wrote one line has a score of 1.0 against anyone who wrote the same line; the score
alone would list them. Twice NOISE_T, about three statements, is the least worth a TA's look.
"""

MAX_CODE_CHARS = 200_000
"""A student's code is cut here: far above any honest answer, and it bounds the class page."""


@dataclass(frozen=True)
class Pair:
    """Two students whose code overlaps, with what the side-by-side view shows.

    `a` sorts before `b`. `a_fraction` is the share of `a`'s fingerprinted code found in `b`'s,
    and `b_fraction` the reverse; `score` is the larger, so a student who copied a part of a
    longer answer is found too. Spans are `(start, end)` character offsets into `a_code` and
    `b_code` (the code as compared: line ends normalised, leading newlines dropped), sorted and
    disjoint, ready for `code[start:end]` highlighting.
    """

    a: str
    b: str
    score: float
    a_fraction: float
    b_fraction: float
    a_code: str
    b_code: str
    a_spans: tuple[tuple[int, int], ...]
    b_spans: tuple[tuple[int, int], ...]


def student_code(notebook: Path | TextIO, template: Path | None) -> str:
    """The code a student wrote: code cells, less the template, less IPython magics.

    A code cell equal to a template cell (whitespace aside) is dropped, and so is every line
    equal to a template line (indentation aside): the templates leave `def` lines, docstrings
    and loop headers in the cells students fill in, and every student keeps them, so leaving
    them in would make every pair of students look alike by the template's share. Lines starting
    with `%` or `!` and whole `%%` cells are IPython, not Python. Each kept cell is headed by
    `# cell N` (N counts every cell from 0, as the grading errors do); comments do not count
    towards similarity. An unreadable notebook gives "": it is a student's file, and the
    similarity view must not fail on it.
    """
    cell_set, line_set = _template_parts(template)
    try:
        cells = _code_cells(notebook)
    except Exception:  # noqa: BLE001 - any damage to an untrusted notebook means "no code"
        return ""
    parts = []
    for index, source in cells:
        body = _python_only(source)
        if _normal(body) in cell_set:
            continue
        kept = [line for line in body.splitlines() if line.strip() not in line_set]
        text = "\n".join(kept).strip("\n")
        if text.strip():
            parts.append(f"# cell {index}\n{text}")
    return _normal_newlines("\n\n".join(parts))[:MAX_CODE_CHARS]


def similar_pairs(codes: Mapping[str, str], threshold: float = 0.5, *,
                  noise_t: int = NOISE_T, guarantee_t: int = GUARANTEE_T,
                  min_overlap: int = MIN_OVERLAP) -> list[Pair]:
    """Every pair of students whose score is at least `threshold`, highest score first.

    `codes` maps a student's name to their code, usually `student_code(...)`. A pair is also
    required to share at least `min_overlap` normalised characters (see MIN_OVERLAP).
    """
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be between 0 and 1, not {threshold}")
    if not 1 <= noise_t <= guarantee_t:
        raise ValueError(f"need 1 <= noise_t <= guarantee_t, not {noise_t} and {guarantee_t}")
    prints = {name: _Print.of(code, noise_t, guarantee_t) for name, code in codes.items()}
    pairs = [pair for a, b in itertools.combinations(sorted(prints), 2)
             if (pair := _compare(a, prints[a], b, prints[b], min_overlap)) is not None
             and pair.score >= threshold]
    return sorted(pairs, key=lambda p: (-p.score, p.a, p.b))


@dataclass(frozen=True)
class _Print:
    """A student's code as compared, and its copydetect fingerprint."""

    code: str
    fingerprint: CodeFingerprint

    @classmethod
    def of(cls, code: str, noise_t: int, guarantee_t: int) -> _Print:
        # Pygments drops a leading byte-order mark and leading newlines before tokenising, and
        # copydetect's offsets do not count them: drop them first so its ranges index `code`.
        code = _normal_newlines(code).lstrip("\ufeff\n")
        fingerprint = CodeFingerprint("student.py", noise_t, guarantee_t - noise_t + 1,
                                      language="python", fp=io.StringIO(code))
        return cls(code, fingerprint)

    def spans(self, slices: np.ndarray) -> tuple[tuple[int, int], ...]:
        """copydetect's ranges (2 x N) in `code`, trimmed of whitespace, sorted and merged."""
        merged: list[tuple[int, int]] = []
        for start, end in sorted(self._trim(int(s), int(e))
                                 for s, e in zip(slices[0], slices[1], strict=True)):
            if start >= end:
                continue
            if merged and start <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
            else:
                merged.append((start, end))
        return tuple(merged)

    def _trim(self, start: int, end: int) -> tuple[int, int]:
        """copydetect's range ends where the next compared character begins, so it takes in the
        whitespace and comment lines that follow the match (a `# cell N` header among them)."""
        start, end = max(start, 0), min(end, len(self.code))
        while start < end and self.code[start].isspace():
            start += 1
        while True:
            end = start + len(self.code[start:end].rstrip())
            last = self.code.rfind("\n", start, end)
            if last < 0 or not self.code[last:end].strip().startswith("#"):
                return start, end
            end = last


def _compare(a: str, pa: _Print, b: str, pb: _Print, min_overlap: int) -> Pair | None:
    if not pa.fingerprint.hashes or not pb.fingerprint.hashes:
        return None
    overlap, (fa, fb), (slices_a, slices_b) = compare_files(pa.fingerprint, pb.fingerprint)
    if overlap == 0 or overlap < min_overlap:
        return None
    fa, fb = min(float(fa), 1.0), min(float(fb), 1.0)
    return Pair(a, b, max(fa, fb), fa, fb, pa.code, pb.code,
                pa.spans(slices_a), pb.spans(slices_b))


def _code_cells(path: Path | TextIO) -> list[tuple[int, str]]:
    """(index among all cells, source) of each code cell; raises on anything unreadable."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nb = nbformat.read(path, as_version=4, capture_validation_error={})
    cells = []
    for index, cell in enumerate(nb["cells"]):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        if isinstance(source, list):
            source = "".join(s for s in source if isinstance(s, str))
        if isinstance(source, str):
            cells.append((index, source))
    return cells


def _template_parts(template: Path | None) -> tuple[set[str], set[str]]:
    """The template's code cells (whitespace-normalised) and its non-blank lines (stripped)."""
    if template is None:
        return set(), set()
    try:
        cells = [_python_only(source) for _, source in _code_cells(template)]
    except Exception as exc:  # noqa: BLE001 - nbformat raises many kinds for a damaged file
        raise AssignmentError(f"{template}: the template notebook cannot be read "
                              f"({type(exc).__name__}); fix or replace it") from exc
    lines = {line.strip() for cell in cells for line in cell.splitlines()}
    return {_normal(cell) for cell in cells}, lines - {""}


def _python_only(source: str) -> str:
    """A cell's source without IPython: no `%%` cell, no `%` or `!` line."""
    lines = _normal_newlines(source).splitlines()
    first = next((line.lstrip() for line in lines if line.strip()), "")
    if first.startswith("%%"):
        return ""
    return "\n".join(line for line in lines if not line.lstrip().startswith(("%", "!")))


def _normal(text: str) -> str:
    return " ".join(text.split())


def _normal_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")
