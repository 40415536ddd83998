"""The agent inside the sandbox: runs one notebook with nbclient, then answers the judge.

It is started by `grader.sandbox.session` as `python agent.py` under bubblewrap (or forked in
by the warm start), with the files of `session.AGENT_FILES` mounted read-only beside each
other and nothing else of the grader: this one, `protocol.py` (the wire format and the table
of requests), `kernel_fork.py` (the warm start's kernel), and the two modules the kernel loads
as modules of their own, `kernel_prelude.py` before the first cell and `kernel_probe.py` once
the notebook has ended (no module's source is sent to the kernel as a code string). Requests
arrive as JSON lines on stdin; replies leave on a dedicated pipe that only this process
holds (its number comes in the first request). In a sandbox the agent makes itself
non-dumpable first, so code running as the same user (the student's kernel) can neither
ptrace it nor open its fds through /proc.

Without a sandbox (`grade check` on a laptop, `--no-sandbox`) it runs on Linux, macOS or
Windows: its channel is its stdout, moved aside before the kernel exists (no platform but
POSIX can pass another descriptor), the probes' folder is the run's own rather than /tmp's
(runs side by side would share that), and nothing Linux-only is imported or called: no
prctl (ctypes is imported for it only in a sandbox), no process group where there is none.

Nothing here is trusted by the grader: every reply is validated on the other side.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import kernel_fork
import kernel_probe
import nbformat
import protocol
from jupyter_core.utils import run_sync
from nbclient import NotebookClient
from nbclient.exceptions import DeadKernelError

PR_SET_DUMPABLE = 4
WORK = Path.cwd()  # set again in main(): a warm start imports this module elsewhere
#: The folder of this file and of the kernel's modules beside it (as mounted in the sandbox,
#: or the grader's tree when unsandboxed); set again in main() for the same reason.
AGENT_DIR = Path(sys.argv[0]).parent
#: Where the kernel leaves its answers: /tmp is the sandbox's own; an unsandboxed run is told
#: a folder of its own (the first request's `probe_dir`), set again in main().
PROBE_DIR = Path("/tmp/.probe")
#: The descriptor a run without a sandbox answers on: the agent's stdout (see main()).
STDOUT_CHANNEL = 1
#: Set by forkserver.py: start the kernel by forking this process (which has ipykernel and
#: torch imported) instead of executing a fresh interpreter.
FORK_KERNEL = False

#: Waits for queued GPU work, so a cell's time includes the kernels it launched. Complete in
#: itself: the notebook may have removed any name the agent left in its namespace.
CUDA_SYNC = """
import sys as _tg_sys
if "torch" in _tg_sys.modules and _tg_sys.modules["torch"].cuda.is_available():
    _tg_sys.modules["torch"].cuda.synchronize()
"""


def load_statement(path: Path, handle: str) -> str:
    """Code that loads the kernel-side module at `path` (kernel_prelude.py, kernel_probe.py)
    into the kernel as a module of its own, bound to `handle` in the notebook's namespace.
    The kernel reads the file itself: the path is data, and no module source travels as a
    code string."""
    return (f"import importlib.util as _tg_util\n"
            f"_tg_spec = _tg_util.spec_from_file_location({'torchgrade_' + path.stem!r}, "
            f"{str(path)!r})\n"
            f"{handle} = _tg_util.module_from_spec(_tg_spec)\n"
            f"_tg_spec.loader.exec_module({handle})\n"
            "del _tg_util, _tg_spec\n")


def prelude_statement(path: Path, settings: dict[str, Any]) -> str:
    """Code that loads kernel_prelude.py and starts it with these settings, passed as JSON
    text, and leaves no name behind in the notebook's namespace."""
    return (load_statement(path, "_tg_prelude")
            + f"_tg_prelude.start(__import__('json').loads({json.dumps(settings)!r}))\n"
            "del _tg_prelude")


def answer_statement(request: dict[str, Any], folder: Path) -> str:
    """Code that has the kernel_probe module loaded after the notebook answer one request,
    passed as JSON text; the answer is left in `folder` (kernel_probe.answer)."""
    return f"_tg_kernel.answer({json.dumps(request)!r}, {str(folder)!r}, globals())"


