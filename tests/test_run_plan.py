"""Laying out a run (grader/run/plan.py): how many jobs, which GPU, where."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from grader import assignments
from grader.run import plan as planning
from grader.run.plan import GpuSlots, PlanError

GRADE = str(Path(sys.executable).parent / "grade")


# ----------------------------------------------------------------------------- how many jobs


def test_default_jobs_is_the_smaller_of_cores_and_memory():
    assert planning.default_jobs(4096, cores=16, available_mb=20_000) == 4   # memory binds
    assert planning.default_jobs(1024, cores=2, available_mb=20_000) == 2    # cores bind
    assert planning.default_jobs(4096, cores=8, available_mb=1_000) == 1     # never below one


def test_available_memory_reads_memavailable(tmp_path: Path):
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       32000000 kB\nMemAvailable:   8388608 kB\n")
    assert planning.available_memory_mb(meminfo) == 8192
    assert planning.available_memory_mb() > 0  # this machine's own


def test_the_help_says_where_the_default_comes_from():
    result = subprocess.run([GRADE, "grade", "--help"], capture_output=True, text=True,
                            check=True)
    assert "default: from cores and memory" in " ".join(result.stdout.split())
    assert "--gpu-slots" in result.stdout and "--cluster" in result.stdout


# ----------------------------------------------------------------------------- GPU slots


def test_nvidia_smi_listing_is_parsed():
    listing = ("GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-1b2c)\n"
               "GPU 1: NVIDIA H100 80GB HBM3 (UUID: GPU-3d4e)\n"
               "  MIG 1g.10gb Device 0: (UUID: MIG-5f6a)\n")
    assert planning.parse_nvidia_smi(listing) == (0, 1)
    assert planning.parse_nvidia_smi("No devices were found\n") == ()


def test_gpus_are_found_from_device_nodes(tmp_path: Path):
    for name in ("nvidia0", "nvidia1", "nvidia3", "nvidiactl", "nvidia-uvm"):
        (tmp_path / name).touch()
    assert planning.detect_gpus(nvidia_smi="", dev=tmp_path, visible="") == (0, 1, 3)
    assert planning.detect_gpus(nvidia_smi="", dev=tmp_path, visible="3,1") == (3, 1)
    assert planning.detect_gpus(nvidia_smi="", dev=tmp_path / "none", visible="") == ()


def test_slots_spread_jobs_before_they_share_a_gpu():
    slots = GpuSlots([0, 1], per_gpu=2)
    assert slots.capacity == 4
    taken = [slots.acquire() for _ in range(4)]
    assert taken == [0, 1, 0, 1]
    with pytest.raises(PlanError, match="all 4 GPU slots are taken"):
        slots.acquire()
    slots.release(1)
    assert slots.free == 1 and slots.acquire() == 1
    with pytest.raises(ValueError):
        GpuSlots([0, 1]).release(0)


def test_slots_go_to_the_least_busy_gpu():
    slots = GpuSlots([2, 5, 7], per_gpu=3)
    first = [slots.acquire() for _ in range(3)]
    assert first == [2, 5, 7]
    slots.release(5)
    assert slots.acquire() == 5   # the only GPU with nothing on it
    assert slots.acquire() == 2   # all equal again: the first one
    slots.release(7)
    assert slots.acquire() == 7
    assert [slots.device_of_worker(i) for i in range(4)] == [2, 5, 7, 2]


def test_plan_for_a_gpu_homework():
    w6, w4 = assignments.find("W6"), assignments.find("W4")
    on_gpus = planning.plan(w6, jobs=16, gpu_slots=2, devices=(0, 1), cores=32)
    assert (on_gpus.workers, on_gpus.devices) == (4, (0, 1))     # 2 GPUs x 2 slots
    few_cores = planning.plan(w6, jobs=16, gpu_slots=4, devices=(0, 1), cores=3)
    assert few_cores.workers == 3                                  # never more than cores
    cpu_homework = planning.plan(w4, jobs=3, devices=(0, 1), cores=8)
    assert (cpu_homework.workers, cpu_homework.devices) == (3, ())
    asked = planning.plan(w4, jobs=3, gpus=True, devices=(0,), cores=8)
    assert (asked.workers, asked.devices) == (1, (0,))
    refused = planning.plan(w6, jobs=3, gpus=False, devices=(0,), cores=8)
    assert refused.devices == ()


def test_plan_without_a_gpu():
    w6 = assignments.find("W6")
    fallback = planning.plan(w6, jobs=2, devices=(), cores=2)
    assert fallback.devices == () and "has none" in fallback.notes[0]
    with pytest.raises(PlanError, match="no NVIDIA GPU found"):
        planning.plan(w6, jobs=2, gpus=True, devices=(), cores=2)
    remote = planning.plan(w6, cluster="tcp://127.0.0.1:8786", jobs=2, cores=2)
    assert remote.cluster_gpu is None  # GPU workers if the cluster has them
