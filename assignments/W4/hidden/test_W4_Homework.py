"""W4 hidden rubric: derived by hand (no autograd), and a trained net that fits the data."""

import numpy as np
import pytest

from grader.judge import (
    GRADIENT_NAMES,
    Words,
    autograd_calls,
    code_cells,
    find_code_gradients,
    function_source,
    random_problem,
    regression_fit,
    say,
)


@pytest.mark.points(2)
def test_gradients_are_derived_not_autograd(student, run, credit):
    """The gradients are derived by hand, not by autograd

    The `gradients` function, or without one the gradients the notebook computes in code
    (w1_grad = ..., dW1 = ...): expressions, never autograd's `.grad`; a share for each of
    the four derived."""
    source = function_source(run, "gradients")
    if not source:
        found = find_code_gradients(code_cells(run))
        assert found, "no `gradients` function and no gradient computed in code (w1_grad = " \
            "..., dW1 = ..., or a value compared with w1.grad) was found"
        derived = sorted(f.gradient for f in found.found.values() if not f.autograd)
        autograd = sorted(f.gradient for f in found.found.values() if f.autograd)
        said = say("{names}: autograd's answer (.grad), not an expression you derived",
                   names=Words.join(autograd, ", ")) if autograd else ""
        assert derived, said
        missing = sorted(set(GRADIENT_NAMES) - set(derived) - set(autograd))
        notes = [said, say("{names}: not computed in code", names=Words.join(missing, ", "))
                 if missing else ""]
        credit(len(derived) / len(GRADIENT_NAMES),
               Words.join(n for n in notes if n) or "all four derived in code")
        return
    assert not autograd_calls(source), "`gradients` uses autograd; the homework asks for the " \
        "expressions you derived"
    problem = random_problem(np.random.default_rng(), 5, 4)
    student.call("gradients", *problem, no_grad=True)  # raises if it needs autograd to run


@pytest.mark.points(2)
def test_trained_net_fits_the_slide_data(student, run, notebook, reference, credit, evidence):
    """The trained net fits the slide's curve on fresh points

    The model the notebook trained, whatever its names: an nn.Module mapping one input to one
    output, or the weights W1, b1, W2, b2 (or the names the notebook gave them), whose sigmoid
    net the grader computes itself; judged on 20,000 points of y = x² + 0.2·U(0, 1) drawn for
    this run."""
    fit = regression_fit(student, run, np.random.default_rng(),
                         notebook.contract if notebook else ())
    assert fit.judged, fit.feedback
    evidence["fit"] = fit.evidence(reference.minibatch.NOISE_FLOOR)
    assert fit.mse < 0.01, say("{model}: MSE {mse:.4f} on fresh points (a good fit is below "
                               "0.01; the noise alone gives 0.0033)", model=fit.judged,
                               mse=fit.mse)
    credit(1.0, say("{model}: MSE {mse:.4f} on fresh points", model=fit.judged, mse=fit.mse))
