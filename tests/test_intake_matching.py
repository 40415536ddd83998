"""Intake matching: which notebook a handed-in file is, by its name and else by what it holds.

The content cases are built from the bundled templates, solutions and example submissions the
way students change them (answer cells filled in their own way, markdown deleted, cells
reordered, a notebook written from scratch), so FLOOR is checked against what it was measured
on; the figures are in grader/intake/matching.py's docstring.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path

import nbformat
import pytest

from grader import assignments
from grader.assignments import Assignment, Notebook
from grader.intake import matching
from grader.intake.files import read_notebook
from grader.intake.matching import FLOOR, Fingerprint, Templates
from grader.results import Match

SUBMISSIONS = Path(__file__).resolve().parent.parent / "submissions"
ALL = assignments.all_assignments()
W4, W5, W6 = (assignments.find(hw) for hw in ("W4", "W5", "W6"))
HOMEWORK, = W4.notebooks
REGRESSION, SAVE = W5.notebooks
MNIST, = W6.notebooks
EVERY = (*W4.notebooks, *W5.notebooks, *W6.notebooks)


@pytest.fixture(scope="module")
def templates() -> Templates:
    return Templates(ALL)


def entry(name: str, *aliases: str, contract: tuple[str, ...] = ()) -> Notebook:
    """A notebook entry for the name tests: only its names matter there."""
    return Notebook(name=name, aliases=aliases, template=Path(name), solution=Path(name),
                    points=1.0, contract=contract, files=())


def notebook(*cells: tuple[str, str]) -> nbformat.NotebookNode:
    """A notebook of (kind, source) cells."""
    make = {"code": nbformat.v4.new_code_cell, "markdown": nbformat.v4.new_markdown_cell}
    nb = nbformat.v4.new_notebook()
    nb.cells = [make[kind](source) for kind, source in cells]
    return nb


# ------------------------------------------------------------------------------------ names


@pytest.mark.parametrize("copied", [
    "W4_Homework (1).ipynb", "W4_Homework-2.ipynb", "w4_homework_v2.ipynb",
    "Copy of W4_Homework.ipynb", "W4_Homework - Copy.ipynb", "W4_Homework_copy.ipynb",
    "W4_Homework-Copy1.ipynb", "W4_Homework_final.ipynb", "W4 Homework v2 (3).ipynb",
    "W4-HOMEWORK.IPYNB", "W4_Homework - 副本.ipynb", "W4_Homework（2）.ipynb",
    "Copy of W4_Homework (1) - Copy.ipynb", "W4_Homework 2.ipynb",
])
def test_loose_sets_copy_marks_case_and_separators_aside(copied):
    assert matching.loose(copied) == matching.loose("W4_Homework.ipynb")


@pytest.mark.parametrize(("one", "other"), [
    ("W5_Save_Model.ipynb", "W6_Save_Model.ipynb"),  # the week is the name, never a copy mark
    ("W4_Homework.ipynb", "W5_Homework.ipynb"),
    ("Part_1.ipynb", "Part_2.ipynb"),                # `_2` numbers notebooks; it is kept
    ("W6.ipynb", "W.ipynb"),
    ("W4_Homework.ipynb", "W4_Homework_1.ipynb"),
])
def test_loose_keeps_the_digits_of_a_name(one, other):
    assert matching.loose(one) != matching.loose(other)


@pytest.mark.parametrize(("filename", "expected", "student"), [
    ("W4_Homework.ipynb", Match.NAME, ""),
    ("alice_W4_Homework.ipynb", Match.NAME, "alice"),
    ("W4_Homework (1).ipynb", Match.LOOSE, ""),
    ("W4_Homework-2.ipynb", Match.LOOSE, ""),
    ("w4_homework_v2.ipynb", Match.LOOSE, ""),
    ("w4_homework.ipynb", Match.LOOSE, ""),
    ("Copy of W4_Homework.ipynb", Match.NAME, ""),  # the name whole after the mark
    ("alice_W4_Homework (1).ipynb", Match.LOOSE, "alice"),
    ("Copy of Alice_W4_Homework.ipynb", Match.NAME, "Alice"),
    ("2100012345_Copy of w4-homework.ipynb", Match.LOOSE, "2100012345"),
    ("smithjohn_LATE_1234_5678_W4_Homework-1.ipynb", Match.LOOSE, "smithjohn_LATE_1234_5678"),
])
def test_w4_by_name_and_the_student_before_it(filename, expected, student):
    assert matching.by_name(filename, EVERY) == (HOMEWORK, expected)
    assert matching.prefix(filename, HOMEWORK) == student


def test_an_alias_is_matched_exactly_and_loosely():
    assert matching.by_name("bob_W6_Save_Model.ipynb", W5.notebooks) == (SAVE, Match.ALIAS)
    assert matching.prefix("bob_W6_Save_Model.ipynb", SAVE) == "bob"
    assert matching.by_name("W6_Save_Model (2).ipynb", W5.notebooks) == (SAVE, Match.LOOSE)
    assert matching.prefix("W6_Save_Model (2).ipynb", SAVE) == ""
    assert matching.by_name("CNN.ipynb", EVERY) == (MNIST, Match.ALIAS)


@pytest.mark.parametrize("filename", [
    "W5_Homework.ipynb",        # the W4 homework as the 2021 and 2022 terms named it
    "W6_MNIST_FC.ipynb",        # another week's notebook, not W5's W6_Save_Model alias
    "W6_MNIST_FC (1).ipynb",
    "作业4 (1).ipynb",
    "Regression.ipynb", "save.ipynb", ".ipynb", " (1).ipynb",
])
def test_no_w5_notebook_by_these_names(filename):
    assert matching.by_name(filename, W5.notebooks) is None
    assert matching.prefix(filename, REGRESSION) == matching.prefix(filename, SAVE) == ""


def test_the_w4_homework_named_for_w5_is_no_notebook_by_name():
    assert matching.by_name("W5_Homework.ipynb", EVERY) is None
    assert matching.by_name("W6_MNIST_FC.ipynb", EVERY) == (MNIST, Match.NAME)


def test_a_unicode_name_is_compared_without_a_crash():
    assert matching.loose("作业4 (1).ipynb") == matching.loose("作业4.ipynb")
    assert matching.by_name("作业4 (1).ipynb", [entry("作业4.ipynb")])[1] is Match.LOOSE
    assert matching.by_name("学生_作业4.ipynb", [entry("作业4.ipynb")])[1] is Match.NAME
    assert matching.prefix("学生_作业4 (1).ipynb", entry("作业4.ipynb")) == "学生"


def test_the_longest_name_that_fits_wins():
    model, save = entry("Model.ipynb"), entry("Save_Model.ipynb")
    assert matching.by_name("alice_Save_Model.ipynb", [model, save])[0] is save
    assert matching.by_name("alice_save-model (1).ipynb", [model, save])[0] is save
    assert matching.by_name("alice_model (1).ipynb", [save, model])[0] is model


def test_a_notebook_whose_own_name_ends_in_a_number_keeps_it():
    one, two = entry("Lab-1.ipynb"), entry("Lab-2.ipynb")
    assert matching.by_name("Lab-2 (1).ipynb", [one, two]) == (two, Match.LOOSE)
    assert matching.by_name("lab_1-3.ipynb", [two, one]) == (one, Match.LOOSE)
    assert matching.by_name("Lab-3.ipynb", [one, two]) is None


def test_an_exact_name_beats_a_loose_one():
    plain, upper = entry("hw.ipynb"), entry("HW (1).ipynb")
    assert matching.by_name("HW (1).ipynb", [plain, upper]) == (upper, Match.NAME)


# ---------------------------------------------------------------------------------- content
# The ways students change a notebook, each applied to a real one.


def filled_differently(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The template with every TODO, `raise NotImplementedError` and `pass` line replaced by
    the student's own code, the rest kept."""
    out = copy.deepcopy(nb)
    for i, cell in enumerate(out.cells):
        if cell.cell_type == "code":
            cell.source = "\n".join(_answer(line, i, j)
                                    for j, line in enumerate(cell.source.splitlines()))
    return out


