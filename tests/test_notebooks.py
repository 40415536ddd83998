"""The solution notebooks and the example submissions do what they say, in a real kernel.

Each run appends one cell that compares the notebook's contract (the names the rubric will ask
about) with the reference implementation, and prints the comparison as JSON.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from grader import assignments, data
from reference import savemodel
from tests.notebooks import SUBMISSIONS, errors, execute, last_json

pytestmark = pytest.mark.slow

W4_PROBE = """
import json, torch
from reference import twolayer as _ref
_g = torch.Generator().manual_seed(5)
_n, _h = 9, 6
def _r(*s): return torch.randn(*s, generator=_g, dtype=torch.float64)
_bias = {"vector": (_r(_h), _r(1)), "per-sample": (_r(_n, _h), _r(_n, 1))}["%s"]
_args = (_r(_n, 1), _r(_n, 1), _r(1, _h), _bias[0], _r(_h, 1), _bias[1])
_out = {}
try:
    _mine = [torch.as_tensor(m) for m in gradients(*_args)]
    _ref_g = _ref.gradients(*_args)
    _out["rel"] = [((m.reshape(r.shape) - r).norm() / r.norm()).item()
                   for m, r in zip(_mine, _ref_g)]
    _out["ratio"] = [(m.reshape(r.shape) / r).median().item() for m, r in zip(_mine, _ref_g)]
    _x, _y = _ref.slide_data()
    _out["fit_mse"] = ((forward(_x, W1, b1, W2, b2) - _y) ** 2).mean().item()
except Exception as e:
    _out["error"] = type(e).__name__
print(json.dumps(_out))
"""


def w4(path, tmp_path, bias="vector"):
    nb = execute(path, tmp_path, append=W4_PROBE % bias)
    return nb, last_json(nb)


def test_w4_solution_matches_the_reference(tmp_path):
    nb, result = w4(assignments.find("W4").notebooks[0].solution, tmp_path)
    assert errors(nb) == []
    assert max(result["rel"]) < 1e-10
    assert result["fit_mse"] < 0.01


def test_w4_template_runs_but_asks_for_the_work(tmp_path):
    nb, result = w4(assignments.find("W4").notebooks[0].template, tmp_path)
    assert "NotImplementedError" in errors(nb)
    assert result == {"error": "NotImplementedError"}


def test_w4_examples_are_what_they_claim(tmp_path):
    _, alice = w4(SUBMISSIONS / "alice_W4_Homework.ipynb", tmp_path)
    assert max(alice["rel"]) < 1e-10

    _, bob = w4(SUBMISSIONS / "bob_W4_Homework.ipynb", tmp_path)  # no sigmoid derivative
    assert bob["rel"][2] < 1e-10 and bob["rel"][3] < 1e-10  # dW2, db2 right
    assert bob["rel"][0] > 0.1 and bob["rel"][1] > 0.1      # dW1, db1 wrong

    _, carol = w4(SUBMISSIONS / "carol_W4_Homework.ipynb", tmp_path, bias="per-sample")
    assert carol["ratio"] == pytest.approx([1 / 9] * 4)       # the mean: off by n = 9

    nb, dave = w4(SUBMISSIONS / "dave_W4_Homework.ipynb", tmp_path)
    assert "NameError" in errors(nb) and dave == {"error": "NameError"}

    nb, erin = w4(SUBMISSIONS / "erin_W4_Homework.ipynb", tmp_path)  # markdown derivations only
    assert erin == {"error": "NameError"}


W5_PROBE = """
import json, numpy as np, torch
from reference import minibatch as _ref
_out = {}
_epoch = minibatches(103, 10)
_out["indices"] = sorted(int(i) for b in _epoch for i in np.asarray(b))
_out["sizes"] = [len(b) for b in _epoch]
_g = torch.Generator().manual_seed(3)
_X = torch.rand(16, 1, generator=_g, dtype=torch.float64)
_Y = torch.rand(16, 1, generator=_g, dtype=torch.float64)
_p = [torch.randn(*s, generator=_g, dtype=torch.float64) for s in ((1, 4), (4,), (4, 1), (1,))]
_mine = batch_gradients(_X, _Y, *_p)
_out["grad_ratio"] = [(torch.as_tensor(m).reshape(r.shape) / r).median().item()
                      for m, r in zip(_mine, _ref.batch_gradients(_X, _Y, _p))]
