"""W4 public rubric: the gradients you derived, checked on inputs drawn fresh for every run."""

import numpy as np
import pytest

from grader.judge import (
    GRADIENT_NAMES,
    best_readings,
    bias_convention,
    check_code_gradients,
    check_gradients,
    code_cells,
    derivation_evidence,
    find_code_gradients,
    first_wrong,
    function_source,
    markdown_cells,
    read_markdown,
    say,
    summarize,
    summarize_code_gradients,
    summarize_readings,
)

#: What a notebook without a `gradients` function is told when no gradient was found either.
NOTHING_FOUND = "no `gradients` function and no gradient computed in code (w1_grad = …, " \
    "dW1 = …, or a value compared with w1.grad) was found"


@pytest.mark.points(6)
def test_gradients_match_the_derivation(student, run, credit, evidence):
    """The four gradients are right on fresh inputs

    `gradients(X, Y, W1, b1, W2, b2)` is called on inputs drawn for this run and each result is
    compared with the reference; a wrong one is named by the mistake that explains it. A
    notebook without `gradients` (the course's own template had none) has the gradients its
    code computes (`w1_grad = ...`, `dW1 = ...`, a value compared with `w1.grad`) read, never
    run here, and evaluated in the sandbox on the same kind of inputs; autograd's `.grad`
    copied earns nothing."""
    rng = np.random.default_rng()  # fresh inputs every run
    defined = bool(function_source(run, "gradients"))
    in_code = None if defined else find_code_gradients(code_cells(run))
    if in_code:
        judged = check_code_gradients(student, in_code, rng, evidence)
        right = [name for name, reading in judged.readings.items()
                 if reading.verdict == "right"]
        feedback = summarize_code_gradients(judged.readings)
        assert right, feedback
        credit(len(right) / len(GRADIENT_NAMES),
               feedback or say("all four gradients right ({bias} biases)", bias=judged.bias))
        return
    bias = bias_convention(student, rng)
    assert bias is not None, (
        "`gradients(X, Y, W1, b1, W2, b2)` could not be called: see the run" if defined
        else NOTHING_FOUND)
    wrong = first_wrong(check_gradients(student, rng, bias, evidence))
    earned = (len(GRADIENT_NAMES) - len(wrong)) / len(GRADIENT_NAMES)
    assert earned > 0, summarize(wrong.values())
    credit(earned, summarize(wrong.values()) or say("all four gradients right ({bias} biases)",
                                                    bias=bias))


@pytest.mark.points(4)
def test_derivative_expressions(run, credit, evidence):
    """The derivatives written in markdown are right

    Task 2: the expressions are read (never run) and checked numerically."""
    every = read_markdown(markdown_cells(run), np.random.default_rng())
    evidence["derivations"] = derivation_evidence(every)
    readings = best_readings(every)
    # a say() template, its braces doubled: a catalog's message id holds no bare braces
    assert readings, say("no derivative expressions (such as \\frac{{\\partial f}}{{\\partial "
                         "W_1}} = ...) found in the markdown cells")
    right = [name for name in GRADIENT_NAMES if name in readings and
             readings[name].verdict == "right"]
    assert right, summarize_readings(readings)
    credit(len(right) / 4, summarize_readings(readings) or "all four expressions right")
