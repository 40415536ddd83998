"""The sandbox: real bubblewrap, real kernels, real cgroups. Each attack is contained and still
ends in a record for that submission; course-era notebooks still run."""

from __future__ import annotations

import json
import pickle
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import nbformat
import numpy as np
import pytest

from grader import data
from grader.sandbox import ProbeError, ResourceLimits, Sandbox, SandboxConfig, bwrap

REPO = Path(__file__).resolve().parent.parent

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(bwrap.executable() is None,
                       reason="bubblewrap is not installed (apt-get install bubblewrap)"),
]


@pytest.fixture
def view(tmp_path, idx_folder, synthetic_md5):
    cache = tmp_path / "cache"
    data.import_dir(idx_folder, cache, expected=synthetic_md5)
    return data.public_view(cache)


@pytest.fixture
def holdout_path(view):
    """A file holding the private hold-out labels, outside the public view (as in real use)."""
    return view.parent / "mnist" / "train-labels-idx1-ubyte"


def notebook(folder: Path, *cells: str, name: str = "nb.ipynb") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nbformat.write(nb, folder / name)
    return folder


#: Whether run() starts warm (the default) unless told; the `start` fixture runs every test of
#: this file both ways.
START_WARM = True


@pytest.fixture(autouse=True, params=["warm", "cold"])
def start(request, monkeypatch):
    monkeypatch.setattr(sys.modules[__name__], "START_WARM", request.param == "warm")
    return request.param


def run(folder: Path, view: Path | None = None, probe=None, **config):
    config.setdefault("warm", START_WARM)
    resources = config.pop("resources", ResourceLimits(memory_mb=2048, pids=64, disk_mb=64))
    config.setdefault("cell_seconds", 60)
    config.setdefault("notebook_seconds", 120)
    sandbox = Sandbox(SandboxConfig(data_view=view, resources=resources, **config))
    with sandbox.open(folder, "nb.ipynb") as session:
        record = session.execute()
        answer = probe(session) if probe else None
    return record, answer


#: Notebook code: how many processes the sandbox shows with `marker` in their command line.
COUNT_PROCESSES = """
def processes_named(marker):
    import os
    found = 0
    for pid in os.listdir("/proc"):
        try:
            found += marker in open(f"/proc/{pid}/cmdline").read()
        except (OSError, ValueError):
            pass
    return found
"""


def host_processes_with(marker: str) -> list[str]:
    out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if marker in line and "ps -eo" not in line]


# ----------------------------------------------------------------------------- a normal run


def test_a_notebook_runs_and_answers_questions(tmp_path, view):
    folder = notebook(tmp_path / "sub",
                      "import torch\ndef double(x):\n    return x * 2, x.sum()",
                      "net = torch.nn.Linear(784, 10)\n"
                      "class Flat(torch.nn.Module):\n"
                      "    def __init__(self):\n        super().__init__(); self.l = net\n"
                      "    def forward(self, x): return self.l(x.view(len(x), -1))\n"
                      "model = Flat()",
                      "raise ValueError('boom')",
                      "after = 1")

    def probe(session):
        doubled, total = session.call("double", np.arange(4.0))
        modules = {m["name"]: m for m in session.modules((3, 1, 28, 28))}
        logits = session.forward("model", np.zeros((5, 1, 28, 28), np.float32))
        return doubled, total, modules, logits, session.environment()

    record, (doubled, total, modules, logits, env) = run(folder, view, probe)
    assert record.outcome == "error" and "ValueError: boom" in record.reason
    assert [c.error is not None for c in record.cells] == [False, False, True, False]
    assert record.sandboxed and any("cgroup" in line for line in record.limits)
    assert doubled.tolist() == [0, 2, 4, 6] and total == 6
    assert modules["model"]["output_shape"] == [3, 10] and "error" in modules["net"]
    assert modules["model"]["used_layers"] == ["Flat", "Linear"]
    assert logits.shape == (5, 10)
    assert env["cuda"] is False and env["torch"].startswith("2.")
    executed = nbformat.reads(record.notebook, as_version=4)
    assert executed.cells[2].outputs[0].ename == "ValueError"


def test_runs_side_by_side_share_the_cores_and_a_notebook_may_still_choose(tmp_path, view):
    """`torch_threads` (what `--jobs N` sets) is how many threads torch starts with in the
    kernel; without it torch keeps its own default; a notebook's own setting wins."""
    folder = notebook(tmp_path / "sub", "import torch\nstarted = torch.get_num_threads()\n"
                      "def threads():\n    return torch.get_num_threads()",
                      "torch.set_num_threads(3)")

    def threads(session):
        (now,) = session.call("threads")
        return now, session.value("started")

    _, (now, started) = run(folder, view, threads, torch_threads=1)
    assert (int(started), int(now)) == (1, 3)
    _, (_, default) = run(folder, view, threads)
    assert int(default) == torch_default_threads()


