"""Similarity: template removal, real copydetect fingerprints, spans for the side-by-side view."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import nbformat
import pytest

from grader import assignments
from grader.errors import AssignmentError
from grader.report.similarity import Pair, similar_pairs, student_code

TEMPLATE = assignments.find("W4").notebooks[0].template
SUBMISSIONS = Path(__file__).resolve().parent.parent / "submissions"

FORWARD = '''def forward(X, W1, b1, W2, b2):
    """Return Y_pred for inputs X (n x 1)."""
    h = X @ W1 + b1
    h_sigmoid = torch.sigmoid(h)
    return h_sigmoid @ W2 + b2'''

GRADIENTS = '''def gradients(X, Y, W1, b1, W2, b2):
    h_sigmoid = torch.sigmoid(X @ W1 + b1)
    Y_pred = h_sigmoid @ W2 + b2
    G = 2 * (Y_pred - Y)                              # df/dY_pred
    dW2 = h_sigmoid.T @ G
    db2 = G.sum(dim=0)
    dH = (G @ W2.T) * h_sigmoid * (1 - h_sigmoid)     # back through the sigmoid
    dW1 = X.T @ dH
    db1 = dH.sum(dim=0)
    return dW1, db1, dW2, db2'''

# GRADIENTS with every name changed and other comments: the same code to a fingerprint.
RENAMED = '''def gradients(inp, target, A, a, B, c):
    s = torch.sigmoid(inp @ A + a)
    out = s @ B + c
    g = 2 * (out - target)        # derivative of the squared error
    gB = s.T @ g
    gc = g.sum(dim=0)
    gz = (g @ B.T) * s * (1 - s)  # chain rule, sigmoid'
    gA = inp.T @ gz
    ga = gz.sum(dim=0)
    return gA, ga, gB, gc'''

# The same task, written independently: other calls, other order, other structure.
INDEPENDENT_FORWARD = '''def forward(X, W1, b1, W2, b2):
    z = torch.mm(X, W1) + b1
    a = 1 / (1 + torch.exp(-z))
    return torch.mm(a, W2) + b2'''

INDEPENDENT = '''def gradients(X, Y, W1, b1, W2, b2):
    hidden = torch.sigmoid(X.matmul(W1).add(b1))
    d_out = -2 * (Y - forward(X, W1, b1, W2, b2))
    dW2 = hidden.transpose(0, 1).matmul(d_out)
    db2 = d_out.sum(0)
    d_hidden = d_out.matmul(W2.transpose(0, 1)) * hidden * (1 - hidden)
    return X.transpose(0, 1).matmul(d_hidden), d_hidden.sum(0), dW2, db2'''


def from_template(path: Path, cells: dict[int, str]) -> Path:
    """The W4 template with the code cells at the given indexes replaced: a handed-in notebook."""
    nb = copy.deepcopy(nbformat.read(TEMPLATE, as_version=4))
    for index, source in cells.items():
        assert nb.cells[index].cell_type == "code"
        nb.cells[index].source = source
    nbformat.write(nb, path)
    return path


def covered(spans: tuple[tuple[int, int], ...], code: str, region: str) -> float:
    """The share of `region`'s non-blank characters (found in `code`) inside `spans`."""
    start = code.index(region)
    inside = [any(s <= i < e for s, e in spans)
              for i in range(start, start + len(region)) if not code[i].isspace()]
    return sum(inside) / len(inside)


def assert_well_formed(pair: Pair) -> None:
    assert pair.a < pair.b
    assert 0.0 <= pair.a_fraction <= 1.0 and 0.0 <= pair.b_fraction <= 1.0
    assert pair.score == max(pair.a_fraction, pair.b_fraction)
    for code, spans in ((pair.a_code, pair.a_spans), (pair.b_code, pair.b_spans)):
        assert spans, "a reported pair has matched code on both sides"
        assert all(0 <= s < e <= len(code) for s, e in spans)
        assert all(e1 < s2 for (_, e1), (s2, _) in zip(spans, spans[1:], strict=False))
        for s, e in spans:  # the matched code, without the blank and comment lines after it
            text = code[s:e]
            assert text == text.strip() and not text.splitlines()[-1].lstrip().startswith("#")


def test_a_renamed_copy_is_reported_with_spans_over_the_copied_function(tmp_path):
    original = from_template(tmp_path / "a.ipynb", {3: FORWARD, 4: GRADIENTS})
    renamed = from_template(tmp_path / "b.ipynb", {3: FORWARD, 4: RENAMED})
    codes = {"zed": student_code(original, TEMPLATE), "amy": student_code(renamed, TEMPLATE)}
    [pair] = similar_pairs(codes)
    assert (pair.a, pair.b) == ("amy", "zed")
    assert pair.a_code == codes["amy"] and pair.b_code == codes["zed"]
    assert pair.score >= 0.9
    assert_well_formed(pair)
    body = GRADIENTS.split("\n", 1)[1]  # the `def` line is the template's, so it is not compared
    assert covered(pair.b_spans, pair.b_code, body) >= 0.9
    assert covered(pair.a_spans, pair.a_code, RENAMED.split("\n", 1)[1]) >= 0.9


