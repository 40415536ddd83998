"""How a run is laid out: how many notebooks at once, on which GPUs, on this machine, on a
Dask cluster, or on Dask workers started as Slurm jobs. Nothing here starts anything; the
backends (inline, pool, dask, which starts the Slurm jobs through slurm.py) carry a Plan out.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from grader.assignments import Assignment
from grader.errors import GraderError


class PlanError(GraderError):
    """The run cannot be laid out as asked (no GPU for --gpus, no free GPU slot)."""

    exit_code = 2


def available_cores() -> int:
    """Cores this process may run on (a Slurm job or taskset sees fewer than the machine)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def available_memory_mb(meminfo: Path = Path("/proc/meminfo")) -> int:
    """Memory the kernel could hand out now without swapping (MemAvailable)."""
    try:
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) // 1024
    except (OSError, ValueError, IndexError):
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // (1 << 20)


def default_jobs(memory_mb: int, *, cores: int | None = None,
                 available_mb: int | None = None) -> int:
    """As many notebooks at once as there are cores, but no more than the memory holds at the
    assignment's per-notebook limit: min(cores, available // memory_mb), at least 1."""
    cores = available_cores() if cores is None else cores
    available = available_memory_mb() if available_mb is None else available_mb
    return max(1, min(cores, available // max(1, memory_mb)))


def parse_nvidia_smi(listing: str) -> tuple[int, ...]:
    """The GPU indices in `nvidia-smi -L` output ("GPU 0: NVIDIA H100 (UUID: ...)")."""
    found = []
    for line in listing.splitlines():
        head = line.split(":", 1)[0].split()
        if len(head) == 2 and head[0] == "GPU" and head[1].isdigit():
            found.append(int(head[1]))
    return tuple(found)


def detect_gpus(nvidia_smi: str | None = None, dev: Path = Path("/dev"),
                visible: str | None = None) -> tuple[int, ...]:
    """The NVIDIA GPUs of this machine, by index: `nvidia-smi -L`, else the /dev/nvidiaN nodes.

    CUDA_VISIBLE_DEVICES (`visible`), when it lists indices, narrows them: a TA who hands the
    grader GPUs 2 and 3 gets jobs on 2 and 3 only.
    """
    smi = nvidia_smi if nvidia_smi is not None else shutil.which("nvidia-smi")
    devices: tuple[int, ...] = ()
    if smi:
        try:
            listing = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=20,
                                     check=True).stdout
            devices = parse_nvidia_smi(listing)
        except (OSError, subprocess.SubprocessError):
            devices = ()
    if not devices:
        nodes = (p.name.removeprefix("nvidia") for p in dev.glob("nvidia[0-9]*"))
        devices = tuple(sorted(int(n) for n in nodes if n.isdigit()))
    visible = os.environ.get("CUDA_VISIBLE_DEVICES") if visible is None else visible
    wanted = [v.strip() for v in (visible or "").split(",") if v.strip()]
    if wanted and all(v.isdigit() for v in wanted):
        devices = tuple(int(v) for v in wanted if int(v) in devices)
    return devices


class GpuSlots:
    """Which GPU the next job runs on. Each GPU holds at most `per_gpu` jobs at once, and a job
    goes to the least busy GPU (the first one on a tie), so jobs spread out before they share."""

    def __init__(self, devices: Sequence[int], per_gpu: int = 1) -> None:
        if per_gpu < 1:
            raise ValueError("per_gpu must be at least 1")
        self.devices = tuple(dict.fromkeys(devices))
        self.per_gpu = per_gpu
        self._busy = dict.fromkeys(self.devices, 0)

    @property
    def capacity(self) -> int:
        return len(self.devices) * self.per_gpu

    @property
    def free(self) -> int:
        return self.capacity - sum(self._busy.values())

    def acquire(self) -> int:
        """Take a slot; returns its GPU index. Raises when every slot is taken."""
        if self.free <= 0:
            raise PlanError(f"all {self.capacity} GPU slots are taken")
        device = min(self.devices, key=lambda d: self._busy[d])  # min() keeps the first tie
        self._busy[device] += 1
        return device

    def release(self, device: int) -> None:
        if self._busy.get(device, 0) <= 0:
            raise ValueError(f"GPU {device} has no job to release")
        self._busy[device] -= 1

    def device_of_worker(self, index: int) -> int:
        """A fixed GPU for worker `index` of a pool sized to `capacity` (Dask LocalCluster)."""
        return self.devices[index % len(self.devices)]


#: What a Slurm job books beyond the assignment's per-notebook memory: the Dask worker itself,
#: with torch and the judge imported (about 1.5 GiB), and some room.
SLURM_WORKER_MB = 2048


@dataclass(frozen=True)
class SlurmJobs:
    """What `--cluster slurm` asks of Slurm: at most `jobs` jobs at once, each one
    single-threaded Dask worker grading one notebook at a time, with `cpus` cores for the
    notebook's torch and `memory_mb` for the worker and the notebook (None: the assignment's
    limit plus SLURM_WORKER_MB). None elsewhere leaves the choice to dask-jobqueue's
    configuration (`jobqueue.slurm` in ~/.config/dask/jobqueue.yaml), then to Slurm's defaults.
    `log_directory` holds each job's output, so it must be a folder the nodes share."""

    jobs: int = 8
    partition: str | None = None
    account: str | None = None
    walltime: str | None = "01:00:00"
    cpus: int = 4
    memory_mb: int | None = None
    gpus: int = 0                       # 0 or 1: one worker per job grades one notebook
    log_directory: str | None = None

    def __post_init__(self) -> None:
        if self.jobs < 1 or self.cpus < 1:
            raise PlanError("--slurm-jobs and --job-cpus must be at least 1")
        if self.gpus not in (0, 1):
            raise PlanError("--gpus-per-job is 0 or 1: each job's one worker grades one "
                            "notebook at a time; ask for more jobs instead")
        if self.walltime is not None and not _WALLTIME.fullmatch(self.walltime):
            raise PlanError(f"--walltime {self.walltime!r}: give Slurm's form, e.g. 04:00:00, "
                            "90 (minutes) or 1-00:00:00")


_WALLTIME = re.compile(r"(\d+-)?\d+(:\d{1,2}){0,2}")


@dataclass(frozen=True)
class Plan:
    """How a run is laid out: how many notebooks at once, on which GPUs, where."""

    workers: int = 1
    devices: tuple[int, ...] = ()       # GPUs this machine's jobs take slots on; () = CPU
    per_gpu: int = 1
    cluster: str | None = None          # None: this machine; "local", "slurm" or an address
    cluster_gpu: bool | None = False    # remote: True needs GPU workers, None uses them if any
    notes: tuple[str, ...] = ()         # for the TA, one line each
    slurm: SlurmJobs | None = None      # cluster "slurm": the jobs to start

    def slots(self) -> GpuSlots | None:
        """This machine's GPU slots for the run, or None on the CPU."""
        return GpuSlots(self.devices, self.per_gpu) if self.devices else None


def plan(assignment: Assignment, *, jobs: int | None = None, gpus: bool | None = None,
         gpu_slots: int = 1, cluster: str | None = None, devices: Sequence[int] | None = None,
         cores: int | None = None, available_mb: int | None = None,
         slurm: SlurmJobs | None = None) -> Plan:
    """Lay out a run. `gpus` None means: on a GPU when the assignment asks for one and one is
    found. GPU runs take one slot per job, and never more jobs than cores."""
    if cluster == "slurm":
        return plan_slurm(assignment, slurm or SlurmJobs(), gpus)
    cores = available_cores() if cores is None else cores
    workers = jobs or default_jobs(assignment.limits.memory_mb, cores=cores,
                                   available_mb=available_mb)
    if cluster is not None and cluster != "local":
        wanted = False if gpus is False else (True if gpus else (None if assignment.gpu
                                                                 else False))
        return Plan(workers, (), gpu_slots, cluster, wanted)
    if gpus is False or (gpus is None and not assignment.gpu):
        return Plan(workers, (), gpu_slots, cluster)
    found = tuple(devices) if devices is not None else detect_gpus()
    if not found:
        if gpus:
            raise PlanError("--gpus: no NVIDIA GPU found (nvidia-smi -L, /dev/nvidia*); "
                            "leave out --gpus to grade on the CPU")
        return Plan(workers, (), gpu_slots, cluster, notes=(
            f"{assignment.name} asks for a GPU and this machine has none: grading on the CPU",))
    slots = GpuSlots(found, gpu_slots)
    return Plan(max(1, min(workers, slots.capacity, cores)), slots.devices, gpu_slots, cluster)


def plan_slurm(assignment: Assignment, jobs: SlurmJobs, gpus: bool | None) -> Plan:
    """A run on Slurm jobs. A job books a GPU only when asked (`--gpus-per-job 1`, or
    `--gpus`): a partition without GPUs would keep such jobs pending for ever, so a GPU
    homework without either is graded on the jobs' CPUs, and the TA is told so."""
    if gpus is False and jobs.gpus:
        raise PlanError("--no-gpus and --gpus-per-job 1 contradict each other: leave one out")
    if gpus and not jobs.gpus:
        jobs = replace(jobs, gpus=1)
    if jobs.memory_mb is None:
        jobs = replace(jobs, memory_mb=assignment.limits.memory_mb + SLURM_WORKER_MB)
    notes = ()
    if assignment.gpu and not jobs.gpus and gpus is None:
        notes = (f"{assignment.name} asks for a GPU: add --gpus-per-job 1 to book one per "
                 "Slurm job; grading on the jobs' CPUs",)
    return Plan(jobs.jobs, (), 1, "slurm", bool(jobs.gpus), notes, jobs)
