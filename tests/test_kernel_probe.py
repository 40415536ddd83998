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
