"""Attacks on the sandbox a hostile student can write in a notebook, each contained: the
student is never host root, the grader's own processes and disks stay out of reach, nothing
runs on after the notebook ends, output caps hold for every message, and the device is the
grader's word. Each attack is also graded in a batch beside an honest student, who is graded
as usual, and the attacker still gets a result.

Every test runs against real bubblewrap and real kernels, as the user this suite runs as
(root in CI, where the sandbox switches to its unprivileged user) and, where the machine
lets an ordinary user run this Python, as an ordinary user too.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zlib
from pathlib import Path

import nbformat
import pytest

from grader.sandbox import ResourceLimits, Sandbox, SandboxConfig, bwrap, user
from grader.sandbox.session import STDERR_KEPT
from tests import notebooks

REPO = Path(__file__).resolve().parent.parent
GRADE = str(Path(sys.executable).parent / "grade")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(bwrap.executable() is None,
                       reason="bubblewrap is not installed (apt-get install bubblewrap)"),
]


write_notebook = notebooks.write


def run(tmp_path: Path, *cells: str, probe=None, warm: bool = True, **config):
    """One notebook in a real sandbox; its record, what `probe(session)` returned, and the
    session (closed) for a look at what the grader kept."""
    write_notebook(tmp_path / "sub" / "nb.ipynb", *cells)
    config.setdefault("resources", ResourceLimits(memory_mb=2048, pids=64, disk_mb=64))
    config.setdefault("cell_seconds", 60)
    config.setdefault("notebook_seconds", 60)
    with Sandbox(SandboxConfig(warm=warm, **config)).open(tmp_path / "sub", "nb.ipynb") as s:
        record = s.execute()
        answer = probe(s) if probe else None
    return record, answer, s


def outputs(record) -> str:
    """Every text the notebook's cells showed, joined."""
    texts = []
    for cell in nbformat.reads(record.notebook, as_version=4).cells:
        for out in cell.get("outputs", []):
            texts.append(str(out.get("text") or out.get("evalue") or out.get("data", "")))
    return "\n".join(texts)


def report_of(record) -> dict:
    """The JSON object the notebook printed (on a line of its own)."""
    lines = [line for line in outputs(record).splitlines() if line.startswith("{")]
    return json.loads(lines[-1])


# ---------------------------------------------------------------------------- notebooks

#: Finding 1: host sysctls, root-only /proc files, nested namespaces, tracing.
HOST_ROOT = r"""
import ctypes, json, os, subprocess
found = {}
def write(path, text):
    try:
        with open(path, "w") as handle:
            handle.write(text)
        return "written"
    except OSError as exc:
        return type(exc).__name__
def read(path):
    try:
        return "read %d bytes" % len(open(path).read())
    except OSError as exc:
        return type(exc).__name__
found["lease"] = write("/proc/sys/fs/lease-break-time", "7")
found["core_pattern"] = write("/proc/sys/kernel/core_pattern", "|/tmp/x")
found["sysrq"] = write("/proc/sysrq-trigger", "h")
found["timer_list"] = read("/proc/timer_list")
found["slabinfo"] = read("/proc/slabinfo")
found["unshare"] = subprocess.run(["unshare", "-Urm", "true"], capture_output=True).returncode
libc = ctypes.CDLL(None, use_errno=True)
found["ptrace"] = [libc.ptrace(16, pid, 0, 0) for pid in (1, 2)]  # PTRACE_ATTACH
found["unshare_call"] = libc.unshare(0x10000000)  # CLONE_NEWUSER
subprocess.run(["sh", "-c", "sleep 3; true", "MARKER"])
print(json.dumps(found))
"""

#: Finding 6: a thread that keeps changing the model after the notebook ended, and a
#: function that waits for it.
AFTER_THE_END = r"""
import threading, time
import numpy as np
W = np.zeros(3)
ready = threading.Event()
def keep_working():
    time.sleep(1.0)          # the notebook has ended by now
    W[:] = 999.0             # "weights written after the notebook had ended"
    ready.set()
threading.Thread(target=keep_working, daemon=True).start()
def gradients(*args):
    ready.wait()
    time.sleep(5)
    return [np.zeros(1)] * 4
"""

#: Finding 7: one display updated with a megabyte, fifty times.
UPDATE_DISPLAY = r"""
from IPython.display import display
handle = display("start", display_id=True)
for i in range(50):
    handle.update({"text/plain": str(i) * (1 << 20)}, raw=True)
"""

