"""Course-era W4 notebooks, built the way 2021-2022 students wrote them (see
../shared/ASSIGNMENTS.md, W4): no `gradients` function, the gradients computed as free-standing
assignments next to autograd and compared with `.grad` by eye, biases often per sample.

Each builder returns the notebook's cells as text (`code` cells unless marked `MARKDOWN`);
`notebook(cells)` makes the nbformat notebook and `write(path, cells)` saves it. `EXPECTED`
says what a TA gives each for "the four gradients are right" (out of 6) and the mistake named.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import nbformat

#: A cell starting with this marker is a markdown cell (the marker removed).
MARKDOWN = "## md\n"

SLIDE_DATA = """\
torch.manual_seed(1)    # reproducible
x = torch.unsqueeze(torch.linspace(-1, 1, 100), dim=1)
y = x.pow(2) + 0.2*torch.rand(x.size())"""

#: The per-sample parameters most course notebooks used (b1 is n x H, b2 is n x 1).
PER_SAMPLE = """\
w1 = torch.randn(1, 10, requires_grad=True)
b1 = torch.zeros(100, 10, requires_grad=True)
w2 = torch.randn(10, 1, requires_grad=True)
b2 = torch.zeros(100, 1, requires_grad=True)
lr = 0.001"""

#: The forward pass and autograd's gradients, as the slide's training loop has them.
FORWARD = """\
hs = torch.sigmoid(x.mm(w1) + b1)
yp = hs.mm(w2) + b2
loss = (y - yp).pow(2).sum()
loss.backward()"""

TRAIN_WITH_AUTOGRAD = """\
for t in range(300):
    hs = torch.sigmoid(x.mm(w1) + b1)
    yp = hs.mm(w2) + b2
    loss = (y - yp).pow(2).sum()
    loss.backward()
    with torch.no_grad():
        for p in (w1, b1, w2, b2):
            p -= lr * p.grad
            p.grad.zero_()
