"""A model's layers are verified by what they compute, never believed by their names.

Three levels: the judge's checks on hand-made answers (fast, malformed ones included); the
kernel's recorder and the judge together in this process on our own modules (fast); and real
notebooks in the real sandbox, down to the W6 rubric's score (slow)."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from grader import data
from grader.judge import models
from grader.sandbox import (
    ProbeError,
    ResourceLimits,
    Sandbox,
    SandboxConfig,
    bwrap,
    kernel_probe,
)
from tests import notebooks

RNG = np.random.default_rng(0)


# ----------------------------------------------------------------- hand-made answers


def answer(cls: str, settings: dict[str, Any], tensors: dict[str, np.ndarray],
           calls: dict[str, tuple[np.ndarray, np.ndarray]]) -> tuple[dict, list[np.ndarray]]:
    """The fields and arrays of a "layers" answer holding one layer, as the wire brings them."""
    arrays: list[np.ndarray] = []

    def keep(array: np.ndarray) -> int:
        arrays.append(np.asarray(array))
        return len(arrays) - 1

    entry = {"path": "net.0", "class": cls, "settings": settings,
             "tensors": {name: keep(t) for name, t in tensors.items()},
             "calls": {mode: {"input": keep(i), "output": keep(o)}
                       for mode, (i, o) in calls.items()}}
    return {"layers": [entry], "ran": [["net.0", cls]], "errors": {}}, arrays


def conv_answer(output_of=None) -> tuple[dict, list[np.ndarray]]:
    x = RNG.random((4, 2, 9, 9), dtype=np.float32)
    w = RNG.standard_normal((6, 1, 3, 3)).astype(np.float32)
    b = RNG.standard_normal(6).astype(np.float32)
    y = F.conv2d(torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b), 2, 1, 1, 2)
    y = (output_of(x, y.numpy()) if output_of else y.numpy()).astype(np.float32)
    settings = {"stride": [2, 2], "padding": [1, 1], "dilation": [1, 1], "groups": 2,
                "padding_mode": "zeros"}
    return answer("Conv2d", settings, {"weight": w, "bias": b}, {"eval": (x, y), "train": (x, y)})


def batchnorm_answer(eval_stats: str = "running") -> tuple[dict, list[np.ndarray]]:
    x = torch.from_numpy(RNG.random((8, 3, 5, 5), dtype=np.float32)) * 2 + 1
    w, b = torch.rand(3) + 0.5, torch.randn(3)
    mean, var = torch.rand(3), torch.rand(3) + 0.5
    train = F.batch_norm(x, None, None, w, b, True, 0.0, 1e-5)
    running = eval_stats == "running"
    evaluated = F.batch_norm(x, mean if running else None, var if running else None, w, b,
                             not running, 0.0, 1e-5)
    tensors = {"weight": w, "bias": b, "running_mean": mean, "running_var": var}
    return answer("BatchNorm2d", {"eps": 1e-5, "momentum": 0.1},
                  {k: v.numpy() for k, v in tensors.items()},
                  {"eval": (x.numpy(), evaluated.numpy()), "train": (x.numpy(), train.numpy())})


def dropout_answer(p: float = 0.5, train_output=None) -> tuple[dict, list[np.ndarray]]:
    x = RNG.standard_normal((8, 20)).astype(np.float32)
    mask = RNG.random((8, 20)) >= 0.5
    dropped = (x * mask / (1 - p)).astype(np.float32) if p < 1 else np.zeros_like(x)
    y = train_output(x) if train_output else dropped
    return answer("Dropout", {"p": p, "inplace": False}, {},
                  {"eval": (x, x.copy()), "train": (x, y)})


def only(fields: dict, arrays: list[np.ndarray]) -> models.LayerCheck:
    (check,) = models.check_layers(fields, arrays)
    return check


def test_genuine_layers_verify():
    assert only(*conv_answer()).verified
    assert only(*batchnorm_answer()).verified
    assert only(*dropout_answer()).verified


def test_a_convolution_is_its_output_recomputed_here():
    padded = only(*conv_answer(lambda x, y: np.pad(x, ((0, 0), (0, 4), (0, 0), (0, 0)))
                               [:, :, ::2, ::2][:, :, :5, :5]))
    assert not padded.verified
    assert padded.finding == "its output is not a convolution of its input with its weights"
    assert not only(*conv_answer(lambda x, y: y * 0 + x.mean())).verified
    assert only(*conv_answer(lambda x, y: y * 1.001)).verified  # rounding (TF32) is allowed


def test_convolution_settings_are_recomputed_as_declared():
    x = torch.rand(2, 3, 10, 10)
    for layer in (nn.Conv2d(3, 6, 3, padding="same", padding_mode="reflect"),
                  nn.Conv2d(3, 6, 3, padding=2, dilation=2, groups=3, padding_mode="circular"),
                  nn.Conv2d(3, 4, (3, 5), stride=(2, 1), padding="valid", bias=False)):
        with torch.no_grad():
            y = layer(x)
        settings = {n: kernel_probe.setting(getattr(layer, n)) for n in
                    ("stride", "padding", "dilation", "groups", "padding_mode")}
        tensors = {n: t.detach().numpy() for n in ("weight", "bias")
                   if (t := getattr(layer, n)) is not None}
        check = only(*answer("Conv2d", settings, tensors,
                             {m: (x.numpy(), y.numpy()) for m in ("eval", "train")}))
        assert check.verified, (layer, check.finding)


def test_batch_norm_must_use_the_batch_in_training_and_its_running_stats_in_eval():
    check = only(*batchnorm_answer(eval_stats="batch"))
    assert not check.verified and "running mean and variance" in check.finding
    fields, arrays = batchnorm_answer()
    x_index = fields["layers"][0]["calls"]["train"]["input"]
    out_index = fields["layers"][0]["calls"]["train"]["output"]
    arrays[out_index] = arrays[x_index] * 0.5 + 0.1  # ignores the statistics
    check = only(fields, arrays)
    assert not check.verified and "the batch's own mean and variance" in check.finding


@pytest.mark.parametrize(("p", "train_output", "finding"), [
    (0.0, None, "p is 0, so it drops nothing"),
    (0.5, lambda x: x.copy(), "in training mode it changed nothing, so it is not dropout"),
    (0.5, lambda x: x * 2, "no element"),
    (0.5, lambda x: np.where(x > 0, 0, x * 3), "scaled by 1/(1-p)"),
    (0.5, lambda x: np.zeros_like(x), "dropped every element"),
    (1.0, None, "no drop probability p between 0 and 1"),
])
def test_a_dropout_that_does_not_drop_is_not_dropout(p, train_output, finding):
    check = only(*dropout_answer(p, train_output))
    assert not check.verified and finding in check.finding


def test_a_dropout_that_changes_its_input_in_eval_mode_is_not_dropout():
    fields, arrays = dropout_answer()
    eval_out = fields["layers"][0]["calls"]["eval"]["output"]
    arrays[eval_out] = arrays[eval_out] * 0.5
    assert only(fields, arrays).finding == "in evaluation mode it changed its input"


def _set(path: tuple, value: Any):
    def mutate(fields: dict, arrays: list) -> None:
        target = fields["layers"][0]
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
    return mutate


def _array(path: tuple, value: Any):
    def mutate(fields: dict, arrays: list) -> None:
        target = fields["layers"][0]
        for key in path:
            target = target[key]
        arrays[target] = value(arrays[target])
    return mutate


MALFORMED = {
    "index out of range": _set(("tensors", "weight"), 999),
    "index a bool": _set(("tensors", "weight"), True),
    "index a string": _set(("calls", "eval", "input"), "0"),
    "no weight": _set(("tensors", "weight"), None),
    "no train call": _set(("calls", "train"), None),
    "calls not a dict": _set(("calls",), [1, 2]),
    "settings not a dict": _set(("settings",), "stride=1"),
    "stride text": _set(("settings", "stride"), "x"),
    "stride huge": _set(("settings", "stride"), [10**9, 1]),
    "stride zero": _set(("settings", "stride"), [0, 0]),
    "padding negative": _set(("settings", "padding"), [-1, -1]),
    "groups a float": _set(("settings", "groups"), 2.0),
    "groups zero": _set(("settings", "groups"), 0),
    "padding mode unknown": _set(("settings", "padding_mode"), "mirror"),
    "class not text": _set(("class",), 7),
    "weight with NaN": _array(("tensors", "weight"), lambda a: a * np.nan),
    "output with inf": _array(("calls", "eval", "output"), lambda a: a + np.inf),
    "weight of ints": _array(("tensors", "weight"), lambda a: a.astype(np.int32)),
    "weight 2-D": _array(("tensors", "weight"), lambda a: a.reshape(6, -1)),
    "bias misshapen": _array(("tensors", "bias"), lambda a: a[:3]),
    "input misshapen": _array(("calls", "eval", "input"), lambda a: a[:, :1]),
    "output misshapen": _array(("calls", "train", "output"), lambda a: a[:, :, :2]),
    "input scalar": _array(("calls", "eval", "input"), lambda a: np.float32(1.0)),
}


@pytest.mark.parametrize("mutate", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_conv_answer_verifies_nothing_and_raises_nothing(mutate):
    fields, arrays = conv_answer()
    mutate(fields, arrays)
    checks = models.check_layers(fields, arrays)
    assert checks and not any(c.verified for c in checks)
    assert all(c.finding and "Error" not in c.finding for c in checks)


@pytest.mark.parametrize("mutate", [
    _set(("settings", "eps"), None), _set(("settings", "eps"), float("nan")),
    _set(("settings", "eps"), True), _set(("tensors", "running_var"), None),
    _array(("tensors", "running_var"), lambda a: -a),
    _array(("tensors", "weight"), lambda a: a[:2]),
    _array(("calls", "train", "input"), lambda a: a[:, 0, 0, 0]),
])
def test_a_malformed_batchnorm_answer_verifies_nothing(mutate):
    fields, arrays = batchnorm_answer()
    mutate(fields, arrays)
    assert not only(fields, arrays).verified


@pytest.mark.parametrize("mutate", [
    _set(("settings", "p"), "0.5"), _set(("settings", "p"), float("inf")),
    _set(("settings",), {}), _array(("calls", "train", "output"), lambda a: a[:4]),
])
def test_a_malformed_dropout_answer_verifies_nothing(mutate):
    fields, arrays = dropout_answer()
    mutate(fields, arrays)
    assert not only(fields, arrays).verified


@pytest.mark.parametrize("fields", [
    {}, {"layers": "all of them"}, {"layers": [None, 3, "x", []]}, {"layers": None, "ran": 5},
    {"ran": [["a"], [1, 2], ["x", "Conv2d", "extra"], "Conv2d"]}, [], None,
])
def test_a_malformed_answer_as_a_whole_verifies_nothing(fields):
    checks = models.check_layers(fields, [np.zeros(3, np.float32)])
    assert not any(c.verified for c in checks)


def test_a_layer_that_ran_unrecorded_is_named_unverified():
    fields, arrays = conv_answer()
    fields["ran"].append(["net.7", "Conv2d"])
    checks = models.check_layers(fields, arrays)
    assert [c.verified for c in checks] == [True, False]
    assert "could not record what it did" in checks[1].finding


def test_an_oversized_convolution_is_not_recomputed(monkeypatch):
    monkeypatch.setattr(models, "MAX_MACS", 1000)
    check = only(*conv_answer())
    assert not check.verified and check.finding == "it is too large for the grader to recompute"


def test_notes_say_what_was_looked_for_and_found():
    fake = models.LayerCheck("conv", "Conv2d", "conv", False,
                             "its output is not a convolution of its input with its weights")
    found = models.Found("model", layers=frozenset({"Conv2d", "Dropout", "Sequential"}),
                         used_layers=frozenset({"Conv2d", "Sequential"}),
                         verified_layers=frozenset({"batchnorm"}), layer_checks=(fake,))
    notes = models.architecture_notes(found)
    assert notes == {
        "conv": "convolutions: a layer named Conv2d (`conv`) was used, but its output is not "
                "a convolution of its input with its weights",
        "dropout": "dropout: a Dropout is defined but never used in forward()"}
    assert models.architecture_notes(models.Found("fc"))["batchnorm"] == "batch norm: missing"


# ----------------------------------------------------------------- the kernel's recorder, here


class CNN(nn.Module):
    """The homework's CNN: convolutions with batch norm (an in-place ReLU after it), dropout."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Sequential(nn.Conv2d(1, 8, 5, 1, 2), nn.BatchNorm2d(8),
                                   nn.ReLU(inplace=True), nn.MaxPool2d(2))
        self.conv2 = nn.Sequential(nn.Conv2d(8, 16, 3, 1, 1), nn.BatchNorm2d(16), nn.ReLU(),
                                   nn.MaxPool2d(2))
        self.dropout = nn.Dropout(0.25, inplace=True)
        self.out = nn.Linear(16 * 7 * 7, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv2(self.conv1(x))
        return self.out(self.dropout(x.view(x.size(0), -1)))


class InProcessStudent:
    """Answers "layers" as the kernel would, through kernel_probe on our own modules, and
    hands the judge only what would cross the wire (JSON fields and .npy arrays)."""

    def __init__(self, **scope: nn.Module) -> None:
        self.scope = scope

    def ask(self, op: str, *arrays: np.ndarray, timeout: float = 120,
            **fields: Any) -> tuple[dict[str, Any], list[np.ndarray]]:
        with tempfile.TemporaryDirectory() as folder:
            inputs = []
            for i, array in enumerate(arrays):
                inputs.append(os.path.join(folder, f"in-{i}.npy"))
                np.save(inputs[-1], array, allow_pickle=False)
            answer = kernel_probe.probe({**fields, "op": op, "inputs": inputs}, folder,
                                        self.scope)
            outputs = [np.load(p, allow_pickle=False) for p in answer.pop("outputs")]
        return answer, outputs


def trained(model: nn.Module) -> nn.Module:
    """A few training-mode passes, so the running statistics are not their defaults."""
    with torch.no_grad():
        for _ in range(3):
            model.train()(torch.rand(16, 1, 28, 28) * 3)
    return model.eval()


def verified(model: nn.Module) -> models.Found:
    return models.verify_layers(InProcessStudent(model=model), models.Found("model"), seed=1)


def test_a_genuine_cnn_verifies_and_is_left_as_it_was():
    model = trained(CNN())
    before = copy.deepcopy(model.state_dict())
    rng_before = torch.get_rng_state()
    found = verified(model)
    assert found.verified_layers == {"conv", "batchnorm", "dropout"}, found.layer_checks
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert not model.training and torch.equal(torch.get_rng_state(), rng_before)
    assert models.architecture_notes(found) == {}


def test_a_model_that_cannot_be_copied_is_run_and_put_back():
    import threading

    model = trained(CNN())
    model.lock = threading.Lock()
    with pytest.raises(TypeError):
        copy.deepcopy(model)
    before = copy.deepcopy(model.state_dict())
    found = verified(model)
    assert found.verified_layers == {"conv", "batchnorm", "dropout"}
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert not any(m.training for m in model.modules())


def test_a_model_that_fails_in_training_mode_verifies_nothing_and_is_told_why():
    class EvalOnly(CNN):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if self.training:
                raise RuntimeError("no training here")
            return super().forward(x)

    found = verified(EvalOnly().eval())
    assert found.verified_layers == frozenset()
    assert models.architecture_notes(found)["dropout"] == (
        "dropout: a layer named Dropout (`dropout`) was used, but it did not run in training "
        "mode on the grader's batch (the model failed in training mode)")


class Dropout(nn.Dropout):
    """A fake: a Dropout by name whose forward never drops."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class BatchNorm2d(nn.BatchNorm2d):
    """A fake: a BatchNorm2d by name that scales and shifts, ignoring every statistic."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weight[None, :, None, None] + self.bias[None, :, None, None]


class Conv2d(nn.Conv2d):
    """A fake: a Conv2d by name that computes its convolution and throws it away."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x) * 0 + x.mean()


def head(channels: int) -> list[nn.Module]:
    return [nn.Flatten(), nn.Linear(channels * 28 * 28, 10)]


def test_named_fakes_verify_nothing_here():
    identity = nn.Sequential(type("Conv2d", (nn.Identity,), {})(),
                             type("BatchNorm2d", (nn.Identity,), {})(),
                             type("Dropout", (nn.Identity,), {})(), *head(1))
    assert verified(identity).verified_layers == frozenset()
    fakes = nn.Sequential(Conv2d(1, 4, 3, padding=1), BatchNorm2d(4), Dropout(0.5), *head(4))
    found = verified(trained(fakes))
    assert found.verified_layers == frozenset()
    assert [c.finding for c in found.layer_checks] == [
        "its output is not a convolution of its input with its weights",
        "in training mode its output is not its input normalised with the batch's own mean "
        "and variance",
        "in training mode it changed nothing, so it is not dropout"]


def test_other_genuine_layer_kinds_verify():
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding="same", padding_mode="reflect"),
                          nn.Dropout2d(0.3), nn.Flatten(), nn.Linear(4 * 28 * 28, 32),
                          nn.BatchNorm1d(32), nn.Dropout(0.0), nn.Linear(32, 10))
    found = verified(trained(model))
    assert found.verified_layers == {"conv", "batchnorm", "dropout"}
    assert [c.verified for c in found.layer_checks] == [True, True, True, False]


def test_an_answer_holds_a_few_layers_of_each_kind_within_the_wires_limits():
    convs = [nn.Conv2d(2, 2, 3, padding=1) for _ in range(6)]
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), *convs, *head(2))
    fields, arrays = InProcessStudent(model=model).ask(
        "layers", np.random.default_rng(0).random((8, 1, 28, 28), dtype=np.float32),
        name="model", seed=0)
    assert len(fields["layers"]) == kernel_probe.LAYERS_PER_KIND
    assert len(fields["ran"]) == 7 and len(arrays) <= kernel_probe.LAYER_ARRAYS
    assert len(models.check_layers(fields, arrays)) == 7


def test_a_failed_question_verifies_nothing_and_says_so():
    class Dead:
        def ask(self, *args: Any, **kwargs: Any) -> None:
            raise ProbeError("the sandbox has ended", "closed")

    found = models.verify_layers(Dead(), models.Found("model", used_layers=frozenset({"Conv2d"})))
    assert found.verified_layers == frozenset()
    assert models.architecture_notes(found)["conv"] == (
        "convolutions: not checked, as the grader could not run the model layer by layer on a "
        "batch of its own")


# ----------------------------------------------------------------- real notebooks, real sandbox

#: Real kernels in the real bubblewrap sandbox.
sandboxed = pytest.mark.skipif(bwrap.executable() is None,
                               reason="bubblewrap is not installed (apt-get install bubblewrap)")

NOTEBOOK = [
    "import torch, torch.nn as nn, torch.nn.functional as F\ntorch.manual_seed(0)",
    """
class CNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(1, 8, 5, 1, 2), nn.BatchNorm2d(8), nn.ReLU(),
                                  nn.MaxPool2d(2))
        self.dropout = nn.Dropout(0.5)
        self.out = nn.Linear(8 * 14 * 14, 10)
    def forward(self, x):
        return self.out(self.dropout(self.conv(x).view(x.size(0), -1)))
