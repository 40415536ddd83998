"""Derivatives written as LaTeX: a corpus of expressions, each with its expected verdict."""

import numpy as np
import pytest

from grader.judge import Mistake, describe, latex

P = r"\frac{\partial f}{\partial "  # the usual left side: P + "W_2}"
G_DEF = r"$G = 2(Y_{\text{pred}} - Y)$"
DELTA_DEFS = (r"$\delta_2 = 2(Y_{pred} - Y)$ and "
              r"$\delta_1 = \delta_2 W_2^T \odot h_{sigmoid} \odot (1-h_{sigmoid})$")

# (markdown, target, verdict, a phrase the feedback must contain)
CORPUS = [
    # ---- right, in varied notation
    (f"${P}W_2}} = h_{{sigmoid}}^T 2(Y_{{pred}} - Y)$", "dW2", "right", "right"),
    (r"$\nabla_{W_2} f = 2 h_{sigmoid}^\top (\hat{Y} - Y)$", "dW2", "right", "right"),
    (r"$dW_2 = \sigma(X W_1 + b_1)^T \cdot 2(Y_{pred}-Y)$", "dW2", "right", "right"),
    (r"$\partial f / \partial W_2 = 2 H^T (Y_{pred} - Y)$", "dW2", "right", "right"),
    (r"$\frac{\partial L}{\partial W_2} = H^T \cdot 2 (O - Y)$", "dW2", "right", "right"),
    ("$dW_2 = 2 h_{sigmoid}^T (h_{sigmoid} W_2 + b_2 - Y)$", "dW2", "right", "right"),
    (f"{G_DEF}\n\n${P}W_2}} = h_{{\\text{{sigmoid}}}}^T G$", "dW2", "right", "right"),
    (f"{DELTA_DEFS}\n\n${P}W_2}} = h_{{sigmoid}}^T \\delta_2$", "dW2", "right", "right"),
    (f"${P}b_2}} = \\sum_i 2(Y_{{pred}} - Y)_i$", "db2", "right", "right"),
    (f"${P}b_2}} = 2 \\cdot \\mathbf{{1}}^T (\\hat{{y}} - y)$", "db2", "right", "right"),
    (r"$\frac{df}{db_2} = 1^T 2 (Y_{pred} - Y)$", "db2", "right", "right"),
    (f"{G_DEF}\n\n$$\\begin{{aligned}} {P}b_2}} &= \\mathbf{{1}}^T G \\end{{aligned}}$$",
     "db2", "right", "right"),
    (f"${P}W_1}} = X^T [2(Y_{{pred}}-Y) W_2^T \\odot \\sigma'(h)]$", "dW1", "right", "right"),
    (r"$dW_1 = X^T \left( (2(\hat{Y}-Y) W_2^{T}) \circ h_{sigmoid} \circ (1-h_{sigmoid}) \right)$",
     "dW1", "right", "right"),
    (r"$\nabla_{W_1} f = X^\top \{ 2(Y_{pred} - Y) W_2^T * \sigma(h) * (1 - \sigma(h)) \}$",
     "dW1", "right", "right"),
    (f"${P}W_1}} = X^T \\cdot \\left( 2(Y_{{pred}}-Y) \\cdot W_2^T \\odot "
     f"h_{{sigmoid}}(1-h_{{sigmoid}}) \\right)$", "dW1", "right", "right"),
    (f"{DELTA_DEFS}\n\n${P}W_1}} = X^T \\delta_1$", "dW1", "right", "right"),
    (f"\\[ {P}W_1}} = X^T [2(Y_{{pred}}-Y)W_2^T \\odot \\sigma^{{\\prime}}(XW_1+b_1)] \\]",
     "dW1", "right", "right"),
    (f"${P}b_1}} = \\mathbf{{1}}^T [2(Y_{{pred}}-Y)W_2^T \\odot \\sigma(h) \\odot "
     f"(1-\\sigma(h))]$", "db1", "right", "right"),
    (f"${P}b_1}} = \\sum_i [2(Y_{{pred}}-Y)W_2^T \\odot \\sigma'(XW_1+b_1)]_i$", "db1", "right",
     "right"),
    # ---- right in another layout, named in the feedback
    # a 1 x H row for an H x 1 column: the same numbers, accepted without comment
    (f"${P}W_2}} = 2 (Y_{{pred}}-Y)^T h_{{sigmoid}}$", "dW2", "right", "dW2 right"),
    (f"${P}b_2}} = 2(Y_{{pred}} - Y)$", "db2", "right", "per-sample bias"),
    (f"${P}b_1}} = 2(Y_{{pred}}-Y)W_2^T \\odot \\sigma'(h)$", "db1", "right", "per-sample bias"),
    # ---- wrong, each known mistake named
    (r"$dW_1 = X^T [2(Y_{pred}-Y) W_2^T]$", "dW1", "wrong", "sigmoid derivative"),
    (f"${P}b_1}} = \\mathbf{{1}}^T 2(Y_{{pred}}-Y)W_2^T$", "db1", "wrong", "sigmoid derivative"),
    (f"${P}W_2}} = h_{{sigmoid}}^T (Y_{{pred}}-Y)$", "dW2", "wrong", "factor 2"),
    (f"${P}b_2}} = \\mathbf{{1}}^T (Y_{{pred}}-Y)$", "db2", "wrong", "factor 2"),
    (f"${P}W_1}} = X^T[(Y_{{pred}}-Y)W_2^T \\odot \\sigma'(h)]$", "dW1", "wrong", "factor 2"),
    (f"${P}W_2}} = \\frac{{2}}{{n}} h_{{sigmoid}}^T (Y_{{pred}}-Y)$", "dW2", "wrong",
     "factor of n"),
    (f"${P}b_2}} = \\frac{{1}}{{n}} \\sum_i 2(Y_{{pred}}-Y)_i$", "db2", "wrong", "factor of n"),
    (f"${P}W_2}} = 2 h_{{sigmoid}}^T (Y - Y_{{pred}})$", "dW2", "wrong", "sign is reversed"),
    (f"${P}b_2}} = \\mathbf{{1}}^T 2(Y - \\hat{{Y}})$", "db2", "wrong", "sign is reversed"),
    (f"${P}W_1}} = X^T (2(Y_{{pred}}-Y) W_2^T) \\odot h_{{sigmoid}}$", "dW1", "wrong",
     "has shape"),
    (f"${P}W_2}} = h^T 2(Y_{{pred}} - Y)$", "dW2", "wrong", "does not match"),
    (f"${P}b_1}} = \\mathbf{{1}}^T 2(Y_{{pred}}-Y)$", "db1", "wrong", "has shape"),
    (f"${P}W_1}} = X^T (2(\\hat{{Y}}-Y)W_2^T \\odot \\sigma(h))$", "dW1", "wrong",
     "does not match"),
    # ---- unreadable: a verdict, never a crash
    (f"${P}W_2}} = \\int h \\, dx$", "dW2", "unreadable", "could not read"),
    (f"${P}W_2}} = Z^T G$", "dW2", "unreadable", "unknown symbol Z"),
    (f"${P}W_2}} = h_{{sigmoid}}^T (Y_{{pred}} - Y$", "dW2", "unreadable", "could not read"),
    (f"${P}W_2}} = {P}Y_{{pred}}}} \\frac{{\\partial Y_{{pred}}}}{{\\partial W_2}}$", "dW2",
     "unreadable", "could not read"),
    (f"${P}W_1}} = X^3 G$", "dW1", "unreadable", "superscript"),
    (f"${P}b_1}} = \\delta_9$", "db1", "unreadable", "unknown symbol delta_9"),
    (f"${P}b_2}} = 2(Y_{{pred}} - Y) / W_2$", "db2", "unreadable", "division by a matrix"),
    (f"${P}W_2}} = @#$", "dW2", "unreadable", "unexpected character"),
]


