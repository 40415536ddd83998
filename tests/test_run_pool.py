"""Worker processes (grader/run/pool.py): a worker that dies costs only its submission, and
the workers of a `--jobs N` run share one fork server."""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import signal
import threading
from pathlib import Path

import pytest

from grader import assignments, intake
from grader.judge.grade import grade
from grader.results import Result
from grader.run import Plan, pool, run, shared_cores
from grader.run.plan import available_cores
from grader.run.progress import ProgressBar, Reporter
from grader.run.stop import InterruptGuard
from grader.sandbox import ResourceLimits, SandboxConfig, bwrap, warm

SUBMISSIONS = Path(__file__).resolve().parent.parent / "submissions"


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
    worker = pool.Worker(process, parent_end, ("key-1", submission, None))
    got: list[tuple[str, Result]] = []
    with InterruptGuard() as guard, ProgressBar(1, enabled=False) as bar:
        dead = pool.collect([worker], None,
                                  Reporter(lambda *r: got.append(r), guard, bar))
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


# ----------------------------------------------------------------------------- one fork server


def _processes() -> dict[int, tuple[int, bytes]]:
    """pid -> (parent pid, command line) of every process now."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            found[int(stat.parent.name)] = (ppid, (stat.parent / "cmdline").read_bytes())
        except (OSError, ValueError, IndexError):
            continue
    return found


def _pid_namespace(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:
        return None


class _Watch:
    """What ran during a pool run, seen from /proc every 20 ms: the fork servers (by their
    title), the children they forked into a sandbox (which keep the server's title, with
    the server as their parent), and which process started each sandbox's bubblewrap."""

    def __init__(self) -> None:
        self.servers: dict[int, int] = {}             # server pid -> its parent
        self.entered: dict[int, tuple[int, str]] = {}  # child of a server -> (server, pid ns)
        self.bwrap_parent: dict[int, int] = {}        # every bubblewrap seen -> its parent
        self.bwrap_of: dict[str, int] = {}            # pid ns -> a bubblewrap with a child in it
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self.stopped.wait(0.02):
            procs = _processes()
            titled = {p for p, (_, cmd) in procs.items()
                      if cmd.startswith(b"torchgrade fork server")}
            for pid in titled:
                ppid = procs[pid][0]
                if ppid in titled:  # forked by a server: it has entered (or enters) a sandbox
                    kids = [k for k, (parent, _) in procs.items() if parent == pid]
                    ns = next(filter(None, map(_pid_namespace, kids)), None)
                    if ns is not None:
                        self.entered[pid] = (ppid, ns)
                else:
                    self.servers[pid] = ppid
            bwraps = {p for p, (_, cmd) in procs.items()
                      if cmd.split(b"\0")[0].endswith(b"bwrap")}
            for pid in bwraps:
                self.bwrap_parent[pid] = procs[pid][0]
                for kid, (parent, _) in procs.items():
                    ns = _pid_namespace(kid) if parent == pid else None
                    if ns is not None:
                        self.bwrap_of.setdefault(ns, pid)

    @property
    def sandbox_of(self) -> dict[str, int]:
        """Sandbox's pid namespace -> the process that started its bubblewrap: the first
        ancestor that was never seen as a bubblewrap (one sample can miss a process, so this
        is decided from every sample, once the run is over)."""
        started = {}
        for ns, pid in self.bwrap_of.items():
            while pid in self.bwrap_parent and self.bwrap_parent[pid] != 1:
                pid = self.bwrap_parent[pid]
            started[ns] = pid
        return started


@pytest.mark.slow
@pytest.mark.skipif(bwrap.executable() is None, reason="bubblewrap is not installed")
def test_the_workers_share_one_fork_server(tmp_path: Path):
    w4 = assignments.find("W4")
    found, _ = intake.collect(SUBMISSIONS, w4, tmp_path / "scratch")
    jobs = [(f"key-{n}", s) for n, s in enumerate(found)]
    assert len(jobs) >= 4
    config = SandboxConfig(resources=ResourceLimits.for_run(w4.limits.memory_mb, 300),
                           notebook_seconds=300, cell_seconds=300)
    results: list[Result] = []
    warm.shutdown()  # a server an earlier test left to this process is not the pool's
    watch = _Watch()
    watch.thread.start()
    try:
        graded = run(jobs, w4, config, Plan(workers=2), lambda _, r: results.append(r),
                     progress=False)
    finally:
        watch.stopped.set()
        watch.thread.join()
    assert graded == len(jobs) and not [r for r in results if r.grader_error], results
    assert {r.student: r.total for r in results}["alice"] == 14
    servers = {pid for pid, parent in watch.servers.items() if parent == os.getpid()}
    seen = f"servers {watch.servers}, entered {watch.entered}, sandboxes {watch.sandbox_of}"
    assert len(servers) == 1 and warm._state.owned is not None, seen
    assert servers == {warm._state.owned.proc.pid}, seen
    (server,) = servers
    ours = [ns for parent, ns in watch.entered.values() if parent == server]
    workers = set(map(watch.sandbox_of.get, ours))
    assert len(workers) == 2 and os.getpid() not in workers, seen  # both workers', warm
    assert not {pid for pid, parent in watch.servers.items() if parent in workers}


def test_workers_side_by_side_share_the_cores():
    """Each of N workers' kernels gets cores // N torch threads (at least one); a number the
    TA set is kept."""
    assert shared_cores(SandboxConfig(), 2).torch_threads == max(1, available_cores() // 2)
    assert shared_cores(SandboxConfig(), 10 * available_cores()).torch_threads == 1
    assert shared_cores(SandboxConfig(torch_threads=4), 2).torch_threads == 4
