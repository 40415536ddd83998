"""The warm start (grader/sandbox/forkserver.py, warm.py): agents and kernels forked from a
process that has torch imported, brought into each notebook's own bubblewrap sandbox. Real
bubblewrap, real kernels; every test checks what the student's code could see or keep."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import nbformat
import numpy as np
import pytest

from grader.sandbox import ResourceLimits, bwrap, warm
from tests.test_sandbox import COUNT_PROCESSES, host_processes_with, notebook, run

SANDBOX_DIR = Path(__file__).resolve().parent.parent / "grader" / "sandbox"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(bwrap.executable() is None,
                       reason="bubblewrap is not installed (apt-get install bubblewrap)"),
]

PROCESS_STATUS = """
import os, numpy as np
def status(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return line.split()[1]
def capabilities():
    return np.array([int(status(f), 16) for f in ("CapInh", "CapPrm", "CapEff", "CapBnd",
                                                   "CapAmb")] + [int(status("NoNewPrivs"))])
def visible():
    seen = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                seen.append(open(f"/proc/{pid}/cmdline", "rb").read())
            except OSError:
                pass
    return np.array([len(seen), sum(b"forkserver" in s for s in seen)])
"""


def probe_all(session):
    return (session.warm, session.call("capabilities", torch=False),
            session.call("visible", torch=False))


@pytest.mark.parametrize("warm_start", [True, False], ids=["warm", "cold"])
def test_the_kernel_holds_no_capability_and_sees_only_its_sandbox(tmp_path, warm_start):
    # (that it cannot write on the agent's channel: test_sandbox's fake-result test)
    folder = notebook(tmp_path / "sub", PROCESS_STATUS)
    record, (was_warm, (caps,), (visible,)) = run(folder, probe=probe_all, warm=warm_start)
    assert record.outcome == "completed"
    assert was_warm is warm_start
    assert caps.tolist() == [0, 0, 0, 0, 0, 1]  # no capability anywhere; no_new_privs set
    count, forkservers = visible.tolist()
    assert forkservers == 0 and count <= 6  # its own sandbox only: init, placeholder, agent, kernel


def test_a_warm_kernel_has_torch_imported_and_answers_like_a_cold_one(tmp_path):
    folder = notebook(tmp_path / "sub", """
import sys, time
start = time.perf_counter()
import torch
import_seconds = time.perf_counter() - start
forked = "nbclient" in sys.modules       # only the agent imports nbclient
torch.manual_seed(3)
def predict(x):
    return torch.tanh(x @ torch.ones(3, 2)) + torch.randn(2)
""")
    x = np.arange(12, dtype=np.float32).reshape(4, 3) / 10
    answers = {}
    for warm_start in (True, False):
        def ask(session):
            return (session.warm, session.value("forked"), session.value("import_seconds"),
                    session.call("predict", x))
        record, answers[warm_start] = run(folder, probe=ask, warm=warm_start)
        assert record.outcome == "completed"
    was_warm, forked, seconds, (warm_out,) = answers[True]
    assert was_warm and bool(forked) and float(seconds) < 0.05
    was_warm, forked, _, (cold_out,) = answers[False]
    assert not was_warm and not bool(forked)
    np.testing.assert_array_equal(warm_out, cold_out)  # same seed, same numbers


def test_nothing_one_notebook_does_reaches_the_next(tmp_path):
    marker = f"left-{uuid.uuid4().hex[:8]}"
    first = notebook(tmp_path / "first", f"""
import subprocess, torch, numpy
open("/tmp/{marker}", "w").write("x")
open("/home/student/{marker}", "w").write("x")
torch._tg_left = numpy._tg_left = 1
torch.nn.Linear.forward = lambda self, x: x * 0
subprocess.Popen(["sh", "-c", "sleep 600; true", "{marker}"], start_new_session=True)
""")
    record, _ = run(first)
    assert record.outcome == "completed"
    second = notebook(tmp_path / "second", f"""
import os, torch, numpy, numpy as np
{COUNT_PROCESSES}
def left():
    running = processes_named("{marker}")
    linear = torch.nn.Linear(2, 2)
    return np.array([os.path.exists("/tmp/{marker}"), os.path.exists("/home/student/{marker}"),
                     hasattr(torch, "_tg_left"), hasattr(numpy, "_tg_left"),
                     bool((linear(torch.ones(1, 2)) == 0).all()), running])
""")
    record, (was_warm, (left,)) = run(second, probe=lambda s: (s.warm, s.call("left",
                                                                               torch=False)))
    assert record.outcome == "completed" and was_warm
    assert left.tolist() == [0, 0, 0, 0, 0, 0]
    assert host_processes_with(marker) == []


def test_a_fork_server_that_died_is_started_again(tmp_path):
    folder = notebook(tmp_path / "sub", "x = 1")
    record, was_warm = run(folder, probe=lambda s: s.warm)
    assert record.outcome == "completed" and was_warm
    old = warm._state.owned
    assert old is not None and old.alive()
    os.killpg(old.proc.pid, signal.SIGKILL)
    old.proc.wait()
    record, was_warm = run(folder, probe=lambda s: s.warm)
    assert record.outcome == "completed" and was_warm
    assert warm._state.owned is not old and warm._state.owned.alive()


def test_without_a_fork_server_the_run_starts_cold(tmp_path, monkeypatch):
    def unavailable(env):
        raise warm.WarmStartError("not here")

    monkeypatch.setattr(warm, "server", unavailable)
    folder = notebook(tmp_path / "sub", "import torch\nx = torch.ones(2).sum().item()")
    record, (was_warm, x) = run(folder, probe=lambda s: (s.warm, s.value("x")))
    assert record.outcome == "completed" and not was_warm and float(x) == 2.0


def test_a_warm_run_is_held_by_its_cgroup(tmp_path):
    folder = notebook(tmp_path / "sub", "x = bytearray(3 << 30)", "y = 1")
    limits = ResourceLimits(memory_mb=1024, pids=64, disk_mb=64)
    record, was_warm = run(folder, probe=lambda s: s.warm, resources=limits)
    assert was_warm
    assert record.outcome in ("killed", "error") and record.cells[0].error is not None
    assert record.peak_memory is None or record.peak_memory <= 1024 << 20


def test_a_plot_comes_out_the_same_warm_and_cold(tmp_path):
    folder = notebook(tmp_path / "sub", """
import matplotlib
import matplotlib.pyplot as plt
print(matplotlib.get_backend(), matplotlib.get_cachedir(), matplotlib.get_configdir())
plt.plot([0, 1, 2], [0, 1, 4], "r-")
plt.title("squares")
plt.show()
""")
    pages = {}
    for warm_start in (True, False):
        record, was_warm = run(folder, probe=lambda s: s.warm, warm=warm_start)
        assert record.outcome == "completed" and was_warm is warm_start
        pages[warm_start] = nbformat.reads(record.notebook, as_version=4).cells[0].outputs
    images = {k: [o["data"]["image/png"] for o in v if "image/png" in o.get("data", {})]
              for k, v in pages.items()}
    assert len(images[True]) == 1
    assert images[True] == images[False]  # same backend, same fonts, same pixels
    for outputs in pages.values():  # matplotlib's folders are the sandbox's home, both ways
        assert outputs[0]["text"].split() == ["module://matplotlib_inline.backend_inline",
                                              "/home/student/.cache/matplotlib",
                                              "/home/student/.config/matplotlib"]


UNPRIVILEGED_ENTRY = """
import json, os, subprocess, sys
from pathlib import Path
sys.path.insert(0, {sandbox_dir!r})  # bwrap.py and forkserver.py use the standard library only
import bwrap, forkserver

scratch = Path({scratch!r})
(scratch / "submission").mkdir()
info_read, info_write = os.pipe()
argv = bwrap.command(python=sys.executable, agent_files=[], submission=scratch / "submission",
                     etc=bwrap.write_etc(scratch / "etc"), data_view=None, disk_mb=64,
                     gpu_devices=[], env={{"HOME": bwrap.SANDBOX_HOME, "PATH": "/usr/bin"}},
                     program=bwrap.PLACEHOLDER, info_fd=info_write)
box = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, pass_fds=(info_write,))
os.close(info_write)
raw = b""
while True:  # bubblewrap may write its JSON in more than one piece
    chunk = os.read(info_read, 4096)
    assert chunk, raw
    raw += chunk
    try:
        target = json.loads(raw)["child-pid"]
        break
    except ValueError:
        continue
