"""W5 hidden rubric: the trained model, judged on fresh points the notebook never saw."""

import numpy as np
import pytest


@pytest.mark.points(5)
def test_fit_reaches_the_noise_floor(student, reference, credit, evidence):
    """The trained model fits fresh points down to the noise

    `predict` on 20,000 points the notebook never saw; full points within 1.1 x the noise
    floor's mean squared error, none at 3 x."""
    rng = np.random.default_rng()
    x = rng.uniform(-1, 1, (20_000, 1)).astype(np.float32)
    y = x**2 + 0.2 * rng.uniform(0, 1, x.shape).astype(np.float32)
    (prediction,) = student.call("predict", x)
    mse = float(np.mean((np.asarray(prediction, dtype=np.float64).reshape(y.shape) - y) ** 2))
    ratio = mse / reference.minibatch.NOISE_FLOOR
    shown = np.argsort(x[:300, 0])  # 300 fresh points and the notebook's curve through them
    evidence["fit"] = {"x": x[:300, 0][shown], "y": y[:300, 0][shown],
                       "prediction": np.asarray(prediction).reshape(-1)[:300][shown],
                       "mse": mse, "noise_floor": reference.minibatch.NOISE_FLOOR}
    assert ratio < 3, f"MSE on fresh points {mse:.5f} = {ratio:.2f} x the noise floor 0.00333 " \
        "(full points within 1.1 x)"
    credit(min(1.0, (3 - ratio) / (3 - 1.1)),
           f"MSE on fresh points {mse:.5f} = {ratio:.2f} x the noise floor")
