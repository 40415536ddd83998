"""W4 reference: a two-layer sigmoid network and the analytic gradients of its loss.

    h          = X W1 + b1
    h_sigmoid  = sigmoid(h)
    Y_pred     = h_sigmoid W2 + b2
    f          = ||Y - Y_pred||_F^2                 (a sum over the batch, not a mean)

With G = 2 (Y_pred - Y) and ⊙ the elementwise product:

    dW2 = h_sigmoidᵀ G            db2 = 1ᵀ G
    dH  = (G W2ᵀ) ⊙ h_sigmoid ⊙ (1 - h_sigmoid)
    dW1 = Xᵀ dH                   db1 = 1ᵀ dH

Students model biases three ways: a vector (H,), a row (1, H), or one row per sample (n, H). A
bias gradient has the shape of its bias, so it is summed over the batch exactly where the bias was
broadcast over it. Works for torch tensors of any float dtype.
"""

from __future__ import annotations

from typing import NamedTuple

import torch


class Gradients(NamedTuple):
    dW1: torch.Tensor
    db1: torch.Tensor
    dW2: torch.Tensor
    db2: torch.Tensor


def forward(X: torch.Tensor, W1: torch.Tensor, b1: torch.Tensor, W2: torch.Tensor,
            b2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (h_sigmoid, Y_pred); the hidden activation is what the gradients need."""
    h_sigmoid = torch.sigmoid(X @ W1 + b1)
    return h_sigmoid, h_sigmoid @ W2 + b2


def loss(Y: torch.Tensor, Y_pred: torch.Tensor) -> torch.Tensor:
    """The squared Frobenius norm ||Y - Y_pred||_F^2."""
    return ((Y - Y_pred) ** 2).sum()


def reduce_like(grad: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """Sum a per-sample gradient over every axis along which `bias` was broadcast."""
    return grad.sum_to_size(bias.shape) if bias.shape != grad.shape else grad


def gradients(X: torch.Tensor, Y: torch.Tensor, W1: torch.Tensor, b1: torch.Tensor,
              W2: torch.Tensor, b2: torch.Tensor) -> Gradients:
    """Analytic gradients of f with respect to W1, b1, W2, b2 (each shaped like its parameter)."""
    h_sigmoid, Y_pred = forward(X, W1, b1, W2, b2)
    G = 2 * (Y_pred - Y)
    dH = (G @ W2.T) * h_sigmoid * (1 - h_sigmoid)
    return Gradients(
        dW1=X.T @ dH,
        db1=reduce_like(dH, b1),
        dW2=h_sigmoid.T @ G,
        db2=reduce_like(G, b2),
    )


def slide_data(n: int = 100, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """The slide's data: y = x² + 0.2·U(0, 1) on n points of [-1, 1]."""
    torch.manual_seed(seed)  # reproducible
    x = torch.unsqueeze(torch.linspace(-1, 1, n), dim=1)
    y = x.pow(2) + 0.2 * torch.rand(x.size())
    return x, y


def init_params(n_hidden: int = 10, n_in: int = 1, n_out: int = 1, seed: int = 0,
                dtype: torch.dtype = torch.float32) -> list[torch.Tensor]:
    """W1, b1, W2, b2 with the vector bias convention, scaled like nn.Linear's default."""
    g = torch.Generator().manual_seed(seed)

    def uniform(*shape: int, fan_in: int) -> torch.Tensor:
        return (torch.rand(*shape, generator=g, dtype=dtype) * 2 - 1) / fan_in**0.5

    return [uniform(n_in, n_hidden, fan_in=n_in), uniform(n_hidden, fan_in=n_in),
            uniform(n_hidden, n_out, fan_in=n_hidden), uniform(n_out, fan_in=n_hidden)]


def train(x: torch.Tensor, y: torch.Tensor, n_hidden: int = 10, lr: float = 0.002,
          steps: int = 20_000, seed: int = 0) -> list[torch.Tensor]:
    """Full-batch gradient descent with the analytic gradients; no autograd involved.

    Returns the trained [W1, b1, W2, b2]. The loss is a sum, so the step size scales with 1/n.
    """
    params = init_params(n_hidden, x.shape[1], y.shape[1], seed=seed, dtype=x.dtype)
    step = lr * 100 / len(x)
    for _ in range(steps):
        grads = gradients(x, y, *params)
        params = [p - step * g for p, g in zip(params, grads, strict=True)]
    return params
