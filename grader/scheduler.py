"""Which submission runs where: one after another in this process, N at a time in worker
processes on this machine, or on a Dask cluster (grader/cluster.py). Results come back to the
caller, which alone writes the gradebook, one result at a time as each finishes.

Workers are separate processes, never threads: each grading runs pytest in-process and forks a
sandbox, and neither may share a process with another grading in flight.

A grading fails only alone: grade() turns whatever goes wrong with one submission into that
submission's "failed" result, and a worker process that dies (a crash, the kernel's OOM killer)
costs the submission it was grading a "failed" result and is replaced; the batch goes on.

Ctrl-C stops a run cleanly: gradings in flight are stopped (their sandboxes closed), results
already handed to the caller stay stored, and `Interrupted` says how many are left; the
gradebook's keys make the same command resume where it stopped.
"""

from __future__ import annotations

import contextlib
import functools
import multiprocessing
import os
import shutil
import signal
import subprocess
import threading
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection, wait
from pathlib import Path
from types import FrameType
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from grader import data
from grader.assignments import Assignment
from grader.errors import GraderError
from grader.intake import Submission
from grader.judge.grade import GRADED_AGAIN, failure_reason, grade
from grader.results import Result
from grader.sandbox import Sandbox, SandboxConfig

Job = tuple[str, Submission]  # (gradebook key, submission)
OnResult = Callable[[str, Result], None]

OUTCOMES = ("completed", "error", "timeout", "killed", "failed")
STOP_GRACE_S = 30  # how long a stopped worker may take to close its sandbox before it is killed
REAP_EVERY_S = 0.2


class SchedulerError(GraderError):
    """The run cannot be laid out as asked (no GPU for --gpus, a worker that died)."""

    exit_code = 2


class Interrupted(GraderError):
    """Ctrl-C: what was graded is stored; the same command grades the rest."""

    exit_code = 130

    def __init__(self, graded: int, left: int) -> None:
        super().__init__(f"interrupted: {graded} graded, {left} left; run the same command "
                         "again to resume")
        self.graded, self.left = graded, left


# ----------------------------------------------------------------------------- planning


