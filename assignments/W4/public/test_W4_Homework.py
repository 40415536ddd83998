"""W4 public rubric: the gradients you derived, checked on inputs drawn fresh for every run."""

import nbformat
import numpy as np
import pytest
import torch

from grader.judge import gradients, latex

CONVENTIONS = ("vector", "row", "per-sample")


def convention(student, rng):
    """The bias convention of the notebook: from its trained b1 when there is one (vector,
    1xH row, or one row per sample), else the first one its `gradients` accepts."""
    try:
        b1 = student.value("b1")
        if b1.ndim == 2:
            return "row" if b1.shape[0] == 1 else "per-sample"
    except Exception:  # noqa: BLE001 - no trained b1: try each convention
        pass
    for bias in CONVENTIONS:
        try:
            student.call("gradients", *gradients.random_problem(rng, 4, 3, bias))
            return bias
        except Exception:  # noqa: BLE001 - a convention the notebook does not accept
            continue
    return None


@pytest.mark.points(6)
def test_gradients_match_the_derivation(student, credit, evidence):
    rng = np.random.default_rng()  # fresh inputs every run
    bias = convention(student, rng)
    assert bias is not None, "`gradients(X, Y, W1, b1, W2, b2)` could not be called: see the run"
    right = dict.fromkeys(gradients.NAMES, True)
    problems: dict[str, list[str]] = {}
    for n, hidden in ((1, 3), (7, 10), (50, 20)):
        problem = gradients.random_problem(rng, n, hidden, bias)
        answer = student.call("gradients", *problem)
        for verdict in gradients.judge(answer, *[torch.from_numpy(a) for a in problem]):
            evidence.setdefault("gradient_errors", []).append({
                "batch": n, "hidden": hidden, "parameter": verdict.name,
                "relative_error": verdict.relative_error, "correct": verdict.correct})
            if not verdict.correct and right[verdict.name]:
                right[verdict.name] = False
                why = verdict.diagnosis.removeprefix(f"{verdict.name}: ")
                problems.setdefault(why, []).append(verdict.name)
    earned = sum(right.values()) / len(right)
    feedback = "; ".join(why if why.startswith(names[0]) else f"{', '.join(names)}: {why}"
                         for why, names in problems.items())
    assert earned > 0, feedback
    credit(earned, feedback or f"all four gradients right ({bias} biases)")


@pytest.mark.points(4)
def test_derivative_expressions(run, credit, evidence):
    """Task 2: the expressions written in markdown, read (never run) and checked numerically."""
    cells = nbformat.reads(run.notebook, as_version=4).cells if run.notebook else []
    markdown = [cell.source for cell in cells if cell.cell_type == "markdown"]
    every = latex.read_markdown(markdown, np.random.default_rng())
    evidence["derivations"] = [{"target": r.target, "latex": r.latex, "verdict": r.verdict,
                                "feedback": r.feedback} for r in every]
    readings = latex.best(every)
    assert readings, "no derivative expressions (such as \\frac{\\partial f}{\\partial W_1} = " \
        "...) found in the markdown cells"
    right = [name for name in gradients.NAMES if readings.get(name) and
             readings[name].verdict == "right"]
    notes = []
    for name in gradients.NAMES:
        reading = readings.get(name)
        if reading is None:
            notes.append(f"{name}: not found")
        elif reading.verdict != "right" or "(" in reading.feedback:
            notes.append(reading.feedback if reading.feedback.startswith(name)
                         else f"{name}: {reading.feedback}")
    assert right, "; ".join(notes)
    credit(len(right) / 4, "; ".join(notes) or "all four expressions right")