@pytest.mark.parametrize(("markdown", "target", "verdict", "phrase"), CORPUS,
                         ids=[f"{i:02d}-{c[1]}-{c[2]}" for i, c in enumerate(CORPUS)])
def test_corpus(markdown, target, verdict, phrase):
    readings = latex.judge_markdown([markdown], np.random.default_rng())
    assert target in readings, f"no {target} found in {markdown!r}"
    reading = readings[target]
    assert (reading.verdict, phrase in describe(reading)) == (verdict, True), reading
    assert reading.mistake is MISTAKE.get(phrase, Mistake.NONE), reading


# The mistake a corpus phrase names: the verdict carries it, whatever the words.
MISTAKE = {
    "per-sample bias": Mistake.NONE,
    "sigmoid derivative": Mistake.SIGMOID_DERIVATIVE,
    "factor 2": Mistake.FACTOR_TWO,
    "factor of n": Mistake.OFF_BY_N,
    "sign is reversed": Mistake.SIGN,
    "has shape": Mistake.SHAPE,
    "does not match": Mistake.MISMATCH,
    **{phrase: Mistake.UNREADABLE for _, _, verdict, phrase in CORPUS if verdict == "unreadable"},
}


def test_a_layout_is_accepted_by_its_mistake_and_noted():
    markdown = [f"${P}b_1}} = 2(Y_{{pred}}-Y)W_2^T \\odot \\sigma'(h)$"]
    reading = latex.judge_markdown(markdown, np.random.default_rng())["db1"]
    assert (reading.verdict, reading.layouts) == ("right", {Mistake.BIAS_NOT_SUMMED})
    assert describe(reading) == "db1 right (per-sample bias convention)"


def test_a_per_sample_bias_gradient_is_right_in_either_layout():
    """`db2 = -2 (Y - Y_pred)^T` is the per-sample gradients as a row (1 x n): as right as the
    column n x 1, never "shape [1, 5], expected [1]"."""
    for written in ("-2 (Y - \\hat{Y})", "-2 (Y - \\hat{Y})^T"):
        reading = latex.judge_markdown([f"${P}b_2}} = {written}$"], np.random.default_rng())
        assert (reading["db2"].verdict, reading["db2"].layouts) == (
            "right", {Mistake.BIAS_NOT_SUMMED}), written


def test_the_corpus_is_large_and_varied():
    verdicts = [c[2] for c in CORPUS]
    assert len(CORPUS) >= 40
    assert min(verdicts.count(v) for v in ("right", "wrong", "unreadable")) >= 8


def test_find_reads_every_math_delimiter_and_left_side():
    markdown = [r"""
Some prose with = signs that is not maths.
$$\frac{\partial f}{\partial W_1} = A$$ and \[ \nabla_{b_1} f = B \] and $dW_2 = C$
$$\begin{aligned} \partial f / \partial b_2 &= D \\ \delta &= E \end{aligned}$$
"""]
    found = [(e.target, e.latex) for e in latex.find(markdown)]
    assert found == [("dW1", "A"), ("db1", "B"), ("dW2", "C"), ("db2", "D"), ("delta", "E")]


def test_a_chain_of_equalities_is_judged_by_its_best_link():
    markdown = [f"${P}W_2}} = \\frac{{\\partial f}}{{\\partial Y}} = h_{{sigmoid}}^T "
                f"2(Y_{{pred}} - Y)$"]
    assert latex.judge_markdown(markdown, np.random.default_rng())["dW2"].verdict == "right"