class CappedClient(NotebookClient):
    """nbclient, with the outputs it keeps capped: a notebook that prints a gigabyte keeps the
    first `output_limit` bytes and a note, and the agent's memory stays bounded."""

    def __init__(self, nb: Any, output_limit: int, **kwargs: Any) -> None:
        super().__init__(nb, **kwargs)
        self.output_limit = output_limit
        self.output_bytes = 0
        self.truncated = False
        self.timed_out = False

    async def _async_handle_timeout(self, timeout: int, cell: Any = None) -> Any:
        self.timed_out = True
        return await super()._async_handle_timeout(timeout, cell)

    def process_message(self, msg: dict, cell: Any, cell_index: int) -> Any:
        """Count every message that leaves something in the notebook or in nbclient's memory
        (streams, displays and their updates, results, errors, widget messages) against the
        cap; past it, such messages are dropped and the cell says so once. Status messages
        still pass, so the cell still ends."""
        if msg.get("msg_type") in KEPT_MESSAGES:
            self.output_bytes += message_size(msg)
            if self.output_bytes > self.output_limit:
                if not self.truncated:
                    self.truncated = True
                    cell.outputs.append(nbformat.v4.new_output(
                        "stream", name="stderr",
                        text=f"\n[output truncated: over {self.output_limit} bytes]\n"))
                return None
        return super().process_message(msg, cell, cell_index)


#: Kernel messages whose content nbclient keeps (in the notebook or as widget state).
KEPT_MESSAGES = frozenset({"stream", "display_data", "update_display_data", "execute_result",
                           "error", "comm_open", "comm_msg", "comm_close"})


def message_size(msg: dict) -> int:
    """What a message would cost to keep: its content as JSON and its binary buffers."""
    size = len(json.dumps(msg.get("content", {}), default=str))
    return size + sum(len(memoryview(b)) for b in msg.get("buffers") or [])


