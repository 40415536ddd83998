"""What the student's kernel runs before the notebook's first cell: runs inside the kernel.

The agent loads this file as a module of its own in the kernel (never into the notebook's
namespace, so no name here can clash with a student's) and calls `start()` with its settings
as data. It gives every notebook fair, repeatable seeds (a notebook's own seeds still win), a
cap on what print() can send, and, when the grader asks for it, the course-era fallback that
lets `.cuda()` run on a machine without a GPU. It imports only the standard library; numpy and
torch only when there, and torch only when the notebook uses it.
"""

from __future__ import annotations

import random
import sys
from typing import Any, TextIO

TRUNCATED = "\n[output truncated]\n"


class Capped:
    """A stream that keeps the first `limit` characters it is given and drops the rest,
    saying so once: a notebook that prints for ever must not fill the agent's memory."""

    def __init__(self, stream: TextIO, limit: int) -> None:
        self._stream, self._left, self._noted = stream, limit, False

    def write(self, text: Any) -> int:
        text = str(text)
        if self._left > 0:
            self._stream.write(text[: self._left])
        elif not self._noted:
            self._noted = True
            self._stream.write(TRUNCATED)
        self._left -= len(text)
        return len(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def start(settings: dict[str, Any]) -> None:
    """Everything the kernel needs before the first cell. `settings`: `output_limit`
    (characters per stream), `seed`, `uses_torch` (the notebook names torch, so seeding it
    is worth importing it), `cpu_fallback` and `torch_threads` (how many threads torch may
    use, when the grader runs notebooks side by side; the notebook's own setting still wins)."""
    limit = int(settings["output_limit"])
    sys.stdout = Capped(sys.stdout, limit)  # type: ignore[assignment]
    sys.stderr = Capped(sys.stderr, limit)  # type: ignore[assignment]
    seed_all(int(settings["seed"]), bool(settings["uses_torch"]))
    if settings["uses_torch"] and settings.get("torch_threads"):
        import torch

        torch.set_num_threads(int(settings["torch_threads"]))
    if settings["uses_torch"] and settings.get("cpu_fallback"):
        cpu_fallback()


def seed_all(seed: int, uses_torch: bool) -> None:
    """The same seed for Python's, numpy's and (when the notebook uses it) torch's random
    numbers, so two runs of one notebook draw the same numbers."""
    random.seed(seed)
    try:
        import numpy
    except ImportError:
        pass
    else:
        numpy.random.seed(seed)
    if uses_torch:
        import torch

        torch.manual_seed(seed)


def cpu_fallback() -> bool:
    """On a machine without a usable GPU, make the course's `.cuda()` calls and the CUDA
    housekeeping around them harmless, so a notebook written for a GPU runs on the CPU.
    Whether it did."""
    import torch

    if torch.cuda.is_available():
        return False
    torch.Tensor.cuda = _same  # type: ignore[method-assign,assignment]
    torch.nn.Module.cuda = _same  # type: ignore[method-assign,assignment]
    torch.cuda.set_per_process_memory_fraction = _nothing  # type: ignore[assignment]
    torch.cuda.synchronize = _nothing  # type: ignore[assignment]
    torch.cuda.empty_cache = _nothing  # type: ignore[assignment]
    return True


def _same(self: Any, *args: Any, **kwargs: Any) -> Any:
    return self


def _nothing(*args: Any, **kwargs: Any) -> None:
    return None

