"""W5 hidden rubric: the trained model, judged on fresh points the notebook never saw."""

import numpy as np
import pytest

from grader.judge import regression_fit, say


@pytest.mark.points(5)
def test_fit_reaches_the_noise_floor(student, run, notebook, reference, credit, evidence):
    """The trained model fits fresh points down to the noise

    The model the notebook trained, whatever its names (`predict`, an nn.Module mapping one
    input to one output, or the weights W1, b1, W2, b2 computed by the grader), on 20,000
    points the notebook never saw; full points within 1.1 x the noise floor's mean squared
    error, none at 3 x."""
    fit = regression_fit(student, run, np.random.default_rng(),
                         notebook.contract if notebook else ("predict",))
    assert fit.judged, fit.feedback
    floor = reference.minibatch.NOISE_FLOOR
    evidence["fit"] = fit.evidence(floor)
    ratio = fit.mse / floor
    assert ratio < 3, say("{model}: MSE on fresh points {mse:.5f} = {ratio:.2f} x the noise "
                          "floor 0.00333 (full points within 1.1 x)", model=fit.judged,
                          mse=fit.mse, ratio=ratio)
    credit(min(1.0, (3 - ratio) / (3 - 1.1)),
           say("{model}: MSE on fresh points {mse:.5f} = {ratio:.2f} x the noise floor",
               model=fit.judged, mse=fit.mse, ratio=ratio))