def torch_default_threads() -> int:
    """torch's own default in a fresh interpreter on this machine."""
    return int(subprocess.run([sys.executable, "-c", "import torch; "
                               "print(torch.get_num_threads())"], capture_output=True,
                              text=True, check=True).stdout)


def test_probe_errors_are_typed_and_the_session_goes_on(tmp_path, view):
    folder = notebook(tmp_path / "sub", "def bad(x):\n    raise KeyError('nope')",
                      "def weird(x):\n    return 'not an array'")

    def probe(session):
        kinds = []
        for name in ("bad", "missing", "weird"):
            with pytest.raises(ProbeError) as raised:
                session.call(name, np.ones(2))
            kinds.append(raised.value.kind)
        return kinds

    record, kinds = run(folder, view, probe)
    assert record.outcome == "completed"
    assert kinds == ["raised", "raised", "malformed"]


# ----------------------------------------------------------------------------- attacks


def test_hidden_files_and_holdout_are_not_visible(tmp_path, view, holdout_path):
    secrets = [str(REPO / "assignments" / "W4" / "solution" / "W4_Homework.ipynb"),
               str(REPO / "grader" / "cli.py"), str(holdout_path), "/etc/shadow",
               str(Path.home() / ".bash_history"), str(data.data_root())]
    folder = notebook(tmp_path / "sub", f"""
import os, numpy as np
secrets = {secrets!r}
def readable():
    return np.array([os.path.exists(p) for p in secrets])
from torchvision.datasets import MNIST
train_size = len(MNIST('./mnist/', train=True, download=True))
def sizes():
    return np.array([train_size])
""")
    record, (found, sizes) = run(folder, view, lambda s: (s.call("readable", torch=False)[0],
                                                          s.call("sizes", torch=False)[0]))
    assert record.outcome == "completed", record.reason
    assert found.tolist() == [False] * len(secrets)
    assert sizes.tolist() == [50]  # the public part only: the hold-out was never mounted


def test_no_network_not_even_the_hosts_loopback(tmp_path, view):
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    folder = notebook(tmp_path / "sub", f"""
import socket, numpy as np
try:
    socket.create_connection(("127.0.0.1", {port}), timeout=2).sendall(b"escaped")
except OSError:
    pass
try:
    socket.gethostbyname("pypi.org"); resolved = 1
except OSError:
    resolved = 0
interfaces = [name for _, name in socket.if_nameindex()]
def outcome():
    return np.array([resolved, len(interfaces), interfaces == ["lo"]])
""")
    record, (outcome,) = run(folder, view, lambda s: s.call("outcome", torch=False))
    assert outcome.tolist() == [0, 1, 1]  # no name resolution; a network with loopback only
    server.settimeout(0.5)
    with pytest.raises(TimeoutError):  # nothing ever reached the host's listening socket
        server.accept()
    server.close()


def test_writes_outside_the_work_dir_fail(tmp_path, view):
    outside = tmp_path / "host-file.txt"
    outside.write_text("original")
    targets = ["/usr/pwned", "/submission/pwned", "/opt/torchgrade/agent.py", "/etc/passwd",
               str(outside), "./mnist/MNIST/raw/train-labels-idx1-ubyte", "/proc/sys/kernel/x",
               "/pwned"]
    folder = notebook(tmp_path / "sub", f"""
import numpy as np, os
written = []
try:
    os.makedirs("/newdir/grader")  # the sandbox's root is read-only too
    written.append(1)
except OSError:
    written.append(0)
for target in {targets!r}:
    try:
        with open(target, "w") as handle:
            handle.write("pwned")
        written.append(1)
    except OSError:
        written.append(0)
open("mine.txt", "w").write("fine")
def outcome():
    return np.array(written)
""")
    record, (written,) = run(folder, view, lambda s: s.call("outcome", torch=False))
    assert written.tolist() == [0] * (1 + len(targets))
    assert outside.read_text() == "original"
    assert (REPO / "grader" / "sandbox" / "agent.py").read_text().startswith('"""The agent')


