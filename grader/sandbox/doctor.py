"""`grade doctor`: what a TA checks once on a grading server, each answer a line they can act on.

Whether bubblewrap is there, which host user the sandboxes run as (never root), whether the
seccomp filter compiles, and a real sandboxed run of a one-cell notebook that reports, from
inside, its capabilities, its seccomp mode and whether it can write a host sysctl.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import nbformat

from grader.sandbox import bwrap, seccomp, user
from grader.sandbox.session import Sandbox, SandboxConfig, SandboxError

#: Runs inside the sandbox: what the kernel can do, as the kernel sees it.
INSIDE = """
import json
status = dict(line.split(":", 1) for line in open("/proc/self/status"))
try:
    open("/proc/sys/fs/lease-break-time", "w").write("45")
    sysctl = "writable"
except OSError:
    sysctl = "read-only"
print(json.dumps({"cap_eff": int(status["CapEff"], 16), "seccomp": int(status["Seccomp"]),
                  "no_new_privs": int(status["NoNewPrivs"]), "sysctl": sysctl}))
"""


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def checks() -> list[Check]:
    """Every check, in the order a TA would fix them."""
    found = [_bubblewrap(), _identity(), _seccomp()]
    if all(c.ok for c in found[:2]):
        found.append(_run())
    return found


def _bubblewrap() -> Check:
    path = bwrap.executable()
    return Check("bubblewrap", path is not None,
                 path or "not installed: `apt-get install bubblewrap`")


def _identity() -> Check:
    try:
        who = user.sandbox_identity()
    except user.NoSandboxUser as exc:
        return Check("sandbox user", False, str(exc))
    how = "the dedicated user" if who.switch else "this grader's own user"
    return Check("sandbox user", who.uid != 0, f"{who.name} (uid {who.uid}), {how}")


def _seccomp() -> Check:
    try:
        size = len(seccomp.program())
    except seccomp.SeccompUnavailable as exc:
        return Check("seccomp filter", False, f"{exc}: `apt-get install libseccomp2`")
    return Check("seccomp filter", True, f"{size // 8} BPF instructions")


def _run() -> Check:
    with tempfile.TemporaryDirectory(prefix="torchgrade-doctor-") as folder:
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(INSIDE)])
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                     "language": "python"}
        nbformat.write(nb, Path(folder) / "doctor.ipynb")
        try:
            with Sandbox(SandboxConfig(notebook_seconds=60)).open(
                    Path(folder), "doctor.ipynb") as session:
                record = session.execute()
        except SandboxError as exc:
            return Check("sandboxed run", False, str(exc))
    if record.outcome != "completed" or record.notebook is None:
        notes = "; ".join(record.notes)
        return Check("sandboxed run", False, f"{record.outcome}: {record.reason} {notes}")
    said = nbformat.reads(record.notebook, as_version=4).cells[0].outputs[0]["text"]
    inside = json.loads(said.strip().splitlines()[-1])
    ok = inside["cap_eff"] == 0 and inside["sysctl"] == "read-only" and inside["no_new_privs"] == 1
    filtered = "seccomp on" if inside["seccomp"] == 2 else "seccomp OFF"
    return Check("sandboxed run", ok, f"no capabilities: {inside['cap_eff'] == 0}, host "
                 f"sysctls {inside['sysctl']}, {filtered}, {'warm' if session.warm else 'cold'}"
                 f" start, {record.wall_seconds:.1f} s")
