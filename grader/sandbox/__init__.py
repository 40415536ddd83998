"""Untrusted execution. The only package of torchgrade that runs a student's code.

    Sandbox(SandboxConfig(...)).open(folder, notebook) -> Session
    Session.execute() -> grader.results.RunRecord
    Session.call/modules/forward/load_and_forward/... -> answers
"""

from grader.sandbox.limits import ResourceLimits
from grader.sandbox.session import (
    ProbeError,
    Sandbox,
    SandboxConfig,
    SandboxError,
    Session,
)

__all__ = [
    "ProbeError",
    "ResourceLimits",
    "Sandbox",
    "SandboxConfig",
    "SandboxError",
    "Session",
]
