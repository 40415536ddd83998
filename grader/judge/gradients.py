"""Judging W4-style gradients: compare with the reference, and name the mistake when wrong.

A wrong gradient is matched against the mistakes students are known to make, each computed from
the same inputs: the sigmoid derivative left out, the factor 2 of the square left out, a mean
instead of the Frobenius sum (off by n), a transposed result, a bias gradient not summed over
the batch. The first match becomes the verdict's `Mistake`; `mistakes.describe` puts it in
words.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Sequence
from typing import Any

import nbformat
import numpy as np
import torch

from grader.i18n import N_
from grader.judge.mistakes import NAMES, Mistake, Verdict
from reference import twolayer

__all__ = ["NAMES", "RTOL", "SIZES", "AUTOGRAD", "Verdict", "judge", "judge_one",
           "random_problem", "convention", "check", "first_wrong", "function_source",
           "autograd_calls"]

RTOL = 1e-6
#: The bias conventions, by name; a rubric's feedback may name one (`{bias} biases`), and a
#: Chinese page says it from the catalog.
CONVENTIONS = (N_("vector"), N_("row"), N_("per-sample"))
SIZES = ((1, 3), (7, 10), (50, 20))  # (batch, hidden) of the problems a notebook is asked
AUTOGRAD = ("backward", "grad", "requires_grad_", "requires_grad")


def _variants(X: torch.Tensor, Y: torch.Tensor, W1: torch.Tensor, b1: torch.Tensor,
              W2: torch.Tensor, b2: torch.Tensor) -> dict[Mistake, tuple[torch.Tensor, ...]]:
    """The gradients each known mistake produces, in the order they are tried."""
    right = twolayer.gradients(X, Y, W1, b1, W2, b2)
    h = torch.sigmoid(X @ W1 + b1)
    G = 2 * (h @ W2 + b2 - Y)
    dH = G @ W2.T
    n = X.shape[0]
    return {
        Mistake.SIGMOID_DERIVATIVE: (X.T @ dH, twolayer.reduce_like(dH, b1), right.dW2,
                                     right.db2),
        Mistake.FACTOR_TWO: tuple(g / 2 for g in right),
        Mistake.OFF_BY_N: tuple(g / n for g in right),
        Mistake.SIGN: tuple(-g for g in right),
    }


def judge(student: Sequence[np.ndarray], X: torch.Tensor, Y: torch.Tensor, W1: torch.Tensor,
          b1: torch.Tensor, W2: torch.Tensor, b2: torch.Tensor) -> list[Verdict]:
    """One verdict per gradient (dW1, db1, dW2, db2), naming the mistake of each wrong one."""
    reference = twolayer.gradients(X, Y, W1, b1, W2, b2)
    variants = _variants(X, Y, W1, b1, W2, b2)
    n = X.shape[0]
    if len(student) != 4:
        return [Verdict(name, float("inf"), Mistake.WRONG_COUNT, n, returned=len(student))
                for name in NAMES]
    verdicts = []
    for k, name in enumerate(NAMES):
        wrong = {why: grads[k].numpy() for why, grads in variants.items()}
        verdicts.append(_one(name, np.asarray(student[k], dtype=np.float64),
                             reference[k].numpy(), wrong, n))
    return verdicts


def judge_one(name: str, index: int, value: np.ndarray, X: torch.Tensor, Y: torch.Tensor,
              W1: torch.Tensor, b1: torch.Tensor, W2: torch.Tensor, b2: torch.Tensor) -> Verdict:
    """The verdict on one gradient (index 0..3 for dW1, db1, dW2, db2) given on its own."""
    reference = twolayer.gradients(X, Y, W1, b1, W2, b2)
    wrong = {why: grads[index].numpy()
             for why, grads in _variants(X, Y, W1, b1, W2, b2).items()}
    return _one(name, np.asarray(value, dtype=np.float64), reference[index].numpy(), wrong,
                X.shape[0])


def _one(name: str, mine: np.ndarray, right: np.ndarray, wrong: dict[Mistake, np.ndarray],
         n: int) -> Verdict:
    shapes = {"n": n, "shape": tuple(mine.shape), "expected": tuple(right.shape)}
    if not np.all(np.isfinite(mine)):
        return Verdict(name, float("inf"), Mistake.NOT_FINITE, **shapes)
    shaped = _reshape(mine, right)
    if shaped is None:
        return Verdict(name, float("inf"), _shape_mistake(mine, right, n), **shapes)
    error = _relative(shaped, right)
    if error <= RTOL:
        return Verdict(name, error, Mistake.NONE, **shapes)
    for why, value in wrong.items():
        if _relative(shaped, value) <= RTOL:
            return Verdict(name, error, why, **shapes)
    return Verdict(name, error, Mistake.MISMATCH, **shapes)


def _reshape(mine: np.ndarray, right: np.ndarray) -> np.ndarray | None:
    """Accept shapes that differ only by size-1 axes ((H,) against (1, H), and so on)."""
    if mine.shape == right.shape:
        return mine
    if mine.size == right.size and [d for d in mine.shape if d != 1] == [
            d for d in right.shape if d != 1]:
        return mine.reshape(right.shape)
    return None


def _shape_mistake(mine: np.ndarray, right: np.ndarray, n: int) -> Mistake:
    """Why the shapes differ: transposed, a bias gradient per sample, or neither."""
    close: Callable[[np.ndarray], bool] = lambda a: (a.shape == right.shape  # noqa: E731
                                                     and _relative(a, right) <= RTOL)
    if mine.ndim == 2 and close(mine.T):
        return Mistake.TRANSPOSED
    per_sample = [mine] if mine.ndim >= 1 and mine.shape[0] == n else []
    if mine.ndim == 2 and mine.shape[1] == n:
        per_sample.append(mine.T)  # per-sample gradients laid out as columns: (width, n)
    for each in per_sample:
        summed = _reshape(each.sum(0), right)
        if summed is not None and _relative(summed, right) <= RTOL:
            return Mistake.BIAS_NOT_SUMMED
    return Mistake.SHAPE


def _relative(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300))


def random_problem(rng: np.random.Generator, n: int, hidden: int,
                   bias: str = "vector") -> list[np.ndarray]:
    """X, Y, W1, b1, W2, b2 in float64, with the bias convention named."""
    def shape(width: int) -> tuple[int, ...]:
        return {"vector": (width,), "row": (1, width), "per-sample": (n, width)}[bias]

    return [rng.standard_normal(s) for s in ((n, 1), (n, 1), (1, hidden), shape(hidden),
                                              (hidden, 1), shape(1))]


def convention(student: Any, rng: np.random.Generator) -> str | None:
    """The notebook's bias convention ("vector", "row" or "per-sample"): read from its trained
    b1 when there is one, else the first its `gradients` accepts; None when it accepts none, so
    that a notebook is judged in its own layout."""
    try:
        b1 = student.value("b1")
        if b1.ndim == 2:
            return "row" if b1.shape[0] == 1 else "per-sample"
    except Exception:  # noqa: BLE001 - no trained b1: try each convention
        pass
    for bias in CONVENTIONS:
        try:
            student.call("gradients", *random_problem(rng, 4, 3, bias))
            return bias
        except Exception:  # noqa: BLE001 - a convention the notebook does not accept
            continue
    return None


def check(student: Any, rng: np.random.Generator, bias: str,
          evidence: dict[str, Any] | None = None,
          sizes: Sequence[tuple[int, int]] = SIZES) -> list[Verdict]:
    """The verdicts on the notebook's `gradients` for a fresh problem of each (batch, hidden)
    size, in order; each verdict also goes into `evidence["gradient_errors"]` as soon as it is
    made, so that the report keeps the sizes judged before a probe failed."""
    verdicts = []
    for n, hidden in sizes:
        problem = random_problem(rng, n, hidden, bias)
        answer = student.call("gradients", *problem)
        for verdict in judge(answer, *[torch.from_numpy(a) for a in problem]):
            if evidence is not None:
                evidence.setdefault("gradient_errors", []).append({
                    "batch": n, "hidden": hidden, "parameter": verdict.name,
                    "relative_error": verdict.relative_error, "correct": verdict.correct})
            verdicts.append(verdict)
    return verdicts


def first_wrong(verdicts: Sequence[Verdict]) -> dict[str, Verdict]:
    """The first wrong verdict on each gradient, in the order they were met: a gradient is
    right only when it is right on every problem."""
    wrong: dict[str, Verdict] = {}
    for verdict in verdicts:
        if not verdict.correct:
            wrong.setdefault(verdict.name, verdict)
    return wrong


def function_source(run: Any, name: str = "gradients") -> str:
    """The source of the first code cell of the run's notebook that defines `name`, or "" when
    none does: the cell is read as text, never run."""
    for cell in nbformat.reads(run.notebook, as_version=4).cells:
        if cell.cell_type == "code" and f"def {name}" in cell.source:
            return str(cell.source)
    return ""


def autograd_calls(source: str) -> set[str]:
    """The autograd attributes and keywords (`.backward()`, `requires_grad=`, ...) this source
    uses: a gradient asked to be derived by hand must use none."""
    tree = ast.parse(source.lstrip())
    used = {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)}
    used |= {node.arg for node in ast.walk(tree) if isinstance(node, ast.keyword)
             if node.arg is not None}
    return used & set(AUTOGRAD)
