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
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from grader.errors import GraderError
from grader.sandbox import bwrap, caches, limits, protocol, warm
from grader.sandbox.forkserver import CHANNEL_FD

AGENT_FILES = [Path(__file__).with_name("agent.py"), Path(__file__).with_name("protocol.py")]
STARTUP_GRACE_S = 90  # kernel start and imports, on top of the notebook's own limit


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
class CellRecord:
    index: int
    seconds: float
    error: str | None
    timed_out: bool
    skipped: str | None
    synced_seconds: float | None = None  # with the GPU's queued work waited for


@dataclass
class RunRecord:
    """What the grader itself saw of one run. `outcome` is one of completed (every cell ran
    without error), error (some cell raised), timeout, killed (memory or another limit) or
    failed (the notebook could not be run at all)."""

    outcome: str
    reason: str = ""
    cells: list[CellRecord] = field(default_factory=list)
    notebook: str | None = None
    wall_seconds: float = 0.0
    sandboxed: bool = True
    limits: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    peak_memory: int | None = None
    output_truncated: bool = False


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


class Sandbox:
    def __init__(self, config: SandboxConfig) -> None:
        if config.sandboxed and bwrap.executable() is None:
            raise SandboxError("bubblewrap (bwrap) is not installed: `apt-get install "
                               "bubblewrap`, or pass --no-sandbox to run with limits only")
        self.config = config

    def open(self, submission: Path, notebook: str) -> Session:
        return Session(self.config, submission, notebook)


class Session:
    def __init__(self, config: SandboxConfig, submission: Path, notebook: str) -> None:
        self.config = config
        self.submission = submission
        self.notebook = notebook
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
                    "data_roots": list(bwrap.DATA_ROOTS), "matplotlib_fonts": fonts_seen_as})

    def _bwrap(self, staged: Path, env: dict[str, str], fonts: Path | None,
               **extra: Any) -> list[str]:
        cfg = self.config
        return bwrap.command(
            python=sys.executable, agent_files=AGENT_FILES, submission=staged,
            etc=bwrap.write_etc(self.staging / "etc"), data_view=cfg.data_view,
            disk_mb=cfg.resources.disk_mb,
            gpu_devices=bwrap.gpu_device_nodes(list(cfg.gpus)), env=env, fonts=fonts, **extra)

    def _start_cold(self, staged: Path, env: dict[str, str],
                    fonts: Path | None) -> tuple[int, str | None]:
        """bubblewrap (or, unsandboxed, plain limits) executes a fresh agent."""
        cfg = self.config
        read_fd, write_fd = os.pipe()
        if cfg.sandboxed:
            argv = self._bwrap(staged, env, fonts)
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
        stderr = (self.staging / "stderr.log").open("wb")
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=stderr, cwd=cwd,
            env=env, pass_fds=(write_fd,), start_new_session=True,
            preexec_fn=limits.preexec(cfg.resources, self.cgroup))
        os.close(write_fd)
        stderr.close()
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
        stderr = (self.staging / "stderr.log").open("wb")
        try:
            self.proc = subprocess.Popen(
                self._bwrap(staged, env, fonts, program=bwrap.PLACEHOLDER, info_fd=info_write),
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, cwd=self.staging,
                env=env, pass_fds=(info_write,), start_new_session=True,
                preexec_fn=limits.preexec(cfg.resources, self.cgroup))
        except BaseException:
            os.close(info_read)
            stderr.close()
            raise
        finally:
            os.close(info_write)
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
                   "env": env, "cwd": bwrap.WORK_DIR, "agent": bwrap.AGENT_PATH}
            server.spawn(job, [requests[0], replies[1], stderr.fileno()])
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
            stderr.close()
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
            self.record = RunRecord("timeout", f"ran over {cfg.notebook_seconds} s", **base)
        except ProbeError as exc:
            self._kill()
            self.record = RunRecord(self._ended_how(), str(exc), **base)
        else:
            self.record = self._record(message, base)
        self.record.wall_seconds = round(time.monotonic() - start, 3)
        if not cfg.sandboxed:
            self.record.notes.insert(0, "not sandboxed: resource limits only")
        if cfg.cpu_fallback and not cfg.gpus and ".cuda(" in (self.record.notebook or ""):
            self.record.notes.append("CPU fallback: .cuda() calls ran on the CPU")
        return self.record

    def _record(self, message: dict[str, Any], base: dict[str, Any]) -> RunRecord:
        if message.get("event") == "failed":
            return RunRecord("failed", str(message.get("error", "")), **base)
        if message.get("event") != "executed" or not isinstance(message.get("cells"), list):
            return RunRecord("failed", "the sandbox answered something else than a run", **base)
        cells = [_cell(c) for c in message["cells"]]
        notebook = message.get("notebook")
        record = RunRecord("completed", **base, cells=cells,
                           notebook=notebook if isinstance(notebook, str) else None,
                           output_truncated=bool(message.get("output_truncated")))
        failing = [c for c in cells if c.error]
        if any(c.timed_out for c in cells) or any(c.skipped and "time" in c.skipped
                                                  for c in cells):
            record.outcome, record.reason = "timeout", "a cell ran over its time limit"
        elif not message.get("kernel_alive", True):
            record.outcome = "killed"
            record.reason = self._kernel_death_reason(failing)
        elif failing:
            record.outcome, record.reason = "error", f"cell {failing[0].index}: {failing[0].error}"
        return record

    def _kernel_death_reason(self, failing: list[CellRecord]) -> str:
        where = f" in cell {failing[0].index}" if failing else ""
        if self.cgroup is not None and self.cgroup.oom_killed():
            return f"the kernel was killed{where}: over the memory limit"
        return f"the kernel died{where}"

    def _ended_how(self) -> str:
        if self.cgroup is not None and self.cgroup.oom_killed():
            return "killed"
        return "failed"

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
        """torch version, whether CUDA was available, the GPU's name and peak memory (torch
        None and cuda False when the notebook never imported torch)."""
        answer = self._ask({"op": "env"}, timeout)
        return {k: answer.get(k) for k in ("torch", "cuda", "gpu", "peak_memory")}

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

    def _ask(self, request: dict[str, Any], timeout: float) -> dict[str, Any]:
        if self.record is None:
            raise ProbeError("execute() the notebook before asking about it", "closed")
        if self.proc is None or self.proc.poll() is not None or self.reader is None:
            raise ProbeError("the sandbox has ended; nothing more can be asked", "closed")
        request["timeout"] = timeout
        try:
            self._send(request)
            answer = self._receive(time.monotonic() + timeout + 5)
        except TimeoutError:
            self._kill()
            raise ProbeError(f"no answer within {timeout:.0f} s; the run was ended",
                             "timeout") from None
        except OSError as exc:
            raise ProbeError(f"the sandbox has ended ({exc})", "closed") from None
        if answer.get("ok") is not True:
            error = str(answer.get("error", "Error"))[:200]
            raise ProbeError(f"{error}: {str(answer.get('message', ''))[:1000]}", "raised")
        return answer

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


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _cell(raw: Any) -> CellRecord:
    if not isinstance(raw, dict):
        raise ProbeError("malformed cell record", "malformed")

    def text(value: Any) -> str | None:
        return str(value)[:2000] if value is not None else None

    synced = raw.get("synced_seconds")
    return CellRecord(index=int(raw.get("index", -1)), seconds=float(raw.get("seconds", 0.0)),
                      error=text(raw.get("error")), timed_out=bool(raw.get("timed_out")),
                      skipped=text(raw.get("skipped")),
                      synced_seconds=float(synced) if synced is not None else None)


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
