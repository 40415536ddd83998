"""W5/W6 reference: train the slide's `Net`, save it two ways, and restore it.

`torch.save(net, ...)` pickles the whole module: loading it runs whatever code the pickle names,
so a whole-net file from a student is only ever loaded inside the sandbox. `net.state_dict()`
holds tensors only and is read with `weights_only=True`, which refuses anything else.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

WHOLE_NET = "net_all.pkl"
PARAMS = "net_params.pkl"


class Net(nn.Module):
    """The slide's regression net: Linear hidden layer, ReLU, Linear prediction."""

    def __init__(self, n_feature: int, n_hidden: int, n_output: int) -> None:
        super().__init__()
        self.hidden = nn.Linear(n_feature, n_hidden)
        self.predict = nn.Linear(n_hidden, n_output)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.predict(F.relu(self.hidden(x)))


def train(x: torch.Tensor, y: torch.Tensor, steps: int = 100, lr: float = 0.5,
          seed: int = 1) -> Net:
    """The slide's loop: SGD on the mean-squared error, 100 full-batch steps."""
    torch.manual_seed(seed)
    net = Net(n_feature=1, n_hidden=10, n_output=1)
    optimizer = torch.optim.SGD(net.parameters(), lr=lr)
    loss_func = nn.MSELoss()
    for _ in range(steps):
        loss = loss_func(net(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return net


def save(net: nn.Module, folder: Path) -> tuple[Path, Path]:
    """Write both files the homework asks for and return their paths."""
    whole, params = folder / WHOLE_NET, folder / PARAMS
    torch.save(net, whole)
    torch.save(net.state_dict(), params)
    return whole, params


def restore_params(path: Path, n_feature: int = 1, n_hidden: int = 10, n_output: int = 1) -> Net:
    """Rebuild the net from a state_dict: tensors only, safe on untrusted files."""
    net = Net(n_feature, n_hidden, n_output)
    net.load_state_dict(torch.load(path, weights_only=True))
    return net


def restore_whole(path: Path) -> nn.Module:
    """Unpickle a whole net. This runs code named in the file: trusted files only."""
    return torch.load(path, weights_only=False)