def test_independent_solutions_of_the_same_task_are_not_reported(tmp_path):
    one = from_template(tmp_path / "a.ipynb", {3: FORWARD, 4: GRADIENTS})
    other = from_template(tmp_path / "b.ipynb", {3: INDEPENDENT_FORWARD, 4: INDEPENDENT})
    codes = {"amy": student_code(one, TEMPLATE), "ben": student_code(other, TEMPLATE)}
    assert similar_pairs(codes) == []
    everything = similar_pairs(codes, threshold=0.0, min_overlap=0)
    assert all(p.score < 0.3 for p in everything)


def test_students_who_changed_nothing_are_not_alike(tmp_path):
    first = from_template(tmp_path / "a.ipynb", {})
    second = from_template(tmp_path / "b.ipynb", {})
    assert student_code(first, TEMPLATE) == ""
    assert similar_pairs({n: student_code(p, TEMPLATE) for n, p in
                          (("amy", first), ("ben", second))}) == []
    # The template is what made them unalike: without it they are the same code.
    [pair] = similar_pairs({"amy": student_code(first, None), "ben": student_code(second, None)})
    assert pair.score == 1.0


def test_template_cells_and_lines_and_magics_are_removed(tmp_path):
    path = from_template(tmp_path / "a.ipynb", {
        1: "%matplotlib inline\n!pip install torch\nimport torch\nimport matplotlib.pyplot as plt",
        4: GRADIENTS,
        7: "%%bash\necho this is not python",
    })
    code = student_code(path, TEMPLATE)
    assert code.startswith("# cell 4\n    h_sigmoid = torch.sigmoid(X @ W1 + b1)")
    assert "def gradients" not in code  # a template line, though the cell was changed
    for gone in ("%matplotlib", "!pip", "import torch", "echo", "# cell 1", "# cell 7"):
        assert gone not in code
    assert "return dW1, db1, dW2, db2" in code


@pytest.mark.parametrize("content", [
    b"\x89PNG\r\n\x1a\n not json at all",
    b'{"cells": [',
    b'{"cells": 3, "nbformat": 4, "nbformat_minor": 5, "metadata": {}}',
    b'{"nbformat": 99, "cells": []}',
    b"[]",
    b"",
    b'{"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": ["not a cell"]}',
], ids=["binary", "truncated", "cells-not-a-list", "future-format", "a-list", "empty",
        "a-cell-not-an-object"])
def test_a_broken_notebook_is_no_code(tmp_path, content):
    path = tmp_path / "broken.ipynb"
    path.write_bytes(content)
    assert student_code(path, TEMPLATE) == ""


def test_odd_cells_are_read_for_what_they_hold(tmp_path):
    path = tmp_path / "odd.ipynb"
    path.write_text(json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
        {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
         "source": ["x = 1\r\n", "y = x + 1\r\n"]},
        {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
         "source": 42},
    ]}))
    assert student_code(path, None) == "# cell 0\nx = 1\ny = x + 1"
    assert student_code(tmp_path / "missing.ipynb", None) == ""


def test_an_unreadable_template_is_the_assignments_fault(tmp_path):
    student = from_template(tmp_path / "a.ipynb", {4: GRADIENTS})
    template = tmp_path / "template.ipynb"
    template.write_text("{")
    with pytest.raises(AssignmentError, match="template notebook cannot be read"):
        student_code(student, template)


def test_spans_of_a_copied_class_start_and_end_on_its_code():
    model = '''class {name}(nn.Module):
    def __init__(self):
        super({name}, self).__init__()
        self.{a} = nn.Linear(784, 100)
        self.{b} = nn.Linear(100, 10)

    def forward(self, x):
        return self.{b}(torch.relu(self.{a}(x)))'''
    codes = {"amy": "import torch\nx = torch.ones(3)\n" + model.format(name="Net", a="fc", b="o"),
             "ben": "import numpy as np\n" + model.format(name="Model", a="l1", b="l2")}
    [pair] = similar_pairs(codes)
    assert_well_formed(pair)
    for code, spans in ((pair.a_code, pair.a_spans), (pair.b_code, pair.b_spans)):
        start, end = spans[-1]
        assert code[start:].startswith("class ")
        assert code[:end].endswith("(x)))") and end == len(code)


def test_the_example_submissions_score_between_0_and_1():
    codes = {p.name.split("_")[0]: student_code(p, TEMPLATE)
             for p in sorted(SUBMISSIONS.glob("*_W4_Homework.ipynb"))}
    assert len(codes) == 5 and all(codes.values())
    pairs = similar_pairs(codes, threshold=0.0)
    assert pairs
    for pair in pairs:
        assert_well_formed(pair)
    assert [p.score for p in pairs] == sorted((p.score for p in pairs), reverse=True)


@pytest.mark.parametrize("kwargs", [{"threshold": 1.5}, {"noise_t": 0},
                                    {"noise_t": 30, "guarantee_t": 20}])
def test_bad_settings_are_refused(kwargs):
    with pytest.raises(ValueError):
        similar_pairs({}, **kwargs)
