"""The trusted side of a sandboxed run: start it, wait for the notebook, ask questions, end it.

    sandbox = Sandbox(SandboxConfig(data_view=data.public_view()))
    with sandbox.open(folder, "W4_Homework.ipynb") as run:
        record = run.execute()                       # what happened, cell by cell
        dW1, db1, dW2, db2 = run.call("gradients", X, Y, W1, b1, W2, b2)

Every answer crosses one pipe as size-capped JSON with `.npy` arrays (no pickles) and is checked
here before anyone uses it. When the run ends, for whatever reason, every process it started is
killed and its cgroup removed.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from grader.errors import GraderError
from grader.results import CellRecord, Outcome, RunRecord
from grader.sandbox import bwrap, caches, limits, protocol, seccomp, user, warm
from grader.sandbox.forkserver import CHANNEL_FD

AGENT_FILES = [Path(__file__).with_name(name)
               for name in ("agent.py", "protocol.py", "kernel_probe.py")]
STARTUP_GRACE_S = 90  # kernel start and imports, on top of the notebook's own limit
STDERR_KEPT = 16 << 10  # the tail of the sandbox's own stderr kept for a TA's error message


class SandboxError(GraderError):
    """The sandbox could not be set up (a TA's machine problem, not a student's)."""

    exit_code = 4


class ProbeError(GraderError):
    """A question to the sandbox got no valid answer: the student's code raised, timed out,
    or answered something malformed. Recorded for that submission only."""

    def __init__(self, message: str, kind: str = "error") -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class SandboxConfig:
    data_view: Path | None = None
    resources: limits.ResourceLimits = limits.ResourceLimits()
    cell_seconds: int = 600
    notebook_seconds: int = 1800
    output_limit: int = 2 << 20    # bytes of cell output kept for the report
    seed: int = 0
    sandboxed: bool = True         # False: resource limits only (`--no-sandbox`, laptops)
    gpus: tuple[int, ...] = ()
    cpu_fallback: bool = False
    warm: bool = True              # bring in an agent forked from a warm one (forkserver.py)
    #: Seconds for every question asked after the notebook ended, all together (default:
    #: half the notebook's limit, from 30 s to 10 min): one deadline, start-up grace +
    #: notebook_seconds + these, bounds a submission's whole grading.
    probe_seconds: int | None = None

    @property
    def question_seconds(self) -> int:
        if self.probe_seconds is not None:
            return self.probe_seconds
        return min(600, max(30, self.notebook_seconds // 2))


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


class Session:
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
        self.reader: _LineReader | None = None
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
            channel_fd, fonts_seen_as = CHANNEL_FD, bwrap.FONTS_DIR if fonts else None
        else:
            channel_fd, fonts_seen_as = self._start_cold(staged, env, fonts)
        self._send({"notebook": self.notebook, "channel_fd": channel_fd,
                    "submission": bwrap.SUBMISSION_DIR if cfg.sandboxed else str(staged),
                    "cell_timeout": cfg.cell_seconds, "notebook_timeout": cfg.notebook_seconds,
                    "output_limit": cfg.output_limit, "seed": cfg.seed,
                    "cpu_fallback": cfg.cpu_fallback, "cuda_sync": bool(cfg.gpus),
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
        apply_limits = limits.preexec(cfg.resources, self.cgroup)
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
        """bubblewrap (or, unsandboxed, plain limits) executes a fresh agent."""
        cfg = self.config
        read_fd, write_fd = os.pipe()
        exports, filter_fd = None, None
        if cfg.sandboxed:
            filter_fd = _seccomp_fd()
            argv, exports = self._bwrap(staged, env, fonts, seccomp_fd=filter_fd)
            cwd = self.staging
            fonts_seen_as = bwrap.FONTS_DIR if fonts is not None else None
        else:
            cwd = self.staging / "work"
            cwd.mkdir()
            if cfg.data_view is not None:
                for root in bwrap.DATA_ROOTS:
                    (cwd / root).symlink_to(cfg.data_view)
            argv = [sys.executable, str(AGENT_FILES[0])]
            env["HOME"] = str(self.staging / "home")
            fonts_seen_as = str(fonts) if fonts is not None else None
        stderr = self._stderr()
        passed = (write_fd,) if filter_fd is None else (write_fd, filter_fd)
        try:
            self.proc = subprocess.Popen(
                argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=stderr,
                cwd=cwd, env=env, pass_fds=passed, start_new_session=True,
                preexec_fn=self._preexec(exports))
        except subprocess.SubprocessError as exc:
            raise SandboxError(f"bubblewrap could not be started: {exc}") from None
        finally:
            for fd in (write_fd, stderr, *([filter_fd] if filter_fd is not None else [])):
                os.close(fd)
        self.requests = self.proc.stdin
        self.reader = _LineReader(read_fd)
        return write_fd, fonts_seen_as

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
            _kill_group(self.proc.pid)
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
        venv_bin = str(Path(sys.executable).parent)
        env = {
            "HOME": bwrap.SANDBOX_HOME, "PATH": f"{venv_bin}:/usr/bin:/bin", "LANG": "C.UTF-8",
            "PYTHONDONTWRITEBYTECODE": "1", "JUPYTER_PLATFORM_DIRS": "1",
            # course notebooks reload whole pickled nets; inside the sandbox that is allowed
            "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1",
            "CUDA_VISIBLE_DEVICES": ",".join(str(g) for g in self.config.gpus),
        }
        return env

    def close(self) -> None:
        """End the run: ask the agent to stop, then kill whatever is left, however it hid.
        (A warm sandbox is simply killed: its agent and kernel die with its pid namespace.)"""
        if self.proc is not None and self.proc.poll() is None and not self.warm:
            try:
                self._send({"op": "close"})
                self.proc.wait(timeout=2)
            except (OSError, subprocess.TimeoutExpired, ValueError):
                pass
        if self.proc is not None:
            _kill_group(self.proc.pid)
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
            os.close(self.reader.fd)
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
                    limits=limits.in_force(cfg.resources, self.cgroup))
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
            self.record.notes.insert(0, "not sandboxed: resource limits only")
        if cfg.cpu_fallback and not cfg.gpus and ".cuda(" in (self.record.notebook or ""):
            self.record.notes.append("CPU fallback: .cuda() calls ran on the CPU")
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
            _kill_group(self.proc.pid)

    # ------------------------------------------------------------------ probes

    def call(self, name: str, *arrays: Any, torch: bool = True, no_grad: bool = False,
             timeout: float = 120) -> list[np.ndarray]:
        """Call the notebook's function `name` with these arrays (as torch tensors unless
        torch=False, under torch.no_grad() if no_grad; a 0-d array arrives as a Python number);
        return what it returned, as arrays."""
        return self._outputs(self._ask({"op": "call", "name": name, "torch": torch,
                                        "no_grad": no_grad,
                                        "arrays": [protocol.pack_array(a) for a in arrays]},
                                       timeout))

    def value(self, name: str, timeout: float = 60) -> np.ndarray:
        """A variable of the notebook (a tensor, an array or a number), as an array."""
        return self._single(self._ask({"op": "value", "name": name}, timeout))

    def modules(self, shape: tuple[int, ...] = (2, 1, 28, 28),
                timeout: float = 120) -> list[dict[str, Any]]:
        """Every nn.Module in the notebook's namespace, with its output shape on a random
        input of `shape` (or the error it raised), the layer types it contains (`layers`) and
        those its forward pass actually ran (`used_layers`)."""
        found = self._ask({"op": "modules", "shape": list(shape)}, timeout).get("modules")
        if not isinstance(found, list) or not all(isinstance(m, dict) for m in found):
            raise ProbeError("malformed module list", "malformed")
        return found

    def forward(self, name: str, x: np.ndarray | protocol.Packed,
                timeout: float = 600) -> np.ndarray:
        """Run the module `name` in eval mode on a batch; its outputs as one array."""
        return self._single(self._ask({"op": "forward", "name": name,
                                       "arrays": [protocol.pack_array(x)]}, timeout))

    def load_and_forward(self, file: str, x: np.ndarray | protocol.Packed,
                         timeout: float = 600) -> np.ndarray:
        """Unpickle a whole saved model from the work folder (inside the sandbox: the pickle
        may run code) and run it on a batch."""
        return self._single(self._ask({"op": "load", "file": file,
                                       "arrays": [protocol.pack_array(x)]}, timeout))

    def environment(self, timeout: float = 60) -> dict[str, Any]:
        """Where this run ran, as the grader set it up: the GPU it was given (by name, from
        nvidia-smi outside the sandbox) or None for the CPU; and the torch version the
        notebook imported (None if it never did), the only thing here the kernel says."""
        answer = self._ask({"op": "env"}, timeout)
        version = answer.get("torch")
        gpu = gpu_name(self.config.gpus[0]) if self.config.gpus else None
        return {"torch": version[:40] if isinstance(version, str) else None,
                "cuda": bool(self.config.gpus), "gpu": gpu}

    def files(self, timeout: float = 60) -> dict[str, int]:
        """The files the notebook left in its work folder, with their sizes."""
        listing = self._ask({"op": "files"}, timeout).get("files")
        if not isinstance(listing, list) or not all(
                isinstance(f, list) and len(f) == 2 for f in listing):
            raise ProbeError("malformed file list", "malformed")
        return {str(name): int(size) for name, size in listing}

    def read_file(self, name: str, max_bytes: int = 16 << 20, timeout: float = 60) -> bytes:
        """The bytes of a file the notebook left in its work folder (at most max_bytes)."""
        answer = self._ask({"op": "file", "name": name, "max_bytes": max_bytes}, timeout)
        data = answer.get("data")
        if not isinstance(data, str) or len(data) > (max_bytes * 4) // 3 + 8:
            raise ProbeError(f"malformed contents for {name}", "malformed")
        return base64.b64decode(data)

    def ask(self, op: str, *arrays: Any, timeout: float = 120,
            **fields: Any) -> tuple[dict[str, Any], list[np.ndarray]]:
        """Any question kernel_probe.probe() answers, for a judge that needs one without a
        method here: the answer's other fields and its arrays, both still to be checked."""
        answer = self._ask({**fields, "op": op,
                            "arrays": [protocol.pack_array(a) for a in arrays]}, timeout)
        outputs = self._outputs(answer) if "outputs" in answer else []
        return {k: v for k, v in answer.items() if k not in ("ok", "outputs")}, outputs

    def _ask(self, request: dict[str, Any], timeout: float) -> dict[str, Any]:
        if self.record is None:
            raise ProbeError("execute() the notebook before asking about it", "closed")
        if self.proc is None or self.proc.poll() is not None or self.reader is None:
            raise ProbeError("the sandbox has ended; nothing more can be asked", "closed")
        what = _question(request)
        left = self.deadline - time.monotonic()
        if left <= 1:
            self._kill()
            raise ProbeError(f"{what}: not asked, the submission's time was used up "
                             f"(its notebook limit and {self.config.question_seconds} s of "
                             "questions)", "timeout")
        timeout = min(timeout, left - 1)
        request["timeout"] = timeout
        try:
            self._send(request)
            answer = self._receive(min(time.monotonic() + timeout + 5, self.deadline))
        except TimeoutError:
            raise self._ran_out(what, timeout) from None
        except OSError as exc:
            raise ProbeError(f"the sandbox has ended ({exc})", "closed") from None
        if answer.get("ok") is not True:
            error = str(answer.get("error", "Error"))[:200]
            if error == "TimeoutError":
                raise self._ran_out(what, timeout)
            raise ProbeError(f"{error}: {str(answer.get('message', ''))[:1000]}", "raised")
        return answer

    def _ran_out(self, what: str, timeout: float) -> ProbeError:
        """A question that got no answer in time ends the run (the kernel may be stuck in
        the student's code); the run's record says which question it was, for the report."""
        self._kill()
        message = f"{what}: no answer within {timeout:.0f} s; the run was ended"
        if self.record is not None:
            self.record.notes.append(f"time ran out {message}")
        return ProbeError(message, "timeout")

    def _outputs(self, answer: dict[str, Any]) -> list[np.ndarray]:
        outputs = answer.get("outputs")
        if not isinstance(outputs, list) or len(outputs) > 64:
            raise ProbeError("malformed answer: no list of outputs", "malformed")
        try:
            return [protocol.unpack_array(o) for o in outputs]
        except protocol.ProtocolError as exc:
            raise ProbeError(f"malformed answer: {exc}", "malformed") from None

    def _single(self, answer: dict[str, Any]) -> np.ndarray:
        outputs = self._outputs(answer)
        if len(outputs) != 1:
            raise ProbeError(f"expected one output, got {len(outputs)}", "malformed")
        return outputs[0]

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


