"""W5 public rubric: one epoch of mini-batches, and the batch-mean gradient."""

import numpy as np
import pytest
import torch

from grader.judge import (
    GRADIENT_NAMES,
    check_batching,
    code_cells,
    find_batch_loop,
    function_source,
    judge_batch_loss,
    random_problem,
    say,
)


@pytest.mark.points(2)
def test_each_index_once_per_epoch(student, run, credit, evidence):
    """One epoch of mini-batches visits every point once

    `minibatches(103, 10)` is asked for two epochs: every index once per epoch, batches of
    |B| = 10 but the last, and a new order each epoch. A notebook without `minibatches` (the
    course's own had none) has its loop read, never run here: the permutation drawn inside the
    epoch loop, and its batch slicing and permutation call evaluated in the sandbox on 103
    points in batches of 10."""
    if not function_source(run, "minibatches"):
        judged = check_batching(student, find_batch_loop(code_cells(run)), evidence)
        assert judged.earned > 0, judged.feedback
        credit(judged.earned, judged.feedback)
        return
    first = student.call("minibatches", np.array(103), np.array(10), torch=False)
    second = student.call("minibatches", np.array(103), np.array(10), torch=False)
    seen = np.sort(np.concatenate([np.ravel(b) for b in first]).astype(np.int64))
    missing = sorted(set(range(103)) - set(seen.tolist()))
    assert not missing, say("one epoch of 103 points in batches of 10 leaves out {count} points "
                            "(the last, shorter batch is missing?)", count=len(missing))
    assert seen.tolist() == list(range(103)), "some points are visited twice in one epoch"
    sizes = [np.size(b) for b in first]
    assert all(s == 10 for s in sizes[:-1]), say(
        "batch sizes {sizes}: every batch but the last must hold |B| = 10 points", sizes=sizes)
    order = np.concatenate([np.ravel(b) for b in second])
    assert not np.array_equal(np.concatenate([np.ravel(b) for b in first]), order), \
        "two epochs visit the points in the same order: draw a new permutation each epoch"


@pytest.mark.points(3)
def test_batch_gradient_is_the_mean(student, reference, run, credit, evidence):
    """The batch gradient is the mean over the batch

    `batch_gradients` on a fresh random batch of 16, compared with the reference's. A notebook
    without `batch_gradients` has its loop read, never run here: half for a loss that is the
    batch mean, half for gradients zeroed between updates."""
    if not function_source(run, "batch_gradients"):
        judged = judge_batch_loss(find_batch_loop(code_cells(run)))
        evidence["batch_loss"] = judged.rows
        assert judged.earned > 0, judged.feedback
        credit(judged.earned, judged.feedback)
        return
    rng = np.random.default_rng()
    problem = random_problem(rng, 16, 6)
    mine = [np.asarray(g, dtype=np.float64) for g in student.call("batch_gradients", *problem)]
    params = [torch.from_numpy(a) for a in problem[2:]]
    right = reference.minibatch.batch_gradients(torch.from_numpy(problem[0]),
                                                torch.from_numpy(problem[1]), params)
    ratios = [float(np.median(m.reshape(r.shape) / r.numpy())) if m.size == r.numel() else None
              for m, r in zip(mine, right, strict=False)]
    if all(r is not None and abs(r - 16) < 1e-6 for r in ratios):
        pytest.fail("the gradient is the batch sum, not the batch mean: divide by |B| = 16")
    for name, m, r in zip(GRADIENT_NAMES, mine, right, strict=False):
        assert m.size == r.numel(), say("{name} has shape {shape}, expected {expected}",
                                        name=name, shape=list(m.shape), expected=list(r.shape))
        error = float(np.linalg.norm(m.reshape(r.shape) - r.numpy()) / np.linalg.norm(r.numpy()))
        assert error < 1e-6, say("{name} is not the batch-mean gradient (relative error "
                                 "{error:.2g})", name=name, error=error)