def available_cores() -> int:
    """Cores this process may run on (a Slurm job or taskset sees fewer than the machine)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def available_memory_mb(meminfo: Path = Path("/proc/meminfo")) -> int:
    """Memory the kernel could hand out now without swapping (MemAvailable)."""
    try:
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) // 1024
    except (OSError, ValueError, IndexError):
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // (1 << 20)


def default_jobs(memory_mb: int, *, cores: int | None = None,
                 available_mb: int | None = None) -> int:
    """As many notebooks at once as there are cores, but no more than the memory holds at the
    assignment's per-notebook limit: min(cores, available // memory_mb), at least 1."""
    cores = available_cores() if cores is None else cores
    available = available_memory_mb() if available_mb is None else available_mb
    return max(1, min(cores, available // max(1, memory_mb)))


def parse_nvidia_smi(listing: str) -> tuple[int, ...]:
    """The GPU indices in `nvidia-smi -L` output ("GPU 0: NVIDIA H100 (UUID: ...)")."""
    found = []
    for line in listing.splitlines():
        head = line.split(":", 1)[0].split()
        if len(head) == 2 and head[0] == "GPU" and head[1].isdigit():
            found.append(int(head[1]))
    return tuple(found)


def detect_gpus(nvidia_smi: str | None = None, dev: Path = Path("/dev"),
                visible: str | None = None) -> tuple[int, ...]:
    """The NVIDIA GPUs of this machine, by index: `nvidia-smi -L`, else the /dev/nvidiaN nodes.

    CUDA_VISIBLE_DEVICES (`visible`), when it lists indices, narrows them: a TA who hands the
    grader GPUs 2 and 3 gets jobs on 2 and 3 only.
    """
    smi = nvidia_smi if nvidia_smi is not None else shutil.which("nvidia-smi")
    devices: tuple[int, ...] = ()
    if smi:
        try:
            listing = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=20,
                                     check=True).stdout
            devices = parse_nvidia_smi(listing)
        except (OSError, subprocess.SubprocessError):
            devices = ()
    if not devices:
        nodes = (p.name.removeprefix("nvidia") for p in dev.glob("nvidia[0-9]*"))
        devices = tuple(sorted(int(n) for n in nodes if n.isdigit()))
    visible = os.environ.get("CUDA_VISIBLE_DEVICES") if visible is None else visible
    wanted = [v.strip() for v in (visible or "").split(",") if v.strip()]
    if wanted and all(v.isdigit() for v in wanted):
        devices = tuple(int(v) for v in wanted if int(v) in devices)
    return devices


class GpuSlots:
    """Which GPU the next job runs on. Each GPU holds at most `per_gpu` jobs at once, and a job
    goes to the least busy GPU (the first one on a tie), so jobs spread out before they share."""

    def __init__(self, devices: Sequence[int], per_gpu: int = 1) -> None:
        if per_gpu < 1:
            raise ValueError("per_gpu must be at least 1")
        self.devices = tuple(dict.fromkeys(devices))
        self.per_gpu = per_gpu
        self._busy = dict.fromkeys(self.devices, 0)

    @property
    def capacity(self) -> int:
        return len(self.devices) * self.per_gpu

    @property
    def free(self) -> int:
        return self.capacity - sum(self._busy.values())

    def acquire(self) -> int:
        """Take a slot; returns its GPU index. Raises when every slot is taken."""
        if self.free <= 0:
            raise SchedulerError(f"all {self.capacity} GPU slots are taken")
        device = min(self.devices, key=lambda d: self._busy[d])  # min() keeps the first tie
        self._busy[device] += 1
        return device

    def release(self, device: int) -> None:
        if self._busy.get(device, 0) <= 0:
            raise ValueError(f"GPU {device} has no job to release")
        self._busy[device] -= 1

    def device_of_worker(self, index: int) -> int:
        """A fixed GPU for worker `index` of a pool sized to `capacity` (Dask LocalCluster)."""
        return self.devices[index % len(self.devices)]


@dataclass(frozen=True)
class Plan:
    """How a run is laid out: how many notebooks at once, on which GPUs, where."""

    workers: int = 1
    devices: tuple[int, ...] = ()       # GPUs this machine's jobs take slots on; () = CPU
    per_gpu: int = 1
    cluster: str | None = None          # None: this machine; "local" or a scheduler address
    cluster_gpu: bool | None = False    # remote: True needs GPU workers, None uses them if any
    notes: tuple[str, ...] = ()         # for the TA, one line each


def plan(assignment: Assignment, *, jobs: int | None = None, gpus: bool | None = None,
         gpu_slots: int = 1, cluster: str | None = None, devices: Sequence[int] | None = None,
         cores: int | None = None, available_mb: int | None = None) -> Plan:
    """Lay out a run. `gpus` None means: on a GPU when the assignment asks for one and one is
    found. GPU runs take one slot per job, and never more jobs than cores."""
    cores = available_cores() if cores is None else cores
    workers = jobs or default_jobs(assignment.limits.memory_mb, cores=cores,
                                   available_mb=available_mb)
    if cluster is not None and cluster != "local":
        wanted = False if gpus is False else (True if gpus else (None if assignment.gpu
                                                                 else False))
        return Plan(workers, (), gpu_slots, cluster, wanted)
    if gpus is False or (gpus is None and not assignment.gpu):
        return Plan(workers, (), gpu_slots, cluster)
    found = tuple(devices) if devices is not None else detect_gpus()
    if not found:
        if gpus:
            raise SchedulerError("--gpus: no NVIDIA GPU found (nvidia-smi -L, /dev/nvidia*); "
                                 "leave out --gpus to grade on the CPU")
        return Plan(workers, (), gpu_slots, cluster, notes=(
            f"{assignment.name} asks for a GPU and this machine has none: grading on the CPU",))
    slots = GpuSlots(found, gpu_slots)
    return Plan(max(1, min(workers, slots.capacity, cores)), slots.devices, gpu_slots, cluster)


# ----------------------------------------------------------------------------- interrupts


class InterruptGuard:
    """What SIGINT (Ctrl-C) and SIGTERM do while a run is on.

    Waiting for results (a pool, a cluster), the first signal raises KeyboardInterrupt, but
    never in the middle of storing a result: inside `holding()` it waits for the block's end.
    Grading in this process (`stop_sandboxes`), nothing is raised into the grading, which
    could leave its clean-up half done; the sandboxes this process started are killed instead
    (and any started later, until the run ends), the grading finishes at once on its own, and
    the caller drops its result. `escalate`: a second signal raises even then. Other later
    signals only mark the run as interrupted, so the clean-up they would cut short ends."""

    def __init__(self, *, stop_sandboxes: bool = False, escalate: bool = False) -> None:
        self.interrupted = False
        self.stop_sandboxes = stop_sandboxes
        self.escalate = escalate
        self._holding = 0
        self._deferred = False
        self._previous: dict[int, Any] = {}
        self._reaper = SandboxReaper()

    def __enter__(self) -> InterruptGuard:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()
        self._reaper.stop()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        first = not self.interrupted
        self.interrupted = True
        if self.stop_sandboxes:
            self._reaper.start()
            if first or not self.escalate:
                return
            raise KeyboardInterrupt
        if not first:
            return
        if self._holding:
            self._deferred = True
        else:
            raise KeyboardInterrupt

    @contextmanager
    def holding(self) -> Iterator[None]:
        self._holding += 1
        try:
            yield
        finally:
            self._holding -= 1
        if self._deferred and not self._holding:
            self._deferred = False
            raise KeyboardInterrupt


class SandboxReaper:
    """Kills the sandboxes this process started, now and every REAP_EVERY_S until stopped: a
    grading that was about to start its sandbox when Ctrl-C came does not get to run it."""

    def __init__(self) -> None:
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._reap, name="torchgrade-reaper",
                                            daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        if self._thread is not None:
            self._thread.join()

    def _reap(self) -> None:
        while True:
            kill_sandboxes()
            if self._stopped.wait(REAP_EVERY_S):
                return


def session_children(parent: int) -> list[int]:
    """Children of `parent` that lead a session of their own: the sandboxes it started (each
    is started with start_new_session), not worker processes or Dask's helpers."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            pid = int(stat.parent.name)
            if int(fields[1]) == parent and int(fields[3]) == pid:  # ppid, session id
                found.append(pid)
    return found


def kill_sandboxes() -> int:
    """SIGKILL every sandbox this process started; their Sessions still close and clean up."""
    ended = 0
    for child in session_children(os.getpid()):
        with contextlib.suppress(OSError):
            os.killpg(child, signal.SIGKILL)
            ended += 1
    return ended


# ----------------------------------------------------------------------------- progress


class ProgressBar:
    """A bar on stderr while grading: done/total, the count of each outcome, elapsed and ETA.

    Result lines stay on stdout. The bar is drawn only when stderr is a terminal; stdout is
    routed above it only when stdout is that terminal too, so `grade ... > results.txt` keeps
    every result line in the file."""

    def __init__(self, total: int, console: Console | None = None,
                 enabled: bool = True) -> None:
        self.console = console or Console(stderr=True)
        self.counts: Counter[str] = Counter()
        both_terminal = self.console.is_terminal and os.isatty(1)
        self.progress = Progress(
            TextColumn("grading"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[counts]}"), TimeElapsedColumn(), TextColumn("ETA"),
            TimeRemainingColumn(), console=self.console,
            disable=not (enabled and self.console.is_terminal),
            redirect_stdout=both_terminal, redirect_stderr=False)
        self.task: TaskID = self.progress.add_task("grading", total=total, counts="")

    def __enter__(self) -> ProgressBar:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def advance(self, outcome: str) -> None:
        self.counts[outcome if outcome in OUTCOMES else "failed"] += 1
        self.progress.update(self.task, advance=1, counts=self.summary())

    def summary(self) -> str:
        known = [f"{o} {self.counts[o]}" for o in OUTCOMES if self.counts[o]]
        other = [f"{o} {n}" for o, n in sorted(self.counts.items()) if o not in OUTCOMES]
        return "  ".join(known + other)


class Reporter:
    """Hands each finished result to the caller, counts it and moves the bar, as one step that
    Ctrl-C does not cut in two."""

    def __init__(self, on_result: OnResult, guard: InterruptGuard, bar: ProgressBar) -> None:
        self.on_result, self.guard, self.bar = on_result, guard, bar
        self.done = 0

    def __call__(self, key: str, result: Result) -> None:
        with self.guard.holding():
            self.on_result(key, result)
            self.done += 1
            self.bar.advance(result.run.outcome)


# ----------------------------------------------------------------------------- running


def run(jobs: Iterable[Job], assignment: Assignment, config: SandboxConfig,
        layout: Plan | int, on_result: OnResult, *, progress: bool = True,
        console: Console | None = None) -> int:
    """Grade every job, calling `on_result(key, result)` in this process as each finishes.
    Returns how many were graded; raises Interrupted on Ctrl-C (after stopping what runs)."""
    layout = layout if isinstance(layout, Plan) else Plan(workers=layout)
    pending = list(jobs)
    if not pending:
        return 0
    here = layout.cluster is None and min(layout.workers, len(pending)) <= 1
    guard = InterruptGuard(stop_sandboxes=here, escalate=True)
    with guard, ProgressBar(len(pending), console, progress) as bar:
        reporter = Reporter(on_result, guard, bar)
        try:
            if layout.cluster is not None:
                from grader import cluster  # Dask is an optional extra

                cluster.run(pending, assignment, config, layout, reporter)
            else:
                Sandbox(config)  # no bubblewrap: one error now, not one per worker
                _run_here(pending, assignment, config, layout, reporter)
        except KeyboardInterrupt:
            raise Interrupted(reporter.done, len(pending) - reporter.done) from None
    return reporter.done


@functools.cache
def worker_mnist() -> data.MnistSplit | None:
    """MNIST for the judge, read once per process (memory-mapped: workers share the pages)."""
    return data.load_split() if data.is_cached() else None


def _run_here(pending: list[Job], assignment: Assignment, config: SandboxConfig, layout: Plan,
              reporter: Reporter) -> None:
    slots = GpuSlots(layout.devices, layout.per_gpu) if layout.devices else None
    size = min(layout.workers, len(pending))
    if size > 1:
        _run_pool(pending, assignment, config, size, slots, reporter)
        return
    if slots is not None:
        config = replace(config, gpus=(slots.acquire(),))
    for key, submission in pending:
        try:
            result = grade(submission, assignment, config, mnist=worker_mnist())
        except Exception:
            if reporter.guard.interrupted:
                raise KeyboardInterrupt from None
            raise
        if reporter.guard.interrupted:  # a grading whose sandbox Ctrl-C ended is no grade
            raise KeyboardInterrupt
        reporter(key, result)


@dataclass
class _Worker:
    process: multiprocessing.process.BaseProcess
    conn: Connection
    job: tuple[str, Submission, int | None] | None = None  # (key, submission, GPU) while busy


def _spawn(context: multiprocessing.context.SpawnContext) -> _Worker:
    parent_end, child_end = context.Pipe()
    process = context.Process(target=_worker_main, args=(child_end,), name="torchgrade-worker")
    process.start()
    child_end.close()
    return _Worker(process, parent_end)


def _run_pool(pending: list[Job], assignment: Assignment, config: SandboxConfig, size: int,
              slots: GpuSlots | None, reporter: Reporter) -> None:
    """`size` spawned worker processes; each gets the next job when it hands back a result.
    Nothing is queued beyond what runs, so stopping only has the running gradings to end."""
    context = multiprocessing.get_context("spawn")
    workers: list[_Worker] = []
    try:
        for _ in range(size):
            workers.append(_spawn(context))
        queue = deque(pending)
        while queue or any(w.job for w in workers):
            for worker in workers:
                if worker.job is None and queue:
                    key, submission = queue.popleft()
                    gpu = slots.acquire() if slots else None
                    job_config = config if gpu is None else replace(config, gpus=(gpu,))
                    worker.job = (key, submission, gpu)
                    with contextlib.suppress(OSError):  # a dead worker is found by _collect
                        worker.conn.send((submission, assignment, job_config))
            for dead in _collect(workers, slots, reporter):
                workers[workers.index(dead)] = _spawn(context)
    finally:
        _stop(workers)


def _collect(workers: list[_Worker], slots: GpuSlots | None,
             reporter: Reporter) -> list[_Worker]:
    """Hand on every result that is ready. Returns the workers that died, each of which cost
    the submission it was grading a "failed" result."""
    busy = [w for w in workers if w.job]
    ready = wait([w.conn for w in busy] + [w.process.sentinel for w in busy])
    dead = []
    for worker in busy:
        if worker.conn not in ready and worker.process.sentinel not in ready:
            continue
        assert worker.job is not None
        key, submission, gpu = worker.job
        try:
            kind, payload = worker.conn.recv()
        except (EOFError, OSError):
            if reporter.guard.interrupted:  # a worker that Ctrl-C stopped grades nothing
                raise KeyboardInterrupt from None
            kind, payload = "result", _worker_died(worker, submission)
            dead.append(worker)
        worker.job = None
        if slots is not None and gpu is not None:
            slots.release(gpu)
        if kind == "error":
            raise payload
        reporter(key, payload)
    return dead


def _worker_died(worker: _Worker, submission: Submission) -> Result:
    """The result of a submission whose worker process died while grading it."""
    worker.process.join(STOP_GRACE_S)
    code = worker.process.exitcode
    how = (f"killed by signal {-code}" if code is not None and code < 0
           else f"exit code {code}")
    hint = " (SIGKILL: perhaps the machine ran out of memory)" if code == -signal.SIGKILL else ""
    worker.conn.close()
    return Result.failed(submission.student, submission.notebook.name, submission.content_hash,
                         f"the grading process died ({how}){hint}; {GRADED_AGAIN}")


def _stop(workers: list[_Worker]) -> None:
    """End every worker: each is told to stop when it is done, and a busy one gets SIGTERM,
    which ends its sandbox so that it is done at once; one that hangs is killed."""
    for worker in workers:
        if not worker.process.is_alive():
            continue
        with contextlib.suppress(OSError):
            worker.conn.send(None)
        if worker.job is not None:
            os.kill(worker.process.pid, signal.SIGTERM)  # type: ignore[arg-type]
    for worker in workers:
        worker.process.join(STOP_GRACE_S)
        if worker.process.is_alive():
            worker.process.kill()
            worker.process.join()
        worker.conn.close()


def _worker_main(conn: Connection) -> None:
    """A worker process: grade what the parent sends until it sends None. SIGINT or SIGTERM
    ends the sandbox in flight; the grading then finishes at once and its result is dropped."""
    guard = InterruptGuard(stop_sandboxes=True).__enter__()
    try:
        while True:
            task = conn.recv()
            if task is None:
                return
            submission, assignment, config = task
            try:
                reply = ("result", grade(submission, assignment, config, mnist=worker_mnist()))
            except Exception as exc:  # noqa: BLE001 - the sandbox cannot be set up: the parent stops
                reply = ("error", _picklable(exc))
            if guard.interrupted:
                return
            _send(conn, reply, submission)
    except (KeyboardInterrupt, EOFError, OSError):
        return


def _send(conn: Connection, reply: tuple[str, Any], submission: Submission) -> None:
    """Send a reply to the parent; a result that cannot be sent (pickled) is sent as that
    submission's failure instead."""
    try:
        conn.send(reply)
    except (OSError, EOFError):
        raise
    except Exception as exc:  # noqa: BLE001 - pickling: nothing was sent, send the failure
        conn.send(("result", Result.failed(submission.student, submission.notebook.name,
                                           submission.content_hash, failure_reason(exc))))


def _picklable(exc: Exception) -> Exception:
    import pickle

    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:  # noqa: BLE001 - any unpicklable exception is described instead
        return GraderError(f"grading failed in a worker: {type(exc).__name__}: {exc}")
    return exc