model = CNN()
with torch.no_grad():
    model(torch.rand(32, 1, 28, 28) * 2)
model.eval()
def stats():
    return model.conv[1].running_mean, torch.tensor(float(model.training))
""",
    """
Conv2d = type("Conv2d", (nn.Identity,), {})
BatchNorm2d = type("BatchNorm2d", (nn.Identity,), {})
Dropout = type("Dropout", (nn.Identity,), {})
class Named(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.bn, self.drop = Conv2d(), BatchNorm2d(), Dropout()
        self.out = nn.Linear(784, 10)
    def forward(self, x):
        return self.out(self.drop(self.bn(self.conv(x))).view(x.size(0), -1))
named = Named()
""",
    """
class Conv2d(nn.Conv2d):
    def forward(self, x):
        return F.pad(x, (1, 1, 1, 1))[:, :, 1:-1, 1:-1].repeat(1, self.out_channels, 1, 1)
class ConvMean(nn.Conv2d):
    def forward(self, x):
        return super().forward(x) * 0 + x.mean()
class Dropout(nn.Dropout):
    def forward(self, x):
        return x
class BatchNorm2d(nn.BatchNorm2d):
    def forward(self, x):
        return x * self.weight[None, :, None, None] + self.bias[None, :, None, None]
def net(*layers):
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(4 * 784, 10)).eval()
padded = net(Conv2d(1, 4, 3, padding=1))
mean = net(ConvMean(1, 4, 3, padding=1))
no_p = net(nn.Conv2d(1, 4, 3, padding=1), nn.Dropout(0.0))
identity_drop = net(nn.Conv2d(1, 4, 3, padding=1), Dropout(0.5))
stat_free = net(nn.Conv2d(1, 4, 3, padding=1), BatchNorm2d(4))
""",
]

EXPECTED = {"model": {"conv", "batchnorm", "dropout"}, "named": set(), "padded": set(),
            "mean": set(), "no_p": {"conv"}, "identity_drop": {"conv"}, "stat_free": {"conv"}}


@pytest.mark.slow
@sandboxed
def test_layers_are_verified_in_a_real_kernel(tmp_path):
    notebooks.write(tmp_path / "sub" / "nb.ipynb", *NOTEBOOK)
    config = SandboxConfig(resources=ResourceLimits(memory_mb=2048, pids=64, disk_mb=64),
                           cell_seconds=60, notebook_seconds=120)
    with Sandbox(config).open(tmp_path / "sub", "nb.ipynb") as session:
        record = session.execute()
        assert record.outcome == "completed", record.reason
        before = session.call("stats")
        found = {name: models.verify_layers(session, models.Found(name))
                 for name in EXPECTED}
        after = session.call("stats")
    assert {name: set(f.verified_layers) for name, f in found.items()} == EXPECTED
    assert np.array_equal(before[0], after[0]) and after[1] == 0  # its model left as it was
    assert models.architecture_notes(found["named"])["conv"] == (
        "convolutions: a layer named Conv2d (`conv`) was used, but it has no convolution "
        "weights")


GRADE = str(Path(sys.executable).parent / "grade")


@pytest.mark.slow
@sandboxed
def test_the_w6_rubric_gives_named_fakes_nothing(tmp_path, idx_folder, synthetic_md5):
    cache = tmp_path / "data"
    data.import_dir(idx_folder, cache, expected=synthetic_md5)
    setup, genuine, named = NOTEBOOK[0], NOTEBOOK[1], NOTEBOOK[2]
    notebooks.write(tmp_path / "class" / "honest_W6_MNIST_FC.ipynb", setup, genuine)
    notebooks.write(tmp_path / "class" / "namer_W6_MNIST_FC.ipynb",
                    setup, named, "model = named")
    out = tmp_path / "out"
    result = subprocess.run([GRADE, str(tmp_path / "class"), "--hw", "W6", "--out", str(out),
                             "--no-gpus"], capture_output=True, text=True, timeout=900,
                            env={**os.environ, "TORCHGRADE_DATA": str(cache)})
    assert result.returncode == 0, result.stderr + result.stdout
    items = architecture_items(out / "gradebook.sqlite")
    assert items["honest"][0] == 3
    assert items["namer"][0] == 0
    assert "a layer named Conv2d (`conv`) was used, but it has no convolution weights" \
        in items["namer"][1]
    assert "Error" not in items["namer"][1]


def architecture_items(gradebook: Path) -> dict[str, tuple[float, str]]:
    import sqlite3

    db = sqlite3.connect(gradebook)
    rows = db.execute("SELECT r.student, i.score, i.feedback FROM latest l "
                      "JOIN results r ON r.key = l.key JOIN items i ON i.key = r.key "
                      "WHERE i.name = 'test_architecture'").fetchall()
    db.close()
    return {student: (score, feedback) for student, score, feedback in rows}
