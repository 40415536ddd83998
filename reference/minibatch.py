"""W5 reference: mini-batch SGD for the two-layer sigmoid net on 10,000,000 points.

Each epoch draws a fresh permutation of the data, walks it in batches of |B| (the last batch may
be shorter, so every point is visited exactly once), and steps every parameter

    x <- x - η ∇f_B(x),        ∇f_B = (1/|B|) Σ_{i∈B} ∇f_i        (the batch-mean gradient)

with the analytic gradients of `reference.twolayer`. The only Python loop is over batches.
The data's noise is 0.2·U(0, 1), whose variance 0.04/12 ≈ 0.00333 is the best mean-squared error
any model can reach on fresh points.
"""

from __future__ import annotations

import torch

from reference import twolayer

NOISE_FLOOR = 0.04 / 12


def slide_data(n: int = 10_000_000, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """The slide's data set, by default at the slide's ten million points."""
    return twolayer.slide_data(n, seed)


def fresh_points(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Held-out points from the same distribution, drawn uniformly instead of on a grid."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, generator=g) * 2 - 1
    return x, x.pow(2) + 0.2 * torch.rand(n, 1, generator=g)


def minibatches(data_size: int, batch_size: int, generator: torch.Generator) -> list[torch.Tensor]:
    """One epoch's batches: a random permutation of range(data_size) cut into |B|-sized pieces."""
    return list(torch.randperm(data_size, generator=generator).split(batch_size))


def batch_gradients(X: torch.Tensor, Y: torch.Tensor,
                    params: list[torch.Tensor]) -> twolayer.Gradients:
    """∇f_B: the Frobenius-loss gradients of the batch divided by its size."""
    grads = twolayer.gradients(X, Y, *params)
    return twolayer.Gradients(*(g / len(X) for g in grads))


def step_size(lr: float, progress: float, warmup: float = 0.05) -> float:
    """η at `progress` ∈ [0, 1) of the run: a short linear warm-up, then a linear decay.

    Without the warm-up a large first step can saturate every sigmoid at once, and the net
    stalls at the constant fit (MSE ≈ 27× the noise floor) for some seeds.
    """
    return lr * min(1.0, progress / warmup) * (1 - 0.9 * progress) + 1e-4 * lr


def train(x: torch.Tensor, y: torch.Tensor, *, n_hidden: int = 10, batch_size: int = 100,
          lr: float = 0.5, epochs: int = 1, seed: int = 0) -> list[torch.Tensor]:
    """Plain mini-batch SGD, x <- x - η ∇f_B(x), with `step_size` scheduling η."""
    generator = torch.Generator().manual_seed(seed)
    params = twolayer.init_params(n_hidden, x.shape[1], y.shape[1], seed=seed, dtype=x.dtype)
    steps = epochs * -(-len(x) // batch_size)
    done = 0
    for _ in range(epochs):
        for batch in minibatches(len(x), batch_size, generator):
            eta = step_size(lr, done / steps)
            grads = batch_gradients(x[batch], y[batch], params)
            params = [p - eta * g for p, g in zip(params, grads, strict=True)]
            done += 1
    return params


def mse(params: list[torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> float:
    """Mean-squared error per point of the trained net on (x, y)."""
    _, y_pred = twolayer.forward(x, *params)
    return ((y_pred - y) ** 2).mean().item()
