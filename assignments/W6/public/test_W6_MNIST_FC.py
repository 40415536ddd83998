"""W6 public rubric: there is a model that classifies 28x28 digits into 10 classes."""

import pytest

from grader.judge import find_model


@pytest.mark.points(2)
def test_a_model_classifies_digits(student, notebook):
    """The notebook has a model that classifies digits

    A model maps a batch of 28x28 images to 10 scores each: the contract's `model`, or
    another module of the notebook or a saved whole model."""
    found = find_model(student, notebook.contract)
    assert found.name, found.feedback
