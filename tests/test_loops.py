"""The W5 mini-batch loop a notebook writes out: read from its text (never run in the grader),
its batching evaluated on the judge's own sizes; the slow tests grade course-era notebooks
through the real sandbox with the W5 public rubric."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from grader.judge import loops
from grader.sandbox import kernel_probe
from grader.sandbox.probes import ProbeError
from tests import course_w5

REPO = Path(__file__).resolve().parent.parent
EPOCH_ITEM = "test_each_index_once_per_epoch"
MEAN_ITEM = "test_batch_gradient_is_the_mean"


class Kernel:
    """A stand-in for the sandbox's `evaluate`: the kernel's own answer, run here on the test's
    text only (the grader never runs a notebook's code in its own process)."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def evaluate(self, expression: str, arrays: dict[str, Any], *, torch: bool = True,
                 timeout: float = 60) -> np.ndarray:
        self.asked.append(expression)
        with tempfile.TemporaryDirectory() as folder:
            inputs = []
            for i, value in enumerate(arrays.values()):
                inputs.append(f"{folder}/{i}.npy")
                np.save(inputs[-1], np.asarray(value), allow_pickle=False)
            try:
                answer = kernel_probe.evaluate({"expression": expression, "inputs": inputs,
                                                "names": list(arrays), "torch": torch},
                                               folder, {})
            except Exception as error:  # what the agent reports as a failed question
                raise ProbeError(str(error), "raised") from None
            return np.load(answer["outputs"][0], allow_pickle=False)


def judged(cells: list[str]) -> tuple[loops.LoopVerdict, loops.LoopVerdict]:
    loop = loops.find_loop(cells)
    return loops.check_batching(Kernel(), loop), loops.judge_batch_loss(loop)


# ----------------------------------------------------------------------------- reading


def test_the_course_notebook_is_read():
    loop = loops.find_loop(course_w5.course_own())
    assert loop.batch_header == "for batch_i in range(data_size // batch_size):"
    assert loop.epoch_header == "for epoch in range(EPOCH):"
    assert loop.per_epoch and loop.order == "random_indx"
    assert loop.permutation_call == "np.random.permutation(data_size)"
    assert loop.index == "random_indx[batch_i * batch_size:(batch_i + 1) * batch_size]"
    assert (loop.data_name, loop.batch_name) == ("data_size", "batch_size")
    assert loop.reduction == "mean" and loop.backward
    assert loop.zeroing == "" and loop.update == "para.data -= lr * para.grad"


def test_a_permutation_before_the_epoch_loop_is_not_per_epoch():
    loop = loops.find_loop(course_w5.permuted_once())
    assert not loop.per_epoch and loop.epoch_header == "for epoch in range(EPOCH):"


@pytest.mark.parametrize(("loss", "reduction"), [
    ("loss = ((yp - y[indx]) ** 2).mean()", "mean"),
    ("loss = ((yp - y[indx]) ** 2).sum()", "sum"),
    ("loss = ((yp - y[indx]) ** 2).sum() / batch_size", "mean"),
    ("loss = torch.nn.functional.mse_loss(yp, y[indx])", "mean"),
    ("loss = torch.nn.MSELoss(reduction='sum')(yp, y[indx])", "sum"),
    ("loss = torch.sum((yp - y[indx]) ** 2) / len(indx)", "mean"),
])
def test_the_reduction_of_the_loss_is_read(loss, reduction):
    cells = [*course_w5.course_own()[:3], "\n".join([
        "for epoch in range(EPOCH):",
        "    random_indx = np.random.permutation(data_size)",
        "    for i in range(0, data_size, batch_size):",
        "        indx = random_indx[i:i + batch_size]",
        "        yp = net(x[indx])",
        f"        {loss}",
        "        net.zero_grad()",
        "        loss.backward()"])]
    loop = loops.find_loop(cells)
    assert loop.reduction == reduction and loop.zeroing == "net.zero_grad()"


@pytest.mark.parametrize("zeroing", ["para.grad.zero_()", "para.grad = None",
                                     "para.grad.data.zero_()", "optimizer.zero_grad()"])
def test_each_way_of_zeroing_is_seen(zeroing):
    cells = course_w5.course_own()
    cells[-1] = cells[-1].replace("para.data -= lr * para.grad",
                                  f"para.data -= lr * para.grad\n            {zeroing}")
    assert loops.find_loop(cells).zeroing == zeroing


def test_nothing_found_names_what_was_looked_for():
    loop = loops.find_loop([course_w5.HEAD, course_w5.DATA, "print(x.shape)"])
    assert not loop
    epoch, mean = loops.check_batching(Kernel(), loop), loops.judge_batch_loss(loop)
    assert epoch.earned == mean.earned == 0
    assert "np.random.permutation(data_size)" in epoch.feedback
    assert "loss.backward()" in mean.feedback


