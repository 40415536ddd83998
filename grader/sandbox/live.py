"""A student's own kernel as the `student` a rubric asks: `torchgrade.check("W4")`.

The TA's grading asks a notebook questions across the sandbox's channel (session.py to
agent.py to kernel_probe.py in the kernel). A student checking their work in Jupyter, JupyterLab,
VS Code or Colab asks the kernel they are working in: their own code, on their own machine, so
there is nothing to keep it from and no sandbox. What must stay the same is everything a rubric
can tell apart, so `Live` is a `ProbeClient` (the same question methods, requests built and
answers checked by `protocol.OPERATIONS`, the same `ProbeError` kinds) whose channel answers in
this process the way the agent does: the arrays staged as `.npy` files, `kernel_probe.answer`
run on the kernel's namespace, the answer read back and checked. Only the kernel differs.

The rubric also reads the notebook's text (the cells' sources, the markdown derivations). A
kernel does not know its notebook, so `find_notebook` looks where each front end leaves it
(`notebook=`, Jupyter Server's `JPY_SESSION_NAME`, VS Code's `__vsc_ipynb_file__`, Colab's
frontend), then in the working folder, and at last rebuilds the code cells from IPython's input
history; `record` turns what was found into the `RunRecord` a rubric reads.

This module runs the student's code (in the student's own kernel), so it lives here, under the
trust boundary's package, and, like the rest of the sandbox's trusted side, imports nothing of
the judge.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import numpy as np

from grader.errors import GraderError
from grader.i18n import N_, say
from grader.results import Outcome, RunRecord
from grader.sandbox import kernel_probe, protocol
from grader.sandbox.bwrap import DATA_ROOTS
from grader.sandbox.config import SandboxConfig
from grader.sandbox.probes import ProbeClient, ProbeError

#: The first note of a live run's record, as `limits.NOT_SANDBOXED` is a local run's.
IN_THIS_KERNEL = N_("checked in this kernel, on this machine: nothing is sandboxed or limited")
#: How `Live.reply` says a request the table refuses (the agent's words for it).
REFUSED = "ProtocolError"


class LiveError(GraderError):
    """The check cannot start: its message says what the student can do about it."""


class Live(ProbeClient):
    """The kernel's namespace as the rubric's `student`: every question of the Session's, the
    same arrays and answers, the same checks. `folder` is where the notebook's relative paths
    lead (the kernel's working folder): the files it saved are listed and read there."""

    def __init__(self, namespace: dict[str, Any], record: RunRecord,
                 folder: Path | None = None) -> None:
        self.config = SandboxConfig(sandboxed=False)
        self.record = record
        self.deadline = float("inf")  # the student interrupts their own kernel
        self.namespace = namespace
        self.folder = (folder or Path.cwd()).resolve()
        self._answer: bytes | None = None

    def __repr__(self) -> str:
        return f"Live({self.folder})"

    # ------------------------------------------------------------------ the channel

    def _connected(self) -> bool:
        return True

    def _send(self, message: dict[str, Any]) -> None:
        self._answer = protocol.encode(self.reply(message))

    def _receive(self, deadline: float) -> dict[str, Any]:
        """The answer as it would arrive from the agent: through JSON, its text made valid."""
        line, self._answer = self._answer, None
        if line is None:
            raise ProbeError("nothing was asked", "closed")
        try:
            return protocol.decode(line)
        except protocol.ProtocolError as exc:
            raise ProbeError(f"malformed answer: {exc}", "malformed") from None

    def _kill(self) -> None:
        """Nothing to end: the kernel is the student's, and stays theirs."""

    # ------------------------------------------------------------------ the answers

    def reply(self, request: dict[str, Any]) -> dict[str, Any]:
        """The reply to one request, as agent.Agent.answer makes it: refused by the table, a
        file of the working folder, or the kernel's answer (`kernel_probe.answer`)."""
        try:
            op = protocol.operation(request.get("op"))
            protocol.check_request(op, request)
        except protocol.ProtocolError as exc:
            return {"ok": False, "error": REFUSED, "message": str(exc)}
        if op is protocol.FILE:
            return kernel_probe.read_file(str(self.folder), str(request.get("name", "")), int(
                request.get("max_bytes", protocol.MAX_ARRAY_BYTES)))
        if op is protocol.FILES:
            return {"ok": True, "files": kernel_probe.list_files(str(self.folder),
                                                                 set(DATA_ROOTS))}
        if not op.kernel:
            return {"ok": False, "error": REFUSED, "message": f"{op.name} is not asked"}
        return self._ask_kernel(request)

    def _ask_kernel(self, request: dict[str, Any]) -> dict[str, Any]:
        """kernel_probe's answer on the namespace, in this process. An exception is reported
        as the kernel reports one to the agent (its class name and text), so the rubric's
        feedback reads the same. It runs in the working folder, as the sandbox's kernel runs
        in its own: a saved model's relative path leads to the same file."""
        with tempfile.TemporaryDirectory(prefix="torchgrade-live-") as folder, \
                contextlib.chdir(self.folder):
            staged = kernel_probe.stage(request, folder)
            try:
                kernel_probe.answer(json.dumps(staged), folder, self.namespace)
            except Exception as exc:  # noqa: BLE001 - the student's error, as an answer
                return {"ok": False, "error": type(exc).__name__,
                        "message": str(exc)[:2000]}
            return {"ok": True, **kernel_probe.answered(folder)}

    def environment(self, timeout: float = protocol.ENV.timeout) -> dict[str, Any]:
        """The torch the notebook imported and the GPU it can use: on the student's own
        machine the kernel's word is the only one there is."""
        version = self._question(protocol.ENV, (), timeout)[0].get("torch")
        torch = sys.modules.get("torch") if isinstance(version, str) else None
        cuda = bool(torch is not None and torch.cuda.is_available())
        return {"torch": version[:40] if isinstance(version, str) else None, "cuda": cuda,
                "gpu": str(torch.cuda.get_device_name(0))[:100] if cuda and torch else None}


@contextlib.contextmanager
def kept_random_state() -> Iterator[None]:
    """The random generators of Python, numpy and torch put back as they were once the
    questions are over, so a check changes nothing the notebook draws next. Around all of
    them, never each one: between questions the generators move on as they do in the
    sandbox (a rubric asks for two epochs and expects two different permutations)."""
    python, numpy = random.getstate(), np.random.get_state()
    torch = sys.modules.get("torch")
    forked: Any = contextlib.nullcontext()
    if torch is not None:
        cuda = torch.cuda.is_initialized()
        forked = torch.random.fork_rng(devices=range(torch.cuda.device_count()) if cuda else [])
    try:
        with forked:
            yield
    finally:
        random.setstate(python)
        np.random.set_state(numpy)


# ------------------------------------------------------------------ the notebook's text

#: The most bytes of a notebook read (as intake's limit for a handed-in one).
MAX_NOTEBOOK_BYTES = 64 << 20


@dataclass(frozen=True)
class Source:
    """The notebook a check reads: its file name (what intake matches by), its JSON text,
    where it is (a path, or "" when it has no file) and how it was found, in words, and
    whether it was rebuilt from the input history (code only: no markdown)."""

    name: str
    text: str
    path: str
    how: str
    from_history: bool = False


def find_notebook(namespace: Mapping[str, Any], notebook: str | os.PathLike[str] | None = None,
                  *, env: Mapping[str, str] | None = None, cwd: Path | None = None,
                  history: Sequence[str] | None = None) -> Source:
    """The notebook this kernel runs, looked for in order: the path given; the path Jupyter
    Server gives the kernel (`JPY_SESSION_NAME`, also ipykernel's `__session__`); VS Code's
    `__vsc_ipynb_file__`; Colab's frontend; the only notebook in the working folder, or the one
    whose code best matches the input history; else the code cells rebuilt from that history.
    A LiveError when there is nothing to read."""
    env = os.environ if env is None else env
    cwd = cwd or Path.cwd()
    history = input_history(namespace) if history is None else list(history)
    if notebook is not None:
        return _given(Path(notebook).expanduser(), cwd)
    for path, found in _named(namespace, env, cwd):
        if path.is_file():
            return _read(path, found)
    colab = _from_colab()
    if colab is not None:
        return colab
    here = sorted(p for p in cwd.glob("*.ipynb") if p.is_file())
    best = here[0] if len(here) == 1 else closest(here, history)
    if best is not None:
        how = N_("the only notebook in its folder") if len(here) == 1 else \
            N_("of the notebooks in its folder, the one that holds what this kernel ran")
        return _read(best, how)
    if any(code.strip() for code in history):
        return from_history(history)
    raise LiveError(say(N_("torchgrade could not find your notebook: save it, then pass its "
                           'path, as in check("W4", notebook="W4_Homework.ipynb")')))


def _given(path: Path, cwd: Path) -> Source:
    path = path if path.is_absolute() else cwd / path
    if not path.is_file():
        raise LiveError(say(N_("there is no notebook at {path}: check the path given as "
                               "notebook="), path=str(path)))
    return _read(path, N_("the notebook given"))


def _named(namespace: Mapping[str, Any], env: Mapping[str, str],
           cwd: Path) -> Iterator[tuple[Path, str]]:
    """The paths the front ends name, each with where it came from, in the order trusted."""
    named = [(env.get("JPY_SESSION_NAME"), N_("the notebook Jupyter names")),
             (namespace.get("__session__"), N_("the notebook Jupyter names")),
             (namespace.get("__vsc_ipynb_file__"), N_("the notebook VS Code names"))]
    for value, found in named:
        if not isinstance(value, str) or not value.lower().endswith(".ipynb"):
            continue
        path = Path(value).expanduser()
        yield (path if path.is_absolute() else cwd / path), found
        yield cwd / path.name, found  # an API path, relative to the server's root


def _read(path: Path, found: str) -> Source:
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_NOTEBOOK_BYTES + 1)
    except OSError:
        raise LiveError(say(N_("{path} could not be read: is it open elsewhere?"),
                            path=str(path))) from None
    if len(data) > MAX_NOTEBOOK_BYTES:
        raise LiveError(say(N_("{name} is over {size} MB: clear its outputs"), name=path.name,
                            size=MAX_NOTEBOOK_BYTES >> 20))
    return Source(path.name, data.decode("utf-8", "replace"), str(path), found)


