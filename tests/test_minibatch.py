"""The W5 reference trainer: epoch semantics, batch-mean gradients, and the fit it reaches."""

import pytest
import torch

from reference import minibatch, twolayer


@pytest.mark.parametrize(("data_size", "batch_size"), [(100, 10), (103, 10), (7, 50), (1000, 1)])
def test_each_index_is_visited_exactly_once_per_epoch(data_size, batch_size):
    g = torch.Generator().manual_seed(0)
    first = minibatch.minibatches(data_size, batch_size, g)
    second = minibatch.minibatches(data_size, batch_size, g)
    for epoch in (first, second):
        assert torch.equal(torch.cat(epoch).sort().values, torch.arange(data_size))
        assert all(len(b) == batch_size for b in epoch[:-1])
        assert 0 < len(epoch[-1]) <= batch_size
    assert not torch.equal(torch.cat(first), torch.cat(second)) or data_size < 3
    assert len(first) == -(-data_size // batch_size)


def test_batch_gradient_is_the_mean_of_per_point_gradients():
    x, y = twolayer.slide_data(12)
    params = twolayer.init_params(5, dtype=torch.float32)
    batch = minibatch.batch_gradients(x.double(), y.double(), [p.double() for p in params])
    per_point = [twolayer.gradients(x[i:i + 1].double(), y[i:i + 1].double(),
                                    *[p.double() for p in params]) for i in range(12)]
    for k, grad in enumerate(batch):
        torch.testing.assert_close(grad, torch.stack([p[k] for p in per_point]).mean(0))


def test_trainer_runs_no_python_loop_over_samples(monkeypatch):
    calls = []
    original = minibatch.batch_gradients

    def counting(X, Y, params):
        calls.append(len(X))
        return original(X, Y, params)

    monkeypatch.setattr(minibatch, "batch_gradients", counting)
    x, y = twolayer.slide_data(1000)
    minibatch.train(x, y, batch_size=100, epochs=2)
    assert calls == [100] * 20


@pytest.mark.slow
def test_trainer_reaches_the_noise_floor_on_a_million_points():
    x, y = minibatch.slide_data(1_000_000)
    params = minibatch.train(x, y)
    held_out = minibatch.mse(params, *minibatch.fresh_points(200_000, seed=7))
    assert held_out <= 1.1 * minibatch.NOISE_FLOOR
