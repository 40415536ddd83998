"""Course-era W5 mini-batch notebooks, built the way the course's own notebooks look (see
../shared/ASSIGNMENTS.md, W5): no `minibatches` or `batch_gradients` function, the loop written
out with a permutation per epoch and batches sliced from it.

The data are tiny (`data_size = 100`, a few epochs) so each runs in seconds. Each builder returns
the code cells as text; `write(path, cells)` saves the nbformat notebook. `EXPECTED` says what a
TA gives each for the two W5 public items, "One epoch of mini-batches visits every point once"
(out of 2) and "The batch gradient is the mean over the batch" (out of 3), and a phrase of the
reason.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import nbformat

HEAD = """\
import numpy as np
import torch
import matplotlib.pyplot as plt"""

DATA = """\
torch.manual_seed(1)    # reproducible
data_size = 100
x = torch.unsqueeze(torch.linspace(-1, 1, data_size), dim=1)
y = x.pow(2) + 0.2*torch.rand(x.size())"""

NET = """\
class Net(torch.nn.Module):
    def __init__(self, n_feature, n_hidden, n_output):
        super(Net, self).__init__()
        self.hidden = torch.nn.Linear(n_feature, n_hidden)
        self.predict = torch.nn.Linear(n_hidden, n_output)

    def forward(self, x):
        x = torch.sigmoid(self.hidden(x))
        return self.predict(x)

net = Net(n_feature=1, n_hidden=10, n_output=1)
loss_func = torch.nn.MSELoss()
batch_size = 10
EPOCH = 3
lr = 0.1"""


def course_own() -> list[str]:
    """The course's own: a numpy permutation per epoch, `range(data_size//batch_size)`, and a
    manual update that never zeroes the gradients."""
    return [HEAD, DATA, NET, """\
for epoch in range(EPOCH):
    random_indx = np.random.permutation(data_size)
    for batch_i in range(data_size // batch_size):
        indx = random_indx[batch_i*batch_size:(batch_i+1)*batch_size]
        prediction = net(x[indx])
        loss = loss_func(prediction, y[indx])
        loss.backward()
        for para in net.parameters():
            para.data -= lr * para.grad
    print(epoch, loss.item())"""]


def optimizer_randperm() -> list[str]:
    """`torch.randperm` per epoch, walking `range(0, data_size, batch_size)`, an optimizer that
    zeroes its gradients: everything right."""
    return [HEAD, DATA, NET, """\
optimizer = torch.optim.SGD(net.parameters(), lr=lr)
for epoch in range(EPOCH):
    perm = torch.randperm(data_size)
    for start in range(0, data_size, batch_size):
        idx = perm[start:start + batch_size]
        loss = ((net(x[idx]) - y[idx]) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    print(epoch, loss.item())"""]


def permuted_once() -> list[str]:
    """The permutation drawn once, before the epoch loop: every epoch the same order."""
    return [HEAD, DATA, NET, """\
optimizer = torch.optim.SGD(net.parameters(), lr=lr)
random_indx = np.random.permutation(data_size)
for epoch in range(EPOCH):
    for batch_i in range(int(np.ceil(data_size / batch_size))):
        indx = random_indx[batch_i*batch_size:(batch_i+1)*batch_size]
        loss = loss_func(net(x[indx]), y[indx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()"""]


def sum_loss() -> list[str]:
    """The batch sum, not the mean: gradients |B| times too large."""
    return [HEAD, DATA, NET, """\
optimizer = torch.optim.SGD(net.parameters(), lr=0.01)
for epoch in range(EPOCH):
    random_indx = np.random.permutation(data_size)
    for i in range(0, data_size, batch_size):
        indx = random_indx[i:i + batch_size]
        loss = ((net(x[indx]) - y[indx]) ** 2).sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()"""]


#: builder -> (its notebook's cells, points for the epoch item of 2, for the mean item of 3,
#: a phrase each reason holds; "" when full marks).
EXPECTED: dict[str, tuple[Callable[[], list[str]], float, float, str, str]] = {
    "course_own": (course_own, 1.5, 1.5, "drops the last, shorter batch",
                   "the gradients are never zeroed between updates: each step adds this "
                   "batch's gradient to all the earlier ones"),
    "optimizer_randperm": (optimizer_randperm, 2.0, 3.0, "", ""),
    "permuted_once": (permuted_once, 1.5, 3.0, "is drawn once, before the epoch loop", ""),
    "sum_loss": (sum_loss, 2.0, 1.5, "", "is the batch sum, not the mean"),
}


def notebook(cells: list[str]) -> nbformat.NotebookNode:
    """The cells as a notebook of code cells."""
    made = nbformat.v4.new_notebook()
    made.cells = [nbformat.v4.new_code_cell(cell) for cell in cells]
    made.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                   "language": "python"}
    return made


def write(path: Path, cells: list[str]) -> Path:
    """Save the cells as a notebook at `path`."""
    nbformat.write(notebook(cells), str(path))
    return path
