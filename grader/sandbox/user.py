"""The host user a sandbox runs as: never root.

bubblewrap maps the sandbox's uid 65534 to the uid of whoever started it. Started by a grader
running as root (CI, many course servers), that is host root: a student's cell could write
host sysctls or read root-only files wherever a mount let it. So a root grader starts every
sandbox as a dedicated unprivileged user, `torchgrade-sandbox` (or the one named in
TORCHGRADE_SANDBOX_USER), which owns nothing on the machine; a grader run by an ordinary user
(a TA's account) starts it as that user, as before.

The user needs no home, no shell and no file of its own: everything a sandbox sees is handed
to bubblewrap as an open descriptor by the grader (see bwrap.py), so even a Python under a
0700 /root (pyenv) is reachable inside. `grade doctor` checks the set-up; `make install` (as
root) creates the user:

    useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin \\
        torchgrade-sandbox
"""

from __future__ import annotations

import os
from dataclasses import dataclass

DEFAULT_USER = "torchgrade-sandbox"
ENV_VAR = "TORCHGRADE_SANDBOX_USER"


class NoSandboxUser(RuntimeError):
    """The grader runs as root and the unprivileged sandbox user does not exist."""


@dataclass(frozen=True)
class Identity:
    """Who a sandbox's processes are on the host."""

    name: str
    uid: int
    gid: int

    @property
    def switch(self) -> bool:
        """Whether the grader must change to this user before starting bubblewrap."""
        return os.geteuid() != self.uid


def name() -> str:
    return os.environ.get(ENV_VAR) or DEFAULT_USER


def sandbox_identity() -> Identity:
    """The host user every sandbox of this grader runs as: the grader's own user, or the
    dedicated one when the grader is root. Raises NoSandboxUser with the fix when root has
    none, or when the one named is root itself. (`pwd` is imported here: only a sandbox,
    on Linux, asks, and Windows has no such module.)"""
    import pwd

    if os.geteuid() != 0:
        entry = pwd.getpwuid(os.geteuid())
        return Identity(entry.pw_name, entry.pw_uid, os.getegid())
    wanted = name()
    try:
        entry = pwd.getpwnam(wanted)
    except KeyError:
        raise NoSandboxUser(
            f"grading as root needs the unprivileged user {wanted!r} to run the sandboxes: "
            f"create it with `useradd --system --no-create-home --home-dir /nonexistent "
            f"--shell /usr/sbin/nologin {wanted}` (or `make install` as root), or set "
            f"{ENV_VAR} to another unprivileged user") from None
    if entry.pw_uid == 0 or entry.pw_gid == 0:
        raise NoSandboxUser(f"{ENV_VAR} names {wanted!r}, which is root: the sandbox must "
                            "run as an unprivileged user")
    return Identity(entry.pw_name, entry.pw_uid, entry.pw_gid)


def become(identity: Identity) -> None:
    """In a forked child, before it starts bubblewrap or enters a sandbox: this user only,
    no supplementary groups (root's would follow it), nothing to switch back to."""
    if not identity.switch:
        return
    os.setgroups([])
    os.setresgid(identity.gid, identity.gid, identity.gid)
    os.setresuid(identity.uid, identity.uid, identity.uid)
