"""The warm start's forked kernel as jupyter_client's provisioner sees it (kernel_fork.py);
test_warm and test_sandbox start real forked kernels in real sandboxes."""

from __future__ import annotations

import os
import signal
import time

import pytest

from grader.sandbox import kernel_fork


def sleeping_child() -> int:
    pid = os.fork()
    if pid == 0:
        try:
            time.sleep(60)
        finally:
            os._exit(0)
    return pid


def test_a_forked_kernel_is_polled_waited_for_and_killed_like_a_process():
    kernel = kernel_fork.ForkedKernel(sleeping_child())
    try:
        assert kernel.poll() is None
        with pytest.raises(TimeoutError):  # what the provisioner catches
            kernel.wait(timeout=0.05)
    finally:
        kernel.kill()
    assert kernel.wait(timeout=10) == -signal.SIGKILL
    assert kernel.poll() == -signal.SIGKILL
    kernel.terminate()  # an ended kernel is left alone

