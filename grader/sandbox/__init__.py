"""Untrusted execution. The only package of torchgrade that runs a student's code.

    Sandbox(SandboxConfig(...)).open(folder, notebook) -> Session       (session.py)
    Session.execute() -> grader.results.RunRecord
    Session.call/modules/forward/load_and_forward/... -> answers      (probes.py)

The requests both sides know are the table in protocol.py; what runs in the sandbox is
agent.py, with kernel_fork.py, and in the student's kernel kernel_prelude.py and
kernel_probe.py.
"""

from grader.sandbox.config import SandboxConfig
from grader.sandbox.limits import ResourceLimits
from grader.sandbox.probes import ProbeError
from grader.sandbox.session import Sandbox, SandboxError, Session

__all__ = [
    "ProbeError",
    "ResourceLimits",
    "Sandbox",
    "SandboxConfig",
    "SandboxError",
    "Session",
]
