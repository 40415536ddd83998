"""Untrusted execution. The only package of torchgrade that runs a student's code.

    Sandbox(SandboxConfig(...)).open(folder, notebook) -> Session
    Session.execute() -> RunRecord; Session.call/modules/forward/load_and_forward/... -> answers
"""

from grader.sandbox.limits import ResourceLimits
from grader.sandbox.session import (
    CellRecord,
    ProbeError,
    RunRecord,
    Sandbox,
    SandboxConfig,
    SandboxError,
    Session,
)

__all__ = [
    "CellRecord",
    "ProbeError",
    "ResourceLimits",
    "RunRecord",
    "Sandbox",
    "SandboxConfig",
    "SandboxError",
    "Session",
]
