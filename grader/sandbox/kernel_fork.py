"""The warm start's kernel: an IPython kernel forked from the agent, in place of a fresh one.

A warm agent (forkserver.py) has ipykernel and torch imported already, so forking it is what a
fresh `python -m ipykernel_launcher -f FILE` would give, without importing everything again.
The agent hands `fork_kernel` to jupyter_client's LocalProvisioner in place of its
`launch_kernel`; `ForkedKernel` is the part of subprocess.Popen that the provisioner uses.
Mounted read-only beside the agent in the sandbox; standard library only (ipykernel and
setproctitle are imported in the child, where they are already loaded).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Any

PR_SET_DUMPABLE = 4


class KernelStillRunning(TimeoutError):
    """A forked kernel did not end within the time it was given."""


class ForkedKernel:
    """The part of subprocess.Popen that jupyter_client's LocalProvisioner uses, for a kernel
    that is a fork of this process."""

    stdin = stdout = stderr = None

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            with contextlib.suppress(ChildProcessError):
                pid, status = os.waitpid(self.pid, os.WNOHANG)
                if pid:
                    self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int | None:
        end = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if end is not None and time.monotonic() > end:
                raise KernelStillRunning(f"kernel {self.pid} still running")
            time.sleep(0.01)
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, signum)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)


def fork_kernel(cmd: list[str], env: dict[str, str] | None = None, cwd: str | None = None,
                **_: Any) -> ForkedKernel:
    """Start an IPython kernel as a fork of this process. The child keeps none of the agent's
    descriptors (it could otherwise write on the grader's channel) and is dumpable again, as
    an executed process would be."""
    arguments = cmd[cmd.index("-f"):]  # -f FILE and nbclient's extra arguments
    pid = os.fork()
    if pid:
        end = time.monotonic() + 5  # the provisioner reads its process group next
        with contextlib.suppress(OSError):
            while os.getpgid(pid) != pid and time.monotonic() < end:
                time.sleep(0.001)
        return ForkedKernel(pid)
    try:
        _become_kernel(arguments, env, cwd)
    except SystemExit:
        pass
    except BaseException:  # noqa: BLE001  the stderr log is what a TA reads
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    raise AssertionError("unreachable")


def _become_kernel(arguments: list[str], env: dict[str, str] | None, cwd: str | None) -> None:
    """In the forked child: leave the agent behind (descriptors, environment, signals, title,
    import path, event loop), then run the kernel until it ends."""
    os.setsid()
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.closerange(3, 1 << 16)
    import ctypes  # Linux: only a warm start, in a sandbox, forks its kernel

    ctypes.CDLL(None).prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)
    os.environ.clear()
    os.environ.update(env or {})
    if cwd:
        os.chdir(cwd)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_DFL)
    from setproctitle import setproctitle  # only a warm start gets here

    setproctitle(" ".join([sys.executable, "-m", "ipykernel_launcher", *arguments]))
    # what `python -m ipykernel_launcher -f FILE ...` leaves in sys.argv (a "-m" there would
    # be read by IPython as a module to run), and its import path (no agent folder)
    import ipykernel

    launcher = Path(ipykernel.__file__).parent.parent / "ipykernel_launcher.py"
    agent_dir = str(Path(sys.argv[0]).parent)
    sys.path[:] = [p for p in sys.path if p != agent_dir]
    sys.argv = [str(launcher), *arguments]
    sys.stdin = open(0, encoding="utf-8", closefd=False)  # noqa: SIM115
    # the agent forked from inside its running event loop; the kernel needs its own
    asyncio.events._set_running_loop(None)
    asyncio.set_event_loop(asyncio.new_event_loop())
    from ipykernel import kernelapp

    kernelapp.launch_new_instance()