def test_fork_bomb_is_held_by_the_pids_limit(tmp_path, view):
    marker = f"forkbomb-{uuid.uuid4().hex[:8]}"
    folder = notebook(tmp_path / "sub", f"""
import os, subprocess
for _ in range(500):
    subprocess.Popen(["sh", "-c", "sleep 300; true", "{marker}"])
""", "survived = True")
    record, _ = run(folder, view)
    assert record.outcome == "error"
    assert "BlockingIOError" in record.reason or "Resource temporarily" in record.reason
    assert record.cells[1].error is None  # the kernel lived on
    assert host_processes_with(marker) == []


def test_allocating_30_gb_is_stopped(tmp_path, view):
    folder = notebook(tmp_path / "sub", "import numpy as np\nx = np.ones(30 << 27)",
                      "print('still here')")
    record, _ = run(folder, view)
    assert record.outcome in ("killed", "error")
    assert "memory" in record.reason.lower() or "MemoryError" in record.reason


def test_an_endless_cell_is_interrupted_and_later_cells_run(tmp_path, view):
    folder = notebook(tmp_path / "sub", "while True:\n    pass", "x = 41 + 1",
                      "def answer():\n    return x")
    record, (value,) = run(folder, view, lambda s: s.call("answer", torch=False),
                           cell_seconds=3)
    assert record.outcome == "timeout"
    assert record.cells[0].timed_out and record.cells[1].error is None
    assert value == 42


def test_a_notebook_over_its_time_limit_is_ended(tmp_path, view):
    folder = notebook(tmp_path / "sub", "import signal, time\n"
                      "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
                      "while True:\n    time.sleep(1)")
    record, _ = run(folder, view, cell_seconds=3, notebook_seconds=5)
    assert record.outcome == "timeout"
    assert record.wall_seconds < 5 + 90 + 30


def test_printing_a_gigabyte_keeps_only_the_start(tmp_path, view):
    folder = notebook(tmp_path / "sub", "chunk = 'x' * (1 << 20)\n"
                      "for _ in range(1024):\n    print(chunk)", "done = True")
    record, _ = run(folder, view, output_limit=1 << 20)
    assert record.outcome == "completed", record.reason
    assert len(record.notebook) < 4 << 20
    assert "output truncated" in record.notebook


def test_a_daemon_does_not_outlive_the_run(tmp_path, view):
    marker = f"daemon-{uuid.uuid4().hex[:8]}"
    folder = notebook(tmp_path / "sub", f"""
import os, subprocess, time, numpy as np
subprocess.Popen(["sh", "-c", "sleep 600; true", "{marker}"], start_new_session=True)
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.execvp("sh", ["sh", "-c", "sleep 601; true", "{marker}"])
    os._exit(0)
{COUNT_PROCESSES}
for _ in range(50):  # the double-forked one may still be on its way to exec
    during = processes_named("{marker}")
    if during == 2:
        break
    time.sleep(0.1)
def running():
    return np.array(processes_named("{marker}"))
""")
    record, answers = run(folder, view, lambda s: (s.value("during"),
                                                   s.call("running", torch=False)))
    assert record.outcome == "completed"
    assert answers[0] == 2                    # both daemons were up during the run,
    assert answers[1] == [0]                  # stopped when the notebook ended,
    assert host_processes_with(marker) == []  # and none is left after it


def test_killing_its_parent_still_gives_a_record(tmp_path, view):
    folder = notebook(tmp_path / "sub", "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)",
                      "x = 1")
    record, _ = run(folder, view)
    assert record.outcome == "failed"
    assert "ended without answering" in record.reason


def test_a_fake_result_cannot_reach_the_grader(tmp_path, view):
    fake = json.dumps({"event": "executed", "cells": [], "notebook": "FAKE",
                       "kernel_alive": True})
    folder = notebook(tmp_path / "sub", f"""
import os, glob
fake = {fake!r} + "\\n"
reached = 0
for path in glob.glob("/proc/[0-9]*/fd/*"):
    try:
        with open(path, "w") as handle:
            handle.write(fake)
        reached += 1
    except OSError:
        pass
for path in ("/tmp/.probe/answer.json", "result.json", "/submission/result.json"):
    try:
        open(path, "w").write(fake)
    except OSError:
        pass
""", "y = 2")
    record, _ = run(folder, view)
    assert record.notebook != "FAKE" and len(record.cells) == 2
    assert record.outcome == "completed"


