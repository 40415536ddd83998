"""Ctrl-C kills what is in flight and loses nothing. Every backend stops through this module.

What a stop means, wherever a grading runs:

- no exception is ever raised into a grading: the sandboxes of the gradings in flight are
  killed instead (`kill_sandboxes`, and again every REAP_EVERY_S until the run ends, so a
  grading about to start its sandbox does not get to run it); each grading then finishes at
  once on its own, its Session cleans up, and its result is dropped;
- a result being handed to the caller (stored) is handed over whole (`InterruptGuard.holding`);
- worker processes are told to stop, the busy ones get SIGTERM (which kills their sandboxes),
  and one that hangs is killed after STOP_GRACE_S (`end_processes`); a Dask cluster is asked
  until nothing of the run is left in flight (`wait_until_stopped`, with `InFlight` on the
  workers);
- the caller gets `Interrupted`: how many were graded and how many are left, exit code 130.
The gradebook's keys make the same command grade only what is missing.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from multiprocessing.process import BaseProcess
from pathlib import Path
from types import FrameType
from typing import Any, Protocol

from grader.errors import GraderError

STOP_GRACE_S = 30  # how long a stopped worker may take to close its sandbox before it is killed
REAP_EVERY_S = 0.2


class Interrupted(GraderError):
    """Ctrl-C: what was graded is stored; the same command grades the rest."""

    exit_code = 130

    def __init__(self, graded: int, left: int) -> None:
        super().__init__(f"interrupted: {graded} graded, {left} left; run the same command "
                         "again to resume")
        self.graded, self.left = graded, left


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
        """A block Ctrl-C does not cut in two (handing a result over); it raises at the end."""
        self._holding += 1
        try:
            yield
        finally:
            self._holding -= 1
        if self._deferred and not self._holding:
            self._deferred = False
            raise KeyboardInterrupt

    def check(self) -> None:
        """After a grading in this process: one whose sandbox a stop ended is no grade."""
        if self.interrupted:
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


class Stoppable(Protocol):
    """A worker process as `end_processes` sees it."""

    process: BaseProcess

    @property
    def busy(self) -> bool: ...

    def ask_to_stop(self) -> None:
        """Tell the worker to exit once it is done (it may be gone already)."""


def end_processes(workers: Iterable[Stoppable], grace: float = STOP_GRACE_S) -> None:
    """End worker processes: each is told to stop when it is done, and a busy one gets
    SIGTERM, which ends its sandbox so that it is done at once; one that hangs is killed."""
    workers = list(workers)
    for worker in workers:
        if not worker.process.is_alive():
            continue
        worker.ask_to_stop()
        if worker.busy and worker.process.pid is not None:
            with contextlib.suppress(OSError):
                os.kill(worker.process.pid, signal.SIGTERM)
    for worker in workers:
        worker.process.join(grace)
        if worker.process.is_alive():
            worker.process.kill()
            worker.process.join()


def wait_until_stopped(still_running: Callable[[], int | None],
                       grace: float = STOP_GRACE_S) -> None:
    """Ask `still_running` (how many gradings of the run are in flight; None: nobody left to
    ask) until it says none, or `grace` has passed."""
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        running = still_running()
        if not running:
            return
        time.sleep(REAP_EVERY_S)


class InFlight:
    """The gradings running in this process, by key, for a stop that arrives from outside
    (a Dask client's `Client.run`): `stop(keys)` kills their sandboxes and marks them, and
    `finish(key)` tells the grading that its result is to be dropped."""

    def __init__(self) -> None:
        self._stopped: dict[str, bool] = {}
        self._lock = threading.Lock()

    def start(self, key: str) -> None:
        with self._lock:
            self._stopped[key] = False

    def finish(self, key: str) -> bool:
        """The grading of `key` is done; True if a stop ended it."""
        with self._lock:
            return self._stopped.pop(key, False)

    def stop(self, keys: Iterable[str]) -> int:
        """End the listed gradings in flight here; how many of them are still running."""
        with self._lock:
            running = set(keys) & set(self._stopped)
            for key in running:
                self._stopped[key] = True
        if running:
            kill_sandboxes()
        return len(running)
