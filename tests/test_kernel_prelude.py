"""What the student's kernel runs before the first cell (kernel_prelude.py), tested here in a
plain interpreter, and the short statements with which the agent has a kernel load it and
kernel_probe.py (the sandbox tests run both inside real kernels)."""

from __future__ import annotations

import io
import json
import random
import subprocess
import sys

import numpy as np
import pytest
import torch

from grader.sandbox import kernel_prelude, session


def test_a_capped_stream_keeps_the_first_characters_and_says_so_once():
    inner = io.StringIO()
    capped = kernel_prelude.Capped(inner, 5)
    assert capped.write("abc") == 3 and capped.write("defgh") == 5
    capped.write("more")
    capped.write(42)
    assert inner.getvalue() == "abcde" + kernel_prelude.TRUNCATED
    assert capped.getvalue() == inner.getvalue()  # everything else is the stream's own


def test_start_caps_both_streams_and_seeds_every_generator(monkeypatch):
    out, err = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", err)
    state = random.getstate(), np.random.get_state(), torch.get_rng_state()
    try:
        kernel_prelude.start({"output_limit": 4, "seed": 7, "uses_torch": True,
                              "cpu_fallback": False})
        drawn = random.random(), np.random.random(), torch.rand(1).item()
        print("printed")
        sys.stderr.write("warned")
    finally:
        random.setstate(state[0])
        np.random.set_state(state[1])
        torch.set_rng_state(state[2])
    assert drawn[0] == random.Random(7).random()
    assert drawn[1] == np.random.RandomState(7).random_sample()
    assert drawn[2] == torch.rand(1, generator=torch.Generator().manual_seed(7)).item()
    assert out.getvalue() == "prin" + kernel_prelude.TRUNCATED
    assert err.getvalue() == "warn"


@pytest.mark.skipif(torch.cuda.is_available(), reason="the fallback is for machines without a GPU")
def test_the_cpu_fallback_makes_cuda_calls_harmless(monkeypatch):
    for owner, name in [(torch.Tensor, "cuda"), (torch.nn.Module, "cuda"),
                        (torch.cuda, "set_per_process_memory_fraction"),
                        (torch.cuda, "synchronize"), (torch.cuda, "empty_cache")]:
        monkeypatch.setattr(owner, name, getattr(owner, name))  # put back afterwards
    assert kernel_prelude.cpu_fallback()
    x, net = torch.ones(2), torch.nn.Linear(2, 1)
    assert x.cuda() is x and net.cuda(0) is net
    torch.cuda.synchronize()
    torch.cuda.set_per_process_memory_fraction(0.5)


#: Runs the agent's statements as a kernel would run them, in a namespace of their own.
KERNEL = r"""
import json, pathlib, random, sys
sys.path.insert(0, {folder!r})
import agent
folder = pathlib.Path(agent.__file__).parent
settings = {{"output_limit": 100, "seed": 3, "uses_torch": False, "cpu_fallback": False}}
prelude = agent.prelude_statement(folder / "kernel_prelude.py", settings)
scope = {{"__name__": "__main__"}}
exec(prelude, scope)
drawn = random.random()
left = sorted(scope)
scope["double"] = lambda x: x * 2
exec(agent.load_statement(folder / "kernel_probe.py", "_tg_kernel"), scope)
request = {{"op": "call", "name": "double", "torch": False,
           "inputs": [str(pathlib.Path({out!r}, "in-0.npy"))]}}
exec(agent.answer_statement(request, pathlib.Path({out!r})), scope)
sys.__stdout__.write(json.dumps({{"drawn": drawn, "left": left,
    "lines": [prelude.count("\n") + 1, agent.answer_statement(request, folder).count("\n") + 1],
    "answer": json.loads(pathlib.Path({out!r}, "answer.json").read_text())}}))

"""


def test_the_agents_statements_load_the_modules_and_pass_settings_as_data(tmp_path):
    folder = str(session.AGENT_FILES[0].parent)
    np.save(tmp_path / "in-0.npy", np.arange(3.0))
    done = subprocess.run([sys.executable, "-c", KERNEL.format(folder=folder, out=str(tmp_path))],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    found = json.loads(done.stdout)
    assert found["drawn"] == random.Random(3).random()
    assert found["left"] == ["__builtins__", "__name__"]  # the prelude leaves no name behind
    assert max(found["lines"]) <= 20
    (output,) = found["answer"]["outputs"]
    assert np.load(output, allow_pickle=False).tolist() == [0.0, 2.0, 4.0]