def _answer(line: str, i: int, j: int) -> str:
    if "TODO" not in line and "NotImplementedError" not in line and line.strip() != "pass":
        return line
    indent = line[: len(line) - len(line.lstrip())]
    return f"{indent}mine_{i}_{j} = my_step_{i}(x, {j})"


def markdown_halved(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Every other markdown cell deleted, the first among them."""
    out = copy.deepcopy(nb)
    gone = [i for i, cell in enumerate(out.cells) if cell.cell_type == "markdown"][::2]
    out.cells = [cell for i, cell in enumerate(out.cells) if i not in gone]
    return out


def reordered(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    out = copy.deepcopy(nb)
    out.cells = out.cells[::-1]
    return out


SCRATCH_W4 = """import torch
import torch.nn as nn
torch.manual_seed(1)
x = torch.unsqueeze(torch.linspace(-1, 1, 100), dim=1)
y = x.pow(2) + 0.2*torch.rand(x.size())
net = nn.Sequential(nn.Linear(1, 20), nn.Sigmoid(), nn.Linear(20, 1))
opt = torch.optim.SGD(net.parameters(), lr=0.01)
for step in range(2000):
    loss = ((net(x) - y) ** 2).sum()
    opt.zero_grad()
    loss.backward()
    opt.step()
s = torch.sigmoid(net[0](x))
G = 2 * (net(x) - y)
W2_grad, b2_grad = s.T @ G, G.sum(0)
dH = (G @ net[2].weight) * s * (1 - s)
W1_grad, b1_grad = x.T @ dH, dH.sum(0)
print((W2_grad.T - net[2].weight.grad).abs().max())
"""

SCRATCH_W6 = """import torch
import torch.nn as nn
from torchvision import datasets, transforms
loader = torch.utils.data.DataLoader(
    datasets.MNIST('data', train=True, download=True, transform=transforms.ToTensor()),
    batch_size=64, shuffle=True)
model = nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.Flatten(), nn.Linear(32*26*26, 10))
opt = torch.optim.Adam(model.parameters())
for images, labels in loader:
    loss = nn.functional.cross_entropy(model(images), labels)
    opt.zero_grad()
    loss.backward()
    opt.step()
