"""The trusted side of a sandboxed run: start it, wait for the notebook, end it.

    sandbox = Sandbox(SandboxConfig(data_view=data.public_view()))
    with sandbox.open(folder, "W4_Homework.ipynb") as run:
        record = run.execute()                       # what happened, cell by cell
        dW1, db1, dW2, db2 = run.call("gradients", X, Y, W1, b1, W2, b2)

The launcher: it stages the submission, builds the sandbox (bubblewrap, cold or warm), hands
the agent its settings, reads the run's record, and when the run ends, for whatever reason,
kills every process it started and removes its cgroup. The questions asked after the notebook
(call, modules, forward, ...) are probes.py's; both cross one pipe as size-capped JSON with
`.npy` arrays (no pickles), checked here before anyone uses them.

Without bubblewrap (`SandboxConfig(sandboxed=False)`: `grade check` on a student's laptop,
`--no-sandbox`) the same agent runs as a plain child process on Linux, macOS or Windows. That
path uses nothing Linux-only: no fork server, cgroup only where Linux has one, rlimits only
where `resource` exists (limits.py), no descriptor passed but the standard three (the agent
answers on its stdout, which it then points at the null device; Windows can pass no other),
a thread rather than select() to read it (Windows selects only sockets), and the agent's
process tree ended without process groups where the platform has none. What is Linux-only
(forkserver.py, seccomp, the hand-over's mounts, pwd) is imported on the sandboxed path only.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import queue
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from grader.errors import GraderError
from grader.results import CellRecord, Outcome, RunRecord
from grader.sandbox import bwrap, caches, limits, protocol, seccomp, user, warm
from grader.sandbox.config import SandboxConfig
from grader.sandbox.probes import ProbeClient, ProbeError

#: What the sandbox holds of the grader, read-only at bwrap.AGENT_DIR: the agent (first: a cold
#: start runs it), the wire format, the warm start's kernel, and the two modules the kernel
#: loads (before the first cell; once the notebook has ended). forkserver.py imports the agent
#: and, through it, the others.
AGENT_FILES = [Path(__file__).with_name(name)
               for name in ("agent.py", "protocol.py", "kernel_fork.py", "kernel_prelude.py",
                            "kernel_probe.py")]
STARTUP_GRACE_S = 90  # kernel start and imports, on top of the notebook's own limit
STDERR_KEPT = 16 << 10  # the tail of the sandbox's own stderr kept for a TA's error message
#: The agent's channel when it runs unsandboxed: its stdout, the one descriptor every
#: platform passes (agent.py moves it aside before anything else can write there).
STDOUT_CHANNEL = 1
#: fork/exec, process groups and preexec_fn: POSIX (Linux, macOS), not Windows.
POSIX = os.name == "posix"
#: What an unsandboxed run does not take from the host's environment: a desktop matplotlib
#: backend (the grader's runs use the kernel's inline one) and an interactive start-up.
_HOST_ONLY = frozenset({"MPLBACKEND", "PYTHONSTARTUP", "PYTHONINSPECT"})


class SandboxError(GraderError):
    """The sandbox could not be set up (a TA's machine problem, not a student's)."""

    exit_code = 4


class Sandbox:
    def __init__(self, config: SandboxConfig) -> None:
        if config.sandboxed and bwrap.executable() is None:
            raise SandboxError("bubblewrap (bwrap) is not installed: `apt-get install "
                               "bubblewrap`, or pass --no-sandbox to run with limits only")
        self.config = config
        self.identity = sandbox_identity() if config.sandboxed else None

    def open(self, submission: Path, notebook: str) -> Session:
        return Session(self.config, submission, notebook, self.identity)


def sandbox_identity() -> user.Identity:
    """The unprivileged host user the sandboxes run as (see user.py), or a SandboxError a
    TA can act on."""
    try:
        return user.sandbox_identity()
    except user.NoSandboxUser as exc:
        raise SandboxError(str(exc)) from None


class Session(ProbeClient):
    """One notebook's run in its own sandbox: started on entering, ended (every process
    killed, the cgroup and staging folder removed) on leaving; `execute()` waits for the
    notebook, and the question methods come from ProbeClient (probes.py)."""

    def __init__(self, config: SandboxConfig, submission: Path, notebook: str,
                 identity: user.Identity | None = None) -> None:
        self.config = config
        self.submission = submission
        self.notebook = notebook
        self.identity = identity
        self.deadline = float("inf")  # set when the run starts: covers it and every question
        self.exports: list[Exports] = []
        self.stderr: _Tail | None = None
        self.record: RunRecord | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.requests: Any = None  # the agent's stdin
        self.warm = False
        self.cgroup: limits.Cgroup | None = None
        self.reader: _Reader | None = None
        self.staging = Path(tempfile.mkdtemp(prefix="torchgrade-run-"))
        self.notes: list[str] = []

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> Session:
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _start(self) -> None:
        cfg = self.config
        staged = self.staging / "submission"
        self.notes += stage(self.submission, staged)
        self.cgroup = limits.create_cgroup(cfg.resources)
        self.deadline = (time.monotonic() + STARTUP_GRACE_S + cfg.notebook_seconds
                         + cfg.question_seconds)
        env = self._env()
        fonts = caches.matplotlib_fonts()
        if cfg.sandboxed and cfg.warm and self._start_warm(staged, env, fonts):
            from grader.sandbox.forkserver import CHANNEL_FD  # Linux only: fcntl, prctl

            channel_fd, fonts_seen_as = CHANNEL_FD, bwrap.FONTS_DIR if fonts else None
        elif cfg.sandboxed:
            channel_fd, fonts_seen_as = self._start_cold(staged, env, fonts)
        else:
            channel_fd, fonts_seen_as = self._start_plain(env, fonts)
        self._send({"notebook": self.notebook, "channel_fd": channel_fd,
                    "submission": bwrap.SUBMISSION_DIR if cfg.sandboxed else str(staged),
                    "probe_dir": None if cfg.sandboxed else str(self.staging / "probe"),
                    "cell_timeout": cfg.cell_seconds, "notebook_timeout": cfg.notebook_seconds,
                    "output_limit": cfg.output_limit, "seed": cfg.seed,
                    "cpu_fallback": cfg.cpu_fallback, "cuda_sync": bool(cfg.gpus),
                    "torch_threads": cfg.torch_threads,
                    "data_roots": list(bwrap.DATA_ROOTS), "matplotlib_fonts": fonts_seen_as,
                    "sandboxed": cfg.sandboxed})

    def _bwrap(self, staged: Path, env: dict[str, str], fonts: Path | None,
               **extra: Any) -> tuple[list[str], Exports | None]:
        """bubblewrap's argv, and what a root grader must hand over to the sandbox user."""
        cfg = self.config
        paths = dict(agent_files=AGENT_FILES, submission=staged,
                     etc=bwrap.write_etc(self.staging / "etc"), data_view=cfg.data_view,
                     fonts=fonts)
        exports = None
        if self.identity is not None and self.identity.switch:
            exports = Exports(bwrap.host_paths(**paths))
            self.exports.append(exports)
            extra["source"] = exports.source
        argv = bwrap.command(
            python=sys.executable, disk_mb=cfg.resources.disk_mb,
            gpu_devices=bwrap.gpu_device_nodes(list(cfg.gpus)), env=env, **paths, **extra)
        return argv, exports

    def _preexec(self, exports: Exports | None) -> Callable[[], None]:
        """What the run's first process (bubblewrap, or the agent unsandboxed) runs before
        exec: the cgroup and rlimits (as the grader), then, for a root grader, the hand-over
        of host paths and the switch to the sandbox user, so that no process of the sandbox
        is ever host root."""
        cfg = self.config
        apply_limits = limits.preexec(cfg.resources, self.cgroup, sandboxed=cfg.sandboxed)
        identity = self.identity

        def apply() -> None:
            apply_limits()
            if exports is not None:
                exports.mount()
            if identity is not None:
                user.become(identity)

        return apply

    def _stderr(self) -> int:
        """A pipe for the stderr of the sandbox's own processes, read here and kept only in
        its last STDERR_KEPT bytes: a student who writes to it (say through /proc/1/fd/2)
        fills no disk of the host's. Returns the write end, for the child."""
        read_end, write_end = os.pipe()
        self.stderr = _Tail(read_end, STDERR_KEPT)
        return write_end

    def _start_cold(self, staged: Path, env: dict[str, str],
                    fonts: Path | None) -> tuple[int, str | None]:
        """bubblewrap executes a fresh agent."""
        read_fd, write_fd = os.pipe()
        filter_fd = _seccomp_fd()
        argv, exports = self._bwrap(staged, env, fonts, seccomp_fd=filter_fd)
        stderr = self._stderr()
        passed = (write_fd,) if filter_fd is None else (write_fd, filter_fd)
        try:
            self.proc = subprocess.Popen(
                argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=stderr,
                cwd=self.staging, env=env, pass_fds=passed, start_new_session=True,
                preexec_fn=self._preexec(exports))
        except subprocess.SubprocessError as exc:
            raise SandboxError(f"bubblewrap could not be started: {exc}") from None
        finally:
            for fd in (write_fd, stderr, *([filter_fd] if filter_fd is not None else [])):
                os.close(fd)
        self.requests = self.proc.stdin
        self.reader = _LineReader(read_fd)
        return write_fd, bwrap.FONTS_DIR if fonts is not None else None

    def _start_plain(self, env: dict[str, str], fonts: Path | None) -> tuple[int, str | None]:
        """No sandbox: the agent as a plain child process in the run's work folder, with the
        limits this platform has; it answers on its stdout (STDOUT_CHANNEL)."""
        cfg = self.config
        cwd = self.staging / "work"
        cwd.mkdir()
        if cfg.data_view is not None:
            for root in bwrap.DATA_ROOTS:
                self.notes += _link_folder(cwd / root, cfg.data_view)
        read_fd, write_fd = os.pipe()
        stderr = self._stderr()
        try:
            self.proc = subprocess.Popen(
                [sys.executable, str(AGENT_FILES[0])], stdin=subprocess.PIPE, stdout=write_fd,
                stderr=stderr, cwd=cwd, env=env, start_new_session=POSIX,
                creationflags=getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0),
                preexec_fn=self._preexec(None) if POSIX else None)
        except (OSError, subprocess.SubprocessError) as exc:
            os.close(read_fd)
            raise SandboxError(f"the notebook's Python could not be started: {exc}") from None
        finally:
            os.close(write_fd)
            os.close(stderr)
        self.requests = self.proc.stdin
        self.reader = _ThreadedReader(read_fd)
        return STDOUT_CHANNEL, str(fonts) if fonts is not None else None

    def _start_warm(self, staged: Path, env: dict[str, str], fonts: Path | None) -> bool:
        """bubblewrap builds the sandbox around a placeholder; the fork server brings in an
        agent that has torch and ipykernel imported already. False: start cold instead."""
        cfg = self.config
        try:
            server = warm.server({k: v for k, v in env.items() if k != "CUDA_VISIBLE_DEVICES"})
        except warm.WarmStartError:
            return False
        info_read, info_write = os.pipe()
        filter_fd = _seccomp_fd()
        argv, exports = self._bwrap(staged, env, fonts, program=bwrap.PLACEHOLDER,
                                    info_fd=info_write, seccomp_fd=filter_fd)
        stderr = self._stderr()
        passed = (info_write,) if filter_fd is None else (info_write, filter_fd)
        try:
            self.proc = subprocess.Popen(
                argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr,
                cwd=self.staging, env=env, pass_fds=passed, start_new_session=True,
                preexec_fn=self._preexec(exports))
        except BaseException as exc:
            os.close(info_read)
            os.close(stderr)
            if isinstance(exc, subprocess.SubprocessError):
                raise SandboxError(f"bubblewrap could not be started: {exc}") from None
            raise
        finally:
            os.close(info_write)
            if filter_fd is not None:
                os.close(filter_fd)
        requests, replies = os.pipe(), os.pipe()
        try:
            deadline = time.monotonic() + STARTUP_GRACE_S
            target = _first_pid(info_read, deadline)
            assert self.proc.stdout is not None
            if _LineReader(self.proc.stdout.fileno()).read_line(deadline) != b"ready":
                raise SandboxError("bubblewrap did not finish building the sandbox")
            job = {"target": target, "parent": self.proc.pid,
                   "cgroup_procs": [str(p) for p in self.cgroup.procs_files()]
                   if self.cgroup else [],
                   "rlimits": limits.rlimits(cfg.resources, with_memory=self.cgroup is None),
                   "env": env, "cwd": bwrap.WORK_DIR, "agent": bwrap.AGENT_PATH,
                   "identity": [self.identity.uid, self.identity.gid]
                   if self.identity is not None and self.identity.switch else None,
                   "seccomp": _seccomp_text()}
            server.spawn(job, [requests[0], replies[1], stderr])
        except (warm.WarmStartError, SandboxError, TimeoutError,
                protocol.ProtocolError) as exc:
            if isinstance(exc, warm.SetupFailed):
                warm.give_up(str(exc))
            _kill_tree(self.proc.pid)
            self.proc.wait()
            for fd in (*requests, *replies):
                os.close(fd)
            self.proc = None
            return False
        finally:
            os.close(info_read)
            os.close(stderr)
        os.close(requests[0])
        os.close(replies[1])
        self.requests = os.fdopen(requests[1], "wb")
        self.reader = _LineReader(replies[0])
        self.warm = True
        return True

    def _env(self) -> dict[str, str]:
        """The environment of the run's processes. In a sandbox: nothing of the host's.
        Without one: the host's (Windows cannot start Python without SYSTEMROOT and the
        like, and a student's kernel finds what their own Jupyter would), with the run's
        own home and IPython and matplotlib folders, and UTF-8 for Python's files and
        streams whatever the locale (a notebook named 作业4 on a Latin-1 or cp1252 system)."""
        cfg = self.config
        venv_bin = str(Path(sys.executable).parent)
        ours = {
            "PYTHONDONTWRITEBYTECODE": "1", "JUPYTER_PLATFORM_DIRS": "1",
            # course notebooks reload whole pickled nets; inside the sandbox that is allowed
            "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1",
            "CUDA_VISIBLE_DEVICES": ",".join(str(g) for g in cfg.gpus),
        }
        if cfg.sandboxed:
            return {"HOME": bwrap.SANDBOX_HOME, "PATH": f"{venv_bin}:/usr/bin:/bin",
                    "LANG": "C.UTF-8", **ours}
        home = self.staging / "home"
        env = {k: v for k, v in os.environ.items() if k not in _HOST_ONLY}
        env.update(ours)
        env.update({
            "HOME": str(home), "IPYTHONDIR": str(home / ".ipython"),
            "MPLCONFIGDIR": str(home / ".cache" / "matplotlib"),
            "PATH": os.pathsep.join(p for p in (venv_bin, os.environ.get("PATH")) if p),
            "PYTHONUTF8": "1", "PYTHONIOENCODING": "utf-8",
        })
        if sys.platform.startswith("linux"):
            env["LANG"] = "C.UTF-8"
        return env

    def close(self) -> None:
        """End the run: ask the agent to stop, then kill whatever is left, however it hid.
        (A warm sandbox is simply killed: its agent and kernel die with its pid namespace.)"""
        if self.proc is not None and self.proc.poll() is None and not self.warm:
            try:
                self._send(protocol.request(protocol.CLOSE.name))
                self.proc.wait(timeout=2)
            except (OSError, subprocess.TimeoutExpired, ValueError):
                pass
        if self.proc is not None:
            _kill_tree(self.proc.pid)
            self.proc.wait()
            for stream in (self.proc.stdin, self.proc.stdout):
                if stream:
                    stream.close()
        if self.requests is not None and self.requests is not getattr(self.proc, "stdin", None):
            with contextlib.suppress(OSError):
                self.requests.close()
        self.requests = None
        if self.cgroup is not None:
            if self.record is not None:
                self.record.peak_memory = self.cgroup.peak_memory()
            self.cgroup.remove()
            self.cgroup = None
        if self.reader is not None:
            self.reader.close()
            self.reader = None
        if self.stderr is not None:
            self.stderr.join(timeout=2)
        for exports in self.exports:
            exports.remove()
        self.exports = []
        shutil.rmtree(self.staging, ignore_errors=True)

    # ------------------------------------------------------------------ execution

    def execute(self) -> RunRecord:
        cfg = self.config
        start = time.monotonic()
        deadline = start + cfg.notebook_seconds + STARTUP_GRACE_S
        base = dict(sandboxed=cfg.sandboxed, notes=list(self.notes),
                    limits=limits.in_force(cfg.resources, self.cgroup,
                                           sandboxed=cfg.sandboxed))
        try:
            message = self._receive(deadline)
        except TimeoutError:
            self._kill()
            self.record = RunRecord(Outcome.TIMEOUT, f"ran over {cfg.notebook_seconds} s", **base)
        except ProbeError as exc:
            self._kill()
            self.record = RunRecord(self._ended_how(), str(exc), **base)
            self.record.notes += self._bubblewrap_said()
        else:
            self.record = self._record(message, base)
        self.record.wall_seconds = round(time.monotonic() - start, 3)
        # what the start did not use of its grace is not the questions' to take
        self.deadline = min(self.deadline, time.monotonic() + cfg.question_seconds)
        if not cfg.sandboxed:
            self.record.notes.insert(0, limits.NOT_SANDBOXED)
        if cfg.cpu_fallback and not cfg.gpus and ".cuda(" in (self.record.notebook or ""):
            self.record.notes.append(f"the grader has no GPU: .cuda() calls ran on the CPU "
                                     f"(the run took {self.record.wall_seconds:.0f} s)")
        return self.record

    def _record(self, message: dict[str, Any], base: dict[str, Any]) -> RunRecord:
        if message.get("event") == "failed":
            return RunRecord(Outcome.FAILED, str(message.get("error", "")), **base)
        if message.get("event") != "executed" or not isinstance(message.get("cells"), list):
            return RunRecord(Outcome.FAILED, "the sandbox answered something else than a run",
                             **base)
        cells = [_cell(c) for c in message["cells"]]
        notebook = message.get("notebook")
        record = RunRecord(Outcome.COMPLETED, **base, cells=cells,
                           notebook=notebook if isinstance(notebook, str) else None,
                           output_truncated=bool(message.get("output_truncated")))
        failing = [c for c in cells if c.error]
        if any(c.timed_out for c in cells) or any(c.skipped and "time" in c.skipped
                                                  for c in cells):
            record.outcome, record.reason = Outcome.TIMEOUT, "a cell ran over its time limit"
        elif not message.get("kernel_alive", True):
            record.outcome = Outcome.KILLED
            record.reason = self._kernel_death_reason(failing)
        elif failing:
            record.outcome = Outcome.ERROR
            record.reason = f"cell {failing[0].index}: {failing[0].error}"
        return record

    def _bubblewrap_said(self) -> list[str]:
        """bubblewrap's own complaint when it could not build the sandbox (a machine
        problem for the TA: a path it cannot reach, user namespaces turned off)."""
        if self.stderr is None:
            return []
        self.stderr.join(timeout=2)
        said = [line for line in self.stderr.text().splitlines() if line.startswith("bwrap:")]
        return [f"the sandbox could not be built: {said[-1][:300]}"] if said else []

    def _kernel_death_reason(self, failing: list[CellRecord]) -> str:
        where = f" in cell {failing[0].index}" if failing else ""
        if self.cgroup is not None and self.cgroup.oom_killed():
            return f"the kernel was killed{where}: over the memory limit"
        return f"the kernel died{where}"

    def _ended_how(self) -> Outcome:
        if self.cgroup is not None and self.cgroup.oom_killed():
            return Outcome.KILLED
        return Outcome.FAILED

    def _kill(self) -> None:
        if self.cgroup is not None:
            self.cgroup.kill()
        if self.proc is not None:
            _kill_tree(self.proc.pid)

    # ------------------------------------------------------------------ the channel

    def _connected(self) -> bool:
        return self.proc is not None and self.proc.poll() is None and self.reader is not None

    def _send(self, message: dict[str, Any]) -> None:
        assert self.requests is not None
        self.requests.write(protocol.encode(message))
        self.requests.flush()

    def _receive(self, deadline: float) -> dict[str, Any]:
        assert self.reader is not None
        try:
            line = self.reader.read_line(deadline)
        except protocol.ProtocolError as exc:
            raise ProbeError(str(exc), "malformed") from None
        if line is None:
            raise ProbeError("the sandbox ended without answering", "closed")
        try:
            return protocol.decode(line)
        except protocol.ProtocolError as exc:
            raise ProbeError(f"malformed answer: {exc}", "malformed") from None


