"""Course-era notebooks that save a model, or train one, under names of their own.

Built the way the course's students wrote them (the MorvanZhou tutorial the course copied,
`torch.save(net1, 'net.pkl')` from an `nn.Sequential` inside `save()`; a `class Net` with
`self.hidden` / `self.predict`), not the way the templates ask: the grader must judge them by
what they hold, whatever their names. Each builder writes one notebook and returns its path.
"""

from __future__ import annotations

from pathlib import Path

import nbformat

DATA = """\
import torch
import torch.nn.functional as F
import matplotlib.pyplot as plt

torch.manual_seed(1)    # reproducible
x = torch.unsqueeze(torch.linspace(-1, 1, 100), dim=1)  # x data (tensor), shape=(100, 1)
y = x.pow(2) + 0.2*torch.rand(x.size())                 # noisy y data (tensor), shape=(100, 1)
"""

NET_CLASS = """\
class Net(torch.nn.Module):
    def __init__(self, n_feature, n_hidden, n_output):
        super(Net, self).__init__()
        self.hidden = torch.nn.Linear(n_feature, n_hidden)   # hidden layer
        self.predict = torch.nn.Linear(n_hidden, n_output)   # output layer

    def forward(self, x):
        x = F.relu(self.hidden(x))      # activation function for hidden layer
        x = self.predict(x)             # linear output
        return x
"""

#: The tutorial's save/restore, as the course handed it out: every net is a local of its
#: function, so the notebook keeps no model; only the files remain.
TUTORIAL = ["""\
def save():
    # save net1
    net1 = torch.nn.Sequential(
        torch.nn.Linear(1, 10),
        torch.nn.ReLU(),
        torch.nn.Linear(10, 1)
    )
    optimizer = torch.optim.SGD(net1.parameters(), lr=0.5)
    loss_func = torch.nn.MSELoss()

    for t in range(100):
        prediction = net1(x)
        loss = loss_func(prediction, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    # plot result
    plt.figure(1, figsize=(10, 3))
    plt.subplot(131)
    plt.title('Net1')
    plt.scatter(x.data.numpy(), y.data.numpy())
    plt.plot(x.data.numpy(), prediction.data.numpy(), 'r-', lw=5)

    # 2 ways to save the net
    torch.save(net1, 'net.pkl')  # save entire net
    torch.save(net1.state_dict(), 'net_params.pkl')   # save only the parameters
""", """\
def restore_net():
    # restore entire net1 to net2
    net2 = torch.load('net.pkl')
    prediction = net2(x)

    # plot result
    plt.subplot(132)
    plt.title('Net2')
    plt.scatter(x.data.numpy(), y.data.numpy())
    plt.plot(x.data.numpy(), prediction.data.numpy(), 'r-', lw=5)
""", """\
def restore_params():
    # restore only the parameters in net1 to net3
    net3 = torch.nn.Sequential(
        torch.nn.Linear(1, 10),
        torch.nn.ReLU(),
        torch.nn.Linear(10, 1)
    )

    # copy net1's parameters into net3
    net3.load_state_dict(torch.load('net_params.pkl'))
    prediction = net3(x)

    # plot result
    plt.subplot(133)
    plt.title('Net3')
    plt.scatter(x.data.numpy(), y.data.numpy())
    plt.plot(x.data.numpy(), prediction.data.numpy(), 'r-', lw=5)
    plt.show()
""", """\
# save net1
save()

# restore entire net (may slow)
restore_net()

# restore only the net parameters
restore_params()
"""]

TRAIN_NET1 = """\
net1 = Net(n_feature=1, n_hidden=10, n_output=1)
optimizer = torch.optim.SGD(net1.parameters(), lr=0.5)
loss_func = torch.nn.MSELoss()
for t in range(100):
    prediction = net1(x)
    loss = loss_func(prediction, y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
"""


def write(path: Path, *cells: str, title: str = "") -> Path:
    """A notebook of these code cells (after a markdown title, when given) at `path`."""
    nb = nbformat.v4.new_notebook()
    if title:
        nb.cells.append(nbformat.v4.new_markdown_cell(title))
    nb.cells += [nbformat.v4.new_code_cell(c) for c in cells]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def tutorial(path: Path) -> Path:
    """The tutorial's save/restore: an nn.Sequential saved to net.pkl and net_params.pkl from
    inside `save()`, restored by `restore_net()` and `restore_params()`."""
    return write(path, DATA, *TUTORIAL, title="# 304 Save and reload")


def net1_with_a_class(path: Path) -> Path:
    """The slide's `class Net`, trained as a global `net1`, saved to files named its own way
    (net1.pt, net1_params.pth) and restored into `net2` and `net3`."""
    return write(path, DATA, NET_CLASS, TRAIN_NET1, """\
torch.save(net1, 'net1.pt')
torch.save(net1.state_dict(), 'net1_params.pth')
""", """\
net2 = torch.load('net1.pt', weights_only=False)
net3 = Net(1, 10, 1)
net3.load_state_dict(torch.load('net1_params.pth'))
print(torch.equal(net1(x), net2(x)), torch.equal(net1(x), net3(x)))
""")


def state_dict_only(path: Path) -> Path:
    """Only the parameters saved (`params.pkl`, through a name holding the file's name), as
    half the class did: the whole net never was."""
    return write(path, DATA, NET_CLASS, TRAIN_NET1, """\
PATH = 'params.pkl'
torch.save(net1.state_dict(), PATH)
net3 = Net(1, 10, 1)
net3.load_state_dict(torch.load(PATH))
""")


def w4_module_net(path: Path) -> Path:
    """W4 done the tutorial's way (301 regression): the slide's `class Net` with
    hidden/predict, trained by autograd; no W1, b1, W2, b2 and no `gradients`."""
    return write(path, DATA, NET_CLASS, """\
net = Net(n_feature=1, n_hidden=10, n_output=1)     # define the network
optimizer = torch.optim.SGD(net.parameters(), lr=0.2)
loss_func = torch.nn.MSELoss()  # this is for regression mean squared loss

for t in range(1000):
    prediction = net(x)     # input x and predict based on x
    loss = loss_func(prediction, y)     # must be (1. nn output, 2. target)
    optimizer.zero_grad()   # clear gradients for next train
    loss.backward()         # backpropagation, compute gradients
    optimizer.step()        # apply gradients
print(loss.item())
""", title="# W4 two-layer network")
