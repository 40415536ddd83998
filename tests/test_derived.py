"""Gradients a notebook computes in code (grader/judge/derived.py): found, filled in and mapped
from the text alone, then judged; the slow tests grade course-era notebooks through the real
sandbox and the W4 rubric."""

from __future__ import annotations

import ast
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from grader.judge import derived
from grader.judge.mistakes import Mistake
from grader.sandbox import kernel_probe, protocol
from grader.sandbox.probes import ProbeError
from tests import course_w4

REPO = Path(__file__).resolve().parent.parent


def found_in(*cells: str) -> derived.CodeGradients:
    return derived.find(list(cells))


def names_in(expression: str) -> set[str]:
    return {n.id for n in ast.walk(ast.parse(expression, mode="eval"))
            if isinstance(n, ast.Name)}


DATA = "import torch\n" + course_w4.SLIDE_DATA


# ----------------------------------------------------------------------------- finding

@pytest.mark.parametrize("name", ["w1_grad", "grad_w1", "dW1", "W1_grad", "dw1", "dL_dW1",
                                  "grad_W_1", "w1_grad_manual", "my_dw1", "dweight1"])
def test_names_that_say_gradient_of_w1(name):
    cells = [DATA, course_w4.PER_SAMPLE, course_w4.FORWARD,
             f"{name} = -2 * x.t().mm((y - yp).mm(w2.t()).mul(hs).mul(1 - hs))"]
    found = derived.find(cells).found
    assert list(found) == ["dW1"] and found["dW1"].target == name


@pytest.mark.parametrize("name", ["w1", "b12", "w1_grads", "lr", "delta1", "dx", "w_new"])
def test_names_that_are_not_a_gradient(name):
    cells = [DATA, course_w4.PER_SAMPLE, course_w4.FORWARD, f"{name} = 2 * hs.t().mm(y - yp)"]
    assert not derived.find(cells)


def test_the_course_notebook_is_read_down_to_its_inputs_and_parameters():
    found = derived.find(course_w4.code(course_w4.torch_per_sample()))
    assert found.names == {"x": "X", "w1": "W1", "b1": "b1", "w2": "W2", "b2": "b2", "y": "Y"}
    assert list(found.found) == ["dW1", "db1", "dW2", "db2"]
    for each in found.found.values():
        assert each.judged and each.kind == "torch"
        assert names_in(each.expression) <= {"X", "Y", "W1", "b1", "W2", "b2", "torch"}
    assert found.found["dW1"].compared and found.found["dW1"].source == \
        "w1_grad = -2 * x.t().mm((y - yp).mm(w2.t()).mul(hs).mul(1 - hs))"


def test_the_value_assigned_at_that_point_is_filled_in():
    found = found_in(DATA, course_w4.PER_SAMPLE,
                     "hs = torch.sigmoid(x.mm(w1) + b1)\nyp = hs.mm(w2) + b2\n"
                     "w2_grad = 2 * hs.t().mm(yp - y)\nhs = torch.zeros(3)")
    assert "torch.zeros" not in found.found["dW2"].expression
    assert found.found["dW2"].expression.count("torch.sigmoid(X.mm(W1) + b1)") == 2


def test_the_last_assignment_wins_unless_an_earlier_one_was_compared_with_grad():
    last = found_in(DATA, course_w4.PER_SAMPLE, course_w4.FORWARD,
                    "w2_grad = 1 * hs.t().mm(yp - y)", "w2_grad = 2 * hs.t().mm(yp - y)")
    assert last.found["dW2"].expression.startswith("2 *")
    compared = found_in(DATA, course_w4.PER_SAMPLE, course_w4.FORWARD,
                        "w2_grad = 2 * hs.t().mm(yp - y)",
                        "print(torch.allclose(w2_grad, w2.grad))",
                        "w2_grad = w2_grad * 0.5  # rescaled for plotting")
    assert compared.found["dW2"].expression.startswith("2 *")
    assert compared.found["dW2"].compared


def test_a_value_compared_with_grad_is_found_whatever_its_name():
    found = derived.find(course_w4.code(course_w4.compared_with_grad()))
    assert list(found.found) == ["dW1", "db1", "dW2", "db2"]
    assert all(f.compared for f in found.found.values())
    assert found.found["db2"].target == "" and found.found["db2"].source == "err.sum(0)"
    assert found.found["db1"].target == "mine"
    assert "torch.nn.functional.sigmoid" in found.found["dW1"].expression


