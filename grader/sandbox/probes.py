"""The questions the trusted grader asks a notebook's live kernel once the notebook has ended.

    answer = session.call("gradients", X, Y, W1, b1, W2, b2)   # arrays in, arrays out
    logits = session.forward("model", images)

Every request is built from protocol.OPERATIONS (so a question the table does not allow is a
ProtocolError here, before anything is sent), and every answer is checked against the same
table before anyone uses it: a malformed, raising or late answer is a ProbeError with a
`kind`, recorded for that submission only. `ProbeClient` is what Session (session.py) answers
questions with; it only needs the session's channel and deadline.
"""

from __future__ import annotations

import base64
import contextlib
import shutil
import subprocess
import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from grader.errors import GraderError
from grader.results import RunRecord
from grader.sandbox import protocol
from grader.sandbox.config import SandboxConfig

#: How many seconds past a question's own limit its answer may still arrive (the agent's
#: limit is the same; this is the pipe's slack).
ANSWER_SLACK_S = 5


class ProbeError(GraderError):
    """A question to the sandbox got no valid answer: the student's code raised, timed out,
    or answered something malformed. Recorded for that submission only."""

    def __init__(self, message: str, kind: str = "error") -> None:
        super().__init__(message)
        self.kind = kind


class ProbeClient:
    """The question methods of a Session. The session provides its configuration, its
    record (None until the notebook has run), its deadline, and the channel: `_connected`,
    `_send`, `_receive` and `_kill`."""

    config: SandboxConfig
    record: RunRecord | None
    deadline: float

    # ------------------------------------------------------------------ the channel

    def _connected(self) -> bool:
        """Whether the agent is still there to ask."""
        raise NotImplementedError

    def _send(self, message: dict[str, Any]) -> None:
        raise NotImplementedError

    def _receive(self, deadline: float) -> dict[str, Any]:
        """The agent's next message, decoded; TimeoutError at `deadline`, a ProbeError for a
        malformed message or a closed channel."""
        raise NotImplementedError

    def _kill(self) -> None:
        """End the run at once (a question ran out of time: the kernel may be stuck)."""
        raise NotImplementedError

    # ------------------------------------------------------------------ questions

    def call(self, name: str, *arrays: Any, torch: bool = True, no_grad: bool = False,
             timeout: float = protocol.CALL.timeout) -> list[np.ndarray]:
        """Call the notebook's function `name` with these arrays (as torch tensors unless
        torch=False, under torch.no_grad() if no_grad; a 0-d array arrives as a Python number);
        return what it returned, as arrays."""
        return self._question(protocol.CALL, arrays, timeout, name=name, torch=torch,
                              no_grad=no_grad)[1]

    def value(self, name: str, timeout: float = protocol.VALUE.timeout) -> np.ndarray:
        """A variable of the notebook (a tensor, an array or a number), as an array."""
        return self._question(protocol.VALUE, (), timeout, name=name)[1][0]

    def modules(self, shape: tuple[int, ...] = (2, 1, 28, 28),
                timeout: float = protocol.MODULES.timeout) -> list[dict[str, Any]]:
        """Every nn.Module in the notebook's namespace, with its output shape on a random
        input of `shape` (or the error it raised), the layer types it contains (`layers`) and
        those its forward pass actually ran (`used_layers`)."""
        found = self._question(protocol.MODULES, (), timeout, shape=list(shape))[0]["modules"]
        if not all(isinstance(m, dict) for m in found):
            raise ProbeError("malformed module list", "malformed")
        return found

    def forward(self, name: str, x: np.ndarray | protocol.Packed,
                timeout: float = protocol.FORWARD.timeout) -> np.ndarray:
        """Run the module `name` in eval mode on a batch; its outputs as one array."""
        return self._question(protocol.FORWARD, (x,), timeout, name=name)[1][0]

    def load_and_forward(self, file: str, x: np.ndarray | protocol.Packed,
                         timeout: float = protocol.LOAD.timeout) -> np.ndarray:
        """Unpickle a whole saved model from the work folder (inside the sandbox: the pickle
        may run code) and run it on a batch."""
        return self._question(protocol.LOAD, (x,), timeout, file=file)[1][0]

    def environment(self, timeout: float = protocol.ENV.timeout) -> dict[str, Any]:
        """Where this run ran, as the grader set it up: the GPU it was given (by name, from
        nvidia-smi outside the sandbox) or None for the CPU; and the torch version the
        notebook imported (None if it never did), the only thing here the kernel says."""
        version = self._question(protocol.ENV, (), timeout)[0].get("torch")
        gpu = gpu_name(self.config.gpus[0]) if self.config.gpus else None
        return {"torch": version[:40] if isinstance(version, str) else None,
                "cuda": bool(self.config.gpus), "gpu": gpu}

    def evaluate(self, expression: str, arrays: Mapping[str, Any], *, torch: bool = True,
                 timeout: float = protocol.EVALUATE.timeout) -> np.ndarray:
        """The value of `expression` (Python text the judge read from the notebook, never
        run outside the sandbox) with `arrays` bound to their names, evaluated in the kernel
        in a namespace of its own: numpy, math, torch (the arrays as float64 tensors unless
        torch=False), a few builtins, and nothing of the notebook's."""
        names = list(arrays)
        return self._question(protocol.EVALUATE, tuple(arrays[n] for n in names), timeout,
                              expression=expression, names=names, torch=torch)[1][0]

    def files(self, timeout: float = protocol.FILES.timeout) -> dict[str, int]:
        """The files the notebook left in its work folder, with their sizes."""
        listing = self._question(protocol.FILES, (), timeout)[0]["files"]
        if not all(isinstance(f, list) and len(f) == 2 and isinstance(f[1], int)
                   and not isinstance(f[1], bool) for f in listing):
            raise ProbeError("malformed file list", "malformed")
        return {str(name): int(size) for name, size in listing}

    def read_file(self, name: str, max_bytes: int = 16 << 20,
                  timeout: float = protocol.FILE.timeout) -> bytes:
        """The bytes of a file the notebook left in its work folder (at most max_bytes)."""
        data = self._question(protocol.FILE, (), timeout, name=name,
                              max_bytes=max_bytes)[0]["data"]
        if len(data) > (max_bytes * 4) // 3 + 8:
            raise ProbeError(f"malformed contents for {name}", "malformed")
        try:
            return base64.b64decode(data.encode("ascii"), validate=True)
        except (ValueError, UnicodeEncodeError):
            raise ProbeError(f"malformed contents for {name}", "malformed") from None

    def ask(self, op: str, *arrays: Any, timeout: float = 120,
            **fields: Any) -> tuple[dict[str, Any], list[np.ndarray]]:
        """Any question of protocol.OPERATIONS, for a judge that needs one without a method
        here: the answer's other fields and its arrays, the fields still to be checked. A
        question the table does not allow is a protocol.ProtocolError (the grader's mistake,
        not the student's)."""
        answer, outputs = self._question(protocol.operation(op), arrays, timeout, **fields)
        return {k: v for k, v in answer.items() if k not in ("ok", "outputs")}, outputs

    # ------------------------------------------------------------------ asking

    def _question(self, op: protocol.Operation, arrays: tuple[Any, ...], timeout: float,
                  **fields: Any) -> tuple[dict[str, Any], list[np.ndarray]]:
        """Ask `op` and check its answer against the table: the answer and its arrays."""
        request = protocol.request(op.name, arrays, **fields)
        answer = self._ask(request, timeout)
        try:
            return answer, protocol.check_answer(op, answer)
        except protocol.ProtocolError as exc:
            raise ProbeError(f"malformed answer: {exc}", "malformed") from None

    def _ask(self, request: dict[str, Any], timeout: float) -> dict[str, Any]:
        """Send one request within what is left of the submission's deadline; its answer,
        or a ProbeError."""
        if self.record is None:
            raise ProbeError("execute() the notebook before asking about it", "closed")
        if not self._connected():
            raise ProbeError("the sandbox has ended; nothing more can be asked", "closed")
        what = describe(request)
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
            answer = self._receive(min(time.monotonic() + timeout + ANSWER_SLACK_S,
                                       self.deadline))
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


def describe(request: dict[str, Any]) -> str:
    """The question in a TA's words, for the report: which one ran out of time."""
    op = protocol.OPERATIONS.get(str(request.get("op")))
    described = op.described if op is not None else str(request.get("op"))
    target = request.get("name") or request.get("file")
    return f"{described} `{target}`" if target else described


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
