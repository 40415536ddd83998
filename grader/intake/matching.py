"""Which of an assignment's notebooks a handed-in file is: by its name, else by what it holds.

Names. A student's file ends with the notebook's name after a prefix (`alice_W4_Homework.ipynb`,
an LMS's ids): NAME, or ALIAS for a name in `aliases`. Else the name is loosened (`loose`): case
folded, separators (space - . _) made one, and the marks a copy leaves stripped from its ends:
` (1)`, `-2`, ` 2`, `_v2`, `_final`, `Copy of `, ` - Copy`, `-Copy1`, `_copy`, ` - 副本`. An
underscore and a number (`Part_2`) is never stripped: it is how notebooks number themselves. A
notebook's own name is never stripped either: the file's name is compared at every stage of its
stripping with the notebook's name merely case folded, so `Lab-2` never passes for `Lab-1` and
the digits of W5/W6 are always kept. The longest name that fits wins (`Save_Model` over `Model`).

Content. A notebook is reduced to a `Fingerprint`: its lines (code and markdown cells, whitespace
collapsed, lines under MIN_LINE characters dropped) and the names bound at module level (def,
class, assignment, for and with targets, read with `ast`). A template's *distinctive* lines are
those no other template holds and that are not COMMON boilerplate. `resemblance` is the share
of them a file still carries, scaled by the share of the contract names it defines:

    resemblance = lines * (1 - NAME_SHARE * (1 - names))

so names alone never place a file (W1..b2 are bound by W4's and W5's notebooks, `model` by
anyone's), and a file that keeps the template's lines but none of its names keeps 3/4.

Measured on the bundled assignments (tests/test_intake_matching.py builds every case): the
own notebook's resemblance. No case resembles any other notebook by more than 0.021 (W5's
save solution carries W4's `plt.scatter(x.numpy(), y.numpy())`).

    notebook             solution  filled in  half the  reordered  example submissions
                                   otherwise  markdown
    W4_Homework          0.83      0.94       0.54      0.83       alice bob dave 0.83, carol 0.51
    W5_Regression_Batch  0.86      0.90       0.55      0.86       alice 0.86, bob 0.76, carol 0.83
    W5_Save_Model        0.86      0.90       0.57      0.86       alice 0.86, bob carol 0.57
    W6_MNIST_FC          0.96      0.98       0.83      0.96       alice 0.96, bob dave 0.85,
                                                                   carol 0.058
    written from scratch: W4 with nn.Sequential (and erin's W4) 0 for every notebook; a W6 CNN
    0 for every notebook; W4 in the course's MorvanZhou style (`class Net`, hidden/predict)
    0 for W4 but 0.33 for W5_Save_Model, whose template is that very code.

FLOOR = 0.04 lies above every figure for a notebook that is not the file's (at most 0.021) and
above one stray distinctive line of the smallest template without its names (1/20 * 3/4 =
0.0375), and below the least any example keeps of its own (carol's rewritten W6: 4 of 52
lines and no `model`, 0.058). A file written from scratch in its own way resembles nothing:
only its name places it.
"""

from __future__ import annotations

import ast
import re
import textwrap
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import nbformat

from grader.assignments import Assignment, Notebook
from grader.intake.files import read_notebook
from grader.results import Match

#: Below it a file is "not this notebook"; see the module docstring for the measurements.
FLOOR = 0.04

#: The part of a resemblance the contract names hold: a file that defines none of them keeps
#: three quarters of its line share. Names only ever scale the lines (see `resemblance`).
NAME_SHARE = 0.25

#: A line shorter than this (after normalising) says nothing of which notebook it is from.
MIN_LINE = 8

#: Lines any PyTorch notebook may hold, whatever the homework: never distinctive, even when a
#: single template in the folder holds them.
COMMON = frozenset({
    "import torch", "import numpy as np", "import matplotlib.pyplot as plt",
    "%matplotlib inline", "import torch.nn as nn", "import torch.nn.functional as F",
    "plt.show()",
})