def test_autograd_copied_is_no_derivation_and_a_derivation_beside_it_wins():
    found = derived.find(course_w4.code(course_w4.autograd_only())).found
    assert all(f.autograd and not f.judged for f in found.values())
    both = found_in(DATA, course_w4.PER_SAMPLE, course_w4.FORWARD,
                    "dw2 = 2 * hs.t().mm(yp - y)", "w2_grad = w2.grad")
    assert not both.found["dW2"].autograd and both.found["dW2"].target == "dw2"


def test_roles_come_from_the_forward_pass_not_the_names():
    found = found_in(
        "import torch\ninp = torch.linspace(-1, 1, 50)[:, None]\n"
        "tgt = inp ** 2\nA = torch.randn(1, 8)\nc = torch.zeros(1, 8)\n"
        "B = torch.randn(8, 1)\nd = torch.zeros(1, 1)",
        "hid = (inp @ A + c).sigmoid()\npred = hid @ B + d\nloss = ((pred - tgt) ** 2).sum()",
        "gA = inp.T @ ((2 * (pred - tgt) @ B.T) * hid * (1 - hid))\n"
        "print(torch.allclose(gA, A.grad))")
    assert found.names == {"inp": "X", "A": "W1", "c": "b1", "B": "W2", "d": "b2", "tgt": "Y"}
    assert list(found.found) == ["dW1"]
    assert names_in(found.found["dW1"].expression) <= {"X", "Y", "W1", "b1", "W2", "b2"}


def test_layers_counted_from_zero_map_by_the_forward_pass():
    found = found_in(
        "import torch\nx = torch.rand(10, 1)\ny = x ** 2\nw0 = torch.randn(1, 4)\n"
        "b0 = torch.zeros(1, 4)\nw1 = torch.randn(4, 1)\nb1 = torch.zeros(1, 1)",
        "h = torch.sigmoid(x @ w0 + b0)\nout = h @ w1 + b1",
        "dw1 = h.T @ (2 * (out - y))\ndb0 = ((2 * (out - y)) @ w1.T * h * (1 - h)).sum(0)")
    assert found.names["w0"] == "W1" and found.names["w1"] == "W2"
    assert set(found.found) == {"db1", "dW2"}
    assert found.found["dW2"].target == "dw1" and found.found["db1"].target == "db0"


def test_numpy_with_the_notebooks_own_sigmoid_is_filled_in_as_numpy():
    found = derived.find(course_w4.code(course_w4.numpy_version()))
    assert list(found.found) == ["dW1", "db1", "dW2", "db2"]
    for each in found.found.values():
        assert each.kind == "numpy" and "sigmoid" not in names_in(each.expression)
        assert "numpy.exp" in each.expression


def test_functions_with_a_flag_and_a_forward_returning_a_tuple_are_followed():
    found = found_in(
        "import numpy as np\nx = np.random.rand(20, 1)\ny = x ** 2\n"
        "w1 = np.random.randn(1, 5)\nb1 = np.zeros((1, 5))\nw2 = np.random.randn(5, 1)\n"
        "b2 = np.zeros((1, 1))",
        "def nonlin(z, deriv=False):\n    if deriv == True:\n        return z * (1 - z)\n"
        "    return 1 / (1 + np.exp(-z))",
        "def forward(x, w1, b1, w2, b2):\n    '''The two layers.'''\n"
        "    hs = nonlin(x.dot(w1) + b1)\n    return hs, hs.dot(w2) + b2",
        "hs, yp = forward(x, w1, b1, w2, b2)\n"
        "dw1 = x.T.dot(2 * (yp - y).dot(w2.T) * nonlin(hs, deriv=True))")
    assert found.names["w1"] == "W1" and found.names["y"] == "Y"
    assert found.found["dW1"].judged, found.found["dW1"].problem
    assert "nonlin" not in found.found["dW1"].expression


def test_a_hidden_activation_never_assigned_is_the_judges_own():
    found = found_in(DATA, course_w4.PER_SAMPLE,
                     "def forward():\n    global h_sigmoid\n    h_sigmoid = 1\n    return 0",
                     "dw2 = h_sigmoid.T @ (2 * (h_sigmoid @ w2 + b2 - y))")
    assert found.found["dW2"].expression == "H.T @ (2 * (H @ W2 + b2 - Y))"


def test_a_model_of_its_own_is_named_as_what_cannot_be_traced():
    found = found_in(
        "import torch\nimport torch.nn as nn\n" + course_w4.SLIDE_DATA,
        "net = nn.Sequential(nn.Linear(1, 10), nn.Sigmoid(), nn.Linear(10, 1))",
        " h_sigmoid = torch.sigmoid(net[0](x))\nG = 2 * (net(x) - y)\ndW2 = h_sigmoid.T @ G\n"
        "print(dW2.T == net[2].weight.grad)")
    assert list(found.found) == ["dW2"]
    assert "`net`" in found.found["dW2"].problem and not found.found["dW2"].judged


