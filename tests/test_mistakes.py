"""Verdicts carry a Mistake, and the words are rendered from it in one place: rewording the
English changes no score, and no rubric or judge module decides anything by matching words."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import nbformat
import numpy as np
import pytest
import torch

import grader.judge
from grader.judge import (
    GRADIENT_NAMES,
    Mistake,
    Reading,
    Verdict,
    describe,
    judge_gradients,
    mistakes,
    random_problem,
    summarize,
    summarize_readings,
)
from grader.judge.rubric import Context, run_rubric
from reference import twolayer

ROOT = Path(__file__).resolve().parent.parent
W4_PUBLIC = ROOT / "assignments" / "W4" / "public" / "test_W4_Homework.py"
SIGMOID = ("the sigmoid derivative h_sigmoid ⊙ (1 − h_sigmoid) is missing from the chain "
           "rule")


def verdict(mistake: Mistake, name: str = "dW1", **data: object) -> Verdict:
    fields = {"n": 7, "shape": (3, 1), "expected": (1, 3), "relative_error": 0.5, **data}
    return Verdict(name, mistake=mistake, **fields)  # type: ignore[arg-type]


@pytest.mark.parametrize("mistake", list(Mistake), ids=lambda m: m.value)
def test_every_mistake_has_words(mistake):
    if mistake in (Mistake.UNREADABLE, Mistake.MISSING):
        text = summarize_readings({"dW1": Reading("dW1", "Z", "unreadable", reason="Z?")}
                                  if mistake is Mistake.UNREADABLE else {}, ["dW1"])
    else:
        text = describe(verdict(mistake))
    assert text.strip() and "{" not in text, text
    assert mistake in mistakes.TEMPLATES


def test_the_english_is_as_before():
    assert describe(verdict(Mistake.SIGMOID_DERIVATIVE)) == f"dW1: {SIGMOID}"
    assert describe(verdict(Mistake.OFF_BY_N)) == (
        "dW1: every gradient is off by a factor of n = 7: the loss is the Frobenius sum "
        "||Y − Y_pred||²_F, not the mean (MSE)")
    assert describe(verdict(Mistake.TRANSPOSED)) == "dW1 is transposed: shape [3, 1], " \
        "expected [1, 3]"
    assert describe(verdict(Mistake.BIAS_NOT_SUMMED, "db1", shape=(7, 3), expected=(3,))) == (
        "db1 is not summed over the batch: the bias is shared by all 7 samples, so its "
        "gradient is the sum of the per-sample gradients (shape [3], got [7, 3])")
    assert describe(verdict(Mistake.MISMATCH)) == "dW1 does not match the derivative " \
        "(relative error 0.5)"
    assert describe(verdict(Mistake.WRONG_COUNT, returned=3)) == (
        "`gradients` returned 3 values; it must return dW1, db1, dW2, db2")


def test_a_shared_mistake_is_told_once_for_the_gradients_it_applies_to():
    wrong = [verdict(Mistake.SIGMOID_DERIVATIVE, "dW1", n=1),
             verdict(Mistake.TRANSPOSED, "dW2"),
             verdict(Mistake.SIGMOID_DERIVATIVE, "db1", n=7),
             verdict(Mistake.OFF_BY_N, "db2", n=7)]
    assert summarize(wrong) == (f"dW1, db1: {SIGMOID}; dW2 is transposed: shape [3, 1], "
                                "expected [1, 3]; " + describe(wrong[3]))
    by_n = [verdict(Mistake.OFF_BY_N, name, n=n) for name, n in (("dW1", 7), ("db1", 50))]
    assert summarize(by_n).count("off by a factor") == 2  # n = 7 and n = 50 are told apart
    whole = [verdict(Mistake.WRONG_COUNT, name, returned=3) for name in GRADIENT_NAMES]
    assert summarize(whole) == ("dW1, db1, dW2, db2: `gradients` returned 3 values; it must "
                                "return dW1, db1, dW2, db2")


def test_gradient_verdicts_name_each_known_mistake():
    rng = np.random.default_rng(0)
    problem = [torch.from_numpy(a) for a in random_problem(rng, 6, 4)]
    right = [g.numpy() for g in twolayer.gradients(*problem)]
    cases = {Mistake.FACTOR_TWO: [g / 2 for g in right], Mistake.SIGN: [-g for g in right],
             Mistake.OFF_BY_N: [g / 6 for g in right], Mistake.NONE: right}
    for mistake, answer in cases.items():
        assert [v.mistake for v in judge_gradients(answer, *problem)] == [mistake] * 4
    odd = judge_gradients([right[0] * np.nan, np.zeros((5, 5)), right[2] + 1, right[3]],
                          *problem)
    assert [v.mistake for v in odd] == [Mistake.NOT_FINITE, Mistake.SHAPE, Mistake.MISMATCH,
                                        Mistake.NONE]
    assert {v.mistake for v in judge_gradients(right[:3], *problem)} == {Mistake.WRONG_COUNT}


# ----------------------------------------------------------------------------- the W4 rubric


class Student:
    """A notebook whose `gradients` leaves out the sigmoid derivative, as bob's does."""

    def value(self, name: str) -> np.ndarray:
        raise KeyError(name)  # no trained b1: the rubric tries each bias convention

    def call(self, name: str, *arrays: np.ndarray, **_: object) -> list[np.ndarray]:
        X, Y, W1, b1, W2, b2 = (torch.from_numpy(a) for a in arrays)
        right = twolayer.gradients(X, Y, W1, b1, W2, b2)
        dH = 2 * (torch.sigmoid(X @ W1 + b1) @ W2 + b2 - Y) @ W2.T
        return [g.numpy() for g in (X.T @ dH, twolayer.reduce_like(dH, b1), right.dW2,
                                    right.db2)]


