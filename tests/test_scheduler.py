"""The scheduler: how many jobs, which GPU, the progress bar, and Ctrl-C for real (a `grade`
process interrupted mid-batch, then the same command resuming it)."""

from __future__ import annotations

import dataclasses
import io
import multiprocessing
import os
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from rich.console import Console

from grader import assignments, intake, scheduler
from grader.judge.grade import grade
from grader.results import Result
from grader.sandbox import SandboxConfig, bwrap
from grader.scheduler import GpuSlots, InterruptGuard, ProgressBar, SchedulerError

SUBMISSIONS = Path(__file__).resolve().parent.parent / "submissions"
GRADE = str(Path(sys.executable).parent / "grade")


# ----------------------------------------------------------------------------- how many jobs


def test_default_jobs_is_the_smaller_of_cores_and_memory():
    assert scheduler.default_jobs(4096, cores=16, available_mb=20_000) == 4   # memory binds
    assert scheduler.default_jobs(1024, cores=2, available_mb=20_000) == 2    # cores bind
    assert scheduler.default_jobs(4096, cores=8, available_mb=1_000) == 1     # never below one


def test_available_memory_reads_memavailable(tmp_path: Path):
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       32000000 kB\nMemAvailable:   8388608 kB\n")
    assert scheduler.available_memory_mb(meminfo) == 8192
    assert scheduler.available_memory_mb() > 0  # this machine's own


def test_the_help_says_where_the_default_comes_from():
    result = subprocess.run([GRADE, "grade", "--help"], capture_output=True, text=True,
                            check=True)
    assert "default: from cores and memory" in " ".join(result.stdout.split())
    assert "--gpu-slots" in result.stdout and "--cluster" in result.stdout


# ----------------------------------------------------------------------------- GPU slots


def test_nvidia_smi_listing_is_parsed():
    listing = ("GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-1b2c)\n"
               "GPU 1: NVIDIA H100 80GB HBM3 (UUID: GPU-3d4e)\n"
               "  MIG 1g.10gb Device 0: (UUID: MIG-5f6a)\n")
    assert scheduler.parse_nvidia_smi(listing) == (0, 1)
    assert scheduler.parse_nvidia_smi("No devices were found\n") == ()


def test_gpus_are_found_from_device_nodes(tmp_path: Path):
    for name in ("nvidia0", "nvidia1", "nvidia3", "nvidiactl", "nvidia-uvm"):
        (tmp_path / name).touch()
    assert scheduler.detect_gpus(nvidia_smi="", dev=tmp_path, visible="") == (0, 1, 3)
    assert scheduler.detect_gpus(nvidia_smi="", dev=tmp_path, visible="3,1") == (3, 1)
    assert scheduler.detect_gpus(nvidia_smi="", dev=tmp_path / "none", visible="") == ()


def test_slots_spread_jobs_before_they_share_a_gpu():
    slots = GpuSlots([0, 1], per_gpu=2)
    assert slots.capacity == 4
    taken = [slots.acquire() for _ in range(4)]
    assert taken == [0, 1, 0, 1]
    with pytest.raises(SchedulerError, match="all 4 GPU slots are taken"):
        slots.acquire()
    slots.release(1)
    assert slots.free == 1 and slots.acquire() == 1
    with pytest.raises(ValueError):
        GpuSlots([0, 1]).release(0)


def test_slots_go_to_the_least_busy_gpu():
    slots = GpuSlots([2, 5, 7], per_gpu=3)
    first = [slots.acquire() for _ in range(3)]
    assert first == [2, 5, 7]
    slots.release(5)
    assert slots.acquire() == 5   # the only GPU with nothing on it
    assert slots.acquire() == 2   # all equal again: the first one
    slots.release(7)
    assert slots.acquire() == 7
    assert [slots.device_of_worker(i) for i in range(4)] == [2, 5, 7, 2]


def test_plan_for_a_gpu_homework():
    w6, w4 = assignments.find("W6"), assignments.find("W4")
    on_gpus = scheduler.plan(w6, jobs=16, gpu_slots=2, devices=(0, 1), cores=32)
    assert (on_gpus.workers, on_gpus.devices) == (4, (0, 1))     # 2 GPUs x 2 slots
    few_cores = scheduler.plan(w6, jobs=16, gpu_slots=4, devices=(0, 1), cores=3)
    assert few_cores.workers == 3                                  # never more than cores
    cpu_homework = scheduler.plan(w4, jobs=3, devices=(0, 1), cores=8)
    assert (cpu_homework.workers, cpu_homework.devices) == (3, ())
    asked = scheduler.plan(w4, jobs=3, gpus=True, devices=(0,), cores=8)
    assert (asked.workers, asked.devices) == (1, (0,))
    refused = scheduler.plan(w6, jobs=3, gpus=False, devices=(0,), cores=8)
    assert refused.devices == ()


def test_plan_without_a_gpu():
    w6 = assignments.find("W6")
    fallback = scheduler.plan(w6, jobs=2, devices=(), cores=2)
    assert fallback.devices == () and "has none" in fallback.notes[0]
    with pytest.raises(SchedulerError, match="no NVIDIA GPU found"):
        scheduler.plan(w6, jobs=2, gpus=True, devices=(), cores=2)
    remote = scheduler.plan(w6, cluster="tcp://127.0.0.1:8786", jobs=2, cores=2)
    assert remote.cluster_gpu is None  # GPU workers if the cluster has them