def test_cells_with_magics_or_an_indented_first_line_are_read():
    found = found_in("%matplotlib inline\n" + DATA, "!pip install torch\n" + course_w4.PER_SAMPLE,
                     "%%time\n" + course_w4.FORWARD,
                     "  dw2 = 2 * hs.t().mm(yp - y)\n  print(dw2)", "def broken(:\n")
    assert list(found.found) == ["dW2"] and found.found["dW2"].judged


def test_what_cannot_be_followed_is_said_not_raised():
    found = found_in(DATA, course_w4.PER_SAMPLE, course_w4.FORWARD, "a0 = hs",
                     "dw2 = sum(hs[i] for i in range(3))",
                     "db2 = helper(yp)",
                     "\n".join(f"a{i} = a{i - 1} * a{i - 1}" for i in range(1, 20)),
                     "dw1 = a19")
    assert "comprehension" in found.found["dW2"].problem
    assert "`helper`" in found.found["db2"].problem
    assert "too long" in found.found["dW1"].problem
    assert all(not f.judged for f in found.found.values())


def test_a_deep_chain_of_names_or_of_operations_is_said_not_raised():
    chain = "\n".join(f"v{i} = v{i - 1} + 1" for i in range(1, 200))
    found = found_in(DATA, course_w4.PER_SAMPLE, "v0 = x", chain, "dw1 = v199",
                     "dw2 = " + " + ".join(["hs.t().mm(yp)"] * 600))
    assert "deeply" in found.found["dW1"].problem
    assert "deeply" in found.found["dW2"].problem


# ----------------------------------------------------------------------------- judging

class Kernel:
    """The sandbox's side of the questions, answered in this process by kernel_probe on our
    own fixture text (trusted test code; the grader never does this with a student's)."""

    def __init__(self, values: dict[str, Any] | None = None) -> None:
        self.values = values or {}
        self.asked: list[tuple[str, list[str], bool]] = []

    def value(self, name: str, timeout: float = 60) -> np.ndarray:
        if name not in self.values:
            raise ProbeError(f"KeyError: '{name}'", "raised")
        return np.asarray(self.values[name])

    def evaluate(self, expression: str, arrays: dict[str, np.ndarray], *, torch: bool = True,
                 timeout: float = 60) -> np.ndarray:
        protocol.request("evaluate", tuple(arrays.values()), expression=expression,
                         names=list(arrays), torch=torch)
        self.asked.append((expression, list(arrays), torch))
        with tempfile.TemporaryDirectory() as folder:
            inputs = []
            for i, array in enumerate(arrays.values()):
                inputs.append(os.path.join(folder, f"in-{i}.npy"))
                np.save(inputs[-1], array)
            request = {"op": "evaluate", "expression": expression, "names": list(arrays),
                       "torch": torch, "inputs": inputs}
            try:
                answer = kernel_probe.probe(request, folder, {"x": 1.0})
            except Exception as exc:  # noqa: BLE001 - as the agent reports it
                raise ProbeError(f"{type(exc).__name__}: {exc}", "raised") from None
            return np.load(answer["outputs"][0], allow_pickle=False)


PER_SAMPLE_SHAPES = {"x": np.zeros((100, 1)), "w1": np.zeros((1, 10)),
                     "b1": np.zeros((100, 10)), "b2": np.zeros((100, 1))}


@pytest.mark.parametrize("fixture", sorted(set(course_w4.EXPECTED) - {"nothing"}))
def test_each_course_notebook_earns_what_a_ta_gives(fixture):
    build, points, mistake = course_w4.EXPECTED[fixture]
    found = derived.find(course_w4.code(build()))
    judged = derived.check(Kernel(PER_SAMPLE_SHAPES), found, np.random.default_rng())
    right = [n for n, r in judged.readings.items() if r.verdict == "right"]
    assert 6 * len(right) / 4 == points
    wrong = {r.check.mistake.value for r in judged.readings.values() if r.check}
    if mistake in ("sign", "sigmoid_derivative"):
        assert wrong == {mistake}
    elif mistake == "autograd":
        assert all(r.verdict == "unreadable" for r in judged.readings.values())
    else:
        assert not wrong
    feedback = derived.summarize_code(judged.readings)
    assert not re.search(r"Error:|Traceback|KeyError", feedback)


