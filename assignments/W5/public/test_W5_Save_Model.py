"""W5/W6 save-model public rubric: the model saved both ways, found by what the files hold."""

import pytest

from grader.judge import saved_files


@pytest.mark.points(1)
def test_model_saved_both_ways(student, run, credit):
    """The model was saved both ways

    A whole net (a pickle, which the grader opens only inside the sandbox) and its parameters
    (a state_dict, which the grader reads with weights_only=True), whatever the files are
    called: every file torch.save wrote and every .pkl, .pt and .pth in the notebook's folder
    is looked at."""
    saved = saved_files(student, run)
    assert saved.wholes, saved.no_whole()
    assert saved.state_dicts, saved.no_parameters()
    credit(1.0, saved.both())
