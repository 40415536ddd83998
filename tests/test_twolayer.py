"""The W4 reference gradients against torch.autograd, over random shapes and bias conventions."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from reference import twolayer

BIAS_CONVENTIONS = ("vector", "row", "per-sample")


def bias(convention: str, n: int, width: int, g: torch.Generator) -> torch.Tensor:
    shape = {"vector": (width,), "row": (1, width), "per-sample": (n, width)}[convention]
    return torch.randn(*shape, generator=g, dtype=torch.float64)


def problem(n: int, d_in: int, hidden: int, d_out: int, conv1: str, conv2: str, seed: int):
    g = torch.Generator().manual_seed(seed)

    def randn(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=g, dtype=torch.float64)

    return (randn(n, d_in), randn(n, d_out), randn(d_in, hidden), bias(conv1, n, hidden, g),
            randn(hidden, d_out), bias(conv2, n, d_out, g))


def autograd_gradients(X, Y, W1, b1, W2, b2):
    params = [p.clone().requires_grad_() for p in (W1, b1, W2, b2)]
    _, y_pred = twolayer.forward(X, *params)
    twolayer.loss(Y, y_pred).backward()
    return [p.grad for p in params]


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).norm() / b.norm().clamp_min(1e-300)).item()


@settings(max_examples=200, deadline=None)
@given(
    n=st.integers(1, 40), d_in=st.integers(1, 5), hidden=st.integers(1, 30),
    d_out=st.integers(1, 3), conv1=st.sampled_from(BIAS_CONVENTIONS),
    conv2=st.sampled_from(BIAS_CONVENTIONS), seed=st.integers(0, 2**31),
)
def test_analytic_gradients_equal_autograd(n, d_in, hidden, d_out, conv1, conv2, seed):
    args = problem(n, d_in, hidden, d_out, conv1, conv2, seed)
    ours = twolayer.gradients(*args)
    theirs = autograd_gradients(*args)
    for name, mine, expected, param in zip(ours._fields, ours, theirs, args[2:], strict=True):
        assert mine.shape == param.shape, name
        assert relative_error(mine, expected) <= 1e-10, name


@pytest.mark.parametrize("conv1", BIAS_CONVENTIONS)
@pytest.mark.parametrize("conv2", BIAS_CONVENTIONS)
def test_analytic_gradients_pass_gradcheck(conv1, conv2):
    X, Y, *params = problem(7, 2, 5, 2, conv1, conv2, seed=3)

    def analytic_loss(*p):
        return twolayer.loss(Y, twolayer.forward(X, *p)[1])

    # gradcheck compares autograd with finite differences; here we compare ours with both.
    assert torch.autograd.gradcheck(analytic_loss, [p.requires_grad_() for p in params])
    numeric = torch.autograd.functional.jacobian(analytic_loss, tuple(params))
    for mine, fd in zip(twolayer.gradients(X, Y, *[p.detach() for p in params]), numeric,
                        strict=True):
        torch.testing.assert_close(mine, fd, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_gradients_keep_the_dtype(dtype):
    X, Y, *params = problem(4, 1, 3, 1, "vector", "vector", seed=0)
    grads = twolayer.gradients(X.to(dtype), Y.to(dtype), *[p.to(dtype) for p in params])
    assert all(g.dtype == dtype for g in grads)


def test_per_sample_bias_gradients_are_not_summed():
    X, Y, W1, b1_row, W2, b2_row = problem(6, 1, 4, 1, "row", "row", seed=1)
    per_sample = twolayer.gradients(X, Y, W1, b1_row.expand(6, 4).clone(), W2,
                                    b2_row.expand(6, 1).clone())
    row = twolayer.gradients(X, Y, W1, b1_row, W2, b2_row)
    assert per_sample.db1.shape == (6, 4) and per_sample.db2.shape == (6, 1)
    torch.testing.assert_close(per_sample.db1.sum(0, keepdim=True), row.db1)
    torch.testing.assert_close(per_sample.db2.sum(0, keepdim=True), row.db2)


def test_training_fits_the_slide_data():
    x, y = twolayer.slide_data()
    params = twolayer.train(x, y, steps=5000)
    _, y_pred = twolayer.forward(x, *params)
    mse = ((y_pred - y) ** 2).mean().item()
    initial = ((twolayer.forward(x, *twolayer.init_params())[1] - y) ** 2).mean().item()
    assert mse < 0.006 < initial  # noise floor 0.0033; an untrained net is far above