def test_the_notebooks_own_sizes_and_convention_come_first():
    kernel = Kernel(PER_SAMPLE_SHAPES)
    evidence: dict[str, Any] = {}
    found = derived.find(course_w4.code(course_w4.torch_per_sample()))
    judged = derived.check(kernel, found, np.random.default_rng(), evidence)
    assert judged.bias == "per-sample"
    assert {(row["batch"], row["hidden"]) for row in evidence["gradient_errors"]} == {
        (100, 10), (5, 3)}
    assert len(kernel.asked) == 8  # one convention sufficed, two sizes, four gradients
    assert all(torch for _, _, torch in kernel.asked)
    assert [row["verdict"] for row in evidence["gradient_code"]] == ["right"] * 4


def test_a_shared_bias_not_summed_is_named_when_no_convention_makes_it_right():
    found = found_in(DATA, "w1 = torch.randn(1, 10)\nb1 = torch.zeros(1, 10)\n"
                     "w2 = torch.randn(10, 1)\nb2 = torch.zeros(1, 1)",
                     course_w4.FORWARD,
                     "G = 2 * (yp - y)\ndb2 = G\ndw2 = hs.T @ G\n"
                     "dH = (G @ w2.T) * hs * (1 - hs)\ndb1 = dH.sum(0)\ndw1 = x.T @ dH")
    judged = derived.check(Kernel({"x": np.zeros((100, 1)), "w1": np.zeros((1, 10)),
                                   "b1": np.zeros((1, 10)), "b2": np.zeros((1, 1))}),
                           found, np.random.default_rng())
    assert judged.bias == "row"
    assert judged.readings["db2"].check.mistake is Mistake.BIAS_NOT_SUMMED
    assert "not summed over the batch" in derived.summarize_code(judged.readings)


def test_a_mean_instead_of_the_sum_is_named_by_n():
    found = found_in(DATA, course_w4.PER_SAMPLE, course_w4.FORWARD,
                     "w2_grad = 2 * hs.t().mm(yp - y) / len(x)")
    judged = derived.check(Kernel(PER_SAMPLE_SHAPES), found, np.random.default_rng())
    assert judged.readings["dW2"].check.mistake is Mistake.OFF_BY_N
    assert judged.readings["dW2"].check.n == 100


def test_a_size_written_into_the_expression_is_judged_at_the_notebooks_size():
    found = found_in(DATA, course_w4.PER_SAMPLE, course_w4.FORWARD,
                     "b2_grad = torch.ones(1, 100).mm(2 * (yp - y))")
    kernel = Kernel(PER_SAMPLE_SHAPES | {"b2": np.zeros((1, 1)), "b1": np.zeros((1, 10))})
    judged = derived.check(kernel, found, np.random.default_rng())
    assert judged.readings["db2"].verdict == "right"
    nowhere = derived.check(Kernel(), found, np.random.default_rng())
    assert nowhere.readings["db2"].verdict == "unreadable"
    assert "could not be evaluated" in nowhere.readings["db2"].reason


def test_numpy_expressions_get_numpy_arrays():
    kernel = Kernel()
    found = derived.find(course_w4.code(course_w4.numpy_version()))
    derived.check(kernel, found, np.random.default_rng())
    assert kernel.asked and not any(torch for _, _, torch in kernel.asked)


def test_only_the_arrays_an_expression_uses_are_sent():
    kernel = Kernel()
    found = found_in(DATA, course_w4.PER_SAMPLE,
                     "dw2 = h_sigmoid.T @ (2 * (h_sigmoid @ w2 + b2 - y))")
    judged = derived.check(kernel, found, np.random.default_rng())
    assert judged.readings["dW2"].verdict == "right"
    assert {tuple(sorted(names)) for _, names, _ in kernel.asked} == {
        ("H", "W2", "Y", "b2")}


def test_the_summary_names_a_shared_mistake_once_and_what_was_not_found():
    found = derived.find(course_w4.code(course_w4.wrong_sign()))
    del found.found["db2"]
    judged = derived.check(Kernel(PER_SAMPLE_SHAPES), found, np.random.default_rng())
    line = derived.summarize_code(judged.readings)
    assert line.count("sign is reversed") == 1 and line.startswith("dW1, db1: ")
    assert line.endswith("db2: not found")


# ----------------------------------------------------------------------------- the real sandbox

