"""Judging W4-style gradients: compare with the reference, and name the mistake when wrong.

A wrong gradient is matched against the mistakes students are known to make, each computed from
the same inputs: the sigmoid derivative left out, the factor 2 of the square left out, a mean
instead of the Frobenius sum (off by n), a transposed result, a bias gradient not summed over
the batch. The first match becomes the feedback.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from reference import twolayer

NAMES = ("dW1", "db1", "dW2", "db2")
RTOL = 1e-6


@dataclass(frozen=True)
class Verdict:
    name: str
    correct: bool
    relative_error: float
    diagnosis: str  # empty when correct


def _variants(X: torch.Tensor, Y: torch.Tensor, W1: torch.Tensor, b1: torch.Tensor,
              W2: torch.Tensor, b2: torch.Tensor) -> dict[str, tuple[torch.Tensor, ...]]:
    """The gradients each known mistake produces, keyed by the feedback that names it."""
    right = twolayer.gradients(X, Y, W1, b1, W2, b2)
    h = torch.sigmoid(X @ W1 + b1)
    G = 2 * (h @ W2 + b2 - Y)
    dH = G @ W2.T
    n = X.shape[0]
    return {
        "the sigmoid derivative h_sigmoid ⊙ (1 − h_sigmoid) is missing from the chain rule":
            (X.T @ dH, twolayer.reduce_like(dH, b1), right.dW2, right.db2),
        "the factor 2 from the square is missing (f = ||Y − Y_pred||², so df/dY_pred = "
        "2(Y_pred − Y))": tuple(g / 2 for g in right),
        f"every gradient is off by a factor of n = {n}: the loss is the Frobenius sum "
        "||Y − Y_pred||²_F, not the mean (MSE)": tuple(g / n for g in right),
        "the sign is reversed: the gradient points uphill (Y − Y_pred instead of Y_pred − Y)":
            tuple(-g for g in right),
    }


def judge(student: list[np.ndarray], X: torch.Tensor, Y: torch.Tensor, W1: torch.Tensor,
          b1: torch.Tensor, W2: torch.Tensor, b2: torch.Tensor) -> list[Verdict]:
    """One verdict per gradient (dW1, db1, dW2, db2), with a diagnosis for each wrong one."""
    reference = twolayer.gradients(X, Y, W1, b1, W2, b2)
    variants = _variants(X, Y, W1, b1, W2, b2)
    if len(student) != 4:
        return [Verdict(name, False, float("inf"), f"`gradients` returned {len(student)} "
                        "values; it must return dW1, db1, dW2, db2") for name in NAMES]
    verdicts = []
    for k, name in enumerate(NAMES):
        wrong = {why: grads[k].numpy() for why, grads in variants.items()}
        verdicts.append(_one(name, np.asarray(student[k], dtype=np.float64),
                             reference[k].numpy(), wrong, X.shape[0]))
    return verdicts


def judge_one(name: str, index: int, value: np.ndarray, X: torch.Tensor, Y: torch.Tensor,
              W1: torch.Tensor, b1: torch.Tensor, W2: torch.Tensor, b2: torch.Tensor) -> Verdict:
    """The verdict on one gradient (index 0..3 for dW1, db1, dW2, db2) given on its own."""
    reference = twolayer.gradients(X, Y, W1, b1, W2, b2)
    wrong = {why: grads[index].numpy()
             for why, grads in _variants(X, Y, W1, b1, W2, b2).items()}
    return _one(name, np.asarray(value, dtype=np.float64), reference[index].numpy(), wrong,
                X.shape[0])


def _one(name: str, mine: np.ndarray, right: np.ndarray, wrong: dict[str, np.ndarray],
         n: int) -> Verdict:
    if not np.all(np.isfinite(mine)):
        return Verdict(name, False, float("inf"), f"{name} contains NaN or infinity")
    shaped = _reshape(mine, right)
    if shaped is None:
        return Verdict(name, False, float("inf"), _shape_diagnosis(name, mine, right, n))
    error = _relative(shaped, right)
    if error <= RTOL:
        return Verdict(name, True, error, "")
    for why, value in wrong.items():
        if _relative(shaped, value) <= RTOL:
            return Verdict(name, False, error, f"{name}: {why}")
    return Verdict(name, False, error, f"{name} does not match the derivative "
                   f"(relative error {error:.2g})")


def _reshape(mine: np.ndarray, right: np.ndarray) -> np.ndarray | None:
    """Accept shapes that differ only by size-1 axes ((H,) against (1, H), and so on)."""
    if mine.shape == right.shape:
        return mine
    if mine.size == right.size and [d for d in mine.shape if d != 1] == [
            d for d in right.shape if d != 1]:
        return mine.reshape(right.shape)
    return None


def _shape_diagnosis(name: str, mine: np.ndarray, right: np.ndarray, n: int) -> str:
    close: Callable[[np.ndarray], bool] = lambda a: (a.shape == right.shape  # noqa: E731
                                                     and _relative(a, right) <= RTOL)
    if mine.ndim == 2 and close(mine.T):
        return f"{name} is transposed: shape {list(mine.shape)}, expected {list(right.shape)}"
    if mine.ndim >= 1 and mine.shape[0] == n and _reshape(mine.sum(0), right) is not None \
            and _relative(_reshape(mine.sum(0), right), right) <= RTOL:
        return (f"{name} is not summed over the batch: the bias is shared by all {n} samples, "
                f"so its gradient is the sum of the per-sample gradients (shape "
                f"{list(right.shape)}, got {list(mine.shape)})")
    return f"{name} has shape {list(mine.shape)}, expected {list(right.shape)}"


def _relative(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300))


def random_problem(rng: np.random.Generator, n: int, hidden: int,
                   bias: str = "vector") -> list[np.ndarray]:
    """X, Y, W1, b1, W2, b2 in float64, with the bias convention named."""
    def shape(width: int) -> tuple[int, ...]:
        return {"vector": (width,), "row": (1, width), "per-sample": (n, width)}[bias]

    return [rng.standard_normal(s) for s in ((n, 1), (n, 1), (1, hidden), shape(hidden),
                                              (hidden, 1), shape(1))]