#: Finding 9: the grader's stderr, through the sandbox's first process and the kernel's own.
STDERR_FLOOD = r"""
import json, os
found = {"kernel_fds": sorted({os.readlink(f"/proc/self/fd/{fd}").split("[")[0]
                               for fd in os.listdir("/proc/self/fd")
                               if os.path.exists(f"/proc/self/fd/{fd}")})}
try:
    fd = os.open("/proc/1/fd/2", os.O_WRONLY)
    found["pid1_stderr"] = "opened"
except OSError as exc:
    found["pid1_stderr"] = type(exc).__name__
found["pid2_fds"] = []  # the warm placeholder (cold: the agent)
for number in (0, 1, 2):
    try:
        os.open(f"/proc/2/fd/{number}", os.O_WRONLY)
        found["pid2_fds"].append("opened")
    except OSError as exc:
        found["pid2_fds"].append(type(exc).__name__)
print(json.dumps(found), flush=True)
block = b"x" * (1 << 20)
for _ in range(64):
    os.write(2, block)
"""

#: Finding 10: writing into the folders that are only mount points.
MOUNT_POINTS = r"""
import json
found = {}
for folder in ("/run", "/root", "/home"):
    try:
        with open(folder + "/fill", "wb") as handle:
            for _ in range(8):
                handle.write(b"x" * (1 << 20))
        found[folder] = "8 MB written"
    except OSError as exc:
        found[folder] = type(exc).__name__
print(json.dumps(found))
"""

#: Finding 11: a notebook that says it ran on an H100.
FAKE_GPU = r"""
import torch
torch.cuda.is_available = lambda: True
torch.cuda.get_device_name = lambda *a, **k: "NVIDIA H100 80GB HBM3"
torch.cuda.max_memory_allocated = lambda *a, **k: 1 << 40
"""


# ---------------------------------------------------------------------------- the batch

