"""Resource limits: the cgroup this machine offers, and the rlimits every run gets."""

import resource
import subprocess

import pytest

from grader.sandbox import limits


def test_cpu_budget_scales_with_cores():
    assert limits.ResourceLimits.for_run(1024, 600, cores=4).cpu_seconds == 2400


def test_in_force_names_what_holds_each_limit():
    plain = limits.in_force(limits.ResourceLimits(), None)
    assert plain[0].startswith("address space") and "RLIMIT_NPROC" in plain[1]


def test_rlimits_bind_a_child_process():
    lim = limits.ResourceLimits(file_mb=1, open_files=64)
    script = ("import resource; print(resource.getrlimit(resource.RLIMIT_FSIZE)[0], "
              "resource.getrlimit(resource.RLIMIT_NOFILE)[0], "
              "resource.getrlimit(resource.RLIMIT_CORE)[0])")
    out = subprocess.run(["python3", "-c", script], capture_output=True, text=True, check=True,
                         preexec_fn=limits.preexec(lim, None)).stdout.split()
    assert out == [str(1 << 20), "64", "0"]
    assert resource.getrlimit(resource.RLIMIT_FSIZE)[0] != 1 << 20  # the parent is untouched


@pytest.fixture
def cgroup():
    group = limits.create_cgroup(limits.ResourceLimits(memory_mb=256, pids=16))
    if group is None:
        pytest.skip("no writable cgroup with memory and pids controllers on this machine")
    yield group
    group.remove()


def test_cgroup_holds_the_pids_limit_and_is_removed(cgroup):
    result = subprocess.run(["sh", "-c", "for i in $(seq 40); do sleep 5 & done; wait"],
                            capture_output=True, text=True,
                            preexec_fn=limits.preexec(limits.ResourceLimits(pids=16), cgroup))
    assert "fork" in result.stderr or result.returncode != 0
    cgroup.remove()
    assert not any(d.exists() for d in cgroup.directories)


def test_cgroup_memory_limit_kills_and_is_reported(cgroup):
    touch_1gb = "x = bytearray(1 << 30); x[::4096] = b'1' * (1 << 18)"
    result = subprocess.run(["python3", "-c", touch_1gb], capture_output=True,
                            preexec_fn=limits.preexec(limits.ResourceLimits(memory_mb=256),
                                                      cgroup))
    assert result.returncode != 0
    assert cgroup.oom_killed()
    assert cgroup.peak_memory() is not None and cgroup.peak_memory() <= 256 << 20