def test_an_expression_reaching_past_its_values_is_not_evaluated():
    cells = course_w5.course_own()
    cells[-1] = cells[-1].replace("(batch_i+1)*batch_size]",
                                  "(batch_i+1)*batch_size + batch_i.__class__(0)]")
    kernel = Kernel()
    verdict = loops.check_batching(kernel, loops.find_loop(cells))
    assert "`.__class__`" in verdict.feedback
    assert not any("__class__" in asked for asked in kernel.asked)


# ----------------------------------------------------------------------------- judging


@pytest.mark.parametrize("name", sorted(course_w5.EXPECTED))
def test_each_course_notebook_earns_what_a_ta_gives(name):
    build, epoch_points, mean_points, epoch_why, mean_why = course_w5.EXPECTED[name]
    epoch, mean = judged(build())
    assert (2 * epoch.earned, 3 * mean.earned) == (epoch_points, mean_points), \
        (epoch.feedback, mean.feedback)
    assert epoch_why in epoch.feedback and mean_why in mean.feedback


def test_the_dropped_remainder_is_named_with_the_judges_sizes():
    epoch, _ = judged(course_w5.course_own())
    assert "the last 3 are never visited" in epoch.feedback
    assert epoch.rows["batch_sizes"] == [10] * 10


def test_a_permutation_that_repeats_itself_earns_nothing_for_the_order():
    cells = course_w5.course_own()
    cells[-1] = cells[-1].replace("np.random.permutation(data_size)",
                                  "np.random.RandomState(0).permutation(data_size)")
    epoch, _ = judged(cells)
    assert "gives the same order every time" in epoch.feedback
    assert epoch.earned == 0.5  # per epoch and the batch size; the remainder still dropped


def test_a_data_loader_is_read_from_its_keywords():
    cells = [course_w5.HEAD, course_w5.DATA, course_w5.NET,
             "loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), "
             "batch_size=batch_size, shuffle=True)\n"
             "for epoch in range(EPOCH):\n    for xb, yb in loader:\n"
             "        loss = loss_func(net(xb), yb)\n        loss.backward()"]
    epoch, mean = judged(cells)
    assert epoch.earned == 1.0, epoch.feedback
    assert mean.earned == 0.0  # there is no batch loop over a permutation to read it from


# ----------------------------------------------------------------------------- the real sandbox


def grade_course(tmp_path: Path, notebooks: dict[str, Path]) -> dict[str, Any]:
    """Grade these notebooks as a class folder, each through the real sandbox and the W5
    public rubric; their results by student."""
    from grader import assignments, intake
    from grader.judge.grade import grade
    from grader.sandbox import ResourceLimits, SandboxConfig

    folder = tmp_path / "class"
    folder.mkdir()
    for name, path in notebooks.items():
        (folder / f"{name}_W5_Regression_Batch.ipynb").write_bytes(path.read_bytes())
    assignment = assignments.load(REPO / "assignments" / "W5")
    found, rejected = intake.collect(folder, assignment, tmp_path / "scratch")
    assert not rejected
    config = SandboxConfig(resources=ResourceLimits(memory_mb=4096, pids=128, disk_mb=256),
                           cell_seconds=120, notebook_seconds=300)
    return {s.student: grade(s, assignment, config, public_only=True) for s in found}


def item(result: Any, name: str) -> Any:
    return next(i for i in result.items if i.name == name)


@pytest.mark.slow
def test_course_notebooks_graded_through_the_sandbox(tmp_path):
    paths = {name.replace("_", ""): course_w5.write(tmp_path / f"{name}.ipynb", build())
             for name, (build, *_) in course_w5.EXPECTED.items()}
    results = grade_course(tmp_path, paths)
    for name, (_, epoch_points, mean_points, epoch_why, mean_why) in \
            course_w5.EXPECTED.items():
        result = results[name.replace("_", "")]
        assert result.run.outcome == "completed", (name, result.run.reason)
        epoch, mean = item(result, EPOCH_ITEM), item(result, MEAN_ITEM)
        assert (epoch.score, mean.score) == (epoch_points, mean_points), \
            (name, epoch.feedback, mean.feedback)
        assert epoch_why in epoch.feedback and mean_why in mean.feedback
        for each in (epoch, mean):
            assert not re.search(r"Error:|Traceback|KeyError", each.feedback), (name, each)


@pytest.mark.slow
def test_the_bundled_examples_keep_their_public_scores(tmp_path):
    """They define `minibatches` and `batch_gradients`: the contract path judges them as
    before (bob drops the remainder and sums the batch)."""
    examples = {s: REPO / "submissions" / f"{s}_W5_Regression_Batch.ipynb"
                for s in ("alice", "bob", "carol")}
    results = grade_course(tmp_path, examples)
    scores = {s: (item(r, EPOCH_ITEM).score, item(r, MEAN_ITEM).score)
              for s, r in results.items()}
    assert scores == {"alice": (2, 3), "bob": (0, 0), "carol": (2, 3)}