"""


def from_scratch(code: str) -> Callable[[], nbformat.NotebookNode]:
    return lambda: notebook(("markdown", "# 作业 homework\nMy own code."), ("code", code))


def real(path: Path) -> Callable[[], nbformat.NotebookNode]:
    return lambda: read_notebook(path)


def changed(path: Path, change: Callable[[nbformat.NotebookNode], nbformat.NotebookNode]
            ) -> Callable[[], nbformat.NotebookNode]:
    return lambda: change(read_notebook(path))


def _examples() -> list[tuple[str, Notebook]]:
    """Every example submission but erin's W4 (kept apart below) with its notebook."""
    found = []
    for path in sorted(SUBMISSIONS.glob("*.ipynb")):
        hit = matching.by_name(path.name, EVERY)
        assert hit is not None, path.name
        if not path.name.startswith("erin_"):
            found.append((path.name, hit[0]))
    return found


KEPT = {  # each a notebook that still carries its template, and the notebook it is
    **{f"{nb.name} solution": (real(nb.solution), nb) for nb in EVERY},
    **{f"{nb.name} filled in differently": (changed(nb.template, filled_differently), nb)
       for nb in EVERY},
    **{f"{nb.name} half its markdown deleted": (changed(nb.solution, markdown_halved), nb)
       for nb in EVERY},
    **{f"{nb.name} reordered": (changed(nb.solution, reordered), nb) for nb in EVERY},
    **{name: (real(SUBMISSIONS / name), nb) for name, nb in _examples()},
}


@pytest.mark.parametrize("case", sorted(KEPT))
def test_a_notebook_resembles_its_own_template_above_the_floor_and_most(templates, case):
    build, own = KEPT[case]
    print_ = matching.fingerprint(build())
    mine = templates.resemblance(print_, own)
    others = {nb.name: templates.resemblance(print_, nb) for nb in EVERY if nb != own}
    assert mine >= FLOOR, (case, mine)
    assert all(theirs < FLOOR for theirs in others.values()), (case, others)
    assert templates.closest(print_) == (own, mine)