def grade(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([GRADE, *args], capture_output=True, text=True, timeout=900,
                          **kwargs)


ATTACKS = {"mallory": HOST_ROOT, "trudy": AFTER_THE_END, "oscar": UPDATE_DISPLAY,
           "eve": STDERR_FLOOD, "walter": MOUNT_POINTS, "sybil": FAKE_GPU}


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    """Every attack of this file and the honest alice, graded in one batch as a TA would,
    two at a time, with a 20 s notebook limit. A thread watches the host's process table for
    the processes of the first attack, to see whose they are."""
    root = tmp_path_factory.mktemp("hardening")
    folder = root / "class"
    marker = f"hardening-{uuid.uuid4().hex[:8]}"
    for student, code in ATTACKS.items():
        write_notebook(folder / f"{student}_W4_Homework.ipynb", code.replace("MARKER", marker))
    shutil.copy(REPO / "submissions" / "alice_W4_Homework.ipynb", folder)
    before = {p: Path(p).read_text() for p in ("/proc/sys/fs/lease-break-time",
                                               "/proc/sys/kernel/core_pattern")}
    watcher = UidWatcher(marker)
    started = time.monotonic()
    done = grade(str(folder), "--hw", "W4", "--out", str(root / "out"), "--jobs", "2",
                 "--timeout", "20")
    seconds = time.monotonic() - started
    watcher.stop()
    return {"done": done, "out": root / "out", "uids": watcher.uids, "seconds": seconds,
            "before": before, "book": gradebook(root / "out")}


class UidWatcher(threading.Thread):
    """The host uids of the processes whose command line holds `marker`."""

    def __init__(self, marker: str) -> None:
        super().__init__(daemon=True)
        self.marker, self.uids, self.running = marker.encode(), set(), True
        self.start()

    def run(self) -> None:
        while self.running:
            for pid in filter(str.isdigit, os.listdir("/proc")):
                try:
                    if self.marker in Path(f"/proc/{pid}/cmdline").read_bytes():
                        status = Path(f"/proc/{pid}/status").read_text()
                        self.uids.add(int(status.split("\nUid:")[1].split()[0]))
                except (OSError, IndexError):
                    continue
            time.sleep(0.05)

    def stop(self) -> None:
        self.running = False
        self.join()


def gradebook(out: Path) -> dict[str, dict]:
    db = sqlite3.connect(out / "gradebook.sqlite")
    db.row_factory = sqlite3.Row
    found = {}
    for row in db.execute("SELECT r.* FROM latest l JOIN results r ON r.key = l.key"):
        entry = dict(row)
        notebook = db.execute("SELECT body FROM attachments WHERE key = ? AND name = ?",
                              (row["key"], "notebook")).fetchone()
        entry["executed"] = zlib.decompress(notebook[0]).decode() if notebook else ""
        entry["feedback"] = " | ".join(i["feedback"] for i in db.execute(
            "SELECT feedback FROM items WHERE key = ?", (row["key"],)))
        found[row["student"]] = entry
    db.close()
    return found


def printed(entry: dict) -> dict:
    """The JSON object an attack notebook printed, from its stored executed notebook."""
    for cell in nbformat.reads(entry["executed"], as_version=4).cells:
        for out in cell.get("outputs", []):
            text = str(out.get("text", "")).strip()
            if text.startswith("{"):
                return json.loads(text.splitlines()[-1])
    raise AssertionError("the notebook printed no report")


def test_the_batch_grades_everyone_and_the_honest_student_as_usual(batch):
    assert batch["done"].returncode == 0, batch["done"].stderr[-3000:]
    assert set(batch["book"]) == {*ATTACKS, "alice"}
    assert batch["book"]["alice"]["total"] == 14  # as in test_grading, attacks or not


# ---------------------------------------------------------------------------- finding 1

def test_the_student_is_never_host_root(batch):
    mallory = printed(batch["book"]["mallory"])
    assert mallory["lease"] != "written" and mallory["core_pattern"] != "written"
    assert mallory["sysrq"] != "written"
    assert mallory["timer_list"] == "PermissionError" and mallory["slabinfo"] == "PermissionError"
    assert mallory["unshare"] != 0 and mallory["unshare_call"] == -1
    assert mallory["ptrace"] == [-1, -1]
    after = {p: Path(p).read_text() for p in batch["before"]}
    assert after == batch["before"]  # no host sysctl changed
    expected = user.sandbox_identity().uid
    assert batch["uids"] == {expected}  # its processes, seen from the host
    assert 0 not in batch["uids"] or os.geteuid() != 0


@pytest.mark.skipif(os.geteuid() != 0, reason="the switch to the sandbox user is a root's")
def test_a_root_grader_runs_its_sandboxes_as_the_unprivileged_user(tmp_path):
    marker = f"uid-{uuid.uuid4().hex[:8]}"
    watcher = UidWatcher(marker)
    for warm in (True, False):
        record, _, _ = run(tmp_path / str(warm), "import subprocess\n"
                           f"subprocess.run(['sh', '-c', 'sleep 1; true', '{marker}'])",
                           warm=warm)
        assert record.outcome == "completed", record.reason
    watcher.stop()
    sandbox_user = pwd.getpwnam(user.name())
    assert watcher.uids == {sandbox_user.pw_uid} and sandbox_user.pw_uid != 0


def test_without_the_sandbox_user_a_root_grader_refuses_in_one_line(tmp_path, monkeypatch):
    if os.geteuid() != 0:
        pytest.skip("an ordinary user's grader runs sandboxes as itself")
    monkeypatch.setenv(user.ENV_VAR, f"nobody-{uuid.uuid4().hex[:6]}")
    from grader.sandbox import SandboxError

    with pytest.raises(SandboxError, match="useradd"):
        Sandbox(SandboxConfig())


# ---------------------------------------------------------------------------- finding 6

def test_nothing_runs_on_after_the_notebook_and_one_deadline_bounds_the_questions(batch):
    trudy = batch["book"]["trudy"]
    notes = json.loads(trudy["record"])["notes"]
    assert any(n.startswith("time ran out calling `gradients`") for n in notes), notes
    # 20 s of notebook and 30 s of questions at most for her (the thread's wait would be
    # for ever), while the others are graded beside her
    assert batch["seconds"] < 120


@pytest.mark.parametrize("warm", [True, False])
def test_a_thread_left_running_cannot_change_what_the_judge_reads(tmp_path, warm):
    def probe(session):
        time.sleep(2.0)  # the thread would have written by now
        first = session.value("W")
        try:
            session.call("gradients", timeout=5)
        except Exception as exc:  # noqa: BLE001
            return first, str(exc)
        return first, "answered"

    record, (weights, waited), _ = run(tmp_path, AFTER_THE_END, probe=probe, warm=warm,
                                       probe_seconds=30)
    assert record.outcome == "completed"
    assert weights.tolist() == [0.0, 0.0, 0.0]  # as the notebook left them
    assert "calling `gradients`" in waited and "no answer" in waited


def test_questions_stop_at_the_submissions_deadline(tmp_path):
    started = time.monotonic()
    asked = []

    def probe(session):
        for _ in range(5):
            try:
                session.call("gradients", timeout=600)
            except Exception as exc:  # noqa: BLE001
                asked.append(str(exc))
        return None

    run(tmp_path, AFTER_THE_END, probe=probe, notebook_seconds=10, probe_seconds=8)
    assert time.monotonic() - started < 90 + 10 + 8 + 15
    assert "no answer" in asked[0]
    assert all("ended" in a or "used up" in a for a in asked[1:])


# ---------------------------------------------------------------------------- finding 7

@pytest.mark.parametrize("warm", [True, False])
def test_update_display_is_held_by_the_output_cap(tmp_path, warm):
    record, _, _ = run(tmp_path, UPDATE_DISPLAY, warm=warm, output_limit=2 << 20)
    assert record.outcome == "completed"
    assert record.output_truncated
    assert len(record.notebook) < 4 << 20  # 50 MB were sent


def test_update_display_in_a_batch_leaves_a_small_row(batch):
    oscar = batch["book"]["oscar"]
    assert len(oscar["executed"]) < 4 << 20 and oscar["outcome"] in ("completed", "error")


# ---------------------------------------------------------------------------- finding 9

@pytest.mark.parametrize("warm", [True, False])
def test_the_sandboxs_own_stderr_is_no_disk_of_the_hosts(tmp_path, warm):
    record, _, session = run(tmp_path, STDERR_FLOOD, warm=warm)
    found = report_of(record)
    assert found["pid1_stderr"] == "PermissionError"
    assert found["pid2_fds"] == ["PermissionError"] * 3
    assert not [f for f in found["kernel_fds"] if f.startswith("/") and f != "/dev/null"]
    assert session.stderr is not None and len(session.stderr.text()) <= STDERR_KEPT


def test_a_stderr_flood_in_a_batch_is_contained(batch):
    eve = printed(batch["book"]["eve"])
    assert eve["pid1_stderr"] == "PermissionError"
    assert not [f for f in eve["kernel_fds"] if f.startswith("/") and f != "/dev/null"]


# ---------------------------------------------------------------------------- finding 10

def test_every_tmpfs_has_a_size(tmp_path):
    record, _, _ = run(tmp_path, MOUNT_POINTS)
    found = report_of(record)
    assert found == {"/run": "OSError", "/root": "OSError", "/home": "OSError"}
    assert any("home, /tmp and /dev/shm" in line for line in record.limits)


def test_mount_points_stay_small_in_a_batch(batch):
    assert set(printed(batch["book"]["walter"]).values()) == {"OSError"}


# ---------------------------------------------------------------------------- finding 11

def test_the_device_is_the_graders_word(tmp_path):
    _, environment, _ = run(tmp_path, FAKE_GPU, probe=lambda s: s.environment())
    assert environment["gpu"] is None and environment["cuda"] is False
    assert environment["torch"]  # the version is the only thing the kernel tells


def test_a_faked_gpu_never_reaches_the_gradebook(batch):
    sybil = batch["book"]["sybil"]
    assert "H100" not in json.dumps({k: v for k, v in sybil.items() if k != "executed"})
    assert sybil["device"] in ("cpu", None)


# ---------------------------------------------------------------------------- as another user

def _ordinary_user_can_run_this_python() -> str | None:
    """Why an ordinary user cannot run this suite's grader here, or None if it can."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        return "needs root and setpriv to act as an ordinary user"
    for path in (*bwrap.python_roots(), REPO):
        done = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                               "/bin/ls", str(path)], capture_output=True)
        if done.returncode != 0:
            return (f"an ordinary user cannot read {path} here (as with pyenv under a 0700 "
                    "/root), so it cannot be the grader")
    return None


@pytest.mark.skipif(_ordinary_user_can_run_this_python() is not None,
                    reason=str(_ordinary_user_can_run_this_python()))
def test_an_ordinary_users_grader_contains_the_same_attacks():
    home = Path(tempfile.mkdtemp(prefix="torchgrade-ordinary-"))  # pytest's is root's 0700
    try:
        folder = home / "class"
        write_notebook(folder / "mallory_W4_Homework.ipynb", HOST_ROOT.replace("MARKER", "m"))
        shutil.copy(REPO / "submissions" / "alice_W4_Homework.ipynb", folder)
        for path in [home, *home.rglob("*")]:
            os.chown(path, 65534, 65534)
        done = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                               GRADE, str(folder), "--hw", "W4", "--out", str(home / "out"),
                               "--timeout", "20"], capture_output=True, text=True,
                              timeout=600, env={**os.environ, "HOME": str(home)})
        assert done.returncode == 0, done.stderr[-2000:]
        book = gradebook(home / "out")
    finally:
        shutil.rmtree(home, ignore_errors=True)
    assert book["alice"]["total"] == 14
    mallory = printed(book["mallory"])
    assert mallory["lease"] != "written" and mallory["ptrace"] == [-1, -1]
    assert mallory["unshare"] != 0
