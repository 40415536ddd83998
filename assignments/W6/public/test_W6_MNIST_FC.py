"""W6 public rubric: there is a model that classifies 28x28 digits into 10 classes."""

import pytest

from grader.judge import models


@pytest.mark.points(2)
def test_a_model_classifies_digits(student):
    found = models.find(student)
    assert found.name, found.feedback