def test_reordering_the_cells_changes_nothing():
    for nb in EVERY:
        solution = read_notebook(nb.solution)
        assert matching.fingerprint(reordered(solution)) == matching.fingerprint(solution)


@pytest.mark.parametrize("case", sorted(c for c in KEPT if KEPT[c][1] == HOMEWORK))
def test_a_w4_notebook_handed_in_for_w5_or_w6_is_not_theirs(templates, case):
    print_ = matching.fingerprint(KEPT[case][0]())
    for other in (REGRESSION, SAVE, MNIST):
        assert templates.resemblance(print_, other) < FLOOR
    assert templates.closest(print_, W5.notebooks) is None
    assert templates.closest(print_, W6.notebooks) is None
    closest = templates.closest(print_)
    assert closest is not None and closest[0] == HOMEWORK
    assert templates.assignment_of(closest[0]) == W4


@pytest.mark.parametrize(("path", "renamed", "expected"), [
    *[(p, "Regression.ipynb", REGRESSION) for p in (REGRESSION.solution, *sorted(
        SUBMISSIONS.glob("*_W5_Regression_Batch.ipynb")))],
    *[(p, "save.ipynb", SAVE) for p in (SAVE.solution, *sorted(
        SUBMISSIONS.glob("*_W[56]_Save_Model.ipynb")))],
])
def test_a_renamed_w5_notebook_is_matched_by_content(templates, path, renamed, expected):
    assert matching.by_name(renamed, W5.notebooks) is None
    closest = templates.closest(matching.fingerprint(read_notebook(path)), W5.notebooks)
    assert closest is not None and closest[0] == expected


@pytest.mark.parametrize(("code", "homework"), [(SCRATCH_W4, W4), (SCRATCH_W6, W6)])
def test_a_notebook_written_from_scratch_resembles_no_other_homework(templates, code, homework):
    print_ = matching.fingerprint(from_scratch(code)())
    for nb in EVERY:
        if nb not in homework.notebooks:
            assert templates.resemblance(print_, nb) < FLOOR, nb.name


def test_a_notebook_that_keeps_nothing_distinctive_is_placed_by_nothing(templates):
    """erin's W4 keeps the data cell, which W5's save notebook shares, and defines `net`:
    by content it is no notebook's, and only its name places it."""
    print_ = matching.fingerprint(read_notebook(SUBMISSIONS / "erin_W4_Homework.ipynb"))
    assert "net" in print_.names and templates.closest(print_) is None
    assert matching.by_name("erin_W4_Homework.ipynb", EVERY) == (HOMEWORK, Match.NAME)


def test_contract_names_raise_a_resemblance_but_never_make_one(templates):
    print_ = matching.fingerprint(read_notebook(HOMEWORK.solution))
    nameless = Fingerprint(print_.lines, frozenset())
    assert templates.resemblance(nameless, HOMEWORK) < templates.resemblance(print_, HOMEWORK)
    assert templates.resemblance(nameless, HOMEWORK) > FLOOR
    only_names = Fingerprint(frozenset(), frozenset(HOMEWORK.contract))
    assert templates.resemblance(only_names, HOMEWORK) == 0.0
    # W5's regression notebook defines W1, b1, W2, b2 too: no W4 by that alone
    regression = matching.fingerprint(read_notebook(REGRESSION.solution))
    assert {"W1", "b1", "W2", "b2"} <= regression.names
    assert templates.resemblance(regression, HOMEWORK) < FLOOR


def test_lines_every_template_holds_count_for_none(templates):
    shared = notebook(("code", "import torch\nimport matplotlib.pyplot as plt\n"
                               "torch.manual_seed(1)    # reproducible\n"
                               "y = x.pow(2) + 0.2*torch.rand(x.size())\n"
                               "optimizer.zero_grad()\nloss.backward()\noptimizer.step()"))
    print_ = matching.fingerprint(shared)
    assert all(templates.resemblance(print_, nb) == 0.0 for nb in EVERY)