class Agent:
    def __init__(self, channel: Any, config: dict[str, Any]) -> None:
        self.channel = channel
        self.config = config
        self.client: CappedClient | None = None
        self.alive = False
        self.death: str | None = None

    def reply(self, message: dict[str, Any]) -> None:
        self.channel.write(protocol.encode(message))
        self.channel.flush()

    # ------------------------------------------------------------------ execution

    def execute(self) -> dict[str, Any]:
        cfg = self.config
        nb = nbformat.read(WORK / cfg["notebook"], as_version=4)
        self.client = CappedClient(
            nb, output_limit=cfg["output_limit"], timeout=cfg["cell_timeout"],
            kernel_name="python3", allow_errors=True, interrupt_on_timeout=True,
            error_on_timeout={"ename": "CellTimeoutError",
                              "evalue": f"cell ran over {cfg['cell_timeout']} s",
                              "traceback": []},
            resources={"metadata": {"path": str(WORK)}}, record_timing=True,
            startup_timeout=120, shutdown_kernel="immediate")
        if FORK_KERNEL:
            from jupyter_client.provisioning import local_provisioner

            local_provisioner.launch_kernel = kernel_fork.fork_kernel
        deadline = time.monotonic() + cfg["notebook_timeout"]
        cells: list[dict[str, Any]] = []
        source = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
        with self.client.setup_kernel(env=self.kernel_env()):
            self.alive = True
            settings = {"seed": int(cfg["seed"]), "uses_torch": "torch" in source,
                        "cpu_fallback": bool(cfg.get("cpu_fallback")),
                        "torch_threads": cfg.get("torch_threads"),
                        "output_limit": int(cfg["output_limit"])}
            prelude = self.run_silently(
                prelude_statement(AGENT_DIR / "kernel_prelude.py", settings),
                user_expressions={"threads": "sorted(__import__('sys')._current_frames())"})
            own_threads = expression_value(prelude, "threads")
            for index, cell in enumerate(nb.cells):
                if cell.cell_type != "code":
                    continue
                cells.append(self.execute_cell(cell, index, deadline))
            if self.alive:
                self.stop_leftovers(own_threads)
            nb_json = nbformat.writes(nb)
            summary = {"event": "executed", "cells": cells, "notebook": nb_json,
                       "output_truncated": self.client.truncated, "kernel_alive": self.alive}
            self.reply(summary)
            if self.alive:
                self.serve()
        return summary

    def kernel_env(self) -> dict[str, str]:
        return {k: v for k, v in os.environ.items()}

    def execute_cell(self, cell: Any, index: int, deadline: float) -> dict[str, Any]:
        record: dict[str, Any] = {"index": index, "seconds": 0.0, "error": None,
                                  "timed_out": False, "skipped": None}
        remaining = deadline - time.monotonic()
        if not self.alive:
            record["skipped"] = self.death or "the kernel died in an earlier cell"
            return record
        if remaining <= 0:
            record["skipped"] = "the notebook ran over its time limit"
            return record
        assert self.client is not None
        self.client.timeout = max(1, int(min(self.config["cell_timeout"], remaining)))
        self.client.timed_out = False
        original = cell.source
        cell.source = without_leading_indent(original)
        start = time.perf_counter()
        try:
            self.client.execute_cell(cell, index)
        except DeadKernelError as exc:
            self.alive = False
            record["error"] = f"DeadKernelError: {exc}"[:2000]
        finally:
            cell.source = original
        record["seconds"] = round(time.perf_counter() - start, 4)
        if self.config.get("cuda_sync") and self.alive and not self.client.timed_out:
            self.run_silently(CUDA_SYNC, timeout=60)
            record["synced_seconds"] = round(time.perf_counter() - start, 4)
        errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
        if errors and record["error"] is None:
            record["error"] = f"{errors[0].get('ename')}: {errors[0].get('evalue')}"[:2000]
        if self.client.timed_out:
            record["timed_out"] = True
            record["error"] = f"CellTimeoutError: ran over {self.client.timeout} s"
            self.check_responsive()
        return record

    def check_responsive(self) -> None:
        """After a timeout the kernel was interrupted; a kernel that ignores the interrupt
        would make every later cell and question wait, so it counts as gone."""
        try:
            self.run_silently("pass", timeout=10)
        except TimeoutError:
            self.alive = False
            self.death = "the kernel did not stop after a cell ran over its time limit"

    def stop_leftovers(self, own_threads: list[int]) -> None:
        """The notebook has ended: nothing it started may work on while it is asked about.
        Every other process of the sandbox is killed (in an unsandboxed run, the kernel's
        descendants), and in the kernel the threads, timers and hooks the notebook left are
        stopped (kernel_probe.freeze)."""
        kernel = self.kernel_pid()
        if kernel is not None:
            kill_processes(kernel, everything_else=bool(self.config.get("sandboxed", True)))
        loaded = self.run_silently(load_statement(AGENT_DIR / "kernel_probe.py", "_tg_kernel"),
                                   timeout=60)
        if loaded.get("status") != "ok":
            self.alive = False
            self.death = "the kernel could not be asked questions after the notebook ended"
            return
        self.answer({"op": protocol.FREEZE.name, "own_threads": own_threads}, internal=True)

    def kernel_pid(self) -> int | None:
        km = self.client.km if self.client is not None else None
        pid = getattr(getattr(km, "provisioner", None), "pid", None)
        return pid if isinstance(pid, int) and pid > 1 else None

    def run_silently(self, code: str, timeout: float = 120,
                     user_expressions: dict[str, str] | None = None) -> dict[str, Any]:
        """Run code in the kernel without touching the notebook; return the execute reply."""
        assert self.client is not None and self.client.kc is not None
        kc = self.client.kc
        msg_id = kc.execute(code, silent=True, store_history=False,
                            user_expressions=user_expressions or {})
        end = time.monotonic() + timeout
        while True:
            remaining = end - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"the kernel gave no answer within {timeout:.0f} s")
            try:
                msg = run_sync(kc.get_shell_msg)(timeout=remaining)
            except queue.Empty:
                continue
            if msg["parent_header"].get("msg_id") == msg_id:
                return msg["content"]

    # ------------------------------------------------------------------ probes

    def serve(self) -> None:
        for line in sys.stdin.buffer:
            try:
                request = protocol.decode(line)
            except protocol.ProtocolError as exc:
                self.reply({"ok": False, "error": "ProtocolError", "message": str(exc)})
                continue
            if request.get("op") == protocol.CLOSE.name:
                self.end()
                return  # the kernel's process group was not known: nbclient shuts it down
            self.reply(self.answer(request))

    def end(self) -> None:
        """The judge has asked its last question: kill the kernel's process group and exit at
        once. A polite kernel shutdown, jupyter_client's polling for it and the interpreter's
        own teardown cost about a second per notebook, and the grader kills whatever is left
        of the run anyway."""
        km = self.client.km if self.client is not None else None
        pgid = getattr(getattr(km, "provisioner", None), "pgid", None)
        if not isinstance(pgid, int) or pgid <= 1 or not hasattr(os, "killpg"):
            return  # (Windows has no process groups: nbclient shuts the kernel down)
        with contextlib.suppress(OSError):
            os.killpg(pgid, signal.SIGKILL)
        sys.stderr.flush()
        os._exit(0)

    def answer(self, request: dict[str, Any], internal: bool = False) -> dict[str, Any]:
        """The reply to one request, dispatched by protocol.OPERATIONS: the agent answers
        what it can see itself, the kernel (kernel_probe) everything else. A request the
        table does not allow is refused there, before anything runs."""
        try:
            op = protocol.operation(request.get("op"), internal)
            protocol.check_request(op, request)
        except protocol.ProtocolError as exc:
            return {"ok": False, "error": "ProtocolError", "message": str(exc)}
        if op is protocol.FILE:
            return kernel_probe.read_file(str(WORK), str(request.get("name", "")), int(
                request.get("max_bytes", protocol.MAX_ARRAY_BYTES)))
        if op is protocol.FILES:
            return {"ok": True, "files": kernel_probe.list_files(
                str(WORK), set(self.config["data_roots"]))}
        if not op.kernel:
            return {"ok": False, "error": "ProtocolError", "message": f"{op.name} is not asked"}
        return self.ask_kernel(op, request)

    def ask_kernel(self, op: protocol.Operation, request: dict[str, Any]) -> dict[str, Any]:
        """Have kernel_probe answer a request: its arrays as .npy files in a fresh folder,
        the answer's arrays read back from the files it names."""
        shutil.rmtree(PROBE_DIR, ignore_errors=True)
        PROBE_DIR.mkdir(parents=True)
        request = kernel_probe.stage(request, str(PROBE_DIR))
        try:
            content = self.run_silently(answer_statement(request, PROBE_DIR),
                                        timeout=float(request.get("timeout", op.timeout)))
        except TimeoutError as exc:
            return {"ok": False, "error": "TimeoutError", "message": str(exc)}
        if content.get("status") != "ok":
            return {"ok": False, "error": content.get("ename", "Error"),
                    "message": str(content.get("evalue", ""))[:2000]}
        return {"ok": True, **kernel_probe.answered(str(PROBE_DIR))}