P = r"\frac{\partial f}{\partial "
MARKDOWN = "\n\n".join([
    f"${P}W_2}} = h_{{sigmoid}}^T 2(Y_{{pred}} - Y)$",
    f"${P}b_2}} = \\mathbf{{1}}^T 2(Y_{{pred}} - Y)$",
    f"${P}W_1}} = X^T [2(Y_{{pred}} - Y) W_2^T]$",                    # no sigmoid derivative
    f"${P}b_1}} = 2(Y_{{pred}}-Y)W_2^T \\odot \\sigma'(h)$",           # per-sample layout
])


def grade_w4() -> dict[str, tuple[float, str]]:
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(MARKDOWN)])
    run = SimpleNamespace(notebook=nbformat.writes(notebook))
    items = run_rubric([W4_PUBLIC], [], Context(Student(), run, None))
    return {item.name: (item.score, item.feedback) for item in items}


def test_the_w4_rubric_says_what_it_said():
    items = grade_w4()
    assert items["test_gradients_match_the_derivation"] == (3, f"dW1, db1: {SIGMOID}")
    assert items["test_derivative_expressions"] == (
        3, f"dW1: {SIGMOID}; db1 right (per-sample bias convention)")


def test_rewording_every_message_changes_no_score(monkeypatch):
    english = grade_w4()
    for table in (mistakes._SHARED, mistakes._OWN, mistakes._UNNAMED, mistakes._LAYOUT):
        for mistake in table:
            monkeypatch.setitem(table, mistake, f"[{mistake.value}]")
    monkeypatch.setattr(mistakes, "_RIGHT_IN", "{name}: ok, {layouts}")
    reworded = grade_w4()
    assert {k: v[0] for k, v in reworded.items()} == {k: v[0] for k, v in english.items()}
    assert reworded["test_gradients_match_the_derivation"][1] == \
        "dW1, db1: [sigmoid_derivative]"
    assert reworded["test_derivative_expressions"][1] == \
        "dW1: [sigmoid_derivative]; db1: ok, [bias_not_summed]"


# ----------------------------------------------------------------------------- no word matching


def _rubric_and_judge_sources() -> list[Path]:
    return sorted([*ROOT.glob("assignments/*/*/test_*.py"), *ROOT.glob("grader/judge/*.py")])


WORDS = {"feedback", "diagnosis", "reason", "message", "describe", "summarize",
         "summarize_readings"}


def _mentions_words(node: ast.AST) -> bool:
    """Whether this expression is (or is made from) a rendered message."""
    for child in ast.walk(node):
        if isinstance(child, ast.Attribute) and child.attr in WORDS:
            return True
        if isinstance(child, ast.Name) and child.id in WORDS:
            return True
    return False


@pytest.mark.parametrize("path", _rubric_and_judge_sources(), ids=lambda p: p.name)
def test_nothing_decides_by_matching_a_message(path):
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Compare) and any(
                isinstance(op, ast.In | ast.NotIn) for op in node.ops) and any(
                _mentions_words(side) for side in (node.left, *node.comparators)):
            found.append(f"{path.name}:{node.lineno}: {ast.unparse(node)}")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                node.func.attr in ("startswith", "endswith", "removeprefix", "find",
                                   "index", "count") and _mentions_words(node.func.value):
            found.append(f"{path.name}:{node.lineno}: {ast.unparse(node)}")
    assert not found, found


# ----------------------------------------------------------------------------- the public API


@pytest.mark.parametrize("name", grader.judge.__all__)
def test_every_public_name_resolves_and_says_what_it_is(name):
    value = getattr(grader.judge, name)
    if callable(value):
        assert (value.__doc__ or "").strip(), f"{name} has no docstring"


def test_every_public_name_is_listed_in_the_docs():
    docs = (ROOT / "docs" / "RUBRICS.md").read_text()
    assert [name for name in grader.judge.__all__ if f"`{name}`" not in docs] == []


def test_the_rubrics_import_only_the_public_api():
    private = []
    for path in ROOT.glob("assignments/*/*/test_*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("grader") \
                    and (node.module != "grader.judge"
                         or any(a.name not in grader.judge.__all__ for a in node.names)):
                private.append(f"{path.relative_to(ROOT)}: {ast.unparse(node)}")
    assert private == []


def test_importing_the_api_does_not_import_torch():
    code = "import sys, grader.judge; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
