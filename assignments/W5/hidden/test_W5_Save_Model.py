"""W5/W6 save-model hidden rubric: both restored nets predict exactly what the trained net does.

net_params.pkl is read here, outside the sandbox, with weights_only=True; net_all.pkl (a pickle
that may run code) is only ever loaded inside the sandbox."""

import io

import numpy as np
import pytest
import torch

X = np.linspace(-1, 1, 101, dtype=np.float32).reshape(-1, 1)


@pytest.mark.points(2)
def test_state_dict_restores_the_net(student, reference):
    """net_params.pkl restores the trained net

    The saved state_dict, loaded by the grader with weights_only=True into the slide's Net,
    predicts exactly what the notebook's `net` does."""
    state = torch.load(io.BytesIO(student.read_file("net_params.pkl")), weights_only=True)
    hidden, features = state["hidden.weight"].shape
    net = reference.savemodel.Net(features, hidden, state["predict.weight"].shape[0])
    net.load_state_dict(state)
    with torch.no_grad():
        ours = net(torch.from_numpy(X)).numpy()
    theirs = student.forward("net", X)
    assert np.allclose(ours, theirs, atol=1e-6), "net_params.pkl does not hold the trained " \
        "net's parameters"


@pytest.mark.points(2)
def test_whole_net_restores_the_net(student):
    """net_all.pkl restores the trained net

    The whole pickled net, loaded only inside the sandbox, predicts exactly what the
    notebook's `net` does."""
    restored = student.load_and_forward("net_all.pkl", X)
    assert np.allclose(restored, student.forward("net", X), atol=1e-6), \
        "net_all.pkl does not predict what the trained net predicts"