class Exports:
    """Host paths handed from a root grader to the unprivileged user that starts bubblewrap.

    That user may not be able to reach them (a Python under a 0700 /root, a data cache in
    root's home, a staging folder under a private TMPDIR). So bubblewrap's process, still
    root just before it becomes that user, makes a mount namespace of its own and binds each
    path onto a numbered mount point in a folder of /tmp (which every user may traverse) that
    the user may pass through but not list; bubblewrap then binds them from there. Nothing
    changes on the host: the binds exist only in that process's namespace (propagation is
    private) and vanish with it; the empty mount points are removed with the run."""

    def __init__(self, paths: list[Path]) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="torchgrade-handover-", dir="/tmp"))
        self.folder.chmod(0o711)
        self.points: dict[Path, Path] = {}
        for number, path in enumerate(dict.fromkeys(paths)):
            point = self.folder / str(number)
            if path.is_dir():
                point.mkdir()
            else:
                point.touch()
            self.points[path] = point

    def remove(self) -> None:
        if not _mounted_under(self.folder):
            shutil.rmtree(self.folder, ignore_errors=True)

    def source(self, path: Path) -> str:
        return str(self.points[path])

    def mount(self) -> None:
        """In the forked child, as root, before it becomes the sandbox user."""
        import ctypes  # Linux only, and only a root grader's sandbox gets here

        libc = ctypes.CDLL(None, use_errno=True)
        if libc.unshare(CLONE_NEWNS) != 0:
            raise OSError(ctypes.get_errno(), "cannot make a mount namespace")
        if libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None) != 0:
            raise OSError(ctypes.get_errno(), "cannot make mounts private")
        for path, point in self.points.items():
            if libc.mount(os.fsencode(path), os.fsencode(point), None, MS_BIND | MS_REC,
                          None) != 0:
                raise OSError(ctypes.get_errno(), f"cannot hand over {path}")


