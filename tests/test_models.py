"""grader/judge/models.py without a sandbox: a stand-in student answers `forward` by decoding
exactly what would have crossed the wire."""

from __future__ import annotations

import numpy as np
import pytest

from grader.judge import models
from grader.sandbox import ProbeError
from grader.sandbox.protocol import Packed, pack_array, unpack_array


class WireStudent:
    """Answers like a notebook whose model says 'the digit is the image's mean pixel mod 10'."""

    def __init__(self, shape_error: bool = False) -> None:
        self.asked: list[str] = []
        self.shape_error = shape_error

    def forward(self, name: str, x: object) -> np.ndarray:
        packed = pack_array(x)  # what Session.forward sends
        self.asked.append(packed)
        batch = unpack_array(packed)
        assert batch.dtype == np.float32 and batch.shape[1:] == (1, 28, 28)
        digit = np.rint(batch.reshape(len(batch), -1).mean(1) * 255).astype(int) % 10
        logits = np.eye(10, dtype=np.float32)[digit]
        return logits[:, :9] if self.shape_error else logits


def images(count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    values = rng.integers(0, 200, count)
    return np.repeat(values, 784).reshape(count, 28, 28).astype(np.uint8), values % 10


def test_predictions_are_the_argmax_taken_here_over_every_chunk():
    x, labels = images(models.CHUNK + 7)
    student = WireStudent()
    predicted = models.predictions(models.Found("model"), student, x)
    assert predicted.tolist() == labels.tolist()
    assert len(student.asked) == 2  # one full chunk and the rest
    assert models.accuracy(models.Found("model"), student, x, labels) == 1.0


def test_the_same_images_are_packed_once_per_process():
    x, _ = images(50, seed=1)
    first, second = WireStudent(), WireStudent()
    models.predictions(models.Found("model"), first, x)
    models.predictions(models.Found("model"), second, x)
    assert all(isinstance(p, Packed) for p in first.asked)
    assert [id(p) for p in first.asked] == [id(p) for p in second.asked]
    other, _ = images(50, seed=2)
    third = WireStudent()
    models.predictions(models.Found("model"), third, other)
    assert third.asked[0] != first.asked[0]


def test_the_cache_keeps_a_few_image_sets_only():
    sets = [images(3, seed=s)[0] for s in range(models.PREPARED_KEPT + 1)]
    firsts = [models.questions(s)[0][1] for s in sets]
    assert models.questions(sets[-1])[0][1] is firsts[-1]
    assert models.questions(sets[0])[0][1] is not firsts[0]  # the oldest was let go
    assert models.questions(sets[0])[0][1] == firsts[0]      # and is packed the same again


def test_a_wrong_shape_is_a_malformed_answer():
    x, _ = images(4)
    with pytest.raises(ProbeError) as caught:
        models.predictions(models.Found("model"), WireStudent(shape_error=True), x)
    assert caught.value.kind == "malformed"


def test_confusion_counts_true_against_predicted():
    counts = models.confusion(np.array([1, 1, 2]), np.array([1, 2, 2]))
    assert counts[1, 1] == 1 and counts[2, 1] == 1 and counts[2, 2] == 1 and counts.sum() == 3


class ModulesStudent:
    """Answers `modules` as the sandbox does: each nn.Module in the namespace, with its output
    shape on the judge's batch."""

    def __init__(self, *names: str) -> None:
        self.names = names

    def modules(self, shape: tuple[int, ...]) -> list[dict[str, object]]:
        return [{"name": n, "output_shape": [shape[0], 10], "layers": []} for n in self.names]


def test_the_contract_names_the_model_the_judge_grades():
    student = ModulesStudent("net", "model", "best")
    assert models.find(student).name == "model"                      # today's default
    assert models.find(student, ("model",)).name == "model"          # W6's contract
    assert models.find(student, ("best", "model")).name == "best"    # contract order wins
    assert models.find(student, ()).name == "model"                  # empty: the default


def test_a_missing_contract_name_says_which_model_was_graded_instead():
    found = models.find(ModulesStudent("net", "cnn"), ("classifier", "clf"))
    assert found.name == "cnn"
    assert found.feedback == "no `classifier` or `clf` variable; graded `cnn` instead"
    assert models.find(ModulesStudent("cnn")).feedback == "no `model` variable; graded `cnn` " \
        "instead"


def test_fraction_correct_is_the_one_accuracy():
    assert models.fraction_correct(np.array([1, 2, 3, 4]), np.array([1, 2, 0, 0])) == 0.5
    assert models.fraction_correct(np.zeros(0), np.zeros(0)) == 0.0
    with pytest.raises(ValueError, match="3 predictions for 2 labels"):
        models.fraction_correct(np.zeros(3), np.zeros(2))