def expression_value(reply: dict[str, Any], name: str) -> list[int]:
    """A list of numbers a silent execution's user expression evaluated to, or []."""
    import ast

    found = (reply.get("user_expressions") or {}).get(name) or {}
    try:
        value = ast.literal_eval(found.get("data", {}).get("text/plain", "[]"))
    except (ValueError, SyntaxError):
        return []
    return [int(v) for v in value] if isinstance(value, list) else []


def kill_processes(kernel: int, everything_else: bool) -> None:
    """SIGKILL what the notebook started: inside a sandbox (its own pid namespace) every
    process but its first two (bubblewrap's and the program it runs), this agent and the
    kernel; without one, the kernel's descendants. Repeated until none is left, as a process
    may fork while its siblings are killed."""
    import psutil

    keep = {1, 2, os.getpid(), kernel}
    for _ in range(100):
        victims: list[psutil.Process] = []
        if everything_else:
            victims = [p for p in psutil.process_iter() if p.pid not in keep]
        else:
            with contextlib.suppress(psutil.Error):
                victims = psutil.Process(kernel).children(recursive=True)
        if not victims:
            return
        for victim in victims:
            with contextlib.suppress(psutil.Error):
                victim.kill()
        time.sleep(0.01)


def without_leading_indent(source: str) -> str:
    """A cell whose first line starts with a space ran in the course's Jupyter, which strips
    that indentation from every line that has it; do the same."""
    first = source.split("\n", 1)[0]
    indent = first[: len(first) - len(first.lstrip(" \t"))]
    if not indent:
        return source
    return "\n".join(line[len(indent):] if line.startswith(indent) else line
                     for line in source.split("\n"))