def test_patching_torch_does_not_move_the_judges_accuracy(tmp_path, view):
    folder = notebook(tmp_path / "sub", """
import torch
model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10))
torch.nn.init.zeros_(model[1].weight); torch.nn.init.zeros_(model[1].bias)
torch.Tensor.argmax = lambda self, *a, **k: torch.zeros(len(self), dtype=torch.long)
torch.Tensor.__eq__ = lambda self, other: torch.ones(self.shape, dtype=torch.bool)
torch.eq = lambda a, b: torch.ones(a.shape, dtype=torch.bool)
print('test accuracy: 0.999')
""")
    images = np.random.default_rng(0).random((200, 1, 28, 28), dtype=np.float32)
    labels = np.arange(200) % 10
    record, logits = run(folder, view, lambda s: s.forward("model", images))
    accuracy = float((logits.argmax(1) == labels).mean())  # computed here, by the judge
    assert accuracy == pytest.approx(0.1)


class Payload:
    """A pickle that, when loaded, writes a marker next to itself and tries to reach the host."""

    def __init__(self, host_marker: str) -> None:
        self.host_marker = host_marker

    def __reduce__(self):
        code = (f"open('ran-inside.txt', 'w').write('yes'); "
                f"open({self.host_marker!r}, 'w').write('escaped')")
        return (exec, (code,))


def test_a_malicious_pickle_runs_only_inside(tmp_path, view):
    host_marker = tmp_path / "ESCAPED"
    folder = notebook(tmp_path / "sub", "x = 1")
    (folder / "net_all.pkl").write_bytes(pickle.dumps(Payload(str(host_marker))))

    def probe(session):
        with pytest.raises(ProbeError):
            session.load_and_forward("net_all.pkl", np.zeros((2, 1), np.float32))
        return session.read_file("ran-inside.txt")

    record, ran_inside = run(folder, view, probe)
    assert ran_inside == b"yes"          # the payload did run, in the sandbox
    assert not host_marker.exists()      # and could not touch the host


def test_symlinks_in_a_submission_are_left_out(tmp_path, view):
    folder = notebook(tmp_path / "sub", "import os\ndef present():\n"
                      "    import numpy as np\n    return np.array(os.path.exists('link'))")
    (folder / "link").symlink_to("/etc/shadow")
    record, (present,) = run(folder, view, lambda s: s.call("present", torch=False))
    assert not present and any("symlink link" in note for note in record.notes)


# ----------------------------------------------------------------------------- course-era code


def test_course_era_notebook_runs_offline(tmp_path, view):
    folder = notebook(tmp_path / "sub", """
import torch, torchvision
import matplotlib.pyplot as plt
from IPython import display
train_data = torchvision.datasets.MNIST(root='./mnist/', train=True,
    transform=torchvision.transforms.ToTensor(), download=True)
test_data = torchvision.datasets.MNIST(root='./data/', train=False, download=False)
train_x = torch.unsqueeze(train_data.train_data, dim=1).type(torch.FloatTensor)/255.
labels = train_data.train_labels, test_data.test_data, test_data.test_labels
""", """
plt.ion()
plt.plot([1, 2, 3])
plt.pause(0.01)
display.clear_output(wait=True)
plt.show()
""", """
class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden = torch.nn.Linear(1, 3)
    def forward(self, x):
        return self.hidden(x)
net = Net()
torch.save(net, 'net_all.pkl')
net2 = torch.load('net_all.pkl')
""", " y = 1\nz = y + 1", "w = torch.zeros(2).cuda()\nm = Net().cuda()")
    record, _ = run(folder, view, cpu_fallback=True)
    assert record.outcome == "completed", record.reason
    assert any(".cuda() calls ran on the CPU" in note for note in record.notes)


def test_without_bubblewrap_limits_still_apply_and_it_says_so(tmp_path, view):
    folder = notebook(tmp_path / "sub", "import os\ndef where():\n    import numpy as np\n"
                      "    return np.array(len(os.listdir('./mnist/MNIST/raw')))")
    record, (files,) = run(folder, view, lambda s: s.call("where", torch=False), sandboxed=False)
    assert record.notes[0] == "not sandboxed: resource limits only"
    assert files == 4


# ----------------------------------------------------------------------------- GPU


def _host_has_gpu() -> bool:
    try:
        import torch
        return torch.cuda.is_available()
    except ImportError:
        return False


@pytest.mark.gpu
@pytest.mark.skipif(not _host_has_gpu(), reason="no GPU on this machine (CI has none)")
def test_gpu_is_bound_in_and_named(tmp_path, view):
    folder = notebook(tmp_path / "sub", "import torch\nx = torch.randn(2048, 2048).cuda()\n"
                      "y = (x @ x).sum()")
    record, env = run(folder, view, lambda s: s.environment(), gpus=(0,))
    assert record.outcome == "completed", record.reason
    assert env["cuda"] is True and env["gpu"]
    assert record.cells[0].synced_seconds is not None