CLONE_NEWNS, MS_BIND, MS_REC, MS_PRIVATE = 0x00020000, 4096, 16384, 1 << 18


def _seccomp_fd() -> int | None:
    """The filter for `bwrap --seccomp`, or None where libseccomp is missing (then the
    sandbox's namespaces and the unprivileged user still hold)."""
    try:
        return seccomp.program_fd()
    except seccomp.SeccompUnavailable:
        return None


def _seccomp_text() -> str | None:
    try:
        return base64.b64encode(seccomp.program()).decode("ascii")
    except seccomp.SeccompUnavailable:
        return None


class _Tail(threading.Thread):
    """Reads a pipe to its end, keeping only the last `keep` bytes."""

    def __init__(self, fd: int, keep: int) -> None:
        super().__init__(name="sandbox-stderr", daemon=True)
        self.fd, self.keep = fd, keep
        self.data = bytearray()
        self.start()

    def run(self) -> None:
        try:
            while chunk := os.read(self.fd, 1 << 16):
                self.data += chunk
                if len(self.data) > 2 * self.keep:
                    del self.data[:-self.keep]
        except OSError:
            pass
        finally:
            os.close(self.fd)

    def text(self) -> str:
        return bytes(self.data[-self.keep:]).decode("utf-8", "replace")


