"""The W6 reference models: the slide's shapes, the training loops, measured by the judge's
accuracy (the only one: reference.mnist has none of its own)."""

import math

import numpy as np
import pytest
import torch

from grader.judge.models import fraction_correct
from reference import mnist


def accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    return fraction_correct(mnist.predict(model, x).numpy(), y.numpy())


@pytest.mark.parametrize("model", [mnist.FC(), mnist.CNN(), mnist.BestCNN()],
                         ids=lambda m: type(m).__name__)
def test_every_model_maps_images_to_ten_scores(model):
    assert model.eval()(torch.rand(3, 1, 28, 28)).shape == (3, 10)


def test_slide_cnn_intermediate_shapes():
    cnn = mnist.CNN()
    x = torch.rand(1, 1, 28, 28)
    shapes = []
    for layer in (*cnn.conv1, *cnn.conv2):
        x = layer(x)
        if not isinstance(layer, torch.nn.ReLU):
            shapes.append(list(x.shape))
    assert shapes == [[1, 16, 28, 28], [1, 16, 14, 14], [1, 32, 14, 14], [1, 32, 7, 7]]
    assert list(x.view(1, -1).shape) == [1, 1568]


def test_best_cnn_has_convolutions_batch_norm_and_dropout():
    kinds = {type(m) for m in mnist.BestCNN().modules()}
    assert {torch.nn.Conv2d, torch.nn.BatchNorm2d, torch.nn.Dropout} <= kinds


def test_to_tensors_scales_like_the_slide():
    images = np.array([[[0, 255] * 14] * 28], dtype=np.uint8)
    x, y = mnist.to_tensors(images, np.array([7], dtype=np.uint8))
    assert x.shape == (1, 1, 28, 28) and x.max() == 1.0 and x.min() == 0.0
    assert y.dtype == torch.int64 and y.tolist() == [7]


def test_augment_keeps_shape_and_is_the_identity_at_zero_strength():
    x = torch.rand(4, 1, 28, 28)
    g = torch.Generator().manual_seed(0)
    assert mnist.augment(x, g).shape == x.shape
    same = mnist.augment(x, g, max_degrees=0, max_shift=0, max_zoom=0)
    torch.testing.assert_close(same, x, atol=1e-5, rtol=0)


def separable_digits(n: int, seed: int):
    """Two 'digits' a model can tell apart: a bright left half versus a bright right half."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    x = torch.rand(n, 1, 28, 28, generator=g) * 0.2
    x[y == 0, :, :, :14] += 0.8
    x[y == 1, :, :, 14:] += 0.8
    return x, y


@pytest.mark.parametrize("make", [mnist.FC, mnist.CNN])
def test_the_slide_loop_learns(make):
    x, y = separable_digits(400, seed=0)
    model = mnist.train_slide(make(), x, y, data_size=400, batch_size=50, epochs=2)
    assert not model.training
    assert accuracy(model, *separable_digits(200, seed=1)) > 0.95


def test_the_best_loop_learns_and_reports_each_epoch():
    x, y = separable_digits(256, seed=0)
    seen = []
    model = mnist.train_best(x, y, epochs=2, batch_size=64, on_epoch=lambda e, m: seen.append(e))
    assert seen == [0, 1] and not model.training
    assert accuracy(model, *separable_digits(200, seed=1)) > 0.9


def test_predictions_are_the_argmax_the_judge_scores():
    class Constant(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def forward(self, x):
            return torch.nn.functional.one_hot(torch.full((len(x),), 3), 10).float() + self.w

    y = torch.tensor([3, 3, 1, 0])
    assert mnist.predict(Constant(), torch.zeros(4, 1, 28, 28)).tolist() == [3, 3, 3, 3]
    assert math.isclose(accuracy(Constant(), torch.zeros(4, 1, 28, 28), y), 0.5)


def test_the_reference_computes_no_accuracy_of_its_own():
    assert not hasattr(mnist, "accuracy")