# ---------------------------------------------------------------------------------- names

#: The marks a copy leaves on a (case-folded) file stem, stripped one at a time.
_COPY_PREFIX = re.compile(r"^copy[\s_-]+of[\s_-]+")
_COPY_OF = re.compile(r"^copy[\s_-]+of(?:[\s_-]+|$)|(?:^|[\s_-])copy[\s_-]+of$", re.IGNORECASE)
_COPY_SUFFIXES = tuple(re.compile(p) for p in (
    r"\s*[(（]\d+[)）]$",                           # ` (1)`, `（2）`: browsers, Windows
    r"[\s_.-]+(?:copy|副本)(?:[\s_-]*[(（]?\d+[)）]?)?$",  # ` - Copy`, `_copy`, `-Copy1`, ` - 副本`
    r"[\s_.-]+v\d+$",                              # `_v2`, ` v2`, `-v3`
    r"[\s_.-]+final$",                             # `_final`
    r"[\s-]+\d+$",                                 # `-2`, ` 2`; never `_2` (Part_2 is a name)
))
_SEPARATORS = re.compile(r"[\s._-]+")
_SEPARATOR_CHARS = " \t._-"


def _unify(stem: str) -> str:
    """Separators made one (`_`) and trimmed from the ends."""
    return _SEPARATORS.sub("_", stem).strip("_")


def _stem(filename: str) -> str:
    folded = filename.casefold()
    return folded[: -len(".ipynb")] if folded.endswith(".ipynb") else folded


def _stages(filename: str) -> list[str]:
    """The file's name, case folded and unified, after each copy mark is stripped in turn: the
    first is the name as it is, the last is `loose(filename)`."""
    stem = _stem(filename).strip()
    stages = [_unify(stem)]
    while True:
        stripped = _strip_one(stem)
        if stripped == stem or not _unify(stripped):
            return stages
        stem = stripped
        stages.append(_unify(stem))


def _strip_one(stem: str) -> str:
    """`stem` less one copy mark (the leading `copy of ` first), or `stem` when it has none."""
    shorter = _COPY_PREFIX.sub("", stem, count=1)
    if shorter != stem:
        return shorter
    for pattern in _COPY_SUFFIXES:
        shorter = pattern.sub("", stem, count=1)
        if shorter != stem:
            return shorter.rstrip()
    return stem


def loose(filename: str) -> str:
    """A file name reduced for comparison: case folded, `.ipynb` dropped, separators unified
    to `_`, copy marks stripped (see the module docstring): `W4_Homework (1).ipynb`,
    `Copy of w4-homework_v2.ipynb` -> `w4_homework`. `_2` is kept, so `Part_2` stays itself."""
    return _stages(filename)[-1]


def _keys(notebook: Notebook) -> list[tuple[str, Match]]:
    return [(notebook.name, Match.NAME), *((a, Match.ALIAS) for a in notebook.aliases)]


def by_name(filename: str, notebooks: Sequence[Notebook]) -> tuple[Notebook, Match] | None:
    """The notebook a file is by its name: the file name ends with a notebook's name (NAME) or
    an alias (ALIAS); else some stage of the file's loosened name ends with a name or alias
    case folded and unified (LOOSE). Within a kind, the longest name that fits wins, so a
    notebook whose name ends another's is still told apart. None when no name fits."""
    exact = [(len(key), nb, match) for nb in notebooks for key, match in _keys(nb)
             if filename.endswith(key)]
    if exact:
        _, nb, match = max(exact, key=lambda hit: hit[0])
        return nb, match
    stages = _stages(filename)
    fits = [(len(key), nb) for nb in notebooks for name, _ in _keys(nb)
            for key in [_unify(_stem(name))] if key and any(s.endswith(key) for s in stages)]
    if fits:
        return max(fits, key=lambda hit: hit[0])[1], Match.LOOSE
    return None