def copy_submission(source: Path, target: Path) -> None:
    """Copy the handed-in files into the writable work folder, beside the data mounts."""
    for item in source.iterdir():
        destination = target / item.name
        if destination.exists():
            continue  # a data mount such as ./mnist wins over a handed-in folder of that name
        if item.is_dir() and not item.is_symlink():
            shutil.copytree(item, destination, symlinks=True)
        else:
            shutil.copy2(item, destination, follow_symlinks=False)


def copy_fonts(folder: str | None) -> None:
    """The grader's prebuilt matplotlib font list, into this home's matplotlib cache, so the
    first pyplot import does not scan every font again. The cache is MPLCONFIGDIR when the
    run names one (unsandboxed: matplotlib keeps it in ~/.matplotlib on macOS and Windows,
    and Windows' home is not $HOME), else ~/.cache/matplotlib as matplotlib has it on Linux."""
    if not folder:
        return
    named = os.environ.get("MPLCONFIGDIR")
    cache = Path(named) if named else Path.home() / ".cache" / "matplotlib"
    cache.mkdir(parents=True, exist_ok=True)
    for found in Path(folder).glob("fontlist-*.json"):
        shutil.copyfile(found, cache / found.name)


def non_dumpable() -> bool:
    """Make this process non-dumpable (Linux's prctl), so the student's processes, the same
    user, can neither ptrace it nor open its descriptors through /proc. Whether it is."""
    import ctypes

    try:
        return ctypes.CDLL(None, use_errno=True).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == 0
    except (AttributeError, OSError, TypeError):
        return False


def channel(fd: int) -> int:
    """The descriptor to answer on, kept from every process the agent starts. A run without
    a sandbox answers on stdout: it is copied to a private descriptor and stdout becomes the
    null device, before the kernel exists, so nothing the notebook prints or starts can
    write on the channel."""
    if fd == STDOUT_CHANNEL:
        sys.stdout.flush()
        fd = os.dup(STDOUT_CHANNEL)  # not inheritable
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, STDOUT_CHANNEL)
        os.close(devnull)
    os.set_inheritable(fd, False)
    return fd


def main() -> int:
    global WORK, AGENT_DIR, PROBE_DIR
    WORK = Path.cwd()
    AGENT_DIR = Path(sys.argv[0]).parent
    config = protocol.decode(sys.stdin.buffer.readline())
    # a sandbox (Linux) must hold the channel privately; without one the student's code
    # runs as the user who started the check, and there is nothing to keep from it
    if config.get("sandboxed", True) and not non_dumpable():
        return 70
    fd = channel(int(config["channel_fd"]))
    if config.get("probe_dir"):
        PROBE_DIR = Path(config["probe_dir"])
    agent = Agent(os.fdopen(fd, "wb", buffering=0), config)
    try:
        copy_submission(Path(agent.config["submission"]), WORK)
        copy_fonts(agent.config.get("matplotlib_fonts"))
        agent.execute()
    except Exception as exc:  # the grader records it; the traceback helps a TA
        agent.reply({"event": "failed", "error": f"{type(exc).__name__}: {exc}"[:2000],
                     "traceback": traceback.format_exc()[-4000:]})
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