print(loss.item())"""


def torch_per_sample() -> list[str]:
    """`.t().mm()` with per-sample biases, compared with autograd: all four right."""
    return [
        "import torch\nimport matplotlib.pyplot as plt",
        SLIDE_DATA,
        PER_SAMPLE,
        FORWARD,
        "w2_grad = -2 * hs.t().mm(y - yp)\n"
        "b2_grad = -2 * (y - yp)\n"
        "w1_grad = -2 * x.t().mm((y - yp).mm(w2.t()).mul(hs).mul(1 - hs))\n"
        "b1_grad = -2 * (y - yp).mm(w2.t()).mul(hs).mul(1 - hs)\n"
        "print(torch.allclose(w1_grad, w1.grad))\n"
        "print(torch.allclose(b1_grad, b1.grad))\n"
        "print((w2_grad - w2.grad).abs().max())\n"
        "print(b2_grad == b2.grad)",
        TRAIN_WITH_AUTOGRAD,
        MARKDOWN + "The gradients are computed above and compared with autograd.",
    ]


def matmul_shared() -> list[str]:
    """`@` and `.T`, shared 1 x H biases, `W1_grad`-style names, trained with them: right."""
    return [
        "import torch\nimport matplotlib.pyplot as plt",
        SLIDE_DATA + "\nx, y = x.double(), y.double()",
        "W1 = torch.randn(1, 20, dtype=torch.float64)\n"
        "b1 = torch.zeros(1, 20, dtype=torch.float64)\n"
        "W2 = torch.randn(20, 1, dtype=torch.float64)\n"
        "b2 = torch.zeros(1, 1, dtype=torch.float64)\n"
        "lr = 0.002",
        "for epoch in range(2000):\n"
        "    h = x @ W1 + b1\n"
        "    h_sig = torch.sigmoid(h)\n"
        "    y_pred = h_sig @ W2 + b2\n"
        "    G = 2 * (y_pred - y)\n"
        "    W2_grad = h_sig.T @ G\n"
        "    b2_grad = G.sum(dim=0, keepdim=True)\n"
        "    dH = (G @ W2.T) * h_sig * (1 - h_sig)\n"
        "    W1_grad = x.T @ dH\n"
        "    b1_grad = dH.sum(dim=0, keepdim=True)\n"
        "    W1 -= lr * W1_grad\n"
        "    b1 -= lr * b1_grad\n"
        "    W2 -= lr * W2_grad\n"
        "    b2 -= lr * b2_grad\n"
        "    if epoch % 500 == 0:\n"
        "        print(epoch, ((y_pred - y) ** 2).sum().item())",
        "plt.scatter(x.numpy(), y.numpy())\n"
        "plt.plot(x.numpy(), y_pred.numpy(), 'r-', lw=5)",
    ]


def numpy_version() -> list[str]:
    """numpy throughout: `np.dot`, a `sigmoid` function of the notebook's, `grad_w1`: right."""
    return [
        "import numpy as np\nimport matplotlib.pyplot as plt\n%matplotlib inline",
        "np.random.seed(1)\n"
        "x = np.linspace(-1, 1, 100).reshape(-1, 1)\n"
        "y = x ** 2 + 0.2 * np.random.rand(*x.shape)",
        "def sigmoid(z):\n"
        "    return 1 / (1 + np.exp(-z))",
        "w1 = np.random.randn(1, 10)\n"
        "b1 = np.zeros((1, 10))\n"
        "w2 = np.random.randn(10, 1)\n"
        "b2 = np.zeros((1, 1))\n"
        "lr = 0.002",
        "for i in range(2000):\n"
        "    hs = sigmoid(np.dot(x, w1) + b1)\n"
        "    yp = np.dot(hs, w2) + b2\n"
        "    grad_yp = 2 * (yp - y)\n"
        "    grad_w2 = np.dot(hs.T, grad_yp)\n"
        "    grad_b2 = np.sum(grad_yp, axis=0, keepdims=True)\n"
        "    grad_h = np.dot(grad_yp, w2.T) * hs * (1 - hs)\n"
        "    grad_w1 = np.dot(x.T, grad_h)\n"
        "    grad_b1 = np.sum(grad_h, axis=0, keepdims=True)\n"
        "    w1 -= lr * grad_w1\n"
        "    b1 -= lr * grad_b1\n"
        "    w2 -= lr * grad_w2\n"
        "    b2 -= lr * grad_b2\n"
        "print(np.sum((yp - y) ** 2))",
    ]


def wrong_sign() -> list[str]:
    """Per sample, the first layer's gradients with the sign reversed (Y_pred − Y in one
    place, Y − Y_pred in the other): dW2 and db2 right, dW1 and db1 named as the sign."""
    return [
        "import torch",
        SLIDE_DATA,
        PER_SAMPLE,
        FORWARD,
        "w2_grad = -2 * hs.t().mm(y - yp)\n"
        "b2_grad = -2 * (y - yp)\n"
        "w1_grad = 2 * x.t().mm((y - yp).mm(w2.t()).mul(hs).mul(1 - hs))\n"
        "b1_grad = 2 * (y - yp).mm(w2.t()).mul(hs).mul(1 - hs)\n"
        "print(w1_grad - w1.grad)",
    ]


def no_sigmoid_derivative() -> list[str]:
    """Per sample, the sigmoid's derivative left out of dW1 and db1: those two named."""
    return [
        "import torch",
        SLIDE_DATA,
        PER_SAMPLE,
        FORWARD,
        "dw2 = -2 * hs.t().mm(y - yp)\n"
        "db2 = -2 * (y - yp)\n"
        "dw1 = -2 * x.t().mm((y - yp).mm(w2.t()))\n"
        "db1 = -2 * (y - yp).mm(w2.t())\n"
        "print(dw1, w1.grad)",
    ]


