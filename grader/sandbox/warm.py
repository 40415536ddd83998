"""The grader's side of the warm start (forkserver.py): one fork server per machine's run.

    server = warm.server(env)            # raises WarmStartError: start this run cold
    pid = server.spawn(job, [requests, replies, log])

A process gets its fork server one of two ways. By default it owns one: started on first use
(and again if it dies), ending when this process does. A `--jobs N` worker is instead handed a
`Source` (`use()`): the `grade` process that started the worker owns the server and tells the
worker where it listens (`address()`), so N workers share one server, one import of torch and
one copy of its memory. The server answers each connection on that connection, with the job's
number, so no answer can pass for another worker's or a later job's.

If the server cannot start or answer, the run starts cold. A child that cannot enter its
sandbox means this machine cannot warm-start (`give_up`): every later run starts cold and one
warning says why (a worker hands the warning to the process that owns the server).

The state is per process and lives in this module (`_state`): a Session asks for a server
for each run without holding one, a server belongs to the process that started it (its
child, ended when that process's end of the socket closes), and a forked child must drop it
(`os.register_at_fork`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, Protocol

from grader.sandbox import caches

FORKSERVER = Path(__file__).with_name("forkserver.py")
READY_TIMEOUT_S = 120  # importing torch on a cold page cache
CONNECT_TIMEOUT_S = 10
LISTEN_BACKLOG = 64


class WarmStartError(RuntimeError):
    """The fork server is not there or did not answer; the run starts cold instead."""


class SetupFailed(WarmStartError):
    """A forked child could not enter its sandbox: this machine cannot warm-start, so the
    rest of this process's runs start cold (see give_up)."""


class Source(Protocol):
    """Where a process that does not own a fork server gets one (a pool worker: its parent)."""

    def address(self, env: dict[str, str], stale: str | None) -> str:
        """The address of a server started with `env`; `stale`: the address that stopped
        answering this process, to be replaced. Raises WarmStartError if there is none."""

    def give_up(self, reason: str) -> None:
        """This machine cannot warm-start: stop offering a server, and say why once."""


