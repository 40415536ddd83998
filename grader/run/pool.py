"""N submissions at once in spawned worker processes on this machine (`--jobs N`).

Workers are separate processes, never threads: each grading runs pytest in-process and forks
a sandbox, and neither may share a process with another grading in flight. Each worker is
handed its next submission only when it hands back a result, so nothing is queued that a stop
would have to unwind.

One fork server per machine: this process owns the warm start's fork server
(grader/sandbox/warm.py) and every worker connects to it, so torch is imported once and held
in memory once, not once per worker. A worker asks for the server's address when its first
sandbox needs it (and again if the server stopped answering it); this process starts the
server then, for the sandbox environment the worker names. A worker that finds this machine
cannot warm-start says so here, and the warning is printed once.

A grading fails only alone: a worker process that dies (a crash, the kernel's OOM killer)
costs the submission it was grading a "failed" result and is replaced; the batch goes on.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import pickle
import signal
from collections import deque
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection, wait
from multiprocessing.context import SpawnContext
from multiprocessing.process import BaseProcess
from typing import Any

from grader.assignments import Assignment
from grader.errors import GraderError
from grader.intake import Submission
from grader.judge.grade import GRADED_AGAIN, failure_reason
from grader.results import Result
from grader.run.grading import Grading, Job
from grader.run.plan import GpuSlots, Plan
from grader.run.progress import Reporter
from grader.run.stop import STOP_GRACE_S, InterruptGuard, end_processes
from grader.sandbox import SandboxConfig, warm


@dataclass
class Worker:
    """A worker process as this process sees it."""

    process: BaseProcess
    conn: Connection
    job: tuple[str, Submission, int | None] | None = None  # (key, submission, GPU) while busy

    @property
    def busy(self) -> bool:
        return self.job is not None

    def ask_to_stop(self) -> None:
        with contextlib.suppress(OSError):
            self.conn.send(None)

    def close(self) -> None:
        self.conn.close()


def spawn(context: SpawnContext) -> Worker:
    parent_end, child_end = context.Pipe()
    process = context.Process(target=worker_main, args=(child_end,), name="torchgrade-worker")
    process.start()
    child_end.close()
    return Worker(process, parent_end)


@dataclass
class Pool:
    assignment: Assignment
    config: SandboxConfig
    plan: Plan

    #: gradings run in the workers: this process raises on a stop and ends them
    stops_sandboxes_here = False

    def run(self, pending: list[Job], report: Reporter) -> None:
        """`plan.workers` spawned worker processes (no more than there are jobs); each gets
        the next job when it hands back a result."""
        context = multiprocessing.get_context("spawn")
        slots = self.plan.slots()
        workers: list[Worker] = []
        try:
            for _ in range(min(self.plan.workers, len(pending))):
                workers.append(spawn(context))
            queue = deque(pending)
            while queue or any(w.busy for w in workers):
                for worker in workers:
                    if not worker.busy and queue:
                        self._hand(worker, queue.popleft(), slots)
                for dead in collect(workers, slots, report):
                    workers[workers.index(dead)] = spawn(context)
        finally:
            end_processes(workers)
            for worker in workers:
                worker.close()

    def _hand(self, worker: Worker, job: Job, slots: GpuSlots | None) -> None:
        key, submission = job
        gpu = slots.acquire() if slots else None
        config = self.config if gpu is None else replace(self.config, gpus=(gpu,))
        worker.job = (key, submission, gpu)
        with contextlib.suppress(OSError):  # a dead worker is found by collect()
            worker.conn.send((submission, self.assignment, config))


def collect(workers: list[Worker], slots: GpuSlots | None, report: Reporter) -> list[Worker]:
    """Hand on every result that is ready, and answer the workers' questions about the fork
    server. Returns the workers that died, each of which cost the submission it was grading
    a "failed" result."""
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
            if report.guard.interrupted:  # a worker that a stop ended grades nothing
                raise KeyboardInterrupt from None
            kind, payload = "result", died(worker, submission)
            dead.append(worker)
        if kind in ("warm", "warm-off"):
            answer_about_warm(worker, kind, payload)
            continue
        worker.job = None
        if slots is not None and gpu is not None:
            slots.release(gpu)
        if kind == "error":
            raise payload
        report(key, payload)
    return dead


def answer_about_warm(worker: Worker, kind: str, payload: Any) -> None:
    """A worker's question about the shared fork server: where it listens (started here on
    the first question, and again when a worker found it dead or out of turn), or that it
    cannot be used on this machine (warned once, here)."""
    if kind == "warm-off":
        warm.give_up(str(payload))
        return
    env, stale = payload
    try:
        address: str | None = warm.address(env, stale)
    except warm.WarmStartError:
        address = None
    with contextlib.suppress(OSError):
        worker.conn.send(("warm", address))


def died(worker: Worker, submission: Submission) -> Result:
    """The result of a submission whose worker process died while grading it."""
    worker.process.join(STOP_GRACE_S)
    code = worker.process.exitcode
    how = (f"killed by signal {-code}" if code is not None and code < 0
           else f"exit code {code}")
    hint = " (SIGKILL: perhaps the machine ran out of memory)" if code == -signal.SIGKILL else ""
    worker.conn.close()
    return Result.failed(submission.student, submission.notebook.name, submission.content_hash,
                         f"the grading process died ({how}){hint}; {GRADED_AGAIN}")


# ----------------------------------------------------------------------------- in the worker


class ParentServer:
    """The fork server of the process that started this worker (grader.sandbox.warm.Source):
    asked over the worker's pipe, between a job's hand-over and its result."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def address(self, env: dict[str, str], stale: str | None) -> str:
        self.conn.send(("warm", (env, stale)))
        reply = self.conn.recv()
        if reply is None:  # the run is stopping (this worker also has SIGTERM on its way)
            raise warm.WarmStartError("the grading run is stopping")
        _, address = reply
        if address is None:
            raise warm.WarmStartError("the grade process has no fork server to share")
        return str(address)

    def give_up(self, reason: str) -> None:
        with contextlib.suppress(OSError):
            self.conn.send(("warm-off", reason))


def worker_main(conn: Connection) -> None:
    """A worker process: grade what the parent sends until it sends None. SIGINT or SIGTERM
    ends the sandbox in flight; the grading then finishes at once and its result is dropped."""
    guard = InterruptGuard(stop_sandboxes=True).__enter__()
    warm.use(ParentServer(conn))
    grading = Grading()
    try:
        while True:
            task = conn.recv()
            if task is None:
                return
            submission, assignment, config = task
            try:
                reply = ("result", grading.grade(submission, assignment, config))
            except Exception as exc:  # noqa: BLE001 - the sandbox cannot be set up: the parent stops
                reply = ("error", picklable(exc))
            if guard.interrupted:
                return
            send(conn, reply, submission)
    except (KeyboardInterrupt, EOFError, OSError):
        return


def send(conn: Connection, reply: tuple[str, Any], submission: Submission) -> None:
    """Send a reply to the parent; a result that cannot be sent (pickled) is sent as that
    submission's failure instead."""
    try:
        conn.send(reply)
    except (OSError, EOFError):
        raise
    except Exception as exc:  # noqa: BLE001 - pickling: nothing was sent, send the failure
        conn.send(("result", Result.failed(submission.student, submission.notebook.name,
                                           submission.content_hash, failure_reason(exc))))


def picklable(exc: Exception) -> Exception:
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:  # noqa: BLE001 - any unpicklable exception is described instead
        return GraderError(f"grading failed in a worker: {type(exc).__name__}: {exc}")
    return exc
