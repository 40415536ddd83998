"""The grader's side of the warm start (forkserver.py): one fork server per grading process,
started on first use and again if it dies, shared by every run of that process.

    server = warm.server(env)            # None: start each agent cold
    pid = server.spawn(job, [requests, replies, log])
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from grader.sandbox import caches

FORKSERVER = Path(__file__).with_name("forkserver.py")
READY_TIMEOUT_S = 120  # importing torch on a cold page cache


class WarmStartError(RuntimeError):
    """The fork server is not there or did not answer; the run starts cold instead."""


class SetupFailed(WarmStartError):
    """A forked child could not enter its sandbox: this machine cannot warm-start, so the
    rest of this process's runs start cold (see give_up)."""


class ForkServer:
    def __init__(self, env: dict[str, str]) -> None:
        self.env = dict(env)
        self.lock = threading.Lock()
        self.jobs = 0
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.socket = ours
        fonts = caches.matplotlib_fonts()  # pyplot is preloaded only with its font list
        self.proc = subprocess.Popen(
            [sys.executable, str(FORKSERVER), str(theirs.fileno()),
             *([str(fonts)] if fonts else [])], pass_fds=(theirs.fileno(),),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            cwd="/", env=self.env, start_new_session=True)
        theirs.close()
        ready = self._answer(READY_TIMEOUT_S)
        if not ready.get("ready"):
            self.close()
            raise WarmStartError(f"the fork server is not usable: {ready}")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def spawn(self, job: dict[str, Any], fds: list[int], timeout: float = 60) -> int:
        """Fork an agent for `job` with these descriptors, answered once it is inside its
        sandbox; its pid (outside the sandbox). A server that answers late, or out of turn,
        is stopped (its next user starts a new one): a late answer must not pass for the
        next job's."""
        with self.lock:
            self.jobs += 1
            job = {**job, "id": self.jobs}
            try:
                socket.send_fds(self.socket, [json.dumps(job).encode()], fds)
                answer = self._answer(timeout)
            except (OSError, WarmStartError) as exc:
                self.close()
                raise WarmStartError(f"the fork server did not answer ({exc})") from None
            if answer.get("id") != job["id"]:
                self.close()
                raise WarmStartError(f"the fork server answered job {answer.get('id')}, "
                                     f"not {job['id']}")
        if "pid" not in answer:
            raise SetupFailed(str(answer.get("error", answer)))
        return int(answer["pid"])

    def _answer(self, timeout: float) -> dict[str, Any]:
        self.socket.settimeout(timeout)
        try:
            raw = self.socket.recv(1 << 16)
        except (OSError, TimeoutError) as exc:
            raise WarmStartError(f"no answer from the fork server ({exc})") from None
        if not raw:
            raise WarmStartError("the fork server ended")
        try:
            answer = json.loads(raw)
        except ValueError:
            raise WarmStartError("the fork server answered something else") from None
        return answer if isinstance(answer, dict) else {"error": answer}

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.socket.close()
        with contextlib.suppress(OSError):
            os.killpg(self.proc.pid, 9)
        self.proc.wait()


_lock = threading.Lock()
_server: ForkServer | None = None
_owner = 0
_failed: str | None = None


def server(env: dict[str, str]) -> ForkServer:
    """This process's fork server (a forked worker process gets its own). Raises
    WarmStartError if it cannot start; after one failure it is not tried again."""
    global _server, _owner, _failed
    with _lock:
        if _failed is not None:
            raise WarmStartError(_failed)
        current = _server if _owner == os.getpid() else None
        if current is not None and current.alive() and current.env == env:
            return current
        if current is not None:
            current.close()
        try:
            _server, _owner = ForkServer(env), os.getpid()
        except (OSError, WarmStartError) as exc:
            _server, _failed = None, str(exc)
            raise WarmStartError(_failed) from None
        return _server


def give_up(reason: str) -> None:
    """Start every later run of this process cold, and say why once."""
    global _failed
    with _lock:
        if _failed is None:
            _failed = reason
            logging.getLogger("torchgrade").warning(
                "warm start unavailable, starting each notebook cold: %s", reason)
    shutdown()


def _forget_after_fork() -> None:
    """A forked process (a worker) starts its own server; it must not hold the parent's."""
    global _server, _lock
    if _server is not None:
        with contextlib.suppress(OSError):
            _server.socket.close()
    _server, _lock = None, threading.Lock()


os.register_at_fork(after_in_child=_forget_after_fork)


def shutdown() -> None:
    """Stop this process's fork server (also done when the grading process exits: the server
    ends when its socket closes)."""
    global _server
    with _lock:
        if _server is not None and _owner == os.getpid():
            _server.close()
        _server = None