def grade_course(tmp_path: Path, names: list[str], extra: dict[str, Path] | None = None,
                 public_only: bool = True) -> dict[str, Any]:
    """Grade these course notebooks (and any extra ones) as a class folder, each through the
    real sandbox and the W4 rubric; their results by student."""
    from grader import assignments, intake
    from grader.judge.grade import grade
    from grader.sandbox import ResourceLimits, SandboxConfig

    folder = tmp_path / "class"
    folder.mkdir()
    for name in names:
        course_w4.write(folder / f"{name}_W4_Homework.ipynb", course_w4.EXPECTED[name][0]())
    for name, path in (extra or {}).items():
        (folder / f"{name}_W4_Homework.ipynb").write_bytes(path.read_bytes())
    assignment = assignments.load(REPO / "assignments" / "W4")
    found, rejected = intake.collect(folder, assignment, tmp_path / "scratch")
    assert not rejected
    config = SandboxConfig(resources=ResourceLimits(memory_mb=4096, pids=128, disk_mb=256),
                           cell_seconds=120, notebook_seconds=300)
    return {s.student: grade(s, assignment, config, public_only=public_only) for s in found}


def item(result: Any, name: str = "test_gradients_match_the_derivation") -> Any:
    return next(i for i in result.items if i.name == name)


@pytest.mark.slow
def test_course_notebooks_graded_through_the_sandbox(tmp_path):
    by_fixture = grade_course(tmp_path, sorted(course_w4.EXPECTED))
    assert set(by_fixture) == set(course_w4.EXPECTED)
    scores = {name: item(result).score for name, result in by_fixture.items()}
    assert scores == {name: points for name, (_, points, _) in course_w4.EXPECTED.items()}
    for name, result in by_fixture.items():
        assert result.run.outcome == "completed", (name, result.run.reason)
        for each in result.items:
            assert not re.search(r"Error:|Traceback|KeyError", each.feedback), (name, each)
    assert "all four gradients right (per-sample biases)" in item(
        by_fixture["torch_per_sample"]).feedback
    assert "dW1, db1: the sign is reversed" in item(by_fixture["wrong_sign"]).feedback
    assert "dW1, db1: the sigmoid derivative" in item(
        by_fixture["no_sigmoid_derivative"]).feedback
    assert "autograd's answer" in item(by_fixture["autograd_only"]).feedback
    assert item(by_fixture["nothing"]).feedback.startswith(
        "no `gradients` function and no gradient computed in code")
    rows = by_fixture["numpy_version"].evidence["gradient_errors"]
    assert {(r["batch"], r["hidden"]) for r in rows} == {(100, 10), (5, 3)}


@pytest.mark.slow
def test_a_stale_notebook_variable_cannot_answer(tmp_path):
    """The expression is evaluated on the judge's arrays alone: a notebook that rebinds `hs`
    and `yp` after its gradients (so the kernel's are stale zeros) is judged on what it
    derived; and the `w2_grad` it compared with `.grad` wins over a later one."""
    cells = course_w4.torch_per_sample()
    cells.insert(-2, "hs = torch.zeros(100, 10)\nyp = torch.zeros(100, 1)\n"
                     "w2_grad = torch.zeros(10, 1)")
    path = course_w4.write(tmp_path / "stale.ipynb", cells)
    results = grade_course(tmp_path, [], {"stale": path})
    graded = item(results["stale"])
    assert graded.score == 6, graded.feedback
    assert results["stale"].evidence["gradient_code"][2]["source"] == \
        "w2_grad = -2 * hs.t().mm(y - yp)"


def test_an_expression_reaching_past_its_arrays_is_not_evaluated():
    found = found_in(DATA, course_w4.PER_SAMPLE,
                     "dw1 = torch.sys.modules['__main__'].backprop(x)",
                     "dw2 = x.__class__(x)")
    assert "`modules`" in found.found["dW1"].problem
    assert "`__class__`" in found.found["dW2"].problem
    assert not any(f.judged for f in found.found.values())


@pytest.mark.slow
def test_the_bundled_examples_keep_their_gradient_points(tmp_path):
    """They define `gradients`, so the contract path judges them as before; erin, who has
    none and computes dW2 through her `nn.Sequential`, earns nothing and is told why."""
    examples = {s: REPO / "submissions" / f"{s}_W4_Homework.ipynb"
                for s in ("alice", "bob", "carol", "dave", "erin")}
    results = grade_course(tmp_path, [], examples)
    scores = {student: item(result).score for student, result in results.items()}
    assert scores == {"alice": 6, "bob": 3, "carol": 0, "dave": 0, "erin": 0}
    assert "`net`" in item(results["erin"]).feedback
    assert item(results["dave"]).feedback.startswith("`gradients(X, Y, W1, b1, W2, b2)` could")