def prefix(filename: str, notebook: Notebook) -> str:
    """What precedes the notebook's name (or alias, exact or loose) in the file name, its case
    kept and stripped of separators and of a leading `Copy of`: `alice_W4_Homework (1).ipynb`
    -> `alice`; '' when nothing does, or when no name of the notebook is in the file name."""
    for key, _ in sorted(_keys(notebook), key=lambda k: -len(k[0])):
        if filename.endswith(key):
            return _bare(filename[: -len(key)])
    for key, _ in sorted(_keys(notebook), key=lambda k: -len(k[0])):
        found = list(_loose_pattern(key).finditer(filename))
        if found:
            return _bare(filename[: found[-1].start()])
    return ""


def _loose_pattern(name: str) -> re.Pattern[str]:
    """A notebook name as a case-blind pattern in which any run of separators fits any other."""
    words = [w for w in _SEPARATORS.split(_stem(name)) if w]
    return re.compile(r"[\s._-]+".join(re.escape(w) for w in words), re.IGNORECASE)


def _bare(text: str) -> str:
    """A prefix as a student's name: separators and a `Copy of` at either end trimmed."""
    return _COPY_OF.sub("", text.strip(_SEPARATOR_CHARS)).strip(_SEPARATOR_CHARS)


# -------------------------------------------------------------------------------- content


@dataclass(frozen=True)
class Fingerprint:
    """What of a notebook the matching compares: never the order of its cells."""

    lines: frozenset[str]   # normalised lines of the code and markdown cells
    names: frozenset[str]   # names bound at module level (def, class, assignment, for, with)


_SPACES = re.compile(r"\s+")


def normalise(line: str) -> str:
    """A line as compared: whitespace collapsed and trimmed, nothing else. Comments are kept
    (the template's own, `# TODO: ...`, are part of what it looks like), and so are numbers:
    with them set aside, any notebook's `torch.optim.SGD(net.parameters(), lr=0.01)` would be
    the line of W5's save template, and `torch.manual_seed(1)` that of W5's regression one."""
    return _SPACES.sub(" ", line).strip()


def fingerprint(notebook: nbformat.NotebookNode) -> Fingerprint:
    """The lines and the module-level names of a notebook's code and markdown cells. Any
    notebook gives one: a cell that does not parse is read line by line."""
    lines: set[str] = set()
    names: set[str] = set()
    for kind, source in _cells(notebook):
        lines.update(n for n in map(normalise, source.splitlines()) if len(n) >= MIN_LINE)
        if kind == "code":
            names.update(defined(source))
    return Fingerprint(frozenset(lines), frozenset(names))


def _cells(notebook: nbformat.NotebookNode) -> Iterator[tuple[str, str]]:
    """(kind, source) of each code and markdown cell, whatever shape the file gave them."""
    cells = notebook.get("cells") if isinstance(notebook, dict) else None
    for cell in cells if isinstance(cells, list) else []:
        if not isinstance(cell, dict) or cell.get("cell_type") not in ("code", "markdown"):
            continue
        source = cell.get("source", "")
        if isinstance(source, list):
            source = "".join(s for s in source if isinstance(s, str))
        if isinstance(source, str):
            yield cell["cell_type"], source


#: The lines of a cell that does not parse read one by one for the names they bind.
MAX_LINES_READ = 2000

_PARSE_ERRORS = (SyntaxError, ValueError, RecursionError, MemoryError)


def defined(source: str) -> set[str]:
    """The names a code cell binds at module level. IPython's magics and shell lines (`%`, `!`)
    and a common indent are set aside first; a cell that still does not parse is read line by
    line, each line that parses on its own counting (its first MAX_LINES_READ lines: a file
    built to be slow to read is only matched less well)."""
    for text in (source, _without_magics(source)):
        tree = _parse(text)
        if tree is not None:
            return _bound(tree.body)
    names: set[str] = set()
    for line in source.splitlines()[:MAX_LINES_READ]:
        tree = _parse(line.strip())
        if tree is not None:
            names |= _bound(tree.body)
    return names