def _from_colab() -> Source | None:
    """The notebook as Colab's frontend holds it, in a Colab kernel (its file is not on the
    kernel's disk); None anywhere else or when the frontend does not answer."""
    if "google.colab" not in sys.modules:
        return None
    with contextlib.suppress(Exception):
        from google.colab import _message  # type: ignore[import-not-found]

        reply = _message.blocking_request("get_ipynb", request="", timeout_sec=30)
        if isinstance(reply, dict) and isinstance(reply.get("ipynb"), dict):
            return Source("colab.ipynb", json.dumps(reply["ipynb"]), "",
                          N_("the notebook Colab holds"))
    return None


def input_history(namespace: Mapping[str, Any]) -> list[str]:
    """The cells this kernel ran, in order, as typed (IPython's raw input history), or as
    IPython stored them (`In`); none outside IPython."""
    shell = None
    with contextlib.suppress(Exception):
        shell = namespace["get_ipython"]()
    raw = getattr(getattr(shell, "history_manager", None), "input_hist_raw", None)
    found = raw if isinstance(raw, list) else namespace.get("In")
    return [str(code) for code in found] if isinstance(found, list) else []


def lines_of(code: Sequence[str]) -> set[str]:
    return {line.strip() for text in code for line in text.splitlines() if line.strip()}