class _Reader(ABC):
    """Newline-terminated messages from a pipe, with a deadline and a size cap."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buffer = bytearray()

    def read_line(self, deadline: float) -> bytes | None:
        while True:
            newline = self.buffer.find(b"\n")
            if newline >= 0:
                line = bytes(self.buffer[:newline])
                del self.buffer[:newline + 1]
                return line
            if len(self.buffer) > protocol.MAX_LINE_BYTES:
                raise protocol.ProtocolError(f"answer over {protocol.MAX_LINE_BYTES} bytes")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            chunk = self._chunk(min(remaining, 1.0))
            if chunk == b"":
                return None
            if chunk is not None:
                self.buffer += chunk

    @abstractmethod
    def _chunk(self, timeout: float) -> bytes | None:
        """What the pipe holds within `timeout` seconds: None if nothing came, b"" at its
        end."""

    @abstractmethod
    def close(self) -> None:
        """The pipe is no longer read."""


class _LineReader(_Reader):
    """Reads with select() (pipes: POSIX only)."""

    def _chunk(self, timeout: float) -> bytes | None:
        ready, _, _ = select.select([self.fd], [], [], timeout)
        return os.read(self.fd, 1 << 20) if ready else None

    def close(self) -> None:
        os.close(self.fd)


class _ThreadedReader(_Reader):
    """Reads in a thread of its own, as Windows cannot select() a pipe: the run without a
    sandbox, on every platform, so that the path Windows takes is the one tested. The thread
    stops taking more once a line is over the cap, and owns the descriptor: it closes it at
    the pipe's end (the agent's death), so it is never closed under a read in flight."""

    def __init__(self, fd: int) -> None:
        super().__init__(fd)
        self.ended = False  # the pipe's end was read: every later read says so at once
        self.chunks: queue.Queue[bytes] = queue.Queue()
        self.thread = threading.Thread(target=self._pump, name="sandbox-channel", daemon=True)
        self.thread.start()

    def _pump(self) -> None:
        taken = 0
        try:
            while taken <= protocol.MAX_LINE_BYTES + (1 << 20):
                chunk = os.read(self.fd, 1 << 20)
                self.chunks.put(chunk)
                if not chunk:
                    return
                newline = chunk.rfind(b"\n")
                taken = len(chunk) - newline - 1 if newline >= 0 else taken + len(chunk)
        except OSError:
            self.chunks.put(b"")
        finally:
            os.close(self.fd)

    def _chunk(self, timeout: float) -> bytes | None:
        if self.ended:
            return b""
        try:
            chunk = self.chunks.get(timeout=timeout)
        except queue.Empty:
            return None
        self.ended = not chunk
        return chunk

    def close(self) -> None:
        self.thread.join(timeout=2)


def _first_pid(fd: int, deadline: float) -> int:
    """The pid of the sandbox's first process, from bubblewrap's --info-fd JSON."""
    raw = b""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], min(1.0, deadline - time.monotonic()))
        chunk = os.read(fd, 4096) if ready else b""
        if ready and not chunk:
            break
        raw += chunk
        with contextlib.suppress(ValueError):
            return int(json.loads(raw)["child-pid"])
    raise SandboxError(f"bubblewrap did not start the sandbox ({raw[:200]!r})")


def _kill_tree(pid: int) -> None:
    """Kill the run's first process and everything it started. POSIX: its process group (it
    was made a session leader). Windows has no process group to signal: taskkill ends the
    process and its descendants by their parent ids."""
    if POSIX:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
        return
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        subprocess.run(["taskkill", "/F", "/T", "/PID", str(pid)], capture_output=True,
                       timeout=30, check=False)


def _link_folder(link: Path, target: Path) -> list[str]:
    """`link` made to show the folder `target` (the public MNIST view in an unsandboxed
    run): a symbolic link, or on Windows, where one needs a privilege, a junction; a note
    if neither could be made (the notebook then finds no data there)."""
    try:
        link.symlink_to(target, target_is_directory=True)
        return []
    except OSError as exc:
        failure = exc
    if os.name == "nt":
        with contextlib.suppress(ImportError, OSError):
            import _winapi

            _winapi.CreateJunction(str(target), str(link))
            return []
    return [f"the public data could not be linked at ./{link.name} ({failure.strerror})"]


def _cell(raw: Any) -> CellRecord:
    """One cell's record as the agent sent it, every field checked for its type."""
    if not isinstance(raw, dict):
        raise ProbeError("malformed cell record", "malformed")

    def text(value: Any) -> str | None:
        return str(value)[:2000] if value is not None else None

    def number(value: Any, default: float) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return default
        return float(value) if np.isfinite(value) else default

    synced = raw.get("synced_seconds")
    return CellRecord(index=int(number(raw.get("index"), -1)),
                      seconds=number(raw.get("seconds"), 0.0),
                      error=text(raw.get("error")), timed_out=raw.get("timed_out") is True,
                      skipped=text(raw.get("skipped")),
                      synced_seconds=number(synced, 0.0) if synced is not None else None)