class Connection:
    """One conversation with a fork server: a job at a time, each answer carrying the job's
    number. An answer that is late, or out of turn, ends the conversation: a late answer must
    not pass for the next job's."""

    def __init__(self, sock: socket.socket, env: dict[str, str],
                 address: str | None = None) -> None:
        self.socket, self.env, self.address = sock, dict(env), address
        self.lock = threading.Lock()
        self.jobs = 0
        self.broken: str | None = None

    @classmethod
    def to(cls, address: str, env: dict[str, str]) -> Connection:
        """Connect to the server listening at `address` (an abstract AF_UNIX name)."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
        try:
            sock.settimeout(CONNECT_TIMEOUT_S)
            sock.connect(address)
        except OSError as exc:
            sock.close()
            raise WarmStartError(f"cannot reach the shared fork server ({exc})") from None
        return cls(sock, env, address)

    def spawn(self, job: dict[str, Any], fds: list[int], timeout: float = 60) -> int:
        """Fork an agent for `job` with these descriptors, answered once it is inside its
        sandbox; its pid (outside the sandbox)."""
        with self.lock:
            if self.broken is not None:
                raise WarmStartError(self.broken)
            self.jobs += 1
            job = {**job, "id": self.jobs}
            try:
                socket.send_fds(self.socket, [json.dumps(job).encode()], fds)
                answer = self.answer(timeout)
            except (OSError, WarmStartError) as exc:
                raise self.end(f"the fork server did not answer ({exc})") from None
            if answer.get("id") != job["id"]:
                raise self.end(f"the fork server answered job {answer.get('id')}, "
                               f"not {job['id']}")
        if "pid" not in answer:
            raise SetupFailed(str(answer.get("error", answer)))
        return int(answer["pid"])

    def answer(self, timeout: float) -> dict[str, Any]:
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

    def end(self, reason: str) -> WarmStartError:
        """Close the conversation for good; the error to raise."""
        self.broken = reason
        with contextlib.suppress(OSError):
            self.socket.close()
        return WarmStartError(reason)

    def usable(self, env: dict[str, str]) -> bool:
        return self.broken is None and self.env == env


class ForkServer:
    """A fork server this process started and owns. It ends when this process's end of its
    control socket closes. `shared`: it also listens on an abstract AF_UNIX address for other
    processes of this user (a pool's workers); see forkserver.serve."""

    def __init__(self, env: dict[str, str], *, shared: bool = False) -> None:
        self.env = dict(env)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        listener, self.address = _listener() if shared else (None, None)
        fonts = caches.matplotlib_fonts()  # pyplot is preloaded only with its font list
        passed = (theirs.fileno(),) + ((listener.fileno(),) if listener else ())
        try:
            self.proc = subprocess.Popen(
                [sys.executable, str(FORKSERVER), str(theirs.fileno()),
                 str(listener.fileno()) if listener else "-", *([str(fonts)] if fonts else [])],
                pass_fds=passed, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL, cwd="/", env=self.env, start_new_session=True)
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
            if listener is not None:
                listener.close()
        self.connection = Connection(ours, env, self.address)
        try:
            ready = self.connection.answer(READY_TIMEOUT_S)
        except BaseException:
            self.close()
            raise
        if not ready.get("ready"):
            self.close()
            raise WarmStartError(f"the fork server is not usable: {ready}")

    def alive(self) -> bool:
        return self.proc.poll() is None and self.connection.broken is None

    def usable(self, env: dict[str, str]) -> bool:
        return self.alive() and self.env == env

    def spawn(self, job: dict[str, Any], fds: list[int], timeout: float = 60) -> int:
        """As Connection.spawn; a server that answers late or out of turn is stopped (its
        next user starts a new one)."""
        try:
            return self.connection.spawn(job, fds, timeout)
        except SetupFailed:
            raise
        except WarmStartError:
            self.close()
            raise

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.connection.socket.close()
        with contextlib.suppress(OSError):
            os.killpg(self.proc.pid, 9)
        self.proc.wait()

    def forget(self) -> None:
        """In a forked child: drop this process's copy of the control socket, nothing else."""
        with contextlib.suppress(OSError):
            self.connection.socket.close()


def _listener() -> tuple[socket.socket, str]:
    """A listening socket under a random abstract name. It has no file to protect or leave
    behind; the server serves only connections of its own user (SO_PEERCRED), and no
    sandbox can reach it (each has its own network namespace, and abstract names belong to
    one)."""
    address = f"\0torchgrade-forkserver-{secrets.token_hex(16)}"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        listener.bind(address)
        listener.listen(LISTEN_BACKLOG)
    except OSError:
        listener.close()
        raise
    return listener, address


class WarmStart:
    """This process's way to a fork server: its own, or one shared through a Source."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.owned: ForkServer | None = None
        self.source: Source | None = None
        self.remote: Connection | None = None
        self.unreachable: str | None = None  # a shared address this process could not reach
        self.failed: str | None = None

    def server(self, env: dict[str, str]) -> ForkServer | Connection:
        """The server for this run. Raises WarmStartError if there is none; after a failure
        to start one, or once given up, it is not tried again."""
        with self.lock:
            if self.failed is not None:
                raise WarmStartError(self.failed)
            if self.source is not None:
                return self._remote(env)
            return self._own(env, shared=False)

    def address(self, env: dict[str, str], stale: str | None = None) -> str:
        """Where this process's server listens for other processes (started, shared, if it
        is not running yet); a server at `stale`, which stopped answering someone, is
        replaced."""
        with self.lock:
            if self.failed is not None:
                raise WarmStartError(self.failed)
            current = self.owned
            if current is not None and stale is not None and current.address == stale:
                current.close()
            server = self._own(env, shared=True)
            assert server.address is not None
            return server.address

    def _own(self, env: dict[str, str], *, shared: bool) -> ForkServer:
        current = self.owned
        if current is not None and current.usable(env) and (current.address or not shared):
            return current
        if current is not None:
            current.close()
        self.owned = None
        try:
            self.owned = ForkServer(env, shared=shared)
        except (OSError, WarmStartError) as exc:
            self.failed = str(exc)
            raise WarmStartError(self.failed) from None
        return self.owned

    def _remote(self, env: dict[str, str]) -> Connection:
        assert self.source is not None
        current = self.remote
        if current is not None and current.usable(env):
            return current
        stale = self.unreachable
        if current is not None:
            stale = current.address
            current.end("replaced")
        self.remote = None
        try:
            address = self.source.address(env, stale)
        except WarmStartError as exc:
            self.failed = str(exc)
            raise
        try:
            self.remote = Connection.to(address, env)
        except WarmStartError:
            self.unreachable = address
            raise
        self.unreachable = None
        return self.remote

    def give_up(self, reason: str) -> None:
        with self.lock:
            first = self.failed is None
            self.failed = reason
            source = self.source
        if source is not None:
            source.give_up(reason)
        elif first:
            logging.getLogger("torchgrade").warning(
                "warm start unavailable, starting each notebook cold: %s", reason)
        self.shutdown()

    def shutdown(self) -> None:
        with self.lock:
            if self.owned is not None:
                self.owned.close()
            if self.remote is not None:
                self.remote.end("shut down")
            self.owned = self.remote = None

    def forget(self) -> None:
        if self.owned is not None:
            self.owned.forget()
        if self.remote is not None:
            with contextlib.suppress(OSError):
                self.remote.socket.close()


_state = WarmStart()


def server(env: dict[str, str]) -> ForkServer | Connection:
    """This process's fork server for a run with `env` (the sandbox's environment): its own,
    or the shared one of a Source. Raises WarmStartError if there is none."""
    return _state.server(env)


def address(env: dict[str, str], stale: str | None = None) -> str:
    """Where this process's fork server listens for the processes it shares it with."""
    return _state.address(env, stale)


def use(source: Source) -> None:
    """Get this process's fork server from `source` instead of starting one (a pool worker)."""
    with _state.lock:
        _state.source = source


def give_up(reason: str) -> None:
    """Start every later run of this process cold, and say why once."""
    _state.give_up(reason)


def shutdown() -> None:
    """Stop this process's fork server (also done when the process exits: the server ends
    when its socket closes)."""
    _state.shutdown()


def _forget_after_fork() -> None:
    """A forked process (a worker) gets its own way to a server; it must not hold the
    parent's."""
    global _state
    _state.forget()
    _state = WarmStart()


if hasattr(os, "register_at_fork"):  # POSIX; without fork (Windows) there is no warm start
    os.register_at_fork(after_in_child=_forget_after_fork)