def closest(paths: Sequence[Path], history: Sequence[str]) -> Path | None:
    """The notebook whose code lines the input history holds the largest share of (None
    when it holds none of any): the one this kernel has been running."""
    ran = lines_of(history)
    best, share = None, 0.0
    for path in paths:
        with contextlib.suppress(Exception):
            nb = nbformat.read(path, as_version=4)
            mine = lines_of([c.source for c in nb.cells if c.cell_type == "code"])
            found = len(mine & ran) / len(mine) if mine else 0.0
            if found > share:
                best, share = path, found
    return best


def from_history(history: Sequence[str]) -> Source:
    """A notebook of the code this kernel ran, each text once, where it last ran: what is
    left when no notebook file can be found (no markdown: derivations cannot be read)."""
    texts = [code for code in history if code.strip()]
    kept = [code for i, code in enumerate(texts) if code not in texts[i + 1:]]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in kept])
    return Source("notebook.ipynb", nbformat.writes(nb), "", N_("no notebook file was found"),
                  from_history=True)


#: What a student reads when the notebook calls `.cuda()` in a kernel without a GPU.
NO_GPU = N_("this kernel has no GPU, so the notebook's .cuda() calls fail here (the TA's "
            "grader without a GPU runs them on the CPU): move models and tensors with "
            ".to(device), device = 'cuda' if torch.cuda.is_available() else 'cpu'")


def record(notebook: str, notes: Sequence[str] = ()) -> RunRecord:
    """The run as a rubric reads it: the notebook's text (code and markdown cells), completed
    (the student ran it), and no timings (the grader did not see it run)."""
    torch = sys.modules.get("torch")
    no_gpu = ".cuda(" in notebook and torch is not None and not torch.cuda.is_available()
    return RunRecord(Outcome.COMPLETED, notebook=notebook, sandboxed=False,
                     notes=[IN_THIS_KERNEL, *notes, *([NO_GPU] if no_gpu else [])])


def namespace_of_kernel() -> dict[str, Any]:
    """The namespace a notebook's cells run in: IPython's `user_ns` in a kernel (Jupyter,
    JupyterLab, VS Code, Colab), else `__main__`'s globals (a script)."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is not None and isinstance(getattr(shell, "user_ns", None), dict):
        return shell.user_ns
    return vars(sys.modules["__main__"])
