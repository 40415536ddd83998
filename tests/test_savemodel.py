"""The save/restore reference: both round trips predict exactly what the trained net predicts."""

import pickle

import pytest
import torch

from reference import savemodel, twolayer


@pytest.fixture(scope="module")
def trained():
    x, y = twolayer.slide_data()
    return savemodel.train(x, y), x


def test_both_round_trips_predict_identically(trained, tmp_path):
    net, x = trained
    whole, params = savemodel.save(net, tmp_path)
    expected = net(x)
    assert torch.equal(savemodel.restore_whole(whole)(x), expected)
    assert torch.equal(savemodel.restore_params(params)(x), expected)


def test_training_reduces_the_loss(trained):
    net, x = trained
    _, y = twolayer.slide_data()
    untrained = savemodel.Net(1, 10, 1)
    loss = torch.nn.functional.mse_loss
    assert loss(net(x), y) < 0.5 * loss(untrained(x), y)


def test_state_dict_loader_refuses_a_whole_net_pickle(trained, tmp_path):
    net, _ = trained
    whole, _ = savemodel.save(net, tmp_path)
    with pytest.raises(pickle.UnpicklingError):
        savemodel.restore_params(whole)


class Payload:
    def __reduce__(self):
        return (exec, ("import pathlib; pathlib.Path('PWNED').write_text('x')",))


def test_state_dict_loader_never_runs_code_from_the_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    torch.save({"hidden.weight": Payload()}, tmp_path / "evil.pkl")
    with pytest.raises(pickle.UnpicklingError):
        savemodel.restore_params(tmp_path / "evil.pkl")
    assert not (tmp_path / "PWNED").exists()
