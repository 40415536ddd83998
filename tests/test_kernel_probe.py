"""The kernel's side of the questions, run here in a plain interpreter (the sandbox tests run
it inside real kernels): freezing what a notebook left running, and answering a call."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from grader.sandbox import kernel_probe

#: A "notebook" that leaves a counting thread, a timer and a trace function, then freezes.
LEFT_RUNNING = r"""
import json, signal, sys, threading, time
sys.path.insert(0, {folder!r})
import kernel_probe
own = list(sys._current_frames())
count = [0]
def work():
    while True:
        count[0] += 1
        time.sleep(0.001)
threading.Thread(target=work, daemon=True).start()
signal.signal(signal.SIGALRM, lambda *a: count.__setitem__(0, -10**9))
signal.setitimer(signal.ITIMER_REAL, 0.5)
sys.settrace(lambda *a: None)
time.sleep(0.2)
answer = kernel_probe.freeze(own)
time.sleep(0.1)               # a handler it had reached may finish its step
frozen_at = count[0]
time.sleep(1.0)               # the timer would have fired by now
print(json.dumps({{"answer": answer, "before": frozen_at, "after": count[0],
                  "trace": sys.gettrace() is None,
                  "alarm": signal.getsignal(signal.SIGALRM) == signal.SIG_DFL}}))
"""


def test_freeze_stops_the_notebooks_threads_timers_and_hooks():
    folder = str(Path(kernel_probe.__file__).parent)
    done = subprocess.run([sys.executable, "-c", LEFT_RUNNING.format(folder=folder)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    found = json.loads(done.stdout)
    assert found["answer"] == {"threads_stopped": 1}
    assert found["before"] > 0 and found["after"] == found["before"]
    assert found["trace"] and found["alarm"]


def test_a_call_answers_with_arrays_in_files(tmp_path):
    np.save(tmp_path / "in-0.npy", np.arange(3.0))
    request = {"op": "call", "name": "double", "torch": False,
               "inputs": [str(tmp_path / "in-0.npy")]}
    answer = kernel_probe.probe(request, str(tmp_path), {"double": lambda x: (x * 2, x)})
    outputs = [np.load(p, allow_pickle=False) for p in answer["outputs"]]
    assert [o.tolist() for o in outputs] == [[0.0, 2.0, 4.0], [0.0, 1.0, 2.0]]


def test_the_environment_is_only_the_torch_version():
    assert set(kernel_probe.environment()) == {"torch"}


def test_an_answer_is_left_as_json_for_the_agent(tmp_path):
    request = json.dumps({"op": "env"})
    assert kernel_probe.answer(request, str(tmp_path), {}) is None
    found = json.loads((tmp_path / kernel_probe.ANSWER).read_text())
    assert set(found) == {"torch"}


def test_a_question_the_kernel_does_not_know_raises():
    with pytest.raises(ValueError, match="unknown probe"):
        kernel_probe.probe({"op": "shell"}, "/nonexistent", {})


def evaluated(tmp_path, expression: str, arrays: dict[str, np.ndarray], torch: bool = True,
              scope: dict | None = None) -> np.ndarray:
    inputs = []
    for i, array in enumerate(arrays.values()):
        inputs.append(str(tmp_path / f"in-{i}.npy"))
        np.save(inputs[-1], array)
    request = {"op": "evaluate", "expression": expression, "names": list(arrays),
               "torch": torch, "inputs": inputs}
    answer = kernel_probe.probe(request, str(tmp_path), scope or {})
    return np.load(answer["outputs"][0], allow_pickle=False)


def test_an_expression_is_evaluated_on_the_judges_arrays_alone(tmp_path):
    """The notebook's namespace is never consulted: its `hs` cannot answer for the judge's."""
    X = np.arange(4.0).reshape(2, 2)
    assert evaluated(tmp_path, "X.T @ X", {"X": X}, torch=False).tolist() == (X.T @ X).tolist()
    with pytest.raises(NameError, match="hs"):
        evaluated(tmp_path, "hs * X", {"X": X}, scope={"hs": 1.0})
    with pytest.raises(NameError, match="open"):
        evaluated(tmp_path, "open('/etc/passwd')", {"X": X})
    assert evaluated(tmp_path, "numpy.exp(0 * X).sum() + len(X)", {"X": X},
                     torch=False).item() == 6.0


def test_under_torch_the_arrays_are_float64_tensors_and_new_ones_too(tmp_path):
    import torch

    before = torch.get_default_dtype()
    X = np.ones((3, 1))
    found = evaluated(tmp_path, "torch.ones(1, 3).mm(X.mul(2)).t()", {"X": X})
    assert found.dtype == np.float64 and found.tolist() == [[6.0]]
    assert torch.get_default_dtype() == before
    with pytest.raises(RuntimeError):
        evaluated(tmp_path, "torch.ones(2, 2).mm(X)", {"X": X})
    assert torch.get_default_dtype() == before


def test_an_expression_too_long_or_names_not_plain_are_refused(tmp_path):
    with pytest.raises(ValueError, match="too long"):
        evaluated(tmp_path, "1" * (kernel_probe.MAX_EXPRESSION_CHARS + 1), {})
    with pytest.raises(ValueError, match="plain name"):
        evaluated(tmp_path, "1", {"__builtins__": np.ones(1)})


def test_the_kernels_limits_are_the_tables():
    from grader.sandbox import protocol

    assert kernel_probe.MAX_EXPRESSION_CHARS == protocol.MAX_EXPRESSION_CHARS