def _without_magics(source: str) -> str:
    kept = [line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))]
    return textwrap.dedent("\n".join(kept))


def _parse(text: str) -> ast.Module | None:
    try:
        return ast.parse(text)
    except _PARSE_ERRORS:
        return None


def _bound(body: list[ast.stmt]) -> set[str]:
    """Names bound by these statements at module level: inside a for, with, if or try too,
    never inside a function or class body."""
    names: set[str] = set()
    for node in body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
            continue
        for target in _targets(node):
            names |= _target_names(target)
        for field in ("body", "orelse", "finalbody"):
            names |= _bound(getattr(node, field, []) or [])
        for handler in getattr(node, "handlers", []) or []:
            names |= _bound(handler.body)
    return names


def _targets(node: ast.stmt) -> list[ast.expr]:
    if isinstance(node, ast.Assign):
        return list(node.targets)
    if isinstance(node, ast.AnnAssign | ast.AugAssign | ast.For | ast.AsyncFor):
        return [node.target]
    if isinstance(node, ast.With | ast.AsyncWith):
        return [item.optional_vars for item in node.items if item.optional_vars is not None]
    return []


def _target_names(target: ast.expr) -> set[str]:
    if isinstance(target, ast.Name):
        return {target.id}
    if isinstance(target, ast.Tuple | ast.List):
        return set().union(*(_target_names(t) for t in target.elts))
    if isinstance(target, ast.Starred):
        return _target_names(target.value)
    return set()  # an attribute or a subscript binds no name


class Templates:
    """The templates of every notebook of every assignment in a folder, read once, each with
    its distinctive lines: those no other template holds and that are not COMMON."""

    def __init__(self, assignments: Sequence[Assignment]) -> None:
        self._owner = {nb: a for a in assignments for nb in a.notebooks}
        self.notebooks = tuple(self._owner)
        prints = {nb: fingerprint(read_notebook(nb.template)) for nb in self.notebooks}
        # each distinct template counted once: two notebooks sharing one file keep its lines
        held = Counter(line for lines in {p.lines for p in prints.values()} for line in lines)
        self.distinctive = {nb: frozenset(line for line in p.lines
                                          if held[line] == 1 and line not in COMMON)
                            for nb, p in prints.items()}

    def resemblance(self, print_: Fingerprint, notebook: Notebook) -> float:
        """0..1: the share of the notebook's distinctive template lines the file carries,
        scaled by the share of its contract names it defines (none of them: 3/4 of the lines'
        share); 0 when it carries none of the lines, whatever names it defines."""
        own = self.distinctive.get(notebook, frozenset())
        if not own:
            return 0.0
        lines = len(own & print_.lines) / len(own)
        contract = set(notebook.contract)
        if not contract:
            return lines
        names = len(contract & print_.names) / len(contract)
        return lines * (1 - NAME_SHARE * (1 - names))

    def closest(self, print_: Fingerprint, among: Sequence[Notebook] | None = None
                ) -> tuple[Notebook, float] | None:
        """The notebook (of `among`, by default every notebook of every assignment) the file
        resembles most, with its resemblance; None when nothing reaches FLOOR. On a tie the
        first in `among` wins."""
        scored = [(self.resemblance(print_, nb), -i, nb)
                  for i, nb in enumerate(self.notebooks if among is None else among)]
        if not scored:
            return None
        best, _, notebook = max(scored, key=lambda s: (s[0], s[1]))
        return (notebook, best) if best >= FLOOR else None

    def assignment_of(self, notebook: Notebook) -> Assignment:
        """The assignment a notebook of these templates belongs to."""
        return self._owner[notebook]