assert box.stdout.readline() == b"ready\\n"
answer_read, answer_write = os.pipe()
if os.fork() == 0:
    namespaces = forkserver._open_namespaces(target, box.pid)
    forkserver.enter(namespaces)
    forkserver.drop_privileges()
    os.chdir(bwrap.WORK_DIR)
    if os.fork() == 0:
        status = dict(line.split(":", 1) for line in open("/proc/self/status"))
        os.write(answer_write, json.dumps({{
            "cwd": os.getcwd(), "root": sorted(os.listdir("/")), "uid": os.getuid(),
            "pid": os.getpid(), "init": open("/proc/1/cmdline").read().split("\\0")[0],
            "cap_eff": int(status["CapEff"], 16), "no_new_privs": int(status["NoNewPrivs"]),
        }}).encode())
        os._exit(0)
    os.wait()
    os._exit(0)
os.close(answer_write)
print(os.read(answer_read, 65536).decode())
box.stdin.close()
box.wait()
"""


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None
                    or not Path("/usr/bin/python3").exists(),
                    reason="needs root, setpriv and /usr/bin/python3 to act as an ordinary user")
def test_an_unprivileged_graders_sandbox_is_entered_too():
    """bubblewrap run by an ordinary user nests its user namespaces differently than run by
    root; the fork server's setns order must handle both (this test suite runs as root)."""
    scratch = Path(tempfile.mkdtemp(prefix="torchgrade-unprivileged-"))
    try:
        os.chown(scratch, 65534, 65534)
        script = UNPRIVILEGED_ENTRY.format(sandbox_dir=str(SANDBOX_DIR), scratch=str(scratch))
        done = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                               "/usr/bin/python3", "-c", script], capture_output=True,
                              text=True, timeout=60, env={"PATH": "/usr/bin:/bin"})
        assert done.returncode == 0, done.stderr[-2000:]
        inside = json.loads(done.stdout)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    assert inside["cwd"] == bwrap.WORK_DIR and "submission" in inside["root"]
    assert inside["uid"] == 65534 and inside["pid"] > 1 and inside["init"].endswith("bwrap")
    assert inside["cap_eff"] == 0 and inside["no_new_privs"] == 1


def test_the_agents_import_path_is_the_sandboxs_own(monkeypatch):
    """Never the fork server's folder on the host: a notebook could make that path inside."""
    from grader.sandbox import forkserver

    beside = os.path.realpath(sys.prefix) + "-planted"  # a sibling that only starts alike
    monkeypatch.setattr(sys, "path", [str(SANDBOX_DIR), "", "/nowhere", beside,
                                      *[p for p in sys.path if p.startswith(sys.prefix)]])
    forkserver.only_sandbox_paths("/opt/torchgrade")
    assert sys.path[0] == "/opt/torchgrade"
    assert not {str(SANDBOX_DIR), "", "/nowhere", beside} & set(sys.path)
    assert len(sys.path) > 1
