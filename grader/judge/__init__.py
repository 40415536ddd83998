"""The trusted judge: rubric tests, numeric comparison, accuracy, timing.

What a rubric may import is `__all__` below, by name from `grader.judge`; everything else in
the package is plumbing that may change under a rubric. A verdict carries its `Mistake` and
the numbers of its message: judge by those fields, and put them in words with `describe`,
`summarize` or `summarize_readings`, never by matching the words.

Gradients (W4, W5)
    GRADIENT_NAMES        ("dW1", "db1", "dW2", "db2"), in the order `gradients` returns them
    random_problem        X, Y, W1, b1, W2, b2 drawn fresh, with a bias convention
    bias_convention       the notebook's bias convention, from its b1 or its `gradients`
    judge_gradients       one Verdict per gradient against the reference
    judge_gradient        the Verdict on one gradient given on its own
    check_gradients       the notebook's `gradients` asked and judged on problems of each size
    first_wrong           the first wrong verdict on each gradient
    function_source       the code cell that defines a function, as text
    autograd_calls        the autograd attributes and keywords a source uses
Gradients computed in code, without a `gradients` function (W4)
    code_cells            the code cells of the run's notebook
    find_code_gradients   the gradient each assignment or `.grad` comparison computes, read
    check_code_gradients  those evaluated in the sandbox on fresh inputs and judged here
    summarize_code_gradients  one line on the readings of those gradients
Derivations written in markdown (W4)
    markdown_cells        the markdown cells of the run's notebook
    read_markdown         every expression found, with its Reading
    best_readings         the best Reading of each gradient
    judge_markdown        read_markdown, then best_readings
    derivation_evidence   the rows of `evidence["derivations"]`
The mini-batch loop written out, without `minibatches` or `batch_gradients` (W5)
    find_batch_loop       the notebook's batch loop, permutation, loss and zeroing, read
    check_batching        its batching evaluated in the sandbox on the judge's sizes, judged
    judge_batch_loss      whether its loss is the batch mean and its gradients are zeroed
Verdicts and their words
    Mistake, Verdict, Reading, describe, summarize, summarize_readings
    say, N_, Words        a sentence for the student that the report can say in Chinese too:
                          `say("{name} is off by {k}", name=..., k=...)`; the English
                          template is the catalog's message id (grader/i18n.py)
Models (W6)
    find_model, predictions, fraction_correct, accuracy, confusion, misclassified,
    verify_layers, architecture_notes, LAYER_KINDS (the layer kinds `verify_layers` checks,
    in words)
Regression models and saved models (W4, W5)
    regression_fit        the trained model mapping one input to one output, whatever its
                          names, judged on fresh points of the slide's curve
    saved_files           the files a notebook saved, found by what they hold
    judge_saving          whether its saved state_dict and whole net restore its trained net

The names are loaded on first use, so that importing the grader does not import torch.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from grader.i18n import N_, Words, say
    from grader.judge.derived import check as check_code_gradients
    from grader.judge.derived import code_cells
    from grader.judge.derived import find as find_code_gradients
    from grader.judge.derived import summarize_code as summarize_code_gradients
    from grader.judge.gradients import NAMES as GRADIENT_NAMES
    from grader.judge.gradients import autograd_calls, first_wrong, function_source, random_problem
    from grader.judge.gradients import check as check_gradients
    from grader.judge.gradients import convention as bias_convention
    from grader.judge.gradients import judge as judge_gradients
    from grader.judge.gradients import judge_one as judge_gradient
    from grader.judge.latex import best as best_readings
    from grader.judge.latex import evidence as derivation_evidence
    from grader.judge.latex import judge_markdown, markdown_cells, read_markdown
    from grader.judge.loops import check_batching, judge_batch_loss
    from grader.judge.loops import find_loop as find_batch_loop
    from grader.judge.mistakes import (
        Mistake,
        Reading,
        Verdict,
        describe,
        summarize,
        summarize_readings,
    )
    from grader.judge.models import KINDS as LAYER_KINDS
    from grader.judge.models import (
        accuracy,
        architecture_notes,
        confusion,
        fraction_correct,
        misclassified,
        predictions,
        regression_fit,
        verify_layers,
    )
    from grader.judge.models import find as find_model
    from grader.judge.saved import judge_saving, saved_files

__all__ = [
    # gradients (W4, W5)
    "GRADIENT_NAMES", "random_problem", "bias_convention", "judge_gradients", "judge_gradient",
    "check_gradients", "first_wrong", "function_source", "autograd_calls",
    # gradients computed in code (W4)
    "code_cells", "find_code_gradients", "check_code_gradients", "summarize_code_gradients",
    # derivations written in markdown (W4)
    "markdown_cells", "read_markdown", "best_readings", "judge_markdown", "derivation_evidence",
    # the mini-batch loop written out, without `minibatches` (W5)
    "find_batch_loop", "check_batching", "judge_batch_loss",
    # verdicts and their words
    "Mistake", "Verdict", "Reading", "describe", "summarize", "summarize_readings",
    "say", "N_", "Words",
    # models (W6)
    "find_model", "predictions", "fraction_correct", "accuracy", "confusion", "misclassified",
    "verify_layers", "architecture_notes", "LAYER_KINDS",
    # regression models and saved models (W4, W5)
    "regression_fit", "saved_files", "judge_saving",
]

#: The sentence-making names, from grader.i18n (which imports no torch).
_WORDS = ("say", "N_", "Words")

# Where each public name lives: (module under grader.judge, its name there).
_EXPORTS: dict[str, tuple[str, str]] = {
    "GRADIENT_NAMES": ("gradients", "NAMES"),
    "random_problem": ("gradients", "random_problem"),
    "bias_convention": ("gradients", "convention"),
    "judge_gradients": ("gradients", "judge"),
    "judge_gradient": ("gradients", "judge_one"),
    "check_gradients": ("gradients", "check"),
    "first_wrong": ("gradients", "first_wrong"),
    "function_source": ("gradients", "function_source"),
    "autograd_calls": ("gradients", "autograd_calls"),
    "code_cells": ("derived", "code_cells"),
    "find_code_gradients": ("derived", "find"),
    "check_code_gradients": ("derived", "check"),
    "summarize_code_gradients": ("derived", "summarize_code"),
    "markdown_cells": ("latex", "markdown_cells"),
    "read_markdown": ("latex", "read_markdown"),
    "best_readings": ("latex", "best"),
    "judge_markdown": ("latex", "judge_markdown"),
    "derivation_evidence": ("latex", "evidence"),
    "find_batch_loop": ("loops", "find_loop"),
    "check_batching": ("loops", "check_batching"),
    "judge_batch_loss": ("loops", "judge_batch_loss"),
    "Mistake": ("mistakes", "Mistake"),
    "Verdict": ("mistakes", "Verdict"),
    "Reading": ("mistakes", "Reading"),
    "describe": ("mistakes", "describe"),
    "summarize": ("mistakes", "summarize"),
    "summarize_readings": ("mistakes", "summarize_readings"),
    "find_model": ("models", "find"),
    "predictions": ("models", "predictions"),
    "fraction_correct": ("models", "fraction_correct"),
    "accuracy": ("models", "accuracy"),
    "confusion": ("models", "confusion"),
    "misclassified": ("models", "misclassified"),
    "verify_layers": ("models", "verify_layers"),
    "architecture_notes": ("models", "architecture_notes"),
    "LAYER_KINDS": ("models", "KINDS"),
    "regression_fit": ("models", "regression_fit"),
    "saved_files": ("saved", "saved_files"),
    "judge_saving": ("saved", "judge_saving"),
}


def __getattr__(name: str) -> Any:
    """A public name, loaded from its module on first use."""
    if name in _WORDS:
        return getattr(import_module("grader.i18n"), name)
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, attribute = _EXPORTS[name]
    value = getattr(import_module(f"{__name__}.{module}"), attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
