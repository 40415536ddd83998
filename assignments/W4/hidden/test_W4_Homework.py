"""W4 hidden rubric: derived by hand (no autograd), and a trained net that fits the data."""

import numpy as np
import pytest
import torch

from grader.judge import autograd_calls, function_source, random_problem


@pytest.mark.points(2)
def test_gradients_are_derived_not_autograd(student, run):
    """The gradients are derived by hand, not by autograd"""
    source = function_source(run, "gradients")
    assert source, "no `def gradients` in the notebook"
    assert not autograd_calls(source), "`gradients` uses autograd; the homework asks for the " \
        "expressions you derived"
    problem = random_problem(np.random.default_rng(), 5, 4)
    student.call("gradients", *problem, no_grad=True)  # raises if it needs autograd to run


@pytest.mark.points(2)
def test_trained_net_fits_the_slide_data(student, reference):
    """The trained net fits the slide's data"""
    params = [torch.from_numpy(student.value(name)).double() for name in ("W1", "b1", "W2", "b2")]
    x, y = reference.twolayer.slide_data()
    _, y_pred = reference.twolayer.forward(x.double(), *params)
    mse = ((y_pred - y.double()) ** 2).mean().item()
    assert mse < 0.01, f"the trained W1, b1, W2, b2 fit the slide data with MSE {mse:.4f} " \
        "(a good fit is below 0.01; the noise alone gives 0.0033)"
