"""How a sandboxed run is set up: what the launcher (session.py) builds and the probe client
(probes.py) bounds its questions by."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from grader.sandbox import limits


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
    #: Threads torch may use in the kernel; None leaves torch's default (every core). Runs
    #: side by side (`--jobs N`) share the cores, so each gets its part instead of all of them
    #: spinning against each other.
    torch_threads: int | None = None
    #: Seconds for every question asked after the notebook ended, all together (default:
    #: half the notebook's limit, from 30 s to 10 min): one deadline, start-up grace +
    #: notebook_seconds + these, bounds a submission's whole grading.
    probe_seconds: int | None = None

    @property
    def question_seconds(self) -> int:
        if self.probe_seconds is not None:
            return self.probe_seconds
        return min(600, max(30, self.notebook_seconds // 2))
