"""What `judge.grade` measures of a submission beside its rubric: weights handed in and loaded."""

from __future__ import annotations

import json
from pathlib import Path

from grader import assignments
from grader.intake import Submission
from grader.judge.grade import loaded_weights

W6 = assignments.find("W6").notebooks[0]


def notebook(*sources: str) -> str:
    return json.dumps({"cells": [{"cell_type": "code", "source": s} for s in sources]})


def test_a_model_loaded_from_a_file_handed_in_with_it_is_noticed(tmp_path: Path):
    files = (tmp_path / "best.pt", tmp_path / "notes.txt")
    handed = Submission("zoe", W6, tmp_path / "W6_MNIST_FC.ipynb", files, "h")
    loads = notebook("import torch", "model.load_state_dict(torch.load('best.pt'))")
    assert loaded_weights(handed, loads) == ["best.pt"]
    trains = notebook("import torch", "torch.save(model.state_dict(), 'best.pt')")
    assert loaded_weights(handed, trains) == []  # saved by the run, not loaded from the hand-in
    alone = Submission("zoe", W6, tmp_path / "W6_MNIST_FC.ipynb", (), "h")
    assert loaded_weights(alone, loads) == []
    assert loaded_weights(handed, "not json") == []
