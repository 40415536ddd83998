"""W4 hidden rubric: derived by hand (no autograd), and a trained net that fits the data."""

import ast

import nbformat
import numpy as np
import pytest
import torch

AUTOGRAD = ("backward", "grad", "requires_grad_", "requires_grad")


def gradients_source(run) -> str:
    nb = nbformat.reads(run.notebook, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code" and "def gradients" in cell.source:
            return cell.source
    return ""


@pytest.mark.points(2)
def test_gradients_are_derived_not_autograd(student, run):
    source = gradients_source(run)
    assert source, "no `def gradients` in the notebook"
    tree = ast.parse(source.lstrip())
    used = {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)}
    used |= {node.arg for node in ast.walk(tree) if isinstance(node, ast.keyword)}
    assert not used & set(AUTOGRAD), "`gradients` uses autograd; the homework asks for the " \
        "expressions you derived"
    rng = np.random.default_rng()
    problem = [rng.standard_normal(s) for s in ((5, 1), (5, 1), (1, 4), (4,), (4, 1), (1,))]
    student.call("gradients", *problem, no_grad=True)  # raises if it needs autograd to run


@pytest.mark.points(2)
def test_trained_net_fits_the_slide_data(student, reference):
    params = [torch.from_numpy(student.value(name)).double() for name in ("W1", "b1", "W2", "b2")]
    x, y = reference.twolayer.slide_data()
    _, y_pred = reference.twolayer.forward(x.double(), *params)
    mse = ((y_pred - y.double()) ** 2).mean().item()
    assert mse < 0.01, f"the trained W1, b1, W2, b2 fit the slide data with MSE {mse:.4f} " \
        "(a good fit is below 0.01; the noise alone gives 0.0033)"
