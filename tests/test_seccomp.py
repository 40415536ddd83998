"""The seccomp filter: built by libseccomp, loaded as the warm start loads it, it denies what a
sandbox escape needs and nothing a notebook needs."""

from __future__ import annotations

import base64
import errno
import json
import os
import subprocess
import sys

import pytest

from grader.sandbox import forkserver, seccomp

try:
    seccomp.program()
    HAVE_SECCOMP = True
except seccomp.SeccompUnavailable:
    HAVE_SECCOMP = False

pytestmark = pytest.mark.skipif(not HAVE_SECCOMP, reason="libseccomp is not installed")

#: In a child with the filter loaded: what each call returned, and whether ordinary work ran.
CHILD = r"""
import ctypes, errno, json, os, subprocess, sys, threading
sys.path.insert(0, {sandbox!r})
import forkserver
libc = ctypes.CDLL(None, use_errno=True)
libc.prctl(forkserver.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
forkserver.load_seccomp({program!r})
def call(result):
    return ctypes.get_errno() if result == -1 else 0
found = {{
    "unshare": call(libc.unshare(0x10000000)),
    "ptrace": call(libc.ptrace(16, os.getppid(), 0, 0)),
    "mount": call(libc.mount(b"none", b"/tmp", b"tmpfs", 0, None)),
    "keyctl": call(libc.syscall(250, 0, 0, 0, 0)),  # x86_64 keyctl
}}
thread = threading.Thread(target=lambda: None)
thread.start()
thread.join()
found["thread"] = True
found["subprocess"] = subprocess.run(["true"]).returncode
print(json.dumps(found))
"""


def test_the_filter_is_a_list_of_bpf_instructions():
    program = seccomp.program()
    assert len(program) % 8 == 0 and len(program) // 8 > len(seccomp.DENIED)


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="syscall numbers are x86_64's")
def test_a_filtered_process_cannot_escape_but_still_works():
    sandbox_dir = os.path.dirname(forkserver.__file__)
    script = CHILD.format(sandbox=sandbox_dir,
                          program=base64.b64encode(seccomp.program()).decode())
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    found = json.loads(done.stdout)
    assert found["unshare"] == errno.EPERM and found["ptrace"] == errno.EPERM
    assert found["mount"] == errno.EPERM and found["keyctl"] == errno.EPERM
    assert found["thread"] and found["subprocess"] == 0


def test_a_malformed_filter_is_refused_before_anything_runs():
    with pytest.raises(forkserver.SetupError):
        forkserver.load_seccomp(base64.b64encode(b"\x00" * 7).decode())
