"""W5/W6 save-model hidden rubric: the saved files restore the trained net, whatever their names.

The files are those the notebook's torch.save calls wrote and every .pkl, .pt and .pth left in
its folder (the course's tutorial saves net.pkl and net_params.pkl, the template net_all.pkl and
net_params.pkl). A state_dict is read here, outside the sandbox, with weights_only=True and
restored here; a whole pickled net is only ever loaded inside the sandbox."""

import pytest

from grader.judge import judge_saving


@pytest.fixture(scope="module")
def saving(student, run, notebook, evidence):
    """The saved files, judged once for both items."""
    judged = judge_saving(student, run, notebook.contract if notebook else ())
    evidence["saved_files"] = list(judged.rows)
    return judged


@pytest.mark.points(2)
def test_state_dict_restores_the_net(saving, credit):
    """The saved parameters restore the trained net

    A state_dict the notebook saved, read and restored by the grader with weights_only=True,
    predicts on the grader's points exactly what the notebook's trained net predicts (when the
    notebook kept no trained net, what the whole net it saved predicts)."""
    verdict = saving.parameters
    assert verdict.fraction > 0, verdict.feedback
    credit(verdict.fraction, verdict.feedback)


@pytest.mark.points(2)
def test_whole_net_restores_the_net(saving, credit):
    """The saved whole net restores the trained net

    A whole pickled net the notebook saved, loaded only inside the sandbox, predicts on the
    grader's points exactly what the notebook's trained net predicts (when the notebook kept
    no trained net, what the parameters it saved predict)."""
    verdict = saving.whole
    assert verdict.fraction > 0, verdict.feedback
    credit(verdict.fraction, verdict.feedback)