# ----------------------------------------------------------------------------- progress, signals


def test_progress_bar_counts_each_outcome():
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=120, color_system=None)
    with ProgressBar(5, console) as bar:
        for outcome in ("completed", "completed", "error", "timeout"):
            bar.advance(outcome)
    text = out.getvalue()
    assert "4/5" in text
    assert "completed 2  error 1  timeout 1" in text
    assert "ETA" in text


def test_no_bar_when_stderr_is_not_a_terminal():
    out = io.StringIO()
    with ProgressBar(3, Console(file=out, force_terminal=False)) as bar:
        bar.advance("completed")
    assert out.getvalue() == ""


def test_ctrl_c_waits_until_a_result_is_stored():
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signals are delivered to the main thread")
    stored = []
    before = signal.getsignal(signal.SIGINT)
    with InterruptGuard() as guard, pytest.raises(KeyboardInterrupt), guard.holding():
        os.kill(os.getpid(), signal.SIGINT)
        stored.append("result")  # still runs: the interrupt waits for the block's end
    assert stored == ["result"] and guard.interrupted
    assert signal.getsignal(signal.SIGINT) is before  # the handler is put back


# ----------------------------------------------------------------------------- Ctrl-C for real


def _results(out: Path) -> list[tuple[str, float]]:
    db = sqlite3.connect(out / "gradebook.sqlite")
    try:
        return sorted(db.execute("SELECT student, total FROM results").fetchall())
    finally:
        db.close()


def _sandboxes_under(folder: Path) -> list[str]:
    """Running bubblewrap processes whose command line names `folder` (their staging)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"bwrap") and str(folder).encode() in b" ".join(argv):
            found.append(cmdline.parent.name)
    return found


@pytest.mark.slow
@pytest.mark.skipif(bwrap.executable() is None, reason="bubblewrap is not installed")
def test_ctrl_c_stops_cleanly_and_the_same_command_resumes(tmp_path: Path):
    folder = tmp_path / "class"
    folder.mkdir()
    for student in ("alice", "bob", "dave"):
        name = f"{student}_W4_Homework.ipynb"
        (folder / name).write_bytes((SUBMISSIONS / name).read_bytes())
    out, scratch = tmp_path / "out", tmp_path / "tmp"
    scratch.mkdir()
    env = {**os.environ, "TMPDIR": str(scratch)}  # every staging folder lands here
    command = [GRADE, str(folder), "--hw", "W4", "--out", str(out), "--jobs", "1"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, start_new_session=True)
    assert proc.stdout is not None
    first = proc.stdout.readline()
    assert "W4_Homework.ipynb" in first, first + proc.stderr.read()
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole group
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    graded = _results(out)
    assert 1 <= len(graded) < 3
    line = f"interrupted: {len(graded)} graded, {3 - len(graded)} left; run the same command"
    assert line in stderr
    assert stderr.count("\n") == 1 and "Traceback" not in stderr
    assert len((first + stdout).splitlines()) == len(graded)  # one line per stored result
    assert _sandboxes_under(scratch) == []
    assert sorted(p.name for p in scratch.iterdir()) == []  # every sandbox closed and cleaned

    again = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert again.returncode == 0, again.stderr
    assert f"{3 - len(graded)} graded, {len(graded)} unchanged, 0 rejected" in again.stdout
    for student, _ in graded:
        assert f"{student:<16} W4_Homework.ipynb            unchanged" in again.stdout
    final = _results(out)
    assert [s for s, _ in final] == ["alice", "bob", "dave"]  # each once: nothing twice
    assert dict(final) == {"alice": 14, "bob": 11, "dave": 4}


# ----------------------------------------------------------------------------- one failure alone


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)  # what the kernel's OOM killer does to a worker


def test_a_worker_that_dies_costs_only_the_submission_it_was_grading(tmp_path: Path):
    context = multiprocessing.get_context("spawn")
    parent_end, child_end = context.Pipe()
    process = context.Process(target=_die)
    process.start()
    child_end.close()
    (submission,), _ = intake.collect(SUBMISSIONS / "alice_W4_Homework.ipynb",
                                      assignments.find("W4"), tmp_path)
    worker = scheduler._Worker(process, parent_end, ("key-1", submission, None))
    got: list[tuple[str, Result]] = []
    with InterruptGuard() as guard, ProgressBar(1, enabled=False) as bar:
        dead = scheduler._collect([worker], None,
                                  scheduler.Reporter(lambda *r: got.append(r), guard, bar))
    assert dead == [worker]
    ((key, result),) = got
    assert key == "key-1" and result.student == "alice" and result.grader_error
    assert result.run.outcome == "failed"
    assert result.run.reason.startswith("the grading process died (killed by signal 9)")


def test_a_grading_that_raises_is_that_submissions_failure(tmp_path: Path):
    (submission,), _ = intake.collect(SUBMISSIONS / "alice_W4_Homework.ipynb",
                                      assignments.find("W4"), tmp_path)
    broken = dataclasses.replace(submission, files=(tmp_path / "missing.bin",))
    result = grade(broken, assignments.find("W4"), SandboxConfig(sandboxed=False))
    assert result.run.outcome == "failed" and result.items == [] and result.grader_error
    assert "missing.bin cannot be read" in result.run.reason
