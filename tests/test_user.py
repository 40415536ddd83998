"""Who the sandbox is on the host: a root grader switches to the unprivileged sandbox user,
an ordinary user's grader stays itself, and a missing user is one line a TA can act on."""

from __future__ import annotations

import os
import pwd
import subprocess
import sys

import pytest

from grader.sandbox import bwrap, doctor, user


def test_an_ordinary_users_grader_runs_its_sandboxes_as_itself(monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 4242)
    monkeypatch.setattr(pwd, "getpwuid", lambda uid: pwd.struct_passwd(
        ("ta", "x", uid, 4242, "", "/home/ta", "/bin/sh")))
    identity = user.sandbox_identity()
    assert identity.uid == 4242 and not identity.switch


@pytest.mark.skipif(os.geteuid() != 0, reason="the sandbox user is a root grader's")
def test_a_root_grader_uses_the_dedicated_user():
    identity = user.sandbox_identity()
    assert identity.uid != 0 and identity.gid != 0 and identity.switch
    assert identity.name == user.name()


@pytest.mark.skipif(os.geteuid() != 0, reason="the sandbox user is a root grader's")
@pytest.mark.parametrize("name", ["no-such-user-torchgrade", "root"])
def test_a_root_grader_without_an_unprivileged_user_says_how_to_make_one(monkeypatch, name):
    monkeypatch.setenv(user.ENV_VAR, name)
    with pytest.raises(user.NoSandboxUser) as caught:
        user.sandbox_identity()
    assert "\n" not in str(caught.value)
    assert ("useradd" in str(caught.value)) == (name != "root")


@pytest.mark.skipif(os.geteuid() != 0, reason="changing user needs root")
def test_become_leaves_no_group_and_no_way_back():
    identity = user.sandbox_identity()
    code = ("import os, sys\n"
            f"sys.path.insert(0, {os.path.dirname(user.__file__)!r})\n"
            "import user\n"
            f"user.become(user.Identity('x', {identity.uid}, {identity.gid}))\n"
            "print(os.getresuid(), os.getresgid(), os.getgroups())\n"
            "try:\n    os.setuid(0)\nexcept PermissionError:\n    print('stuck')\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    uid, gid = identity.uid, identity.gid
    assert done.stdout.split("\n")[:2] == [f"({uid}, {uid}, {uid}) ({gid}, {gid}, {gid}) []",
                                           "stuck"], done.stderr


@pytest.mark.slow
@pytest.mark.skipif(bwrap.executable() is None, reason="bubblewrap is not installed")
def test_doctor_checks_a_real_sandbox():
    found = {c.name: c for c in doctor.checks()}
    assert set(found) == {"bubblewrap", "sandbox user", "seccomp filter", "sandboxed run"}
    run = found["sandboxed run"]
    assert run.ok, run.detail
    assert "host sysctls read-only" in run.detail and "seccomp on" in run.detail