class _LineReader:
    """Reads newline-terminated messages from a pipe with a deadline and a size cap."""

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
            ready, _, _ = select.select([self.fd], [], [], min(remaining, 1.0))
            if ready:
                chunk = os.read(self.fd, 1 << 20)
                if not chunk:
                    return None
                self.buffer += chunk


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


def _question(request: dict[str, Any]) -> str:
    """The question in a TA's words, for the report: which one ran out of time."""
    op = str(request.get("op"))
    target = request.get("name") or request.get("file")
    described = {"call": "calling", "value": "reading", "modules": "listing the models",
                 "forward": "running the model", "load": "loading and running",
                 "env": "asking for the torch version", "files": "listing the files",
                 "file": "reading the file", "layers": "checking the layers of"}.get(op, op)
    return f"{described} `{target}`" if target else described


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


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


def gpu_name(index: int) -> str:
    """The name of this machine's GPU `index` as nvidia-smi (outside any sandbox) says it."""
    smi = shutil.which("nvidia-smi")
    if smi is not None:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            done = subprocess.run([smi, "--query-gpu=name", "--format=csv,noheader",
                                   f"--id={index}"], capture_output=True, text=True,
                                  timeout=20, check=True)
            name = done.stdout.strip().splitlines()
            if name:
                return name[0][:100]
    return f"GPU {index}"


def _mounted_under(folder: Path) -> bool:
    """Whether this process sees a mount at or below `folder`. The hand-over's binds live in
    bubblewrap's own mount namespace and are never here; if one were, deleting the hand-over
    folder would delete through it into the host's files, so it is then left in place."""
    prefix = str(folder)
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
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