def test_boilerplate_is_never_distinctive_even_in_a_lone_template():
    alone = Templates([W6])
    boiler = matching.fingerprint(notebook(("code", "import torch\nimport torch.nn as nn\n"
                                                    "import numpy as np")))
    kept = matching.fingerprint(notebook(("code", "import torchvision\nimport torch.nn as nn")))
    assert alone.resemblance(boiler, MNIST) == 0.0 < alone.resemblance(kept, MNIST)


def test_two_notebooks_sharing_one_template_both_keep_its_lines(tmp_path):
    twin = Notebook(name="W4_Again.ipynb", aliases=(), template=HOMEWORK.template,
                    solution=HOMEWORK.solution, points=1.0, contract=HOMEWORK.contract,
                    files=())
    again = Assignment(name="W4b", title="", version="1", folder=tmp_path, gpu=False,
                       limits=W4.limits, notebooks=(twin,), settings={})
    both = Templates([*ALL, again])
    print_ = matching.fingerprint(read_notebook(HOMEWORK.solution))
    assert both.resemblance(print_, twin) == both.resemblance(print_, HOMEWORK) > FLOOR
    assert both.closest(print_) == (HOMEWORK, both.resemblance(print_, HOMEWORK))
    assert both.closest(print_, [twin, HOMEWORK])[0] == twin
    assert both.assignment_of(twin) == again and both.assignment_of(HOMEWORK) == W4


def test_among_nothing_is_nothing(templates):
    assert templates.closest(matching.fingerprint(read_notebook(HOMEWORK.solution)), []) is None


# ------------------------------------------------------------------- notebooks that misbehave


def test_cells_that_do_not_parse_are_read_line_by_line(templates):
    nb = notebook(("code", "!pip install x\nW1 = 1"),
                  ("code", "%%time\nfor i in range(3):\n    b1 = i"),
                  ("code", "%matplotlib inline\ndef forward(X):\n    return X"),
                  ("code", " h_sigmoid = 1\nG = 2 *\ndW2 = 3"),
                  ("code", "(" * 500 + "\nW2 = 4"),
                  ("code", "def broken(:\n    inner = 1\nb2 = 5"))
    print_ = matching.fingerprint(nb)
    assert {"W1", "b1", "forward", "h_sigmoid", "dW2", "W2", "b2"} <= print_.names
    assert "broken" not in print_.names and "!pip install x" in print_.lines
    assert all(templates.resemblance(print_, nb) < FLOOR for nb in EVERY)


def test_the_names_bound_at_module_level():
    source = """
import os
a, (b, *c) = 1, (2, 3)
d: int = 4
e += 1
for f in []:
    g = 1
with open(os.devnull) as h, open(os.devnull):
    pass
if True:
    try:
        i = 1
    except ValueError:
        j = 2
    else:
        k = 3
    finally:
        m = 4
def n(o):
    p = o
class Q:
    r = 1
s.t = 1
u[0] = 1
"""
    expected = {"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "m", "n", "Q"}
    assert matching.defined(source) == expected


@pytest.mark.parametrize("nb", [
    notebook(),
    notebook(("markdown", "# My homework\n\nI did not finish it, sorry.")),
    notebook(("markdown", ""), ("code", ""), ("code", "   \n\n")),
], ids=["empty", "only markdown", "blank cells"])
def test_a_notebook_with_no_code_resembles_nothing(templates, nb):
    print_ = matching.fingerprint(nb)
    assert print_.names == frozenset()
    assert all(templates.resemblance(print_, other) == 0.0 for other in EVERY)
    assert templates.closest(print_) is None


def test_cells_of_any_shape_are_read_without_a_crash():
    odd = nbformat.from_dict({"cells": [
        {"cell_type": "code", "source": ["W1 = torch.randn(1, n_hidden)\n", "b1 = 0"]},
        {"cell_type": "code"},
        {"cell_type": "raw", "source": "raw_name = 1  # a raw cell is not the notebook's"},
        {"cell_type": "code", "source": 42},
        "not a cell",
        {"cell_type": "markdown", "source": None},
    ]})
    print_ = matching.fingerprint(odd)
    assert print_.names == {"W1", "b1"} and "W1 = torch.randn(1, n_hidden)" in print_.lines
    assert matching.fingerprint(nbformat.from_dict({"cells": "nope"})) == Fingerprint(
        frozenset(), frozenset())