def _mounted_under(folder: Path) -> bool:
    """Whether this process sees a mount at or below `folder`. The hand-over's binds live in
    bubblewrap's own mount namespace and are never here; if one were, deleting the hand-over
    folder would delete through it into the host's files, so it is then left in place."""
    prefix = str(folder)
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mountinfo").read_text(encoding="utf-8",
                                                           errors="replace").splitlines():
            point = line.split()[4].replace("\\040", " ")
            if point == prefix or point.startswith(prefix + "/"):
                return True
    return False


def stage(source: Path, target: Path) -> list[str]:
    """Copy a submission's regular files for the sandbox, never following a symlink.
    Returns a note for each thing left out."""
    notes: list[str] = []
    target.mkdir(parents=True)
    for folder, dirs, files in os.walk(source, followlinks=False):
        here = Path(folder)
        rel = here.relative_to(source)
        for name in sorted(dirs):
            if (here / name).is_symlink():
                notes.append(f"left out symlink {rel / name}")
            else:
                (target / rel / name).mkdir()
        for name in files:
            path = here / name
            if path.is_symlink() or not path.is_file():
                notes.append(f"left out {'symlink' if path.is_symlink() else 'special file'} "
                             f"{rel / name}")
                continue
            shutil.copyfile(path, target / rel / name, follow_symlinks=False)
    for path in [target, *target.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return notes