_fx, _fy = _ref.fresh_points(100000, seed=11)
_out["mse_over_floor"] = ((predict(_fx) - _fy) ** 2).mean().item() / _ref.NOISE_FLOOR
print(json.dumps(_out))
"""


def w5(path, tmp_path, size="1000000"):
    nb = execute(path, tmp_path, replace=[("data_size = 10000000", f"data_size = {size}")],
                 append=W5_PROBE)
    return nb, last_json(nb)


def test_w5_solution_visits_each_index_once_and_fits(tmp_path):
    nb, result = w5(assignments.find("W5").notebooks[0].solution, tmp_path)
    assert errors(nb) == []
    assert result["indices"] == list(range(103)) and result["sizes"] == [10] * 10 + [3]
    assert result["grad_ratio"] == pytest.approx([1.0] * 4)
    assert result["mse_over_floor"] < 1.1


def test_w5_examples_are_what_they_claim(tmp_path):
    _, bob = w5(SUBMISSIONS / "bob_W5_Regression_Batch.ipynb", tmp_path)
    assert len(bob["indices"]) == 100                       # drops the last 3 points
    assert bob["grad_ratio"] == pytest.approx([16.0] * 4)   # a batch sum, not a mean
    _, carol = w5(SUBMISSIONS / "carol_W5_Regression_Batch.ipynb", tmp_path, size="2000")
    assert carol["grad_ratio"] == pytest.approx([1.0] * 4)  # right, one sample at a time


SAVE_PROBE = """
import json, numpy as np, torch
_x = torch.linspace(-1, 1, 57).unsqueeze(1)
np.save('_predictions.npy', net(_x).detach().numpy())
print(json.dumps({"net2": torch.equal(net2(_x), net(_x)), "net3": torch.equal(net3(_x), net(_x))}))
"""


@pytest.mark.parametrize("path", [
    assignments.find("W5").notebooks[1].solution,
    SUBMISSIONS / "alice_W5_Save_Model.ipynb",
    SUBMISSIONS / "bob_W6_Save_Model.ipynb",
], ids=lambda p: p.name)
def test_save_model_round_trips(tmp_path, path):
    nb = execute(path, tmp_path, append=SAVE_PROBE)
    assert errors(nb) == []
    assert last_json(nb) == {"net2": True, "net3": True}
    restored = savemodel.restore_params(tmp_path / "net_params.pkl")  # weights_only=True
    probe = torch.linspace(-1, 1, 57).unsqueeze(1)
    assert np.array_equal(restored(probe).detach().numpy(), np.load(tmp_path / "_predictions.npy"))


def test_save_model_example_without_the_whole_net(tmp_path):
    nb = execute(SUBMISSIONS / "carol_W5_Save_Model.ipynb", tmp_path)
    assert errors(nb) == [] and not (tmp_path / "net_all.pkl").exists()


W6_PROBE = """
import json, torch
_x = torch.rand(5, 1, 28, 28)
model.eval()
print(json.dumps({"shape": list(model(_x).shape), "class": type(model).__name__}))
"""


@pytest.fixture
def mnist_folder(tmp_path, idx_folder, synthetic_md5):
    """A notebook folder whose ./mnist/ is the public view of the synthetic data set."""
    cache = tmp_path / "cache"
    data.import_dir(idx_folder, cache, expected=synthetic_md5)
    work = tmp_path / "work"
    work.mkdir()
    (work / "mnist").symlink_to(data.public_view(cache))
    return work


@pytest.mark.parametrize(("path", "model_class"), [
    (assignments.find("W6").notebooks[0].solution, "CNN"),
    (assignments.find("W6").notebooks[0].template, "FC"),
    (SUBMISSIONS / "alice_W6_MNIST_FC.ipynb", "CNN"),
    (SUBMISSIONS / "bob_W6_MNIST_FC.ipynb", "FC"),
], ids=lambda p: getattr(p, "name", p))
def test_w6_notebooks_leave_a_model(mnist_folder, path, model_class):
    nb = execute(path, mnist_folder, append=W6_PROBE)
    assert errors(nb) == []
    assert last_json(nb) == {"shape": [5, 10], "class": model_class}


def test_w6_broken_example_fails_with_a_name_error(mnist_folder):
    assert "NameError" in errors(execute(SUBMISSIONS / "dave_W6_MNIST_FC.ipynb", mnist_folder))