def compared_with_grad() -> list[str]:
    """Vector biases, gradients under names that say nothing (`g1`, `mine`), each compared
    with a parameter's `.grad`, one of them written inside the comparison: all four right."""
    return [
        "import torch\nimport torch.nn.functional as F",
        SLIDE_DATA,
        "w1 = torch.randn(1, 10, requires_grad=True)\n"
        "b1 = torch.zeros(10, requires_grad=True)\n"
        "w2 = torch.randn(10, 1, requires_grad=True)\n"
        "b2 = torch.zeros(1, requires_grad=True)",
        "a = F.sigmoid(x.mm(w1) + b1)\n"
        "out = a.mm(w2) + b2\n"
        "f = ((y - out) ** 2).sum()\n"
        "f.backward()",
        "err = 2 * (out - y)\n"
        "g2 = a.t().mm(err)\n"
        "back = err.mm(w2.t()) * a * (1 - a)\n"
        "g1 = x.t().mm(back)\n"
        "mine = back.sum(0)\n"
        "print(torch.allclose(g1, w1.grad), torch.allclose(g2, w2.grad))\n"
        "print(torch.allclose(mine, b1.grad))\n"
        "print(torch.allclose(err.sum(0), b2.grad))",
    ]


def autograd_only() -> list[str]:
    """Autograd's gradients copied into gradient-named variables: nothing derived."""
    return [
        "import torch",
        SLIDE_DATA,
        PER_SAMPLE,
        FORWARD,
        "w1_grad = w1.grad\nb1_grad = b1.grad\nw2_grad = w2.grad.clone()\n"
        "b2_grad = b2.grad.data\nprint(w1_grad, b1_grad, w2_grad, b2_grad)",
    ]


def nothing() -> list[str]:
    """An `nn.Sequential` trained with an optimizer, no gradient derived anywhere."""
    return [
        "import torch\nimport torch.nn as nn",
        SLIDE_DATA,
        "net = nn.Sequential(nn.Linear(1, 10), nn.Sigmoid(), nn.Linear(10, 1))\n"
        "optimizer = torch.optim.SGD(net.parameters(), lr=0.002)\n"
        "for t in range(300):\n"
        "    loss = ((y - net(x)) ** 2).sum()\n"
        "    optimizer.zero_grad()\n"
        "    loss.backward()\n"
        "    optimizer.step()\n"
        "print(loss.item())",
    ]


#: Each builder, with the points (of 6) a TA gives its gradients and the mistake named.
EXPECTED: dict[str, tuple[Callable[[], list[str]], float, str]] = {
    "torch_per_sample": (torch_per_sample, 6.0, "none"),
    "matmul_shared": (matmul_shared, 6.0, "none"),
    "numpy_version": (numpy_version, 6.0, "none"),
    "wrong_sign": (wrong_sign, 3.0, "sign"),
    "no_sigmoid_derivative": (no_sigmoid_derivative, 3.0, "sigmoid_derivative"),
    "compared_with_grad": (compared_with_grad, 6.0, "none"),
    "autograd_only": (autograd_only, 0.0, "autograd"),
    "nothing": (nothing, 0.0, "missing"),
}


def notebook(cells: list[str]) -> nbformat.NotebookNode:
    """The notebook of these cells, with the Python 3 kernel named."""
    made = [nbformat.v4.new_markdown_cell(c.removeprefix(MARKDOWN)) if c.startswith(MARKDOWN)
            else nbformat.v4.new_code_cell(c) for c in cells]
    nb = nbformat.v4.new_notebook(cells=made)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    return nb


def write(path: Path, cells: list[str]) -> Path:
    """Save the notebook of these cells at `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook(cells), path)
    return path


def code(cells: list[str]) -> list[str]:
    """The code cells' text, as `derived.code_cells` gives it from a run."""
    return [c for c in cells if not c.startswith(MARKDOWN)]
