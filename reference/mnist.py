"""W6 reference: MNIST with the slide's fully connected net, the slide's CNN, and a best CNN.

Read top to bottom: the three models, how pixels become tensors, the slide's training loop, the
best CNN's training loop (augmentation + one-cycle schedule), and each image's predicted class.
Every model takes images scaled to [0, 1] of shape (N, 1, 28, 28), as the slide's
`train_data.train_data / 255.` produces, and returns logits of shape (N, 10).

Accuracy is not computed here. The judge never runs a notebook's model itself: it asks the
sandbox for logits and computes accuracy from them in `grader.judge.models`
(`fraction_correct`); measure a reference model the same way, with
`fraction_correct(predict(model, x).numpy(), y.numpy())`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

# ----------------------------------------------------------------------------- models


class FC(nn.Module):
    """The slide's baseline: Linear(784, 256) -> ReLU -> Linear(256, 10)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(784, 256)
        self.fc2 = nn.Linear(256, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.view(x.size(0), -1)
        return self.fc2(F.relu(self.fc1(x)))


class CNN(nn.Module):
    """The slide's CNN: two 5x5 convolutions, each followed by ReLU and a 2x2 max-pool.

    Shapes for one image: [1,16,28,28] -> [1,16,14,14] -> [1,32,14,14] -> [1,32,7,7] -> [1,1568].
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Sequential(nn.Conv2d(1, 16, 5, 1, 2), nn.ReLU(), nn.MaxPool2d(2))
        self.conv2 = nn.Sequential(nn.Conv2d(16, 32, 5, 1, 2), nn.ReLU(), nn.MaxPool2d(2))
        self.out = nn.Linear(32 * 7 * 7, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv2(self.conv1(x))
        return self.out(x.view(x.size(0), -1))


def conv_bn(c_in: int, c_out: int) -> nn.Sequential:
    """3x3 convolution, batch norm, ReLU: the building block of the best CNN."""
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
                         nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class BestCNN(nn.Module):
    """Convolutions + batch norm + dropout, small enough to train on a laptop CPU in minutes.

    28x28 -> conv 32 -> pool -> conv 48, conv 48 -> pool -> conv 96, conv 96 -> global average
    -> dropout -> 10. The wide layers work at 14x14 and 7x7, where they are cheap.
    """

    MEAN, STD = 0.1307, 0.3081  # MNIST pixel statistics, so inputs stay in the slide's [0, 1]

    def __init__(self, dropout: float = 0.2) -> None:
        super().__init__()
        self.features = nn.Sequential(
            conv_bn(1, 32), nn.MaxPool2d(2),
            conv_bn(32, 48), conv_bn(48, 48), nn.MaxPool2d(2),
            conv_bn(48, 96), conv_bn(96, 96), nn.AdaptiveAvgPool2d(1),
        )
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(96, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features((x - self.MEAN) / self.STD)
        return self.classifier(self.dropout(x.flatten(1)))


# ----------------------------------------------------------------------------- data


def to_tensors(images: np.ndarray, labels: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 (N, 28, 28) images and labels -> float (N, 1, 28, 28) in [0, 1] and int64 labels."""
    x = torch.from_numpy(np.asarray(images, dtype=np.uint8).copy()).unsqueeze(1).float() / 255.0
    return x, torch.from_numpy(np.asarray(labels).astype(np.int64))


# ----------------------------------------------------------------------------- the slide's loop


def train_slide(model: nn.Module, train_x: torch.Tensor, train_y: torch.Tensor, *,
                epochs: int = 1, lr: float = 0.001, data_size: int = 20_000,
                batch_size: int = 50, seed: int = 1) -> nn.Module:
    """The slide's loop: Adam, cross-entropy, a fresh permutation of the first `data_size`
    images per epoch, `data_size // batch_size` batches."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    data_size = min(data_size, len(train_x))
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    loss_func = nn.CrossEntropyLoss()
    model.train()
    for _ in range(epochs):
        order = torch.from_numpy(rng.permutation(data_size))
        for batch_i in range(data_size // batch_size):
            indx = order[batch_i * batch_size:(batch_i + 1) * batch_size]
            loss = loss_func(model(train_x[indx]), train_y[indx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return model.eval()


# ----------------------------------------------------------------------------- the best CNN's loop


def augment(x: torch.Tensor, generator: torch.Generator, max_degrees: float = 10.0,
            max_shift: float = 0.1, max_zoom: float = 0.1) -> torch.Tensor:
    """Random rotation, shift and zoom of a batch in one `grid_sample` call."""
    n = x.size(0)

    def uniform(bound: float) -> torch.Tensor:
        return (torch.rand(n, generator=generator) * 2 - 1) * bound

    angle = uniform(math.radians(max_degrees))
    scale = 1 + uniform(max_zoom)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin, uniform(max_shift) * 2], 1),
                         torch.stack([sin, cos, uniform(max_shift) * 2], 1)], 1)
    grid = F.affine_grid(theta.to(x), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, align_corners=False, padding_mode="zeros")


def train_best(train_x: torch.Tensor, train_y: torch.Tensor, *, epochs: int = 16,
               batch_size: int = 128, max_lr: float = 0.08, seed: int = 0,
               device: str | torch.device = "cpu",
               on_epoch: Callable[[int, nn.Module], None] | None = None) -> BestCNN:
    """SGD with Nesterov momentum under a one-cycle learning rate, on augmented batches.

    `on_epoch(epoch, model)` is called after each epoch (the model is left in train mode).
    """
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    model = BestCNN().to(device, memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=max_lr, momentum=0.9, nesterov=True,
                                weight_decay=5e-4)
    steps = epochs * math.ceil(len(train_x) / batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=max_lr, total_steps=steps)
    model.train()
    for epoch in range(epochs):
        order = torch.randperm(len(train_x), generator=generator)
        for batch in order.split(batch_size):
            x = augment(train_x[batch], generator).to(device, memory_format=torch.channels_last)
            loss = F.cross_entropy(model(x), train_y[batch].to(device), label_smoothing=0.1)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
        if on_epoch is not None:
            on_epoch(epoch, model)
            model.train()
    return model.eval()


# ----------------------------------------------------------------------------- predicting


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Predicted class per image, in eval mode, batch by batch: the argmax of the logits, as
    the judge takes it."""
    model.eval()
    device = next(model.parameters()).device
    return torch.cat([model(chunk.to(device)).argmax(1).cpu() for chunk in x.split(batch_size)])
